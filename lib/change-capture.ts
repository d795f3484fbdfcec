import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { eventSortKeyPrefix, feedbackSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';

/** Stream records to an invocation at most: a busy stream's invocations cost $0.20 per million per 1,000 records. */
export const changeBatchSize = 1000;
/** The default of `batchingWindow`, in seconds. */
export const defaultChangeBatchingSeconds = 60;

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
 * (time, an overlapping save) waits in a list for the scheduled run.
 * A failing batch is retried, split in halves, until it succeeds or its records leave the stream (24 hours): the
 * IteratorAge alarm (lib/monitoring.ts) says when it falls behind. Evaluating a batch again is harmless: an entity's
 * figures are recomputed from its stored events, and its transitions keep their idempotency keys.
 */
export class ChangeCapture extends Construct {
  /** The function reading the stream (the evaluator). */
  public readonly handler: lambda.IFunction;

  constructor(scope: Construct, id: string, props: ChangeCaptureProps) {
    super(scope, id);
    this.handler = props.evaluator;
    this.handler.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: changeBatchSize,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(defaultChangeBatchingSeconds),
        bisectBatchOnError: true,
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
