import { describe, expect, it } from 'vitest';
import { Pacer } from '../../functions/adapters/pacer';
import {
  classifyStatus,
  defaultDeliveryPolicy,
  deliverLeadEvent,
  nextStep,
  receiveBudget,
  responseExcerpt,
  testLeadEvent,
  type AttemptContext,
  type AttemptResult,
  type DeliveryLedger,
  type DeliveryLogEntry,
  type DeliveryPolicy,
  type KeyProgress,
  type LeadDestination,
} from '../../functions/core/delivery';
import { leadEventDetailSchema, type LeadEvent } from '../../functions/core/lead-event';
import { sampleLeadEvent } from '../support/lead-events';

const minute = 60_000;
const hour = 60 * minute;
const now = new Date('2026-11-30T12:00:00.000Z');
const policy: DeliveryPolicy = { retryWindowMs: 24 * hour, baseDelayMs: 10_000, maxDelayMs: 15 * minute, maxRetryAfterMs: 6 * hour };
/** The n-th attempt at an event, handed over as many times (no wait behind another), queued that long ago. */
const fresh = (attempt = 1, queuedAgoMs = 0): AttemptContext => ({ attempt, receives: attempt, queuedAt: new Date(now.getTime() - queuedAgoMs), now });
const failed = (fields: Partial<AttemptResult> = {}): AttemptResult => ({ outcome: 'retryable', status: 503, latencyMs: 12, ...fields });

describe('classifyStatus', () => {
  it.each([
    [200, 'delivered'],
    [201, 'delivered'],
    [202, 'delivered'],
    [204, 'delivered'],
    [299, 'delivered'],
    [300, 'permanent'],
    [301, 'permanent'],
    [302, 'permanent'],
    [304, 'permanent'],
    [307, 'permanent'],
    [308, 'permanent'],
    [400, 'permanent'],
    [401, 'retryable'],
    [403, 'retryable'],
    [404, 'permanent'],
    [405, 'permanent'],
    [408, 'retryable'],
    [409, 'permanent'],
    [410, 'permanent'],
    [413, 'permanent'],
    [422, 'permanent'],
    [429, 'retryable'],
    [500, 'retryable'],
    [501, 'retryable'],
    [502, 'retryable'],
    [503, 'retryable'],
    [504, 'retryable'],
    [599, 'retryable'],
  ] as const)('HTTP %i is %s', (status, expected) => {
    expect(classifyStatus(status)).toBe(expected);
  });
});

