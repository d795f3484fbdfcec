import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { getAll } from './batch-write';
import type { CapacityTally } from './capacity';
import { markChanged, type ChangeMark } from './change-marker';
import { entityPartitionKey, eventSortKeyPrefix, parseEntityPartitionKey, profileSortKey } from './item-keys';

/**
 * Change capture: the keys of the items written to the table (its stream: the deployed change-capture Lambda reads
 * it, the local runtime polls DynamoDB Local's) become the evaluator's change markers. Ingest used to write a marker
 * per entity per request, a write unit or more per browser event; here one batch of the stream (a minute of
 * traffic, say) marks each changed user once, with every day it touched, and the accounts it belongs to.
 *
 * A marker is written after the events it points at are stored (the stream only carries what was written), so the
 * evaluator never finds a marker without its events. Marking is idempotent: a batch read twice marks twice, which
 * costs a write and changes nothing the evaluator computes.
 */
export interface WrittenKey {
  pk: string;
  sk: string;
  /** When the item was written (the stream record's time): the marker's `dirtySince`, for the evaluator's lag. */
  at: Date;
}

export class DynamoDbChangeCapture {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly dirtyShards: number,
    private readonly capacity?: CapacityTally,
  ) {}

  /** Marks the users and visitors whose events were written, and the users' accounts; returns how many entities. */
  async mark(keys: readonly WrittenKey[]): Promise<number> {
    const marks = new Map<string, ChangeMark & { at: Date }>();
    const add = (pk: string, type: ChangeMark['type'], id: string, days: Iterable<string>, at: Date) => {
      const mark = marks.get(pk) ?? { pk, type, id, days: new Set<string>(), at };
      for (const day of days) (mark.days as Set<string>).add(day);
      if (at < mark.at) mark.at = at;
      marks.set(pk, mark);
    };
    for (const key of keys) {
      if (!key.sk.startsWith(eventSortKeyPrefix)) continue;
      const ref = parseEntityPartitionKey(key.pk);
      if (!ref) continue;
      add(key.pk, ref.type, ref.id, [key.sk.slice(eventSortKeyPrefix.length, eventSortKeyPrefix.length + 10)], key.at);
    }

    // A member's new events can move its accounts (counts, active members): they are marked for the same days. The
    // profile holds the accounts; ingest writes it before the events, so a membership a request adds is seen here.
    const users = [...marks.values()].filter((mark) => mark.type === 'user');
    const profiles = await getAll(
      this.client,
      this.tableName,
      users.map((mark) => ({ pk: { S: mark.pk }, sk: { S: profileSortKey } })),
      { projection: 'pk, accounts', consistent: true, ...(this.capacity ? { capacity: this.capacity } : {}) },
    );
    const accountsOf = new Map(profiles.map((item) => [item['pk']!.S!, item['accounts']?.SS ?? []]));
    for (const user of users) {
      const { workspace } = parseEntityPartitionKey(user.pk)!;
      for (const account of accountsOf.get(user.pk) ?? []) add(entityPartitionKey(workspace, 'account', account), 'account', account, user.days, user.at);
    }

    await Promise.all(
      [...marks.values()].map((mark) => markChanged(this.client, this.tableName, mark, { at: mark.at, shards: this.dirtyShards, ...(this.capacity ? { capacity: this.capacity } : {}) })),
    );
    return marks.size;
  }
}
