import type { Ruleset } from '../core/rules/load';
import { signalLevel } from '../core/rules/ruleset';
import { describeRoute } from '../core/rules/routing';
import type { BacktestReport, Outcome, SignalReport, ThresholdPoint, TierReport } from './report';
import { f1, lift, median, proportion, type Estimate } from './stats';
import type { EntityHistoryResult, EventHistoryStats, ReplayResult } from './replay';
import { addDays, dayMs, mondayOf } from '../core/days';
import { count, percentCoarse, textTable, twoDecimalsBelow100, withInterval } from './format';

/**
 * From a replay and the conversions, the backtest report (report.ts). Pure. The definitions, which the report's
 * readers (the summary table, the HTML report, --json) all share:
 *
 * - The period: from the start of its first day to the end of its last step, days of the rules' time zone.
 * - Judged entities: those seen by the last step (a user by its first message, an account when its first member
 *   joined it), except those that converted before the period began or before they were first seen: nothing the
 *   rules said could have come before their conversion. An entity's start is the later of the period's first day and
 *   its first sighting. A user and the identifiers merged into it by the end are one person (asOnePerson).
 * - Qualified in a tier: the entity ENTERED that tier (exactly that tier: entering a better one does not count) at a
 *   step of the period, before it converted; its qualification time is its first entry. Converted (qualified
 *   group): converted within the horizon after that qualification.
 * - Non-leads (a tier's comparison group, `notQualified`): the judged entities of the tier's level that entered no tier
 *   before converting; the leads of the other tiers are in neither group. Rule health (live-health.ts) compares with
 *   the same group, so a recorded backtest's lift and the live one measure the same thing. Converted: converted at
 *   any time from its start up to the end of the period plus the horizon.
 * - Converters: judged entities that converted between their start and the end of the period plus the horizon.
 *   Recall = qualified who converted within the horizon / converters. Precision = the qualified group's rate. F1 of the two.
 * - Lift = qualified rate / non-lead rate, with the log-method 95% interval (stats.ts); rates with Wilson intervals.
 * - Alerts per week: entries into the tier during the period (every entry is a lead event) / the period's weeks.
 *   `weekly` counts the same entries per ISO week (Monday).
 * - Signals: the same, with "fired" (matched at some step, first time before converting) instead of qualified, and
 *   every judged entity of the level it did not fire for as the comparison group.
 *   fireRate = share of judged entities for which it matched at any step.
 * - Thresholds (users only): qualified = the user's score reached the threshold at some step before converting.
 * - An entity that converted several times is judged by its first conversion.
 */

/** An entity's conversion (a purchase, an upgrade), as the conversions file gives it or the replay recorded it. */
export interface Conversion {
  type: EntityHistoryResult['type'];
  id: string;
  /** ISO 8601, UTC. */
  convertedAt: string;
  value?: number;
}

export interface BuildReportOptions {
  replay: ReplayResult;
  conversions: readonly Conversion[];
  /** Where the conversions came from, in words, for the report: the event stream or a file. */
  conversionsFrom: string;
  ruleset: Ruleset;
  /** The rules file, as named to the user. */
  rulesSource: string;
  horizonDays: number;
  input: { eventsRead: number; linesSkipped: number; duplicates?: number; asReceived?: boolean } & Pick<EventHistoryStats, 'mergedIdentifiers' | 'anonymousLeftOut'> & Partial<Pick<EventHistoryStats, 'lateEvents'>>;
  generatedAt?: Date;
}

/** The conversions the replay recorded (the rules file's conversion, detected in the event stream as the evaluator does). */
export function replayedConversions(replay: ReplayResult): Conversion[] {
  // An identifier merged into a user brought its conversions to that user's history: listed again, one person's
  // conversion would count twice.
  return replay.entities.flatMap((entity) => (entity.convertedAt !== undefined && entity.mergedInto === undefined ? [{ type: entity.type, id: entity.id, convertedAt: entity.convertedAt }] : []));
}

const smallSample = 30;
const grid = 5;
const maxMissed = 50;

