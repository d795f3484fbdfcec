import { backoffDelayMs } from './backoff';
import type { LeadEvent } from './lead-event';

/**
 * Delivery of one lead event to one destination (Slack, a signed webhook, a CRM), the same deployed (an SQS FIFO
 * queue in front of the notifier Lambda) and locally (a queue in the table in front of the local runtime's worker):
 * skip what the destination already took, make one attempt, log it, and say what the queue should do next.
 */

/** The destinations pql-radar delivers to itself, through a delivery queue, a deduplicating notifier and the log. */
export const notifierKinds = ['slack', 'webhook', 'hubspot'] as const;
export type NotifierKind = (typeof notifierKinds)[number];

export interface DeliveryPolicy {
  /** How long a lead event is retried, from when its queue first received it, before it goes to the dead-letter queue. */
  retryWindowMs: number;
  /** Backoff before the second attempt; doubles each time, with full jitter. */
  baseDelayMs: number;
  /** Upper bound of one backoff delay. */
  maxDelayMs: number;
  /** Upper bound of a wait asked for by Retry-After (SQS hides a message for at most 12 hours). */
  maxRetryAfterMs: number;
}

export const defaultDeliveryPolicy: DeliveryPolicy = {
  retryWindowMs: 24 * 60 * 60_000,
  baseDelayMs: 10_000,
  maxDelayMs: 15 * 60_000,
  maxRetryAfterMs: 6 * 60 * 60_000,
};

/**
 * What one attempt came to. `retryable`: the destination may take it later (network error, timeout, 408, 429,
 * 5xx, and 401/403, which a rotated credential fixes without a deploy). `permanent`: the same request will never
 * succeed (another 4xx). `skipped`: nothing to send (e.g. a CRM contact without an e-mail to match it by).
 */
export type AttemptOutcome = 'delivered' | 'retryable' | 'permanent' | 'skipped';

export interface AttemptResult {
  outcome: AttemptOutcome;
  /** The HTTP status, when the destination answered. */
  status?: number;
  /** The network error, or why the attempt was skipped. */
  error?: string;
  /** What Retry-After asked for, in milliseconds. */
  retryAfterMs?: number;
  /** The start of the answer's body, for an operator (see responseExcerpt). */
  excerpt?: string;
  /**
   * Something for an operator to fix that did not stop the attempt (a HubSpot token without a recommended scope): no
   * personal data, as it is logged.
   */
  warning?: string;
  latencyMs: number;
}

/** How an HTTP status is treated, the same for every destination. */
export function classifyStatus(status: number): 'delivered' | 'retryable' | 'permanent' {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 401 || status === 403 || status === 408 || status === 429 || status >= 500) return 'retryable';
  return 'permanent';
}

