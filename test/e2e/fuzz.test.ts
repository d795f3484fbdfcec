import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { queryAll } from '../../functions/adapters/dynamodb/batch-write';
import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { entityPartitionKey, eventSortKeyPrefix, quarantinePartitionKey, type EntityType } from '../../functions/adapters/dynamodb/item-keys';
import { messageTypes } from '../../functions/core/segment-schema';
import { generateWriteKey } from '../../functions/core/write-key';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { listedChanges } from '../support/change-capture';

/**
 * Property-based fuzzing of the ingest endpoint over HTTP: whatever arrives, the answer is a JSON object with a
 * status below 500, and what is stored is exactly what the answers accepted.
 *
 * Generated requests hold stand-ins (the classes below) that are expanded per run: identifiers become unique to the
 * run, so the events a run stored can be found by Query on the partitions its messages name; big payloads are
 * built only when sent, so a failing case prints as `huge(520000)` instead of half a megabyte.
 */

let dev: DevRuntime;
let revokedKey: string;

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `e2e-fuzz-${randomUUID()}` });
  const revoked = await dev.keys.create(dev.workspace);
  await dev.keys.revoke(revoked.record.keyId);
  revokedKey = revoked.key;
});

afterAll(async () => {
  await dev?.stop();
});

// ---- stand-ins, expanded when a request is rendered ----

/** A valid identifier (user, anonymous, group or alias id), unique to the run. */
class Id {
  constructor(readonly name: string) {}
  [fc.toStringMethod]() {
    return `id(${this.name})`;
  }
}
/** A valid numeric identifier, unique to the run: identifiers may be numbers. */
class NumericId {
  constructor(readonly n: number) {}
  [fc.toStringMethod]() {
    return `numericId(${this.n})`;
  }
}
/** A messageId no other message of any run has. */
class MessageId {
  [fc.toStringMethod]() {
    return 'messageId()';
  }
}
class Huge {
  constructor(
    readonly length: number,
    readonly char: string,
  ) {}
  [fc.toStringMethod]() {
    return `huge(${this.length} x ${JSON.stringify(this.char)})`;
  }
}
/** JSON nested `levels` deep, written as text: building it as an object and stringifying it would be the thing under test. */
class Deep {
  constructor(
    readonly levels: number,
    readonly shape: 'object' | 'array',
  ) {}
  [fc.toStringMethod]() {
    return `deep(${this.levels} ${this.shape})`;
  }
}
/** A batch with more messages than allowed. */
class ManyMessages {
  constructor(readonly count: number) {}
  [fc.toStringMethod]() {
    return `manyMessages(${this.count})`;
  }
}

/** Object literals cannot have an own `__proto__` key, so generated objects use this one and the JSON text is patched. */
const protoKey = '$proto$';

interface Run {
  tag: string;
  seq: number;
  messageIds: number;
}

let runs = 0;
const newRun = (): Run => ({ tag: `r${++runs}-${randomUUID().slice(0, 8)}`, seq: runs, messageIds: 0 });

/** Expands the stand-ins and returns the JSON text of `value`. */
function renderJson(value: unknown, run: Run): string {
  const deep: Deep[] = [];
  const expand = (node: unknown): unknown => {
    if (node instanceof Id) return `${run.tag}-${node.name}`;
    if (node instanceof NumericId) return run.seq * 10 + node.n;
    if (node instanceof MessageId) return `${run.tag}-m${run.messageIds++}`;
    if (node instanceof Huge) return node.char.repeat(node.length);
    if (node instanceof ManyMessages) return Array.from({ length: node.count }, () => ({}));
    if (node instanceof Deep) return `\u0001deep${deep.push(node) - 1}`;
    if (Array.isArray(node)) return node.map(expand);
    if (node !== null && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, expand(child)]));
    return node;
  };
  let text = JSON.stringify(expand(value)) ?? 'null';
  text = text.replaceAll(`${JSON.stringify(protoKey)}:`, '"__proto__":');
  deep.forEach(({ levels, shape }, i) => {
    const nested = shape === 'object' ? `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}` : `${'['.repeat(levels)}${']'.repeat(levels)}`;
    text = text.replace(JSON.stringify(`\u0001deep${i}`), nested);
  });
  return text;
}

