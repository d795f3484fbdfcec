import type { EventStore, WriteKeyStore } from './ports';
import { formatPath } from './field-path';
import { batchContextProblem, hasInvalidBytes, ingestLimits, isPlainObject, parseMessageJson, validateMessage, withoutAbsentContextFields, withoutAbsentFields, type AcceptedMessage, type RejectedMessage } from './messages';
import { originAllowed } from './origins';
import { failureBody, type FailureStatus } from './request-failure';
import { batchEnvelopeSchema, messageTypes } from './segment-schema';
import { accessOf, verifiedKey, writeKeyFromRequest } from './write-key';

export const callTypes = [...messageTypes, 'batch', 'import'] as const;

export type CallType = (typeof callTypes)[number];

/** The one-letter paths browser SDKs post to (analytics.js: `/v1/t`, `/v1/p`, ..., `/v1/b` when batching). */
const shortPaths: Record<string, CallType> = { t: 'track', i: 'identify', g: 'group', p: 'page', s: 'screen', a: 'alias', b: 'batch' };

/** The call a request path names (a trailing slash allowed), or undefined for any other path. */
export function callTypeOfPath(path: string): CallType | undefined {
  const name = /^\/v1\/([a-z]+)\/?$/.exec(path)?.[1];
  if (name === undefined) return undefined;
  return (callTypes as readonly string[]).includes(name) ? (name as CallType) : shortPaths[name];
}

export interface IngestRequest {
  callType: CallType;
  /** The decoded (un-gzipped) request body. */
  body: string;
  authorization?: string;
  /** The Origin header of a browser's request; absent for servers and mobile apps. */
  origin?: string;
  receivedAt: Date;
  requestId: string;
}

export interface IngestResponse {
  status: number;
  body: Record<string, unknown>;
  /** The request's origin, when its workspace accepts it: the browser may send it with credentials. */
  allowOrigin?: string;
  /** What the caller may log: never the message contents. */
  summary: { workspace?: string; keyId?: string; accepted: number; rejected: number };
}

export interface IngestDependencies {
  keys: WriteKeyStore;
  events: EventStore;
}

/**
 * What ingest throws when storing fails (the store's error is its cause): only after the request was authenticated
 * and its origin, if any, accepted, so the answer may let a browser that sent credentials read it (a 429's
 * Retry-After included). An error thrown before that (the key store's) is thrown as it is.
 */
export class StorageFailure extends Error {
  constructor(cause: unknown) {
    super('storing the request failed', { cause });
    this.name = 'StorageFailure';
  }
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
  if (!writeKey) {
    // A key sent another way (Bearer, as lead status reads take a read key) is named, or "required" would puzzle.
    const scheme = /^\s*(\S+)/.exec(request.authorization ?? '')?.[1];
    const sent = scheme !== undefined && scheme.toLowerCase() !== 'basic' ? `; Authorization: ${scheme.slice(0, 20)} does not carry one here` : '';
    return requestError(401, 'writeKey', `a write key is required: HTTP Basic auth with the key as user name, or writeKey in the body${sent}`);
  }
  const record = await verifiedKey(writeKey, (keyId) => dependencies.keys.find(keyId));
  if (!record) return requestError(401, 'writeKey', 'unknown or revoked write key');
  if (accessOf(record) !== 'write') {
    return requestError(403, 'writeKey', 'this is a read-only key: it reads lead status (GET /v1/leads/...) and cannot send events; send with a write key');
  }
  const workspace = record.workspace;
  const nothingStored = { workspace, keyId: record.keyId, accepted: 0, rejected: 0 };
  if (request.origin !== undefined && !originAllowed((await dependencies.keys.allowedOrigins()).get(workspace) ?? [], request.origin)) {
    return {
      ...requestError(403, 'origin', `${request.origin} is not an origin this workspace accepts browser events from; add it to the workspace's allowed origins`),
      summary: nothingStored,
    };
  }
  const allowOrigin = request.origin !== undefined ? { allowOrigin: request.origin } : {};

  const single = request.callType !== 'batch' && request.callType !== 'import';
  const size = Buffer.byteLength(request.body);
  if (single && size > ingestLimits.maxEventBytes) {
    return { ...requestError(413, '', `the event is ${size} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed per event`), ...allowOrigin, summary: nothingStored };
  }
  const split = splitMessages(request.callType, body);
  if (!split.ok) return { ...requestError(split.status, split.path, split.reason), ...allowOrigin, summary: nothingStored };

