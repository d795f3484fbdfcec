import { type CfnElement, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { IngestBuffer } from '../../lib/ingest-buffer';
import type { PqlRadarStack } from '../../lib/pql-radar-stack';
import { buildStack, synth } from './synth';
import { readTemplate, type Resource, storingEnvironment, storingTableStatements, templateWithTable, type TemplateReader } from './template-reader';

let stack: PqlRadarStack;
let buffer: IngestBuffer;
let template: Template;
let logicalId: TemplateReader['logicalId'];
let resource: TemplateReader['resource'];
let getAtt: TemplateReader['getAtt'];
let statements: TemplateReader['statements'];

beforeAll(() => {
  ({ stack } = buildStack({ config: { ingestBuffer: { service: 'kinesis', shards: 2, batchingWindowSeconds: 30 } } }));
  buffer = stack.ingestBuffer!;
  ({ template, logicalId, resource, getAtt, statements } = readTemplate(stack));
});

describe('with ingestBuffer service kinesis in the config', () => {
  it('has one provisioned stream of the configured shards, encrypted with the AWS managed key, kept 24 hours, unnamed and deleted with the stack', () => {
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    const stream = resource(buffer.stream);
    expect(stream.Properties).toEqual({
      ShardCount: 2,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      RetentionPeriodHours: 24,
    });
    expect(stream.DeletionPolicy).toBe('Delete');
  });

  it('feeds the stream to the consumer from its oldest record, in batches of up to 10,000 over the configured window, retrying (split) until records expire', () => {
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping', { Properties: { EventSourceArn: getAtt(buffer.stream, 'Arn') } })) as Resource[];
    expect(mappings.map((mapping) => mapping.Properties)).toEqual([
      {
        FunctionName: { Ref: logicalId(buffer.consumer) },
        EventSourceArn: getAtt(buffer.stream, 'Arn'),
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 10000,
        MaximumBatchingWindowInSeconds: 30,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: -1,
        // No FunctionResponseTypes: a failing batch is retried whole, not record by record.
      },
    ]);
  });

  it('lets the ingest function put records on the stream, and tells it the stream', () => {
    expect(resource(stack.ingestApi.handler).Properties.Environment.Variables.INGEST_STREAM_NAME).toEqual({ Ref: logicalId(buffer.stream) });
    const kinesis = statements(stack.ingestApi.handler.role!).filter((statement) => JSON.stringify(statement.Action).includes('kinesis:'));
    expect(kinesis).toEqual([{ Effect: 'Allow', Action: 'kinesis:PutRecord', Resource: getAtt(buffer.stream, 'Arn') }]);
  });

  it('gives the consumer the table environment of the ingest function', () => {
    const ingest = resource(stack.ingestApi.handler).Properties.Environment.Variables;
    const consumer = resource(buffer.consumer).Properties;
    expect(consumer.Environment.Variables).toEqual(storingEnvironment({ Ref: logicalId(stack.eventStore.table) }));
    for (const name of ['TABLE_NAME', 'RETENTION_DAYS', 'QUARANTINE_RETENTION_DAYS', 'TIME_ZONE']) expect(consumer.Environment.Variables[name]).toEqual(ingest[name]);
    expect(consumer.Runtime).toBe(resource(stack.ingestApi.handler).Properties.Runtime);
    expect(consumer.Architectures).toEqual(['arm64']);
  });

  it('lets the consumer read the stream, write its logs, and read and write workspace data by key, nothing more', () => {
    expect(statements(buffer.consumer.role!)).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(buffer.consumer.logGroup, 'Arn') },
      ...storingTableStatements(getAtt(stack.eventStore.table, 'Arn')),
      {
        Effect: 'Allow',
        Action: expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator', 'kinesis:DescribeStream', 'kinesis:ListShards']),
        Resource: getAtt(buffer.stream, 'Arn'),
      },
    ]);
  });

  it('alarms on the topic when the consumer fails or has not read the stream for an hour, and charts it', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Resource[];
    const consumer = [{ Name: 'FunctionName', Value: { Ref: logicalId(buffer.consumer) } }];
    const topic = [{ Ref: logicalId(stack.monitoring.alarmTopic) }];
    expect(alarms.filter((alarm) => JSON.stringify(alarm.Properties.Dimensions) === JSON.stringify(consumer)).map((alarm) => alarm.Properties)).toEqual([
      expect.objectContaining({
        AlarmName: 'PqlRadar ingest buffer behind',
        MetricName: 'IteratorAge',
        Namespace: 'AWS/Lambda',
        Statistic: 'Maximum',
        Threshold: 3_600_000,
        EvaluationPeriods: 2,
        TreatMissingData: 'notBreaching',
        AlarmActions: topic,
        OKActions: topic,
      }),
      // Part of `ingest buffer stopped`: no invocation in two hours. No actions of its own.
      expect.objectContaining({
        AlarmName: 'PqlRadar ingest buffer idle',
        MetricName: 'Invocations',
        Statistic: 'Sum',
        Period: 3600,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'breaching',
      }),
      expect.objectContaining({
        AlarmName: 'PqlRadar ingest buffer errors',
        MetricName: 'Errors',
        Statistic: 'Sum',
        Threshold: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: topic,
        OKActions: topic,
      }),
    ]);
    expect(alarms.find((alarm) => alarm.Properties.AlarmName === 'PqlRadar ingest buffer idle')!.Properties.AlarmActions).toBeUndefined();
    // While events arrive: the composite notifies.
    const stoppedAlarm = (Object.values(template.findResources('AWS::CloudWatch::CompositeAlarm')) as Resource[]).find((alarm) => alarm.Properties.AlarmName === 'PqlRadar ingest buffer stopped');
    expect(stoppedAlarm!.Properties).toMatchObject({ AlarmDescription: expect.stringContaining("stream's retention"), AlarmActions: topic, OKActions: topic });
    expect(JSON.stringify(stoppedAlarm!.Properties.AlarmRule)).toMatch(/ALARM\(.*EventsArriving.*\) AND ALARM\(.*IngestBufferStoppedIdle.*\)/);
    // The dashboard's function errors and durations include the consumer.
    expect(JSON.stringify(resource(stack.monitoring.dashboard).Properties.DashboardBody)).toContain('IngestBuffer/Consumer/Function');
  });

  it('takes the defaults for what the config leaves out: one shard, a 300-second window', () => {
    const defaults = synth({ ingestBuffer: { service: 'kinesis' } });
    defaults.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 1 });
    defaults.hasResourceProperties('AWS::Lambda::EventSourceMapping', { MaximumBatchingWindowInSeconds: 300, MaximumRetryAttempts: -1 });
  });

  it("keeps records the config's retentionHours", () => {
    synth({ ingestBuffer: { service: 'kinesis', retentionHours: 72 } }).hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: 72 });
  });
});

