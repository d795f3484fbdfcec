import { dayMs } from '../core/days';
import { feedbackOfReasonLine, type FeedbackOutcome, type LeadFeedback } from '../core/lead-feedback';
import { mergedIntoOf, type LeadState } from '../core/lead-state';
import type { EntityRef } from '../core/ports';
import { liftText, outcome, rateText, signalWarnings, tierWarnings } from './metrics';
import type { BacktestReport, Outcome, SignalReport, TierReport } from './report';
import { lift, median, type Estimate } from './stats';
import { count, percentCoarse, periodText, textTable } from './format';

/**
 * Rule health after go-live: how the leads the deployed rules qualified in a recent period converted, against the
 * entities they left alone, from the lead states alone (no events are read). Pure. The definitions follow the
 * backtest's (metrics.ts), with what a live state can tell:
 *
 * - Judged entities: those evaluated in the period (the state's last evaluation is in it), except those that
 *   converted before the period began: nothing the rules said then could have come before their conversion. A user
 *   and the identifiers merged into it (mergedIntoOf) are one entity, a person, as in the backtest's report.
 * - Qualified in a tier: the entity ENTERED exactly that tier in the period (a history transition into it, or the
 *   state's last qualification), before it converted; its qualification time is its first such entry. Converted:
 *   its conversion is at or after that time (no horizon: the period runs up to now).
 * - Non-leads: judged entities of the tier's level that never entered a tier before converting (one that qualified
 *   before the period only is in neither group). Converted: converted in the period. One comparison group per
 *   level, shared by the tiers of that level.
 * - Lift = qualified rate / non-lead rate with the log-method 95% interval; rates with Wilson intervals (stats.ts).
 * - Alerts per week: every entry into the tier in the period / the weeks of the period the states cover (from its
 *   earliest transition, when the rules went live after the period began), at least one: under a week, the entries so
 *   far, with a warning.
 * - Feedback: the leads given sales feedback in the period, under the tier they were in (else their last qualification's),
 *   each once, by the latest outcome and reason given: sales asked twice about one lead is still one lead.
 * - Signals: a judged entity's signal fired when it matched at the conversion's evaluation (a converter), or at its last
 *   evaluation or its qualification in the period (the others); converters whose state predates the signals kept at
 *   conversion are left out of the signals' figures. Lift = fired rate / not-fired rate, as the backtest's.
 * - Promised vs delivered: the backtest recorded for the rules version of the period's latest evaluation (`pql-radar
 *   backtest --record`), tier by tier and signal by signal. Its rates count conversions within its horizon; live
 *   ones count them up to now.
 *
 * A state keeps its last 20 transitions: an entity with more in the period has its earliest ones forgotten.
 */

export interface EvaluatedLead {
  ref: EntityRef;
  lead: LeadState;
}

export interface HealthOptions {
  leads: readonly EvaluatedLead[];
  now: Date;
  periodDays: number;
  /** The backtest recorded for `rulesVersionOf(leads, ...)`, if any: its figures go beside the live ones. */
  backtest?: RecordedBacktest | undefined;
}

/** What `pql-radar backtest --record` keeps of a report: enough to put the promise beside what was delivered. */
export interface RecordedBacktest {
  rules: BacktestReport['rules'];
  period: BacktestReport['period'];
  generatedAt: string;
  conversionsFrom: string;
  tiers: Pick<TierReport, 'tier' | 'qualified' | 'notQualified' | 'lift' | 'alertsPerWeek' | 'medianDaysToConversion'>[];
  signals: Pick<SignalReport, 'signal' | 'level' | 'fired' | 'notFired' | 'lift' | 'fireRate'>[];
}

export function recordOf(report: BacktestReport): RecordedBacktest {
  return {
    rules: report.rules,
    period: report.period,
    generatedAt: report.generatedAt,
    conversionsFrom: report.input.conversionsFrom,
    tiers: report.tiers.map(({ tier, qualified, notQualified, lift, alertsPerWeek, medianDaysToConversion }) => ({ tier, qualified, notQualified, lift, alertsPerWeek, medianDaysToConversion })),
    signals: report.signals.map(({ signal, level, fired, notFired, lift, fireRate }) => ({ signal, level, fired, notFired, lift, fireRate })),
  };
}

export interface FeedbackCount {
  outcome: FeedbackOutcome;
  /** The reason code; null: none given. */
  reason: string | null;
  /** Leads whose latest feedback in the period was this outcome and reason. */
  leads: number;
}