describe('nextStep', () => {
  it('is done once delivered or skipped', () => {
    expect(nextStep({ outcome: 'delivered', status: 200, latencyMs: 5 }, fresh(), policy)).toEqual({ action: 'done' });
    expect(nextStep({ outcome: 'skipped', error: 'no e-mail to match the contact by', latencyMs: 0 }, fresh(), policy)).toEqual({ action: 'done' });
    // Even after the window: a delivery is a delivery.
    expect(nextStep({ outcome: 'delivered', status: 204, latencyMs: 5 }, fresh(9, 48 * hour), policy)).toEqual({ action: 'done' });
  });

  it('dead-letters a permanent failure at once, saying why', () => {
    const decision = nextStep({ outcome: 'permanent', status: 400, latencyMs: 5 }, fresh(), policy);
    expect(decision).toEqual({ action: 'dead-letter', reason: expect.stringMatching(/^HTTP 400: the destination refused it/) });
    const unsent = nextStep({ outcome: 'permanent', error: 'the Slack secret is not an https:// incoming-webhook URL', latencyMs: 0 }, fresh(), policy);
    expect(unsent).toMatchObject({ action: 'dead-letter', reason: expect.stringContaining('the Slack secret is not an https:// incoming-webhook URL') });
  });

  it("spaces the receives of a long window so that they stay within the budget, under the 1000 after which SQS dead-letters a message itself", () => {
    for (const retryWindowMs of [24 * hour, 7 * 24 * hour, 336 * hour]) {
      const longWindow = { ...policy, retryWindowMs };
      // The shortest waits the jitter can draw, all along: the most attempts the window can take.
      let elapsedMs = 0;
      let attempts = 1;
      for (let decision = nextStep(failed(), fresh(1), longWindow, () => 0); decision.action === 'retry'; attempts++) {
        elapsedMs += decision.delayMs;
        expect(attempts, `${retryWindowMs / hour} h`).toBeLessThan(1000);
        decision = nextStep(failed(), { ...fresh(attempts + 1), queuedAt: new Date(now.getTime() - elapsedMs) }, longWindow, () => 0);
      }
      expect(attempts).toBeLessThanOrEqual(receiveBudget + 10);
      // And the window is used to its end: the last attempt falls within a spaced wait of it.
      expect(elapsedMs).toBeGreaterThan(retryWindowMs - Math.max(policy.maxDelayMs, retryWindowMs / receiveBudget));
    }
    // The first attempts keep their quick backoff whatever the window.
    expect(nextStep(failed(), fresh(1), { ...policy, retryWindowMs: 336 * hour }, () => 0.5)).toEqual({ action: 'retry', delayMs: 5_000 });
  });

  it('backs off by the attempts, and spaces by the receives: an event handed over untried behind another keeps within the budget too', () => {
    // The first attempt of an event handed over 40 times while it waited: the backoff of a first attempt (5 s at
    // this jitter), but no shorter than the window shared out over the budget, since its receives are spent.
    expect(nextStep(failed(), { ...fresh(1), receives: 40 }, policy, () => 0.5)).toEqual({ action: 'retry', delayMs: policy.retryWindowMs / receiveBudget });
    expect(nextStep(failed(), { ...fresh(1), receives: 10 }, policy, () => 0.5)).toEqual({ action: 'retry', delayMs: 5_000 });
    // Not the backoff of its 40th attempt, which is up to the 15-minute cap.
    expect(nextStep(failed(), fresh(40), policy, () => 0.5)).toEqual({ action: 'retry', delayMs: policy.maxDelayMs / 2 });
  });

  it('retries within the window after a random backoff: at least 1 s, at most the base doubled per attempt, capped', () => {
    const highest = () => 1 - Number.EPSILON;
    expect(nextStep(failed(), fresh(1), policy, () => 0.5)).toEqual({ action: 'retry', delayMs: 5_000 });
    expect(nextStep(failed(), fresh(3), policy, () => 0.5)).toEqual({ action: 'retry', delayMs: 20_000 });
    expect(nextStep(failed(), fresh(1), policy, () => 0)).toEqual({ action: 'retry', delayMs: 1_000 });
    expect(nextStep(failed(), fresh(20), policy, highest)).toMatchObject({ action: 'retry' });
    for (let attempt = 1; attempt <= 12; attempt++) {
      const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      for (const random of [0, 0.001, 0.25, 0.5, 0.75, 1 - Number.EPSILON]) {
        const decision = nextStep(failed(), fresh(attempt), policy, () => random);
        expect(decision.action).toBe('retry');
        const { delayMs } = decision as { delayMs: number };
        expect(delayMs).toBeGreaterThanOrEqual(1_000);
        expect(delayMs).toBeLessThanOrEqual(bound);
      }
    }
    expect((nextStep(failed(), fresh(30), policy, highest) as { delayMs: number }).delayMs).toBeCloseTo(policy.maxDelayMs, -1);
  });

  it('retries a network error like a 5xx', () => {
    expect(nextStep({ outcome: 'retryable', error: 'fetch failed (ECONNREFUSED)', latencyMs: 3 }, fresh(2), policy, () => 0.5)).toEqual({ action: 'retry', delayMs: 10_000 });
  });

  it('waits what Retry-After asks when it is longer than the backoff, capped by maxRetryAfterMs; never less than the backoff', () => {
    expect(nextStep(failed({ status: 429, retryAfterMs: 120_000 }), fresh(1), policy, () => 0)).toEqual({ action: 'retry', delayMs: 120_000 });
    // Retry-After: 0 (or a date past) would retry at once, again and again: the backoff holds.
    const backoff = nextStep(failed({ status: 429 }), fresh(5), policy, () => 0.9);
    expect(backoff).toMatchObject({ action: 'retry', delayMs: expect.any(Number) });
    expect(nextStep(failed({ status: 429, retryAfterMs: 0 }), fresh(5), policy, () => 0.9)).toEqual(backoff);
    expect(nextStep(failed({ status: 429, retryAfterMs: 0 }), fresh(1), policy, () => 0)).toEqual({ action: 'retry', delayMs: 1000 });
    expect(nextStep(failed({ status: 503, retryAfterMs: 20 * hour }), fresh(1), policy)).toEqual({ action: 'retry', delayMs: policy.maxRetryAfterMs });
    expect(nextStep(failed({ status: 503, retryAfterMs: 2 * hour }), fresh(1), { ...policy, maxRetryAfterMs: 30 * minute })).toEqual({ action: 'retry', delayMs: 30 * minute });
  });

  it('dead-letters once the next attempt would fall after the window', () => {
    const window = policy.retryWindowMs;
    // Five seconds left: a backoff of 40 s would end after the window.
    expect(nextStep(failed(), fresh(4, window - 5_000), policy, () => 0.5)).toMatchObject({ action: 'dead-letter', reason: expect.stringContaining('the retry window has passed') });
    // The retry would come exactly at the end of the window: still retried; a millisecond later, not.
    expect(nextStep(failed({ retryAfterMs: 5_000 }), fresh(4, window - 5_000), policy, () => 0)).toEqual({ action: 'retry', delayMs: 5_000 });
    const late = nextStep(failed({ retryAfterMs: 5_001 }), fresh(4, window - 5_000), policy, () => 0);
    expect(late).toEqual({ action: 'dead-letter', reason: 'HTTP 503 after 4 attempt(s) over 1440 min: the retry window has passed' });
    // Retry-After past the window: no point waiting for it.
    expect(nextStep(failed({ status: 429, retryAfterMs: 2 * hour }), fresh(3, 23 * hour), policy)).toMatchObject({ action: 'dead-letter' });
    // Already past the window (a message that waited in the queue): dead-lettered on its first failure.
    expect(nextStep(failed(), fresh(1, 25 * hour), policy, () => 0)).toMatchObject({ action: 'dead-letter' });
    const unreachable = nextStep({ outcome: 'retryable', error: 'fetch failed (ECONNREFUSED)', latencyMs: 1 }, fresh(7, 25 * hour), policy, () => 0);
    expect(unreachable).toMatchObject({ action: 'dead-letter', reason: expect.stringMatching(/^fetch failed \(ECONNREFUSED\) after 7 attempt\(s\) over 1500 min/) });
    const silent = nextStep({ outcome: 'retryable', latencyMs: 1 }, fresh(2, 25 * hour), policy, () => 0);
    expect(silent).toMatchObject({ action: 'dead-letter', reason: expect.stringMatching(/^no answer after 2 attempt/) });
  });

  it('uses the default policy: a day of retries, backoff from 10 s to 15 min, Retry-After up to 6 h', () => {
    expect(defaultDeliveryPolicy).toEqual(policy);
    expect(nextStep(failed(), fresh(1), defaultDeliveryPolicy, () => 0.5)).toEqual({ action: 'retry', delayMs: 5_000 });
  });
});

