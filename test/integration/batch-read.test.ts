import { describe, expect, it } from 'vitest';
import { getAll, putAll, type Item } from '../../functions/adapters/dynamodb/batch-write';
import { freshTable } from '../support/dynamodb';
import { leaveKeysUnprocessed } from '../support/faults';

const itemsOf = (count: number): Item[] => Array.from({ length: count }, (_, i) => ({ pk: { S: `WS#w#user#u${i}` }, sk: { S: 'STATE' }, n: { N: String(i) } }));
const keyOf = (item: Item): Item => ({ pk: item['pk']!, sk: item['sk']! });

describe('getAll on DynamoDB Local', () => {
  it('reads hundreds of keys over several calls at once, resending UnprocessedKeys, each item once', async () => {
    const { client, tableName } = await freshTable();
    const items = itemsOf(450);
    await putAll(client, tableName, items);
    const counts = leaveKeysUnprocessed(client, 3, 10);
    // Keys with no item are simply not found.
    const keys = [...items.map(keyOf), { pk: { S: 'WS#w#user#nobody' }, sk: { S: 'STATE' } }];
    const found = await getAll(client, tableName, keys, { consistent: true });
    expect(found.map((item) => Number(item['n']!.N)).sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    expect(counts.partial).toBe(3);
    // Five calls of 100 keys: more than one in flight at a time.
    expect(counts.mostAtOnce).toBeGreaterThan(1);
  });

  it('fails when keys stay unprocessed past the last round, with no call left running', async () => {
    const { client, tableName } = await freshTable();
    const items = itemsOf(250);
    await putAll(client, tableName, items);
    const counts = leaveKeysUnprocessed(client, 1_000, 10);
    await expect(getAll(client, tableName, items.map(keyOf), { maxRounds: 2 })).rejects.toThrow(/keys unprocessed after 2 rounds of BatchGetItem/);
    expect(counts.inFlight).toBe(0);
  });
});
