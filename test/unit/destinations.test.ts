import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cachedSecret, slackDestination, staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { leadEventEnvelope } from '../../functions/core/lead-event';
import { slackMessage } from '../../functions/core/slack-message';
import { generateWebhookSecret, webhookHeaders } from '../../functions/core/webhook-signature';
import { HttpReceiver } from '../support/http-receiver';
import { sampleLeadEvent } from '../support/lead-events';
import { verifiedByLibrary } from '../support/webhooks';

const qualified = sampleLeadEvent();
const tierChanged = sampleLeadEvent({ previousTier: 'PQL-B', tier: 'PQL-A', evaluatedAt: '2024-05-02T08:00:00.000Z' });

/** A secret read that counts its calls and answers with `values` in turn (the last one again once they run out). */
function counting(...values: (string | Error)[]) {
  const reads = { count: 0 };
  const read = async () => {
    const value = values[Math.min(reads.count, values.length - 1)]!;
    reads.count++;
    if (value instanceof Error) throw value;
    return value;
  };
  return { reads, read };
}

const receiver = new HttpReceiver('/hooks/pql');
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());
afterEach(() => receiver.reset());

const headersOf = (index: number) => receiver.received[index]!.headers as Record<string, string>;

describe('webhookDestination', () => {
  it('POSTs the envelope signed per Standard Webhooks, the idempotency key as webhook-id', async () => {
    const secret = generateWebhookSecret();
    const destination = webhookDestination('sales-webhook-1', receiver.url, staticSecret(secret));
    expect(destination).toMatchObject({ id: 'sales-webhook-1', kind: 'webhook', skipsSuperseded: false });
    expect(await destination.send(qualified)).toEqual({ outcome: 'delivered', status: 200, excerpt: '{"ok":true}', latencyMs: expect.any(Number) });

    expect(receiver.received).toHaveLength(1);
    const { method, path, body } = receiver.received[0]!;
    const headers = headersOf(0);
    expect([method, path]).toEqual(['POST', '/hooks/pql']);
    expect(headers['content-type']).toBe('application/json');
    expect(headers[webhookHeaders.id]).toBe(qualified.detail.idempotencyKey);
    expect(JSON.parse(body)).toEqual(leadEventEnvelope(qualified));
    const timestamp = Number(headers[webhookHeaders.timestamp]);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(5);
    expect(headers[webhookHeaders.signature]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifiedByLibrary(secret, body, headers, Date.now())).toEqual(leadEventEnvelope(qualified));
    expect(() => verifiedByLibrary(generateWebhookSecret(), body, headers, Date.now())).toThrow();
    expect(() => verifiedByLibrary(secret, body.replace('"PQL-A"', '"PQL-B"'), headers, Date.now())).toThrow();
    expect(() => verifiedByLibrary(secret, body, { ...headers, [webhookHeaders.id]: 'another-key' }, Date.now())).toThrow();
    expect(() => verifiedByLibrary(secret, body, headers, (timestamp + 301) * 1000)).toThrow();
  });

  it('signs with every secret of a rotation, so a receiver holding either verifies', async () => {
    const [previous, next] = [generateWebhookSecret(), generateWebhookSecret()];
    await webhookDestination('sales-webhook-1', receiver.url, staticSecret(`${previous}\n${next}`)).send(tierChanged);
    const { body } = receiver.received[0]!;
    expect(headersOf(0)[webhookHeaders.signature]!.split(' ')).toHaveLength(2);
    for (const secret of [previous, next]) expect(verifiedByLibrary(secret, body, headersOf(0), Date.now())).toEqual(leadEventEnvelope(tierChanged));
  });

  it('signs at the time of the injected clock', async () => {
    const secret = generateWebhookSecret();
    const nowMs = 1_714_564_800_999;
    await webhookDestination('sales-webhook-1', receiver.url, staticSecret(secret), { now: () => nowMs }).send(qualified);
    expect(headersOf(0)[webhookHeaders.timestamp]).toBe('1714564800');
    expect(verifiedByLibrary(secret, receiver.received[0]!.body, headersOf(0), nowMs + 60_000)).toEqual(leadEventEnvelope(qualified));
    // Stale by the real clock.
    expect(() => verifiedByLibrary(secret, receiver.received[0]!.body, headersOf(0), Date.now())).toThrow();
  });

  it.each([401, 403])('reads the secret again after a %i, so a rotated secret is used at the next attempt', async (status) => {
    const [old, rotated] = [generateWebhookSecret(), generateWebhookSecret()];
    const { reads, read } = counting(old, rotated);
    const destination = webhookDestination('sales-webhook-1', receiver.url, cachedSecret(read));
    receiver.reply({ status: 200 }, { status, body: '{"error":"invalid signature"}' });
    await destination.send(qualified);
    expect(await destination.send(tierChanged)).toMatchObject({ outcome: 'retryable', status });
    expect(reads.count).toBe(1);
    expect(await destination.send(tierChanged)).toMatchObject({ outcome: 'delivered', status: 200 });
    expect(reads.count).toBe(2);
    const last = receiver.received.at(-1)!;
    expect(verifiedByLibrary(rotated, last.body, last.headers as Record<string, string>, Date.now())).toEqual(leadEventEnvelope(tierChanged));
    expect(() => verifiedByLibrary(old, last.body, last.headers as Record<string, string>, Date.now())).toThrow();
  });

  it('keeps the cached secret after any other failure', async () => {
    const { reads, read } = counting(generateWebhookSecret());
    const destination = webhookDestination('sales-webhook-1', receiver.url, cachedSecret(read));
    receiver.reply({ status: 500 }, { status: 400 }, { status: 429 });
    for (let i = 0; i < 4; i++) await destination.send(qualified);
    expect(receiver.received).toHaveLength(4);
    expect(reads.count).toBe(1);
  });

  it('retries later when the secret cannot be read, sending nothing, and reads it again next time', async () => {
    const secret = generateWebhookSecret();
    const { reads, read } = counting(new Error('ThrottlingException: Rate exceeded'), secret);
    const destination = webhookDestination('sales-webhook-1', receiver.url, cachedSecret(read));
    expect(await destination.send(qualified)).toEqual({ outcome: 'retryable', error: expect.stringMatching(/secret could not be read: ThrottlingException/), latencyMs: 0 });
    expect(receiver.received).toHaveLength(0);
    expect(await destination.send(qualified)).toMatchObject({ outcome: 'delivered' });
    expect(reads.count).toBe(2);
  });

  it('refuses a secret that is not a whsec_ secret as a permanent failure, without sending or naming the value', async () => {
    const destination = webhookDestination('sales-webhook-1', receiver.url, staticSecret('hunter2-not-a-signing-secret'));
    const result = await destination.send(qualified);
    expect(result).toEqual({ outcome: 'permanent', error: expect.stringContaining('whsec_'), latencyMs: 0 });
    expect(result.error).not.toContain('hunter2');
    expect(receiver.received).toHaveLength(0);
  });
});

