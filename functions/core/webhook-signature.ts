import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signing of lead-event webhooks, shared by the local webhook sink and the deployed webhook destination, and
 * meant for receivers to import. Pure: node:crypto only.
 *
 * A request carries
 *   x-pql-radar-timestamp: <unix seconds>
 *   x-pql-radar-signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the shared secret>
 * Signing the timestamp with the body lets a receiver refuse replays of an old request.
 */
export const webhookHeaders = {
  timestamp: 'x-pql-radar-timestamp',
  signature: 'x-pql-radar-signature',
  idempotencyKey: 'x-pql-radar-idempotency-key',
} as const;

/** The signature scheme version, the prefix of the signature header value. */
export const webhookSignatureVersion = 'v1';

/** How far a timestamp may be from the receiver's clock (either way) by default: five minutes. */
export const defaultWebhookToleranceSeconds = 300;

function hmacHex(body: string | Uint8Array, secret: string, timestampSeconds: number | string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
}

/**
 * The value of the `x-pql-radar-signature` header for this body, sent with `x-pql-radar-timestamp: <timestampSeconds>`.
 * Sign the exact bytes you send: re-serialising the JSON on the receiving side breaks the signature.
 */
export function signWebhook(body: string | Uint8Array, secret: string, timestampSeconds: number): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new Error('timestampSeconds must be a non-negative integer (unix seconds)');
  if (secret.length === 0) throw new Error('the webhook secret must not be empty');
  return `${webhookSignatureVersion}=${hmacHex(body, secret, timestampSeconds)}`;
}

export interface VerifyWebhookSignatureInput {
  /** The raw request body, exactly as received (string or bytes), not re-serialised JSON. */
  body: string | Uint8Array;
  /** The `x-pql-radar-timestamp` header. */
  timestamp: string | number | undefined | null;
  /** The `x-pql-radar-signature` header: `v1=<hex>`; several signatures separated by commas or spaces are accepted. */
  signature: string | undefined | null;
  /** The shared secret; several during a rotation (any one matching is enough). */
  secret: string | readonly string[];
  /** @default 300 */
  toleranceSeconds?: number;
  /** The receiver's clock, in milliseconds since the epoch. @default Date.now */
  now?: () => number;
}

/**
 * True when the signature is a valid `v1` signature of `"<timestamp>.<body>"` under one of the secrets and the
 * timestamp is within `toleranceSeconds` of now. Compares in constant time; any malformed input is simply false.
 */
export function verifyWebhookSignature(input: VerifyWebhookSignatureInput): boolean {
  const { body, signature, toleranceSeconds = defaultWebhookToleranceSeconds, now = Date.now } = input;
  const timestamp = typeof input.timestamp === 'number' ? String(input.timestamp) : input.timestamp?.trim();
  if (!timestamp || !/^\d{1,15}$/.test(timestamp) || typeof signature !== 'string') return false;
  const ageSeconds = Math.abs(now() / 1000 - Number(timestamp));
  if (!(ageSeconds <= toleranceSeconds)) return false;

  const provided = signature
    .split(/[\s,]+/)
    .filter((part) => part.startsWith(`${webhookSignatureVersion}=`))
    .map((part) => part.slice(webhookSignatureVersion.length + 1).toLowerCase())
    .filter((hex) => /^[0-9a-f]{64}$/.test(hex))
    .map((hex) => Buffer.from(hex, 'hex'));
  if (provided.length === 0) return false;

  const secrets = (typeof input.secret === 'string' ? [input.secret] : input.secret).filter((s) => s.length > 0);
  let valid = false;
  // Every combination is compared, so the time taken does not tell which one matched.
  for (const secret of secrets) {
    const expected = Buffer.from(hmacHex(body, secret, timestamp), 'hex');
    for (const candidate of provided) {
      if (timingSafeEqual(expected, candidate)) valid = true;
    }
  }
  return valid;
}
