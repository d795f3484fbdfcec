import { signupTime } from '../../core/rules/engine';
import { percent } from '../format';
import { lift, proportion, type Estimate } from '../stats';
import { dayMs } from '../../core/days';
import {
  DiscoveryCollector,
  distinctKey,
  noConversion,
  type ActivitySnapshot,
  type DiscoveryCollectorOptions,
  type DiscoveryConversion,
  type DiscoveryInput,
  type DiscoveryMessage,
} from './collect';

/**
 * Signal discovery, second step (after collect.ts, before present.ts): the cohort analysis the PQL literature
 * describes ("compare users who converted with users who did not, and find the in-product behaviours that appear
 * significantly more often in the converting group"), done so that its answer can be trusted:
 *
 * - Candidates are ranked by the lower bound of the 95% interval of their lift, which penalises small samples,
 *   and are measured twice: on a training set and on a time-based holdout (the latest
 *   30% of signups). A candidate is kept only when both its lift intervals lie above 1.
 * - The chosen signals are not redundant: a candidate that fires for mostly the same users as a better one
 *   (Jaccard >= 0.8) is skipped, and so is one that shows no lift within either group a better one splits the
 *   users into (it only echoes it); each event (or event property) and window gets one threshold only.
 * - Each chosen signal gets points from its lift, and two tiers get the scores that training converters reach.
 *
 * "Within N days of signup" means what the rules engine means: the signup day and the N-1 days after it, UTC.
 */

export type WindowDays = 7 | 14 | 30 | null;

export interface DiscoverOptions {
  /** An event is a candidate when at least this many users did it (before conversion or cutoff). @default 30 */
  minUsers?: number;
  /** Count thresholds tried for every event and window. @default [1, 2, 3, 5, 10] */
  thresholds?: number[];
  /** Windows tried: days since signup, or null for "ever before conversion or cutoff". @default [7, 14, 30, null] */
  windows?: WindowDays[];
  /** Distinct-value thresholds tried for every property of an event. @default [2, 3, 5] */
  distinctThresholds?: number[];
  /** The window of the distinct-value candidates, in days since signup. @default 30 */
  distinctWindow?: 7 | 14 | 30;
  /** Share of the users, the latest to sign up, that forms the holdout. @default 0.3 */
  holdoutShare?: number;
  /** A candidate needs to fire for at least this many training users to be selected. @default 10 */
  minFired?: number;
  /** Two candidates whose fired sets overlap this much (Jaccard) are redundant. @default 0.8 */
  maxOverlap?: number;
  /** At most this many signals are selected. @default 8 */
  maxSignals?: number;
  /** Share of training converters that reach the top tier's minimum score. @default 0.1 */
  topTierShare?: number;
  /** Share of training converters that reach the second tier's minimum score. @default 0.5 */
  secondTierShare?: number;
}

/** Counts of one candidate (or tier) on one set of users. */
export interface Measured {
  /** Users in the set. */
  users: number;
  /** Of them, converted. */
  converted: number;
  /** Users for whom it fired (before conversion or cutoff). */
  fired: number;
  /** Of those, converted. */
  firedConverted: number;
  /** Share of the users for whom it fired. */
  rate: number;
  /** Conversion rate of those it fired for over that of the rest; null when either group is empty. */
  lift: Estimate | null;
  /** Share of those it fired for who converted, with its Wilson interval. */
  precision: Estimate;
  /** Share of the converters it fired for. */
  recall: number;
}

export type CandidateStatus =
  | 'selected'
  | 'few_fired'
  | 'train_lift'
  | 'holdout_lift'
  | 'same_event_window'
  | 'redundant'
  | 'explained'
  | 'limit';

export interface Candidate {
  /** A valid signal name for the rules file. */
  name: string;
  description: string;
  kind: 'count' | 'distinct';
  event: string;
  /** distinct: the property whose distinct values are counted. */
  property?: string;
  /** Days since signup; null: ever, before conversion or cutoff. */
  windowDays: WindowDays;
  /** at_least. */
  threshold: number;
  train: Measured;
  holdout: Measured;
  status: CandidateStatus;
  /** Why it was not selected, in words. */
  reason?: string;
  /** Suggested points (selected candidates). */
  points?: number;
}

