import type { BacktestReport, Outcome, SignalReport, ThresholdPoint, TierReport } from '../../functions/analysis/report';
import { f1, lift, proportion } from '../../functions/analysis/stats';

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

function outcome(converted: number, entities: number): Outcome {
  return { entities, converted, rate: proportion(converted, entities) };
}

function tier(
  name: string,
  route: string,
  level: TierReport['level'],
  judged: number,
  converters: number,
  qualified: number,
  converted: number,
  medianDaysToConversion: number | null,
): TierReport {
  const inside = outcome(converted, qualified);
  const rest = outcome(converters - converted, judged - qualified);
  const precision = inside.rate.value;
  const recall = converted / converters;
  return {
    tier: name,
    route,
    level,
    qualified: inside,
    notQualified: rest,
    alertsPerWeek: qualified / periodWeeks,
    lift: lift(inside.converted, inside.entities, rest.converted, rest.entities),
    precision,
    recall,
    f1: f1(precision, recall),
    medianDaysToConversion,
  };
}

function signal(name: string, level: SignalReport['level'], fired: number, converted: number): SignalReport {
  const [judged, converters] = level === 'user' ? [users, userConverters] : [accounts, accountConverters];
  const yes = outcome(converted, fired);
  const no = outcome(converters - converted, judged - fired);
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

const tiers: TierReport[] = [
  tier('PQL-A', 'sales', 'user', users, userConverters, 142, 41, 6.25),
  tier('PQL-B', 'nurture', 'user', users, userConverters, 611, 88, 13.5),
  tier('Expansion', 'csm', 'account', accounts, accountConverters, 23, 3, 27),
];

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
  warnings,
};
