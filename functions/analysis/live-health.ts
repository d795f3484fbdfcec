import { dayMs } from '../core/days';
import { feedbackOfReasonLine, type FeedbackOutcome } from '../core/lead-feedback';
import type { LeadState } from '../core/lead-state';
import type { EntityRef } from '../core/ports';
import { liftText, outcome, rateText, round, roundEstimate, tierWarnings } from './metrics';
import type { Outcome } from './report';
import { lift, median, type Estimate } from './stats';
import { count, textTable } from './format';

/**
 * Rule health after go-live: how the leads the deployed rules qualified in a recent period converted, against the
 * entities they left alone, from the lead states alone (no events are read). Pure. The definitions follow the
 * backtest's (metrics.ts), with what a live state can tell:
 *
 * - Judged entities: those evaluated in the period (the state's last evaluation is in it), except those that
 *   converted before the period began: nothing the rules said then could have come before their conversion.
 * - Qualified in a tier: the entity ENTERED exactly that tier in the period (a history transition into it, or the
 *   state's last qualification), before it converted; its qualification time is its first such entry. Converted:
 *   its conversion is at or after that time (no horizon: the period runs up to now).
 * - Non-leads: judged entities of the tier's level that never entered a tier before converting (one that qualified
 *   before the period only is in neither group). Converted: converted in the period. One comparison group per
 *   level, shared by the tiers of that level.
 * - Lift = qualified rate / non-lead rate with the log-method 95% interval; rates with Wilson intervals (stats.ts).
 * - Alerts per week: every entry into the tier in the period / the period's weeks.
 * - Feedback: sales feedback given in the period, counted under the tier the lead was in (else its last qualification's).
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
}

export interface FeedbackCount {
  outcome: FeedbackOutcome;
  /** The reason code; null: none given. */
  reason: string | null;
  count: number;
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
}

export interface HealthReport {
  generatedAt: string;
  period: { from: string; to: string; days: number };
  /** Judged entities by level. */
  entities: Record<'user' | 'account', number>;
  tiers: TierHealth[];
  warnings: string[];
}

/** Users and anonymous visitors are both user-level: a tier qualifies either the one level or the other, or both. */
type Level = 'user' | 'account' | 'both';
const levelOf = (ref: EntityRef): 'user' | 'account' => (ref.type === 'account' ? 'account' : 'user');

interface Judged {
  level: 'user' | 'account';
  lead: LeadState;
  convertedAt: string | null;
  /** Each tier's entries the state knows of, oldest first. */
  entries: Map<string, string[]>;
}

export function buildHealthReport(options: HealthOptions): HealthReport {
  const { now, periodDays } = options;
  const periodStart = new Date(now.getTime() - periodDays * dayMs).toISOString();
  const to = now.toISOString();

  const judged: Judged[] = [];
  for (const { ref, lead } of options.leads) {
    const convertedAt = lead.conversion?.at ?? null;
    if (lead.evaluatedAt < periodStart || (convertedAt !== null && convertedAt < periodStart)) continue;
    judged.push({ level: levelOf(ref), lead, convertedAt, entries: entriesOf(lead) });
  }

  // Qualification counts only before converting: a customer the rules keep in a tier was not found by them.
  const beforeConverting = (entity: Judged, at: string) => entity.convertedAt === null || at <= entity.convertedAt;
  const inPeriod = (entity: Judged, tier: string) => (entity.entries.get(tier) ?? []).filter((at) => at >= periodStart);
  const qualifiedAt = (entity: Judged, tier: string) => inPeriod(entity, tier).find((at) => beforeConverting(entity, at));
  const neverQualified = (entity: Judged) => ![...entity.entries.values()].flat().some((at) => beforeConverting(entity, at));
  const tierNames = [...new Set(judged.flatMap((entity) => [...entity.entries.keys()].filter((tier) => inPeriod(entity, tier).length > 0)))].sort();
  const weeks = periodDays / 7;

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
      lift: roundEstimate(lift(converted.length, qualified.length, nonLeadsConverted, nonLeads.length)),
      alertsPerWeek: round(alerts / weeks, 2),
      medianDaysToConversion: roundedMedian(converted.map(({ entity, at }) => (Date.parse(entity.convertedAt!) - Date.parse(at)) / dayMs)),
      feedback: feedbackCounts(judged.map((entity) => entity.lead), tier, periodStart),
    };
  });

  const warnings = tiers.flatMap(tierWarnings);
  if (judged.length === 0) warnings.unshift(`No entity was evaluated in the last ${periodDays} days.`);
  return {
    generatedAt: to,
    period: { from: periodStart, to, days: periodDays },
    entities: { user: judged.filter((entity) => entity.level === 'user').length, account: judged.filter((entity) => entity.level === 'account').length },
    tiers,
    warnings,
  };
}