interface Judged {
  entity: EntityHistoryResult;
  start: string;
  convertedAt: string | null;
  /** convertedAt as epoch ms (NaN for none), parsed once for the many splits. */
  convertedMs: number;
  /** Converted between its start and the end of the period plus the horizon. */
  converter: boolean;
  /** Entered a tier before converting: no non-lead. */
  lead: boolean;
}

export function buildReport(options: BuildReportOptions): BacktestReport {
  const { replay, ruleset, horizonDays } = options;
  const horizonMs = horizonDays * dayMs;
  // The replay's days are the rules' time zone's: the period begins when its first day does there, not at UTC midnight
  // (which, rounded to days, left a period in a zone at UTC+12 or more a day short, and its alerts per week too many).
  const periodStart = new Date(ruleset.calendar.startOf(replay.from)).toISOString();
  const lastStep = replay.steps.at(-1)!;
  const outcomeEnd = new Date(Date.parse(lastStep) + horizonMs).toISOString();
  const warnings: string[] = [];

  // An identifier merged into a user by the end (an aliased userId, a claimed visitor) is judged as that user, so a
  // conversion listed under it (a CRM that knew the person by the earlier id) is that user's: not one never seen.
  // identifiersOf: by user, the identifiers merged into it that were judged on their own until then (asOnePerson).
  const keyOf = (type: string, id: string) => `${type}\n${id}`;
  const mergedInto = new Map<string, string>();
  const identifiersOf = new Map<string, EntityHistoryResult[]>();
  for (const entity of replay.entities) {
    if (entity.mergedInto === undefined) continue;
    const user = keyOf('user', entity.mergedInto);
    mergedInto.set(keyOf(entity.type, entity.id), user);
    const identifiers = identifiersOf.get(user);
    if (identifiers === undefined) identifiersOf.set(user, [entity]);
    else identifiers.push(entity);
  }
  for (const claimed of replay.claimedVisitors) mergedInto.set(keyOf('visitor', claimed.id), keyOf('user', claimed.into));
  const firstConversion = new Map<string, string>();
  for (const conversion of options.conversions) {
    const listed = keyOf(conversion.type, conversion.id);
    const key = mergedInto.get(listed) ?? listed;
    const earlier = firstConversion.get(key);
    if (earlier === undefined || conversion.convertedAt < earlier) firstConversion.set(key, conversion.convertedAt);
  }

  const seen = { user: 0, account: 0 };
  const judged: Record<'user' | 'account', Judged[]> = { user: [], account: [] };
  const known = new Set<string>();
  let convertedBefore = 0;
  for (const survivor of replay.entities) {
    // An identifier merged into a user by the end is that user's history: one person, judged once, as that user.
    if (survivor.mergedInto !== undefined) continue;
    const merged = survivor.type === 'user' ? identifiersOf.get(keyOf('user', survivor.id)) : undefined;
    const entity = merged === undefined ? survivor : asOnePerson(survivor, merged);
    // Visitors judged as leads are people: judged with the users, as the evaluator's rule health does.
    const level = entity.type === 'account' ? 'account' : 'user';
    seen[level]++;
    const key = keyOf(entity.type, entity.id);
    known.add(key);
    const convertedAt = firstConversion.get(key) ?? null;
    const start = entity.firstSeen > periodStart ? entity.firstSeen : periodStart;
    if (convertedAt !== null && convertedAt < start) {
      convertedBefore++;
      continue;
    }
    if (entity.type === 'account' && !replay.accountsEvaluated) continue;
    judged[level].push({
      entity,
      start,
      convertedAt,
      convertedMs: convertedAt !== null ? Date.parse(convertedAt) : Number.NaN,
      converter: convertedAt !== null && convertedAt <= outcomeEnd,
      lead: entity.transitions.some((transition) => transition.to !== null && (convertedAt === null || transition.at < convertedAt)),
    });
  }
  const unknown = [...firstConversion.keys()].filter((key) => !known.has(key)).length;

  /**
   * The two groups a "first time" (qualification, firing, threshold reached) splits the judged entities into; with
   * `nonLeadsOnly` (tiers), the second group is the non-leads.
   */
  const split = (population: readonly Judged[], firstTime: (entity: EntityHistoryResult, index: number) => string | undefined, nonLeadsOnly = false) => {
    let inCount = 0;
    let inConverted = 0;
    let outCount = 0;
    let outConverted = 0;
    let converters = 0;
    let reached = 0;
    const daysToConversion: number[] = [];
    // One pass, each time parsed once: a report splits every population some sixty times (tiers, signals, thresholds).
    for (let index = 0; index < population.length; index++) {
      const judgedEntity = population[index]!;
      const { convertedAt } = judgedEntity;
      const at = firstTime(judgedEntity.entity, index);
      if (judgedEntity.converter) converters++;
      if (at !== undefined) reached++;
      if (at !== undefined && (convertedAt === null || at < convertedAt)) {
        inCount++;
        if (convertedAt !== null) {
          const elapsed = judgedEntity.convertedMs - Date.parse(at);
          if (elapsed <= horizonMs) {
            inConverted++;
            daysToConversion.push(elapsed / dayMs);
          }
        }
      } else if (!nonLeadsOnly || !judgedEntity.lead) {
        outCount++;
        if (judgedEntity.converter) outConverted++;
      }
    }
    const precision = inCount === 0 ? 0 : inConverted / inCount;
    const recall = converters === 0 ? 0 : inConverted / converters;
    return {
      in: outcome(inCount, inConverted),
      out: outcome(outCount, outConverted),
      lift: lift(inConverted, inCount, outConverted, outCount),
      precision,
      recall,
      f1: f1(precision, recall),
      medianDays: median(daysToConversion),
      // Entities with a first time at all, before their conversion or not.
      reached,
    };
  };

  /**
   * Splits a population by several first times at once: `firstTimes` fills an entity's time for each split (left
   * undefined: none), once per entity. Reading every entity's own lists again for each split was most of the report's
   * time (its objects lie all over the heap); kept in a column per split, the times are read in order.
   */
  const splitEach = (population: readonly Judged[], splits: number, firstTimes: (entity: EntityHistoryResult, into: (string | undefined)[]) => void) => {
    const times: string[] = [];
    const places = new Map<string, number>();
    const placeOf = (at: string) => {
      let place = places.get(at);
      if (place === undefined) places.set(at, (place = times.push(at) - 1));
      return place;
    };
    const columns = new Int32Array(splits * population.length);
    const row: (string | undefined)[] = new Array<string | undefined>(splits);
    population.forEach(({ entity }, index) => {
      row.fill(undefined);
      firstTimes(entity, row);
      for (let column = 0; column < splits; column++) {
        const at = row[column];
        columns[column * population.length + index] = at === undefined ? -1 : placeOf(at);
      }
    });
    return Array.from({ length: splits }, (_, column) =>
      split(population, (_entity, index) => {
        const place = columns[column * population.length + index]!;
        return place === -1 ? undefined : times[place];
      }),
    );
  };

  const periodDays = Math.round((Date.parse(lastStep) - Date.parse(periodStart)) / dayMs);
  const weeks = Math.max(1, periodDays) / 7;
  // The replay's warm-up (before the period) makes the leads the earlier history made: leads, not the period's alerts.
  const entriesInto = (tier: string) => replay.entities.flatMap((entity) => entity.transitions.filter((transition) => transition.to === tier && transition.at >= periodStart));
  const populationOf = (level: 'user' | 'account' | 'both') =>
    level === 'both' ? [...judged.user, ...judged.account] : judged[level];

  const tiers: TierReport[] = ruleset.file.tiers.map((tier) => {
    const result = split(populationOf(tier.level), (entity) => entity.transitions.find((transition) => transition.to === tier.name)?.at, true);
    return {
      tier: tier.name,
      route: describeRoute(tier.route),
      level: tier.level,
      qualified: result.in,
      notQualified: result.out,
      alertsPerWeek: entriesInto(tier.name).length / weeks,
      lift: result.lift,
      precision: result.precision,
      recall: result.recall,
      f1: result.f1,
      medianDaysToConversion: result.medianDays,
    };
  });

  const signals: SignalReport[] = [];
  const signalNames = Object.keys(ruleset.file.signals).filter((name) => replay.accountsEvaluated || signalLevel(ruleset.file.signals[name]!) !== 'account');
  const firedSplits = new Map<string, ReturnType<typeof split>>();
  for (const level of ['user', 'account'] as const) {
    const names = signalNames.filter((name) => signalLevel(ruleset.file.signals[name]!) === level);
    const results = splitEach(judged[level], names.length, ({ firstFired }, into) => names.forEach((name, index) => (into[index] = Object.hasOwn(firstFired, name) ? firstFired[name] : undefined)));
    names.forEach((name, index) => firedSplits.set(name, results[index]!));
  }
  for (const name of signalNames) {
    const level = signalLevel(ruleset.file.signals[name]!);
    const population = judged[level];
    const result = firedSplits.get(name)!;
    const everFired = result.reached;
    signals.push({
      signal: name,
      level,
      fired: result.in,
      notFired: result.out,
      lift: result.lift,
      precision: result.precision,
      recall: result.recall,
      fireRate: population.length === 0 ? 0 : everFired / population.length,
    });
  }

  const thresholds: ThresholdPoint[] = [];
  const range = replay.scoreRange.user;
  if (range !== null && judged.user.length > 0) {
    const low = Math.floor(range.min / grid) * grid;
    const high = Math.ceil(range.max / grid) * grid;
    const step = grid * Math.max(1, Math.ceil((high - low) / grid / 40));
    const minScores: number[] = [];
    for (let minScore = low; minScore <= high; minScore += step) minScores.push(minScore);
    // One walk of each user's running maximum for all the thresholds: both rise.
    const results = splitEach(judged.user, minScores.length, ({ maxScore }, into) => {
      let threshold = 0;
      for (const point of maxScore) while (threshold < minScores.length && point.score >= minScores[threshold]!) into[threshold++] = point.at;
    });
    minScores.forEach((minScore, index) => {
      const result = results[index]!;
      thresholds.push({ minScore, qualified: result.in.entities, precision: result.precision, recall: result.recall });
    });
  }

  const weekly = weeksOf(replay.from, replay.to).map((week) => ({ week, qualified: Object.fromEntries(ruleset.file.tiers.map((tier) => [tier.name, 0])) as Record<string, number> }));
  const weekIndex = new Map(weekly.map((entry, index) => [entry.week, index]));
  for (const entity of replay.entities) {
    for (const transition of entity.transitions) {
      if (transition.to === null || transition.at < periodStart) continue;
      const entry = weekly[weekIndex.get(mondayOf(ruleset.calendar.dayOf(transition.at)))!];
      if (entry) entry.qualified[transition.to] = (entry.qualified[transition.to] ?? 0) + 1;
    }
  }

  const missed = [...judged.user, ...judged.account]
    .filter((entity) => entity.converter && !entity.lead)
    .sort((a, b) => (a.convertedAt! < b.convertedAt! ? -1 : a.convertedAt! > b.convertedAt! ? 1 : a.entity.id.localeCompare(b.entity.id)));
  const missedConverters = missed.slice(0, maxMissed).map((entity) => ({ type: entity.entity.type, id: entity.entity.id, convertedAt: entity.convertedAt! }));

  // Warnings: what a reader must know before trusting a figure.
  if (options.input.linesSkipped > 0) warnings.push(`${options.input.linesSkipped} malformed input lines were skipped (--skip-bad).`);
  if ((options.input.duplicates ?? 0) > 0) warnings.push(`${options.input.duplicates} messages repeated the messageId of an earlier one (same user and day) and were counted once, as ingest stores them.`);
  if (unknown > 0) warnings.push(`${unknown} converted entities never appear in the events by the last step: they are not judged.`);
  if (convertedBefore > 0) warnings.push(`${convertedBefore} entities converted before the period began or before their first event: they are not judged.`);
  const converters = judged.user.filter((entity) => entity.converter).length + judged.account.filter((entity) => entity.converter).length;
  if (converters === 0) warnings.push('No judged entity converted during the period (plus the horizon): precision, recall and lift cannot be measured.');
  const lastConversion = options.conversions.reduce<string | null>((last, conversion) => (last === null || conversion.convertedAt > last ? conversion.convertedAt : last), null);
  if (lastConversion !== null && lastConversion < `${replay.to}T00:00:00.000Z`) {
    warnings.push(`The last conversion is on ${lastConversion.slice(0, 10)}, before the period ends (${replay.to}): if the conversions stop there, later qualifications look worse than they are.`);
  }
  for (const tier of tiers) warnings.push(...tierWarnings(tier));
  warnings.push(...signalWarnings(signals));

  return {
    generatedAt: (options.generatedAt ?? new Date()).toISOString(),
    rules: { source: options.rulesSource, version: ruleset.version },
    period: { from: replay.from, to: replay.to, stepDays: replay.stepDays, horizonDays },
    input: {
      eventsRead: options.input.eventsRead,
      linesSkipped: options.input.linesSkipped,
      entities: seen,
      mergedIdentifiers: options.input.mergedIdentifiers,
      anonymousLeftOut: options.input.anonymousLeftOut,
      lateEvents: options.input.lateEvents ?? 0,
      asReceived: options.input.asReceived ?? false,
      conversions: options.conversions.length, conversionsFrom: options.conversionsFrom },
    tiers,
    signals,
    thresholds,
    weekly,
    missedConverters,
    missedConverterCount: missed.length,
    warnings,
  };
}

