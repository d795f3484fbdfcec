import { accountConversion, firstConversion } from './conversion';
import { accountFacts, closeDays, eventsByDay, inReach, keptSpanDays, memberRangesInReach, needsRebuild, pruneLifetime, rangesBefore, rangesInReach, recomputeDays, sameRanges, signupDay, sinceSignupSpan, spanDaysOf, userFacts, windowFrom, withinStateBound, withOpenDays, withTotals, type DayRange, type SpanDays, type StoredEntityState } from './facts';
import type { LeadEvent } from './lead-event';
import { buildLeadEvent, decide, defaultDecayIntervalMs, mergedAway, movesAccounts, nextDecisionAt, visitorNotJudged, type LeadState } from './lead-state';
import { identityOfRef, mergedEvents, ownerOf, storeClaims } from './merge-identities';
import { changedCandidate, entityKey, laterWaitEnd, mergeMarks } from './changes';
import { forEachConcurrently } from './concurrency';
import type { EventsBudget, EventsLease } from './events-budget';
import type { Calendar } from './days';
import { claimsBefore, identityKey, type Claim, type Identity } from './identity';
import { RunHoldsTooManyEventsError, TooManyEventsError, type AccountMember, type ChangeMark, type EntityRef, type EntityRows, type EntityUpdate, type EvaluationCandidate, type EvaluationStore, type LeadPublisher, type MembersRead, type StoredEvent } from './ports';
import { emptyRollup, evaluate, type DayRollup, type EntityFacts } from './rules/engine';
import { traitHolds } from './rules/conditions';
import type { Ruleset } from './rules/load';
// From ruleset.ts, not load.ts: the evaluator's bundle carries no YAML parser or zod (test/infra/bundling.test.ts).
import { usersReadAccountTraits } from './rules/ruleset';

/** Entities of a page evaluated at once: enough to hide DynamoDB's round trips, few enough not to throttle a partition. */
export const defaultEvaluatorConcurrency = 8;

export interface EvaluateShardOptions {
  shard: string;
  ruleset: Ruleset;
  now: Date;
  /** Stop taking new entities once this returns true; what is left stays marked for the next run. */
  outOfTime: () => boolean;
  /**
   * Entities already evaluated in the same pass (their entity keys), which the run does not evaluate again: the local
   * runtime evaluates the stream's changes first, then the scheduled run. @default none
   */
  seen?: Set<string>;
  /** Candidates read per page. @default 100 */
  pageSize?: number;
  /** Entities of a page evaluated at once (their reads and writes overlap). @default 8 */
  concurrency?: number;
  /**
   * How often a sweep re-evaluates a lead whose points decay, without new events. Otherwise entities are swept exactly
   * when time alone can change their outcome (lead-state.ts nextDecisionAt). @default 6 hours
   */
  decayIntervalMs?: number;
  /**
   * An account its members move within this long of its last evaluation waits for a sweep at the end of it, which
   * judges every move made meanwhile at once: an account's evaluation reads every member's state (and days, when a
   * rule counts their events by day), so a large account whose members are active would otherwise be read in full at
   * every run. The first move after a quiet spell is judged at once. @default 0: at every move
   */
  accountIntervalMs?: number;
  /**
   * A user (or visitor) with new events within this long of its last evaluation is not evaluated again at once: its
   * change is kept for the runs that follow with the time the interval ends (ChangeMark.notBefore), which they leave it
   * unread until, and judged with whatever else came meanwhile once the interval is over. An evaluation recounts the
   * changed day's events, so a user active all day, judged at every minute's run, would cost reads that grow with the
   * square of its day's events. The first change after a quiet spell is judged at once. @default 0: at every change
   */
  userIntervalMs?: number;
}

export interface EvaluateShardResult {
  evaluated: number;
  transitions: LeadEvent[];
  published: number;
  /** Idempotency keys still in the outbox after this run; the next run retries them. */
  unpublished: string[];
  /** Why the bus refused them, each reason once (the publisher's `reasons`). */
  unpublishedReasons: string[];
  /** True when the run stopped for time with candidates left. */
  incomplete: boolean;
  /** Users left to wait without a read: the end of their wait was known (a mark's notBefore; evaluateChanges' waits). */
  leftUnread: number;
  /**
   * Entities left because a run of a later time had saved them meanwhile: an evaluation of the stream that
   * overlapped this run, or locally an `evaluate --at` ahead of it. Their changes wait for that time.
   */
  newerStates: number;
  /**
   * Evaluations made again alone, at the end of their page, because the events other evaluations held left no room in
   * the run's memory for theirs (the run's EventsBudget): a sign that heavy users come together. Not failures.
   */
  evaluatedAlone: number;
  /** Entities whose evaluation threw: each is left (a change kept, a sweep found again) for a later run to try. */
  failed: EntityFailure[];
}

/** An entity whose evaluation threw, and what it threw. */
export interface EntityFailure {
  ref: EntityRef;
  error: unknown;
}

/** What an evaluation threw, in one line: its name and message. */
export const describeError = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/**
 * One evaluator run over one shard: evaluate changed entities, leads due for a sweep, and, after a rules change,
 * everyone, saving each lead's state and its transition in the outbox; then publish the outbox, this run's
 * transitions and whatever an earlier run left there. Accounts come after the users: those the run's changes moved
 * after every changed user of the run, whatever page it was on, as the backtest judges every user of a step before
 * any account; otherwise an account could take a member's old days at one moment and its new ones on a later page,
 * and move twice. The pages of changes are settled once those accounts are judged, or listed for the next run when
 * time runs out; the next run judges an account listed as a change with its page.
 */
export async function evaluateShard(store: EvaluationStore, publisher: LeadPublisher, options: EvaluateShardOptions): Promise<EvaluateShardResult> {
  const { shard, ruleset } = options;
  const pageSize = options.pageSize ?? 100;
  const run = evaluationRun(store, options.seen ?? new Set(), options);

  const progress = await store.rulesetProgress(shard);
  const everyone = progress.version !== ruleset.version;
  // A re-evaluation of everyone that ran out of time resumes where it stopped instead of starting over.
  let after = everyone && progress.migrating?.version === ruleset.version ? progress.migrating.after : undefined;
  /** The pages evaluated whose accounts wait for later pages of changes: settled, in order, once those are judged. */
  let unsettled: unknown[] = [];
  const judgeAccounts = async (next: string | undefined) => {
    await run.judgeWaitingAccounts();
    const left = run.takeLeft();
    for (const [index, changes] of unsettled.entries()) await store.settle(shard, changes, index === 0 ? left : []);
    unsettled = [];
    // Time ran out with the page's entities left: a resumed re-evaluation starts at that page.
    if (everyone && !run.incomplete) await store.saveRulesetProgress(shard, next === undefined ? { version: ruleset.version } : { ...progress, migrating: { version: ruleset.version, after: next } });
  };
  do {
    const page = await store.candidates(shard, options.now, pageSize, { everyone, ...(after !== undefined ? { after } : {}) });
    const changesOnly = page.candidates.every((candidate) => candidate.reason === 'changed');
    // A sweep or a re-evaluation of everyone comes after every change: the changes' accounts are judged first.
    if (!changesOnly && unsettled.length > 0) await judgeAccounts(after);
    await run.evaluatePage(page.candidates);
    unsettled.push(page.changes);
    after = page.next;
    if (!changesOnly || run.incomplete || after === undefined) await judgeAccounts(after);
  } while (after !== undefined && !run.incomplete);

  // The outbox holds this run's transitions and anything an earlier run could not deliver. An account judged here
  // may be another shard's, whose run has published already (or comes a minute later): its outbox is published too.
  const { published, unpublished, unpublishedReasons } = await publishOutboxes(store, publisher, [shard, ...shardsOf(store, run.transitions)], options.now);
  return { evaluated: run.evaluated, transitions: run.transitions, published, unpublished, unpublishedReasons, incomplete: run.incomplete, leftUnread: run.leftUnread, newerStates: run.newerStates, evaluatedAlone: run.evaluatedAlone, failed: run.failed };
}

