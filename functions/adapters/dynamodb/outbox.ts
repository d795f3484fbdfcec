import { PutItemCommand, UpdateItemCommand, type DynamoDBClient, type UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { forEachConcurrently } from '../../core/concurrency';
import type { LeadEvent } from '../../core/lead-event';
import { evaluatorTimeoutMinutes } from '../../shared/settings';
import { deleteAll, getAll, queryAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { compressedJson, compressedJsonOf, type CompressedJsonAttributes } from './compressed-json';
import { conditionFailed } from './condition-failed';
import { stateOf } from './entity-rows';
import { outboxPartitionKey, outboxSortKey, stateSortKey } from './item-keys';

/** The save an outbox item waits for: the STATE item its transition goes into, and the revision that save writes. */
export interface OutboxSave {
  statePk: string;
  revision: number;
}

/**
 * Lead events not yet published, one partition per shard. A save puts its transition's event here just before the
 * conditional put of the state that causes it, not in a transaction with it: a transaction bills every write twice
 * (and DynamoDB Local bills the index key the state moves twice too), on every transition. So an item may belong to a
 * save that has not happened yet, or that never will (an overlapping run saved first, or the run died between the
 * two writes). `pending` tells them apart by the entity's state; a run publishes what it finds and deletes what was
 * delivered. A save that fails its condition leaves its item to `pending` too, rather than deleting it: an overlapping
 * run evaluating at the same millisecond puts the same item, and would delete the winner's.
 *
 * Runs overlap on an outbox (every shard's scheduled run, a run publishing another shard's outbox for an account it
 * judged, the stream's evaluations): each publishes only the events it `claim`s, so that two runs never publish the same
 * event, which e-mail subscribers and SQS targets would each get twice.
 */
export class DynamoDbOutbox {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly capacity: CapacityTally,
  ) {}

  /** Puts the event of a save about to be made. */
  async put(shard: string, event: LeadEvent, save: OutboxSave): Promise<void> {
    const { ConsumedCapacity } = await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: outboxItem(shard, event, save), ReturnConsumedCapacity: 'TOTAL' }));
    this.capacity.add('write', ConsumedCapacity);
  }

  /**
   * The events whose state was saved, oldest first, less those another run has claimed. An event whose save is still
   * to come is left for a later run; one whose save can no longer come (its revision taken by another save, or older
   * than a run can last) is deleted.
   */
  async pending(shard: string, now: Date): Promise<LeadEvent[]> {
    const claimedBefore = now.toISOString();
    const items = (await queryAll(
      this.client,
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: outboxPartitionKey(shard) } }, ConsistentRead: true },
      { capacity: this.capacity },
    )).filter((item) => (item[saveAttributes.claimedUntil]?.S ?? claimedBefore) <= claimedBefore);
    const unsettled = new Set(items.filter((item) => item[saveAttributes.statePk] !== undefined && item[saveAttributes.confirmed] === undefined));
    const states = await this.statesOf([...unsettled]);
    const committed: LeadEvent[] = [];
    const dead: Item[] = [];
    for (const item of items) {
      const event = JSON.parse(compressedJsonOf(item, eventAttributes)!) as LeadEvent;
      const verdict = unsettled.has(item) ? saveVerdict(item, event, states.get(item[saveAttributes.statePk]!.S!), now) : 'saved';
      if (verdict === 'saved') committed.push(event);
      else if (verdict === 'never') dead.push({ pk: item['pk']!, sk: item['sk']! });
    }
    await deleteAll(this.client, this.tableName, dead, { capacity: this.capacity });
    return committed;
  }

  /**
   * Claims the events for this run's publish, until longer than the run can last: those another run claimed or
   * published meanwhile are left out. A run that dies holding a claim delays its events until the claim ends.
   */
  async claim(shard: string, events: readonly LeadEvent[], now: Date): Promise<LeadEvent[]> {
    const claimed = new Set<LeadEvent>();
    const until = new Date(now.getTime() + outboxGraceMs).toISOString();
    await forEachConcurrently(events, claimConcurrency, async (event) => {
      const taken = await this.#update(shard, event, {
        UpdateExpression: 'SET #claimedUntil = :until',
        ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#claimedUntil) OR #claimedUntil <= :now)',
        ExpressionAttributeNames: { '#claimedUntil': saveAttributes.claimedUntil },
        ExpressionAttributeValues: { ':until': { S: until }, ':now': { S: now.toISOString() } },
      });
      if (taken) claimed.add(event);
    });
    return events.filter((event) => claimed.has(event));
  }

  async markPublished(shard: string, events: readonly LeadEvent[]): Promise<void> {
    await deleteAll(this.client, this.tableName, events.map((event) => outboxKey(shard, event)), { capacity: this.capacity });
  }

  /**
   * Marks events whose publish failed as saved, so that they wait for as long as the bus is down whatever becomes of
   * their entity's state meanwhile (its history keeps the last 20 transitions only), and lets go of their claim, so
   * that the next run tries again. Only items still there.
   */
  async markUndelivered(shard: string, events: readonly LeadEvent[]): Promise<void> {
    for (const event of events) {
      // Its condition fails when an overlapping run published it meanwhile.
      await this.#update(shard, event, {
        UpdateExpression: 'SET #confirmed = :true REMOVE #claimedUntil',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#confirmed': saveAttributes.confirmed, '#claimedUntil': saveAttributes.claimedUntil },
        ExpressionAttributeValues: { ':true': { BOOL: true } },
      });
    }
  }

  /** A conditional update of an event's outbox item: false when its condition fails, as another run got there first. */
  async #update(shard: string, event: LeadEvent, update: Pick<UpdateItemCommandInput, 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>): Promise<boolean> {
    try {
      const { ConsumedCapacity } = await this.client.send(new UpdateItemCommand({ TableName: this.tableName, Key: outboxKey(shard, event), ...update, ReturnConsumedCapacity: 'TOTAL' }));
      this.capacity.add('write', ConsumedCapacity);
      return true;
    } catch (error) {
      if (!conditionFailed(error)) throw error;
      return false;
    }
  }

  /** The STATE items of the saves these outbox items wait for, by partition key. */
  private async statesOf(items: readonly Item[]): Promise<Map<string, Item>> {
    const statePks = [...new Set(items.map((item) => item[saveAttributes.statePk]!.S!))];
    const found = await getAll(this.client, this.tableName, statePks.map((pk) => ({ pk: { S: pk }, sk: { S: stateSortKey } })), { consistent: true, capacity: this.capacity });
    return new Map(found.map((item) => [item['pk']!.S!, item]));
  }
}

