import type { ChangeMark, EntityRef } from './ports';

/** One string per entity, for maps and sets of entities. */
export const entityKey = (ref: EntityRef): string => `${ref.workspace}\n${ref.type}\n${ref.id}`;

/** One mark per entity: the union of its days (sorted), the oldest `since`. */
export function mergeMarks(marks: readonly ChangeMark[]): ChangeMark[] {
  const byEntity = new Map<string, ChangeMark>();
  for (const mark of marks) {
    const key = entityKey(mark.ref);
    const seen = byEntity.get(key);
    byEntity.set(
      key,
      seen ? { ref: seen.ref, days: [...new Set([...seen.days, ...mark.days])].sort(), since: mark.since < seen.since ? mark.since : seen.since } : { ...mark, days: [...new Set(mark.days)].sort() },
    );
  }
  return [...byEntity.values()];
}