export interface TierHealth {
  tier: string;
  /** Entity types whose entries into the tier were seen: the comparison group is of the same level. */
  level: Level;
  qualified: Outcome;
  notQualified: Outcome;
  lift: Estimate | null;
  alertsPerWeek: number;
  /** Median days from qualification to conversion, over the qualified who converted. */
  medianDaysToConversion: number | null;
  feedback: FeedbackCount[];
  /** The recorded backtest's figures for this tier; null without one (or when it had no such tier). */
  promised: RecordedBacktest['tiers'][number] | null;
}

export interface SignalHealth {
  signal: string;
  level: 'user' | 'account';
  fired: Outcome;
  notFired: Outcome;
  lift: Estimate | null;
  /** Share of the level's judged entities it fired for. */
  fireRate: number;
  /** The recorded backtest's figures for this signal; null without one. */
  promised: RecordedBacktest['signals'][number] | null;
}

export interface HealthReport {
  generatedAt: string;
  period: { from: string; to: string; days: number };
  /** The rules version of the period's latest evaluation; null when nothing was evaluated in it. */
  rulesVersion: string | null;
  /** The backtest the figures are put beside: one recorded for `rulesVersion`, else null. */
  promised: Pick<RecordedBacktest, 'rules' | 'period' | 'generatedAt' | 'conversionsFrom'> | null;
  /** Judged entities by level. */
  entities: Record<'user' | 'account', number>;
  tiers: TierHealth[];
  signals: SignalHealth[];
  warnings: string[];
}

/** Users and anonymous visitors are both user-level: a tier qualifies either the one level or the other, or both. */
type Level = 'user' | 'account' | 'both';
const levelOf = (ref: EntityRef): 'user' | 'account' => (ref.type === 'account' ? 'account' : 'user');

interface Judged {
  level: 'user' | 'account';
  /** The entity's lead state, then those of the identifiers merged into it (mergedIntoOf): one person. */
  states: LeadState[];
  /** The earliest of the states' conversions. */
  convertedAt: string | null;
  /** Each tier's entries the states know of, oldest first. */
  entries: Map<string, string[]>;
}

const periodStartOf = (now: Date, periodDays: number) => new Date(now.getTime() - periodDays * dayMs).toISOString();

/** The rules version of the latest evaluation in the period: the rules now deployed, whose backtest is the promise. */
export function rulesVersionOf(leads: readonly EvaluatedLead[], now: Date, periodDays: number): string | null {
  const periodStart = periodStartOf(now, periodDays);
  let latest: LeadState | null = null;
  for (const { lead } of leads) if (lead.evaluatedAt >= periodStart && (latest === null || lead.evaluatedAt > latest.evaluatedAt)) latest = lead;
  return latest?.rulesetVersion ?? null;
}

/** Where recorded backtests are read (adapters/dynamodb/backtest-records.ts: one item per rules version). */
export interface RecordedBacktests {
  recordedBacktest(rulesVersion: string): Promise<RecordedBacktest | undefined>;
}

/** The report of these leads, with the backtest recorded for their rules version beside it, when one is. */
export async function healthWithPromise(options: Omit<HealthOptions, 'backtest'>, backtests: RecordedBacktests): Promise<HealthReport> {
  const version = rulesVersionOf(options.leads, options.now, options.periodDays);
  const backtest = version === null ? undefined : await backtests.recordedBacktest(version);
  return buildHealthReport({ ...options, backtest });
}