/** Each tier's entries: transitions into it, and the last qualification (kept even when the history's 20 forgot it). */
function entriesOf(lead: LeadState): Map<string, string[]> {
  const entries = new Map<string, Set<string>>();
  const add = (tier: string, at: string) => entries.set(tier, (entries.get(tier) ?? new Set()).add(at));
  for (const entry of lead.history) if (entry.tier !== null && entry.tier !== entry.previousTier) add(entry.tier, entry.at);
  if (lead.qualification) add(lead.qualification.tier, lead.qualification.at);
  return new Map([...entries].map(([tier, times]) => [tier, [...times].sort()]));
}

/** Feedback given in the period on leads of this tier, most frequent first. */
function feedbackCounts(leads: readonly LeadState[], tier: string, from: string): FeedbackCount[] {
  const counts = new Map<string, FeedbackCount>();
  for (const lead of leads) {
    for (const entry of lead.history) {
      if (entry.at < from || (entry.previousTier ?? lead.qualification?.tier) !== tier) continue;
      for (const line of entry.reasons) {
        const feedback = feedbackOfReasonLine(line);
        if (!feedback) continue;
        const key = `${feedback.outcome}\n${feedback.reason}`;
        const counted = counts.get(key) ?? { ...feedback, count: 0 };
        counted.count++;
        counts.set(key, counted);
      }
    }
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || a.outcome.localeCompare(b.outcome) || String(a.reason).localeCompare(String(b.reason)));
}

const roundedMedian = (values: readonly number[]) => {
  const middle = median(values);
  return middle === null ? null : round(middle, 1);
};

/** The report as a plain-text table and its warnings: what `pql-radar health` prints. */
export function formatHealth(report: HealthReport): string {
  const lines = [
    `Rule health: the last ${report.period.days} days (${report.period.from.slice(0, 10)} to ${report.period.to.slice(0, 10)}), ${count(report.entities.user)} users and ${count(report.entities.account)} accounts evaluated`,
    'qualified = entered the tier in the period before converting; non-leads = entered no tier; converted = by now',
    '',
  ];
  if (report.tiers.length === 0) lines.push('No entity entered a tier in the period.');
  else {
    lines.push(
      textTable(
        ['tier', 'level', 'qualified: converted', 'non-leads: converted', 'lift (95% CI)', 'alerts/wk', 'median days', 'feedback'],
        report.tiers.map((tier) => [
          tier.tier,
          tier.level,
          rateText(tier.qualified),
          rateText(tier.notQualified),
          liftText(tier.lift),
          tier.alertsPerWeek.toFixed(1),
          tier.medianDaysToConversion === null ? '-' : tier.medianDaysToConversion.toFixed(1),
          tier.feedback.map((given) => `${given.outcome} ${given.reason ?? 'no reason'} ${given.count}`).join(', ') || '-',
        ]),
        (column) => column >= 2 && column <= 6,
      ),
    );
  }
  if (report.warnings.length > 0) lines.push('', 'Warnings:', ...report.warnings.map((warning) => `  - ${warning}`));
  return `${lines.join('\n')}\n`;
}
