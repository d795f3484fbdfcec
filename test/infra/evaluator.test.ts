import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compiledRulesJson, loadCompiledRules, loadRulesJson, RulesError } from '../../functions/core/rules/load';
import { loadRulesFile } from '../../lib/config';
import { EventStore } from '../../lib/event-store';
import { Evaluator, type EvaluatorProps } from '../../lib/evaluator';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { acknowledgements, nagFindings, reportValidationErrors } from './nag-report';
import { bundledFunction, loadHandler, testApp } from './synth';

type Resource = { Type: string; Properties: Record<string, any>; DependsOn?: string[]; DeletionPolicy?: string };

const rulesFile = resolve(import.meta.dirname, '../../examples/activation.rules.yaml');

/** The evaluator in a stack of its own, with the table and a bus it needs. */
function build(props: Partial<EvaluatorProps> = {}, context: Record<string, unknown> = {}) {
  const app = testApp(context);
  const stack = new Stack(app, 'EvaluatorTest');
  const { table } = new EventStore(stack, 'EventStore');
  const eventBus = new events.EventBus(stack, 'Bus');
  const evaluator = new Evaluator(stack, 'Evaluator', { table, eventBus, rulesFile: loadRulesFile(rulesFile), ...props });
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  return { app, stack, evaluator, logicalId, ids: { table: logicalId(table), bus: logicalId(eventBus) } };
}

let template: Template;
let ids: {
  table: string;
  bus: string;
  handler: string;
  handlerRole: string;
  handlerLogGroup: string;
  queue: string;
  group: string;
  schedulerRole: string;
};
let groupName: string;

beforeAll(() => {
  const built = build();
  template = Template.fromStack(built.stack);
  const { evaluator, logicalId } = built;
  ids = {
    ...built.ids,
    handler: logicalId(evaluator.handler),
    handlerRole: logicalId(evaluator.handler.role!),
    handlerLogGroup: logicalId(evaluator.node.findChild('Handler').node.findChild('LogGroup')),
    queue: logicalId(evaluator.deadLetterQueue),
    group: logicalId(evaluator.scheduleGroup),
    schedulerRole: logicalId(evaluator.node.findChild('SchedulerRole')),
  };
  groupName = resource(ids.group).Properties.Name;
});

const resource = (logicalId: string): Resource => template.toJSON().Resources[logicalId];
const resources = (t: Template, type: string) => Object.values(t.findResources(type)) as Resource[];
const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });
const policyStatementsOf = (roleId: string) => {
  const policies = resources(template, 'AWS::IAM::Policy').filter((policy) =>
    policy.Properties.Roles.some((role: unknown) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })),
  );
  expect(policies).toHaveLength(1);
  return policies[0]!.Properties.PolicyDocument.Statement as unknown[];
};