/**
 * A user and the identifiers merged into it (an aliased userId, a claimed visitor judged as a lead), as the one person
 * the report judges: first seen when the first of them was, its tier changes and signals' first firings those of any
 * of them, its score the highest any reached. The evaluator published each identifier's tier changes of before its
 * merge under its own id, so a person spotted under an earlier one, which then converted, is a lead that converted,
 * not an entity converted before its first event.
 */
function asOnePerson(user: EntityHistoryResult, merged: readonly EntityHistoryResult[]): EntityHistoryResult {
  const identifiers = [user, ...merged];
  const byTime = <T extends { at: string }>(a: T, b: T) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0);
  const firstFired: Record<string, string> = {};
  for (const identifier of identifiers) {
    for (const [signal, at] of Object.entries(identifier.firstFired)) if (!Object.hasOwn(firstFired, signal) || at < firstFired[signal]!) firstFired[signal] = at;
  }
  const maxScore: EntityHistoryResult['maxScore'] = [];
  for (const point of identifiers.flatMap((identifier) => identifier.maxScore).sort(byTime)) {
    if (maxScore.length === 0 || point.score > maxScore.at(-1)!.score) maxScore.push(point);
  }
  return {
    ...user,
    firstSeen: identifiers.reduce((first, identifier) => (identifier.firstSeen < first ? identifier.firstSeen : first), user.firstSeen),
    transitions: identifiers.flatMap((identifier) => identifier.transitions).sort(byTime),
    firstFired,
    maxScore,
  };
}

