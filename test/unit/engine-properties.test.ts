import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addToTotals, pruneLifetime, type EntityTotals } from '../../functions/core/facts';
import { validateMessage } from '../../functions/core/messages';
import { decide, nextDecisionAt, type LeadState } from '../../functions/core/lead-state';
import { evaluate, mergeRollups, rollupDay, type DayRollup, type EntityFacts, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import type { Signal } from '../../functions/core/rules/schema';
import { conditionHolds } from '../../functions/core/rules/conditions';
import { routesOf } from '../../functions/core/rules/routing';
import { changesByTimeAt, decayIntervalMatters } from '../../functions/core/rules/time-changes';
import { generateSample, generateSampleStream, toJsonl } from '../../functions/cli/sample-stream';
import { factsFor as sharedFactsFor } from '../support/facts';

/**
 * Properties of the engine over generated event sets: the result never depends on the order events arrive in or on
 * how a day's events are split between rollups, re-evaluating never makes a second transition, and the sample
 * stream is deterministic and always accepted by ingest.
 */

const now = new Date('2024-06-15T12:00:00.000Z');
const dayMs = 86_400_000;
const examples = join(import.meta.dirname, '../../examples');
const rulesets: Record<string, Ruleset> = Object.fromEntries(
  ['activation', 'plan-limits', 'team-accounts'].map((name) => [name, loadRules(readFileSync(join(examples, `${name}.rules.yaml`), 'utf8'), name)]),
);
const rulesetArb = fc.constantFrom(...Object.keys(rulesets)).map((name) => rulesets[name]!);

const eventNames = ['Dashboard Created', 'Dashboard Shared', 'Teammate Invited', 'Data Source Connected', 'Logged In', 'Data Exported', 'Plan Limit Reached', 'Premium Feature Used', 'Page Viewed'] as const;
/** An event name of 201 bytes of JSON, which a day's names keep as its hash. */
const wideName = '名'.repeat(67);

/** Random properties from a small vocabulary, so that where filters, distinct and sum all find something to do. */
const propertiesArb = fc.record(
  {
    // Short ones, and one of 63 bytes kept as it is and two past 64 bytes kept as their hash (three-byte characters, an escape).
    invitee: fc.constantFrom('a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', '語'.repeat(21), '語'.repeat(22), `${'q'.repeat(63)}"`),
    rows: fc.integer({ min: 0, max: 300_000 }),
    limit: fc.constantFrom('dashboards', 'seats', 'data_sources', 'rows'),
    plan: fc.constantFrom('free', 'trial', 'team'),
    usage: fc.integer({ min: 0, max: 200_000 }),
    feature: fc.constantFrom('sso', 'audit_log', 'api_access'),
    path: fc.constantFrom('/', '/pricing', '/docs'),
    nested: fc.record({ tier: fc.constantFrom('pro', 'free'), tags: fc.array(fc.constantFrom('beta', 'admin'), { maxLength: 2 }) }),
  },
  { requiredKeys: [] },
);

/** One entity's events: names from a small set, times over the 60 days before now (half of them in the last week, so tiers are reached). */
const eventArb: fc.Arbitrary<UsageEvent> = fc
  .record({
    name: fc.constantFrom(...eventNames, wideName),
    offset: fc.oneof(fc.integer({ min: 0, max: 60 * dayMs - 1 }), fc.integer({ min: 0, max: 7 * dayMs - 1 })),
    properties: propertiesArb,
  })
  .map(({ name, offset, properties }) => {
    const timestamp = new Date(now.getTime() - offset).toISOString();
    return name === 'Page Viewed' ? { type: 'page', name: 'Docs', properties, timestamp } : { type: 'track', event: name, properties, timestamp };
  });
const randomEventsArb = fc.array(eventArb, { maxLength: 150 });

/** Random events rarely reach a tier: mix in real users' events from the sample stream, plus random noise. */
const sample = generateSample({ seed: 3, end: now });
const sampleEvents = sample.users.map((user) =>
  sample.messages.filter((message) => message.userId === user.id && (message.type === 'track' || message.type === 'page')).map((message) => message as UsageEvent),
);
const eventsArb: fc.Arbitrary<UsageEvent[]> = fc.oneof(
  randomEventsArb,
  fc.tuple(fc.constantFrom(...sampleEvents), fc.array(eventArb, { maxLength: 10 })).map(([events, noise]) => [...events, ...noise]),
);

const traitsArb = fc.record(
  {
    createdAt: fc.integer({ min: 0, max: 120 }).map((days) => new Date(now.getTime() - days * dayMs).toISOString()),
    plan: fc.constantFrom('free', 'free', 'trial', 'business'),
    email: fc.constant('lead@example.com'),
  },
  { requiredKeys: [] },
);
const accountTraitsArb = fc.array(
  fc.record({ employees: fc.constantFrom(5, 50, 500), industry: fc.constantFrom('software', 'retail', 'fintech') }, { requiredKeys: [] }),
  { maxLength: 2 },
);

/** Events (in any order) with the same events shuffled. */
const eventsAndShuffledArb = eventsArb.chain((events) => fc.tuple(fc.constant(events), fc.shuffledSubarray(events, { minLength: events.length, maxLength: events.length })));

/** Facts with the days in the order they were first seen: evaluate must not depend on it. */
const factsFor = (events: readonly UsageEvent[], ruleset: Ruleset, extra: Partial<EntityFacts> = {}): EntityFacts =>
  sharedFactsFor(events, ruleset, extra, { dayOrder: 'first-seen' });

describe('order independence', () => {
  it('rolling up shuffled events and evaluating gives the same Evaluation', () => {
    fc.assert(
      fc.property(rulesetArb, eventsAndShuffledArb, traitsArb, accountTraitsArb, (ruleset, [events, shuffled], traits, accountTraits) => {
        const original = evaluate(factsFor(events, ruleset, { traits, accountTraits }), ruleset, now);
        const reordered = evaluate(factsFor(shuffled, ruleset, { traits, accountTraits }), ruleset, now);
        expect(reordered).toEqual(original);
      }),
    );
  });

  it('splitting a day into two rollups and merging them equals rolling it up at once (count, sum, distinct, names, last)', () => {
    fc.assert(
      fc.property(rulesetArb, eventsArb, fc.nat(), (ruleset, events, cut) => {
        const sameDay = events.map((event) => ({ ...event, timestamp: `2024-06-10${event.timestamp.slice(10)}` }));
        const at = sameDay.length === 0 ? 0 : cut % (sameDay.length + 1);
        const whole = rollupDay('2024-06-10', sameDay, ruleset);
        const split = mergeRollups('2024-06-10', [rollupDay('2024-06-10', sameDay.slice(0, at), ruleset), rollupDay('2024-06-10', sameDay.slice(at), ruleset)]);
        expect(split).toEqual(whole);
      }),
    );
  });

  it('merging is associative and commutative: a lifetime is the same whatever the grouping of its days', () => {
    fc.assert(
      fc.property(rulesetArb, eventsAndShuffledArb, (ruleset, [events, shuffled]) => {
        const days = factsFor(events, ruleset).days;
        const reversed = [...days].reverse();
        const half = Math.floor(days.length / 2);
        const grouped = mergeRollups('lifetime', [mergeRollups('a', reversed.slice(0, half)), mergeRollups('b', reversed.slice(half))]);
        expect(grouped).toEqual(mergeRollups('lifetime', days));
        expect(factsFor(shuffled, ruleset).lifetime).toEqual(mergeRollups('lifetime', days));
      }),
    );
  });

  it("an account's event signals over its members' merged days equal one entity doing all their events", () => {
    fc.assert(
      fc.property(rulesetArb, eventsArb, fc.array(fc.nat({ max: 2 })), (ruleset, events, owners) => {
        // Deal the events out to three members.
        const members = [0, 1, 2].map((member) => events.filter((_, index) => (owners[index] ?? 0) === member));
        const memberFacts = members.map((memberEvents, index) => factsFor(memberEvents, ruleset, { id: `u${index}` }));
        const dayNames = [...new Set(memberFacts.flatMap((facts) => facts.days.map((day) => day.day)))];
        const days = dayNames.map((name) => mergeRollups(name, memberFacts.flatMap((facts) => facts.days.filter((day) => day.day === name))));
        const together = factsFor(events, ruleset);
        expect(mergeRollups('lifetime', days)).toEqual(together.lifetime);
        const account = evaluate({ ...together, type: 'account', id: 'acct', days, lifetime: mergeRollups('lifetime', days) }, ruleset, now);
        const single = evaluate({ ...together, type: 'account', id: 'acct' }, ruleset, now);
        expect(account).toEqual(single);
      }),
    );
  });
});

describe('day rollups', () => {
  // Filters on nested paths and on a name of Object.prototype, sums, distinct values, sessions and a first event.
  const filtered = loadRules(
    `version: 1
name: filtered
signals:
  nested_pro: { event: Dashboard Created, where: { nested.tier: pro, rows: { gte: 1000 } }, sum: usage, points: 1 }
  tagged: { events: ['*'], where: { nested.tags: { contains: beta } }, distinct: nested.tier, points: 1 }
  plain: { events: [Data Exported, Logged In], where: { constructor.name: { exists: false } }, count: sessions, points: 1 }
  invites: { event: Teammate Invited, distinct: invitee, points: 1 }
  fast_invite: { to: invites, within: 3d, points: 1 }
tiers: [{ name: lead, min_score: 1, route: sales }]
`,
    'filtered',
  );

  /** A property by its dotted path, own properties only. */
  const plainProperty = (properties: Record<string, unknown>, path: string): unknown =>
    path.split('.').reduce<unknown>((value, part) => (value !== null && typeof value === 'object' && Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined), properties);

  /** Text as a rollup keeps it, worked out plainly: as it is within `maxBytes` bytes of JSON, else its hash. */
  const keptPlainly = (text: string, maxBytes: number) => (Buffer.byteLength(JSON.stringify(text)) - 2 <= maxBytes ? text : `sha256:${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`);

  /** A day's rollup worked out plainly: every event against every event signal, its filters read path by path. */
  function plainRollup(day: string, events: readonly UsageEvent[], ruleset: Ruleset): DayRollup {
    const rollup: DayRollup = { day, activity: 0, names: {}, measures: {} };
    const sessionTimes: Record<string, number[]> = {};
    for (const event of events) {
      const name = event.type === 'track' ? event.event : event.type === 'page' ? 'Page Viewed' : event.type === 'screen' ? 'Screen Viewed' : undefined;
      if (name === undefined) continue;
      rollup.activity++;
      if (rollup.lastActivity === undefined || event.timestamp > rollup.lastActivity) rollup.lastActivity = event.timestamp;
      const keptName = keptPlainly(name, 200);
      rollup.names[keptName] = (rollup.names[keptName] ?? 0) + 1;
      const properties = event.properties ?? {};
      for (const signalName of ruleset.eventSignals) {
        const signal = ruleset.file.signals[signalName]! as Extract<Signal, { kind: 'event' }>;
        const names = signal.events ?? [signal.event!];
        if (!names.includes('*') && !names.includes(name)) continue;
        if (!Object.entries(signal.where ?? {}).every(([path, condition]) => conditionHolds(condition, plainProperty(properties, path)))) continue;
        const measure = (rollup.measures[signalName] ??= { count: 0, sum: 0 });
        measure.count++;
        const summed = signal.sum === undefined ? undefined : plainProperty(properties, signal.sum);
        if (typeof summed === 'number' && Number.isFinite(summed)) measure.sum += summed;
        const value = signal.distinct === undefined ? undefined : plainProperty(properties, signal.distinct);
        const text = String(value);
        const kept = keptPlainly(text, 64);
        if (value !== undefined && value !== null) measure.distinct = [...new Set([...(measure.distinct ?? []), kept])].sort();
        if (measure.last === undefined || event.timestamp > measure.last) measure.last = event.timestamp;
        if (ruleset.firstSignals.includes(signalName) && (measure.first === undefined || event.timestamp < measure.first)) measure.first = event.timestamp;
        if (signal.count === 'sessions') (sessionTimes[signalName] ??= []).push(Date.parse(event.timestamp));
      }
    }
    for (const [signalName, times] of Object.entries(sessionTimes)) {
      const sorted = times.sort((a, b) => a - b);
      rollup.measures[signalName]!.sessions = sorted.filter((time, index) => index === 0 || time - sorted[index - 1]! >= 30 * 60_000).length;
    }
    const names = Object.entries(rollup.names);
    if (names.length > 100) rollup.names = Object.fromEntries(names.sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, 100));
    return rollup;
  }

  it('hold what a plain walk of every event against every signal gives, in the same order', () => {
    fc.assert(
      fc.property(fc.constantFrom(filtered, ...Object.values(rulesets)), eventsArb, (ruleset, events) => {
        const sameDay = events.map((event) => ({ ...event, timestamp: `2024-06-10${event.timestamp.slice(10)}` }));
        // Serialized: the same names and measures in the same order, as a store keeps them.
        expect(JSON.stringify(rollupDay('2024-06-10', sameDay, ruleset))).toBe(JSON.stringify(plainRollup('2024-06-10', sameDay, ruleset)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('event signals over day rollups', () => {
  // Signals of every kind of count over windows and since-signup spans, one named like a member of Object.prototype.
  const spans = loadRules(
    `version: 1
name: spans
signup: { trait: createdAt }
signals:
  constructor: { event: A, window: 7d, points: 1 }
  recent_sum: { event: A, window: 30d, sum: rows, points: 1 }
  recent_days: { event: B, window: 14d, count: days, points: 1 }
  recent_sessions: { event: B, window: 3d, count: sessions, points: 1 }
  early_distinct: { event: A, since_signup: 7d, distinct: invitee, points: 1 }
  early_count: { event: B, since_signup: 3d, points: 1 }
  recent_decaying: { event: B, window: 7d, points: 8, decay: 3d }
tiers: [{ name: lead, min_score: 1, route: sales }]
`,
    'spans',
  );
  const signalNames = ['constructor', 'recent_sum', 'recent_days', 'recent_sessions', 'early_distinct', 'early_count', 'recent_decaying'];
  // Client-chosen names a stored rollup may hold, next to the signals' own ("other" becomes "__proto__" below).
  const measureNames = [...signalNames, 'toString', 'hasOwnProperty', 'other'];
  const measureArb = fc.record(
    {
      count: fc.nat({ max: 3 }),
      sum: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
      distinct: fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 3 }),
      sessions: fc.nat({ max: 3 }),
      last: fc.nat({ max: 40 * dayMs }).map((offset) => new Date(now.getTime() - offset).toISOString()),
    },
    { requiredKeys: ['count', 'sum'] },
  );
  // Days up to 40 before now, each at most once, in any order; measures parsed from JSON, as a store gives them.
  const daysArb = fc
    .uniqueArray(fc.nat({ max: 40 }), { maxLength: 25 })
    .chain((ages) => fc.tuple(...ages.map((age) => fc.tuple(fc.constant(age), fc.dictionary(fc.constantFrom(...measureNames), measureArb, { maxKeys: 5 })))))
    .map((days) =>
      days.map(([age, measures]) => ({
        day: new Date(now.getTime() - age * dayMs).toISOString().slice(0, 10),
        activity: 1,
        names: {},
        measures: JSON.parse(JSON.stringify(measures).replace(/"other"/g, '"__proto__"')) as DayRollup['measures'],
      })),
    );
  const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

  /** What a signal counts over the days from `from` to `to`: each day looked up on its own, in the order given. */
  function plainValue(name: string, days: readonly DayRollup[], from: string, to: string | null): number {
    let count = 0;
    let sum = 0;
    let withEvents = 0;
    let sessions = 0;
    const distinct = new Set<string>();
    for (const day of days) {
      if (day.day < from || (to !== null && day.day > to) || !Object.hasOwn(day.measures, name)) continue;
      const measure = day.measures[name]!;
      count += measure.count;
      sum += measure.sum;
      if (measure.count > 0) withEvents++;
      sessions += measure.sessions ?? 0;
      for (const value of measure.distinct ?? []) distinct.add(value);
    }
    const signal = spans.file.signals[name]! as { sum?: string; distinct?: string; count?: string };
    return signal.sum !== undefined ? sum : signal.distinct !== undefined ? distinct.size : signal.count === 'days' ? withEvents : signal.count === 'sessions' ? sessions : count;
  }

  it('count each signal over the days of its window and since-signup span only, and decay from the last event there, whatever the order of the days and the names stored', () => {
    fc.assert(
      fc.property(daysArb, fc.option(fc.nat({ max: 45 })), fc.boolean(), (days, signupAge, inOrder) => {
        const ordered = inOrder ? [...days].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0)) : days;
        const signup = signupAge === null ? null : now.getTime() - signupAge * dayMs;
        const facts: EntityFacts = {
          type: 'user',
          id: 'u',
          traits: signup === null ? {} : { createdAt: new Date(signup).toISOString() },
          accountTraits: [],
          // No first seen: without the trait, no signup.
          firstSeen: null,
          lastSeen: null,
          days: ordered,
          lifetime: mergeRollups('lifetime', ordered),
          members: [],
        };
        const { signals } = evaluate(facts, spans, now);
        const windowFrom = (days: number) => dayOf(now.getTime() - (days - 1) * dayMs);
        const signupDay = signup === null ? null : dayOf(signup);
        const sinceSignup = (days: number): [string, string] | null => (signupDay === null ? null : [signupDay, dayOf(Date.parse(signupDay) + (days - 1) * dayMs)]);
        expect(signals['constructor']!.value).toBe(plainValue('constructor', ordered, windowFrom(7), null));
        expect(signals['recent_sum']!.value).toBe(plainValue('recent_sum', ordered, windowFrom(30), null));
        expect(signals['recent_days']!.value).toBe(plainValue('recent_days', ordered, windowFrom(14), null));
        expect(signals['recent_sessions']!.value).toBe(plainValue('recent_sessions', ordered, windowFrom(3), null));
        for (const [name, span] of [['early_distinct', sinceSignup(7)], ['early_count', sinceSignup(3)]] as const) {
          expect(signals[name]!.value).toBe(span === null ? 0 : plainValue(name, ordered, span[0], span[1]));
        }
        // Decayed from the last matching event in the window (none known: not decayed).
        const decaying = ordered.filter((day) => day.day >= windowFrom(7) && Object.hasOwn(day.measures, 'recent_decaying')).map((day) => day.measures['recent_decaying']!);
        const last = decaying.reduce<string | undefined>((latest, measure) => (measure.last !== undefined && (latest === undefined || measure.last > latest) ? measure.last : latest), undefined);
        const count = decaying.reduce((sum, measure) => sum + measure.count, 0);
        const decayed = last === undefined ? 8 : Math.round(8 * 0.5 ** (Math.max(0, now.getTime() - Date.parse(last)) / (3 * dayMs)) * 100) / 100;
        expect(signals['recent_decaying']!.points).toBe(count >= 1 ? decayed : 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('trait signals, combinations and tiers', () => {
  const rules = loadRules(
    `version: 1
name: traits
signals:
  size: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
  industry: { trait: industry, of: account, is: { in: [software, fintech] }, points: 5 }
  no_coupon: { trait: coupon, of: account, is: { exists: false }, points: 3 }
  plan: { trait: plan, is: { in: [trial, team] }, points: 4 }
  own_coupon_missing: { trait: coupon, is: { exists: false }, category: engagement, points: 2 }
  both: { all: [size, plan], points: 7 }
  either: { any: [industry, own_coupon_missing], points: 1 }
  small: { not: size, points: -3 }
  mixed: { all: [plan], any: [size, industry], not: no_coupon, points: 2 }
tiers:
  - { name: accounts_only, level: account, route: sales }
  - { name: top, min_score: 20, require: [mixed], route: sales }
  - { name: mid, min_score: 10, require: [either, plan], route: sales }
  - { name: low, min_score: 0, route: nurture }
`,
    'traits',
  );
  const traitArb = fc.record(
    {
      employees: fc.constantFrom(5, 50, 500, '120', 'many', null),
      industry: fc.constantFrom('software', 'retail', 'fintech', null),
      coupon: fc.constantFrom('SPRING', null),
      plan: fc.constantFrom('free', 'trial', 'team', 7),
    },
    { requiredKeys: [] },
  );

  /** Every signal worked out on its own, in the ruleset's order: a trait's sources mapped to their values, and so on. */
  function plainEvaluation(facts: EntityFacts) {
    const signals: Record<string, { matched: boolean; value: unknown; points: number; category: string }> = {};
    for (const name of rules.order) {
      const signal = rules.file.signals[name]!;
      let matched = false;
      let value: unknown = null;
      if (signal.kind === 'trait') {
        const values = (signal.of === 'account' ? facts.accountTraits : [facts.traits]).map((traits) => traits[signal.trait]);
        matched = values.some((candidate) => conditionHolds(signal.is, candidate));
        const shown = values.find((candidate) => conditionHolds(signal.is, candidate)) ?? values[0];
        value = typeof shown === 'number' || typeof shown === 'boolean' ? shown : shown === undefined || shown === null ? null : String(shown).slice(0, 100);
      } else if (signal.kind === 'combination') {
        matched =
          (signal.all ?? []).every((part) => signals[part]?.matched === true) &&
          (signal.any === undefined || signal.any.some((part) => signals[part]?.matched === true)) &&
          (signal.not === undefined || signals[signal.not]?.matched !== true);
        value = matched;
      }
      signals[name] = { matched, value, points: matched ? signal.points : 0, category: signal.category ?? (signal.kind === 'trait' ? 'fit' : 'engagement') };
    }
    const sum = (category: string) => Object.values(signals).reduce((total, signal) => (signal.category === category ? total + signal.points : total), 0);
    const total = sum('engagement') + sum('fit');
    const tier = rules.file.tiers.find(
      (candidate) =>
        (candidate.level === 'both' || candidate.level === facts.type) &&
        (candidate.min_score === undefined || total >= candidate.min_score) &&
        candidate.require.every((name) => signals[name]?.matched === true),
    );
    return { signals, score: { total, engagement: sum('engagement'), fit: sum('fit') }, tier: tier?.name ?? null };
  }

  it('match and show what a plain walk over each signal gives, with the first tier met', () => {
    fc.assert(
      fc.property(traitArb, fc.array(traitArb, { maxLength: 3 }), (traits, accountTraits) => {
        const facts: EntityFacts = { type: 'user', id: 'u', traits, accountTraits, firstSeen: null, lastSeen: null, days: [], lifetime: mergeRollups('lifetime', []), members: [] };
        const { signals, score, tier } = evaluate(facts, rules, now);
        // Serialized: the same signals in the same order.
        expect(JSON.stringify({ signals, score, tier })).toBe(JSON.stringify(plainEvaluation(facts)));
      }),
      { numRuns: 300 },
    );
  });
});

/** A lead state decided before, or none, with any tier of the rules and a cooldown past, pending or none. */
const previousArb = (ruleset: Ruleset): fc.Arbitrary<LeadState | undefined> =>
  fc.option(
    fc.record({
      tier: fc.constantFrom(null, ...ruleset.file.tiers.map((tier) => tier.name)),
      cooldownDays: fc.option(fc.integer({ min: -20, max: 20 })),
      sequence: fc.nat({ max: 50 }),
    }).map(({ tier, cooldownDays, sequence }): LeadState => ({
      tier,
      route: tier === null ? null : routesOf(ruleset.file.tiers.find((candidate) => candidate.name === tier)!.route)[0]!,
      score: 0,
      since: null,
      cooldownUntil: cooldownDays === null ? null : new Date(now.getTime() + cooldownDays * dayMs).toISOString(),
      sequence,
      rulesetVersion: 'older',
      evaluatedAt: new Date(now.getTime() - dayMs).toISOString(),
      matched: [],
      lastSeen: null,
      history: [],
    })),
    { nil: undefined },
  );

describe('the lifetime the backtest adds up', () => {
  // The playbook's time-to-value and day counts over the whole history read the lifetime, as does a time to value
  // to a windowed signal; the other examples none of it.
  const playbook = loadRules(readFileSync(join(examples, 'playbook.rules.yaml'), 'utf8'), 'playbook', (path) => readFileSync(join(examples, path), 'utf8'));
  const windowedFirst = loadRules(
    `version: 1
signup: { trait: createdAt }
signals:
  shared: { event: Dashboard Shared, window: 7d, points: 1 }
  fast: { to: shared, within: 3d, points: 10 }
  login_days: { event: Logged In, count: days, at_least: 2, points: 1 }
tiers: [{ name: lead, min_score: 1, route: sales }]
`,
    'windowed-first',
  );

  it('pruneLifetime keeps the day, the activity, the last activity when there is one, and the measures a lifetime is read for, in that order', () => {
    const measures = { invites: { count: 1, sum: 0 }, premium_feature: { count: 2, sum: 0 } };
    const rollup: DayRollup = { day: '2024-06-10', activity: 3, lastActivity: '2024-06-10T10:00:00.000Z', names: { 'Teammate Invited': 1 }, measures };
    expect(JSON.stringify(pruneLifetime(rollup, playbook))).toBe('{"day":"2024-06-10","activity":3,"lastActivity":"2024-06-10T10:00:00.000Z","names":{},"measures":{"invites":{"count":1,"sum":0}}}');
    expect(JSON.stringify(pruneLifetime({ ...rollup, lastActivity: undefined }, playbook))).toBe('{"day":"2024-06-10","activity":3,"names":{},"measures":{"invites":{"count":1,"sum":0}}}');
  });

  it('adding up only what pruneLifetime keeps of each day, in batches, gives the evaluation of adding up everything', () => {
    fc.assert(
      fc.property(fc.constantFrom(playbook, windowedFirst, ...Object.values(rulesets)), eventsArb, traitsArb, fc.nat(), (ruleset, events, traits, cut) => {
        const facts = factsFor(events, ruleset, { traits });
        const at = cut % (facts.days.length + 1);
        let totals: EntityTotals | undefined;
        for (const batch of [facts.days.slice(0, at), facts.days.slice(at)]) totals = addToTotals(ruleset, totals, batch.map((day) => pruneLifetime(day, ruleset)), [], null);
        expect(totals!.lifetime).toEqual(pruneLifetime(facts.lifetime, ruleset));
        expect(evaluate({ ...facts, lifetime: totals!.lifetime }, ruleset, now)).toEqual(evaluate(facts, ruleset, now));
      }),
    );
  });
});

describe('idempotent decisions', () => {
  it('evaluating the same facts twice and deciding twice yields no second transition', () => {
    fc.assert(
      fc.property(
        rulesetArb.chain((ruleset) => fc.tuple(fc.constant(ruleset), previousArb(ruleset))),
        eventsArb,
        traitsArb,
        accountTraitsArb,
        ([ruleset, previous], events, traits, accountTraits) => {
          const facts = factsFor(events, ruleset, { traits, accountTraits });
          const first = evaluate(facts, ruleset, now);
          const once = decide(previous, first, facts, ruleset, now);
          const second = evaluate(facts, ruleset, now);
          expect(second).toEqual(first);
          const twice = decide(once.state, second, facts, ruleset, now);
          expect(twice.transition).toBeUndefined();
          expect(twice.state).toEqual({ ...once.state });
          // A transition happened exactly when the tier moved, and it was numbered once.
          expect(once.transition !== undefined).toBe(once.state.tier !== (previous?.tier ?? null));
          expect(once.state.sequence).toBe((previous?.sequence ?? 0) + (once.transition ? 1 : 0));
        },
      ),
    );
  });
});

describe('when time alone changes an evaluation', () => {
  const sixHours = 6 * 3_600_000;

  it('the decay interval changes the moments only where decayIntervalMatters says it may', () => {
    fc.assert(
      fc.property(rulesetArb, eventsArb, traitsArb, accountTraitsArb, (ruleset, events, traits, accountTraits) => {
        const facts = factsFor(events, ruleset, { traits, accountTraits });
        const evaluation = evaluate(facts, ruleset, now);
        if (!decayIntervalMatters(ruleset, 'user')) expect(changesByTimeAt(facts, evaluation, ruleset, now, 1)).toEqual(changesByTimeAt(facts, evaluation, ruleset, now, sixHours));
      }),
    );
  });

  it('nextDecisionAt from moments the caller has (the backtest) equals nextDecisionAt working them out', () => {
    fc.assert(
      fc.property(
        rulesetArb.chain((ruleset) => fc.tuple(fc.constant(ruleset), previousArb(ruleset))),
        eventsArb,
        traitsArb,
        fc.option(fc.integer({ min: -20, max: 0 })),
        ([ruleset, previous], events, traits, convertedDays) => {
          const facts = factsFor(events, ruleset, { traits });
          const evaluation = evaluate(facts, ruleset, now);
          const convertedAt = convertedDays === null ? null : new Date(now.getTime() + convertedDays * dayMs).toISOString();
          const { state } = decide(previous, evaluation, facts, ruleset, now, convertedAt);
          const next = nextDecisionAt(state, evaluation, facts, ruleset, now, sixHours);
          expect(nextDecisionAt(state, evaluation, facts, ruleset, now, sixHours, changesByTimeAt(facts, evaluation, ruleset, now, sixHours))).toBe(next);
          if (!decayIntervalMatters(ruleset, 'user')) expect(nextDecisionAt(state, evaluation, facts, ruleset, now, sixHours, changesByTimeAt(facts, evaluation, ruleset, now, 1))).toBe(next);
        },
      ),
    );
  });
});

describe('the sample stream', () => {
  const optionsArb = fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    users: fc.integer({ min: 0, max: 15 }),
    accounts: fc.integer({ min: 0, max: 5 }),
    days: fc.integer({ min: 1, max: 45 }),
    end: fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true }),
  });

  it('is deterministic for a seed, and ingest accepts every message', () => {
    fc.assert(
      fc.property(optionsArb, (options) => {
        const messages = generateSampleStream(options);
        expect(generateSampleStream({ ...options, end: new Date(options.end.getTime()) })).toEqual(messages);
        const receivedAt = new Date(options.end.getTime() + 60_000);
        messages.forEach((message, index) => {
          const outcome = validateMessage(message, index, 'demo', receivedAt);
          expect('reason' in outcome ? outcome : undefined, JSON.stringify(message)).toBeUndefined();
        });
      }),
      { numRuns: 40 },
    );
  });

  it('is sorted by time, within [end - days, end], with unique message ids', () => {
    fc.assert(
      fc.property(optionsArb, (options) => {
        const messages = generateSampleStream(options);
        const stamps = messages.map((message) => message.timestamp);
        expect(stamps).toEqual([...stamps].sort());
        const start = new Date(options.end.getTime() - options.days * dayMs).toISOString();
        for (const stamp of stamps) {
          expect(stamp >= start && stamp <= options.end.toISOString(), stamp).toBe(true);
        }
        expect(new Set(messages.map((message) => message.messageId)).size).toBe(messages.length);
      }),
      { numRuns: 40 },
    );
  });

  const end = new Date('2024-06-01T00:00:00.000Z');
  const sample = generateSample({ seed: 7, end });

  it('writes JSONL that reads back as the same messages', () => {
    const jsonl = toJsonl(sample.messages);
    expect(jsonl.endsWith('\n')).toBe(true);
    expect(jsonl.trimEnd().split('\n').map((line) => JSON.parse(line))).toEqual(sample.messages);
    expect(toJsonl([])).toBe('');
  });

  it('gives different streams for different seeds', () => {
    expect(generateSampleStream({ seed: 8, end })).not.toEqual(sample.messages);
  });

  it('uses now as the end by default', () => {
    const before = Date.now();
    const messages = generateSampleStream({ users: 4, accounts: 1, days: 3 });
    for (const message of messages) expect(Date.parse(message.timestamp)).toBeLessThanOrEqual(Date.now());
    expect(messages.some((message) => Date.parse(message.timestamp) >= before - 3 * dayMs)).toBe(true);
  });

  it('has the four personas, and identifies every user with createdAt, plan, email and name', () => {
    expect(new Set(sample.users.map((user) => user.persona))).toEqual(new Set(['activator', 'power_user', 'tire_kicker', 'churner']));
    expect(sample.users).toHaveLength(60);
    expect(sample.accounts).toHaveLength(12);
    for (const user of sample.users) {
      const identify = sample.messages.find((message) => message.type === 'identify' && message.userId === user.id);
      expect(identify?.traits, user.id).toMatchObject({ createdAt: user.signupAt, plan: expect.any(String), email: expect.stringMatching(/@example\.com$/), name: expect.any(String) });
    }
  });

  it('sends group calls with the account traits, and context.groupId on members’ events', () => {
    for (const message of sample.messages.filter((candidate) => candidate.type === 'group')) {
      expect(message.traits).toEqual({ name: expect.any(String), employees: expect.any(Number), industry: expect.any(String), plan: expect.any(String) });
    }
    for (const user of sample.users) {
      const events = sample.messages.filter((message) => message.userId === user.id && (message.type === 'track' || message.type === 'page'));
      for (const event of events) expect(event.context?.['groupId'] ?? null, user.id).toBe(user.accountId);
    }
  });

  it('uses the event names of the example rules, with their properties', () => {
    const names = new Set(sample.messages.filter((message) => message.type === 'track').map((message) => message.event));
    expect([...names].sort()).toEqual(eventNames.filter((name) => name !== 'Page Viewed').sort());
    expect(sample.messages.some((message) => message.type === 'page')).toBe(true);
    const ruleEvents = new Set(
      Object.values(rulesets).flatMap((ruleset) => Object.values(ruleset.file.signals).flatMap((signal) => (signal.kind === 'event' ? (signal.events ?? [signal.event!]) : []))),
    );
    for (const name of ruleEvents) if (name !== '*') expect(names.has(name) || name === 'Page Viewed', name).toBe(true);
    const invites = sample.messages.filter((message) => message.event === 'Teammate Invited');
    expect(invites.every((message) => /@example\.com$/.test(String(message.properties?.['invitee'])))).toBe(true);
    expect(new Set(invites.map((message) => message.properties?.['invitee'])).size).toBe(invites.length);
    expect(sample.messages.filter((message) => message.event === 'Plan Limit Reached').every((message) => typeof message.properties?.['limit'] === 'string')).toBe(true);
    expect(sample.messages.filter((message) => message.event === 'Premium Feature Used').every((message) => typeof message.properties?.['feature'] === 'string')).toBe(true);
  });

  it('makes the personas behave as the rules expect', () => {
    const lastActivity = new Map<string, string>();
    for (const message of sample.messages) if (message.type === 'track' || message.type === 'page') lastActivity.set(message.userId, message.timestamp);
    const firstWeek = (userId: string, event: string) =>
      sample.messages.filter((message) => message.userId === userId && message.event === event && Date.parse(message.timestamp) - Date.parse(sample.users.find((user) => user.id === userId)!.signupAt) < 7 * dayMs).length;
    for (const user of sample.users) {
      const idleDays = (end.getTime() - Date.parse(lastActivity.get(user.id) ?? sample.start)) / dayMs;
      if (user.persona === 'activator') {
        expect(firstWeek(user.id, 'Dashboard Created'), user.id).toBeGreaterThanOrEqual(2);
        expect(firstWeek(user.id, 'Teammate Invited'), user.id).toBeGreaterThanOrEqual(1);
        expect(firstWeek(user.id, 'Data Source Connected'), user.id).toBeGreaterThanOrEqual(1);
      }
      if (user.persona === 'churner') expect(idleDays, user.id).toBeGreaterThanOrEqual(21);
      if (user.persona === 'tire_kicker') {
        expect(idleDays, user.id).toBeGreaterThanOrEqual(14);
        expect(sample.messages.filter((message) => message.userId === user.id && message.type !== 'identify' && message.type !== 'group').length, user.id).toBeLessThanOrEqual(3);
      }
      if (user.persona === 'power_user') {
        const logins = sample.messages.filter((message) => message.userId === user.id && message.event === 'Logged In' && Date.parse(message.timestamp) > end.getTime() - 7 * dayMs);
        expect(logins.length, user.id).toBeGreaterThanOrEqual(5);
      }
    }
  });
});
