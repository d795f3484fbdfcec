import { addDays, dayMs, timeMs, type Calendar } from '../days';
import { signupTime, type DayRollup, type EntityFacts, type Evaluation } from './engine';
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
 *    Most users without a tier have none (their windowed counts can only fall), so quiet users cost no sweep;
 *  - `readByAccounts`: for a user in an account, a turn (on or off) of a signal its accounts read of their members
 *    (`members_matching`, Ruleset.memberSignals): its accounts read the outcome its state last saved.
 */
export type TimeChangeScope = 'any' | 'qualifying' | 'readByAccounts';

/** The first moment of a change that matters, by scope (epoch ms; Infinity: none). */
export type TimeChanges = Readonly<Record<TimeChangeScope, number>>;

/** How a signal's outcome can move by time alone, and from when. */
interface SignalMove {
  /** Epoch ms of the first moment it can move. */
  at: number;
  turnsOn: boolean;
  turnsOff: boolean;
  /** Its points can rise while it stays matched (negative points decaying towards 0). */
  pointsRise: boolean;
}

const noChanges: TimeChanges = Object.freeze({ any: Number.POSITIVE_INFINITY, qualifying: Number.POSITIVE_INFINITY, readByAccounts: Number.POSITIVE_INFINITY });

/**
 * The first moments after `now` (epoch ms) at which `evaluate` can give a result that matters, for each scope (see
 * TimeChangeScope), for the same facts, by time alone; Infinity when none. One walk gives them all: the backtest
 * needs them for most users. The moments: a day that counts for a rolling window leaving
 * it (when the day after the window's last day holding it begins, in the rules' calendar), the next midnight for a
 * window split `per` day or week (its days change periods), an inactivity or signup age reaching its
 * threshold, an active member of an account leaving an `active_users` window, and, while points decay
 * (continuously), `decayIntervalMs` from now.
 */
export function changesByTimeAt(facts: EntityFacts, evaluation: Evaluation, ruleset: Ruleset, now: Date, decayIntervalMs: number): TimeChanges {
  const plan = timePlanOf(ruleset)[facts.type];
  if (plan.length === 0) return noChanges;
  const nowMs = now.getTime();
  const signupAt = plan.readsSignup ? signupTime(facts, ruleset) : null;
  // By the signal's place in the plan: a combination's parts come before it.
  const moves: (SignalMove | undefined)[] = new Array(plan.length);
  let any = Number.POSITIVE_INFINITY;
  let qualifying = Number.POSITIVE_INFINITY;
  let readByAccounts = Number.POSITIVE_INFINITY;
  // A user's accounts are those whose traits its facts hold (core/facts), one each.
  const inAccounts = facts.type === 'user' && facts.accountTraits.length > 0;
  for (const step of plan) {
    const result = evaluation.signals[step.name];
    const move =
      step.signal.kind === 'combination'
        ? combinationMove(step.parts, step.inverted, moves)
        : leafMove(step.name, step.signal, result?.matched === true, result?.value ?? null, facts, ruleset.calendar, signupAt, now, decayIntervalMs);
    if (move === undefined || move.at <= nowMs) continue;
    moves[step.index] = move;
    if (move.at < any) any = move.at;
    if (move.at < qualifying && ((move.turnsOn && step.raisesWhenOn) || (move.turnsOff && step.raisesWhenOff) || move.pointsRise)) qualifying = move.at;
    if (move.at < readByAccounts && inAccounts && step.readByAccounts && (move.turnsOn || move.turnsOff)) readByAccounts = move.at;
  }
  return { any, qualifying, readByAccounts };
}

/**
 * Whether changesByTimeAt's `decayIntervalMs` can change its result for entities of this type: only a decaying
 * signal reads it. Without one, a caller needing the moments for two intervals (the backtest) works them out once.
 */
export const decayIntervalMatters = (ruleset: Ruleset, type: EntityFacts['type']): boolean => timePlanOf(ruleset)[type].decays;

/** A signal as changesByTimeAt walks it: what its moves mean for an entity without a tier, and its parts' places. */
interface PlanStep {
  name: string;
  index: number;
  signal: Signal;
  /** Turning on raises the score or meets a tier's requirement. */
  raisesWhenOn: boolean;
  /** Turning off gives back negative points. */
  raisesWhenOff: boolean;
  /** Accounts read its outcome of their members (Ruleset.memberSignals). */
  readByAccounts: boolean;
  /** Combinations: the places of their all/any parts and of their not part, among the steps before. */
  parts: number[];
  inverted: number[];
}

type TimePlan = PlanStep[] & { readsSignup: boolean; decays: boolean };

/** Worked out once per ruleset: a sweep runs this for every entity it saves, the backtest for every user at every step. */
const timePlans = new WeakMap<Ruleset, Record<'user' | 'account', TimePlan>>();

/**
 * The signals time alone can move, per level, in combination order: kinds that move with time, and combinations with
 * such a part. Everything else (traits, lifetime and since-signup counts, members) moves only with new data.
 */
