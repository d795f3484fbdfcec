import { addDays, dayMs, dayOf, daysBetween, windowStart } from '../days';
import type { Ruleset } from './ruleset';
import { signalLevel } from './ruleset';
import { conditionHolds } from './conditions';
import type { Condition, Signal } from './schema';

/**
 * The PQL engine: pure functions from stored events to daily rollups, and from rollups and traits to signals,
 * scores and a tier. No I/O: the evaluator, the backtest and the tests all run this same code.
 */

/** What the engine needs of a stored event (the Segment message as ingest kept it). */
export interface UsageEvent {
  type: string;
  event?: string;
  name?: string;
  properties?: Record<string, unknown>;
  timestamp: string;
}

export interface Measure {
  count: number;
  sum: number;
  /** Distinct property values seen (capped at maxDistinctValues). */
  distinct?: string[];
  /** Timestamp of the last matching event, for decay. */
  last?: string;
}

/** One entity's activity on one UTC day, reduced to what the ruleset measures. */
export interface DayRollup {
  day: string;
  /** Product events (track, page, screen) of any name. */
  activity: number;
  lastActivity?: string;
  /** Product events by name, for the top events in a lead's context. */
  names: Record<string, number>;
  /** One measure per event signal, by signal name. */
  measures: Record<string, Measure>;
}

/** Enough to tell "3+ distinct invitees"; bounded so a rollup stays small whatever the traffic. */
export const maxDistinctValues = 200;

/** Member facts an account's signals need: kept from each member user's own evaluation. */
export interface MemberFacts {
  id: string;
  lastSeen: string | null;
  tier: string | null;
  /** Names of the user signals that matched for this member. */
  matched: string[];
}

export interface EntityFacts {
  type: 'user' | 'account';
  id: string;
  traits: Record<string, unknown>;
  /** Users: the traits of each account they belong to. */
  accountTraits: Record<string, unknown>[];
  firstSeen: string | null;
  lastSeen: string | null;
  /** The daily rollups the ruleset's windows reach (older days may be absent). */
  days: DayRollup[];
  /** Rollup of every retained day, for signals without a window. */
  lifetime: DayRollup;
  members: MemberFacts[];
}

export interface SignalResult {
  matched: boolean;
  value: number | string | boolean | null;
  /** Points given (after decay); 0 when not matched. */
  points: number;
  category: 'engagement' | 'fit';
}

export interface Evaluation {
  signals: Record<string, SignalResult>;
  score: { total: number; engagement: number; fit: number };
  tier: string | null;
  route: string | null;
}

const productTypes = new Set(['track', 'page', 'screen']);

/** The name an event is matched by: track events by their name, pages and screens as Segment's spec names them. */
export function eventName(event: UsageEvent): string | undefined {
  if (event.type === 'track') return event.event;
  if (event.type === 'page') return 'Page Viewed';
  if (event.type === 'screen') return 'Screen Viewed';
  return undefined;
}

/** Reduces one day's events of one entity to its rollup. Order of events does not matter. */
export function rollupDay(day: string, events: readonly UsageEvent[], ruleset: Ruleset): DayRollup {
  const rollup: DayRollup = { day, activity: 0, names: {}, measures: {} };
  for (const event of events) {
    const name = eventName(event);
    if (name === undefined || !productTypes.has(event.type)) continue;
    rollup.activity++;
    if (!rollup.lastActivity || event.timestamp > rollup.lastActivity) rollup.lastActivity = event.timestamp;
    setOwn(rollup.names, name, (ownValue(rollup.names, name) ?? 0) + 1);
    for (const signalName of ruleset.eventSignals) {
      const signal = ruleset.file.signals[signalName]!;
      if (signal.kind !== 'event' || !eventMatches(signal, name, event.properties ?? {})) continue;
      const measure = ownValue(rollup.measures, signalName) ?? setOwn(rollup.measures, signalName, { count: 0, sum: 0 });
      measure.count++;
      if (signal.sum !== undefined) {
        const value = propertyAt(event.properties ?? {}, signal.sum);
        if (typeof value === 'number' && Number.isFinite(value)) measure.sum += value;
      }
      if (signal.distinct !== undefined) {
        const value = propertyAt(event.properties ?? {}, signal.distinct);
        if (value !== undefined && value !== null) addDistinct(measure, [String(value).slice(0, 200)]);
      }
      if (!measure.last || event.timestamp > measure.last) measure.last = event.timestamp;
    }
  }
  return rollup;
}

/** Adds rollups together: days into a lifetime total, or members' days into their account's. */
export function mergeRollups(day: string, rollups: readonly DayRollup[]): DayRollup {
  const merged: DayRollup = { day, activity: 0, names: {}, measures: {} };
  for (const rollup of rollups) {
    merged.activity += rollup.activity;
    if (rollup.lastActivity && (!merged.lastActivity || rollup.lastActivity > merged.lastActivity)) merged.lastActivity = rollup.lastActivity;
    for (const [name, count] of Object.entries(rollup.names)) setOwn(merged.names, name, (ownValue(merged.names, name) ?? 0) + count);
    for (const [name, measure] of Object.entries(rollup.measures)) {
      const into = ownValue(merged.measures, name) ?? setOwn(merged.measures, name, { count: 0, sum: 0 });
      into.count += measure.count;
      into.sum += measure.sum;
      if (measure.distinct) addDistinct(into, measure.distinct);
      if (measure.last && (!into.last || measure.last > into.last)) into.last = measure.last;
    }
  }
  return merged;
}