describe('evaluator function', () => {
  it('runs on arm64 with the newest Node.js runtime, 1024 MB, 5 minutes, no reserved concurrency unless asked', () => {
    const newestNode = lambda.Runtime.ALL.map((runtime) => runtime.name)
      .filter((name) => /^nodejs\d+\.x$/.test(name))
      .sort((a, b) => parseInt(b.slice(6)) - parseInt(a.slice(6)))[0];
    template.resourceCountIs('AWS::Lambda::Function', 1);
    const props = resource(ids.handler).Properties;
    expect(props.Runtime).toBe(newestNode);
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.MemorySize).toBe(1024);
    expect(props.Timeout).toBe(300);
    // Reserving it would fail the deploy in an account at the default limit of 10 (Lambda keeps 100 unreserved).
    expect(props.ReservedConcurrentExecutions).toBeUndefined();
    // No Powertools Tracer in the handlers, so no X-Ray (lib/lambda-function.ts).
    expect(props.TracingConfig).toBeUndefined();
    expect(props.LoggingConfig).toEqual({ LogFormat: 'JSON', LogGroup: { Ref: ids.handlerLogGroup } });
    expect(resource(ids.handlerLogGroup).Properties.RetentionInDays).toBe(30);
  });

  it('gets exactly the expected environment, the rules file under its bundled name', () => {
    expect(resource(ids.handler).Properties.Environment.Variables).toEqual({
      POWERTOOLS_SERVICE_NAME: 'pql-radar',
      POWERTOOLS_METRICS_NAMESPACE: 'pql-radar',
      NODE_OPTIONS: '--enable-source-maps',
      TABLE_NAME: { Ref: ids.table },
      EVENT_BUS_NAME: { Ref: ids.bus },
      DIRTY_SHARDS: '4',
      RETENTION_DAYS: '400',
      RULES_FILE: 'rules.json',
      RUN_INTERVAL_SECONDS: '60',
      ACCOUNT_INTERVAL_SECONDS: '600',
      USER_INTERVAL_SECONDS: '300',
    });
  });

  it('neither retries a failed run nor keeps a queued one past 5 minutes: the next tick does the same work', () => {
    expect(resources(template, 'AWS::Lambda::EventInvokeConfig').map((config) => config.Properties)).toEqual([
      { FunctionName: { Ref: ids.handler }, Qualifier: '$LATEST', MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 },
    ]);
  });

  it('passes shards, interval, retention and log retention through, and reserves one execution per shard when asked', () => {
    const { stack } = build({ shards: 8, everyMinutes: 5, accountEveryMinutes: 0, userEveryMinutes: 2, retentionDays: 30, logRetention: logs.RetentionDays.ONE_WEEK, reservedConcurrency: true, memoryMb: 1769 });
    const t = Template.fromStack(stack);
    const [fn] = resources(t, 'AWS::Lambda::Function');
    expect(fn!.Properties.ReservedConcurrentExecutions).toBe(8);
    expect(fn!.Properties.MemorySize).toBe(1769);
    expect(fn!.Properties.Environment.Variables).toMatchObject({ DIRTY_SHARDS: '8', RETENTION_DAYS: '30', RUN_INTERVAL_SECONDS: '300', ACCOUNT_INTERVAL_SECONDS: '0', USER_INTERVAL_SECONDS: '120' });
    expect(resources(t, 'AWS::Logs::LogGroup').map((group) => group.Properties.RetentionInDays)).toEqual([7]);
    const schedules = resources(t, 'AWS::Scheduler::Schedule');
    expect(schedules.map((schedule) => schedule.Properties.Target.Input).sort()).toEqual(
      Array.from({ length: 8 }, (_, shard) => JSON.stringify({ shard })).sort(),
    );
    expect(new Set(schedules.map((schedule) => schedule.Properties.ScheduleExpression))).toEqual(new Set(['rate(5 minutes)']));
  });

  it('refuses shard counts and intervals that are not positive integers, and a relative rules path', () => {
    expect(() => build({ shards: 0 })).toThrow(/shards must be a positive integer/);
    expect(() => build({ everyMinutes: 0.5 })).toThrow(/everyMinutes must be a positive integer/);
    expect(() => build({ accountEveryMinutes: -1 })).toThrow(/accountEveryMinutes must be a whole number of minutes, 0 or more/);
    expect(() => build({ userEveryMinutes: 6 })).toThrow(/userEveryMinutes must be a whole number of minutes from 0 to 5, got 6/);
    expect(() => build({ memoryMb: 10_241 })).toThrow(/memoryMb must be a whole number of MB from 128 to 10240 \(Lambda's range\), got 10241/);
    expect(() => build({ rulesFile: loadRulesFile('examples/activation.rules.yaml') })).toThrow(/rulesFile must be an absolute path/);
  });
});

describe('rules file', () => {
  it('fails the synth with every problem of a wrong rules file, its path and its line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pql-radar-rules-'));
    const broken = join(dir, 'broken.rules.yaml');
    writeFileSync(
      broken,
      ['version: 1', 'signals:', '  dashboards: { event: Dashboard Created, window: 30d, points: ten }', 'tiers:', '  - { name: PQL-A, min_score: high, route: sales }', ''].join('\n'),
    );
    let error: unknown;
    try {
      build({ rulesFile: loadRulesFile(broken) });
    } catch (thrown) {
      error = thrown;
    } finally {
      rmSync(dir, { recursive: true });
    }
    expect(error).toBeInstanceOf(RulesError);
    expect((error as RulesError).problems.map(({ path, line }) => ({ path, line }))).toEqual([
      { path: 'signals.dashboards.points', line: 3 },
      { path: 'tiers[0].min_score', line: 5 },
    ]);
    expect((error as Error).message).toContain(`${broken}: 2 problems`);
  });

  it('exposes the validated rules', () => {
    const { evaluator } = build();
    expect(evaluator.ruleset.file.tiers.map((tier) => tier.route)).toEqual(expect.arrayContaining(['sales']));
  });

  it('writes the rules as JSON, which loads into the same rules without a YAML parser', () => {
    const loaded = loadRulesFile(rulesFile);
    expect(JSON.parse(loaded.json)).toEqual(parse(readFileSync(rulesFile, 'utf8')));
    const fromJson = loadRulesJson(loaded.json, 'rules.json');
    expect(fromJson.version).toBe(loaded.ruleset.version);
    expect(fromJson.file).toEqual(loaded.ruleset.file);
  });

  it('compiles the rules for the function, which loads them into the same rules without the schema', () => {
    const { evaluator } = build();
    const compiled = loadCompiledRules(compiledRulesJson(evaluator.ruleset), 'rules.json');
    expect(compiled.version).toBe(evaluator.ruleset.version);
    expect(compiled.file).toEqual(evaluator.ruleset.file);
  });

  it('reports problems of rules read as JSON by their path', () => {
    expect(() => loadRulesJson('{"version": 1, "signals": {}, "tiers": [{"name": "A", "min_score": "high", "route": "sales"}]}', 'rules.json')).toThrow(
      /^rules\.json: \d+ problems?\n(.*\n)*  tiers\[0\]\.min_score: /,
    );
    expect(() => loadRulesJson('version: 1', 'rules.json')).toThrow(RulesError);
  });
});

