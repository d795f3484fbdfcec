import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { metricNames } from '../../functions/shared/settings';
import { EventStore } from '../../lib/event-store';
import { IngestApi } from '../../lib/ingest-api';
import { LambdaFunction, SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { listPrices } from '../../lib/list-prices';
import { customMetricDimensions, customMetricNamespace, Monitoring, type MonitoringProps } from '../../lib/monitoring';
import { nagFindings, reportValidationErrors } from './nag-report';

type Resource = { Type: string; Properties: Record<string, any> };

/** A small stack with what Monitoring watches: the ingest API, an evaluator, a queue with its dead-letter queue. */
function build(props: Partial<MonitoringProps> | ((stack: Stack) => Partial<MonitoringProps>) = {}, context: Record<string, unknown> = {}) {
  const app = new App({ context: { [SKIP_BUNDLING_CONTEXT]: true, ...context } });
  const stack = new Stack(app, 'Watched');
  const eventStore = new EventStore(stack, 'EventStore');
  const { table } = eventStore;
  const ingestApi = new IngestApi(stack, 'IngestApi', { table });
  const evaluator = new LambdaFunction(stack, 'Evaluator', { entry: 'functions/evaluator/handler.ts' }).function;
  const deadLetterQueue = new sqs.Queue(stack, 'DeadLetterQueue', { enforceSSL: true });
  new sqs.Queue(stack, 'Work', { enforceSSL: true, deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 3 } });
  const monitoring = new Monitoring(stack, 'Monitoring', {
    ingestApi,
    evaluator,
    deadLetterQueues: [{ queue: deadLetterQueue, advice: 'Redrive it with `pql-radar dlq redrive sales-slack-1`.' }],
    functions: [ingestApi.handler, evaluator],
    table: eventStore,
    alarmEmails: ['ops@example.com', 'oncall@example.com'],
    ...(typeof props === 'function' ? props(stack) : props),
  });
  return { app, stack, ingestApi, evaluator, deadLetterQueue, monitoring };
}

let built: ReturnType<typeof build>;
let template: Template;
const logicalId = (construct: IConstruct) => built.stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnElement);
const resource = (id: string): Resource => template.toJSON().Resources[id];
const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) });

beforeAll(() => {
  built = build();
  template = Template.fromStack(built.stack);
});

