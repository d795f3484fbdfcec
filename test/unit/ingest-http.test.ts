import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AcceptedMessage, RejectedMessage } from '../../functions/core/messages';
import type { EventStore, WriteKeyStore } from '../../functions/core/ports';
import { generateWriteKey, hashSecret, type WriteKeyRecord } from '../../functions/core/write-key';
import { createIngestHandler } from '../../functions/ingest/http';

/**
 * The ingest HTTP adapter's answers as SDKs read them: analytics-python reads `code` and `message` from every error
 * answer.
 */

const workspaceOrigin = 'https://app.acme.com';
const { keyId, key, secret } = generateWriteKey();
const record: WriteKeyRecord = { keyId, workspace: 'acme', secretHash: hashSecret(secret), createdAt: '2024-05-01T00:00:00.000Z' };
const readOnly = generateWriteKey();
const readOnlyRecord: WriteKeyRecord = { keyId: readOnly.keyId, workspace: 'acme', secretHash: hashSecret(readOnly.secret), createdAt: '2024-05-01T00:00:00.000Z', access: 'read' };
const keys: WriteKeyStore = {
  find: async (id) => (id === keyId ? record : id === readOnly.keyId ? readOnlyRecord : undefined),
  allowedOrigins: async () => new Map([['acme', [workspaceOrigin]]]),
};

/** An event store that stores nothing, or fails as `failure` says. */
const events = (failure?: Error): EventStore => ({
  save: async (_workspace: string, _messages: readonly AcceptedMessage[]) => {
    if (failure) throw failure;
    return { refused: [] };
  },
  quarantine: async (_workspace: string, _requestId: string, _rejected: readonly RejectedMessage[]) => {},
});

const throttled = Object.assign(new Error('slow down'), { name: 'ThrottlingException' });

