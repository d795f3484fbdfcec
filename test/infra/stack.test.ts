import { reachesEvaluator } from '../../functions/adapters/dynamodb/change-capture';
import { join } from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tableDefinition } from '../../functions/adapters/dynamodb/table-definition';
import { loadConfig } from '../../lib/config';
import { feedbackMethods, ingestMethods, ingestTableAccess } from '../../lib/ingest-api';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import type { WriteKeyBootstrap } from '../../lib/write-key-bootstrap';
import { buildStack, synth, testApp } from './synth';
import { actionsOnPartition, statementsByRole } from './template-reader';

type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string; UpdateReplacePolicy?: string };

let template: Template;
let ids: { table: string; handler: string; handlerLogGroup: string; role: string; accessLogs: string; integration: string; deliveryStream: string };

beforeAll(() => {
  const { stack } = buildStack();
  template = Template.fromStack(stack);
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const ingest = stack.ingestApi;
  ids = {
    table: logicalId(stack.eventStore.table),
    handler: logicalId(ingest.handler),
    handlerLogGroup: logicalId(ingest.handler.logGroup),
    role: logicalId(ingest.handler.role!),
    deliveryStream: logicalId(stack.ingestFirehoseBuffer!.deliveryStream),
    accessLogs: logicalId(ingest.node.findChild('AccessLogs')),
    integration: Object.keys(template.findResources('AWS::ApiGatewayV2::Integration', { Properties: { IntegrationUri: { 'Fn::GetAtt': [logicalId(ingest.handler), 'Arn'] } } }))[0]!,
  };
});

const resource = (logicalId: string): Resource => template.toJSON().Resources[logicalId];
const getAtt = (logicalId: string, attribute: string) => ({ 'Fn::GetAtt': [logicalId, attribute] });

describe('event store', () => {
  const { partitionKey, sortKey, timeToLiveAttribute, dirtyIndex } = tableDefinition;

  it('has the keys, the keys-only dirty index and the TTL of the shared table definition', () => {
    template.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    const table = resource(ids.table);
    expect(table.Type).toBe('AWS::DynamoDB::GlobalTable');
    expect(table.Properties.KeySchema).toEqual([
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ]);
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: dirtyIndex.indexName,
        KeySchema: [
          { AttributeName: dirtyIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: dirtyIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ]);
    const attributes = [partitionKey, sortKey, dirtyIndex.partitionKey, dirtyIndex.sortKey];
    expect(table.Properties.AttributeDefinitions).toEqual(attributes.map((name) => ({ AttributeName: name, AttributeType: 'S' })));
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: timeToLiveAttribute, Enabled: true });
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
  });

  it('is encrypted with the AWS managed KMS key, recoverable, protected and retained', () => {
    const table = resource(ids.table);
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS' });
    expect(table.Properties.Replicas).toHaveLength(1);
    expect(table.Properties.Replicas[0]).toMatchObject({
      DeletionProtectionEnabled: true,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    expect(table.Properties.Replicas[0].SSESpecification).toBeUndefined();
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  it('is of the Standard class unless the config asks for Standard-IA (a replica property of a global table)', () => {
    expect(resource(ids.table).Properties.Replicas[0].TableClass).toBeUndefined();
    synth({ tableClass: 'standard' }).hasResourceProperties('AWS::DynamoDB::GlobalTable', { Replicas: [Match.objectLike({ TableClass: Match.absent() })] });
    synth({ tableClass: 'standard-infrequent-access' }).hasResourceProperties('AWS::DynamoDB::GlobalTable', { Replicas: [Match.objectLike({ TableClass: 'STANDARD_INFREQUENT_ACCESS' })] });
  });

  it('lets a throwaway stack turn deletion protection off, and still retains the table', () => {
    synth({ deletionProtection: false }).hasResource('AWS::DynamoDB::GlobalTable', {
      Properties: { Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })] },
      DeletionPolicy: 'Retain',
    });
  });
});