describe('alarm topic', () => {
  it('is encrypted with a rotated customer managed key that CloudWatch may use, and nobody else but the account', () => {
    const topic = resource(logicalId(built.monitoring.alarmTopic));
    const keyId = logicalId(built.monitoring.topicKey);
    expect(topic.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
    const key = resource(keyId);
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toHaveLength(2);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
    });
    expect(key.Properties.KeyPolicy.Statement[0].Principal.AWS['Fn::Join'][1]).toContain(':root');
  });

  it('accepts publishing over TLS only, from this account\'s CloudWatch alarms', () => {
    const [policy] = Object.values(template.findResources('AWS::SNS::TopicPolicy')) as Resource[];
    expect(policy!.Properties.Topics).toEqual([ref(built.monitoring.alarmTopic)]);
    const statements = policy!.Properties.PolicyDocument.Statement;
    expect(statements).toHaveLength(2);
    expect(statements).toContainEqual({
      Sid: 'AllowPublishThroughSSLOnly',
      Effect: 'Deny',
      Principal: '*',
      Action: 'sns:Publish',
      Resource: ref(built.monitoring.alarmTopic),
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    expect(statements).toContainEqual({
      Sid: '1',
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Resource: ref(built.monitoring.alarmTopic),
      Condition: {
        ArnLike: {
          'aws:SourceArn': {
            'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:*']],
          },
        },
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      },
    });
  });

  it('has one e-mail subscription per address, and none without addresses', () => {
    const subscriptions = Object.values(template.findResources('AWS::SNS::Subscription')) as Resource[];
    expect(subscriptions.map((subscription) => subscription.Properties)).toEqual(
      ['ops@example.com', 'oncall@example.com'].map((email) => ({ Protocol: 'email', Endpoint: email, TopicArn: ref(built.monitoring.alarmTopic) })),
    );
    Template.fromStack(build({ alarmEmails: [] }).stack).resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('alarms', () => {
  const alarm = (id: string) => resource(logicalId(built.monitoring.node.findChild(id)));
  const common = (threshold: number, comparison: string, treatMissingData: string) => ({
    Threshold: threshold,
    ComparisonOperator: comparison,
    TreatMissingData: treatMissingData,
    AlarmActions: [ref(built.monitoring.alarmTopic)],
    OKActions: [ref(built.monitoring.alarmTopic)],
  });

  it('are exactly one per dead-letter queue plus six, all notifying the topic on ALARM and on OK', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 7);
    expect(built.monitoring.alarms).toHaveLength(7);
    for (const each of Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[]) {
      expect(each.Properties.AlarmActions).toEqual([ref(built.monitoring.alarmTopic)]);
      expect(each.Properties.OKActions).toEqual([ref(built.monitoring.alarmTopic)]);
      expect(each.Properties.AlarmName).toMatch(/^Watched /);
      expect(each.Properties.AlarmDescription.length).toBeGreaterThan(40);
    }
  });

  it('fire on the first message in a dead-letter queue; an idle queue reports no data, which is no message', () => {
    expect(alarm('DeadLetters-DeadLetterQueue').Properties).toEqual({
      AlarmName: 'Watched dead letters in DeadLetterQueue',
      AlarmDescription: expect.stringContaining('dead-letter queue DeadLetterQueue'),
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(built.deadLetterQueue), 'QueueName'] } }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      ...common(1, 'GreaterThanOrEqualToThreshold', 'notBreaching'),
    });
  });

  it("say a schedule's dead letters need no redrive, and a destination's how to redrive them", () => {
    const withSchedule = build((stack) => ({ scheduleDeadLetterQueues: [new sqs.Queue(stack, 'ScheduleDeadLetters', { enforceSSL: true })] }));
    const alarms = Template.fromStack(withSchedule.stack).findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>;
    const described = (name: string) => Object.values(alarms).find((each) => each.Properties.AlarmName === name)!.Properties.AlarmDescription as string;
    expect(described('Watched dead letters in ScheduleDeadLetters')).toContain('There is nothing to redrive: the next scheduled run does the missed one\'s work');
    expect(described('Watched dead letters in ScheduleDeadLetters')).not.toContain('dlq redrive');
    // A destination's alarm says what its queue's advice says.
    expect(described('Watched dead letters in DeadLetterQueue')).toBe('A message is waiting in the dead-letter queue DeadLetterQueue. Redrive it with `pql-radar dlq redrive sales-slack-1`.');
  });

  it("fire when a destination's waiting lead event has waited an hour (or the threshold given), as its notifier reports it, or unread in its queue, and on the notifier's errors", () => {
    let notifier: lambda.IFunction | undefined;
    let deliveryQueue: sqs.Queue | undefined;
    const withNotifier = build((stack) => {
      notifier = new LambdaFunction(stack, 'Notifier', { entry: 'functions/notifier/handler.ts' }).function;
      deliveryQueue = new sqs.Queue(stack, 'DeliveryQueue', { enforceSSL: true, fifo: true });
      return { notifiers: [{ destinationId: 'sales-webhook-1', function: notifier, queue: deliveryQueue }], deliveryDelayThreshold: Duration.minutes(30) };
    });
    const notifierTemplate = Template.fromStack(withNotifier.stack);
    const alarmEntries = Object.entries(notifierTemplate.findResources('AWS::CloudWatch::Alarm')) as [string, Resource][];
    const alarms = alarmEntries.map(([, each]) => each);
    const topic = [{ Ref: withNotifier.stack.getLogicalId(withNotifier.monitoring.alarmTopic.node.defaultChild as CfnElement) }];
    const failing = alarmEntries.filter(([, each]) => each.Properties.MetricName === metricNames.leadDeliveryWaitSeconds);
    expect(failing.map(([, each]) => each.Properties)).toEqual([
      expect.objectContaining({
        AlarmName: 'Watched delivery failing to sales-webhook-1',
        AlarmDescription: expect.stringContaining('pql-radar deliveries list --failed'),
        Namespace: customMetricNamespace,
        // The dimensions the notifier publishes it with: service, and the destination.
        Dimensions: [
          { Name: 'destination', Value: 'sales-webhook-1' },
          { Name: 'service', Value: customMetricDimensions.service },
        ],
        Statistic: 'Maximum',
        Threshold: 1800,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        // Silence between two attempts keeps the state the last one set.
        TreatMissingData: 'ignore',
        AlarmActions: topic,
        OKActions: topic,
      }),
    ]);
    // And the queue's own age of its oldest message, for a notifier that reads nothing (no report at all then): a part
    // without actions of its own.
    const delayed = alarmEntries.filter(([, each]) => each.Properties.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(delayed.map(([, each]) => each.Properties)).toEqual([
      {
        AlarmName: 'Watched delivery delayed in DeliveryQueue',
        AlarmDescription: expect.stringContaining('`Watched delivery stalled for sales-webhook-1`'),
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [withNotifier.stack.getLogicalId(deliveryQueue!.node.defaultChild as CfnElement), 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1800,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      },
    ]);
    // What notifies of it: silent while the destination's failing alarm is in alarm, which explains the delay, and for
    // 15 minutes after the delay, for that alarm to catch up, and 30 after it clears, for the queue to drain.
    const composites = Object.values(notifierTemplate.findResources('AWS::CloudWatch::CompositeAlarm')) as Resource[];
    expect(composites.map((each) => each.Properties)).toEqual([
      {
        AlarmName: 'Watched delivery stalled for sales-webhook-1',
        AlarmDescription: expect.stringMatching(/delivery delayed in DeliveryQueue.*delivery failing to sales-webhook-1.*update-event-source-mapping/),
        AlarmRule: { 'Fn::Join': ['', ['ALARM("', { 'Fn::GetAtt': [delayed[0]![0], 'Arn'] }, '")']] },
        ActionsSuppressor: { 'Fn::GetAtt': [failing[0]![0], 'Arn'] },
        ActionsSuppressorWaitPeriod: 900,
        ActionsSuppressorExtensionPeriod: 1800,
        AlarmActions: topic,
        OKActions: topic,
      },
    ]);
    for (const each of [...alarms, ...composites]) expect(each.Properties.AlarmDescription.length).toBeLessThanOrEqual(1024);
    const errors = alarms.filter((each) => each.Properties.AlarmName === 'Watched notifier errors for sales-webhook-1');
    expect(errors.map((each) => each.Properties)).toEqual([
      expect.objectContaining({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: withNotifier.stack.getLogicalId(notifier!.node.defaultChild as CfnElement) } }],
        Threshold: 1,
        TreatMissingData: 'notBreaching',
      }),
    ]);
    // One per dead-letter queue, three per notifier (the delayed part not among them), and the six every stack has.
    expect(withNotifier.monitoring.alarms).toHaveLength(10);
    expect(alarms).toHaveLength(10);
  });

  it('fire when the evaluator has not read the table stream for ten minutes (its iterator age), or at all while events arrive, and on a batch in its failure queue', () => {
    let failureQueue: sqs.Queue | undefined;
    const capturing = build((stack) => {
      failureQueue = new sqs.Queue(stack, 'FailureQueue', { enforceSSL: true });
      return { changeCapture: { handler: stack.node.findChild('Evaluator').node.findChild('Function') as lambda.IFunction, failureQueue } };
    });
    const capturingTemplate = Template.fromStack(capturing.stack);
    const alarms = capturingTemplate.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>;
    const evaluator = [{ Name: 'FunctionName', Value: { Ref: capturing.stack.getLogicalId(capturing.evaluator.node.defaultChild as CfnElement) } }];
    const topic = [{ Ref: capturing.stack.getLogicalId(capturing.monitoring.alarmTopic.node.defaultChild as CfnElement) }];
    const iteratorAge = Object.entries(alarms).filter(([, each]) => each.Properties.MetricName === 'IteratorAge');
    expect(iteratorAge.map(([, each]) => each.Properties)).toEqual([
      expect.objectContaining({ AlarmName: 'Watched change capture behind', Namespace: 'AWS/Lambda', Dimensions: evaluator, Statistic: 'Maximum', Threshold: 600_000, EvaluationPeriods: 2, TreatMissingData: 'notBreaching' }),
      // Only the stream's invocations report an iterator age: none in two hours, no data, is idle. No actions of its own.
      {
        AlarmName: 'Watched change capture idle',
        AlarmDescription: expect.any(String),
        Namespace: 'AWS/Lambda',
        MetricName: 'IteratorAge',
        Dimensions: evaluator,
        Statistic: 'SampleCount',
        Period: 3600,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        Threshold: 1,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      },
    ]);
    const [arriving] = Object.entries(alarms).filter(([, each]) => each.Properties.MetricName === metricNames.acceptedEvents);
    expect(arriving![1].Properties).toEqual({
      AlarmName: 'Watched events arriving',
      AlarmDescription: expect.any(String),
      Namespace: customMetricNamespace,
      MetricName: metricNames.acceptedEvents,
      Dimensions: [{ Name: 'service', Value: customMetricDimensions.service }],
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    // The one that notifies: both in alarm at once.
    const composites = Object.values(capturingTemplate.findResources('AWS::CloudWatch::CompositeAlarm')) as Resource[];
    expect(composites.map((each) => each.Properties)).toEqual([
      {
        AlarmName: 'Watched change capture stopped',
        AlarmDescription: expect.stringContaining('list-event-source-mappings'),
        AlarmRule: {
          'Fn::Join': ['', ['(ALARM("', { 'Fn::GetAtt': [arriving![0], 'Arn'] }, '") AND ALARM("', { 'Fn::GetAtt': [iteratorAge[1]![0], 'Arn'] }, '"))']],
        },
        AlarmActions: topic,
        OKActions: topic,
      },
    ]);
    const queueName = { 'Fn::GetAtt': [capturing.stack.getLogicalId(failureQueue!.node.defaultChild as CfnElement), 'QueueName'] };
    const failed = Object.values(alarms).filter((each) => JSON.stringify(each.Properties.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: queueName }]));
    expect(failed.map((each) => each.Properties)).toEqual([
      expect.objectContaining({
        AlarmName: 'Watched dead letters in FailureQueue',
        // Not the delivery queues' advice: what such a message holds, and where the cause is logged.
        AlarmDescription: expect.stringMatching(/table stream.*sequence numbers.*evaluator's logs/),
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: topic,
      }),
    ]);
    // The three that notify, beside the six every stack has and the dead-letter queue's; the two parts do not.
    expect(capturing.monitoring.alarms).toHaveLength(10);
    expect(Object.keys(alarms)).toHaveLength(11);
    const dashboard = JSON.stringify(Object.values(capturingTemplate.findResources('AWS::CloudWatch::Dashboard'))[0]);
    expect(dashboard).toContain(JSON.stringify(queueName));
  });

  it("fire when a lead event has waited a day (or the threshold given) in a route's queue for the user's consumers", () => {
    let routeQueue: sqs.Queue | undefined;
    const withRoute = build((stack) => {
      routeQueue = new sqs.Queue(stack, 'RouteQueue', { enforceSSL: true });
      return { routeQueues: [routeQueue] };
    });
    const unread = Template.fromStack(withRoute.stack).findResources('AWS::CloudWatch::Alarm', { Properties: { AlarmName: 'Watched lead events unread in RouteQueue' } });
    expect(Object.values(unread).map((each) => (each as Resource).Properties)).toEqual([
      expect.objectContaining({
        AlarmDescription: expect.stringContaining('nothing consumes it'),
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [withRoute.stack.getLogicalId(routeQueue!.node.defaultChild as CfnElement), 'QueueName'] } }],
        Statistic: 'Maximum',
        Threshold: 86_400,
        TreatMissingData: 'notBreaching',
      }),
    ]);
    const sooner = build((stack) => ({ routeQueues: [new sqs.Queue(stack, 'RouteQueue', { enforceSSL: true })], routeQueueDelayThreshold: Duration.hours(6) }));
    Template.fromStack(sooner.stack).hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'Watched lead events unread in RouteQueue', Threshold: 21_600 });
  });

  it('fire when lead events stay unpublished in the outbox for three periods in a row, missing data being no runs', () => {
    expect(alarm('LeadEventsUnpublished').Properties).toEqual({
      AlarmName: 'Watched lead events unpublished',
      AlarmDescription: expect.stringContaining('outbox'),
      Namespace: customMetricNamespace,
      MetricName: metricNames.leadEventsUnpublished,
      Dimensions: [{ Name: 'service', Value: customMetricDimensions.service }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      ...common(1, 'GreaterThanOrEqualToThreshold', 'notBreaching'),
    });
  });

  it('notify the topic of the alarms made elsewhere too, and show them', () => {
    let elsewhere: cloudwatch.Alarm | undefined;
    const withOther = build((stack) => {
      elsewhere = new cloudwatch.Alarm(stack, 'Elsewhere', { metric: new cloudwatch.Metric({ namespace: 'pql-radar', metricName: 'TierLift' }), threshold: 1, evaluationPeriods: 1 });
      return { otherAlarms: [elsewhere] };
    });
    const topic = [{ Ref: withOther.stack.getLogicalId(withOther.monitoring.alarmTopic.node.defaultChild as CfnElement) }];
    const resourceOf = Template.fromStack(withOther.stack).toJSON().Resources[withOther.stack.getLogicalId(elsewhere!.node.defaultChild as CfnElement)];
    expect(resourceOf.Properties).toMatchObject({ AlarmActions: topic, OKActions: topic });
    expect(withOther.monitoring.alarms).toContain(elsewhere);
    const status = dashboardWidgets(Template.fromStack(withOther.stack)).find((widget) => widget.type === 'alarm');
    expect(status!.properties.alarms).toHaveLength(withOther.monitoring.alarms.length);
  });

  it('fire on any ingest 5xx of the HTTP API (ApiId dimension), missing data being no requests', () => {
    expect(alarm('Ingest5xx').Properties).toEqual({
      AlarmName: 'Watched ingest 5xx',
      AlarmDescription: expect.any(String),
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: ref(built.ingestApi.httpApi) }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      ...common(1, 'GreaterThanOrEqualToThreshold', 'notBreaching'),
    });
  });

  it.each([
    ['IngestErrors', 'Watched ingest function errors', () => built.ingestApi.handler],
    ['EvaluatorErrors', 'Watched evaluator errors', () => built.evaluator],
  ])('%s fires on one Lambda error in 5 minutes, missing data being no invocations', (id, name, fn: () => lambda.IFunction) => {
    expect(alarm(id).Properties).toEqual({
      AlarmName: name,
      AlarmDescription: expect.any(String),
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref(fn()) }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      ...common(1, 'GreaterThanOrEqualToThreshold', 'notBreaching'),
    });
  });

  it('fire on one entity whose evaluation threw in 5 minutes, missing data being no runs', () => {
    expect(alarm('EntitiesNotEvaluated').Properties).toEqual({
      AlarmName: 'Watched entities not evaluated',
      AlarmDescription: expect.stringContaining('each is left for the next run'),
      Namespace: 'pql-radar',
      MetricName: 'EntitiesFailed',
      Dimensions: [{ Name: 'service', Value: 'pql-radar' }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      ...common(1, 'GreaterThanOrEqualToThreshold', 'notBreaching'),
    });
  });

  it('fire when the evaluator lag stays over 10 minutes for 3 periods, or the evaluator reports nothing', () => {
    expect(alarm('EvaluatorLag').Properties).toEqual({
      AlarmName: 'Watched evaluator lag',
      AlarmDescription: expect.stringContaining('more than 10 minutes'),
      Namespace: 'pql-radar',
      MetricName: 'EvaluatorLagSeconds',
      Dimensions: [{ Name: 'service', Value: 'pql-radar' }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      ...common(600, 'GreaterThanThreshold', 'breaching'),
    });
  });

  it('take the lag threshold and a longer evaluation interval as the lag period', () => {
    const custom = build({ lagThreshold: Duration.minutes(45), evaluationInterval: Duration.minutes(15) });
    const lag = Template.fromStack(custom.stack).toJSON().Resources[custom.stack.getLogicalId(custom.monitoring.node.findChild('EvaluatorLag').node.defaultChild as CfnElement)];
    expect(lag.Properties).toMatchObject({ Threshold: 2700, Period: 900, EvaluationPeriods: 3 });
  });

  it('refuse a lag threshold an on-time evaluator could reach, and an interval of part minutes', () => {
    expect(() => build({ lagThreshold: Duration.minutes(5), evaluationInterval: Duration.minutes(5) })).toThrow(
      /lagThreshold \(5 minutes\) must exceed evaluationInterval \(5 minutes\)/,
    );
    expect(() => build({ evaluationInterval: Duration.seconds(90) })).toThrow(/whole number of minutes/);
    // A user's change may wait 5 minutes before its run: with runs 5 minutes apart, an on-time evaluator reaches 10.
    expect(() => build({ lagThreshold: Duration.minutes(10), evaluationInterval: Duration.minutes(5), changeWait: Duration.minutes(5) })).toThrow(
      /lagThreshold \(10 minutes\) must exceed evaluationInterval \(5 minutes\) and changeWait \(5 minutes\) together/,
    );
  });

  it('take a default lag threshold of 10 minutes, or a minute over the interval and the wait a change may have together', () => {
    const threshold = (props: Partial<MonitoringProps>) => {
      const custom = build(props);
      return Template.fromStack(custom.stack).toJSON().Resources[custom.stack.getLogicalId(custom.monitoring.node.findChild('EvaluatorLag').node.defaultChild as CfnElement)].Properties.Threshold;
    };
    expect(threshold({ changeWait: Duration.minutes(5) })).toBe(600);
    expect(threshold({ evaluationInterval: Duration.minutes(5), changeWait: Duration.minutes(5) })).toBe(660);
  });

  it('watch the metrics the functions emit, where LambdaFunction tells Powertools to put them', () => {
    const environment = resource(logicalId(built.evaluator)).Properties.Environment.Variables;
    expect(customMetricNamespace).toBe(environment.POWERTOOLS_METRICS_NAMESPACE);
    // Powertools' default dimension is `service` = the service name (no other dimension is added by the handlers).
    expect(customMetricDimensions).toEqual({ service: environment.POWERTOOLS_SERVICE_NAME });
    for (const path of ['functions/ingest/lambda-handler.ts', 'functions/evaluator/handler.ts', 'functions/shared/powertools.ts']) {
      expect(readFileSync(join(import.meta.dirname, '../..', path), 'utf8'), path).not.toMatch(/addDimension|defaultDimensions|singleMetric/);
    }
  });
});

