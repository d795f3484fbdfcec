import { describe, expect, it } from 'vitest';
import type { HealthReport, TierHealth } from '../../functions/analysis/live-health';
import { outcome } from '../../functions/analysis/metrics';
import { topTierLift } from '../../functions/health/top-tier';

const tier = (name: string, qualified: number, lift: TierHealth['lift']): TierHealth => ({
  tier: name,
  level: 'user',
  qualified: outcome(qualified, Math.floor(qualified / 2)),
  notQualified: outcome(100, 5),
  lift,
  alertsPerWeek: 1,
  medianDaysToConversion: null,
  feedback: [],
  promised: null,
});

const report = (tiers: TierHealth[]): HealthReport => ({
  generatedAt: '2026-06-30T00:00:00.000Z',
  period: { from: '2026-04-01T00:00:00.000Z', to: '2026-06-30T00:00:00.000Z', days: 90 },
  rulesVersion: 'v1',
  promised: null,
  entities: { user: 100, account: 0 },
  signals: [],
  tiers,
  warnings: [],
});

const liftA = { value: 4, low: 2.5, high: 6 };
const liftB = { value: 2, low: 0.8, high: 3 };

describe('topTierLift', () => {
  it("takes the first tier in the rules' order, not the report's alphabetical one", () => {
    const health = report([tier('A-warm', 10, liftB), tier('Z-hot', 10, liftA)]);
    expect(topTierLift(health, ['Z-hot', 'A-warm'])).toEqual({ tier: 'Z-hot', lift: liftA, promised: null });
    expect(topTierLift(health, ['A-warm', 'Z-hot'])).toEqual({ tier: 'A-warm', lift: liftB, promised: null });
  });

  it('skips a tier that qualified no lead in the period', () => {
    expect(topTierLift(report([tier('PQL-A', 0, null), tier('PQL-B', 8, liftB)]), ['PQL-A', 'PQL-B'])).toEqual({ tier: 'PQL-B', lift: liftB, promised: null });
  });

  it("carries the lift the recorded backtest promised for the same tier", () => {
    const promised = { tier: 'PQL-B', qualified: outcome(40, 12), notQualified: outcome(400, 20), lift: { value: 6, low: 3.1, high: 11.6 }, alertsPerWeek: 2, medianDaysToConversion: 9 };
    const health = report([{ ...tier('PQL-B', 8, liftB), promised }]);
    expect(topTierLift(health, ['PQL-A', 'PQL-B'])).toEqual({ tier: 'PQL-B', lift: liftB, promised: promised.lift });
  });

  it('puts tiers the rules no longer name after those they do', () => {
    expect(topTierLift(report([tier('Old', 5, liftA), tier('PQL-B', 8, liftB)]), ['PQL-A', 'PQL-B'])?.tier).toBe('PQL-B');
    expect(topTierLift(report([tier('Old', 5, liftA)]), ['PQL-A'])?.tier).toBe('Old');
  });

  it('reports nothing without qualified leads, or when the top tier has no lift (no non-leads)', () => {
    expect(topTierLift(report([]), ['PQL-A'])).toBeUndefined();
    expect(topTierLift(report([tier('PQL-A', 3, null), tier('PQL-B', 8, liftB)]), ['PQL-A', 'PQL-B'])).toBeUndefined();
  });
});
