import { createHmac, randomBytes } from 'node:crypto';

/**
 * Webhook signatures per Standard Webhooks (standardwebhooks.com), so receivers verify with an off-the-shelf library
 * (`standardwebhooks` on npm, Svix's libraries, and their ports to other languages). A request carries
 *   webhook-id:        the lead event's idempotency key, the same on every delivery of one transition
 *   webhook-timestamp: unix seconds
 *   webhook-signature: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">`, one per active secret, space-separated
 * A secret is `whsec_` and the base64 of its key bytes. During a rotation the sender signs with the old and the new
 * secret, and a receiver holding either verifies.
 */
export const webhookHeaders = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

const secretPrefix = 'whsec_';

/** A new secret: 24 random bytes, as Standard Webhooks' own tools make them. */
export function generateWebhookSecret(): string {
  return `${secretPrefix}${randomBytes(24).toString('base64')}`;
}

/**
 * The secrets in a setting (a CLI option, an environment variable, a Secrets Manager value): one, or several separated
 * by spaces, commas or new lines during a rotation. Throws, saying why, when one is not a `whsec_` secret.
 */
export function parseWebhookSecrets(value: string): string[] {
  const secrets = value.split(/[\s,]+/).filter((part) => part.length > 0);
  if (secrets.length === 0) throw new Error('no webhook secret: make one with `pql-radar webhooks secret`');
  for (const secret of secrets) {
    const key = secret.startsWith(secretPrefix) ? Buffer.from(secret.slice(secretPrefix.length), 'base64') : undefined;
    if (!key || key.length < 16 || key.toString('base64') !== secret.slice(secretPrefix.length)) {
      throw new Error('a webhook secret must be "whsec_" followed by the base64 of at least 16 random bytes (`pql-radar webhooks secret` makes one)');
    }
  }
  return secrets;
}

export interface SignWebhookInput {
  /** The message id: the lead event's idempotency key. */
  id: string;
  timestampSeconds: number;
  /** The exact bytes sent: re-serialising the JSON on the receiving side breaks the signature. */
  body: string;
  /** One secret, or several during a rotation (each gives a signature). */
  secrets: readonly string[];
}

/** The Standard Webhooks headers of one request. */
export function signWebhook({ id, timestampSeconds, body, secrets }: SignWebhookInput): Record<string, string> {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new Error('timestampSeconds must be a non-negative integer (unix seconds)');
  const signatures = parseWebhookSecrets(secrets.join(' ')).map((secret) => {
    const key = Buffer.from(secret.slice(secretPrefix.length), 'base64');
    return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
  });
  return { [webhookHeaders.id]: id, [webhookHeaders.timestamp]: String(timestampSeconds), [webhookHeaders.signature]: signatures.join(' ') };
}