// ---- arbitraries ----

const loneSurrogate = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');
/** Any code points, with a lone surrogate now and then. */
const anyText = fc.string({
  unit: fc.oneof({ weight: 12, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: loneSurrogate }),
  maxLength: 12,
});
/**
 * 201 characters: too long for an identifier; 20,000: allowed alone, not twice; 33,000 and 120,000: over the
 * 32 KB event limit; 220,000 and 520,000: multi-byte text around and over the 500 KB request limit.
 */
const huge = fc
  .tuple(fc.constantFrom(201, 20_000, 33_000, 120_000, 220_000, 520_000), fc.constantFrom('x', 'é', '\u{1f600}'))
  .map(([length, char]) => new Huge(length, char));
/** Far deeper than the 32 levels allowed, and past the ~4,200 at which serialising overflows the stack. */
const deep = fc.tuple(fc.integer({ min: 100, max: 6000 }), fc.constantFrom('object' as const, 'array' as const)).map(([levels, shape]) => new Deep(levels, shape));
const oddKey = fc.oneof(fc.constantFrom(protoKey, 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'a.b', '#t0', ':t0', 'trait:x'), anyText);
const json = fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' });
/**
 * An object any message may carry as properties, traits or context: valid, whatever its keys and values.
 * fast-check itself generates `__proto__` keys now and then, which the ingest rightly refuses.
 */
const safeObject = fc
  .dictionary(oddKey.filter((key) => key !== protoKey), json, { maxKeys: 4 })
  .filter((value) => !JSON.stringify(value).includes('"__proto__"'));
/** An object that may also hold what the ingest must refuse: __proto__ keys, huge strings, deep nesting. */
const hostileObject = fc.dictionary(oddKey, fc.oneof({ weight: 20, arbitrary: json }, { weight: 2, arbitrary: anyText }, { weight: 1, arbitrary: huge }, { weight: 1, arbitrary: deep }), {
  maxKeys: 4,
});
/** A value of the wrong type or shape for almost any field. */
const wrongValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.array(fc.integer(), { maxLength: 3 }),
  hostileObject,
  anyText,
  huge,
  deep,
);

const id = fc.oneof({ weight: 5, arbitrary: fc.constantFrom('u1', 'u2', 'u3').map((name) => new Id(name)) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 9 }).map((n) => new NumericId(n)) });
/** Never a valid identifier: numbers and plain strings are excluded because they would not be unique to the run. */
const badId = fc.oneof(fc.constant(''), loneSurrogate, fc.boolean(), fc.constant({}), fc.constant([]), huge, deep);
const maybeId = fc.oneof({ weight: 5, arbitrary: id }, { weight: 1, arbitrary: badId }, { weight: 1, arbitrary: fc.constant(null) });
const messageId = fc.oneof({ weight: 5, arbitrary: fc.constant(new MessageId()) }, { weight: 1, arbitrary: fc.oneof(fc.constant(''), loneSurrogate, fc.boolean(), fc.constant(new Huge(201, 'x'))) });

