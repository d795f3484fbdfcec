import type { LeadEvent } from './lead-event';
import { buildLeadEvent, decide } from './lead-state';
import type { EvaluationStore, LeadPublisher } from './ports';
import { evaluate } from './rules/engine';
import type { Ruleset } from './rules/load';

export interface EvaluateShardOptions {
  shard: string;
  ruleset: Ruleset;
  now: Date;
  /** Stop taking new entities once this returns true; what is left stays marked for the next run. */
  outOfTime: () => boolean;
  /** Candidates read per page. @default 100 */
  pageSize?: number;
  /** How long a qualified lead waits before a sweep re-evaluates it without new events. @default 6 hours */
  sweepIntervalMs?: number;
}

export interface EvaluateShardResult {
  evaluated: number;
  transitions: LeadEvent[];
  published: number;
  /** Idempotency keys still in the outbox after this run; the next run retries them. */
  unpublished: string[];
  /** True when the run stopped for time with candidates left. */
  incomplete: boolean;
}

/**
 * One evaluator run over one shard: evaluate changed entities (users before accounts, so accounts see their members'
 * new state), leads due for a sweep, and, after a rules change, everyone, saving each lead's state together with its
 * transition in the outbox; then publish the outbox, this run's transitions and whatever an earlier run left there.
 */
export async function evaluateShard(store: EvaluationStore, publisher: LeadPublisher, options: EvaluateShardOptions): Promise<EvaluateShardResult> {
  const { shard, ruleset, now } = options;
  const pageSize = options.pageSize ?? 100;
  const sweepIntervalMs = options.sweepIntervalMs ?? 6 * 3_600_000;
  const transitions: LeadEvent[] = [];

  const progress = await store.rulesetProgress(shard);
  const everyone = progress.version !== ruleset.version;
  let evaluated = 0;
  let incomplete = false;
  // A re-evaluation of everyone that ran out of time resumes where it stopped instead of starting over.
  let after = everyone && progress.migrating?.version === ruleset.version ? progress.migrating.after : undefined;
  const seen = new Set<string>();
  do {
    const page = await store.candidates(shard, now, pageSize, { everyone, ...(after !== undefined ? { after } : {}) });
    for (const { ref } of page.candidates) {
      if (options.outOfTime()) {
        incomplete = true;
        break;
      }
      const key = `${ref.workspace}\n${ref.type}\n${ref.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (ref.type === 'account' && !ruleset.evaluatesAccounts) {
        await store.dismiss(ref);
        continue;
      }
      const { facts, state: previous, token } = await store.load(ref, ruleset, now);
      const evaluation = evaluate(facts, ruleset, now);
      const { state, transition } = decide(previous, evaluation, facts, ruleset, now);
      const event = transition?.notify ? buildLeadEvent(ref.workspace, facts, evaluation, transition, ruleset, now) : undefined;
      const nextSweep = state.tier !== null ? new Date(now.getTime() + sweepIntervalMs) : null;
      if (!(await store.save(ref, state, event, token, nextSweep))) continue;
      if (event) transitions.push(event);
      evaluated++;
    }
    if (incomplete) break;
    after = page.next;
    if (everyone) await store.saveRulesetProgress(shard, after === undefined ? { version: ruleset.version } : { ...progress, migrating: { version: ruleset.version, after } });
  } while (after !== undefined);

  // The outbox holds this run's transitions and anything an earlier run could not deliver.
  const pending = await store.pendingLeadEvents(shard);
  let published = 0;
  let unpublished: string[] = [];
  if (pending.length > 0) {
    const { failed } = await publisher.publish(pending);
    const failedKeys = new Set(failed);
    const delivered = pending.filter((event) => !failedKeys.has(event.detail.idempotencyKey));
    await store.markPublished(shard, delivered);
    published = delivered.length;
    unpublished = failed;
  }
  return { evaluated, transitions, published, unpublished, incomplete };
}

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
