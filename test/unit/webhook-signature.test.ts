import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, parseWebhookSecrets, signWebhook, webhookHeaders } from '../../functions/core/webhook-signature';
import { verifiedByLibrary as verify } from '../support/webhooks';

const body = JSON.stringify({ Source: 'pql-radar', DetailType: 'Lead Qualified', Detail: { idempotencyKey: 'k-1' } });
const timestamp = 1_714_564_800; // 2024-05-01T12:00:00Z
const secret = generateWebhookSecret();

const verifiedByLibrary = (receiverSecret: string, headers: Record<string, string>, payload = body, nowSeconds = timestamp + 10) =>
  verify(receiverSecret, payload, headers, nowSeconds * 1000);

describe('Standard Webhooks signatures, verified with the standardwebhooks library', () => {
  it('carry the message id, the timestamp and a v1 signature the library accepts', () => {
    const headers = signWebhook({ id: 'k-1', timestampSeconds: timestamp, body, secrets: [secret] });
    expect(headers[webhookHeaders.id]).toBe('k-1');
    expect(headers[webhookHeaders.timestamp]).toBe(String(timestamp));
    expect(headers[webhookHeaders.signature]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(verifiedByLibrary(secret, headers)).toEqual(JSON.parse(body));
    // The library's own signature of the same message is ours.
    expect(new Webhook(secret).sign('k-1', new Date(timestamp * 1000), body)).toBe(headers[webhookHeaders.signature]);
  });

  it('fail the library for another secret, a changed body, another id and a stale timestamp', () => {
    const headers = signWebhook({ id: 'k-1', timestampSeconds: timestamp, body, secrets: [secret] });
    expect(() => verifiedByLibrary(generateWebhookSecret(), headers)).toThrow(WebhookVerificationError);
    expect(() => verifiedByLibrary(secret, headers, body.replace('k-1', 'k-2'))).toThrow(WebhookVerificationError);
    expect(() => verifiedByLibrary(secret, { ...headers, [webhookHeaders.id]: 'k-2' })).toThrow(WebhookVerificationError);
    expect(() => verifiedByLibrary(secret, headers, body, timestamp + 600)).toThrow(WebhookVerificationError);
  });

  it('carry one signature per secret during a rotation, so a receiver holding either verifies', () => {
    const next = generateWebhookSecret();
    const headers = signWebhook({ id: 'k-1', timestampSeconds: timestamp, body, secrets: [secret, next] });
    expect(headers[webhookHeaders.signature]!.split(' ')).toHaveLength(2);
    expect(verifiedByLibrary(secret, headers)).toEqual(JSON.parse(body));
    expect(verifiedByLibrary(next, headers)).toEqual(JSON.parse(body));
  });

  it('take secrets as Standard Webhooks writes them, and refuse anything else saying why', () => {
    expect(generateWebhookSecret()).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(parseWebhookSecrets(` ${secret},\n${secret} `)).toEqual([secret, secret]);
    for (const bad of ['', 'not-a-secret', 'whsec_', 'whsec_c2hvcnQ=', `${secret}!`]) expect(() => parseWebhookSecrets(bad)).toThrow(/whsec_|no webhook secret/);
    expect(() => signWebhook({ id: 'k-1', timestampSeconds: 1.5, body, secrets: [secret] })).toThrow(/timestamp/);
  });
});
