import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { metaPartitionKey, shardCountSortKey } from './item-keys';

/**
 * The table records how many shards its `dirty` index is spread over, so that `pql-radar evaluate` works on every
 * shard ingest marks: a count the CLI assumed would silently skip the entities in the shards it does not know, and
 * mark accounts in shards the deployed evaluator never reads. The runtime that owns the table records it: the
 * deployed evaluator (its DIRTY_SHARDS, on its first run in a process) and the local runtime (when it starts).
 */
const key = { pk: { S: metaPartitionKey }, sk: { S: shardCountSortKey } };

export async function recordShardCount(client: DynamoDBClient, tableName: string, shards: number): Promise<void> {
  await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key, shards: { N: String(shards) } } }));
}

/** The recorded count, or undefined when no evaluator or local runtime has recorded one in this table yet. */
export async function readShardCount(client: DynamoDBClient, tableName: string): Promise<number | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
  return Item?.['shards']?.N === undefined ? undefined : Number(Item['shards'].N);
}
