import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callTypeOfPath, ingest, type IngestRequest } from '../../functions/core/ingest';
import { canonicalOrigin } from '../../functions/core/origins';
import { decodeUtf8, ingestLimits, parseMessageJson, resolveTimestamp, validateMessage, type AcceptedMessage, type RejectedMessage } from '../../functions/core/messages';
import type { EventStore, Refusal, WriteKeyStore } from '../../functions/core/ports';
import { generateWriteKey, hashSecret, parseWriteKey, secretMatches, writeKeyFromRequest, type WriteKeyRecord } from '../../functions/core/write-key';

const receivedAt = new Date('2024-05-01T12:00:00.000Z');

/** An in-memory EventStore: the use case's port, recorded so the tests can see exactly what would be stored. */
class RecordingEventStore implements EventStore {
  saved: { workspace: string; messages: readonly AcceptedMessage[] }[] = [];
  quarantined: { workspace: string; rejected: readonly RejectedMessage[] }[] = [];
  /** Refusals the store answers with, as DynamoDB would for traits that outgrow a profile. */
  refusals: Refusal[] = [];
  async save(workspace: string, messages: readonly AcceptedMessage[]) {
    const refused = new Set(this.refusals.map((refusal) => refusal.index));
    this.saved.push({ workspace, messages: messages.filter((message) => !refused.has(message.index)) });
    return { refused: this.refusals };
  }
  async quarantine(workspace: string, _requestId: string, rejected: readonly RejectedMessage[]) {
    this.quarantined.push({ workspace, rejected });
  }
}

const noOrigins = async () => new Map<string, string[]>();

function keyFor(workspace: string, origins: string[] = []): { key: string; keys: WriteKeyStore } {
  const { keyId, key, secret } = generateWriteKey();
  const record: WriteKeyRecord = { keyId, workspace, secretHash: hashSecret(secret), createdAt: receivedAt.toISOString() };
  return { key, keys: { find: async (id) => (id === keyId ? record : undefined), allowedOrigins: async () => new Map([[workspace, origins]]) } };
}

const basic = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

async function send(request: Partial<IngestRequest> & { body: string }, workspace = 'acme', origins: string[] = []) {
  const { key, keys } = keyFor(workspace, origins);
  const events = new RecordingEventStore();
  const response = await ingest(
    { callType: 'batch', authorization: basic(key), receivedAt, requestId: 'req-1', ...request },
    { keys, events },
  );
  return { response, events, key };
}

const track = (overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  userId: 'user-1',
  event: 'Dashboard Created',
  messageId: 'm-1',
  timestamp: '2024-05-01T11:00:00Z',
  ...overrides,
});