/**
 * A DeliveryLedger in memory, keeping what the DynamoDB ledger keeps: the log, each key's progress at each destination
 * (one item there too), what a CRM applied.
 */
class MemoryLedger implements DeliveryLedger {
  readonly entries: DeliveryLogEntry[] = [];
  /** By `<destination> <idempotency key>`. */
  readonly keys = new Map<string, KeyProgress>();
  readonly applied = new Map<string, string>();

  async progress(destination: string, idempotencyKey: string) {
    return this.keys.get(`${destination} ${idempotencyKey}`) ?? { delivered: false, failedAttempts: 0 };
  }
  async lastApplied(destination: string, event: LeadEvent) {
    return this.applied.get(this.#lead(destination, event));
  }
  async record(entry: DeliveryLogEntry, event: LeadEvent) {
    this.entries.push(entry);
    const key = `${entry.destination} ${entry.idempotencyKey}`;
    if (entry.outcome === 'retryable' || entry.outcome === 'permanent') this.keys.set(key, { delivered: false, failedAttempts: entry.attempt });
    if (entry.outcome !== 'delivered') return;
    this.keys.set(key, { delivered: true, failedAttempts: 0 });
    if (!entry.test) this.applied.set(this.#lead(entry.destination, event), event.detail.evaluatedAt);
  }
  #lead(destination: string, event: LeadEvent) {
    const { workspace, entity } = event.detail;
    return `${destination} ${workspace} ${entity.type} ${entity.id}`;
  }
}

/** A destination answering with the scripted results in turn (then delivered), recording what it was sent. */
class ScriptedDestination implements LeadDestination {
  readonly sent: LeadEvent[] = [];
  constructor(
    readonly id: string,
    readonly kind: LeadDestination['kind'],
    readonly skipsSuperseded: boolean,
    private readonly results: AttemptResult[] = [],
  ) {}
  async send(event: LeadEvent): Promise<AttemptResult> {
    this.sent.push(event);
    return this.results.shift() ?? { outcome: 'delivered', status: 200, latencyMs: 42, excerpt: 'ok' };
  }
}

describe('deliverLeadEvent', () => {
  const event = sampleLeadEvent();
  const later = sampleLeadEvent({ previousTier: 'PQL-A', tier: 'PQL-B', evaluatedAt: '2024-05-03T08:00:00.000Z' });

  it('sends once and logs the attempt without personal data', async () => {
    const ledger = new MemoryLedger();
    const destination = new ScriptedDestination('sales-webhook-1', 'webhook', false);
    expect(await deliverLeadEvent(event, { destination, ledger }, fresh(1), policy)).toEqual({ action: 'done' });
    expect(destination.sent).toEqual([event]);
    expect(ledger.entries).toEqual([
      {
        at: now.toISOString(),
        destination: 'sales-webhook-1',
        kind: 'webhook',
        idempotencyKey: event.detail.idempotencyKey,
        detailType: 'Lead Qualified',
        workspace: 'acme',
        entity: { type: 'user', id: 'u-42' },
        attempt: 1,
        outcome: 'delivered',
        next: 'done',
        status: 200,
        latencyMs: 42,
        excerpt: 'ok',
      },
    ]);
    expect(JSON.stringify(ledger.entries)).not.toMatch(/ada@acme\.example|Ada Lovelace|Acme Analytics/);
  });

  it('skips a key the destination already took: nothing sent, a duplicate logged', async () => {
    const ledger = new MemoryLedger();
    const destination = new ScriptedDestination('sales-slack-1', 'slack', false);
    await deliverLeadEvent(event, { destination, ledger }, fresh(1), policy);
    expect(await deliverLeadEvent(event, { destination, ledger }, fresh(2), policy)).toEqual({ action: 'done' });
    expect(destination.sent).toHaveLength(1);
    // The duplicate is the first attempt at its own message (a redelivery, a replay): no attempt at the key failed.
    expect(ledger.entries.map((entry) => [entry.outcome, entry.next, entry.attempt])).toEqual([
      ['delivered', 'done', 1],
      ['duplicate', 'done', 1],
    ]);
    expect(ledger.entries[1]).not.toHaveProperty('status');
    // Another destination has not taken it: it gets it.
    const other = new ScriptedDestination('sales-webhook-1', 'webhook', false);
    await deliverLeadEvent(event, { destination: other, ledger }, fresh(1), policy);
    expect(other.sent).toEqual([event]);
  });

  it('does not mark a failed attempt delivered: the retry sends again', async () => {
    const ledger = new MemoryLedger();
    const destination = new ScriptedDestination('sales-webhook-1', 'webhook', false, [
      { outcome: 'retryable', status: 503, latencyMs: 8, excerpt: 'busy' },
      { outcome: 'retryable', error: 'fetch failed (ECONNREFUSED)', latencyMs: 1 },
    ]);
    const first = await deliverLeadEvent(event, { destination, ledger }, fresh(1), policy);
    expect(first).toMatchObject({ action: 'retry', delayMs: expect.any(Number) });
    await deliverLeadEvent(event, { destination, ledger }, fresh(2), policy);
    await deliverLeadEvent(event, { destination, ledger }, fresh(3), policy);
    expect(destination.sent).toHaveLength(3);
    expect(ledger.entries).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'retryable', next: 'retry', status: 503, excerpt: 'busy', latencyMs: 8 }),
      expect.objectContaining({ attempt: 2, outcome: 'retryable', next: 'retry', error: 'fetch failed (ECONNREFUSED)', latencyMs: 1 }),
      expect.objectContaining({ attempt: 3, outcome: 'delivered', next: 'done', status: 200 }),
    ]);
    expect(ledger.entries[1]).not.toHaveProperty('status');
  });

  it('counts the attempts in the ledger, not the queue: an event handed over untried behind another logs its first attempt as the first', async () => {
    const ledger = new MemoryLedger();
    const destination = new ScriptedDestination('sales-webhook-1', 'webhook', false, [
      { outcome: 'retryable', status: 503, latencyMs: 8 },
      { outcome: 'retryable', status: 503, latencyMs: 8 },
    ]);
    const behindAnother = (receives: number) => ({ receives, queuedAt: new Date(now.getTime() - hour), now });
    // Spaced by the receives it has spent (the window over the budget), not backed off as a 40th attempt (up to 15 min).
    expect(await deliverLeadEvent(event, { destination, ledger }, behindAnother(40), policy)).toEqual({ action: 'retry', delayMs: policy.retryWindowMs / receiveBudget });
    await deliverLeadEvent(event, { destination, ledger }, behindAnother(41), policy);
    await deliverLeadEvent(event, { destination, ledger }, behindAnother(45), policy);
    expect(ledger.entries.map((entry) => [entry.outcome, entry.attempt])).toEqual([
      ['retryable', 1],
      ['retryable', 2],
      ['delivered', 3],
    ]);
  });

  it('logs a dead-letter with its reason in the error, keeping the status and excerpt', async () => {
    const ledger = new MemoryLedger();
    const destination = new ScriptedDestination('sales-webhook-1', 'webhook', false, [{ outcome: 'permanent', status: 400, latencyMs: 9, excerpt: 'bad payload' }]);
    const decision = await deliverLeadEvent(event, { destination, ledger }, fresh(1), policy);
    expect(decision).toMatchObject({ action: 'dead-letter' });
    const reason = (decision as { reason: string }).reason;
    expect(ledger.entries).toEqual([expect.objectContaining({ outcome: 'permanent', next: 'dead-letter', status: 400, excerpt: 'bad payload', error: reason, latencyMs: 9 })]);

    const windowLedger = new MemoryLedger();
    // Eleven attempts failed before this one.
    windowLedger.keys.set(`sales-webhook-1 ${event.detail.idempotencyKey}`, { delivered: false, failedAttempts: 11 });
    const down = new ScriptedDestination('sales-webhook-1', 'webhook', false, [{ outcome: 'retryable', error: 'TimeoutError: The operation was aborted due to timeout', latencyMs: 5_000 }]);
    const late = await deliverLeadEvent(event, { destination: down, ledger: windowLedger }, fresh(12, 25 * hour), policy);
    expect(late).toMatchObject({ action: 'dead-letter', reason: expect.stringContaining('the retry window has passed') });
    expect(windowLedger.entries).toEqual([expect.objectContaining({ outcome: 'retryable', next: 'dead-letter', attempt: 12, error: expect.stringMatching(/^TimeoutError: .* after 12 attempt\(s\)/) })]);
  });

  it('applies a CRM transition only if no newer one was applied: an older one is superseded', async () => {
    const ledger = new MemoryLedger();
    const crm = new ScriptedDestination('crm-hubspot-1', 'hubspot', true);
    await deliverLeadEvent(later, { destination: crm, ledger }, fresh(1), policy);
    // The qualification evaluated before it arrives late (a retry, a replay): it must not overwrite the newer tier.
    expect(await deliverLeadEvent(event, { destination: crm, ledger }, fresh(1), policy)).toEqual({ action: 'done' });
    expect(crm.sent).toEqual([later]);
    expect(ledger.entries.map((entry) => [entry.idempotencyKey, entry.outcome, entry.next])).toEqual([
      [later.detail.idempotencyKey, 'delivered', 'done'],
      [event.detail.idempotencyKey, 'superseded', 'done'],
    ]);
    // A newer transition, or another lead, goes through.
    const newest = sampleLeadEvent({ previousTier: 'PQL-B', tier: null, evaluatedAt: '2024-06-01T08:00:00.000Z' });
    const otherLead = sampleLeadEvent({ entity: { type: 'user', id: 'u-7' } });
    await deliverLeadEvent(newest, { destination: crm, ledger }, fresh(1), policy);
    await deliverLeadEvent(otherLead, { destination: crm, ledger }, fresh(1), policy);
    expect(crm.sent).toEqual([later, newest, otherLead]);
  });

  it('skips, on Slack too, a transition older than one it posted: a redriven dead letter is no fresh alert', async () => {
    const ledger = new MemoryLedger();
    // As slackDestination makes it (test/unit/destinations.test.ts).
    const slack = new ScriptedDestination('sales-slack-1', 'slack', true);
    const disqualified = sampleLeadEvent({ previousTier: 'PQL-A', tier: null, evaluatedAt: '2024-05-03T08:00:00.000Z' });
    // The Lead Qualified was dead-lettered, its Lead Disqualified went on and was posted, then `dlq redrive`.
    await deliverLeadEvent(disqualified, { destination: slack, ledger }, fresh(1), policy);
    expect(await deliverLeadEvent(event, { destination: slack, ledger }, fresh(1), policy)).toEqual({ action: 'done' });
    expect(slack.sent).toEqual([disqualified]);
    expect(ledger.entries.map((entry) => [entry.detailType, entry.outcome])).toEqual([
      [disqualified.detailType, 'delivered'],
      ['Lead Qualified', 'superseded'],
    ]);
  });

  it('sends a webhook every transition, an older one too: its receiver orders them by evaluatedAt', async () => {
    const ledger = new MemoryLedger();
    const webhook = new ScriptedDestination('sales-webhook-1', 'webhook', false);
    await deliverLeadEvent(later, { destination: webhook, ledger }, fresh(1), policy);
    await deliverLeadEvent(event, { destination: webhook, ledger }, fresh(1), policy);
    expect(webhook.sent).toEqual([later, event]);
  });

  it('lets a test lead event through a CRM whatever was applied, marked test in the log', async () => {
    const ledger = new MemoryLedger();
    const crm = new ScriptedDestination('crm-hubspot-1', 'hubspot', true);
    const sample = testLeadEvent('sales', 'acme', new Date('2020-01-01T00:00:00.000Z'), 'k1');
    ledger.applied.set('crm-hubspot-1 acme user pql-radar-test-lead', '2030-01-01T00:00:00.000Z');
    expect(await deliverLeadEvent(sample, { destination: crm, ledger }, fresh(1), policy)).toEqual({ action: 'done' });
    expect(crm.sent).toEqual([sample]);
    expect(ledger.entries).toEqual([expect.objectContaining({ test: true, outcome: 'delivered', idempotencyKey: 'test-k1' })]);
    // A real one is not marked.
    await deliverLeadEvent(event, { destination: crm, ledger }, fresh(1), policy);
    expect(ledger.entries[1]).not.toHaveProperty('test');
  });
});

