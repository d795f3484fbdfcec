import { appendFile, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { leadEventSource, type LeadEvent, type LeadEventDetail, type LeadEventType } from '../core/lead-event';
import type { LeadPublisher } from '../core/ports';
import { signWebhook, webhookHeaders } from '../core/webhook-signature';

/**
 * Where lead events go when pql-radar runs locally (`npm start`) instead of on the EventBridge bus: the console,
 * a JSONL file and webhooks, usually all at once through FanOutLeadSink. Each is a LeadPublisher.
 */

/** A lead event as an EventBridge entry, with Detail parsed: what the JSONL file holds and what webhooks receive. */
export interface LeadEventEnvelope {
  Source: typeof leadEventSource;
  DetailType: LeadEventType;
  Detail: LeadEventDetail;
}

export function leadEventEnvelope(event: LeadEvent): LeadEventEnvelope {
  return { Source: leadEventSource, DetailType: event.detailType, Detail: event.detail };
}

const noFailures = (): { failed: string[] } => ({ failed: [] });
const keysOf = (events: readonly LeadEvent[]) => events.map((event) => event.detail.idempotencyKey);

// ---------------------------------------------------------------------------------------------------------------
// Console

const emailPattern = /[^\s@"'<>()[\],;:]+@[^\s@"'<>()[\],;:]+\.[^\s@"'<>()[\],;:]+/g;

/**
 * One readable line per event, for a developer watching `npm start`. It never shows personal data: no traits
 * (name, email), and anything shaped like an email address, or equal to the lead's name or email, is masked
 * wherever it appears (an id, a signal value, a reason).
 */
export function formatLeadEvent(event: LeadEvent): string {
  const { detail } = event;
  const heading = `LEAD ${event.detailType.replace(/^Lead /, '').toUpperCase()}`;
  const tier = event.detailType === 'Lead Qualified' && detail.previousTier === null ? (detail.tier ?? 'none') : `${detail.previousTier ?? 'none'} -> ${detail.tier ?? 'none'}`;
  const { total, engagement, fit } = detail.score;
  const signals = detail.signals.length === 0 ? 'none' : detail.signals.map((signal) => `${signal.name}=${signalValue(signal.value)}`).join(', ');
  const parts = [
    heading,
    `${detail.entity.type} ${detail.entity.id} (${detail.workspace})`,
    `tier ${tier}`,
    `score ${total} (engagement ${engagement}, fit ${fit})`,
    `route ${detail.route ?? 'none'}`,
    `signals: ${signals}`,
  ];
  if (detail.context.members !== undefined) parts.push(`members ${detail.context.members.length}`);
  if (detail.reasons.length > 0) parts.push(`reasons: ${detail.reasons.join('; ')}`);
  parts.push(`key ${detail.idempotencyKey}`);
  return redact(parts.join('  '), detail);
}

function signalValue(value: LeadEventDetail['signals'][number]['value']): string {
  if (typeof value === 'string') return /^[\w.:/+-]+$/.test(value) ? value : JSON.stringify(value);
  return String(value);
}

function redact(line: string, detail: LeadEventDetail): string {
  let out = line.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ').replace(emailPattern, '[email]');
  for (const value of [detail.context.traits.email, detail.context.traits.name]) {
    const trimmed = value?.trim();
    if (trimmed && trimmed.length >= 3) out = out.split(trimmed).join('[redacted]');
  }
  return out;
}

export class ConsoleLeadSink implements LeadPublisher {
  constructor(private readonly write: (line: string) => void = console.log) {}

  async publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    const failed: string[] = [];
    for (const event of events) {
      try {
        this.write(formatLeadEvent(event));
      } catch {
        failed.push(event.detail.idempotencyKey);
      }
    }
    return { failed };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSONL file

/**
 * Appends one JSON line per event, `{"Source":"pql-radar","DetailType":...,"Detail":{...}}`, to `path` (its
 * directory is created). It never truncates. The lines of one publish call go in one append, and publish calls
 * on one sink are serialised, so batches do not interleave. If an earlier run died mid-write and left a partial
 * last line, a newline is added first so the new lines still parse.
 */
export class JsonlLeadSink implements LeadPublisher {
  #queue: Promise<unknown> = Promise.resolve();
  #checkTail = true;

  constructor(readonly path: string) {}

  publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    if (events.length === 0) return Promise.resolve(noFailures());
    const lines = events.map((event) => `${JSON.stringify(leadEventEnvelope(event))}\n`).join('');
    const run = this.#queue.then(() => this.#append(lines, events));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #append(lines: string, events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    try {
      if (this.#checkTail) {
        await mkdir(dirname(this.path), { recursive: true });
        if (await endsWithPartialLine(this.path)) lines = `\n${lines}`;
        this.#checkTail = false;
      }
      await appendFile(this.path, lines, 'utf8');
      return noFailures();
    } catch {
      // A failed append may have written part of the batch: check the tail again before the next one.
      this.#checkTail = true;
      return { failed: keysOf(events) };
    }
  }
}

