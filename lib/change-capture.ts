import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterQueue } from './dead-letter-queue';
import { eventSortKeyPrefix, feedbackSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';

/** Stream records to an invocation at most: a busy stream's invocations cost $0.20 per million per 1,000 records. */
export const changeBatchSize = 1000;
/** The default of `batchingWindow`, in seconds. */
export const defaultChangeBatchingSeconds = 60;
/**
 * Retries of a batch that failed, after the halving (which costs no retry) has narrowed it down. The evaluator lists a
 * batch it cannot evaluate for the scheduled run, so what still fails is a batch whose changes could not be listed
 * either (DynamoDB errors past the SDK's own retries) or whose invocation died (a timeout, out of memory): ten retries
 * ride out a DynamoDB disruption of minutes, and a batch that crashes its invocation every time holds up its shard
 * for at most ten more invocations.
 */
export const changeRetryAttempts = 10;
/**
 * How long a record may wait for a successful invocation before it goes to the failure queue, whatever its retries
 * (throttles too, which count no retry): the halving of a batch that times out every time (about ten invocations of the
 * evaluator's 5 minutes for 1,000 records) fits in it, the `change capture behind` alarm has fired 50 minutes before,
 * and the records stay in the stream 23 hours more (its retention is 24) for whoever wants them evaluated before
 * their users' next event.
 */
export const changeMaxRecordAge = Duration.hours(1);

export interface ChangeCaptureProps {
  /** The table, with its stream (KEYS_ONLY): every event item written is a record. */
  readonly table: dynamodb.ITable;
  /** The evaluator function: it evaluates each batch's changed entities as it reads them. */
  readonly evaluator: lambda.IFunction;
  /**
   * How long the stream's records gather before a batch is evaluated: the longer, the fuller the batches (a user
   * active throughout is evaluated once per batch) and the fewer the invocations, and the later a lead is seen. A
   * minute keeps a lead's delay under what it was when a scheduled run every minute took changes listed every 30
   * seconds.
   * @default Duration.seconds(60)
   */
  readonly batchingWindow?: Duration;
}

/**
 * Change capture: the table's stream, filtered to new event items, account profiles and sales feedback, feeds the
 * evaluator, which evaluates the changed users (then the accounts they moved) as it reads them. Lambda's reads of a
 * DynamoDB stream are free, and no change list is written or read for what it evaluates: only what a batch leaves
 * (time, an overlapping save) waits in a list for the scheduled run, and so does a whole batch it cannot evaluate.
 * A batch that fails even so is retried, split in halves, `changeRetryAttempts` times or for `changeMaxRecordAge`,
 * then its place in the stream (shard, sequence numbers, times; not its keys) goes to the failure queue, and the shard
 * moves on: the IteratorAge alarm (lib/monitoring.ts) says when it falls behind, the failure queue's alarm what it
 * skipped. Evaluating a batch again is harmless: an entity's figures are recomputed from its stored events, and its
 * transitions keep their idempotency keys.
 * Not ReportBatchItemFailures: a batch is evaluated as a whole (an entity's records merged, accounts after their
 * members), so no one record fails alone.
 */
export class ChangeCapture extends Construct {
  /** The function reading the stream (the evaluator). */
  public readonly handler: lambda.IFunction;
  /** Where the event source mapping puts the place in the stream of a batch it gave up on. */
  public readonly failureQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: ChangeCaptureProps) {
    super(scope, id);
    this.handler = props.evaluator;
    this.failureQueue = deadLetterQueue(this, 'FailureQueue', "the table stream's event source mapping (its on-failure destination)");
    this.handler.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: changeBatchSize,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(defaultChangeBatchingSeconds),
        bisectBatchOnError: true,
        retryAttempts: changeRetryAttempts,
        maxRecordAge: changeMaxRecordAge,
        onFailure: new SqsDlq(this.failureQueue),
        // Events, profiles (an account's traits; the evaluator skips a user's profile, which comes with an event) and feedback.
        filters: [
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.beginsWith(eventSortKeyPrefix) } } } }),
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.isEqual(profileSortKey) } } } }),
          // Sales feedback waiting for the evaluator.
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.isEqual('INSERT'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.beginsWith(feedbackSortKeyPrefix) } } } }),
        ],
      }),
    );
  }
}
