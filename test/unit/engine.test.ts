import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { leadEventDetailSchema, maxLeadEventDetailBytes } from '../../functions/core/lead-event';
import { buildLeadEvent, decide, idempotencyKey, type LeadState } from '../../functions/core/lead-state';
import {
  evaluate,
  maxDistinctValueLength,
  maxNameBytes,
  maxNamesPerDay,
  mergeRollups,
  rollupDay,
  type DayRollup,
  type EntityFacts,
  type Evaluation,
  type MemberFacts,
  type UsageEvent,
} from '../../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import { factsFor } from '../support/facts';
import { accountFacts } from '../../functions/core/facts';

// Every test evaluates at this fixed moment: midday, so "N days ago" lands on a well-defined UTC day.
const now = new Date('2024-06-15T12:00:00.000Z');
const dayMs = 86_400_000;
const hourMs = 3_600_000;
/** The ISO time `days` days (and `hours` hours) before now. */
const ago = (days: number, hours = 0) => new Date(now.getTime() - days * dayMs - hours * hourMs).toISOString();
const track = (event: string, when: string, properties: Record<string, unknown> = {}): UsageEvent => ({ type: 'track', event, properties, timestamp: when });
const page = (when: string, properties: Record<string, unknown> = {}): UsageEvent => ({ type: 'page', name: 'Pricing', properties, timestamp: when });
const times = <T = UsageEvent>(count: number, make: (index: number) => T): T[] => Array.from({ length: count }, (_, index) => make(index));

const examples = join(import.meta.dirname, '../../examples');
const example = (name: string) => loadRules(readFileSync(join(examples, name), 'utf8'), name);

/** A ruleset from signal lines (indented two spaces), with a tier nobody reaches unless the test gives its own. */
function rulesWith(signals: string, options: { top?: string; tiers?: string; rest?: string } = {}): Ruleset {
  return loadRules(
    `version: 1\n${options.top ?? ''}signals:\n${signals}\ntiers:\n${options.tiers ?? '  - { name: unreachable, min_score: 100000, route: sales }'}\n${options.rest ?? ''}`,
  );
}

type FactsOptions = Partial<Omit<EntityFacts, 'days' | 'lifetime'>>;

/** An account's facts from its members' facts, rolled up by the evaluator's builder; each member's lead state is its evaluation now. */
function accountFor(memberFacts: readonly EntityFacts[], ruleset: Ruleset, options: FactsOptions = {}): EntityFacts {
  const members = memberFacts.map((facts) => {
    const evaluation = evaluate(facts, ruleset, now);
    const lead = { tier: evaluation.tier, matched: matchedNames(evaluation) };
    return { id: facts.id, state: { lead, lifetime: facts.lifetime, firstSeen: facts.firstSeen, lastSeen: facts.lastSeen }, days: facts.days };
  });
  return { ...accountFacts({ id: 'acct-1', traits: {} }, members), ...options };
}

const matchedNames = (evaluation: Evaluation) => Object.keys(evaluation.signals).filter((name) => evaluation.signals[name]!.matched);

// ---------------------------------------------------------------------------------------------------------------

interface SignalCase {
  name: string;
  /** The signal under test, always named x, in YAML flow style; more signal lines may follow. */
  signal: string;
  top?: string;
  events?: UsageEvent[];
  facts?: FactsOptions;
  matched: boolean;
  value: number | string | boolean | null;
}