describe('message schemas', () => {
  it.each([
    ['track without event', { type: 'track', userId: 'u' }, 'event', 'is required'],
    ['track with a numeric event', { type: 'track', userId: 'u', event: 7 }, 'event', 'must be a string'],
    ['no identity at all', { type: 'track', event: 'x' }, 'userId', 'userId or anonymousId is required'],
    ['unknown type', { type: 'purchase', userId: 'u' }, 'type', 'must be one of track, identify, group, page, screen, alias'],
    ['group without groupId', { type: 'group', userId: 'u' }, 'groupId', 'is required'],
    ['alias without previousId', { type: 'alias', userId: 'u' }, 'previousId', 'is required'],
    ['traits that are not an object', { type: 'identify', userId: 'u', traits: ['a'] }, 'traits', 'must be a JSON object'],
    ['a bad timestamp', { type: 'track', userId: 'u', event: 'x', timestamp: 'yesterday' }, 'timestamp', 'must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z'],
    ['an empty userId and no anonymousId', { type: 'track', userId: '', event: 'x' }, 'userId', 'userId or anonymousId is required'],
    ['a lone surrogate in the event name', { type: 'track', userId: 'u', event: 'bad\ud800' }, 'event', 'must be well-formed unicode (no lone surrogates)'],
    ['a __proto__ key', JSON.parse('{"type":"track","userId":"u","event":"x","properties":{"a":{"__proto__":{"admin":true}}}}'), 'properties.a.__proto__', 'the key "__proto__" is not allowed'],
    ['a context groupId of the wrong type', { type: 'track', userId: 'u', event: 'x', context: { groupId: {} } }, 'context.groupId', 'must be a string or a number'],
    ['a context that is not an object', { type: 'track', userId: 'u', event: 'x', context: 'web' }, 'context', 'must be a JSON object'],
    ['a track whose event is null', { type: 'track', userId: 'u', event: null }, 'event', 'is required'],
    ['a group whose groupId is null', { type: 'group', userId: 'u', groupId: null }, 'groupId', 'is required'],
    ['an alias whose userId is null', { type: 'alias', userId: null, previousId: 'anon-9' }, 'userId', 'is required'],
    ['an alias whose previousId is null', { type: 'alias', userId: 'u', previousId: null }, 'previousId', 'is required'],
  ])('rejects %s, naming the field', (_name, message, path, reason) => {
    const outcome = validateMessage(message, 3, 'acme', receivedAt);
    expect(outcome).toMatchObject({ index: 3, path });
    expect((outcome as RejectedMessage).reason).toContain(reason);
  });

  it('rejects nesting deeper than the limit, with the path where it happens', () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < ingestLimits.maxDepth + 5; i++) deep = { d: deep };
    const outcome = validateMessage(track({ properties: deep }), 0, 'acme', receivedAt) as RejectedMessage;
    expect(outcome.reason).toBe(`nests deeper than ${ingestLimits.maxDepth} levels`);
    expect(outcome.path.startsWith('properties.d.d.')).toBe(true);
  });

  it('accepts numeric ids as strings, keeps unknown fields, and normalises every call type', () => {
    const cases = [
      [{ type: 'track', userId: 42, event: 'Exported Data', properties: { rows: 10 }, custom: 'kept' }, { type: 'track', name: 'Exported Data', identity: { kind: 'user', id: '42' } }],
      [{ type: 'identify', anonymousId: 'anon-9', traits: { plan: 'free' } }, { type: 'identify', identity: { kind: 'visitor', id: 'anon-9' }, traits: { plan: 'free' } }],
      [{ type: 'group', userId: 'u', groupId: 'acct-1', traits: { employees: 120 } }, { type: 'group', groupId: 'acct-1', traits: { employees: 120 } }],
      [{ type: 'page', userId: 'u', name: 'Pricing' }, { type: 'page', name: 'Pricing' }],
      [{ type: 'screen', userId: 'u', name: 'Home' }, { type: 'screen', name: 'Home' }],
      [{ type: 'alias', userId: 'u', previousId: 'anon-9' }, { type: 'alias', identity: { kind: 'user', id: 'u' }, previousId: 'anon-9' }],
      [{ type: 'track', userId: 'u', event: 'x', context: { groupId: 'acct-2' } }, { groupId: 'acct-2' }],
    ] as const;
    for (const [message, expected] of cases) {
      const outcome = validateMessage(message, 0, 'acme', receivedAt);
      expect(outcome, JSON.stringify(message)).toMatchObject(expected);
      expect('reason' in outcome).toBe(false);
    }
    const kept = validateMessage(cases[0][0], 0, 'acme', receivedAt) as AcceptedMessage;
    expect(kept.message['custom']).toBe('kept');
    expect(kept.message['userId']).toBe('42');
  });

  it('assigns a messageId when absent, the same one for the same message, a different one for another', () => {
    const message = { type: 'track', userId: 'u', event: 'x', timestamp: '2024-05-01T10:00:00Z' };
    const first = validateMessage(message, 0, 'acme', receivedAt) as AcceptedMessage;
    const retried = validateMessage({ ...message, sentAt: '2024-05-01T12:00:05Z' }, 0, 'acme', new Date(receivedAt.getTime() + 5000)) as AcceptedMessage;
    const other = validateMessage({ ...message, event: 'y' }, 0, 'acme', receivedAt) as AcceptedMessage;
    const otherWorkspace = validateMessage(message, 0, 'globex', receivedAt) as AcceptedMessage;
    expect(first.messageId).toMatch(/^auto-[0-9a-f]{32}$/);
    expect(retried.messageId).toBe(first.messageId);
    expect(other.messageId).not.toBe(first.messageId);
    expect(otherWorkspace.messageId).not.toBe(first.messageId);
  });
});

describe('clock-skew correction', () => {
  it.each([
    ['a resolved message (timestamp and originalTimestamp: an export) keeps its timestamp', { timestamp: '2024-04-30T08:00:00Z', originalTimestamp: '2024-01-01T00:00:00Z', sentAt: '2024-01-01T00:00:00Z' }, '2024-04-30T08:00:00.000Z'],
    ["an SDK's timestamp from a device clock 2 days ahead is corrected by sentAt", { timestamp: '2024-05-03T11:58:00Z', sentAt: '2024-05-03T12:00:00Z' }, '2024-05-01T11:58:00.000Z'],
    ['a server library importing history (sentAt now) keeps its timestamp', { timestamp: '2023-11-02T09:00:00Z', sentAt: '2024-05-01T12:00:00.150Z' }, '2023-11-02T09:00:00.000Z'],
    ['a timestamp without sentAt is used as is', { timestamp: '2024-04-30T08:00:00Z' }, '2024-04-30T08:00:00.000Z'],
    ['a device clock 1 hour behind is corrected', { originalTimestamp: '2024-05-01T10:59:00Z', sentAt: '2024-05-01T11:00:00Z' }, '2024-05-01T11:59:00.000Z'],
    ['a device clock 2 days ahead is corrected', { originalTimestamp: '2024-05-03T11:58:00Z', sentAt: '2024-05-03T12:00:00Z' }, '2024-05-01T11:58:00.000Z'],
    ['latency under half a second is not skew', { originalTimestamp: '2024-05-01T11:58:00Z', sentAt: '2024-05-01T11:59:59.700Z' }, '2024-05-01T11:58:00.000Z'],
    ['originalTimestamp alone is used as is', { originalTimestamp: '2024-05-01T11:58:00+02:00' }, '2024-05-01T09:58:00.000Z'],
    ['no time at all means the time it was received', {}, '2024-05-01T12:00:00.000Z'],
  ])('%s', (_name, message, expected) => {
    expect(resolveTimestamp(message, receivedAt).toISOString()).toBe(expected);
  });

  it('keeps the event of a device whose clock was reset to 1970, at the time it happened', () => {
    const reset = { type: 'track', userId: 'u', event: 'x', messageId: 'm-1970', timestamp: '1970-01-01T00:10:00.000Z', sentAt: '1970-01-01T00:10:10.000Z' };
    expect((validateMessage(reset, 0, 'acme', receivedAt) as AcceptedMessage).timestamp).toBe('2024-05-01T11:59:50.000Z');
    // Without sentAt there is nothing to correct by: refused, naming the field.
    const { sentAt: _sentAt, ...unsent } = reset;
    expect(validateMessage(unsent, 0, 'acme', receivedAt)).toMatchObject({ path: 'timestamp', reason: 'is 1970-01-01T00:10:00.000Z: outside 2000-01-01 to 9999-12-31' });
  });
});