export interface EvaluateChangesOptions extends Omit<EvaluateShardOptions, 'shard' | 'pageSize'> {
  /** What changed: entities and the days their new events fall on (from the table's stream). */
  marks: readonly ChangeMark[];
  /**
   * Till when the users earlier calls saved or left still wait (the end of their userIntervalMs, by entity key), which
   * the caller keeps between calls (the deployed evaluator: for as long as its instance is warm): a user with a new
   * change before then is left again, its rows unread, as a scheduled run leaves a listed one (ChangeMark.notBefore).
   * Updated with what this call saves and leaves; past ends are dropped. @default none: every changed user's rows are read
   */
  waits?: Map<string, string>;
}

/** The most waits an evaluateChanges caller keeps: about 100 bytes each; past it, further ones are not kept. */
export const maxKeptWaits = 100_000;

/**
 * The most states of users in accounts a run keeps, for the accounts it judges after them (evaluationRun's
 * savedStates): a few KB each. Past it, the run reads the others' states from the table.
 */
const maxSavedStates = 10_000;

export interface EvaluateChangesResult extends Omit<EvaluateShardResult, 'incomplete'> {
  /** Changes left for the evaluator's next scheduled run (time ran out, an overlapping save, merged identities' owners). */
  left: number;
}

/**
 * Evaluates the entities that just changed, as they come off the table's stream, then publishes the outbox of their
 * shards: no change list is written or read for them. Users come before accounts, and the accounts their evaluation
 * moved are evaluated after them, as are the users whose merged identities changed. Whatever cannot be evaluated now
 * (time, an overlapping save, such a user evaluated already) is kept for the scheduled run, which also handles sweeps
 * and rules changes.
 */
export async function evaluateChanges(store: EvaluationStore, publisher: LeadPublisher, options: EvaluateChangesOptions): Promise<EvaluateChangesResult> {
  const { waits } = options;
  const now = options.now.toISOString();
  if (waits) for (const [key, end] of waits) if (end <= now) waits.delete(key);
  const candidates = mergeMarks(options.marks).map((mark) => changedCandidate(withKeptWait(mark, waits)));
  const run = evaluationRun(store, options.seen ?? new Set(), options);
  await run.evaluatePage(candidates);
  await run.judgeWaitingAccounts();
  const left = run.takeLeft();
  if (left.length > 0) await store.keep(left);
  if (waits) {
    const remember = (key: string, end: string) => {
      if (waits.size < maxKeptWaits) waits.set(key, end);
    };
    // A user saved now waits the interval from now; one left to wait, till the end its rows gave.
    if (options.userIntervalMs) for (const key of run.savedUsers) remember(key, new Date(options.now.getTime() + options.userIntervalMs).toISOString());
    for (const mark of left) if (mark.notBefore !== undefined && mark.notBefore > now) remember(entityKey(mark.ref), mark.notBefore);
  }
  const { published, unpublished, unpublishedReasons } = await publishOutboxes(store, publisher, shardsOf(store, run.transitions), options.now);
  return { evaluated: run.evaluated, transitions: run.transitions, published, unpublished, unpublishedReasons, left: left.length, leftUnread: run.leftUnread, newerStates: run.newerStates, evaluatedAlone: run.evaluatedAlone, failed: run.failed };
}

/** The mark with the end of a wait kept for its entity, when that is later than its own. */
function withKeptWait(mark: ChangeMark, waits: ReadonlyMap<string, string> | undefined): ChangeMark {
  const notBefore = laterWaitEnd(mark.notBefore, waits?.get(entityKey(mark.ref)));
  return notBefore === mark.notBefore ? mark : { ...mark, notBefore: notBefore! };
}

/**
 * One run's evaluations, saving each entity with its transition in the outbox: `evaluatePage` evaluates a page and
 * gathers the accounts its users move, which `judgeWaitingAccounts` judges. `seen` holds the entities evaluated
 * earlier in the same run: changed again since, they are left.
 */
