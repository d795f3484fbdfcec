import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays } from '../../functions/core/days';
import { evaluateChanges, evaluateShard } from '../../functions/core/evaluate-leads';
import type { EntityRef } from '../../functions/core/ports';
import { convertsBy } from '../../functions/core/conversion';
import { accountFacts, type MemberRows } from '../../functions/core/facts';
import { evaluate, type EntityFacts, type Evaluation, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';
import { factsFor } from '../support/facts';
import { InMemoryEvaluationStore } from '../support/in-memory-evaluation-store';
import { RecordingPublisher } from '../support/lead-events';
import { accountSignalArb, conversionArb, daysArb, eventArb, eventNames, propertiesOf, richSignalArb, userSignalArb } from '../support/rules-arbitraries';

/**
 * The evaluator as deployed runs every minute, not once a day: a user's day is recomputed by several runs, its open
 * days carried in the state and written out once older than yesterday, late events reopening days already written, its
 * since-signup span kept in the state. Whatever the runs, every evaluation gives what evaluating the user's whole
 * history from scratch gives at that moment: the same score, the same signals matched, the same first and last seen;
 * and after every run each user's tier and route are those from scratch, evaluated by that run or not: what time alone
 * changes (a window sliding, inactivity, signup age, decay) made its sweep due by then. A user's conversion is recorded
 * at its earliest converting message, by the first run after that arrives: a late one moves it earlier. Generated rules
 * of users (every kind of user signal, time zones, a score cap, anonymous visitors as leads, cooldowns, conversions,
 * routes by trait), users whose traits change, accounts whose traits change (which users' signals may read), product
 * events up to 3 days late, and up to 3 runs a day at any hour besides the one at its end; the store keeps up to 2
 * changed days open per save, or 90 (more rebuild the user's days from every event). The runs are as deployed (the
 * stream's changes first) or from the change lists, over one shard or several, with small pages or large, one entity
 * at a time or several, half the time with changes that wait for the end of an interval, half the time with runs cut
 * short by their deadline, and half the time with the stream's evaluation and the shards' runs at once (Deployment).
 *
 * RUNS=n runs n unseeded cases instead of the 300 seeded ones CI runs; FC_SEED and FC_PATH replay the counterexample
 * of a failure (the seed and path fast-check prints).
 */

const workspace = 'ws';
const firstDay = '2025-03-03';
const hourMs = 3_600_000;
const at = (day: number, hour: number) => `${addDays(firstDay, day)}T${String(hour).padStart(2, '0')}:15:00.000Z`;

const rulesArb = fc
  .record({
    base: fc.record({ event: eventArb, window: daysArb, points: fc.integer({ min: 0, max: 30 }) }),
    signals: fc.array(userSignalArb, { minLength: 1, maxLength: 5 }),
    // Often a signal on the account's size, which its resizes turn (userSignalArb's are one kind in many).
    accountFit: fc.option(fc.record({ trait: fc.constant('employees'), of: fc.constant('account'), is: fc.record({ gte: fc.constant(50) }), points: fc.integer({ min: 5, max: 40 }) }), { nil: undefined }),
    warm: fc.integer({ min: 10, max: 50 }),
    hotAbove: fc.integer({ min: 5, max: 60 }),
    // Accounts as leads too, on any kind of account signal.
    team: fc.option(fc.oneof(accountSignalArb, richSignalArb.filter((signal) => 'level' in signal)), { nil: undefined }),
    cap: fc.option(fc.integer({ min: 20, max: 80 }), { nil: undefined }),
    timezone: fc.constantFrom(undefined, 'America/New_York', 'Asia/Kolkata'),
    // Anonymous visitors as leads of their own until a user claims them.
    anonymousLeads: fc.boolean(),
    cooldownDays: fc.integer({ min: 0, max: 3 }),
    conversion: fc.option(conversionArb, { nil: undefined }),
    // The user tiers' routes: one each, or chosen by the user's plan (an upgrade turns it) or its account's size (a resize).
    routes: fc.constantFrom<[unknown, unknown]>(
      ['sales', 'nurture'],
      ['sales', { by: 'plan', map: { pro: 'sales' }, default: 'nurture' }],
      [{ by: 'account.employees', map: { '300': 'enterprise' }, default: 'sales' }, { by: 'account.employees', map: { '20': 'sales' }, default: 'nurture' }],
    ),
  })
  .map(({ base, signals, accountFit, warm, hotAbove, team, cap, timezone, anonymousLeads, cooldownDays, conversion, routes: [hotRoute, warmRoute] }) =>
    JSON.stringify({
      version: 1,
      signup: { trait: 'createdAt' },
      signals: {
        base,
        base_none: { event: 'Never Sent', points: 0 },
        ...Object.fromEntries(signals.map((signal, index) => [`s${index}`, signal])),
        ...(accountFit ? { account_fit: accountFit } : {}),
        ...(team ? { team } : {}),
      },
      tiers: [
        { name: 'hot', min_score: warm + hotAbove, route: hotRoute },
        { name: 'warm', min_score: warm, route: warmRoute },
        ...(team ? [{ name: 'team', min_score: Math.max(team.points, 1), route: 'sales', level: 'account' }] : []),
      ],
      ...(cap !== undefined ? { scoring: { cap } } : {}),
      ...(timezone ? { timezone } : {}),
      ...(anonymousLeads ? { identity: { anonymous_leads: true } } : {}),
      ...(cooldownDays > 0 ? { policy: { cooldown: `${cooldownDays}d` } } : {}),
      ...(conversion ? { conversion } : {}),
    }),
  );

const dayEventsArb = fc.array(fc.record({ event: fc.constantFrom(...eventNames), hour: fc.integer({ min: 0, max: 23 }) }), { maxLength: 4 });

const usersArb = fc.array(
  fc.record({
    signupDay: fc.integer({ min: 0, max: 6 }),
    employees: fc.constantFrom(5, 60, 500),
    // Per day from signup: the events of that day (a quiet day has none).
    days: fc.array(dayEventsArb, { minLength: 1, maxLength: 12 }),
    // Days after signup when an identify gives this user the other company size (its traits change).
    upgraded: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
    account: fc.constantFrom(undefined, 'a0', 'a1'),
    // When a group call from this user gives its account the other size (its account's traits change).
    resized: fc.option(fc.record({ day: fc.integer({ min: 1, max: 6 }), hour: fc.integer({ min: 0, max: 23 }) }), { nil: undefined }),
    // A device this user used first as an anonymous visitor, from two days before signup: its events claim the visitor
    // (two users on one device: the first claim wins, which a late event may turn).
    device: fc.option(fc.record({ id: fc.constantFrom('d0', 'd1'), days: fc.array(dayEventsArb, { maxLength: 4 }) }), { nil: undefined }),
    // An alias making this user the one `after` users on, `day` days after that one's signup.
    alias: fc.option(fc.record({ after: fc.integer({ min: 1, max: 2 }), day: fc.integer({ min: 0, max: 8 }), hour: fc.integer({ min: 0, max: 23 }) }), { nil: undefined }),
  }),
  { minLength: 1, maxLength: 3 },
);

interface Message {
  /** A user's message, or an anonymous visitor's (no userId). */
  userId?: string;
  /** What the store keeps of it, which the evaluation from scratch reads too. */
  event: UsageEvent & { messageId: string; traits?: Record<string, unknown>; groupId?: string; anonymousId?: string; previousId?: string };
  receivedAt: string;
}

const accountEmployees: Record<string, number> = { a0: 20, a1: 300 };

type Users = typeof usersArb extends fc.Arbitrary<infer T> ? T : never;

/** The users' messages, product events late by `lateness` days in turn, in the order they arrive. */
function messagesOf(users: Users, lateness: readonly number[]): Message[] {
  const messages: Message[] = [];
  // Days late, in turn, for product events, the users' and their devices'.
  let turn = 0;
  users.forEach((user, index) => {
    const userId = `u${index}`;
    const identify = (messageId: string, timestamp: string, traits: Record<string, unknown>) =>
      messages.push({ userId, event: { type: 'identify', timestamp, messageId, traits }, receivedAt: timestamp });
    const group = (groupId: string, messageId: string, timestamp: string, employees: number) =>
      messages.push({ userId, event: { type: 'group', timestamp, messageId, traits: { employees }, groupId }, receivedAt: timestamp });
    identify(`${userId}-i`, at(user.signupDay, 0), { createdAt: at(user.signupDay, 0), employees: user.employees });
    if (user.upgraded !== undefined) identify(`${userId}-upgrade`, at(user.signupDay + user.upgraded, 6), { employees: user.employees === 5 ? 60 : 5, plan: 'pro' });
    if (user.account) {
      group(user.account, `${userId}-g`, at(user.signupDay, 0), accountEmployees[user.account]!);
      if (user.resized) group(user.account, `${userId}-resize`, at(user.signupDay + user.resized.day, user.resized.hour), accountEmployees[user.account] === 20 ? 300 : 20);
    }
    const late = (timestamp: string) => new Date(Date.parse(timestamp) + lateness[turn++ % lateness.length]! * 24 * hourMs).toISOString();
    const anonymousId = user.device?.id;
    user.days.forEach((events, offset) =>
      events.forEach(({ event, hour }, position) => {
        const timestamp = at(user.signupDay + offset, hour);
        messages.push({
          userId,
          event: { type: 'track', event, timestamp, messageId: `${userId}-${offset}-${position}`, properties: propertiesOf(index + offset + position), ...(anonymousId ? { anonymousId } : {}) },
          receivedAt: late(timestamp),
        });
      }),
    );
    user.device?.days.forEach((events, offset) =>
      events.forEach(({ event, hour }, position) => {
        const timestamp = at(Math.max(0, user.signupDay - 2 + offset), hour);
        messages.push({ event: { type: 'track', event, timestamp, messageId: `${anonymousId}-${userId}-${offset}-${position}`, anonymousId: anonymousId! }, receivedAt: late(timestamp) });
      }),
    );
    // Not of users in accounts: what a member merged away counts for its account, the evaluator-backtest properties say.
    const into = user.alias && !user.account ? users[index + user.alias.after] : undefined;
    if (user.alias && into && !into.account) {
      const intoId = `u${index + user.alias.after}`;
      const timestamp = at(into.signupDay + user.alias.day, user.alias.hour);
      messages.push({ userId: intoId, event: { type: 'alias', timestamp, messageId: `${intoId}-alias-${userId}`, previousId: userId }, receivedAt: timestamp });
    }
  });
  return messages.sort((a, b) => (a.receivedAt < b.receivedAt ? -1 : a.receivedAt > b.receivedAt ? 1 : a.event.messageId < b.event.messageId ? -1 : 1));
}

/** How the evaluator is run, as deployed or as `pql-radar evaluate` runs it. */
interface Deployment {
  /**
   * `listed`: every change waits in the shard's change list for a scheduled run. `stream`: as deployed, the changes
   * come off the table's stream to evaluateChanges first, and the scheduled run takes what it leaves and the sweeps.
   */
  path: 'listed' | 'stream';
  pageSize: number;
  concurrency: number;
  /** How long a user with new events, or an account its members moved, waits after its last evaluation. */
  userIntervalMs: number;
  accountIntervalMs: number;
  /** The stream's evaluator keeps the waits it knows between runs (a warm instance), or starts afresh each run. */
  warm: boolean;
  /** Shards the entities spread over, each run evaluating them one after another (deployed, at once). */
  shards: number;
  /**
   * How often a call may ask whether time is up before it is (a run cut short by its deadline, under a backlog: what
   * it leaves, the next run takes, a minute later), twice as often after each run cut short; none: never.
   */
  timeChecks?: number;
  /**
   * The stream's evaluation and the scheduled run's shards at once, as deployed (separate invocations; a run's shards
   * in parallel), their reads and saves interleaved; otherwise one after another.
   */
  overlapping?: boolean;
}

const asScheduled: Deployment = { path: 'listed', pageSize: 100, concurrency: 8, userIntervalMs: 0, accountIntervalMs: 0, warm: true, shards: 1 };

/**
 * Delivers the messages as they arrive and runs the evaluator at the given hours of every day (of the rules' days) and
 * at its end; after each run, what every user evaluated by it was saved with, beside an evaluation from scratch.
 * Where changes may wait (an interval), a run is compared only once none does, but for an account waiting for the end
 * of its interval; elsewhere, and at the last run, a change still waiting is `unsettled`.
 */
async function evaluatedAlongTheWay(rulesText: string, messages: readonly Message[], runHours: readonly (readonly number[])[], maxChangedDaysPerSave: number, deployment: Deployment = asScheduled) {
  const ruleset = loadRules(rulesText, 'generated');
  const { calendar } = ruleset;
  const store = new InMemoryEvaluationStore({ calendar, maxChangedDaysPerSave, shards: deployment.shards });
  const shards = Array.from({ length: deployment.shards }, (_, shard) => String(shard));
  const publisher = new RecordingPublisher();
  /** By identity (`user:id`, `visitor:id`): the events received so far, and a user's traits and account. */
  const received = new Map<string, { events: Message['event'][]; traits: Record<string, unknown>; account?: string }>();
  const accountTraits = new Map<string, Record<string, unknown>>();
  /** The claims received so far on each identity (an alias on a user, a user's event on its device's visitor). */
  const claims = new Map<string, { to: string; at: string; messageId: string }[]>();
  const saved: unknown[] = [];
  const fromScratch: unknown[] = [];
  const savedTiers: { label: string; tier: string | null; route: string | null }[] = [];
  const tiersFromScratch: { label: string; tier: string | null; route: string | null }[] = [];
  const unsettled: string[] = [];
  /** The conversion each user's state records, after every run, beside the time it should be. */
  const savedConversions: { label: string; at: string | null }[] = [];
  const expectedConversions: { label: string; at: string | null }[] = [];
  /** The times of each user's converting messages received so far; the users an alias joins (their merges are not followed here). */
  const converting = new Map<string, string[]>();
  const aliased = new Set<string>();
  const waits = new Map<string, string>();
  const { userIntervalMs, accountIntervalMs } = deployment;
  const changesMayWait = userIntervalMs > 0 || accountIntervalMs > 0;
  const lastDay = addDays(messages.reduce((last, message) => (message.receivedAt > last ? message.receivedAt : last), '').slice(0, 10), 4);
  let next = 0;
  for (let day = addDays(firstDay, -1), index = 0; day <= lastDay; day = addDays(day, 1), index++) {
    const start = Date.parse(calendar.endOf(addDays(day, -1))) + 1;
    const end = Date.parse(calendar.endOf(day));
    const times = [...new Set(runHours[index % runHours.length]!.map((hour) => start + hour * hourMs + 30 * 60_000))].filter((time) => time < end).sort((a, b) => a - b);
    for (const time of [...times, end]) {
      const now = new Date(time);
      for (; next < messages.length && Date.parse(messages[next]!.receivedAt) <= time; next++) {
        const { userId, event, receivedAt } = messages[next]!;
        const identity = userId !== undefined ? `user:${userId}` : `visitor:${event.anonymousId!}`;
        const entry = received.get(identity) ?? { events: [], traits: {} };
        received.set(identity, entry);
        entry.events.push(event);
        const claim = (from: string) => claims.set(from, [...(claims.get(from) ?? []), { to: userId!, at: event.timestamp, messageId: event.messageId }]);
        if (userId === undefined) {
          store.trackVisitor(workspace, event.anonymousId!, event);
          continue;
        }
        store.track(workspace, userId, event, receivedAt);
        if (event.anonymousId !== undefined) claim(`visitor:${event.anonymousId}`);
        if (event.type === 'alias') {
          claim(`user:${event.previousId!}`);
          aliased.add(userId).add(event.previousId!);
        }
        if (ruleset.file.conversion && convertsBy(ruleset.file.conversion, event, 'user')) converting.set(userId, [...(converting.get(userId) ?? []), event.timestamp]);
        if (event.type === 'identify') {
          store.setTraits({ workspace, type: 'user', id: userId }, event.traits!);
          Object.assign(entry.traits, event.traits);
        }
        if (event.type === 'group') {
          const account: EntityRef = { workspace, type: 'account', id: event.groupId! };
          store.join(workspace, userId, account.id);
          entry.account = account.id;
          const changed = Object.entries(event.traits!).some(([name, value]) => store.traitsOf(account)[name] !== value);
          store.setTraits(account, event.traits!);
          accountTraits.set(account.id, { ...store.traitsOf(account) });
          // As change capture lists an account whose profile a group call rewrote (ingest rewrites it on new traits only).
          if (changed) await store.keep([{ ref: account, days: [], since: receivedAt, traitsChanged: true }]);
        }
      }
      // Decaying points looked at again a minute on (6 hours as deployed, which a tier may lag by): every run.
      const options = { ruleset, now, decayIntervalMs: 60_000, concurrency: deployment.concurrency, userIntervalMs, accountIntervalMs };
      let allowedChecks = deployment.timeChecks;
      /** A deadline for one call: out of time once asked more than `allowedChecks` times. */
      const deadline = () => {
        let checks = 0;
        return { outOfTime: () => allowedChecks !== undefined && ++checks > allowedChecks };
      };
      let streamEvaluation: Promise<unknown> = Promise.resolve();
      if (deployment.path === 'stream') {
        if (!deployment.warm) waits.clear();
        const marks = store.takeChanges();
        if (marks.length > 0) streamEvaluation = evaluateChanges(store, publisher, { ...options, ...deadline(), marks, waits });
        if (!deployment.overlapping) await streamEvaluation;
      }
      // What a run leaves (an entity changed again after this run judged it, time up) the next one takes, a minute later.
      for (let run = 0; run < (deployment.timeChecks === undefined ? 5 : 20); run++) {
        let evaluated = 0;
        let incomplete = false;
        const shardRun = async (shard: string) => {
          const result = await evaluateShard(store, publisher, { ...options, ...deadline(), shard, pageSize: deployment.pageSize });
          evaluated += result.evaluated;
          incomplete ||= result.incomplete;
        };
        if (deployment.overlapping) await Promise.all([streamEvaluation, ...shards.map(shardRun)]);
        else for (const shard of shards) await shardRun(shard);
        // What the stream's evaluation left while the first run was going is the next run's.
        if (evaluated === 0 && !incomplete && !(deployment.overlapping && run === 0)) break;
        // Each run cut short gets twice the time: one that redoes what the last redid (a page's reads, an account's
        // members it lists again) before running out gets further.
        if (incomplete && allowedChecks !== undefined) allowedChecks *= 2;
      }
      const refs = [...[...received.keys()].map((identity): EntityRef => ({ workspace, type: identity.startsWith('user:') ? 'user' : 'visitor', id: identity.replace(/^\w+:/, '') })), ...[...accountTraits.keys()].map((id): EntityRef => ({ workspace, type: 'account', id }))];
      const waiting = refs.filter((ref) => store.isMarked(ref)).map((ref) => `${now.toISOString()} ${ref.type} ${ref.id}`);
      // A conversion is recorded at the earliest converting message of those the evaluations have read: with no change
      // waiting, every one received by then. While a change waits, it is one of those received.
      for (const ref of refs) {
        if (ref.type !== 'user' || aliased.has(ref.id)) continue;
        const savedAt = store.stateOf(ref)?.lead?.conversion?.at ?? null;
        const seen = converting.get(ref.id) ?? [];
        const label = `${now.toISOString()} user ${ref.id}`;
        savedConversions.push({ label, at: savedAt });
        if (waiting.length > 0) expectedConversions.push({ label, at: savedAt === null || seen.includes(savedAt) ? savedAt : `one of ${seen.join(', ')}` });
        else expectedConversions.push({ label, at: seen.length > 0 ? seen.reduce((first, at) => (at < first ? at : first)) : null });
      }
      if (!changesMayWait || (day === lastDay && time === end)) unsettled.push(...waiting);
      if (waiting.length > 0) continue;
      // Whose events each identity's are: the end of its chain of first claims (the earliest message, then messageId,
      // then claimant), as of the messages received.
      const ownerOf = (identity: string, seen = new Set<string>()): string => {
        const [first] = [...(claims.get(identity) ?? [])].sort((a, b) => (a.at !== b.at ? (a.at < b.at ? -1 : 1) : a.messageId !== b.messageId ? (a.messageId < b.messageId ? -1 : 1) : a.to < b.to ? -1 : 1));
        return first === undefined || seen.has(identity) ? identity : ownerOf(`user:${first.to}`, new Set([...seen, identity]));
      };
      /** Records what the entity was saved with beside its evaluation from scratch, which it returns. */
      const compare = (ref: EntityRef, facts: EntityFacts): Evaluation | undefined => {
        const state = store.stateOf(ref);
        if (state?.lead === undefined) return undefined;
        const { lead } = state;
        const evaluation = evaluate(facts, ruleset, now);
        const label = `${now.toISOString()} ${ref.type} ${ref.id}`;
        // Every entity, evaluated by this run or not: time alone moving its tier made its sweep due by now. Out of its
        // tier only while a reason holds: a cooldown not yet over, a conversion that takes leads out of their tiers.
        const heldOut = (lead.cooldownUntil !== null && lead.cooldownUntil > now.toISOString()) || (lead.conversion !== undefined && ruleset.file.conversion?.keep_in_tiers === false);
        // An account its members moved within its interval waits for the sweep at the interval's end (moved again in
        // the run that judged it: a member the run left, judged by the next).
        const sweepDue = store.sweepDueOf(ref);
        const waitsForSweep = ref.type === 'account' && sweepDue !== undefined && sweepDue > now.toISOString() && Date.parse(sweepDue) <= now.getTime() + accountIntervalMs;
        savedTiers.push({ label, tier: lead.tier, route: lead.route });
        tiersFromScratch.push((heldOut && lead.tier === null) || waitsForSweep ? { label, tier: lead.tier, route: lead.route } : { label, tier: evaluation.tier, route: evaluation.route });
        if (lead.evaluatedAt === now.toISOString() && !waitsForSweep) {
          saved.push({ label, score: lead.score, matched: [...lead.matched].sort(), firstSeen: state.firstSeen, lastSeen: state.lastSeen });
          fromScratch.push({ label, score: evaluation.score.total, matched: matchedOf(evaluation), firstSeen: facts.firstSeen, lastSeen: facts.lastSeen });
        }
        return evaluation;
      };
      /** Each account's members as they are from scratch: their totals, days, tier and signals matched. */
      const members = new Map<string, MemberRows[]>();
      for (const [identity, user] of received) {
        // A visitor is judged as a user of its own while unclaimed, where visitors are leads.
        const type = identity.startsWith('user:') ? 'user' : 'visitor';
        if (ownerOf(identity) !== identity || (type === 'visitor' && !ruleset.anonymousLeads)) continue;
        const id = identity.slice(`${type}:`.length);
        const events = [...received].filter(([merged]) => ownerOf(merged) === identity).flatMap(([, { events }]) => events);
        const facts = factsFor(events, ruleset, { id, traits: { ...user.traits }, accountTraits: user.account ? [accountTraits.get(user.account)!] : [] });
        const evaluation = compare({ workspace, type, id }, facts);
        if (user.account === undefined || evaluation === undefined) continue;
        const { lifetime, firstSeen, lastSeen, days } = facts;
        // The member's tier as saved, checked above: a cooldown or a conversion may hold it out of the evaluation's.
        const tier = store.stateOf({ workspace, type, id })!.lead!.tier;
        members.set(user.account, [...(members.get(user.account) ?? []), { id, state: { lead: { tier, matched: matchedOf(evaluation) }, lifetime, firstSeen, lastSeen }, days }]);
      }
      for (const [id, traits] of accountTraits) compare({ workspace, type: 'account', id }, accountFacts({ id, traits }, members.get(id) ?? []));
    }
  }
  return { saved, fromScratch, savedTiers, tiersFromScratch, unsettled, savedConversions, expectedConversions };
}

const deploymentArb: fc.Arbitrary<Deployment> = fc.record({
  path: fc.constantFrom('listed', 'stream'),
  pageSize: fc.constantFrom(1, 2, 100),
  concurrency: fc.constantFrom(1, 2, 8),
  // Half the time changes judged at once, which every run is then compared at; otherwise users or accounts wait.
  intervals: fc.oneof(
    fc.constant({ userIntervalMs: 0, accountIntervalMs: 0 }),
    fc.constantFrom({ userIntervalMs: 3 * hourMs, accountIntervalMs: 0 }, { userIntervalMs: 0, accountIntervalMs: 3 * hourMs }, { userIntervalMs: hourMs, accountIntervalMs: 5 * hourMs }),
  ),
  warm: fc.boolean(),
  shards: fc.constantFrom(1, 2, 3),
  // Half the time, runs cut short after a few checks of the time, so that most leave something.
  timeChecks: fc.option(fc.constantFrom(1, 2, 3, 5, 10, 30), { nil: undefined }),
  overlapping: fc.boolean(),
}).map(({ intervals, timeChecks, ...rest }) => ({ ...rest, ...intervals, ...(timeChecks !== undefined ? { timeChecks } : {}) }));

const matchedOf = (evaluation: Evaluation) => Object.keys(evaluation.signals).filter((name) => evaluation.signals[name]!.matched).sort();

const runs = Number(process.env.RUNS ?? 300);

describe('the evaluator, run at any hour', () => {
  it('saves with every evaluation what evaluating the whole history from scratch gives at that moment', { timeout: Math.max(30_000, runs * 100) }, async () => {
    await fc.assert(
      fc.asyncProperty(
        rulesArb,
        usersArb,
        // Days late, taken in turn by the product events (0: on time).
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 12 }),
        // The hours of the rules' day the evaluator runs at besides its end, taken in turn by the days.
        fc.array(fc.array(fc.integer({ min: 0, max: 22 }), { maxLength: 3 }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(2, 90),
        deploymentArb,
        async (rulesText, users, lateness, runHours, maxChangedDaysPerSave, deployment) => {
          const { saved, fromScratch, savedTiers, tiersFromScratch, unsettled, savedConversions, expectedConversions } = await evaluatedAlongTheWay(rulesText, messagesOf(users, lateness), runHours, maxChangedDaysPerSave, deployment);
          expect(unsettled).toEqual([]);
          expect(savedConversions).toEqual(expectedConversions);
          expect(saved).toEqual(fromScratch);
          expect(savedTiers).toEqual(tiersFromScratch);
        },
      ),
      { numRuns: runs, ...(process.env.RUNS ? {} : { seed: 20261205 }), ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true } : {}) },
    );
  });
});