describe('every function', () => {
  it("runs on arm64 and logs to a log group of the stack, kept as long as the others, CDK's own functions too", () => {
    const functions = Object.entries(template.findResources('AWS::Lambda::Function'));
    // CDK's: the bucket notifications function (Python) and the custom resource framework's.
    expect(functions.filter(([, fn]) => !String(fn.Properties.Runtime).startsWith('nodejs')).map(([id]) => id)).toEqual([expect.stringMatching(/^BucketNotificationsHandler/)]);
    expect(functions.some(([id]) => id.includes('framework'))).toBe(true);
    const logGroups = template.findResources('AWS::Logs::LogGroup');
    for (const [id, fn] of functions) {
      expect({ id, architectures: fn.Properties.Architectures }).toEqual({ id, architectures: ['arm64'] });
      const logGroup = logGroups[fn.Properties.LoggingConfig?.LogGroup?.Ref];
      expect({ id, retention: logGroup?.Properties.RetentionInDays }).toEqual({ id, retention: 30 });
    }
  });
});

describe('ingest function', () => {
  it('runs on arm64 with the newest Node.js runtime aws-cdk-lib offers', () => {
    const newestNode = lambda.Runtime.ALL.map((runtime) => runtime.name)
      .filter((name) => /^nodejs\d+\.x$/.test(name))
      .sort((a, b) => parseInt(b.slice(6)) - parseInt(a.slice(6)))[0];
    const props = resource(ids.handler).Properties;
    expect(props.Runtime).toBe(newestNode);
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.MemorySize).toBe(512);
    expect(props.Timeout).toBe(10);
    // No Powertools Tracer in the handlers, so no X-Ray (lib/lambda-function.ts).
    expect(props.TracingConfig).toBeUndefined();
    expect(props.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('gets exactly the expected environment', () => {
    expect(resource(ids.handler).Properties.Environment.Variables).toEqual({
      POWERTOOLS_SERVICE_NAME: 'pql-radar',
      POWERTOOLS_METRICS_NAMESPACE: 'pql-radar',
      NODE_OPTIONS: '--enable-source-maps',
      // Its logger's level: warnings and errors, no line per request (ingest.requestLogs).
      POWERTOOLS_LOG_LEVEL: 'WARN',
      TABLE_NAME: { Ref: ids.table },
      RETENTION_DAYS: '400',
      QUARANTINE_RETENTION_DAYS: '14',
      // The rules file's time zone, which the stored events' days follow.
      TIME_ZONE: 'UTC',
      // The default ingest buffer's (lib/ingest-firehose-buffer.ts).
      INGEST_DELIVERY_STREAM_NAME: { Ref: ids.deliveryStream },
    });
  });

  it('passes retentionDays through, and the shards to change capture', () => {
    const template = synth({ retentionDays: 30, evaluation: { shards: 16 } });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RETENTION_DAYS: '30', QUARANTINE_RETENTION_DAYS: '14' }) } });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ DIRTY_SHARDS: '16' }) } });
  });

  it('logs JSON into its own log group with a one-month retention: its warnings and errors, not a line per request', () => {
    // Lambda's application log level stays unset: it would take the metrics' EMF lines, which have no level, for INFO.
    expect(resource(ids.handler).Properties.LoggingConfig).toEqual({ LogFormat: 'JSON', SystemLogLevel: 'WARN', LogGroup: { Ref: ids.handlerLogGroup } });
    expect(resource(ids.handlerLogGroup).Properties.RetentionInDays).toBe(30);
  });

  it('logs every request, and Lambda\'s START and REPORT records, with ingest.requestLogs', () => {
    const { stack } = buildStack({ config: { ingest: { requestLogs: true } } });
    const handler = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement)] as Resource;
    expect(handler.Properties.LoggingConfig).toEqual({ LogFormat: 'JSON', LogGroup: expect.anything() });
    expect(handler.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL).toBeUndefined();
  });

  it('leaves the other functions at INFO: they run per schedule, batch or delivery, not per request', () => {
    const functions = Object.values(template.findResources('AWS::Lambda::Function')) as Resource[];
    expect(functions.filter((fn) => fn.Properties.LoggingConfig?.SystemLogLevel === 'WARN')).toHaveLength(1);
    expect(functions.filter((fn) => fn.Properties.Environment?.Variables?.POWERTOOLS_LOG_LEVEL !== undefined)).toHaveLength(1);
    // Ours never set Lambda's application log level (CDK's custom-resource provider framework sets its own).
    expect(functions.filter((fn) => fn.Properties.LoggingConfig?.ApplicationLogLevel !== undefined).map((fn) => fn.Properties.LoggingConfig.ApplicationLogLevel)).toEqual(['FATAL']);
  });
});