describe('write keys', () => {
  it('parses generated keys and imported keys, and refuses junk', () => {
    const { key, keyId, secret } = generateWriteKey();
    expect(parseWriteKey(key)).toEqual({ keyId, secret });
    const imported = parseWriteKey('segment-key-0123456789');
    expect(imported?.keyId).toMatch(/^x[0-9a-f]{11}$/);
    expect(imported?.secret).toBe('segment-key-0123456789');
    expect(parseWriteKey('short')).toBeUndefined();
    expect(parseWriteKey('has spaces in the middle')).toBeUndefined();
  });

  it('matches only the right secret', () => {
    const { keyId, secret } = generateWriteKey();
    const record: WriteKeyRecord = { keyId, workspace: 'acme', secretHash: hashSecret(secret), createdAt: '' };
    expect(secretMatches(secret, record)).toBe(true);
    expect(secretMatches(`${secret.slice(0, -1)}x`, record)).toBe(false);
  });

  it('reads the key from HTTP Basic first, then from the body', () => {
    expect(writeKeyFromRequest(basic('from-header-123'), 'from-body-123')).toBe('from-header-123');
    expect(writeKeyFromRequest(undefined, 'from-body-123')).toBe('from-body-123');
    expect(writeKeyFromRequest('Bearer nope', undefined)).toBeUndefined();
    expect(writeKeyFromRequest(undefined, 42)).toBeUndefined();
  });
});

