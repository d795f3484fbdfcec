import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { Analytics } from '@segment/analytics-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import {
  entityPartitionKey,
  eventSortKeyPrefix,
  memberSortKey,
  profileSortKey,
  type EntityType,
} from '../../functions/adapters/dynamodb/item-keys';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { listedChanges } from '../support/change-capture';
import { allPages } from '../support/scan';

type Item = Record<string, AttributeValue>;

let dev: DevRuntime;

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `e2e-sdk-${randomUUID()}` });
});

afterAll(async () => {
  await dev?.stop();
});

/** Every item of one entity's partition, read back the way the evaluator would: by key, not by Scan. */
function partition(type: EntityType, id: string): Promise<Item[]> {
  return allPages((startKey) =>
    dev.client.send(
      new QueryCommand({
        TableName: dev.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: entityPartitionKey(dev.workspace, type, id) } },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    ),
  );
}

const bySortKey = (items: Item[], sk: string) => items.find((item) => item['sk']?.S === sk);
const eventsIn = (items: Item[]) => items.filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix));
/** Each stored message, with the item that holds it (a request's messages of one user and day share one). */
const messagesIn = (items: Item[]) => eventsIn(items).flatMap((item) => eventMessagesOf(item).map((message) => ({ item, message: message as Record<string, unknown> })));
/** The account a stored message names, as the Segment spec places it. */
const accountOf = (message: Record<string, unknown>) => message['groupId'] ?? (message['context'] as { groupId?: unknown } | undefined)?.groupId;
const basicAuth = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000);