describe('HTTP API', () => {
  it('routes every call, POST and the CORS preflight, to the ingest function with payload format 2.0', () => {
    // The lead status route (test/infra/lead-status.test.ts) is the only other one. GET /v1/feedback answers the
    // feedback links' confirmation page; their POST applies the feedback.
    const routes = (Object.values(template.findResources('AWS::ApiGatewayV2::Route')) as Resource[]).filter((route) => /\{call\}|\/v1\/feedback$/.test(route.Properties.RouteKey));
    expect(routes.map((route) => route.Properties.RouteKey).sort()).toEqual(['GET /v1/feedback', 'OPTIONS /v1/{call}', 'POST /v1/feedback', 'POST /v1/{call}']);
    for (const route of routes) {
      expect(route.Properties.Target).toEqual({ 'Fn::Join': ['', ['integrations/', { Ref: ids.integration }]] });
    }
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 5);
    template.resourceCountIs('AWS::ApiGatewayV2::Integration', 2);
    expect(resource(ids.integration).Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: getAtt(ids.handler, 'Arn'),
    });
  });

  it('is where Slack and webhook notifiers point feedback links, with the rules\' reason codes; the CRM gets none', () => {
    const { stack } = buildStack();
    const resources = Template.fromStack(stack).toJSON().Resources;
    const api = stack.getLogicalId(stack.ingestApi.httpApi.node.defaultChild as CfnElement);
    const variables = (fn: IConstruct) => resources[stack.getLogicalId(fn.node.defaultChild as CfnElement)].Properties.Environment.Variables;
    for (const notifier of stack.leadFanout.notifierDestinations) {
      const env = variables(notifier.function);
      if (notifier.node.id.startsWith('Hubspot')) {
        expect(env.FEEDBACK_BASE_URL).toBeUndefined();
        continue;
      }
      expect(JSON.stringify(env.FEEDBACK_BASE_URL)).toMatch(new RegExp(`^\\{"Fn::Join":\\["",\\["https://",\\{"Ref":"${api}"\\},".execute-api.`));
      expect(env.FEEDBACK_REASONS).toBe('not_a_fit,bad_timing,already_customer');
      // The signing key, read-only, in its own partition; nothing of META.
      const role = stack.getLogicalId(notifier.function.role!.node.defaultChild as CfnElement);
      const statements = Object.values(resources as Record<string, Resource>)
        .filter((candidate) => candidate.Type === 'AWS::IAM::Policy' && JSON.stringify(candidate.Properties.Roles) === JSON.stringify([{ Ref: role }]))
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: unknown; Condition?: unknown }[]);
      expect(statements.filter((statement) => /META|FEEDBACK_SIGNING_KEY/.test(JSON.stringify(statement.Condition ?? {})))).toEqual([
        expect.objectContaining({ Action: 'dynamodb:GetItem', Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['FEEDBACK_SIGNING_KEY'] } } }),
      ]);
    }
  });

  it('lets API Gateway invoke the function, and nobody else', () => {
    const permissions = (Object.values(template.findResources('AWS::Lambda::Permission')) as Resource[]).filter(
      (permission) => JSON.stringify(permission.Properties.FunctionName) === JSON.stringify(getAtt(ids.handler, 'Arn')),
    );
    expect(permissions).toHaveLength(ingestMethods.length + feedbackMethods.length);
    for (const permission of permissions) {
      expect(permission.Properties).toMatchObject({
        Action: 'lambda:InvokeFunction',
        FunctionName: getAtt(ids.handler, 'Arn'),
        Principal: 'apigateway.amazonaws.com',
      });
      expect(permission.Properties.SourceArn).toBeDefined();
    }
  });

  it('throttles the default stage, 1000 rps and 2000 burst unless configured', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 },
    });
    synth({ ingest: { rateLimit: 50, burstLimit: 100 } }).hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('writes JSON access logs, without headers, to a log group with a retention', () => {
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')) as Resource[];
    const settings = stage!.Properties.AccessLogSettings;
    expect(settings.DestinationArn).toEqual(getAtt(ids.accessLogs, 'Arn'));
    expect(resource(ids.accessLogs).Properties.RetentionInDays).toBe(30);
    const format = JSON.parse(settings.Format);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLength: '$context.responseLength',
      integrationErrorMessage: '$context.integrationErrorMessage',
    });
    expect(Object.values(format).filter((variable) => String(variable).includes('header'))).toEqual([]);
    // The caller's IP address and user agent are personal data: only with ingest.requestLogs.
    expect(Object.values(format).filter((variable) => String(variable).includes('$context.identity'))).toEqual([]);
  });

  it("adds the caller's IP address and user agent to the access logs with ingest.requestLogs", () => {
    const [stage] = Object.values(synth({ ingest: { requestLogs: true } }).findResources('AWS::ApiGatewayV2::Stage')) as Resource[];
    expect(JSON.parse(stage!.Properties.AccessLogSettings.Format)).toMatchObject({ requestId: '$context.requestId', ip: '$context.identity.sourceIp', userAgent: '$context.identity.userAgent' });
  });
});

