import { createHash } from 'node:crypto';
import { addDays, dayMs, daysBetween, periodDays } from '../days';
import { remembered } from '../remembered';
import type { Ruleset } from './ruleset';
import { signalLevel } from './ruleset';
import { conditionHolds, traitHolds } from './conditions';
import { chooseRoute, ownerOf } from './routing';
import { maxDistinctValues } from './limits';
import type { Condition, RulesFile, Signal } from './schema';

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
  /** Signals with count: sessions: the sessions of the day (added up over days and over an account's members). */
  sessions?: number;
  /**
   * Signals with count: days over the whole history, in a lifetime total only: the days with a matching event. A day
   * rollup has none (a day with a measure is one day); core/facts' addToTotals moves it as days are recomputed.
   */
  days?: number;
  /** Signals a time-to-value signal reads: timestamp of the first matching event. */
  first?: string;
}

/** Matching events less than this apart are one session. */
export const sessionGapMs = 30 * 60_000;

/** A session as the times of its first and last event (epoch ms). */
export type SessionSpan = readonly [start: number, end: number];

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

/** Names of no event, shared and frozen: a day with nothing in it, or a rollup that keeps none. */
export const noNames: Record<string, number> = Object.freeze({}) as Record<string, number>;
/** A day with nothing in it. */
export const emptyRollup = (day: string): DayRollup => ({ day, activity: 0, names: noNames, measures: {} });

/**
 * A distinct value whose JSON takes more bytes than this is kept as its hash (distinctValue), so that a measure holds at
 * most maxDistinctValues short strings whatever the values: 200 random values of 200 characters for each of two
 * since-signup signals made a user's state pass DynamoDB's 400 KB item limit within a week, and its every save fail.
 * Bytes, as DynamoDB counts an item: 64 characters of three-byte text are 192 bytes.
 */
export const maxDistinctValueLength = 64;

/**
 * An event name whose JSON takes more bytes than this is kept in a day's names as its hash (keptText): every name of
 * printable ASCII ingest takes (200 characters) as it is, and no other name larger; a name of 200 three-byte
 * characters is 600 bytes, and of control characters, each six in JSON, 1,200.
 */
export const maxNameBytes = 200;

/**
 * A day counts events of this many names at most, its most counted (mostCountedFirst): a lead event names the top 10
 * over its window. Bounded whatever names a client sends: 30,000 names in a day made a user's state larger than
 * DynamoDB's 400 KB item limit, and its every save fail.
 */
export const maxNamesPerDay = 100;

/** Event names by count, most first, then by name: the order a lead event's top events and a day's kept names follow. */
export const mostCountedFirst = ([a, x]: [string, number], [b, y]: [string, number]) => y - x || a.localeCompare(b);

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
  /** Users: the traits of each account they belong to, in account id order (routing by account traits relies on it). */
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
  /** The tier's route, chosen from the traits when the tier routes by one; null without a tier. */
  route: string | null;
  /** The value of the tier's `owner` trait; null without a tier, an owner trait, or its value. */
  owner: string | null;
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
  return rollupDayWithSessions(day, events, ruleset).rollup;
}

/**
 * rollupDay, and the sessions of each count: sessions signal as spans: the replay rolls a day up in parts and joins
 * the parts' spans (sessionsOf), since a session may run across parts and adding counts would count it twice.
 */
