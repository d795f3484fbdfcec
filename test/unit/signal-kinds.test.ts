import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventHistory, replay } from '../../functions/analysis/replay';
import { accountFacts, eventsByDay, recomputeDays, userFacts } from '../../functions/core/facts';
import { validateMessage } from '../../functions/core/messages';
import { evaluate, rollupDay, type EntityFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, RulesError, type RulesProblem, type Ruleset } from '../../functions/core/rules/load';
import { factsFor } from '../support/facts';

/**
 * Issue 13's kinds: what an event signal counts (days, sessions), recurring habits (per day or week, periods,
 * consecutive) and time to value, at their boundaries; the lifetime day counter as days are recomputed; the replay's
 * sessions when a day is rolled up in parts; the rules check's errors; order and repetition do not matter.
 */

// Midday, so "N days ago" lands on a well-defined UTC day (2024-06-15 is today).
const now = new Date('2024-06-15T12:00:00.000Z');
const dayMs = 86_400_000;
const hourMs = 3_600_000;
const minuteMs = 60_000;
/** The ISO time `days` days (and `hours` hours) before now. */
const ago = (days: number, hours = 0) => new Date(now.getTime() - days * dayMs - hours * hourMs).toISOString();
/** The ISO time `minutes` after a time. */
const after = (time: string, minutes: number) => new Date(Date.parse(time) + minutes * minuteMs).toISOString();
const track = (event: string, when: string, properties: Record<string, unknown> = {}): UsageEvent => ({ type: 'track', event, properties, timestamp: when });
const logins = (...daysAgo: number[]) => daysAgo.map((days) => track('Logged In', ago(days)));

/** A ruleset from signal lines (indented two spaces), with a tier nobody reaches. */
function rulesWith(signals: string, top = ''): Ruleset {
  return loadRules(`version: 1\n${top}signals:\n${signals}\ntiers:\n  - { name: unreachable, min_score: 100000, route: sales }\n`);
}

interface KindCase {
  name: string;
  /** The signal under test, always named x, in YAML flow style; more signal lines may follow. */
  signal: string;
  top?: string;
  events?: UsageEvent[];
  facts?: Partial<EntityFacts>;
  matched: boolean;
  value: number | null;
}

const signupTop = 'signup: { trait: createdAt }\n';
const signedUp = ago(10);

