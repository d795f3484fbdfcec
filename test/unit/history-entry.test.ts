import { describe, expect, it } from 'vitest';
import { historyEntry, historyReads } from '../../functions/analysis/replay';
import { entryText, textEntry } from '../../functions/cli/backtest-spill';
import { InputError, parseEvent } from '../../functions/cli/backtest-input';
import { validateMessage, type AcceptedMessage } from '../../functions/core/messages';
import { loadRules } from '../../functions/core/rules/load';
import { messagesWithIdentities } from '../support/identity-stream';

/** What a history keeps of each message, and how a partitioned backtest spills it: only what the rules read. */

const ruleset = loadRules(`
version: 1
signup: { trait: createdAt }
signals:
  limits: { event: Plan Limit Reached, where: { limit.kind: rows, plan: free }, points: 10 }
  rows: { event: Rows Imported, sum: rows, at_least: 1000, points: 5 }
  invites: { event: Teammate Invited, distinct: invitee, at_least: 2, points: 5 }
  big: { trait: employees, of: account, is: { gte: 50 }, points: 15 }
  role: { trait: role, is: admin, points: 5 }
conversion: { event: Order Completed, where: { total.amount: { gte: 1 } } }
tiers:
  - { name: hot, min_score: 20, route: sales, level: user }
`);

const accepted = (message: object, index = 0): AcceptedMessage => {
  const outcome = validateMessage(message, index, 'test', new Date(0), { receivedAtKnown: false });
  if ('reason' in outcome) throw new Error(outcome.reason);
  return outcome;
};

describe('historyEntry', () => {
  const reads = historyReads(ruleset);

  it('reads the first name of every property path of event signals, and the traits rules read', () => {
    expect([...reads.properties].sort()).toStrictEqual(['invitee', 'limit', 'plan', 'rows']);
    expect([...reads.traits].sort()).toStrictEqual(['createdAt', 'employees', 'role']);
  });

  it('keeps of properties and traits only those, nested values whole, and decides the conversion on the whole message', () => {
    const track = historyEntry(accepted({ type: 'track', userId: 'ann', event: 'Plan Limit Reached', messageId: 'm1', timestamp: '2025-01-01T00:00:00.000Z', properties: { limit: { kind: 'rows', max: 5 }, plan: 'free', url: 'https://x' }, context: { ip: '1.2.3.4' } }), ruleset, reads);
    expect(track.usage).toStrictEqual({ type: 'track', timestamp: '2025-01-01T00:00:00.000Z', event: 'Plan Limit Reached', properties: { limit: { kind: 'rows', max: 5 }, plan: 'free' } });
    expect(track.converts).toBe(false);
    const order = historyEntry(accepted({ type: 'track', userId: 'ann', event: 'Order Completed', messageId: 'm4', timestamp: '2025-01-01T00:00:00.000Z', properties: { total: { amount: 3 } } }), ruleset, reads);
    expect(order).toMatchObject({ converts: true, usage: { properties: {} } });
    const identify = historyEntry(accepted({ type: 'identify', userId: 'ann', messageId: 'm2', timestamp: '2025-01-01T00:00:00.000Z', traits: { role: 'admin', email: 'ann@example.com', createdAt: '2024-12-01' } }), ruleset, reads);
    expect(identify.traits).toStrictEqual({ createdAt: '2024-12-01', role: 'admin' });
    expect(identify.usage).toBeUndefined();
    const group = historyEntry(accepted({ type: 'group', userId: 'ann', groupId: 'acme', messageId: 'm3', timestamp: '2025-01-01T00:00:00.000Z', traits: { employees: 80, name: 'Acme' } }), ruleset, reads);
    expect(group).toMatchObject({ traits: { employees: 80 }, groupId: 'acme' });
    const noneRead = historyEntry(accepted({ type: 'identify', userId: 'ann', messageId: 'm5', timestamp: '2025-01-01T00:00:00.000Z', traits: { email: 'ann@example.com' } }), ruleset, reads);
    expect(noneRead.traits).toBeUndefined();
  });

  it('keeps when a product event was received, only when on a later day than it happened: receivedAt, else sentAt', () => {
    const entry = (line: object) => {
      const outcome = parseEvent('events.jsonl', JSON.stringify(line), 1, Date.parse('2026-01-01T00:00:00Z'));
      if (!outcome || outcome instanceof InputError) throw new Error(String(outcome));
      return historyEntry(outcome, ruleset, reads);
    };
    const base = { type: 'track', userId: 'ann', event: 'Rows Imported', messageId: 'm1', timestamp: '2025-01-01T23:00:00.000Z' };
    expect(entry({ ...base, receivedAt: '2025-01-03T01:00:00+01:00' }).receivedAt).toBe('2025-01-03T00:00:00.000Z');
    expect(entry({ ...base, sentAt: '2025-01-02T08:00:00.000Z' }).receivedAt).toBe('2025-01-02T08:00:00.000Z');
    expect(entry({ ...base, receivedAt: '2025-01-01T23:30:00.000Z' }).receivedAt).toBeUndefined();
    expect(entry(base).receivedAt).toBeUndefined();
    // Only product events are counted late: traits and memberships apply in the order of their times.
    expect(entry({ type: 'identify', userId: 'ann', messageId: 'm2', timestamp: base.timestamp, traits: { role: 'admin' }, receivedAt: '2025-01-09T00:00:00Z' }).receivedAt).toBeUndefined();
  });

  it('reads back from its spilled line exactly as it was, claims and unusual identifiers included', () => {
    const unusual = ['tab\there', 'line\nbreak', '"quoted"', 'back\\slash', 'ünïcødé 😀', 'colon:in:id'];
    const messages = [
      ...messagesWithIdentities(),
      ...unusual.flatMap((id, index) => [
        { type: 'page', userId: id, anonymousId: `${id}-visitor`, messageId: `${id}-1`, timestamp: '2025-01-01T00:00:00Z', properties: { plan: id } },
        { type: 'alias', userId: `${id}-new`, previousId: id, messageId: `u${index}`, timestamp: '2025-01-02T00:00:00Z' },
        { type: 'group', anonymousId: id, groupId: `${id}-account`, traits: { employees: 5 }, timestamp: '2025-01-03T00:00:00Z' },
        { type: 'track', userId: id, event: `Rows ${id}`, properties: { rows: 3 }, timestamp: '2025-01-03T00:00:00Z', receivedAt: '2025-01-04T00:00:00Z' },
        { type: 'track', userId: id, event: 'Order Completed', properties: { total: { amount: 3 } }, timestamp: '2025-01-03T00:00:00Z' },
      ]),
    ];
    const entries = messages.map((message, index) => historyEntry(accepted(message, index), ruleset, reads));
    expect(entries.filter((entry) => entry.claims.length > 1)).not.toHaveLength(0);
    expect(entries.filter((entry) => entry.converts)).not.toHaveLength(0);
    expect(entries.filter((entry) => entry.receivedAt !== undefined)).toHaveLength(unusual.length);
    for (const entry of entries) {
      const text = entryText(entry);
      expect(text).not.toMatch(/\n/);
      expect(textEntry(text)).toStrictEqual(entry);
    }
  });
});