describe('the ingest use case', () => {
  it('stores a valid batch with the batch context merged into each message and answers 200', async () => {
    const body = JSON.stringify({
      batch: [track(), track({ messageId: 'm-2', context: { groupId: 'acct-1', ip: '10.0.0.2' } })],
      context: { library: { name: 'analytics-node' }, ip: '10.0.0.1' },
      sentAt: '2024-05-01T12:00:00Z',
    });
    const { response, events } = await send({ body });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ success: true });
    const [saved] = events.saved;
    expect(saved?.workspace).toBe('acme');
    expect(saved?.messages.map((m) => m.message['context'])).toEqual([
      { library: { name: 'analytics-node' }, ip: '10.0.0.1' },
      { library: { name: 'analytics-node' }, ip: '10.0.0.2', groupId: 'acct-1' },
    ]);
    expect(events.quarantined).toEqual([]);
  });

  it('stores the valid messages of a batch, lists and quarantines the rejected ones', async () => {
    const body = JSON.stringify({ batch: [track(), track({ messageId: 'm-bad', event: '' }), 'not an object', track({ messageId: 'm-3' })] });
    const { response, events } = await send({ body });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      success: true,
      rejected: [
        { index: 1, messageId: 'm-bad', path: 'event', reason: 'must not be empty' },
        { index: 2, path: '', reason: 'must be a JSON object' },
      ],
    });
    expect(events.saved[0]?.messages.map((m) => m.messageId)).toEqual(['m-1', 'm-3']);
    expect(events.quarantined[0]?.rejected.map((r) => r.raw)).toEqual([track({ messageId: 'm-bad', event: '' }), 'not an object']);
  });

  it('answers 400 naming the field when nothing in the request is valid, and still quarantines it', async () => {
    const { response, events } = await send({ body: JSON.stringify({ batch: [track({ userId: null })] }) });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ success: false, path: 'batch[0].userId', reason: 'userId or anonymousId is required' });
    expect(events.saved).toEqual([]);
    expect(events.quarantined).toHaveLength(1);
  });

  it("rejects a single call whose own type nests too deep, which the path's type replaces, naming the field", async () => {
    // Within the size of one event, and thousands of levels: serialising the body as sent would overflow the stack.
    const levels = 5_000;
    const body = `{"userId":"u","event":"Report Run","type":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}`;
    const { response, events } = await send({ callType: 'track', body });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ success: false, reason: `nests deeper than ${ingestLimits.maxDepth} levels` });
    expect(String(response.body['path']).startsWith('type.a.a.')).toBe(true);
    expect(events.saved).toEqual([]);
    expect(events.quarantined).toHaveLength(1);
  });

  it('types single calls from the path and reads writeKey from the body, never storing it', async () => {
    const { key, keys } = keyFor('acme');
    const events = new RecordingEventStore();
    const response = await ingest(
      { callType: 'identify', body: JSON.stringify({ userId: 'u', traits: { plan: 'pro' }, writeKey: key }), receivedAt, requestId: 'r' },
      { keys, events },
    );
    expect(response.status).toBe(200);
    const stored = events.saved[0]?.messages[0];
    expect(stored?.type).toBe('identify');
    expect(JSON.stringify(stored)).not.toContain(key);
  });

  it.each([
    ['bad JSON', { body: '{"batch": [' }, 400, '', 'the body is not valid JSON'],
    ['a JSON array', { body: '[]' }, 400, '', 'the request body must be a JSON object'],
    ['no key', { body: JSON.stringify({ batch: [track()] }), authorization: undefined }, 401, 'writeKey', 'a write key is required: HTTP Basic auth with the key as user name, or writeKey in the body'],
    ['a key as Bearer', { body: JSON.stringify({ batch: [track()] }), authorization: 'Bearer pqr_000000000000_' + 'a'.repeat(43) }, 401, 'writeKey', 'or writeKey in the body; Authorization: Bearer does not carry one here'],
    ['an unknown key', { body: JSON.stringify({ batch: [track()] }), authorization: basic('pqr_000000000000_' + 'a'.repeat(43)) }, 401, 'writeKey', 'unknown or revoked'],
    ['batch not an array', { body: JSON.stringify({ batch: {} }) }, 400, 'batch', 'must be an array of messages'],
    ['too many messages', { body: JSON.stringify({ batch: Array.from({ length: ingestLimits.maxBatchSize + 1 }, () => ({})) }) }, 413, 'batch', 'at most 2500'],
    ['an oversized single event', { callType: 'track' as const, body: JSON.stringify(track({ properties: { blob: 'x'.repeat(ingestLimits.maxEventBytes) } })) }, 413, '', 'bytes allowed per event'],
  ])('refuses %s as a whole and stores nothing', async (_name, request, status, path, reason) => {
    const { response, events } = await send(request);
    expect(response.status).toBe(status);
    expect(response.body['path']).toBe(path);
    expect(String(response.body['reason'])).toContain(reason);
    expect(events.saved).toEqual([]);
    expect(events.quarantined).toEqual([]);
  });

  it('refuses a revoked key', async () => {
    const { keyId, key, secret } = generateWriteKey();
    const record: WriteKeyRecord = { keyId, workspace: 'acme', secretHash: hashSecret(secret), createdAt: '', revokedAt: '2024-01-01T00:00:00Z' };
    const events = new RecordingEventStore();
    const response = await ingest(
      { callType: 'batch', body: JSON.stringify({ batch: [track()] }), authorization: basic(key), receivedAt, requestId: 'r' },
      { keys: { find: async () => record, allowedOrigins: noOrigins }, events },
    );
    expect(response.status).toBe(401);
    expect(events.saved).toEqual([]);
  });

  it('moves messages the store refuses into the rejected list and the quarantine', async () => {
    const { key, keys } = keyFor('acme');
    const events = new RecordingEventStore();
    events.refusals = [{ index: 0, path: 'traits', reason: 'the traits would make the user profile too large' }];
    const body = JSON.stringify({ batch: [{ type: 'identify', userId: 'u', traits: { big: 'x' }, messageId: 'id-1' }, track()] });
    const response = await ingest({ callType: 'batch', body, authorization: basic(key), receivedAt, requestId: 'r' }, { keys, events });
    expect(response.status).toBe(200);
    expect(response.body['rejected']).toEqual([{ index: 0, messageId: 'id-1', path: 'traits', reason: 'the traits would make the user profile too large' }]);
    expect(response.summary).toMatchObject({ accepted: 1, rejected: 1 });
    expect(events.quarantined[0]?.rejected.map((r) => r.raw)).toEqual([{ type: 'identify', userId: 'u', traits: { big: 'x' }, messageId: 'id-1' }]);
  });

  it('rejects an oversized event inside a batch but keeps the rest', async () => {
    const big = track({ messageId: 'big', properties: { blob: 'x'.repeat(ingestLimits.maxEventBytes) } });
    const { response, events } = await send({ body: JSON.stringify({ batch: [big, track()] }) });
    expect(response.status).toBe(200);
    expect(response.body['rejected']).toEqual([{ index: 0, messageId: 'big', path: '', reason: expect.stringContaining('bytes allowed per event') }]);
    expect(events.saved[0]?.messages).toHaveLength(1);
  });
});

