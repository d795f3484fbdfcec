import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbChangeCapture } from '../../functions/adapters/dynamodb/change-capture';
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
