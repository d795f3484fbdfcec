import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mergeMarks } from '../../core/changes';
import type { ChangeMark } from '../../core/ports';
import { getAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { changeCursorSortKey, changeListPartitionKey, changeListSortKey, changedPartition, changesSortKey, entityPartitionKey, metaPartitionKey, parseEntityPartitionKey, shardOf } from './item-keys';
import { tableDefinition } from './table-definition';
import { conditionFailed } from './condition-failed';

/**
 * The evaluator's to-do lists: which entities changed, on which days, one item per shard for many entities. Change
 * capture writes one per shard per stream batch, the evaluator one per page for what it leaves (and for the owners of
 * forwarded identities). Lists sort by the time they were written; each shard has a cursor, the last list evaluated,
 * which a run moves past the lists it has evaluated. Nothing is deleted (a delete bills a write as large as the item):
 * lists expire by TTL, which is free.
 *
 * A list written while a run works is never skipped: a run reads only lists written before its start minus
 * `settleMs`, and every list write either completes within `settleMs` of the time in its key or fails (its writer
 * then retries with a new list: change capture's batch is retried, an evaluator run that fails leaves its cursor).
 *
 * Why lists rather than a marker item per entity: a marker costs a write and an index write when set and the same
 * again when cleared, about four write units per evaluation; an entry in a list is ~40 bytes, a few hundredths of one.
 */
export class DynamoDbChangeLists {
  /** Shards found without an earlier version's markers: none can appear later (nothing writes them any more). */
  private readonly withoutMarkers = new Set<string>();

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly options: {
      shards: number;
      /**
       * The longest a list write may take: a write not done by then is abandoned (and retried as a new list by its
       * writer), and a run leaves the lists written in this last stretch to the next run. 0 where lists are written
       * and evaluated in turn by one process (the local runtime, the tests). @default 0
       */
      settleMs?: number;
      capacity?: CapacityTally;
    },
  ) {}

  /** Writes the marks, one list per shard (several for a very long one); returns how many entities they name. */
  async add(marks: readonly ChangeMark[]): Promise<number> {
    const entities = mergeMarks(marks);
    const byShard = new Map<string, ChangeMark[]>();
    for (const mark of entities) {
      const shard = shardOf(entityPartitionKey(mark.ref.workspace, mark.ref.type, mark.ref.id), this.options.shards);
      byShard.set(shard, [...(byShard.get(shard) ?? []), mark]);
    }
    const writes: Promise<void>[] = [];
    for (const [shard, shardMarks] of byShard) {
      for (let start = 0; start < shardMarks.length; start += entriesPerList) writes.push(this.put(shard, shardMarks.slice(start, start + entriesPerList)));
    }
    await Promise.all(writes);
    return entities.length;
  }

  /** The newest list a run may read now: one written `settleMs` ago or earlier. */
  readableUpTo(): string {
    // '~' sorts after every list written in that millisecond ('#' and the unique tail).
    return `${new Date(Date.now() - (this.options.settleMs ?? 0)).toISOString()}~`;
  }

  /** The last list of the shard a run evaluated (undefined before the first). A stale read only repeats work. */
  async cursor(shard: string): Promise<string | undefined> {
    const { Item, ConsumedCapacity } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: cursorKey(shard), ReturnConsumedCapacity: 'TOTAL' }));
    this.options.capacity?.add('read', ConsumedCapacity);
    return Item?.['upTo']?.S;
  }

  /**
   * The shard's lists after `after` and up to `upTo`, in the order written, until they hold at least `limit` entries:
   * their entries merged by entity, and the last list read (undefined when none was left).
   */
  async read(shard: string, page: { after: string | undefined; upTo: string; limit: number }): Promise<{ marks: ChangeMark[]; last?: string }> {
    const marks: ChangeMark[] = [];
    let last = page.after;
    let more = true;
    while (more && marks.length < page.limit) {
      const output = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk <= :upTo',
          ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey(shard) }, ':upTo': { S: page.upTo } },
          ...(last !== undefined ? { ExclusiveStartKey: { pk: { S: changeListPartitionKey(shard) }, sk: { S: last } } } : {}),
          // Strongly consistent: a list whose write completed must be seen, or the cursor would pass it.
          ConsistentRead: true,
          Limit: listsPerQuery,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.options.capacity?.add('read', output.ConsumedCapacity);
      for (const item of output.Items ?? []) {
        marks.push(...decode(item['entries']!.B!, item['waits']?.B, item['traits']?.B));
        last = item['sk']!.S!;
      }
      more = output.LastEvaluatedKey !== undefined;
    }
    return { marks: mergeMarks(marks), ...(last !== page.after && last !== undefined ? { last } : {}) };
  }

  /** Moves the shard's cursor to `upTo`, never back (an overlapping run may have moved it further). */
  async advance(shard: string, upTo: string): Promise<void> {
    try {
      const output = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: cursorKey(shard),
          UpdateExpression: 'SET upTo = :upTo',
          ConditionExpression: 'attribute_not_exists(upTo) OR upTo < :upTo',
          ExpressionAttributeValues: { ':upTo': { S: upTo } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.options.capacity?.add('write', output.ConsumedCapacity);
    } catch (error) {
      if (!conditionFailed(error)) throw error;
    }
  }

  /** When the oldest change not evaluated yet in the shard was made (ISO 8601), or undefined when none is left. */
  async oldest(shard: string): Promise<string | undefined> {
    const after = await this.cursor(shard);
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey(shard) } },
        ...(after !== undefined ? { ExclusiveStartKey: { pk: { S: changeListPartitionKey(shard) }, sk: { S: after } } } : {}),
        ProjectionExpression: 'since',
        Limit: 1,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.options.capacity?.add('read', page.ConsumedCapacity);
    return page.Items?.[0]?.['since']?.S;
  }

  /**
   * Moves the change markers an earlier version wrote (one `CHANGES` item per entity, in the `dirty` index under the
   * shard's number) into a list, at most `limit` a call: a deployment upgraded with changes not yet evaluated keeps
   * them. A marker is deleted only if unchanged since it was read, as that version's evaluator did.
   */
  async adoptMarkers(shard: string, limit = 100): Promise<number> {
    if (this.withoutMarkers.has(shard)) return 0;
    const { dirtyIndex } = tableDefinition;
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: dirtyIndex.indexName,
        KeyConditionExpression: `${dirtyIndex.partitionKey} = :shard`,
        ExpressionAttributeValues: { ':shard': { S: changedPartition(shard) } },
        Limit: limit,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.options.capacity?.add('read', page.ConsumedCapacity);
    const keys = (page.Items ?? []).map((item) => ({ pk: item['pk']!, sk: { S: changesSortKey } }));
    if (keys.length === 0) {
      this.withoutMarkers.add(shard);
      return 0;
    }
    const markers = await getAll(this.client, this.tableName, keys, { consistent: true, ...(this.options.capacity ? { capacity: this.options.capacity } : {}) });
    const adopted = markers.flatMap((marker) => {
      const ref = parseEntityPartitionKey(marker['pk']!.S!);
      return ref ? [{ marker, mark: { ref, days: marker['days']?.SS ?? [], since: marker[dirtyIndex.sortKey]?.S ?? new Date().toISOString() } }] : [];
    });
    await this.add(adopted.map(({ mark }) => mark));
    for (const { marker } of adopted) {
      try {
        const output = await this.client.send(
          new DeleteItemCommand({
            TableName: this.tableName,
            Key: { pk: marker['pk']!, sk: marker['sk']! },
            ConditionExpression: 'version = :version',
            ExpressionAttributeValues: { ':version': marker['version'] ?? { N: '0' } },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.options.capacity?.add('write', output.ConsumedCapacity);
      } catch (error) {
        // Marked again meanwhile: the marker stays, and the next call adopts it again.
        if (!conditionFailed(error)) throw error;
      }
    }
    return adopted.length;
  }

  private async put(shard: string, marks: readonly ChangeMark[]): Promise<void> {
    const since = marks.reduce((oldest, mark) => (mark.since < oldest ? mark.since : oldest), marks[0]!.since);
    const writtenAt = Date.now();
    const output = await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          pk: { S: changeListPartitionKey(shard) },
          // The time of writing, and a unique tail so lists written at the same moment never overwrite each other.
          sk: { S: changeListSortKey(new Date(writtenAt).toISOString(), randomBytes(6).toString('hex')) },
          since: { S: since },
          ...encode(marks),
          // Long after any run has read it; a shard no evaluator reads any more (fewer shards) does not keep its lists.
          expiresAt: { N: String(Math.floor(writtenAt / 1000) + listLifetimeSeconds) },
        },
        ReturnConsumedCapacity: 'TOTAL',
      }),
      // Done within settleMs of the time in its key, or abandoned: a run may read past that time.
      ...(this.options.settleMs ? [{ abortSignal: AbortSignal.timeout(this.options.settleMs / 2) }] : []),
    );
    this.options.capacity?.add('write', output.ConsumedCapacity);
  }
}

