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
