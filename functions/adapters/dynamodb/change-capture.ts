import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ChangeMark } from '../../core/ports';
import type { CapacityTally } from './capacity';
import { DynamoDbChangeLists } from './change-lists';
import { eventDayOf, eventSortKeyPrefix, feedbackSortKeyPrefix, parseEntityPartitionKey, profileSortKey } from './item-keys';

/**
 * Change capture: the keys of the items written to the table (its stream: the deployed change-capture Lambda reads
 * it, the local runtime polls DynamoDB Local's) become the evaluator's change lists: one list per shard per batch of
 * the stream, an entry per changed user or visitor with every day it touched, and one per account whose profile (its
 * traits) was written. A member's accounts are not listed here: the evaluator evaluates them after the member.
 *
 * An entry is written after the events it points at are stored (the stream only carries what was written), so the
 * evaluator never reads an entry without its events. Capture is idempotent: a batch read twice lists its entities
 * twice, which costs a few bytes and changes nothing the evaluator computes.
 */
export interface WrittenKey {
  pk: string;
  sk: string;
  /** When the item was written (the stream record's time): the entry's `since`, for the evaluator's lag. */
  at: Date;
}

export class DynamoDbChangeCapture {
  private readonly lists: DynamoDbChangeLists;

  constructor(client: DynamoDBClient, tableName: string, dirtyShards: number, options: { settleMs?: number; capacity?: CapacityTally } = {}) {
    this.lists = new DynamoDbChangeLists(client, tableName, { shards: dirtyShards, ...options });
  }

  /** Lists the entities whose events or account traits were written; returns how many entities. */
  async mark(keys: readonly WrittenKey[]): Promise<number> {
    const marks: ChangeMark[] = [];
    for (const key of keys) {
      const ref = parseEntityPartitionKey(key.pk);
      if (!ref) continue;
      const since = key.at.toISOString();
      if (key.sk.startsWith(eventSortKeyPrefix) && ref.type !== 'account') {
        marks.push({ ref, days: [eventDayOf(key.sk)], since });
      } else if (key.sk === profileSortKey && ref.type === 'account') {
        // An account's traits changed (a group call): no days of its own, its figures come from its members.
        marks.push({ ref, days: [], since });
      } else if (key.sk.startsWith(feedbackSortKeyPrefix)) {
        // Sales feedback waits beside the entity: its next evaluation applies it.
        marks.push({ ref, days: [], since });
      }
    }
    return marks.length > 0 ? this.lists.add(marks) : 0;
  }
}