describe('the per-event limit, measured on the message as the SDK sent it', () => {
  /** The message with its properties padded so that its own JSON is exactly `bytes` long. */
  const sized = (bytes: number, message: Record<string, unknown>) => {
    const padded = { ...message, properties: { blob: '' } };
    padded.properties.blob = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(padded)));
    return padded;
  };
  const trackOf = (bytes: number, fields: Record<string, unknown> = {}) => sized(bytes, track({ messageId: `m-${bytes}`, ...fields }));

  it("stores an event at the limit although the batch's sentAt and context are added to it, and refuses one a byte over", async () => {
    const atLimit = trackOf(ingestLimits.maxEventBytes);
    const over = trackOf(ingestLimits.maxEventBytes + 1, { messageId: 'm-over' });
    const body = JSON.stringify({ batch: [atLimit, over], sentAt: '2024-05-01T11:59:59.000Z', context: { library: { name: 'analytics-python', version: '2.3.0' } } });
    const { response, events } = await send({ body });
    expect(response.status).toBe(200);
    expect(response.body['rejected']).toEqual([{ index: 1, messageId: 'm-over', path: '', reason: `is ${ingestLimits.maxEventBytes + 1} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed per event` }]);
    expect(events.saved[0]?.messages.map((message) => message.messageId)).toEqual([`m-${ingestLimits.maxEventBytes}`]);
  });

  it('stores a single call at the limit, whose type the path adds', async () => {
    const { type: _type, ...withoutType } = track();
    const body = JSON.stringify(sized(ingestLimits.maxEventBytes, withoutType));
    expect(Buffer.byteLength(body)).toBe(ingestLimits.maxEventBytes);
    const { response, events } = await send({ callType: 'track', body });
    expect(response.status).toBe(200);
    expect(events.saved[0]?.messages.map((message) => message.type)).toEqual(['track']);
  });

  it("refuses a batch whose own context is over the limit, naming it: it would be added to every message", async () => {
    const context = { blob: 'x'.repeat(ingestLimits.maxEventBytes) };
    const { response, events } = await send({ body: JSON.stringify({ batch: [track()], context }) });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ path: 'context', reason: `is ${JSON.stringify(context).length} bytes, more than the ${ingestLimits.maxEventBytes} bytes allowed: it is added to every message of the batch` });
    expect(events.saved).toEqual([]);
  });

  it('refuses a batch whose context, added to each of its messages, would store more than a request may hold: a few KB gzipped must not store megabytes', async () => {
    const context = { blob: 'x'.repeat(20_000) };
    const size = Buffer.byteLength(JSON.stringify(context));
    const batch = (count: number) => Array.from({ length: count }, (_, index) => track({ messageId: `m-${index}` }));
    // 25 messages: 500 KB of context in all, as much as a request may hold.
    const fits = Math.floor(ingestLimits.maxRequestBytes / size);
    const taken = await send({ body: JSON.stringify({ batch: batch(fits), context }) });
    expect(taken.response.status).toBe(200);
    expect(taken.events.saved[0]?.messages).toHaveLength(fits);

    const refused = await send({ body: JSON.stringify({ batch: batch(fits + 1), context }) });
    expect(refused.response.status).toBe(400);
    expect(refused.response.body).toMatchObject({
      path: 'context',
      reason: `is ${size} bytes, added to each of the batch's ${fits + 1} messages: ${size * (fits + 1)} bytes in all, more than the ${ingestLimits.maxRequestBytes} bytes a request may hold; send a smaller context, or fewer messages a batch`,
    });
    expect(refused.events.saved).toEqual([]);
  });
});

