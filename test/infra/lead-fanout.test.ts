import { App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Destination } from '../../lib/config';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { emailInput, hubspotInput, LeadFanout, type LeadFanoutProps } from '../../lib/lead-fanout';
import { acknowledgements, nagFindings, reportValidationErrors } from './nag-report';

type Resource = { Type: string; Properties: Record<string, any> };
type Target = Record<string, any>;

const webhookSecretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pql-radar/webhook-AbCdEf';
const crmSyncArn = 'arn:aws:lambda:eu-west-1:123456789012:function:crm-sync';

/** Every kind of destination, one route with two of a kind and a duplicated e-mail address. */
const routes: Record<string, Destination[]> = {
  sales: [
    { type: 'slack', webhookUrlSecret: 'pql-radar/slack-sales', entityUrlTemplate: 'https://crm.example.com/{type}/{id}' },
    { type: 'hubspot', tokenSecret: 'pql-radar/hubspot', companyIdProperty: 'pql_radar_account_id', requestsPerSecond: 5 },
    { type: 'webhook', url: 'https://hooks.example.com/pql', signingSecret: webhookSecretArn },
    { type: 'email', addresses: ['sales@example.com', 'lead@example.com'] },
    { type: 'sqs' },
    { type: 'lambda', functionArn: crmSyncArn },
  ],
  nurture: [
    { type: 'email', addresses: ['growth@example.com'] },
    { type: 'email', addresses: ['growth@example.com'] },
    { type: 'sqs' },
  ],
};

/** The fan-out in a stack of its own. */
function build(props: Partial<LeadFanoutProps> = {}, context: Record<string, unknown> = {}) {
  const app = new App({ context: { [SKIP_BUNDLING_CONTEXT]: true, ...context } });
  const stack = new Stack(app, 'LeadFanoutTest');
  const fanout = new LeadFanout(stack, 'LeadFanout', { routes, ...props });
  const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  return { app, stack, fanout, logicalId, template: Template.fromStack(stack) };
}

let built: ReturnType<typeof build>;
let template: Template;
const resourcesOf = (type: string, t = template) => t.findResources(type) as Record<string, Resource>;
const getAtt = (logicalId: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [logicalId, attribute] });
const ref = (logicalId: string) => ({ Ref: logicalId });
const idOf = (construct: IConstruct) => built.logicalId(construct);
const child = (...path: string[]) => path.reduce<IConstruct>((scope, id) => scope.node.findChild(id), built.fanout);

/** The rules, each with its logical id, pattern and targets. */
const rules = () =>
  Object.entries(resourcesOf('AWS::Events::Rule')).map(([id, rule]) => ({
    id,
    pattern: rule.Properties.EventPattern,
    targets: rule.Properties.Targets as Target[],
  }));
