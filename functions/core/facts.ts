import { addDays, type Calendar } from './days';
import type { LeadState } from './lead-state';
import { mergeRollups, noNames, rollupDay, signupTime, type DayRollup, type EntityFacts, type Measure, type MemberFacts, type UsageEvent } from './rules/engine';
import type { Ruleset } from './rules/ruleset';

/**
 * What the rule engine sees of a user or an account, built from stored rows: the one place where day rollups,
 * lifetime totals and an account's members become `EntityFacts`. The evaluator (from DynamoDB rows), the backtest
 * (from its in-memory history), the bench and the tests all build facts here, so they cannot drift apart. Pure.
 */

/** The running figures of an entity, saved with its lead state and moved by every recomputed day. */
export interface EntityTotals {
  /** Every retained day added up, pruned to what a rule reads of it (see pruneLifetime). */
  lifetime: DayRollup;
  firstSeen: string | null;
  lastSeen: string | null;
}

/** The stored state of an evaluated entity: its lead state and its totals. */
export interface StoredEntityState extends EntityTotals {
  lead?: LeadState;
  /** The ruleset version the rollups were computed with; another version means they are rebuilt from the events. */
  rollupVersion: string;
  /** The identities (identityKey) merged into this user when it was saved: their events are its events. */
  merged?: string[];
  /**
   * Day rollups saved inside the state rather than as day items: the days the last evaluations recomputed (today, as a
   * rule). They win over the day items of the same days. Keeping them here makes an evaluation one write of one
   * item; a day is written out as its own item once it is older than yesterday and no evaluation recomputes it.
   */
  openDays?: DayRollup[];
  /** A user's since-signup span as its last evaluation counted it, once the span starts before the window (spanDaysOf). */
  spanDays?: SpanDays;
}

/**
 * The days of a user's since-signup span, each with only the measures of the signals counting since signup (days with
 * none left out): what an evaluation reads of the days before its window, which only those signals count. Kept in
 * the state, they save a query of the span at every evaluation: a few bytes a day, as the span is over for most users.
 */
export interface SpanDays {
  /** The span's first day (the signup's): another signup makes another span. */
  from: string;
  /** The last day they were counted through (the evaluation's today): later days are not in them. */
  through: string;
  days: DayRollup[];
}

/** The span days of `days` (any order) that a state keeps: within `span` and through `through`. */
export function spanDaysOf(days: Iterable<DayRollup>, span: DayRange, through: string, ruleset: Ruleset): SpanDays {
  const kept: DayRollup[] = [];
  for (const rollup of days) {
    if (rollup.day < span.from || rollup.day > span.to || rollup.day > through) continue;
    const measures: Record<string, Measure> = {};
    for (const name of ruleset.spanSignals) if (Object.hasOwn(rollup.measures, name)) measures[name] = rollup.measures[name]!;
    if (Object.keys(measures).length > 0) kept.push({ day: rollup.day, activity: rollup.activity, names: noNames, measures });
  }
  return { from: span.from, through, days: kept.sort(byDay) };
}

/**
 * The state's span days when they hold every day of `ranges` (the parts of the days in reach before the window: of
 * the span alone), for the same signup; undefined when they do not, and the days are read.
 */
export function keptSpanDays(state: Pick<StoredEntityState, 'spanDays'> | undefined, ranges: readonly DayRange[]): DayRollup[] | undefined {
  const kept = state?.spanDays;
  if (kept === undefined) return undefined;
  if (ranges.length === 0) return [];
  if (ranges[0]!.from !== kept.from || ranges.some((range) => range.to > kept.through)) return undefined;
  return kept.days.filter((rollup) => inReach(ranges, rollup.day));
}

/** An entity's day rollups in reach: the stored day items with the state's open days over them. */
export function withOpenDays(stored: readonly DayRollup[], state: Pick<StoredEntityState, 'openDays'> | undefined, ranges: readonly DayRange[]): DayRollup[] {
  const days = new Map(stored.map((rollup) => [rollup.day, rollup]));
  for (const rollup of state?.openDays ?? []) if (inReach(ranges, rollup.day)) days.set(rollup.day, rollup);
  return [...days.values()];
}

/**
 * Which days a save keeps open in the state and which it writes out as day items: every recomputed day stays open
 * (two overlapping runs may have recomputed it from different events, and only the state's conditional write decides
 * between them); an earlier open day is written out once it is older than yesterday, with the value every run that
 * read the same state agrees on.
 */