const day = 86_400_000;
const validTimestamp = fc.oneof(
  fc.date({ min: new Date(Date.now() - 300 * day), max: new Date(Date.now() + day / 2), noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom('2025-05-01T12:00:00+14:00', '2025-05-01T12:00:00.123456Z', '2025-05-01T00:00:00-23:59'),
);
const maybeTimestamp = fc.oneof(
  { weight: 4, arbitrary: validTimestamp },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('2025-02-31T00:00:00Z', '2025-05-01', 'yesterday', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59'), fc.integer(), anyText) },
);
// Graphemes may be several code units each: 15 of them stay under the 200-character limit.
const eventName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 15 });
const maybeEventName = fc.oneof({ weight: 4, arbitrary: eventName }, { weight: 1, arbitrary: fc.oneof(fc.constant(''), loneSurrogate, fc.integer(), fc.constant(null), huge) });

/** Valid messages of each type, which the ingest must accept whatever their optional fields hold. */
const identity = fc.oneof(fc.record({ userId: id }), fc.record({ anonymousId: id }), fc.record({ userId: id, anonymousId: id }));
const commonFields = fc.record(
  {
    messageId: fc.constant(new MessageId()),
    timestamp: validTimestamp,
    context: fc.record({ groupId: id, traits: safeObject, library: safeObject }, { requiredKeys: [] }),
    integrations: safeObject,
  },
  { requiredKeys: [] },
);
const typedFields: Record<(typeof messageTypes)[number], fc.Arbitrary<Record<string, unknown>>> = {
  track: fc.record({ type: fc.constant('track'), event: eventName, properties: safeObject }, { requiredKeys: ['type', 'event'] }),
  identify: fc.record({ type: fc.constant('identify'), traits: safeObject }, { requiredKeys: ['type'] }),
  group: fc.record({ type: fc.constant('group'), groupId: id, traits: safeObject }, { requiredKeys: ['type', 'groupId'] }),
  page: fc.record({ type: fc.constant('page'), name: eventName, category: fc.string(), properties: safeObject }, { requiredKeys: ['type'] }),
  screen: fc.record({ type: fc.constant('screen'), name: eventName, properties: safeObject }, { requiredKeys: ['type'] }),
  alias: fc.record({ type: fc.constant('alias'), userId: id, previousId: id }),
};
const validMessageOf = (type: (typeof messageTypes)[number]) =>
  fc.tuple(identity, commonFields, typedFields[type]).map(([who, common, typed]) => ({ ...who, ...common, ...typed }));
const validMessage = fc.constantFrom(...messageTypes).chain(validMessageOf);

/** Messages of any shape: every field may be missing, of the wrong type, or hostile. */
const looseMessage = fc
  .tuple(
    fc.record(
      {
        type: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...messageTypes) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom('Track', 'batch'), wrongValue) }),
        userId: maybeId,
        anonymousId: maybeId,
        messageId,
        event: maybeEventName,
        name: maybeEventName,
        groupId: maybeId,
        previousId: maybeId,
        timestamp: maybeTimestamp,
        originalTimestamp: maybeTimestamp,
        sentAt: maybeTimestamp,
        properties: fc.oneof(hostileObject, wrongValue),
        traits: fc.oneof(hostileObject, wrongValue),
        context: fc.oneof(fc.record({ groupId: maybeId, traits: fc.oneof(hostileObject, wrongValue) }, { requiredKeys: [] }), wrongValue),
        integrations: fc.oneof(safeObject, wrongValue),
        writeKey: wrongValue,
      },
      { requiredKeys: [] },
    ),
    hostileObject,
  )
  .map(([fields, extra]) => ({ ...extra, ...fields }));
/** Mostly valid messages: a batch then usually has some to store, and some to reject. */
const message = fc.oneof({ weight: 4, arbitrary: validMessage }, { weight: 1, arbitrary: looseMessage });
/** An optional field that is usually absent or valid, and now and then wrong. */
const sometimes = <T, U>(valid: fc.Arbitrary<T>, wrong: fc.Arbitrary<U>) =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 4, arbitrary: valid }, { weight: 1, arbitrary: wrong });

const envelope = fc
  .tuple(
    fc.record({
      batch: fc.oneof(
        { weight: 12, arbitrary: fc.array(message, { maxLength: 6 }) },
        { weight: 1, arbitrary: wrongValue },
        { weight: 1, arbitrary: fc.constant(new ManyMessages(2501)) },
      ),
      context: sometimes(safeObject, fc.oneof(hostileObject, wrongValue)),
      sentAt: sometimes(validTimestamp, maybeTimestamp),
      writeKey: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: wrongValue }),
    }),
    fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(oddKey, json, { maxKeys: 2 }) }),
  )
  .map(([fields, extra]) => ({ ...extra, ...fields }));

const batchPaths = ['/v1/batch', '/v1/import'];
const singlePaths = messageTypes.map((type) => `/v1/${type}`);
const badPaths = ['/v1/', '/v1/unknown', '/v1/batch/', '/v1/Track', '/v2/track', '/v1/track/x', '/', '/v1/batch?x=1', '/v1//batch'];

