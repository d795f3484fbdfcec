import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ChangeMark } from '../../core/ports';
import type { CapacityTally } from './capacity';
import { DynamoDbChangeLists } from './change-lists';
import { eventDayOf, eventSortKeyPrefix, feedbackSortKeyPrefix, parseEntityPartitionKey, profileSortKey } from './item-keys';

/**
 * Change capture: the keys of the items written to the table (its stream: the deployed evaluator reads it, the local
 * runtime polls DynamoDB Local's) become changes for the evaluator: an entry per changed user or visitor with every day
 * it touched, and one per account whose profile (its traits) was written. A member's accounts are not listed here: the
 * evaluator evaluates them after the member.
 *
 * A change is seen after the events it points at are stored (the stream only carries what was written), so the
 * evaluator never reads a change without its events. Capture is idempotent: a batch read twice yields its entities
 * twice, which changes nothing the evaluator computes.
 */
export interface WrittenKey {
  pk: string;
  sk: string;
  /** When the item was written (the stream record's time): the entry's `since`, for the evaluator's lag. */
  at: Date;
}

/**
 * Whether a write of an item with this sort key reaches the evaluator: events, profiles (an account's traits; a user's
 * comes with its events) and sales feedback. lib/change-capture.ts filters the stream on the same keys.
 */
export const reachesEvaluator = (sk: string): boolean => sk.startsWith(eventSortKeyPrefix) || sk === profileSortKey || sk.startsWith(feedbackSortKeyPrefix);

/** The changes the written keys make: events of users and visitors, accounts' traits, sales feedback. */
export function changeMarks(keys: readonly WrittenKey[]): ChangeMark[] {
  const marks: ChangeMark[] = [];
  for (const key of keys) {
    const ref = parseEntityPartitionKey(key.pk);
    if (!ref) continue;
    const since = key.at.toISOString();
    if (key.sk.startsWith(eventSortKeyPrefix) && ref.type !== 'account') {
      marks.push({ ref, days: [eventDayOf(key.sk)], since });
    } else if (key.sk === profileSortKey && ref.type === 'account') {
      // An account's traits changed (a group call): no days of its own, its figures come from its members.
      marks.push({ ref, days: [], since, traitsChanged: true });
    } else if (key.sk.startsWith(feedbackSortKeyPrefix)) {
      // Sales feedback waits beside the entity: its next evaluation applies it.
      marks.push({ ref, days: [], since });
    }
  }
  return marks;
}

/**
 * Change capture into change lists, for a later evaluator run: one list per shard per batch of the stream. The
 * evaluator's tests and tools that evaluate in a separate step use it; deployed and in `npm start`, the evaluator
 * evaluates a batch's changes as it reads them (core/evaluate-leads evaluateChanges) and lists only what it leaves.
 */
export class DynamoDbChangeCapture {
  private readonly lists: DynamoDbChangeLists;

  constructor(client: DynamoDBClient, tableName: string, dirtyShards: number, options: { settleMs?: number; capacity?: CapacityTally } = {}) {
    this.lists = new DynamoDbChangeLists(client, tableName, { shards: dirtyShards, ...options });
  }

  /** Lists the entities whose events or account traits were written; returns how many entities. */
  async mark(keys: readonly WrittenKey[]): Promise<number> {
    const marks = changeMarks(keys);
    return marks.length > 0 ? this.lists.add(marks) : 0;
  }
}