/**
 * Own properties only: event names come from clients, so "toString", "constructor" or "__proto__" must be plain keys,
 * not the members of Object.prototype that `record[name] ??= ...` would find (and then mutate).
 */
function ownValue<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function setOwn<T>(record: Record<string, T>, key: string, value: T): T {
  // Assignment creates an own property for every key but `__proto__`, whose setter would replace the prototype.
  if (key === '__proto__') Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
  return value;
}

function addDistinct(measure: Measure, values: readonly string[]) {
  const set = new Set(measure.distinct ?? []);
  for (const value of values) {
    if (set.size >= maxDistinctValues) break;
    set.add(value);
  }
  measure.distinct = [...set].sort();
}

function eventMatches(signal: Extract<Signal, { kind: 'event' }>, name: string, properties: Record<string, unknown>): boolean {
  const names = signal.events ?? [signal.event!];
  if (!names.includes('*') && !names.includes(name)) return false;
  return whereHolds(signal.where, properties);
}

/** Whether every property filter of a `where` holds (no filters: true); shared by event signals and conversions. */
export function whereHolds(where: Record<string, Condition> | undefined, properties: Record<string, unknown>): boolean {
  return Object.entries(where ?? {}).every(([path, condition]) => conditionHolds(condition, propertyAt(properties, path)));
}

