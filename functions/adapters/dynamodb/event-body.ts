import type { StoredMessage } from '../../core/messages';
import type { Item } from './batch-write';
import { compressedJson, compressedJsonOf, type CompressedJsonAttributes } from './compressed-json';

/**
 * How an event item keeps its messages: a JSON array of the messages of one chunk (event-chunks.ts), or, in items
 * written before chunks, one message's JSON; as text (`msg`), or, when that is long enough to cost a second write
 * unit (DynamoDB bills writes per KB, reads per 4 KB), deflated (`z`, binary). A browser event with its context (page,
 * user agent, campaign) is about 1.1 KB of JSON and under 0.6 KB deflated: one write unit instead of two, and half
 * the read units when the evaluator reads the day again; a chunk of a dozen deflates further still.
 */

const eventBody: CompressedJsonAttributes = { text: 'msg', deflated: 'z' };

export const eventBodyAttributes = (json: string): Item => compressedJson(json, eventBody);

/** The message's JSON text, from either form; undefined for an item that holds no event body. */
export const eventBodyOf = (item: Item): string | undefined => compressedJsonOf(item, eventBody);

/** The messages an event item holds, in stored order: a chunk's array, or the one message of an item written before chunks. */
export function eventMessagesOf(item: Item): StoredMessage[] {
  const body = eventBodyOf(item);
  if (body === undefined) return [];
  const parsed = JSON.parse(body) as StoredMessage | StoredMessage[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The attributes to project when only the body is needed. */
export const eventBodyProjection = 'msg, z';
