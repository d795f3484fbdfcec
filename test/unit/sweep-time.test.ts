import { describe, expect, it } from 'vitest';
import { decide, nextDecisionAt, type LeadState } from '../../functions/core/lead-state';
import { evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import { changesByTimeAt, decayIntervalMatters, type TimeChangeScope } from '../../functions/core/rules/time-changes';
import { SeededRandom } from '../../functions/core/random';
import { factsFor } from '../support/facts';

const now = new Date('2024-06-15T12:00:00.000Z');
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const sixHours = 6 * hourMs;
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
const midnightAfter = (days: number) => Date.parse('2024-06-15T00:00:00.000Z') + days * dayMs;
const track = (event: string, when: Date): UsageEvent => ({ type: 'track', event, properties: {}, timestamp: when.toISOString() });
const rules = (signals: string, tiers = '  - { name: pql, min_score: 1, route: sales }', extra = '') =>
  loadRules(`version: 1\nsignals:\n${signals}\ntiers:\n${tiers}\n${extra}`);
const momentOf = (ruleset: Ruleset, events: UsageEvent[], scope: TimeChangeScope, when = now) => {
  const facts = factsFor(events, ruleset);
  return changesByTimeAt(facts, evaluate(facts, ruleset, when), ruleset, when, sixHours)[scope];
};

describe('when time alone can change an evaluation', () => {
  const cases: { name: string; signals: string; events: UsageEvent[]; any: number; qualifying: number }[] = [
    {
      name: 'a rolling window: when its oldest counted day leaves it; an at_least count only falls, so it cannot qualify anyone',
      signals: '  a: { event: Login, window: 7d, points: 1 }',
      events: [track('Login', at(-dayMs)), track('Login', at(-3 * dayMs))],
      any: midnightAfter(4),
      qualifying: Infinity,
    },
    {
      name: 'an at_most count in a window: it can turn on, so a user without a tier is swept then',
      signals: '  a: { event: Login, window: 7d, at_most: 1, points: 1 }',
      events: [track('Login', at(-dayMs)), track('Login', at(-2 * dayMs))],
      any: midnightAfter(5),
      qualifying: midnightAfter(5),
    },
    {
      name: 'a window with nothing counted in it: nothing moves',
      signals: '  a: { event: Login, window: 7d, at_most: 1, points: 1 }',
      events: [track('Login', at(-9 * dayMs))],
      any: Infinity,
      qualifying: Infinity,
    },
    {
      name: 'inactivity with points: when the last activity is that many days old',
      signals: '  a: { inactive_for: 3d, points: 1 }',
      events: [track('Login', at(-2 * dayMs - hourMs))],
      any: at(dayMs - hourMs).getTime(),
      qualifying: at(dayMs - hourMs).getTime(),
    },
    {
      name: 'an anti-PQL inactivity (negative points) only lowers a score: no sweep for a user without a tier',
      signals: '  a: { event: Login, points: 1 }\n  b: { inactive_for: 3d, points: -1 }',
      events: [track('Login', at(-2 * dayMs - hourMs))],
      any: at(dayMs - hourMs).getTime(),
      qualifying: Infinity,
    },
    {
      name: 'inactivity already reached: nothing more by time',
      signals: '  a: { inactive_for: 3d, points: 1 }',
      events: [track('Login', at(-4 * dayMs))],
      any: Infinity,
      qualifying: Infinity,
    },
    {
      name: 'signup age with points: when it is reached',
      signals: '  a: { signup_older_than: 3d, points: 1 }',
      events: [track('Login', at(-dayMs))],
      any: at(2 * dayMs).getTime(),
      qualifying: at(2 * dayMs).getTime(),
    },
    {
      name: 'decaying points: every decay interval; they only fall, so they cannot qualify anyone',
      signals: '  a: { event: Login, points: 10, decay: 7d }',
      events: [track('Login', at(-dayMs))],
      any: at(sixHours).getTime(),
      qualifying: Infinity,
    },
    {
      name: 'decaying negative points rise towards 0: swept every decay interval',
      signals: '  a: { event: Login, points: 1 }\n  b: { event: Export, points: -5, decay: 7d }',
      events: [track('Login', at(-dayMs)), track('Export', at(-dayMs))],
      any: at(sixHours).getTime(),
      qualifying: at(sixHours).getTime(),
    },
    {
      name: 'not of a windowed at_least count: the combination turns on when the count falls',
      signals: '  a: { event: Error Seen, window: 7d }\n  b: { not: a, points: 1 }',
      events: [track('Error Seen', at(-2 * dayMs))],
      any: midnightAfter(5),
      qualifying: midnightAfter(5),
    },
    {
      name: 'a required signal without points counts as raising',
      signals: '  a: { event: Login, window: 7d, at_most: 0 }',
      events: [track('Login', at(-dayMs))],
      any: midnightAfter(6),
      qualifying: midnightAfter(6),
    },
    {
      name: 'a lifetime count: never',
      signals: '  a: { event: Login, at_least: 1, points: 1 }',
      events: [track('Login', at(-dayMs))],
      any: Infinity,
      qualifying: Infinity,
    },
    {
      name: 'several: the first of them',
      signals: '  a: { event: Login, window: 30d, points: 1 }\n  b: { inactive_for: 1d, points: -1 }',
      events: [track('Login', at(-20 * hourMs))],
      any: at(4 * hourMs).getTime(),
      qualifying: Infinity,
    },
  ];
  for (const { name, signals, events, any, qualifying } of cases) {
    it(name, () => {
      const tiers = name.startsWith('a required') ? '  - { name: pql, require: [a], route: sales }' : undefined;
      const ruleset = rules(signals, tiers);
      expect(momentOf(ruleset, events, 'any')).toBe(any);
      expect(momentOf(ruleset, events, 'qualifying')).toBe(qualifying);
    });
  }

  it('the decay interval matters only with a decaying signal', () => {
    const decaying = rules('  a: { event: Login, window: 7d, points: 1 }\n  b: { event: Login, points: 10, decay: 7d }');
    const events = [track('Login', at(-dayMs))];
    expect(decayIntervalMatters(decaying, 'user')).toBe(true);
    expect(momentOf(decaying, events, 'any')).toBe(at(sixHours).getTime());
    const facts = factsFor(events, decaying);
    expect(changesByTimeAt(facts, evaluate(facts, decaying, now), decaying, now, 1).any).toBe(now.getTime() + 1);
    expect(decayIntervalMatters(rules('  a: { event: Login, window: 7d, points: 1 }'), 'user')).toBe(false);
  });

  it('for accounts: a turn of a signal they read of their members (members_matching), for a user in an account only', () => {
    const ruleset = rules(
      '  active: { event: Login, window: 7d, at_least: 2 }\n  recent: { event: Login, window: 3d, points: 1 }\n  team: { level: account, members_matching: active, points: 10 }',
      '  - { name: pql, min_score: 5, route: sales }',
    );
    const events = [track('Login', at(-dayMs)), track('Login', at(-2 * dayMs))];
    const changes = (accountTraits: Record<string, unknown>[]) => {
      const facts = factsFor(events, ruleset, { accountTraits });
      return changesByTimeAt(facts, evaluate(facts, ruleset, now), ruleset, now, sixHours);
    };
    // `active` turns off when its older login leaves the 7-day window; `recent` (no account reads it) moves sooner.
    expect(changes([{}])).toEqual({ any: midnightAfter(1), qualifying: Infinity, readByAccounts: midnightAfter(5) });
    expect(changes([]).readByAccounts).toBe(Infinity);
    // The state machine of a user without a tier runs again then, so that its accounts read the turned signal.
    const facts = factsFor(events, ruleset, { accountTraits: [{}] });
    const evaluation = evaluate(facts, ruleset, now);
    const { state } = decide(undefined, evaluation, facts, ruleset, now, null);
    expect(state.tier).toBeNull();
    expect(nextDecisionAt(state, evaluation, facts, ruleset, now, sixHours)).toBe(midnightAfter(5));
    expect(nextDecisionAt(state, evaluation, factsFor(events, ruleset), ruleset, now, sixHours)).toBe(Infinity);
  });

  it('is right: the evaluation is the same just before the moment and may differ from it on', () => {
    const ruleset = rules('  a: { inactive_for: 3d, points: 1 }');
    const facts = factsFor([track('Login', at(-2 * dayMs - hourMs))], ruleset);
    const moment = changesByTimeAt(facts, evaluate(facts, ruleset, now), ruleset, now, sixHours).any;
    expect(evaluate(facts, ruleset, new Date(moment - 1)).tier).toBe(evaluate(facts, ruleset, now).tier);
    expect(evaluate(facts, ruleset, new Date(moment)).tier).not.toBe(evaluate(facts, ruleset, now).tier);
  });
});

describe('when the state machine runs again without new events (nextDecisionAt)', () => {
  const decided = (ruleset: Ruleset, events: UsageEvent[], previous?: LeadState, when = now, convertedAt: string | null = null) => {
    const facts = factsFor(events, ruleset);
    const evaluation = evaluate(facts, ruleset, when);
    const { state } = decide(previous, evaluation, facts, ruleset, when, convertedAt);
    return { state, next: nextDecisionAt(state, evaluation, facts, ruleset, when, sixHours) };
  };

  it('a user held out by a cooldown whose evaluation has a tier: when the cooldown ends', () => {
    const ruleset = rules('  a: { event: Login, points: 1 }', undefined, 'policy: { cooldown: 4d }');
    const held: LeadState = { ...decided(ruleset, [track('Login', at(-dayMs))]).state, tier: null, route: null, cooldownUntil: at(2 * dayMs).toISOString() };
    const { state, next } = decided(ruleset, [track('Login', at(-dayMs))], held);
    expect(state.tier).toBeNull();
    expect(next).toBe(at(2 * dayMs).getTime());
  });

  it('a converted customer out of the tiers: never', () => {
    const ruleset = rules('  a: { inactive_for: 3d, points: 1 }', undefined, 'conversion: { event: Order Completed }');
    const { state, next } = decided(ruleset, [track('Login', at(-dayMs))], undefined, now, at(-dayMs).toISOString());
    expect(state.conversion).toBeDefined();
    expect(next).toBe(Infinity);
  });

  it('a lead: whenever its evaluation can change, falling counts included', () => {
    const ruleset = rules('  a: { event: Login, window: 7d, points: 1 }');
    const { state, next } = decided(ruleset, [track('Login', at(-dayMs))]);
    expect(state.tier).toBe('pql');
    expect(next).toBe(midnightAfter(6));
  });

  it('misses no qualification: deciding only at the moments gives the transitions of deciding every hour', () => {
    const ruleset = rules(
      [
        '  logins: { event: Login, window: 7d, at_most: 2, points: 2 }',
        '  errors: { event: Error Seen, window: 3d, at_least: 2 }',
        '  calm: { not: errors, points: 1 }',
        '  idle: { inactive_for: 4d, points: 2 }',
        '  veteran: { signup_older_than: 10d, points: 1 }',
        '  exports: { event: Export, points: -3, decay: 2d }',
        '  active: { event: Login, window: 14d, at_least: 3, points: 2 }',
      ].join('\n'),
      '  - { name: hot, min_score: 5, route: sales }\n  - { name: warm, min_score: 3, route: nurture }',
      'policy: { cooldown: 2d }',
    );
    const random = new SeededRandom(7);
    for (let trial = 0; trial < 40; trial++) {
      const names = ['Login', 'Error Seen', 'Export'];
      const start = Date.parse('2024-06-01T00:00:00.000Z');
      const events = Array.from({ length: random.int(1, 8) }, () => track(random.pick(names), new Date(start + random.int(0, 12 * dayMs)))).sort((a, b) => a.timestamp.localeCompare(b.timestamp));
      const end = start + 40 * dayMs;
      const run = (policy: 'hourly' | 'at-moments') => {
        let state: LeadState | undefined;
        let due = -Infinity;
        const tiers: string[] = [];
        for (let time = start; time <= end; time += hourMs) {
          const seen = events.filter((event) => Date.parse(event.timestamp) <= time);
          const arrived = seen.some((event) => Date.parse(event.timestamp) > time - hourMs);
          if (seen.length === 0 || (policy === 'at-moments' && !arrived && time < due)) continue;
          const when = new Date(time);
          const facts = factsFor(seen, ruleset);
          const evaluation = evaluate(facts, ruleset, when);
          const decision = decide(state, evaluation, facts, ruleset, when);
          if (decision.transition) tiers.push(`${new Date(time).toISOString()} ${decision.transition.tier}`);
          state = decision.state;
          due = nextDecisionAt(state, evaluation, facts, ruleset, when, hourMs);
        }
        return tiers;
      };
      const everyHour = run('hourly');
      // Only changes that raise an entity without a tier are skipped: what lowers a lead is swept as well.
      expect(run('at-moments'), `trial ${trial}: ${JSON.stringify(events)}`).toEqual(everyHour);
    }
  });
});