function evaluationRun(store: EvaluationStore, seen: Set<string>, options: Omit<EvaluateShardOptions, 'shard' | 'pageSize'>) {
  const { ruleset, now } = options;
  const concurrency = options.concurrency ?? defaultEvaluatorConcurrency;
  const decayIntervalMs = options.decayIntervalMs ?? defaultDecayIntervalMs;
  const accountIntervalMs = options.accountIntervalMs ?? 0;
  const userIntervalMs = options.userIntervalMs ?? 0;
  const transitions: LeadEvent[] = [];
  let evaluated = 0;
  let incomplete = false;
  /** What the run leaves for a later one: changes not evaluated (time, an overlapping run, an entity evaluated in the run already). */
  let left: ChangeMark[] = [];
  /** The users (and visitors) the run saved, by entity key. */
  const savedUsers: string[] = [];
  /**
   * The states the run saved of users in accounts, by entity key: an account judged after them reads its other
   * members' states alone, a read unit a member less for each of these (and, after sweeping its members due, it reads
   * none again).
   */
  const savedStates = new Map<string, StoredEntityState>();
  let savedStatesFull = false;
  const keepSaved = (ref: EntityRef, rows: EntityRows, state: StoredEntityState) => {
    if (ref.type !== 'user' || rows.accounts.length === 0 || !ruleset.evaluatesAccounts) return;
    const key = entityKey(ref);
    if (savedStates.size < maxSavedStates || savedStates.has(key)) savedStates.set(key, state);
    else savedStatesFull = true;
  };
  const savedState = (workspace: string, id: string) => savedStates.get(entityKey({ workspace, type: 'user', id }));
  const membersOf = (account: EntityRef, read: Omit<MembersRead, 'saved'> = {}) => store.members(account, { ...read, saved: (id) => savedState(account.workspace, id) });
  /** Changes left to wait by their mark alone (waitsByMark): nothing of theirs read. */
  let leftUnread = 0;
  let newerStates = 0;
  /** Evaluations that found the run's memory held by other entities' events (RunHoldsTooManyEventsError), to make again alone. */
  const heldBack: { candidate: EvaluationCandidate; movedByMembers: boolean }[] = [];
  let evaluatedAlone = 0;
  const failed: EntityFailure[] = [];
  const nowText = now.toISOString();
  const leave = (candidate: EvaluationCandidate, notBefore = candidate.notBefore) => {
    // A sweep or a rules change finds the entity again by itself; a change must be kept.
    if (candidate.reason === 'changed') {
      left.push({ ref: candidate.ref, days: candidate.days, since: candidate.since ?? now.toISOString(), ...(notBefore !== undefined ? { notBefore } : {}), ...(candidate.traitsChanged ? { traitsChanged: true } : {}) });
    }
  };
  /** The accounts the users moved, to judge after every changed user of the run, by entity key. */
  const accounts = new Map<string, EvaluationCandidate>();
  /** The users whose merged identities changed (a claimed visitor's new events): theirs to evaluate, by entity key. */
  const forwarded = new Map<string, EvaluationCandidate>();
  /** Lists a candidate once, with the days of every listing. */
  const listCandidate = (candidate: EvaluationCandidate, list: Map<string, EvaluationCandidate>) => {
    const key = entityKey(candidate.ref);
    const listed = list.get(key);
    list.set(key, listed ? withDaysOf(listed, candidate) : candidate);
  };
  /** A user's days from here on come with its rows (EvaluationStore.entity): the days of its window, most of what it reads. */
  const daysFrom = windowFrom(ruleset, now);
  /** What the run may hold of events at once, whatever reads them. */
  const budget = store.eventsBudget();
  let reads = pageReads(store, now, ruleset.calendar, daysFrom, budget);
  /** When the interval that the entity's last evaluation began ends (epoch ms), if still to come (an interval of 0 never is). */
  const waitEnds = (rows: EntityRows, intervalMs: number): number | undefined => {
    const last = rows.state?.lead?.evaluatedAt;
    if (intervalMs === 0 || last === undefined) return undefined;
    const due = Date.parse(last) + intervalMs;
    return due > now.getTime() ? due : undefined;
  };
  /**
   * Whether an account its members moved waits for a sweep (accountIntervalMs), which it then has: scheduled at the end
   * of the interval that its last evaluation began. An overlapping run that saved it since it was read leaves the
   * change to the next run, as a save would.
   */
  const waitsForSweep = async (candidate: EvaluationCandidate, rows: EntityRows): Promise<boolean> => {
    const due = waitEnds(rows, accountIntervalMs);
    if (due === undefined) return false;
    if (!(await store.sweepBy(candidate.ref, new Date(due), rows.token))) leave(candidate);
    return true;
  };
  /** When a user's change may be evaluated, if not now (userIntervalMs): its last evaluation is too recent. */
  const userWaitEnds = (candidate: EvaluationCandidate, rows: EntityRows): number | undefined => (candidate.reason === 'changed' ? waitEnds(rows, userIntervalMs) : undefined);
  /**
   * Whether a change an earlier run left to wait still waits by its mark alone (ChangeMark.notBefore), so that nothing
   * need be read for it. A mark's time further off than the interval (lowered since) is left to the rows to judge.
   */
  const waitsByMark = (candidate: EvaluationCandidate): boolean => {
    if (candidate.reason !== 'changed' || candidate.notBefore === undefined || userIntervalMs === 0) return false;
    const end = Date.parse(candidate.notBefore);
    return end > now.getTime() && end <= now.getTime() + userIntervalMs;
  };
  /**
   * One entity whose evaluation throws (an item it cannot read, a bug a rare input finds) must not stop the run, and
   * every run after it, for the rest of its shard: it is left for the next run to try again, as time leaves one, and
   * counted (`failed`), which the deployed evaluator alarms on. Its account is not moved meanwhile. A store that fails
   * for everyone fails the run all the same, when the left changes cannot be kept.
   */
  /** When an entity with too many events to read is tried again: after a user's interval, when there is one. */
  const tooManyRetryAt = userIntervalMs > 0 ? new Date(now.getTime() + userIntervalMs) : undefined;
  const evaluateCandidate = async (candidate: EvaluationCandidate, movedByMembers = false, alone = false) => {
    const lease = budget.lease();
    try {
      await judgeCandidate(candidate, movedByMembers, reads.storeWith(lease));
    } catch (error) {
      // Other evaluations' events held the run's memory: once they are done, it has the whole of it (evaluateHeldBack).
      // Left to a later run instead, it would meet other heavy users again, and a rules change's pass would skip it.
      if (error instanceof RunHoldsTooManyEventsError && !alone) {
        seen.delete(entityKey(candidate.ref));
        heldBack.push({ candidate, movedByMembers });
        return;
      }
      failed.push({ ref: candidate.ref, error });
      // Too many events fail the same way until the operator acts, and each try reads up to the limit: the change waits
      // out a user's interval unread (waitsByMark), as a change arriving within it does.
      leave(candidate, error instanceof TooManyEventsError && tooManyRetryAt !== undefined ? tooManyRetryAt.toISOString() : candidate.notBefore);
    } finally {
      lease.giveBack();
    }
  };
  /** The evaluations held back for memory, one at a time, once the page's others are done and its prepared events dropped. */
  const evaluateHeldBack = async () => {
    if (heldBack.length === 0) return;
    reads.close();
    for (const { candidate, movedByMembers } of heldBack.splice(0)) {
      evaluatedAlone++;
      await evaluateCandidate(candidate, movedByMembers, true);
    }
  };
  /** `pageStore`: the page's reads, the events this evaluation reads held in the run's budget until it ends. */
  const judgeCandidate = async (candidate: EvaluationCandidate, movedByMembers: boolean, pageStore: EvaluationStore) => {
    const { ref } = candidate;
    if (options.outOfTime()) {
      incomplete = true;
      return leave(candidate);
    }
    const key = entityKey(ref);
    // Changed again since this run evaluated it: the next run reads the new days.
    if (seen.has(key)) return leave(candidate);
    seen.add(key);
    if (ref.type === 'account' && !ruleset.evaluatesAccounts) return;
    const rows = reads.takeRows(candidate) ?? (await store.entity(ref, candidate.days, daysFrom));
    // Saved by a run of a later time since this one began (the stream's evaluation of a change; locally, an
    // `evaluate --at` ahead): a decision at this run's time would publish lead events dated before those published
    // already, which a CRM's or Slack's delivery skips as superseded, and the lead's state would go back in time. Its change waits for then.
    const savedAt = rows.state?.lead?.evaluatedAt;
    if (savedAt !== undefined && savedAt > nowText) {
      newerStates++;
      return leave(candidate, savedAt);
    }
    let members: AccountMember[] | undefined;
    if (ref.type === 'account') {
      if (movedByMembers && (await waitsForSweep(candidate, rows))) return;
      members = await membersSwept(ref);
    } else {
      // A user or visitor merged into another user is that user's changes; an unclaimed visitor is no one's unless the rules say so.
      const owner = await ownerOf(pageStore, ref, rows, ruleset);
      if (owner !== ref) {
        if (owner && candidate.days.length > 0) listCandidate({ ref: owner, reason: 'changed', days: candidate.days, since: candidate.since ?? now.toISOString() }, forwarded);
        const lead = rows.state?.lead;
        // Swept for time alone, it would be read again at every run: only a save takes it out of the sweeps. One whose
        // state does not name its user yet (judged before the claim, on an earlier page; saved by an older version) is
        // saved once more to name it, for rule health.
        if (lead !== undefined && (lead.tier !== null || candidate.reason === 'sweep' || (owner !== undefined && lead.mergedInto !== owner.id))) await leaveJudged(candidate, rows, lead, owner, pageStore);
        return;
      }
      const waitEnd = userWaitEnds(candidate, rows);
      if (waitEnd !== undefined) return leave(candidate, new Date(waitEnd).toISOString());
    }
    const loaded = await readFacts(pageStore, ref, ruleset, now, rows, members).catch(async (error: unknown) => {
      // Every run finds a due sweep again until a save moves it: one with too many events to read waits out a user's
      // interval instead, as its changes do (evaluateCandidate), rather than be read up to the limit every run.
      if (error instanceof TooManyEventsError && candidate.reason === 'sweep' && tooManyRetryAt !== undefined) await store.sweepBy(ref, tooManyRetryAt, rows.token, { postpone: true });
      throw error;
    });
    const evaluation = evaluate(loaded.facts, ruleset, now);
    const { state, transition } = decide(loaded.rows.state?.lead, evaluation, loaded.facts, ruleset, now, loaded.convertedAt, loaded.rows.feedback);
    // A lead event names an account's top events, which its members' days hold: read for it when the rules did not.
    const eventFacts = ref.type === 'account' && !ruleset.accountsReadMemberDays && transition?.notify ? await accountFactsOf(pageStore, ref, rows.traits, members!, ruleset, now, true) : loaded.facts;
    const event = transition?.notify ? buildLeadEvent(ref.workspace, eventFacts, evaluation, transition, ruleset, now, ref.type) : undefined;
    const decisionAt = nextDecisionAt(state, evaluation, loaded.facts, ruleset, now, decayIntervalMs);
    const nextSweep = Number.isFinite(decisionAt) ? new Date(decisionAt) : null;
    const update = entityUpdate(loaded, state, event, nextSweep, ruleset, now);
    // An overlapping run saved first: evaluate again later, from what it saved.
    if (!(await store.save(ref, update, loaded.rows.token))) return leave(candidate);
    if (event) transitions.push(event);
    evaluated++;
    if (ref.type !== 'account') savedUsers.push(key);
    keepSaved(ref, rows, update.state);
    for (const account of movedAccounts(ref, rows, state, ruleset, now)) listCandidate(account, accounts);
  };
  /**
   * An entity judged as its user from now on (merged into it, `owner`), or not at all (a visitor no one claimed, while
   * the rules judge no visitors): a lead leaves its tier, with its own facts in the lead event, and it is swept no more.
   * A merged one's state names its user, for rule health.
   */
  const leaveJudged = async (candidate: EvaluationCandidate, rows: EntityRows, lead: LeadState, owner: EntityRef | undefined, pageStore: EvaluationStore) => {
    const { ref } = candidate;
    const loaded = await readFacts(pageStore, ref, ruleset, now, rows);
    const left = lead.tier === null ? undefined : owner ? mergedAway(lead, owner, ruleset, now) : visitorNotJudged(lead, ruleset, now);
    const event = left?.transition.notify ? buildLeadEvent(ref.workspace, loaded.facts, evaluate(loaded.facts, ruleset, now), left.transition, ruleset, now, ref.type) : undefined;
    const kept = left?.state ?? lead;
    const update = entityUpdate(loaded, owner ? { ...kept, mergedInto: owner.id } : kept, event, null, ruleset, now);
    if (!(await store.save(ref, update, loaded.rows.token))) return leave(candidate);
    if (event) transitions.push(event);
    evaluated++;
    keepSaved(ref, rows, update.state);
    if (left) for (const account of movedAccounts(ref, rows, left.state, ruleset, now)) listCandidate(account, accounts);
  };
  /**
   * The members of the page's accounts whose traits changed, those the new traits move (accountTraitsMove) and not on
   * the page themselves, as changes of their own: judged before the accounts, as the backtest judges them at the step
   * their account's traits change. Otherwise a member's fit signal on its account, or its route, would stay as it was
   * until the member's next event or sweep.
   */
  const membersOfListedAccounts = async (candidates: readonly EvaluationCandidate[]): Promise<EvaluationCandidate[]> => {
    // Not an account swept, moved by a member, or given feedback: nothing its members read of it moved. Judging them
    // again for it would cost a read and a save each, and, with userIntervalMs, leave each waiting for nothing.
    const accounts = usersReadAccountTraits(ruleset) ? candidates.filter((candidate) => candidate.ref.type === 'account' && candidate.traitsChanged === true) : [];
    if (accounts.length === 0) return [];
    const onPage = new Set(candidates.map((candidate) => entityKey(candidate.ref)));
    const listed = new Map<string, EvaluationCandidate>();
    await forEachConcurrently(accounts, concurrency, async ({ ref, since }) => {
      // Through the page's reads: the members judged on this page read the same profile, once. Their states eventually
      // consistent (half the units): a member another run saved a moment before may read as it was, which leaves it
      // unlisted only when that run judged it on the account's traits of before, as a user reads its accounts' traits
      // eventually consistent too (accountTraits): its fit then waits for its next change either way.
      const [members, [traits]] = await Promise.all([membersOf(ref, { eventuallyConsistent: true }), reads.store.accountTraits(ref.workspace, [ref.id])]);
      for (const { id, state } of members) {
        const member: EvaluationCandidate = { ref: { workspace: ref.workspace, type: 'user', id }, reason: 'changed', days: [], since: since ?? now.toISOString() };
        if (!onPage.has(entityKey(member.ref)) && accountTraitsMove(ruleset, traits ?? {}, state?.lead)) listed.set(entityKey(member.ref), member);
      }
    });
    return [...listed.values()];
  };
  /** Sweeps of members started by the accounts that read them, by member: another account of theirs awaits the same one. */
  const sweeps = new Map<string, Promise<void>>();
  /**
   * An account's members, those due for a sweep by now evaluated first: the account reads their lead state, which
   * the sweep may move. Every user is judged before the accounts that read it, as the backtest judges every user of a
   * step first; otherwise the run's sweep phase would move the member after its account took a tier from it, and the
   * account could move twice at one moment (or stay out of its tier for a cooldown).
   */
  const membersSwept = async (ref: EntityRef): Promise<AccountMember[]> => {
    const members = await membersOf(ref);
    // A member whose days the store no longer reads where they are is evaluated first too: that rebuilds them.
    const due = members
      .filter((member) => member.rebuildDays === true || (member.sweepDue !== undefined && member.sweepDue <= nowText))
      .map((member): EntityRef => ({ workspace: ref.workspace, type: 'user', id: member.id }))
      .filter((member) => sweeps.has(entityKey(member)) || !seen.has(entityKey(member)));
    if (due.length === 0) return members;
    await Promise.all(
      due.map((member) => {
        const key = entityKey(member);
        if (!sweeps.has(key)) sweeps.set(key, evaluateCandidate({ ref: member, reason: 'sweep', days: [] }));
        return sweeps.get(key)!;
      }),
    );
    // The swept members as saved, the others as read; all read again when the run could not keep every state.
    if (savedStatesFull) return membersOf(ref);
    return members.map((member) => {
      const state = savedState(ref.workspace, member.id);
      return state ? { id: member.id, state } : member;
    });
  };
  return {
    transitions,
    savedUsers,
    get evaluated() {
      return evaluated;
    },
    get leftUnread() {
      return leftUnread;
    },
    get newerStates() {
      return newerStates;
    },
    get evaluatedAlone() {
      return evaluatedAlone;
    },
    failed,
    get incomplete() {
      return incomplete;
    },
    /** What the run leaves so far, taken: the caller keeps it. */
    takeLeft(): ChangeMark[] {
      const taken = left;
      left = [];
      return taken;
    },
    /**
     * Evaluates a page: its users and visitors, then the users their merged identities' changes go to, then the
     * accounts it lists. The accounts the users move wait for `judgeWaitingAccounts`. The users' rows and events are
     * read, and the claims in those events stored, before any of them is evaluated (pageReads' prepare): a user is
     * then never judged on its own, nor with an identity a claim of the same page takes from it, for want of a claim
     * another user of the page makes.
     */
    async evaluatePage(candidates: readonly EvaluationCandidate[]): Promise<void> {
      reads = pageReads(store, now, ruleset.calendar, daysFrom, budget);
      const users: EvaluationCandidate[] = [];
      for (const candidate of [...candidates, ...(await membersOfListedAccounts(candidates))]) {
        if (candidate.ref.type === 'account') continue;
        // Left again, unread: a claim merging it elsewhere meanwhile is seen once its interval is over.
        if (waitsByMark(candidate)) {
          leftUnread++;
          leave(candidate);
        } else users.push(candidate);
      }
      const userWaits = (candidate: EvaluationCandidate, rows: EntityRows) => userWaitEnds(candidate, rows) !== undefined;
      await forEachConcurrently(users, concurrency, async (candidate) => {
        // A read that fails here is made again by the candidate's evaluation, where a failure is that entity's alone.
        if (!options.outOfTime() && !seen.has(entityKey(candidate.ref))) await reads.prepare(candidate, userIntervalMs > 0 ? userWaits : undefined).catch(() => undefined);
      });
      await reads.readAccountTraits();
      // The identities a claim merges into another user first: a user of the page then takes their changed days into
      // its own evaluation, rather than being evaluated again by the next run.
      const claimed = users.filter(reads.claimed);
      const unclaimed = users.filter((candidate) => !claimed.includes(candidate));
      await forEachConcurrently(claimed, concurrency, evaluateCandidate);
      await forEachConcurrently(
        unclaimed.map((candidate) => withListed(candidate, forwarded)),
        concurrency,
        evaluateCandidate,
      );
      await evaluateHeldBack();
      // The users their merged identities' changes go to, at once: a sweep later in the run, or an account, would
      // otherwise judge the user without them, and the next run move it back (one evaluated in this run already
      // is left to the next, as any entity changed again).
      while (forwarded.size > 0) {
        const owners = [...forwarded.values()];
        forwarded.clear();
        await forEachConcurrently(owners, concurrency, evaluateCandidate);
      }
      // A lead the page's claims merged into another user (an alias; an identified visitor, where visitors are leads)
      // leaves its tier in this run (leaveJudged), as the backtest has it at the claim's step; nothing else of it is read.
      // One this run judged already, on an earlier page than the claim, is left to the next run: found by no change of
      // its own, it would keep its tier for good.
      const claimedAway = reads.takeClaimed().filter((ref) => ref.type === 'user' || ruleset.anonymousLeads);
      for (const ref of claimedAway) if (seen.has(entityKey(ref))) leave({ ref, reason: 'changed', days: [] });
      const merged = claimedAway.filter((ref) => !seen.has(entityKey(ref)));
      await forEachConcurrently(
        merged.map((ref): EvaluationCandidate => ({ ref, reason: 'sweep', days: [] })),
        concurrency,
        evaluateCandidate,
      );
      // An account listed as a change itself (what an earlier run left, new traits) is judged with its page: made to
      // wait for the end of a run's changes, it would wait for ever behind a backlog that outlasts every run.
      const listed = candidates.filter((candidate) => candidate.ref.type === 'account').map((candidate) => withListed(candidate, accounts));
      await evaluateHeldBack();
      await forEachConcurrently(listed, concurrency, evaluateCandidate);
      // What its users left untaken (out of time, changed again) holds nothing for the pages after it.
      reads.close();
    },
    /** Judges the accounts the users moved; members swept first can move others: those in a further round. */
    async judgeWaitingAccounts(): Promise<void> {
      const judged = new Set<string>();
      for (;;) {
        const round = [...accounts].filter(([key]) => !judged.has(key));
        accounts.clear();
        if (round.length === 0) break;
        for (const [key] of round) judged.add(key);
        await forEachConcurrently(
          round.map(([, candidate]) => candidate),
          concurrency,
          (candidate) => evaluateCandidate(candidate, true),
        );
        await evaluateHeldBack();
      }
    },
  };
}

