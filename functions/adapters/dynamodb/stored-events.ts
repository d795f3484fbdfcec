import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { eventBodyOf, eventBodyProjection } from './event-body';
import { entityPartitionPrefix, eventSortKeyPrefix } from './item-keys';

/**
 * Every event a workspace has stored, as the JSON ingest kept: what `backtest --source dynamodb` replays. A Scan,
 * which reads (and is billed for) the whole table: an offline export, never part of the evaluator's work.
 */
export async function* storedEventTexts(client: DynamoDBClient, tableName: string, workspace: string): AsyncGenerator<string> {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'begins_with(pk, :users) AND begins_with(sk, :events)',
        ExpressionAttributeValues: { ':users': { S: entityPartitionPrefix(workspace, 'user') }, ':events': { S: eventSortKeyPrefix } },
        ProjectionExpression: eventBodyProjection,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const body = eventBodyOf(item);
      if (body !== undefined) yield body;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}