const basic = (writeKey: string) => `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
const track = { type: 'track', userId: 'u', event: 'Logged In', messageId: 'm-1', timestamp: '2024-05-01T11:00:00Z' };

function request(options: { path?: string; method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): APIGatewayProxyEventV2 {
  const body = options.body ?? JSON.stringify({ batch: [track] });
  return {
    rawPath: options.path ?? '/v1/batch',
    headers: { authorization: basic(key), ...options.headers },
    body: Buffer.from(body).toString('base64'),
    isBase64Encoded: true,
    requestContext: { requestId: 'req-1', http: { method: options.method ?? 'POST' }, timeEpoch: Date.parse('2024-05-01T12:00:00Z') },
  } as unknown as APIGatewayProxyEventV2;
}

type RequestOptions = Parameters<typeof request>[0] & {};

/** Every kind of error answer the adapter gives, with the store it needs. */
const errorAnswers: [string, RequestOptions, number, string, EventStore?][] = [
  ['an unknown path', { path: '/v2/track' }, 404, 'not_found'],
  ['an ingest path with GET', { path: '/v1/track', method: 'GET' }, 405, 'method_not_allowed'],
  ['a lead status path with POST', { path: '/v1/leads/user/alice' }, 405, 'method_not_allowed'],
  ['a body that is not JSON', { body: '{' }, 400, 'invalid_request'],
  ['a batch with no valid message', { body: JSON.stringify({ batch: [{ type: 'track', userId: 'u' }] }) }, 400, 'invalid_request'],
  ['no write key', { headers: { authorization: '' } }, 401, 'unauthorized'],
  ['a read-only key', { headers: { authorization: basic(readOnly.key) } }, 403, 'forbidden'],
  ['an origin the workspace does not accept', { headers: { origin: 'https://copied.example' } }, 403, 'forbidden'],
  ['a preflight from an origin no workspace accepts', { method: 'OPTIONS', headers: { origin: 'https://copied.example' } }, 403, 'forbidden'],
  ['a gzip body that inflates past the limit', { body: gzipSync(Buffer.alloc(600 * 1024, ' ')), headers: { 'content-encoding': 'gzip' } }, 413, 'payload_too_large'],
  ['an event over the per-event limit', { path: '/v1/track', body: JSON.stringify({ ...track, properties: { text: 'x'.repeat(33 * 1024) } }) }, 413, 'payload_too_large'],
  ['an unknown Content-Encoding', { headers: { 'content-encoding': 'br' } }, 415, 'unsupported_media_type'],
  ['a throttled store', {}, 429, 'throttled', events(throttled)],
  ['a failing store', {}, 500, 'internal_error', events(new Error('boom'))],
];

const answer = (options: RequestOptions, store = events()) => createIngestHandler({ keys, events: store })(request(options));

describe('the ingest HTTP adapter', () => {
  it.each(errorAnswers)('answers %s with the code and message Segment SDKs read', async (_name, options, status, code, store) => {
    const answered = await answer(options, store);
    expect(answered.statusCode).toBe(status);
    const body = JSON.parse(answered.body!) as Record<string, unknown>;
    expect(body).toMatchObject({ success: false, code, message: body['error'], path: expect.any(String), reason: expect.any(String) });
    expect(body['message']).not.toBe('');
  });

  it.each(errorAnswers)('lets a browser read its answer to %s, Retry-After included', async (_name, options, status, _code, store) => {
    const origin = options.headers?.['origin'] ?? workspaceOrigin;
    const answered = await answer({ ...options, headers: { origin, ...options.headers } }, store);
    expect(answered.statusCode).toBe(status);
    expect(answered.headers).toMatchObject({ 'access-control-allow-origin': origin, vary: 'origin', 'access-control-expose-headers': 'retry-after' });
    if (status === 429) expect(answered.headers).toMatchObject({ 'retry-after': '5' });
  });

  it('answers a known path asked with a method it does not take 405, with Allow and what to use, as through the function URL', async () => {
    const refusals = [
      await answer({ path: '/v1/track', method: 'GET' }),
      await answer({ path: '/v1/t', method: 'PUT' }),
      await answer({ path: '/v1/leads/user/alice' }),
      await answer({ path: '/v1/leads/user/alice', method: 'DELETE' }),
    ];
    expect(refusals.map((answered) => [answered.statusCode, answered.headers?.['allow'], (JSON.parse(answered.body!) as { reason: string }).reason])).toEqual([
      [405, 'POST, OPTIONS', 'GET is not supported on /v1/track: events are sent with POST'],
      [405, 'POST, OPTIONS', 'PUT is not supported on /v1/t: events are sent with POST'],
      [405, 'GET', 'POST is not supported on /v1/leads/user/alice: lead status is read with GET'],
      [405, 'GET', 'DELETE is not supported on /v1/leads/user/alice: lead status is read with GET'],
    ]);
    // An unknown path is still not found, whatever the method.
    expect((await answer({ path: '/v2/track', method: 'PUT' })).statusCode).toBe(404);
  });

  it('allows credentials only to an origin the workspace accepts (a preflight: some workspace), and sends servers no CORS headers', async () => {
    const fromWorkspace = { origin: workspaceOrigin };
    const accepted = [
      await answer({ headers: fromWorkspace }),
      await answer({ headers: fromWorkspace, body: JSON.stringify({ batch: [{ type: 'track', userId: 'u' }] }) }),
      await answer({ headers: fromWorkspace, method: 'OPTIONS' }),
    ];
    expect(accepted.map((answered) => [answered.statusCode, answered.headers?.['access-control-allow-credentials']])).toEqual([[200, 'true'], [400, 'true'], [204, 'true']]);
    const refused = [
      await answer({ headers: { origin: 'https://copied.example' } }),
      await answer({ headers: { origin: workspaceOrigin, authorization: basic('pqlk_unknown') } }),
      await answer({ headers: { origin: 'https://copied.example' }, method: 'OPTIONS' }),
    ];
    expect(refused.map((answered) => [answered.statusCode, answered.headers?.['access-control-allow-credentials']])).toEqual([[403, undefined], [401, undefined], [403, undefined]]);
    // Servers' requests have no Origin.
    for (const answered of [await answer({}), await answer({ path: '/v2/track' }), await answer({}, events(throttled))]) {
      expect(Object.keys(answered.headers ?? {}).filter((name) => name.startsWith('access-control-'))).toEqual([]);
    }
  });

  it("allows credentials on a 429 or 500 from a store that failed after the origin was accepted, and tells the observer the store's error", async () => {
    const failed: unknown[] = [];
    const observer = { onResponse: () => {}, onError: (error: unknown) => failed.push(error) };
    const boom = new Error('boom');
    // Before the key is found, the workspace and so the origins it accepts are not known.
    const throttledKeys: WriteKeyStore = { ...keys, find: async () => Promise.reject(throttled) };
    const answered = [
      await createIngestHandler({ keys, events: events(throttled) }, observer)(request({ headers: { origin: workspaceOrigin } })),
      await createIngestHandler({ keys, events: events(boom) }, observer)(request({ headers: { origin: workspaceOrigin } })),
      await createIngestHandler({ keys: throttledKeys, events: events() }, observer)(request({ headers: { origin: workspaceOrigin } })),
    ];
    expect(answered.map((answer) => [answer.statusCode, answer.headers?.['access-control-allow-credentials'], answer.headers?.['retry-after']])).toEqual([
      [429, 'true', '5'],
      [500, 'true', undefined],
      [429, undefined, '5'],
    ]);
    expect(failed).toEqual([throttled, boom, throttled]);
  });
});
