import { GetItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DeliveryLedger, DeliveryLogEntry, KeyProgress } from '../../core/delivery';
import { addDays, dayMs, dayOf } from '../../core/days';
import type { LeadEvent } from '../../core/lead-event';
import { putAll, queryAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { appliedSortKey, deliveredKeySortKey, deliveredPartitionKey, deliveryLogPartitionKey, deliveryLogSortKey } from './item-keys';

/** On an idempotency key's item while the destination has not taken it: the attempts at it that failed. */
const failedAttemptsAttribute = 'failedAttempts';

/**
 * The delivery log and what each destination took, in the table: one item per attempt under the day's partition
 * (`deliveries list` reads days newest first), one per idempotency key a destination took or failed to take (with the
 * attempts that failed, until it takes it), and for a CRM one per lead with the time of the last transition applied.
 * All expire after `logDays`, so a replay older than that is delivered again: keep archive replays within the log's
 * days, or say so when you replay.
 */
export class DynamoDbDeliveryLedger implements DeliveryLedger {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly logDays: number,
    /** Adds up the units the ledger consumes, for the delivery bench. @default none */
    private readonly capacity?: CapacityTally,
  ) {}

  async progress(destination: string, idempotencyKey: string): Promise<KeyProgress> {
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: deliveredPartitionKey(destination) }, sk: { S: deliveredKeySortKey(idempotencyKey) } },
        // A redelivery can follow the delivery within a second: an eventually consistent read could miss it.
        ConsistentRead: true,
        ProjectionExpression: `pk, ${failedAttemptsAttribute}`,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity?.add('read', ConsumedCapacity);
    if (Item === undefined) return { delivered: false, failedAttempts: 0 };
    const failed = Item[failedAttemptsAttribute]?.N;
    // The key's item is the record of its delivery, unless it counts failed attempts only: a delivery writes it again
    // without them.
    return failed === undefined ? { delivered: true, failedAttempts: 0 } : { delivered: false, failedAttempts: Number(failed) };
  }

  async lastApplied(destination: string, event: LeadEvent): Promise<string | undefined> {
    const { workspace, entity } = event.detail;
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: deliveredPartitionKey(destination) }, sk: { S: appliedSortKey(workspace, entity.type, entity.id) } },
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity?.add('read', ConsumedCapacity);
    return Item?.['appliedAt']?.S;
  }

  async record(entry: DeliveryLogEntry, event: LeadEvent, skipsSuperseded = false): Promise<void> {
    const expiresAt = { N: String(Math.floor((Date.parse(entry.at) + this.logDays * dayMs) / 1000)) };
    const items: Item[] = [
      {
        pk: { S: deliveryLogPartitionKey(dayOf(entry.at)) },
        sk: { S: deliveryLogSortKey(entry.at, entry.destination, entry.idempotencyKey, entry.attempt, entry.outcome) },
        entry: { S: JSON.stringify(entry) },
        entityId: { S: entry.entity.id },
        outcome: { S: entry.outcome },
        expiresAt,
      },
    ];
    const destination = { S: deliveredPartitionKey(entry.destination) };
    const keyItem = { pk: destination, sk: { S: deliveredKeySortKey(entry.idempotencyKey) }, expiresAt };
    // One delivery at a time per destination (its FIFO group, or the local worker), so no attempt at the key runs
    // meanwhile: a plain put keeps the count, in the log's write.
    if (entry.outcome === 'retryable' || entry.outcome === 'permanent') items.push({ ...keyItem, [failedAttemptsAttribute]: { N: String(entry.attempt) } });
    if (entry.outcome === 'delivered') {
      items.push(keyItem);
      // Only real transitions move a CRM's record of what it holds; a test lead never does.
      if (skipsSuperseded && !entry.test) {
        const { workspace, entity, evaluatedAt } = event.detail;
        items.push({ pk: destination, sk: { S: appliedSortKey(workspace, entity.type, entity.id) }, appliedAt: { S: evaluatedAt }, expiresAt });
      }
    }
    await putAll(this.client, this.tableName, items, this.capacity ? { capacity: this.capacity } : {});
  }

  /**
   * Attempts logged from `since` to `until`, newest first, at most `limit`: of one lead only (its entity id), or only
   * the failed ones (an attempt that did not deliver).
   */
  async list(options: { since: Date; until: Date; lead?: string; failed?: boolean; limit: number }): Promise<DeliveryLogEntry[]> {
    const entries: DeliveryLogEntry[] = [];
    const filters: string[] = [];
    const values: Record<string, AttributeValue> = {};
    if (options.lead !== undefined) {
      filters.push('entityId = :lead');
      values[':lead'] = { S: options.lead };
    }
    if (options.failed) {
      filters.push('outcome IN (:retryable, :permanent)');
      values[':retryable'] = { S: 'retryable' };
      values[':permanent'] = { S: 'permanent' };
    }
    for (let day = dayOf(options.until); day >= dayOf(options.since) && entries.length < options.limit; day = addDays(day, -1)) {
      const items = await queryAll(
        this.client,
        {
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': { S: deliveryLogPartitionKey(day) },
            ':from': { S: options.since.toISOString() },
            // Sort keys start with the attempt's time: every key of that millisecond sorts below this.
            ':to': { S: `${options.until.toISOString()}~` },
            ...values,
          },
          ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
          ScanIndexForward: false,
        },
        { limit: options.limit - entries.length, ...(this.capacity ? { capacity: this.capacity } : {}) },
      );
      for (const item of items) entries.push(JSON.parse(item['entry']!.S!) as DeliveryLogEntry);
    }
    return entries;
  }
}
