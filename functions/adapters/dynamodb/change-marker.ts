import { UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CapacityTally } from './capacity';
import { changedPartition, changesSortKey, shardOf, type EntityType } from './item-keys';

export interface ChangeMark {
  pk: string;
  type: EntityType;
  id: string;
  days: ReadonlySet<string>;
}

/**
 * Marks an entity for the evaluator: the days it must re-read, a version the evaluator checks before clearing the
 * marker, and the keys of the sparse `dirty` index. The index keys are set only if absent, so repeated marks cost no
 * index write and `dirtySince` stays the time of the oldest unevaluated change (the evaluator's lag).
 * Ingest marks what it stores; the evaluator marks a user's accounts after evaluating the user.
 */
export async function markChanged(
  client: DynamoDBClient,
  tableName: string,
  mark: ChangeMark,
  options: { at: Date; shards: number; capacity?: CapacityTally },
): Promise<void> {
  const output = await client.send(
    new UpdateItemCommand({
      TableName: tableName,
      Key: { pk: { S: mark.pk }, sk: { S: changesSortKey } },
      UpdateExpression:
        'SET entityType = :type, entityId = :id, dirtyShard = if_not_exists(dirtyShard, :shard), dirtySince = if_not_exists(dirtySince, :now) ADD days :days, version :one',
      ExpressionAttributeValues: {
        ':type': { S: mark.type },
        ':id': { S: mark.id },
        ':shard': { S: changedPartition(shardOf(mark.pk, options.shards)) },
        ':now': { S: options.at.toISOString() },
        ':days': { SS: [...mark.days] },
        ':one': { N: '1' },
      },
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  options.capacity?.add('write', output.ConsumedCapacity);
}
