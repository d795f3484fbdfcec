import type { LeadEvent } from './lead-event';
import type { LeadFeedback } from './lead-feedback';
import type { LeadState } from './lead-state';
import type { DayRange, StoredEntityState } from './facts';
import type { Claim, Identity, IdentifiedMessage } from './identity';
import type { DayRollup, UsageEvent } from './rules/engine';
import type { AcceptedMessage, RejectedMessage } from './messages';
import type { WriteKeyRecord } from './write-key';
import type { EventsBudget, EventsLease } from './events-budget';

/** Where accepted events go. An implementation resolves only once every message is durably stored. */
export interface EventStore {
  /**
   * Stores the messages under their entities and marks those entities for the evaluator. Idempotent per messageId.
   * Returns the messages it refused to store (e.g. traits that would outgrow an entity's profile), with the reason;
   * a store that buffers them (core/ingest-buffer.ts) refuses later, and quarantines under the request's id.
   */
  save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date, requestId: string): Promise<{ refused: Refusal[] }>;
  /** Keeps rejected messages of an authenticated request, with their reasons, for an operator to inspect. */
  quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date): Promise<void>;
}

export interface Refusal {
  index: number;
  path: string;
  reason: string;
}

export interface WriteKeyStore {
  find(keyId: string): Promise<WriteKeyRecord | undefined>;
  /** The browser origins each workspace accepts events from (canonical origins, or `*`), by workspace. */
  allowedOrigins(): Promise<ReadonlyMap<string, readonly string[]>>;
}

/**
 * Where the CLI, the lead page and the feedback link put sales feedback: beside the entity, for the evaluator to apply
 * through the state machine on its next run (it is the one writer of a lead's state).
 */
export interface FeedbackStore {
  /** The entity's lead state; undefined when it has never been evaluated. */
  state(ref: EntityRef): Promise<LeadState | undefined>;
  /** Keeps the feedback for the evaluator; with `once`, only if that link nonce was never used (false: it was). */
  give(ref: EntityRef, feedback: LeadFeedback, once?: { expires: Date }): Promise<boolean>;
  /** Whether the link nonce was used already. */
  used(workspace: string, nonce: string): Promise<boolean>;
}

/** Where lead events go: the EventBridge bus when deployed; the console, a JSONL file and webhooks locally. */
/**
 * What publishing came to: the idempotency keys of the events that could not be delivered after retries, so the
 * caller keeps them for the next attempt, and, for an operator, the distinct reasons they were refused (no event content).
 */
export interface PublishOutcome {
  failed: string[];
  reasons?: string[];
}

export interface LeadPublisher {
  /** Delivers the events, at least once each; throws only when nothing is known. */
  publish(events: readonly LeadEvent[]): Promise<PublishOutcome>;
}

export interface EntityRef {
  workspace: string;
  /** A visitor is an anonymousId never claimed by a user (core/identity); it is evaluated only when the rules opt in. */
  type: 'user' | 'account' | 'visitor';
  id: string;
}

/** An entity the evaluator should look at: changed since its last evaluation, due for a sweep, or every one after a rules change. */
export interface EvaluationCandidate {
  ref: EntityRef;
  reason: 'changed' | 'sweep' | 'rules-changed';
  /** The days with events not evaluated yet (late events included); none for a sweep or a rules change. */
  days: string[];
  /** When the oldest of those changes was made (ISO 8601): the evaluator's lag counts from it. */
  since?: string;
  /** See ChangeMark.notBefore. */
  notBefore?: string;
  /** See ChangeMark.traitsChanged. */
  traitsChanged?: true;
}

/** An entity to evaluate in a later run, on these days (or none: its state, traits or members moved). */
export interface ChangeMark {
  ref: EntityRef;
  days: string[];
  /** When the change was made (ISO 8601): the evaluator's lag counts from it. */
  since: string;
  /**
   * A user's change left to wait for the end of its interval (evaluate-leads' userIntervalMs): the time that interval
   * ends as the run that left it read it (ISO 8601). A run before then leaves the change again without reading its
   * rows. Never later than the true end: an entity's last evaluation only moves later.
   */
  notBefore?: string;
  /**
   * An account whose traits changed (a group call wrote its profile), not only its members or feedback: its members
   * whose evaluation reads its traits are judged again with it.
   */
  traitsChanged?: true;
}

/** A page of candidates; `changes` is what `settle` forgets once the page is done (opaque to the use case). */
export interface CandidatePage {
  candidates: EvaluationCandidate[];
  next?: string;
  changes?: unknown;
}

export interface RulesetProgress {
  version?: string;
  /** A re-evaluation of everyone under a new version, resumable from `after`. */
  migrating?: { version: string; after?: string };
}

