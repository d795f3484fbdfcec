import { inflateRawSync } from 'node:zlib';
import { QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbChangeLists } from '../../functions/adapters/dynamodb/change-lists';
import { changeListPartitionKey } from '../../functions/adapters/dynamodb/item-keys';
import type { ChangeMark } from '../../functions/core/ports';
import { freshTable } from '../support/dynamodb';

const mark = (id: string, days: string[], since = '2024-05-01T10:00:00.000Z'): ChangeMark => ({ ref: { workspace: 'acme', type: 'user', id }, days, since });
const ids = (marks: readonly ChangeMark[]) => marks.map((entry) => `${entry.ref.id}:${entry.days.join(',')}`).sort();

describe('change lists on DynamoDB Local', () => {
  it('reads what was listed after the cursor, each entity once with every day, and never moves the cursor back', async () => {
    const { client, tableName } = await freshTable();
    const lists = new DynamoDbChangeLists(client, tableName, { shards: 1 });
    await lists.add([mark('ann', ['2024-05-01']), mark('bob', ['2024-05-01'])]);
    await lists.add([mark('ann', ['2024-04-30'], '2024-05-01T09:00:00.000Z')]);
    expect(await lists.oldest('0')).toBe('2024-05-01T10:00:00.000Z');

    const first = await lists.read('0', { after: await lists.cursor('0'), upTo: lists.readableUpTo(), limit: 100 });
    expect(ids(first.marks)).toEqual(['ann:2024-04-30,2024-05-01', 'bob:2024-05-01']);
    expect(first.marks.find((entry) => entry.ref.id === 'ann')?.since).toBe('2024-05-01T09:00:00.000Z');

    await lists.advance('0', first.last!);
    await lists.add([mark('cat', ['2024-05-02'])]);
    // An overlapping run that read less cannot move the cursor back over what was evaluated.
    await lists.advance('0', '2000-01-01T00:00:00.000Z#0');
    const second = await lists.read('0', { after: await lists.cursor('0'), upTo: lists.readableUpTo(), limit: 100 });
    expect(ids(second.marks)).toEqual(['cat:2024-05-02']);
    await lists.advance('0', second.last!);
    expect(await lists.oldest('0')).toBeUndefined();
    expect((await lists.read('0', { after: await lists.cursor('0'), upTo: lists.readableUpTo(), limit: 100 })).marks).toEqual([]);
  });

  it('leaves a list written within settleMs to a later read, which finds it', async () => {
    const { client, tableName } = await freshTable();
    const writer = new DynamoDbChangeLists(client, tableName, { shards: 1 });
    const settling = new DynamoDbChangeLists(client, tableName, { shards: 1, settleMs: 60_000 });
    await writer.add([mark('dan', ['2024-05-01'])]);
    // A run reading now could pass a list whose write is still in flight elsewhere: it stops a minute back.
    expect((await settling.read('0', { after: undefined, upTo: settling.readableUpTo(), limit: 100 })).marks).toEqual([]);
    expect(ids((await writer.read('0', { after: undefined, upTo: writer.readableUpTo(), limit: 100 })).marks)).toEqual(['dan:2024-05-01']);
  });

  it('splits a long list into items that stay small, and reads them back whole', async () => {
    const { client, tableName } = await freshTable();
    const lists = new DynamoDbChangeLists(client, tableName, { shards: 1 });
    const many = Array.from({ length: 4_500 }, (_, i) => mark(`user-${i}`, ['2024-05-01']));
    await lists.add(many);
    const read = await lists.read('0', { after: undefined, upTo: lists.readableUpTo(), limit: Number.MAX_SAFE_INTEGER });
    expect(read.marks).toHaveLength(4_500);
  });

  it("keeps a waiting change's notBefore, the latest of an entity's, apart from the entries an earlier version reads", async () => {
    const { client, tableName } = await freshTable();
    const lists = new DynamoDbChangeLists(client, tableName, { shards: 1 });
    await lists.add([{ ...mark('ann', ['2024-05-01']), notBefore: '2024-05-01T10:05:00.000Z' }, mark('bob', ['2024-05-01'])]);
    await lists.add([{ ...mark('ann', ['2024-05-01']), notBefore: '2024-05-01T10:04:00.000Z' }]);
    await lists.add([mark('ann', ['2024-05-02'])]);
    const { marks } = await lists.read('0', { after: undefined, upTo: lists.readableUpTo(), limit: 100 });
    expect(marks.map((entry) => [entry.ref.id, entry.days, entry.notBefore])).toEqual([
      ['ann', ['2024-05-01', '2024-05-02'], '2024-05-01T10:05:00.000Z'],
      ['bob', ['2024-05-01'], undefined],
    ]);
    // The entries are the rows a version without waits reads (it judges the change at once: a rollback needs nothing).
    const { Items } = await client.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey('0') } } }));
    expect(JSON.parse(inflateRawSync(Items![0]!['entries']!.B!).toString('utf8'))).toEqual([
      ['acme', 'user', 'ann', '2024-05-01T10:00:00.000Z', '2024-05-01'],
      ['acme', 'user', 'bob', '2024-05-01T10:00:00.000Z', '2024-05-01'],
    ]);
    expect(Items!.map((item) => item['waits'] !== undefined)).toEqual([true, true, false]);
  });

  it("tells an account whose traits changed from one its members moved, and takes an earlier version's accounts as changed", async () => {
    const { client, tableName } = await freshTable();
    const lists = new DynamoDbChangeLists(client, tableName, { shards: 1 });
    const account = (id: string, days: string[]): ChangeMark => ({ ref: { workspace: 'acme', type: 'account', id }, days, since: '2024-05-01T10:00:00.000Z' });
    await lists.add([{ ...account('north', []), traitsChanged: true }, account('south', ['2024-05-01']), mark('ann', ['2024-05-01'])]);
    // Moved by a member in one list, new traits in a later one: its traits changed.
    await lists.add([account('west', ['2024-05-01'])]);
    await lists.add([{ ...account('west', []), traitsChanged: true }]);
    const read = async () => (await lists.read('0', { after: undefined, upTo: lists.readableUpTo(), limit: 100 })).marks.map((entry) => [entry.ref.id, entry.traitsChanged ?? false]).sort();
    expect(await read()).toEqual([
      ['ann', false],
      ['north', true],
      ['south', false],
      ['west', true],
    ]);

    // Lists an earlier version wrote have no `traits`: every account of theirs counts as changed, as that version judged it.
    const { Items } = await client.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: changeListPartitionKey('0') } } }));
    expect(Items!.map((item) => item['traits'] !== undefined)).toEqual([true, true, true]);
    for (const item of Items!) await client.send(new UpdateItemCommand({ TableName: tableName, Key: { pk: item['pk']!, sk: item['sk']! }, UpdateExpression: 'REMOVE traits' }));
    expect(await read()).toEqual([
      ['ann', false],
      ['north', true],
      ['south', true],
      ['west', true],
    ]);
  });
});
