import { outcome } from '../../functions/analysis/metrics';
import type { BacktestReport, SignalReport, ThresholdPoint, TierReport } from '../../functions/analysis/report';
import { f1, lift } from '../../functions/analysis/stats';

/**
 * A realistic BacktestReport, as the backtest would write it for examples/activation.rules.yaml over eight weeks:
 * built from raw counts with the report's own statistics, so every rate, interval and lift is consistent and the
 * numbers are the unround floats a real run produces. For the HTML report's tests, independent of the backtest.
 *
 * It has what the page must cope with: a tier whose lift interval includes 1 and whose sample is small, a signal
 * that lowers the odds, one that fires for nearly everyone (a zero cell), one that never fired (lift null), skipped
 * lines, and a missed converter whose id is a `<script>`.
 */

const weeks = ['2025-01-06', '2025-01-13', '2025-01-20', '2025-01-27', '2025-02-03', '2025-02-10', '2025-02-17', '2025-02-24'];
const periodWeeks = weeks.length;

const users = 4_812;
const accounts = 1_133;
const userConverters = 287;
const accountConverters = 64;
const judgedOf = (level: 'user' | 'account') => (level === 'user' ? { judged: users, converters: userConverters } : { judged: accounts, converters: accountConverters });

interface TierCounts {
  name: string;
  route: string;
  level: 'user' | 'account';
  qualified: number;
  converted: number;
  medianDaysToConversion: number | null;
}

const tierCounts: TierCounts[] = [
  { name: 'PQL-A', route: 'sales', level: 'user', qualified: 142, converted: 41, medianDaysToConversion: 6.25 },
  { name: 'PQL-B', route: 'nurture', level: 'user', qualified: 611, converted: 88, medianDaysToConversion: 13.5 },
  { name: 'Expansion', route: 'csm', level: 'account', qualified: 23, converted: 3, medianDaysToConversion: 27 },
];

/**
 * A tier's comparison group, as the backtest's: the non-leads, its level's entities that no tier qualified (here no
 * entity entered two tiers), so the user tiers share one group, without each other's leads.
 */
function nonLeads(level: 'user' | 'account') {
  const leads = tierCounts.filter((counts) => counts.level === level);
  const { judged, converters } = judgedOf(level);
  const sum = (field: 'qualified' | 'converted') => leads.reduce((total, counts) => total + counts[field], 0);
  return outcome(judged - sum('qualified'), converters - sum('converted'));
}

function tier({ name, route, level, qualified, converted, medianDaysToConversion }: TierCounts): TierReport {
  const inside = outcome(qualified, converted);
  const baseline = nonLeads(level);
  const precision = inside.rate.value;
  const recall = converted / judgedOf(level).converters;
  return {
    tier: name,
    route,
    level,
    qualified: inside,
    notQualified: baseline,
    alertsPerWeek: qualified / periodWeeks,
    lift: lift(inside.converted, inside.entities, baseline.converted, baseline.entities),
    precision,
    recall,
    f1: f1(precision, recall),
    medianDaysToConversion,
  };
}

function signal(name: string, level: SignalReport['level'], fired: number, converted: number): SignalReport {
  const { judged, converters } = judgedOf(level);
  const yes = outcome(fired, converted);
  const no = outcome(judged - fired, converters - converted);
  return {
    signal: name,
    level,
    fired: yes,
    notFired: no,
    lift: lift(yes.converted, yes.entities, no.converted, no.entities),
    precision: yes.rate.value,
    recall: converted / converters,
    fireRate: fired / judged,
  };
}

const tiers: TierReport[] = tierCounts.map(tier);

const signals: SignalReport[] = [
  signal('activated', 'user', 402, 71),
  signal('key_feature', 'user', 780, 104),
  signal('hit_plan_limit', 'user', 211, 52),
  signal('invited_recently', 'user', 1_320, 119),
  signal('exported_data', 'user', 96, 9),
  signal('stale_signup', 'user', 1_904, 17),
  signal('target_industry', 'account', 1_109, 64),
  signal('company_size', 'account', 0, 0),
];

