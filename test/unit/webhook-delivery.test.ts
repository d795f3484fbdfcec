import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../functions/core/backoff';
import { describeError, httpAttempt } from '../../functions/adapters/webhook/delivery';
import { HttpReceiver, refusingUrl } from '../support/http-receiver';

describe('backoffDelayMs', () => {
  it('waits at random up to the base doubled at each retry, never above the cap', () => {
    const highest = () => 1 - Number.EPSILON;
    expect([1, 2, 3, 4].map((retry) => Math.round(backoffDelayMs(retry, 100, 5_000, highest)))).toEqual([100, 200, 400, 800]);
    expect(backoffDelayMs(20, 100, 5_000, highest)).toBeLessThanOrEqual(5_000);
    expect(backoffDelayMs(3, 100, 5_000, () => 0)).toBe(0);
  });
});

describe('httpAttempt', () => {
  const receiver = new HttpReceiver('/hooks/T0001/B0002/s3cr3tPart');
  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());
  afterEach(() => receiver.reset());

  const post = { method: 'POST', headers: { 'content-type': 'application/json', 'webhook-id': 'key-1' }, body: '{"hello":"world"}' };

  it('sends the request as given and reports a 2xx delivered, with its latency', async () => {
    receiver.reply({ status: 200, body: '{"ok":true}', delayMs: 60 });
    const result = await httpAttempt(receiver.url, post);
    expect(result).toEqual({ outcome: 'delivered', status: 200, excerpt: '{"ok":true}', latencyMs: expect.any(Number) });
    expect(result.latencyMs).toBeGreaterThanOrEqual(55);
    expect(result.latencyMs).toBeLessThan(5_000);
    expect(receiver.received).toEqual([
      {
        method: 'POST',
        path: '/hooks/T0001/B0002/s3cr3tPart',
        headers: expect.objectContaining({ 'content-type': 'application/json', 'webhook-id': 'key-1' }),
        body: '{"hello":"world"}',
      },
    ]);
  });

  it('measures the latency on the injected clock, and leaves out an empty excerpt', async () => {
    receiver.reply({ status: 204 });
    let clock = 1_000;
    const result = await httpAttempt(receiver.url, post, { now: () => (clock += 25) });
    expect(result).toEqual({ outcome: 'delivered', status: 204, latencyMs: 25 });
  });

  it.each([500, 502, 503, 504, 408, 429, 401, 403])('HTTP %i is retryable', async (status) => {
    receiver.reply({ status, body: 'try later' });
    expect(await httpAttempt(receiver.url, post)).toEqual({ outcome: 'retryable', status, excerpt: 'try later', latencyMs: expect.any(Number) });
    expect(receiver.received).toHaveLength(1);
  });

  it.each([400, 404, 410, 422])('HTTP %i is permanent', async (status) => {
    receiver.reply({ status, body: '{"error":"no such hook"}' });
    expect(await httpAttempt(receiver.url, post)).toEqual({ outcome: 'permanent', status, excerpt: '{"error":"no such hook"}', latencyMs: expect.any(Number) });
  });

  it.each([301, 302, 303, 307, 308])('does not follow a %i: the webhook moved, a permanent failure', async (status) => {
    receiver.reply({ status, headers: { location: `${receiver.origin}/elsewhere`, 'retry-after': '5' } });
    const result = await httpAttempt(receiver.url, post);
    expect(result).toMatchObject({ outcome: 'permanent', status });
    expect(result).not.toHaveProperty('retryAfterMs');
    // One request, to the webhook: the redirect was not followed (a POST turned into a GET is not a delivery).
    expect(receiver.received.map((request) => `${request.method} ${request.path}`)).toEqual(['POST /hooks/T0001/B0002/s3cr3tPart']);
  });

  it('reads Retry-After in seconds and as an HTTP date, for a retryable answer only', async () => {
    const nowMs = Date.parse('2026-11-30T12:00:00.000Z');
    const now = () => nowMs;
    receiver.reply(
      { status: 429, headers: { 'retry-after': '120' } },
      { status: 503, headers: { 'retry-after': 'Mon, 30 Nov 2026 12:00:30 GMT' } },
      { status: 503, headers: { 'retry-after': 'Mon, 30 Nov 2026 11:00:00 GMT' } },
      { status: 503, headers: { 'retry-after': 'soon' } },
      { status: 503 },
      { status: 400, headers: { 'retry-after': '120' } },
      { status: 200, headers: { 'retry-after': '120' } },
    );
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await httpAttempt(receiver.url, post, { now }));
    expect(results.map((result) => [result.outcome, result.retryAfterMs])).toEqual([
      ['retryable', 120_000],
      ['retryable', 30_000],
      ['retryable', 0],
      ['retryable', undefined],
      ['retryable', undefined],
      ['permanent', undefined],
      ['delivered', undefined],
    ]);
    for (const result of results.slice(3)) expect(result).not.toHaveProperty('retryAfterMs');
  });

  it('keeps an excerpt of the answer: one line, e-mail addresses masked, at most 200 characters', async () => {
    const body = `{"error": "contact ada@acme.example already exists",\n  "owner": "sam@acme.example",\n  "detail": "${'x'.repeat(400)}"}`;
    receiver.reply({ status: 409, body });
    const { excerpt } = await httpAttempt(receiver.url, post);
    expect(excerpt).toBe(`{"error": "contact [email] already exists", "owner": "[email]", "detail": "${'x'.repeat(124)}…`);
    expect(excerpt).toHaveLength(200);
    expect(excerpt).not.toMatch(/@|\n/);
  });

  it('reports a refused connection as retryable, naming the cause and never the URL', async () => {
    const url = await refusingUrl('/hooks/T0001/B0002/s3cr3tPart');
    const result = await httpAttempt(url, post);
    expect(result).toEqual({ outcome: 'retryable', error: expect.stringContaining('ECONNREFUSED'), latencyMs: expect.any(Number) });
    expect(result.error).not.toContain('s3cr3tPart');
    expect(result.error).not.toContain(new URL(url).host);
    expect(result).not.toHaveProperty('status');
  });

  it('gives up on an answer that does not come, as a retryable timeout, never naming the URL', async () => {
    receiver.reply({ status: 200, hang: true });
    const started = performance.now();
    const result = await httpAttempt(receiver.url, post, { timeoutMs: 150 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(result).toEqual({ outcome: 'retryable', error: expect.stringMatching(/timeout/i), latencyMs: expect.any(Number) });
    expect(result.error).not.toContain('s3cr3tPart');
    expect(result.error).not.toContain('127.0.0.1');
    expect(receiver.received).toHaveLength(1);
  });

  it('keeps the status of an answer whose body stalls past the timeout', async () => {
    // A fetch that answers 503 at once, with a body that never ends: the timeout aborts the read, not the verdict.
    const fetch = async (_url: string | URL | Request, init?: RequestInit) =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('partial'));
            init!.signal!.addEventListener('abort', () => controller.error(init!.signal!.reason));
          },
        }),
        { status: 503 },
      );
    expect(await httpAttempt('https://hooks.example.com/x', post, { fetch, timeoutMs: 100 })).toEqual({ outcome: 'retryable', status: 503, latencyMs: expect.any(Number) });
  });

  it('reads every answer to the end, so the connection goes back to the pool', async () => {
    const responses: Response[] = [];
    const fetch = async () => {
      const response = new Response('answer', { status: responses.length === 0 ? 503 : 200 });
      responses.push(response);
      return response;
    };
    await httpAttempt('https://hooks.example.com/x', post, { fetch });
    await httpAttempt('https://hooks.example.com/x', post, { fetch });
    expect(responses.map((response) => response.bodyUsed)).toEqual([true, true]);
  });

  it('asks fetch not to follow redirects, with a timeout signal', async () => {
    const inits: RequestInit[] = [];
    const fetch = async (_url: string | URL | Request, init?: RequestInit) => (inits.push(init!), new Response(null, { status: 204 }));
    await httpAttempt('https://hooks.example.com/x', post, { fetch });
    expect(inits).toEqual([expect.objectContaining({ ...post, redirect: 'manual', signal: expect.any(AbortSignal) })]);
  });

  it('reports a network error by its code: DNS, reset', async () => {
    for (const code of ['ENOTFOUND', 'ECONNRESET', 'UND_ERR_SOCKET']) {
      const fetch = async (): Promise<Response> => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error(`getaddrinfo ${code} hooks.example.com`), { code }) });
      };
      expect(await httpAttempt('https://hooks.example.com/T0001/s3cr3tPart', post, { fetch })).toEqual({ outcome: 'retryable', error: `fetch failed (${code})`, latencyMs: expect.any(Number) });
    }
  });
});

describe('describeError', () => {
  it('names the error and its code in a few words', () => {
    expect(describeError(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))).toBe('fetch failed (ECONNREFUSED)');
    expect(describeError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe('TimeoutError: The operation was aborted due to timeout');
    expect(describeError(new Error('boom'))).toBe('Error: boom');
    expect(describeError('a string')).toBe('a string');
  });
});
