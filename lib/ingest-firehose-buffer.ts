import { CfnMapping, type CfnResource, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { IngestRequestBuffer } from './ingest-api';
import { bufferStoringFunction, type IngestBufferCommonProps } from './ingest-buffer';
import { ignoreRedundantRoleDependency } from './lambda-function';

/**
 * The ingest buffer's Firehose variant: what its construct, the ingest function's adapter and bench:cost share.
 */

/**
 * The default of the delivery stream's buffering interval, in seconds: Firehose writes what it gathered as one S3 object
 * at most this often (or sooner, at `bufferObjectMegabytes`), and the longer, the more of a visitor's events share a
 * table item. 300 matches the Kinesis variant's batching window.
 */
export const defaultFirehoseBufferSeconds = 300;

/** Where in the bucket Firehose puts the objects of accepted requests; the loader is notified of these only. */
export const bufferObjectsPrefix = 'requests/';

/** The loader function's memory, in MB (bench:cost prices its measured time at it). */
export const bufferLoaderMemoryMb = 1024;

/**
 * The delivery stream's buffering size, in MiB: an object is written at the buffering interval or at this size,
 * whichever comes first. It bounds what one loader invocation reads, holds and stores: 16 MiB is some 17,000 browser
 * requests (a line of 0.95 KB: one event, deflated, in base64), the order of the Kinesis consumer's batch of 10,000 records,
 * with twice that consumer's memory and the same 5 minutes. At the default interval, traffic under about 55 KB a second
 * never reaches it, so the interval alone decides how many of a visitor's events share an item.
 */
export const bufferObjectMegabytes = 16;

/**
 * The default of the bucket's retention, in days: how long an object the loader failed on waits for an operator, as long
 * as its notification in the dead-letter queue (SQS keeps a message 14 days at most), and the longest that helps.
 */
export const defaultBufferObjectDays = 14;

/** Where Firehose would put records it failed to process: outside `bufferObjectsPrefix`, so the loader never sees them. */
const failedObjectsPrefix = 'failed/';

/** The loader's timeout: one object of up to `bufferObjectMegabytes`, written in a few hundred batched calls. */
const loaderTimeout = Duration.minutes(5);

/**
 * Receives of an object's notification before it goes to the dead-letter queue. A failed receive comes back after the
 * queue's visibility timeout (30 minutes), so 10 ride out some 5 hours of a table that cannot be written without
 * anyone's help; an object that still fails then is one the loader cannot store, for an operator (lib/monitoring.ts).
 */
const loaderReceives = 10;

export interface IngestFirehoseBufferProps extends IngestBufferCommonProps {
  /**
   * How long Firehose gathers requests before it writes them to the bucket as one object (sooner at
   * `bufferObjectMegabytes`): the longer, the more of a visitor's events share an item (one write instead of several)
   * and the fewer the loader's invocations, and the later a lead is seen. 0 to 900 seconds.
   * @default Duration.seconds(defaultFirehoseBufferSeconds)
   */
  readonly bufferingInterval?: Duration;
  /**
   * How long the bucket keeps an object: one the loader has stored is deleted at once, so this is how long an object
   * it failed on (its notification in the dead-letter queue, which SQS keeps 14 days at most) waits for an operator.
   * Whole days.
   * @default Duration.days(defaultBufferObjectDays)
   */
  readonly retention?: Duration;
}

/**
 * The ingest buffer without a fixed cost (the Kinesis variant, lib/ingest-buffer.ts, pays for its shards whatever the
 * traffic): ingest puts each accepted request as one record on a Firehose delivery stream (Direct PUT), which writes
 * what it gathered every buffering interval as one object under `requests/` in a bucket; the bucket notifies a queue,
 * from which a loader function stores each object's requests in the table, a chunk per entity and day, and deletes
 * the object. Paid per GB put and per object, so a quiet month costs next to nothing.
 *
 * Nothing accepted is dropped: a failed load is retried (`loaderReceives` times, then the dead-letter queue), the object
 * stays in the bucket until it is stored or `retention` passes, and storing one again is harmless (a chunk's key
 * derives from its messages' ids). Deleting the stack while the bucket still holds objects fails, on purpose: no
 * `autoDeleteObjects`, which would delete accepted events the loader has not stored.
 */
export class IngestFirehoseBuffer extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly deliveryStream: firehose.DeliveryStream;
  /** The buffering interval the delivery stream was given, which its freshness alarm is measured against. */
  public readonly bufferingInterval: Duration;
  /** The bucket's notifications of new objects, which the loader reads. */
  public readonly queue: sqs.Queue;
  /** Notifications of objects the loader failed on `loaderReceives` times. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The function storing an object's requests in the table. */
  public readonly loader: lambda.Function;
  /** Where ingest puts its requests (lib/ingest-api.ts): PutRecord only, rather than grantPutRecords' PutRecordBatch too, one record a request. */
  public readonly requests: IngestRequestBuffer;

  constructor(scope: Construct, id: string, props: IngestFirehoseBufferProps) {
    super(scope, id);
    this.bufferingInterval = props.bufferingInterval ?? Duration.seconds(defaultFirehoseBufferSeconds);
    const intervalSeconds = this.bufferingInterval.toSeconds({ integral: false });
    if (!Number.isInteger(intervalSeconds) || intervalSeconds < 0 || intervalSeconds > 900) {
      throw new Error(`IngestFirehoseBuffer: bufferingInterval must be 0 to 900 whole seconds (Firehose's range), got ${intervalSeconds}`);
    }
    const retention = props.retention ?? Duration.days(defaultBufferObjectDays);
    const retentionDays = retention.toDays({ integral: false });
    if (!Number.isInteger(retentionDays) || retentionDays < 1) {
      throw new Error(`IngestFirehoseBuffer: retention must be a whole number of days, at least 1 (an S3 lifecycle rule's unit), got ${retention.toHumanString()}`);
    }

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      lifecycleRules: [{ expiration: retention, abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      // Deleted with the stack only when empty: see the class comment.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Its objects are written by Firehose and read and deleted by the loader, each by its role alone, and live minutes; ' +
        'server access logs would need a bucket of their own, which would hold more than this one.',
    });

    const bucketId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket);

    const deliveryLogs = new logs.LogGroup(this, 'DeliveryLogs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Firehose's S3 permissions as AWS documents them, on its two prefixes: the role CDK would make gets the bucket's
    // read and write (deleting objects included, which only the loader should), so it is given a role it cannot grow.
    const deliveryRole = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com'),
      inlinePolicies: {
        delivery: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
              resources: [this.bucket.bucketArn],
            }),
            new iam.PolicyStatement({
              actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
              resources: [bufferObjectsPrefix, failedObjectsPrefix].map((prefix) => this.bucket.arnForObjects(`${prefix}*`)),
            }),
            new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [deliveryLogs.logGroupArn] }),
          ],
        }),
      },
    });
    Validations.of(deliveryRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${bufferObjectsPrefix}*]`,
      reason: 'Firehose names each object when it writes it (its time and a random part): only the prefix is known.',
    });
    Validations.of(deliveryRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${failedObjectsPrefix}*]`,
      reason: "Firehose's error output prefix, under which it names objects when it writes them: only the prefix is known.",
    });
    const stackChildren = new Set(Stack.of(this).node.children);
    this.deliveryStream = new firehose.DeliveryStream(this, 'DeliveryStream', {
      destination: new firehose.S3Bucket(this.bucket, {
        role: deliveryRole.withoutPolicyUpdates(),
        bufferingInterval: this.bufferingInterval,
        bufferingSize: Size.mebibytes(bufferObjectMegabytes),
        dataOutputPrefix: bufferObjectsPrefix,
        // Firehose puts here only records a processor or a format conversion failed on, and this stream has neither.
        errorOutputPrefix: failedObjectsPrefix,
        // An object lives until it is loaded, so its size costs next to nothing; how a record is encoded (deflated or
        // not) is for ingest's adapter and the loader to agree, not a second layer for the loader to undo.
        compression: firehose.Compression.UNCOMPRESSED,
        loggingConfig: new firehose.EnableLogging(deliveryLogs),
      }),
      // Encrypted at rest with a key AWS owns: no key to pay for or grant.
      encryption: firehose.StreamEncryption.awsOwnedKey(),
    });
    // DeliveryStream adds its stack a mapping of each region to Firehose's CIDR block, for its connections (to VPC
    // destinations), which nothing here uses: the mapping would be in the template unused, which cfn-lint reports (W7001).
    for (const child of Stack.of(this).node.children) {
      if (child instanceof CfnMapping && !stackChildren.has(child)) Stack.of(this).node.tryRemoveChild(child.node.id);
    }

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // AWS's advice for a Lambda event source: six times the function's timeout, so that retries of throttled
      // invocations do not count as receives.
      visibilityTimeout: Duration.seconds(6 * loaderTimeout.toSeconds()),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: loaderReceives },
    });
    this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SqsDestination(this.queue), { prefix: bufferObjectsPrefix });
    configureNotificationsHandler(this, props.logRetention ?? logs.RetentionDays.ONE_MONTH);
    // CDK's notifications resource depends on the queue explicitly as well as through its ARN: cfn-lint W3005, harmless.
    (this.bucket.node.findChild('Notifications').node.defaultChild as CfnResource).addMetadata('cfn-lint', { config: { ignore_checks: ['W3005'] } });

    this.loader = bufferStoringFunction(this, 'Loader', props, {
      entry: 'functions/ingest-buffer-loader/handler.ts',
      description: "pql-radar ingest buffer (Firehose): the bucket's accepted requests to DynamoDB",
      memorySize: bufferLoaderMemoryMb,
      timeout: loaderTimeout,
    });
    // The objects of accepted requests only: not the failed ones, nor writing the bucket.
    this.loader.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [this.bucket.arnForObjects(`${bufferObjectsPrefix}*`)] }),
    );
    // Without ListBucket, S3 answers a GET of a missing object 403 rather than 404 (NoSuchKey): a notification delivered
    // again after its object was stored and deleted would then fail until dead-lettered. With it, gone means done.
    // Unconditioned: the check behind a GET's 404 carries no s3:prefix for a condition to match.
    this.loader.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }));
    Validations.of(this.loader.role!).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${bufferObjectsPrefix}*]`,
      reason: "Firehose names each object when it writes it (its time and a random part), so only the prefix is known; the loader reads and deletes those objects and nothing else.",
    });
    this.loader.addEventSource(
      new SqsEventSource(this.queue, {
        // One object a message, of up to bufferObjectMegabytes: the timeout and memory are sized for one at a time.
        batchSize: 1,
        reportBatchItemFailures: true,
      }),
    );

    this.requests = { service: 'firehose', action: 'firehose:PutRecord', resource: this.deliveryStream.deliveryStreamArn, name: this.deliveryStream.deliveryStreamName };
  }
}

/**
 * CDK configures bucket notifications with a custom resource whose function (one per stack, at its root) and role are
 * CDK's own. Its code is CDK's Python, which runs the same on arm64, where every function of the stack runs, and its
 * logs go to a log group kept `retention`, as every other function's, rather than the one Lambda would create and keep
 * forever. What cdk-nag and cfn-lint report of it is acknowledged here, with the reason.
 */
function configureNotificationsHandler(scope: Construct, retention: logs.RetentionDays): void {
  const handler = Stack.of(scope).node.children.find((child) => child.node.id.startsWith('BucketNotificationsHandler'));
  if (!handler) throw new Error('IngestFirehoseBuffer: no BucketNotificationsHandler in the stack after adding a bucket notification');
  const logGroup = new logs.LogGroup(scope, 'NotificationsHandlerLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
  const fn = handler.node.defaultChild as CfnResource;
  fn.addPropertyOverride('Architectures', ['arm64']);
  fn.addPropertyOverride('LoggingConfig', { LogGroup: logGroup.logGroupName });
  Validations.of(handler.node.findChild('Role')).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason:
      "CDK's bucket notifications function, run once per deploy to set the bucket's notifications: CDK attaches this managed " +
      'policy (its logs) to its role itself, and it is allowed nothing else but PutBucketNotification on the bucket.',
  });
  ignoreRedundantRoleDependency(handler);
}
