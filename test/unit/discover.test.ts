import { describe, expect, it } from 'vitest';
import { exampleBehaviours, generatePlantedStream, type PlantedBehaviour } from '../../functions/cli/planted-stream';
import { DiscoveryCollector, type DiscoveryConversion, type DiscoveryMessage } from '../../functions/analysis/discover/collect';
import { discover, discoverFromMessages, pointsFor } from '../../functions/analysis/discover/select';
import { formatDiscoveryTable, suggestedRulesYaml } from '../../functions/analysis/discover/present';
import { conversionSchema } from '../../functions/core/rules/schema';
import { validateMessage } from '../../functions/core/messages';
import { evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';
import { parseEvent } from '../../functions/cli/backtest-input';
import { factsFor } from '../support/facts';

const dayMs = 86_400_000;
const start = Date.parse('2025-01-06T00:00:00.000Z');
const at = (day: number, hour = 12) => new Date(start + day * dayMs + hour * 3_600_000).toISOString();

/** A Segment message through the ingest validation, as the backtest's readers yield it. */
function accepted(raw: Record<string, unknown>): DiscoveryMessage {
  const outcome = validateMessage(raw, 0, 'ws', new Date(start + 400 * dayMs));
  if ('reason' in outcome) throw new Error(`${outcome.path}: ${outcome.reason}`);
  return outcome;
}
const track = (userId: string, event: string, day: number, properties: Record<string, unknown> = {}, hour = 12) =>
  accepted({ type: 'track', userId, event, properties, timestamp: at(day, hour) });
const identify = (userId: string, day: number, signupDay = day) =>
  accepted({ type: 'identify', userId, traits: { createdAt: at(signupDay, 9) }, timestamp: at(day, 9) });

describe('discover: no leakage', () => {
  it('never counts an event at or after the user conversion, whatever the order of the input', () => {
    // Only converters do "Invoice Paid", and only after converting: a perfect predictor if it leaked.
    const messages: DiscoveryMessage[] = [];
    const conversions: DiscoveryConversion[] = [];
    for (let n = 0; n < 200; n++) {
      const user = `u${n}`;
      const signup = n % 60;
      messages.push(identify(user, signup));
      messages.push(track(user, 'Logged In', signup, { method: 'password' }));
      if (n % 4 === 0) {
        const convertedDay = signup + 5;
        conversions.push({ type: 'user', id: user, convertedAt: at(convertedDay) });
        // At the very moment of conversion, and after it.
        messages.push(accepted({ type: 'track', userId: user, event: 'Invoice Paid', properties: { plan: 'pro' }, timestamp: at(convertedDay) }));
        for (let k = 1; k <= 5; k++) messages.push(track(user, 'Invoice Paid', convertedDay + k, { plan: `p${k}` }));
        messages.push(track(user, 'Logged In', convertedDay + 1));
      }
    }
    messages.reverse();
    const result = discoverFromMessages(messages, conversions, { minUsers: 1 });
    expect(result.input.afterConversion).toBe(50 * 7);
    expect(result.candidates.filter((candidate) => candidate.event === 'Invoice Paid')).toEqual([]);
    // Logged In after conversion does not add up either: every user logged in exactly once before.
    const twice = result.candidates.find((candidate) => candidate.event === 'Logged In' && candidate.threshold === 2);
    expect(twice).toBeUndefined();
    expect(result.selected).toEqual([]);
  });

  it('counts an event one millisecond before the conversion, and not the one at it', () => {
    const conversions: DiscoveryConversion[] = [{ type: 'user', id: 'a', convertedAt: '2025-01-10T12:00:00.000Z' }];
    const collector = new DiscoveryCollector(conversions);
    collector.add(accepted({ type: 'track', userId: 'a', event: 'Export', timestamp: '2025-01-10T11:59:59.999Z' }));
    collector.add(accepted({ type: 'track', userId: 'a', event: 'Export', timestamp: '2025-01-10T12:00:00.000Z' }));
    collector.add(accepted({ type: 'track', userId: 'b', event: 'Export', timestamp: '2025-01-10T12:00:00.000Z' }));
    const snapshot = collector.snapshot();
    expect(snapshot.input.afterConversion).toBe(1);
    const result = discover(snapshot, { minUsers: 1, minFired: 1 });
    const once = result.candidates.find((candidate) => candidate.event === 'Export' && candidate.threshold === 1 && candidate.windowDays === null)!;
    expect(once.train.fired + once.holdout.fired).toBe(2);
    expect(result.candidates.some((candidate) => candidate.event === 'Export' && candidate.threshold === 2)).toBe(false);
  });

  it('drops messages and conversions at or after the cutoff', () => {
    const collector = new DiscoveryCollector([{ type: 'user', id: 'a', convertedAt: at(20) }], { cutoff: new Date(at(10)) });
    collector.add(track('a', 'Export', 5));
    collector.add(track('a', 'Export', 11));
    const snapshot = collector.snapshot();
    expect(snapshot.input.afterCutoff).toBe(1);
    expect(snapshot.input.conversions.users).toBe(0);
  });
});

describe('discover: the rules file it suggests', () => {
  it('suggests no file when nothing is confirmed', () => {
    const result = discoverFromMessages([track('a', 'Export', 1)], []);
    expect(result.selected).toEqual([]);
    expect(suggestedRulesYaml(result)).toBeNull();
  });

  it('gives 10 points per doubling of the lift lower bound, rounded to 5, at least 5', () => {
    expect(pointsFor(1.05)).toBe(5);
    expect(pointsFor(2)).toBe(10);
    expect(pointsFor(3)).toBe(15);
    expect(pointsFor(8)).toBe(30);
  });

  it('accepts event names and property names that need quoting, and loadRules takes the file', () => {
    const messages: DiscoveryMessage[] = [];
    const conversions: DiscoveryConversion[] = [];
    for (let n = 0; n < 600; n++) {
      const user = `user:${n}`;
      const signup = n % 90;
      messages.push(identify(user, signup));
      messages.push(track(user, 'App Opened', signup));
      const strong = n % 3 === 0;
      if (strong) for (let k = 0; k < 3; k++) messages.push(track(user, 'Report: "Run" #1', signup + k, { 'target-type': `t${k}` }));
      if (strong ? n % 6 === 0 : n % 30 === 1) conversions.push({ type: 'user', id: user, convertedAt: at(signup + 6) });
    }
    const result = discoverFromMessages(messages, conversions);
    expect(result.selected[0]?.event).toBe('Report: "Run" #1');
    const yaml = suggestedRulesYaml(result)!;
    const ruleset = loadRules(yaml, 'suggested.rules.yaml');
    expect(Object.keys(ruleset.file.signals)).toEqual(result.selected.map((candidate) => candidate.name));
    expect(ruleset.file.tiers[0]!.name).toBe('PQL-A');
    expect(ruleset.file.signup?.trait).toBe('createdAt');
    // Discovered against conversions from the stream, the suggestion carries their definition.
    const withConversion = loadRules(suggestedRulesYaml(result, { conversion: conversionSchema.parse({ event: 'Order Completed', where: { total: { gte: 1 } } }) })!, 'suggested.rules.yaml');
    expect(withConversion.file.conversion).toEqual({ event: 'Order Completed', where: { total: { gte: 1 } }, keep_in_tiers: false });
  });
});

describe('discover on planted data: finds what was planted, and nothing else', () => {
  // examples/backtest's behaviours: activation (2-3 dashboards, 1-2 teammates, a data source) and plan limits change
  // conversion; sharing, exports and premium features are noise; logins and page views are everyone's habit.
  const stream = generatePlantedStream({ seed: 3, users: 3000, accounts: 300, days: 60, behaviours: exampleBehaviours, baseRate: 0.04 });
  const eventsOf = (behaviours: readonly PlantedBehaviour[]) => new Set(behaviours.flatMap((behaviour) => behaviour.events.map((event) => event.event)));
  const planted = eventsOf(exampleBehaviours.filter((behaviour) => behaviour.conversionRate !== undefined));
  const noise = new Set([...eventsOf(exampleBehaviours.filter((behaviour) => behaviour.conversionRate === undefined)), 'Logged In', 'Page Viewed']);
  // Each line as `pql-radar discover` reads it: JSON, then ingest's validation.
  const messages = stream.messages.map((message, index) => {
    const outcome = parseEvent('planted.jsonl', JSON.stringify(message), index + 1, Date.now());
    if (outcome === undefined || outcome instanceof Error) throw new Error(`line ${index + 1}: ${outcome?.message}`);
    return outcome;
  });
  const result = discoverFromMessages(messages, stream.conversions);
  const rank = (events: Set<string>) => result.candidates.findIndex((candidate) => events.has(candidate.event));

  it('ranks every planted behaviour above every noise signal', () => {
    expect(planted).toEqual(new Set(['Dashboard Created', 'Teammate Invited', 'Data Source Connected', 'Plan Limit Reached']));
    expect(planted.has(result.candidates[0]!.event)).toBe(true);
    const firstNoise = rank(noise);
    expect(firstNoise).toBeGreaterThan(0);
    for (const event of planted) expect(rank(new Set([event])), event).toBeLessThan(firstNoise);
    // Noise is measured, and found to be noise: no noise candidate's training lift interval is above 1.
    for (const candidate of result.candidates.filter((c) => noise.has(c.event) && c.train.fired >= 30)) {
      expect(candidate.train.lift?.low ?? 0, candidate.description).toBeLessThan(1.3);
    }
  });

  it('selects the planted behaviours, once each, and no noise', () => {
    const selected = result.selected.map((candidate) => candidate.event);
    expect(selected.every((event) => planted.has(event))).toBe(true);
    // Activation's three events fire for the same users: one of them stands for all three.
    expect(selected.filter((event) => event !== 'Plan Limit Reached')).toHaveLength(1);
    expect(selected).toContain('Plan Limit Reached');
    for (const candidate of result.selected) expect(candidate.holdout.lift!.low).toBeGreaterThan(1);
    // The activation signal's lift is about the planted one: 0.35 against the others' mix of 0.04 and 0.2.
    expect(result.selected[0]!.train.lift!.value).toBeGreaterThan(4);
    expect(result.selected[0]!.points).toBeGreaterThan(result.selected.at(-1)!.points!);
  });

  it('is blind to everything after a conversion: adding post-conversion activity changes no figure', () => {
    // Every converter, after converting, upgrades like mad: a perfect "predictor" if any of it leaked.
    const after = stream.conversions
      .filter((conversion) => conversion.type === 'user')
      .flatMap((conversion) =>
        [0, 1, 60_000, 86_400_000].flatMap((offset, k) => [
          accepted({ type: 'track', userId: conversion.id, event: 'Upgrade Completed', properties: { plan: `pro-${k}` }, timestamp: new Date(Date.parse(conversion.convertedAt) + offset).toISOString() }),
          accepted({ type: 'track', userId: conversion.id, event: 'Dashboard Created', properties: { widgets: 99 }, timestamp: new Date(Date.parse(conversion.convertedAt) + offset).toISOString() }),
        ]),
      );
    const leaked = discoverFromMessages([...after, ...messages], stream.conversions);
    expect(leaked.input.afterConversion).toBe(result.input.afterConversion + after.length);
    expect(leaked.candidates.some((candidate) => candidate.event === 'Upgrade Completed')).toBe(false);
    const strip = (r: typeof result) => ({ candidates: r.candidates, selected: r.selected, tiers: r.tiers });
    expect(strip(leaked)).toEqual(strip(result));
  });

  it('writes a rules file that loadRules accepts, whose signals fire for the users discover counted', () => {
    const yaml = suggestedRulesYaml(result)!;
    const ruleset = loadRules(yaml, 'suggested.rules.yaml');
    expect(Object.keys(ruleset.file.signals)).toEqual(result.selected.map((candidate) => candidate.name));
    expect(ruleset.file.tiers.map((tier) => tier.name)).toEqual(result.tiers.map((tier) => tier.name));
    expect(yaml).toMatch(/# .*holdout: fired for/);

    // The rules engine, on each user's events before conversion (all of them for the others), agrees with discover.
    const convertedAt = new Map(stream.conversions.filter((c) => c.type === 'user').map((c) => [c.id, c.convertedAt]));
    const byUser = new Map<string, { events: UsageEvent[]; first: string; createdAt?: unknown }>();
    for (const message of messages) {
      const conversion = convertedAt.get(message.identity.id);
      if (conversion !== undefined && message.timestamp >= conversion) continue;
      const user = byUser.get(message.identity.id) ?? { events: [], first: message.timestamp };
      byUser.set(message.identity.id, user);
      if (message.timestamp < user.first) user.first = message.timestamp;
      if (message.type === 'identify' && message.traits?.['createdAt'] !== undefined) user.createdAt = message.traits['createdAt'];
      else if (message.type !== 'identify' && message.type !== 'group') user.events.push(message.message as unknown as UsageEvent);
    }
    const now = new Date(stream.end);
    const matched = new Map(result.selected.map((candidate) => [candidate.name, 0]));
    for (const [id, user] of byUser) {
      const facts = factsFor(user.events, ruleset, { id, firstSeen: user.first, traits: user.createdAt === undefined ? {} : { createdAt: user.createdAt } });
      const evaluation = evaluate(facts, ruleset, now);
      for (const name of matched.keys()) if (evaluation.signals[name]!.matched) matched.set(name, matched.get(name)! + 1);
    }
    for (const candidate of result.selected) expect(matched.get(candidate.name), candidate.name).toBe(candidate.train.fired + candidate.holdout.fired);
  });
});

describe('discover: people, and the holdout of the latest signups', () => {
  it('holds out the latest 30% of signups even when signups stop long before the data ends', () => {
    const messages: DiscoveryMessage[] = [];
    // 100 users sign up over the first 20 days; activity goes on for 200 days more.
    for (let n = 0; n < 100; n++) {
      const signup = Math.floor(n / 5);
      messages.push(identify(`u${n}`, signup));
      messages.push(track(`u${n}`, 'Logged In', signup + 200));
    }
    const result = discoverFromMessages(messages, [], { minUsers: 1 });
    expect(result.groups.holdout.users).toBe(30);
    expect(result.groups.train.users).toBe(70);
    expect(result.period.holdoutFrom.slice(0, 10)).toBe(at(14).slice(0, 10));
  });

  /** 600 users sign up over the first 30 days, activity goes on for 200 days more; Report Run predicts conversion. */
  function signupsStopEarly() {
    const messages: DiscoveryMessage[] = [];
    const conversions: DiscoveryConversion[] = [];
    for (let n = 0; n < 600; n++) {
      const user = `u${n}`;
      const signup = n % 30;
      messages.push(identify(user, signup));
      messages.push(track(user, 'Logged In', signup + 200));
      const strong = n % 3 === 0;
      if (strong) messages.push(track(user, 'Report Run', signup + 1));
      if (strong ? n % 6 === 0 : n % 30 === 1) conversions.push({ type: 'user', id: user, convertedAt: at(signup + 6) });
    }
    return discoverFromMessages(messages, conversions);
  }

  it('says in the suggested file that the holdout is the latest signups, not the end of the period', () => {
    const result = signupsStopEarly();
    expect(result.period.holdoutFrom.slice(0, 10)).toBe(at(21).slice(0, 10));
    expect(suggestedRulesYaml(result)).toContain(`#   holdout: users who signed up from ${at(21).slice(0, 10)} on (the latest 30% of signups): 180,`);
  });

  it('says a candidate is kept only when its lift is above 1 on the training users and on the holdout, as it is', () => {
    const result = signupsStopEarly();
    expect(formatDiscoveryTable(result)).toContain('kept when the lift\'s interval is above 1 on the training users and on the holdout.');
    expect(suggestedRulesYaml(result)).toContain('#   it fired for over that of the rest), kept only when the lower bound is above 1 there and on the holdout,\n');
  });

  it("counts a visitor's events before signup as its user's, once, and leaves unclaimed visitors out", () => {
    const messages: DiscoveryMessage[] = [
      accepted({ type: 'track', anonymousId: 'v1', event: 'Pricing Viewed', timestamp: at(1) }),
      accepted({ type: 'track', anonymousId: 'v1', event: 'Pricing Viewed', timestamp: at(2) }),
      accepted({ type: 'identify', userId: 'ann', anonymousId: 'v1', traits: { createdAt: at(3, 9) }, timestamp: at(3, 9) }),
      accepted({ type: 'track', anonymousId: 'v2', event: 'Pricing Viewed', timestamp: at(2) }),
    ];
    const collector = new DiscoveryCollector([]);
    for (const message of [...messages, ...messages]) collector.add(message);
    const snapshot = collector.snapshot();
    expect([...snapshot.users.keys()]).toEqual(['ann']);
    // Two views on two days, each sent twice: counted once each, on the user.
    const pricing = snapshot.eventNames.indexOf('Pricing Viewed');
    expect(snapshot.users.get('ann')!.events.get(pricing)).toHaveLength(2);
    const { groups } = discover(snapshot, { minUsers: 1 });
    expect(groups.train.users + groups.holdout.users).toBe(1);
  });
});

describe('discover resolves identities as the evaluator does (README, Identity)', () => {
  /** Each message order, and its reverse: the alias is read before the aliased id's messages, and after them. */
  function collect(conversions: DiscoveryConversion[], messages: DiscoveryMessage[]) {
    return [messages, [...messages].reverse()].map((order) => {
      const collector = new DiscoveryCollector(conversions);
      for (const message of order) collector.add(message);
      return collector.snapshot();
    });
  }

  it("keeps the user's own signup: an aliased user's createdAt does not move it", () => {
    const snapshots = collect([], [
      accepted({ type: 'identify', userId: 'b', traits: { createdAt: '2025-01-01T09:00:00.000Z' }, timestamp: '2025-01-01T09:00:00.000Z' }),
      accepted({ type: 'identify', userId: 'a', traits: { createdAt: '2025-03-01T09:00:00.000Z' }, timestamp: '2025-03-01T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-03-02T09:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) expect(snapshot.users.get('b')!.trait).toBe('2025-01-01T09:00:00.000Z');
  });

  it("gives a user with no signup trait its first message as signup, an aliased user's or a visitor's included, never their traits", () => {
    const snapshots = collect([], [
      accepted({ type: 'identify', anonymousId: 'v', traits: { createdAt: '2025-01-20T09:00:00.000Z' }, timestamp: '2025-01-03T09:00:00.000Z' }),
      accepted({ type: 'identify', userId: 'a', anonymousId: 'v', traits: { createdAt: '2025-01-15T09:00:00.000Z' }, timestamp: '2025-01-02T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'b', event: 'Export', timestamp: '2025-01-10T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-01-11T09:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) {
      expect([...snapshot.users.keys()]).toEqual(['b']);
      const b = snapshot.users.get('b')!;
      expect(b.trait).toBeUndefined();
      expect(new Date(b.firstMs).toISOString()).toBe('2025-01-02T09:00:00.000Z');
    }
  });

  it("does not count an aliased user's events at or after its user's conversion", () => {
    const snapshots = collect([{ type: 'user', id: 'b', convertedAt: '2025-02-01T12:00:00.000Z' }], [
      accepted({ type: 'track', userId: 'b', event: 'Export', timestamp: '2025-01-10T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-01-11T09:00:00.000Z' }),
      // Before the conversion, on its day: counted.
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-02-01T11:59:59.999Z' }),
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-02-01T12:00:00.000Z' }),
      ...[10, 11, 12, 13].map((day) => accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: `2025-02-${day}T09:00:00.000Z` })),
    ]);
    for (const snapshot of snapshots) {
      expect(snapshot.input.afterConversion).toBe(5);
      expect(snapshot.input.productEvents).toBe(2);
      expect(snapshot.users.get('b')!.events.get(snapshot.eventNames.indexOf('Invoice Paid'))).toHaveLength(1);
    }
  });

  it("takes a conversion listed under an aliased userId as its user's, and counts none of the user's own events from it on", () => {
    const conversion = '2025-02-01T12:00:00.000Z';
    const snapshots = collect([{ type: 'user', id: 'a', convertedAt: conversion }], [
      accepted({ type: 'identify', userId: 'b', traits: { createdAt: '2025-01-05T09:00:00.000Z' }, timestamp: '2025-01-05T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'b', event: 'Export', timestamp: '2025-01-10T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'b', event: 'Export', properties: { format: 'csv' }, timestamp: '2025-01-20T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-01-25T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-01-26T09:00:00.000Z' }),
      // From the conversion on: never counted, the user's own as well as the aliased id's.
      accepted({ type: 'track', userId: 'b', event: 'Export', properties: { format: 'pdf' }, timestamp: conversion }),
      accepted({ type: 'identify', userId: 'b', traits: { plan: 'pro' }, timestamp: '2025-02-02T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-02-03T09:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) {
      expect([...snapshot.users.keys()]).toEqual(['b']);
      const b = snapshot.users.get('b')!;
      expect(new Date(b.convertedMs).toISOString()).toBe(conversion);
      expect(b.trait).toBe('2025-01-05T09:00:00.000Z');
      expect(b.events.get(snapshot.eventNames.indexOf('Export'))).toHaveLength(2);
      expect(b.events.get(snapshot.eventNames.indexOf('Invoice Paid'))).toHaveLength(1);
      // csv only: pdf came with the conversion.
      expect([...b.distinct.values()].map((values) => values.length / 2)).toEqual([1]);
      expect(snapshot.input.productEvents).toBe(3);
      // The aliased id's last invoice, dropped as read, and the user's pdf export, dropped once the alias is known.
      expect(snapshot.input.afterConversion).toBe(2);
      expect(snapshot.input.conversions).toMatchObject({ users: 1, unseen: 0, beforeFirstMessage: 0 });
    }
  });

  it("takes a conversion listed under a claimed visitor's anonymousId as its user's, and leaves one under a visitor nobody claimed out, counted", () => {
    const conversion = '2025-02-01T12:00:00.000Z';
    const snapshots = collect(
      [
        { type: 'visitor', id: 'laptop', convertedAt: conversion },
        { type: 'visitor', id: 'stranger', convertedAt: conversion },
      ],
      [
        accepted({ type: 'track', anonymousId: 'laptop', event: 'Pricing Viewed', timestamp: '2025-01-05T09:00:00.000Z' }),
        accepted({ type: 'identify', userId: 'ann', anonymousId: 'laptop', timestamp: '2025-01-06T09:00:00.000Z' }),
        accepted({ type: 'track', userId: 'ann', event: 'Export', timestamp: '2025-01-20T09:00:00.000Z' }),
        // From the conversion on: never counted, the user's own as well as the visitor's.
        accepted({ type: 'track', userId: 'ann', event: 'Export', timestamp: conversion }),
        accepted({ type: 'track', anonymousId: 'laptop', event: 'Pricing Viewed', timestamp: '2025-02-02T09:00:00.000Z' }),
        accepted({ type: 'track', anonymousId: 'stranger', event: 'Pricing Viewed', timestamp: '2025-01-07T09:00:00.000Z' }),
      ],
    );
    for (const snapshot of snapshots) {
      expect([...snapshot.users.keys()]).toEqual(['ann']);
      const ann = snapshot.users.get('ann')!;
      expect(new Date(ann.convertedMs).toISOString()).toBe(conversion);
      expect(ann.events.get(snapshot.eventNames.indexOf('Export'))).toHaveLength(1);
      expect(ann.events.get(snapshot.eventNames.indexOf('Pricing Viewed'))).toHaveLength(1);
      expect(snapshot.input.afterConversion).toBe(2);
      expect(snapshot.input.conversions).toMatchObject({ users: 0, visitors: 2, unclaimedVisitors: 1, unseen: 0, beforeFirstMessage: 0 });
      expect(discover(snapshot, { minUsers: 1 }).warnings).toContain('1 conversions listed under anonymous ids nobody claimed were left out: discover works on users');
    }
  });

  it('never takes a signup trait set at or after the conversion of an id aliased into the user: the signup is then its first message', () => {
    const snapshots = collect([{ type: 'user', id: 'a', convertedAt: '2025-02-01T12:00:00.000Z' }], [
      accepted({ type: 'identify', userId: 'b', traits: { createdAt: '2025-01-05T09:00:00.000Z' }, timestamp: '2025-01-05T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-01-26T09:00:00.000Z' }),
      accepted({ type: 'identify', userId: 'b', traits: { createdAt: '2025-01-31T09:00:00.000Z' }, timestamp: '2025-02-02T09:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) {
      const b = snapshot.users.get('b')!;
      // The value before it was not kept (one value a user), so neither is used.
      expect(b.trait).toBeUndefined();
      expect(new Date(b.firstMs).toISOString()).toBe('2025-01-05T09:00:00.000Z');
    }
  });

  it('counts a user whose own messages all came after the conversion of an id aliased into it as converted before its first message', () => {
    const snapshots = collect([{ type: 'user', id: 'a', convertedAt: '2025-02-01T12:00:00.000Z' }], [
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-02-03T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'b', event: 'Export', timestamp: '2025-02-10T09:00:00.000Z' }),
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-02-10T10:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) {
      expect(snapshot.users.size).toBe(0);
      expect(snapshot.input.productEvents).toBe(0);
      expect(snapshot.input.conversions).toMatchObject({ users: 1, unseen: 0, beforeFirstMessage: 1 });
    }
  });

  it('counts a user converted before the first message of its own and of its aliased ids as converted before its first message', () => {
    const snapshots = collect([{ type: 'user', id: 'b', convertedAt: '2025-02-01T12:00:00.000Z' }], [
      accepted({ type: 'alias', userId: 'b', previousId: 'a', timestamp: '2025-03-01T09:00:00.000Z' }),
      accepted({ type: 'track', userId: 'a', event: 'Invoice Paid', timestamp: '2025-02-10T09:00:00.000Z' }),
    ]);
    for (const snapshot of snapshots) {
      expect(snapshot.users.size).toBe(0);
      expect(snapshot.input.conversions.beforeFirstMessage).toBe(1);
      expect(snapshot.input.afterConversion).toBe(2);
    }
  });
});