describe('the evaluator, run at any hour, in fixed cases', () => {
  it("judges a user again in the next run once a late event's earlier claim takes its device's visitor away", async () => {
    // u0 claims device d1 on March 6th; u1's event of March 5th, also from d1, arrives on the 6th and takes the visitor
    // (first claim wins); u0, which scored the visitor's report, is judged again without it at the day's last run.
    const rules = JSON.stringify({
      version: 1,
      signup: { trait: 'createdAt' },
      signals: { reported: { event: 'Report Run', window: '3d', points: -1 }, account_fit: { trait: 'employees', of: 'account', is: { gte: 50 }, points: 10 } },
      tiers: [{ name: 'warm', min_score: 10, route: 'nurture' }],
    });
    const users = [
      { signupDay: 2, employees: 5, days: [[], [{ event: 'Data Exported', hour: 0 }]], account: 'a1', device: { id: 'd1', days: [] } },
      { signupDay: 1, employees: 5, days: [[{ event: 'Report Run', hour: 0 }], [{ event: 'Report Run', hour: 1 }]], device: { id: 'd1', days: [[], [], [{ event: 'Report Run', hour: 0 }]] } },
    ] as unknown as Users;
    const { savedTiers, tiersFromScratch } = await evaluatedAlongTheWay(rules, messagesOf(users, [0, 3, 1]), [[0]], 2);
    expect(savedTiers.filter(({ label }) => label === '2025-03-06T23:59:59.999Z user u0')).toEqual([{ label: '2025-03-06T23:59:59.999Z user u0', tier: 'warm', route: 'nurture' }]);
    expect(savedTiers).toEqual(tiersFromScratch);
  });

  it('counts the events its visitor had while another user held it, once a user takes the visitor back before its next evaluation', async () => {
    // u2 claims device d1 on March 4th. On the 5th u0's late claim of the same moment (its smaller messageId) takes
    // d1, and the visitor's late event of the 3rd, 00:15, goes to u0. On the 6th u2's own late event, earlier still,
    // takes d1 back: u2 has the same merged identities as it saved, but the visitor's event of meanwhile was u0's, so
    // its first seen stayed at 01:15. A claim stored after a user's last save now has it read every event again.
    const rules = JSON.stringify({ version: 1, signup: { trait: 'createdAt' }, signals: { base: { event: 'Report Run', window: '1d', points: 0 } }, tiers: [{ name: 'warm', min_score: 10, route: 'nurture' }] });
    const reports = (...hours: number[]) => hours.map((hour) => ({ event: 'Report Run', hour }));
    const users = [
      { signupDay: 1, employees: 5, days: [reports(0, 0, 1), reports(0, 0), reports(0, 0, 0), reports(0, 0), reports(0)], device: { id: 'd1', days: [reports(1, 1, 0), reports(0, 0), reports(0, 0), reports(2, 0)] } },
      { signupDay: 0, employees: 5, days: [reports(0), reports(0), reports(0), reports(0)] },
      { signupDay: 1, employees: 5, days: [reports(0, 0, 0, 1), []], device: { id: 'd1', days: [] } },
    ] as unknown as Users;
    const waiting: Deployment = { ...asScheduled, pageSize: 1, concurrency: 1, shards: 3, userIntervalMs: hourMs, accountIntervalMs: 5 * hourMs, warm: false };
    const { saved, fromScratch } = await evaluatedAlongTheWay(rules, messagesOf(users, [3, 3, 1, 0, 0, 3, 3, 3]), [[1], []], 2, waiting);
    const u2 = saved.find((entry) => (entry as { label: string }).label === '2025-03-06T23:59:59.999Z user u2');
    expect(u2).toMatchObject({ firstSeen: '2025-03-03T00:15:00.000Z' });
    expect(saved).toEqual(fromScratch);
  });

  it("records a user's conversion at its earliest converting message, which its own late event shows after its visitor's change", async () => {
    // u0 converted on March 3rd (Kolkata's 4th), an event that arrives on the 5th after the day's run; on the 6th it
    // converts again. Its device's visitor, on another shard, has an event of the 6th too: the run hands the visitor's
    // day to u0, whose evaluation reads the 6th alone and records that conversion; then u0's own change, on its shard,
    // reads the 4th.
    const rules = JSON.stringify({
      version: 1,
      signup: { trait: 'createdAt' },
      signals: { base: { event: 'Report Run', window: '1d', points: 0 } },
      tiers: [{ name: 'warm', min_score: 10, route: 'nurture' }],
      timezone: 'Asia/Kolkata',
      conversion: { event: 'Data Exported', where: { plan: 'pro' } },
    });
    const users = [
      { signupDay: 0, employees: 5, days: [[{ event: 'Report Run', hour: 0 }, { event: 'Data Exported', hour: 19 }], [], [], [{ event: 'Data Exported', hour: 0 }], [{ event: 'Report Run', hour: 0 }], []], device: { id: 'd1', days: [] } },
      { signupDay: 3, employees: 5, days: [[{ event: 'Report Run', hour: 0 }], []], device: { id: 'd1', days: [[], [], [{ event: 'Report Run', hour: 0 }]] } },
    ] as unknown as Users;
    const threeShards: Deployment = { ...asScheduled, pageSize: 1, concurrency: 1, shards: 3 };
    const { savedConversions, expectedConversions } = await evaluatedAlongTheWay(rules, messagesOf(users, [0, 2, 0]), [[]], 2, threeShards);
    expect(savedConversions.find(({ label }) => label === '2025-03-06T18:29:59.999Z user u0')).toEqual({ label: '2025-03-06T18:29:59.999Z user u0', at: '2025-03-03T19:15:00.000Z' });
    expect(savedConversions).toEqual(expectedConversions);
  });

  it("does not list an account's members again when a run cut short left the account after a member moved it", async () => {
    // u0, a lead routed by its account's size, is swept on March 10th and moves a0; the run runs out of time before
    // a0, which it leaves. The next run judged a0 as new traits: it listed u0, just evaluated, which then waited out
    // its interval past the last run.
    const rules = JSON.stringify({
      version: 1,
      signup: { trait: 'createdAt' },
      signals: {
        s0: { event: 'Report Run', at_least: 1, points: 0, window: '1d', decay: '1d' },
        account_fit: { trait: 'employees', of: 'account', is: { gte: 50 }, points: 10 },
        team: { members_matching: 'base', every: true, level: 'account', points: 10 },
        base: { event: 'Report Run', window: '7d', points: 0 },
      },
      tiers: [
        { name: 'warm', min_score: 10, route: { by: 'account.employees', map: { '20': 'sales' }, default: 'nurture' } },
        { name: 'team', min_score: 10, route: 'sales', level: 'account' },
      ],
    });
    const users = [{ signupDay: 0, employees: 5, days: [[{ event: 'Report Run', hour: 0 }]], account: 'a0', resized: { day: 1, hour: 0 } }] as unknown as Users;
    const cutShort: Deployment = { ...asScheduled, pageSize: 1, concurrency: 1, userIntervalMs: 3 * hourMs, timeChecks: 1 };
    const { unsettled } = await evaluatedAlongTheWay(rules, messagesOf(users, [3, 0]), [[]], 2, cutShort);
    expect(unsettled).toEqual([]);
  });

  it("does not list an account's members again when the account is only swept", async () => {
    // u0 is a lead routed by its account's size. Its account's team signal expires on March 9th, and its sweep that day
    // found u0 just swept itself: listed again as a change of its own, u0 waited out its interval past the last run.
    const rules = JSON.stringify({
      version: 1,
      signup: { trait: 'createdAt' },
      signals: {
        s0: { event: 'Report Run', per: 'week', window: '14d', at_least: 1, periods: 2, points: 0 },
        account_fit: { trait: 'employees', of: 'account', is: { gte: 50 }, points: 10 },
        team: { event: 'Report Run', at_least: 1, points: 1, window: '6d', level: 'account' },
      },
      tiers: [
        { name: 'warm', min_score: 10, route: { by: 'account.employees', map: { '20': 'sales' }, default: 'nurture' } },
        { name: 'team', min_score: 1, route: 'sales', level: 'account' },
      ],
    });
    const users = [{ signupDay: 0, employees: 5, days: [[{ event: 'Report Run', hour: 0 }]], account: 'a0', resized: { day: 1, hour: 0 } }] as unknown as Users;
    const usersWait: Deployment = { ...asScheduled, pageSize: 1, concurrency: 1, userIntervalMs: 3 * hourMs };
    const { unsettled, saved, fromScratch } = await evaluatedAlongTheWay(rules, messagesOf(users, [2, 0]), [[]], 2, usersWait);
    expect(unsettled).toEqual([]);
    expect(saved).toEqual(fromScratch);
  });
});
