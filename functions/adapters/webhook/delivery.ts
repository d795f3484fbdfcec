import { classifyStatus, responseExcerpt, type AttemptResult } from '../../core/delivery';
import { leadEventEnvelope, type LeadEvent } from '../../core/lead-event';
import { signWebhook } from '../../core/webhook-signature';

/**
 * One HTTP attempt at a webhook (a signed lead-event webhook, Slack's incoming webhook), for the notifier Lambda and
 * the local runtime's delivery worker: the POST with a timeout, its answer read (a short excerpt kept for the delivery
 * log), Retry-After noted. Retries are the delivery queue's business (core/delivery), not this module's.
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

export interface HttpAttemptOptions {
  /** Timeout of the attempt, response body included; a timeout is retryable like a network error. @default 10_000 */
  timeoutMs?: number;
  /** @default the global fetch, looked up at each attempt so that one replaced later (in tests) is used */
  fetch?: typeof globalThis.fetch;
  /** Clock in milliseconds, for HTTP-date Retry-After and the latency. @default Date.now */
  now?: () => number;
}

/**
 * Sends one request and says what came of it (core/delivery's classification of the status). Redirects are not
 * followed: a webhook that moved answers 3xx, a permanent failure an operator must look at.
 */
export async function httpAttempt(url: string, init: HttpRequest, options: HttpAttemptOptions = {}): Promise<AttemptResult> {
  return (await httpExchange(url, init, options)).result;
}

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * httpAttempt, with the answer's body apart for a caller that reads it (HubSpot's upsert result, or the category of a
 * 403, past what the excerpt keeps).
 */
export async function httpExchange(url: string, init: HttpRequest, options: HttpAttemptOptions = {}): Promise<{ result: AttemptResult; body?: string }> {
  const now = options.now ?? Date.now;
  const fetch = options.fetch ?? ((input, request) => globalThis.fetch(input, request));
  const started = now();
  try {
    const response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
    // Read to the end, so the keep-alive connection goes back to the pool.
    const body = await response.text().catch(() => '');
    const outcome = classifyStatus(response.status);
    const result: AttemptResult = { outcome, status: response.status, latencyMs: now() - started };
    const excerpt = responseExcerpt(body);
    if (excerpt) result.excerpt = excerpt;
    if (outcome === 'retryable') {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now());
      if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
    }
    return { result, body };
  } catch (error) {
    return { result: { outcome: 'retryable', error: describeError(error), latencyMs: now() - started } };
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

/** A network error in a few words, with its code (ECONNREFUSED, a timeout's name): never a URL, which may hold a secret. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return code ? `${error.message} (${code})` : `${error.name}: ${error.message}`;
}