export function buildHealthReport(options: HealthOptions): HealthReport {
  const { now, periodDays } = options;
  const periodStart = periodStartOf(now, periodDays);
  // States a pass of a later time saved (evaluate --at) say what happened up to then: the period runs to the latest.
  const to = options.leads.reduce((latest, { lead }) => (lead.evaluatedAt > latest ? lead.evaluatedAt : latest), now.toISOString());
  const rulesVersion = rulesVersionOf(options.leads, now, periodDays);
  const backtest = options.backtest !== undefined && options.backtest.rules.version === rulesVersion ? options.backtest : undefined;

  const judged: Judged[] = [];
  for (const { ref, states } of people(options.leads)) {
    const convertedAt = states.reduce<string | null>((first, { conversion }) => (conversion !== undefined && (first === null || conversion.at < first) ? conversion.at : first), null);
    const evaluatedAt = states.reduce((last, { evaluatedAt: at }) => (at > last ? at : last), states[0]!.evaluatedAt);
    if (evaluatedAt < periodStart || (convertedAt !== null && convertedAt < periodStart)) continue;
    judged.push({ level: levelOf(ref), states, convertedAt, entries: entriesOf(states) });
  }
  const states = judged.flatMap((entity) => entity.states);

  // Qualification counts only before converting: a customer the rules keep in a tier was not found by them.
  const beforeConverting = (entity: Judged, at: string) => entity.convertedAt === null || at <= entity.convertedAt;
  const inPeriod = (entity: Judged, tier: string) => (entity.entries.get(tier) ?? []).filter((at) => at >= periodStart);
  const qualifiedAt = (entity: Judged, tier: string) => inPeriod(entity, tier).find((at) => beforeConverting(entity, at));
  const neverQualified = (entity: Judged) => ![...entity.entries.values()].flat().some((at) => beforeConverting(entity, at));
  const tierNames = [...new Set(judged.flatMap((entity) => [...entity.entries.keys()].filter((tier) => inPeriod(entity, tier).length > 0)))].sort();
  // The weeks the states cover: from the period's first entry into a tier, when the rules went live after it began.
  const entryTimes = judged.flatMap((entity) => [...entity.entries.values()].flat().filter((at) => at >= periodStart && at < to));
  const coveredFrom = entryTimes.length > 0 ? entryTimes.reduce((first, at) => (at < first ? at : first)) : periodStart;
  const coveredDays = (Date.parse(to) - Date.parse(coveredFrom)) / dayMs;
  // A rate from hours of states (the rules just went live) would claim thousands of alerts a week: under a week,
  // the entries so far are the week's, and a warning says so.
  const weeks = Math.max(1, coveredDays / 7);

  const tiers = tierNames.map((tier): TierHealth => {
    const qualified = judged.flatMap((entity) => {
      const at = qualifiedAt(entity, tier);
      return at === undefined ? [] : [{ entity, at }];
    });
    const levels = new Set(qualified.map(({ entity }) => entity.level));
    const level: Level = levels.size === 1 ? [...levels][0]! : 'both';
    const converted = qualified.filter(({ entity }) => entity.convertedAt !== null);
    const nonLeads = judged.filter((entity) => (level === 'both' || entity.level === level) && neverQualified(entity));
    const nonLeadsConverted = nonLeads.filter((entity) => entity.convertedAt !== null).length;
    const alerts = judged.reduce((sum, entity) => sum + inPeriod(entity, tier).length, 0);
    return {
      tier,
      level,
      qualified: outcome(qualified.length, converted.length),
      notQualified: outcome(nonLeads.length, nonLeadsConverted),
      lift: lift(converted.length, qualified.length, nonLeadsConverted, nonLeads.length),
      alertsPerWeek: alerts / weeks,
      medianDaysToConversion: median(converted.map(({ entity, at }) => (Date.parse(entity.convertedAt!) - Date.parse(at)) / dayMs)),
      feedback: feedbackCounts(states, tier, periodStart),
      promised: backtest?.tiers.find((promised) => promised.tier === tier) ?? null,
    };
  });
  const signals = signalHealth(judged, periodStart, backtest);

  const warnings = [...tiers.flatMap(tierWarnings), ...signalWarnings(signals)];
  if (judged.length === 0) warnings.unshift(`No entity was evaluated in the last ${periodText(periodDays)}.`);
  if (entryTimes.length > 0 && coveredDays < 7) warnings.push(`The states cover ${coveredDays < 1 ? 'less than a day' : `${Math.floor(coveredDays)} day(s)`} (from the first entry into a tier, as the rules went live): alerts/wk counts the entries so far, not a week's rate yet.`);
  if (to > now.toISOString()) warnings.push(`A pass of a later time than now (evaluate --at) saved some states: the period runs to ${to}, the latest of them.`);
  const versions = new Set(states.map((lead) => lead.rulesetVersion));
  if (versions.size > 1) warnings.push(`The period's entities were last evaluated by ${versions.size} rules versions: its figures mix them; a shorter --since shows the latest alone.`);
  if (rulesVersion !== null && !backtest) warnings.push(`No backtest is recorded for rules version ${rulesVersion}: \`pql-radar backtest --rules FILE --record\` puts its figures beside these.`);
  return {
    generatedAt: to,
    period: { from: periodStart, to, days: periodDays },
    rulesVersion,
    promised: backtest ? { rules: backtest.rules, period: backtest.period, generatedAt: backtest.generatedAt, conversionsFrom: backtest.conversionsFrom } : null,
    entities: { user: judged.filter((entity) => entity.level === 'user').length, account: judged.filter((entity) => entity.level === 'account').length },
    tiers,
    signals,
    warnings,
  };
}

