import { randomBytes } from 'node:crypto';
import { afterEach, expect, it, vi } from 'vitest';
import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { DynamoDbEventStore } from '../../functions/adapters/dynamodb/event-store';
import { eventSortKeyPrefix, quarantinePartitionKey } from '../../functions/adapters/dynamodb/item-keys';
import { DynamoDbWriteKeyStore } from '../../functions/adapters/dynamodb/write-key-store';
import { storeBufferedRequests, type BufferedRequest } from '../../functions/core/ingest-buffer';
import { validateMessage } from '../../functions/core/messages';
import { serveHttpApi } from '../../functions/local/http-server';
import { freshTable } from '../support/dynamodb';
import { stubFunctionEnvironment } from '../support/evaluator-environment';
import { kinesisEvent, startKinesisEndpoint, type KinesisEndpoint } from '../support/kinesis-endpoint';
import { lambdaContext } from '../support/lambda-context';
import { closeLocally } from '../support/local-server';
import { scanAll } from '../support/scan';
import { sendBatch, sendBrowserCall } from '../support/send-batch';

// The Kinesis ingest buffer, as deployed: the ingest function answers from the stream's acceptance (the real Kinesis
// client against a local endpoint), and the consumer function stores a batch of the stream's records in the table.

let kinesis: KinesisEndpoint | undefined;
let closeServer = async () => {};
afterEach(async () => {
  vi.unstubAllEnvs();
  vi.resetModules();
  await closeServer();
  closeServer = async () => {};
  await kinesis?.close();
  kinesis = undefined;
});

async function deployed() {
  const { client, tableName } = await freshTable();
  kinesis = await startKinesisEndpoint();
  stubFunctionEnvironment({ TABLE_NAME: tableName, INGEST_STREAM_NAME: 'pql-radar-IngestBuffer', AWS_ENDPOINT_URL_KINESIS: kinesis.url });
  const { key } = await new DynamoDbWriteKeyStore(client, tableName).create('acme');
  const ingest = await import('../../functions/ingest/kinesis-handler');
  const consumer = await import('../../functions/ingest-buffer/handler');
  const served = await serveHttpApi((event) => ingest.handler(event, lambdaContext()), { port: 0 });
  closeServer = () => closeLocally(served.server);
  const send = (path: string, message: Record<string, unknown>) => sendBrowserCall(served.url, key, path, message);
  const batch = (messages: Record<string, unknown>[]) => sendBatch({ url: served.url, writeKey: key }, messages);
  const items = () => scanAll(client, tableName);
  return { kinesis, send, batch, items, consume: (event: unknown) => consumer.handler(event as Parameters<typeof consumer.handler>[0], lambdaContext()) };
}

const timestamp = new Date(Date.now() - 3_600_000).toISOString();
const track = (messageId: string, userId: string) => ({ type: 'track', messageId, userId, timestamp, event: 'Report Exported' });
const page = (messageId: string, name: string) => ({ messageId, anonymousId: 'visitor-1', timestamp, name, properties: { path: `/${name}` }, context: { library: { name: 'analytics.js', version: 'npm:next-1.84.3' } } });

it("answers 200 once Kinesis has the request, and its consumer stores a batch's events of a visitor in one item, once however often it is retried", async () => {
  const { kinesis, send, items, consume } = await deployed();
  kinesis.failNext(1);
  for (const [index, name] of ['pricing', 'docs', 'billing'].entries()) expect(await send('/v1/p', page(`m${index}`, name))).toEqual({ status: 200, body: { success: true } });
  // The throttled call was retried by the SDK: three records, and nothing in the table yet.
  expect(kinesis.records).toHaveLength(3);
  expect((await items()).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix))).toEqual([]);

  // Invalid input is still answered 400 by ingest, naming the field, and never reaches the stream.
  const invalid = await send('/v1/t', { anonymousId: 'visitor-1', event: 42 });
  expect(invalid.status).toBe(400);
  expect(invalid.body['path']).toBe('event');
  expect(kinesis.records).toHaveLength(3);

  await consume(kinesisEvent(kinesis.records));
  const stored = (await items()).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
  expect(stored.map((item) => eventMessagesOf(item).map((message) => message.messageId))).toEqual([['m0', 'm1', 'm2']]);

  // The event source retries a batch that failed, or hands it over split in halves: the same items, no copy.
  await consume(kinesisEvent(kinesis.records));
  await consume(kinesisEvent(kinesis.records.slice(0, 1)));
  const again = (await items()).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
  const messageIds = again.flatMap((item) => eventMessagesOf(item).map((message) => message.messageId));
  expect(new Set(messageIds)).toEqual(new Set(['m0', 'm1', 'm2']));
  expect(stored.map((item) => item['sk']?.S)).toEqual(expect.arrayContaining([again[0]!['sk']!.S]));
});

it('quarantines what the table refuses after the 200 (traits beyond a profile item), under the request that sent it', async () => {
  const { kinesis, send, items, consume } = await deployed();
  // Each identify fits the 32 KB message limit; together their distinct traits are more than a 400 KB profile item.
  const identifies = Array.from({ length: 16 }, (_, i) => ({ messageId: `id${i}`, userId: 'ann', timestamp, traits: { [`blob${i}`]: randomBytes(22_000).toString('base64') } }));
  for (const identify of identifies) expect((await send('/v1/i', identify)).status).toBe(200);
  await consume(kinesisEvent(kinesis.records));
  const quarantined = (await items()).filter((item) => item['pk']?.S === quarantinePartitionKey('acme'));
  expect(quarantined.length).toBeGreaterThan(0);
  expect(quarantined.every((item) => item['reason']?.S?.includes('400 KB'))).toBe(true);
  expect(quarantined.map((item) => item['path']?.S)).toEqual(quarantined.map(() => 'traits'));
});

it("stores a request of several messages (a backend's batch) in the table at once: the stream gets nothing", async () => {
  const { kinesis, batch, items } = await deployed();
  await batch([track('b0', 'ann'), track('b1', 'ann'), track('b2', 'bob')]);
  expect(kinesis.records).toEqual([]);
  const stored = (await items()).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
  expect(stored.map((item) => eventMessagesOf(item).map((message) => message.messageId)).sort()).toEqual([['b0', 'b1'], ['b2']]);
});

it("counts once a message without a time of its own that a batch holds twice, a retry across midnight, under its first receipt's day", async () => {
  const { client, tableName } = await freshTable();
  const store = new DynamoDbEventStore({ client, tableName });
  const sent = { type: 'track', userId: 'ann', event: 'Report Exported', messageId: 'no-time' };
  const request = (requestId: string, receivedAt: Date): BufferedRequest => {
    const outcome = validateMessage(sent, 0, 'acme', receivedAt);
    if ('reason' in outcome) throw new Error(outcome.reason);
    return { workspace: 'acme', requestId, receivedAt: receivedAt.toISOString(), messages: [outcome] };
  };
  await storeBufferedRequests(store, [request('first', new Date('2026-11-29T23:59:59.500Z')), request('retry', new Date('2026-11-30T00:00:00.500Z'))]);
  const stored = (await scanAll(client, tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
  expect(stored.flatMap((item) => eventMessagesOf(item).map((message) => [item['sk']!.S!.slice(0, 15), message.timestamp]))).toEqual([['EVT#2026-11-29#', '2026-11-29T23:59:59.500Z']]);
});
