import type { LeadEvent } from './lead-event';
import type { DayRange, StoredEntityState } from './facts';
import type { Claim, Identity, IdentifiedMessage } from './identity';
import type { DayRollup, UsageEvent } from './rules/engine';
import type { AcceptedMessage, RejectedMessage } from './messages';
import type { WriteKeyRecord } from './write-key';

/** Where accepted events go. An implementation resolves only once every message is durably stored. */
export interface EventStore {
  /**
   * Stores the messages under their entities and marks those entities for the evaluator. Idempotent per messageId.
   * Returns the messages it refused to store (e.g. traits that would outgrow an entity's profile), with the reason.
   */
  save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date): Promise<{ refused: Refusal[] }>;
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

/** Where lead events go: the EventBridge bus when deployed; the console, a JSONL file and webhooks locally. */
export interface LeadPublisher {
  /**
   * Delivers the events, at least once each. Resolves with the idempotency keys of the events that could not be
   * delivered after retries, so the caller keeps them for the next attempt; throws only when nothing is known.
   */
  publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }>;
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
  /** The days with events not evaluated yet (late events included). */
  changedDays: string[];
  /** The entity's own traits (identify calls for a user, group calls for an account). */
  traits: Record<string, unknown>;
  /** A user's accounts; none for an account. */
  accounts: string[];
  /** The claim that merges this user or visitor into a user (core/identity), when one was stored. */
  claim?: Claim;
  /** Opaque to the use case: what `save` needs to notice an overlapping run and to clear the change marker safely. */
  token: unknown;
}

/** A stored event as the evaluator reads it: what the rules measure, and who sent it (for identity claims). */
export type StoredEvent = UsageEvent & IdentifiedMessage;

/** What one evaluation writes. */
export interface EntityUpdate {
  state: StoredEntityState;
  /** Recomputed day rollups, saved in the same write as the state so the lifetime total and the days always agree. */
  days: DayRollup[];
  /** Days rebuilt from every event: idempotent, so the store may write them before the state and in several writes. */
  rebuiltDays: DayRollup[];
  /** The lead event of a transition, saved in the outbox in the same write as the state. */
  event?: LeadEvent;
  /** When a sweep should evaluate the entity again without new events; null for none (it is not a lead). */
  nextSweep: Date | null;
  /**
   * Accounts to mark changed on these days once the state is saved (a member's change can move its accounts); `at`
   * is when the change was seen, for the evaluator's lag.
   */
  markAccounts?: { ids: string[]; days: string[]; at: Date };
}

/**
 * What the evaluator reads and writes: rows in, rows out, no rule logic (core/facts turns the rows into facts).
 * The DynamoDB implementation keeps every read proportional to what the use case asks for.
 */
export interface EvaluationStore {
  /** Lead events saved but not yet published (a crash, or a failed publish), oldest first. */
  pendingLeadEvents(shard: string): Promise<LeadEvent[]>;
  /** Removes delivered events from the outbox. */
  markPublished(shard: string, events: readonly LeadEvent[]): Promise<void>;
  /** The ruleset version the shard last evaluated everyone with, and how far a re-evaluation under a new one got. */
  rulesetProgress(shard: string): Promise<RulesetProgress>;
  saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void>;
  /**
   * When the oldest change of the shard that no run has evaluated yet was made (ISO 8601), or undefined when every
   * change was evaluated: the evaluator's lag.
   */
  oldestChange(shard: string): Promise<string | undefined>;
  /** Candidates of the shard, at most `limit`: changed users before changed accounts, then leads due for a sweep. */
  candidates(shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }): Promise<{ candidates: EvaluationCandidate[]; next?: string }>;
  /** The most changed days one `save` can write with the state; more and the use case rebuilds the entity's days. */
  readonly maxChangedDaysPerSave: number;
  /** The entity's state, change marker, traits and accounts. */
  entity(ref: EntityRef): Promise<EntityRows>;
  /** A user's (or visitor's) stored events of the given days, or all of them. */
  events(ref: EntityRef, days: readonly string[] | 'all'): Promise<StoredEvent[]>;
  /** The claims stored on these identities, by identityKey (unclaimed ones are left out). */
  claims(workspace: string, identities: readonly Identity[]): Promise<Map<string, Claim>>;
  /**
   * Stores the claim on its identity unless an earlier claim holds it (core/identity's order); idempotent. Returns
   * the claim that holds the identity afterwards, and the claim it replaced, whose claimant must look again.
   */
  claim(workspace: string, claim: Claim): Promise<{ held: Claim; replaced?: Claim }>;
  /**
   * Done with a user or visitor that is not evaluated itself (merged into a user, or an anonymous visitor the rules
   * do not evaluate): marks `to` changed on the days given, then clears the entity's change marker unless it changed
   * since `entity()`. A crash between the two leaves the marker, so the next run forwards again.
   */
  forward(ref: EntityRef, token: unknown, to?: { ref: EntityRef; days: readonly string[]; at: Date }): Promise<void>;
  /** Marks an entity changed on these days (seen at `at`), so the next run evaluates it. */
  mark(ref: EntityRef, days: readonly string[], at: Date): Promise<void>;
  /** The stored day rollups of the given days (missing days are left out). */
  dayRollups(ref: EntityRef, days: readonly string[]): Promise<DayRollup[]>;
  /** Each entity's stored day rollups within its ranges, in the order of `entities`. */
  dayRollupsIn(entities: readonly { ref: EntityRef; ranges: readonly DayRange[] }[]): Promise<DayRollup[][]>;
  /** The traits of the workspace's accounts, in the order of `ids`. */
  accountTraits(workspace: string, ids: readonly string[]): Promise<Record<string, unknown>[]>;
  /** An account's members with their stored state (absent for a member never evaluated). */
  members(ref: EntityRef): Promise<{ id: string; state?: StoredEntityState }[]>;
  /**
   * Saves the state, the days and the lead event in one write, clears the change marker unless the entity changed
   * since `entity()`, schedules the next sweep and marks the accounts. Returns false, saving nothing, when an
   * overlapping run saved the entity since `entity()`: the entity stays marked for the next run.
   */
  save(ref: EntityRef, update: EntityUpdate, token: unknown): Promise<boolean>;
  /** Clears the change marker of an entity the rules do not evaluate (accounts, when no rule looks at accounts). */
  dismiss(ref: EntityRef): Promise<void>;
}