describe('the official Segment Node SDK against the local runtime', () => {
  it('stores every call exactly once, with the profiles, memberships and change lists', async () => {
    const errors: unknown[] = [];
    const statuses: number[] = [];
    const analytics = new Analytics({
      writeKey: dev.writeKey,
      host: dev.url,
      path: '/v1/batch',
      // Several small batches, so the calls of one user arrive in different requests (flushAt is the current name
      // of maxEventsInBatch).
      flushAt: 4,
      flushInterval: 50,
      // A failed delivery must show up as an error below, not be hidden by a retry.
      maxRetries: 0,
    });
    analytics.on('error', (error) => errors.push(error));
    analytics.on('http_response', (response) => statuses.push(response.status));

    /** What each call sent, by the messageId the SDK gave it. */
    const sent = new Map<string, { type: string; userId: string; event?: string; name?: string; groupId?: string }>();
    const delivered = (expected: { type: string; userId: string; event?: string; name?: string; groupId?: string }) =>
      (error: unknown, ctx?: { event: { messageId?: string } }) => {
        if (error) errors.push(error);
        else sent.set(ctx!.event.messageId!, expected);
      };

    const run = randomUUID().slice(0, 8);
    const alice = `alice-${run}`;
    const bob = `bob-${run}`;
    const carol = `carol-${run}`;
    const acme = `acme-${run}`;
    const globex = `globex-${run}`;
    // Two days, so the change markers must list both.
    const yesterday = daysAgo(1);
    const today = daysAgo(0);

    analytics.identify({ userId: alice, traits: { email: 'alice@acme.test', seats: 5 }, timestamp: yesterday }, delivered({ type: 'identify', userId: alice }));
    analytics.group({ userId: alice, groupId: acme, traits: { name: 'Acme', plan: 'enterprise' }, timestamp: yesterday }, delivered({ type: 'group', userId: alice, groupId: acme }));
    analytics.track(
      { userId: alice, event: 'Dashboard Created', properties: { widgets: 3 }, context: { groupId: acme }, timestamp: yesterday },
      delivered({ type: 'track', userId: alice, event: 'Dashboard Created', groupId: acme }),
    );
    analytics.page({ userId: alice, name: 'Pricing', properties: { path: '/pricing' }, timestamp: today }, delivered({ type: 'page', userId: alice, name: 'Pricing' }));
    analytics.identify({ userId: bob, traits: { email: 'bob@globex.test', plan: 'trial' }, timestamp: today }, delivered({ type: 'identify', userId: bob }));
    analytics.group({ userId: bob, groupId: acme, timestamp: yesterday }, delivered({ type: 'group', userId: bob, groupId: acme }));
    analytics.group({ userId: bob, groupId: globex, traits: { name: 'Globex' }, timestamp: today }, delivered({ type: 'group', userId: bob, groupId: globex }));
    analytics.track(
      { userId: bob, event: 'Report Exported', context: { groupId: globex }, timestamp: today },
      delivered({ type: 'track', userId: bob, event: 'Report Exported', groupId: globex }),
    );
    analytics.track({ userId: carol, event: 'Signed Up', timestamp: yesterday }, delivered({ type: 'track', userId: carol, event: 'Signed Up' }));
    analytics.page({ userId: carol, name: 'Docs', timestamp: today }, delivered({ type: 'page', userId: carol, name: 'Docs' }));
    analytics.identify({ userId: carol, traits: { name: 'Carol' }, timestamp: today }, delivered({ type: 'identify', userId: carol }));
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    expect(statuses.length).toBeGreaterThanOrEqual(3);
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(sent.size).toBe(11);

    // The change lists come from the table's stream, which every evaluator run reads first.
    await dev.collectChanges();
    const users = { [alice]: await partition('user', alice), [bob]: await partition('user', bob), [carol]: await partition('user', carol) };
    const stored = Object.values(users).flatMap(messagesIn);
    expect(stored).toHaveLength(sent.size);
    for (const [messageId, expected] of sent) {
      const matching = stored.filter(({ message }) => message['messageId'] === messageId);
      expect(matching, `messageId ${messageId}`).toHaveLength(1);
      const { item, message } = matching[0]!;
      expect(item['pk']?.S).toBe(entityPartitionKey(dev.workspace, 'user', expected.userId));
      expect(message).toMatchObject({ type: expected.type, userId: expected.userId });
      if (expected.event !== undefined) expect(message['event']).toBe(expected.event);
      if (expected.name !== undefined) expect(message['name']).toBe(expected.name);
      if (expected.groupId !== undefined) expect(accountOf(message)).toBe(expected.groupId);
    }
    // Carol never joined an account, so none of her events may claim one.
    expect(messagesIn(users[carol]!).map(({ message }) => accountOf(message))).toEqual([undefined, undefined, undefined]);

    const aliceProfile = bySortKey(users[alice]!, profileSortKey)!;
    expect(aliceProfile['trait:email']?.S).toBe(JSON.stringify('alice@acme.test'));
    expect(aliceProfile['trait:seats']?.S).toBe(JSON.stringify(5));
    expect(aliceProfile['accounts']?.SS).toEqual([acme]);
    const bobProfile = bySortKey(users[bob]!, profileSortKey)!;
    expect(bobProfile['trait:plan']?.S).toBe(JSON.stringify('trial'));
    expect(bobProfile['accounts']?.SS?.toSorted()).toEqual([acme, globex].toSorted());
    expect(bySortKey(users[carol]!, profileSortKey)?.['trait:name']?.S).toBe(JSON.stringify('Carol'));

    const acmeItems = await partition('account', acme);
    const globexItems = await partition('account', globex);
    expect(bySortKey(acmeItems, profileSortKey)?.['trait:name']?.S).toBe(JSON.stringify('Acme'));
    expect(bySortKey(acmeItems, profileSortKey)?.['trait:plan']?.S).toBe(JSON.stringify('enterprise'));
    expect(bySortKey(globexItems, profileSortKey)?.['trait:name']?.S).toBe(JSON.stringify('Globex'));
    expect(bySortKey(acmeItems, memberSortKey(alice))?.['userKey']?.S).toBe(alice);
    expect(bySortKey(acmeItems, memberSortKey(bob))?.['userKey']?.S).toBe(bob);
    expect(bySortKey(globexItems, memberSortKey(bob))?.['userKey']?.S).toBe(bob);
    expect(bySortKey(globexItems, memberSortKey(alice))).toBeUndefined();

    const day = (date: Date) => date.toISOString().slice(0, 10);
    const bothDays = [day(yesterday), day(today)].toSorted();
    // The change lists name each user with exactly the days of its events, and the accounts whose traits group calls
    // set (with no day: an account's figures are its members').
    const listed = await listedChanges(dev.client, dev.tableName);
    for (const user of [alice, bob, carol]) expect(listed.get(`user ${user}`), user).toEqual(bothDays);
    for (const account of [acme, globex]) expect(listed.get(`account ${account}`), account).toEqual([]);
  });
});

