import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DeleteItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { ChangeMark } from '../../core/ports';
import { deleteAll, getAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { changeListPartitionKey, changeListSortKey, changedPartition, changesSortKey, entityPartitionKey, parseEntityPartitionKey, shardOf } from './item-keys';
import { tableDefinition } from './table-definition';

/**
 * The evaluator's to-do lists: which entities changed, on which days, one item per shard for many entities. Change
 * capture writes one per shard per stream batch, the evaluator one per page for what it leaves (and the accounts it
 * could not reach); the evaluator deletes a list once every entity in it is evaluated. A list never loses a change:
 * one written while a run works is not among the lists that run read, so it is not deleted and the next run sees it.
 *
 * Why lists rather than a marker item per entity: a marker costs a write and an index write when set and the same
 * again when cleared, about four write units per evaluation; an entry in a list is ~40 bytes, a few hundredths of
 * one, and lists are read eventually consistent (a list not visible yet waits for the next run).
 */
export class DynamoDbChangeLists {
  /** Shards found without an earlier version's markers: none can appear later (nothing writes them any more). */
  private readonly withoutMarkers = new Set<string>();

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly options: { shards: number; capacity?: CapacityTally },
  ) {}

  /** Writes the marks, one list per shard (several for a very long one); `run` names the evaluator run that left them. */
  async add(marks: readonly ChangeMark[], run?: string): Promise<void> {
    const byShard = new Map<string, ChangeMark[]>();
    for (const mark of merged(marks)) {
      const shard = shardOf(entityPartitionKey(mark.ref.workspace, mark.ref.type, mark.ref.id), this.options.shards);
      byShard.set(shard, [...(byShard.get(shard) ?? []), mark]);
    }
    const writes: Promise<void>[] = [];
    for (const [shard, shardMarks] of byShard) {
      for (let start = 0; start < shardMarks.length; start += entriesPerList) writes.push(this.put(shard, shardMarks.slice(start, start + entriesPerList), run));
    }
    await Promise.all(writes);
  }

  /**
   * Lists of the shard, oldest change first, from `after` on, until they hold at least `limit` entries (or none is
   * left), except those the run `skipRun` left: their entries merged by entity, the keys to delete once they are
   * done, and where the next page starts.
   */
  async read(shard: string, page: { skipRun: string; limit: number; after?: Record<string, AttributeValue> }): Promise<{ marks: ChangeMark[]; keys: Item[]; next?: Record<string, AttributeValue> }> {
    const marks: ChangeMark[] = [];
    const keys: Item[] = [];
    let next = page.after;
    do {
      const output = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'attribute_not_exists(#run) OR #run <> :run',
          ExpressionAttributeNames: { '#run': 'run' },
          ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey(shard) }, ':run': { S: page.skipRun } },
          Limit: listsPerQuery,
          ExclusiveStartKey: next,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.options.capacity?.add('read', output.ConsumedCapacity);
      for (const item of output.Items ?? []) {
        keys.push({ pk: item['pk']!, sk: item['sk']! });
        marks.push(...decode(item['entries']!.B!));
      }
      next = output.LastEvaluatedKey;
    } while (next !== undefined && marks.length < page.limit);
    return { marks: merged(marks), keys, ...(next !== undefined ? { next } : {}) };
  }

  /** Deletes lists whose entities are all done. */
  async remove(keys: readonly Item[]): Promise<void> {
    await deleteAll(this.client, this.tableName, keys, this.options.capacity ? { capacity: this.options.capacity } : {});
  }

  /** When the oldest change still listed in the shard was made (ISO 8601), or undefined when none is. */
  async oldest(shard: string): Promise<string | undefined> {
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey(shard) } },
        ProjectionExpression: 'sk',
        Limit: 1,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.options.capacity?.add('read', page.ConsumedCapacity);
    return page.Items?.[0]?.['sk']?.S?.split('#')[0];
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
        if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
      }
    }
    return adopted.length;
  }

  private async put(shard: string, marks: readonly ChangeMark[], run: string | undefined): Promise<void> {
    const since = marks.reduce((oldest, mark) => (mark.since < oldest ? mark.since : oldest), marks[0]!.since);
    const output = await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          pk: { S: changeListPartitionKey(shard) },
          // The oldest change first: lists sort by it, so the lag is the first list's, and a unique tail, so lists
          // written at the same moment never overwrite each other.
          sk: { S: changeListSortKey(since, randomBytes(6).toString('hex')) },
          entries: { B: encode(marks) },
          ...(run !== undefined ? { run: { S: run } } : {}),
          // A safety net only: a shard no evaluator reads any more (fewer shards) does not keep its lists forever.
          expiresAt: { N: String(Math.floor(Date.now() / 1000) + abandonedListSeconds) },
        },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.options.capacity?.add('write', output.ConsumedCapacity);
  }
}

/** Entities per list item: ~40 bytes each before compression keeps an item far below DynamoDB's 400 KB. */
const entriesPerList = 2_000;
/** Far longer than any evaluator outage worth recovering from; a rules change re-evaluates everyone anyway. */
const abandonedListSeconds = 90 * 86_400;
/** Lists per Query page. */
const listsPerQuery = 25;

/** One mark per entity: the union of its days, the oldest `since`. */
export function merged(marks: readonly ChangeMark[]): ChangeMark[] {
  const byEntity = new Map<string, ChangeMark>();
  for (const mark of marks) {
    const key = `${mark.ref.workspace}\n${mark.ref.type}\n${mark.ref.id}`;
    const seen = byEntity.get(key);
    byEntity.set(
      key,
      seen ? { ref: seen.ref, days: [...new Set([...seen.days, ...mark.days])].sort(), since: mark.since < seen.since ? mark.since : seen.since } : { ...mark, days: [...new Set(mark.days)].sort() },
    );
  }
  return [...byEntity.values()];
}

/** A list's entries as deflated JSON rows `[workspace, type, id, since, ...days]`. */
function encode(marks: readonly ChangeMark[]): Uint8Array {
  return deflateRawSync(JSON.stringify(marks.map((mark) => [mark.ref.workspace, mark.ref.type, mark.ref.id, mark.since, ...mark.days])));
}

function decode(bytes: Uint8Array): ChangeMark[] {
  const rows = JSON.parse(inflateRawSync(bytes).toString('utf8')) as [string, ChangeMark['ref']['type'], string, string, ...string[]][];
  return rows.map(([workspace, type, id, since, ...days]) => ({ ref: { workspace, type, id }, days, since }));
}
