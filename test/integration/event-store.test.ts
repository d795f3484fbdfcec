import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { chunkId } from '../../functions/adapters/dynamodb/event-chunks';
import { QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbEventStore } from '../../functions/adapters/dynamodb/event-store';
import { profileSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { ensureTable } from '../../functions/local/dynamodb-local';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../../functions/adapters/dynamodb/write-key-store';
import { ingest } from '../../functions/core/ingest';
import { validateMessage, type AcceptedMessage } from '../../functions/core/messages';
import { parseWriteKey } from '../../functions/core/write-key';
import { changeListCount, collectChanges, listedChanges } from '../support/change-capture';
import { freshTable } from '../support/dynamodb';
import { scanAll } from '../support/scan';
import { leaveItemsUnprocessed, throttlingClient } from '../support/faults';

const receivedAt = new Date('2024-05-01T12:00:00.000Z');

function accepted(messages: Record<string, unknown>[]): AcceptedMessage[] {
  return messages.map((message, index) => {
    // Late and early events both: how far ahead of its receipt ingest takes an event is ingest's test (ingest.test.ts).
    const outcome = validateMessage(message, index, 'acme', receivedAt, { receivedAtKnown: false });
    if ('reason' in outcome) throw new Error(`test message ${index} is invalid: ${outcome.path} ${outcome.reason}`);
    return outcome;
  });
}

const sampleBatch = () =>
  accepted([
    { type: 'identify', userId: 'u1', traits: { plan: 'free', email: 'ada@example.com' }, messageId: 'i1', timestamp: '2024-04-30T09:00:00Z' },
    { type: 'group', userId: 'u1', groupId: 'acct-1', traits: { employees: 120, industry: 'fintech' }, messageId: 'g1', timestamp: '2024-04-30T09:01:00Z' },
    { type: 'track', userId: 'u1', event: 'Dashboard Created', properties: { count: 1 }, messageId: 't1', timestamp: '2024-04-30T09:02:00Z' },
    { type: 'track', userId: 'u1', event: 'Teammate Invited', properties: { invitee: 'x' }, messageId: 't2', timestamp: '2024-05-01T10:00:00Z', context: { groupId: 'acct-2' } },
    { type: 'track', anonymousId: 'anon-7', event: 'Pricing Viewed', messageId: 't3', timestamp: '2024-05-01T10:05:00Z' },
  ]);

/** Every item of the table, in key order. */
async function allItems(client: DynamoDBClient, tableName: string) {
  const items = await scanAll(client, tableName);
  return items.sort((a, b) => `${a['pk']?.S}${a['sk']?.S}`.localeCompare(`${b['pk']?.S}${b['sk']?.S}`));
}

const eventItems = (items: Record<string, AttributeValue>[]) => items.filter((item) => item['sk']?.S?.startsWith('EVT#'));
const storedMessages = (items: Record<string, AttributeValue>[]) => eventItems(items).flatMap(eventMessagesOf);

describe('DynamoDbEventStore on DynamoDB Local', () => {
  let client: DynamoDBClient;
  let tableName: string;
  beforeAll(async () => {
    ({ client, tableName } = await freshTable());
  });

  it('stores the events of a user and day in one item, with profiles, membership and, from the stream, change lists', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    await store.save('acme', sampleBatch(), receivedAt);
    // Ingest lists nothing itself; change capture lists what changed from the stream.
    expect(await changeListCount(client, tableName)).toBe(0);
    await collectChanges(client, tableName);
    const items = await allItems(client, tableName);

    const events = eventItems(items);
    const layout = events.map((item) => [item['pk']?.S, item['sk']?.S, eventMessagesOf(item).map((message) => message.messageId)]);
    expect(layout).toEqual([
      ['WS#acme#user#u1', `EVT#2024-04-30#${chunkId(['i1', 'g1', 't1'])}`, ['i1', 'g1', 't1']],
      ['WS#acme#user#u1', `EVT#2024-05-01#${chunkId(['t2'])}`, ['t2']],
      // An anonymous visitor is an entity kind of its own: anonymousId `x` never shares a partition with userId `anonymous:x`.
      ['WS#acme#visitor#anon-7', `EVT#2024-05-01#${chunkId(['t3'])}`, ['t3']],
    ]);
    expect(eventMessagesOf(events[0]!)[2]).toMatchObject({ event: 'Dashboard Created', properties: { count: 1 }, messageId: 't1' });
    // Retention: 400 days after the end of the events' day.
    expect(Number(events[0]!['expiresAt']!.N)).toBe(Date.parse('2024-05-01T00:00:00Z') / 1000 + 400 * 86_400);

    const byKey = new Map(items.map((item) => [`${item['pk']?.S}|${item['sk']?.S}`, item]));
    const userProfile = byKey.get(`WS#acme#user#u1|${profileSortKey}`)!;
    expect(JSON.parse(userProfile['trait:plan']!.S!)).toBe('free');
    expect(userProfile['accounts']?.SS?.sort()).toEqual(['acct-1', 'acct-2']);
    const accountProfile = byKey.get(`WS#acme#account#acct-1|${profileSortKey}`)!;
    expect(JSON.parse(accountProfile['trait:employees']!.S!)).toBe(120);
    expect(byKey.get('WS#acme#account#acct-1|MEMBER#u1')?.['userKey']?.S).toBe('u1');

    // The user and the visitor with every day their events touched; the account whose traits the group call set, with
    // no day (its figures are its members'). A member's other accounts are the evaluator's to reach, after the member.
    expect(Object.fromEntries(await listedChanges(client, tableName))).toEqual({
      'user u1': ['2024-04-30', '2024-05-01'],
      'visitor anon-7': ['2024-05-01'],
      'account acct-1': [],
    });
  });

  it('lists a stream batch in one write per shard, an entity once with every day it touched', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    await store.save('late', accepted([{ type: 'track', userId: 'u9', event: 'Exported Data', messageId: 'f', timestamp: '2024-05-01T08:00:00Z' }]), receivedAt);
    await store.save('late', accepted([{ type: 'track', userId: 'u9', event: 'Exported Data', messageId: 'e', timestamp: '2024-05-03T09:00:00Z' }]), receivedAt);
    await collectChanges(client, tableName, 1);
    expect(Object.fromEntries(await listedChanges(client, tableName, 1))).toEqual({ 'user u9': ['2024-05-01', '2024-05-03'] });
    expect(await changeListCount(client, tableName, 1)).toBe(1);
  });

  it('leaves exactly the same stored items when the same batch is stored three times', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    await store.save('acme', sampleBatch(), receivedAt);
    const once = await allItems(client, tableName);
    await store.save('acme', sampleBatch(), new Date(receivedAt.getTime() + 1000));
    await store.save('acme', sampleBatch(), new Date(receivedAt.getTime() + 2000));
    const thrice = await allItems(client, tableName);
    expect(eventItems(thrice)).toEqual(eventItems(once));
    expect(thrice).toEqual(once);
  });

  it('loses nothing with 20 concurrent clients writing to the same users and accounts', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    const clients = 20;
    const perClient = 60;
    await Promise.all(
      Array.from({ length: clients }, (_, c) =>
        store.save(
          'acme',
          accepted(
            Array.from({ length: perClient }, (_, i) => ({
              type: 'track',
              userId: `user-${i % 7}`,
              event: 'Report Viewed',
              messageId: `c${c}-m${i}`,
              timestamp: `2024-05-0${1 + (i % 3)}T10:00:00Z`,
              context: { groupId: `acct-${i % 3}` },
            })),
          ),
          receivedAt,
        ),
      ),
    );
    await collectChanges(client, tableName);
    const items = await allItems(client, tableName);
    expect(storedMessages(items)).toHaveLength(clients * perClient);
    // One item per request, user and day: the 60 messages of a request fall on 21 user-days.
    expect(eventItems(items)).toHaveLength(clients * 21);
    // Every user the requests touched is listed, with every day it touched.
    const changes = await listedChanges(client, tableName);
    expect([...changes.keys()].sort()).toEqual(Array.from({ length: 7 }, (_, i) => `user user-${i}`));
    for (const days of changes.values()) expect(days).toEqual(['2024-05-01', '2024-05-02', '2024-05-03']);
    const members = items.filter((item) => item['sk']?.S?.startsWith('MEMBER#'));
    // i % 7 and i % 3 over 60 messages meet in all 21 user-account pairs.
    expect(members).toHaveLength(21);
  });

  it('retries throttled calls through the SDK and resends UnprocessedItems until all are written', async () => {
    const { client: setup, tableName } = await freshTable();
    const { client, counts } = throttlingClient('BatchWriteItem', 3);
    const unprocessed = leaveItemsUnprocessed(client, 4, 2);
    const store = new DynamoDbEventStore({ client, tableName });
    const messages = accepted(
      // 60 users, so 60 event items: more than one BatchWriteItem call holds.
      Array.from({ length: 60 }, (_, i) => ({ type: 'track', userId: `u${i}`, event: 'Exported Data', messageId: `m${i}`, timestamp: '2024-05-01T10:00:00Z' })),
    );
    await store.save('acme', messages, receivedAt);
    expect(counts.throttled).toBe(3);
    expect(unprocessed.partial).toBe(4);
    const items = await allItems(setup, tableName);
    expect(eventItems(items)).toHaveLength(60);
    expect(storedMessages(items).map((message) => message.messageId).sort()).toEqual(messages.map((message) => message.messageId).sort());
  });

  it('fails, rather than reporting success, when throttling outlasts every retry', async () => {
    const { client: setup, tableName } = await freshTable();
    const { client } = throttlingClient('BatchWriteItem', 1000, 2);
    const store = new DynamoDbEventStore({ client, tableName });
    await expect(store.save('acme', sampleBatch(), receivedAt)).rejects.toThrow(/throughput/i);
    expect(eventItems(await allItems(setup, tableName))).toHaveLength(0);
  });

  it('keeps rejected messages in the quarantine with their reasons and a TTL', async () => {
    const store = new DynamoDbEventStore({ client, tableName, quarantineRetentionDays: 7 });
    await store.quarantine('q', 'req-1', [{ index: 2, messageId: 'bad-1', path: 'event', reason: 'must not be empty', raw: { type: 'track', event: '' } }], receivedAt);
    const [rejected] = await store.listRejected('q');
    expect(rejected).toEqual({
      receivedAt: receivedAt.toISOString(),
      requestId: 'req-1',
      index: 2,
      messageId: 'bad-1',
      path: 'event',
      reason: 'must not be empty',
      raw: '{"type":"track","event":""}',
      rawTruncated: false,
    });
    const { Items } = await client.send(
      new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: 'WS#q#REJECTED' } } }),
    );
    expect(Number(Items?.[0]?.['expiresAt']?.N)).toBe(receivedAt.getTime() / 1000 + 7 * 86_400);
  });
});