/** Each signal that fired for a judged entity: its converters' rate against the rest of its level's. */
function signalHealth(judged: readonly Judged[], periodStart: string, backtest: RecordedBacktest | undefined): SignalHealth[] {
  // A converter's signals are those seen when it converted; states from before they were kept cannot say.
  const known = judged.filter((entity) => entity.convertedAt === null || entity.states.some((lead) => lead.conversion?.signals !== undefined));
  const firedFor = new Map<Judged, Set<string>>();
  for (const entity of known) {
    const fired = new Set<string>();
    for (const lead of entity.states) {
      const qualifiedInPeriod = lead.qualification && lead.qualification.at >= periodStart && (entity.convertedAt === null || lead.qualification.at <= entity.convertedAt) ? lead.qualification.signals : [];
      for (const name of [...(lead.conversion?.signals ?? lead.matched), ...qualifiedInPeriod]) fired.add(name);
    }
    firedFor.set(entity, fired);
  }
  const names = new Map<string, 'user' | 'account'>();
  for (const [entity, fired] of firedFor) for (const name of fired) if (!names.has(name)) names.set(name, entity.level);
  return [...names]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([signal, level]) => {
      const population = known.filter((entity) => entity.level === level);
      const fired = population.filter((entity) => firedFor.get(entity)!.has(signal));
      const notFired = population.filter((entity) => !firedFor.get(entity)!.has(signal));
      const converted = (group: readonly Judged[]) => group.filter((entity) => entity.convertedAt !== null).length;
      return {
        signal,
        level,
        fired: outcome(fired.length, converted(fired)),
        notFired: outcome(notFired.length, converted(notFired)),
        lift: lift(converted(fired), fired.length, converted(notFired), notFired.length),
        fireRate: population.length === 0 ? 0 : fired.length / population.length,
        promised: backtest?.signals.find((promised) => promised.signal === signal) ?? null,
      };
    });
}

/**
 * The evaluated entities as people: a user's state first, then those of the identifiers merged into it, along a chain
 * of merges (an aliased user aliased again). A merged identifier whose user has no state is judged on its own.
 */
function people(leads: readonly EvaluatedLead[]): { ref: EntityRef; states: LeadState[] }[] {
  const keyOf = (workspace: string, type: string, id: string) => `${workspace}\n${type}\n${id}`;
  const byKey = new Map(leads.map((evaluated) => [keyOf(evaluated.ref.workspace, evaluated.ref.type, evaluated.ref.id), evaluated]));
  const survivorOf = ({ ref, lead }: EvaluatedLead): EvaluatedLead | undefined => {
    let into = mergedIntoOf(lead);
    const passed = new Set<string>();
    let survivor: EvaluatedLead | undefined;
    while (into !== undefined && !passed.has(into)) {
      passed.add(into);
      survivor = byKey.get(keyOf(ref.workspace, 'user', into));
      into = survivor === undefined ? undefined : mergedIntoOf(survivor.lead);
    }
    return survivor !== undefined && mergedIntoOf(survivor.lead) === undefined ? survivor : undefined;
  };
  const statesOf = new Map<EvaluatedLead, LeadState[]>();
  const merged: [EvaluatedLead, LeadState][] = [];
  for (const evaluated of leads) {
    const survivor = mergedIntoOf(evaluated.lead) === undefined ? undefined : survivorOf(evaluated);
    if (survivor === undefined) statesOf.set(evaluated, [evaluated.lead]);
    else merged.push([survivor, evaluated.lead]);
  }
  for (const [survivor, lead] of merged) statesOf.get(survivor)!.push(lead);
  return [...statesOf].map(([{ ref }, states]) => ({ ref, states }));
}

/** Each tier's entries: transitions into it, and the last qualification (kept even when the history's 20 forgot it). */
function entriesOf(states: readonly LeadState[]): Map<string, string[]> {
  const entries = new Map<string, Set<string>>();
  const add = (tier: string, at: string) => entries.set(tier, (entries.get(tier) ?? new Set()).add(at));
  for (const lead of states) {
    for (const entry of lead.history) if (entry.tier !== null && entry.tier !== entry.previousTier) add(entry.tier, entry.at);
    if (lead.qualification) add(lead.qualification.tier, lead.qualification.at);
  }
  return new Map([...entries].map(([tier, times]) => [tier, [...times].sort()]));
}