/**
 * Longer than a run can last, with room for a write in flight when it ended: an item whose save has not come by then
 * never will. Twice the evaluator's timeout.
 */
export const outboxGraceMs = 2 * evaluatorTimeoutMinutes * 60_000;

/**
 * Whether the save an outbox item waits for was made: its transition is in the state's history (every transition
 * leaves an entry at the time of the evaluation that made it, which is its event's evaluatedAt); or can no longer be
 * made: the revision it would have written is taken, or the item is older than a run can last; or may yet come.
 */
function saveVerdict(item: Item, event: LeadEvent, stateItem: Item | undefined, now: Date): 'saved' | 'never' | 'awaited' {
  const lead = stateOf(stateItem)?.lead;
  if (lead?.history.some((entry) => entry.at === event.detail.evaluatedAt)) return 'saved';
  const revision = Number(stateItem?.['revision']?.N ?? 0);
  if (revision >= Number(item[saveAttributes.revision]!.N)) return 'never';
  return now.getTime() - Date.parse(event.detail.evaluatedAt) > outboxGraceMs ? 'never' : 'awaited';
}

const outboxKey = (shard: string, event: LeadEvent): Item => ({ pk: { S: outboxPartitionKey(shard) }, sk: { S: outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey) } });

/**
 * A lead event with its context is 1-3 KB of JSON: deflated, the outbox item is a write unit or two smaller, on every
 * transition.
 */
const eventAttributes: CompressedJsonAttributes = { text: 'event', deflated: 'eventDeflated' };

/**
 * The save an item waits for, `confirmed` once its publish failed after the save, and till when a run publishing it
 * holds it (ISO time). Items without `statePk` were written by earlier versions in one transaction with their state:
 * saved.
 */
const saveAttributes = { statePk: 'statePk', revision: 'revision', confirmed: 'confirmed', claimedUntil: 'claimedUntil' } as const;

/** Claims in flight at once: a run's handful of events, or a backlog after an outage of the bus. */
const claimConcurrency = 8;

/** The outbox item of a lead event, put just before the save of the state that causes it. */
export const outboxItem = (shard: string, event: LeadEvent, save: OutboxSave): Item => ({
  ...outboxKey(shard, event),
  ...compressedJson(JSON.stringify(event), eventAttributes),
  [saveAttributes.statePk]: { S: save.statePk },
  [saveAttributes.revision]: { N: String(save.revision) },
});