/** What the evaluator reads of an entity first; the rest of its reads depend on it. */
export interface EntityRows {
  /** The entity's state as last saved; absent until its first evaluation. */
  state?: StoredEntityState;
  /** The days with events not evaluated yet (late events included): the candidate's. */
  changedDays: string[];
  /** The entity's own traits (identify calls for a user, group calls for an account). */
  traits: Record<string, unknown>;
  /** A user's accounts; none for an account. */
  accounts: string[];
  /** The claim that merges this user or visitor into a user (core/identity), when one was stored. */
  claim?: Claim;
  /** Sales feedback given since the last save (core/lead-feedback), which this evaluation applies. */
  feedback: LeadFeedback[];
  /**
   * A user's (or visitor's) stored day rollups from `from` on, when `entity` was asked for them and could read them
   * with the rows (the use case reads any other days it needs itself).
   */
  days?: { from: string; rollups: DayRollup[] };
  /** The store keeps the entity's day rollups where it no longer reads them: its evaluation rebuilds them from its events. */
  rebuildDays?: true;
  /** Opaque to the use case: what `save` needs to notice an overlapping run and to keep the sweep index still. */
  token: unknown;
}

/** A stored event as the evaluator reads it: what the rules measure, and who sent it (for identity claims). */
export type StoredEvent = UsageEvent & IdentifiedMessage;

/** What one evaluation writes. */
export interface EntityUpdate {
  state: StoredEntityState;
  /**
   * Days the state no longer keeps open (facts.ts closeDays), written as day items before the state: each one only if
   * no save of a later state revision wrote that day already, so a slow run cannot bring back an older value.
   */
  days: DayRollup[];
  /** Days rebuilt from every event: idempotent, so the store may write them before the state and in several writes. */
  rebuiltDays: DayRollup[];
  /** The lead event of a transition, in the outbox once the state is saved (and never without it). */
  event?: LeadEvent;
  /** The feedback the state applied, forgotten in the same write: applied once, and never lost before. */
  appliedFeedback: LeadFeedback[];
  /** When a sweep should evaluate the entity again without new events; null for none (it is not a lead). */
  nextSweep: Date | null;
  /** When the evaluation ran: a sweep already scheduled later than this and earlier than `nextSweep` is kept. */
  evaluatedAt: Date;
}

/** How `EvaluationStore.members` reads an account's members' states. */
export interface MembersRead {
  /** The state a user (by its id) was just saved with (an evaluation run's own saves): such a member is not read. */
  saved?: (id: string) => StoredEntityState | undefined;
  /** Half the units, but a state saved within about a second may come as it was before. @default false */
  eventuallyConsistent?: boolean;
}

/** A member of an account, as the account's evaluation reads it. */
export interface AccountMember {
  id: string;
  state?: StoredEntityState;
  sweepDue?: string;
  /** As EntityRows' rebuildDays: the member's days are read only once an evaluation of its own has rebuilt them. */
  rebuildDays?: true;
}

/**
 * What `EvaluationStore.events` throws when an identity's events asked for are more than one evaluation may hold in
 * memory at once. Its evaluation fails and its change is kept, as for any entity that throws; a process out of
 * memory would instead end the run, and every run after it would take the same page and end the same way.
 */
export class TooManyEventsError extends Error {
  override readonly name = 'TooManyEventsError';
}

/**
 * What `EvaluationStore.events` throws when an identity's events would fit in memory alone, but not beside what the
 * run holds of other entities' events already (core/events-budget). Not a failure of the entity: the use case
 * evaluates it again alone, once the others are done.
 */
export class RunHoldsTooManyEventsError extends Error {
  override readonly name = 'RunHoldsTooManyEventsError';
}

/**
 * What the evaluator reads and writes: rows in, rows out, no rule logic (core/facts turns the rows into facts).
 * The DynamoDB implementation keeps every read proportional to what the use case asks for.
 */
