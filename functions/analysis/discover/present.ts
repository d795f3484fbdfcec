import type { ConversionRule } from '../../core/rules/schema';
import { count, percent, textTable, threeFigures, withInterval } from '../format';
import type { Estimate } from '../stats';
import type { CandidateStatus, DiscoveryResult, Measured } from './select';

/**
 * Signal discovery, last step (after collect.ts and select.ts): the ranked table `pql-radar discover` prints, and
 * the suggested rules file, every number in it commented with where it came from.
 */

const liftText = (estimate: Estimate | null) => (estimate ? withInterval(estimate, threeFigures, '[low, high]') : 'n/a');
const share = (estimate: Estimate) => withInterval(estimate, percent, '[low, high]');

const statusText: Record<CandidateStatus, string> = {
  selected: 'SELECTED',
  few_fired: 'too few',
  train_lift: 'lift ~1',
  holdout_lift: 'not confirmed',
  same_event_window: 'other threshold',
  redundant: 'redundant',
  explained: 'explained',
  limit: 'over limit',
};

/** The ranked table: the selected signals, then the best of the rest (up to `limit` rows in all). */
export function formatDiscoveryTable(result: DiscoveryResult, limit = 30): string {
  const rows = [...result.selected, ...result.candidates.filter((candidate) => candidate.status !== 'selected')].slice(0, Math.max(limit, result.selected.length));
  const rankOf = new Map(result.candidates.map((candidate, index) => [candidate, index + 1]));
  const header = ['rank', 'signal', 'fired', 'rate', 'lift train [95% CI]', 'lift holdout [95% CI]', 'precision train [95% CI]', 'points', 'status'];
  const table = rows.map((candidate) => [
    String(rankOf.get(candidate)),
    candidate.description,
    count(candidate.train.fired),
    percent(candidate.train.rate, 1),
    liftText(candidate.train.lift),
    liftText(candidate.holdout.lift),
    share(candidate.train.precision),
    candidate.points !== undefined ? String(candidate.points) : '',
    statusText[candidate.status],
  ]);
  const numeric = new Set([0, 2, 3, 7]);
  const { input, period } = result;
  const { users: trainUsers, converted: trainConverted } = result.groups.train;
  const { users: holdoutUsers, converted: holdoutConverted } = result.groups.holdout;
  const out = [
    `${count(input.productEvents)} product events of ${count(input.users)} users, ${period.from.slice(0, 10)} to ${period.to.slice(0, 10)}; ` +
      `${count(input.afterConversion)} messages after their user's conversion were not counted.`,
    `identities: ${count(input.mergedIdentifiers)} identifiers merged into their users; ${count(input.anonymousLeftOut)} anonymous visitors nobody claimed left out.`,
    `train: signup before ${period.holdoutFrom.slice(0, 10)}, ${count(trainUsers)} users, ${count(trainConverted)} converted; ` +
      `holdout: signup from then on, ${count(holdoutUsers)} users, ${count(holdoutConverted)} converted.`,
    `${count(result.candidates.length)} candidate signals, ranked by the lower bound of their training lift; ` +
      `fired and rate are for training users; kept when the lift's interval is above 1 on the training users and on the holdout.`,
    '',
    textTable(header, table, (column) => numeric.has(column)),
  ];
  if (result.tiers.length > 0) {
    out.push('', 'Suggested tiers:');
    for (const tier of result.tiers) {
      out.push(
        `  ${tier.name} (score >= ${tier.minScore}, ${tier.route}): ${tier.basis}; ` +
          `train ${count(tier.train.fired)} qualified, precision ${share(tier.train.precision)}, lift ${liftText(tier.train.lift)}; ` +
          `holdout ${count(tier.holdout.fired)} qualified, precision ${share(tier.holdout.precision)}, lift ${liftText(tier.holdout.lift)}`,
      );
    }
  }
  if (result.warnings.length > 0) out.push('', ...result.warnings.map((warning) => `warning: ${warning}`));
  return out.join('\n');
}

const yamlString = (text: string) => JSON.stringify(text);

function measuredComment(label: string, measured: Measured): string {
  return (
    `${label}: fired for ${count(measured.fired)} of ${count(measured.users)} users (${percent(measured.rate, 1)}); ` +
    `${percent(measured.precision.value, 1)} of them converted [${percent(measured.precision.low, 1)}, ${percent(measured.precision.high, 1)}]; ` +
    `lift ${liftText(measured.lift)}; recall ${percent(measured.recall, 1)}`
  );
}

/**
 * The suggested rules file: the selected signals with their points and the tiers, every number commented with
 * where it came from. `loadRules` accepts it. Null when no signal was selected (a rules file needs one).
 */
