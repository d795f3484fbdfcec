import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventHistory, mergeReplays, partitionHistory, replay } from '../../functions/analysis/replay';
import { messagesWithIdentities } from '../support/identity-stream';
import { validateMessage } from '../../functions/core/messages';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';

/**
 * The replay skips users whose evaluation cannot have changed since the last one (nothing new, no tier, nothing time
 * moves: see stableUntil in replay.ts). Skipping must change nothing: every ruleset here is replayed with and without
 * it and the results compared whole. The rules put every time-based signal kind in play: windows that lose days,
 * at_most counts that come to match when they do, inactivity, signup age, decay, account traits that change later,
 * habits split per day or week.
 */

const examples = join(import.meta.dirname, '../../examples');
const example = (name: string) => loadRules(readFileSync(join(examples, `${name}.rules.yaml`), 'utf8'), name);

const timeRules = loadRules(`
version: 1
signup: { trait: createdAt }
signals:
  recent_shares: { event: Dashboard Shared, window: 10d, points: 15 }
  quiet_week: { events: ['*'], window: 7d, at_most: 2, points: -5 }
  no_exports: { event: Data Exported, window: 14d, exactly: 0, points: 3 }
  invites: { event: Teammate Invited, distinct: invitee, window: 21d, at_least: 2, points: 20 }
  limits: { event: Plan Limit Reached, window: 5d, points: 10, decay: 3d }
  exported_lately: { event: Data Exported, window: 20d, points: -20, decay: 4d }
  inactive: { inactive_for: 9d, points: -30 }
  old: { signup_older_than: 20d, points: -10 }
  early: { event: Dashboard Created, since_signup: 7d, at_least: 2, points: 10 }
  ever: { event: Data Source Connected, points: 5 }
  big: { trait: employees, of: account, is: { gte: 50 }, points: 15 }
  pro: { trait: plan, is: pro, points: -50 }
  combo: { all: [recent_shares, invites], not: inactive, points: 10 }
tiers:
  - { name: hot, min_score: 40, route: sales, level: user }
  - { name: warm, min_score: 20, route: nurture, level: user }
policy: { cooldown: 5d }
`);

/** Issue 13's kinds: days and sessions, habits per day and week (whose days change periods every midnight), time to value. */
const habitRules = loadRules(`
version: 1
signup: { trait: createdAt }
signals:
  active_days: { events: ['*'], count: days, window: 14d, at_least: 3, points: 10 }
  few_days: { events: ['*'], count: days, at_most: 2, points: -5 }
  sessions: { events: ['*'], count: sessions, window: 7d, at_least: 2, points: 10 }
  weekly: { events: ['*'], window: 3w, per: week, at_least: 2, periods: 2, points: 15 }
  quiet_weeks: { events: ['*'], window: 2w, per: week, at_most: 1, periods: 2, points: 10 }
  streak: { events: ['*'], window: 5d, per: day, consecutive: 2, points: 15 }
  fast: { to: shared, within: 3d, points: 10 }
  shared: { event: Dashboard Shared, window: 10d }
tiers:
  - { name: hot, min_score: 40, route: sales, level: user }
  - { name: warm, min_score: 20, route: nurture, level: user }
policy: { cooldown: 5d }
`);

function history(messages: readonly object[], ruleset: Ruleset, anonymous: boolean) {
  const result = new EventHistory(ruleset, { anonymous });
  messages.forEach((message, index) => {
    const accepted = validateMessage(message, index, 'test', new Date(0), { receivedAtKnown: false });
    if ('reason' in accepted) throw new Error(`message ${index}: ${accepted.path}: ${accepted.reason}`);
    result.add(accepted);
  });
  return result;
}

describe('skipping users whose evaluation cannot have changed', () => {
  const messages = messagesWithIdentities();
  const days = messages.map((message) => (message as { timestamp: string }).timestamp.slice(0, 10)).sort();
  const rulesets: [string, Ruleset][] = [['time-based', timeRules], ['habits', habitRules], ['activation', example('activation')], ['plan-limits', example('plan-limits')], ['team-accounts', example('team-accounts')]];

  it.each(rulesets.flatMap(([name, ruleset]) => [1, 3].map((stepDays) => [name, stepDays, ruleset] as const)))('changes nothing: %s, every %i days', (_name, stepDays, ruleset) => {
    for (const anonymous of [false, true]) {
      const options = { from: days[0]!, to: days.at(-1)!, stepDays };
      const skipping = replay(history(messages, ruleset, anonymous), options);
      const everything = replay(history(messages, ruleset, anonymous), { ...options, reevaluateAll: true });
      expect(skipping).toStrictEqual(everything);
      expect(skipping.entities.some((entity) => entity.transitions.length > 0)).toBe(true);
    }
  });
});

describe('looking again at users with nothing new of their own', () => {
  // A quiet member of an account whose traits change later (another member's group call): only the account's news
  // can move its evaluation, at the step they arrive.
  const accountRules = loadRules(`
version: 1
signals:
  big: { trait: employees, of: account, is: { gte: 50 }, points: 30 }
tiers:
  - { name: hot, min_score: 20, route: sales, level: user }
`);
  const at = (day: number) => `2025-01-${String(day).padStart(2, '0')}T12:00:00.000Z`;
  const messages = [
    { type: 'track', userId: 'active', event: 'Logged In', messageId: 'm1', timestamp: at(1) },
    { type: 'group', userId: 'active', groupId: 'acme', traits: { employees: 10 }, messageId: 'm2', timestamp: at(1) },
    { type: 'track', userId: 'quiet', event: 'Logged In', messageId: 'm3', timestamp: at(2), context: { groupId: 'acme' } },
    { type: 'group', userId: 'active', groupId: 'acme', traits: { employees: 80 }, messageId: 'm4', timestamp: at(6) },
  ];

  it('takes in its account\'s new traits at the step they arrive, as evaluating everyone does', () => {
    const options = { from: '2025-01-01', to: '2025-01-10' };
    const skipping = replay(history(messages, accountRules, false), options);
    expect(skipping).toStrictEqual(replay(history(messages, accountRules, false), { ...options, reevaluateAll: true }));
    const quiet = skipping.entities.find((entity) => entity.id === 'quiet')!;
    expect(quiet.firstFired).toStrictEqual({ big: '2025-01-06T23:59:59.999Z' });
  });
});

describe('replaying by partition', () => {
  const messages = messagesWithIdentities();
  const days = messages.map((message) => (message as { timestamp: string }).timestamp.slice(0, 10)).sort();
  const rulesets: [string, Ruleset][] = [['time-based', timeRules], ['habits', habitRules], ['activation', example('activation')], ['team-accounts', example('team-accounts')]];

  it.each(rulesets)('gives the whole replay once merged: %s', (_name, ruleset) => {
    for (const anonymous of [false, true]) {
      const options = { from: days[0]!, to: days.at(-1)! };
      const whole = replay(history(messages, ruleset, anonymous), options);
      for (const count of [1, 3, 7]) {
        const parts = partitionHistory(history(messages, ruleset, anonymous), count);
        expect(parts.filter((part) => part.users.size > 0).length).toBe(count);
        expect(mergeReplays(parts.map((part) => replay(part, options)))).toStrictEqual(whole);
      }
    }
  });
});
