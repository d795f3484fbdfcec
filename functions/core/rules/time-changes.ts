import { addDays, dayMs, type Calendar } from '../days';
import { signupTime, type EntityFacts, type Evaluation } from './engine';
import { signalLevel, type Ruleset } from './ruleset';
import type { Signal } from './schema';

/**
 * When time alone, with no new event, can change an evaluation: the moments a sweep must look at an entity again.
 * The evaluator indexes the moment and the backtest replays the same decisions, so both call this one function.
 */

/**
 * Which changes matter:
 *  - `any`: every change of a signal's outcome or points (a lead: any of them can move its tier; the backtest's
 *    "nothing changed since the last evaluation");
 *  - `qualifying`: only those that can raise an entity without a tier into one: a signal that can turn on and gives
 *    points or is required by a tier, one with negative points that can turn off, negative points decaying towards 0.
 *    Most users without a tier have none (their windowed counts can only fall), so quiet users cost no sweep.
 */
export type TimeChangeScope = 'any' | 'qualifying';

/** How a signal's outcome can move by time alone, and from when. */
interface SignalMove {
  /** Epoch ms of the first moment it can move. */
  at: number;
  turnsOn: boolean;
  turnsOff: boolean;
  /** Its points can rise while it stays matched (negative points decaying towards 0). */
  pointsRise: boolean;
}

/**
 * The first moment after `now` (epoch ms) at which `evaluate` can give a result that matters (see TimeChangeScope)
 * for the same facts, by time alone; Infinity when none. The moments: a day that counts for a rolling window leaving
 * it (when the day after the window's last day holding it begins, in the rules' calendar), the next midnight for a
 * window split `per` day or week (its days change periods), an inactivity or signup age reaching its
 * threshold, an active member of an account leaving an `active_users` window, and, while points decay
 * (continuously), `decayIntervalMs` from now.
 */
export function changesByTimeAt(
  facts: EntityFacts,
  evaluation: Evaluation,
  ruleset: Ruleset,
  now: Date,
  options: { scope: TimeChangeScope; decayIntervalMs: number },
): number {
  const nowMs = now.getTime();
  const moves = new Map<string, SignalMove>();
  let signupAt: string | null | undefined;
  const signup = () => (signupAt === undefined ? (signupAt = signupTime(facts, ruleset)) : signupAt);
  for (const name of ruleset.order) {
    const signal = ruleset.file.signals[name]!;
    if (signalLevel(signal) !== facts.type) continue;
    const result = evaluation.signals[name];
    const move =
      signal.kind === 'combination' ? combinationMove(signal, moves) : leafMove(name, signal, result?.matched === true, result?.value ?? null, facts, ruleset.calendar, signup, now, options.decayIntervalMs);
    if (move !== undefined && move.at > nowMs) moves.set(name, move);
  }

  const required = options.scope === 'qualifying' ? new Set(ruleset.file.tiers.flatMap((tier) => tier.require)) : undefined;
  let first = Number.POSITIVE_INFINITY;
  for (const [name, move] of moves) {
    if (move.at >= first) continue;
    if (required !== undefined) {
      const { points } = ruleset.file.signals[name]!;
      const raises = (move.turnsOn && (points > 0 || required.has(name))) || (move.turnsOff && points < 0) || move.pointsRise;
      if (!raises) continue;
    }
    first = move.at;
  }
  return first;
}