describe('dashboard', () => {
  let widgets: Widget[];

  beforeAll(() => {
    widgets = dashboardWidgets(template);
  });

  const metricsOf = (title: string) => {
    const widget = widgets.find((candidate) => candidate.properties.title === title);
    expect(widget, title).toBeDefined();
    return widget!.properties.metrics!.map((metric) => metric.slice(0, 2).concat(metric.slice(2, -1).length ? [metric.slice(2, -1).join(' ')] : []));
  };

  it('exists, once', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('shows ingest requests, 4xx/5xx and latency of the HTTP API', () => {
    const api = `ApiId {${logicalId(built.ingestApi.httpApi)}}`;
    expect(metricsOf('Ingest requests')).toEqual([['AWS/ApiGateway', 'Count', api]]);
    expect(metricsOf('Ingest 4xx and 5xx')).toEqual([['AWS/ApiGateway', '4xx', api], ['AWS/ApiGateway', '5xx', api]]);
    expect(metricsOf('Ingest latency (ms)')).toEqual([
      ['AWS/ApiGateway', 'Latency', api],
      ['AWS/ApiGateway', 'Latency', api],
      ['AWS/ApiGateway', 'IntegrationLatency', api],
    ]);
  });

  it('shows the custom metrics under the names the handlers emit them', () => {
    expect(metricsOf('Events accepted and rejected')).toEqual([
      ['pql-radar', 'AcceptedEvents', 'service pql-radar'],
      ['pql-radar', 'RejectedEvents', 'service pql-radar'],
    ]);
    expect(metricsOf('Evaluator: entities and lead transitions')).toEqual([
      ['pql-radar', 'EntitiesEvaluated', 'service pql-radar'],
      ['pql-radar', 'LeadTransitions', 'service pql-radar'],
      ['pql-radar', 'LeadEventsUnpublished', 'service pql-radar'],
      ['pql-radar', 'ChangesNotEvaluated', 'service pql-radar'],
      ['pql-radar', 'EntitiesFailed', 'service pql-radar'],
    ]);
    expect(metricsOf('Evaluator lag (s)')).toEqual([['pql-radar', 'EvaluatorLagSeconds', 'service pql-radar']]);
    const emitted = ['functions/ingest/request-metrics.ts', 'functions/evaluator/handler.ts']
      .map((path) => readFileSync(join(import.meta.dirname, '../..', path), 'utf8'))
      .flatMap((source) => [...source.matchAll(/addMetric\(metricNames\.(\w+)/g)].map((match): string => metricNames[match[1] as keyof typeof metricNames]));
    const shown = widgets.flatMap((widget) => widget.properties.metrics ?? []).filter((metric) => metric[0] === 'pql-radar').map((metric) => metric[1]);
    expect(shown.filter((name) => !emitted.includes(name as string))).toEqual([]);
  });

  it('shows errors and p99 duration of every function, and the depth of every dead-letter queue', () => {
    const functions = [built.ingestApi.handler, built.evaluator].map((fn) => `FunctionName {${logicalId(fn)}}`);
    expect(metricsOf('Function errors')).toEqual(functions.map((fn) => ['AWS/Lambda', 'Errors', fn]));
    expect(metricsOf('Function duration p99 (ms)')).toEqual(functions.map((fn) => ['AWS/Lambda', 'Duration', fn]));
    expect(metricsOf('Dead-letter queues: messages waiting')).toEqual([
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', `QueueName {${logicalId(built.deadLetterQueue)},QueueName}`],
    ]);
    const labels = widgets.find((widget) => widget.properties.title === 'Function errors')!.properties.metrics!.map((metric) => (metric.at(-1) as { label: string }).label);
    expect(labels).toEqual(['IngestApi/Handler/Function', 'Evaluator/Function']);
  });

  it("shows the rule-health job's lifts, live and promised, by a search over the tiers it reports", () => {
    const title = "Rule health: each workspace's top tier lift, live and as its backtest promised";
    const widget = widgets.find((candidate) => candidate.properties.title === title)!;
    const expressions = widget.properties.metrics!.map((metric) => (metric[0] as { expression: string }).expression);
    const emitted = readFileSync(join(import.meta.dirname, '../../functions/health/handler.ts'), 'utf8');
    for (const name of [metricNames.tierLift, metricNames.tierLiftLowerBound, metricNames.tierLiftPromised]) {
      expect(expressions).toContain(`SEARCH('{pql-radar,Tier,service} MetricName="${name}"', 'Maximum', 86400)`);
      expect(emitted).toContain(`metricNames.${Object.entries(metricNames).find(([, value]) => value === name)![0]}`);
    }
  });

  it('shows the state of every alarm', () => {
    const status = widgets.find((widget) => widget.type === 'alarm');
    expect(status!.properties.alarms).toHaveLength(built.monitoring.alarms.length);
  });

  it('has a console link for the stack output', () => {
    expect(built.stack.resolve(built.monitoring.dashboardUrl)).toEqual({
      'Fn::Join': [
        '',
        [
          'https://',
          { Ref: 'AWS::Region' },
          '.console.aws.amazon.com/cloudwatch/home?region=',
          { Ref: 'AWS::Region' },
          '#dashboards/dashboard/',
          { Ref: logicalId(built.monitoring.dashboard) },
        ],
      ],
    });
  });
});

type Widget = { type: string; width: number; properties: { title: string; metrics?: unknown[][]; alarms?: unknown[] } };

/** The dashboard's widgets: its body is a Fn::Join of strings and references; references become placeholders so it parses as JSON. */
function dashboardWidgets(stackTemplate: Template): Widget[] {
  const [dashboard] = Object.values(stackTemplate.findResources('AWS::CloudWatch::Dashboard')) as Resource[];
  const parts: unknown[] = dashboard!.Properties.DashboardBody['Fn::Join'][1];
  const body = parts.map((part) => (typeof part === 'string' ? part : `{${Object.values(part as object)[0]}}`)).join('');
  return JSON.parse(body).widgets;
}

/**
 * The lines of a widget as CloudWatch would compute them for one period, given each metric's sum (`sumOf`, undefined
 * for no data point): its metric math (ids, plain decimals, + * / >, FILL(id,0) and IF) evaluated here, independently
 * of the code that wrote it. A line without data is NaN.
 */
function widgetLines(widget: Widget, sumOf: (namespace: string, name: string, dimensions: Record<string, string>) => number | undefined): Map<string, number> {
  type Entry = { expression?: string; label?: string; id?: string };
  const byId = new Map<string, unknown[]>();
  for (const entry of widget.properties.metrics!) {
    const options = entry.at(-1) as Entry;
    if (options.id !== undefined) byId.set(options.id, entry);
  }
  const valueOf = (entry: unknown[]): number => {
    const options = entry.at(-1) as Entry;
    if (options.expression !== undefined) return evaluate(options.expression);
    const [namespace, name, ...rest] = entry.slice(0, -1) as string[];
    const dimensions: Record<string, string> = {};
    for (let i = 0; i < rest.length; i += 2) dimensions[rest[i]!] = rest[i + 1]!;
    return sumOf(namespace!, name!, dimensions) ?? Number.NaN;
  };
  const evaluate = (expression: string): number => {
    const code = expression.replace(/(?<![\w.])[a-z][A-Za-z0-9_]*/g, (id) => `v(${JSON.stringify(id)})`).replaceAll('FILL(', 'fill(').replaceAll('IF(', 'iff(');
    expect(code, expression).toMatch(/^[-+*/()<>,.\d\sa-z"_A-Z]*$/);
    const v = (id: string) => {
      const entry = byId.get(id);
      expect(entry, `id ${id} of ${expression}`).toBeDefined();
      return valueOf(entry!);
    };
    const fill = (value: number, instead: number) => (Number.isNaN(value) ? instead : value);
    const iff = (condition: boolean, then: number, otherwise: number) => (condition ? then : otherwise);
    return new Function('v', 'fill', 'iff', `return (${code});`)(v, fill, iff) as number;
  };
  const lines = new Map<string, number>();
  for (const entry of widget.properties.metrics!) {
    const options = entry.at(-1) as Entry & { visible?: boolean };
    if (options.visible !== false) lines.set(options.label!, valueOf(entry));
  }
  return lines;
}

describe('cost widgets', () => {
  const perMillionTitle = '$ per million accepted events, a day at a time (us-east-1 list prices; storage apart)';
  const perDayTitle = '$ a day (us-east-1 list prices; storage apart)';
  /** The sums of a day: what each metric would read, keyed by its name and its table, index, function or API. */
  const day = {
    tableWrites: 1_000,
    tableReads: 3_000,
    indexWrites: 200,
    indexReads: 40,
    invocations: [900, 100],
    durationMs: [4_500, 20_000],
    requests: 900,
    accepted: 2_000,
    leadEvents: 30,
  };
  const sums = (stack: Stack, functions: lambda.IFunction[], overrides: Record<string, number | undefined> = {}) => (namespace: string, name: string, dimensions: Record<string, string>) => {
    const key = `${namespace} ${name}`;
    if (key in overrides) return overrides[key];
    const functionIndex = functions.findIndex((fn) => dimensions['FunctionName'] === `{${stack.getLogicalId(fn.node.defaultChild as CfnElement)}}`);
    switch (key) {
      case 'AWS/DynamoDB ConsumedWriteCapacityUnits':
        return dimensions['GlobalSecondaryIndexName'] === undefined ? day.tableWrites : day.indexWrites;
      case 'AWS/DynamoDB ConsumedReadCapacityUnits':
        return dimensions['GlobalSecondaryIndexName'] === undefined ? day.tableReads : day.indexReads;
      case 'AWS/Lambda Invocations':
        return day.invocations[functionIndex];
      case 'AWS/Lambda Duration':
        return day.durationMs[functionIndex];
      case 'AWS/ApiGateway Count':
        return day.requests;
      case 'pql-radar AcceptedEvents':
        return day.accepted;
      case 'pql-radar LeadTransitions':
        return day.leadEvents;
      default:
        return undefined;
    }
  };
  /** A day's dollars by component, from the list prices and the functions' memory sizes as synthesized. */
  const expected = (stackTemplate: Template, stack: Stack, functions: lambda.IFunction[], requestFactor = 1) => {
    const memoryGb = functions.map((fn) => (stackTemplate.toJSON().Resources[stack.getLogicalId(fn.node.defaultChild as CfnElement)].Properties.MemorySize ?? 128) / 1024);
    return {
      DynamoDB: requestFactor * ((day.tableWrites + day.indexWrites) * listPrices.writeUnit + (day.tableReads + day.indexReads) * listPrices.readUnit),
      Lambda: functions.reduce((sum, _, i) => sum + day.invocations[i]! * listPrices.lambdaRequest + (day.durationMs[i]! / 1000) * memoryGb[i]! * listPrices.lambdaGbSecond, 0),
      'HTTP API': day.requests * listPrices.httpRequest,
      EventBridge: day.leadEvents * listPrices.eventBridgeEvent,
    };
  };

  it("price a day of the table's, functions', API's and bus's metrics at the list prices, per million accepted events and in all", () => {
    const widgets = dashboardWidgets(template);
    const functions = [built.ingestApi.handler, built.evaluator];
    const dollars = expected(template, built.stack, functions);
    const total = Object.values(dollars).reduce((sum, value) => sum + value, 0);
    const perDay = widgetLines(widgets.find((widget) => widget.properties.title === perDayTitle)!, sums(built.stack, functions));
    expect([...perDay.keys()]).toEqual(['total', 'DynamoDB', 'Lambda', 'HTTP API', 'EventBridge']);
    expect(perDay.get('total')).toBeCloseTo(total, 9);
    for (const [label, value] of Object.entries(dollars)) expect(perDay.get(label), label).toBeCloseTo(value, 9);
    const perMillion = widgetLines(widgets.find((widget) => widget.properties.title === perMillionTitle)!, sums(built.stack, functions));
    expect(perMillion.get('total')).toBeCloseTo((total / day.accepted) * 1e6, 6);
    expect(perMillion.get('DynamoDB')).toBeCloseTo((dollars.DynamoDB / day.accepted) * 1e6, 6);
  });

  it('count a metric without a data point as nothing, and leave a day without accepted events out of the unit cost', () => {
    const widgets = dashboardWidgets(template);
    const functions = [built.ingestApi.handler, built.evaluator];
    const quiet = sums(built.stack, functions, { 'pql-radar LeadTransitions': undefined, 'AWS/ApiGateway Count': undefined });
    const perDay = widgetLines(widgets.find((widget) => widget.properties.title === perDayTitle)!, quiet);
    const dollars = expected(template, built.stack, functions);
    expect(perDay.get('EventBridge')).toBe(0);
    expect(perDay.get('total')).toBeCloseTo(dollars.DynamoDB + dollars.Lambda, 9);
    const noEvents = widgetLines(widgets.find((widget) => widget.properties.title === perMillionTitle)!, sums(built.stack, functions, { 'pql-radar AcceptedEvents': undefined }));
    expect(noEvents.get('total')).toBeNaN();
  });

  it("price a Standard-IA table's units 25% dearer, and a Kinesis buffer's records and shard hours", () => {
    const buffered = build((stack) => ({
      table: { ...new EventStore(stack, 'IaStore', { tableClass: dynamodb.TableClass.STANDARD_INFREQUENT_ACCESS }) },
      ingestBuffer: { consumer: new LambdaFunction(stack, 'Consumer', { entry: 'functions/ingest-buffer/handler.ts' }).function, stream: new kinesis.Stream(stack, 'Buffer', { shardCount: 2 }), shards: 2 },
    }));
    const stackTemplate = Template.fromStack(buffered.stack);
    const functions = [buffered.ingestApi.handler, buffered.evaluator];
    const records = 5_000;
    const perDay = widgetLines(dashboardWidgets(stackTemplate).find((widget) => widget.properties.title === perDayTitle)!, sums(buffered.stack, functions, { 'AWS/Kinesis IncomingRecords': records }));
    const dollars = expected(stackTemplate, buffered.stack, functions, listPrices.infrequentAccessRequestFactor);
    expect(perDay.get('DynamoDB')).toBeCloseTo(dollars.DynamoDB, 9);
    expect(perDay.get('Kinesis')).toBeCloseTo(records * listPrices.kinesisPutUnit + 2 * 24 * listPrices.kinesisShardHour, 9);
  });

  it("price a Firehose buffer's records at 5 KB each at least", () => {
    const buffered = build((stack) => ({
      ingestBuffer: {
        deliveryStream: firehose.DeliveryStream.fromDeliveryStreamName(stack, 'Buffer', 'requests'),
        bufferingInterval: Duration.minutes(5),
        queue: new sqs.Queue(stack, 'Objects', { enforceSSL: true }),
        deadLetterQueue: new sqs.Queue(stack, 'ObjectsFailed', { enforceSSL: true }),
        loader: new LambdaFunction(stack, 'Loader', { entry: 'functions/ingest-buffer-loader/handler.ts' }).function,
      },
    }));
    const widget = dashboardWidgets(Template.fromStack(buffered.stack)).find((candidate) => candidate.properties.title === perDayTitle)!;
    const functions = [buffered.ingestApi.handler, buffered.evaluator];
    const firehoseDollars = (records: number, bytes: number) =>
      widgetLines(widget, sums(buffered.stack, functions, { 'AWS/Firehose IncomingRecords': records, 'AWS/Firehose IncomingBytes': bytes })).get('Firehose')!;
    const perByte = listPrices.firehoseGb / 2 ** 30;
    // Browser requests: a KB each, billed as 5 (the expression's price has six significant digits).
    expect(firehoseDollars(1_000, 1_000_000) / (1_000 * 5120 * perByte)).toBeCloseTo(1, 5);
    // Server batches: 40 KB each, billed by their bytes.
    expect(firehoseDollars(10, 400_000) / (400_000 * perByte)).toBeCloseTo(1, 5);
  });
});

it('passes the AwsSolutions checks with no acknowledgement', () => {
  const { app } = build({}, reportValidationErrors);
  expect(nagFindings(app)).toEqual([]);
  const acknowledged = app.node
    .findAll()
    .filter((construct) => construct.node.path.startsWith('Watched/Monitoring'))
    .flatMap((construct) => construct.node.metadata.filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY));
  expect(acknowledged).toEqual([]);
});
