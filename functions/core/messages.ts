import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { formatPath } from './field-path';
import { identifyTraits, isPlainObject } from './message-traits';
import { identityOf, type Identity } from './identity';
import { messageTypes, optionalContextFields, optionalFields, segmentMessageSchema, type MessageType, type SegmentMessage } from './segment-schema';

/** The Segment HTTP API's own limits, so SDKs that already respect them never hit ours. */
export const ingestLimits = {
  maxEventBytes: 32 * 1024,
  maxRequestBytes: 500 * 1024,
  maxBatchSize: 2500,
  /** Deeper JSON than this is almost certainly an attack or a bug, and recursion on it is what crashes parsers. */
  maxDepth: 32,
} as const;

/** Client text echoed back in answers and rejections (messageId, field paths) is cut to this many characters. */
const maxEchoedChars = 200;
/** A valid message, normalised: the fields the store needs, and the message itself as it will be kept. */
export interface AcceptedMessage {
  index: number;
  messageId: string;
  type: MessageType;
  /** Track: the event name; page and screen: their name, when given. */
  name?: string;
  /** After clock-skew correction, ISO-8601 UTC. */
  timestamp: string;
  /** The message had no time of its own: its timestamp is the time it was received, different on every retry. */
  serverTimed: boolean;
  /** Whom the event belongs to: the user of its userId, else the anonymous visitor of its anonymousId (core/identity). */
  identity: Identity;
  /** The account named by the message itself (group call, or context.groupId). */
  groupId?: string;
  /** identify: user traits; group: account traits. */
  traits?: Record<string, unknown>;
  /** alias: the identity being merged into userId. */
  previousId?: string;
  /** The message as received and validated (batch context merged, messageId and timestamp resolved, no writeKey). */
  message: StoredMessage;
}

/** A message as it is stored: the Segment message, whatever fields it has, with its type, id and resolved time. */
export type StoredMessage = Record<string, unknown> & { type: MessageType; messageId: string; timestamp: string };

export interface Rejection {
  index: number;
  messageId?: string;
  /** Field path inside the message, e.g. `properties.plan`; empty for the message as a whole. */
  path: string;
  reason: string;
}

export interface RejectedMessage extends Rejection {
  /** The message as sent (writeKey removed), for the quarantine. */
  raw: unknown;
}

/**
 * Validates one message; returns it normalised, or the first reason it cannot be stored. `invalidBytes`: the request
 * body had bytes that are not UTF-8 (hasInvalidBytes), so the message is searched for their marks. `asSent`: the
 * message before the request's own fields were added to it (a batch's context and sentAt, a single call's type), which
 * the per-event limit is measured on, as the SDKs measure it; by default `raw`. `receivedAtKnown`: false when
 * `receivedAt` stands in for a time not known (a backtest's events without receivedAt): no time is then too far
 * ahead of it. @default true. `readAt`: when the message is read (a backtest's run): whatever it was received at, no
 * event had happened by then, so a time more than a day after it is refused as one after the receipt is.
 * `absentDropped`: `raw` has been through withoutAbsentFields already (ingest's batch items, so that the batch's
 * context and sentAt fill what an item left absent), so it is not run again.
 */