/** Dotted paths reach nested properties; own properties only, so `__proto__`-like names never reach prototypes. */
function propertyAt(object: Record<string, unknown>, path: string): unknown {
  let current: unknown = object;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** When the entity signed up: the signup trait when the rules name one and it parses, else first seen. */
export function signupTime(facts: Pick<EntityFacts, 'traits' | 'firstSeen'>, ruleset: { file: Pick<Ruleset['file'], 'signup'> }): string | null {
  const trait = ruleset.file.signup?.trait;
  const value = trait !== undefined ? facts.traits[trait] : undefined;
  if (typeof value === 'string' || typeof value === 'number') {
    // A number is epoch time; one below 1e11 (before 1973 as milliseconds) is in seconds, as many SDKs send createdAt.
    const parsed = new Date(typeof value === 'number' && Math.abs(value) < 1e11 ? value * 1000 : value);
    if (!Number.isNaN(parsed.getTime())) return parsed.toISOString();
  }
  return facts.firstSeen;
}

function thresholdMet(signal: { at_least?: number | undefined; at_most?: number | undefined; exactly?: number | undefined }, value: number): boolean {
  if (signal.exactly !== undefined) return value === signal.exactly;
  if (signal.at_most !== undefined) return value <= signal.at_most;
  return value >= (signal.at_least ?? 1);
}


/** Evaluates every signal of the entity's level, scores them, and picks the first tier it meets. */
export function evaluate(facts: EntityFacts, ruleset: Ruleset, now: Date): Evaluation {
  const { file } = ruleset;
  const signals: Record<string, SignalResult> = {};
  const signupAt = signupTime(facts, ruleset);
  // Adds up one signal's measure over the days in range: cheaper than merging whole rollups once per signal.
  const measureOver = (name: string, from: string | null, to: string | null): Measure => {
    if (from === null && to === null) return ownValue(facts.lifetime.measures, name) ?? { count: 0, sum: 0 };
    const total: Measure = { count: 0, sum: 0 };
    const distinct = new Set<string>();
    for (const day of facts.days) {
      if ((from !== null && day.day < from) || (to !== null && day.day > to)) continue;
      const measure = ownValue(day.measures, name);
      if (!measure) continue;
      total.count += measure.count;
      total.sum += measure.sum;
      for (const value of measure.distinct ?? []) if (distinct.size < maxDistinctValues) distinct.add(value);
      if (measure.last && (!total.last || measure.last > total.last)) total.last = measure.last;
    }
    if (distinct.size > 0) total.distinct = [...distinct];
    return total;
  };

  for (const name of ruleset.order) {
    const signal = file.signals[name]!;
    if (signalLevel(signal) !== facts.type) continue;
    let value: SignalResult['value'] = null;
    let matched = false;
    let lastOccurrence: string | undefined;
    switch (signal.kind) {
      case 'event': {
        const from = signal.window !== undefined ? windowStart(now, signal.window) : signal.since_signup !== undefined ? (signupAt !== null ? dayOf(signupAt) : null) : null;
        const to = signal.since_signup !== undefined && signupAt !== null ? addDays(dayOf(signupAt), signal.since_signup - 1) : null;
        // "within N days of signup" with no known signup has nothing to count.
        const measure = signal.since_signup !== undefined && signupAt === null ? { count: 0, sum: 0 } : measureOver(name, from, to);
        value = signal.distinct !== undefined ? measure.distinct?.length ?? 0 : signal.sum !== undefined ? measure.sum : measure.count;
        matched = thresholdMet(signal, value);
        lastOccurrence = measure.last;
        break;
      }
      case 'inactivity':
        value = facts.lastSeen === null ? null : daysBetween(facts.lastSeen, now);
        matched = value !== null && value >= signal.inactive_for;
        break;
      case 'signup_age':
        value = signupAt === null ? null : daysBetween(signupAt, now);
        matched = value !== null && value >= signal.signup_older_than;
        break;
      case 'trait': {
        const sources = signal.of === 'account' ? facts.accountTraits : [facts.traits];
        const values = sources.map((traits) => traits[signal.trait]);
        matched = values.some((candidate) => conditionHolds(signal.is, candidate));
        const shown = values.find((candidate) => conditionHolds(signal.is, candidate)) ?? values[0];
        value = typeof shown === 'number' || typeof shown === 'boolean' ? shown : shown === undefined || shown === null ? null : String(shown).slice(0, 100);
        break;
      }
      case 'combination':
        matched =
          (signal.all ?? []).every((part) => signals[part]?.matched === true) &&
          (signal.any === undefined || signal.any.some((part) => signals[part]?.matched === true)) &&
          (signal.not === undefined || signals[signal.not]?.matched !== true);
        value = matched;
        break;
      case 'active_users': {
        const since = windowStart(now, signal.active_users);
        value = facts.members.filter((member) => member.lastSeen !== null && dayOf(member.lastSeen) >= since).length;
        matched = thresholdMet(signal, value);
        break;
      }
      case 'members': {
        value = facts.members.filter((member) => member.matched.includes(signal.members_matching)).length;
        matched = signal.every ? facts.members.length > 0 && value === facts.members.length : thresholdMet(signal, value);
        break;
      }
      case 'best_member': {
        const wanted = ruleset.tierRank.get(signal.best_member_tier)!;
        const ranks = facts.members.map((member) => (member.tier === null ? Infinity : ruleset.tierRank.get(member.tier) ?? Infinity));
        const best = Math.min(Infinity, ...ranks);
        value = Number.isFinite(best) ? file.tiers[best]!.name : null;
        matched = best <= wanted;
        break;
      }
    }
    const category = signal.category ?? (signal.kind === 'trait' ? 'fit' : 'engagement');
    let points = matched ? signal.points : 0;
    if (matched && signal.kind === 'event' && signal.decay !== undefined && lastOccurrence !== undefined) {
      points *= 0.5 ** (Math.max(0, now.getTime() - Date.parse(lastOccurrence)) / (signal.decay * dayMs));
      points = Math.round(points * 100) / 100;
    }
    signals[name] = { matched, value, points, category };
  }

  const sum = (category: 'engagement' | 'fit') =>
    Object.values(signals).reduce((total, result) => total + (result.category === category ? result.points : 0), 0);
  const engagement = sum('engagement');
  const fit = sum('fit');
  const uncapped = engagement + fit;
  const total = file.scoring.cap !== undefined ? Math.min(file.scoring.cap, uncapped) : uncapped;
  const tier = file.tiers.find(
    (candidate) =>
      (candidate.level === 'both' || candidate.level === facts.type) &&
      (candidate.min_score === undefined || total >= candidate.min_score) &&
      candidate.require.every((name) => signals[name]?.matched === true),
  );
  return { signals, score: { total, engagement, fit }, tier: tier?.name ?? null, route: tier?.route ?? null };
}

/**
 * The first moment after `now` at which `evaluate` can give another result for the same facts, by time alone: when a
 * day leaves a rolling window (midnight UTC), when an inactivity or signup-age threshold is reached, and, while points
 * decay (continuously), `decayIntervalMs` from now. Null when nothing in the rules moves with time for this entity:
 * then no sweep needs to look at it until it changes.
 */
export function changesByTimeAt(facts: EntityFacts, ruleset: Ruleset, now: Date, decayIntervalMs: number): Date | null {
  const signupAt = signupTime(facts, ruleset);
  const nextMidnight = Date.parse(`${addDays(dayOf(now), 1)}T00:00:00.000Z`);
  const moments: number[] = [];
  const afterDays = (from: string, days: number) => Date.parse(from) + days * dayMs;
  for (const name of ruleset.order) {
    const signal = ruleset.file.signals[name]!;
    if (signalLevel(signal) !== facts.type) continue;
    switch (signal.kind) {
      case 'event':
        if (signal.window !== undefined) moments.push(nextMidnight);
        if (signal.decay !== undefined) moments.push(now.getTime() + decayIntervalMs);
        break;
      case 'active_users':
        moments.push(nextMidnight);
        break;
      case 'inactivity':
        if (facts.lastSeen !== null) moments.push(afterDays(facts.lastSeen, signal.inactive_for));
        break;
      case 'signup_age':
        if (signupAt !== null) moments.push(afterDays(signupAt, signal.signup_older_than));
        break;
    }
  }
  const next = Math.min(...moments.filter((moment) => moment > now.getTime()));
  return Number.isFinite(next) ? new Date(next) : null;
}
