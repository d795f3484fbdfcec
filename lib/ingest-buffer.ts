import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { grantTableAccess, type IngestRequestBuffer, type IngestStorageProps, ingestStorageEnvironment, storingTableAccess } from './ingest-api';
import { LambdaFunction, type LambdaFunctionProps } from './lambda-function';

/**
 * Stream records to an invocation at most (each is one request's accepted messages), Lambda's maximum: a batch
 * closes at this many records or at the window, whichever comes first, and only a visitor's events in one batch share
 * an item, so the window decides up to some 33 requests a second per shard (10,000 in 300 s).
 */
export const bufferBatchSize = 10_000;
/** The default of `batchingWindow`, in seconds: Lambda's maximum, since the buffer is there to save writes. */
export const defaultBufferBatchingSeconds = 300;

/** What both ingest buffers take: the Kinesis one (`IngestBuffer`) and the Firehose one (lib/ingest-firehose-buffer.ts). */
export interface IngestBufferCommonProps extends IngestStorageProps {
  /**
   * How long the logs of the function storing the buffer's requests are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

export interface IngestBufferProps extends IngestBufferCommonProps {
  /**
   * Provisioned shards of the stream: each takes 1,000 records (requests) or 1 MB a second, and costs the same
   * whatever the traffic. The consumer reads each shard with one invocation at a time.
   * @default 1
   */
  readonly shards?: number;
  /**
   * How long the stream keeps a record. Records older than that are lost if the consumer cannot write to the table for
   * that long (the iterator-age alarm of lib/monitoring.ts fires long before); a retention over 24 hours (up to 365
   * days) costs more per shard hour.
   * @default Duration.hours(24)
   */
  readonly retention?: Duration;
  /**
   * How long the stream's records gather before the consumer writes a batch: the longer, the more of a visitor's
   * events share an item (one write instead of several) and the fewer the invocations, and the later a lead is seen
   * (the table stream's minute comes on top). At most 5 minutes. Measured on analytics.js sessions (bench:cost):
   * 0.29 write units per event at 5 minutes, 0.63 at one.
   * @default Duration.seconds(300)
   */
  readonly batchingWindow?: Duration;
}

/**
 * The ingest buffer's Kinesis variant: the ingest function still authenticates and validates every request and answers
 * it as before, but puts a request of one message on a Kinesis stream as a record instead of writing it to the table
 * (a batch is written at once); a consumer function reads the stream in batches and stores each batch's events a
 * chunk per entity and day, so a visitor's several events in a batching window share one item. Fewer DynamoDB writes
 * for browser traffic (one event per request), for a provisioned shard's fixed monthly cost: the Firehose variant
 * (lib/ingest-firehose-buffer.ts), paid per use, is the default.
 *
 * A failing batch is retried, split in halves, until it succeeds or its records leave the stream (`retention`):
 * a record is events ingest has already accepted, answered 200 for, so dropping it earlier would lose them. Storing a
 * batch again is harmless: a chunk's key derives from its messages' ids, and readers keep one copy of a message stored
 * twice (functions/adapters/dynamodb/event-store.ts).
 */
export class IngestBuffer extends Construct {
  public readonly stream: kinesis.Stream;
  /** The stream's provisioned shards. */
  public readonly shards: number;
  /** The function writing the stream's records to the table. */
  public readonly consumer: lambda.Function;
  /** Where ingest puts its requests (lib/ingest-api.ts): PutRecord only, rather than grantWrite's PutRecords and ListShards, one record a request. */
  public readonly requests: IngestRequestBuffer;

  constructor(scope: Construct, id: string, props: IngestBufferProps) {
    super(scope, id);
    const shards = props.shards ?? 1;
    if (!Number.isInteger(shards) || shards < 1) throw new Error(`IngestBuffer: shards must be a positive integer, got ${shards}`);
    this.shards = shards;

    this.stream = new kinesis.Stream(this, 'Stream', {
      streamMode: kinesis.StreamMode.PROVISIONED,
      shardCount: shards,
      retentionPeriod: props.retention ?? Duration.hours(24),
      // The AWS managed key (aws/kinesis): encrypted at rest, with no key to pay for or grant.
      encryption: kinesis.StreamEncryption.MANAGED,
      // A stream retained after its consumer is gone would cost its shards every month and be read by nothing.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.consumer = bufferStoringFunction(this, 'Consumer', props, {
      entry: 'functions/ingest-buffer/handler.ts',
      description: "pql-radar ingest buffer: the stream's accepted messages to DynamoDB",
      memorySize: 512,
      // A full batch is 10,000 requests' messages, written in a few hundred batched calls; a timed-out batch is retried.
      timeout: Duration.minutes(5),
    });
    this.consumer.addEventSource(
      new KinesisEventSource(this.stream, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: bufferBatchSize,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(defaultBufferBatchingSeconds),
        bisectBatchOnError: true,
        // Until the record leaves the stream: it holds events already answered 200, which no client will send again.
        retryAttempts: -1,
        // The whole batch is retried (and split): storing a record's messages again is harmless (see above).
        reportBatchItemFailures: false,
      }),
    );

    this.requests = { service: 'kinesis', action: 'kinesis:PutRecord', resource: this.stream.streamArn, name: this.stream.streamName };
  }
}

/**
 * The function storing a buffer's requests in the table: with the ingest function's storage settings, and the table
 * access storing takes (`storingTableAccess`), nothing more.
 */
export function bufferStoringFunction(
  scope: Construct,
  id: string,
  props: IngestBufferCommonProps,
  fn: Pick<LambdaFunctionProps, 'entry' | 'description' | 'memorySize' | 'timeout'>,
): lambda.Function {
  const storing = new LambdaFunction(scope, id, { ...fn, logRetention: props.logRetention, environment: ingestStorageEnvironment(props) }).function;
  grantTableAccess(storing, props.table, storingTableAccess);
  return storing;
}
