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

/** Every kind of error answer the adapter gives, with the store it needs. */
const errorAnswers: [string, APIGatewayProxyEventV2, number, string, EventStore?][] = [
  ['an unknown path', request({ path: '/v2/track' }), 404, 'not_found'],
  ['a body that is not JSON', request({ body: '{' }), 400, 'invalid_request'],
  ['a batch with no valid message', request({ body: JSON.stringify({ batch: [{ type: 'track', userId: 'u' }] }) }), 400, 'invalid_request'],
  ['no write key', request({ headers: { authorization: '' } }), 401, 'unauthorized'],
  ['a read-only key', request({ headers: { authorization: basic(readOnly.key) } }), 403, 'forbidden'],
  ['an origin the workspace does not accept', request({ headers: { origin: 'https://copied.example' } }), 403, 'forbidden'],
  ['a preflight from an origin no workspace accepts', request({ method: 'OPTIONS', headers: { origin: 'https://copied.example' } }), 403, 'forbidden'],
  ['a gzip body that inflates past the limit', request({ body: gzipSync(Buffer.alloc(600 * 1024, ' ')), headers: { 'content-encoding': 'gzip' } }), 413, 'payload_too_large'],
  ['an event over the per-event limit', request({ path: '/v1/track', body: JSON.stringify({ ...track, properties: { text: 'x'.repeat(33 * 1024) } }) }), 413, 'payload_too_large'],
  ['an unknown Content-Encoding', request({ headers: { 'content-encoding': 'br' } }), 415, 'unsupported_media_type'],
  ['a throttled store', request(), 429, 'throttled', events(throttled)],
  ['a failing store', request(), 500, 'internal_error', events(new Error('boom'))],
];

describe('the ingest HTTP adapter', () => {
  it.each(errorAnswers)('answers %s with the code and message Segment SDKs read', async (_name, event, status, code, store = events()) => {
    const answer = await createIngestHandler({ keys, events: store })(event);
    expect(answer.statusCode).toBe(status);
    const body = JSON.parse(answer.body!) as Record<string, unknown>;
    expect(body).toMatchObject({ success: false, code, message: body['error'], path: expect.any(String), reason: expect.any(String) });
    expect(body['message']).not.toBe('');
  });
});