describe('write keys on DynamoDB Local', () => {
  let client: DynamoDBClient;
  let tableName: string;
  beforeAll(async () => {
    ({ client, tableName } = await freshTable());
  });
  afterAll(() => client.destroy());

  it('creates, lists and revokes keys, storing only the hash', async () => {
    const keys = new DynamoDbWriteKeyStore(client, tableName);
    const { key, record } = await keys.create('acme');
    const listed = await keys.list();
    expect(listed.map((r) => r.keyId)).toContain(record.keyId);
    // The secret is base64url, which may itself contain "_": take it as the key format defines it.
    const { secret } = parseWriteKey(key)!;
    expect(secret).toHaveLength(43);
    expect(JSON.stringify(await allItems(client, tableName))).not.toContain(secret);
    expect(await keys.revoke(record.keyId)).toBe(true);
    expect((await keys.find(record.keyId))?.revokedAt).toBeDefined();
    expect(await keys.revoke('nonexistent00')).toBe(false);
    await expect(keys.create('Not A Workspace')).rejects.toThrow(/workspace "Not A Workspace" is not valid/);
  });

  it('refuses a key registered already, naming the workspace that has it and never the key', async () => {
    const keys = new DynamoDbWriteKeyStore(client, tableName);
    const { record } = await keys.create('acme', { existingKey: 'segment-write-key-0001' });
    const again = await keys.create('beta', { existingKey: 'segment-write-key-0001' }).catch((error: Error) => error.message);
    expect(again).toBe(`the key ${record.keyId} is registered already, in workspace acme: a key belongs to one workspace; see it with "keys list"`);
    await keys.revoke(record.keyId);
    await expect(keys.create('acme', { existingKey: 'segment-write-key-0001' })).rejects.toThrow(/registered already, in workspace acme, revoked 20\d\d-/);
    expect((await keys.list()).filter((listed) => listed.keyId === record.keyId)).toHaveLength(1);
  });

  it('a key of workspace A only ever writes into workspace A', async () => {
    await ensureTable(client, tableName);
    const keys = new DynamoDbWriteKeyStore(client, tableName);
    const a = await keys.create('team-a');
    await keys.create('team-b');
    const events = new DynamoDbEventStore({ client, tableName });
    // The body claims workspace B in every way a client could try.
    const body = JSON.stringify({ batch: [{ type: 'track', userId: 'u', event: 'x', messageId: 'ws-1', workspace: 'team-b', context: { workspace: 'team-b' } }], workspace: 'team-b' });
    const response = await ingest(
      { callType: 'batch', body, authorization: `Basic ${Buffer.from(`${a.key}:`).toString('base64')}`, receivedAt, requestId: 'r' },
      { keys: new CachedWriteKeyStore(keys, 60_000), events },
    );
    expect(response.status).toBe(200);
    const eventKeys = eventItems(await allItems(client, tableName)).map((item) => item['pk']?.S);
    expect(eventKeys).toEqual(['WS#team-a#user#u']);
  });
});