describe('schedules', () => {
  it('run every shard every minute with its own input, retries, a 5-minute age limit and the dead-letter queue', () => {
    const schedules = resources(template, 'AWS::Scheduler::Schedule');
    expect(schedules).toHaveLength(4);
    const byShard = new Map(schedules.map((schedule) => [JSON.parse(schedule.Properties.Target.Input).shard as number, schedule]));
    expect([...byShard.keys()].sort()).toEqual([0, 1, 2, 3]);
    for (const [shard, schedule] of byShard) {
      expect(schedule.Properties).toEqual({
        Description: `pql-radar evaluator, shard ${shard}`,
        GroupName: groupName,
        ScheduleExpression: 'rate(1 minute)',
        ScheduleExpressionTimezone: 'Etc/UTC',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: {
          Arn: getAtt(ids.handler),
          RoleArn: getAtt(ids.schedulerRole),
          Input: JSON.stringify({ shard }),
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 },
          DeadLetterConfig: { Arn: getAtt(ids.queue) },
        },
      });
      // The group is named by a literal: only an explicit dependency orders the creation.
      expect(schedule.DependsOn).toContain(ids.group);
    }
  });

  it('live in a group of their own that goes with the stack', () => {
    template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    expect(resource(ids.group).DeletionPolicy).toBe('Delete');
  });

  it('need no resource policy on the function: Scheduler invokes it with its role', () => {
    template.resourceCountIs('AWS::Lambda::Permission', 0);
  });
});

describe('dead-letter queue', () => {
  it('is encrypted, refuses requests without TLS and keeps messages 14 days', () => {
    template.resourceCountIs('AWS::SQS::Queue', 1);
    expect(resource(ids.queue).Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86_400 });
    const [policy] = resources(template, 'AWS::SQS::QueuePolicy');
    expect(policy!.Properties.Queues).toEqual([{ Ref: ids.queue }]);
    expect(policy!.Properties.PolicyDocument.Statement).toEqual([
      {
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sqs:*',
        Resource: getAtt(ids.queue),
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ]);
  });
});

describe('evaluator role', () => {
  it('is assumed by Lambda and carries no managed or inline policies', () => {
    const role = resource(ids.handlerRole);
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
  });

  it('may write its logs, read and write its own partitions and read its dirty index, and publish to its own bus only', () => {
    const statements = policyStatementsOf(ids.handlerRole);
    expect(statements).toHaveLength(5);
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: getAtt(ids.handlerLogGroup),
    });
    // Spelled out rather than taken from evaluatorTableAccess, so that widening it cannot slip through. Entity state,
    // rollups and claims (WS#*), its change lists, its outbox and its shard count and rules progress: never the write
    // keys (KEYS) nor the feedback links' signing key (FEEDBACK_SIGNING_KEY), read or written.
    const ownPartitions = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['WS#*', 'CHANGES#*', 'OUTBOX#*', 'META'] } };
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
      Resource: getAtt(ids.table),
      Condition: ownPartitions,
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
      Resource: getAtt(ids.table),
      Condition: ownPartitions,
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 'dynamodb:Query',
      Resource: { 'Fn::Join': ['', [getAtt(ids.table), '/index/dirty']] },
    });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'events:PutEvents', Resource: getAtt(ids.bus) });
  });
});

describe('scheduler role', () => {
  it('is assumed only by EventBridge Scheduler for schedules of the evaluator group in this account', () => {
    const role = resource(ids.schedulerRole);
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' }, 'aws:SourceArn': getAtt(ids.group) } },
      },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
  });

  it('may invoke the evaluator (no other version or alias) and send to the dead-letter queue, nothing more', () => {
    expect(policyStatementsOf(ids.schedulerRole)).toEqual([
      { Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: getAtt(ids.handler) },
      { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(ids.queue) },
    ]);
  });
});

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged, and the acknowledgements are the reviewed ones', () => {
    const { app } = build({}, reportValidationErrors);
    expect(nagFindings(app)).toEqual([]);
    expect(acknowledgements(app).sort()).toEqual([
      'EvaluatorTest/Evaluator/DeadLetterQueue Annotation::AwsSolutions-SQS3',
    ]);
  });
});

it('bundles the rules as rules.json beside the handler, which loads it at cold start', { timeout: 120_000 }, () => {
  const { app, evaluator } = build({}, { [SKIP_BUNDLING_CONTEXT]: false, 'aws:cdk:enable-asset-metadata': true });
  const bundled = bundledFunction(app, evaluator.handler);
  const { assetDir } = bundled;
  expect(readdirSync(assetDir).sort()).toEqual(['index.mjs', 'index.mjs.map', 'rules.json']);
  expect(readFileSync(join(assetDir, 'rules.json'), 'utf8')).toBe(compiledRulesJson(loadRulesFile(rulesFile).ruleset));

  // Lambda runs the handler with the bundle as its working directory; RULES_FILE is relative to it.
  expect(loadHandler(bundled)).toBe('function');
});
