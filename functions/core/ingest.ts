import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { EventStore, WriteKeyStore } from './ports';
import { batchEnvelopeSchema, messageTypes, segmentMessageSchema, type MessageType, type SegmentMessage } from './segment-schema';
import { parseWriteKey, secretMatches, writeKeyFromRequest } from './write-key';

/** The Segment HTTP API's own limits, so SDKs that already respect them never hit ours. */
export const ingestLimits = {
  maxEventBytes: 32 * 1024,
  maxRequestBytes: 500 * 1024,
  maxBatchSize: 2500,
  /** Deeper JSON than this is almost certainly an attack or a bug, and recursion on it is what crashes parsers. */
  maxDepth: 32,
} as const;

export const callTypes = [...messageTypes, 'batch', 'import'] as const;

/** Client text echoed back in answers and rejections (messageId, field paths) is cut to this many characters. */
const maxEchoedChars = 200;
export type CallType = (typeof callTypes)[number];

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

export interface IngestRequest {
  callType: CallType;
  /** The decoded (un-gzipped) request body. */
  body: string;
  authorization?: string;
  receivedAt: Date;
  requestId: string;
}

export interface IngestResponse {
  status: number;
  body: Record<string, unknown>;
  /** What the caller may log: never the message contents. */
  summary: { workspace?: string; keyId?: string; accepted: number; rejected: number };
}

export interface IngestDependencies {
  keys: WriteKeyStore;
  events: EventStore;
}

/**
 * The ingest use case: authenticate, validate every message, store the valid ones, quarantine the rest.
 * A request that is unusable as a whole is answered with a 4xx and stores nothing.
 */
export async function ingest(request: IngestRequest, dependencies: IngestDependencies): Promise<IngestResponse> {
  const parsed = parseJson(request.body);
  if (!parsed.ok) return requestError(400, '', parsed.reason);
  if (!isPlainObject(parsed.value)) return requestError(400, '', 'the request body must be a JSON object');
  const body = parsed.value;

  const writeKey = writeKeyFromRequest(request.authorization, body['writeKey']);
  if (!writeKey) return requestError(401, 'writeKey', 'a write key is required: HTTP Basic auth with the key as user name, or writeKey in the body');
  const parsedKey = parseWriteKey(writeKey);
  const record = parsedKey && (await dependencies.keys.find(parsedKey.keyId));
  if (!parsedKey || !record || record.revokedAt || !secretMatches(parsedKey.secret, record)) {
    return requestError(401, 'writeKey', 'unknown or revoked write key');
  }
  const workspace = record.workspace;

  const single = request.callType !== 'batch' && request.callType !== 'import';
  const size = Buffer.byteLength(request.body);
  if (single && size > ingestLimits.maxEventBytes) {
    return { ...requestError(413, '', `the event is ${size} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed per event`), summary: { workspace, keyId: record.keyId, accepted: 0, rejected: 0 } };
  }
  const split = splitMessages(request.callType, body);
  if (!split.ok) return { ...requestError(split.status, split.path, split.reason), summary: { workspace, keyId: record.keyId, accepted: 0, rejected: 0 } };

  const accepted: AcceptedMessage[] = [];
  const rejected: RejectedMessage[] = [];
  split.messages.forEach((raw, index) => {
    const outcome = validateMessage(raw, index, workspace, request.receivedAt);
    if ('reason' in outcome) rejected.push(outcome);
    else accepted.push(outcome);
  });

  // Accepted events first: once they are durable, a failure to quarantine makes the client retry, which is idempotent.
  let stored = accepted;
  if (accepted.length > 0) {
    const { refused } = await dependencies.events.save(workspace, accepted, request.receivedAt);
    const refusedAt = new Map(refused.map((refusal) => [refusal.index, refusal]));
    stored = accepted.filter((message) => !refusedAt.has(message.index));
    for (const message of accepted) {
      const refusal = refusedAt.get(message.index);
      if (refusal) rejected.push({ ...refusal, messageId: message.messageId, raw: split.messages[message.index] });
    }
    rejected.sort((a, b) => a.index - b.index);
  }
  if (rejected.length > 0) await dependencies.events.quarantine(workspace, request.requestId, rejected, request.receivedAt);

  const summary = { workspace, keyId: record.keyId, accepted: stored.length, rejected: rejected.length };
  const rejections = rejected.map(({ raw: _raw, ...rejection }) => rejection);
  if (stored.length === 0) {
    const first = rejections[0];
    const path = first ? prefixPath(split.pathPrefix(first.index), first.path) : 'batch';
    const reason = first ? first.reason : 'must contain at least one message';
    return { status: 400, body: { success: false, error: `${path || 'message'}: ${reason}`, path, reason, rejected: rejections }, summary };
  }
  return { status: 200, body: rejections.length > 0 ? { success: true, rejected: rejections } : { success: true }, summary };
}

type Split =
  | { ok: true; messages: unknown[]; pathPrefix: (index: number) => string }
  | { ok: false; status: number; path: string; reason: string };

/** Turns the body of any call into its list of messages, with the batch-level fields applied to each. */
function splitMessages(callType: CallType, body: Record<string, unknown>): Split {
  if (callType !== 'batch' && callType !== 'import') {
    // The path names the type; a body `type` that disagrees would make the same message mean two things.
    const { writeKey: _key, ...message } = body;
    return { ok: true, messages: [{ ...message, type: callType }], pathPrefix: () => '' };
  }
  const envelope = batchEnvelopeSchema.safeParse(body);
  if (!envelope.success) {
    const issue = envelope.error.issues[0]!;
    return { ok: false, status: 400, path: formatPath(issue.path), reason: issue.message };
  }
  const { batch, context, sentAt } = envelope.data;
  if (batch.length > ingestLimits.maxBatchSize) {
    return { ok: false, status: 413, path: 'batch', reason: `must hold at most ${ingestLimits.maxBatchSize} messages, got ${batch.length}` };
  }
  const messages = batch.map((item) => {
    if (!isPlainObject(item)) return item;
    const { writeKey: _key, ...message } = item;
    const itemContext = message['context'];
    return {
      ...message,
      ...(sentAt !== undefined && message['sentAt'] === undefined ? { sentAt } : {}),
      ...(context !== undefined && (itemContext === undefined || isPlainObject(itemContext))
        ? { context: { ...context, ...(itemContext as Record<string, unknown> | undefined) } }
        : {}),
    };
  });
  return { ok: true, messages, pathPrefix: (index) => `batch[${index}]` };
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

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    // A RangeError here is JSON nested deeper than the parser's stack: still the client's bad input.
    return { ok: false, reason: `the body is not valid JSON (${error instanceof Error ? error.message : 'parse error'})` };
  }
}

function requestError(status: number, path: string, reason: string): IngestResponse {
  return {
    status,
    body: { success: false, error: path ? `${path}: ${reason}` : reason, path, reason },
    summary: { accepted: 0, rejected: 0 },
  };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && issue.path.length === 1 && issue.path[0] === 'type') {
    return `must be one of ${messageTypes.join(', ')}`;
  }
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && issue.input === undefined) return 'is required';
  return issue.message;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((formatted, segment) => {
    if (typeof segment === 'number') return `${formatted}[${segment}]`;
    return formatted ? `${formatted}.${String(segment)}` : String(segment);
  }, '');
}

function prefixPath(prefix: string, path: string): string {
  if (!prefix) return path;
  if (!path) return prefix;
  return path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
