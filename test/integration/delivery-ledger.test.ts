import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { CapacityTally } from '../../functions/adapters/dynamodb/capacity';
import { DynamoDbDeliveryLedger } from '../../functions/adapters/dynamodb/delivery-ledger';
import { deliveredKeySortKey, deliveredPartitionKey } from '../../functions/adapters/dynamodb/item-keys';
import type { DeliveryLogEntry } from '../../functions/core/delivery';
import { freshTable } from '../support/dynamodb';
import { sampleLeadEvent } from '../support/lead-events';

const destination = 'sales-webhook-1';
const event = sampleLeadEvent();
const key = event.detail.idempotencyKey;

function attempt(attempt: number, outcome: DeliveryLogEntry['outcome']): DeliveryLogEntry {
  return {
    at: new Date(Date.UTC(2026, 11, 7, 12, 0, attempt)).toISOString(),
    destination,
    kind: 'webhook',
    idempotencyKey: key,
    detailType: event.detailType,
    workspace: event.detail.workspace,
    entity: event.detail.entity,
    attempt,
    outcome,
    next: outcome === 'delivered' ? 'done' : 'retry',
    latencyMs: 5,
  };
}

describe('the delivery ledger, on DynamoDB Local', () => {
  it('counts the attempts at a key that failed until the destination takes it, in the write of the log', async () => {
    const { client, tableName } = await freshTable();
    const capacity = new CapacityTally();
    const ledger = new DynamoDbDeliveryLedger(client, tableName, 14, capacity);
    expect(await ledger.progress(destination, key)).toEqual({ delivered: false, failedAttempts: 0 });

    await ledger.record(attempt(1, 'retryable'), event);
    // The log's item and the key's, each under a kilobyte: one write unit more than the log alone.
    expect(capacity.writeUnits).toBe(2);
    await ledger.record(attempt(2, 'permanent'), event);
    expect(await ledger.progress(destination, key)).toEqual({ delivered: false, failedAttempts: 2 });
    // Another destination has tried nothing.
    expect(await ledger.progress('sales-slack-1', key)).toEqual({ delivered: false, failedAttempts: 0 });

    await ledger.record(attempt(3, 'delivered'), event);
    expect(await ledger.progress(destination, key)).toEqual({ delivered: true, failedAttempts: 0 });
    expect((await ledger.list({ since: new Date(Date.UTC(2026, 11, 7)), until: new Date(Date.UTC(2026, 11, 8)), limit: 10 })).map((entry) => [entry.attempt, entry.outcome])).toEqual([
      [3, 'delivered'],
      [2, 'permanent'],
      [1, 'retryable'],
    ]);
  });

  it('keeps the count for logDays after the latest failed attempt, so no retry window outlives it', async () => {
    const { client, tableName } = await freshTable();
    const ledger = new DynamoDbDeliveryLedger(client, tableName, 1);
    const expiry = async () => {
      const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: deliveredPartitionKey(destination) }, sk: { S: deliveredKeySortKey(key) } }, ConsistentRead: true }));
      return Number(Item?.['expiresAt']?.N) * 1000;
    };
    const first = attempt(1, 'retryable');
    await ledger.record(first, event);
    expect(await expiry()).toBe(Date.parse(first.at) + 86_400_000);
    // 20 hours on, in a window of 14 days and a log of one: the count's day starts again from this attempt.
    const later = { ...attempt(2, 'retryable'), at: new Date(Date.parse(first.at) + 20 * 3_600_000).toISOString() };
    await ledger.record(later, event);
    expect(await expiry()).toBe(Date.parse(later.at) + 86_400_000);
    expect(await ledger.progress(destination, key)).toEqual({ delivered: false, failedAttempts: 2 });
  });

  it('reads a key recorded before attempts were counted (no count on its item) as delivered', async () => {
    const { client, tableName } = await freshTable();
    await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: deliveredPartitionKey(destination) }, sk: { S: deliveredKeySortKey(key) }, expiresAt: { N: '4102444800' } } }));
    expect(await new DynamoDbDeliveryLedger(client, tableName, 14).progress(destination, key)).toEqual({ delivered: true, failedAttempts: 0 });
  });
});
