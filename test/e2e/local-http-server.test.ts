import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveHttpApi } from '../../functions/local/http-server';
import type { Server } from 'node:http';

/** One keep-alive connection: every request below goes over the same socket unless the server closes it. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
let server: Server;
let url: string;

beforeAll(async () => {
  ({ server, url } = await serveHttpApi(async (event) => ({ statusCode: 200, body: JSON.stringify({ bytes: Buffer.from(event.body ?? '', 'base64').length }) }), { port: 0 }));
});
afterAll(async () => {
  agent.destroy();
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

/** Sent as a browser's request: with an Origin. */
function send(method: string, body: Buffer): Promise<{ status: number; answer: Record<string, unknown>; allowOrigin: unknown; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': body.length, origin: 'https://app.example.com' };
    const outgoing = request(`${url}/v1/batch`, { method, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, answer: JSON.parse(Buffer.concat(chunks).toString()), allowOrigin: response.headers['access-control-allow-origin'], reusedSocket: outgoing.reusedSocket }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

describe('the local HTTP server', () => {
  it('answers 405 and 413 with a code, a message, a path and a reason, readable by the browser, and keeps the keep-alive connection usable after each', async () => {
    const first = await send('POST', Buffer.from('{}'));
    expect(first).toMatchObject({ status: 200, answer: { bytes: 2 } });

    const wrongMethod = await send('PUT', Buffer.from('{"batch":[]}'));
    expect(wrongMethod).toMatchObject({ status: 405, answer: { success: false, code: 'method_not_allowed', message: expect.stringContaining('POST'), path: '', reason: expect.stringContaining('POST') }, allowOrigin: 'https://app.example.com', reusedSocket: true });

    const tooLarge = await send('POST', Buffer.alloc(10 * 1024 * 1024 + 1, 'x'));
    expect(tooLarge).toMatchObject({ status: 413, answer: { success: false, code: 'payload_too_large', message: expect.stringContaining('larger than'), path: '', reason: expect.stringContaining('larger than') }, allowOrigin: 'https://app.example.com', reusedSocket: true });

    const after = await send('POST', Buffer.from('{"a":1}'));
    expect(after).toMatchObject({ status: 200, answer: { bytes: 7 }, reusedSocket: true });
  });
});

describe("the local HTTP server's routes", () => {
  let routed: { server: Server; url: string };
  beforeAll(async () => {
    const answeredBy = (name: string) => async () => ({ statusCode: 200, body: JSON.stringify({ by: name }) });
    routed = await serveHttpApi(answeredBy('ingest'), { port: 0, reads: answeredBy('reads') });
  });
  afterAll(async () => {
    routed.server.closeAllConnections();
    await new Promise((done) => routed.server.close(done));
  });

  it('answers a known path asked with a method it does not take 405 with Allow, GET on an ingest path and POST on a lead status path included', async () => {
    const ask = async (method: string, path: string) => {
      const response = await fetch(`${routed.url}${path}`, { method, ...(method === 'POST' || method === 'PUT' ? { body: '{}' } : {}) });
      const body = (await response.json()) as Record<string, unknown>;
      return [response.status, response.headers.get('allow'), body['code'] ?? body['by'], body['reason']];
    };
    expect(await ask('GET', '/v1/track')).toEqual([405, 'POST, OPTIONS', 'method_not_allowed', 'GET is not supported on /v1/track: events are sent with POST']);
    expect(await ask('PUT', '/v1/track')).toEqual([405, 'POST, OPTIONS', 'method_not_allowed', 'PUT is not supported on /v1/track: events are sent with POST']);
    expect(await ask('POST', '/v1/leads/user/alice')).toEqual([405, 'GET', 'method_not_allowed', 'POST is not supported on /v1/leads/user/alice: lead status is read with GET']);
    expect(await ask('POST', '/v1/track')).toEqual([200, null, 'ingest', undefined]);
    expect(await ask('GET', '/v1/leads/user/alice')).toEqual([200, null, 'reads', undefined]);
    // An unknown path goes to the function, which answers it 404 (the fake one here answers everything).
    expect(await ask('PUT', '/v2/track')).toEqual([200, null, 'ingest', undefined]);
  });
});
