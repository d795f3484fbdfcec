import { QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbChangeCapture } from '../../functions/adapters/dynamodb/change-capture';
import { DynamoDbChangeLists } from '../../functions/adapters/dynamodb/change-lists';
import { mergeMarks } from '../../functions/core/changes';
import { changeListPartitionKey } from '../../functions/adapters/dynamodb/item-keys';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { defaultDirtyShards } from '../../functions/shared/settings';

/** The stream tests' rules: two dashboards within 7 days make a user PQL-A. */
export const twoDashboardsRules = `
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 60 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
`;

/** Reads the table's stream on the test run's DynamoDB Local and marks what changed, as the local runtime does before a run. */
export async function collectChanges(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<number> {
  const stream = new LocalChangeStream(client, tableName, new DynamoDbChangeCapture(client, tableName, shards));
  try {
    return await stream.drain();
  } finally {
    stream.stop();
  }
}

/** Every entity the change lists hold that no run evaluated yet, merged ("type id" -> its days, sorted), whatever the shard. */
export async function listedChanges(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<Map<string, string[]>> {
  const lists = new DynamoDbChangeLists(client, tableName, { shards });
  const pages = await Promise.all(
    Array.from({ length: shards }, async (_, shard) => lists.read(String(shard), { after: await lists.cursor(String(shard)), upTo: '~', limit: Number.MAX_SAFE_INTEGER })),
  );
  return new Map(mergeMarks(pages.flatMap((page) => page.marks)).map((mark) => [`${mark.ref.type} ${mark.ref.id}`, mark.days]));
}

/** How many change list items the table holds, evaluated or not. */
export async function changeListCount(client: DynamoDBClient, tableName: string, shards = defaultDirtyShards): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: shards }, async (_, shard) => {
      const output = await client.send(
        new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey(String(shard)) } }, Select: 'COUNT', ConsistentRead: true }),
      );
      return output.Count ?? 0;
    }),
  );
  return counts.reduce((sum, count) => sum + count, 0);
}
