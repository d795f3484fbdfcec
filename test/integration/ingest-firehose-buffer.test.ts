import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, expect, it, vi } from 'vitest';
import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { eventSortKeyPrefix } from '../../functions/adapters/dynamodb/item-keys';
import { DynamoDbWriteKeyStore } from '../../functions/adapters/dynamodb/write-key-store';
import { serveHttpApi } from '../../functions/local/http-server';
import { bufferObjectsPrefix } from '../../lib/ingest-firehose-buffer';
import { freshTable } from '../support/dynamodb';
import { stubFunctionEnvironment } from '../support/evaluator-environment';
import { firehoseObjectKey, startFirehoseEndpoint, type FirehoseEndpoint } from '../support/firehose-endpoint';
import { lambdaContext } from '../support/lambda-context';
import { closeLocally } from '../support/local-server';
import { s3TestEvent, sqsEvent, startS3Endpoint, type S3Endpoint } from '../support/s3-endpoint';
import { scanAll } from '../support/scan';
import { sendBatch, sendBrowserCall } from '../support/send-batch';

// The ingest buffer's Firehose variant, as deployed: the ingest function answers from Firehose's acceptance (the real
// Firehose client against a local endpoint); what Firehose gathered becomes an object in (local) S3, whose
// notification the loader function gets in an SQS event, and stores in the table.

const bucket = 'pql-radar-buffer-objects';
const deliveryStream = 'pql-radar-Requests';
const local = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

let firehose: FirehoseEndpoint | undefined;
let s3: S3Endpoint | undefined;
let cleanUp: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  vi.resetModules();
  for (const step of cleanUp) await step();
  cleanUp = [];
  await firehose?.close();
  await s3?.close();
  firehose = s3 = undefined;
});

async function deployed() {
  const { client, tableName } = await freshTable();
  firehose = await startFirehoseEndpoint([deliveryStream]);
  // The loader's role may list the bucket's requests/ (s3:ListBucket): without it S3 answers a gone object 403, not 404.
  s3 = await startS3Endpoint({ buckets: [bucket], notifyPrefix: bufferObjectsPrefix, mayList: true });
  stubFunctionEnvironment({ TABLE_NAME: tableName, INGEST_DELIVERY_STREAM_NAME: deliveryStream, AWS_ENDPOINT_URL_FIREHOSE: firehose.url, AWS_ENDPOINT_URL_S3: s3.url });
  const { key } = await new DynamoDbWriteKeyStore(client, tableName).create('acme');
  const ingest = await import('../../functions/ingest/firehose-handler');
  const loader = await import('../../functions/ingest-buffer-loader/handler');
  const served = await serveHttpApi((event) => ingest.handler(event, lambdaContext()), { port: 0 });
  // Firehose's own writes to the bucket, made here by the test.
  const writer = new S3Client({ ...local, endpoint: s3.url });
  cleanUp.push(async () => {
    writer.destroy();
    await closeLocally(served.server);
  });
  const send = (path: string, message: Record<string, unknown>) => sendBrowserCall(served.url, key, path, message);
  const batch = (messages: Record<string, unknown>[]) => sendBatch({ url: served.url, writeKey: key }, messages);
  const putObject = async (objectKey: string, body: Buffer | string) => {
    await writer.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body: body }));
    return s3!.notifications.at(-1)!;
  };
  /** What Firehose does at the end of a buffering interval: the records it gathered become one object under the prefix. */
  const deliver = async () => {
    const gathered = firehose!.flush();
    if (!gathered) throw new Error('Firehose has no records to deliver');
    const objectKey = firehoseObjectKey(bufferObjectsPrefix, deliveryStream, new Date());
    return { key: objectKey, notification: await putObject(objectKey, gathered.body) };
  };
  /** The event messages stored, by item. */
  const stored = async () =>
    (await scanAll(client, tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).map((item) => eventMessagesOf(item).map((message) => message.messageId));
  const load = (bodies: string[]) => {
    const event = sqsEvent(bodies);
    return { event, outcome: loader.handler(event, lambdaContext()) };
  };
  return { client, tableName, send, batch, deliver, putObject, stored, load };
}

const timestamp = new Date(Date.now() - 3_600_000).toISOString();
const page = (messageId: string, name: string) => ({ messageId, anonymousId: 'visitor-1', timestamp, name, properties: { path: `/${name}` }, context: { library: { name: 'analytics.js', version: 'npm:next-1.84.3' } } });

