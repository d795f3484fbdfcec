import { accountConversion, firstConversion } from './conversion';
import { dayOf } from './days';
import { accountFacts, eventsByDay, memberRangesInReach, needsRebuild, pruneLifetime, rangesInReach, recomputeDays, signupDay, userFacts } from './facts';
import type { LeadEvent } from './lead-event';
import { buildLeadEvent, decide, type LeadState } from './lead-state';
import { mergedEvents, ownerOf } from './merge-identities';
import type { EntityRef, EntityRows, EntityUpdate, EvaluationStore, LeadPublisher } from './ports';
import { evaluate, type DayRollup, type EntityFacts } from './rules/engine';
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
      const rows = await store.entity(ref);
      if (ref.type !== 'account') {
        // A user or visitor merged into another user is that user's changes; an unclaimed visitor is no one's unless the rules say so.
        const owner = await ownerOf(store, ref, rows, ruleset);
        if (owner !== ref) {
          await store.forward(ref, rows.token, owner && { ref: owner, days: rows.changedDays, at: now });
          continue;
        }
      }
      const loaded = await readFacts(store, ref, ruleset, now, rows);
      const evaluation = evaluate(loaded.facts, ruleset, now);
      const { state, transition } = decide(loaded.rows.state?.lead, evaluation, loaded.facts, ruleset, now, loaded.convertedAt);
      const event = transition?.notify ? buildLeadEvent(ref.workspace, loaded.facts, evaluation, transition, ruleset, now, ref.type) : undefined;
      const nextSweep = state.tier !== null ? new Date(now.getTime() + sweepIntervalMs) : null;
      const saved = await store.save(ref, entityUpdate(loaded, state, event, nextSweep, ruleset, now), loaded.rows.token);
      if (!saved) continue;
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

/** An entity's rows as read for one evaluation, its facts, and the day rollups the evaluation recomputed. */
export interface LoadedEntity {
  ref: EntityRef;
  rows: EntityRows;
  facts: EntityFacts;
  days: DayRollup[];
  /** Whether `days` were rebuilt from every event rather than recomputed for the changed days. */
  rebuilt: boolean;
  /** The identities merged into a user (core/merge-identities), saved with its state. */
  merged: string[];
  /** A conversion seen in what was read (core/conversion), null for none; the lead state records the first one. */
  convertedAt: string | null;
}

/**
 * Reads what the evaluation of one entity needs, and builds its facts (core/facts): for a user, the changed days
 * recomputed from their events (every day after a rules change) and the days its windows reach; for an account,
 * its members' states and the days their windows reach.
 */
export async function readFacts(store: EvaluationStore, ref: EntityRef, ruleset: Ruleset, now: Date, read?: EntityRows): Promise<LoadedEntity> {
  const rows = read ?? (await store.entity(ref));
  if (ref.type === 'account') {
    const members = await store.members(ref);
    const evaluated = members.filter((member) => member.state !== undefined);
    const memberDays = await store.dayRollupsIn(
      evaluated.map((member) => ({ ref: { workspace: ref.workspace, type: 'user', id: member.id }, ranges: memberRangesInReach(member.state!, ruleset, now) })),
    );
    const daysOf = new Map(evaluated.map((member, index) => [member.id, memberDays[index]!]));
    const facts = accountFacts({ id: ref.id, traits: rows.traits }, members.map((member) => ({ ...member, days: daysOf.get(member.id) ?? [] })));
    const convertedAt = ruleset.file.conversion ? accountConversion(ruleset.file.conversion, rows.traits, members.map((member) => member.state?.lead?.conversion?.at), now) : null;
    return { ref, rows, facts, days: [], rebuilt: false, merged: [], convertedAt };
  }

  // A user's events are its own and those of every identity merged into it (a merge that changes them rebuilds).
  const history = await mergedEvents(store, ref, rows, needsRebuild(rows.state, ruleset, rows.changedDays, store.maxChangedDaysPerSave) ? 'all' : rows.changedDays, now);
  const { events, all: rebuilt } = history;
  const replaced = rebuilt ? [] : await store.dayRollups(ref, rows.changedDays);
  const recomputed = recomputeDays(ruleset, eventsByDay(events), rebuilt ? undefined : { totals: rows.state!, changedDays: rows.changedDays, replaced });
  const ranges = rangesInReach(ruleset, now, signupDay({ firstSeen: recomputed.totals.firstSeen, traits: rows.traits }, ruleset));
  const [[stored = []], accountTraits] = await Promise.all([store.dayRollupsIn([{ ref, ranges }]), rows.accounts.length > 0 ? store.accountTraits(ref.workspace, rows.accounts) : []]);
  // The recomputed days are not saved yet: they replace what the store still holds for them.
  const days = new Map(stored.map((rollup) => [rollup.day, rollup]));
  for (const rollup of recomputed.days) days.set(rollup.day, rollup);
  const facts = userFacts({ id: ref.id, traits: rows.traits, accountTraits, totals: recomputed.totals, days: [...days.values()] });
  // The messages read are the changed days' (every day on a rebuild): a conversion is seen when its day changes.
  const convertedAt = ruleset.file.conversion ? firstConversion(ruleset.file.conversion, events) : null;
  return { ref, rows, facts, days: recomputed.days, rebuilt, merged: history.merged, convertedAt };
}

/** What saving an evaluation writes: the new state with its pruned totals, the recomputed days, the lead event. */
export function entityUpdate(loaded: LoadedEntity, lead: LeadState, event: LeadEvent | undefined, nextSweep: Date | null, ruleset: Ruleset, now: Date): EntityUpdate {
  const { ref, rows, facts } = loaded;
  // A member's new days or new tier can move its accounts (counts, active users, members' tiers).
  const moved = rows.changedDays.length > 0 || lead.tier !== (rows.state?.lead?.tier ?? null);
  const markAccounts = ref.type === 'user' && ruleset.evaluatesAccounts && moved ? { ids: rows.accounts, days: rows.changedDays.length > 0 ? rows.changedDays : [dayOf(now)], at: now } : undefined;
  return {
    state: { lead, lifetime: pruneLifetime(facts.lifetime, ruleset), firstSeen: facts.firstSeen, lastSeen: facts.lastSeen, rollupVersion: ruleset.version, ...(loaded.merged.length > 0 ? { merged: loaded.merged } : {}) },
    days: loaded.rebuilt ? [] : loaded.days,
    rebuiltDays: loaded.rebuilt ? loaded.days : [],
    ...(event ? { event } : {}),
    nextSweep,
    ...(markAccounts ? { markAccounts } : {}),
  };
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