describe('plain HTTP clients', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${dev.url}/v1/batch`, {
      method: 'POST',
      headers: { authorization: basicAuth(dev.writeKey), 'content-type': 'application/json', ...headers },
      body,
    });

  it('stores a gzip-compressed batch', async () => {
    const user = `gzip-${randomUUID()}`;
    const messageIds = [randomUUID(), randomUUID()];
    const body = JSON.stringify({
      batch: messageIds.map((messageId, i) => ({ type: 'track', userId: user, event: `Step ${i}`, messageId, timestamp: daysAgo(0).toISOString() })),
      sentAt: new Date().toISOString(),
    });

    const response = await post(gzipSync(body), { 'content-encoding': 'gzip' });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true });
    const stored = messagesIn(await partition('user', user));
    expect(stored.map(({ message }) => message['messageId']).toSorted()).toEqual(messageIds.toSorted());
  });

  it('leaves exactly the same items when the same batch is sent three times', async () => {
    const run = randomUUID().slice(0, 8);
    const user = `replay-${run}`;
    const account = `replay-account-${run}`;
    const timestamp = daysAgo(0).toISOString();
    const body = JSON.stringify({
      batch: [
        { type: 'identify', userId: user, messageId: `${run}-1`, timestamp, traits: { plan: 'pro' } },
        { type: 'group', userId: user, groupId: account, messageId: `${run}-2`, timestamp, traits: { name: 'Replay Inc' } },
        { type: 'track', userId: user, event: 'Invoice Paid', messageId: `${run}-3`, timestamp, properties: { amount: 99 } },
        // No messageId: the server derives one, and must derive the same one on every delivery.
        { type: 'track', userId: user, event: 'Seat Added', timestamp },
      ],
    });
    // A change marker's `version` counts deliveries, so that the evaluator notices a write racing with its own
    // read; it is bookkeeping, not data, and may move. Every other attribute of every item must stay as it was.
    const everything = async () =>
      [...(await partition('user', user)), ...(await partition('account', account))].map(({ version: _version, ...item }) => item);

    expect((await post(body)).status).toBe(200);
    const afterFirst = await everything();
    expect(messagesIn(afterFirst)).toHaveLength(4);

    expect((await post(body)).status).toBe(200);
    expect((await post(body)).status).toBe(200);

    expect(await everything()).toEqual(afterFirst);
  });

  // The event's sort key holds the day of its timestamp, and a message without one takes the time it was received:
  // the retry must take the first receipt's time, or it lands under another day and counts twice (invariant 2).
  it.each([
    ['with a messageId', (user: string) => ({ type: 'track', userId: user, event: 'Export Started', messageId: randomUUID() })],
    ['with neither messageId nor timestamp', (user: string) => ({ type: 'track', userId: user, event: 'Export Started' })],
  ])('keeps one event when a message without a timestamp, %s, is delivered again after midnight', async (_name, message) => {
    const user = `midnight-${randomUUID()}`;
    // Only Date is faked: the server in this process stamps receivedAt with it, while sockets and timers stay real.
    vi.useFakeTimers({ toFake: ['Date'] });
    const body = JSON.stringify({ batch: [message(user)] });
    const midnight = new Date(`${daysAgo(-1).toISOString().slice(0, 10)}T00:00:00.000Z`);

    vi.setSystemTime(midnight.getTime() - 200);
    expect((await post(body)).status).toBe(200);
    // The client did not see the first answer (a timeout) and retries a moment later, now on the next day.
    vi.setSystemTime(midnight.getTime() + 200);
    expect((await post(body)).status).toBe(200);

    expect(messagesIn(await partition('user', user))).toHaveLength(1);
  });
});
