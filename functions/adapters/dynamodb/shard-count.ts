import { GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { metaPartitionKey, shardCountSortKey } from './item-keys';

/**
 * The table records how many shards its `dirty` index is spread over, so that `pql-radar evaluate` works on every
 * shard ingest marks: a count the CLI assumed would silently skip the entities in the shards it does not know, and
 * mark accounts in shards the deployed evaluator never reads. The runtime that owns the table records it: the
 * deployed evaluator (its DIRTY_SHARDS, on its first run in a process) and the local runtime (when it starts).
 *
 * It also keeps every count the table was ever evaluated with, since a shard of a higher count than today's still
 * holds what was written there before the count went down (change lists, the outbox, the sweep index): the evaluator
 * keeps reading those shards (shardsCoveredBy).
 */
const key = { pk: { S: metaPartitionKey }, sk: { S: shardCountSortKey } };

export interface ShardCount {
  /** The count ingest and the evaluator use now. */
  shards: number;
  /** The highest count the table has been evaluated with: the shards there may be something in. */
  highest: number;
}

/** Records the count in use, and returns it with the highest recorded so far. */
export async function recordShardCount(client: DynamoDBClient, tableName: string, shards: number): Promise<ShardCount> {
  const record = async (counts: number[]) =>
    (
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: key,
          UpdateExpression: 'SET shards = :shards ADD shardCounts :counts',
          ExpressionAttributeValues: { ':shards': { N: String(shards) }, ':counts': { NS: counts.map(String) } },
          ReturnValues: 'ALL_OLD',
        }),
      )
    ).Attributes;
  const before = await record([shards]);
  // A table recorded before the counts were kept has only its last count: that one is kept too, once.
  const previous = before?.['shards']?.N;
  if (previous !== undefined && !(before?.['shardCounts']?.NS ?? []).includes(previous)) await record([Number(previous)]);
  return { shards, highest: Math.max(shards, ...countsOf(before)) };
}

/** The recorded count, or undefined when no evaluator or local runtime has recorded one in this table yet. */
export async function readShardCount(client: DynamoDBClient, tableName: string): Promise<ShardCount | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
  if (Item?.['shards']?.N === undefined) return undefined;
  return { shards: Number(Item['shards'].N), highest: Math.max(...countsOf(Item)) };
}

/** Every count an item records: the one in use and those kept. */
const countsOf = (item: Record<string, AttributeValue> | undefined): number[] =>
  [...(item?.['shards']?.N === undefined ? [] : [item['shards'].N]), ...(item?.['shardCounts']?.NS ?? [])].map(Number);