const routeRule = (route: string) => {
  const found = rules().filter((rule) => JSON.stringify(rule.pattern) === JSON.stringify({ source: ['pql-radar'], detail: { route: [route] } }));
  expect(found).toHaveLength(1);
  return found[0]!;
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
  it('has one rule per route, on the bus, with the route pattern, and one target per destination', () => {
    const bus = ref(idOf(built.fanout.eventBus));
    for (const rule of Object.values(resourcesOf('AWS::Events::Rule'))) expect(rule.Properties.EventBusName).toEqual(bus);
    // sales: the e-mail topic, the queue, two notifiers and the function (HubSpot has rules of its own).
    expect(routeRule('sales').targets).toHaveLength(5);
    expect(routeRule('nurture').targets).toHaveLength(2);
    // The six HubSpot rules (contacts and companies, by lead, disqualified and converted), the two route rules, nothing else.
    expect(rules()).toHaveLength(8);
  });

  it('gives every target a retry policy and a dead-letter queue of its own destination', () => {
    const deadLetterQueueIds = built.fanout.deadLetterQueues.map(idOf);
    const destinationsByQueue = new Map<string, Set<string>>();
    for (const target of rules().flatMap((rule) => rule.targets)) {
      expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 });
      const queueId = target.DeadLetterConfig.Arn['Fn::GetAtt'][0] as string;
      expect(deadLetterQueueIds).toContain(queueId);
      destinationsByQueue.set(queueId, (destinationsByQueue.get(queueId) ?? new Set()).add(JSON.stringify(target.Arn)));
    }
    // Eight destinations (two topics, two queues, two notifiers, the function, HubSpot): eight queues, none shared.
    expect(destinationsByQueue.size).toBe(8);
    for (const destinations of destinationsByQueue.values()) expect(destinations.size).toBe(1);
  });

  it('lets each rule, and only its rules, send to a dead-letter queue: encrypted, TLS only, kept 14 days', () => {
    const queues = resourcesOf('AWS::SQS::Queue');
    const rulesByQueue = new Map<string, string[]>();
    for (const rule of rules()) {
      for (const target of rule.targets) {
        const queueId = target.DeadLetterConfig.Arn['Fn::GetAtt'][0] as string;
        rulesByQueue.set(queueId, [...(rulesByQueue.get(queueId) ?? []), rule.id]);
      }
    }
    for (const [queueId, ruleIds] of rulesByQueue) {
      expect(queues[queueId]!.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
      const statements = queuePolicyOf(queueId);
      expect(statements).toContainEqual({
        Action: 'sqs:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Resource: getAtt(queueId),
      });
      const allowed = statements.filter((statement) => statement.Effect === 'Allow');
      expect(allowed.map((statement) => statement.Condition.ArnEquals['aws:SourceArn']).sort()).toEqual(ruleIds.map((id) => getAtt(id)).sort());
      for (const statement of allowed) {
        expect(statement).toMatchObject({ Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' }, Resource: getAtt(queueId) });
      }
    }
  });

  it('splits a route of more than five targets over several rules, as EventBridge allows five', () => {
    const webhooks = Array.from({ length: 7 }, (_, index) => ({
      type: 'webhook' as const,
      url: `https://hooks.example.com/${index}`,
      signingSecret: 'pql-radar/webhook',
    }));
    const t = build({ routes: { sales: webhooks } }).template;
    const targetCounts = Object.values(resourcesOf('AWS::Events::Rule', t)).map((rule) => {
      expect(rule.Properties.EventPattern).toEqual({ source: ['pql-radar'], detail: { route: ['sales'] } });
      return rule.Properties.Targets.length;
    });
    expect(targetCounts.sort()).toEqual([2, 5]);
  });
});

describe('email destination', () => {
  it('publishes to one KMS-encrypted topic per route, subscribed by each address once', () => {
    const key = idOf(child('TopicKey'));
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    expect(Object.keys(built.fanout.topics).sort()).toEqual(['nurture', 'sales']);
    for (const topic of Object.values(built.fanout.topics)) {
      template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: getAtt(key) });
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
    const target = routeRule('sales').targets.find((candidate) => JSON.stringify(candidate.Arn) === JSON.stringify(ref(sales)))!;
    expect(target.InputTransformer).toEqual({ InputPathsMap: emailInput.inputPathsMap, InputTemplate: emailInput.inputTemplate });
    const topicPolicy = Object.values(resourcesOf('AWS::SNS::TopicPolicy')).find(
      (policy) => JSON.stringify(policy.Properties.Topics) === JSON.stringify([ref(sales)]),
    )!;
    expect(topicPolicy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Action: 'sns:Publish', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Resource: ref(sales) }),
    );
    expect(topicPolicy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Action: 'sns:Publish', Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
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
      expect(built.fanout.deadLetterQueues).toContain(consumerDeadLetterQueue);
      const target = routeRule(route).targets.find((candidate) => JSON.stringify(candidate.Arn) === JSON.stringify(getAtt(queueId)))!;
      expect(target.InputTransformer).toBeUndefined();
      expect(target.Input).toBeUndefined();
      expect(queuePolicyOf(queueId)).toContainEqual({
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Condition: { ArnEquals: { 'aws:SourceArn': getAtt(routeRule(route).id) } },
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: getAtt(queueId),
      });
    }
  });
});

describe('lambda destination', () => {
  it('invokes the existing function, which the rule, and only the rule, may invoke', () => {
    const rule = routeRule('sales');
    expect(rule.targets.filter((target) => target.Arn === crmSyncArn)).toHaveLength(1);
    const permissions = Object.values(resourcesOf('AWS::Lambda::Permission')).filter((permission) => permission.Properties.FunctionName === crmSyncArn);
    expect(permissions.map((permission) => permission.Properties)).toEqual([
      { Action: 'lambda:InvokeFunction', FunctionName: crmSyncArn, Principal: 'events.amazonaws.com', SourceArn: getAtt(rule.id) },
    ]);
  });
});

