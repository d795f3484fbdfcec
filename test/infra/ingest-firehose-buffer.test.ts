import { App, type CfnElement, Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadRulesFile } from '../../lib/config';
import { IngestFirehoseBuffer } from '../../lib/ingest-firehose-buffer';
import { SKIP_BUNDLING_CONTEXT } from '../../lib/lambda-function';
import { PqlRadarStack } from '../../lib/pql-radar-stack';
import { buildStack, physicalNames, testConfig, testRulesFile } from './synth';
import { readTemplate, type Resource, storingEnvironment, storingTableStatements, templateWithTable, type TemplateReader } from './template-reader';

let stack: PqlRadarStack;
let buffer: IngestFirehoseBuffer;
let template: Template;
let logicalId: TemplateReader['logicalId'];
let resource: TemplateReader['resource'];
let getAtt: TemplateReader['getAtt'];
let statements: TemplateReader['statements'];
const objects = (prefix: string) => ({ 'Fn::Join': ['', [getAtt(buffer.bucket, 'Arn'), `/${prefix}*`]] });
const resourcesOf = (template: Template, type: string) => Object.values(template.findResources(type)) as Resource[];

beforeAll(() => {
  // The default: a config without ingestBuffer.
  ({ stack } = buildStack());
  buffer = stack.ingestFirehoseBuffer!;
  ({ template, logicalId, resource, getAtt, statements } = readTemplate(stack));
});

