import { signalLevel } from './ruleset';
import type { RulesFile, Tier } from './schema';

/**
 * Tiers that are valid but almost certainly not what their author meant, for `rules check` to point out: a tier with
 * neither a min_score nor a required signal qualifies every entity evaluated, a signup included; a tier whose
 * min_score is more than its level's signals can add up to is never given; and a tier that an earlier one shadows is
 * never given, since the first tier an entity meets (best first) is its tier.
 */
export function tierWarnings(file: Pick<RulesFile, 'tiers' | 'signals' | 'scoring'>): string[] {
  const { tiers } = file;
  const warnings: string[] = [];
  tiers.forEach((tier, index) => {
    const label = `tiers[${index}] (${tier.name})`;
    if (tier.min_score === undefined && tier.require.length === 0) {
      warnings.push(`${label}: neither min_score nor require: every ${levelText(tier)} evaluated qualifies, a signup with a single event included`);
    }
    const highest = highestScore(file, tier.level);
    if (tier.min_score !== undefined && tier.min_score > highest) {
      const signals = tier.level === 'both' ? "its user signals' or its account signals'" : `its ${tier.level} signals'`;
      const why = file.scoring.cap !== undefined && file.scoring.cap === highest ? 'the scoring cap' : `${signals} points, every positive one matched`;
      warnings.push(`${label}: never given: min_score ${tier.min_score} is more than a score can reach, ${highest} (${why})`);
    }
    const shadow = tiers.slice(0, index).find((earlier) => shadows(earlier, tier));
    if (shadow) {
      warnings.push(
        `${label}: never given: every entity it would take meets ${shadow.name} first (tiers are tried best first; ${shadow.name} asks for ` +
          `${requirements(shadow)}, and ${tier.name} for ${requirements(tier)})`,
      );
    }
  });
  return warnings;
}

/** The highest score an entity of the tier's level can have: its signals' positive points, within the scoring cap. */
function highestScore(file: Pick<RulesFile, 'signals' | 'scoring'>, level: Tier['level']): number {
  const levels = level === 'both' ? ['user', 'account'] : [level];
  const sums = levels.map((wanted) => Object.values(file.signals).reduce((sum, signal) => (signalLevel(signal) === wanted ? sum + Math.max(0, signal.points) : sum), 0));
  const highest = Math.max(...sums);
  return file.scoring.cap !== undefined ? Math.min(file.scoring.cap, highest) : highest;
}

/** Whether every entity `later` would take meets `earlier` already: at each of its levels, a lower or equal bar. */
function shadows(earlier: Tier, later: Tier): boolean {
  const levels = earlier.level === 'both' || earlier.level === later.level;
  const score = earlier.min_score === undefined || (later.min_score !== undefined && earlier.min_score <= later.min_score);
  return levels && score && earlier.require.every((signal) => later.require.includes(signal));
}

const requirements = (tier: Tier): string =>
  [tier.min_score !== undefined ? `a score of ${tier.min_score}` : 'any score', ...(tier.require.length > 0 ? [`the signal${tier.require.length > 1 ? 's' : ''} ${tier.require.join(', ')}`] : [])].join(' and ');

const levelText = (tier: Tier): string => (tier.level === 'both' ? 'user and account' : tier.level);
