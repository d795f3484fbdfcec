import { describe, expect, it } from 'vitest';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { DynamoDbChangeCapture } from '../../functions/adapters/dynamodb/change-capture';
import { DynamoDbEventStore } from '../../functions/adapters/dynamodb/event-store';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { changesSortKey, entityPartitionKey, eventSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { validateMessage, type AcceptedMessage } from '../../functions/core/messages';
import type { LeadPublisher } from '../../functions/core/ports';
import { loadRules } from '../../functions/core/rules/load';
import { runEvaluator } from '../../functions/core/evaluate-leads';
import { freshTable } from '../support/dynamodb';

const first = new Date('2024-05-01T12:00:00.000Z');
const second = new Date('2024-05-01T12:05:00.000Z');
const third = new Date('2024-05-01T12:09:00.000Z');

function track(userId: string, receivedAt: Date): AcceptedMessage[] {
  const outcome = validateMessage(
    { type: 'track', userId, event: 'Dashboard Created', messageId: `${userId}-${receivedAt.toISOString()}`, timestamp: receivedAt.toISOString() },
    0,
    'acme',
    receivedAt,
  );
  if ('reason' in outcome) throw new Error(`test message is invalid: ${outcome.path} ${outcome.reason}`);
  return [outcome];
}

/** One shard, so that every entity lands in shard "0" and shard "1" stays empty. */
async function storesWithChanges() {
  const { client, tableName } = await freshTable();
  const events = new DynamoDbEventStore({ client, tableName });
  const capture = new DynamoDbChangeCapture(client, tableName, 1);
  // Change capture marks each write at the stream record's time: here, the time each event was received.
  for (const [userId, at] of [['u1', first], ['u2', second], ['u1', third]] as const) {
    const [message] = track(userId, at);
    await events.save('acme', [message!], at);
    // A later change of an entity already waiting keeps its first time: the change that waits longest counts.
    await capture.mark([{ pk: entityPartitionKey('acme', 'user', userId), sk: eventSortKey(message!.timestamp, message!.messageId), at }]);
  }
  return new DynamoDbEvaluationStore({ client, tableName, dirtyShards: 1 });
}

const publisher: LeadPublisher = { publish: async () => ({ failed: [] }) };
const ruleset = loadRules(
  `
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, points: 50 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
`,
  'lag test rules',
);

describe('evaluator lag', () => {
  it('is the time of the oldest unevaluated change of a shard, and nothing for a shard without changes', async () => {
    const store = await storesWithChanges();
    expect(await store.oldestChange('0')).toBe(first.toISOString());
    expect(await store.oldestChange('1')).toBeUndefined();

    const { client, tableName } = await freshTable();
    expect(await new DynamoDbEvaluationStore({ client, tableName }).oldestChange('0')).toBeUndefined();
  });

  it('is reported by a run: the age of what it left, and 0 once everything is evaluated', async () => {
    const store = await storesWithChanges();
    const now = new Date(third.getTime() + 60_000);

    const outOfTime = await runEvaluator({ store, publisher, ruleset, shards: ['0', '1'], now, deadline: 0 });
    expect(outOfTime.incompleteShards).toEqual(['0']);
    expect(outOfTime.lagSeconds).toBe((now.getTime() - first.getTime()) / 1000);

    const complete = await runEvaluator({ store, publisher, ruleset, shards: ['0', '1'], now, deadline: Number.POSITIVE_INFINITY });
    expect(complete.evaluated).toBe(2);
    expect(complete.lagSeconds).toBe(0);
  });

  it('evaluates the change markers an earlier version left, and deletes them', async () => {
    const { client, tableName } = await freshTable();
    const events = new DynamoDbEventStore({ client, tableName });
    const [message] = track('old', first);
    await events.save('acme', [message!], first);
    // What change capture wrote before change lists: a marker per entity, keyed in the dirty index by its shard.
    await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: {
          pk: { S: entityPartitionKey('acme', 'user', 'old') },
          sk: { S: changesSortKey },
          entityType: { S: 'user' },
          entityId: { S: 'old' },
          dirtyShard: { S: '0' },
          dirtySince: { S: first.toISOString() },
          days: { SS: ['2024-05-01'] },
          version: { N: '1' },
        },
      }),
    );
    const store = new DynamoDbEvaluationStore({ client, tableName, dirtyShards: 1 });
    const run = await runEvaluator({ store, publisher, ruleset, shards: ['0'], now: second, deadline: Number.POSITIVE_INFINITY });
    expect(run).toMatchObject({ evaluated: 1, lagSeconds: 0 });
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: entityPartitionKey('acme', 'user', 'old') }, sk: { S: changesSortKey } }, ConsistentRead: true }));
    expect(Item).toBeUndefined();
  });
});
