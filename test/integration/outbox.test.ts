import { GetItemCommand, PutItemCommand, QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { expect, it } from 'vitest';
import { CapacityTally } from '../../functions/adapters/dynamodb/capacity';
import { stateBodyAttributes } from '../../functions/adapters/dynamodb/entity-rows';
import { entityPartitionKey, outboxPartitionKey, outboxSortKey, stateSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { DynamoDbOutbox, outboxGraceMs, outboxItem } from '../../functions/adapters/dynamodb/outbox';
import type { StoredEntityState } from '../../functions/core/facts';
import type { LeadEvent } from '../../functions/core/lead-event';
import { freshTable } from '../support/dynamodb';
import { sampleLeadEvent } from '../support/lead-events';

const statePk = entityPartitionKey('acme', 'user', 'u-42');

/** The STATE item of user u-42 at a revision, with a lead whose history holds transitions made at these times. */
async function putState(client: DynamoDBClient, tableName: string, revision: number, transitionsAt: string[]) {
  const state: StoredEntityState = {
    lifetime: { day: 'lifetime', activity: 3, names: {}, measures: {} },
    firstSeen: '2024-04-01T00:00:00.000Z',
    lastSeen: '2024-05-01T11:00:00.000Z',
    rollupVersion: 'v1',
    lead: {
      tier: 'PQL-A',
      route: 'sales',
      score: 85,
      since: transitionsAt.at(-1) ?? null,
      cooldownUntil: null,
      sequence: transitionsAt.length,
      rulesetVersion: 'v1',
      evaluatedAt: transitionsAt.at(-1) ?? '2024-05-01T12:00:00.000Z',
      matched: ['activated'],
      lastSeen: '2024-05-01T11:00:00.000Z',
      history: transitionsAt.map((at) => ({ tier: 'PQL-A', previousTier: null, at, reasons: [] })),
    },
  };
  await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: statePk }, sk: { S: stateSortKey }, ...stateBodyAttributes(state), revision: { N: String(revision) } } }));
}

const at = (minutes: number) => new Date(Date.parse('2024-05-01T12:00:00.000Z') + minutes * 60_000).toISOString();
const eventAt = (minutes: number) => sampleLeadEvent({ evaluatedAt: at(minutes) });

async function outboxSortKeys(client: DynamoDBClient, tableName: string): Promise<string[]> {
  const { Items } = await client.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: outboxPartitionKey('0') } }, ConsistentRead: true }));
  return (Items ?? []).map((item) => item['sk']!.S!);
}

const sortKeyOf = (event: LeadEvent) => outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey);

it('keeps a lead event deflated in the outbox, a write unit smaller, and publishes events earlier versions stored in a transaction with their state', async () => {
  const { client, tableName } = await freshTable();
  const capacity = new CapacityTally();
  const outbox = new DynamoDbOutbox(client, tableName, capacity);
  const event = sampleLeadEvent({ entity: { type: 'account', id: 'acme' }, evaluatedAt: '2024-05-01T12:00:00.000Z' });
  expect(Buffer.byteLength(JSON.stringify(event))).toBeGreaterThan(1024);
  await outbox.put('0', event, { statePk: entityPartitionKey('acme', 'account', 'acme'), revision: 1 });
  expect(capacity.writeUnits).toBe(1);
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: outboxPartitionKey('0') }, sk: { S: sortKeyOf(event) } } }));
  expect(Item?.['event']).toBeUndefined();
  expect(Item?.['eventDeflated']?.B).toBeDefined();

  // Items of earlier versions (JSON text, or deflated, without the save they wait for) were written in one
  // transaction with their state: they are published whatever the state says.
  const older = sampleLeadEvent({ evaluatedAt: '2024-04-30T12:00:00.000Z' });
  const olderDeflated = sampleLeadEvent({ evaluatedAt: '2024-04-30T13:00:00.000Z' });
  const { statePk: _statePk, revision: _revision, ...withoutSave } = outboxItem('0', olderDeflated, { statePk, revision: 1 });
  await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: outboxPartitionKey('0') }, sk: { S: sortKeyOf(older) }, event: { S: JSON.stringify(older) } } }));
  await client.send(new PutItemCommand({ TableName: tableName, Item: withoutSave }));
  // The account's state was saved with the transition.
  await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: entityPartitionKey('acme', 'account', 'acme') }, sk: { S: stateSortKey }, ...stateBodyAttributes({ lifetime: { day: 'lifetime', activity: 0, names: {}, measures: {} }, firstSeen: null, lastSeen: null, rollupVersion: 'v1', lead: { tier: 'PQL-A', route: 'sales', score: 85, since: event.detail.evaluatedAt, cooldownUntil: null, sequence: 1, rulesetVersion: 'v1', evaluatedAt: event.detail.evaluatedAt, matched: [], lastSeen: null, history: [{ tier: 'PQL-A', previousTier: null, at: event.detail.evaluatedAt, reasons: [] }] } }), revision: { N: '1' } } }));
  const now = new Date('2024-05-01T12:01:00.000Z');
  expect(await outbox.pending('0', now)).toEqual([older, olderDeflated, event]);
  await outbox.markPublished('0', [older, olderDeflated, event]);
  expect(await outbox.pending('0', now)).toEqual([]);
  expect(await outboxSortKeys(client, tableName)).toEqual([]);
});

