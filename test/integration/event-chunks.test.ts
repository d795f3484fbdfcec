import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { eventBodyAttributes, eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { chunkId } from '../../functions/adapters/dynamodb/event-chunks';
import { DynamoDbEventStore } from '../../functions/adapters/dynamodb/event-store';
import { entityPartitionKey, eventSortKey, eventSortKeyPrefix } from '../../functions/adapters/dynamodb/item-keys';
import { storedEventTexts } from '../../functions/adapters/dynamodb/stored-events';
import { validateMessage } from '../../functions/core/messages';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { freshTable } from '../support/dynamodb';
import { RecordingPublisher } from '../support/lead-events';
import { scanAll } from '../support/scan';
import { sendBatch } from '../support/send-batch';

// Four distinct views make a lead: a view counted twice would make one of three.
const rules = `
version: 1
signals:
  pricing: { event: Pricing Viewed, window: 30d, at_least: 4, points: 40 }
tiers:
  - { name: PQL, min_score: 40, route: sales }
`;

const at = (day: number, hour = 10) => new Date(Date.UTC(2024, 5, 10 + day, hour)).toISOString();
const view = (messageId: string, day: number, extra: Record<string, unknown> = {}) => ({ type: 'track', userId: 'ann', event: 'Pricing Viewed', messageId, timestamp: at(day), ...extra });
const ann = (dev: DevRuntime) => ({ workspace: dev.workspace, type: 'user' as const, id: 'ann' });
/** What `backtest --source dynamodb` reads of a workspace. */
const exported = async ({ client, tableName, workspace }: { client: DynamoDBClient; tableName: string; workspace: string }) => {
  const texts: string[] = [];
  for await (const text of storedEventTexts(client, tableName, workspace)) texts.push(text);
  return texts.map((text) => JSON.parse(text) as { messageId: string; properties?: { copy?: string } });
};
const accepted = (messages: Record<string, unknown>[], receivedAt: Date) =>
  messages.map((message, index) => {
    const outcome = validateMessage(message, index, 'acme', receivedAt);
    if ('reason' in outcome) throw new Error(`message ${index} is invalid: ${outcome.path} ${outcome.reason}`);
    return outcome;
  });

let runtime: DevRuntime | undefined;
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
});

