import { Webhook } from 'standardwebhooks';
import { vi } from 'vitest';

/**
 * What a webhook receiver does with the Standard Webhooks reference library: `new Webhook(secret).verify(body, headers)`,
 * on a clock set to `nowMs` (the library checks the timestamp against its own clock). Returns the parsed body; throws
 * WebhookVerificationError when the signature, the id or the timestamp does not hold.
 */
export function verifiedByLibrary(secret: string, body: string, headers: Record<string, string>, nowMs: number): unknown {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    vi.setSystemTime(nowMs);
    return new Webhook(secret).verify(body, headers);
  } finally {
    vi.useRealTimers();
  }
}