export interface SuggestedTier {
  name: string;
  minScore: number;
  route: string;
  /** How the minimum score was chosen. */
  basis: string;
  train: Measured;
  holdout: Measured;
}

export interface DiscoveryResult {
  /** The period the messages span; signups from holdoutFrom on form the holdout. */
  period: { from: string; to: string; holdoutFrom: string };
  signupTrait: string | null;
  input: DiscoveryInput;
  /** The users of each group (by signup time) and how many of them converted. */
  groups: { train: { users: number; converted: number }; holdout: { users: number; converted: number } };
  /** Every candidate, best first (by the lower bound of its training lift). */
  candidates: Candidate[];
  /** The chosen signals, best first. */
  selected: Candidate[];
  tiers: SuggestedTier[];
  options: Required<DiscoverOptions>;
  warnings: string[];
}

/** Collects messages and discovers signals in one call, for tests and small inputs. */
export function discoverFromMessages(
  messages: Iterable<DiscoveryMessage>,
  conversions: Iterable<DiscoveryConversion>,
  options: DiscoverOptions & DiscoveryCollectorOptions = {},
): DiscoveryResult {
  const collector = new DiscoveryCollector(conversions, options);
  for (const message of messages) collector.add(message);
  return discover(collector.snapshot(), options);
}

const defaults: Required<DiscoverOptions> = {
  minUsers: 30,
  thresholds: [1, 2, 3, 5, 10],
  windows: [7, 14, 30, null],
  distinctThresholds: [2, 3, 5],
  distinctWindow: 30,
  holdoutShare: 0.3,
  minFired: 10,
  maxOverlap: 0.8,
  maxSignals: 8,
  topTierShare: 0.1,
  secondTierShare: 0.5,
};

/** A fixed-size set of user indexes. */
class Bits {
  readonly words: Uint32Array;
  constructor(size: number) {
    this.words = new Uint32Array((size + 31) >>> 5);
  }
  set(index: number) {
    this.words[index >>> 5]! |= 1 << (index & 31);
  }
  has(index: number): boolean {
    return (this.words[index >>> 5]! & (1 << (index & 31))) !== 0;
  }
}

function popcount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** |a and b and mask| (mask optional). */
function countAnd(a: Bits, b: Bits | null, mask: Bits | null): number {
  let total = 0;
  for (let i = 0; i < a.words.length; i++) {
    let word = a.words[i]!;
    if (b) word &= b.words[i]!;
    if (mask) word &= mask.words[i]!;
    if (word !== 0) total += popcount(word);
  }
  return total;
}

/** Jaccard of two fired sets, within a mask. */
function jaccard(a: Bits, b: Bits, mask: Bits): number {
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.words.length; i++) {
    const x = a.words[i]! & mask.words[i]!;
    const y = b.words[i]! & mask.words[i]!;
    if ((x | y) === 0) continue;
    both += popcount(x & y);
    either += popcount(x | y);
  }
  return either === 0 ? 0 : both / either;
}

interface Population {
  size: number;
  train: Bits;
  holdout: Bits;
  converted: Bits;
}

function measure(fired: Bits, group: Bits, population: Population): Measured {
  const users = countAnd(group, null, null);
  const converted = countAnd(population.converted, group, null);
  const firedCount = countAnd(fired, group, null);
  const firedConverted = countAnd(fired, group, population.converted);
  return measuredFrom(users, converted, firedCount, firedConverted);
}

function measuredFrom(users: number, converted: number, fired: number, firedConverted: number): Measured {
  return {
    users,
    converted,
    fired,
    firedConverted,
    rate: users === 0 ? 0 : fired / users,
    lift: lift(firedConverted, fired, converted - firedConverted, users - fired),
    precision: proportion(firedConverted, fired),
    recall: converted === 0 ? 0 : firedConverted / converted,
  };
}

/**
 * Whether a candidate tells something a chosen signal does not: its lift (interval above 1) among the users the
 * chosen signal fired for, or among those it did not fire for, on the training users and again on the holdout. A
 * candidate nested in a chosen one (3+ dashboards inside 1+ dashboards) or wrapped around it (logged in, which
 * everyone who created a dashboard did) with no such lift only echoes it, and would count the same evidence twice.
 */