/**
 * What a reader must know before trusting a tier's figures (the backtest's and rule health's alike): groups too small,
 * no lift, or a lift whose interval includes 1.
 */
export function tierWarnings(tier: Pick<TierReport, 'tier' | 'qualified' | 'notQualified' | 'lift'>): string[] {
  const warnings: string[] = [];
  if (tier.qualified.entities < smallSample) warnings.push(`Tier ${tier.tier}: only ${tier.qualified.entities} qualified entities (under ${smallSample}): too few to trust its rates.`);
  if (tier.notQualified.entities < smallSample) warnings.push(`Tier ${tier.tier}: only ${tier.notQualified.entities} entities in its comparison group (under ${smallSample}): too few to trust its lift.`);
  if (tier.lift === null) warnings.push(`Tier ${tier.tier}: no lift (${noLiftReason('tier', tier.qualified, tier.notQualified)}).`);
  else if (tier.lift.low <= 1 && tier.lift.high >= 1) {
    warnings.push(`Tier ${tier.tier}: its lift's 95% interval (${twoDecimalsBelow100(tier.lift.low)} to ${twoDecimalsBelow100(tier.lift.high)}) includes 1: it does not predict conversion better than chance on this data.`);
  }
  return warnings;
}

/**
 * Why a tier or a signal has no lift: which of its groups is empty (the qualified or those it fired for, or the one it
 * is compared with), or that nobody in either converted.
 */