describe('ingest function URL (ingest.functionUrl)', () => {
  it('is not there unless asked for', () => {
    template.resourceCountIs('AWS::Lambda::Url', 0);
    expect(Object.keys(template.toJSON().Outputs)).not.toContain('IngestFunctionUrl');
  });

  it('serves the ingest function without IAM auth or CORS settings (the function checks write keys and answers preflights), capped by its reserved concurrency, with an output', () => {
    const { stack } = buildStack({ config: { ingest: { functionUrl: { reservedConcurrency: 50 } } } });
    const withUrl = Template.fromStack(stack);
    const handler = stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement);
    const urls = Object.values(withUrl.findResources('AWS::Lambda::Url')) as Resource[];
    expect(urls.map((url) => url.Properties)).toEqual([{ AuthType: 'NONE', TargetFunctionArn: getAtt(handler, 'Arn') }]);
    // Anyone may invoke it through the URL, and only through it.
    withUrl.hasResourceProperties('AWS::Lambda::Permission', { Action: 'lambda:InvokeFunctionUrl', FunctionName: getAtt(handler, 'Arn'), Principal: '*', FunctionUrlAuthType: 'NONE' });
    expect(withUrl.toJSON().Resources[handler].Properties.ReservedConcurrentExecutions).toBe(50);
    withUrl.hasOutput('IngestFunctionUrl', { Value: getAtt(Object.keys(withUrl.findResources('AWS::Lambda::Url'))[0]!, 'FunctionUrl') });
    // The HTTP API stays, for what the function URL cannot do (stage throttling, access logs, the lead status route).
    withUrl.hasOutput('IngestUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    // Its 5xx and the function's throttles are alarmed.
    for (const metric of ['Url5xxCount', 'Throttles']) {
      withUrl.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: metric, Dimensions: [{ Name: 'FunctionName', Value: { Ref: handler } }], Threshold: 1 });
    }
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('ingest.functionUrl'));
  });

  it('warns at synth when nothing caps it', () => {
    const { stack } = buildStack({ config: { ingest: { functionUrl: {} } } });
    expect(Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement)].Properties.ReservedConcurrentExecutions).toBeUndefined();
    Annotations.fromStack(stack).hasWarning('/PqlRadar/IngestApi/Handler/Function/FunctionUrl', Match.stringLikeRegexp('ingest.functionUrl has no reservedConcurrency'));
  });
});

describe('ingest role', () => {
  it('is assumed by Lambda and carries no managed or inline policies', () => {
    const role = resource(ids.role);
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
  });

  it('may write its logs, read keys and workspace data by key, write only workspace data, put records on the default ingest buffer, and nothing more', () => {
    const policies = (Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]).filter((policy) =>
      policy.Properties.Roles.some((role: unknown) => JSON.stringify(role) === JSON.stringify({ Ref: ids.role })),
    );
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.Properties.PolicyDocument.Statement;
    expect(statements).toHaveLength(4);
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'firehose:PutRecord', Resource: getAtt(ids.deliveryStream, 'Arn') });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: getAtt(ids.handlerLogGroup, 'Arn'),
    });
    // Spelled out rather than taken from ingestTableAccess, so that widening it cannot slip through.
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
      Resource: getAtt(ids.table, 'Arn'),
      // FEEDBACK_SIGNING_KEY: the key feedback links are signed with, which the bootstrap makes; nothing of META.
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['KEYS', 'WS#*', 'FEEDBACK_SIGNING_KEY'] } },
    });
    // The write keys and the origins item (KEYS) are read-only to ingest: a leaked role cannot mint a key.
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:BatchWriteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: getAtt(ids.table, 'Arn'),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['WS#*'] } },
    });
    expect(ingestTableAccess.write.partitions).toEqual(['WS#*']);
  });
});