function addsToSignal(candidate: Bits, chosen: Bits, population: Population): boolean {
  const liftWithin = (group: Bits, inside: boolean) => {
    let users = 0;
    let converted = 0;
    let fired = 0;
    let firedConverted = 0;
    const conv = population.converted.words;
    for (let i = 0; i < group.words.length; i++) {
      const members = group.words[i]! & (inside ? chosen.words[i]! : ~chosen.words[i]!);
      if (members === 0) continue;
      const hit = members & candidate.words[i]!;
      users += popcount(members);
      converted += popcount(members & conv[i]!);
      fired += popcount(hit);
      firedConverted += popcount(hit & conv[i]!);
    }
    return lift(firedConverted, fired, converted - firedConverted, users - fired);
  };
  return [true, false].some((inside) => (liftWithin(population.train, inside)?.low ?? 0) > 1 && (liftWithin(population.holdout, inside)?.low ?? 0) > 1);
}

interface CandidateSpec {
  kind: 'count' | 'distinct';
  eventIndex: number;
  propertyIndex?: number;
  windowDays: WindowDays;
  threshold: number;
  fired: Bits;
}

/**
 * Ranks every candidate signal and picks the best non-redundant ones, with suggested points and tiers.
 * Pure: the same snapshot and options always give the same result.
 */
