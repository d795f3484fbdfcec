import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbChangeCapture } from '../../functions/adapters/dynamodb/change-capture';
import { DynamoDbChangeLists, merged } from '../../functions/adapters/dynamodb/change-lists';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { defaultDirtyShards } from '../../functions/shared/settings';

/** Reads the table's stream on the test run's DynamoDB Local and marks what changed, as the local runtime does before a run. */
export async function collectChanges(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<number> {
  const stream = new LocalChangeStream(client, tableName, new DynamoDbChangeCapture(client, tableName, shards));
  try {
    return await stream.drain();
  } finally {
    stream.stop();
  }
}

/** Every entity the change lists hold, merged ("type id" -> its days, sorted), whatever the shard. */
export async function listedChanges(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<Map<string, string[]>> {
  const lists = new DynamoDbChangeLists(client, tableName, { shards });
  const marks = (await Promise.all(Array.from({ length: shards }, (_, shard) => lists.read(String(shard), { skipRun: '', limit: Number.MAX_SAFE_INTEGER })))).flatMap((page) => page.marks);
  return new Map(merged(marks).map((mark) => [`${mark.ref.type} ${mark.ref.id}`, mark.days]));
}

/** How many change list items the table holds. */
export async function changeListCount(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<number> {
  const lists = new DynamoDbChangeLists(client, tableName, { shards });
  const pages = await Promise.all(Array.from({ length: shards }, (_, shard) => lists.read(String(shard), { skipRun: '', limit: Number.MAX_SAFE_INTEGER })));
  return pages.reduce((sum, page) => sum + page.keys.length, 0);
}