export function validateMessage(
  raw: unknown,
  index: number,
  workspace: string,
  receivedAt: Date,
  options: { invalidBytes?: boolean; asSent?: unknown; receivedAtKnown?: boolean; readAt?: Date; absentDropped?: boolean } = {},
): AcceptedMessage | RejectedMessage {
  // Echoed in the answer and kept in the quarantine: bounded, whatever the client sent.
  const messageId = isPlainObject(raw) && typeof raw['messageId'] === 'string' ? raw['messageId'].slice(0, maxEchoedChars) : undefined;
  const reject = (path: string, reason: string): RejectedMessage => ({ index, ...(messageId ? { messageId } : {}), path: path.slice(0, maxEchoedChars), reason, raw });

  if (!isPlainObject(raw)) return reject('', 'must be a JSON object');
  // Depth first: measuring the size serialises the message as sent, and serialising thousands of levels overflows the
  // stack. What the request replaced in it (a single call's own type, which its path names) is checked as well.
  const unsafe = findUnsafeStructure(raw) ?? unsafeReplaced(raw, options.asSent);
  if (unsafe) return reject(unsafe.path, unsafe.reason);
  const invalidAt = options.invalidBytes ? findInvalidBytes(raw) : undefined;
  if (invalidAt !== undefined) return reject(invalidAt, 'holds bytes that are not valid UTF-8');
  const size = Buffer.byteLength(JSON.stringify(options.asSent ?? raw));
  if (size > ingestLimits.maxEventBytes) return reject('', `is ${size} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed per event`);

  const result = segmentMessageSchema.safeParse(options.absentDropped ? raw : withoutAbsentFields(raw), { reportInput: true });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return reject(formatPath(issue.path), describeIssue(issue));
  }
  const time = resolveTimestamp(result.data, receivedAt);
  const outOfRange = timeOutOfRange(result.data, time, receivedAt, options.receivedAtKnown ?? true, options.readAt);
  if (outOfRange) return reject(result.data.timestamp !== undefined ? 'timestamp' : 'originalTimestamp', outOfRange);
  return normalise(result.data, time, index, workspace);
}

/** The optional fields an empty string stands in for "not given" in (a track's empty event stays an error). */
const emptyMeansAbsent = ['userId', 'anonymousId', 'name'];

/**
 * The message without the fields an SDK sent to say "not given": an optional field of its type that is null
 * (analytics-python always sends a page's name and category, None by default); an empty userId or anonymousId
 * (RudderStack before identify); an empty page or screen name (analytics-ruby's default). They are dropped, not kept
 * as null: the stored message is then the one the SDK would have sent without them, and what reads it
 * (message.properties, message.context?.groupId, message.name, the identity's ids) finds an object, a string or
 * undefined, never null. A required field left null or empty stays, and validation names it (null as missing).
 * Fields the type does not define are kept as sent, null or not. The message itself is returned when nothing is
 * dropped.
 */
export function withoutAbsentFields(message: Record<string, unknown>): Record<string, unknown> {
  const type = message['type'];
  const optional = typeof type === 'string' ? optionalFields.get(type) : undefined;
  if (optional === undefined) return message;
  const absent = [...optional].filter((key) => message[key] === null);
  for (const key of emptyMeansAbsent) if (optional.has(key) && message[key] === '') absent.push(key);
  const context = message['context'];
  const keptContext = isPlainObject(context) ? withoutAbsentContextFields(context) : context;
  if (absent.length === 0 && keptContext === context) return message;
  const kept = { ...message };
  for (const key of absent) delete kept[key];
  if (keptContext !== context) kept['context'] = keptContext;
  return kept;
}

/** A context without its optional fields sent as null (withoutAbsentFields); the context itself when there are none. */
export function withoutAbsentContextFields(context: Record<string, unknown>): Record<string, unknown> {
  const absent = [...optionalContextFields].filter((key) => context[key] === null);
  if (absent.length === 0) return context;
  const kept = { ...context };
  for (const key of absent) delete kept[key];
  return kept;
}

function normalise(message: SegmentMessage, time: Date, index: number, workspace: string): AcceptedMessage {
  const timestamp = time.toISOString();
  const hasOwnTime = message.timestamp !== undefined || message.originalTimestamp !== undefined;
  const messageId = message.messageId ?? derivedMessageId(workspace, message, index);
  const groupId = message.type === 'group' ? message.groupId : message.context?.groupId;
  const name = message.type === 'track' ? message.event : message.type === 'page' || message.type === 'screen' ? message.name : undefined;
  // Validated: both places hold a JSON object when present.
  const traits = message.type === 'identify' ? (identifyTraits(message) as Record<string, unknown> | undefined) : message.type === 'group' ? message.traits : undefined;
  return {
    index,
    messageId,
    type: message.type,
    ...(name !== undefined ? { name } : {}),
    timestamp,
    serverTimed: !hasOwnTime,
    identity: identityOf(message),
    ...(groupId !== undefined ? { groupId } : {}),
    ...(traits !== undefined ? { traits } : {}),
    ...(message.type === 'alias' ? { previousId: message.previousId } : {}),
    message: { ...message, messageId, timestamp },
  };
}