describe('responseExcerpt', () => {
  it('keeps a short answer as it is, on one line', () => {
    expect(responseExcerpt('ok')).toBe('ok');
    expect(responseExcerpt('')).toBe('');
    expect(responseExcerpt('  {"error":\n  "invalid_payload",\r\n\t"retry": false}\n')).toBe('{"error": "invalid_payload", "retry": false}');
  });

  it('masks e-mail addresses wherever they are', () => {
    const masked = responseExcerpt('{"error":"contact ada@acme.example exists","owner":"<sam.o+pql@sales.acme.co.uk>", cc: grace@hopper.example;}');
    expect(masked).toBe('{"error":"contact [email] exists","owner":"<[email]>", cc: [email];}');
    expect(masked).not.toContain('@');
    // Those a CRM refuses as invalid too, which its error quotes back (HubSpot's INVALID_EMAIL).
    for (const invalid of ['ada@acme', 'ada.lovelace@gmail', 'ada@localhost', 'ada@@acme.com', 'ada@acme..example']) {
      expect(responseExcerpt(`{"message":"Property values were not valid: ${invalid} is invalid"}`)).toBe('{"message":"Property values were not valid: [email] is invalid"}');
    }
  });

  it('truncates to 200 characters, an ellipsis last', () => {
    expect(responseExcerpt('x'.repeat(200))).toBe('x'.repeat(200));
    const long = responseExcerpt(`${'a'.repeat(150)}\n\n${'b'.repeat(150)}`);
    expect(long).toHaveLength(200);
    expect(long).toBe(`${'a'.repeat(150)} ${'b'.repeat(48)}…`);
    // Masked before truncation: an address past the cut never leaves a readable part behind.
    const tail = responseExcerpt(`${'e'.repeat(190)} someone@example.com`);
    expect(tail).toBe(`${'e'.repeat(190)} [email]`);
    expect(responseExcerpt(`${'e'.repeat(195)} someone@example.com`)).not.toContain('some');
  });
});

