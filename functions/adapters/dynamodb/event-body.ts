import type { StoredMessage } from '../../core/messages';
import type { Item } from './batch-write';
import { compressedJson, compressedJsonOf, type CompressedJsonAttributes } from './compressed-json';
import { eventDictionary } from './dictionaries';

/**
 * How an event item keeps its messages: a JSON array of the messages of one chunk (event-chunks.ts), or, in items
 * written before chunks, one message's JSON; deflated with the Segment messages' dictionary (`zd`, binary), or as
 * text (`msg`) in the rare case that is shorter. Items written before the dictionary hold the text or, deflated with
 * none, `z`. A browser event with its context (page, user agent, library) is about 1 KB of JSON, 0.58 KB deflated
 * alone and 0.29 KB with the dictionary: one write unit, and half the read units each time the evaluator reads the
 * day again; a chunk of a server batch's events of a user deflates by a third more with it than without.
 */

const eventBody: CompressedJsonAttributes = { text: 'msg', deflated: 'z', dictionary: eventDictionary };

export const eventBodyAttributes = (json: string): Item => compressedJson(json, eventBody);

/** The message's JSON text, from either form; undefined for an item that holds no event body. */
export const eventBodyOf = (item: Item): string | undefined => compressedJsonOf(item, eventBody);

/** The messages an event item holds, in stored order: a chunk's array, or the one message of an item written before chunks. */
export function eventMessagesOf(item: Item): StoredMessage[] {
  const body = eventBodyOf(item);
  return body === undefined ? [] : messagesOfBody(body);
}

/** The messages of an event item's body (eventBodyOf). */
export function messagesOfBody(body: string): StoredMessage[] {
  const parsed = JSON.parse(body) as StoredMessage | StoredMessage[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** The attributes to project when only the body is needed. */
export const eventBodyProjection = 'msg, z, zd';