describe('by default (no ingestBuffer in the config; the same as service firehose)', () => {
  it('has no Kinesis buffer, and one bucket: encrypted, SSL only, private, objects expired after 14 days, deleted with the stack only when empty', () => {
    expect(stack.ingestBuffer).toBeUndefined();
    template.resourceCountIs('AWS::Kinesis::Stream', 0);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    const bucket = resource(buffer.bucket);
    expect(bucket.Properties).toEqual({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [{ Status: 'Enabled', ExpirationInDays: 14, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }] },
    });
    expect(bucket.DeletionPolicy).toBe('Delete');
    // autoDeleteObjects would delete the objects the loader has not stored yet.
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(buffer.bucket) },
      PolicyDocument: { Statement: [{ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }] },
    });
  });

  it('has a Direct PUT delivery stream writing uncompressed objects under requests/ every 300 s or 16 MiB, failures elsewhere, encrypted, errors logged', () => {
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    const { ExtendedS3DestinationConfiguration: destination, ...stream } = resource(buffer.deliveryStream).Properties;
    expect(stream).toEqual({ DeliveryStreamType: 'DirectPut', DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' } });
    expect(destination).toEqual({
      BucketARN: getAtt(buffer.bucket, 'Arn'),
      BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 16 },
      Prefix: 'requests/',
      ErrorOutputPrefix: 'failed/',
      CompressionFormat: 'UNCOMPRESSED',
      CloudWatchLoggingOptions: { Enabled: true, LogGroupName: { Ref: expect.any(String) }, LogStreamName: { Ref: expect.any(String) } },
      RoleARN: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
    });
    expect(template.toJSON().Resources[destination.CloudWatchLoggingOptions.LogGroupName.Ref].Properties).toEqual({ RetentionInDays: 30 });
  });

  it('lets Firehose write the two prefixes and its error log, and delete nothing', () => {
    const { ExtendedS3DestinationConfiguration: destination } = resource(buffer.deliveryStream).Properties;
    const role = destination.RoleARN['Fn::GetAtt'][0];
    expect(template.toJSON().Resources[role].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'firehose.amazonaws.com' } },
    ]);
    expect(statements(buffer.node.findChild('DeliveryRole'))).toEqual([
      { Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], Resource: getAtt(buffer.bucket, 'Arn') },
      { Effect: 'Allow', Action: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'], Resource: [objects('requests/'), objects('failed/')] },
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [destination.CloudWatchLoggingOptions.LogGroupName.Ref, 'Arn'] } },
    ]);
    // Nothing else grants the role anything (CDK's destination would add the bucket's read and write).
    expect(JSON.stringify(resourcesOf(template, 'AWS::IAM::Policy'))).not.toContain(role);
  });

  it('lets the ingest function put records on the delivery stream, one at a time, and tells it the stream', () => {
    const variables = resource(stack.ingestApi.handler).Properties.Environment.Variables;
    expect(variables.INGEST_DELIVERY_STREAM_NAME).toEqual({ Ref: logicalId(buffer.deliveryStream) });
    expect(variables.INGEST_STREAM_NAME).toBeUndefined();
    const firehose = statements(stack.ingestApi.handler.role!).filter((statement) => JSON.stringify(statement.Action).includes('firehose:'));
    expect(firehose).toEqual([{ Effect: 'Allow', Action: 'firehose:PutRecord', Resource: getAtt(buffer.deliveryStream, 'Arn') }]);
  });

  it('notifies the queue of objects created under requests/ only', () => {
    expect(resourcesOf(template, 'Custom::S3BucketNotifications').map((notifications) => notifications.Properties.NotificationConfiguration)).toEqual([
      {
        QueueConfigurations: [
          { Events: ['s3:ObjectCreated:*'], Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'requests/' }] } }, QueueArn: getAtt(buffer.queue, 'Arn') },
        ],
      },
    ]);
    const queuePolicy = resourcesOf(template, 'AWS::SQS::QueuePolicy').find((policy) => JSON.stringify(policy.Properties.Queues) === JSON.stringify([{ Ref: logicalId(buffer.queue) }]));
    expect(queuePolicy!.Properties.PolicyDocument.Statement).toContainEqual({
      Effect: 'Allow',
      Principal: { Service: 's3.amazonaws.com' },
      Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
      Resource: getAtt(buffer.queue, 'Arn'),
      Condition: { ArnLike: { 'aws:SourceArn': getAtt(buffer.bucket, 'Arn') } },
    });
  });

  it('keeps notifications in an encrypted, SSL-only queue whose visibility is six loader timeouts, and moves one to a 14-day dead-letter queue after 10 receives', () => {
    const loaderTimeout = resource(buffer.loader).Properties.Timeout;
    expect(loaderTimeout).toBe(300);
    expect(resource(buffer.queue).Properties).toEqual({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
      VisibilityTimeout: 6 * loaderTimeout,
      RedrivePolicy: { deadLetterTargetArn: getAtt(buffer.deadLetterQueue, 'Arn'), maxReceiveCount: 10 },
    });
    expect(resource(buffer.deadLetterQueue).Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    for (const queue of [buffer.queue, buffer.deadLetterQueue]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: logicalId(queue) }],
        PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
      });
    }
  });

  it('feeds the loader one notification at a time, reporting failed ones', () => {
    const mappings = resourcesOf(template, 'AWS::Lambda::EventSourceMapping').filter(
      (mapping) => JSON.stringify(mapping.Properties.FunctionName) === JSON.stringify({ Ref: logicalId(buffer.loader) }),
    );
    expect(mappings.map((mapping) => mapping.Properties)).toEqual([
      {
        FunctionName: { Ref: logicalId(buffer.loader) },
        EventSourceArn: getAtt(buffer.queue, 'Arn'),
        BatchSize: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      },
    ]);
  });

  it('gives the loader the table environment of the ingest function, 1024 MB and 5 minutes', () => {
    const ingest = resource(stack.ingestApi.handler).Properties;
    const loader = resource(buffer.loader).Properties;
    expect(loader.Environment.Variables).toEqual(storingEnvironment(ingest.Environment.Variables.TABLE_NAME));
    expect(loader).toMatchObject({ MemorySize: 1024, Timeout: 300, Runtime: ingest.Runtime, Architectures: ['arm64'] });
  });

  it('lets the loader read and delete the objects under requests/, consume its queue, write its logs, and read and write workspace data by key, nothing more', () => {
    expect(statements(buffer.loader.role!)).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(buffer.loader.logGroup, 'Arn') },
      ...storingTableStatements(getAtt(stack.eventStore.table, 'Arn')),
      // Not the failed/ objects, not writing to the bucket.
      { Effect: 'Allow', Action: ['s3:GetObject', 's3:DeleteObject'], Resource: objects('requests/') },
      // So that a GET of an object already stored and deleted is a 404, not a 403.
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: getAtt(buffer.bucket, 'Arn') },
      {
        Effect: 'Allow',
        Action: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueUrl', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        Resource: getAtt(buffer.queue, 'Arn'),
      },
    ]);
  });

  it('alarms on the topic when the loader fails, an object waits over an hour, Firehose delivers well over its interval late, or a notification is dead-lettered; and charts the loader', () => {
    const alarms = resourcesOf(template, 'AWS::CloudWatch::Alarm').map((alarm) => alarm.Properties);
    const topic = [{ Ref: logicalId(stack.monitoring.alarmTopic) }];
    const onTopic = { AlarmActions: topic, OKActions: topic, TreatMissingData: 'notBreaching', ComparisonOperator: 'GreaterThanOrEqualToThreshold' };
    const on = (dimension: string, value: unknown) => alarms.filter((alarm) => JSON.stringify(alarm.Dimensions) === JSON.stringify([{ Name: dimension, Value: value }]));
    // The loader's errors and the objects it reported failed (it does not throw for those, so Lambda counts no error).
    const loaderErrors = alarms.find((alarm) => alarm.AlarmName === 'PqlRadar ingest buffer errors')!;
    expect(loaderErrors).toMatchObject({ ...onTopic, Threshold: 1, EvaluationPeriods: 1 });
    expect(loaderErrors.Metrics).toEqual([
      { Id: 'expr_1', Expression: 'FILL(errors, 0) + FILL(failed, 0)', ReturnData: true },
      { Id: 'errors', MetricStat: { Metric: { Namespace: 'AWS/Lambda', MetricName: 'Errors', Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(buffer.loader) } }] }, Period: 300, Stat: 'Sum' }, ReturnData: false },
      { Id: 'failed', MetricStat: { Metric: { Namespace: 'pql-radar', MetricName: 'BufferObjectsFailed', Dimensions: [{ Name: 'service', Value: 'pql-radar' }] }, Period: 300, Stat: 'Sum' }, ReturnData: false },
    ]);
    expect(on('QueueName', getAtt(buffer.queue, 'QueueName'))).toEqual([
      expect.objectContaining({
        ...onTopic,
        AlarmName: 'PqlRadar ingest buffer behind',
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Statistic: 'Maximum',
        Threshold: 3600,
        EvaluationPeriods: 2,
      }),
    ]);
    expect(on('DeliveryStreamName', { Ref: logicalId(buffer.deliveryStream) })).toEqual([
      expect.objectContaining({
        ...onTopic,
        AlarmName: 'PqlRadar ingest buffer delivery behind',
        Namespace: 'AWS/Firehose',
        MetricName: 'DeliveryToS3.DataFreshness',
        Statistic: 'Maximum',
        // The 300-second interval and 15 minutes.
        Threshold: 1200,
      }),
    ]);
    expect(on('QueueName', getAtt(buffer.deadLetterQueue, 'QueueName'))).toEqual([
      expect.objectContaining({
        ...onTopic,
        AlarmName: 'PqlRadar dead letters in IngestFirehoseBuffer/DeadLetterQueue',
        AlarmDescription: expect.stringContaining("The ingest buffer's loader kept failing on an object"),
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Threshold: 1,
      }),
    ]);
    // The loader ran not once in two hours while events arrived: the bucket's notifications or the mapping stopped.
    expect(on('FunctionName', { Ref: logicalId(buffer.loader) })).toEqual([
      expect.objectContaining({ AlarmName: 'PqlRadar ingest buffer idle', MetricName: 'Invocations', Statistic: 'Sum', Period: 3600, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching' }),
    ]);
    const stoppedAlarm = resourcesOf(template, 'AWS::CloudWatch::CompositeAlarm').find((alarm) => alarm.Properties.AlarmName === 'PqlRadar ingest buffer stopped');
    expect(stoppedAlarm!.Properties).toMatchObject({ AlarmDescription: expect.stringContaining("the README's Ingest buffer says how to restore each"), AlarmActions: topic, OKActions: topic });
    const dashboard = JSON.stringify(resource(stack.monitoring.dashboard).Properties.DashboardBody);
    expect(dashboard).toContain('IngestFirehoseBuffer/Loader/Function');
    expect(dashboard).toContain('IngestFirehoseBuffer/DeadLetterQueue');
  });

  it("buffers for the config's batchingWindowSeconds (the freshness alarm following) and keeps objects its retentionDays", () => {
    const configured = synth({ service: 'firehose', batchingWindowSeconds: 60, retentionDays: 3 });
    configured.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', { ExtendedS3DestinationConfiguration: { BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 16 } } });
    configured.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'DeliveryToS3.DataFreshness', Threshold: 960 });
    configured.hasResourceProperties('AWS::S3::Bucket', { LifecycleConfiguration: { Rules: [{ ExpirationInDays: 3 }] } });
  });

  it('leaves no unused mapping of Firehose CIDR blocks in the template', () => {
    expect(template.toJSON().Mappings).toBeUndefined();
  });
});