const cases: KindCase[] = [
  // count: days
  { name: 'days: three events on one day are one day', signal: "{ event: '*', count: days, window: 7d, at_least: 2 }", events: [track('A', ago(0)), track('B', ago(0, 1)), track('A', ago(0, 2))], matched: false, value: 1 },
  { name: 'days: the first day of a 7d window counts (6 days ago)', signal: "{ event: '*', count: days, window: 7d, at_least: 2 }", events: [track('A', ago(0)), track('A', ago(6))], matched: true, value: 2 },
  { name: 'days: the day before the window does not (7 days ago)', signal: "{ event: '*', count: days, window: 7d, at_least: 2 }", events: [track('A', ago(0)), track('A', ago(7))], matched: false, value: 1 },
  { name: 'days: only matching events make a day', signal: '{ event: Logged In, count: days, window: 7d }', events: [track('Dashboard Created', ago(1))], matched: false, value: 0 },
  { name: 'days over the whole history', signal: '{ event: Logged In, count: days, at_least: 3 }', events: logins(300, 40, 40, 1), matched: true, value: 3 },
  {
    name: 'days since signup: the signup day and the 6 after count, the 7th does not',
    signal: "{ event: '*', count: days, since_signup: 7d, at_least: 3 }",
    events: [track('A', ago(10)), track('A', ago(5)), track('A', ago(4))],
    matched: true,
    value: 3,
  },
  { name: 'days since signup: a day 7 days after signup is out', signal: "{ event: '*', count: days, since_signup: 7d, at_least: 3 }", events: [track('A', ago(10)), track('A', ago(4)), track('A', ago(2))], matched: false, value: 2 },
  {
    name: '"signed up 60 days ago and used the product twice" (on two days)',
    signal: "{ all: [used_twice, old] }\n  used_twice: { event: '*', count: days, at_most: 2 }\n  old: { signup_older_than: 60d }",
    events: [track('A', ago(61)), track('A', ago(61, 1)), track('B', ago(30))],
    matched: true,
    value: null,
  },
  { name: 'days: at_most 2 with three days', signal: "{ event: '*', count: days, at_most: 2 }", events: [track('A', ago(61)), track('A', ago(30)), track('A', ago(1))], matched: false, value: 3 },

  // count: sessions
  { name: 'sessions: a gap of 29 minutes is one session', signal: '{ event: Logged In, count: sessions, window: 1d, at_least: 2 }', events: [track('Logged In', ago(0, 6)), track('Logged In', after(ago(0, 6), 29))], matched: false, value: 1 },
  { name: 'sessions: a gap of 31 minutes is two', signal: '{ event: Logged In, count: sessions, window: 1d, at_least: 2 }', events: [track('Logged In', ago(0, 6)), track('Logged In', after(ago(0, 6), 31))], matched: true, value: 2 },
  { name: 'sessions: a gap of exactly 30 minutes is two', signal: '{ event: Logged In, count: sessions, window: 1d }', events: [track('Logged In', ago(0, 6)), track('Logged In', after(ago(0, 6), 30))], matched: true, value: 2 },
  {
    name: 'sessions: a chain of short gaps is one session, however long',
    signal: '{ event: Logged In, count: sessions, window: 1d, exactly: 1 }',
    events: Array.from({ length: 10 }, (_, index) => track('Logged In', after(ago(0, 8), index * 20))),
    matched: true,
    value: 1,
  },
  {
    name: 'sessions: other events do not join two sessions of matching ones',
    signal: '{ event: Logged In, count: sessions, window: 1d }',
    events: [track('Logged In', ago(0, 6)), track('Dashboard Created', after(ago(0, 6), 20)), track('Logged In', after(ago(0, 6), 40))],
    matched: true,
    value: 2,
  },
  {
    name: 'sessions: one across midnight counts on both days',
    signal: '{ event: Logged In, count: sessions, window: 2d }',
    events: [track('Logged In', '2024-06-14T23:50:00.000Z'), track('Logged In', '2024-06-15T00:10:00.000Z')],
    matched: true,
    value: 2,
  },
  { name: 'sessions over the whole history', signal: '{ event: Logged In, count: sessions, at_least: 3 }', events: [...logins(90, 30), track('Logged In', ago(1)), track('Logged In', after(ago(1), 90))], matched: true, value: 4 },

  // per, periods, consecutive
  { name: 'per week: 3 of the last 4 weeks', signal: '{ event: Logged In, window: 4w, per: week, periods: 3 }', events: logins(0, 6, 13, 27), matched: true, value: 3 },
  { name: 'per week: 2 of the last 4 weeks is not 3', signal: '{ event: Logged In, window: 4w, per: week, periods: 3 }', events: logins(0, 6, 20), matched: false, value: 2 },
  { name: 'per week: the day before the window is no week of it (28 days ago)', signal: '{ event: Logged In, window: 4w, per: week, periods: 3 }', events: logins(0, 13, 28), matched: false, value: 2 },
  { name: 'per week: weeks are rolling blocks ending today: 6 and 7 days ago are two weeks', signal: '{ event: Logged In, window: 2w, per: week, at_least: 2 }', events: logins(6, 7), matched: false, value: 0 },
  { name: 'per week: 0 and 6 days ago are one week', signal: '{ event: Logged In, window: 2w, per: week, at_least: 2 }', events: logins(0, 6), matched: true, value: 1 },
  {
    name: '"10+ logins in any week of the last month": 10 in the third week',
    signal: '{ event: Logged In, window: 4w, per: week, at_least: 10 }',
    events: logins(...Array.from({ length: 10 }, (_, index) => 14 + (index % 7))),
    matched: true,
    value: 1,
  },
  {
    name: '"10+ logins in any week": 10 split over two weeks is not',
    signal: '{ event: Logged In, window: 4w, per: week, at_least: 10 }',
    events: logins(...Array.from({ length: 10 }, (_, index) => 4 + (index % 6))),
    matched: false,
    value: 0,
  },
  {
    name: 'per week with at_most: a quiet week counts as meeting it',
    signal: '{ event: Logged In, window: 2w, per: week, at_most: 1, periods: 2 }',
    events: logins(1),
    matched: true,
    value: 2,
  },
  { name: 'consecutive days: 5 in a row up to today', signal: '{ event: Logged In, window: 7d, per: day, consecutive: 5 }', events: logins(0, 1, 2, 3, 4), matched: true, value: 5 },
  { name: 'consecutive days: 5 in a row ending yesterday', signal: '{ event: Logged In, window: 7d, per: day, consecutive: 5 }', events: logins(1, 2, 3, 4, 5), matched: true, value: 5 },
  { name: 'consecutive days: broken by one day', signal: '{ event: Logged In, window: 7d, per: day, consecutive: 5 }', events: logins(0, 1, 3, 4, 5, 6), matched: false, value: 4 },
  { name: 'consecutive days: a run leaving the window is cut', signal: '{ event: Logged In, window: 7d, per: day, consecutive: 5 }', events: logins(3, 4, 5, 6, 7), matched: false, value: 4 },
  { name: 'per day with count: sessions, 2 sessions on each of 2 days', signal: '{ event: Logged In, count: sessions, window: 3d, per: day, at_least: 2, periods: 2 }', events: [...logins(0, 1, 2), track('Logged In', ago(0, 2)), track('Logged In', ago(2, 2))], matched: true, value: 2 },
  { name: 'per week with count: days, active 3 days in each of 2 weeks', signal: '{ event: Logged In, count: days, window: 2w, per: week, at_least: 3, periods: 2 }', events: logins(0, 0, 2, 4, 7, 9, 13), matched: true, value: 2 },
  { name: 'per week with count: days, 2 days (one twice) is not 3', signal: '{ event: Logged In, count: days, window: 2w, per: week, at_least: 3, periods: 2 }', events: logins(0, 0, 2, 7, 9, 13), matched: false, value: 1 },

  // time to value
  { name: 'time to value from signup: just within 2 days', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Dashboard Created', after(signedUp, 2 * 24 * 60 - 1))], facts: { traits: { createdAt: signedUp } }, matched: true, value: 2 },
  { name: 'time to value from signup: just beyond 2 days', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Dashboard Created', after(signedUp, 2 * 24 * 60 + 1))], facts: { traits: { createdAt: signedUp } }, matched: false, value: 2 },
  { name: 'time to value: the first event counts, not a later one', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Dashboard Created', after(signedUp, 3 * 24 * 60)), track('Dashboard Created', after(signedUp, 4 * 24 * 60))], facts: { traits: { createdAt: signedUp } }, matched: false, value: 3 },
  { name: 'time to value: to never happened', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Logged In', signedUp)], facts: { traits: { createdAt: signedUp } }, matched: false, value: null },
  { name: 'time to value: the value has one decimal of days', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Dashboard Created', after(signedUp, 36 * 60))], facts: { traits: { createdAt: signedUp } }, matched: true, value: 1.5 },
  { name: 'time to value: before the signup trait counts as at signup', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created }', events: [track('Dashboard Created', after(signedUp, -5))], facts: { traits: { createdAt: signedUp } }, matched: true, value: 0 },
  { name: 'time to value from first seen when no signup trait', signal: '{ to: created, within: 1d }\n  created: { event: Dashboard Created }', events: [track('Logged In', ago(5)), track('Dashboard Created', ago(3, 23))], matched: false, value: 1 },
  { name: 'time to value: the referenced window does not limit the first event', top: signupTop, signal: '{ to: created, within: 2d }\n  created: { event: Dashboard Created, window: 1d }', events: [track('Dashboard Created', after(signedUp, 60))], facts: { traits: { createdAt: signedUp } }, matched: true, value: 0 },
  { name: 'time to value from an event: just within a day', signal: '{ from: created, to: invited, within: 1d }\n  created: { event: Dashboard Created }\n  invited: { event: Teammate Invited }', events: [track('Dashboard Created', ago(5)), track('Teammate Invited', after(ago(5), 24 * 60))], matched: true, value: 1 },
  { name: 'time to value from an event: just beyond a day', signal: '{ from: created, to: invited, within: 1d }\n  created: { event: Dashboard Created }\n  invited: { event: Teammate Invited }', events: [track('Dashboard Created', ago(5)), track('Teammate Invited', after(ago(5), 24 * 60 + 1))], matched: false, value: 1 },
  { name: 'time to value from an event: to before from does not match', signal: '{ from: created, to: invited, within: 1d }\n  created: { event: Dashboard Created }\n  invited: { event: Teammate Invited }', events: [track('Teammate Invited', ago(5, 1)), track('Dashboard Created', ago(5)), track('Teammate Invited', ago(4, 12))], matched: false, value: 0 },
  { name: 'time to value from an event that never happened', signal: '{ from: created, to: invited, within: 1d }\n  created: { event: Dashboard Created }\n  invited: { event: Teammate Invited }', events: [track('Teammate Invited', ago(5))], matched: false, value: null },
];

describe('the new kinds at their boundaries', () => {
  it.each(cases)('$name', ({ signal, top, events = [], facts, matched, value }) => {
    const ruleset = rulesWith(`  x: ${signal}`, top);
    const result = evaluate(factsFor(events, ruleset, facts), ruleset, now).signals['x'];
    expect(result).toMatchObject(value === null && signal.startsWith('{ all') ? { matched } : { matched, value });
  });
});

describe("an account's evaluation reads its members' days", () => {
  it.each([
    ['a window of its own', '  x: { level: account, event: Logged In, window: 7d }', true],
    ['a since-signup span of its own', '  x: { level: account, event: Logged In, since_signup: 14d }', true],
    ['periods of its own', '  x: { level: account, event: Logged In, window: 4w, per: week, periods: 2 }', true],
    ['not for its lifetime count (the members\' states hold it)', '  x: { level: account, event: Logged In }', false],
    ['not for member counts, tiers or activity', '  x: { best_member_tier: unreachable }\n  y: { members_matching: z, at_least: 2 }\n  z: { event: Logged In, window: 7d }\n  w: { active_users: 7d }', false],
    ['not for a user signal\'s window', '  x: { event: Logged In, window: 7d }', false],
  ])('for %s', (_case, signals, reads) => {
    expect(rulesWith(signals).accountsReadMemberDays).toBe(reads);
  });
});

describe('rollups keep only what the signals need', () => {
  it('sessions and first only for the signals that use them, no day counter in a day rollup', () => {
    const ruleset = rulesWith(
      `  plain: { event: Logged In }
  sessions: { event: Logged In, count: sessions, window: 7d }
  days: { event: Logged In, count: days }
  fast: { to: plain, within: 1d }`,
    );
    const rollup = rollupDay('2024-06-15', logins(0, 0), ruleset);
    expect(rollup.measures['plain']).toEqual({ count: 2, sum: 0, last: ago(0), first: ago(0) });
    expect(rollup.measures['sessions']).toEqual({ count: 2, sum: 0, last: ago(0), sessions: 1 });
    expect(rollup.measures['days']).toEqual({ count: 2, sum: 0, last: ago(0) });
    expect(ruleset.lifetimeSignals).toEqual(['plain', 'days']);
    expect(ruleset.lifetimeDaySignals).toEqual(['days']);
    expect(ruleset.firstSignals).toEqual(['plain']);
  });
});

describe('the lifetime day counter as days are recomputed', () => {
  const ruleset = rulesWith("  x: { event: Logged In, count: days }\n  s: { event: Logged In, count: sessions }");
  const day = '2024-06-10';
  const at = (hour: number) => `${day}T${String(hour).padStart(2, '0')}:00:00.000Z`;
  const other = [track('Logged In', ago(1)), track('Logged In', ago(20))];

  it.each<{ name: string; before: UsageEvent[]; after: UsageEvent[]; days: number; sessions: number }>([
    { name: 'a day going from no match to a match adds one', before: [track('Dashboard Created', at(9))], after: [track('Dashboard Created', at(9)), track('Logged In', at(10))], days: 3, sessions: 3 },
    { name: 'a day with a match getting another adds none', before: [track('Logged In', at(9))], after: [track('Logged In', at(9)), track('Logged In', at(15))], days: 3, sessions: 4 },
    { name: 'a day losing its match takes one off', before: [track('Logged In', at(9))], after: [track('Dashboard Created', at(9))], days: 2, sessions: 2 },
    { name: 'a day emptied of every event takes one off', before: [track('Logged In', at(9)), track('Logged In', at(12))], after: [], days: 2, sessions: 2 },
    { name: 'a new day with a match adds one', before: [], after: [track('Logged In', at(9))], days: 3, sessions: 3 },
  ])('$name', ({ before, after: afterEvents, days, sessions }) => {
    const first = recomputeDays(ruleset, eventsByDay([...other, ...before], ruleset.calendar), undefined);
    const replaced = first.days.filter((rollup) => rollup.day === day);
    const second = recomputeDays(ruleset, new Map([[day, afterEvents]]), { totals: first.totals, changedDays: [day], replaced });
    expect(second.totals.lifetime.measures['x']?.days).toBe(days);
    expect(second.totals.lifetime.measures['s']?.sessions).toBe(sessions);
    // What a rebuild from every event says.
    const rebuilt = recomputeDays(ruleset, eventsByDay([...other, ...afterEvents], ruleset.calendar), undefined);
    expect(second.totals.lifetime.measures['x']?.days).toBe(rebuilt.totals.lifetime.measures['x']?.days);
    const facts = userFacts({ id: 'u', traits: {}, accountTraits: [], totals: second.totals, days: [] });
    expect(evaluate(facts, ruleset, now).signals['x']?.value).toBe(days);
  });
});

describe('accounts', () => {
  const ruleset = rulesWith(
    `  x: { level: account, event: Logged In, count: days, window: 7d }
  s: { level: account, event: Logged In, count: sessions }
  fast: { level: account, to: created, within: 1d }
  created: { level: account, event: Dashboard Created }`,
  );
  const member = (id: string, events: UsageEvent[]) => {
    const facts = factsFor(events, ruleset, { id });
    return { id, state: { lifetime: facts.lifetime, firstSeen: facts.firstSeen, lastSeen: facts.lastSeen }, days: facts.days };
  };

  it("days are the days any member matched; sessions are the members' added up; first is the earliest", () => {
    const members = [member('a', [...logins(0, 1), track('Logged In', ago(9)), track('Dashboard Created', ago(8, 20))]), member('b', [...logins(1, 3)])];
    const result = evaluate(accountFacts({ id: 'acct', traits: {} }, members), ruleset, now).signals;
    expect(result['x']).toMatchObject({ matched: true, value: 3 });
    expect(result['s']).toMatchObject({ matched: true, value: 5 });
    // From the account's first seen (member a's first login, 9 days ago) to member a's dashboard 4 hours later.
    expect(result['fast']).toMatchObject({ matched: true, value: 0.2 });
  });
});

describe('the replay counts sessions of a day rolled up in parts', () => {
  it('a session across the parts (more events than a part holds, in any order) is one session', () => {
    const ruleset = rulesWith('  x: { event: Logged In, count: sessions, window: 1d, exactly: 1 }');
    const start = Date.parse('2024-06-10T06:00:00.000Z');
    // 400 events a minute apart, shuffled: the replay rolls a day up 256 events at a time.
    const order = Array.from({ length: 400 }, (_, index) => (index * 157) % 400);
    const history = new EventHistory(ruleset);
    order.forEach((minute, index) => {
      const accepted = validateMessage({ type: 'track', event: 'Logged In', userId: 'u1', messageId: `m${index}`, timestamp: new Date(start + minute * minuteMs).toISOString() }, index, 'test', new Date(0), { receivedAtKnown: false });
      if ('reason' in accepted) throw new Error(accepted.reason);
      history.add(accepted);
    });
    const result = replay(history, { from: '2024-06-10', to: '2024-06-10' });
    expect(result.entities[0]!.firstFired).toEqual({ x: '2024-06-10T23:59:59.999Z' });
  });
});

describe('the replay re-evaluates habits as their days change periods', () => {
  it('two logins 3 days apart are in one week, then in two, with nothing new', () => {
    const ruleset = loadRules(`version: 1
signals:
  two_weeks: { event: Logged In, window: 2w, per: week, periods: 2 }
tiers:
  - { name: unreachable, min_score: 100000, route: sales }
`);
    const history = () => {
      const result = new EventHistory(ruleset);
      ['2024-06-01T10:00:00.000Z', '2024-06-04T10:00:00.000Z'].forEach((timestamp, index) => {
        const accepted = validateMessage({ type: 'track', event: 'Logged In', userId: 'u1', messageId: `m${index}`, timestamp }, index, 'test', new Date(0), { receivedAtKnown: false });
        if ('reason' in accepted) throw new Error(accepted.reason);
        result.add(accepted);
      });
      return result;
    };
    const options = { from: '2024-06-01', to: '2024-06-20' };
    const skipping = replay(history(), options);
    // Blocks end on the step's day: on the 7th the logins are 6 and 3 days old (one week), on the 8th 7 and 4 (two).
    expect(skipping.entities[0]!.firstFired).toEqual({ two_weeks: '2024-06-08T23:59:59.999Z' });
    expect(skipping).toStrictEqual(replay(history(), { ...options, reevaluateAll: true }));
  });
});

describe('the rules check', () => {
  function problemsOf(signals: string, top = ''): RulesProblem[] {
    try {
      rulesWith(signals, top);
    } catch (error) {
      expect(error).toBeInstanceOf(RulesError);
      return (error as RulesError).problems;
    }
    throw new Error('expected the rules to be rejected');
  }

  it.each<{ name: string; signals: string; path: string; message: RegExp }>([
    { name: 'count with distinct', signals: '  x: { event: A, count: days, distinct: who }', path: 'signals.x.count', message: /count: days cannot be combined with distinct/ },
    { name: 'count with sum', signals: '  x: { event: A, count: sessions, sum: rows }', path: 'signals.x.count', message: /count: sessions cannot be combined with sum/ },
    { name: 'an account counting days over its whole history', signals: '  x: { level: account, event: A, count: days }', path: 'signals.x.count', message: /account's whole history.*give window or since_signup/ },
    { name: 'an unknown count', signals: '  x: { event: A, count: weeks }', path: 'signals.x.count', message: /events.*days.*sessions/ },
    { name: 'per without a window', signals: '  x: { event: A, per: week }', path: 'signals.x.per', message: /give window/ },
    { name: 'per with since_signup', signals: '  x: { event: A, per: day, since_signup: 7d }', path: 'signals.x.per', message: /give window/ },
    { name: 'a window that is no whole number of weeks', signals: '  x: { event: A, per: week, window: 30d }', path: 'signals.x.window', message: /whole number of weeks/ },
    { name: 'more periods than the window holds', signals: '  x: { event: A, per: week, window: 4w, periods: 5 }', path: 'signals.x.periods', message: /never be met: the window holds 4 weeks/ },
    { name: 'a longer run than the window holds', signals: '  x: { event: A, per: day, window: 7d, consecutive: 8 }', path: 'signals.x.consecutive', message: /holds 7 days/ },
    { name: 'periods and consecutive', signals: '  x: { event: A, per: day, window: 7d, periods: 2, consecutive: 2 }', path: 'signals.x.consecutive', message: /either periods or consecutive/ },
    { name: 'periods without per', signals: '  x: { event: A, window: 7d, periods: 2 }', path: 'signals.x.periods', message: /give per/ },
    { name: 'consecutive without per', signals: '  x: { event: A, window: 7d, consecutive: 2 }', path: 'signals.x.consecutive', message: /give per/ },
    { name: 'time to value to an unknown signal', signals: '  x: { to: nope, within: 1d }', path: 'signals.x.to', message: /no signal named "nope"/ },
    { name: 'time to value from an unknown signal', signals: '  x: { from: nope, to: a, within: 1d }\n  a: { event: A }', path: 'signals.x.from', message: /no signal named "nope"/ },
    { name: 'time to value to a signal of another kind', signals: '  x: { to: idle, within: 1d }\n  idle: { inactive_for: 3d }', path: 'signals.x.to', message: /"idle" is not an event signal \(it is inactivity\): time to value reads the first event of an event signal/ },
    { name: 'time to value to a signal of another level', signals: '  x: { level: account, to: a, within: 1d }\n  a: { event: A }', path: 'signals.x.to', message: /"a" is a user signal, but this is an account signal/ },
    { name: 'time to value without within', signals: '  x: { to: a }\n  a: { event: A }', path: 'signals.x.within', message: /.+/ },
  ])('$name', ({ signals, path, message }) => {
    const problems = problemsOf(signals);
    const problem = problems.find((candidate) => candidate.path === path);
    expect(problem, `no problem at "${path}" in ${JSON.stringify(problems)}`).toBeDefined();
    expect(problem!.message).toMatch(message);
  });

  it('accepts an account counting days or sessions in a window, and sessions over its whole history', () => {
    expect(() => rulesWith("  x: { level: account, event: A, count: days, window: 7d }\n  y: { level: account, event: A, count: sessions }\n  z: { level: account, event: A, count: days, since_signup: 7d }")).not.toThrow();
  });
});

// ---------------------------------------------------------------------------------------------------------------

const propertyRules = rulesWith(
  `  active_days: { event: '*', count: days, window: 4w, at_least: 3, points: 5 }
  lifetime_days: { event: Logged In, count: days, at_least: 4, points: 5 }
  sessions: { event: '*', count: sessions, window: 7d, at_least: 2, points: 5 }
  lifetime_sessions: { event: Logged In, count: sessions, at_least: 3, points: 5 }
  weekly: { event: Logged In, window: 4w, per: week, at_least: 2, periods: 3, points: 5 }
  streak: { event: '*', window: 7d, per: day, consecutive: 3, points: 5 }
  fast_dashboard: { to: dashboards, within: 2d, points: 10 }
  invite_after_dashboard: { from: dashboards, to: invites, within: 1d, points: 10 }
  dashboards: { event: Dashboard Created, window: 7d }
  invites: { event: Teammate Invited, since_signup: 14d }`,
  signupTop,
);

const eventArb: fc.Arbitrary<UsageEvent> = fc
  .record({
    name: fc.constantFrom('Logged In', 'Dashboard Created', 'Teammate Invited', 'Data Exported'),
    // Half in the last week, to the minute, so sessions and consecutive days have something to join.
    offset: fc.oneof(fc.integer({ min: 0, max: 60 * 24 * 40 }), fc.integer({ min: 0, max: 60 * 24 * 7 })),
  })
  .map(({ name, offset }) => track(name, new Date(now.getTime() - offset * minuteMs).toISOString()));
const eventsAndShuffledArb = fc
  .array(eventArb, { maxLength: 120 })
  .chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length })));
const traitsArb = fc.record({ createdAt: fc.integer({ min: 0, max: 60 * 24 * 45 }).map((minutes) => new Date(now.getTime() - minutes * minuteMs).toISOString()) }, { requiredKeys: [] });

describe('properties of the new kinds', () => {
  it('evaluating the same facts twice gives the same result, and the order events arrive in does not matter', () => {
    fc.assert(
      fc.property(eventsAndShuffledArb, traitsArb, ([events, shuffled], traits) => {
        const facts = factsFor(events, propertyRules, { traits }, { dayOrder: 'first-seen' });
        const first = evaluate(facts, propertyRules, now);
        expect(evaluate(facts, propertyRules, now)).toEqual(first);
        expect(evaluate(factsFor(shuffled, propertyRules, { traits }, { dayOrder: 'first-seen' }), propertyRules, now)).toEqual(first);
      }),
    );
  });

  it('recomputing some days gives the lifetime total and the evaluation a rebuild gives', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 80 }), fc.array(eventArb, { maxLength: 40 }), traitsArb, (before, changes, traits) => {
        // The days `changes` touch are recomputed with their events added and the events of those days before removed.
        const changedDays = [...new Set(changes.map((event) => event.timestamp.slice(0, 10)))];
        const after = [...before.filter((event) => !changedDays.includes(event.timestamp.slice(0, 10)) || event.event === 'Logged In'), ...changes];
        const first = recomputeDays(propertyRules, eventsByDay(before, propertyRules.calendar), undefined);
        const replaced = first.days.filter((rollup) => changedDays.includes(rollup.day));
        const changedEvents = new Map(changedDays.map((day) => [day, after.filter((event) => event.timestamp.slice(0, 10) === day)]));
        const moved = recomputeDays(propertyRules, changedEvents, { totals: first.totals, changedDays, replaced });
        const rebuilt = recomputeDays(propertyRules, eventsByDay(after, propertyRules.calendar), undefined);
        for (const name of ['lifetime_days', 'lifetime_sessions', 'dashboards', 'invites']) {
          const measure = moved.totals.lifetime.measures[name];
          const expected = rebuilt.totals.lifetime.measures[name];
          expect(measure?.days ?? 0).toBe(expected?.days ?? 0);
          expect(measure?.sessions ?? 0).toBe(expected?.sessions ?? 0);
          expect(measure?.count ?? 0).toBe(expected?.count ?? 0);
        }
        const days = [...new Map([...first.days, ...moved.days].map((rollup) => [rollup.day, rollup])).values()];
        const movedFacts = userFacts({ id: 'u', traits, accountTraits: [], totals: moved.totals, days });
        const rebuiltFacts = userFacts({ id: 'u', traits, accountTraits: [], totals: rebuilt.totals, days: rebuilt.days });
        // The first events stay as they were when a day loses its first event (they only move earlier), so those
        // signals are compared only when no event was removed.
        const removedAny = before.length + changes.length !== after.length;
        const signals = (facts: EntityFacts) => {
          const { signals: all } = evaluate(facts, propertyRules, now);
          return Object.fromEntries(Object.entries(all).filter(([name]) => !removedAny || !['fast_dashboard', 'invite_after_dashboard'].includes(name)));
        };
        expect(signals(movedFacts)).toEqual(signals(rebuiltFacts));
      }),
    );
  });
});
