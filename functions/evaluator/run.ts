import { evaluateShard, type EvaluateShardResult } from '../core/evaluate-changes';
import type { EvaluationStore, LeadPublisher } from '../core/ports';
import type { Ruleset } from '../core/rules/load';

export interface EvaluatorRunOptions {
  store: EvaluationStore;
  publisher: LeadPublisher;
  ruleset: Ruleset;
  /** The shards this run covers: one per scheduled invocation when deployed, all of them locally. */
  shards: readonly string[];
  now: Date;
  /** Wall-clock time after which no new entity is started. */
  deadline: number;
  sweepIntervalMs?: number;
}

export interface EvaluatorRunSummary extends Omit<EvaluateShardResult, 'incomplete'> {
  /** Shards that stopped for time with work left; their markers stay for the next run. */
  incompleteShards: string[];
  /**
   * Age in whole seconds, at `now`, of the oldest change in these shards that is still unevaluated after the run
   * (left for time, or arrived meanwhile); 0 when none is. The alarm on it catches an evaluator that falls behind.
   */
  lagSeconds: number;
}

/** Runs the evaluator over the given shards, one after the other, within the deadline. */
export async function runEvaluator(options: EvaluatorRunOptions): Promise<EvaluatorRunSummary> {
  const summary: EvaluatorRunSummary = { evaluated: 0, transitions: [], published: 0, unpublished: [], incompleteShards: [], lagSeconds: 0 };
  for (const shard of options.shards) {
    const result = await evaluateShard(options.store, options.publisher, {
      shard,
      ruleset: options.ruleset,
      now: options.now,
      outOfTime: () => Date.now() >= options.deadline,
      ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
    });
    summary.evaluated += result.evaluated;
    summary.transitions.push(...result.transitions);
    summary.published += result.published;
    summary.unpublished.push(...result.unpublished);
    if (result.incomplete) summary.incompleteShards.push(shard);
  }
  let oldest: string | undefined;
  for (const shard of options.shards) {
    const since = await options.store.oldestChange(shard);
    if (since !== undefined && (oldest === undefined || since < oldest)) oldest = since;
  }
  // A change made after `now` (during the run) is not late: never negative.
  if (oldest !== undefined) summary.lagSeconds = Math.max(0, Math.round((options.now.getTime() - Date.parse(oldest)) / 1000));
  return summary;
}

export const allShards = (count: number) => Array.from({ length: count }, (_, shard) => String(shard));