  const accepted: AcceptedMessage[] = [];
  const rejected: RejectedMessage[] = [];
  const invalidBytes = hasInvalidBytes(request.body);
  split.messages.forEach((raw, index) => {
    const outcome = validateMessage(raw, index, workspace, request.receivedAt, { invalidBytes, asSent: split.asSent[index], absentDropped: split.absentDropped });
    if ('reason' in outcome) rejected.push(outcome);
    else accepted.push(outcome);
  });

  // Accepted events first: once they are durable, a failure to quarantine makes the client retry, which is idempotent.
  let stored = accepted;
  try {
    if (accepted.length > 0) {
      const { refused } = await dependencies.events.save(workspace, accepted, request.receivedAt, request.requestId);
      const refusedAt = new Map(refused.map((refusal) => [refusal.index, refusal]));
      stored = accepted.filter((message) => !refusedAt.has(message.index));
      for (const message of accepted) {
        const refusal = refusedAt.get(message.index);
        if (refusal) rejected.push({ ...refusal, messageId: message.messageId, raw: split.messages[message.index] });
      }
      rejected.sort((a, b) => a.index - b.index);
    }
    if (rejected.length > 0) await dependencies.events.quarantine(workspace, request.requestId, rejected, request.receivedAt);
  } catch (error) {
    throw new StorageFailure(error);
  }

  const summary = { workspace, keyId: record.keyId, accepted: stored.length, rejected: rejected.length };
  const rejections = rejected.map(({ raw: _raw, ...rejection }) => rejection);
  if (stored.length === 0) {
    const first = rejections[0];
    const path = first ? prefixPath(split.pathPrefix(first.index), first.path) : 'batch';
    const reason = first ? first.reason : 'must contain at least one message';
    return { status: 400, body: { ...failureBody(400, path, reason, `${path || 'message'}: ${reason}`), rejected: rejections }, ...allowOrigin, summary };
  }
  return { status: 200, body: rejections.length > 0 ? { success: true, rejected: rejections } : { success: true }, ...allowOrigin, summary };
}

type Split =
  /**
   * `asSent`: each message as the client sent it, before the request's own fields were added (validateMessage).
   * `absentDropped`: the messages have been through withoutAbsentFields (a batch's items).
   */
  | { ok: true; messages: unknown[]; asSent: unknown[]; absentDropped: boolean; pathPrefix: (index: number) => string }
  | { ok: false; status: FailureStatus; path: string; reason: string };

/** Turns the body of any call into its list of messages, with the batch-level fields applied to each. */
function splitMessages(callType: CallType, body: Record<string, unknown>): Split {
  if (callType !== 'batch' && callType !== 'import') {
    // The path names the type; a body `type` that disagrees would make the same message mean two things.
    const { writeKey: _key, ...message } = body;
    return { ok: true, messages: [{ ...message, type: callType }], asSent: [message], absentDropped: false, pathPrefix: () => '' };
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
  const contextProblem = context != null ? batchContextProblem(context, batch.length) : undefined;
  if (contextProblem !== undefined) return { ok: false, status: 400, path: 'context', reason: contextProblem };
  const asSent = batch.map((item) => {
    if (!isPlainObject(item)) return item;
    const { writeKey: _key, ...message } = item;
    return message;
  });
  // The batch's context is added to every item: its null fields are dropped once, not in each item.
  const batchContext = context != null ? withoutAbsentContextFields(context) : undefined;
  const messages = asSent.map((sent) => {
    if (!isPlainObject(sent)) return sent;
    // An item's own null context or sentAt is absent: the batch's takes its place.
    const message = withoutAbsentFields(sent);
    const itemContext = message['context'];
    return {
      ...message,
      ...(sentAt != null && message['sentAt'] === undefined ? { sentAt } : {}),
      ...(batchContext !== undefined && (itemContext === undefined || isPlainObject(itemContext))
        ? { context: { ...batchContext, ...(itemContext as Record<string, unknown> | undefined) } }
        : {}),
    };
  });
  return { ok: true, messages, asSent, absentDropped: true, pathPrefix: (index) => `batch[${index}]` };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: parseMessageJson(text) };
  } catch (error) {
    // A RangeError here is JSON nested deeper than the parser's stack: still the client's bad input.
    return { ok: false, reason: `the body is not valid JSON (${error instanceof Error ? error.message : 'parse error'})` };
  }
}

function requestError(status: FailureStatus, path: string, reason: string): IngestResponse {
  return { status, body: failureBody(status, path, reason), summary: { accepted: 0, rejected: 0 } };
}

function prefixPath(prefix: string, path: string): string {
  if (!prefix) return path;
  if (!path) return prefix;
  return path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;
}
