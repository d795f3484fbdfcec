import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { StoredMessage } from '../../core/messages';
import { eventBodyProjection, eventMessagesOf } from './event-body';
import { uniqueByMessageId } from './event-chunks';
import { entityPartitionPrefix, eventDayOf, eventSortKeyPrefix } from './item-keys';

/**
 * Every event a workspace has stored, as the JSON ingest kept: what `backtest --source dynamodb` replays. A Scan,
 * which reads (and is billed for) the whole table: an offline export, never part of the evaluator's work.
 *
 * Each message once per user and day, as `events()` reads them: the copies of a retried message are under the same
 * user and day, and a Scan returns a partition's items together, in sort-key order, so the items of one user's day
 * come in one run (across pages too); the first copy in the run wins. Only a run is held in memory, never the export.
 */
export async function* storedEventTexts(client: DynamoDBClient, tableName: string, workspace: string): AsyncGenerator<string> {
  let run: { key: string; messages: StoredMessage[] } | undefined;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'begins_with(pk, :users) AND begins_with(sk, :events)',
        ExpressionAttributeValues: { ':users': { S: entityPartitionPrefix(workspace, 'user') }, ':events': { S: eventSortKeyPrefix } },
        ProjectionExpression: `pk, sk, ${eventBodyProjection}`,
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const key = `${item['pk']!.S!}\n${eventDayOf(item['sk']!.S!)}`;
      if (run?.key !== key) {
        if (run) yield* textsOf(run.messages);
        run = { key, messages: [] };
      }
      run.messages.push(...eventMessagesOf(item));
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  if (run) yield* textsOf(run.messages);
}

const textsOf = (messages: StoredMessage[]) => uniqueByMessageId(messages).map((message) => JSON.stringify(message));
