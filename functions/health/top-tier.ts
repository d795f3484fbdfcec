import type { HealthReport } from '../analysis/live-health';
import type { Estimate } from '../analysis/stats';

/** What the rule-health job reports of one workspace: its top tier's lift, with the lift's 95% interval. */
export interface TopTierLift {
  tier: string;
  lift: Estimate;
  /** The lift the recorded backtest of the same rules version found for the tier; null: none recorded. */
  promised: Estimate | null;
}

/**
 * The top tier of a report: the first tier in the rules' order (`tierOrder`, the rules file's tiers) that qualified
 * leads in the period. Tiers the rules no longer name (renamed or removed since) come after, in the report's order.
 * Undefined when no tier qualified a lead, or when the top tier has no lift (no non-leads, or nobody converted):
 * then there is nothing to report, and the alarm sees no data rather than a made-up value. Pure.
 */
export function topTierLift(report: HealthReport, tierOrder: readonly string[]): TopTierLift | undefined {
  const rank = (tier: string) => {
    const index = tierOrder.indexOf(tier);
    return index === -1 ? tierOrder.length : index;
  };
  const top = report.tiers
    .filter((tier) => tier.qualified.entities > 0)
    .map((tier, index) => ({ tier, index }))
    .sort((a, b) => rank(a.tier.tier) - rank(b.tier.tier) || a.index - b.index)[0]?.tier;
  return top?.lift ? { tier: top.tier, lift: top.lift, promised: top.promised?.lift ?? null } : undefined;
}
