import type { Estimate } from './stats';

/**
 * What a backtest finds: the contract between the backtest (which computes it), `--json` (which prints it) and the
 * HTML report (which renders it). Rates are fractions (0.12 = 12%); days are whole or fractional days. Every figure
 * is exact, as computed: the summary and the HTML round it once, where they write it (format.ts).
 */
export interface BacktestReport {
  generatedAt: string;
  rules: { source: string; version: string };
  /** The replayed period and its step; qualification is judged at every step using only earlier events. */
  period: { from: string; to: string; stepDays: number; horizonDays: number };
  /** conversionsFrom: where the conversions came from, e.g. the event stream by the rules file's definition, or a file. */
  input: {
    eventsRead: number;
    linesSkipped: number;
    /** Judged by level: anonymous visitors judged as leads count with the users. */
    entities: { user: number; account: number };
    /** Identifiers (anonymous visitors, aliased userIds) whose history joined a user's: counted in that user, once. */
    mergedIdentifiers: number;
    /** Anonymous visitors nobody claimed, not judged (unless the run included them). */
    anonymousLeftOut: number;
    /** Product events received on a later day than they happened (receivedAt, else sentAt). */
    lateEvents: number;
    /** Whether late events counted from when they were received (`--as-received`), else from their own time. */
    asReceived: boolean;
    conversions: number;
    conversionsFrom: string;
  };
  tiers: TierReport[];
  signals: SignalReport[];
  /** Precision and recall if the minimum score were each of these values (users, any tier's requirements ignored). */
  thresholds: ThresholdPoint[];
  /** Entities entering a tier per ISO week (Monday), by tier. */
  weekly: { week: string; qualified: Record<string, number> }[];
  /** Converters the rules never qualified before they converted (the first 50, earliest conversion first). */
  missedConverters: { type: 'user' | 'visitor' | 'account'; id: string; convertedAt: string }[];
  /** How many converters the rules never qualified before they converted: all of them, listed or not. */
  missedConverterCount: number;
  warnings: string[];
}

export interface Outcome {
  /** Entities judged (qualified at some step, or the comparison group). */
  entities: number;
  converted: number;
  rate: Estimate;
}

export interface TierReport {
  tier: string;
  /** The tier's route, or how it is chosen from a trait (`by region (emea: sales-emea; else sales)`). */
  route: string;
  level: 'user' | 'account' | 'both';
  qualified: Outcome;
  /** The non-leads: entities of the tier's level no tier qualified before they converted (rule health's comparison group). */
  notQualified: Outcome;
  /** Qualified entities per week over the period. */
  alertsPerWeek: number;
  /** Conversion rate of the qualified over that of the non-leads; null when either group is empty or neither converted. */
  lift: Estimate | null;
  /** Of those it qualified, how many converted within the horizon (= qualified.rate.value). */
  precision: number;
  /** Of all who converted, how many it qualified before they did. */
  recall: number;
  f1: number;
  /** Median days from qualification to conversion, over the qualified who converted within the horizon. */
  medianDaysToConversion: number | null;
}

export interface SignalReport {
  signal: string;
  level: 'user' | 'account';
  fired: Outcome;
  notFired: Outcome;
  lift: Estimate | null;
  precision: number;
  recall: number;
  /** Share of the judged entities for which the signal fired at some step. */
  fireRate: number;
}

export interface ThresholdPoint {
  minScore: number;
  qualified: number;
  precision: number;
  recall: number;
}
