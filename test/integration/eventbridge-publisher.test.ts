import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher } from '../../functions/adapters/eventbridge/publisher';
import { leadEventDetailSchema, leadEventSource, leadEventType, maxLeadEventDetailBytes, type LeadEvent } from '../../functions/core/lead-event';
import { eventBridgeClientFor, startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';

const eventBusName = 'pql-radar-leads';

/** Realistic lead events, alternating users and accounts and the three transitions, each checked against the contract. */
function leadEvents(count: number, { padTo = 0 } = {}): LeadEvent[] {
  const tiers = [null, 'warm', 'hot'] as const;
  return Array.from({ length: count }, (_, i) => {
    const isAccount = i % 3 === 0;
    const previousTier = tiers[i % 3]!;
    const tier = i % 5 === 4 ? null : previousTier === 'hot' ? 'warm' : 'hot';
    const id = isAccount ? `acct-${i}` : `user-${i}`;
    const evaluatedAt = new Date(Date.UTC(2024, 4, 1, 12, i)).toISOString();
    const detail = leadEventDetailSchema.parse({
      workspace: 'acme',
      entity: { type: isAccount ? 'account' : 'user', id },
      tier,
      previousTier,
      score: { total: 40 + i, engagement: 30 + i, fit: 10 },
      signals: [
        { name: 'invited_teammates', value: 3, points: 20 },
        { name: 'viewed_pricing', value: true, points: 10 },
        { name: 'company_size', value: '51-200', points: 10 },
      ],
      route: tier === null ? null : tier === 'hot' ? 'sales' : 'nurture',
      rulesetVersion: 'rules@3f2a9c1',
      evaluatedAt,
      idempotencyKey: `acme:${id}:${previousTier ?? 'none'}->${tier ?? 'none'}:${i}`,
      reasons: tier === null ? ['No activity for 30 days'] : ['Invited 3 teammates in 7 days', 'Viewed pricing twice'],
      summary: `user ${id}: ${previousTier ?? 'none'} -> ${tier ?? 'none'}, score 40`,
      context: {
        traits: isAccount ? { company: `Company ${i}`, plan: 'team' } : { name: `Ada ${i}`, email: `ada${i}@example.com`, plan: 'free' },
        firstSeen: '2024-04-01T09:00:00.000Z',
        lastSeen: evaluatedAt,
        ...(isAccount ? { members: [{ id: `user-${i + 1}`, tier: 'warm' }, { id: `user-${i + 2}`, tier: null }] } : {}),
        topEvents: [
          { name: 'Dashboard Created', count: 12 },
          { name: 'Teammate Invited', count: 3 },
          // Padding for the size tests, in a field a real detail fills too.
          ...(padTo > 0 ? [{ name: 'x'.repeat(padTo), count: 1 }] : []),
        ],
      },
    });
    return { detailType: leadEventType(previousTier, tier), detail };
  });
}

const keys = (events: readonly LeadEvent[]) => events.map((event) => event.detail.idempotencyKey);

describe('EventBridgePublisher against a local PutEvents endpoint', () => {
  let endpoint: EventBridgeEndpoint;
  let client: EventBridgeClient;
  beforeEach(async () => {
    endpoint = await startEventBridgeEndpoint();
    client = eventBridgeClientFor(endpoint.url);
  });
  afterEach(async () => {
    client.destroy();
    await endpoint.close();
  });

  const publisher = (options: { maxRounds?: number } = {}) => new EventBridgePublisher({ client, eventBusName, baseDelayMs: 1, ...options });

  /** Every event accepted exactly once, with its detail, source, detail type, bus and time intact. */
  function expectAllAcceptedOnce(events: readonly LeadEvent[]) {
    expect(endpoint.accepted.map((entry) => entry.detail.idempotencyKey).sort()).toEqual(keys(events).sort());
    for (const event of events) {
      const entry = endpoint.accepted.find((accepted) => accepted.detail.idempotencyKey === event.detail.idempotencyKey)!;
      expect(entry).toMatchObject({ source: leadEventSource, detailType: event.detailType, eventBusName, detail: event.detail });
      expect(entry.time?.toISOString()).toBe(event.detail.evaluatedAt);
    }
  }

  it('sends 25 events in calls of at most 10 entries, each accepted once with its detail intact', async () => {
    const events = leadEvents(25);
    expect(await publisher().publish(events)).toEqual({ failed: [] });
    expect(endpoint.calls.map((call) => call.entries)).toEqual([10, 10, 5]);
    expect(endpoint.calls.flatMap((call) => call.keys)).toEqual(keys(events));
    expectAllAcceptedOnce(events);
    expect(new Set(endpoint.accepted.map((entry) => entry.detailType))).toEqual(new Set(['Lead Qualified', 'Lead Tier Changed', 'Lead Disqualified']));
  });

  it('resends only the entries that failed in a call, until all are accepted exactly once', async () => {
    const events = leadEvents(25);
    endpoint.failEntries(3);
    expect(await publisher().publish(events)).toEqual({ failed: [] });
    expect(endpoint.calls.map((call) => call.entries)).toEqual([10, 10, 5, 3]);
    // The endpoint fails the first three entries it sees: the second round holds exactly those.
    expect(endpoint.calls[3]!.keys).toEqual(keys(events).slice(0, 3));
    expectAllAcceptedOnce(events);
  });

  it('leaves throttling of whole calls to the SDK, which retries them', async () => {
    const events = leadEvents(25);
    endpoint.throttleCalls(2);
    expect(await publisher().publish(events)).toEqual({ failed: [] });
    // The first call was throttled twice and went through at the SDK's third attempt; our rounds never saw it fail.
    expect(endpoint.calls.map((call) => [call.outcome, call.entries, call.attempt])).toEqual([
      ['throttled', 10, 'attempt=1; max=3'],
      ['throttled', 10, 'attempt=2; max=3'],
      ['answered', 10, 'attempt=3; max=3'],
      ['answered', 10, 'attempt=1; max=3'],
      ['answered', 5, 'attempt=1; max=3'],
    ]);
    expect(endpoint.calls[0]!.keys).toEqual(endpoint.calls[2]!.keys);
    expectAllAcceptedOnce(events);
  });

  it('returns an entry that keeps failing after maxRounds, and delivers the others', async () => {
    const events = leadEvents(25);
    const stuck = events[7]!.detail.idempotencyKey;
    endpoint.alwaysFail(stuck, 'ThrottlingException');
    // With the reason EventBridge gave, for the operator.
    expect(await publisher({ maxRounds: 4 }).publish(events)).toEqual({ failed: [stuck], reasons: ['ThrottlingException: Injected permanent failure'] });
    expect(endpoint.calls.map((call) => call.entries)).toEqual([10, 10, 5, 1, 1, 1]);
    expect(endpoint.calls.slice(3).map((call) => call.keys)).toEqual([[stuck], [stuck], [stuck]]);
    expectAllAcceptedOnce(events.filter((event) => event.detail.idempotencyKey !== stuck));
  });

  it('returns the entries of a call the SDK gave up on, and delivers the other calls', async () => {
    client = eventBridgeClientFor(endpoint.url, { maxAttempts: 1 });
    const events = leadEvents(25);
    endpoint.throttleCalls(1);
    expect(await publisher().publish(events)).toEqual({ failed: keys(events).slice(0, 10), reasons: [expect.stringMatching(/^ThrottlingException: /)] });
    expectAllAcceptedOnce(events.slice(10));
  });

  it('throws with the cause when no call got through', async () => {
    client = eventBridgeClientFor(endpoint.url, { maxAttempts: 1 });
    endpoint.throttleCalls(1);
    const error = await publisher().publish(leadEvents(3)).catch((error: unknown) => error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(`PutEvents to event bus ${eventBusName} failed; none of 3 lead events was published`);
    expect((error as Error).cause).toMatchObject({ name: 'ThrottlingException' });
  });

  it('keeps each call under 256 KB in total, not only under 10 entries', async () => {
    // Ten details of about 60 KB each: within the detail limit one by one, far over EventBridge's limit per call.
    const events = leadEvents(10, { padTo: 60_000 });
    expect(await publisher().publish(events)).toEqual({ failed: [] });
    expect(endpoint.calls.map((call) => [call.outcome, call.entries])).toEqual([
      ['answered', 4],
      ['answered', 4],
      ['answered', 2],
    ]);
    expectAllAcceptedOnce(events);
  });

  it('refuses a detail over the limit, naming the entity, and sends nothing of the batch', async () => {
    const events = leadEvents(3);
    const [oversized] = leadEvents(1, { padTo: maxLeadEventDetailBytes });
    oversized!.detail.entity = { type: 'account', id: 'acct-huge' };
    await expect(publisher().publish([...events, oversized!])).rejects.toThrow(
      /^Lead event detail for acme\/account:acct-huge \(idempotencyKey .+\) is \d+ bytes, over the 65536-byte limit$/,
    );
    expect(endpoint.calls).toEqual([]);
  });
});

describe('the local PutEvents endpoint', () => {
  it('refuses what EventBridge refuses: more than 10 entries per call, and a Detail that is not a JSON object', async () => {
    const endpoint = await startEventBridgeEndpoint();
    const client = eventBridgeClientFor(endpoint.url);
    try {
      const entry = { Source: leadEventSource, DetailType: 'Lead Qualified', Detail: '{"a":1}', EventBusName: eventBusName };
      await expect(client.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => entry) }))).rejects.toMatchObject({
        name: 'ValidationException',
        $metadata: { httpStatusCode: 400 },
      });
      const output = await client.send(new PutEventsCommand({ Entries: [entry, { ...entry, Detail: '{not json' }, { ...entry, Source: undefined }] }));
      expect(output.FailedEntryCount).toBe(2);
      expect(output.Entries?.map((result) => result.ErrorCode ?? 'ok')).toEqual(['ok', 'MalformedDetail', 'InvalidArgument']);
      expect(endpoint.accepted).toHaveLength(1);
    } finally {
      client.destroy();
      await endpoint.close();
    }
  });
});