describe('slackDestination', () => {
  const template = 'https://crm.example.com/{workspace}/{type}/{id}';
  const slackUrl = 'https://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX';
  /** Slack is https: the global fetch is given the local receiver's URL instead, everything else as sent. */
  function viaReceiver() {
    const urls: string[] = [];
    const fetch = (url: string | URL | Request, init?: RequestInit) => {
      urls.push(String(url));
      return globalThis.fetch(String(url).replace('https://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX', receiver.url), init);
    };
    return { urls, fetch };
  }

  it('POSTs the Block Kit message to the URL kept in the secret', async () => {
    const { urls, fetch } = viaReceiver();
    const destination = slackDestination('sales-slack-1', staticSecret(`  ${slackUrl}\n`), template, { fetch });
    expect(destination).toMatchObject({ id: 'sales-slack-1', kind: 'slack', skipsSuperseded: true });
    receiver.reply({ status: 200, body: 'ok', headers: { 'content-type': 'text/html' } });
    expect(await destination.send(qualified)).toEqual({ outcome: 'delivered', status: 200, excerpt: 'ok', latencyMs: expect.any(Number) });
    expect(urls).toEqual([slackUrl]);
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request!.method).toBe('POST');
    expect(request!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request!.body)).toEqual(slackMessage(qualified.detail, template));
    expect(JSON.stringify(JSON.parse(request!.body))).toContain('https://crm.example.com/acme/user/u-42');
  });

  it('classifies what Slack answers: a removed webhook is permanent, rate limiting retryable with its Retry-After', async () => {
    const { fetch } = viaReceiver();
    const destination = slackDestination('sales-slack-1', staticSecret(slackUrl), undefined, { fetch });
    receiver.reply({ status: 404, body: 'no_service' }, { status: 429, body: 'rate_limited', headers: { 'retry-after': '30' } });
    expect(await destination.send(qualified)).toMatchObject({ outcome: 'permanent', status: 404, excerpt: 'no_service' });
    expect(await destination.send(qualified)).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 30_000 });
  });

  it.each([
    ['an http URL', 'http://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX'],
    ['not a URL', 'xoxb-XXXXSECRETXXXX'],
  ])('refuses a secret that is %s, as a permanent failure that does not name it', async (_name, value) => {
    const { urls, fetch } = viaReceiver();
    const result = await slackDestination('sales-slack-1', staticSecret(value), undefined, { fetch }).send(qualified);
    expect(result).toEqual({ outcome: 'permanent', error: expect.stringContaining('https://'), latencyMs: 0 });
    expect(result.error).not.toContain('XXXXSECRETXXXX');
    expect(urls).toEqual([]);
  });
});