describe('slack and webhook notifiers', () => {
  const notifier = (kind: string) => {
    const scope = child('sales', kind);
    const fn = scope.node.findChild('Notifier').node.findChild('Function');
    return {
      id: idOf(fn),
      role: idOf(scope.node.findChild('Notifier').node.findChild('Role')),
      logGroup: idOf(scope.node.findChild('Notifier').node.findChild('LogGroup')),
      deadLetterQueue: idOf(scope.node.findChild('DeadLetterQueue')),
    };
  };
  const secretArnByName = (name: string) => ({
    'Fn::Join': ['', ['arn:', ref('AWS::Partition'), ':secretsmanager:', ref('AWS::Region'), ':', ref('AWS::AccountId'), `:secret:${name}`]],
  });

  it('builds one function per destination, with its configuration in the environment', () => {
    expect(built.fanout.notifiers.map(idOf).sort()).toEqual([notifier('Slack1').id, notifier('Webhook1').id].sort());
    const functions = resourcesOf('AWS::Lambda::Function');
    const base = { POWERTOOLS_SERVICE_NAME: 'pql-radar', POWERTOOLS_METRICS_NAMESPACE: 'pql-radar', NODE_OPTIONS: '--enable-source-maps' };
    expect(functions[notifier('Slack1').id]!.Properties.Environment.Variables).toEqual({
      ...base,
      DESTINATION_TYPE: 'slack',
      SECRET_ARN: secretArnByName('pql-radar/slack-sales'),
      ENTITY_URL_TEMPLATE: 'https://crm.example.com/{type}/{id}',
    });
    expect(functions[notifier('Webhook1').id]!.Properties.Environment.Variables).toEqual({
      ...base,
      DESTINATION_TYPE: 'webhook',
      SECRET_ARN: webhookSecretArn,
      WEBHOOK_URL: 'https://hooks.example.com/pql',
    });
    for (const kind of ['Slack1', 'Webhook1']) {
      expect(functions[notifier(kind).id]!.Properties).toMatchObject({ Timeout: 10, Architectures: ['arm64'], Runtime: 'nodejs24.x' });
    }
  });

  it('is invoked asynchronously by the route rule; Lambda retries twice, then sends to the dead-letter queue', () => {
    const rule = routeRule('sales');
    for (const kind of ['Slack1', 'Webhook1']) {
      const { id, deadLetterQueue } = notifier(kind);
      const target = rule.targets.find((candidate) => JSON.stringify(candidate.Arn) === JSON.stringify(getAtt(id)))!;
      expect(target.DeadLetterConfig).toEqual({ Arn: getAtt(deadLetterQueue) });
      expect(target.InputTransformer).toBeUndefined();
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: ref(id),
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 21_600,
        DestinationConfig: { OnFailure: { Destination: getAtt(deadLetterQueue) } },
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: getAtt(id),
        Principal: 'events.amazonaws.com',
        SourceArn: getAtt(rule.id),
      });
    }
  });

  it.each([
    ['Slack1', secretArnByName('pql-radar/slack-sales-??????')],
    ['Webhook1', webhookSecretArn],
  ])('%s may log, read its own secret and fill its dead-letter queue, and nothing more', (kind, secretResource) => {
    const { role, logGroup, deadLetterQueue } = notifier(kind);
    const statements = statementsOf(role);
    expect(statements).toHaveLength(3);
    expect(statements).toContainEqual({ Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(logGroup) });
    expect(statements).toContainEqual({ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretResource });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
      Resource: getAtt(deadLetterQueue),
    });
  });
});

