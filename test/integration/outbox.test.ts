import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { CapacityTally } from '../../functions/adapters/dynamodb/capacity';
import { outboxPartitionKey, outboxSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { DynamoDbOutbox, outboxItem } from '../../functions/adapters/dynamodb/outbox';
import { freshTable } from '../support/dynamodb';
import { sampleLeadEvent } from '../support/lead-events';

it('keeps a lead event deflated in the outbox, a write unit smaller, and reads back events stored either way', async () => {
  const { client, tableName } = await freshTable();
  const capacity = new CapacityTally();
  const outbox = new DynamoDbOutbox(client, tableName, capacity);
  const event = sampleLeadEvent({ entity: { type: 'account', id: 'acme' }, evaluatedAt: '2024-05-01T12:00:00.000Z' });
  const json = JSON.stringify(event);
  expect(Buffer.byteLength(json)).toBeGreaterThan(1024);
  const put = await client.send(new PutItemCommand({ TableName: tableName, Item: outboxItem('0', event), ReturnConsumedCapacity: 'TOTAL' }));
  expect(put.ConsumedCapacity?.CapacityUnits).toBe(1);
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: outboxPartitionKey('0') }, sk: { S: outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey) } } }));
  expect(Item?.['event']).toBeUndefined();
  expect(Item?.['eventDeflated']?.B).toBeDefined();

  // An event an earlier version put in the outbox as JSON text is published the same.
  const older = sampleLeadEvent({ evaluatedAt: '2024-04-30T12:00:00.000Z' });
  await client.send(
    new PutItemCommand({
      TableName: tableName,
      Item: { pk: { S: outboxPartitionKey('0') }, sk: { S: outboxSortKey(older.detail.evaluatedAt, older.detail.idempotencyKey) }, event: { S: JSON.stringify(older) } },
    }),
  );
  expect(await outbox.pending('0')).toEqual([older, event]);
  await outbox.markPublished('0', [older, event]);
  expect(await outbox.pending('0')).toEqual([]);
});