describe('event chunks on DynamoDB Local', () => {
  it('counts a message once when it was retried in a request batched differently, and counts a late event', async () => {
    const leads = new RecordingPublisher();
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `chunks-${randomUUID()}`, ruleset: loadRules(rules, 'rules'), leads, evaluateEveryMs: 0 }));

    // p1's first request got no answer; the SDK sent it again in its next batch, with p3.
    await sendBatch(dev, [view('p1', 1), view('p2', 1)]);
    await sendBatch(dev, [view('p1', 1), view('p3', 1)]);
    const items = (await scanAll(dev.client, dev.tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
    expect(items.map((item) => eventMessagesOf(item).map((message) => message.messageId)).sort()).toEqual([
      ['p1', 'p2'],
      ['p1', 'p3'],
    ]);
    expect((await dev.evaluation.events(ann(dev), [at(1).slice(0, 10)])).map((event) => event.messageId)).toEqual(
      // Each day's items in sort-key order, i.e. by chunk id.
      chunkId(['p1', 'p2']) < chunkId(['p1', 'p3']) ? ['p1', 'p2', 'p3'] : ['p1', 'p3', 'p2'],
    );
    await dev.evaluateOnce(new Date(at(1, 23)));
    expect(leads.published).toEqual([]);

    // A late event of the day before, in a request that also repeats p3: the fourth view.
    await sendBatch(dev, [view('p0', 0), view('p3', 1)]);
    await dev.evaluateOnce(new Date(at(2, 1)));
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([['ann', 'PQL']]);
    expect(leads.published[0]!.detail.signals).toEqual([expect.objectContaining({ name: 'pricing', value: 4 })]);

    expect((await dev.evaluation.events(ann(dev), 'all')).map((event) => event.messageId).sort()).toEqual(['p0', 'p1', 'p2', 'p3']);
    expect((await exported(dev)).map((message) => message.messageId).sort()).toEqual(['p0', 'p1', 'p2', 'p3']);
  });

  it('reads items written before chunks (one message each) beside chunks, the copy with the smaller sort key winning', async () => {
    const leads = new RecordingPublisher();
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `chunks-${randomUUID()}`, ruleset: loadRules(rules, 'rules'), leads, evaluateEveryMs: 0 }));
    const pk = entityPartitionKey(dev.workspace, 'user', 'ann');
    // What a deployed table holds from before: one item per message, keyed by its messageId.
    const legacy = async (message: Record<string, unknown>) =>
      dev.client.send(
        new PutItemCommand({ TableName: dev.tableName, Item: { pk: { S: pk }, sk: { S: eventSortKey(String(message['timestamp']), String(message['messageId'])) }, ...eventBodyAttributes(JSON.stringify(message)) } }),
      );
    await legacy(view('p1', 1, { properties: { copy: 'legacy' } }));
    await legacy(view('p2', 1, { properties: { copy: 'legacy' }, context: { page: { url: `https://example.com/pricing?${'q'.repeat(700)}` } } }));
    await sendBatch(dev, [view('p1', 1, { properties: { copy: 'chunk' } }), view('p3', 1, { properties: { copy: 'chunk' } })]);

    // A chunk's id is hex, and sorts before the messageIds here: the chunk's copy of p1 wins, for the evaluator and the export.
    expect(eventSortKey(at(1), chunkId(['p1', 'p3'])) < eventSortKey(at(1), 'p1')).toBe(true);
    const read = await dev.evaluation.events(ann(dev), 'all');
    expect(read.map((event) => [event.messageId, (event.properties as { copy: string }).copy])).toEqual([
      ['p1', 'chunk'],
      ['p3', 'chunk'],
      ['p2', 'legacy'],
    ]);
    expect((await exported(dev)).map((message) => [message.messageId, message.properties?.copy])).toEqual([
      ['p1', 'chunk'],
      ['p3', 'chunk'],
      ['p2', 'legacy'],
    ]);

    // The legacy items were never seen by change capture here; the chunk's write marks ann's day, and all three count.
    await sendBatch(dev, [view('p4', 1)]);
    await dev.evaluateOnce(new Date(at(1, 23)));
    expect(leads.published[0]!.detail.signals).toEqual([expect.objectContaining({ name: 'pricing', value: 4 })]);
  });

  it('exports each message once across many users: a Scan returns the items of a user and day together', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    const receivedAt = new Date(at(3));
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const mine = (user: string, id: string, day: number) => ({ ...view(`${user}-${id}`, day), userId: user });
    // Every user's a1 and b2 are sent twice, each time beside another message.
    await store.save('acme', accepted(users.flatMap((user) => [mine(user, 'a1', 1), mine(user, 'b1', 1), mine(user, 'a2', 2)]), receivedAt), receivedAt);
    await store.save('acme', accepted(users.flatMap((user) => [mine(user, 'a1', 1), mine(user, 'c1', 1), mine(user, 'b2', 2)]), receivedAt), receivedAt);
    await store.save('acme', accepted(users.flatMap((user) => [mine(user, 'b2', 2), mine(user, 'c2', 2)]), receivedAt), receivedAt);
    const ids = (await exported({ client, tableName, workspace: 'acme' })).map((message) => message.messageId);
    expect(ids.toSorted()).toEqual(users.flatMap((user) => ['a1', 'b1', 'c1', 'a2', 'b2', 'c2'].map((id) => `${user}-${id}`)).toSorted());
  });

  it('splits a user day too large for one item into several, every message stored once', async () => {
    const { client, tableName } = await freshTable();
    const store = new DynamoDbEventStore({ client, tableName });
    const receivedAt = new Date(at(1, 12));
    // 1.2 MB of barely compressible text under one user and day, more than DynamoDB's 400 KB item limit takes deflated.
    const messages = accepted(
      Array.from({ length: 40 }, (_, i) => ({ ...view(`big-${i}`, 1), properties: { blob: randomBytes(22_000).toString('base64') } })),
      receivedAt,
    );
    await store.save('acme', messages, receivedAt);
    const items = (await scanAll(client, tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
    expect(items.length).toBeGreaterThan(3);
    expect(items.flatMap(eventMessagesOf).map((message) => message.messageId).sort()).toEqual(messages.map((message) => message.messageId).sort());
  });
});
