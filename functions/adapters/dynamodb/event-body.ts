import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Item } from './batch-write';

/**
 * How an event's message is kept in its item: as JSON text (`msg`), or, when that is long enough to cost a second
 * write unit (DynamoDB bills writes per KB, reads per 4 KB), deflated (`z`, binary). A browser event with its
 * context (page, user agent, campaign) is about 1.1 KB of JSON and under 0.6 KB deflated: one write unit instead
 * of two, and half the read units when the evaluator reads the day again.
 */

/** Below this, deflating cannot bring the item under a smaller billing unit worth the CPU. */
const deflateFrom = 600;

export function eventBodyAttributes(json: string): Item {
  if (Buffer.byteLength(json) < deflateFrom) return { msg: { S: json } };
  const deflated = deflateRawSync(json);
  return deflated.length < Buffer.byteLength(json) ? { z: { B: deflated } } : { msg: { S: json } };
}

/** The message's JSON text, from either form; undefined for an item that holds no event body. */
export function eventBodyOf(item: Item): string | undefined {
  const deflated = item['z']?.B;
  if (deflated !== undefined) return inflateRawSync(deflated).toString('utf8');
  return item['msg']?.S;
}

/** The attributes to project when only the body is needed. */
export const eventBodyProjection = 'msg, z';
