import { QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DeliveryLogEntry } from '../../core/delivery';
import { dayMs } from '../../core/days';
import type { LeadState } from '../../core/lead-state';
import { maxLastEvents, type LeadRecord } from '../../core/lead-view';
import type { StoredMessage } from '../../core/messages';
import type { EntityRef } from '../../core/ports';
import type { RecordedBacktest } from '../../analysis/live-health';
import { recordedBacktest } from './backtest-records';
import { getAll, queryAll, type Item } from './batch-write';
import { DynamoDbDeliveryLedger } from './delivery-ledger';
import { eventMessagesOf } from './event-body';
import { DynamoDbEvaluationStore } from './evaluation-store';
import { DynamoDbWriteKeyStore } from './write-key-store';
import { entityPartitionKey, eventDayOf, eventSortKeyPrefix, parseEntityPartitionKey, stateSortKey, sweepPartition } from './item-keys';
import { stateOf } from './entity-rows';
import { tableDefinition } from './table-definition';

/** Delivery attempts a lead's view lists, newest first. */
const maxDeliveries = 20;
/** Event items read per page while looking for a lead's latest events. */
const eventItemsPerPage = 10;

/**
 * What the lead inspector reads (`pql-radar leads`, the /leads pages): rows in, nothing interpreted (core/lead-view
 * makes the views). Reads only; every unit consumed is in `capacity`.
 */