it("answers 200 once Firehose has the request; the loader stores an object's events of a visitor in one item, once however often the notification comes", async () => {
  const { send, deliver, putObject, stored, load } = await deployed();
  firehose!.failNext(1);
  for (const [index, name] of ['pricing', 'docs', 'billing'].entries()) expect(await send('/v1/p', page(`m${index}`, name))).toEqual({ status: 200, body: { success: true } });
  // The refused call was retried by the SDK: three records, one line each, and nothing in the table yet.
  expect(firehose!.records).toHaveLength(3);
  expect(firehose!.records.every((record) => /^[A-Za-z0-9+/]+={0,2}\n$/.test(record.data.toString('utf8')))).toBe(true);
  expect(await stored()).toEqual([]);

  // Invalid input is still answered 400 by ingest, naming the field, and never reaches Firehose.
  const invalid = await send('/v1/t', { anonymousId: 'visitor-1', event: 42 });
  expect(invalid.status).toBe(400);
  expect(invalid.body['path']).toBe('event');
  expect(firehose!.records).toHaveLength(3);

  const { key, notification } = await deliver();
  const body = s3!.object(bucket, key)!;
  expect(await load([notification]).outcome).toEqual({ batchItemFailures: [] });
  expect(await stored()).toEqual([['m0', 'm1', 'm2']]);
  expect(s3!.object(bucket, key)).toBeUndefined();

  // SQS delivers at least once: the same notification again, the object gone, is done; with the object still there
  // (a loader that stored it and failed before the delete), the same items are written again, no copy.
  expect(await load([notification]).outcome).toEqual({ batchItemFailures: [] });
  await putObject(key, body);
  expect(await load([notification]).outcome).toEqual({ batchItemFailures: [] });
  expect(await stored()).toEqual([['m0', 'm1', 'm2']]);
  expect(s3!.calls.filter((call) => call.startsWith('GET'))).toHaveLength(3);
});

it("stores a request in the table at once when Firehose still refuses it after the SDK's retries, and answers 200", async () => {
  const { send, stored } = await deployed();
  // The ingest function's client makes 6 attempts.
  firehose!.failNext(6);
  expect(await send('/v1/p', page('throttled', 'pricing'))).toEqual({ status: 200, body: { success: true } });
  expect(firehose!.records).toEqual([]);
  expect(await stored()).toEqual([['throttled']]);
});

it("stores a request of several messages (a backend's batch) in the table at once: Firehose gets nothing", async () => {
  const { batch, stored } = await deployed();
  const track = (messageId: string, userId: string) => ({ type: 'track', messageId, userId, timestamp, event: 'Report Exported' });
  await batch([track('b0', 'ann'), track('b1', 'ann'), track('b2', 'bob')]);
  expect(firehose!.records).toEqual([]);
  expect((await stored()).sort()).toEqual([['b0', 'b1'], ['b2']]);
});

it('fails only the message of an object with a line that is not a record, and leaves that object; skips the test event', async () => {
  const { send, deliver, putObject, stored, load } = await deployed();
  expect((await send('/v1/p', page('good', 'pricing'))).status).toBe(200);
  const { key: goodKey, notification: good } = await deliver();
  expect((await send('/v1/p', page('beside-corrupt', 'docs'))).status).toBe(200);
  const gathered = firehose!.flush()!;
  // A key S3 writes URL-encoded in the notification ('+' for a space).
  const corruptKey = `${bufferObjectsPrefix}2026/12/01/10/hand made+1.txt`;
  const corrupt = await putObject(corruptKey, Buffer.concat([gathered.body, Buffer.from('bm90IGRlZmxhdGVk\n')]));
  expect(corrupt).toContain('hand+made%2B1.txt');

  const { event, outcome } = load([s3TestEvent(bucket), corrupt, good]);
  expect(await outcome).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[1]!.messageId }] });
  expect(await stored()).toEqual([['good']]);
  expect(s3!.object(bucket, goodKey)).toBeUndefined();
  expect(s3!.object(bucket, corruptKey)).toBeDefined();
  // The test event named no object: S3 was asked for the two objects only.
  expect(s3!.calls.filter((call) => call.startsWith('GET'))).toEqual([`GET ${bucket}/${corruptKey}`, `GET ${bucket}/${goodKey}`]);
});

it('refuses to start without its delivery stream, naming the variable', async () => {
  const { tableName } = await freshTable();
  stubFunctionEnvironment({ TABLE_NAME: tableName });
  await expect(import('../../functions/ingest/firehose-handler')).rejects.toThrow(
    'ingest configuration is invalid: INGEST_DELIVERY_STREAM_NAME is required: the ingest buffer this entry puts requests on',
  );
});