const synth = (ingestBuffer: Record<string, unknown>) => Template.fromStack(buildStack({ config: { ingestBuffer } }).stack);

describe('with ingestBuffer service firehose draining (the first deploy of turning it off)', () => {
  it('keeps the delivery stream, bucket, queue and loader, and ingest writes the table again: no INGEST_DELIVERY_STREAM_NAME, no PutRecord', () => {
    const { stack } = buildStack({ config: { ingestBuffer: { service: 'firehose', draining: true } } });
    const template = Template.fromStack(stack);
    for (const type of ['AWS::KinesisFirehose::DeliveryStream', 'AWS::S3::Bucket', 'Custom::S3BucketNotifications']) template.resourceCountIs(type, 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 1, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    const ingest = template.toJSON().Resources[stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement)] as Resource;
    expect(ingest.Properties.Environment.Variables.INGEST_DELIVERY_STREAM_NAME).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('firehose:');
  });
});

describe('with ingestBuffer service kinesis', () => {
  it('has no delivery stream, bucket or loader', () => {
    const { stack } = buildStack({ config: { ingestBuffer: { service: 'kinesis' } } });
    expect(stack.ingestFirehoseBuffer).toBeUndefined();
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/INGEST_DELIVERY_STREAM_NAME|firehose|AWS::S3::|IngestFirehoseBuffer/i);
  });
});

