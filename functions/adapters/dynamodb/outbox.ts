import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LeadEvent } from '../../core/lead-event';
import { deleteAll, queryAll, type Item } from './batch-write';
import type { CapacityTally } from './capacity';
import { compressedJson, compressedJsonOf, type CompressedJsonAttributes } from './compressed-json';
import { outboxPartitionKey, outboxSortKey } from './item-keys';

/**
 * Lead events saved with the state that caused them and not yet published, one partition per shard. The entity rows
 * put an event here in the same transaction as the state; a run publishes what it finds and deletes what was delivered.
 */
export class DynamoDbOutbox {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly capacity: CapacityTally,
  ) {}

  async pending(shard: string): Promise<LeadEvent[]> {
    const items = await queryAll(
      this.client,
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: outboxPartitionKey(shard) } }, ConsistentRead: true },
      { capacity: this.capacity },
    );
    return items.map((item) => JSON.parse(compressedJsonOf(item, eventAttributes)!) as LeadEvent);
  }

  async markPublished(shard: string, events: readonly LeadEvent[]): Promise<void> {
    const keys = events.map((event) => outboxKey(shard, event));
    await deleteAll(this.client, this.tableName, keys, { capacity: this.capacity });
  }
}

const outboxKey = (shard: string, event: LeadEvent): Item => ({ pk: { S: outboxPartitionKey(shard) }, sk: { S: outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey) } });

/**
 * A lead event with its context is 1-3 KB of JSON, and a transaction bills each of its writes twice: deflated, the
 * outbox item is a write unit or two smaller, on every transition.
 */
const eventAttributes: CompressedJsonAttributes = { text: 'event', deflated: 'eventDeflated' };

/** The outbox item of a lead event, for the transaction that saves the state that caused it. */
export const outboxItem = (shard: string, event: LeadEvent): Item => ({ ...outboxKey(shard, event), ...compressedJson(JSON.stringify(event), eventAttributes) });
