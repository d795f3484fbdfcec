import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { leadEventTypes } from '../../functions/core/lead-event';
import { routesOf } from '../../functions/core/rules/routing';
import { crmSchema, destinationSchema, loadRulesFile, type CrmDestination, type Destination } from '../../lib/config';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import { EventStore } from '../../lib/event-store';
import { emailInput, LeadFanout, type LeadFanoutProps } from '../../lib/lead-fanout';
import type { NotifierDestination } from '../../lib/notifier-destination';
import { acknowledgements, nagFindings, reportValidationErrors } from './nag-report';
import { loadRoutedConfig, testApp, testConfig, testRulesFile } from './synth';

type Resource = { Type: string; Properties: Record<string, any> };
type Target = Record<string, any>;

const webhookSecretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-radar/webhook-AbCdEf';
const crmSyncArn = 'arn:aws:lambda:eu-west-1:123456789012:function:crm-sync';

/** Destinations as the config gives them, with the config's defaults. */
const destination = (input: Record<string, unknown>): Destination => destinationSchema.parse(input);

/** Every kind of destination: two webhooks in one route, two e-mail entries (one address twice), a CRM. */
const routes: Record<string, Destination[]> = {
  sales: [
    destination({ type: 'slack', webhookUrlSecret: 'pql-radar/slack-sales', entityUrlTemplate: 'https://crm.example.com/{type}/{id}' }),
    destination({ type: 'webhook', url: 'https://hooks.example.com/pql', signingSecret: webhookSecretArn }),
    destination({ type: 'email', addresses: ['sales@example.com', 'lead@example.com'] }),
    destination({ type: 'sqs' }),
    destination({ type: 'lambda', functionArn: crmSyncArn }),
    destination({ type: 'webhook', url: 'https://hooks.example.com/other', signingSecret: 'pql-radar/webhook-2', requestsPerSecond: 3 }),
  ],
  nurture: [
    destination({ type: 'email', addresses: ['growth@example.com'] }),
    destination({ type: 'email', addresses: ['growth@example.com'] }),
    destination({ type: 'sqs' }),
  ],
};
const crm: CrmDestination[] = [crmSchema.parse({ type: 'hubspot', tokenSecret: 'pql-radar/hubspot' })];

/** The fan-out in a stack of its own, with the table it logs deliveries in. */
function build(props: Partial<LeadFanoutProps> = {}, context: Record<string, unknown> = {}) {
  const app = testApp(context);
  const stack = new Stack(app, 'LeadFanoutTest');
  const { table } = new EventStore(stack, 'EventStore');
  const fanout = new LeadFanout(stack, 'LeadFanout', { routes, crm, table, ...props });
  const logicalId = (construct: IConstruct) => stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
  return { app, stack, table, fanout, logicalId, template: Template.fromStack(stack) };
}

let built: ReturnType<typeof build>;
let template: Template;
const resourcesOf = (type: string, t = template) => t.findResources(type) as Record<string, Resource>;
const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });
const ref = (logicalId: string) => ({ Ref: logicalId });
const idOf = (construct: IConstruct) => built.logicalId(construct);
const child = (...path: string[]) => path.reduce<IConstruct>((scope, id) => scope.node.findChild(id), built.fanout);

/** The rules, each with its logical id, pattern and targets. */
const rules = (t = template) =>
  Object.entries(resourcesOf('AWS::Events::Rule', t)).map(([id, rule]) => ({
    id,
    pattern: rule.Properties.EventPattern,
    targets: rule.Properties.Targets as Target[],
  }));
