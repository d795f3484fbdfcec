import { setTimeout as delay } from 'node:timers/promises';
import { leadEventEnvelope, type LeadEvent } from '../../core/lead-event';
import { signWebhook } from '../../core/webhook-signature';
import { backoffDelayMs } from '../backoff';

/**
 * Delivery of webhooks, for the notifier Lambda (Slack and signed webhook destinations) and the local runtime's
 * webhook sink: one POST with a timeout, its answer read to the end, and retries with backoff that honour
 * Retry-After.
 */

export interface WebhookRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * The POST of a lead event to a webhook: its envelope as JSON, signed per Standard Webhooks at `nowMs` (milliseconds
 * since the epoch) with each of `secrets`, the idempotency key as the message id.
 */
export function signedLeadEventRequest(event: LeadEvent, secrets: readonly string[], nowMs: number): WebhookRequest {
  const body = JSON.stringify(leadEventEnvelope(event));
  return {
    body,
    headers: {
      'content-type': 'application/json',
      ...signWebhook({ id: event.detail.idempotencyKey, timestampSeconds: Math.floor(nowMs / 1000), body, secrets }),
    },
  };
}

export interface WebhookDeliveryOptions {
  /** Attempts, the first included. @default 6 */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubles each time, with full jitter. @default 500 */
  baseDelayMs?: number;
  /** Upper bound of one backoff delay. @default 30_000 */
  maxDelayMs?: number;
  /** Upper bound of a wait asked for by Retry-After. @default 60_000 */
  maxRetryAfterMs?: number;
  /** Timeout of one attempt, response body included; a timeout is retried like a network error. @default 10_000 */
  timeoutMs?: number;
  /** @default the global fetch */
  fetch?: typeof globalThis.fetch;
  /** Clock in milliseconds, for signatures and HTTP-date Retry-After. @default Date.now */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface WebhookDeliveryResult {
  delivered: boolean;
  attempts: number;
  /** The last HTTP status, when the receiver answered. */
  status?: number;
  /** The last network error, when it did not. */
  error?: string;
}

type AttemptOutcome = { delivered: true; status: number } | { delivered: false; retryable: boolean; retryAfterMs?: number; status?: number; error?: string };

/**
 * POSTs `request(now)` to `url` until a 2xx answer. Retries network errors, timeouts, 408, 429 and 5xx, waiting
 * what Retry-After asks (seconds or HTTP date, capped) or else a backoff; other answers (4xx, and 3xx: redirects
 * are not followed) fail at once. The request is built again for each attempt, so a late retry is not signed
 * with a stale timestamp.
 */
export async function deliverWebhook(url: string, request: (nowMs: number) => WebhookRequest, options: WebhookDeliveryOptions = {}): Promise<WebhookDeliveryResult> {
  const settings = withDefaults(options);
  for (let attempt = 1; ; attempt++) {
    const outcome = await post(url, request(settings.now()), settings);
    if (outcome.delivered) return { delivered: true, attempts: attempt, status: outcome.status };
    if (!outcome.retryable || attempt >= settings.maxAttempts) {
      const result: WebhookDeliveryResult = { delivered: false, attempts: attempt };
      if (outcome.status !== undefined) result.status = outcome.status;
      if (outcome.error !== undefined) result.error = outcome.error;
      return result;
    }
    await settings.sleep(outcome.retryAfterMs ?? backoffDelayMs(attempt, settings.baseDelayMs, settings.maxDelayMs));
  }
}

function withDefaults(options: WebhookDeliveryOptions): Required<WebhookDeliveryOptions> {
  return {
    maxAttempts: Math.max(1, Math.floor(options.maxAttempts ?? 6)),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 500),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 30_000),
    maxRetryAfterMs: Math.max(0, options.maxRetryAfterMs ?? 60_000),
    timeoutMs: options.timeoutMs ?? 10_000,
    // Looked up at each delivery, not at import, so that a fetch replaced later (in tests) is the one used.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    now: options.now ?? Date.now,
    sleep: options.sleep ?? ((ms) => delay(ms)),
  };
}

async function post(url: string, { headers, body }: WebhookRequest, settings: Required<WebhookDeliveryOptions>): Promise<AttemptOutcome> {
  try {
    const response = await settings.fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(settings.timeoutMs) });
    // Read the answer to the end so the keep-alive connection goes back to the pool; its content is not needed.
    await response.arrayBuffer().catch(() => undefined);
    const { status } = response;
    if (status >= 200 && status < 300) return { delivered: true, status };
    const retryable = status === 408 || status === 429 || status >= 500;
    const outcome: AttemptOutcome = { delivered: false, retryable, status };
    if (retryable) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), settings.now());
      if (retryAfterMs !== undefined) outcome.retryAfterMs = Math.min(retryAfterMs, settings.maxRetryAfterMs);
    }
    return outcome;
  } catch (error) {
    return { delivered: false, retryable: true, error: describeError(error) };
  }
}

/** Milliseconds to wait from a Retry-After header (delay-seconds or HTTP-date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** A network error or timeout in one line: the message and, when there is one, the system error code (ECONNREFUSED…). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return code ? `${error.message} (${code})` : `${error.name}: ${error.message}`;
}