export function noLiftReason(kind: 'tier' | 'signal', inside: Outcome, outside: Outcome): string {
  if (inside.entities === 0) return kind === 'tier' ? 'nobody qualified' : 'never fired';
  if (outside.entities === 0) return kind === 'tier' ? 'nobody was left to compare with' : 'fired for everyone';
  return 'nobody converted in either group';
}

/** What a reader must know before trusting the signals' figures (the backtest's and rule health's alike). */
export function signalWarnings(signals: readonly Pick<SignalReport, 'signal' | 'level' | 'fired' | 'notFired' | 'lift' | 'fireRate'>[]): string[] {
  const warnings: string[] = [];
  for (const signal of signals) {
    if (signal.fired.entities + signal.notFired.entities === 0) continue;
    if (signal.fireRate === 0) warnings.push(`Signal ${signal.signal} never fired: it tells nothing on this data.`);
    else if (signal.fireRate >= 0.95) warnings.push(`Signal ${signal.signal} fired for ${percentCoarse(signal.fireRate)} of ${signal.level}s: it cannot tell them apart.`);
  }
  const unproven = signals.filter((signal) => signal.lift !== null && signal.lift.low <= 1 && signal.lift.high >= 1);
  if (unproven.length > 0) {
    warnings.push(`Signals whose lift's 95% interval includes 1 (no evidence they predict conversion on this data): ${unproven.map((signal) => signal.signal).join(', ')}.`);
  }
  const fewFired = signals.filter((signal) => signal.fired.entities > 0 && signal.fired.entities < smallSample);
  if (fewFired.length > 0) {
    warnings.push(`Signals that fired for fewer than ${smallSample} entities before they converted (rates not to be trusted): ${fewFired.map((signal) => `${signal.signal} (${signal.fired.entities})`).join(', ')}.`);
  }
  return warnings;
}