/** The rule of one destination, found by the ARN its record gives. */
const ruleOf = (destinationId: string) => {
  const record = built.fanout.destinations.find((candidate) => candidate.id === destinationId);
  expect(record, destinationId).toBeDefined();
  const ruleId = (built.stack.resolve(record!.ruleArn) as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return rules().find((rule) => rule.id === ruleId)!;
};
const onlyTarget = (destinationId: string) => {
  const { targets } = ruleOf(destinationId);
  expect(targets).toHaveLength(1);
  return targets[0]!;
};
const statementsOf = (roleId: string) => {
  const policies = Object.values(resourcesOf('AWS::IAM::Policy')).filter((policy) =>
    policy.Properties.Roles.some((role: unknown) => JSON.stringify(role) === JSON.stringify(ref(roleId))),
  );
  expect(policies).toHaveLength(1);
  return policies[0]!.Properties.PolicyDocument.Statement as unknown[];
};
const queuePolicyOf = (queueId: string) => {
  const policies = Object.values(resourcesOf('AWS::SQS::QueuePolicy')).filter(
    (policy) => JSON.stringify(policy.Properties.Queues) === JSON.stringify([ref(queueId)]),
  );
  expect(policies).toHaveLength(1);
  return policies[0]!.Properties.PolicyDocument.Statement as Record<string, any>[];
};
const tlsOnly = (queueId: string) => ({
  Action: 'sqs:*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
  Effect: 'Deny',
  Principal: { AWS: '*' },
  Resource: getAtt(queueId),
});

const routeIds = ['sales-email-1', 'sales-sqs-1', 'sales-slack-1', 'sales-webhook-1', 'sales-lambda-1', 'sales-webhook-2', 'nurture-email-1', 'nurture-sqs-1'];
const allIds = [...routeIds, 'crm-hubspot-1'];

beforeAll(() => {
  built = build();
  template = built.template;
});

describe('bus and archive', () => {
  it('creates the custom bus <stack name>-leads, or the name given', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'LeadFanoutTest-leads' });
    build({ eventBusName: 'leads-staging' }).template.hasResourceProperties('AWS::Events::EventBus', { Name: 'leads-staging' });
  });

  it('archives the bus’s pql-radar events for 90 days, or the retention given', () => {
    const archives = Object.values(resourcesOf('AWS::Events::Archive'));
    expect(archives).toHaveLength(1);
    expect(archives[0]!.Properties).toMatchObject({
      SourceArn: getAtt(idOf(built.fanout.eventBus)),
      EventPattern: { source: ['pql-radar'] },
      RetentionDays: 90,
    });
    build({ archiveRetention: Duration.days(30) }).template.hasResourceProperties('AWS::Events::Archive', { RetentionDays: 30 });
  });
});

describe('rules', () => {
  it('has one rule per destination, on the bus, each with the one target of its destination', () => {
    expect(built.fanout.destinations.map((record) => record.id).sort()).toEqual([...allIds].sort());
    const bus = ref(idOf(built.fanout.eventBus));
    expect(rules()).toHaveLength(allIds.length);
    for (const rule of Object.values(resourcesOf('AWS::Events::Rule'))) {
      expect(rule.Properties.EventBusName).toEqual(bus);
      expect(rule.Properties.Targets).toHaveLength(1);
    }
    // Each destination's rule is its own: a replay to one (FilterArns) reaches no other.
    expect(new Set(allIds.map((id) => ruleOf(id).id)).size).toBe(allIds.length);
  });

  it('matches the route of a route’s destination', () => {
    for (const id of routeIds) {
      const route = id.split('-')[0];
      expect(ruleOf(id).pattern).toEqual({ source: ['pql-radar'], detail: { route: [route] } });
    }
  });

  it('matches every transition of every user and account lead for a CRM, whatever the route', () => {
    const { pattern } = ruleOf('crm-hubspot-1');
    expect(pattern).toEqual({ source: ['pql-radar'], 'detail-type': [...leadEventTypes], detail: { entity: { type: ['user', 'account'] } } });
    expect(pattern['detail-type']).toEqual(['Lead Qualified', 'Lead Tier Changed', 'Lead Disqualified', 'Lead Converted', 'Lead Feedback']);
    expect(JSON.stringify(pattern)).not.toContain('route');
  });

  it('gives every target EventBridge’s 24 h retry and a standard dead-letter queue of its own destination', () => {
    const deadLetterQueueIds = built.fanout.deadLetterQueues.map(({ queue }) => idOf(queue));
    const queues = resourcesOf('AWS::SQS::Queue');
    const seen = new Set<string>();
    for (const id of allIds) {
      const target = onlyTarget(id);
      expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 });
      const queueId = target.DeadLetterConfig.Arn['Fn::GetAtt'][0] as string;
      expect(deadLetterQueueIds).toContain(queueId);
      // An EventBridge dead-letter queue cannot be FIFO.
      expect(queues[queueId]!.Properties.FifoQueue).toBeUndefined();
      seen.add(queueId);
    }
    expect(seen.size).toBe(allIds.length);
  });

  it('lets each rule, and only its rule, send to its target’s dead-letter queue: encrypted, TLS only, kept 14 days', () => {
    const queues = resourcesOf('AWS::SQS::Queue');
    for (const id of allIds) {
      const rule = ruleOf(id);
      const queueId = rule.targets[0]!.DeadLetterConfig.Arn['Fn::GetAtt'][0] as string;
      expect(queues[queueId]!.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
      const statements = queuePolicyOf(queueId);
      expect(statements).toContainEqual(tlsOnly(queueId));
      const allowed = statements.filter((statement) => statement.Effect === 'Allow');
      expect(allowed).toHaveLength(1);
      expect(allowed[0]).toMatchObject({
        Action: 'sqs:SendMessage',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: getAtt(queueId),
        Condition: { ArnEquals: { 'aws:SourceArn': getAtt(rule.id) } },
      });
    }
  });

  it('takes another retry policy for the targets', () => {
    const t = build({ maxEventAge: Duration.hours(2), retryAttempts: 10 }).template;
    for (const rule of rules(t)) expect(rule.targets[0]!.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 7200, MaximumRetryAttempts: 10 });
  });
});

