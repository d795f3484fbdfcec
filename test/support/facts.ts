import { eventsByDay, recomputeDays, userFacts } from '../../functions/core/facts';
import type { EntityFacts, UsageEvent } from '../../functions/core/rules/engine';
import type { Ruleset } from '../../functions/core/rules/load';

export interface FactsForOptions {
  /**
   * The order of the day rollups: by day, as the store reads them (the default), or the order each day's first
   * event comes in, for tests that show evaluate does not depend on it.
   */
  readonly dayOrder?: 'by-day' | 'first-seen';
}

/**
 * An entity's facts as the evaluator builds them (core/facts) from `events`, every day of them: one rollup per day
 * of the rules' time zone, a lifetime rollup, first and last seen. A user called user-1 with no traits and no members, unless
 * `overrides` says otherwise.
 */
export function factsFor(
  events: readonly UsageEvent[],
  ruleset: Ruleset,
  overrides: Partial<EntityFacts> = {},
  { dayOrder = 'by-day' }: FactsForOptions = {},
): EntityFacts {
  const { days, totals } = recomputeDays(ruleset, eventsByDay(events, ruleset.calendar), undefined);
  const facts = userFacts({ id: 'user-1', traits: {}, accountTraits: [], totals, days });
  // recomputeDays keeps the order each day first came in; userFacts sorts by day.
  if (dayOrder === 'first-seen') facts.days = days;
  return { ...facts, ...overrides };
}