async function endsWithPartialLine(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Webhook

export interface WebhookDeliveryFailure {
  idempotencyKey: string;
  attempts: number;
  /** The last HTTP status, when the receiver answered. */
  status?: number;
  /** The last network error, when it did not. */
  error?: string;
}

export interface WebhookLeadSinkOptions {
  /** http(s) URL the events are POSTed to. */
  url: string;
  /** Shared secret of the HMAC signature (see functions/core/webhook-signature.ts). */
  secret: string;
  /** Attempts per event, the first included. @default 6 */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubles each time, with jitter (between half and all of it). @default 500 */
  baseDelayMs?: number;
  /** Upper bound of one backoff delay. @default 30_000 */
  maxDelayMs?: number;
  /** Upper bound of a wait asked for by Retry-After. @default 60_000 */
  maxRetryAfterMs?: number;
  /** Timeout of one attempt, response body included; a timeout is retried like a network error. @default 10_000 */
  timeoutMs?: number;
  /** Events of different entities delivered at once; one entity's events always go in order. @default 4 */
  concurrency?: number;
  fetch?: typeof globalThis.fetch;
  /** Clock in milliseconds, for the signature timestamp and HTTP-date Retry-After. @default Date.now */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Told about each event given up on. @default a console.warn line naming the origin, key and cause */
  onFailure?: (failure: WebhookDeliveryFailure) => void;
}

type AttemptOutcome = { ok: true } | { ok: false; retryable: boolean; retryAfterMs?: number; status?: number; error?: string };

/**
 * POSTs each event as JSON (the LeadEventEnvelope) with a signature, a timestamp and the idempotency key in headers.
 * Retries network errors, timeouts, 408, 429 and 5xx with exponential backoff and jitter, honouring Retry-After
 * (seconds or HTTP date, capped); other answers (4xx, and 3xx: redirects are not followed) fail at once. Each
 * attempt is signed afresh, so a late retry does not carry a stale timestamp.
 */
export class WebhookLeadSink implements LeadPublisher {
  readonly url: string;
  readonly #secret: string;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #onFailure: (failure: WebhookDeliveryFailure) => void;

  constructor(options: WebhookLeadSinkOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new Error('webhook url is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('webhook url must be http or https');
    if (!options.secret) throw new Error('webhook secret must not be empty');
    this.url = options.url;
    this.#secret = options.secret;
    this.#maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 6));
    this.#baseDelayMs = Math.max(0, options.baseDelayMs ?? 500);
    this.#maxDelayMs = Math.max(0, options.maxDelayMs ?? 30_000);
    this.#maxRetryAfterMs = Math.max(0, options.maxRetryAfterMs ?? 60_000);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
    // Only the origin: webhook URLs (Slack's, for one) often carry their secret in the path.
    const origin = parsed.origin;
    this.#onFailure =
      options.onFailure ??
      ((failure) =>
        console.warn(
          `pql-radar: webhook ${origin}: lead ${failure.idempotencyKey} not delivered after ${failure.attempts} attempt(s): ${failure.status !== undefined ? `HTTP ${failure.status}` : failure.error}`,
        ));
  }

  async publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    // One queue per entity, so a receiver sees one lead's transitions in order; entities go in parallel.
    const queues = new Map<string, LeadEvent[]>();
    for (const event of events) {
      const { workspace, entity } = event.detail;
      const id = JSON.stringify([workspace, entity.type, entity.id]);
      const queue = queues.get(id);
      if (queue) queue.push(event);
      else queues.set(id, [event]);
    }
    const pending = [...queues.values()];
    const failed: string[] = [];
    const worker = async () => {
      for (let queue = pending.shift(); queue; queue = pending.shift()) {
        for (const event of queue) {
          if (!(await this.#deliver(event))) failed.push(event.detail.idempotencyKey);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, pending.length) }, worker));
    return { failed };
  }

  async #deliver(event: LeadEvent): Promise<boolean> {
    const body = JSON.stringify(leadEventEnvelope(event));
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt(event, body);
      if (outcome.ok) return true;
      if (!outcome.retryable || attempt >= this.#maxAttempts) {
        const failure: WebhookDeliveryFailure = { idempotencyKey: event.detail.idempotencyKey, attempts: attempt };
        if (outcome.status !== undefined) failure.status = outcome.status;
        if (outcome.error !== undefined) failure.error = outcome.error;
        this.#onFailure(failure);
        return false;
      }
      await this.#sleep(outcome.retryAfterMs ?? this.#backoff(attempt));
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (attempt - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #attempt(event: LeadEvent, body: string): Promise<AttemptOutcome> {
    const timestamp = Math.floor(this.#now() / 1000);
    try {
      const response = await this.#fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [webhookHeaders.timestamp]: String(timestamp),
          [webhookHeaders.signature]: signWebhook(body, this.#secret, timestamp),
          [webhookHeaders.idempotencyKey]: event.detail.idempotencyKey,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      // Read the answer to the end so the connection can be reused; its content is not needed.
      await response.arrayBuffer().catch(() => undefined);
      const { status } = response;
      if (status >= 200 && status < 300) return { ok: true };
      const retryable = status === 408 || status === 429 || status >= 500;
      const outcome: AttemptOutcome = { ok: false, retryable, status };
      if (retryable) {
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.#now());
        if (retryAfterMs !== undefined) outcome.retryAfterMs = Math.min(retryAfterMs, this.#maxRetryAfterMs);
      }
      return outcome;
    } catch (error) {
      return { ok: false, retryable: true, error: describeError(error) };
    }
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

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
  return code ? `${error.message} (${code})` : `${error.name}: ${error.message}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Fan-out

/**
 * Publishes every event to every sink, in parallel. An event counts as failed if any sink failed it (a sink that
 * throws fails all of the call's events). When the caller publishes a failed event again, it goes only to the
 * sinks that have not had it yet: this sink remembers the last `rememberDelivered` keys each sink took, so a
 * webhook that is down does not make the console and the JSONL file repeat the lead on every retry.
 */
export class FanOutLeadSink implements LeadPublisher {
  readonly #delivered: Set<string>[];

  constructor(
    private readonly sinks: readonly LeadPublisher[],
    private readonly rememberDelivered = 10_000,
  ) {
    this.#delivered = sinks.map(() => new Set<string>());
  }

  async publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    const results = await Promise.all(
      this.sinks.map(async (sink, index) => {
        const delivered = this.#delivered[index]!;
        const due = events.filter((event) => !delivered.has(event.detail.idempotencyKey));
        if (due.length === 0) return [];
        let failed: string[];
        try {
          failed = (await sink.publish(due)).failed;
        } catch {
          failed = keysOf(due);
        }
        const failedSet = new Set(failed);
        for (const key of keysOf(due)) if (!failedSet.has(key)) remember(delivered, key, this.rememberDelivered);
        return failed;
      }),
    );
    return { failed: [...new Set(results.flat())] };
  }
}

function remember(keys: Set<string>, key: string, limit: number) {
  if (limit <= 0) return;
  keys.delete(key);
  keys.add(key);
  // A Set iterates in insertion order: the first key is the oldest.
  while (keys.size > limit) keys.delete(keys.values().next().value!);
}