type Body = { json: unknown } | { text: string };
const notJson = fc
  .oneof(
    fc.string({ unit: 'binary' }),
    fc.constantFrom('', ' ', '{', '{"batch":[', '{"batch":[}', 'nul', '{"a":1,}', "{'a':1}", '1e999', 'NaN', '{"batch":[{"type":"track"]}', '\ufeff{}'),
  )
  .map((text): Body => ({ text }));
/** Valid JSON that is not an object: arrays (of messages, too), strings, numbers, null. */
const notAnObject = fc
  .oneof(fc.array(message, { maxLength: 2 }), json.filter((value) => value === null || typeof value !== 'object' || Array.isArray(value)))
  .map((value): Body => ({ json: value }));
const anyBody: fc.Arbitrary<Body> = fc.oneof(envelope, message).map((value) => ({ json: value }));

/** Mostly a body that fits its path; otherwise any body on any path. */
const pathAndBody: fc.Arbitrary<{ path: string; body: Body }> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ path: fc.constantFrom(...batchPaths), body: envelope.map((value): Body => ({ json: value })) }) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(...messageTypes).chain((type) =>
      fc.record({ path: fc.constant(`/v1/${type}`), body: fc.oneof(validMessageOf(type), looseMessage).map((value): Body => ({ json: value })) }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      path: fc.constantFrom(...batchPaths, ...singlePaths, ...badPaths),
      body: fc.oneof(anyBody, notAnObject, notJson),
    }),
  },
);

/** Bytes that are not UTF-8, inserted after a quote so that they usually land inside a JSON string. */
interface Corruption {
  afterQuote: number;
  bytes: number[];
}
const invalidUtf8: fc.Arbitrary<Corruption> = fc.record({
  afterQuote: fc.nat(),
  bytes: fc.constantFrom([0xff], [0xfe, 0xff], [0xc0, 0xaf], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]),
});

type Encoding = { header?: string; transform: 'none' | 'gzip' | 'truncated gzip' | 'not gzip' };
const encoding: fc.Arbitrary<Encoding> = fc.oneof(
  { weight: 8, arbitrary: fc.constant({ transform: 'none' as const }) },
  { weight: 3, arbitrary: fc.constantFrom('gzip', 'GZIP', ' gzip ').map((header) => ({ header, transform: 'gzip' as const })) },
  { weight: 1, arbitrary: fc.constant({ header: 'identity', transform: 'none' as const }) },
  { weight: 1, arbitrary: fc.constant({ header: 'gzip', transform: 'truncated gzip' as const }) },
  { weight: 1, arbitrary: fc.constant({ header: 'gzip', transform: 'not gzip' as const }) },
  { weight: 1, arbitrary: fc.constantFrom('br', 'deflate', 'gzip, br', 'x-gzip', '*').map((header) => ({ header, transform: 'none' as const })) },
);

// ---- sending and reading back ----

const basicAuth = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;

interface Sent {
  status: number;
  answer: unknown;
  /** The body as the server decodes it, to tell which messages and partitions the request named. */
  decoded: string;
}

async function send(request: { path: string; payload: Buffer; encoding: Encoding; authorization?: string }): Promise<Sent> {
  let bytes = request.payload;
  if (request.encoding.transform !== 'none') bytes = gzipSync(bytes);
  if (request.encoding.transform === 'truncated gzip') bytes = bytes.subarray(0, Math.max(1, bytes.length - 9));
  if (request.encoding.transform === 'not gzip') bytes = request.payload;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (request.encoding.header !== undefined) headers['content-encoding'] = request.encoding.header;
  if (request.authorization !== undefined) headers['authorization'] = request.authorization;
  const response = await fetch(`${dev.url}${request.path}`, { method: 'POST', headers, body: bytes });
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${response.status}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, answer, decoded: request.payload.toString('utf8') };
}