const thresholdCounts: [minScore: number, qualified: number, converted: number][] = [
  [0, 4_812, 287],
  [10, 3_377, 270],
  [20, 2_410, 241],
  [30, 1_502, 196],
  [40, 930, 150],
  [50, 611, 118],
  [60, 380, 86],
  [70, 212, 58],
  [80, 142, 45],
  [90, 60, 21],
  [100, 14, 5],
];
const thresholds: ThresholdPoint[] = thresholdCounts.map(([minScore, qualified, converted]) => ({
  minScore,
  qualified,
  precision: converted / qualified,
  recall: converted / userConverters,
}));

const perWeek: Record<string, number[]> = {
  'PQL-A': [12, 15, 19, 16, 20, 18, 22, 20],
  'PQL-B': [61, 70, 74, 79, 82, 80, 85, 80],
  Expansion: [1, 2, 3, 2, 4, 3, 5, 3],
};
const weekly = weeks.map((week, i) => ({
  week,
  qualified: Object.fromEntries(Object.entries(perWeek).map(([name, counts]) => [name, counts[i]!])),
}));

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const warnings: string[] = [];
for (const t of tiers) {
  if (t.qualified.entities < 30) {
    warnings.push(`Tier ${t.tier}: only ${t.qualified.entities} qualified entities (under 30): its rates are unreliable.`);
  }
  if (t.lift && t.lift.low <= 1 && t.lift.high >= 1) {
    warnings.push(
      `Tier ${t.tier}: the 95% interval of its lift (${t.lift.low.toFixed(2)}–${t.lift.high.toFixed(2)}) includes 1: ` +
        'no evidence that it predicts conversion.',
    );
  }
}
for (const s of signals) {
  if (s.fired.entities === 0) warnings.push(`Signal ${s.signal} never fired: is the trait or event it needs sent at all?`);
  else if (s.fireRate > 0.95) warnings.push(`Signal ${s.signal} fires for ${pct(s.fireRate)} of ${s.level}s: it cannot tell leads apart.`);
  else if (s.fired.entities < 30) warnings.push(`Signal ${s.signal}: only ${s.fired.entities} entities fired it (under 30).`);
}
warnings.push('12 malformed input lines were skipped (--skip-bad).');

export const xssId = '<script>alert(1)</script>';

export const sampleReport: BacktestReport = {
  generatedAt: '2025-03-04T08:15:42.117Z',
  rules: { source: 'examples/activation.rules.yaml', version: '9c1e4b7a2f03' },
  period: { from: '2025-01-06', to: '2025-03-03', stepDays: 1, horizonDays: 30 },
  input: {
    eventsRead: 1_284_377,
    linesSkipped: 12,
    entities: { user: users, account: accounts },
    mergedIdentifiers: 1_904,
    anonymousLeftOut: 6_311,
    lateEvents: 0,
    asReceived: false,
    conversions: userConverters + accountConverters,
    conversionsFrom: 'the event stream: the rules file\'s conversion (event "Order Completed")',
  },
  tiers,
  signals,
  thresholds,
  weekly,
  missedConverters: [
    { type: 'user', id: 'usr_8f3a2c91', convertedAt: '2025-01-14T10:22:05.000Z' },
    { type: 'user', id: 'maria.lopez@northwind.example', convertedAt: '2025-01-19T16:40:11.000Z' },
    { type: 'account', id: 'acct_1042', convertedAt: '2025-01-23T09:03:57.000Z' },
    { type: 'user', id: xssId, convertedAt: '2025-01-30T12:00:00.000Z' },
    { type: 'user', id: 'usr_b71e0d44', convertedAt: '2025-02-02T08:45:30.000Z' },
    { type: 'account', id: 'Acme & Sons "EU"', convertedAt: '2025-02-06T14:17:09.000Z' },
    { type: 'user', id: 'usr_0c5d9e12', convertedAt: '2025-02-11T11:31:48.000Z' },
    { type: 'user', id: 'usr_4a6f2b80', convertedAt: '2025-02-19T17:58:02.000Z' },
    { type: 'account', id: 'acct_2210', convertedAt: '2025-02-25T07:12:44.000Z' },
  ],
  // More than the list: the report lists the first 50 of them, and says so.
  missedConverterCount: 74,
  warnings,
};