export function closeDays(previous: readonly DayRollup[], recomputed: readonly DayRollup[], now: Date, calendar: Calendar): { open: DayRollup[]; closed: DayRollup[] } {
  const fresh = new Set(recomputed.map((rollup) => rollup.day));
  const yesterday = addDays(calendar.dayOf(now), -1);
  const carried = previous.filter((rollup) => !fresh.has(rollup.day));
  return { open: [...recomputed, ...carried.filter((rollup) => rollup.day >= yesterday)].sort(byDay), closed: carried.filter((rollup) => rollup.day < yesterday) };
}

/**
 * The most a state holds, in bytes of its JSON's UTF-8 (DynamoDB refuses an item over 400 KB, and a state refused once
 * is refused at every save; stored deflated, the item is at most about this). A few KB for most entities; a late batch
 * over many days, or days of hundreds of long distinct values, once made states no save could write. Bytes, not
 * characters: text of three-byte characters takes three times its length, and deflates to about 2.3 bytes a character.
 */
export const maxStateBytes = 192 * 1024;

/**
 * A state within maxStateBytes, and the days its save writes out. What it need not keep goes first: the span days (a
 * saving: the span's day items are read instead), then the open days older than yesterday, then every open day.
 * Written out, a recomputed day admits a race that open days avoid (closeDays): a run that overlaps this one may leave
 * its own recomputation of the day, until the day's next change recomputes it again. That beats a state no save can
 * write.
 */
export function withinStateBound(state: StoredEntityState, closed: readonly DayRollup[], now: Date, calendar: Calendar): { state: StoredEntityState; closed: DayRollup[] } {
  const fits = (candidate: StoredEntityState) => Buffer.byteLength(JSON.stringify(candidate)) <= maxStateBytes;
  if (fits(state)) return { state, closed: [...closed] };
  const { spanDays, openDays = [], ...kept } = state;
  const withOpen = (open: DayRollup[]): StoredEntityState => ({ ...kept, ...(open.length > 0 ? { openDays: open } : {}) });
  const yesterday = addDays(calendar.dayOf(now), -1);
  const recent = openDays.filter((rollup) => rollup.day >= yesterday);
  const open = fits(withOpen(openDays)) ? openDays : fits(withOpen(recent)) ? recent : [];
  return { state: withOpen(open), closed: [...closed, ...openDays.filter((rollup) => !open.includes(rollup))].sort(byDay) };
}

/** Days from `from` to `to`, both included. */
export interface DayRange {
  from: string;
  to: string;
}

/** The day an entity signed up: the signup trait when the rules name one, else its first message. */
export function signupDay(entity: Pick<EntityFacts, 'traits' | 'firstSeen'>, ruleset: Ruleset): string | null {
  const signup = signupTime(entity, ruleset);
  return signup === null ? null : ruleset.calendar.dayOf(signup);
}

/**
 * The day rollups an evaluation at `now` needs: the longest rolling window ending today, and the since-signup span.
 * Older days are never read, so an evaluation costs what the rules look at, not the whole history. The two are one
 * range when they overlap or meet (a recent signup's span lies in the window): the store reads a range with one query,
 * and two queries would read, and bill, the days they share twice.
 */
export function rangesInReach(ruleset: Ruleset, now: Date, signup: string | null): DayRange[] {
  const from = windowFrom(ruleset, now);
  const window = from !== undefined ? { from, to: ruleset.calendar.dayOf(now) } : undefined;
  const span = sinceSignupSpan(ruleset, signup);
  if (span === undefined) return window === undefined ? [] : [window];
  if (window === undefined) return [span];
  const [first, second] = window.from <= span.from ? [window, span] : [span, window];
  if (second.from > addDays(first.to, 1)) return [window, span];
  return [{ from: first.from, to: second.to > first.to ? second.to : first.to }];
}

/** The longest since-signup span from the signup's day; undefined without one (no such signal, or no known signup). */
export const sinceSignupSpan = (ruleset: Ruleset, signup: string | null): DayRange | undefined =>
  ruleset.maxSinceSignupDays === 0 || signup === null ? undefined : { from: signup, to: addDays(signup, ruleset.maxSinceSignupDays - 1) };

/** The first day of the longest rolling window an evaluation at `now` reads; undefined when the rules have none. */
export const windowFrom = (ruleset: Ruleset, now: Date): string | undefined => (ruleset.maxWindowDays > 0 ? ruleset.calendar.windowStart(now, ruleset.maxWindowDays) : undefined);

/** The parts of `ranges` before `day`. */
export const rangesBefore = (ranges: readonly DayRange[], day: string): DayRange[] =>
  ranges.flatMap((range) => (range.from >= day ? [] : [{ from: range.from, to: range.to < day ? range.to : addDays(day, -1) }]));