export class DynamoDbLeadReader {
  private readonly store: DynamoDbEvaluationStore;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly options: { shards: number; deliveryLogDays: number },
  ) {
    this.store = new DynamoDbEvaluationStore({ client, tableName, dirtyShards: options.shards });
  }

  get capacity() {
    return this.store.capacity;
  }

  /**
   * The lead state of every evaluated entity. Every one waits in the sweep partitions of the `dirty` index (a Query
   * per shard, keys only), leads or not, and its tier is inside the (deflated) STATE item: each is read, eventually
   * consistent, half a unit per item under 4 KB. No Scan: events, rollups and profiles are never read.
   */
  async leadStates(): Promise<{ ref: EntityRef; lead: LeadState }[]> {
    const { dirtyIndex } = tableDefinition;
    const keys: Item[] = [];
    for (let shard = 0; shard < this.options.shards; shard++) {
      const indexed = await queryAll(
        this.client,
        {
          TableName: this.tableName,
          IndexName: dirtyIndex.indexName,
          KeyConditionExpression: `${dirtyIndex.partitionKey} = :sweep`,
          ExpressionAttributeValues: { ':sweep': { S: sweepPartition(String(shard)) } },
        },
        { capacity: this.capacity },
      );
      for (const item of indexed) keys.push({ pk: item['pk']!, sk: item['sk']! });
    }
    const states = await getAll(this.client, this.tableName, keys, { capacity: this.capacity });
    return states.flatMap((item) => {
      const ref = parseEntityPartitionKey(item['pk']!.S!);
      const lead = stateOf(item)?.lead;
      return ref && lead ? [{ ref, lead }] : [];
    });
  }

  /** The backtest recorded for a rules version (`pql-radar backtest --record`): rule health's promise. */
  recordedBacktest(rulesVersion: string): Promise<RecordedBacktest | undefined> {
    return recordedBacktest(this.client, this.tableName, rulesVersion);
  }

  /** One entity's rows for its view; undefined when it has no STATE item (never evaluated, or no such entity). */
  async lead(ref: EntityRef, now: Date): Promise<LeadRecord | undefined> {
    const rows = await this.store.entity(ref);
    if (!rows.state) return undefined;
    const [related, messages, deliveries] = await Promise.all([
      ref.type === 'account' ? this.memberTiers(ref) : this.accountTiers(ref.workspace, rows.accounts),
      // Events are stored under users and visitors only: an account's are its members'.
      ref.type === 'account' ? [] : this.latestMessages(ref),
      this.deliveries(ref, now),
    ]);
    return { ref, state: rows.state, traits: rows.traits, related, messages, deliveries };
  }

  /**
   * Where else `ref.id` has been evaluated, for the error a lead never evaluated gets: as each of `types` in the
   * workspaces the write keys name (revoked ones too) and in `ref.workspace`, `ref` itself left out. One Query of the
   * keys and a BatchGetItem of the STATE keys, their own key alone; only on such a miss, so outside `capacity`.
   */
  async evaluatedElsewhere(ref: EntityRef, types: readonly EntityRef['type'][]): Promise<EntityRef[]> {
    const keys = await new DynamoDbWriteKeyStore(this.client, this.tableName).list();
    const workspaces = [...new Set([ref.workspace, ...keys.map((key) => key.workspace)])].sort();
    const others = workspaces
      .flatMap((workspace) => types.map((type): EntityRef => ({ workspace, type, id: ref.id })))
      .filter((other) => other.workspace !== ref.workspace || other.type !== ref.type)
      .map((other) => ({ other, pk: entityPartitionKey(other.workspace, other.type, other.id) }));
    const states = await getAll(this.client, this.tableName, others.map(({ pk }) => ({ pk: { S: pk }, sk: { S: stateSortKey } })), { projection: 'pk' });
    const found = new Set(states.map((item) => item['pk']!.S!));
    return others.filter(({ pk }) => found.has(pk)).map(({ other }) => other);
  }

  private async memberTiers(ref: EntityRef): Promise<LeadRecord['related']> {
    return (await this.store.members(ref)).map((member) => ({ id: member.id, tier: member.state?.lead?.tier ?? null }));
  }

  private async accountTiers(workspace: string, ids: readonly string[]): Promise<LeadRecord['related']> {
    const keys = ids.map((id) => ({ pk: { S: entityPartitionKey(workspace, 'account', id) }, sk: { S: stateSortKey } }));
    const tiers = new Map((await getAll(this.client, this.tableName, keys, { capacity: this.capacity })).map((item) => [item['pk']!.S!, stateOf(item)?.lead?.tier ?? null]));
    return ids.map((id) => ({ id, tier: tiers.get(entityPartitionKey(workspace, 'account', id)) ?? null }));
  }

  /**
   * The messages of the entity's latest days, newest day first, until at least maxLastEvents are in. Event items sort
   * by day, but a day's chunks sort by their hash, not by time: a day is read whole before stopping.
   */
  private async latestMessages(ref: EntityRef): Promise<StoredMessage[]> {
    // Each messageId once (a retried message may sit in two chunks of its day).
    const messages = new Map<string, StoredMessage>();
    let day: string | undefined;
    let startKey: Item | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
          ExpressionAttributeValues: { ':pk': { S: entityPartitionKey(ref.workspace, ref.type, ref.id) }, ':events': { S: eventSortKeyPrefix } },
          ScanIndexForward: false,
          Limit: eventItemsPerPage,
          ExclusiveStartKey: startKey,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('read', page.ConsumedCapacity);
      for (const item of page.Items ?? []) {
        const itemDay = eventDayOf(item['sk']!.S!);
        if (itemDay !== day && messages.size >= maxLastEvents) return [...messages.values()];
        day = itemDay;
        for (const message of eventMessagesOf(item)) if (!messages.has(message.messageId)) messages.set(message.messageId, message);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return [...messages.values()];
  }

  /** The delivery log's attempts for this lead within the log's days (the log is kept per day, filtered by entity id). */
  private async deliveries(ref: EntityRef, now: Date): Promise<DeliveryLogEntry[]> {
    const ledger = new DynamoDbDeliveryLedger(this.client, this.tableName, this.options.deliveryLogDays, this.capacity);
    const entries = await ledger.list({ since: new Date(now.getTime() - this.options.deliveryLogDays * dayMs), until: now, lead: ref.id, limit: 1000 });
    return entries.filter((entry) => entry.workspace === ref.workspace && entry.entity.type === ref.type).slice(0, maxDeliveries);
  }
}