/** The leads of this tier given feedback in the period, by the latest given on each (history is oldest first), most first. */
function feedbackCounts(leads: readonly LeadState[], tier: string, from: string): FeedbackCount[] {
  const counts = new Map<string, FeedbackCount>();
  for (const lead of leads) {
    let latest: Pick<LeadFeedback, 'outcome' | 'reason'> | undefined;
    for (const entry of lead.history) {
      if (entry.at < from || (entry.previousTier ?? lead.qualification?.tier) !== tier) continue;
      for (const line of entry.reasons) latest = feedbackOfReasonLine(line) ?? latest;
    }
    if (!latest) continue;
    const key = `${latest.outcome}\n${latest.reason}`;
    const counted = counts.get(key) ?? { ...latest, leads: 0 };
    counted.leads++;
    counts.set(key, counted);
  }
  return [...counts.values()].sort((a, b) => b.leads - a.leads || a.outcome.localeCompare(b.outcome) || String(a.reason).localeCompare(String(b.reason)));
}

/** A tier's feedback in a few words, `disqualified not_a_fit 7, done no reason 1` (leads); empty without any. */
export const feedbackText = (feedback: readonly FeedbackCount[]) => feedback.map((given) => `${given.outcome} ${given.reason ?? 'no reason'} ${given.leads}`).join(', ');

/** The report as a plain-text table and its warnings: what `pql-radar health` prints. */
export function formatHealth(report: HealthReport): string {
  const lines = [
    `Rule health: the last ${periodText(report.period.days)} (${report.period.from.slice(0, 10)} to ${report.period.to.slice(0, 10)}), ${count(report.entities.user)} users and ${count(report.entities.account)} accounts evaluated`,
    'qualified = entered the tier in the period before converting; non-leads = entered no tier; converted = by now',
    'leads given feedback = each lead given sales feedback in the period once, by the latest outcome and reason given',
    '',
  ];
  if (report.tiers.length === 0) lines.push('No entity entered a tier in the period.');
  else {
    lines.push(
      textTable(
        ['tier', 'level', 'qualified: converted', 'non-leads: converted', 'lift (95% CI)', 'alerts/wk', 'median days', 'leads given feedback'],
        report.tiers.map((tier) => [
          tier.tier,
          tier.level,
          rateText(tier.qualified),
          rateText(tier.notQualified),
          liftText(tier.lift),
          tier.alertsPerWeek.toFixed(1),
          tier.medianDaysToConversion === null ? '-' : tier.medianDaysToConversion.toFixed(1),
          feedbackText(tier.feedback) || '-',
        ]),
        (column) => column >= 2 && column <= 6,
      ),
    );
  }
  if (report.signals.length > 0) {
    lines.push(
      '',
      'Signals: fired = matched when it converted, else at its last evaluation or qualification in the period',
      textTable(
        ['signal', 'level', 'fired for', 'fired: converted', 'not fired: converted', 'lift (95% CI)'],
        report.signals.map((signal) => [signal.signal, signal.level, percentCoarse(signal.fireRate), rateText(signal.fired), rateText(signal.notFired), liftText(signal.lift)]),
        (column) => column >= 2,
      ),
    );
  }
  if (report.promised) {
    const { period, rules } = report.promised;
    lines.push(
      '',
      `Promised vs delivered: the backtest of rules version ${rules.version} (${period.from} to ${period.to}, conversions within ${period.horizonDays} days) beside the live figures`,
      textTable(
        ['tier / signal', 'backtest: converted', 'live: converted', 'backtest lift', 'live lift', 'alerts/wk backtest', 'alerts/wk live'],
        [
          ...report.tiers.map((tier) => [tier.tier, tier.promised ? rateText(tier.promised.qualified) : '-', rateText(tier.qualified), liftText(tier.promised?.lift ?? null), liftText(tier.lift), tier.promised ? tier.promised.alertsPerWeek.toFixed(1) : '-', tier.alertsPerWeek.toFixed(1)]),
          ...report.signals.map((signal) => [signal.signal, signal.promised ? rateText(signal.promised.fired) : '-', rateText(signal.fired), liftText(signal.promised?.lift ?? null), liftText(signal.lift), '', '']),
        ],
        (column) => column >= 1,
      ),
    );
  }
  if (report.warnings.length > 0) lines.push('', 'Warnings:', ...report.warnings.map((warning) => `  - ${warning}`));
  return `${lines.join('\n')}\n`;
}