/** Entities per list item: ~40 bytes each before compression keeps an item far below DynamoDB's 400 KB. */
const entriesPerList = 2_000;

const cursorKey = (shard: string): Item => ({ pk: { S: metaPartitionKey }, sk: { S: changeCursorSortKey(shard) } });
/** Two weeks: far longer than an evaluator outage should last (the lag alarm fires after minutes). */
const listLifetimeSeconds = 14 * 86_400;
/** Lists per Query page. */
const listsPerQuery = 25;

/**
 * A list's entries as deflated JSON rows `[workspace, type, id, since, ...days]`; apart, the entries that wait (their
 * notBefore) as deflated JSON pairs `[row, notBefore]` in `waits`, and the accounts whose traits changed as deflated
 * JSON rows in `traits`, written whenever the list has an account. A version that knows neither reads the entries as
 * before (it evaluates waiting changes at once, and judges every listed account's members again), so a rollback needs
 * nothing; a list of an earlier version, with accounts and no `traits`, has every account's traits changed.
 */
function encode(marks: readonly ChangeMark[]): { entries: AttributeValue; waits?: AttributeValue; traits?: AttributeValue } {
  const entries = { B: deflateRawSync(JSON.stringify(marks.map((mark) => [mark.ref.workspace, mark.ref.type, mark.ref.id, mark.since, ...mark.days]))) };
  const waits = marks.flatMap((mark, row) => (mark.notBefore !== undefined ? [[row, mark.notBefore]] : []));
  const traits = marks.flatMap((mark, row) => (mark.traitsChanged ? [row] : []));
  return {
    entries,
    ...(waits.length > 0 ? { waits: { B: deflateRawSync(JSON.stringify(waits)) } } : {}),
    ...(marks.some((mark) => mark.ref.type === 'account') ? { traits: { B: deflateRawSync(JSON.stringify(traits)) } } : {}),
  };
}

function decode(entries: Uint8Array, waits: Uint8Array | undefined, traits: Uint8Array | undefined): ChangeMark[] {
  const rows = JSON.parse(inflateRawSync(entries).toString('utf8')) as [string, ChangeMark['ref']['type'], string, string, ...string[]][];
  const marks = rows.map(([workspace, type, id, since, ...days]): ChangeMark => ({ ref: { workspace, type, id }, days, since }));
  if (waits !== undefined) for (const [row, notBefore] of JSON.parse(inflateRawSync(waits).toString('utf8')) as [number, string][]) marks[row]!.notBefore = notBefore;
  const changedTraits = traits !== undefined ? (JSON.parse(inflateRawSync(traits).toString('utf8')) as number[]) : marks.flatMap((mark, row) => (mark.ref.type === 'account' ? [row] : []));
  for (const row of changedTraits) marks[row]!.traitsChanged = true;
  return marks;
}