describe('cachedSecret', () => {
  it('reads once for the TTL, then again', async () => {
    let time = 0;
    const { reads, read } = counting('first', 'second');
    const secret = cachedSecret(read, 1_000, () => time);
    expect(await secret.value()).toBe('first');
    time = 1_000;
    expect(await secret.value()).toBe('first');
    expect(reads.count).toBe(1);
    time = 1_001;
    expect(await secret.value()).toBe('second');
    expect(reads.count).toBe(2);
    time = 1_500;
    expect(await secret.value()).toBe('second');
    expect(reads.count).toBe(2);
  });

  it('shares one read between callers that ask at once', async () => {
    const { reads, read } = counting('value');
    const secret = cachedSecret(read);
    expect(await Promise.all([secret.value(), secret.value(), secret.value()])).toEqual(['value', 'value', 'value']);
    expect(reads.count).toBe(1);
  });

  it('does not cache a failed read', async () => {
    const { reads, read } = counting(new Error('AccessDeniedException'), 'value');
    const secret = cachedSecret(read, 60_000, () => 0);
    await expect(secret.value()).rejects.toThrow('AccessDeniedException');
    expect(await secret.value()).toBe('value');
    expect(await secret.value()).toBe('value');
    expect(reads.count).toBe(2);
  });

  it('reads again after invalidate()', async () => {
    const { reads, read } = counting('old', 'new');
    const secret = cachedSecret(read, 60_000, () => 0);
    expect(await secret.value()).toBe('old');
    secret.invalidate();
    expect(await secret.value()).toBe('new');
    expect(reads.count).toBe(2);
  });

  it('keeps a newer value when an older read fails after it', async () => {
    let failOld!: (error: Error) => void;
    let count = 0;
    const read = () => (++count === 1 ? new Promise<string>((_resolve, reject) => (failOld = reject)) : Promise.resolve('new'));
    const secret = cachedSecret(read, 60_000, () => 0);
    const old = secret.value();
    secret.invalidate();
    expect(await secret.value()).toBe('new');
    failOld(new Error('timed out'));
    await expect(old).rejects.toThrow('timed out');
    expect(await secret.value()).toBe('new');
    expect(count).toBe(2);
  });
});

describe('staticSecret', () => {
  it('is the value, whatever happens', async () => {
    const secret = staticSecret('v');
    secret.invalidate();
    expect(await secret.value()).toBe('v');
  });
});
