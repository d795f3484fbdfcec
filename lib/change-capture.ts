import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { changeListPartitionsPattern, eventSortKeyPrefix, feedbackSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';
import { defaultDirtyShards, environmentNames } from '../functions/shared/settings';
import { LambdaFunction } from './lambda-function';

/** What change capture does to the table, and nothing more: writes the evaluator's change lists. */
export const changeCaptureTableAccess = {
  actions: ['dynamodb:PutItem'],
  partitions: [changeListPartitionsPattern],
};

export interface ChangeCaptureProps {
  /** The table, with its stream (KEYS_ONLY): every event item written is a record. */
  readonly table: dynamodb.ITable;
  /** Shards of the `dirty` index, as the evaluator reads them. @default 4 */
  readonly dirtyShards?: number;
  /**
   * How long the stream's records gather before a batch is listed: the longer, the fewer and fuller the change lists
   * (one per shard per batch), and the later the evaluator sees the change.
   * @default Duration.seconds(30)
   */
  readonly batchingWindow?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Change capture: a Lambda on the table's stream that turns the keys of new event items (and account profiles) into
 * the evaluator's change lists, one write per shard per batch, in place of a marker write per entity per ingest
 * request. Lambda's reads of a DynamoDB stream are free, and the filter keeps every other item's record (state,
 * rollups, lists) from invoking it.
 * A failing batch is retried, split in halves, until it succeeds or its records leave the stream (24 hours): the
 * IteratorAge alarm (lib/monitoring.ts) says when it falls behind.
 */
export class ChangeCapture extends Construct {
  public readonly handler: lambda.Function;

  constructor(scope: Construct, id: string, props: ChangeCaptureProps) {
    super(scope, id);
    this.handler = new LambdaFunction(this, 'Function', {
      entry: 'functions/change-capture/handler.ts',
      description: 'pql-radar: marks the users and accounts whose events were written, from the table stream',
      timeout: Duration.seconds(60),
      // A batch is a few thousand keys and a few hundred writes: little memory, mostly waiting on DynamoDB.
      memorySize: 256,
      logRetention: props.logRetention,
      environment: {
        [environmentNames.tableName]: props.table.tableName,
        [environmentNames.dirtyShards]: String(props.dirtyShards ?? defaultDirtyShards),
      },
    }).function;
    this.handler.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 1000,
        maxBatchingWindow: props.batchingWindow ?? Duration.seconds(30),
        bisectBatchOnError: true,
        // Events, profiles (an account's traits; the function skips a user's profile, which comes with an event) and feedback.
        filters: [
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.beginsWith(eventSortKeyPrefix) } } } }),
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.or('INSERT', 'MODIFY'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.isEqual(profileSortKey) } } } }),
          // Sales feedback waiting for the evaluator.
          lambda.FilterCriteria.filter({ eventName: lambda.FilterRule.isEqual('INSERT'), dynamodb: { Keys: { sk: { S: lambda.FilterRule.beginsWith(feedbackSortKeyPrefix) } } } }),
        ],
      }),
    );
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: changeCaptureTableAccess.actions,
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': changeCaptureTableAccess.partitions } },
      }),
    );
  }
}