describe('with ingestBuffer draining (the first deploy of turning it off)', () => {
  it('keeps the stream and its consumer, and ingest writes the table again: no INGEST_STREAM_NAME, no PutRecord', () => {
    const { stack } = buildStack({ config: { ingestBuffer: { service: 'kinesis', draining: true } } });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { StartingPosition: 'TRIM_HORIZON', MaximumRetryAttempts: -1 });
    const ingest = template.toJSON().Resources[stack.getLogicalId(stack.ingestApi.handler.node.defaultChild as CfnElement)] as Resource;
    expect(ingest.Properties.Environment.Variables.INGEST_STREAM_NAME).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('kinesis:PutRecord');
  });
});

describe('with ingestBuffer false in the config', () => {
  it('has no stream, no consumer, and no INGEST_STREAM_NAME for ingest', () => {
    const { stack } = buildStack({ config: { ingestBuffer: false } });
    const template = Template.fromStack(stack);
    expect(stack.ingestBuffer).toBeUndefined();
    template.resourceCountIs('AWS::Kinesis::Stream', 0);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/INGEST_STREAM_NAME|kinesis:|IngestBuffer/);
  });
});

describe('IngestBuffer', () => {
  const build = (props: Partial<ConstructorParameters<typeof IngestBuffer>[2]>) =>
    templateWithTable((stack, storage) => new IngestBuffer(stack, 'IngestBuffer', { ...storage, ...props }));

  it('keeps records for the retention given', () => {
    build({ retention: Duration.days(7) }).hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: 168 });
  });

  it('refuses a shard count that is not a positive integer', () => {
    expect(() => build({ shards: 0 })).toThrow('IngestBuffer: shards must be a positive integer, got 0');
    expect(() => build({ shards: 1.5 })).toThrow('IngestBuffer: shards must be a positive integer, got 1.5');
  });
});