describe("feedback links' signing key", () => {
  const { stack } = buildStack();
  const template = Template.fromStack(stack);
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const bootstrap = stack.node.findChild('WriteKeyBootstrap') as WriteKeyBootstrap;
  const notifiers = Object.fromEntries(stack.leadFanout.notifierDestinations.map((destination) => [`${destination.destinationId} notifier`, destination.function]));
  const functions: Record<string, lambda.IFunction> = {
    ingest: stack.ingestApi.handler,
    ...notifiers,
    bootstrap: bootstrap.handler,
    evaluator: stack.evaluator.handler,
    'rule health': stack.ruleHealth.handler,
  };
  const nameOfRole = new Map(Object.entries(functions).map(([name, fn]) => [logicalId(fn.role!), name]));
  const byRole = statementsByRole(template);
  const tableArn = getAtt(logicalId(stack.eventStore.table), 'Arn');
  /** The DynamoDB actions each role of the stack has on the items of `partition`, by function name (else role id). */
  const reaching = (partition: string) =>
    Object.fromEntries(
      [...byRole].flatMap(([role, statements]) => {
        const actions = actionsOnPartition(statements, tableArn, partition);
        return actions.length > 0 ? [[nameOfRole.get(role) ?? role, actions]] : [];
      }),
    );

  it('is reachable by the functions that sign or check links and by the bootstrap that makes it, by no other role', () => {
    expect(Object.keys(notifiers)).toEqual(['sales-slack-1 notifier', 'sales-webhook-1 notifier', 'crm-hubspot-1 notifier']);
    expect(reaching('FEEDBACK_SIGNING_KEY')).toEqual({
      ingest: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
      'sales-slack-1 notifier': ['dynamodb:GetItem'],
      'sales-webhook-1 notifier': ['dynamodb:GetItem'],
      bootstrap: ['dynamodb:PutItem'],
    });
    // Named, as they read META for its other items (shard count, rules progress, backtests) and read the key when it was there.
    for (const name of ['evaluator', 'rule health']) expect(actionsOnPartition(byRole.get(logicalId(functions[name]!.role!))!, tableArn, 'FEEDBACK_SIGNING_KEY')).toEqual([]);
  });

  it('leaves META to the roles that need its other items: ingest and the notifiers no longer reach it', () => {
    expect(Object.keys(reaching('META')).sort()).toEqual(['bootstrap', 'evaluator', 'rule health']);
  });

  it('is read by ingest and the notifiers only once the bootstrap ran: on an upgrade, it moves the key out of META first', () => {
    for (const fn of [stack.ingestApi.handler, ...Object.values(notifiers)]) {
      expect((template.toJSON().Resources[logicalId(fn)] as { DependsOn?: string[] }).DependsOn).toContain(logicalId(bootstrap.resource));
    }
  });
});

