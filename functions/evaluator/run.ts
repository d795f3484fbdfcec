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
}

/** Runs the evaluator over the given shards, one after the other, within the deadline. */
export async function runEvaluator(options: EvaluatorRunOptions): Promise<EvaluatorRunSummary> {
  const summary: EvaluatorRunSummary = { evaluated: 0, transitions: [], published: 0, unpublished: [], incompleteShards: [] };
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
  return summary;
}

export const allShards = (count: number) => Array.from({ length: count }, (_, shard) => String(shard));