export const sameRanges = (a: readonly DayRange[], b: readonly DayRange[]): boolean =>
  a.length === b.length && a.every((range, index) => range.from === b[index]!.from && range.to === b[index]!.to);

export const inReach = (ranges: readonly DayRange[], day: string): boolean => ranges.some((range) => day >= range.from && day <= range.to);

/** Stored events grouped by their day in the rules' calendar, in the order they come. */
export function eventsByDay<E extends UsageEvent>(events: Iterable<E>, calendar: Calendar): Map<string, E[]> {
  const byDay = new Map<string, E[]>();
  for (const event of events) {
    const day = calendar.dayOf(event.timestamp);
    const list = byDay.get(day);
    if (list) list.push(event);
    else byDay.set(day, [event]);
  }
  return byDay;
}

/**
 * Whether a user's rollups are rebuilt from every stored event: never evaluated, evaluated under a ruleset that
 * measured other things, or more changed days than the state should carry open at once.
 */
export function needsRebuild(stored: StoredEntityState | undefined, ruleset: Ruleset, changedDays: readonly string[], maxChangedDays: number): boolean {
  return stored === undefined || stored.rollupVersion !== ruleset.version || changedDays.length > maxChangedDays;
}

export interface RecomputedDays {
  /** The recomputed day rollups, by day. */
  days: DayRollup[];
  totals: EntityTotals;
}

/**
 * Recomputes a user's days from their events and moves the totals by the difference: `previous` are the totals
 * before, undefined for a rebuild (then `events` are all the user's events); `replaced` the stored rollups of the
 * recomputed days. A changed day with no event left is recomputed as an empty day.
 */
export function recomputeDays(
  ruleset: Ruleset,
  events: ReadonlyMap<string, readonly UsageEvent[]>,
  previous: { totals: EntityTotals; changedDays: readonly string[]; replaced: readonly DayRollup[] } | undefined,
): RecomputedDays {
  const dayNames = new Set([...(previous?.changedDays ?? []), ...events.keys()]);
  const days = [...dayNames].map((day) => rollupDay(day, events.get(day) ?? [], ruleset));
  let firstEvent: string | null = null;
  for (const list of events.values()) for (const event of list) if (firstEvent === null || event.timestamp < firstEvent) firstEvent = event.timestamp;
  return withTotals(ruleset, days, firstEvent, previous);
}

/**
 * Recomputed days (recomputeDays', or made a day at a time) with the totals they move: `previous` as recomputeDays
 * takes it, `firstEvent` the earliest of their events.
 */
export function withTotals(ruleset: Ruleset, days: DayRollup[], firstEvent: string | null, previous: { totals: EntityTotals; replaced: readonly DayRollup[] } | undefined): RecomputedDays {
  return { days, totals: addToTotals(ruleset, previous?.totals, days, previous?.replaced ?? [], firstEvent) };
}

/**
 * Totals moved by new or recomputed days: each fresh rollup added, what a recomputed day held before taken out,
 * first seen the earliest message, last seen the latest activity.
 */
export function addToTotals(ruleset: Ruleset, totals: EntityTotals | undefined, fresh: readonly DayRollup[], replaced: readonly DayRollup[], firstMessage: string | null): EntityTotals {
  const lifetime = mergeRollups('lifetime', totals ? [totals.lifetime, ...fresh] : fresh);
  for (const day of replaced) subtractCounts(lifetime, day);
  // A day counts once whatever its events: a recomputed day moves the counter only if it gained or lost its matches.
  for (const name of ruleset.lifetimeDaySignals) {
    const change = daysMatching(fresh, name) - daysMatching(replaced, name);
    const measure = lifetime.measures[name];
    if (measure) measure.days = (measure.days ?? 0) + change;
  }
  let firstSeen = totals?.firstSeen ?? null;
  if (firstMessage !== null && (firstSeen === null || firstMessage < firstSeen)) firstSeen = firstMessage;
  let lastSeen = totals?.lastSeen ?? null;
  for (const rollup of fresh) if (rollup.lastActivity && (lastSeen === null || rollup.lastActivity > lastSeen)) lastSeen = rollup.lastActivity;
  return { lifetime, firstSeen, lastSeen };
}

const daysMatching = (days: readonly DayRollup[], name: string): number => days.filter((day) => (day.measures[name]?.count ?? 0) > 0).length;