describe('outputs', () => {
  it('are the ingest URL and the table name', () => {
    template.hasOutput('IngestUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    template.hasOutput('TableName', { Value: { Ref: ids.table } });
  });

  it('name a route\'s queue and a workspace\'s secret in PascalCase after the prefix, as the README says', () => {
    const { stack } = buildStack({
      config: { writeKeys: [{ workspace: 'default' }, { workspace: 'acme_eu' }], routes: { nurture: [{ type: 'sqs' }], 'high-touch': [{ type: 'sqs' }] } },
    });
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    const queueRef = (route: string) => ({ Ref: stack.getLogicalId(stack.leadFanout.queues[route]!.node.defaultChild as CfnElement) });
    expect(outputs['LeadQueueUrlNurture']?.Value).toEqual(queueRef('nurture'));
    expect(outputs['LeadQueueUrlHighTouch']?.Value).toEqual(queueRef('high-touch'));
    expect(outputs['WriteKeySecretDefault']?.Value).toBe('PqlRadar/write-key/default');
    expect(outputs['WriteKeySecretAcmeEu']?.Value).toBe('PqlRadar/write-key/acme_eu');
    expect(Object.keys(outputs).filter((id) => /^(LeadQueueUrl|WriteKeySecret)/.test(id)).sort()).toEqual([
      'LeadQueueUrlHighTouch',
      'LeadQueueUrlNurture',
      'WriteKeySecretAcmeEu',
      'WriteKeySecretDefault',
    ]);
  });
});

describe('rules file', () => {
  it('is parsed once at synth, by the config loader: the evaluator holds the very ruleset loadConfig read', () => {
    const { config, rulesFile } = loadConfig(join(import.meta.dirname, '../../pql-radar.config.yaml'));
    const stack = new PqlRadarStack(testApp(), 'RulesOnce', { config, rulesFile });
    expect(stack.evaluator.ruleset).toBe(rulesFile.ruleset);
  });
});

describe('lead delivery', () => {
  it('alarms on every dead-letter queue of the fan-out and charts every notifier', () => {
    const { stack } = buildStack();
    const t = Template.fromStack(stack);
    const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const alarmedQueues = (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as Resource[]).flatMap((alarm) =>
      (alarm.Properties.Dimensions ?? []).filter((dimension: { Name: string }) => dimension.Name === 'QueueName').map((dimension: { Value: unknown }) => JSON.stringify(dimension.Value)),
    );
    expect(stack.leadFanout.deadLetterQueues.length).toBeGreaterThan(0);
    for (const { queue } of stack.leadFanout.deadLetterQueues) expect(alarmedQueues).toContain(JSON.stringify(getAtt(logicalId(queue), 'QueueName')));
    // Each notifier: the age of the event it keeps retrying, long before the dead-letter queue hears of it, and its errors.
    const alarms = Object.entries(t.findResources('AWS::CloudWatch::Alarm')) as [string, Resource][];
    const alarmNames = alarms.map(([, alarm]) => alarm.Properties.AlarmName);
    const composites = Object.values(t.findResources('AWS::CloudWatch::CompositeAlarm')) as Resource[];
    expect(stack.leadFanout.notifierDestinations.map(({ destinationId }) => destinationId)).toEqual(['sales-slack-1', 'sales-webhook-1', 'crm-hubspot-1']);
    for (const { destinationId, queue } of stack.leadFanout.notifierDestinations) {
      expect(alarmNames).toContain(`${stack.stackName} delivery failing to ${destinationId}`);
      expect(alarmNames).toContain(`${stack.stackName} notifier errors for ${destinationId}`);
      // Its queue too, unread while the notifier does not run, notified of unless its own destination's failing alarm explains it.
      expect(alarmedQueues).toContain(JSON.stringify(getAtt(logicalId(queue), 'QueueName')));
      const [failingId] = alarms.find(([, alarm]) => alarm.Properties.AlarmName === `${stack.stackName} delivery failing to ${destinationId}`)!;
      const stalled = composites.find((alarm) => alarm.Properties.AlarmName === `${stack.stackName} delivery stalled for ${destinationId}`);
      expect(stalled?.Properties.ActionsSuppressor).toEqual(getAtt(failingId, 'Arn'));
    }
    // The sqs route's queue, which only the user's consumers read.
    expect(alarmedQueues).toContain(JSON.stringify(getAtt(logicalId(stack.leadFanout.queues['nurture']!), 'QueueName')));
    const dashboard = JSON.stringify(Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0]);
    expect(stack.leadFanout.notifiers).toHaveLength(3);
    for (const notifier of stack.leadFanout.notifiers) expect(dashboard).toContain(JSON.stringify({ Ref: logicalId(notifier) }));
  });

  it('records the destinations in the table at deploy, also without write keys', () => {
    for (const writeKeys of [[{ workspace: 'default' }], []]) {
      const { stack } = buildStack({ config: { writeKeys } });
      const [resource] = Object.values(Template.fromStack(stack).findResources('Custom::PqlRadarWriteKeys')) as Resource[];
      expect(resource!.Properties.Workspaces).toEqual(writeKeys.map((key) => key.workspace));
      expect(resource!.Properties.Destinations.map((destination: { id: string }) => destination.id)).toEqual([
        'sales-slack-1',
        'sales-webhook-1',
        'sales-lambda-1',
        'nurture-email-1',
        'nurture-sqs-1',
        'crm-hubspot-1',
      ]);
      expect(resource!.Properties.Destinations).toEqual(stack.resolve(stack.leadFanout.destinations));
    }
  });

  it('passes the delivery settings to the notifiers', () => {
    synth({ delivery: { retryHours: 48, logDays: 7 } }).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ DESTINATION_ID: 'crm-hubspot-1', RETRY_HOURS: '48', DELIVERY_LOG_DAYS: '7' }) },
    });
  });
});