describe('input made canonical before anything depends on it', () => {
  it('refuses, naming the field, a message holding bytes that are not UTF-8, and stores the rest of the batch', async () => {
    const good = JSON.stringify(track({ userId: 'caf\u00e9', messageId: 'm-good' }));
    const bad = JSON.stringify(track({ userId: 'cafXX', messageId: 'm-bad' }));
    // 0xE9 alone is Latin-1 é, not UTF-8; a lossy decoder would turn it into U+FFFD and it could meet another user.
    const bytes = Buffer.from(`{"batch":[${good},${bad}]}`, 'utf8');
    const at = bytes.indexOf('cafXX') + 3;
    bytes[at] = 0xe9;
    bytes[at + 1] = 0x20;
    const { response, events } = await send({ body: decodeUtf8(bytes) });
    expect(response.status).toBe(200);
    expect(response.body['rejected']).toEqual([{ index: 1, messageId: 'm-bad', path: 'userId', reason: 'holds bytes that are not valid UTF-8' }]);
    expect(events.saved[0]!.messages.map((message) => message.identity.id)).toEqual(['caf\u00e9']);
    expect(events.quarantined[0]!.rejected).toHaveLength(1);
  });

  it('decodes UTF-8 exactly as Node does when it is valid, and marks each invalid byte otherwise', () => {
    const valid = Buffer.from('plain, caf\u00e9, \u{1f600}, \ud7ff, \ue000', 'utf8');
    expect(decodeUtf8(valid)).toBe(valid.toString('utf8'));
    // An overlong "/" (C0 AF), an encoded surrogate (ED A0 80), a truncated 4-byte sequence and a byte past U+10FFFF.
    for (const invalid of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0xf5, 0x80, 0x80, 0x80]]) {
      const decoded = decodeUtf8(Buffer.from([0x61, ...invalid, 0x62]));
      expect(decoded.startsWith('a') && decoded.endsWith('b')).toBe(true);
      expect(decoded.isWellFormed()).toBe(false);
    }
  });

  it('keeps every digit of numeric ids beyond 2^53, so two users stay two', async () => {
    const body = '{"batch":[{"type":"track","userId":12345678901234567890,"event":"x","messageId":"a","timestamp":"2024-05-01T11:00:00Z"},' +
      '{"type":"track","userId":12345678901234567891,"event":"x","messageId":"b","timestamp":"2024-05-01T11:00:00Z","properties":{"userId":"12345678901234567892 inside a string"}}]}';
    const { response, events } = await send({ body });
    expect(response.status).toBe(200);
    expect(events.saved[0]!.messages.map((message) => message.identity.id)).toEqual(['12345678901234567890', '12345678901234567891']);
    expect(parseMessageJson('{"userId": 7, "n": 12345678901234567890}')).toEqual({ userId: 7, n: 12345678901234567890 });
    expect(parseMessageJson('{"groupId":-98765432109876543210}')).toEqual({ groupId: '-98765432109876543210' });
  });

  it('finds an identifier of 16 digits or more wherever it falls in the text (parseMessageJson looks at every sixteenth character)', () => {
    // Sixteen digits just past the safe integers (the shortest that must be read as strings), or any length.
    const digits = fc.oneof(fc.bigInt({ min: 9_007_199_254_740_000n, max: 9_999_999_999_999_999n }), fc.bigInt({ min: 1n, max: 10n ** 24n })).map(String);
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a ]{0,40}$/), fc.constantFrom('userId', 'anonymousId', 'n'), digits, (pad, key, literal) => {
        const text = `{"pad":"${pad}","${key}":${literal}}`;
        const asString = key !== 'n' && !Number.isSafeInteger(Number(literal));
        expect(parseMessageJson(text)).toEqual({ pad, [key]: asString ? literal : Number(literal) });
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ['a skew correction that lands years ahead', { originalTimestamp: '9999-01-01T00:00:00Z', sentAt: '2000-01-01T00:00:00Z' }, 'originalTimestamp'],
    ['a skew correction that lands before 2000', { originalTimestamp: '1999-12-31T00:00:00Z', sentAt: '2024-05-01T12:00:00Z' }, 'originalTimestamp'],
    ['a timestamp before 2000', { timestamp: '1970-01-01T00:00:00Z' }, 'timestamp'],
    ['a timestamp past year 9999 once its offset is applied', { timestamp: '9999-12-31T23:59:59-23:59' }, 'timestamp'],
  ])('refuses %s, naming the field, instead of filing it under a day like +012026-11', (_name, times, path) => {
    const outcome = validateMessage({ type: 'track', userId: 'u', event: 'x', ...times }, 0, 'acme', receivedAt);
    expect(outcome).toMatchObject({ path, reason: expect.stringContaining('outside') });
  });

  it('refuses an event more than a day ahead of its receipt, naming the field: it has not happened', () => {
    const ahead = validateMessage({ type: 'track', userId: 'u', event: 'x', timestamp: '2024-05-03T12:00:00Z' }, 0, 'acme', receivedAt);
    expect(ahead).toMatchObject({ path: 'timestamp', reason: 'is 2024-05-03T12:00:00.000Z, more than a day after the request was received (2024-05-01T12:00:00.000Z): an event not yet happened, from a wrong clock' });
    // A clock a few hours ahead (a local time sent as UTC) is kept; a history read by the backtest, whose receipt is unknown, too.
    expect(validateMessage({ type: 'track', userId: 'u', event: 'x', timestamp: '2024-05-02T02:00:00Z' }, 0, 'acme', receivedAt)).toMatchObject({ timestamp: '2024-05-02T02:00:00.000Z' });
    expect(validateMessage({ type: 'track', userId: 'u', event: 'x', timestamp: '2024-05-03T12:00:00Z' }, 0, 'acme', new Date(0), { receivedAtKnown: false })).toMatchObject({ timestamp: '2024-05-03T12:00:00.000Z' });
  });

  it('still corrects an ordinary skew and accepts a device a day ahead', () => {
    const outcome = validateMessage({ type: 'track', userId: 'u', event: 'x', originalTimestamp: '2024-05-02T11:00:00Z', sentAt: '2024-05-02T12:00:00Z' }, 0, 'acme', receivedAt);
    expect(outcome).toMatchObject({ timestamp: '2024-05-01T11:00:00.000Z' });
  });

  it('takes a null envelope context or sentAt for an absent one, storing the batch', async () => {
    const { response, events } = await send({ body: JSON.stringify({ batch: [track()], context: null, sentAt: null }) });
    expect(response.status).toBe(200);
    expect(events.saved[0]!.messages).toHaveLength(1);
  });

  it('gives a message with neither messageId nor time the same id when it is sent again later', () => {
    const message = { type: 'track', userId: 'u', event: 'x' };
    const first = validateMessage(message, 0, 'acme', receivedAt) as AcceptedMessage;
    const retried = validateMessage(message, 0, 'acme', new Date(receivedAt.getTime() + 3_600_000)) as AcceptedMessage;
    expect(first.serverTimed).toBe(true);
    expect(retried.messageId).toBe(first.messageId);
  });
});

describe('what other SDKs send', () => {
  it("takes RudderStack's empty userId before identify for no userId: the anonymous visitor's event is stored", () => {
    const outcome = validateMessage({ type: 'track', userId: '', anonymousId: 'visitor-1', event: 'Viewed' }, 0, 'acme', receivedAt);
    expect(outcome).toMatchObject({ identity: { kind: 'visitor', id: 'visitor-1' } });
  });

  it("reads an identify's traits from context.traits when it has none at the top, as RudderStack sends them", () => {
    const rudder = validateMessage({ type: 'identify', userId: 'u', context: { traits: { plan: 'trial' } } }, 0, 'acme', receivedAt);
    expect(rudder).toMatchObject({ traits: { plan: 'trial' } });
    const segment = validateMessage({ type: 'identify', userId: 'u', traits: { plan: 'pro' }, context: { traits: { plan: 'trial' } } }, 0, 'acme', receivedAt);
    expect(segment).toMatchObject({ traits: { plan: 'pro' } });
  });
});