it('lets two stacks with the Firehose buffer share an account and region: they synthesize, and name none of its resources', () => {
  const app = new App({ context: { [SKIP_BUNDLING_CONTEXT]: true } });
  const env = { account: '123456789012', region: 'us-east-1' };
  const stacks = ['PqlRadar', 'PqlRadarStaging'].map(
    (id) => new PqlRadarStack(app, id, { env, config: testConfig({ ingestBuffer: { service: 'firehose' } }), rulesFile: loadRulesFile(testRulesFile) }),
  );
  const [production, staging] = stacks.map((each) => Template.fromStack(each));
  for (const template of [production!, staging!]) {
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    expect(physicalNames(template).filter((name) => /^AWS::(S3|KinesisFirehose|SQS|Logs|Lambda|IAM)::/.test(name))).toEqual([]);
  }
  expect(physicalNames(production!).filter((name) => physicalNames(staging!).includes(name))).toEqual([]);
});

describe('IngestFirehoseBuffer', () => {
  const build = (props: Partial<ConstructorParameters<typeof IngestFirehoseBuffer>[2]>) =>
    templateWithTable((stack, storage) => new IngestFirehoseBuffer(stack, 'IngestFirehoseBuffer', { ...storage, ...props }));

  it('takes a buffering interval of 0 to 900 whole seconds, and refuses others', () => {
    build({ bufferingInterval: Duration.seconds(0) }).hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: { BufferingHints: { IntervalInSeconds: 0 } },
    });
    build({ bufferingInterval: Duration.minutes(15) }).hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: { BufferingHints: { IntervalInSeconds: 900 } },
    });
    expect(() => build({ bufferingInterval: Duration.seconds(901) })).toThrow("IngestFirehoseBuffer: bufferingInterval must be 0 to 900 whole seconds (Firehose's range), got 901");
    expect(() => build({ bufferingInterval: Duration.millis(1500) })).toThrow('IngestFirehoseBuffer: bufferingInterval must be 0 to 900 whole seconds (Firehose\'s range), got 1.5');
  });

  it('keeps objects the retention given, in whole days', () => {
    build({ retention: Duration.days(7) }).hasResourceProperties('AWS::S3::Bucket', { LifecycleConfiguration: { Rules: [{ ExpirationInDays: 7 }] } });
    expect(() => build({ retention: Duration.hours(36) })).toThrow('IngestFirehoseBuffer: retention must be a whole number of days, at least 1 (an S3 lifecycle rule\'s unit), got 1 day 12 hours');
  });
});
