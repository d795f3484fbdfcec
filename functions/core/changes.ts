import type { ChangeMark, EntityRef, EvaluationCandidate } from './ports';

/** One string per entity, for maps and sets of entities. */
export const entityKey = (ref: EntityRef): string => `${ref.workspace}\n${ref.type}\n${ref.id}`;

/** One mark per entity: the union of its days (sorted), the oldest `since`, the latest `notBefore` (each is a bound of the same end). */
export function mergeMarks(marks: readonly ChangeMark[]): ChangeMark[] {
  const byEntity = new Map<string, ChangeMark>();
  for (const mark of marks) {
    const key = entityKey(mark.ref);
    const seen = byEntity.get(key);
    if (!seen) {
      byEntity.set(key, { ...mark, days: [...new Set(mark.days)].sort() });
      continue;
    }
    const notBefore = laterWaitEnd(seen.notBefore, mark.notBefore);
    const traitsChanged = seen.traitsChanged ?? mark.traitsChanged;
    byEntity.set(key, {
      ref: seen.ref,
      days: [...new Set([...seen.days, ...mark.days])].sort(),
      since: mark.since < seen.since ? mark.since : seen.since,
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(traitsChanged ? { traitsChanged } : {}),
    });
  }
  return [...byEntity.values()];
}

/** The later of two ends of one entity's wait (ChangeMark.notBefore), either unknown: both are bounds of the same end. */
export const laterWaitEnd = (a: string | undefined, b: string | undefined): string | undefined => (a === undefined || (b !== undefined && b > a) ? b : a);

/** A change as the evaluator's candidate. */
export const changedCandidate = (mark: ChangeMark): EvaluationCandidate => ({
  ref: mark.ref,
  reason: 'changed',
  days: mark.days,
  since: mark.since,
  ...(mark.notBefore !== undefined ? { notBefore: mark.notBefore } : {}),
  ...(mark.traitsChanged ? { traitsChanged: true } : {}),
});