describe('timestamps', () => {
  it('takes the basic offset Java writes (+0000, -0530) and stores it in the extended form', () => {
    const outcome = validateMessage(track({ timestamp: undefined, originalTimestamp: '2024-05-01T06:00:00.250-0530', sentAt: '2024-05-01T11:30:00+0000' }), 0, 'acme', receivedAt) as AcceptedMessage;
    expect(outcome.timestamp).toBe('2024-05-01T12:00:00.250Z');
    expect(outcome.message).toMatchObject({ originalTimestamp: '2024-05-01T06:00:00.250-05:30', sentAt: '2024-05-01T11:30:00+00:00' });
    for (const ambiguous of ['2024-05-01T11:00:00', '2024-05-01', '2024-05-01T11:00:00.1234']) {
      expect(validateMessage(track({ timestamp: ambiguous }), 0, 'acme', receivedAt), ambiguous).toMatchObject({ path: 'timestamp', reason: 'must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z' });
    }
  });
});

describe('fields sent as null or empty for "not given"', () => {
  it("stores analytics-python's page and screen with a null name and category, without them", () => {
    for (const type of ['page', 'screen']) {
      const outcome = validateMessage({ type, userId: 'u', name: null, category: null, properties: { path: '/pricing' } }, 0, 'acme', receivedAt);
      expect('reason' in outcome, JSON.stringify(outcome)).toBe(false);
      const accepted = outcome as AcceptedMessage;
      expect(accepted.name).toBeUndefined();
      expect(Object.keys(accepted.message)).not.toContain('name');
      expect(Object.keys(accepted.message)).not.toContain('category');
    }
  });

  it("stores analytics-ruby's page and screen with an empty name as ones without a name", () => {
    for (const type of ['page', 'screen']) {
      const accepted = validateMessage({ type, userId: 'u', name: '' }, 0, 'acme', receivedAt) as AcceptedMessage;
      expect(accepted.name).toBeUndefined();
      expect(Object.keys(accepted.message)).not.toContain('name');
    }
    expect(validateMessage({ type: 'track', userId: 'u', event: '' }, 0, 'acme', receivedAt)).toMatchObject({ path: 'event', reason: 'must not be empty' });
  });

  it('reads every null optional field as absent, so what reads the stored message never finds null', () => {
    const nulls = { messageId: null, timestamp: null, originalTimestamp: null, sentAt: null, properties: null, integrations: null, context: { ip: '10.0.0.1', groupId: null, traits: null } };
    const tracked = validateMessage({ type: 'track', userId: 'u', anonymousId: null, event: 'x', ...nulls }, 0, 'acme', receivedAt) as AcceptedMessage;
    expect(tracked).toMatchObject({ serverTimed: true, timestamp: receivedAt.toISOString(), identity: { kind: 'user', id: 'u' } });
    expect(tracked.messageId).toMatch(/^auto-/);
    expect(tracked.groupId).toBeUndefined();
    expect(tracked.message).toEqual({ type: 'track', userId: 'u', event: 'x', context: { ip: '10.0.0.1' }, messageId: tracked.messageId, timestamp: receivedAt.toISOString() });
    const identified = validateMessage({ type: 'identify', userId: null, anonymousId: 'anon-9', traits: null, context: null }, 0, 'acme', receivedAt) as AcceptedMessage;
    expect(identified).toMatchObject({ identity: { kind: 'visitor', id: 'anon-9' } });
    expect(identified.traits).toBeUndefined();
    expect(Object.keys(identified.message).sort()).toEqual(['anonymousId', 'messageId', 'timestamp', 'type']);
  });

  it("gives a batch item whose own context or sentAt is null the batch's", async () => {
    const item = track({ timestamp: '2024-05-01T11:00:00Z', context: null, sentAt: null });
    const { response, events } = await send({ body: JSON.stringify({ batch: [item], context: { groupId: 'acct-1' }, sentAt: '2024-05-01T11:00:10Z' }) });
    expect(response.status).toBe(200);
    const [stored] = events.saved[0]!.messages;
    expect(stored).toMatchObject({ groupId: 'acct-1', message: { context: { groupId: 'acct-1' }, sentAt: '2024-05-01T11:00:10Z' } });
    // Corrected by the batch's sentAt: sent 10 s after it happened, received at 12:00:00.
    expect(stored!.timestamp).toBe('2024-05-01T11:59:50.000Z');
  });

  it("reads the batch context's null groupId and traits as absent in every item, unless the item gives its own", async () => {
    const items = [track(), track({ messageId: 'm-2', context: { groupId: 'acct-2' } })];
    const { response, events } = await send({ body: JSON.stringify({ batch: items, context: { ip: '10.0.0.1', groupId: null, traits: null } }) });
    expect(response.status).toBe(200);
    const [first, second] = events.saved[0]!.messages;
    expect(first!.message.context).toEqual({ ip: '10.0.0.1' });
    expect(first!.groupId).toBeUndefined();
    expect(second!.message.context).toEqual({ ip: '10.0.0.1', groupId: 'acct-2' });
    expect(second!.groupId).toBe('acct-2');
  });

  it('reads a single call\'s null optional fields as absent', async () => {
    const { response, events } = await send({ callType: 'page', body: JSON.stringify({ userId: 'u', name: null, category: null, context: { groupId: null } }) });
    expect(response.status).toBe(200);
    const [stored] = events.saved[0]!.messages;
    expect(Object.keys(stored!.message).sort()).toEqual(['context', 'messageId', 'timestamp', 'type', 'userId']);
    expect(stored!.message.context).toEqual({});
  });
});

