import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { eventSortKeyPrefix } from '../../functions/adapters/dynamodb/item-keys';
import { validateMessage, type AcceptedMessage } from '../../functions/core/messages';
import { scanAll } from './scan';

/** The messages of every event item in the table, as stored, item after item. */
export async function storedEventMessages(client: DynamoDBClient, tableName: string) {
  return (await scanAll(client, tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).flatMap(eventMessagesOf);
}

/**
 * `count` accepted tracks of workspace acme's user ann, `big0`, `big1`, ..., each with 22,000 random bytes in base64 (under
 * the 32 KB a message may have, and deflating little): a request larger than a buffer's record.
 */
export function largeTracks(count: number, timestamp: string, receivedAt: Date): AcceptedMessage[] {
  return Array.from({ length: count }, (_, index) => {
    const outcome = validateMessage({ type: 'track', event: 'Blob', userId: 'ann', messageId: `big${index}`, timestamp, properties: { blob: randomBytes(22_000).toString('base64') } }, index, 'acme', receivedAt);
    if ('reason' in outcome) throw new Error(outcome.reason);
    return outcome;
  });
}