function insertAfterQuote(text: string, corruption: Corruption | null): Buffer {
  const bytes = Buffer.from(text);
  if (corruption === null) return bytes;
  const quotes = [...bytes.keys()].filter((i) => bytes[i] === 0x22);
  const at = quotes.length === 0 ? 0 : quotes[corruption.afterQuote % quotes.length]! + 1;
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(corruption.bytes), bytes.subarray(at)]);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The messages a request carried, as the server splits them; empty when the body is not a usable object. */
function messagesOf(requestPath: string, decoded: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoded);
  } catch {
    return [];
  }
  if (!isPlainObject(parsed)) return [];
  // As the handler reads the path: a trailing slash is allowed, the query string ignored.
  const callType = new URL(requestPath, 'http://x').pathname.slice('/v1/'.length).replace(/\/$/, '');
  if (callType === 'batch' || callType === 'import') return Array.isArray(parsed['batch']) ? parsed['batch'] : [];
  return [parsed];
}

/** Identifiers the ingest could accept: only these can name a partition. */
const usableId = (value: unknown): string | undefined => {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string' && value.length >= 1 && value.length <= 200 && value.isWellFormed()) return value;
  return undefined;
};

/** Every partition a request's messages could have written to. */
function partitionsOf(messages: unknown[]): { type: EntityType; id: string }[] {
  const found = new Map<string, { type: EntityType; id: string }>();
  const add = (type: EntityType, id: string | undefined) => {
    if (id !== undefined) found.set(`${type}#${id}`, { type, id });
  };
  for (const message of messages) {
    if (!isPlainObject(message)) continue;
    add('user', usableId(message['userId']));
    const anonymousId = usableId(message['anonymousId']);
    add('visitor', anonymousId);
    add('account', usableId(message['groupId']));
    if (isPlainObject(message['context'])) add('account', usableId(message['context']['groupId']));
  }
  return [...found.values()];
}

