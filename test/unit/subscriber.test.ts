import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBridgeEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { createHandler, crmNote, RecentKeys } from '../../examples/subscriber/handler';
import { leadEventSource, type LeadEvent } from '../../functions/core/lead-event';
import { buildLeadEvent, decide } from '../../functions/core/lead-state';
import { evaluate, mergeRollups, rollupDay, type EntityFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';

const now = new Date('2024-06-15T12:00:00.000Z');
const ago = (days: number) => new Date(now.getTime() - days * 86_400_000).toISOString();
const track = (event: string, when: string, properties: Record<string, unknown> = {}): UsageEvent => ({ type: 'track', event, properties, timestamp: when });
const ruleset = loadRules(readFileSync(join(import.meta.dirname, '../../examples/team-accounts.rules.yaml'), 'utf8'), 'team-accounts.rules.yaml');

/** What the evaluator publishes for a user who invited three teammates and built dashboards: a real lead event. */
function qualifiedLead(): LeadEvent {
  const events = [
    ...[0, 1, 2, 0, 1].map((days) => track('Logged In', ago(days))),
    ...[0, 1, 2].map((days) => track('Dashboard Created', ago(days))),
    ...['a', 'b', 'c'].map((who) => track('Teammate Invited', ago(2), { invitee: `${who}@example.com` })),
  ];
  const dayNames = [...new Set(events.map((event) => event.timestamp.slice(0, 10)))].sort();
  const days = dayNames.map((day) => rollupDay(day, events.filter((event) => event.timestamp.startsWith(day)), ruleset));
  const facts: EntityFacts = {
    type: 'user',
    id: 'user-42',
    traits: { name: 'Ada Okafor', email: 'ada@example.com', plan: 'free', createdAt: ago(20) },
    accountTraits: [{ name: 'Acme Analytics' }],
    firstSeen: ago(2),
    lastSeen: ago(0),
    days,
    lifetime: mergeRollups('lifetime', days),
    members: [],
  };
  const evaluation = evaluate(facts, ruleset, now);
  const { transition } = decide(undefined, evaluation, facts, ruleset, now);
  return buildLeadEvent('acme', facts, evaluation, transition!, ruleset, now);
}

/** As EventBridge invokes a target: the envelope around the detail, serialized and parsed again. */
function delivered(lead: LeadEvent): EventBridgeEvent<string, unknown> {
  return JSON.parse(
    JSON.stringify({
      version: '0',
      id: randomUUID(),
      'detail-type': lead.detailType,
      source: leadEventSource,
      account: '123456789012',
      time: now.toISOString(),
      region: 'eu-west-1',
      resources: [],
      detail: lead.detail,
    }),
  );
}

function subscriber() {
  const logs: { message: string; fields: Record<string, unknown> }[] = [];
  const handler = createHandler({ processed: new RecentKeys(100), log: (message, fields) => logs.push({ message, fields }) });
  return { handler, logs };
}

describe('the example subscriber', () => {
  const lead = qualifiedLead();

  it('turns a lead event from the evaluator into a CRM note built from its reasons', async () => {
    expect(lead.detailType).toBe('Lead Qualified');
    const { handler } = subscriber();
    const result = await handler(delivered(lead));
    expect(result).toEqual({ status: 'processed', idempotencyKey: lead.detail.idempotencyKey, note: crmNote(lead.detailType, lead.detail) });
    const lines = (result as { note: string }).note.split('\n');
    expect(lines[0]).toBe(`Qualified as champion: score ${lead.detail.score.total} (engagement ${lead.detail.score.engagement}, fit ${lead.detail.score.fit}), route sales`);
    expect(lines.slice(1, 1 + lead.detail.reasons.length)).toEqual(lead.detail.reasons.map((reason) => `- ${reason}`));
    expect(lines).toContain('Most frequent: Logged In (5), Dashboard Created (3), Teammate Invited (3)');
    expect(lines.at(-1)).toBe(`pql-radar, ${now.toISOString()}, rules ${ruleset.version}`);
  });

  it('handles each transition once, however often it is delivered', async () => {
    const { handler, logs } = subscriber();
    const first = delivered(lead);
    // A redelivery is a new EventBridge event (new id) carrying the same detail and idempotency key.
    const redelivery = delivered(lead);
    expect(redelivery.id).not.toBe(first.id);
    expect((await handler(first)).status).toBe('processed');
    expect(await handler(redelivery)).toEqual({ status: 'duplicate', idempotencyKey: lead.detail.idempotencyKey });
    expect(logs.map((line) => line.message)).toEqual(['lead event processed', 'lead event already processed']);

    const next = { ...lead.detail, idempotencyKey: `${lead.detail.idempotencyKey}-next` };
    expect((await handler(delivered({ ...lead, detail: next }))).status).toBe('processed');
  });

  it('logs identifiers and tiers, never the name, e-mail, entity id or note', async () => {
    const { handler, logs } = subscriber();
    await handler(delivered(lead));
    expect(logs).toEqual([
      {
        message: 'lead event processed',
        fields: {
          detailType: 'Lead Qualified',
          workspace: 'acme',
          entityType: 'user',
          tier: 'champion',
          previousTier: null,
          idempotencyKey: lead.detail.idempotencyKey,
        },
      },
    ]);
    const logged = JSON.stringify(logs);
    for (const personal of ['Ada', 'ada@example.com', 'user-42', 'Acme Analytics']) expect(logged).not.toContain(personal);
  });

  it('rejects a malformed event, naming the field', async () => {
    const { handler } = subscriber();
    const malformed = delivered(lead) as EventBridgeEvent<string, any>;
    malformed.detail.score.total = '45';
    await expect(handler(malformed)).rejects.toThrow(/expected number, received string\n.*at detail\.score\.total/);

    const foreign = { ...delivered(lead), source: 'someone-else' };
    await expect(handler(foreign)).rejects.toThrow(/at source/);
    const missingKey = delivered(lead) as EventBridgeEvent<string, any>;
    delete missingKey.detail.idempotencyKey;
    await expect(handler(missingKey)).rejects.toThrow(/at detail\.idempotencyKey/);
  });

  it('forgets the oldest keys beyond its capacity', async () => {
    const keys = new RecentKeys(2);
    for (const key of ['a', 'b', 'c']) await keys.add(key);
    expect([await keys.has('a'), await keys.has('b'), await keys.has('c')]).toEqual([false, true, true]);
  });
});