describe('email destination', () => {
  it('publishes to one KMS-encrypted topic per route, subscribed by each address once', () => {
    const key = idOf(child('TopicKey'));
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    expect(Object.keys(built.fanout.topics).sort()).toEqual(['nurture', 'sales']);
    for (const topic of Object.values(built.fanout.topics)) {
      expect(resourcesOf('AWS::SNS::Topic')[idOf(topic)]!.Properties.KmsMasterKeyId).toEqual(getAtt(key));
    }
    const subscriptions = Object.values(resourcesOf('AWS::SNS::Subscription')).map((subscription) => [
      subscription.Properties.TopicArn.Ref,
      subscription.Properties.Protocol,
      subscription.Properties.Endpoint,
    ]);
    const sales = idOf(built.fanout.topics['sales']!);
    const nurture = idOf(built.fanout.topics['nurture']!);
    expect(subscriptions.sort()).toEqual(
      [
        [sales, 'email', 'sales@example.com'],
        [sales, 'email', 'lead@example.com'],
        [nurture, 'email', 'growth@example.com'],
      ].sort(),
    );
  });

  it('sends the readable text of the input transformer, and EventBridge may publish and use the key', () => {
    const sales = idOf(built.fanout.topics['sales']!);
    const target = onlyTarget('sales-email-1');
    expect(target.Arn).toEqual(ref(sales));
    expect(target.InputTransformer).toEqual({ InputPathsMap: emailInput.inputPathsMap, InputTemplate: emailInput.inputTemplate });
    template.resourceCountIs('AWS::SNS::TopicPolicy', 2);
    for (const route of ['sales', 'nurture']) {
      const topic = idOf(built.fanout.topics[route]!);
      const topicPolicy = Object.values(resourcesOf('AWS::SNS::TopicPolicy')).find(
        (policy) => JSON.stringify(policy.Properties.Topics) === JSON.stringify([ref(topic)]),
      )!;
      const statements = (topicPolicy.Properties.PolicyDocument.Statement as Record<string, unknown>[]).map(({ Sid: _sid, ...statement }) => statement);
      // Only the route's e-mail rule may publish: aws:SourceArn keeps EventBridge from publishing for any other rule.
      expect(statements).toEqual([
        { Action: 'sns:Publish', Effect: 'Deny', Principal: '*', Resource: ref(topic), Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
        {
          Action: 'sns:Publish',
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Resource: ref(topic),
          Condition: { ArnEquals: { 'aws:SourceArn': getAtt(ruleOf(`${route}-email-1`).id) } },
        },
      ]);
    }
    const [key] = Object.values(resourcesOf('AWS::KMS::Key'));
    expect(key!.Properties.KeyPolicy.Statement).toContainEqual({
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Resource: '*',
    });
  });
});

describe('sqs destination', () => {
  it('sends the whole event to a queue per route, encrypted, TLS only, with a redrive queue', () => {
    expect(Object.keys(built.fanout.queues).sort()).toEqual(['nurture', 'sales']);
    for (const [route, queue] of Object.entries(built.fanout.queues)) {
      const queueId = idOf(queue);
      const consumerDeadLetterQueue = child(route, 'Queue', 'ConsumerDeadLetterQueue');
      expect(resourcesOf('AWS::SQS::Queue')[queueId]!.Properties).toEqual({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1_209_600,
        RedrivePolicy: { deadLetterTargetArn: getAtt(idOf(consumerDeadLetterQueue)), maxReceiveCount: 5 },
      });
      // Recovered by the user's consumer, not by pql-radar: the alarm says how.
      expect(built.fanout.deadLetterQueues).toContainEqual({ queue: consumerDeadLetterQueue, advice: expect.stringContaining('aws sqs start-message-move-task') });
      const target = onlyTarget(`${route}-sqs-1`);
      expect(target.Arn).toEqual(getAtt(queueId));
      expect(target.InputTransformer).toBeUndefined();
      expect(target.Input).toBeUndefined();
      expect(target.SqsParameters).toBeUndefined();
      expect(queuePolicyOf(queueId)).toContainEqual({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Condition: { ArnEquals: { 'aws:SourceArn': getAtt(ruleOf(`${route}-sqs-1`).id) } },
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: getAtt(queueId),
      });
    }
  });
});

describe('lambda destination', () => {
  it('invokes the existing function, which its rule, and only its rule, may invoke', () => {
    expect(onlyTarget('sales-lambda-1').Arn).toBe(crmSyncArn);
    const permissions = Object.values(resourcesOf('AWS::Lambda::Permission')).filter((permission) => permission.Properties.FunctionName === crmSyncArn);
    expect(permissions.map((permission) => permission.Properties)).toEqual([
      { Action: 'lambda:InvokeFunction', FunctionName: crmSyncArn, Principal: 'events.amazonaws.com', SourceArn: getAtt(ruleOf('sales-lambda-1').id) },
    ]);
  });
});

describe('lambda destination in another account or region', () => {
  const notSame = (dimension: string, value: string, stackIn: string) =>
    `routes.sales: the lambda destination ${crmSyncArn} is in ${dimension} ${value}, the stack in ${stackIn}: EventBridge invokes functions of its own account and region`;
  /** The template's rules but CDK's bootstrap version check. */
  const templateRules = (t: Template) => {
    const { CheckBootstrapVersion: _bootstrap, ...others } = (t.toJSON().Rules ?? {}) as Record<string, unknown>;
    return others;
  };
  /** A fan-out with the lambda destination alone, in a stack of the given environment. */
  const fanoutIn = (env: { account?: string; region?: string }) => {
    const stack = new Stack(testApp(), 'LeadFanoutElsewhere', { env });
    const { table } = new EventStore(stack, 'EventStore');
    new LeadFanout(stack, 'LeadFanout', { routes: { sales: [destination({ type: 'lambda', functionArn: crmSyncArn })] }, crm: [], table });
    return Template.fromStack(stack);
  };

  it("is refused at deploy, before any resource, where the stack's environment is known at deploy only (bin/app.ts)", () => {
    expect(Annotations.fromStack(built.stack).findWarning('*', Match.stringLikeRegexp('unresolved environment'))).toEqual([]);
    expect(templateRules(template)).toEqual({
      [idOf(child('sales', 'Lambda1', 'SameEnvironment'))]: {
        Assertions: [
          { Assert: { 'Fn::Equals': [ref('AWS::Region'), 'eu-west-1'] }, AssertDescription: notSame('region', 'eu-west-1', 'another region') },
          { Assert: { 'Fn::Equals': [ref('AWS::AccountId'), '123456789012'] }, AssertDescription: notSame('account', '123456789012', 'another account') },
        ],
      },
    });
  });

  it('fails the synth where the stack is known to be elsewhere, and is checked at deploy for what the stack does not know', () => {
    expect(() => fanoutIn({ account: '123456789012', region: 'us-east-1' })).toThrow(notSame('region', 'eu-west-1', 'us-east-1'));
    expect(() => fanoutIn({ account: '210987654321', region: 'eu-west-1' })).toThrow(notSame('account', '123456789012', '210987654321'));
    expect(() => fanoutIn({ account: '210987654321' })).toThrow(notSame('account', '123456789012', '210987654321'));
    expect(Object.values(templateRules(fanoutIn({ region: 'eu-west-1' })))).toEqual([
      { Assertions: [{ Assert: { 'Fn::Equals': [ref('AWS::AccountId'), '123456789012'] }, AssertDescription: notSame('account', '123456789012', 'another account') }] },
    ]);
  });

  it('adds no template rule where the stack is known to be in the function\'s account and region', () => {
    expect(templateRules(fanoutIn({ account: '123456789012', region: 'eu-west-1' }))).toEqual({});
  });

  it('synthesizes every destination in a stack of fixed account and region without a warning', () => {
    const stack = new PqlRadarStack(testApp(), 'PqlRadarFixed', { env: { account: '123456789012', region: 'us-east-1' }, config: testConfig(), rulesFile: loadRulesFile(testRulesFile) });
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });
});

describe('slack, webhook and hubspot notifiers', () => {
  const notifiers: Record<string, string[]> = {
    'sales-slack-1': ['sales', 'Slack1'],
    'sales-webhook-1': ['sales', 'Webhook1'],
    'sales-webhook-2': ['sales', 'Webhook2'],
    'crm-hubspot-1': ['Crm', 'Hubspot1'],
  };
  const notifier = (destinationId: string) => {
    const scope = child(...notifiers[destinationId]!) as NotifierDestination;
    const lambdaFunction = scope.node.findChild('Notifier');
    return {
      scope,
      id: idOf(scope.function),
      role: idOf(lambdaFunction.node.findChild('Role')),
      logGroup: idOf(lambdaFunction.node.findChild('LogGroup')),
      queue: idOf(scope.queue),
      deadLetterQueue: idOf(scope.deadLetterQueue),
      targetDeadLetterQueue: idOf(scope.targetDeadLetterQueue),
    };
  };
  const secretArnByName = (name: string) => ({
    'Fn::Join': ['', ['arn:', ref('AWS::Partition'), ':secretsmanager:', ref('AWS::Region'), ':', ref('AWS::AccountId'), `:secret:${name}`]],
  });

  it('has one notifier per slack, webhook and CRM destination, and no API destination', () => {
    expect(built.fanout.notifiers.map(idOf).sort()).toEqual(Object.keys(notifiers).map((id) => notifier(id).id).sort());
    expect(built.fanout.notifierDestinations.map((destination) => destination.node.path.split('/').slice(-2).join('/')).sort()).toEqual(
      ['Crm/Hubspot1', 'sales/Slack1', 'sales/Webhook1', 'sales/Webhook2'],
    );
    template.resourceCountIs('AWS::Events::ApiDestination', 0);
    template.resourceCountIs('AWS::Events::Connection', 0);
  });

  it.each(Object.keys(notifiers))('%s: the rule puts each event into a FIFO delivery queue, one message group for the destination', (destinationId) => {
    const { queue, deadLetterQueue, targetDeadLetterQueue } = notifier(destinationId);
    const target = onlyTarget(destinationId);
    expect(target.Arn).toEqual(getAtt(queue));
    expect(target.SqsParameters).toEqual({ MessageGroupId: destinationId });
    expect(target.DeadLetterConfig).toEqual({ Arn: getAtt(targetDeadLetterQueue) });
    expect(target.InputTransformer).toBeUndefined();

    const queues = resourcesOf('AWS::SQS::Queue');
    expect(queues[queue]!.Properties).toEqual({
      FifoQueue: true,
      ContentBasedDeduplication: true,
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
      // At least six times the function's timeout, as Lambda advises.
      VisibilityTimeout: 360,
      // A safety net only: the notifier dead-letters once the retry window has passed.
      RedrivePolicy: { deadLetterTargetArn: getAtt(deadLetterQueue), maxReceiveCount: 1000 },
    });
    expect(queues[deadLetterQueue]!.Properties).toEqual({ FifoQueue: true, ContentBasedDeduplication: true, SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    const functionTimeout = resourcesOf('AWS::Lambda::Function')[notifier(destinationId).id]!.Properties.Timeout as number;
    expect(queues[queue]!.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * functionTimeout);

    const statements = queuePolicyOf(queue);
    expect(statements).toContainEqual(tlsOnly(queue));
    expect(statements.filter((statement) => statement.Effect === 'Allow')).toEqual([
      {
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Condition: { ArnEquals: { 'aws:SourceArn': getAtt(ruleOf(destinationId).id) } },
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: getAtt(queue),
      },
    ]);
    // Nobody but the notifier (through its role) sends to the FIFO dead-letter queue: TLS only, no grant.
    expect(queuePolicyOf(deadLetterQueue)).toEqual([tlsOnly(deadLetterQueue)]);
  });

  it.each(Object.keys(notifiers))('%s: the notifier drains the queue in batches of ten and reports the messages it did not deliver', (destinationId) => {
    const { id, queue } = notifier(destinationId);
    const mappings = Object.values(resourcesOf('AWS::Lambda::EventSourceMapping')).filter((mapping) => JSON.stringify(mapping.Properties.FunctionName) === JSON.stringify(ref(id)));
    expect(mappings.map((mapping) => mapping.Properties)).toEqual([
      { FunctionName: ref(id), EventSourceArn: getAtt(queue), BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] },
    ]);
    const props = resourcesOf('AWS::Lambda::Function')[id]!.Properties;
    expect(props).toMatchObject({ Timeout: 60, MemorySize: 128, Architectures: ['arm64'], Runtime: 'nodejs24.x' });
    expect(props.ReservedConcurrentExecutions).toBeUndefined();
    // Invoked by the event source mapping only: no asynchronous invocations, no permission for EventBridge.
    template.resourcePropertiesCountIs('AWS::Lambda::EventInvokeConfig', { FunctionName: ref(id) }, 0);
    template.resourcePropertiesCountIs('AWS::Lambda::Permission', { FunctionName: getAtt(id) }, 0);
  });

  it('configures each notifier through its environment', () => {
    const functions = resourcesOf('AWS::Lambda::Function');
    const environment = (destinationId: string) => functions[notifier(destinationId).id]!.Properties.Environment.Variables;
    const common = (destinationId: string, kind: string, secret: unknown, requestsPerSecond: string) => ({
      POWERTOOLS_SERVICE_NAME: 'pql-radar',
      POWERTOOLS_METRICS_NAMESPACE: 'pql-radar',
      NODE_OPTIONS: '--enable-source-maps',
      TABLE_NAME: ref(idOf(built.table)),
      DESTINATION_ID: destinationId,
      DESTINATION_KIND: kind,
      SECRET_ID: secret,
      REQUESTS_PER_SECOND: requestsPerSecond,
      RETRY_HOURS: '24',
      DELIVERY_LOG_DAYS: '14',
      QUEUE_URL: ref(notifier(destinationId).queue),
      DEAD_LETTER_QUEUE_URL: ref(notifier(destinationId).deadLetterQueue),
    });
    expect(environment('sales-slack-1')).toEqual({
      ...common('sales-slack-1', 'slack', 'pql-radar/slack-sales', '1'),
      ENTITY_URL_TEMPLATE: 'https://crm.example.com/{type}/{id}',
    });
    expect(environment('sales-webhook-1')).toEqual({
      ...common('sales-webhook-1', 'webhook', webhookSecretArn, '10'),
      WEBHOOK_URL: 'https://hooks.example.com/pql',
    });
    expect(environment('sales-webhook-2')).toEqual({
      ...common('sales-webhook-2', 'webhook', 'pql-radar/webhook-2', '3'),
      WEBHOOK_URL: 'https://hooks.example.com/other',
    });
    expect(environment('crm-hubspot-1')).toEqual({
      ...common('crm-hubspot-1', 'hubspot', 'pql-radar/hubspot', '5'),
      COMPANY_ID_PROPERTY: 'pql_radar_account_id',
    });
  });

  it('passes the retry window and the days of the delivery log', () => {
    const other = build({ retryHours: 72, deliveryLogDays: 30 });
    for (const fn of other.fanout.notifiers) {
      const variables = (other.template.toJSON().Resources[other.logicalId(fn)] as Resource).Properties.Environment.Variables;
      expect(variables).toMatchObject({ RETRY_HOURS: '72', DELIVERY_LOG_DAYS: '30' });
    }
  });

  it.each([
    ['sales-slack-1', secretArnByName('pql-radar/slack-sales-??????')],
    ['sales-webhook-1', webhookSecretArn],
    ['crm-hubspot-1', secretArnByName('pql-radar/hubspot-??????')],
  ])('%s may log, consume its queue, read its secret, dead-letter and log deliveries, and nothing more', (destinationId, secretResource) => {
    const { role, logGroup, queue, deadLetterQueue } = notifier(destinationId);
    const statements = statementsOf(role);
    expect(statements).toHaveLength(5);
    expect(statements).toContainEqual({ Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(logGroup) });
    // The event source mapping's grant, which includes hiding a message for a backoff.
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
      Resource: getAtt(queue),
    });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretResource });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: getAtt(deadLetterQueue) });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'],
      Resource: getAtt(idOf(built.table)),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['DELIVERIES#*', 'DELIVERED#*'] } },
    });
  });

  it('reads a secret given by name by that name, also one ending like a suffix, which its partial ARN would be taken for', () => {
    const named = build({ routes: { sales: [destination({ type: 'slack', webhookUrlSecret: 'pql-radar/slack-growth' })] }, crm: [] });
    const [slack] = named.fanout.notifierDestinations;
    const props = (named.template.toJSON().Resources[named.logicalId(slack!.function)] as Resource).Properties;
    expect(props.Environment.Variables.SECRET_ID).toBe('pql-radar/slack-growth');
    const statements = Object.values(resourcesOf('AWS::IAM::Policy', named.template)).flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArnByName('pql-radar/slack-growth-??????') });
  });

  it('reads a secret given by partial ARN (without the suffix Secrets Manager adds) by that ARN, whatever its suffix', () => {
    const partialArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-radar/slack';
    const partial = build({ routes: { sales: [destination({ type: 'slack', webhookUrlSecret: partialArn })] }, crm: [] });
    const [slack] = partial.fanout.notifierDestinations;
    const props = (partial.template.toJSON().Resources[partial.logicalId(slack!.function)] as Resource).Properties;
    expect(props.Environment.Variables.SECRET_ID).toBe(partialArn);
    const statements = Object.values(resourcesOf('AWS::IAM::Policy', partial.template)).flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: `${partialArn}-??????` });
  });

  it('exposes every dead-letter queue for the alarms, each with how it is recovered: a notifier’s FIFO one and its target’s', () => {
    const adviceOf = (queue: IConstruct) => built.fanout.deadLetterQueues.find((each) => each.queue === queue)?.advice;
    for (const destinationId of Object.keys(notifiers)) {
      const { scope } = notifier(destinationId);
      expect(adviceOf(scope.deadLetterQueue)).toContain(`\`pql-radar dlq redrive ${destinationId}\``);
      // What the bus could not queue never reached the notifier: replayed from the archive, not redriven.
      expect(adviceOf(scope.targetDeadLetterQueue)).toContain(`\`pql-radar destinations replay ${destinationId} --from`);
      expect(adviceOf(scope.targetDeadLetterQueue)).not.toContain('dlq redrive');
    }
    for (const id of allIds) {
      const queueId = onlyTarget(id).DeadLetterConfig.Arn['Fn::GetAtt'][0];
      expect(built.fanout.deadLetterQueues.find(({ queue }) => idOf(queue) === queueId)?.advice).toContain(`pql-radar destinations replay ${id} --from`);
    }
    // Per destination: the target's (9), the notifiers' FIFO ones (4), the sqs redrive queues (2).
    expect(built.fanout.deadLetterQueues).toHaveLength(allIds.length + Object.keys(notifiers).length + 2);
    expect(new Set(built.fanout.deadLetterQueues.map(({ queue }) => queue)).size).toBe(built.fanout.deadLetterQueues.length);
  });
});

