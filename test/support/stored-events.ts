import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { eventSortKeyPrefix } from '../../functions/adapters/dynamodb/item-keys';
import { scanAll } from './scan';

/** The messages of every event item in the table, as stored, item after item. */
export async function storedEventMessages(client: DynamoDBClient, tableName: string) {
  return (await scanAll(client, tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).flatMap(eventMessagesOf);
}