/**
 * A group's size, its converters and their rate with its Wilson interval, exact: the figures are rounded once, where
 * they are written for people (format.ts). Rounded here too, a bound of 0.09453 became 0.0945 and then "9.4%".
 */
export function outcome(entities: number, converted: number): Outcome {
  return { entities, converted, rate: proportion(converted, entities) };
}

function weeksOf(from: string, to: string): string[] {
  const weeks: string[] = [];
  for (let week = mondayOf(from); week <= to; week = addDays(week, 7)) weeks.push(week);
  return weeks;
}

/** A group's rate in the summaries' style: `12/40 30% (18-45%)`. */
export const rateText = (o: Outcome) => `${o.converted}/${o.entities} ${withInterval(o.rate, percentCoarse, '(low-high)')}`;
/** A lift and its interval in the summaries' style: `4.00 (2.10-7.60)`; `-` when there is none. */
export const liftText = (estimate: Estimate | null) => (estimate === null ? '-' : withInterval(estimate, twoDecimalsBelow100, '(low-high)'));

/**
 * The events received on a later day than they happened, and how the replay counted them: a share worth knowing
 * before trusting the report's timing, since the live evaluator could only count them once received.
 */
function lateEventsText(input: Pick<BacktestReport['input'], 'lateEvents' | 'asReceived'>): string {
  const events = `${count(input.lateEvents)} product event${input.lateEvents === 1 ? '' : 's'} received on a later day than ${input.lateEvents === 1 ? 'it' : 'they'} happened`;
  return input.asReceived
    ? `Late events: ${events}, counted from when received (--as-received), as the live evaluator could`
    : `Late events: ${events}, counted from their own time; the live evaluator counts them once received (--as-received replays that)`;
}

