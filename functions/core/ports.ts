import type { LeadEvent } from './lead-event';
import type { AcceptedMessage, RejectedMessage } from './ingest';
import type { WriteKeyRecord } from './write-key';

/** Where accepted events go. An implementation resolves only once every message is durably stored. */
export interface EventStore {
  /** Stores the messages under their entities and marks those entities for the evaluator. Idempotent per messageId. */
  save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date): Promise<void>;
  /** Keeps rejected messages of an authenticated request, with their reasons, for an operator to inspect. */
  quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date): Promise<void>;
}

export interface WriteKeyStore {
  find(keyId: string): Promise<WriteKeyRecord | undefined>;
}

/** Where lead events go: the EventBridge bus when deployed; the console, a JSONL file and webhooks locally. */
export interface LeadPublisher {
  /**
   * Delivers the events, at least once each. Resolves with the idempotency keys of the events that could not be
   * delivered after retries, so the caller keeps them for the next attempt; throws only when nothing is known.
   */
  publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }>;
}