/**
 * Whether an account's traits can move a member's evaluation from what its lead state holds: a signal on its
 * accounts' traits that would turn (matched now, or matched before: it may hold through another account, and is judged
 * again then), or a route a lead takes from an account trait. Not a member never judged (merged into another user
 * first): nothing of it is read again. Most trait changes turn no signal (a company of 300 grows to 320 for a rule of
 * 50 or more), and its members are not read again for them.
 */
export function accountTraitsMove(ruleset: Ruleset, traits: Record<string, unknown>, lead: LeadState | undefined): boolean {
  if (lead === undefined) return false;
  if (lead.tier !== null && ruleset.routesByAccountTrait) return true;
  return ruleset.accountTraitSignals.some((name) => {
    const signal = ruleset.file.signals[name]!;
    return signal.kind === 'trait' && traitHolds(signal.is, traits[signal.trait]) !== lead.matched.includes(name);
  });
}

/** The candidate with the days of another listing of the same entity too, and its traits changed if either says so. */
const withDaysOf = (candidate: EvaluationCandidate, other: EvaluationCandidate): EvaluationCandidate => ({
  ...candidate,
  days: [...new Set([...candidate.days, ...other.days])],
  ...(other.traitsChanged ? { traitsChanged: true } : {}),
});

/** The candidate with the days the list holds for it, taken off the list. */
function withListed(candidate: EvaluationCandidate, list: Map<string, EvaluationCandidate>): EvaluationCandidate {
  const key = entityKey(candidate.ref);
  const listed = list.get(key);
  list.delete(key);
  return listed ? withDaysOf(candidate, listed) : candidate;
}