export function rollupDayWithSessions(day: string, events: readonly UsageEvent[], ruleset: Ruleset): { rollup: DayRollup; sessions: Record<string, SessionSpan[]> } {
  const rollup: DayRollup = { day, activity: 0, names: {}, measures: {} };
  const sessions: Record<string, SessionSpan[]> = {};
  const measured = measuredSignalsOf(ruleset);
  let nameCount = 0;
  for (const event of events) {
    const name = eventName(event);
    if (name === undefined || !productTypes.has(event.type)) continue;
    rollup.activity++;
    if (!rollup.lastActivity || event.timestamp > rollup.lastActivity) rollup.lastActivity = event.timestamp;
    const kept = keptText(name, maxNameBytes);
    const named = ownValue(rollup.names, kept);
    if (named === undefined) nameCount++;
    setOwn(rollup.names, kept, (named ?? 0) + 1);
    const properties = event.properties ?? noProperties;
    for (const signal of measured) {
      if ((!signal.anyEvent && !signal.events.includes(name)) || !pathsHold(signal.where, properties)) continue;
      const measure = ownValue(rollup.measures, signal.name) ?? setOwn(rollup.measures, signal.name, { count: 0, sum: 0 });
      measure.count++;
      if (signal.sum !== undefined) {
        const value = valueAt(properties, signal.sum);
        if (typeof value === 'number' && Number.isFinite(value)) measure.sum += value;
      }
      if (signal.distinct !== undefined) {
        const value = valueAt(properties, signal.distinct);
        if (value !== undefined && value !== null) addDistinct(measure, [distinctValue(value)]);
      }
      if (!measure.last || event.timestamp > measure.last) measure.last = event.timestamp;
      if (signal.keepsFirst && (!measure.first || event.timestamp < measure.first)) measure.first = event.timestamp;
      if (signal.countsSessions) {
        const at = Date.parse(event.timestamp);
        (ownValue(sessions, signal.name) ?? setOwn(sessions, signal.name, [])).push([at, at]);
      }
    }
  }
  for (const [signalName, spans] of Object.entries(sessions)) {
    const joined = sessionsOf(spans);
    sessions[signalName] = joined;
    rollup.measures[signalName]!.sessions = joined.length;
  }
  if (nameCount > maxNamesPerDay) rollup.names = Object.fromEntries(Object.entries(rollup.names).sort(mostCountedFirst).slice(0, maxNamesPerDay));
  return { rollup, sessions };
}

/**
 * A property value as a distinct measure keeps it (keptText past maxDistinctValueLength). Before, values were cut at
 * 200 characters, which also made values differing only past the cut one.
 */
export const distinctValue = (value: unknown): string => keptText(String(value), maxDistinctValueLength);

/**
 * Text as a rollup keeps it: as it is while its JSON takes at most `maxBytes` bytes of UTF-8, else its hash (128 bits:
 * two texts are told apart as surely as by themselves). Bytes, not characters: what DynamoDB counts of an item.
 */