describe('hubspot destination', () => {
  const scope = () => child('sales', 'Hubspot1');
  // Neither the Connection nor the ApiDestination names its CloudFormation resource as a default child.
  const onlyResourceOf = (type: string) => {
    const ids = Object.keys(resourcesOf(type));
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };
  const apiDestination = () => onlyResourceOf('AWS::Events::ApiDestination');
  const hubspotRules = () => rules().filter((rule) => rule.targets.some((target) => JSON.stringify(target.Arn) === JSON.stringify(getAtt(apiDestination()))));

  it('authorizes with a Bearer token resolved from Secrets Manager at deploy time, never written in the template', () => {
    const connections = Object.values(resourcesOf('AWS::Events::Connection'));
    expect(connections).toHaveLength(1);
    expect(connections[0]!.Properties).toMatchObject({
      AuthorizationType: 'API_KEY',
      AuthParameters: {
        ApiKeyAuthParameters: {
          ApiKeyName: 'Authorization',
          ApiKeyValue: 'Bearer {{resolve:secretsmanager:pql-radar/hubspot:SecretString:::}}',
        },
      },
    });
  });

  it('PATCHes HubSpot CRM objects through one rate-limited API destination', () => {
    expect(Object.values(resourcesOf('AWS::Events::ApiDestination')).map((destination) => destination.Properties)).toEqual([
      expect.objectContaining({
        ConnectionArn: getAtt(onlyResourceOf('AWS::Events::Connection')),
        HttpMethod: 'PATCH',
        InvocationEndpoint: 'https://api.hubapi.com/crm/v3/objects/*/*',
        InvocationRateLimitPerSecond: 5,
      }),
    ]);
    const faster = routes['sales']!.map((destination) => (destination.type === 'hubspot' ? { ...destination, requestsPerSecond: 9 } : destination));
    build({ routes: { sales: faster } }).template.hasResourceProperties('AWS::Events::ApiDestination', { InvocationRateLimitPerSecond: 9 });
  });

  it('updates contacts by email for users that have one, companies by their pql-radar id, each transition with its body', () => {
    const deadLetterQueue = getAtt(idOf(scope().node.findChild('DeadLetterQueue')));
    const seen = hubspotRules().map(({ pattern, targets }) => {
      expect(targets).toHaveLength(1);
      const [target] = targets;
      expect(target).toMatchObject({
        RetryPolicy: { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 },
        DeadLetterConfig: { Arn: deadLetterQueue },
        RoleArn: getAtt(idOf(scope().node.findChild('ApiDestination').node.findChild('EventsRole'))),
      });
      const transition = JSON.stringify(pattern['detail-type']) === JSON.stringify(['Lead Disqualified']) ? 'disqualified' : JSON.stringify(pattern['detail-type']) === JSON.stringify(['Lead Converted']) ? 'converted' : 'lead';
      if (transition === 'lead') expect(pattern['detail-type']).toEqual(['Lead Qualified', 'Lead Tier Changed']);
      const body = hubspotInput[transition];
      expect(target!.InputTransformer).toEqual({ InputPathsMap: body.inputPathsMap, InputTemplate: body.inputTemplate });
      return { pattern: { source: pattern.source, detail: pattern.detail }, http: target!.HttpParameters, transition };
    });
    const contact = {
      pattern: { source: ['pql-radar'], detail: { route: ['sales'], entity: { type: ['user'] }, context: { traits: { email: [{ exists: true }] } } } },
      http: { PathParameterValues: ['contacts', '$.detail.context.traits.email'], QueryStringParameters: { idProperty: 'email' } },
    };
    const company = {
      pattern: { source: ['pql-radar'], detail: { route: ['sales'], entity: { type: ['account'] } } },
      http: { PathParameterValues: ['companies', '$.detail.entity.id'], QueryStringParameters: { idProperty: 'pql_radar_account_id' } },
    };
    expect(seen).toHaveLength(6);
    expect(seen).toEqual(
      expect.arrayContaining([
        { ...contact, transition: 'lead' },
        { ...contact, transition: 'disqualified' },
        { ...contact, transition: 'converted' },
        { ...company, transition: 'lead' },
        { ...company, transition: 'disqualified' },
        { ...company, transition: 'converted' },
      ]),
    );
  });

  it('lets EventBridge invoke this API destination and nothing else', () => {
    const role = idOf(scope().node.findChild('ApiDestination').node.findChild('EventsRole'));
    expect(resourcesOf('AWS::IAM::Role')[role]!.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' } },
    ]);
    expect(statementsOf(role)).toEqual([{ Action: 'events:InvokeApiDestination', Effect: 'Allow', Resource: getAtt(apiDestination()) }]);
  });
});

describe('AwsSolutions checks', () => {
  it('find nothing unacknowledged, and the acknowledgements are the reviewed ones', () => {
    const { app } = build({}, reportValidationErrors);
    expect(nagFindings(app)).toEqual([]);

    const acknowledged = acknowledgements(app);
    const prefix = 'LeadFanoutTest/LeadFanout';
    expect(acknowledged.sort()).toEqual(
      [
        ...['sales/Email', 'sales/Queue', 'sales/Slack1', 'sales/Webhook1', 'sales/Lambda1', 'sales/Hubspot1', 'nurture/Email', 'nurture/Queue'].map(
          (destination) => `${prefix}/${destination}/DeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
      ].sort(),
    );
  });
});
