import { describe, expect, it } from 'vitest';
import { loadRules } from '../../functions/core/rules/load';
import { tierWarnings } from '../../functions/core/rules/tier-warnings';

/** The warnings of a rules file with two user signals, an account signal and these tiers. */
const warningsOf = (tiers: string) =>
  tierWarnings(loadRules(`version: 1\nsignals:\n  a: { event: A, window: 7d, points: 20 }\n  b: { event: B, window: 7d, points: 20 }\n  c: { event: C, window: 7d, points: 30, level: account }\ntiers:\n${tiers}`, 'tiers.rules.yaml').file);

describe('tier warnings', () => {
  it('name a tier with neither min_score nor require: it qualifies everyone', () => {
    expect(warningsOf('  - { name: PQL-A, min_score: 40, route: sales }\n  - { name: everyone, route: nurture, level: user }\n')).toEqual([
      'tiers[1] (everyone): neither min_score nor require: every user evaluated qualifies, a signup with a single event included',
    ]);
  });

  it('name a tier an earlier one shadows, at a lower bar with no more signals required', () => {
    expect(warningsOf('  - { name: PQL-A, min_score: 20, route: sales }\n  - { name: PQL-B, min_score: 30, require: [b], route: nurture }\n')).toEqual([
      'tiers[1] (PQL-B): never given: every entity it would take meets PQL-A first (tiers are tried best first; PQL-A asks for a score of 20, and PQL-B for a score of 30 and the signal b)',
    ]);
  });

  it('name a tier whose min_score is more than its signals can add up to, or than the scoring cap', () => {
    expect(warningsOf('  - { name: PQL-A, min_score: 41, route: sales }\n  - { name: accounts, min_score: 31, level: account, route: sales }\n')).toEqual([
      "tiers[0] (PQL-A): never given: min_score 41 is more than a score can reach, 40 (its user signals' or its account signals' points, every positive one matched)",
      "tiers[1] (accounts): never given: min_score 31 is more than a score can reach, 30 (its account signals' points, every positive one matched)",
    ]);
    expect(warningsOf('  - { name: PQL-A, min_score: 40, route: sales }\n  - { name: accounts, min_score: 30, level: account, route: sales }\n')).toEqual([]);
    const capped = loadRules('version: 1\nsignals:\n  a: { event: A, points: 50 }\nscoring: { cap: 30 }\ntiers:\n  - { name: PQL-A, min_score: 35, route: sales }\n', 'capped.rules.yaml');
    expect(tierWarnings(capped.file)).toEqual(['tiers[0] (PQL-A): never given: min_score 35 is more than a score can reach, 30 (the scoring cap)']);
  });

  it('say nothing of tiers in a sensible order, or of a later tier at another level or asking for other signals', () => {
    expect(warningsOf('  - { name: PQL-A, min_score: 40, require: [a], route: sales }\n  - { name: PQL-B, min_score: 20, route: nurture }\n')).toEqual([]);
    expect(warningsOf('  - { name: users, min_score: 20, level: user, route: sales }\n  - { name: accounts, min_score: 30, level: account, route: sales }\n')).toEqual([]);
    expect(warningsOf('  - { name: PQL-A, min_score: 20, require: [a], route: sales }\n  - { name: PQL-B, min_score: 30, require: [b], route: nurture }\n')).toEqual([]);
  });
});