/**
 * Segment's clock-skew correction: a device clock may be wrong, so timestamp = receivedAt - (sentAt - originalTimestamp),
 * where originalTimestamp is the time the device gave the event: the SDKs (analytics.js, the mobile and server
 * libraries) send it as `timestamp`, with the `sentAt` of the request. A message holding both `timestamp` and
 * `originalTimestamp` was resolved already (an export of Segment data): its `timestamp` is the corrected time. Without
 * `sentAt` there is no measure of the skew, and the time is taken as given. The skew is rounded to whole seconds:
 * sub-second differences are network latency, not a wrong clock, and rounding makes a retried message resolve to the
 * same timestamp, so it rewrites the same stored item.
 */
export function resolveTimestamp(message: MessageTimes, receivedAt: Date): Date {
  const given = message.originalTimestamp ?? message.timestamp;
  if (given === undefined) return receivedAt;
  if (!skewCorrected(message)) return new Date(message.timestamp ?? given);
  const skewSeconds = Math.round((receivedAt.getTime() - Date.parse(message.sentAt!)) / 1000);
  return new Date(Date.parse(given) + skewSeconds * 1000);
}

interface MessageTimes {
  timestamp?: string | undefined;
  originalTimestamp?: string | undefined;
  sentAt?: string | undefined;
}

/** Whether resolveTimestamp corrects the message's time by its sentAt: a device's time, sent with the request's. */
const skewCorrected = (message: MessageTimes): boolean =>
  message.sentAt !== undefined && (message.timestamp === undefined) !== (message.originalTimestamp === undefined);

/**
 * A message sent without a messageId gets one derived from its content and position, not a random one, so that an
 * SDK retrying the same request does not store the message twice. The time it was received is not part of it (a retry
 * is received later): the same message without id nor time sent again is taken for a retry.
 */
function derivedMessageId(workspace: string, message: SegmentMessage, index: number): string {
  const { sentAt: _sentAt, ...content } = message;
  const digest = createHash('sha256')
    .update(`${workspace}\n${index}\n${JSON.stringify(content)}`)
    .digest('hex');
  return `auto-${digest.slice(0, 32)}`;
}

/** The Segment fields that name an identity: SDKs may send them as numbers, which must keep every digit. */
const identifierFields = new Set(['userId', 'anonymousId', 'groupId', 'previousId', 'messageId']);

/**
 * JSON.parse, except that an integer written as an identifier's value (`"userId": 12345678901234567890`) is read as
 * the string of its digits: as a number it would be rounded past 2^53, and two users would become one.
 */
export function parseMessageJson(text: string): unknown {
  // Sixteen digits in a row are needed to leave the safe integers; most bodies have none and take the fast path.
  if (!hasSixteenDigits(text)) return JSON.parse(text);
  return JSON.parse(quoteLongIdentifiers(text));
}

const isDigit = (code: number) => code >= 48 && code <= 57;

/**
 * /\d{16}/.test(text), looking at every sixteenth character only: sixteen characters in a row always hold one of
 * them, so a run is measured only where one is a digit. A third of the regular expression's time (a backtest reads
 * every line through here).
 */
function hasSixteenDigits(text: string): boolean {
  for (let at = 15; at < text.length; at += 16) {
    if (!isDigit(text.charCodeAt(at))) continue;
    let start = at;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    while (end < text.length && end - start < 16 && isDigit(text.charCodeAt(end))) end++;
    if (end - start >= 16) return true;
  }
  return false;
}