async function count(pk: string, sortKeyCondition?: { operator: 'begins_with' | '>='; value: string }): Promise<number> {
  let total = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dev.client.send(
      new QueryCommand({
        TableName: dev.tableName,
        KeyConditionExpression:
          sortKeyCondition === undefined ? 'pk = :pk' : sortKeyCondition.operator === 'begins_with' ? 'pk = :pk AND begins_with(sk, :sk)' : 'pk = :pk AND sk >= :sk',
        ExpressionAttributeValues: { ':pk': { S: pk }, ...(sortKeyCondition ? { ':sk': { S: sortKeyCondition.value } } : {}) },
        Select: 'COUNT',
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    total += page.Count ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return total;
}

const pkOf = ({ type, id }: { type: EntityType; id: string }) => entityPartitionKey(dev.workspace, type, id);
/** The messages in the partitions' event items (an item holds a request's messages of one entity and day). */
async function storedEvents(partitions: { type: EntityType; id: string }[]): Promise<number> {
  const query = (pk: string) =>
    queryAll(dev.client, {
      TableName: dev.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :sk)',
      ExpressionAttributeValues: { ':pk': { S: pk }, ':sk': { S: eventSortKeyPrefix } },
      ConsistentRead: true,
    });
  const items = await Promise.all(partitions.filter(({ type }) => type !== 'account').map((p) => query(pkOf(p))));
  return items.flat().reduce((sum, item) => sum + eventMessagesOf(item).length, 0);
}

/** What the answer says was accepted, after checking that the answer has the documented shape. */
function acceptedCount(sent: Sent, messages: unknown[]): number {
  expect(sent.status).toBeLessThan(500);
  expect(isPlainObject(sent.answer), JSON.stringify(sent.answer)).toBe(true);
  const answer = sent.answer as Record<string, unknown>;
  if (sent.status !== 200) {
    expect(answer['success']).toBe(false);
    expect(typeof answer['error']).toBe('string');
    return 0;
  }
  expect(answer['success']).toBe(true);
  const rejected = answer['rejected'] ?? [];
  expect(Array.isArray(rejected)).toBe(true);
  for (const entry of rejected as unknown[]) {
    expect(entry).toEqual({ index: expect.any(Number), path: expect.any(String), reason: expect.any(String), ...(isPlainObject(entry) && 'messageId' in entry ? { messageId: expect.any(String) } : {}) });
    const { index, reason } = entry as { index: number; reason: string };
    expect(Number.isInteger(index) && index >= 0 && index < messages.length).toBe(true);
    expect(reason).not.toBe('');
  }
  expect(new Set((rejected as { index: number }[]).map((entry) => entry.index)).size).toBe((rejected as unknown[]).length);
  return messages.length - (rejected as unknown[]).length;
}

// Moderate run counts keep the file well under a minute on two cores; fast-check prints the seed of a failure.
const settings = { numRuns: 200 } as const;

describe('fuzzing the ingest endpoint', () => {
  it('answers anything with JSON below 500 and stores exactly the messages it accepted', async () => {
    const request = fc.record({
      pathAndBody,
      encoding,
      corruption: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: invalidUtf8 }),
      auth: fc.constantFrom('header' as const, 'body' as const),
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ pathAndBody: { path: requestPath, body: requestBody }, encoding: requestEncoding, corruption, auth }) => {
        const run = newRun();
        let value = 'json' in requestBody ? requestBody.json : undefined;
        if (auth === 'body' && isPlainObject(value)) value = { ...value, writeKey: dev.writeKey };
        const text = 'json' in requestBody ? renderJson(value, run) : requestBody.text;
        const payload = insertAfterQuote(text, corruption);

        const sent = await send({ path: requestPath, payload, encoding: requestEncoding, ...(auth === 'header' ? { authorization: basicAuth(dev.writeKey) } : {}) });

        const messages = messagesOf(requestPath, sent.decoded);
        const accepted = acceptedCount(sent, messages);
        expect(await storedEvents(partitionsOf(messages))).toBe(accepted);
      }),
      settings,
    );
  }, 120_000);

  it('stores nothing at all for a request without a valid write key', async () => {
    const unregisteredKey = generateWriteKey().key;
    const badAuth = fc.oneof(
      fc.constant({ what: 'no key at all' }),
      fc.stringMatching(/^[!-~ ]{0,40}$/).map((header) => ({ what: 'a garbage header', header })),
      fc.stringMatching(/^[!-~]{1,40}$/).map((value) => ({ what: 'garbage base64', header: `Basic ${value}` })),
      fc.constantFrom(unregisteredKey, 'not-a-registered-key-1234', basicAuth(dev.writeKey).slice(6)).map((key) => ({ what: 'a wrong key', header: basicAuth(key) })),
      fc.constant({ what: 'a revoked key', header: basicAuth(revokedKey) }),
      fc.constant({ what: 'the right key as the password', header: `Basic ${Buffer.from(`:${dev.writeKey}`).toString('base64')}` }),
      fc.constantFrom<unknown>(unregisteredKey, revokedKey, '', 42, null, { key: dev.writeKey }, [dev.writeKey]).map((writeKey) => ({ what: 'a bad writeKey in the body', writeKey })),
    );
    const request = fc.constantFrom(...batchPaths, ...singlePaths).chain((requestPath) => {
      const type = requestPath.slice('/v1/'.length);
      const value: fc.Arbitrary<Record<string, unknown>> = batchPaths.includes(requestPath)
        ? fc.array(validMessage, { minLength: 1, maxLength: 4 }).map((batch) => ({ batch }))
        : validMessageOf(type as (typeof messageTypes)[number]);
      return fc.record({ path: fc.constant(requestPath), value, gzip: fc.boolean() });
    });

    await fc.assert(
      fc.asyncProperty(request, badAuth, async ({ path: requestPath, value, gzip }, auth) => {
        const run = newRun();
        const requestEncoding: Encoding = gzip ? { header: 'gzip', transform: 'gzip' } : { transform: 'none' };
        const startedAt = new Date().toISOString();
        const payload = Buffer.from(renderJson('writeKey' in auth ? { ...value, writeKey: auth.writeKey } : value, run));

        const refused = await send({ path: requestPath, payload, encoding: requestEncoding, ...('header' in auth ? { authorization: auth.header } : {}) });

        expect(refused.status).toBe(401);
        expect(refused.answer).toMatchObject({ success: false, path: 'writeKey' });
        const partitions = partitionsOf(messagesOf(requestPath, refused.decoded));
        expect(partitions.length).toBeGreaterThan(0);
        for (const partition of partitions) expect(await count(pkOf(partition)), pkOf(partition)).toBe(0);
        expect(await count(quarantinePartitionKey(dev.workspace), { operator: '>=', value: startedAt })).toBe(0);

        // The control: the same messages with the right key (and no bad one in the body) are stored, so the refusal
        // above was about the key alone.
        const control = Buffer.from(renderJson(value, run));
        const stored = await send({ path: requestPath, payload: control, encoding: requestEncoding, authorization: basicAuth(dev.writeKey) });
        expect(stored.status, JSON.stringify(stored.answer)).toBe(200);
        expect(stored.answer).toEqual({ success: true });
        expect(await storedEvents(partitions)).toBe(messagesOf(requestPath, stored.decoded).length);
      }),
      { ...settings, numRuns: 100 },
    );
  }, 120_000);

  it('still serves valid requests after the fuzzing', async () => {
    const userId = `after-${randomUUID()}`;
    const sent = await send({
      path: '/v1/track',
      payload: Buffer.from(JSON.stringify({ userId, event: 'Still Alive', messageId: randomUUID() })),
      encoding: { transform: 'none' },
      authorization: basicAuth(dev.writeKey),
    });
    expect(sent).toMatchObject({ status: 200, answer: { success: true } });
    expect(await storedEvents([{ type: 'user', id: userId }])).toBe(1);
  });
});