it('publishes an event once its state is saved, waits for a save in flight, and drops one whose save can no longer come', async () => {
  const { client, tableName } = await freshTable();
  const outbox = new DynamoDbOutbox(client, tableName, new CapacityTally());
  await putState(client, tableName, 4, [at(0)]);
  // Saved: its transition is in the state's history (the state may have been saved again since).
  const saved = eventAt(0);
  await outbox.put('0', saved, { statePk, revision: 2 });
  // In flight: the run put it and is about to save revision 5.
  const inFlight = eventAt(10);
  await outbox.put('0', inFlight, { statePk, revision: 5 });
  // Lost: an overlapping run took revision 4 first (this run's save failed and it died before forgetting the event).
  const lost = eventAt(5);
  await outbox.put('0', lost, { statePk, revision: 4 });

  expect(await outbox.pending('0', new Date(Date.parse(at(11))))).toEqual([saved]);
  expect(await outboxSortKeys(client, tableName)).toEqual([saved, inFlight].map(sortKeyOf));

  // The run in flight saved its state: its event is due.
  await putState(client, tableName, 5, [at(0), at(10)]);
  expect(await outbox.pending('0', new Date(Date.parse(at(12))))).toEqual([saved, inFlight]);

  // A run that died between the outbox and its state: after longer than a run can last, its event goes.
  const died = eventAt(20);
  await outbox.put('0', died, { statePk, revision: 6 });
  expect(await outbox.pending('0', new Date(Date.parse(at(20)) + outboxGraceMs))).toEqual([saved, inFlight]);
  expect(await outboxSortKeys(client, tableName)).toContain(sortKeyOf(died));
  expect(await outbox.pending('0', new Date(Date.parse(at(20)) + outboxGraceMs + 1))).toEqual([saved, inFlight]);
  expect(await outboxSortKeys(client, tableName)).toEqual([saved, inFlight].map(sortKeyOf));

  // With no state at all (an entity never saved), the same: awaited, then dropped.
  const stranger = sampleLeadEvent({ entity: { type: 'user', id: 'u-7' }, evaluatedAt: at(30) });
  await outbox.put('0', stranger, { statePk: entityPartitionKey('acme', 'user', 'u-7'), revision: 1 });
  expect(await outbox.pending('0', new Date(Date.parse(at(31))))).toEqual([saved, inFlight]);
  expect(await outboxSortKeys(client, tableName)).toContain(sortKeyOf(stranger));
  expect(await outbox.pending('0', new Date(Date.parse(at(31)) + outboxGraceMs))).toEqual([saved, inFlight]);
  expect(await outboxSortKeys(client, tableName)).not.toContain(sortKeyOf(stranger));
});

it('keeps an event whose publish failed for as long as the bus is down, whatever becomes of its state', async () => {
  const { client, tableName } = await freshTable();
  const outbox = new DynamoDbOutbox(client, tableName, new CapacityTally());
  await putState(client, tableName, 1, [at(0)]);
  const undelivered = eventAt(0);
  const delivered = sampleLeadEvent({ entity: { type: 'user', id: 'u-42' }, evaluatedAt: at(0), tier: 'PQL-B' });
  await outbox.put('0', undelivered, { statePk, revision: 1 });
  expect(await outbox.pending('0', new Date(Date.parse(at(1))))).toEqual([undelivered]);
  await outbox.markUndelivered('0', [undelivered]);
  // One already published (and deleted) by an overlapping run is not brought back.
  await outbox.markUndelivered('0', [delivered]);
  expect(await outboxSortKeys(client, tableName)).toEqual([sortKeyOf(undelivered)]);

  // A day later the lead has moved on so often that the transition left its history (it keeps the last 20).
  const later = Array.from({ length: 20 }, (_, index) => at(60 + index * 60));
  await putState(client, tableName, 21, later);
  expect(await outbox.pending('0', new Date(Date.parse(at(1440))))).toEqual([undelivered]);

  // Without the mark, the same item would have been taken for a save that never came.
  const unmarked = eventAt(2);
  await outbox.put('0', unmarked, { statePk, revision: 2 });
  expect(await outbox.pending('0', new Date(Date.parse(at(1440))))).toEqual([undelivered]);
});

it('lets one run at a time publish an event: a claim holds it from overlapping runs until it is published, given back, or older than a run can last', async () => {
  const { client, tableName } = await freshTable();
  const capacity = new CapacityTally();
  const outbox = new DynamoDbOutbox(client, tableName, capacity);
  await putState(client, tableName, 1, [at(0)]);
  const event = eventAt(0);
  await outbox.put('0', event, { statePk, revision: 1 });
  const now = new Date(Date.parse(at(1)));

  const pending = await outbox.pending('0', now);
  expect(pending).toEqual([event]);
  const writesBefore = capacity.writeUnits;
  expect(await outbox.claim('0', pending, now)).toEqual([event]);
  expect(capacity.writeUnits - writesBefore).toBe(1);
  // An overlapping run that read the outbox before the claim gets nothing; one that reads it after does not see it.
  expect(await outbox.claim('0', pending, now)).toEqual([]);
  expect(await outbox.pending('0', now)).toEqual([]);

  // Given back (its publish failed): the next run takes it at once.
  await outbox.markUndelivered('0', [event]);
  expect(await outbox.claim('0', await outbox.pending('0', now), now)).toEqual([event]);

  // A run that died holding the claim: the event waits until no run can still be publishing it.
  expect(await outbox.pending('0', new Date(now.getTime() + outboxGraceMs - 1))).toEqual([]);
  const later = new Date(now.getTime() + outboxGraceMs);
  expect(await outbox.claim('0', await outbox.pending('0', later), later)).toEqual([event]);

  // Published by the run that claimed it: nothing left to claim, and nothing brought back.
  await outbox.markPublished('0', [event]);
  expect(await outbox.claim('0', [event], later)).toEqual([]);
  expect(await outboxSortKeys(client, tableName)).toEqual([]);
});