function timePlanOf(ruleset: Ruleset): Record<'user' | 'account', TimePlan> {
  let plans = timePlans.get(ruleset);
  if (plans !== undefined) return plans;
  const required = new Set(ruleset.file.tiers.flatMap((tier) => tier.require));
  const planFor = (level: 'user' | 'account'): TimePlan => {
    const steps: PlanStep[] = [];
    const places = new Map<string, number>();
    for (const name of ruleset.order) {
      const signal = ruleset.file.signals[name]!;
      if (signalLevel(signal) !== level) continue;
      const parts = signal.kind === 'combination' ? [...(signal.all ?? []), ...(signal.any ?? [])].flatMap((part) => places.get(part) ?? []) : [];
      const inverted = signal.kind === 'combination' && signal.not !== undefined ? [places.get(signal.not) ?? []].flat() : [];
      const moves = signal.kind === 'combination' ? parts.length + inverted.length > 0 : movesWithTime(signal);
      if (!moves) continue;
      places.set(name, steps.length);
      steps.push({ name, index: steps.length, signal, raisesWhenOn: signal.points > 0 || required.has(name), raisesWhenOff: signal.points < 0, readByAccounts: ruleset.memberSignals.has(name), parts, inverted });
    }
    return Object.assign(steps, { readsSignup: steps.some((step) => step.signal.kind === 'signup_age'), decays: steps.some((step) => step.signal.kind === 'event' && step.signal.decay !== undefined) });
  };
  plans = { user: planFor('user'), account: planFor('account') };
  timePlans.set(ruleset, plans);
  return plans;
}

function movesWithTime(signal: Signal): boolean {
  switch (signal.kind) {
    case 'event':
      return signal.window !== undefined || signal.decay !== undefined;
    case 'inactivity':
    case 'signup_age':
    case 'active_users':
      return true;
    default:
      return false;
  }
}

/** When a day counted in a window of `days` days leaves it: when the day `days` later begins. */
const leavesWindowAt = (calendar: Calendar, day: string, days: number) => calendar.startOf(addDays(day, days));
const daysAfter = (from: string, days: number) => timeMs(from) + days * dayMs;

/** Counts over a rolling window only fall with time: the oldest day holding one leaves first. */
function leafMove(
  name: string,
  signal: Signal,
  matched: boolean,
  value: number | string | boolean | null,
  facts: EntityFacts,
  calendar: Calendar,
  signupAt: string | null,
  now: Date,
  decayIntervalMs: number,
): SignalMove | undefined {
  switch (signal.kind) {
    case 'event': {
      const decays = signal.decay !== undefined && matched && signal.points !== 0;
      const decayAt = decays ? now.getTime() + decayIntervalMs : Number.POSITIVE_INFINITY;
      const from = signal.window !== undefined ? calendar.windowStart(now, signal.window) : undefined;
      // The oldest day in the window holding the signal (days come in day order); a loop, not find(): no closure per call.
      let oldest: DayRollup | undefined;
      if (from !== undefined) {
        for (const rollup of facts.days) {
          if (rollup.day >= from && Object.hasOwn(rollup.measures, name)) {
            oldest = rollup;
            break;
          }
        }
      }
      if (!decays && oldest === undefined) return undefined;
      // Split per day or week, every counted day moves to another period at each midnight: either way, at once.
      const perPeriod = signal.per !== undefined;
      const leavesAt = oldest === undefined ? Number.POSITIVE_INFINITY : perPeriod ? calendar.startOf(addDays(calendar.dayOf(now), 1)) : leavesWindowAt(calendar, oldest.day, signal.window!);
      const falling = oldest === undefined ? noTurn : perPeriod ? { turnsOn: !matched, turnsOff: matched } : fallingValue(signal, matched, value);
      // Properties rather than a spread: a spread into an object literal copies the generic (and slow) way.
      return { at: Math.min(decayAt, leavesAt), turnsOn: falling.turnsOn, turnsOff: falling.turnsOff, pointsRise: decays && signal.points < 0 };
    }
    case 'inactivity':
      return !matched && facts.lastSeen !== null ? { at: daysAfter(facts.lastSeen, signal.inactive_for), turnsOn: true, turnsOff: false, pointsRise: false } : undefined;
    case 'signup_age':
      return !matched && signupAt !== null ? { at: daysAfter(signupAt, signal.signup_older_than), turnsOn: true, turnsOff: false, pointsRise: false } : undefined;
    case 'active_users': {
      const from = calendar.windowStart(now, signal.active_users);
      let oldest: string | undefined;
      for (const member of facts.members) {
        if (member.lastSeen === null) continue;
        const day = calendar.dayOf(member.lastSeen);
        if (day >= from && (oldest === undefined || day < oldest)) oldest = day;
      }
      if (oldest === undefined) return undefined;
      const falling = fallingValue(signal, matched, value);
      return { at: leavesWindowAt(calendar, oldest, signal.active_users), turnsOn: falling.turnsOn, turnsOff: falling.turnsOff, pointsRise: false };
    }
    default:
      return undefined;
  }
}

const noTurn: Pick<SignalMove, 'turnsOn' | 'turnsOff'> = Object.freeze({ turnsOn: false, turnsOff: false });

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
function combinationMove(parts: readonly number[], inverted: readonly number[], moves: readonly (SignalMove | undefined)[]): SignalMove | undefined {
  let at = Number.POSITIVE_INFINITY;
  let turnsOn = false;
  let turnsOff = false;
  for (const place of parts) {
    const move = moves[place];
    if (move === undefined) continue;
    at = Math.min(at, move.at);
    turnsOn ||= move.turnsOn;
    turnsOff ||= move.turnsOff;
  }
  for (const place of inverted) {
    const move = moves[place];
    if (move === undefined) continue;
    at = Math.min(at, move.at);
    turnsOn ||= move.turnsOff;
    turnsOff ||= move.turnsOn;
  }
  return Number.isFinite(at) ? { at, turnsOn, turnsOff, pointsRise: false } : undefined;
}