describe('browser origins', () => {
  it('stores a browser request from an origin its workspace accepts, and lets the browser read the answer', async () => {
    const { response, events } = await send({ body: JSON.stringify({ batch: [track()] }), origin: 'https://app.acme.com' }, 'acme', ['https://app.acme.com']);
    expect(response).toMatchObject({ status: 200, allowOrigin: 'https://app.acme.com' });
    expect(events.saved[0]!.messages).toHaveLength(1);
    const anywhere = await send({ body: JSON.stringify({ batch: [track()] }), origin: 'https://elsewhere.example' }, 'acme', ['*']);
    expect(anywhere.response).toMatchObject({ status: 200, allowOrigin: 'https://elsewhere.example' });
  });

  it('refuses, storing nothing, a browser request from an origin its workspace does not accept', async () => {
    const { response, events } = await send({ body: JSON.stringify({ batch: [track()] }), origin: 'https://copied.example' }, 'acme', ['https://app.acme.com']);
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ path: 'origin', reason: expect.stringContaining('https://copied.example') });
    expect(response.allowOrigin).toBeUndefined();
    expect(events.saved).toEqual([]);
  });

  it('needs no origin from servers, and sends them no CORS answer', async () => {
    const { response } = await send({ body: JSON.stringify({ batch: [track()] }) }, 'acme', []);
    expect(response.status).toBe(200);
    expect(response.allowOrigin).toBeUndefined();
  });

  it.each([
    ['https://app.example.com', { origin: 'https://app.example.com' }],
    ['https://app.example.com/', { origin: 'https://app.example.com' }],
    ['http://localhost:5173', { origin: 'http://localhost:5173' }],
    ['*', { origin: '*' }],
    ['https://app.example.com/path', { problem: 'has a path' }],
    ['https://APP.example.com:443', { origin: 'https://app.example.com' }],
    ['ftp://example.com', { problem: "has the scheme ftp, which no page's origin has" }],
    ['https://user:pw@example.com', { problem: 'holds a user name or password' }],
    ['example.com', { problem: 'is not a URL' }],
    // Hybrid, desktop and extension apps' own schemes.
    ['capacitor://localhost', { origin: 'capacitor://localhost' }],
    ['ionic://LOCALHOST/', { origin: 'ionic://localhost' }],
    ['Tauri://localhost', { origin: 'tauri://localhost' }],
    ['chrome-extension://abcdefghijklmnopabcdefghijklmnop', { origin: 'chrome-extension://abcdefghijklmnopabcdefghijklmnop' }],
    ['moz-extension://0f1e2d3c-aaaa-bbbb-cccc-123456789abc', { origin: 'moz-extension://0f1e2d3c-aaaa-bbbb-cccc-123456789abc' }],
    ['app://desktop:8080', { origin: 'app://desktop:8080' }],
    ['capacitor://localhost/index.html', { problem: 'has a path' }],
    ['capacitor://localhost?x=1', { problem: 'has a query or a fragment' }],
    ['app:', { problem: 'names no host (write app://<host>)' }],
    ['file:///index.html', { problem: "has the scheme file, which no page's origin has" }],
    ['null', { problem: "is the opaque origin, which any site's sandboxed frame sends: allowing it would allow every site" }],
  ])('reads %s as %j', (value, expected) => {
    expect(canonicalOrigin(value)).toEqual(expected);
  });

  it('stores a browser request from an app origin its workspace accepts', async () => {
    const allowed = (canonicalOrigin('capacitor://localhost') as { origin: string }).origin;
    const { response } = await send({ body: JSON.stringify({ batch: [track()] }), origin: 'capacitor://localhost' }, 'acme', [allowed]);
    expect(response).toMatchObject({ status: 200, allowOrigin: 'capacitor://localhost' });
  });

  it('maps the browser SDKs\' one-letter paths and the HTTP API\'s paths to their calls', () => {
    expect(['/v1/t', '/v1/i', '/v1/g', '/v1/p', '/v1/s', '/v1/a', '/v1/b', '/v1/batch/', '/v1/import'].map(callTypeOfPath)).toEqual([
      'track', 'identify', 'group', 'page', 'screen', 'alias', 'batch', 'batch', 'import',
    ]);
    expect(['/v1/x', '/v2/t', '/v1/', '/v1/track/extra'].map(callTypeOfPath)).toEqual([undefined, undefined, undefined, undefined]);
  });
});