export function keptText(text: string, maxBytes: number): string {
  // JSON takes at least a byte a UTF-16 unit, and exactly one for printable ASCII other than a quote or a backslash.
  const fits = text.length <= maxBytes && (plainAscii.test(text) || Buffer.byteLength(JSON.stringify(text)) - 2 <= maxBytes);
  return fits ? text : `sha256:${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
}

const plainAscii = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** What a day rollup reads of an event without properties; never written to. */
const noProperties: Record<string, unknown> = Object.freeze({});

/**
 * An event signal as a day rollup measures it, worked out once per ruleset: a rollup looks at every event signal
 * for every event, and splitting its paths and listing its event names and filters each time were most of that.
 */
interface MeasuredSignal {
  name: string;
  /** `*`: any product event. */
  anyEvent: boolean;
  events: readonly string[];
  /** Its `where`: property paths (split at dots) and their conditions. */
  where: readonly PathCondition[];
  sum: string[] | undefined;
  distinct: string[] | undefined;
  /** A time-to-value signal reads its first event. */
  keepsFirst: boolean;
  countsSessions: boolean;
}

type PathCondition = [path: string[], condition: Condition];

const measuredSignals = new WeakMap<Ruleset, MeasuredSignal[]>();

function measuredSignalsOf(ruleset: Ruleset): MeasuredSignal[] {
  let measured = measuredSignals.get(ruleset);
  if (measured === undefined) {
    measured = [];
    for (const name of ruleset.eventSignals) {
      const signal = ruleset.file.signals[name]!;
      if (signal.kind !== 'event') continue;
      const events = signal.events ?? [signal.event!];
      measured.push({
        name,
        anyEvent: events.includes('*'),
        events,
        where: pathConditions(signal.where),
        sum: signal.sum?.split('.'),
        distinct: signal.distinct?.split('.'),
        keepsFirst: ruleset.firstSignals.includes(name),
        countsSessions: signal.count === 'sessions',
      });
    }
    measuredSignals.set(ruleset, measured);
  }
  return measured;
}

const splitWheres = new WeakMap<Record<string, Condition>, readonly PathCondition[]>();
const noConditions: readonly PathCondition[] = Object.freeze([]);

/** A `where` as its paths split at the dots, with their conditions; split once per `where` of the rules. */
function pathConditions(where: Record<string, Condition> | undefined): readonly PathCondition[] {
  if (where === undefined) return noConditions;
  let split = splitWheres.get(where);
  if (split === undefined) {
    split = Object.entries(where).map(([path, condition]) => [path.split('.'), condition]);
    splitWheres.set(where, split);
  }
  return split;
}

/** Joins spans of events into sessions: spans (in any order) less than sessionGapMs apart become one; sorted by start. */
export function sessionsOf(spans: readonly SessionSpan[]): SessionSpan[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const joined: [number, number][] = [];
  for (const [start, end] of sorted) {
    const current = joined.at(-1);
    if (current !== undefined && start - current[1] < sessionGapMs) current[1] = Math.max(current[1], end);
    else joined.push([start, end]);
  }
  return joined;
}

/** Adds rollups together: days into a lifetime total, or members' days into their account's. */
export function mergeRollups(day: string, rollups: readonly DayRollup[]): DayRollup {
  const merged: DayRollup = { day, activity: 0, names: {}, measures: {} };
  for (const rollup of rollups) {
    merged.activity += rollup.activity;
    if (rollup.lastActivity && (!merged.lastActivity || rollup.lastActivity > merged.lastActivity)) merged.lastActivity = rollup.lastActivity;
    // Object.keys rather than entries: no [name, value] array per name (a backtest merges a lifetime at every step).
    for (const name of Object.keys(rollup.names)) setOwn(merged.names, name, (ownValue(merged.names, name) ?? 0) + rollup.names[name]!);
    for (const name of Object.keys(rollup.measures)) {
      const measure = rollup.measures[name]!;
      const into = ownValue(merged.measures, name) ?? setOwn(merged.measures, name, { count: 0, sum: 0 });
      into.count += measure.count;
      into.sum += measure.sum;
      if (measure.distinct) addDistinct(into, measure.distinct);
      if (measure.last && (!into.last || measure.last > into.last)) into.last = measure.last;
      if (measure.first && (!into.first || measure.first < into.first)) into.first = measure.first;
      if (measure.sessions !== undefined) into.sessions = (into.sessions ?? 0) + measure.sessions;
      if (measure.days !== undefined) into.days = (into.days ?? 0) + measure.days;
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

/** Whether every property filter of a `where` holds (no filters: true); shared by event signals and conversions. */
export function whereHolds(where: Record<string, Condition> | undefined, properties: Record<string, unknown>): boolean {
  return pathsHold(pathConditions(where), properties);
}

function pathsHold(where: readonly PathCondition[], properties: Record<string, unknown>): boolean {
  for (const [path, condition] of where) if (!conditionHolds(condition, valueAt(properties, path))) return false;
  return true;
}

/** Dotted paths (split at the dots) reach nested properties; own properties only, so `__proto__`-like names never reach prototypes. */
function valueAt(object: Record<string, unknown>, path: readonly string[]): unknown {
  let current: unknown = object;
  for (const part of path) {
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
    const time = signupTraitTime(value);
    if (time !== null) return time;
  }
  return facts.firstSeen;
}

/**
 * A signup trait's time, ISO 8601; null when it is no time. Remembered: an evaluation asks several times for the same
 * entity's signup (its signals, then its sweep time), and parsing and formatting it was a tenth of a backtest's replay.
 */
const signupTraitTime = remembered((value: string | number): string | null => {
  // A number is epoch time; one below 1e11 (before 1973 as milliseconds) is in seconds, as many SDKs send createdAt.
  const parsed = new Date(typeof value === 'number' && Math.abs(value) < 1e11 ? value * 1000 : value);
  return Number.isNaN(parsed.getTime()) ? null : parsed.toISOString();
});

function thresholdMet(signal: { at_least?: number | undefined; at_most?: number | undefined; exactly?: number | undefined }, value: number): boolean {
  if (signal.exactly !== undefined) return value === signal.exactly;
  if (signal.at_most !== undefined) return value <= signal.at_most;
  return value >= (signal.at_least ?? 1);
}


type EventSignal = Extract<Signal, { kind: 'event' }>;

/** What an event signal counts of a measure: distinct values, a sum, days, sessions or events. */
function eventValue(signal: EventSignal, measure: Measure): number {
  if (signal.distinct !== undefined) return measure.distinct?.length ?? 0;
  if (signal.sum !== undefined) return measure.sum;
  if (signal.count === 'days') return measure.days ?? 0;
  if (signal.count === 'sessions') return measure.sessions ?? 0;
  return measure.count;
}

/** A signal's measure with no matching event. Shared and frozen: most signals of most evaluations have none. */
const noMeasure: Readonly<Measure> = Object.freeze({ count: 0, sum: 0 });

/** A measure being added up over day rollups: its distinct values gathered in a set, `distinct` once done (doneMeasure). */
interface MeasureSum extends Measure {
  values?: Set<string>;
}

/**
 * Adds one day's measure of a signal to a sum (made at the first day: most signals of most evaluations match no day).
 * `days` counts the days with a matching event. `last` only when `keepsLast`: only decay reads it (see evaluate).
 */
function addDayMeasure(total: MeasureSum | undefined, measure: Measure, keepsLast: boolean): MeasureSum {
  total ??= { count: 0, sum: 0, days: 0 };
  total.count += measure.count;
  total.sum += measure.sum;
  if (measure.count > 0) total.days!++;
  if (measure.sessions !== undefined) total.sessions = (total.sessions ?? 0) + measure.sessions;
  if (measure.distinct !== undefined) {
    // Made only for a signal counting distinct values.
    total.values ??= new Set();
    for (const value of measure.distinct) if (total.values.size < maxDistinctValues) total.values.add(value);
  }
  if (keepsLast && measure.last && (!total.last || measure.last > total.last)) total.last = measure.last;
  return total;
}

/** A sum of day measures as evaluate reads it: noMeasure for no matching day. */
function doneMeasure(total: MeasureSum | undefined): Readonly<Measure> {
  if (total === undefined) return noMeasure;
  if (total.values !== undefined && total.values.size > 0) total.distinct = [...total.values];
  return total;
}

/** One signal's measure added up over day rollups (each day at most once). */
function measureOfDays(name: string, days: readonly DayRollup[]): Readonly<Measure> {
  let total: MeasureSum | undefined;
  for (const day of days) {
    const measure = ownValue(day.measures, name);
    if (measure) total = addDayMeasure(total, measure, true);
  }
  return doneMeasure(total);
}

/** A signal as evaluate takes it, with what it needs of the signal worked out once. */
interface PlannedSignal {
  name: string;
  signal: Signal;
  category: SignalResult['category'];
  /** Its place among LevelPlan's day signals (dayPlaces); -1 for a signal that adds up no day rollups there. */
  dayPlace: number;
}

/**
 * The days a day signal adds up: the `days` of a rolling window ending today, or the `days` from the signup's day.
 * Day signals share a few of them (activation's eight share three), so each is worked out once per evaluation.
 */
interface DayRange {
  over: 'window' | 'since_signup';
  days: number;
}

/** What evaluate works out once per ruleset for each level: it runs for every entity at every step of a backtest. */
interface LevelPlan {
  /** The level's signals, in the order evaluate takes them (a combination after its parts). */
  signals: PlannedSignal[];
  /**
   * The places of the level's day signals, by name: the event signals that add up day rollups (those with a window or
   * since_signup, not split `per` period), numbered from 0 in the level's order.
   */
  dayPlaces: Map<string, number>;
  /**
   * By day place: whether the signal decays, the one use of its last event's time. Comparing those times for every
   * day was a third of adding up the days in a backtest.
   */
  dayDecays: boolean[];
  /** The distinct day ranges of the day signals, and by day place the one each adds up. */
  ranges: DayRange[];
  dayRanges: number[];
  /**
   * The result's signals, in that order, each one pending: evaluate fills in a copy. Adding each name to an empty
   * object instead was about a tenth of an evaluation's time in a backtest.
   */
  results: Record<string, SignalResult>;
}

/** A signal evaluate has not reached yet: not matched, as a missing one reads to a combination or a tier. */
const pending: SignalResult = Object.freeze({ matched: false, value: null, points: 0, category: 'engagement' });

const levelPlans = new WeakMap<Ruleset, Record<'user' | 'account', LevelPlan>>();

function levelPlanOf(ruleset: Ruleset, level: 'user' | 'account'): LevelPlan {
  let plans = levelPlans.get(ruleset);
  if (plans === undefined) {
    plans = { user: planFor(ruleset, 'user'), account: planFor(ruleset, 'account') };
    levelPlans.set(ruleset, plans);
  }
  return plans[level];
}

function planFor(ruleset: Ruleset, level: 'user' | 'account'): LevelPlan {
  const plan: LevelPlan = { signals: [], dayPlaces: new Map(), dayDecays: [], ranges: [], dayRanges: [], results: {} };
  for (const name of ruleset.order) {
    const signal = ruleset.file.signals[name]!;
    if (signalLevel(signal) !== level) continue;
    const category = signal.category ?? (signal.kind === 'trait' ? 'fit' : 'engagement');
    plan.results[name] = pending;
    if (signal.kind !== 'event' || signal.per !== undefined || (signal.window === undefined && signal.since_signup === undefined)) {
      plan.signals.push({ name, signal, category, dayPlace: -1 });
      continue;
    }
    const dayPlace = plan.dayPlaces.size;
    plan.signals.push({ name, signal, category, dayPlace });
    plan.dayPlaces.set(name, dayPlace);
    plan.dayDecays.push(signal.decay !== undefined);
    const range: DayRange = signal.window !== undefined ? { over: 'window', days: signal.window } : { over: 'since_signup', days: signal.since_signup! };
    let rangePlace = plan.ranges.findIndex((known) => known.over === range.over && known.days === range.days);
    if (rangePlace === -1) rangePlace = plan.ranges.push(range) - 1;
    plan.dayRanges.push(rangePlace);
  }
  return plan;
}

/**
 * The measures of the day signals over the entity's days, by place, each over the days of its range from `from` to
 * `to`: the window's first day to today, the signup's day to the since-signup span's last (either end open when not
 * given). One walk over the days and the few measures each holds (one or two, as a rule): looking every signal up in
 * every day was a sixth of an evaluation's time in a backtest. Each signal still adds its days up in the order of
 * facts.days, so sums and distinct values come out as a walk per signal gives them.
 */
function daySignalMeasures(facts: EntityFacts, plan: LevelPlan, calendar: Ruleset['calendar'], now: Date, signupDay: string | null): (MeasureSum | undefined)[] {
  const { dayPlaces: places, dayDecays: decays, ranges, dayRanges } = plan;
  const totals: (MeasureSum | undefined)[] = new Array(places.size).fill(undefined);
  if (places.size === 0 || facts.days.length === 0) return totals;
  const from: (string | null)[] = new Array(ranges.length);
  const to: (string | null)[] = new Array(ranges.length);
  for (let place = 0; place < ranges.length; place++) {
    const { over, days } = ranges[place]!;
    // Since signup with no known signup: counted here all the same, and not read (evaluate gives it nothing to count).
    from[place] = over === 'window' ? calendar.windowStart(now, days) : signupDay;
    to[place] = over === 'since_signup' && signupDay !== null ? addDays(signupDay, days - 1) : null;
  }
  for (const day of facts.days) {
    const { measures } = day;
    // for-in rather than Object.keys: no array per day. Own keys only (a stored rollup's client-made names never
    // reach Object.prototype); names of no day signal skipped.
    for (const name in measures) {
      const place = places.get(name);
      if (place === undefined || !Object.hasOwn(measures, name)) continue;
      const range = dayRanges[place]!;
      const start = from[range]!;
      const end = to[range]!;
      if ((start !== null && day.day < start) || (end !== null && day.day > end)) continue;
      const measure = measures[name];
      if (measure) totals[place] = addDayMeasure(totals[place], measure, decays[place]!);
    }
  }
  return totals;
}

/** The longest run of true in a list. */
function longestRun(flags: readonly boolean[]): number {
  let longest = 0;
  let run = 0;
  for (const flag of flags) {
    run = flag ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/*
 * The helpers of `evaluate` are functions of their own rather than closures inside it: it runs for every entity at
 * every step of a backtest, and a closure made per call costs (under tsx, which keeps function names, a defineProperty
 * each).
 */

/** One measure per period of the window ending today, the latest first. */
function measuresPerPeriod(facts: EntityFacts, calendar: Ruleset['calendar'], now: Date, name: string, windowDays: number, periodLength: number): Readonly<Measure>[] {
  const periods: DayRollup[][] = Array.from({ length: windowDays / periodLength }, () => []);
  const today = new Date(`${calendar.dayOf(now)}T00:00:00.000Z`);
  for (const day of facts.days) {
    const age = daysBetween(day.day, today);
    if (age >= 0 && age < windowDays) periods[Math.floor(age / periodLength)]!.push(day);
  }
  return periods.map((days) => measureOfDays(name, days));
}

/** When a signal's first matching event happened, over the lifetime (null for none). */
const firstOccurrence = (facts: EntityFacts, name: string): string | null => ownValue(facts.lifetime.measures, name)?.first ?? null;

/** The place of the first traits whose `trait` meets the condition; -1 for none. */
function firstMeeting(condition: Condition, sources: readonly Record<string, unknown>[], trait: string): number {
  for (let place = 0; place < sources.length; place++) if (traitHolds(condition, sources[place]![trait])) return place;
  return -1;
}

function allMatched(names: readonly string[], signals: Record<string, SignalResult>): boolean {
  for (const name of names) if (signals[name]?.matched !== true) return false;
  return true;
}

function anyMatched(names: readonly string[], signals: Record<string, SignalResult>): boolean {
  for (const name of names) if (signals[name]?.matched === true) return true;
  return false;
}

/** The first tier (best first) for the entity's level whose min_score the total meets and whose required signals matched. */
function firstTierMet(tiers: RulesFile['tiers'], level: 'user' | 'account', total: number, signals: Record<string, SignalResult>): RulesFile['tiers'][number] | undefined {
  for (const tier of tiers) {
    if ((tier.level === 'both' || tier.level === level) && (tier.min_score === undefined || total >= tier.min_score) && allMatched(tier.require, signals)) return tier;
  }
  return undefined;
}

/** Evaluates every signal of the entity's level, scores them, and picks the first tier it meets. */
export function evaluate(facts: EntityFacts, ruleset: Ruleset, now: Date): Evaluation {
  const { file, calendar } = ruleset;
  const signupAt = signupTime(facts, ruleset);
  const signupDay = signupAt !== null ? calendar.dayOf(signupAt) : null;
  const plan = levelPlanOf(ruleset, facts.type);
  const dayMeasures = daySignalMeasures(facts, plan, calendar, now, signupDay);
  const signals: Record<string, SignalResult> = { ...plan.results };

  for (const { name, signal, category, dayPlace } of plan.signals) {
    let value: SignalResult['value'] = null;
    let matched = false;
    let lastOccurrence: string | undefined;
    switch (signal.kind) {
      case 'event': {
        if (signal.per !== undefined) {
          const periods = measuresPerPeriod(facts, calendar, now, name, signal.window!, periodDays[signal.per]);
          const met = periods.map((measure) => thresholdMet(signal, eventValue(signal, measure)));
          value = signal.consecutive !== undefined ? longestRun(met) : met.filter(Boolean).length;
          matched = value >= (signal.consecutive ?? signal.periods ?? 1);
          lastOccurrence = periods.find((measure) => measure.last !== undefined)?.last;
          break;
        }
        // "within N days of signup" with no known signup has nothing to count; no window nor since_signup: the lifetime.
        const measure =
          signal.since_signup !== undefined && signupDay === null
            ? noMeasure
            : signal.window === undefined && signal.since_signup === undefined
              ? (ownValue(facts.lifetime.measures, name) ?? noMeasure)
              : doneMeasure(dayMeasures[dayPlace]);
        value = eventValue(signal, measure);
        matched = thresholdMet(signal, value);
        lastOccurrence = measure.last;
        break;
      }
      case 'time_to_value': {
        const start = signal.from === 'signup' ? signupAt : firstOccurrence(facts, signal.from);
        const end = firstOccurrence(facts, signal.to);
        if (start === null || end === null) break;
        let elapsed = Date.parse(end) - Date.parse(start);
        if (signal.from === 'signup') elapsed = Math.max(0, elapsed);
        // + 0: a `to` just before its `from` rounds to -0, which is no value to show.
        value = Math.round((elapsed / dayMs) * 10) / 10 + 0;
        matched = elapsed >= 0 && elapsed <= signal.within * dayMs;
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
        // The first value meeting the condition is shown, else the first value: of the entity's own traits, or of
        // each of its accounts'.
        let shown: unknown;
        if (signal.of === 'account') {
          const accounts = facts.accountTraits;
          const meeting = firstMeeting(signal.is, accounts, signal.trait);
          matched = meeting !== -1;
          shown = (matched ? accounts[meeting]![signal.trait] : undefined) ?? accounts[0]?.[signal.trait];
        } else {
          shown = facts.traits[signal.trait];
          matched = traitHolds(signal.is, shown);
        }
        value = typeof shown === 'number' || typeof shown === 'boolean' ? shown : shown === undefined || shown === null ? null : String(shown).slice(0, 100);
        break;
      }
      case 'combination':
        matched =
          (signal.all === undefined || allMatched(signal.all, signals)) &&
          (signal.any === undefined || anyMatched(signal.any, signals)) &&
          (signal.not === undefined || signals[signal.not]?.matched !== true);
        value = matched;
        break;
      case 'active_users': {
        const since = calendar.windowStart(now, signal.active_users);
        value = facts.members.filter((member) => member.lastSeen !== null && calendar.dayOf(member.lastSeen) >= since).length;
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
    let points = matched ? signal.points : 0;
    if (matched && signal.kind === 'event' && signal.decay !== undefined && lastOccurrence !== undefined) {
      points *= 0.5 ** (Math.max(0, now.getTime() - Date.parse(lastOccurrence)) / (signal.decay * dayMs));
      points = Math.round(points * 100) / 100;
    }
    signals[name] = { matched, value, points, category };
  }

  let engagement = 0;
  let fit = 0;
  for (const name in signals) {
    const { category, points } = signals[name]!;
    if (category === 'engagement') engagement += points;
    else if (category === 'fit') fit += points;
  }
  const uncapped = engagement + fit;
  const total = file.scoring.cap !== undefined ? Math.min(file.scoring.cap, uncapped) : uncapped;
  const tier = firstTierMet(file.tiers, facts.type, total, signals);
  return {
    signals,
    score: { total, engagement, fit },
    tier: tier?.name ?? null,
    route: tier ? chooseRoute(tier.route, facts) : null,
    owner: tier ? ownerOf(tier.owner, facts) : null,
  };
}