describe('regressions found by fuzzing', () => {
  // JSON.stringify overflows the stack at about 4,200 levels, which a 50 KB body reaches: the depth must be checked
  // before anything serialises the message, or the answer is a 500 that Segment clients retry forever.
  it('answers JSON nested 10,000 levels deep with a 4xx, not a 500', async () => {
    const run = newRun();
    const payload = Buffer.from(renderJson({ batch: [{ type: 'track', userId: new Id('u1'), event: 'Deep', properties: { a: new Deep(10_000, 'object') } }] }, run));

    const sent = await send({ path: '/v1/batch', payload, encoding: { transform: 'none' }, authorization: basicAuth(dev.writeKey) });

    expect(sent.status).toBeLessThan(500);
  });

  // A quarantined message must fit DynamoDB's 400 KB item limit in bytes (é is one UTF-16 unit and two UTF-8 bytes),
  // messageId included, or the quarantine write fails after the valid events were stored and the answer is a 500.
  it('quarantines a 440 KB message of two-byte characters without a 5xx', async () => {
    const run = newRun();
    const payload = Buffer.from(renderJson({ batch: [{ type: 'track', userId: new Id('u1'), event: 'Big', properties: { text: new Huge(220_000, 'é') } }] }, run));

    const sent = await send({ path: '/v1/batch', payload, encoding: { transform: 'none' }, authorization: basicAuth(dev.writeKey) });

    expect(sent.status).toBeLessThan(500);
  });

  it('quarantines a message with a 150 KB messageId without a 5xx', async () => {
    const run = newRun();
    const payload = Buffer.from(
      renderJson({ batch: [{ type: 'track', userId: new Id('u1'), event: 'Big', messageId: new Huge(150_000, 'm'), properties: { text: new Huge(300_000, 'x') } }] }, run),
    );

    const sent = await send({ path: '/v1/batch', payload, encoding: { transform: 'none' }, authorization: basicAuth(dev.writeKey) });

    expect(sent.status).toBeLessThan(500);
  });

  // All traits of a user live on one PROFILE item, which DynamoDB caps at 400 KB: identify calls that would outgrow it
  // are refused (listed and quarantined), and the rest of the batch is stored and marked for evaluation.
  it('answers a batch whose traits outgrow one DynamoDB item without a 5xx, and marks its other users', async () => {
    const run = newRun();
    const big = Array.from({ length: 16 }, (_, i) => ({ type: 'identify', userId: new Id('u1'), messageId: new MessageId(), traits: { [`t${i}`]: new Huge(29_000, 'x') } }));
    const other = { type: 'track', userId: new Id('u2'), event: 'Bystander', messageId: new MessageId() };
    const payload = Buffer.from(renderJson({ batch: [...big, other] }, run));

    const sent = await send({ path: '/v1/batch', payload, encoding: { transform: 'none' }, authorization: basicAuth(dev.writeKey) });

    expect(sent.status).toBeLessThan(500);
    await dev.collectChanges();
    expect((await listedChanges(dev.client, dev.tableName)).has(`user ${run.tag}-u2`)).toBe(true);
  });
});
