/**
 * Runs `task` over `items`, at most `limit` at a time: reads and writes of independent entities overlap instead of
 * waiting on each other's round trips. After a task fails no new one starts; it rejects with that first error once
 * the tasks already started have finished, so none is left running unseen.
 */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
