import { describe, expect, it } from 'vitest';
import { historyMessage, historyReads } from '../../functions/analysis/replay';
import { validateMessage, type AcceptedMessage } from '../../functions/core/messages';
import { loadRules } from '../../functions/core/rules/load';

/** What a partitioned backtest spills of each message: only what the rules' history reads of traits and properties. */

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

const accepted = (message: object): AcceptedMessage => {
  const outcome = validateMessage(message, 0, 'test', new Date(0));
  if ('reason' in outcome) throw new Error(outcome.reason);
  return outcome;
};

describe('historyMessage', () => {
  const reads = historyReads(ruleset);

  it('reads the first name of every property path of event signals and the conversion, and the traits rules read', () => {
    expect([...reads.properties].sort()).toStrictEqual(['invitee', 'limit', 'plan', 'rows', 'total']);
    expect([...reads.traits].sort()).toStrictEqual(['createdAt', 'employees', 'role']);
  });

  it('keeps of properties and traits only those, nested values whole', () => {
    const track = historyMessage(accepted({ type: 'track', userId: 'ann', event: 'Plan Limit Reached', messageId: 'm1', timestamp: '2025-01-01T00:00:00.000Z', properties: { limit: { kind: 'rows', max: 5 }, plan: 'free', url: 'https://x', total: { amount: 3 } }, context: { ip: '1.2.3.4' } }), reads);
    expect(track.message).toStrictEqual({ type: 'track', messageId: 'm1', timestamp: '2025-01-01T00:00:00.000Z', userId: 'ann', event: 'Plan Limit Reached', properties: { limit: { kind: 'rows', max: 5 }, plan: 'free', total: { amount: 3 } } });
    const identify = historyMessage(accepted({ type: 'identify', userId: 'ann', messageId: 'm2', timestamp: '2025-01-01T00:00:00.000Z', traits: { role: 'admin', email: 'ann@example.com', createdAt: '2024-12-01' } }), reads);
    expect(identify.traits).toStrictEqual({ createdAt: '2024-12-01', role: 'admin' });
    expect(identify.message['traits']).toStrictEqual({ createdAt: '2024-12-01', role: 'admin' });
    const group = historyMessage(accepted({ type: 'group', userId: 'ann', groupId: 'acme', messageId: 'm3', timestamp: '2025-01-01T00:00:00.000Z', traits: { employees: 80, name: 'Acme' } }), reads);
    expect(group.traits).toStrictEqual({ employees: 80 });
    expect(group.groupId).toBe('acme');
  });
});