export interface EvaluationStore {
  /**
   * Lead events whose state is saved and that are not yet published (this run's, a crash's, a failed publish's), oldest
   * first. `now` is the run's clock: an event whose save cannot come any more is forgotten.
   */
  pendingLeadEvents(shard: string, now: Date): Promise<LeadEvent[]>;
  /**
   * Of the pending events, those this run may publish: until longer than a run can last, no other run gets them (runs
   * overlap on an outbox; an e-mail would go out twice).
   */
  claimLeadEvents(shard: string, events: readonly LeadEvent[], now: Date): Promise<LeadEvent[]>;
  /** Removes delivered events from the outbox. */
  markPublished(shard: string, events: readonly LeadEvent[]): Promise<void>;
  /** Keeps events whose publish failed for the next run, however long the bus is down. */
  markUndelivered(shard: string, events: readonly LeadEvent[]): Promise<void>;
  /** The ruleset version the shard last evaluated everyone with, and how far a re-evaluation under a new one got. */
  rulesetProgress(shard: string): Promise<RulesetProgress>;
  saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void>;
  /**
   * When the oldest change of the shard that no run has evaluated yet was made (ISO 8601), or undefined when every
   * change was evaluated: the evaluator's lag.
   */
  oldestChange(shard: string): Promise<string | undefined>;
  /**
   * Candidates of the shard, about `limit`: changed entities (users before accounts within a page), then leads due for
   * a sweep (everyone evaluated before, after a rules change). What the run settles for later is not among them, so
   * a run never meets again what it left. The next page of changes follows the page before whether or not that one
   * was settled yet: the use case settles the pages of changes together, once their accounts are judged.
   */
  candidates(shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }): Promise<CandidatePage>;
  /**
   * Once a page is done: keeps `marks` for a later run (what the run left, or must evaluate next), then forgets the
   * page's changes. A change made after the page was read is not forgotten: the next run sees it.
   */
  settle(shard: string, changes: unknown, marks: readonly ChangeMark[]): Promise<void>;
  /** Keeps changes for the next scheduled run (what an evaluation of fresh changes could not finish). */
  keep(marks: readonly ChangeMark[]): Promise<void>;
  /** The shard an entity belongs to (its outbox, its sweeps). */
  shardOf(ref: EntityRef): string;
  /** The most changed days one `save` keeps open in the state; more and the use case rebuilds the entity's days. */
  readonly maxChangedDaysPerSave: number;
  /**
   * The entity's state, traits and accounts, with the changed days of its candidate; with `daysFrom`, a user's (or
   * visitor's) stored day rollups from that day on too, if the store reads them with the rows.
   */
  entity(ref: EntityRef, changedDays?: readonly string[], daysFrom?: string): Promise<EntityRows>;
  /**
   * A user's (or visitor's) stored events of the given days, or all of them, taken from `lease` as they are read
   * (a lease of its own when none is given): TooManyEventsError past the lease's limit alone, RunHoldsTooManyEventsError
   * past it with what the run's other leases hold. A read that throws gives back what it took.
   */
  events(ref: EntityRef, days: readonly string[] | 'all', lease?: EventsLease): Promise<StoredEvent[]>;
  /**
   * A user's (or visitor's) stored events of the given days, or of every day, as `events` gives them, handed to `onDay`
   * a stored day at a time, in the days' order (ingest stores events by the days of the rules' time zone it had then):
   * more than a read may hold at once, read without holding it all. Each day is held in `lease` until `onDay` has had
   * the four days after it, so that what the reader keeps of them is counted: a day of the rules' calendar takes its
   * events from the stored days up to two either side of it (up to 26 hours apart after a change of time zone), and is
   * whole once the two after it are read. TooManyEventsError when what the lease holds passes its limit alone,
   * RunHoldsTooManyEventsError beside what the run's other leases hold.
   */
  eachEventDay(ref: EntityRef, days: readonly string[] | 'all', onDay: (day: string, events: StoredEvent[]) => void, lease?: EventsLease): Promise<void>;
  /** A budget for one run's event reads: what the process may hold of them at once (core/events-budget). */
  eventsBudget(): EventsBudget;
  /** The claims stored on these identities, by identityKey (unclaimed ones are left out). */
  claims(workspace: string, identities: readonly Identity[]): Promise<Map<string, Claim>>;
  /**
   * Stores the claim on its identity unless an earlier claim holds it (core/identity's order); idempotent. Returns
   * the claim that holds the identity afterwards, and the claim it replaced, whose claimant must look again. The
   * held claim's storedAt is `now` when its claimant took the identity from no one or from another user. Replacing a
   * claim of the same user, it stays what it was when `heldBy` (the claimant the caller last saw holding it) names
   * that user, and may be `now` otherwise: a rebuild more for that user, never one less.
   */
  claim(workspace: string, claim: Claim, now: Date, heldBy?: string): Promise<{ held: Claim; replaced?: Claim }>;
  /** Marks an entity changed on these days (seen at `at`), so the next run evaluates it. */
  mark(ref: EntityRef, days: readonly string[], at: Date): Promise<void>;
  /** The stored day rollups of the given days (missing days are left out). */
  dayRollups(ref: EntityRef, days: readonly string[]): Promise<DayRollup[]>;
  /** Each entity's stored day rollups within its ranges, in the order of `entities`. */
  dayRollupsIn(entities: readonly { ref: EntityRef; ranges: readonly DayRange[] }[]): Promise<DayRollup[][]>;
  /** The traits of the workspace's accounts, in the order of `ids`. */
  accountTraits(workspace: string, ids: readonly string[]): Promise<Record<string, unknown>[]>;
  /**
   * An account's members with their stored state (absent for a member never evaluated) and when their next sweep is
   * due, ISO 8601 (absent for none).
   */
  members(ref: EntityRef, read?: MembersRead): Promise<AccountMember[]>;
  /**
   * Writes out the days the state closes, then saves the state (with its open days) and the lead event in one write
   * and schedules the next sweep. Returns false, saving no state, when an overlapping run saved the entity since
   * `entity()`.
   */
  save(ref: EntityRef, update: EntityUpdate, token: unknown): Promise<boolean>;
  /**
   * Has an evaluated entity swept by `at`: its sweep moves there unless it is due by then already (with `postpone`, there
   * all the same: a sweep due now waits). Returns false, changing nothing, when an overlapping run saved the entity
   * since `entity()` (its token); otherwise that run's save fails in turn, as it would after a save, so no run keeps a
   * later sweep in its place.
   */
  sweepBy(ref: EntityRef, at: Date, token: unknown, options?: { postpone?: boolean }): Promise<boolean>;
}