const signalCases: SignalCase[] = [
  // count and thresholds
  { name: 'count: one event meets the default at_least 1', signal: '{ event: Logged In }', events: [track('Logged In', ago(1))], matched: true, value: 1 },
  { name: 'count: no event does not', signal: '{ event: Logged In }', events: [track('Dashboard Created', ago(1))], matched: false, value: 0 },
  { name: 'count: other event names are not counted', signal: '{ event: Logged In, at_least: 2 }', events: [track('Logged In', ago(1)), track('Logged Out', ago(1))], matched: false, value: 1 },
  { name: 'at_least 3 with 2', signal: '{ event: Logged In, at_least: 3 }', events: times(2, () => track('Logged In', ago(1))), matched: false, value: 2 },
  { name: 'at_least 3 with 3', signal: '{ event: Logged In, at_least: 3 }', events: times(3, () => track('Logged In', ago(1))), matched: true, value: 3 },
  { name: 'at_most 2 with 2', signal: '{ event: Logged In, at_most: 2 }', events: times(2, () => track('Logged In', ago(1))), matched: true, value: 2 },
  { name: 'at_most 2 with 3', signal: '{ event: Logged In, at_most: 2 }', events: times(3, () => track('Logged In', ago(1))), matched: false, value: 3 },
  { name: 'exactly 2 with 2', signal: '{ event: Logged In, exactly: 2 }', events: times(2, () => track('Logged In', ago(1))), matched: true, value: 2 },
  { name: 'exactly 2 with 1', signal: '{ event: Logged In, exactly: 2 }', events: [track('Logged In', ago(1))], matched: false, value: 1 },
  { name: 'exactly 2 with 3', signal: '{ event: Logged In, exactly: 2 }', events: times(3, () => track('Logged In', ago(1))), matched: false, value: 3 },
  { name: '"did not do X": at_most 0 with none', signal: '{ event: Teammate Invited, at_most: 0 }', events: [track('Logged In', ago(1))], matched: true, value: 0 },
  { name: '"did not do X": at_most 0 with one', signal: '{ event: Teammate Invited, at_most: 0 }', events: [track('Teammate Invited', ago(40))], matched: false, value: 1 },
  { name: 'no window: the whole retained history counts', signal: '{ event: Logged In, at_least: 2 }', events: [track('Logged In', ago(300)), track('Logged In', ago(0))], matched: true, value: 2 },

  // rolling windows at day granularity
  { name: 'window 7d: today counts', signal: '{ event: Logged In, window: 7d }', events: [track('Logged In', ago(0))], matched: true, value: 1 },
  { name: 'window 7d: exactly 6 days ago counts', signal: '{ event: Logged In, window: 7d }', events: [track('Logged In', ago(6))], matched: true, value: 1 },
  { name: 'window 7d: exactly 7 days ago does not', signal: '{ event: Logged In, window: 7d }', events: [track('Logged In', ago(7))], matched: false, value: 0 },
  { name: 'window 7d: the first minute of the first day counts (6.5 days ago)', signal: '{ event: Logged In, window: 7d }', events: [track('Logged In', ago(6, 11.99))], matched: true, value: 1 },
  { name: 'window 7d: the last minute of the day before does not', signal: '{ event: Logged In, window: 7d }', events: [track('Logged In', ago(6, 12.01))], matched: false, value: 0 },
  { name: 'window 2w is 14 days', signal: '{ event: Logged In, window: 2w }', events: [track('Logged In', ago(13)), track('Logged In', ago(14))], matched: true, value: 1 },
  { name: 'window 1d is today only', signal: '{ event: Logged In, window: 1d }', events: [track('Logged In', ago(0, 11)), track('Logged In', ago(1))], matched: true, value: 1 },

  // since signup
  {
    name: 'since_signup 7d from first seen: the signup day and the 6 after count',
    signal: '{ event: Dashboard Created, since_signup: 7d, at_least: 2 }',
    events: [track('Dashboard Created', ago(10)), track('Dashboard Created', ago(4)), track('Dashboard Created', ago(3)), track('Dashboard Created', ago(0))],
    matched: true,
    value: 2,
  },
  {
    name: 'since_signup from a createdAt trait, before the first event seen',
    top: 'signup: { trait: createdAt }\n',
    signal: '{ event: Dashboard Created, since_signup: 7d }',
    events: [track('Dashboard Created', ago(14)), track('Dashboard Created', ago(13)), track('Dashboard Created', ago(12))],
    facts: { traits: { createdAt: ago(20) } },
    matched: true,
    value: 1,
  },
  {
    name: 'since_signup from createdAt in Unix seconds',
    top: 'signup: { trait: createdAt }\n',
    signal: '{ event: Dashboard Created, since_signup: 7d }',
    events: [track('Dashboard Created', ago(14)), track('Dashboard Created', ago(13))],
    facts: { traits: { createdAt: Math.floor(Date.parse(ago(20)) / 1000) } },
    matched: true,
    value: 1,
  },
  {
    name: 'since_signup from createdAt in milliseconds',
    top: 'signup: { trait: createdAt }\n',
    signal: '{ event: Dashboard Created, since_signup: 7d }',
    events: [track('Dashboard Created', ago(14)), track('Dashboard Created', ago(13))],
    facts: { traits: { createdAt: Date.parse(ago(20)) } },
    matched: true,
    value: 1,
  },
  {
    name: 'since_signup falls back to first seen when createdAt does not parse',
    top: 'signup: { trait: createdAt }\n',
    signal: '{ event: Dashboard Created, since_signup: 7d, at_least: 2 }',
    events: [track('Dashboard Created', ago(14)), track('Dashboard Created', ago(13))],
    facts: { traits: { createdAt: 'last tuesday' } },
    matched: true,
    value: 2,
  },
  {
    name: 'since_signup with no known signup counts nothing',
    signal: '{ event: Dashboard Created, since_signup: 7d, at_most: 0 }',
    events: [track('Dashboard Created', ago(1))],
    facts: { firstSeen: null },
    matched: true,
    value: 0,
  },

  // distinct and sum
  {
    name: 'distinct: the same invitee twice counts once; events without the property count nothing',
    signal: '{ event: Teammate Invited, distinct: invitee, at_least: 3 }',
    events: [
      track('Teammate Invited', ago(1), { invitee: 'a@example.com' }),
      track('Teammate Invited', ago(2), { invitee: 'b@example.com' }),
      track('Teammate Invited', ago(3), { invitee: 'a@example.com' }),
      track('Teammate Invited', ago(3), {}),
    ],
    matched: false,
    value: 2,
  },
  {
    name: 'distinct: three different invitees',
    signal: '{ event: Teammate Invited, distinct: invitee, at_least: 3 }',
    events: ['a', 'b', 'c'].map((who, index) => track('Teammate Invited', ago(index), { invitee: `${who}@example.com` })),
    matched: true,
    value: 3,
  },
  {
    name: 'distinct over a dotted property',
    signal: '{ event: Dashboard Shared, distinct: target.team }',
    events: [track('Dashboard Shared', ago(1), { target: { team: 'sales' } }), track('Dashboard Shared', ago(1), { target: { team: 'ops' } })],
    matched: true,
    value: 2,
  },
  {
    name: 'sum: adds numbers and ignores what is not a number',
    signal: '{ event: Data Exported, sum: rows, at_least: 350 }',
    events: [track('Data Exported', ago(1), { rows: 100 }), track('Data Exported', ago(2), { rows: 250 }), track('Data Exported', ago(2), { rows: '300' }), track('Data Exported', ago(2), {})],
    matched: true,
    value: 350,
  },
  {
    name: 'sum within a window',
    signal: '{ event: Data Exported, sum: rows, window: 7d, at_least: 350 }',
    events: [track('Data Exported', ago(1), { rows: 100 }), track('Data Exported', ago(8), { rows: 250 })],
    matched: false,
    value: 100,
  },

  // several event names, and any event
  { name: 'events: either name counts', signal: '{ events: [Dashboard Created, Dashboard Shared], at_least: 2 }', events: [track('Dashboard Created', ago(1)), track('Dashboard Shared', ago(1)), track('Logged In', ago(1))], matched: true, value: 2 },
  {
    name: "events: ['*'] counts every product event (track, page, screen), not identify or group",
    signal: "{ events: ['*'] }",
    events: [track('Logged In', ago(1)), page(ago(1)), { type: 'screen', name: 'Home', timestamp: ago(1) }, { type: 'identify', timestamp: ago(1) }, { type: 'group', timestamp: ago(1) }],
    matched: true,
    value: 3,
  },
  { name: 'pages match as Page Viewed', signal: '{ event: Page Viewed, where: { path: /pricing } }', events: [page(ago(1), { path: '/pricing' }), page(ago(1), { path: '/docs' })], matched: true, value: 1 },
  { name: 'screens match as Screen Viewed', signal: '{ event: Screen Viewed }', events: [{ type: 'screen', name: 'Home', timestamp: ago(1) }], matched: true, value: 1 },

  // inactivity
  { name: 'inactivity: 14 days without an event', signal: '{ inactive_for: 14d }', events: [track('Logged In', ago(14))], matched: true, value: 14 },
  { name: 'inactivity: 13 days and 23 hours is not 14 days', signal: '{ inactive_for: 14d }', events: [track('Logged In', ago(13, 23))], matched: false, value: 13 },
  { name: 'inactivity: never seen is not inactive', signal: '{ inactive_for: 14d }', events: [], matched: false, value: null },

  // signup age
  { name: 'signup_age: signed up 60 days ago (and an hour) is older than 60d', top: 'signup: { trait: createdAt }\n', signal: '{ signup_older_than: 60d }', facts: { traits: { createdAt: ago(60, 1) } }, matched: true, value: 60 },
  { name: 'signup_age: 59 days is not', top: 'signup: { trait: createdAt }\n', signal: '{ signup_older_than: 60d }', facts: { traits: { createdAt: ago(59, 23) } }, matched: false, value: 59 },
  { name: 'signup_age from first seen', signal: '{ signup_older_than: 30d }', events: [track('Logged In', ago(45)), track('Logged In', ago(1))], matched: true, value: 45 },
  { name: 'signup_age with no signup known', signal: '{ signup_older_than: 30d }', events: [], matched: false, value: null },

  // traits
  { name: 'trait of the user itself', signal: '{ trait: plan, is: free }', facts: { traits: { plan: 'free' } }, matched: true, value: 'free' },
  { name: 'trait that does not match shows the value seen', signal: '{ trait: plan, is: free }', facts: { traits: { plan: 'pro' } }, matched: false, value: 'pro' },
  { name: 'trait that is missing', signal: '{ trait: plan, is: free }', matched: false, value: null },
  { name: 'trait of: account (company size)', signal: '{ trait: employees, of: account, is: { gte: 50 } }', facts: { accountTraits: [{ employees: 120 }] }, matched: true, value: 120 },
  {
    name: 'trait of: account: any of the accounts matching counts',
    signal: '{ trait: industry, of: account, is: { in: [software, fintech] } }',
    facts: { accountTraits: [{ industry: 'retail' }, { industry: 'fintech' }] },
    matched: true,
    value: 'fintech',
  },
  { name: 'trait of: account with no account', signal: '{ trait: employees, of: account, is: { gte: 50 } }', facts: { traits: { employees: 5000 } }, matched: false, value: null },
  { name: 'trait of: account ignores the user’s own traits', signal: '{ trait: employees, of: account, is: { gte: 50 } }', facts: { traits: { employees: 5000 }, accountTraits: [{ employees: 10 }] }, matched: false, value: 10 },
];

describe('signals: every kind and option', () => {
  it.each(signalCases)('$name', ({ signal, top, events = [], facts, matched, value }) => {
    const ruleset = rulesWith(`  x: ${signal}`, top !== undefined ? { top } : {});
    const result = evaluate(factsFor(events, ruleset, facts), ruleset, now).signals['x'];
    expect(result).toMatchObject({ matched, value });
  });
});

