import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { feedbackMethods, ingestMethods } from '../../lib/ingest-api';
import { acknowledgements, nagFindings, reportValidationErrors } from './nag-report';
import { buildStack } from './synth';

describe('AwsSolutions checks', () => {
  it.each([
    // With the default ingest buffer: its bucket, delivery stream, queues, loader and CDK's bucket notifications function.
    ['the stack', {}],
    ['the stack without an ingest buffer', { ingestBuffer: false }],
    // Opt-in: its stream and consumer are not in the stack above.
    ['the stack with the Kinesis ingest buffer', { ingestBuffer: { service: 'kinesis' } }],
    // A Lambda function URL beside the HTTP API.
    ['the stack with an ingest function URL', { ingest: { functionUrl: { reservedConcurrency: 50 } } }],
  ])('find nothing unacknowledged in %s', (_name, config) => {
    const { app } = buildStack({ config, context: reportValidationErrors, validate: true });
    expect(nagFindings(app)).toEqual([]);
  });

  it('report a finding when one appears (the checks really run)', () => {
    const { app, stack } = buildStack({ context: reportValidationErrors });
    new sqs.Queue(stack, 'Unprotected');
    expect(nagFindings(app)).toEqual(
      expect.arrayContaining([
        { plugin: 'AwsSolutions', rule: 'AwsSolutions-SQS3', severity: 'error', path: 'PqlRadar/Unprotected/Resource' },
        { plugin: 'AwsSolutions', rule: 'AwsSolutions-SQS4', severity: 'error', path: 'PqlRadar/Unprotected/Resource' },
      ]),
    );
  });

  it('are acknowledged only where reviewed: one finding each, on the one resource it concerns', () => {
    // The ingest buffer needs no acknowledgement: the same list with it.
    const { app } = buildStack({ config: { ingestBuffer: { service: 'kinesis' } } });
    expect(acknowledgements(app).sort()).toEqual(
      [
        // The CDK custom-resource provider invokes its handler's versions (lib/write-key-bootstrap.ts).
        'PqlRadar/WriteKeyBootstrap/ProviderRole Annotation::AwsSolutions-IAM5[Resource::<WriteKeyBootstrapHandlerFunctionFC19C522.Arn>:*]',
        // Segment clients authenticate with a write key the function checks (lib/ingest-api.ts).
        ...ingestMethods.map((method) => `PqlRadar/IngestApi/HttpApi/${method}--v1--{call} Annotation::AwsSolutions-APIG4`),
        // Feedback links: the signed, expiring, single-use token is the authorization (lib/ingest-api.ts).
        ...feedbackMethods.map((method) => `PqlRadar/IngestApi/HttpApi/${method}--v1--feedback Annotation::AwsSolutions-APIG4`),
        // The product's backend authenticates with a read key the function checks (lib/lead-status-api.ts).
        'PqlRadar/LeadStatusApi/Route Annotation::AwsSolutions-APIG4',
        // Dead-letter queues of schedules and rule targets, which cdk-nag does not recognise as DLQs.
        ...['Evaluator', 'RuleHealth', 'LeadFanout/nurture/Email', 'LeadFanout/nurture/Queue', 'LeadFanout/sales/Lambda1'].map(
          (owner) => `PqlRadar/${owner}/DeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
        // The on-failure destination of the table stream's event source mapping (lib/change-capture.ts), another it does not recognise.
        'PqlRadar/ChangeCapture/FailureQueue Annotation::AwsSolutions-SQS3',
        // The notifiers' rule targets (their FIFO dead-letter queues are the delivery queues' redrive, which it does see).
        ...['LeadFanout/sales/Slack1', 'LeadFanout/sales/Webhook1', 'LeadFanout/Crm/Hubspot1'].map(
          (owner) => `PqlRadar/${owner}/TargetDeadLetterQueue Annotation::AwsSolutions-SQS3`,
        ),
      ].sort(),
    );
  });

  it('are acknowledged in the Firehose ingest buffer only where reviewed: its bucket, the wildcards of object names, CDK\'s notifications function', () => {
    const others = new Set(acknowledgements(buildStack({ config: { ingestBuffer: false } }).app));
    // The default buffer.
    const { app } = buildStack();
    expect(acknowledgements(app).filter((acknowledgement) => !others.has(acknowledgement)).sort()).toEqual(
      [
        // No server access logs for objects that live minutes, each written and deleted by one role (lib/ingest-firehose-buffer.ts).
        'PqlRadar/IngestFirehoseBuffer/Bucket Annotation::AwsSolutions-S1',
        // Firehose names its objects when it writes them: only their prefixes are known.
        'PqlRadar/IngestFirehoseBuffer/DeliveryRole Annotation::AwsSolutions-IAM5[Resource::<IngestFirehoseBufferBucketB0D69D2A.Arn>/requests/*]',
        'PqlRadar/IngestFirehoseBuffer/DeliveryRole Annotation::AwsSolutions-IAM5[Resource::<IngestFirehoseBufferBucketB0D69D2A.Arn>/failed/*]',
        'PqlRadar/IngestFirehoseBuffer/Loader/Role Annotation::AwsSolutions-IAM5[Resource::<IngestFirehoseBufferBucketB0D69D2A.Arn>/requests/*]',
        // CDK attaches the managed policy to its bucket notifications function's role itself.
        'PqlRadar/BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role Annotation::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      ].sort(),
    );
  });
});