describe('change capture', () => {
  it('feeds the keys of new event and profile items from the table stream to the evaluator, which evaluates them at once', () => {
    const { stack } = buildStack();
    const t = Template.fromStack(stack);
    const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    t.hasResourceProperties('AWS::DynamoDB::GlobalTable', { StreamSpecification: { StreamViewType: 'KEYS_ONLY' } });
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack.evaluator.handler) },
      EventSourceArn: Match.anyValue(),
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 60,
      BisectBatchOnFunctionError: true,
      FilterCriteria: {
        Filters: [
          { Pattern: JSON.stringify({ eventName: ['INSERT', 'MODIFY'], dynamodb: { Keys: { sk: { S: [{ prefix: 'EVT#' }] } } } }) },
          { Pattern: JSON.stringify({ eventName: ['INSERT', 'MODIFY'], dynamodb: { Keys: { sk: { S: ['PROFILE'] } } } }) },
          { Pattern: JSON.stringify({ eventName: ['INSERT'], dynamodb: { Keys: { sk: { S: [{ prefix: 'PROFILE#FEEDBACK#' }] } } } }) },
        ],
      },
    });
    expect(stack.changeCapture.handler).toBe(stack.evaluator.handler);
    // The filter and the predicate bench:cost counts invocations with agree.
    const mapping = Object.values(t.findResources('AWS::Lambda::EventSourceMapping', { Properties: { FunctionName: { Ref: logicalId(stack.evaluator.handler) } } }))[0] as {
      Properties: { FilterCriteria: { Filters: { Pattern: string }[] } };
    };
    const patterns = mapping.Properties.FilterCriteria.Filters.map((filter) => (JSON.parse(filter.Pattern) as { dynamodb: { Keys: { sk: { S: (string | { prefix: string })[] } } } }).dynamodb.Keys.sk.S[0]!);
    const filtered = (sk: string) => patterns.some((pattern) => (typeof pattern === 'string' ? sk === pattern : sk.startsWith(pattern.prefix)));
    for (const sk of ['EVT#2026-01-01#0123', 'PROFILE', 'PROFILE#FEEDBACK#2026-01-01T00:00:00.000Z#f1', 'STATE', 'DAY#2026-01-01', 'PDAY#2026-01-01', 'MEMBER#WS#w#user#u', 'LISTS#0']) {
      expect(filtered(sk), sk).toBe(reachesEvaluator(sk));
    }
  });

  it('gives up on a failing batch after 10 retries or an hour, its place in the stream to an encrypted failure queue alarmed to the topic', () => {
    const { stack } = buildStack();
    const t = Template.fromStack(stack);
    const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
    const queueId = logicalId(stack.changeCapture.failureQueue);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack.evaluator.handler) },
      EventSourceArn: getAtt(logicalId(stack.eventStore.table), 'StreamArn'),
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: getAtt(queueId, 'Arn') } },
    });
    t.hasResourceProperties('AWS::SQS::Queue', { QueueName: Match.absent(), SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
    expect(JSON.stringify(t.toJSON().Resources[queueId].Properties)).not.toContain('QueueName');
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt(queueId, 'QueueName') }],
      AlarmActions: [{ Ref: logicalId(stack.monitoring.alarmTopic) }],
      OKActions: [{ Ref: logicalId(stack.monitoring.alarmTopic) }],
    });
  });
});
