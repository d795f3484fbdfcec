import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { formatPath } from './field-path';
import { messageTypes, segmentMessageSchema, type MessageType, type SegmentMessage } from './segment-schema';

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
  /** The user the event belongs to: userId, or `anonymous:<anonymousId>` before identification. */
  userKey: string;
  /** The account named by the message itself (group call, or context.groupId). */
  groupId?: string;
  /** identify: user traits; group: account traits. */
  traits?: Record<string, unknown>;
  /** alias: the identity being merged into userId. */
  previousId?: string;
  /** The message as received and validated (batch context merged, messageId and timestamp resolved, no writeKey). */
  message: Record<string, unknown>;
}

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

/** Validates one message; returns it normalised, or the first reason it cannot be stored. */
export function validateMessage(raw: unknown, index: number, workspace: string, receivedAt: Date): AcceptedMessage | RejectedMessage {
  // Echoed in the answer and kept in the quarantine: bounded, whatever the client sent.
  const messageId = isPlainObject(raw) && typeof raw['messageId'] === 'string' ? raw['messageId'].slice(0, maxEchoedChars) : undefined;
  const reject = (path: string, reason: string): RejectedMessage => ({ index, ...(messageId ? { messageId } : {}), path: path.slice(0, maxEchoedChars), reason, raw });

  if (!isPlainObject(raw)) return reject('', 'must be a JSON object');
  // Depth first: measuring the size serialises the message, and serialising thousands of levels overflows the stack.
  const unsafe = findUnsafeStructure(raw);
  if (unsafe) return reject(unsafe.path, unsafe.reason);
  const size = Buffer.byteLength(JSON.stringify(raw));
  if (size > ingestLimits.maxEventBytes) return reject('', `is ${size} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed per event`);

  const result = segmentMessageSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return reject(formatPath(issue.path), describeIssue(issue));
  }
  return normalise(result.data, index, workspace, receivedAt);
}

function normalise(message: SegmentMessage, index: number, workspace: string, receivedAt: Date): AcceptedMessage {
  const timestamp = resolveTimestamp(message, receivedAt).toISOString();
  const hasOwnTime = message.timestamp !== undefined || message.originalTimestamp !== undefined;
  const messageId = message.messageId ?? derivedMessageId(workspace, message, index, hasOwnTime ? undefined : timestamp);
  const userKey = message.userId ? message.userId : `anonymous:${message.anonymousId}`;
  const groupId = message.type === 'group' ? message.groupId : message.context?.groupId;
  const name = message.type === 'track' ? message.event : message.type === 'page' || message.type === 'screen' ? message.name : undefined;
  const traits = message.type === 'identify' || message.type === 'group' ? message.traits : undefined;
  return {
    index,
    messageId,
    type: message.type,
    ...(name !== undefined ? { name } : {}),
    timestamp,
    serverTimed: !hasOwnTime,
    userKey,
    ...(groupId !== undefined ? { groupId } : {}),
    ...(traits !== undefined ? { traits } : {}),
    ...(message.type === 'alias' ? { previousId: message.previousId } : {}),
    message: { ...message, messageId, timestamp },
  };
}

/**
 * Segment's clock-skew correction: a device clock may be wrong, so timestamp = receivedAt - (sentAt - originalTimestamp).
 * The skew is rounded to whole seconds: sub-second differences are network latency, not a wrong clock, and rounding
 * makes a retried message resolve to the same timestamp, so it rewrites the same stored item.
 */
export function resolveTimestamp(
  message: { timestamp?: string | undefined; originalTimestamp?: string | undefined; sentAt?: string | undefined },
  receivedAt: Date,
): Date {
  if (message.timestamp !== undefined) return new Date(message.timestamp);
  if (message.originalTimestamp === undefined) return receivedAt;
  const original = Date.parse(message.originalTimestamp);
  if (message.sentAt === undefined) return new Date(original);
  const skewSeconds = Math.round((receivedAt.getTime() - Date.parse(message.sentAt)) / 1000);
  return new Date(original + skewSeconds * 1000);
}

/**
 * A message sent without a messageId gets one derived from its content and position, not a random one,
 * so that an SDK retrying the same request does not store the message twice.
 */
function derivedMessageId(workspace: string, message: SegmentMessage, index: number, serverTimestamp: string | undefined): string {
  const { sentAt: _sentAt, ...content } = message;
  const digest = createHash('sha256')
    .update(`${workspace}\n${index}\n${serverTimestamp ?? ''}\n${JSON.stringify(content)}`)
    .digest('hex');
  return `auto-${digest.slice(0, 32)}`;
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

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && issue.path.length === 1 && issue.path[0] === 'type') {
    return `must be one of ${messageTypes.join(', ')}`;
  }
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.input === undefined) return 'is required';
  return issue.message;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
