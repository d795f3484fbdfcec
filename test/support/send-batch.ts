import { expect } from 'vitest';
import type { DevRuntime } from '../../functions/local/dev';

/** Posts a batch to the local runtime's endpoint (or another) as a server SDK would, and expects every message stored. */
export async function sendBatch(dev: Pick<DevRuntime, 'url' | 'writeKey'>, batch: Record<string, unknown>[]): Promise<void> {
  const response = await fetch(`${dev.url}/v1/batch`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ batch }),
  });
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ success: true });
}

/** A call as analytics.js makes it: one event, text/plain, Basic auth; the status and the answer's JSON. */
export async function sendBrowserCall(url: string, writeKey: string, path: string, message: Record<string, unknown>) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify(message),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
