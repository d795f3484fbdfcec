import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from '../../functions/core/webhook-signature';

const secret = 'whsec_test_5b1f0c';
const body = JSON.stringify({ Source: 'pql-radar', DetailType: 'Lead Qualified', Detail: { idempotencyKey: 'k-1' } });
const timestamp = 1_714_564_800; // 2024-05-01T12:00:00Z
const at = (seconds: number) => () => seconds * 1000;

describe('signWebhook', () => {
  it('is v1= the hex HMAC-SHA256 of "<timestamp>.<body>"', () => {
    const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
    expect(signWebhook(body, secret, timestamp)).toBe(`v1=${expected}`);
  });

  it('signs bytes and the same string alike', () => {
    expect(signWebhook(Buffer.from(body), secret, timestamp)).toBe(signWebhook(body, secret, timestamp));
  });

  it('refuses an empty secret and a timestamp that is not whole seconds', () => {
    expect(() => signWebhook(body, '', timestamp)).toThrow(/secret/);
    expect(() => signWebhook(body, secret, 1.5)).toThrow(/timestamp/);
  });
});

describe('verifyWebhookSignature', () => {
  const signature = signWebhook(body, secret, timestamp);
  const verify = (overrides: Partial<Parameters<typeof verifyWebhookSignature>[0]> = {}) =>
    verifyWebhookSignature({ body, timestamp: String(timestamp), signature, secret, now: at(timestamp + 10), ...overrides });

  it('accepts the signature of the body it was made for, as string or bytes', () => {
    expect(verify()).toBe(true);
    expect(verify({ body: Buffer.from(body) })).toBe(true);
    expect(verify({ timestamp })).toBe(true);
  });

  it('rejects a wrong secret, a tampered body and a changed timestamp', () => {
    expect(verify({ secret: 'whsec_other' })).toBe(false);
    expect(verify({ body: body.replace('k-1', 'k-2') })).toBe(false);
    expect(verify({ body: `${body} ` })).toBe(false);
    expect(verify({ timestamp: String(timestamp + 1) })).toBe(false);
  });

  it('rejects timestamps outside the tolerance, either way', () => {
    expect(verify({ now: at(timestamp + 300) })).toBe(true);
    expect(verify({ now: at(timestamp + 301) })).toBe(false);
    expect(verify({ now: at(timestamp - 301) })).toBe(false);
    expect(verify({ now: at(timestamp + 3600), toleranceSeconds: 3600 })).toBe(true);
  });

  it('rejects malformed or missing headers instead of throwing', () => {
    for (const bad of [undefined, null, '', 'v1=', 'v1=zz', signature.slice(0, -2), signature.replace('v1=', 'v0='), signature.slice(3)]) {
      expect(verify({ signature: bad })).toBe(false);
    }
    for (const bad of [undefined, null, '', 'soon', '-1', '1714564800.5', ' ']) {
      expect(verify({ timestamp: bad })).toBe(false);
    }
    expect(verify({ secret: '' })).toBe(false);
    expect(verify({ secret: [] })).toBe(false);
  });

  it('accepts any of several signatures and any of several secrets (rotation)', () => {
    const old = signWebhook(body, 'whsec_old', timestamp);
    expect(verify({ signature: `${old}, ${signature}` })).toBe(true);
    expect(verify({ signature: old, secret: ['whsec_new', 'whsec_old'] })).toBe(true);
    expect(verify({ signature: old, secret: ['whsec_new'] })).toBe(false);
    expect(verify({ signature: signature.toUpperCase().replace('V1=', 'v1=') })).toBe(true);
  });
});