export function suggestedRulesYaml(result: DiscoveryResult, options: { generatedAt?: Date; source?: string; conversion?: ConversionRule } = {}): string | null {
  if (result.selected.length === 0 || result.tiers.length === 0) return null;
  const { input, period } = result;
  const { train, holdout } = result.groups;
  const lines = [
    `# PQL rules suggested by \`pql-radar discover\`${options.generatedAt ? ` on ${options.generatedAt.toISOString().slice(0, 10)}` : ''}${options.source ? ` from ${options.source}` : ''}.`,
    '# A starting point measured on past data, not a verdict: read it, rename what you like, then check it with',
    '# `pql-radar rules check` and replay it with `pql-radar backtest` before it goes live.',
    '#',
    `# Data: ${count(input.productEvents)} product events of ${count(input.users)} users, ${period.from.slice(0, 10)} to ${period.to.slice(0, 10)}.`,
    `#   Only events BEFORE each user's conversion (before the end of the data for the others) were counted;`,
    `#   ${count(input.afterConversion)} later messages were ignored.`,
    `#   train:   users who signed up before ${period.holdoutFrom.slice(0, 10)}: ${count(train.users)}, of whom ${count(train.converted)} converted.`,
    `#   holdout: users who signed up from ${period.holdoutFrom.slice(0, 10)} on (the latest ${percent(result.options.holdoutShare)} of signups): ${count(holdout.users)}, of whom ${count(holdout.converted)} converted.`,
    '# How the signals were chosen: every event done by at least ' +
      `${result.options.minUsers} users x at least ${result.options.thresholds.join('/')} times x within ` +
      `${result.options.windows.map((w) => (w === null ? 'ever' : `${w}d of signup`)).join('/')},`,
    `#   and ${result.options.distinctThresholds.join('/')}+ distinct values of each event property within ${result.options.distinctWindow}d of signup: ` +
      `${count(result.candidates.length)} candidates,`,
    '#   ranked by the lower bound of the 95% interval of their lift on the training users (conversion rate of those',
    '#   it fired for over that of the rest), kept only when the lower bound is above 1 there and on the holdout,',
    `#   skipped when they fire for mostly the same users as a better one (Jaccard >= ${result.options.maxOverlap}) or show no lift`,
    '#   within either group a better one splits the users into (they only echo it); one threshold per event and window.',
    '# Points: 10 x log2(lower bound of the training lift), rounded to 5 (at least 5): 10 points per doubling of the',
    '#   conversion rate, so points add up roughly like evidence does.',
    '# Precision intervals are Wilson 95% intervals; lift intervals are log-method (Katz) 95% intervals.',
    'version: 1',
    'name: discovered',
  ];
  if (result.signupTrait !== null) {
    lines.push(
      '',
      `# Signup time: the ${result.signupTrait} trait from identify() when present, else the first event (as discover measured it).`,
      'signup:',
      `  trait: ${yamlString(result.signupTrait)}`,
    );
  } else lines.push('', '# Signup time: the first event (as discover measured it).');
  lines.push('', 'signals:');
  for (const candidate of result.selected) {
    const rank = result.candidates.indexOf(candidate) + 1;
    lines.push(
      `  # ${candidate.description} (rank ${rank} of ${result.candidates.length})`,
      `  #   ${measuredComment('train  ', candidate.train)}`,
      `  #   ${measuredComment('holdout', candidate.holdout)}`,
      `  #   points: 10 x log2(${threeFigures(candidate.train.lift!.low)}) = ${(10 * Math.log2(candidate.train.lift!.low)).toFixed(1)} -> ${candidate.points}`,
      `  ${candidate.name}:`,
      `    description: ${yamlString(candidate.description)}`,
      `    event: ${yamlString(candidate.event)}`,
    );
    if (candidate.kind === 'distinct') lines.push(`    distinct: ${yamlString(candidate.property!)}`);
    if (candidate.windowDays !== null) lines.push(`    since_signup: ${candidate.windowDays}d`);
    else lines.push('    # no window: all retained history (discover counted everything before conversion)');
    lines.push(`    at_least: ${candidate.threshold}`, `    points: ${candidate.points}`);
  }
  lines.push(
    '',
    '# Tiers, top-down (the first one met wins). A score is the sum of the points above; the figures of a tier are for',
    '# the users in exactly that tier (PQL-B: at least its score, below PQL-A\'s) against all the others, as the backtest reports them.',
    'tiers:',
  );
  for (const tier of result.tiers) {
    lines.push(
      `  # ${tier.name}: min_score ${tier.minScore} = ${tier.basis}.`,
      `  #   ${measuredComment('train  ', tier.train).replace('fired for', 'qualifies')}`,
      `  #   ${measuredComment('holdout', tier.holdout).replace('fired for', 'qualifies')}`,
      `  - name: ${tier.name}`,
      `    min_score: ${tier.minScore}`,
      `    route: ${tier.route}`,
    );
  }
  // The conversion discover measured against, so the evaluator and the backtest detect the same one.
  if (options.conversion) lines.push('', '# What converting means, as discover measured it.', `conversion: ${JSON.stringify(definedOnly(options.conversion))}`);
  return lines.join('\n') + '\n';
}

/** The rule's keys that are set, without the defaults a rules file need not repeat. */
function definedOnly(rule: ConversionRule): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rule).filter(([key, value]) => value !== undefined && key !== 'keep_in_tiers'));
}