describe('names from clients are plain keys', () => {
  it('counts events named like members of Object.prototype, and a signal may be called constructor', () => {
    const ruleset = rulesWith(`  constructor: { event: toString, at_least: 2, points: 5 }
  proto: { event: __proto__ }
  both: { all: [constructor, proto] }`);
    const events = ['toString', 'toString', '__proto__', 'constructor', 'hasOwnProperty'].map((name) => track(name, ago(0, 1)));
    const facts = factsFor(events, ruleset);
    expect({ ...facts.days[0]!.names }).toEqual({ toString: 2, ['__proto__']: 1, constructor: 1, hasOwnProperty: 1 });
    expect(Object.getPrototypeOf(facts.days[0]!.names)).toBe(Object.prototype);
    expect(facts.lifetime.names['toString']).toBe(2);
    const evaluation = evaluate(facts, ruleset, now);
    expect(evaluation.signals['constructor']).toMatchObject({ matched: true, value: 2, points: 5 });
    expect(evaluation.signals['proto']).toMatchObject({ matched: true, value: 1 });
    expect(evaluation.signals['both']).toMatchObject({ matched: true });
    expect(Object.hasOwn(Object, 'count')).toBe(false);
    const event = buildLeadEvent('acme', facts, evaluation, { kind: 'qualified', previousTier: null, tier: 'x', sequence: 1, notify: true, reasons: [] }, ruleset, now);
    expect(leadEventDetailSchema.parse(event.detail).context.topEvents).toContainEqual({ name: 'toString', count: 2 });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('where filters: every operator', () => {
  it.each<[string, string, Record<string, unknown>, boolean]>([
    ['a bare value means equals', '{ plan: pro }', { plan: 'pro' }, true],
    ['a bare value, not equal', '{ plan: pro }', { plan: 'free' }, false],
    ['a bare number is not the same string', '{ seats: 5 }', { seats: '5' }, false],
    ['a bare boolean', '{ trial: true }', { trial: true }, true],
    ['equals', '{ plan: { equals: pro } }', { plan: 'pro' }, true],
    ['equals, not equal', '{ plan: { equals: pro } }', { plan: 'pr' }, false],
    ['not_equals', '{ plan: { not_equals: free } }', { plan: 'pro' }, true],
    ['not_equals, equal', '{ plan: { not_equals: free } }', { plan: 'free' }, false],
    ['not_equals on a missing property holds', '{ plan: { not_equals: free } }', {}, true],
    ['in', '{ limit: { in: [seats, dashboards] } }', { limit: 'seats' }, true],
    ['in, not listed', '{ limit: { in: [seats, dashboards] } }', { limit: 'rows' }, false],
    ['in, missing', '{ limit: { in: [seats, dashboards] } }', {}, false],
    ['not_in', '{ limit: { not_in: [rows] } }', { limit: 'seats' }, true],
    ['not_in, listed', '{ limit: { not_in: [rows] } }', { limit: 'rows' }, false],
    ['gt', '{ rows: { gt: 1000 } }', { rows: 1001 }, true],
    ['gt, equal', '{ rows: { gt: 1000 } }', { rows: 1000 }, false],
    ['gte, equal', '{ rows: { gte: 1000 } }', { rows: 1000 }, true],
    ['gte, below', '{ rows: { gte: 1000 } }', { rows: 999 }, false],
    ['lt', '{ rows: { lt: 10 } }', { rows: 9 }, true],
    ['lt, equal', '{ rows: { lt: 10 } }', { rows: 10 }, false],
    ['lte, equal', '{ rows: { lte: 10 } }', { rows: 10 }, true],
    ['lte, above', '{ rows: { lte: 10 } }', { rows: 11 }, false],
    ['a numeric comparison on a number sent as a string holds', '{ rows: { gte: 10 } }', { rows: '100' }, true],
    ['a numeric comparison on a string that is no number never holds', '{ rows: { gte: 10 } }', { rows: 'many' }, false],
    ['a numeric comparison on a missing property never holds', '{ rows: { lt: 10 } }', {}, false],
    ['exists', '{ coupon: { exists: true } }', { coupon: 'SPRING' }, true],
    ['exists, null', '{ coupon: { exists: true } }', { coupon: null }, false],
    ['exists: false, missing', '{ coupon: { exists: false } }', {}, true],
    ['exists: false, present', '{ coupon: { exists: false } }', { coupon: 'SPRING' }, false],
    ['contains on a string', '{ path: { contains: pricing } }', { path: '/pricing/enterprise' }, true],
    ['contains on a string, absent', '{ path: { contains: pricing } }', { path: '/docs' }, false],
    ['contains on an array', '{ tags: { contains: beta } }', { tags: ['alpha', 'beta'] }, true],
    ['contains on an array, absent', '{ tags: { contains: beta } }', { tags: ['alpha', 'betamax'] }, false],
    ['contains on a number never holds', '{ count: { contains: "1" } }', { count: 1 }, false],
    ['a dotted name reaches a nested property', '{ plan.tier: pro }', { plan: { tier: 'pro' } }, true],
    ['a dotted name, deeper', '{ a.b.c: { gte: 3 } }', { a: { b: { c: 3 } } }, true],
    ['a dotted name through a missing object', '{ plan.tier: pro }', { plan: 'pro' }, false],
    ['a dotted name and contains on a nested array', '{ user.roles: { contains: admin } }', { user: { roles: ['admin'] } }, true],
    ['only own properties: toString is not a property', '{ toString: { exists: true } }', {}, false],
    ['only own properties: no prototype through a dotted name', '{ a.constructor: { exists: true } }', { a: {} }, false],
    ['every filter must hold', '{ plan: free, limit: { in: [seats] } }', { plan: 'free', limit: 'rows' }, false],
    ['every filter holds', '{ plan: free, limit: { in: [seats] } }', { plan: 'free', limit: 'seats' }, true],
  ])('%s', (_name, where, properties, expected) => {
    const ruleset = rulesWith(`  x: { event: Plan Limit Reached, where: ${where} }`);
    const facts = factsFor([track('Plan Limit Reached', ago(1), properties)], ruleset);
    expect(evaluate(facts, ruleset, now).signals['x']!.matched).toBe(expected);
  });

  it('filters pages and screens on their properties too', () => {
    const ruleset = rulesWith(`  x: { event: Page Viewed, where: { path: { contains: pricing } } }`);
    const facts = factsFor([page(ago(1), { path: '/pricing' }), page(ago(1), { path: '/home' })], ruleset);
    expect(evaluate(facts, ruleset, now).signals['x']).toMatchObject({ matched: true, value: 1 });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('combinations', () => {
  const ruleset = rulesWith(`  a: { event: A }
  b: { event: B }
  c: { event: C }
  a_and_b: { all: [a, b] }
  a_or_c: { any: [a, c] }
  not_c: { not: c }
  nested: { all: [a_or_c, not_c] }
  mixed: { all: [a], any: [b, c], not: nested }`);

  it.each<[string, string[], Record<string, boolean>]>([
    ['nothing', [], { a_and_b: false, a_or_c: false, not_c: true, nested: false, mixed: false }],
    ['a', ['A'], { a_and_b: false, a_or_c: true, not_c: true, nested: true, mixed: false }],
    ['a and b', ['A', 'B'], { a_and_b: true, a_or_c: true, not_c: true, nested: true, mixed: false }],
    ['a and c', ['A', 'C'], { a_and_b: false, a_or_c: true, not_c: false, nested: false, mixed: true }],
    ['c', ['C'], { a_and_b: false, a_or_c: true, not_c: false, nested: false, mixed: false }],
    ['a, b and c', ['A', 'B', 'C'], { a_and_b: true, a_or_c: true, not_c: false, nested: false, mixed: true }],
  ])('%s', (_name, names, expected) => {
    const evaluation = evaluate(factsFor(names.map((name) => track(name, ago(1))), ruleset, {}), ruleset, now);
    for (const [signal, matched] of Object.entries(expected)) {
      expect(evaluation.signals[signal], signal).toMatchObject({ matched, value: matched });
    }
  });

  it('are evaluated after their parts whatever order the file lists them in', () => {
    const reversed = rulesWith(`  both: { all: [either, a] }
  either: { any: [a, b] }
  a: { event: A }
  b: { event: B }`);
    expect(matchedNames(evaluate(factsFor([track('A', ago(1))], reversed), reversed, now)).sort()).toEqual(['a', 'both', 'either']);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('scoring', () => {
  const scored = (cap?: number) =>
    rulesWith(
      `  logins: { event: Logged In, points: 60 }
  dashboards: { event: Dashboard Created, points: 50 }
  big: { trait: employees, of: account, is: { gte: 50 }, points: 30 }
  pro_intent: { trait: visited_pricing, is: true, points: 5, category: engagement }
  hot_industry: { event: Industry Confirmed, points: 7, category: fit }
  idle: { inactive_for: 14d, points: -20 }
  never_invited: { event: Teammate Invited, at_most: 0, points: -20 }`,
      cap !== undefined ? { rest: `scoring: { cap: ${cap} }\n` } : {},
    );
  const events = [track('Logged In', ago(20)), track('Dashboard Created', ago(20))];
  const traits = { traits: { visited_pricing: true }, accountTraits: [{ employees: 120 }] };

  it('keeps engagement and fit apart, counts negative points, and gives no points to unmatched signals', () => {
    const ruleset = scored();
    const evaluation = evaluate(factsFor(events, ruleset, traits), ruleset, now);
    expect(evaluation.signals['big']).toMatchObject({ category: 'fit', points: 30 });
    expect(evaluation.signals['pro_intent']).toMatchObject({ category: 'engagement', points: 5 });
    expect(evaluation.signals['hot_industry']).toMatchObject({ category: 'fit', matched: false, points: 0 });
    expect(evaluation.signals['idle']).toMatchObject({ category: 'engagement', points: -20 });
    expect(evaluation.score).toEqual({ engagement: 60 + 50 + 5 - 20 - 20, fit: 30, total: 60 + 50 + 5 - 20 - 20 + 30 });
  });

  it('caps the total, not its parts', () => {
    const ruleset = scored(100);
    const evaluation = evaluate(factsFor([track('Logged In', ago(1)), track('Dashboard Created', ago(1)), track('Teammate Invited', ago(1))], ruleset, traits), ruleset, now);
    expect(evaluation.score).toEqual({ engagement: 115, fit: 30, total: 100 });
  });

  it('lets negative points take the total below zero', () => {
    const ruleset = scored(100);
    const evaluation = evaluate(factsFor([track('Page Viewed', ago(30))], ruleset), ruleset, now);
    expect(evaluation.score.total).toBe(-40);
  });

  describe('decay: points halve every half-life since the last matching event', () => {
    const ruleset = rulesWith('  x: { event: Plan Limit Reached, points: 20, decay: 7d }');
    it.each<[string, string[], number]>([
      ['just now', [ago(0)], 20],
      ['one half-life ago', [ago(7)], 10],
      ['two half-lives ago', [ago(14)], 5],
      ['half a half-life ago', [ago(3, 12)], 14.14],
      ['the last occurrence counts, not the first', [ago(14), ago(7)], 10],
    ])('%s', (_name, when, points) => {
      const evaluation = evaluate(factsFor(when.map((at) => track('Plan Limit Reached', at)), ruleset), ruleset, now);
      expect(evaluation.signals['x']).toMatchObject({ matched: true, points });
      expect(evaluation.score.total).toBe(points);
    });
    it('gives nothing when not matched', () => {
      expect(evaluate(factsFor([], ruleset), ruleset, now).signals['x']).toMatchObject({ matched: false, points: 0 });
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('tiers', () => {
  const ruleset = rulesWith(
    `  logins: { event: Logged In, points: 10 }
  dashboards: { event: Dashboard Created, points: 20 }
  invited: { event: Teammate Invited, points: 5 }
  team: { active_users: 7d, at_least: 2, points: 25 }`,
    {
      tiers: `  - { name: hot, min_score: 30, require: [invited], route: sales }
  - { name: team, level: account, min_score: 25, route: sales }
  - { name: warm, level: user, min_score: 25, route: nurture }
  - { name: curious, require: [logins], route: nurture }`,
    },
  );
  const tierOf = (names: string[], options: FactsOptions = {}) => {
    const evaluation = evaluate(factsFor(names.map((name) => track(name, ago(1))), ruleset, options), ruleset, now);
    return [evaluation.tier, evaluation.route];
  };

  it.each<[string, string[], (string | null)[]]>([
    ['the first tier met wins (top-down)', ['Logged In', 'Dashboard Created', 'Teammate Invited'], ['hot', 'sales']],
    ['a score high enough without the required signal falls through', ['Logged In', 'Dashboard Created'], ['warm', 'nurture']],
    ['a required signal without the score falls through', ['Logged In', 'Teammate Invited'], ['curious', 'nurture']],
    ['a tier with no min_score needs only its required signals', ['Logged In'], ['curious', 'nurture']],
    ['no tier at all', ['Teammate Invited'], [null, null]],
  ])('%s', (_name, names, expected) => {
    expect(tierOf(names)).toEqual(expected);
  });

  it('tiers for users are skipped for accounts and tiers for accounts are skipped for users', () => {
    const members = [
      factsFor([track('Dashboard Created', ago(1)), track('Logged In', ago(1))], ruleset, { id: 'u1' }),
      factsFor([track('Logged In', ago(2))], ruleset, { id: 'u2' }),
    ];
    expect(evaluate(members[0]!, ruleset, now)).toMatchObject({ tier: 'warm', score: { total: 30 } });
    const account = evaluate(accountFor(members, ruleset), ruleset, now);
    // Account signals only: active_users (25); user signals (logins, dashboards) are not the account's.
    expect(Object.keys(account.signals)).toEqual(['team']);
    expect(account).toMatchObject({ tier: 'team', route: 'sales', score: { total: 25 } });
  });

  it('a tier for both (the default) is open to users and accounts alike', () => {
    const both = rulesWith(
      `  logins: { event: Logged In, points: 10 }
  busy: { event: Logged In, level: account, at_least: 2, points: 10 }`,
      { tiers: '  - { name: active, min_score: 10, route: nurture }' },
    );
    const members = [factsFor([track('Logged In', ago(1))], both, { id: 'u1' }), factsFor([track('Logged In', ago(2))], both, { id: 'u2' })];
    expect(evaluate(members[0]!, both, now).tier).toBe('active');
    expect(evaluate(accountFor(members, both), both, now)).toMatchObject({ tier: 'active', signals: { busy: { matched: true, value: 2 } } });
    expect(evaluate(accountFor(members.slice(0, 1), both), both, now).tier).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('accounts: rollups over members', () => {
  const ruleset = rulesWith(`  invited_user: { event: Teammate Invited, distinct: invitee, at_least: 2 }
  builds: { event: Dashboard Created, at_least: 2 }
  active_week: { event: Logged In, window: 7d }
  account_invites: { event: Teammate Invited, distinct: invitee, at_least: 3, level: account, points: 20 }
  account_dashboards: { event: Dashboard Created, at_least: 4, window: 30d, level: account, points: 10 }
  account_rows: { event: Data Exported, sum: rows, level: account }
  active_3: { active_users: 7d, at_least: 3, points: 15 }
  active_2: { active_users: 7d, exactly: 2 }
  any_builder: { members_matching: builds }
  two_builders: { members_matching: builds, at_least: 2 }
  all_active: { members_matching: active_week, every: true }
  best_champion: { best_member_tier: champion }
  best_fan: { best_member_tier: fan }
  big: { trait: employees, is: { gte: 50 }, level: account, points: 5 }
  idle: { inactive_for: 14d, level: account }
  team_ready: { all: [account_invites, active_3], level: account }`, {
    tiers: `  - { name: champion, level: user, require: [invited_user, builds], route: sales }
  - { name: fan, level: user, require: [builds], route: nurture }
  - { name: team, level: account, min_score: 30, require: [team_ready], route: sales }`,
  });

  const alice = factsFor(
    [
      track('Teammate Invited', ago(1), { invitee: 'x@example.com' }),
      track('Teammate Invited', ago(1), { invitee: 'y@example.com' }),
      track('Dashboard Created', ago(1)),
      track('Dashboard Created', ago(2)),
      track('Logged In', ago(1)),
      track('Data Exported', ago(1), { rows: 100 }),
    ],
    ruleset,
    { id: 'alice' },
  );
  const bob = factsFor(
    [track('Teammate Invited', ago(1), { invitee: 'y@example.com' }), track('Teammate Invited', ago(3), { invitee: 'z@example.com' }), track('Dashboard Created', ago(1)), track('Logged In', ago(5)), track('Data Exported', ago(1), { rows: 250 })],
    ruleset,
    { id: 'bob' },
  );
  const carol = factsFor([track('Dashboard Created', ago(40)), track('Dashboard Created', ago(40)), track('Logged In', ago(20))], ruleset, { id: 'carol' });

  it('mergeRollups adds counts and sums, unions distinct values and keeps the latest times', () => {
    const day = ago(1).slice(0, 10);
    const merged = mergeRollups(day, [alice, bob].map((facts) => facts.days.find((candidate) => candidate.day === day)!));
    expect(merged.day).toBe(day);
    expect(merged.activity).toBe(5 + 3);
    expect(merged.names).toEqual({ 'Teammate Invited': 3, 'Dashboard Created': 2, 'Logged In': 1, 'Data Exported': 2 });
    expect(merged.measures['account_invites']).toMatchObject({ count: 3, distinct: ['x@example.com', 'y@example.com'] });
    expect(merged.measures['account_rows']).toMatchObject({ count: 2, sum: 350 });
    expect(merged.lastActivity).toBe(ago(1));
    expect(mergeRollups(day, [])).toEqual({ day, activity: 0, names: {}, measures: {} });
  });

  it('account event signals count across members: neither member alone has 3 invitees or 4 dashboards', () => {
    expect(evaluate(alice, ruleset, now).signals['invited_user']).toMatchObject({ matched: true, value: 2 });
    expect(alice.lifetime.measures['account_invites']!.distinct).toHaveLength(2);
    const account = evaluate(accountFor([alice, bob, carol], ruleset, { traits: { employees: 80 } }), ruleset, now);
    expect(account.signals['account_invites']).toMatchObject({ matched: true, value: 3 });
    expect(account.signals['account_dashboards']).toMatchObject({ matched: false, value: 3 });
    expect(account.signals['account_rows']).toMatchObject({ matched: true, value: 350 });
    expect(account.signals['big']).toMatchObject({ matched: true, value: 80, category: 'fit' });
  });

  it.each<[string, EntityFacts[], Record<string, { matched: boolean; value: unknown }>]>([
    [
      'three members, two active this week, two builders, a champion',
      [alice, bob, carol],
      {
        active_3: { matched: false, value: 2 },
        active_2: { matched: true, value: 2 },
        any_builder: { matched: true, value: 2 },
        two_builders: { matched: true, value: 2 },
        all_active: { matched: false, value: 2 },
        best_champion: { matched: true, value: 'champion' },
        best_fan: { matched: true, value: 'champion' },
        idle: { matched: false, value: 1 },
      },
    ],
    [
      'two active members: every member matches',
      [alice, bob],
      { all_active: { matched: true, value: 2 }, best_champion: { matched: true, value: 'champion' } },
    ],
    [
      'only a fan: best_member_tier champion is not met, fan is',
      [carol],
      { best_champion: { matched: false, value: 'fan' }, best_fan: { matched: true, value: 'fan' }, any_builder: { matched: true, value: 1 } },
    ],
    [
      'no member has a tier',
      [bob],
      { best_champion: { matched: false, value: null }, best_fan: { matched: false, value: null }, any_builder: { matched: false, value: 0 } },
    ],
    [
      'a lone inactive member',
      [carol],
      { active_2: { matched: false, value: 0 }, all_active: { matched: false, value: 0 }, best_fan: { matched: true, value: 'fan' }, idle: { matched: true, value: 20 } },
    ],
    [
      'no members: every is not vacuously true and there is no best tier',
      [],
      { all_active: { matched: false, value: 0 }, best_fan: { matched: false, value: null }, any_builder: { matched: false, value: 0 } },
    ],
  ])('%s', (_name, members, expected) => {
    const account = evaluate(accountFor(members, ruleset), ruleset, now);
    for (const [name, result] of Object.entries(expected)) expect(account.signals[name], name).toMatchObject(result);
  });

  it('an account qualifies for an account tier from its members together', () => {
    const dave = factsFor([track('Logged In', ago(2)), track('Teammate Invited', ago(2), { invitee: 'w@example.com' })], ruleset, { id: 'dave' });
    const account = evaluate(accountFor([alice, bob, dave], ruleset), ruleset, now);
    expect(account.signals['team_ready']).toMatchObject({ matched: true });
    expect(account).toMatchObject({ tier: 'team', route: 'sales', score: { total: 35 } });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('decide: the lead state machine', () => {
  const ruleset = rulesWith('  logins: { event: Logged In, points: 10 }', {
    tiers: `  - { name: hot, min_score: 30, route: sales }
  - { name: warm, min_score: 10, route: nurture }`,
    rest: 'policy: { notify: [qualified, disqualified], cooldown: 3d }\n',
  });
  const evaluation = (tier: string | null, total = tier === 'hot' ? 30 : tier === 'warm' ? 10 : 0): Evaluation => ({
    signals: { logins: { matched: total > 0, value: total / 10, points: total, category: 'engagement' } },
    score: { total, engagement: total, fit: 0 },
    tier,
    route: tier === 'hot' ? 'sales' : tier === 'warm' ? 'nurture' : null,
    owner: null,
  });
  const facts = { lastSeen: ago(1) };
  const later = (days: number) => new Date(now.getTime() + days * dayMs);

  it('walks none -> tier -> tier -> none, numbering transitions and applying the notify policy', () => {
    const first = decide(undefined, evaluation('warm'), facts, ruleset, now);
    expect(first.transition).toMatchObject({ kind: 'qualified', previousTier: null, tier: 'warm', sequence: 1, notify: true });
    expect(first.state).toMatchObject({ tier: 'warm', route: 'nurture', score: 10, since: now.toISOString(), sequence: 1, rulesetVersion: ruleset.version, matched: ['logins'], lastSeen: ago(1) });
    expect(first.state.history).toHaveLength(1);

    const changed = decide(first.state, evaluation('hot'), facts, ruleset, later(1));
    expect(changed.transition).toMatchObject({ kind: 'tier_changed', previousTier: 'warm', tier: 'hot', sequence: 2, notify: false });
    expect(changed.state).toMatchObject({ tier: 'hot', route: 'sales', since: later(1).toISOString() });

    const dropped = decide(changed.state, evaluation(null), facts, ruleset, later(2));
    expect(dropped.transition).toMatchObject({ kind: 'disqualified', previousTier: 'hot', tier: null, sequence: 3, notify: true });
    expect(dropped.state).toMatchObject({ tier: null, route: null, cooldownUntil: later(5).toISOString() });
    expect(dropped.transition!.reasons.join('\n')).toContain('score 0 < 30 needed for hot');
    expect(dropped.state.history.map((entry) => [entry.previousTier, entry.tier])).toEqual([
      [null, 'warm'],
      ['warm', 'hot'],
      ['hot', null],
    ]);
  });

  it('makes no transition while the tier stays the same, even under a new ruleset version or a new score', () => {
    const first = decide(undefined, evaluation('warm'), facts, ruleset, now);
    const changedRules = loadRules(`version: 1\nsignals:\n  logins: { event: Logged In, points: 12 }\ntiers:\n  - { name: hot, min_score: 30, route: sales }\n  - { name: warm, min_score: 10, route: nurture }\n`);
    expect(changedRules.version).not.toBe(ruleset.version);
    const again = decide(first.state, evaluation('warm', 12), facts, changedRules, later(1));
    expect(again.transition).toBeUndefined();
    expect(again.state).toMatchObject({ tier: 'warm', sequence: 1, since: now.toISOString(), score: 12, rulesetVersion: changedRules.version, evaluatedAt: later(1).toISOString() });
    expect(again.state.history).toEqual(first.state.history);
  });

  it('does nothing for an entity that never qualifies', () => {
    const result = decide(undefined, evaluation(null), facts, ruleset, now);
    expect(result.transition).toBeUndefined();
    expect(result.state).toMatchObject({ tier: null, sequence: 0, history: [] });
  });

  it('blocks re-qualification during the cooldown, then lets it through', () => {
    const qualified = decide(undefined, evaluation('hot'), facts, ruleset, now).state;
    const disqualified = decide(qualified, evaluation(null), facts, ruleset, later(1)).state;
    expect(disqualified.cooldownUntil).toBe(later(4).toISOString());

    const blocked = decide(disqualified, evaluation('hot'), facts, ruleset, later(3.9));
    expect(blocked.transition).toBeUndefined();
    expect(blocked.state).toMatchObject({ tier: null, route: null, sequence: 2 });

    const back = decide(blocked.state, evaluation('hot'), facts, ruleset, later(4));
    expect(back.transition).toMatchObject({ kind: 'qualified', tier: 'hot', sequence: 3 });
  });

  it('has no cooldown when the policy sets none, and publishes every kind by default', () => {
    const plain = rulesWith('  logins: { event: Logged In, points: 10 }', { tiers: '  - { name: warm, min_score: 10, route: nurture }' });
    const qualified = decide(undefined, evaluation('warm'), facts, plain, now);
    const disqualified = decide(qualified.state, evaluation(null), facts, plain, later(1));
    expect(disqualified.state.cooldownUntil).toBeNull();
    const back = decide(disqualified.state, evaluation('warm'), facts, plain, later(1.01));
    expect([qualified, disqualified, back].map((step) => [step.transition?.kind, step.transition?.notify])).toEqual([
      ['qualified', true],
      ['disqualified', true],
      ['qualified', true],
    ]);
  });

  it('gives the same idempotency key to every delivery of one transition, and a new key to the next', () => {
    const first = decide(undefined, evaluation('warm'), facts, ruleset, now);
    // Deciding again from the same saved state (a crash before the state was saved) is the same transition.
    const retried = decide(undefined, evaluation('warm'), facts, ruleset, later(0.001));
    expect(retried.transition!.sequence).toBe(first.transition!.sequence);
    const entityFacts = factsFor([track('Logged In', ago(1))], ruleset, { id: 'user-9' });
    const key = (sequence: number, workspace = 'acme') => idempotencyKey(workspace, { type: 'user', id: 'user-9' }, sequence);
    const event = buildLeadEvent('acme', entityFacts, evaluation('warm'), first.transition!, ruleset, now);
    const redelivered = buildLeadEvent('acme', entityFacts, evaluation('warm'), retried.transition!, ruleset, later(0.001));
    expect(event.detail.idempotencyKey).toBe(key(1));
    expect(redelivered.detail.idempotencyKey).toBe(event.detail.idempotencyKey);
    expect(key(2)).not.toBe(key(1));
    expect(key(1, 'other')).not.toBe(key(1));
    expect(idempotencyKey('acme', { type: 'account', id: 'user-9' }, 1)).not.toBe(key(1));
    // A visitor's facts are a user's (type user): its key is a visitor's, not that of a user with the same id, which
    // consumers and destinations would otherwise drop as a duplicate of the other's transition.
    const asVisitor = buildLeadEvent('acme', entityFacts, evaluation('warm'), first.transition!, ruleset, now, 'visitor');
    expect(asVisitor.detail.idempotencyKey).toBe(idempotencyKey('acme', { type: 'visitor', id: 'user-9' }, 1));
    expect(asVisitor.detail.idempotencyKey).not.toBe(event.detail.idempotencyKey);
  });

  it('keeps at most 20 history entries', () => {
    let state: LeadState | undefined;
    for (let step = 0; step < 30; step++) state = decide(state, evaluation(step % 2 === 0 ? 'warm' : 'hot'), facts, ruleset, later(step)).state;
    expect(state!.sequence).toBe(30);
    expect(state!.history).toHaveLength(20);
    expect(state!.history.at(-1)!.at).toBe(later(29).toISOString());
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('buildLeadEvent', () => {
  const ruleset = example('team-accounts.rules.yaml');

  it('builds a detail that validates against the lead event contract, with the context a salesperson needs', () => {
    const events = [
      ...times(5, (index) => track('Logged In', ago(index % 3))),
      ...times(3, (index) => track('Dashboard Created', ago(index))),
      ...['a', 'b', 'c'].map((who) => track('Teammate Invited', ago(2), { invitee: `${who}@example.com` })),
      track('Logged In', ago(45)),
    ];
    const facts = factsFor(events, ruleset, {
      id: 'user-42',
      traits: { name: 'Ada Okafor', email: 'ada@example.com', plan: 'free', createdAt: ago(50) },
      accountTraits: [{ name: 'Acme Analytics', employees: 120 }],
    });
    const evaluation = evaluate(facts, ruleset, now);
    expect(evaluation.tier).toBe('champion');
    const { transition } = decide(undefined, evaluation, facts, ruleset, now);
    const event = buildLeadEvent('acme', facts, evaluation, transition!, ruleset, now);

    expect(event.detailType).toBe('Lead Qualified');
    const detail = leadEventDetailSchema.parse(event.detail);
    expect(detail).toMatchObject({
      workspace: 'acme',
      entity: { type: 'user', id: 'user-42' },
      tier: 'champion',
      previousTier: null,
      route: 'sales',
      rulesetVersion: ruleset.version,
      evaluatedAt: now.toISOString(),
      score: evaluation.score,
      context: {
        traits: { name: 'Ada Okafor', email: 'ada@example.com', company: 'Acme Analytics', plan: 'free' },
        firstSeen: ago(45),
        lastSeen: ago(0),
      },
    });
    expect(detail.signals).toEqual(expect.arrayContaining([{ name: 'invited_three', value: 3, points: 25 }]));
    expect(detail.signals.every((signal) => evaluation.signals[signal.name]!.matched)).toBe(true);
    // Top events are those within the longest window (30 days), most frequent first.
    expect(detail.context.topEvents).toEqual([
      { name: 'Logged In', count: 5 },
      { name: 'Dashboard Created', count: 3 },
      { name: 'Teammate Invited', count: 3 },
    ]);
    expect(detail.context.members).toBeUndefined();
    expect(detail.reasons[0]).toMatch(/^champion: score \d+ >= 35, with champion_behaviour$/);
  });

  it('stays under 64 KB for an account with 5,000 members with long ids', () => {
    const members: MemberFacts[] = times(5000, (index) => ({ id: `member-${index}-${'x'.repeat(180)}`, lastSeen: ago(index % 10), tier: index % 7 === 0 ? 'champion' : null, matched: ['builds_dashboards', 'active_this_week'] }));
    const days: DayRollup[] = times(30, (index) => ({
      day: ago(index).slice(0, 10),
      activity: 5000,
      names: Object.fromEntries(times(50, (n) => [`Event ${n} ${'y'.repeat(150)}`, 100 + n] as const)),
      measures: {},
    }));
    const facts: EntityFacts = {
      type: 'account',
      id: 'acct-big',
      traits: { name: 'Big Co', employees: 10_000 },
      accountTraits: [],
      firstSeen: ago(29),
      lastSeen: ago(0),
      days,
      lifetime: mergeRollups('lifetime', days),
      members,
    };
    const evaluation = evaluate(facts, ruleset, now);
    const { transition } = decide(undefined, evaluation, facts, ruleset, now);
    expect(transition).toBeDefined();
    const event = buildLeadEvent('acme', facts, evaluation, transition!, ruleset, now);
    const detail = leadEventDetailSchema.parse(event.detail);
    expect(Buffer.byteLength(JSON.stringify(event.detail))).toBeLessThan(maxLeadEventDetailBytes);
    expect(detail.context.members!.length).toBeGreaterThan(0);
    expect(detail.context.members!.length).toBeLessThanOrEqual(50);
    expect(detail.context.topEvents).toHaveLength(10);
    expect(detail.signals.find((signal) => signal.name === 'active_users_7d')).toEqual({ name: 'active_users_7d', value: 3500, points: 20 });
  });

  it.each<[string, string | null, string | null, string]>([
    ['qualified', null, 'champion', 'Lead Qualified'],
    ['tier changed', 'engaged-user', 'champion', 'Lead Tier Changed'],
    ['disqualified', 'champion', null, 'Lead Disqualified'],
  ])('%s has detail-type %s', (_name, previousTier, tier, detailType) => {
    const facts = factsFor([track('Logged In', ago(1))], ruleset);
    const evaluation = evaluate(facts, ruleset, now);
    const event = buildLeadEvent('acme', facts, { ...evaluation, tier, route: tier === null ? null : 'sales' }, { kind: 'qualified', previousTier, tier, sequence: 4, notify: true, reasons: [] }, ruleset, now);
    expect(event.detailType).toBe(detailType);
    // A disqualification is routed to whoever worked the tier the lead left.
    const route = tier === null ? ruleset.file.tiers.find((candidate) => candidate.name === previousTier)!.route : 'sales';
    expect(leadEventDetailSchema.parse(event.detail)).toMatchObject({ tier, previousTier, route });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('the PQL playbooks the example rules files express, as rules', () => {
  const activation = example('activation.rules.yaml');
  const planLimits = example('plan-limits.rules.yaml');
  const teams = example('team-accounts.rules.yaml');
  const signupTraits = (daysAgo: number) => ({ createdAt: ago(daysAgo), plan: 'free', email: 'lead@example.com', name: 'Lead' });

  /** A user who signed up 20 days ago and did the activation steps in the first week. */
  const activationEvents = (steps: { dashboards?: number; invites?: number; sources?: number }) => [
    ...times(steps.dashboards ?? 2, (index) => track('Dashboard Created', ago(19, index))),
    ...times(steps.invites ?? 1, (index) => track('Teammate Invited', ago(17, index), { invitee: `t${index}@example.com` })),
    ...times(steps.sources ?? 1, () => track('Data Source Connected', ago(15), { source: 'postgres' })),
    track('Logged In', ago(20)),
  ];
  const keyFeatureAndIntent = [track('Dashboard Shared', ago(3)), track('Plan Limit Reached', ago(2), { limit: 'seats', plan: 'free' }), track('Logged In', ago(1))];

  it('article 3: "created 2 dashboards + invited 1 teammate + connected a data source within 7 days" is activation', () => {
    const facts = factsFor(activationEvents({}), activation, { traits: signupTraits(20) });
    const evaluation = evaluate(facts, activation, now);
    expect(evaluation.signals['activated']).toMatchObject({ matched: true });
    for (const missing of [{ dashboards: 1 }, { invites: 0 }, { sources: 0 }]) {
      const partial = evaluate(factsFor(activationEvents(missing), activation, { traits: signupTraits(20) }), activation, now);
      expect(partial.signals['activated'], JSON.stringify(missing)).toMatchObject({ matched: false });
    }
    // The same steps after the first week are not activation.
    const late = evaluate(factsFor(activationEvents({}), activation, { traits: signupTraits(30) }), activation, now);
    expect(late.signals['activated']).toMatchObject({ matched: false });
  });

  it('article 3: PQL = (activation) AND (key feature) AND (team intent), routed PQL-A to sales, PQL-B to nurture', () => {
    const pql = evaluate(factsFor([...activationEvents({}), ...keyFeatureAndIntent], activation, { traits: signupTraits(20), accountTraits: [{ employees: 200, industry: 'software' }] }), activation, now);
    expect(pql.signals['pql_formula']).toMatchObject({ matched: true });
    expect(pql).toMatchObject({ tier: 'PQL-A', route: 'sales' });

    // Key feature and intent without activation: a weaker lead for lifecycle nurture, not sales.
    const nurture = evaluate(factsFor([track('Dashboard Created', ago(19)), ...keyFeatureAndIntent, track('Data Exported', ago(1))], activation, { traits: signupTraits(20), accountTraits: [{ employees: 200, industry: 'software' }] }), activation, now);
    expect(nurture.signals['pql_formula']).toMatchObject({ matched: false });
    expect(nurture).toMatchObject({ tier: 'PQL-B', route: 'nurture' });

    // Activation and intent without the key feature is not a PQL.
    const noKeyFeature = evaluate(factsFor([...activationEvents({}), track('Plan Limit Reached', ago(2), { limit: 'seats', plan: 'free' })], activation, { traits: signupTraits(20) }), activation, now);
    expect(noKeyFeature.tier).toBeNull();
  });

  it('article 4: "a signup is not a PQL"; signup + the key activation action is', () => {
    const signupOnly = evaluate(factsFor([track('Logged In', ago(0))], activation, { traits: signupTraits(0), accountTraits: [{ employees: 5000, industry: 'fintech' }] }), activation, now);
    expect(signupOnly.tier).toBeNull();
    const activated = evaluate(factsFor([...activationEvents({}), ...keyFeatureAndIntent], activation, { traits: signupTraits(20) }), activation, now);
    expect(activated.tier).not.toBeNull();
  });

  it('article 5: "signed up 60 days ago, used the product twice, no login for 3 weeks" is not a PQL even with perfect firmographics', () => {
    const facts = factsFor([track('Logged In', ago(58)), track('Dashboard Created', ago(21))], activation, {
      traits: signupTraits(60),
      accountTraits: [{ employees: 5000, industry: 'software', plan: 'free' }],
    });
    const evaluation = evaluate(facts, activation, now);
    expect(evaluation.signals['company_size']).toMatchObject({ matched: true, value: 5000 });
    expect(evaluation.signals['target_industry']).toMatchObject({ matched: true, value: 'software' });
    expect(evaluation.signals['inactive_14d']).toMatchObject({ matched: true, value: 21 });
    expect(evaluation.signals['stale_signup']).toMatchObject({ matched: true });
    expect(evaluation.score.fit).toBe(20);
    expect(evaluation.score.total).toBeLessThan(0);
    expect(evaluation.tier).toBeNull();
  });

  it('article 5: "logged in 10+ times in a week"', () => {
    const logins = (count: number, spreadDays: number) => times(count, (index) => track('Logged In', ago(index % spreadDays)));
    const check = (events: UsageEvent[]) => evaluate(factsFor(events, planLimits, { traits: { plan: 'free' } }), planLimits, now).signals['frequent_logins'];
    expect(check(logins(10, 7))).toMatchObject({ matched: true, value: 10 });
    expect(check(logins(9, 7))).toMatchObject({ matched: false, value: 9 });
    // Ten logins over eight days are not ten in a week.
    expect(check(times(10, (index) => track('Logged In', ago(index < 9 ? index % 7 : 7))))).toMatchObject({ matched: false, value: 9 });
  });

  it('article 5: "invited 3+ team members" (distinct people, by a user or across an account)', () => {
    const invites = (who: string[]) => who.map((name, index) => track('Teammate Invited', ago(index + 1), { invitee: `${name}@example.com` }));
    expect(evaluate(factsFor(invites(['a', 'b', 'c']), teams), teams, now).signals['invited_three']).toMatchObject({ matched: true, value: 3 });
    expect(evaluate(factsFor(invites(['a', 'a', 'a', 'b']), teams), teams, now).signals['invited_three']).toMatchObject({ matched: false, value: 2 });
    const account = accountFor([factsFor(invites(['a', 'b']), teams, { id: 'u1' }), factsFor(invites(['b', 'c']), teams, { id: 'u2' })], teams);
    expect(evaluate(account, teams, now).signals['team_invites']).toMatchObject({ matched: true, value: 3 });
  });

  it('article 5: "user hit their free tier limits" (a where filter on the plan and limit)', () => {
    const hit = (properties: Record<string, unknown>) => evaluate(factsFor([track('Plan Limit Reached', ago(1), properties)], planLimits, { traits: { plan: 'free' } }), planLimits, now).signals['hit_free_limit'];
    // 30 points, decayed for one day with a 7-day half-life.
    expect(hit({ limit: 'seats', plan: 'free', usage: 3, max: 3 })).toMatchObject({ matched: true, points: Math.round(30 * 0.5 ** (1 / 7) * 100) / 100 });
    expect(hit({ limit: 'seats', plan: 'team' })).toMatchObject({ matched: false });
    expect(hit({ limit: 'rows', plan: 'free' })).toMatchObject({ matched: false });
  });

  it('article 5: "activated an advanced feature" / article 2: "engaging with a premium or gated feature"', () => {
    const used = evaluate(factsFor([track('Premium Feature Used', ago(1), { feature: 'sso' }), track('Premium Feature Used', ago(2), { feature: 'audit_log' })], planLimits, { traits: { plan: 'free' } }), planLimits, now);
    expect(matchedNames(used)).toEqual(expect.arrayContaining(['premium_feature_used', 'premium_features_tried', 'wants_sso']));
  });

  it('article 5: "exported data (they are building a workflow around the product)"', () => {
    const exported = evaluate(factsFor([track('Data Exported', ago(3), { format: 'csv', rows: 120_000 })], planLimits, { traits: { plan: 'free' } }), planLimits, now);
    expect(exported.signals['exported_data']).toMatchObject({ matched: true, value: 1 });
    expect(exported.signals['exported_rows']).toMatchObject({ matched: true, value: 120_000 });
  });

  it('article 5: a free user with limits, premium features and 10+ logins a week is upgrade-ready for sales; a paying one is not', () => {
    const busy = [
      ...times(12, (index) => track('Logged In', ago(index % 6))),
      track('Plan Limit Reached', ago(1), { limit: 'dashboards', plan: 'free', usage: 3, max: 3 }),
      track('Premium Feature Used', ago(1), { feature: 'scheduled_reports' }),
      track('Premium Feature Used', ago(2), { feature: 'api_access' }),
    ];
    expect(evaluate(factsFor(busy, planLimits, { traits: { plan: 'free' } }), planLimits, now)).toMatchObject({ tier: 'upgrade-ready', route: 'sales' });
    expect(evaluate(factsFor(busy, planLimits, { traits: { plan: 'business' } }), planLimits, now).tier).toBeNull();
  });

  it('article 2: usage thresholds ("created 3 projects", "sent 10 messages", "processed 1 payment") and "integrating with another tool"', () => {
    const ruleset = rulesWith(
      `  three_projects: { event: Project Created, at_least: 3, points: 10 }
  ten_messages: { event: Message Sent, window: 30d, at_least: 10, points: 10 }
  one_payment: { event: Payment Processed, where: { status: succeeded }, points: 20 }
  integrated: { event: Data Source Connected, points: 10 }`,
      { tiers: '  - { name: pql, min_score: 40, route: sales }' },
    );
    const events = [
      ...times(3, () => track('Project Created', ago(5))),
      ...times(10, (index) => track('Message Sent', ago(index))),
      track('Payment Processed', ago(1), { status: 'failed' }),
    ];
    const before = evaluate(factsFor(events, ruleset), ruleset, now);
    expect(before).toMatchObject({ tier: null, score: { total: 20 } });
    const after = evaluate(factsFor([...events, track('Payment Processed', ago(0), { status: 'succeeded' }), track('Data Source Connected', ago(0))], ruleset), ruleset, now);
    expect(after).toMatchObject({ tier: 'pql', score: { total: 50 } });
  });

  it('article 3: "an account or user": an account qualifies from its members together', () => {
    const member = (id: string, invitees: string[]) =>
      factsFor(
        [
          ...times(4, (index) => track('Logged In', ago(index))),
          ...times(2, (index) => track('Dashboard Created', ago(index + 1))),
          ...invitees.map((who) => track('Teammate Invited', ago(2), { invitee: `${who}@example.com` })),
        ],
        teams,
        { id, traits: { createdAt: ago(25) }, accountTraits: [{ employees: 200 }] },
      );
    const members = [member('u1', ['a']), member('u2', ['b']), member('u3', ['c'])];
    expect(members.map((facts) => evaluate(facts, teams, now).tier)).toEqual(['engaged-user', 'engaged-user', 'engaged-user']);
    const account = evaluate(accountFor(members, teams, { traits: { employees: 200, createdAt: ago(25) } }), teams, now);
    expect(account).toMatchObject({ tier: 'team-pql', route: 'sales' });
    expect(matchedNames(account)).toEqual(expect.arrayContaining(['team_invites', 'active_users_7d', 'everyone_active', 'two_builders']));
  });
});

describe("a day rollup's size, whatever a client sends", () => {
  const ruleset = rulesWith('  invited: { event: Teammate Invited, distinct: invitee, at_least: 2 }');
  const day = ago(1).slice(0, 10);
  const at = `${day}T10:00:00.000Z`;

  it(`keeps the counts of the ${maxNamesPerDay} most counted event names, then by name`, () => {
    const many = Array.from({ length: 3 * maxNamesPerDay }, (_, index) => track(`Event ${String(index).padStart(4, '0')}`, at));
    const rollup = rollupDay(day, [...many, track('Dashboard Created', at), track('Dashboard Created', at), track('Zoomed', at), track('Zoomed', at)], ruleset);
    expect(rollup.activity).toBe(many.length + 4);
    expect(Object.keys(rollup.names)).toHaveLength(maxNamesPerDay);
    expect(Object.entries(rollup.names).slice(0, 4)).toEqual([
      ['Dashboard Created', 2],
      ['Zoomed', 2],
      ['Event 0000', 1],
      ['Event 0001', 1],
    ]);
    expect(Object.keys(rollup.names).at(-1)).toBe(`Event ${String(maxNamesPerDay - 3).padStart(4, '0')}`);
  });

  it('keeps every name of a day with fewer, in the order first seen', () => {
    const rollup = rollupDay(day, [track('B', at), track('A', at), track('B', at)], ruleset);
    expect(rollup.names).toEqual({ B: 2, A: 1 });
    expect(Object.keys(rollup.names)).toEqual(['B', 'A']);
  });

  it(`keeps distinct values up to ${maxDistinctValueLength} bytes of JSON as they are, and longer ones as a short hash that tells them apart`, () => {
    const short = 'a'.repeat(maxDistinctValueLength);
    const long = 'b'.repeat(300);
    const invites = [short, `${long}1`, `${long}2`, `${long}1`].map((invitee) => track('Teammate Invited', at, { invitee }));
    const measure = rollupDay(day, invites, ruleset).measures['invited']!;
    // Cut at 200 characters, as before, the two long values were one.
    expect(measure.distinct).toHaveLength(3);
    expect(measure.distinct).toContain(short);
    expect(measure.distinct!.every((value) => value.length <= maxDistinctValueLength)).toBe(true);
    expect(evaluate(factsFor(invites, ruleset), ruleset, now).signals['invited']).toMatchObject({ matched: true, value: 3 });
  });

  it('measures names and distinct values in bytes of JSON, as DynamoDB counts an item: three-byte characters and escapes take more', () => {
    // 21 three-byte characters are 63 bytes, 22 are 66; a quote and a control character take 2 and 6 in JSON.
    const kept = ['語'.repeat(21), `${'a'.repeat(maxDistinctValueLength - 2)}"`, `${'a'.repeat(maxDistinctValueLength - 6)}\u0001`];
    const hashed = ['語'.repeat(22), `${'a'.repeat(maxDistinctValueLength - 1)}"`, `${'a'.repeat(maxDistinctValueLength - 5)}\u0001`];
    const invites = [...kept, ...hashed].map((invitee) => track('Teammate Invited', at, { invitee }));
    const distinct = rollupDay(day, invites, ruleset).measures['invited']!.distinct!;
    expect(distinct.filter((value) => !value.startsWith('sha256:')).sort()).toEqual([...kept].sort());
    expect(distinct).toHaveLength(kept.length + hashed.length);
    // An ASCII name as long as ingest takes stays as it is; one of 67 three-byte characters (201 bytes) is hashed.
    const longAscii = 'N'.repeat(maxNameBytes);
    const wide = '名'.repeat(67);
    const names = Object.keys(rollupDay(day, [track(longAscii, at), track(wide, at), track(wide, at), track('名'.repeat(66), at)], ruleset).names);
    expect(names).toEqual([longAscii, expect.stringMatching(/^sha256:[\w-]{22}$/), '名'.repeat(66)]);
  });
});