// No dot needed after the @, and @ may repeat: the addresses a CRM refuses as invalid (ada@acme, ada@@acme.com) are
// the ones its error quotes back.
const emailPattern = /[^\s@"'<>()[\],;:]+@+[^\s"'<>()[\],;:]+/g;

/** The text with anything shaped like an e-mail address, valid or not, replaced by [email]: for logs and operator output. */
export const maskEmails = (text: string): string => text.replace(emailPattern, '[email]');
const maxExcerpt = 200;

/** The start of a response body for the delivery log: one line, e-mail addresses masked, at most 200 characters. */
export function responseExcerpt(body: string): string {
  const line = maskEmails(body.replace(/\s+/g, ' ').trim());
  return line.length <= maxExcerpt ? line : `${line.slice(0, maxExcerpt - 1)}…`;
}

/** What the queue does with the message after an attempt. */
export type DeliveryDecision = { action: 'done' } | { action: 'retry'; delayMs: number } | { action: 'dead-letter'; reason: string };

/** Where a lead event stands in its delivery queue. */
export interface QueueContext {
  /**
   * How many times the queue has handed the event over, this time included (SQS's ApproximateReceiveCount): more than
   * its attempts when it waited behind another event, being handed over untried at each of that one's attempts.
   */
  receives: number;
  /** When the queue first received the event: the retry window runs from there. */
  queuedAt: Date;
  now: Date;
}

export interface AttemptContext extends QueueContext {
  /** 1 for the first attempt at the event: the attempts the delivery ledger counted before, plus one. */
  attempt: number;
}

/**
 * Receives a lead event may take within its retry window: SQS moves a message received 1000 times (its most) to the
 * dead-letter queue by itself, ahead of the window.
 */
export const receiveBudget = 900;
/** Receives at the backoff alone, before the rest of a long window is spread out to keep within `receiveBudget`. */
const quickReceives = 10;

/** Why an attempt did not deliver, in a few words: the HTTP status, else the error. */
export const failureCause = (result: AttemptResult): string => (result.status !== undefined ? `HTTP ${result.status}` : (result.error ?? 'no answer'));

/** The next step after an attempt: retry with backoff (or what Retry-After asked) within the window, else dead-letter. */
export function nextStep(result: AttemptResult, context: AttemptContext, policy: DeliveryPolicy, random: () => number = Math.random): DeliveryDecision {
  if (result.outcome === 'delivered' || result.outcome === 'skipped') return { action: 'done' };
  const cause = failureCause(result);
  if (result.outcome === 'permanent') return { action: 'dead-letter', reason: `${cause}: the destination refused it, a retry would not change that` };
  const jittered = Math.max(1000, backoffDelayMs(context.attempt, policy.baseDelayMs, policy.maxDelayMs, random));
  // A window of days at the capped backoff (on average half the cap, with full jitter) would take more receives than
  // SQS allows: past the first ones, no wait is shorter than the window shared out over the budget.
  const backoffMs = context.receives > quickReceives ? Math.max(jittered, policy.retryWindowMs / receiveBudget) : jittered;
  // Retry-After can make the wait longer, never shorter: `Retry-After: 0` (or a past date) would retry at once, again and again.
  const delayMs = result.retryAfterMs !== undefined ? Math.max(backoffMs, Math.min(result.retryAfterMs, policy.maxRetryAfterMs)) : backoffMs;
  const deadline = context.queuedAt.getTime() + policy.retryWindowMs;
  if (context.now.getTime() + delayMs > deadline) {
    return { action: 'dead-letter', reason: `${cause} after ${context.attempt} attempt(s) over ${Math.round((context.now.getTime() - context.queuedAt.getTime()) / 60_000)} min: the retry window has passed` };
  }
  return { action: 'retry', delayMs };
}

/** One line of the delivery log: no personal data (ids, keys, statuses and a masked excerpt only). */
export interface DeliveryLogEntry {
  at: string;
  destination: string;
  kind: NotifierKind;
  idempotencyKey: string;
  detailType: LeadEvent['detailType'];
  workspace: string;
  entity: { type: string; id: string };
  attempt: number;
  /** An attempt's outcome, or `duplicate` (already delivered, nothing sent) or `superseded` (a newer transition of the lead was applied). */
  outcome: AttemptOutcome | 'duplicate' | 'superseded';
  /** What the queue did next. */
  next: DeliveryDecision['action'];
  status?: number;
  error?: string;
  latencyMs?: number;
  excerpt?: string;
  warning?: string;
  /** A sample from `pql-radar destinations test`. */
  test?: boolean;
}

/** What a destination has of one idempotency key. */
export interface KeyProgress {
  /** The destination took it already. */
  delivered: boolean;
  /** The attempts at it the destination did not take (retryable or permanent), while it has not taken it. */
  failedAttempts: number;
}

/** The delivery log and the record of what each destination took, by idempotency key (with a TTL). */
export interface DeliveryLedger {
  /** Whether the destination took this idempotency key already, and else how many attempts at it failed. */
  progress(destination: string, idempotencyKey: string): Promise<KeyProgress>;
  /**
   * For a destination that skips superseded transitions (a CRM, Slack): when it last applied a transition of this lead
   * (the event's evaluatedAt), if it did.
   */
  lastApplied(destination: string, event: LeadEvent): Promise<string | undefined>;
  /**
   * Logs an attempt; when it delivered, records the key, and, for a destination that skips superseded transitions,
   * the transition's time; when the destination did not take it, the attempts at the key so far (`entry.attempt`):
   * all in the same write.
   */
  record(entry: DeliveryLogEntry, event: LeadEvent, skipsSuperseded?: boolean): Promise<void>;
}

/** One destination, as the use case sees it. */
export interface LeadDestination {
  /** Stable id, unique in the deployment: `<route>-<kind>-<n>`, or `crm-hubspot-<n>`. */
  id: string;
  kind: NotifierKind;
  /**
   * A transition older than one the destination already took is skipped (superseded), not sent: a CRM's record must
   * end in the lead's latest state, and people act on a Slack alert as the latest word on a lead (a Lead Qualified
   * redriven from the dead-letter queue after its Lead Disqualified would send sales to a lead already dropped). A
   * webhook takes every transition: its receiver orders them by evaluatedAt.
   */
  skipsSuperseded: boolean;
  send(event: LeadEvent): Promise<AttemptResult>;
}

/**
 * Delivers a lead event to a destination once: skips a key the destination already took (a redelivery, a replay,
 * an evaluator that published again after a crash), and, for a CRM or Slack, a transition older than one already
 * applied (skipsSuperseded).
 * Every attempt and skip is logged. Returns what the queue should do with the message.
 */
export async function deliverLeadEvent(
  event: LeadEvent,
  ports: { destination: LeadDestination; ledger: DeliveryLedger },
  queue: QueueContext,
  policy: DeliveryPolicy = defaultDeliveryPolicy,
): Promise<DeliveryDecision> {
  const { destination, ledger } = ports;
  const { detail } = event;
  const progress = await ledger.progress(destination.id, detail.idempotencyKey);
  // Counted by the ledger rather than the queue: an event that waited behind another was handed over at each of that
  // one's attempts, untried, and its first attempt must back off as a first.
  const context: AttemptContext = { ...queue, attempt: progress.failedAttempts + 1 };
  const base = {
    destination: destination.id,
    kind: destination.kind,
    idempotencyKey: detail.idempotencyKey,
    detailType: event.detailType,
    workspace: detail.workspace,
    entity: { type: detail.entity.type, id: detail.entity.id },
    attempt: context.attempt,
    ...(detail.test ? { test: true } : {}),
  };
  if (progress.delivered) {
    await ledger.record({ ...base, at: context.now.toISOString(), outcome: 'duplicate', next: 'done' }, event);
    return { action: 'done' };
  }
  if (destination.skipsSuperseded && !detail.test) {
    const applied = await ledger.lastApplied(destination.id, event);
    if (applied !== undefined && applied > detail.evaluatedAt) {
      await ledger.record({ ...base, at: context.now.toISOString(), outcome: 'superseded', next: 'done' }, event);
      return { action: 'done' };
    }
  }
  const result = await destination.send(event);
  const decision = nextStep(result, context, policy);
  const entry: DeliveryLogEntry = { ...base, at: context.now.toISOString(), outcome: result.outcome, next: decision.action, latencyMs: result.latencyMs };
  if (result.status !== undefined) entry.status = result.status;
  if (result.error !== undefined) entry.error = result.error;
  if (result.excerpt !== undefined) entry.excerpt = result.excerpt;
  if (result.warning !== undefined) entry.warning = result.warning;
  if (decision.action === 'dead-letter') entry.error = decision.reason;
  await ledger.record(entry, event, destination.skipsSuperseded);
  return decision;
}

/**
 * The sample lead `pql-radar destinations test` sends through the real path: marked `test: true` in the detail and
 * TEST in its summary, with a fresh idempotency key, so no one mistakes it for a lead and no deduplication hides it.
 */
export function testLeadEvent(route: string, workspace: string, now: Date, key: string): LeadEvent {
  const evaluatedAt = now.toISOString();
  return {
    detailType: 'Lead Qualified',
    detail: {
      workspace,
      entity: { type: 'user', id: 'pql-radar-test-lead' },
      tier: 'TEST',
      previousTier: null,
      score: { total: 0, engagement: 0, fit: 0 },
      signals: [],
      route,
      rulesetVersion: 'test',
      evaluatedAt,
      idempotencyKey: `test-${key}`,
      reasons: ['a test from pql-radar destinations test: no one qualified'],
      summary: `TEST from pql-radar destinations test (route ${route}): not a lead, act on nothing`,
      test: true,
      context: { traits: {}, firstSeen: null, lastSeen: null, topEvents: [] },
    },
  };
}