/** Puts quotes around integer literals of 16 or more digits that are the value of an identifier field. */
function quoteLongIdentifiers(text: string): string {
  let out = '';
  let copiedUpTo = 0;
  let lastString = '';
  let i = 0;
  while (i < text.length) {
    const char = text[i]!;
    if (char === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      lastString = text.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (char === ':') {
      let start = i + 1;
      while (start < text.length && /\s/.test(text[start]!)) start++;
      const literal = /^-?\d+(?=[\s,}\]]|$)/.exec(text.slice(start, start + 400))?.[0];
      if (literal !== undefined && identifierFields.has(lastString) && !Number.isSafeInteger(Number(literal))) {
        out += `${text.slice(copiedUpTo, start)}"${literal}"`;
        copiedUpTo = start + literal.length;
        i = copiedUpTo;
        continue;
      }
    }
    i++;
  }
  return out + text.slice(copiedUpTo);
}

/**
 * Decodes UTF-8 without losing what is not UTF-8: each invalid byte becomes a lone surrogate (which valid UTF-8 never
 * decodes to), so validation refuses the message that holds it, naming the field, instead of storing U+FFFD and
 * letting distinct byte sequences become one identifier.
 */
export function decodeUtf8(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let text = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const length = validSequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    text += bytes.toString('utf8', start, i) + invalidByteMark;
    i++;
    start = i;
  }
  return text + bytes.toString('utf8', start);
}

/** What decodeUtf8 puts for an invalid byte: a lone low surrogate, which nothing else in decoded text produces. */
const invalidByteMark = '\udfff';
const loneMark = /(?<![\ud800-\udbff])\udfff/;

/** True when the decoded request body had bytes that are not UTF-8 (before its JSON escapes are read). */
export const hasInvalidBytes = (decodedBody: string): boolean => loneMark.test(decodedBody);

