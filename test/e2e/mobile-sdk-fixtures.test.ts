import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventSortKeyPrefix } from '../../functions/adapters/dynamodb/item-keys';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { scanAll } from '../support/scan';

/**
 * The mobile SDKs cannot run here, so their uploads are replayed from fixtures whose path, headers and body layout
 * follow the SDKs' own upload code (named in each fixture's `sdk`): analytics-kotlin posts a gzipped, chunked
 * `text/plain` body with the write key inside; analytics-swift posts JSON with HTTP Basic auth.
 */

interface Fixture {
  sdk: string;
  request: { method: string; path: string; headers: Record<string, string> };
  body: { batch: Record<string, unknown>[]; writeKey: string };
}

let dev: DevRuntime;

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `e2e-mobile-${randomUUID()}` });
});
afterAll(async () => {
  await dev?.stop();
});

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/mobile/${name}.json`, import.meta.url), 'utf8')) as Fixture;

/** Sends the fixture as its SDK would: the body written in chunks (and gzipped when the SDK does), the same headers. */
function upload(recorded: Fixture): Promise<{ status: number; answer: unknown }> {
  const headers = { ...recorded.request.headers };
  if (headers['authorization']) headers['authorization'] = `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`;
  const json = Buffer.from(JSON.stringify({ ...recorded.body, writeKey: dev.writeKey }));
  const body = headers['content-encoding'] === 'gzip' ? gzipSync(json) : json;
  if (headers['transfer-encoding'] !== 'chunked') headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const outgoing = request(`${dev.url}/v1${recorded.request.path}`, { method: recorded.request.method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, answer: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    outgoing.on('error', reject);
    for (let start = 0; start < body.length; start += 512) outgoing.write(body.subarray(start, start + 512));
    outgoing.end();
  });
}

describe.each(['analytics-kotlin', 'analytics-swift'])('%s uploads', (name) => {
  it('are stored whole, each message once, under its user or anonymous visitor', async () => {
    const recorded = fixture(name);
    for (let attempt = 0; attempt < 2; attempt++) {
      // The second upload is the SDK's retry after a lost answer: it changes nothing.
      expect(await upload(recorded)).toEqual({ status: 200, answer: { success: true } });
    }
    const stored = (await scanAll(dev.client, dev.tableName))
      .filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix))
      .flatMap(eventMessagesOf) as Record<string, unknown>[];
    const ids = recorded.body.batch.map((message) => message['messageId']);
    const mine = stored.filter((message) => ids.includes(message['messageId']));
    expect(mine.map((message) => message['messageId']).sort()).toEqual([...ids].sort());
    expect(mine.every((message) => (message['context'] as { library: { name: string } }).library.name === name)).toBe(true);
  });
});
