import { mergeRollups, rollupDay, type EntityFacts, type UsageEvent } from '../../functions/core/rules/engine';
import type { Ruleset } from '../../functions/core/rules/load';

export interface FactsForOptions {
  /**
   * The order of the day rollups: by UTC day, as the store reads them (the default), or the order each day's first
   * event comes in, for tests that show evaluate does not depend on it.
   */
  readonly dayOrder?: 'by-day' | 'first-seen';
}

/**
 * An entity's facts as the store would assemble them from `events`: one rollup per UTC day, a lifetime rollup, first
 * and last seen. A user called user-1 with no traits and no members, unless `overrides` says otherwise.
 */
export function factsFor(
  events: readonly UsageEvent[],
  ruleset: Ruleset,
  overrides: Partial<EntityFacts> = {},
  { dayOrder = 'by-day' }: FactsForOptions = {},
): EntityFacts {
  const byDay = new Map<string, UsageEvent[]>();
  for (const event of events) {
    const day = event.timestamp.slice(0, 10);
    byDay.set(day, [...(byDay.get(day) ?? []), event]);
  }
  const dayEvents = [...byDay.entries()];
  if (dayOrder === 'by-day') dayEvents.sort(([a], [b]) => a.localeCompare(b));
  const days = dayEvents.map(([day, eventsOfDay]) => rollupDay(day, eventsOfDay, ruleset));
  const stamps = events.map((event) => event.timestamp).sort();
  return {
    type: 'user',
    id: 'user-1',
    traits: {},
    accountTraits: [],
    firstSeen: stamps[0] ?? null,
    lastSeen: stamps.at(-1) ?? null,
    days,
    lifetime: mergeRollups('lifetime', days),
    members: [],
    ...overrides,
  };
}
