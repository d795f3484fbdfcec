import type { LeadEvent } from './lead-event';
import type { LeadState } from './lead-state';
import type { EntityFacts } from './rules/engine';
import type { Ruleset } from './rules/load';
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
  type: 'user' | 'account';
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

/** What the evaluator reads and writes; the DynamoDB implementation keeps every read proportional to what changed. */
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
  /**
   * Brings the entity's rollups up to date (recomputing only the days that changed, or everything when they were
   * computed under another ruleset) and returns its facts and lead state, with a token that `save` uses to clear
   * the change marker only if nothing changed meanwhile.
   */
  load(ref: EntityRef, ruleset: Ruleset, now: Date): Promise<{ facts: EntityFacts; state?: LeadState; token: unknown }>;
  /**
   * Saves the lead state, and the lead event in the outbox in the same write, clears the change marker unless
   * the entity changed meanwhile, schedules the next sweep, and marks a user's accounts as changed. Returns false,
   * saving nothing, when an overlapping run saved the entity since `load`: the entity stays marked for the next run.
   */
  save(ref: EntityRef, state: LeadState, event: LeadEvent | undefined, token: unknown, nextSweep: Date | null): Promise<boolean>;
  /** Clears the change marker of an entity the rules do not evaluate (accounts, when no rule looks at accounts). */
  dismiss(ref: EntityRef): Promise<void>;
}