export function discover(snapshot: ActivitySnapshot, options: DiscoverOptions = {}): DiscoveryResult {
  const settings: Required<DiscoverOptions> = { ...defaults, ...options };
  const warnings: string[] = [];
  // Signup as the engine reads it: all signupTime needs of a rules file is its signup part.
  const signupRules = { file: snapshot.signupTrait === null ? {} : { signup: { trait: snapshot.signupTrait } } };

  // ---- the users, their signup, their group (train or holdout) and outcome ----
  const entries = [...snapshot.users.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const size = entries.length;
  const firstMs = Number.isFinite(snapshot.firstMs) ? snapshot.firstMs : 0;
  const lastMs = Number.isFinite(snapshot.lastMs) ? snapshot.lastMs : 0;
  const population: Population = { size, train: new Bits(size), holdout: new Bits(size), converted: new Bits(size) };
  const signupDays = new Float64Array(size);
  const signupMsOf = entries.map(([, user]) => Date.parse(signupTime({ traits: user.trait === undefined ? {} : { [snapshot.signupTrait!]: user.trait }, firstSeen: new Date(user.firstMs).toISOString() }, signupRules)!));
  // The holdout is the latest share of signups (not of the period's time span: signups may stop before the data does).
  const bySignup = [...signupMsOf].sort((a, b) => a - b);
  const holdoutFromMs = size === 0 ? lastMs : bySignup[Math.min(size - 1, Math.floor(size * (1 - settings.holdoutShare)))]!;
  entries.forEach(([, user], index) => {
    const signupMs = signupMsOf[index]!;
    signupDays[index] = Math.floor(signupMs / dayMs);
    if (signupMs >= holdoutFromMs) population.holdout.set(index);
    else population.train.set(index);
    if (user.convertedMs !== noConversion) population.converted.set(index);
  });

  // ---- candidates: which events and properties qualify ----
  const usersPerEvent = new Array<number>(snapshot.eventNames.length).fill(0);
  for (const [, user] of entries) for (const eventIndex of user.events.keys()) usersPerEvent[eventIndex]!++;
  const eligible = snapshot.eventNames.map((_, index) => usersPerEvent[index]! >= settings.minUsers);
  const windows = settings.windows;
  const thresholds = [...settings.thresholds].sort((a, b) => a - b);
  const distinctThresholds = [...settings.distinctThresholds].sort((a, b) => a - b);

  const specs: CandidateSpec[] = [];
  /** eventIndex -> first spec of its count candidates (windows x thresholds, in that order). */
  const countBase = new Map<number, number>();
  /** distinctKey(event index, property index) -> first spec of its distinct candidates. */
  const distinctBase = new Map<number, number>();
  snapshot.eventNames.forEach((_, eventIndex) => {
    if (!eligible[eventIndex]) return;
    countBase.set(eventIndex, specs.length);
    for (const windowDays of windows) for (const threshold of thresholds) specs.push({ kind: 'count', eventIndex, windowDays, threshold, fired: new Bits(size) });
    for (const propertyIndex of [...snapshot.eventProperties[eventIndex]!].sort((a, b) => a - b)) {
      distinctBase.set(distinctKey(eventIndex, propertyIndex), specs.length);
      for (const threshold of distinctThresholds) {
        specs.push({ kind: 'distinct', eventIndex, propertyIndex, windowDays: settings.distinctWindow, threshold, fired: new Bits(size) });
      }
    }
  });

  // ---- who each candidate fires for: one pass over every user's aggregate ----
  const windowCounts = new Array<number>(windows.length);
  entries.forEach(([, user], index) => {
    const signupDay = signupDays[index]!;
    for (const [eventIndex, times] of user.events) {
      const base = countBase.get(eventIndex);
      if (base === undefined) continue;
      windowCounts.fill(0);
      for (const ms of times) {
        const sinceSignup = Math.floor(ms / dayMs) - signupDay;
        for (let w = 0; w < windows.length; w++) {
          const windowDays = windows[w]!;
          if (windowDays === null || (sinceSignup >= 0 && sinceSignup < windowDays)) windowCounts[w]!++;
        }
      }
      for (let w = 0; w < windows.length; w++) {
        for (let t = 0; t < thresholds.length; t++) {
          if (windowCounts[w]! >= thresholds[t]!) specs[base + w * thresholds.length + t]!.fired.set(index);
          else break;
        }
      }
    }
    for (const [key, values] of user.distinct) {
      const base = distinctBase.get(key);
      if (base === undefined) continue;
      let count = 0;
      for (let i = 1; i < values.length; i += 2) {
        const sinceSignup = Math.floor(values[i]! / dayMs) - signupDay;
        if (sinceSignup >= 0 && sinceSignup < settings.distinctWindow) count++;
      }
      for (let t = 0; t < distinctThresholds.length; t++) {
        if (count >= distinctThresholds[t]!) specs[base + t]!.fired.set(index);
        else break;
      }
    }
  });

  // ---- measure, rank ----
  const names = new Set<string>();
  const measured = specs
    .map((spec) => {
      const event = snapshot.eventNames[spec.eventIndex]!;
      const property = spec.propertyIndex === undefined ? undefined : snapshot.propertyNames[spec.propertyIndex]!;
      const candidate: Candidate = {
        name: '',
        description: describeCandidate(spec.kind, event, property, spec.windowDays, spec.threshold),
        kind: spec.kind,
        event,
        ...(property !== undefined ? { property } : {}),
        windowDays: spec.windowDays,
        threshold: spec.threshold,
        train: measure(spec.fired, population.train, population),
        holdout: measure(spec.fired, population.holdout, population),
        status: 'few_fired',
      };
      return { candidate, spec };
    })
    // A candidate that fires for nobody (e.g. 10+ distinct values) is not worth a row.
    .filter(({ candidate }) => candidate.train.fired + candidate.holdout.fired > 0);
  measured.sort((a, b) => compareCandidates(a.candidate, b.candidate));
  for (const { candidate } of measured) candidate.name = signalName(candidate, names);

  // ---- select: holdout confirms, no redundancy, one threshold per event (or property) and window ----
  const chosen: { candidate: Candidate; spec: CandidateSpec }[] = [];
  const takenSlots = new Map<string, string>();
  for (const entry of measured) {
    const { candidate, spec } = entry;
    const slot = `${candidate.kind}\u0000${candidate.event}\u0000${candidate.property ?? ''}\u0000${candidate.windowDays ?? 'ever'}`;
    const reject = (status: CandidateStatus, reason: string) => {
      candidate.status = status;
      candidate.reason = reason;
    };
    if (candidate.train.fired < settings.minFired) reject('few_fired', `fired for ${candidate.train.fired} training users, fewer than ${settings.minFired}`);
    else if (!candidate.train.lift || candidate.train.lift.low <= 1) reject('train_lift', 'training lift interval reaches 1 or below');
    else if (!candidate.holdout.lift || candidate.holdout.lift.low <= 1) reject('holdout_lift', 'holdout lift interval reaches 1 or below: not confirmed');
    else if (takenSlots.has(slot)) reject('same_event_window', `another threshold of the same ${candidate.kind === 'distinct' ? 'property' : 'event'} and window was chosen: ${takenSlots.get(slot)}`);
    else {
      const overlapping = chosen.find((other) => jaccard(spec.fired, other.spec.fired, population.train) >= settings.maxOverlap);
      const explaining = overlapping ? undefined : chosen.find((other) => !addsToSignal(spec.fired, other.spec.fired, population));
      if (overlapping) reject('redundant', `fires for mostly the same users as ${overlapping.candidate.name} (Jaccard >= ${settings.maxOverlap})`);
      else if (explaining) reject('explained', `adds nothing to ${explaining.candidate.name}: no confirmed lift among the users it fired for, nor among the others`);
      else if (chosen.length >= settings.maxSignals) reject('limit', `${settings.maxSignals} signals were chosen already`);
      else {
        candidate.status = 'selected';
        candidate.points = pointsFor(candidate.train.lift.low);
        chosen.push(entry);
        takenSlots.set(slot, candidate.name);
      }
    }
  }

  // ---- tiers: the score the top ~10% (PQL-A) and ~50% (PQL-B) of training converters reach ----
  const tiers: SuggestedTier[] = [];
  if (chosen.length > 0) {
    const scores = new Float64Array(size);
    for (const { candidate, spec } of chosen) {
      for (let index = 0; index < size; index++) if (spec.fired.has(index)) scores[index]! += candidate.points!;
    }
    const converterScores: number[] = [];
    for (let index = 0; index < size; index++) if (population.train.has(index) && population.converted.has(index)) converterScores.push(scores[index]!);
    converterScores.sort((a, b) => b - a);
    const reachedBy = (share: number) => converterScores[Math.min(converterScores.length - 1, Math.max(0, Math.ceil(share * converterScores.length) - 1))] ?? 0;
    const minPoints = Math.min(...chosen.map(({ candidate }) => candidate.points!));
    /** Users in exactly this tier (the first tier met wins, as in the engine and the backtest's per-tier figures). */
    const tierAt = (name: string, minScore: number, route: string, basis: string, below = Number.POSITIVE_INFINITY): SuggestedTier => {
      const qualified = new Bits(size);
      for (let index = 0; index < size; index++) if (scores[index]! >= minScore && scores[index]! < below) qualified.set(index);
      return { name, minScore, route, basis, train: measure(qualified, population.train, population), holdout: measure(qualified, population.holdout, population) };
    };
    let top = reachedBy(settings.topTierShare);
    let topBasis = `the score reached by the top ${percent(settings.topTierShare)} of training converters`;
    if (top <= 0) {
      top = scores.reduce((max, score) => Math.max(max, score), 0);
      topBasis = 'the highest score any user reached (fewer than ' + percent(settings.topTierShare) + ' of training converters scored at all)';
    }
    tiers.push(tierAt('PQL-A', top, 'sales', topBasis));
    let second = reachedBy(settings.secondTierShare);
    let secondBasis = `the score reached by the top ${percent(settings.secondTierShare)} of training converters`;
    if (second >= top) {
      // Half the converters reach the top score already: the next score below it that converters reached.
      const below = converterScores.find((score) => score < top && score > 0);
      if (below !== undefined) {
        const reaching = converterScores.filter((score) => score >= below).length / converterScores.length;
        second = below;
        secondBasis = `the highest training converters' score below PQL-A's, reached by the top ${percent(reaching)} of them (${percent(settings.secondTierShare)} reach PQL-A's)`;
      }
    }
    if (second <= 0) {
      second = minPoints;
      secondBasis = `the points of the smallest signal (fewer than ${percent(settings.secondTierShare)} of training converters scored at all)`;
    }
    if (second < top) tiers.push(tierAt('PQL-B', second, 'nurture', secondBasis, top));
    else warnings.push('PQL-B left out: no training converter scored between 0 and PQL-A\'s minimum');
  }

  // ---- warnings ----
  for (const tier of tiers) {
    if (!tier.holdout.lift || tier.holdout.lift.low <= 1) warnings.push(`${tier.name}'s lift on the holdout has an interval that reaches 1 or below: the tier is not confirmed; consider leaving it out`);
  }
  const holdoutUsers = countAnd(population.holdout, null, null);
  const trainConverted = countAnd(population.converted, population.train, null);
  const holdoutConverted = countAnd(population.converted, population.holdout, null);
  if (trainConverted < 30) warnings.push(`only ${trainConverted} training users converted: every lift is uncertain (the articles' warning about small samples)`);
  if (holdoutConverted < 30) warnings.push(`only ${holdoutConverted} holdout users converted: few signals can be confirmed`);
  if (holdoutUsers === 0) warnings.push('no user signed up in the holdout period: nothing could be confirmed');
  if (snapshot.input.conversions.accounts > 0) warnings.push(`${snapshot.input.conversions.accounts} account conversions were ignored: discover works on users`);
  if (snapshot.input.conversions.unclaimedVisitors > 0) warnings.push(`${snapshot.input.conversions.unclaimedVisitors} conversions listed under anonymous ids nobody claimed were left out: discover works on users`);
  if (snapshot.input.conversions.unseen > 0) warnings.push(`${snapshot.input.conversions.unseen} converted users have no events at all`);
  if (snapshot.input.conversions.beforeFirstMessage > 0) warnings.push(`${snapshot.input.conversions.beforeFirstMessage} users converted before their first event: left out`);
  if (chosen.length === 0) warnings.push('no candidate signal was confirmed on the holdout: no rules file to suggest');

  return {
    period: { from: new Date(firstMs).toISOString(), to: new Date(lastMs).toISOString(), holdoutFrom: new Date(holdoutFromMs).toISOString() },
    signupTrait: snapshot.signupTrait,
    input: snapshot.input,
    groups: { train: { users: countAnd(population.train, null, null), converted: trainConverted }, holdout: { users: holdoutUsers, converted: holdoutConverted } },
    candidates: measured.map(({ candidate }) => candidate),
    selected: chosen.map(({ candidate }) => candidate),
    tiers,
    options: settings,
    warnings,
  };
}

/** Best first: the lower bound of the training lift, then precision; on a tie the simpler signal. */
function compareCandidates(a: Candidate, b: Candidate): number {
  const low = (candidate: Candidate) => candidate.train.lift?.low ?? 0;
  return (
    low(b) - low(a) ||
    b.train.precision.low - a.train.precision.low ||
    (a.kind === b.kind ? 0 : a.kind === 'count' ? -1 : 1) ||
    a.threshold - b.threshold ||
    (a.windowDays ?? 1e9) - (b.windowDays ?? 1e9) ||
    (a.event < b.event ? -1 : a.event > b.event ? 1 : 0) ||
    ((a.property ?? '') < (b.property ?? '') ? -1 : (a.property ?? '') > (b.property ?? '') ? 1 : 0)
  );
}

/** 10 points per doubling of the conversion rate (10 x log2 of the lift's lower bound), rounded to 5, at least 5. */
export function pointsFor(liftLow: number): number {
  return Math.max(5, Math.round((10 * Math.log2(liftLow)) / 5) * 5);
}

function describeCandidate(kind: 'count' | 'distinct', event: string, property: string | undefined, windowDays: WindowDays, threshold: number): string {
  const when = windowDays === null ? 'ever (before conversion)' : `within ${windowDays}d of signup`;
  if (kind === 'distinct') return `${event}: ${threshold}+ distinct ${property} ${when}`;
  return `${event} ${threshold === 1 ? 'at least once' : `${threshold}+ times`} ${when}`;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** A unique, valid signal name: `dashboard_created_2_in_7d`, `teammate_invited_invitee_3_distinct_in_30d`, `data_exported_5_ever`. */
function signalName(candidate: Candidate, taken: Set<string>): string {
  const suffix = `${candidate.kind === 'distinct' ? `_${slug(candidate.property!) || 'property'}` : ''}_${candidate.threshold}${candidate.kind === 'distinct' ? '_distinct' : ''}${candidate.windowDays === null ? '_ever' : `_in_${candidate.windowDays}d`}`;
  let base = slug(candidate.event) || 'event';
  if (!/^[a-z]/.test(base)) base = `e_${base}`;
  let name = (base.slice(0, Math.max(1, 64 - suffix.length)) + suffix).slice(0, 64);
  if (!/^[a-z]/.test(name)) name = `e${name}`.slice(0, 64);
  for (let n = 2; taken.has(name); n++) name = `${name.slice(0, 60)}_${n}`;
  taken.add(name);
  return name;
}