describe('destination records', () => {
  it('give the CLI each destination’s rule, bus, archive and queues', () => {
    const bus = ref(idOf(built.fanout.eventBus));
    const archive = getAtt(idOf(built.fanout.archive));
    const byId = Object.fromEntries(built.fanout.destinations.map((record) => [record.id, JSON.parse(JSON.stringify(built.stack.resolve(record)))]));
    const targetDeadLetterQueue = (destinationId: string) => ruleOf(destinationId).targets[0]!.DeadLetterConfig.Arn['Fn::GetAtt'][0] as string;

    for (const destinationId of Object.keys(byId)) {
      expect(byId[destinationId]).toMatchObject({ id: destinationId, transport: 'sqs', ruleArn: getAtt(ruleOf(destinationId).id), eventBusName: bus, archiveArn: archive });
    }
    const slack = queuesOf('Slack1');
    const slackTarget = idOf((child('sales', 'Slack1') as NotifierDestination).targetDeadLetterQueue);
    expect(byId['sales-slack-1']).toEqual({
      id: 'sales-slack-1',
      kind: 'slack',
      route: 'sales',
      transport: 'sqs',
      ruleArn: getAtt(ruleOf('sales-slack-1').id),
      eventBusName: bus,
      archiveArn: archive,
      queueUrl: ref(slack.queue),
      queueArn: getAtt(slack.queue),
      deadLetterQueueUrl: ref(slack.deadLetterQueue),
      deadLetterQueueArn: getAtt(slack.deadLetterQueue),
      // What `dlq list` counts besides: events the bus could not put on the delivery queue.
      targetDeadLetterQueueUrl: ref(slackTarget),
    });
    expect(byId['crm-hubspot-1']).toMatchObject({ kind: 'hubspot', route: '*', queueUrl: ref(queuesOf('Crm', 'Hubspot1').queue) });
    for (const destinationId of ['sales-email-1', 'sales-sqs-1', 'sales-lambda-1', 'nurture-email-1', 'nurture-sqs-1']) {
      const deadLetterQueue = targetDeadLetterQueue(destinationId);
      expect(byId[destinationId].queueUrl).toBeUndefined();
      expect(byId[destinationId]).toMatchObject({
        kind: destinationId.split('-')[1],
        route: destinationId.split('-')[0],
        deadLetterQueueUrl: ref(deadLetterQueue),
        deadLetterQueueArn: getAtt(deadLetterQueue),
      });
    }
  });

  /** A notifier's queues, by its construct path under the fan-out (sales/<id> unless given in full). */
  function queuesOf(...path: string[]) {
    const scope = child(...(path.length === 1 ? ['sales', ...path] : path)) as NotifierDestination;
    return { queue: idOf(scope.queue), deadLetterQueue: idOf(scope.deadLetterQueue) };
  }

  it('count per route and kind from 1, in config order, and CRMs as crm-hubspot-<n>', () => {
    const two = build({
      routes: { sales: [destination({ type: 'slack', webhookUrlSecret: 'a' }), destination({ type: 'slack', webhookUrlSecret: 'b' })], nurture: [destination({ type: 'slack', webhookUrlSecret: 'c' })] },
      crm: [crm[0]!, { ...crm[0]!, tokenSecret: 'pql-radar/hubspot-2' }],
    });
    expect(two.fanout.destinations.map((record) => record.id)).toEqual(['sales-slack-1', 'sales-slack-2', 'nurture-slack-1', 'crm-hubspot-1', 'crm-hubspot-2']);
  });

  it('are none without routes or CRMs: the bus and the archive alone', () => {
    const bare = build({ routes: {}, crm: [] });
    expect(bare.fanout.destinations).toEqual([]);
    bare.template.resourceCountIs('AWS::Events::Rule', 0);
    bare.template.resourceCountIs('AWS::SQS::Queue', 0);
  });
});