/** The path of the first key or string that holds an invalid byte's mark; called once the depth is known to be bounded. */
function findInvalidBytes(value: unknown, path: (string | number)[] = []): string | undefined {
  if (typeof value === 'string') return loneMark.test(value) ? formatPath(path) : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    if (loneMark.test(key)) return formatPath(at);
    const found = findInvalidBytes(item, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The length of the well-formed UTF-8 sequence at `i` (Unicode's table 3-7), or 0 when there is none. */
function validSequenceLength(bytes: Buffer, i: number): number {
  const first = bytes[i]!;
  if (first < 0x80) return 1;
  const continuation = (at: number, low = 0x80, high = 0xbf) => at < bytes.length && bytes[at]! >= low && bytes[at]! <= high;
  if (first >= 0xc2 && first <= 0xdf) return continuation(i + 1) ? 2 : 0;
  if (first >= 0xe0 && first <= 0xef) {
    const [low, high] = first === 0xe0 ? [0xa0, 0xbf] : first === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return continuation(i + 1, low, high) && continuation(i + 2) ? 3 : 0;
  }
  if (first >= 0xf0 && first <= 0xf4) {
    const [low, high] = first === 0xf0 ? [0x90, 0xbf] : first === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return continuation(i + 1, low, high) && continuation(i + 2) && continuation(i + 3) ? 4 : 0;
  }
  return 0;
}

/** Events before this are refused: a time that old is a wrong device clock or a forged one. */
const earliestEventTime = Date.UTC(2000, 0, 1);
/** Beyond this a day is no longer YYYY-MM-DD, which the stored keys are made of. */
const latestEventTime = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/**
 * How far past the time it was received an event may land: a skew-corrected time is one the device says has passed,
 * and any other time further ahead is an event that has not happened (a wrong clock, a test's fixture). Counted, it
 * would match windows now and keep its lead's last activity in the future, so inactivity could never drop it.
 */
export const maxFutureMs = 86_400_000;

/** Why a resolved time cannot be stored, or undefined when it can. */
function timeOutOfRange(message: SegmentMessage, time: Date, receivedAt: Date, receivedAtKnown: boolean, readAt: Date | undefined): string | undefined {
  if (message.timestamp === undefined && message.originalTimestamp === undefined) return undefined; // the receive time is trusted
  const ms = time.getTime();
  const corrected = skewCorrected(message);
  // A corrected time is bounded by the receipt even where the receipt stands in for one not known (a backtest's sentAt).
  const aheadBound = corrected || receivedAtKnown ? receivedAt.getTime() + maxFutureMs : Number.POSITIVE_INFINITY;
  // Nothing had happened after the message was read: the bound of a backtest's lines without receivedAt (a wrong
  // clock's sentAt, their receipt's stand-in, is as wrong as their timestamp).
  const readBound = readAt !== undefined ? readAt.getTime() + maxFutureMs : Number.POSITIVE_INFINITY;
  const latest = Math.min(latestEventTime, aheadBound, readBound);
  if (ms >= earliestEventTime && ms <= latest) return undefined;
  const resolved = Number.isNaN(ms) ? 'no valid time' : new Date(ms).toISOString();
  // Named by the nearer bound it passes.
  if (ms > readBound && readBound < aheadBound && ms <= latestEventTime) {
    return `is ${resolved}, more than a day after it was read (${readAt!.toISOString()}): an event not yet happened, from a wrong clock`;
  }
  if (corrected) return `with sentAt, resolves to ${resolved} after clock-skew correction: outside 2000-01-01 to one day after the request was received`;
  if (ms > aheadBound && ms <= latestEventTime) {
    return `is ${resolved}, more than a day after the request was received (${receivedAt.toISOString()}): an event not yet happened, from a wrong clock`;
  }
  return `is ${resolved}: outside 2000-01-01 to 9999-12-31`;
}

/**
 * Why a batch's own context cannot be added to its messages, or undefined when it can. It is bounded as a message is:
 * added to each, it could otherwise make every one of them as large as the request.
 */
export function batchContextProblem(context: Record<string, unknown>, messages: number): string | undefined {
  // Depth first, as for a message: serialising thousands of levels overflows the stack.
  const unsafe = findUnsafeStructure(context);
  if (unsafe) return `${unsafe.path ? `${unsafe.path}: ` : ''}${unsafe.reason}`;
  const size = Buffer.byteLength(JSON.stringify(context));
  if (size > ingestLimits.maxEventBytes) return `is ${size} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed: it is added to every message of the batch`;
  // Stored with each message, a context of 32 KB in a batch of 2,500 would store some 80 MB from a request of a few KB
  // (gzipped): what the batch's messages may add in all is bounded as a request is.
  if (size * messages > ingestLimits.maxRequestBytes) {
    return `is ${size} bytes, added to each of the batch's ${messages} messages: ${size * messages} bytes in all, more than the ${ingestLimits.maxRequestBytes} bytes a request may hold; send a smaller context, or fewer messages a batch`;
  }
  return undefined;
}

/** `__proto__` keys and very deep nesting are refused: both are how JSON payloads attack the code that reads them later. */
function findUnsafeStructure(value: unknown, path: (string | number)[] = []): { path: string; reason: string } | undefined {
  if (path.length > ingestLimits.maxDepth) return { path: formatPath(path), reason: `nests deeper than ${ingestLimits.maxDepth} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnsafeStructure(value[i], [...path, i]);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      if (key === '__proto__') return { path: formatPath([...path, key]), reason: 'the key "__proto__" is not allowed' };
      const found = findUnsafeStructure((value as Record<string, unknown>)[key], [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

/** findUnsafeStructure of what the client sent under the keys the message holds something else at. */
function unsafeReplaced(message: Record<string, unknown>, asSent: unknown): { path: string; reason: string } | undefined {
  if (!isPlainObject(asSent) || asSent === message) return undefined;
  for (const key of Object.keys(asSent)) {
    if (asSent[key] === message[key]) continue;
    const found = findUnsafeStructure(asSent[key], [key]);
    if (found) return found;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && issue.path.length === 1 && issue.path[0] === 'type') {
    return `must be one of ${messageTypes.join(', ')}`;
  }
  // withoutAbsentFields leaves null only in required fields: null there is as missing as no field at all.
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && (issue.input === undefined || issue.input === null)) return 'is required';
  return issue.message;
}

export { identifyTraits, isPlainObject };