/** Takes a day's old counts out of a lifetime total. Distinct values, first and last times only grow, so they stay. */
function subtractCounts(lifetime: DayRollup, day: DayRollup): void {
  lifetime.activity -= day.activity;
  for (const [name, count] of Object.entries(day.names)) lifetime.names[name] = (lifetime.names[name] ?? 0) - count;
  for (const [name, measure] of Object.entries(day.measures)) {
    const total = lifetime.measures[name];
    if (!total) continue;
    total.count -= measure.count;
    total.sum -= measure.sum;
    if (measure.sessions !== undefined) total.sessions = (total.sessions ?? 0) - measure.sessions;
  }
}

/**
 * The lifetime total is saved with every evaluation, so it keeps only what a rule reads from it: the measures of
 * signals without a window, and of those a time-to-value signal reads. Everything else in it would grow with
 * history and make each save cost more.
 */
export function pruneLifetime(lifetime: DayRollup, ruleset: Ruleset): DayRollup {
  const measures: Record<string, Measure> = {};
  for (const name of ruleset.lifetimeSignals) if (Object.hasOwn(lifetime.measures, name)) measures[name] = lifetime.measures[name]!;
  // Two literals rather than a spread (the generic, slow copy): the backtest prunes every day it adds to a lifetime.
  const { day, activity, lastActivity } = lifetime;
  return lastActivity ? { day, activity, lastActivity, names: {}, measures } : { day, activity, names: {}, measures };
}

const byDay = (a: DayRollup, b: DayRollup) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0);

/** A user's facts: its own traits, its accounts' traits, its totals and the day rollups in reach (any order). */
export function userFacts(user: { id: string; traits: Record<string, unknown>; accountTraits: Record<string, unknown>[]; totals: EntityTotals; days: readonly DayRollup[] }): EntityFacts {
  return {
    type: 'user',
    id: user.id,
    traits: user.traits,
    accountTraits: user.accountTraits,
    firstSeen: user.totals.firstSeen,
    lastSeen: user.totals.lastSeen,
    days: [...user.days].sort(byDay),
    lifetime: user.totals.lifetime,
    members: [],
  };
}

/** What an account reads of one member: its stored state (absent until evaluated) and its day rollups in reach. */
export interface MemberRows {
  id: string;
  state?: { lead?: Pick<LeadState, 'tier' | 'matched'> } & EntityTotals;
  days: readonly DayRollup[];
}

/**
 * The day rollups an account reads of a member: the member's window and since-signup span, the span from the
 * member's first message (an account does not read its members' traits).
 */
export function memberRangesInReach(member: EntityTotals, ruleset: Ruleset, now: Date): DayRange[] {
  return rangesInReach(ruleset, now, signupDay({ firstSeen: member.firstSeen, traits: {} }, ruleset));
}

/**
 * An account's facts are its members' added up: their day rollups day by day, their lifetimes, first and last seen
 * over them, and each member's last seen, tier and matched signals from its own lead state. A member never evaluated
 * is left out until it is: one merged into another user before its first evaluation (an alias the day it joined) never
 * is, and would otherwise keep the account out of an `every` members signal for good; one another shard's run has yet
 * to judge moves the account when it is (movedAccounts), rather than twice, out and back in.
 */
export function accountFacts(account: { id: string; traits: Record<string, unknown> }, members: readonly MemberRows[]): EntityFacts {
  const memberFacts: MemberFacts[] = [];
  const lifetimes: DayRollup[] = [];
  const dayGroups = new Map<string, DayRollup[]>();
  let firstSeen: string | null = null;
  let lastSeen: string | null = null;
  for (const member of members) {
    const { state } = member;
    if (!state) continue;
    memberFacts.push({ id: member.id, lastSeen: state.lastSeen, tier: state.lead?.tier ?? null, matched: state.lead?.matched ?? [] });
    lifetimes.push(state.lifetime);
    if (state.firstSeen && (firstSeen === null || state.firstSeen < firstSeen)) firstSeen = state.firstSeen;
    if (state.lastSeen && (lastSeen === null || state.lastSeen > lastSeen)) lastSeen = state.lastSeen;
    for (const rollup of member.days) {
      const group = dayGroups.get(rollup.day);
      if (group) group.push(rollup);
      else dayGroups.set(rollup.day, [rollup]);
    }
  }
  memberFacts.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const days = [...dayGroups.entries()].map(([day, rollups]) => (rollups.length === 1 ? rollups[0]! : mergeRollups(day, rollups))).sort(byDay);
  return { type: 'account', id: account.id, traits: account.traits, accountTraits: [], firstSeen, lastSeen, days, lifetime: mergeRollups('lifetime', lifetimes), members: memberFacts };
}