describe('a tier routing by a trait', () => {
  it('gets an EventBridge rule for every route of its map and its default, each matching its route', () => {
    const { config, rulesFile } = loadRoutedConfig(['sales-emea', 'sales-us', 'sales', 'nurture'])();
    const routed = build({ routes: config.routes, crm: [] });
    const tierRoutes = rulesFile.ruleset.file.tiers.flatMap((tier) => routesOf(tier.route));
    expect(tierRoutes.sort()).toEqual(['nurture', 'sales', 'sales-emea', 'sales-us']);
    const patterns = rules(routed.template).map((rule) => rule.pattern);
    expect(patterns).toHaveLength(tierRoutes.length);
    for (const route of tierRoutes) expect(patterns).toContainEqual({ source: ['pql-radar'], detail: { route: [route] } });
  });
});

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged, and the acknowledgements are the reviewed ones', () => {
    const { app } = build({}, reportValidationErrors);
    expect(nagFindings(app)).toEqual([]);

    const prefix = 'LeadFanoutTest/LeadFanout';
    expect(acknowledgements(app).sort()).toEqual(
      [
        ...['sales/Email', 'sales/Queue', 'sales/Lambda1', 'nurture/Email', 'nurture/Queue'].map(
          (destination) => `${prefix}/${destination}/DeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
        ...['sales/Slack1', 'sales/Webhook1', 'sales/Webhook2', 'Crm/Hubspot1'].map(
          (destination) => `${prefix}/${destination}/TargetDeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
      ].sort(),
    );
  });
});