describe('testLeadEvent', () => {
  it('is a valid lead event, marked test and TEST, with its own key', () => {
    const at = new Date('2026-11-30T09:30:00.000Z');
    const sample = testLeadEvent('sales', 'acme', at, 'abc123');
    expect(leadEventDetailSchema.parse(sample.detail)).toEqual(sample.detail);
    expect(sample.detailType).toBe('Lead Qualified');
    expect(sample.detail).toMatchObject({ test: true, tier: 'TEST', route: 'sales', workspace: 'acme', evaluatedAt: at.toISOString(), idempotencyKey: 'test-abc123' });
    expect(sample.detail.summary).toMatch(/^TEST /);
    expect(sample.detail.summary).toContain('route sales');
    expect(testLeadEvent('sales', 'acme', at, 'other').detail.idempotencyKey).not.toBe(sample.detail.idempotencyKey);
    // The mark is `true` or absent, never another value.
    expect(() => leadEventDetailSchema.parse({ ...sample.detail, test: false })).toThrow();
  });
});

describe('Pacer', () => {
  /** A clock that only the pacer's sleeps move forward. */
  function clock(start = 1_000_000) {
    let time = start;
    const sleeps: number[] = [];
    return {
      sleeps,
      now: () => time,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        time += ms;
      },
      advance: (ms: number) => (time += ms),
    };
  }

  it('spaces waits by 1000 / perSecond', async () => {
    const c = clock();
    const pacer = new Pacer(4, c.now, c.sleep);
    for (let i = 0; i < 4; i++) await pacer.wait();
    expect(c.sleeps).toEqual([250, 250, 250]);

    const slack = clock();
    const once = new Pacer(1, slack.now, slack.sleep);
    await once.wait();
    await once.wait();
    expect(slack.sleeps).toEqual([1000]);
  });

  it('gives callers that wait at once the next free slots in turn', async () => {
    const sleeps: number[] = [];
    const pacer = new Pacer(10, () => 0, async (ms) => void sleeps.push(ms));
    await Promise.all([pacer.wait(), pacer.wait(), pacer.wait(), pacer.wait()]);
    expect(sleeps).toEqual([100, 200, 300]);
  });

  it('does not wait when the last request was long enough ago, nor save up slots while idle', async () => {
    const c = clock();
    const pacer = new Pacer(2, c.now, c.sleep);
    await pacer.wait();
    c.advance(400);
    await pacer.wait();
    expect(c.sleeps).toEqual([100]);
    c.advance(10_000);
    await pacer.wait();
    await pacer.wait();
    expect(c.sleeps).toEqual([100, 500]);
  });
});