/** The days of the period's last step when it is shorter than the others (the period is no whole number of steps: see replay). */
export function shortLastStep(period: BacktestReport['period']): number | null {
  const rest = ((Date.parse(period.to) - Date.parse(period.from)) / dayMs) % period.stepDays;
  return rest === 0 ? null : rest;
}

/** The report as a few plain-text tables: what `pql-radar backtest` prints. */
export function formatSummary(report: BacktestReport): string {
  const lines: string[] = [];
  const { period, input } = report;
  lines.push(`Backtest of ${report.rules.source} (version ${report.rules.version})`);
  const shortStep = shortLastStep(period);
  lines.push(
    `Period ${period.from} to ${period.to}, a step every ${period.stepDays} day${period.stepDays === 1 ? '' : 's'}` +
      `${shortStep === null ? '' : ` (the last, on ${period.to}, after ${shortStep} day${shortStep === 1 ? '' : 's'})`}, conversions counted within ${period.horizonDays} days of qualifying`,
  );
  lines.push(
    `Input: ${count(input.eventsRead)} events${input.linesSkipped > 0 ? ` (${input.linesSkipped} bad lines skipped)` : ''}, ` +
      `${count(input.entities.user)} users, ${count(input.entities.account)} accounts, ${count(input.conversions)} conversions from ${input.conversionsFrom}`,
    `Identities: ${count(input.mergedIdentifiers)} identifiers merged into their users; ${count(input.anonymousLeftOut)} anonymous visitors nobody claimed left out`,
  );
  if (input.lateEvents > 0) lines.push(lateEventsText(input));
  // The first two columns name a row (tier or signal, its level); the others are figures, flush right.
  const table = (header: string[], rows: string[][]) => textTable(header, rows, (column) => column >= 2);
  lines.push('', 'Tiers: qualified = entered the tier before converting; converted = within the horizon after qualifying; non-leads = entered no tier before converting');
  lines.push(
    table(
      ['tier', 'level', 'qualified: converted', 'non-leads: converted', 'lift (95% CI)', 'precision', 'recall', 'F1', 'alerts/wk', 'median days'],
      report.tiers.map((tier) => [
        tier.tier,
        tier.level,
        rateText(tier.qualified),
        rateText(tier.notQualified),
        liftText(tier.lift),
        percentCoarse(tier.precision),
        percentCoarse(tier.recall),
        tier.f1.toFixed(2),
        tier.alertsPerWeek.toFixed(1),
        tier.medianDaysToConversion === null ? '-' : tier.medianDaysToConversion.toFixed(1),
      ]),
    ),
  );
  lines.push('', 'Signals: fired = matched at a step before converting');
  lines.push(
    table(
      ['signal', 'level', 'fire rate', 'fired: converted', 'not fired: converted', 'lift (95% CI)', 'precision', 'recall'],
      report.signals.map((signal) => [signal.signal, signal.level, percentCoarse(signal.fireRate), rateText(signal.fired), rateText(signal.notFired), liftText(signal.lift), percentCoarse(signal.precision), percentCoarse(signal.recall)]),
    ),
  );
  if (report.thresholds.length > 0) {
    lines.push('', 'Score thresholds (users): qualified = score reached the threshold before converting');
    lines.push(table(['min score', 'qualified', 'precision', 'recall'], report.thresholds.map((point) => [String(point.minScore), String(point.qualified), percentCoarse(point.precision), percentCoarse(point.recall)])));
  }
  if (report.missedConverters.length > 0) {
    const missed = report.missedConverters;
    const count = report.missedConverterCount;
    // The summary names 10 of them.
    lines.push('', `Converters never qualified before converting (${count > 10 ? `10 of ${count}` : count}): ${missed.slice(0, 10).map((entity) => `${entity.type} ${entity.id}`).join(', ')}${count > 10 ? ', ...' : ''}`);
  }
  if (report.warnings.length > 0) {
    lines.push('', 'Warnings:');
    for (const warning of report.warnings) lines.push(`  - ${warning}`);
  }
  return `${lines.join('\n')}\n`;
}