/**
 * The store with some methods of its own replaced; the others run on the store itself. Not through a prototype chain
 * (Object.create): there `this` in a method is the wrapper, and a method that sets a field of its store (a counter)
 * sets it on the wrapper, which the store never sees.
 */
function withMethods(store: EvaluationStore, methods: Partial<EvaluationStore>): EvaluationStore {
  return new Proxy(store, {
    get(target, name) {
      if (Object.hasOwn(methods, name)) return methods[name as keyof EvaluationStore];
      const value: unknown = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * The store as the evaluations of one page of candidates read it:
 *  - each account's traits read once: the users of one account evaluated together read the same profile, a call and
 *    a read unit each otherwise. A trait changed meanwhile is the next run's, as for a user evaluated a moment earlier.
 *    The accounts of the users `prepare` read are read together, in one batch (`readAccountTraits`), before the
 *    evaluations start: a call per account of the page otherwise, most of a page's calls besides its users' own where
 *    few of an account's users are active at once.
 *  - `prepare` reads a user's rows and the events of its changed days before the page's evaluations start, and stores
 *    the claims those events make; the user's evaluation then takes them (`takeRows`, and `events` once), so reading
 *    them first costs no call or unit more. A rebuild (a user's first evaluation, a rules change) reads every event
 *    again: the changed days' events once more, as prepare cannot know of it before the rows come back.
 *  - the claims read or stored are kept for the page: an evaluation does not read again those the page's other
 *    evaluations, or its own prepare, read already. An overlapping run's claim is seen by the next page, as a moment
 *    later.
 *  - the events read are held in the run's budget (core/events-budget): prepare's by a lease of their own until an
 *    evaluation takes them (or the page ends), an evaluation's by its lease until it ends. A read that finds no room
 *    beside them drops the events prepared and not yet taken, and is made again (readMakingRoom).
 */
function pageReads(store: EvaluationStore, now: Date, calendar: Calendar, daysFrom: string | undefined, budget: EventsBudget) {
  const traitsRead = new Map<string, Promise<Record<string, unknown>>>();
  /** The accounts of the users prepared, by workspace, for readAccountTraits. */
  const accountsOfPrepared = new Map<string, Set<string>>();
  const accountTraits = async (workspace: string, ids: readonly string[]) => {
    const key = (id: string) => `${workspace}\n${id}`;
    const unread = ids.filter((id) => !traitsRead.has(key(id)));
    if (unread.length > 0) {
      const traits = store.accountTraits(workspace, unread);
      unread.forEach((id, index) => traitsRead.set(key(id), traits.then((all) => all[index]!)));
    }
    return Promise.all(ids.map((id) => traitsRead.get(key(id))!));
  };

  const claimKey = (workspace: string, key: string) => `${workspace}\n${key}`;
  /** What holds each identity as the page read it (null: unclaimed), by workspace and identityKey. */
  const claimsKnown = new Map<string, Claim | null>();
  /** What holds each identity after a claim the page stored: newer than any read. */
  const claimsStored = new Map<string, Claim>();
  const claims = async (workspace: string, identities: readonly Identity[]) => {
    const unknown = identities.filter((identity) => !claimsKnown.has(claimKey(workspace, identityKey(identity))));
    if (unknown.length > 0) {
      const found = await store.claims(workspace, unknown);
      for (const identity of unknown) {
        const key = claimKey(workspace, identityKey(identity));
        if (!claimsStored.has(key)) claimsKnown.set(key, found.get(identityKey(identity)) ?? null);
      }
    }
    const held = new Map<string, Claim>();
    for (const identity of identities) {
      const claim = claimsKnown.get(claimKey(workspace, identityKey(identity)));
      if (claim) held.set(identityKey(identity), claim);
    }
    return held;
  };
  /** The identities a claim of the page took from no one, or from another user, by identityKey: theirs is to leave their tiers. */
  const claimedByPage = new Map<string, EntityRef>();
  const claim = async (workspace: string, made: Claim, at: Date, heldBy?: string) => {
    const result = await store.claim(workspace, made, at, heldBy);
    const key = claimKey(workspace, identityKey(made.from));
    // Claims of one identity made at once answer in any order: an earlier claim the page stored, which replaced this
    // one after it was written, is what holds the identity, whichever answer came last (a claim only moves earlier).
    const earlier = claimsStored.get(key);
    if (earlier !== undefined && claimsBefore(earlier, result.held)) return { held: earlier };
    claimsKnown.set(key, result.held);
    claimsStored.set(key, result.held);
    if (result.held.to === made.to && result.replaced?.to !== made.to) claimedByPage.set(key, { workspace, type: made.from.kind, id: made.from.id });
    return result;
  };

  const rowsRead = new Map<string, EntityRows>();
  /** The events prepare read, each with the lease that holds them in the run's budget until an evaluation takes them. */
  const eventsRead = new Map<string, { days: readonly string[]; events: StoredEvent[]; lease: EventsLease }>();
  /**
   * Users whose events prepare found too many, with the days it read: their evaluation fails at once rather than read
   * up to the limit again; so does a rebuild a day at a time when one day alone was too many.
   */
  const tooManyRead = new Map<string, { error: TooManyEventsError; days: readonly string[] }>();
  /** Drops the events prepare read for the entity, unused: what they held goes back to the budget. */
  const dropRead = (key: string) => {
    eventsRead.get(key)?.lease.giveBack();
    eventsRead.delete(key);
  };
  /**
   * A read the run's budget has no room for while the page's prepared events hold some: those are dropped (their
   * evaluations read them again) and the read made again, so that prepared events never keep a user from being evaluated.
   */
  const readMakingRoom = async (ref: EntityRef, days: readonly string[] | 'all', lease: EventsLease) => {
    try {
      return await store.events(ref, days, lease);
    } catch (error) {
      if (!(error instanceof RunHoldsTooManyEventsError) || eventsRead.size === 0) throw error;
      for (const key of [...eventsRead.keys()]) dropRead(key);
      return store.events(ref, days, lease);
    }
  };
  /**
   * Those prepare read, once, with the days asked besides (a merged identity's, forwarded to its user) read now; taken
   * by the lease of the evaluation that reads them, whose end gives them back to the budget.
   */
  const events = async (ref: EntityRef, days: readonly string[] | 'all', lease: EventsLease) => {
    const key = entityKey(ref);
    const tooMany = tooManyRead.get(key);
    if (tooMany !== undefined) throw tooMany.error;
    const read = eventsRead.get(key);
    if (read === undefined) return readMakingRoom(ref, days, lease);
    if (days === 'all' || read.days.some((day) => !days.includes(day))) {
      dropRead(key);
      return readMakingRoom(ref, days, lease);
    }
    eventsRead.delete(key);
    read.lease.moveTo(lease);
    const unread = days.filter((day) => !read.days.includes(day));
    return unread.length === 0 ? read.events : [...read.events, ...(await readMakingRoom(ref, unread, lease))];
  };
  /** A read a day at a time, held by the evaluation's lease: not made when prepare found one day too many alone. */
  const eachEventDay = async (ref: EntityRef, days: readonly string[] | 'all', onDay: (day: string, events: StoredEvent[]) => void, lease: EventsLease) => {
    const tooMany = tooManyRead.get(entityKey(ref));
    if (tooMany !== undefined && tooMany.days.length === 1) throw tooMany.error;
    return store.eachEventDay(ref, days, onDay, lease);
  };
  /** The rows prepare read for the candidate, with any claim the page stored on it since, and the candidate's days. */
  const rowsOf = (candidate: EvaluationCandidate): EntityRows | undefined => {
    const rows = rowsRead.get(entityKey(candidate.ref));
    if (rows === undefined) return undefined;
    const stored = candidate.ref.type === 'account' ? undefined : claimsStored.get(claimKey(candidate.ref.workspace, identityKey(identityOfRef(candidate.ref))));
    return { ...rows, ...(stored ? { claim: stored } : {}), changedDays: [...candidate.days] };
  };
  const reads = withMethods(store, { accountTraits, claims, claim });
  return {
    store: reads,
    /** The page's store for one evaluation: the events it reads are held by `lease`. */
    storeWith: (lease: EventsLease): EvaluationStore => withMethods(reads, { events: (ref, days) => events(ref, days, lease), eachEventDay: (ref, days, onDay) => eachEventDay(ref, days, onDay, lease) }),
    /**
     * Reads a candidate's rows and, for a user with changed days, their events, and stores the claims they make. With
     * `waits`, the rows come first, and a user whose change waits (evaluate-leads' userIntervalMs) has no events read.
     */
    async prepare(candidate: EvaluationCandidate, waits?: (candidate: EvaluationCandidate, rows: EntityRows) => boolean): Promise<void> {
      const { ref, days } = candidate;
      // Only a user's messages claim anything (core/identity).
      const withEvents = ref.type === 'user' && days.length > 0;
      const lease = budget.lease();
      // One that the run's budget has no room for now (RunHoldsTooManyEventsError) is read by its evaluation.
      const readEvents = () =>
        store.events(ref, days, lease).catch((error: unknown) => {
          if (error instanceof RunHoldsTooManyEventsError) return undefined;
          if (error instanceof TooManyEventsError) tooManyRead.set(entityKey(ref), { error, days });
          throw error;
        });
      let rows: EntityRows;
      let read: StoredEvent[] | undefined;
      let waiting = false;
      if (waits === undefined) {
        [rows, read] = await Promise.all([store.entity(ref, days, daysFrom), withEvents ? readEvents() : undefined]);
      } else {
        rows = await store.entity(ref, days, daysFrom);
        waiting = waits(candidate, rows);
        read = withEvents && !waiting ? await readEvents() : undefined;
      }
      rowsRead.set(entityKey(ref), rows);
      // Its evaluation reads its accounts' traits, unless it waits or a claim made it another user's.
      if (ref.type === 'user' && !waiting && rows.claim === undefined && rows.accounts.length > 0) {
        const accounts = accountsOfPrepared.get(ref.workspace) ?? new Set<string>();
        for (const id of rows.accounts) accounts.add(id);
        accountsOfPrepared.set(ref.workspace, accounts);
      }
      if (read === undefined) return;
      eventsRead.set(entityKey(ref), { days, events: read, lease });
      await storeClaims(reads, ref.workspace, read, new Map(), now, calendar);
    },
    /** Reads the traits of the prepared users' accounts not read yet, together. */
    async readAccountTraits(): Promise<void> {
      const batches = [...accountsOfPrepared].map(([workspace, ids]) => accountTraits(workspace, [...ids]));
      accountsOfPrepared.clear();
      await Promise.all(batches);
    },
    /** The identities the page's claims merged into a user: each taken once. */
    takeClaimed(): EntityRef[] {
      const taken = [...claimedByPage.values()];
      claimedByPage.clear();
      return taken;
    },
    /** Whether a claim merges the candidate into a user, as far as its prepared rows and the page's claims tell. */
    claimed: (candidate: EvaluationCandidate): boolean => rowsOf(candidate)?.claim !== undefined,
    /** Gives back to the budget the events prepared and never taken: the page is done. */
    close(): void {
      for (const key of [...eventsRead.keys()]) dropRead(key);
    },
    /** The rows `prepare` read for the candidate (see rowsOf); once. */
    takeRows(candidate: EvaluationCandidate): EntityRows | undefined {
      const rows = rowsOf(candidate);
      rowsRead.delete(entityKey(candidate.ref));
      return rows;
    },
  };
}

/** The shards whose outboxes hold the lead events. */
const shardsOf = (store: EvaluationStore, events: readonly LeadEvent[]): string[] => events.map((event) => store.shardOf({ workspace: event.detail.workspace, type: event.detail.entity.type, id: event.detail.entity.id }));

/** What publishing outboxes came to. */
type OutboxOutcome = Pick<EvaluateShardResult, 'published' | 'unpublished' | 'unpublishedReasons'>;

/** Publishes the outboxes of the shards, each once. */
async function publishOutboxes(store: EvaluationStore, publisher: LeadPublisher, shards: readonly string[], now: Date): Promise<OutboxOutcome> {
  let published = 0;
  const unpublished: string[] = [];
  const reasons = new Set<string>();
  for (const shard of new Set(shards)) {
    const outcome = await publishOutbox(store, publisher, shard, now);
    published += outcome.published;
    unpublished.push(...outcome.unpublished);
    for (const reason of outcome.unpublishedReasons) reasons.add(reason);
  }
  return { published, unpublished, unpublishedReasons: [...reasons] };
}

/** Publishes the shard's outbox (this run's transitions and whatever an earlier run could not deliver). */
async function publishOutbox(store: EvaluationStore, publisher: LeadPublisher, shard: string, now: Date): Promise<OutboxOutcome> {
  const pending = await store.claimLeadEvents(shard, await store.pendingLeadEvents(shard, now), now);
  if (pending.length === 0) return { published: 0, unpublished: [], unpublishedReasons: [] };
  let failed: string[];
  let reasons: string[] | undefined;
  try {
    ({ failed, reasons } = await publisher.publish(pending));
  } catch (error) {
    // None went out: the next run tries them all again rather than wait for the claim to end.
    await store.markUndelivered(shard, pending);
    throw error;
  }
  const failedKeys = new Set(failed);
  const delivered = pending.filter((event) => !failedKeys.has(event.detail.idempotencyKey));
  await store.markPublished(shard, delivered);
  if (failed.length > 0) await store.markUndelivered(shard, pending.filter((event) => failedKeys.has(event.detail.idempotencyKey)));
  return { published: delivered.length, unpublished: failed, unpublishedReasons: reasons ?? [] };
}

/**
 * The accounts a user's evaluation can move (counts, active members, members' tiers, the signals they read of their
 * members), as candidates for after the users.
 */
function movedAccounts(ref: EntityRef, rows: EntityRows, state: LeadState, ruleset: Ruleset, now: Date): EvaluationCandidate[] {
  if (ref.type !== 'user' || !ruleset.evaluatesAccounts || !movesAccounts(ruleset, rows.state?.lead, state, rows.changedDays.length > 0)) return [];
  const days = rows.changedDays.length > 0 ? rows.changedDays : [ruleset.calendar.dayOf(now)];
  return rows.accounts.map((id) => ({ ref: { workspace: ref.workspace, type: 'account', id }, reason: 'changed', days, since: now.toISOString() }));
}

/** An entity's rows as read for one evaluation, its facts, and the day rollups the evaluation recomputed (and emptied). */
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
  /** A user's since-signup span for its state to keep (facts.ts SpanDays), when it starts before the window. */
  spanDays?: SpanDays;
}

/**
 * Reads what the evaluation of one entity needs, and builds its facts (core/facts): for a user, the changed days
 * recomputed from their events (every day after a rules change) and the days its windows reach; for an account, its
 * members' states and the days their windows reach.
 */
export async function readFacts(store: EvaluationStore, ref: EntityRef, ruleset: Ruleset, now: Date, read?: EntityRows, readMembers?: readonly AccountMember[]): Promise<LoadedEntity> {
  const rows = read ?? (await store.entity(ref));
  if (ref.type === 'account') {
    const members = readMembers ?? (await store.members(ref));
    const facts = await accountFactsOf(store, ref, rows.traits, members, ruleset, now, ruleset.accountsReadMemberDays);
    const convertedAt = ruleset.file.conversion ? accountConversion(ruleset.file.conversion, rows.traits, members.map((member) => member.state?.lead?.conversion?.at), now) : null;
    return { ref, rows, facts, days: [], rebuilt: false, merged: [], convertedAt };
  }

  const rebuild = rows.rebuildDays === true || needsRebuild(rows.state, ruleset, rows.changedDays, store.maxChangedDaysPerSave);
  const readDays = async (ranges: readonly DayRange[]) => (ranges.length === 0 ? [] : ((await store.dayRollupsIn([{ ref, ranges }]))[0] ?? []));
  // The days the rows came with (the window's, from its first day on) are not read again; those before it (of the
  // since-signup span) are the state's span days when it kept them all, and read otherwise.
  const withRows = rows.days;
  const windowStart = windowFrom(ruleset, now);
  // Only days before the window can be span days alone: the rows came from its first day on, or there is none.
  const beforeWindow = withRows !== undefined || windowStart === undefined;
  const storedDays = async (ranges: readonly DayRange[], useKept: boolean) => {
    const before = withRows === undefined ? ranges : rangesBefore(ranges, withRows.from);
    const earlier = (useKept && beforeWindow ? keptSpanDays(rows.state, before) : undefined) ?? (await readDays(before));
    return withRows === undefined ? earlier : [...earlier, ...withRows.rollups.filter((rollup) => inReach(ranges, rollup.day))];
  };
  // The days in reach as the saved state places them, those the rows did not come with, are read beside the events, a
  // round trip less per evaluation: the events move them only with an earlier first activity (a late event, a merge),
  // and then they are read again.
  const expected = rows.state !== undefined && !rebuild ? rangesInReach(ruleset, now, signupDay({ firstSeen: rows.state.firstSeen, traits: rows.traits }, ruleset)) : undefined;
  const [history, storedExpected, accountTraits] = await Promise.all([
    // A user's events are its own and those of every identity merged into it (a merge that changes them rebuilds).
    mergedEvents(store, ref, rows, rebuild ? 'all' : rows.changedDays, now, ruleset),
    expected !== undefined ? storedDays(expected, true) : [],
    // In account id order: routing by an account trait takes the first account that has it (core/rules/routing.ts).
    rows.accounts.length > 0 ? store.accountTraits(ref.workspace, [...rows.accounts].sort()) : [],
  ]);
  const { events, all: rebuilt, rolledUp } = history;
  // After the events, which may rebuild: a call only for a late event's day, seldom.
  const previous = rebuilt ? undefined : { totals: rows.state!, changedDays: rows.changedDays, replaced: await replacedDays(store, ref, rows, ruleset.calendar) };
  const recomputed = rolledUp ? withTotals(ruleset, rolledUp.days, rolledUp.firstEvent, previous) : recomputeDays(ruleset, eventsByDay(events, ruleset.calendar), previous);
  const signup = signupDay({ firstSeen: recomputed.totals.firstSeen, traits: rows.traits }, ruleset);
  const ranges = rangesInReach(ruleset, now, signup);
  // A rebuild (every event read again: a merge) empties the stored days it finds no event on, which it reads as stored.
  const stored = !rebuilt && expected !== undefined && sameRanges(ranges, expected) ? storedExpected : await storedDays(ranges, !rebuilt);
  // The recomputed days are not saved yet: they replace what the store still holds for them. A rebuild recomputes
  // every day from every event, so what is stored adds nothing to it.
  const days = new Map(rebuilt ? [] : withOpenDays(stored, rows.state, ranges).map((rollup) => [rollup.day, rollup]));
  for (const rollup of recomputed.days) days.set(rollup.day, rollup);
  // A stored day a rebuild found no event on held those of identities merged no longer (a claim taken by an earlier
  // one): written out empty, it counts nothing in later evaluations either.
  const emptied = rebuilt ? stored.filter((rollup) => !days.has(rollup.day)).map((rollup) => emptyRollup(rollup.day)) : [];
  const facts = userFacts({ id: ref.id, traits: rows.traits, accountTraits, totals: recomputed.totals, days: [...days.values()] });
  // The messages read are the changed days' (every day on a rebuild): a conversion is seen when its day changes.
  const convertedAt = rolledUp ? rolledUp.convertedAt : ruleset.file.conversion ? firstConversion(ruleset.file.conversion, events) : null;
  // A span that starts before the window is kept with the state, for the evaluations that read the days before it.
  const span = sinceSignupSpan(ruleset, signup);
  const spanDays = span !== undefined && ruleset.spanSignals.length > 0 && (windowStart === undefined || span.from < windowStart) ? spanDaysOf(days.values(), span, ruleset.calendar.dayOf(now), ruleset) : undefined;
  return { ref, rows, facts, days: [...recomputed.days, ...emptied], rebuilt, merged: history.merged, convertedAt, ...(spanDays ? { spanDays } : {}) };
}

/**
 * An account's facts from its members' states, with their day rollups in reach when `withDays`: about one read unit a
 * member, which only a signal counting the members' events by day, and a lead event's top events, need.
 */
async function accountFactsOf(store: EvaluationStore, ref: EntityRef, traits: Record<string, unknown>, members: readonly AccountMember[], ruleset: Ruleset, now: Date, withDays: boolean): Promise<EntityFacts> {
  // The members ever evaluated, each with the days it has in reach.
  const reaching = withDays ? members.flatMap(({ id, state }) => (state ? [{ id, state, ranges: memberRangesInReach(state, ruleset, now) }] : [])) : [];
  const memberDays = reaching.length > 0 ? await store.dayRollupsIn(reaching.map(({ id, ranges }) => ({ ref: { workspace: ref.workspace, type: 'user', id }, ranges }))) : [];
  const daysOf = new Map(reaching.map(({ id, state, ranges }, index) => [id, withOpenDays(memberDays[index]!, state, ranges)]));
  return accountFacts({ id: ref.id, traits }, members.map((member) => ({ ...member, days: daysOf.get(member.id) ?? [] })));
}

/**
 * What a user's changed days held before: the state's open days, else the stored day items. A day after the state's
 * last activity (lastSeen) is not read: every rollup with anything in it has an activity, so any item such a day has
 * holds nothing to take out. That is a user's first evaluation of each new day, most of them.
 */
async function replacedDays(store: EvaluationStore, ref: EntityRef, rows: EntityRows, calendar: Calendar): Promise<DayRollup[]> {
  const open = new Map((rows.state?.openDays ?? []).map((rollup) => [rollup.day, rollup]));
  const lastActiveDay = rows.state?.lastSeen ? calendar.dayOf(rows.state.lastSeen) : null;
  const unopened = rows.changedDays.filter((day) => !open.has(day) && lastActiveDay !== null && day <= lastActiveDay);
  return [...rows.changedDays.flatMap((day) => open.get(day) ?? []), ...(unopened.length > 0 ? await store.dayRollups(ref, unopened) : [])];
}

/**
 * What saving an evaluation writes: the new state with its pruned totals and its open days, the days it writes out,
 * the lead event. A rebuild writes every day out and keeps none open.
 */
export function entityUpdate(loaded: LoadedEntity, lead: LeadState, event: LeadEvent | undefined, nextSweep: Date | null, ruleset: Ruleset, now: Date): EntityUpdate {
  const { facts } = loaded;
  const { open, closed: closedDays } = loaded.rebuilt ? { open: [], closed: [] } : closeDays(loaded.rows.state?.openDays ?? [], loaded.days, now, ruleset.calendar);
  const { state, closed } = withinStateBound(
    {
      lead,
      lifetime: pruneLifetime(facts.lifetime, ruleset),
      firstSeen: facts.firstSeen,
      lastSeen: facts.lastSeen,
      rollupVersion: ruleset.version,
      ...(loaded.merged.length > 0 ? { merged: loaded.merged } : {}),
      ...(open.length > 0 ? { openDays: open } : {}),
      ...(loaded.spanDays ? { spanDays: loaded.spanDays } : {}),
    },
    closedDays,
    now,
    ruleset.calendar,
  );
  return {
    state,
    days: closed,
    rebuiltDays: loaded.rebuilt ? loaded.days : [],
    ...(event ? { event } : {}),
    appliedFeedback: loaded.rows.feedback,
    nextSweep,
    evaluatedAt: now,
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
  decayIntervalMs?: number;
  /** See EvaluateShardOptions.accountIntervalMs. @default 0 */
  accountIntervalMs?: number;
  /** See EvaluateShardOptions.userIntervalMs. @default 0 */
  userIntervalMs?: number;
  /** Entities of a page evaluated at once. @default 8 */
  concurrency?: number;
  /** Entities already evaluated in the same pass (see EvaluateShardOptions.seen). @default none */
  seen?: Set<string>;
}

export interface EvaluatorRunSummary extends Omit<EvaluateShardResult, 'incomplete'> {
  /** Shards that stopped for time with work left; their changes stay for the next run. */
  incompleteShards: string[];
  /**
   * Age in whole seconds, at `now`, of the oldest change in these shards that is still unevaluated after the run
   * (left for time, or arrived meanwhile); 0 when none is. The alarm on it catches an evaluator that falls behind.
   */
  lagSeconds: number;
}

/** Runs the evaluator over the given shards, one after the other, within the deadline. */
export async function runEvaluator(options: EvaluatorRunOptions): Promise<EvaluatorRunSummary> {
  const summary: EvaluatorRunSummary = { evaluated: 0, transitions: [], published: 0, unpublished: [], unpublishedReasons: [], leftUnread: 0, newerStates: 0, evaluatedAlone: 0, failed: [], incompleteShards: [], lagSeconds: 0 };
  for (const shard of options.shards) {
    const result = await evaluateShard(options.store, options.publisher, {
      shard,
      ruleset: options.ruleset,
      now: options.now,
      outOfTime: () => Date.now() >= options.deadline,
      ...(options.seen ? { seen: options.seen } : {}),
      ...(options.decayIntervalMs !== undefined ? { decayIntervalMs: options.decayIntervalMs } : {}),
      ...(options.accountIntervalMs !== undefined ? { accountIntervalMs: options.accountIntervalMs } : {}),
      ...(options.userIntervalMs !== undefined ? { userIntervalMs: options.userIntervalMs } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    });
    summary.evaluated += result.evaluated;
    summary.transitions.push(...result.transitions);
    summary.published += result.published;
    summary.unpublished.push(...result.unpublished);
    summary.unpublishedReasons = [...new Set([...summary.unpublishedReasons, ...result.unpublishedReasons])];
    summary.leftUnread += result.leftUnread;
    summary.newerStates += result.newerStates;
    summary.evaluatedAlone += result.evaluatedAlone;
    summary.failed.push(...result.failed);
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

/**
 * The shards one scheduled invocation runs: its own first, then those of a higher count the table was evaluated with
 * before (`highest`) that no invocation has any more: shard k of `count` takes k + count, k + 2 x count, ... below
 * `highest`. What was left there (change lists, lead events in the outbox, leads waiting in the sweep index) is
 * evaluated and published rather than forgotten; each entity saved moves to its shard of today's count, where its lead
 * events wait for that shard's run.
 */
export function shardsCoveredBy(shard: number, count: number, highest: number): string[] {
  const covered = [String(shard)];
  for (let left = shard + count; left < highest; left += count) covered.push(String(left));
  return covered;
}