/** Counts over a rolling window only fall with time: the oldest day holding one leaves first. */
function leafMove(
  name: string,
  signal: Exclude<Signal, { kind: 'combination' }>,
  matched: boolean,
  value: number | string | boolean | null,
  facts: EntityFacts,
  calendar: Calendar,
  signup: () => string | null,
  now: Date,
  decayIntervalMs: number,
): SignalMove | undefined {
  const at = (from: string, days: number) => Date.parse(from) + days * dayMs;
  // A day counted in a window of `days` days leaves it when the day `days` later begins.
  const leaves = (day: string, days: number) => calendar.startOf(addDays(day, days));
  switch (signal.kind) {
    case 'event': {
      const decays = signal.decay !== undefined && matched && signal.points !== 0;
      const decayAt = decays ? now.getTime() + decayIntervalMs : Number.POSITIVE_INFINITY;
      const from = signal.window !== undefined ? calendar.windowStart(now, signal.window) : undefined;
      const oldest = from !== undefined ? facts.days.find((rollup) => rollup.day >= from && Object.hasOwn(rollup.measures, name)) : undefined;
      if (!decays && oldest === undefined) return undefined;
      // Split per day or week, every counted day moves to another period at each midnight: either way, at once.
      const perPeriod = signal.per !== undefined;
      const leavesAt = oldest === undefined ? Number.POSITIVE_INFINITY : perPeriod ? calendar.startOf(addDays(calendar.dayOf(now), 1)) : leaves(oldest.day, signal.window!);
      const falling = oldest === undefined ? { turnsOn: false, turnsOff: false } : perPeriod ? { turnsOn: !matched, turnsOff: matched } : fallingValue(signal, matched, value);
      return { at: Math.min(decayAt, leavesAt), ...falling, pointsRise: decays && signal.points < 0 };
    }
    case 'inactivity':
      return !matched && facts.lastSeen !== null ? { at: at(facts.lastSeen, signal.inactive_for), turnsOn: true, turnsOff: false, pointsRise: false } : undefined;
    case 'signup_age': {
      const signupAt = signup();
      return !matched && signupAt !== null ? { at: at(signupAt, signal.signup_older_than), turnsOn: true, turnsOff: false, pointsRise: false } : undefined;
    }
    case 'active_users': {
      const from = calendar.windowStart(now, signal.active_users);
      let oldest: string | undefined;
      for (const member of facts.members) {
        if (member.lastSeen === null) continue;
        const day = calendar.dayOf(member.lastSeen);
        if (day >= from && (oldest === undefined || day < oldest)) oldest = day;
      }
      return oldest === undefined ? undefined : { at: leaves(oldest, signal.active_users), ...fallingValue(signal, matched, value), pointsRise: false };
    }
    default:
      // Traits, lifetime and since-signup counts and members' outcomes move only with new data.
      return undefined;
  }
}

/**
 * How a threshold's outcome can move while its value falls: at_least can only turn off, at_most only on, exactly
 * either way; a sum of numbers of either sign can move both ways.
 */
function fallingValue(
  signal: { at_least?: number | undefined; at_most?: number | undefined; exactly?: number | undefined; sum?: string | undefined },
  matched: boolean,
  value: number | string | boolean | null,
): Pick<SignalMove, 'turnsOn' | 'turnsOff'> {
  if (signal.sum !== undefined) return { turnsOn: !matched, turnsOff: matched };
  if (signal.exactly !== undefined) return { turnsOn: !matched && typeof value === 'number' && value > signal.exactly, turnsOff: matched };
  if (signal.at_most !== undefined) return { turnsOn: !matched, turnsOff: false };
  return { turnsOn: false, turnsOff: matched };
}

/** A combination moves when a part does: all/any follow their parts, not turns the other way. */
function combinationMove(signal: Extract<Signal, { kind: 'combination' }>, moves: ReadonlyMap<string, SignalMove>): SignalMove | undefined {
  let at = Number.POSITIVE_INFINITY;
  let turnsOn = false;
  let turnsOff = false;
  const follow = (name: string, inverted: boolean) => {
    const move = moves.get(name);
    if (move === undefined) return;
    at = Math.min(at, move.at);
    turnsOn ||= inverted ? move.turnsOff : move.turnsOn;
    turnsOff ||= inverted ? move.turnsOn : move.turnsOff;
  };
  for (const part of [...(signal.all ?? []), ...(signal.any ?? [])]) follow(part, false);
  if (signal.not !== undefined) follow(signal.not, true);
  return Number.isFinite(at) ? { at, turnsOn, turnsOff, pointsRise: false } : undefined;
}
