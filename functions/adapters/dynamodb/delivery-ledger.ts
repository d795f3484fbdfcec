import { GetItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DeliveryLedger, DeliveryLogEntry } from '../../core/delivery';
import { addDays, dayMs, dayOf } from '../../core/days';
import type { LeadEvent } from '../../core/lead-event';
import { putAll, queryAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { appliedSortKey, deliveredKeySortKey, deliveredPartitionKey, deliveryLogPartitionKey, deliveryLogSortKey } from './item-keys';

/**
 * The delivery log and what each destination took, in the table: one item per attempt under the day's partition
 * (`deliveries list` reads days newest first), one per idempotency key a destination took, and for a CRM one per lead
 * with the time of the last transition applied. All expire after `logDays`, so a replay older than that is delivered
 * again: keep archive replays within the log's days, or say so when you replay.
 */
export class DynamoDbDeliveryLedger implements DeliveryLedger {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly logDays: number,
    /** Adds up the units the ledger consumes, for the delivery bench. @default none */
    private readonly capacity?: CapacityTally,
  ) {}

  async delivered(destination: string, idempotencyKey: string): Promise<boolean> {
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: deliveredPartitionKey(destination) }, sk: { S: deliveredKeySortKey(idempotencyKey) } },
        // A redelivery can follow the delivery within a second: an eventually consistent read could miss it.
        ConsistentRead: true,
        ProjectionExpression: 'pk',
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity?.add('read', ConsumedCapacity);
    return Item !== undefined;
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
    if (entry.outcome === 'delivered') {
      const destination = { S: deliveredPartitionKey(entry.destination) };
      items.push({ pk: destination, sk: { S: deliveredKeySortKey(entry.idempotencyKey) }, expiresAt });
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
