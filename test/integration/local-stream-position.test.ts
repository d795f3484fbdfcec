import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteTableCommand, GetItemCommand, PutItemCommand, waitUntilTableNotExists, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient, GetShardIteratorCommand, TrimmedDataAccessException } from '@aws-sdk/client-dynamodb-streams';
import { afterEach, expect, inject, it, vi } from 'vitest';
import { DynamoDbChangeCapture, type WrittenKey } from '../../functions/adapters/dynamodb/change-capture';
import { entityPartitionKey, metaPartitionKey, streamPositionSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { recordShardCount } from '../../functions/adapters/dynamodb/shard-count';
import { loadRules } from '../../functions/core/rules/load';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { createDynamoDbClient, ensureTable } from '../../functions/local/dynamodb-local';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { listedChanges, twoDashboardsRules } from '../support/change-capture';
import { RecordingPublisher } from '../support/lead-events';
import { cli } from '../support/cli';
import { sendBatch } from '../support/send-batch';

// Locally nothing keeps the table stream's position for the evaluator but the table itself (deployed, the event source
// mapping keeps it): a pass reads only what it has not already handed over, across `evaluate --once` invocations and
// npm start restarts, and moves the position only once what it read is in a change list or evaluated.

const runtimes: DevRuntime[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const runtime of runtimes.splice(0)) await runtime.stop();
});

/** A local runtime whose evaluator runs only when asked, stopped after the test. */
async function started(options: Parameters<typeof startDev>[0]): Promise<DevRuntime> {
  const dev = await startDev({ port: 0, evaluateEveryMs: 0, leads: new RecordingPublisher(), ...options });
  runtimes.push(dev);
  return dev;
}

async function stopped(dev: DevRuntime): Promise<void> {
  runtimes.splice(runtimes.indexOf(dev), 1);
  await dev.stop();
}

const dashboard = (userId: string, messageId: string) => ({ type: 'track', userId, event: 'Dashboard Created', messageId, timestamp: new Date(Date.now() - 3_600_000).toISOString() });

/** The position item the readers keep in the table. */
async function savedPosition(client: DynamoDBClient, tableName: string) {
  return (await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: metaPartitionKey }, sk: { S: streamPositionSortKey } }, ConsistentRead: true }))).Item;
}

/** A reader that keeps its position in the table, as npm start's and `evaluate`'s do. */
function recordingReader(client: DynamoDBClient, tableName: string) {
  const keys: WrittenKey[] = [];
  const stream = new LocalChangeStream(client, tableName, { mark: async (read) => keys.push(...read) }, { positionInTable: true });
  return {
    /** The partition keys of the event items the next drain reads. */
    async eventsRead(): Promise<string[]> {
      keys.length = 0;
      await stream.drain();
      return keys.filter((key) => key.sk.startsWith('EVT#')).map((key) => key.pk);
    },
    stream,
  };
}

it('evaluate --once reads only what came since the last pass: nothing new evaluates no one, a new event its user alone', async () => {
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-cli-${randomUUID()}` });
  const rulesFile = join(mkdtempSync(join(tmpdir(), 'stream-position-')), 'rules.yaml');
  writeFileSync(rulesFile, twoDashboardsRules);
  const pass = () => cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'evaluate', '--once', '--rules', rulesFile);
  await sendBatch(dev, [dashboard('ann', 'd1'), dashboard('bob', 'd2')]);

  const first = await pass();
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout).toContain('evaluated 2 entities, 0 transitions');

  const again = await pass();
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toContain('evaluated 0 entities, 0 transitions');

  await sendBatch(dev, [dashboard('ann', 'd3')]);
  const after = await pass();
  expect(after.code, after.stderr).toBe(0);
  expect(after.stdout).toContain('evaluated 1 entity, 1 transition');
  expect(after.stdout).toMatch(/LEAD QUALIFIED +user ann /);
}, 120_000);

it('npm start restarted on the same --data-dir reads on from where it was, and evaluates only what came since', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'stream-position-data-'));
  const ruleset = loadRules(twoDashboardsRules, 'rules.yaml');
  const first = await started({ dataDir, ruleset });
  await sendBatch(first, [dashboard('ann', 'd1'), dashboard('bob', 'd2')]);
  expect((await first.evaluateOnce()).evaluated).toBe(2);
  await stopped(first);

  const second = await started({ dataDir, ruleset });
  expect((await second.evaluateOnce()).evaluated).toBe(0);
  await sendBatch(second, [dashboard('bob', 'd3')]);
  expect(await second.evaluateOnce()).toMatchObject({ evaluated: 1, transitions: [expect.objectContaining({ detail: expect.objectContaining({ entity: expect.objectContaining({ id: 'bob' }) }) })] });
}, 120_000);

it('leaves the position where it was when a pass stops between listing the changes and saving it: the next pass reads them again', async () => {
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-crash-${randomUUID()}` });
  await sendBatch(dev, [dashboard('ann', 'd1')]);
  // A client whose write of the position fails, as a pass killed right after its change lists were written.
  const crashing = createDynamoDbClient(dev.endpoint);
  crashing.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Item?: { sk?: { S?: string } } };
      if (context.commandName === 'PutItemCommand' && input.Item?.sk?.S === streamPositionSortKey) throw new Error('killed before the position was saved');
      return next(args);
    },
    { step: 'initialize' },
  );
  const crashed = new LocalChangeStream(crashing, dev.tableName, new DynamoDbChangeCapture(crashing, dev.tableName, 4), { positionInTable: true });
  await expect(crashed.drain()).rejects.toThrow('killed before the position was saved');
  crashed.stop();
  crashing.destroy();
  expect([...(await listedChanges(dev.client, dev.tableName)).keys()]).toEqual(['user ann']);
  expect(await savedPosition(dev.client, dev.tableName)).toBeUndefined();

  const reader = recordingReader(dev.client, dev.tableName);
  expect(await reader.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'ann')]);
  // Saved this time: the next drain has nothing of hers.
  expect(await reader.eventsRead()).toEqual([]);
  reader.stream.stop();
});

it('reads a table deleted and created again under the same name from its new stream, with nothing of the old one', async () => {
  const ruleset = loadRules(twoDashboardsRules, 'rules.yaml');
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-recreated-${randomUUID()}`, ruleset });
  await sendBatch(dev, [dashboard('ann', 'd1'), dashboard('bob', 'd2')]);
  expect((await dev.evaluateOnce()).evaluated).toBe(2);
  const before = await savedPosition(dev.client, dev.tableName);

  await dev.client.send(new DeleteTableCommand({ TableName: dev.tableName }));
  await waitUntilTableNotExists({ client: dev.client, maxWaitTime: 60 }, { TableName: dev.tableName });
  await ensureTable(dev.client, dev.tableName);
  await recordShardCount(dev.client, dev.tableName, 4);
  await dev.keys.create(dev.workspace, { existingKey: dev.writeKey });
  await sendBatch(dev, [dashboard('cy', 'd3'), dashboard('cy', 'd4')]);
  // The running runtime, whose last read was of the old stream, reads the new one: cy alone, who qualifies.
  const summary = await dev.evaluateOnce();
  expect(summary.transitions.map((event) => `${event.detail.entity.id} ${event.detail.tier}`)).toEqual(['cy PQL-A']);
  expect(summary.evaluated).toBe(1);
  const after = await savedPosition(dev.client, dev.tableName);
  expect(after?.['streamArn']?.S).not.toBe(before?.['streamArn']?.S);
}, 60_000);

it("starts a shard its position does not name from the shard's start: one no longer listed (trimmed) is dropped, and a position of another stream is ignored", async () => {
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-trimmed-${randomUUID()}` });
  await sendBatch(dev, [dashboard('ann', 'd1')]);
  const reader = recordingReader(dev.client, dev.tableName);
  await reader.eventsRead();
  const saved = (await savedPosition(dev.client, dev.tableName))!;
  const [shardId, sequenceNumber] = Object.entries(saved['shards']!.M!)[0]!;

  // The position names a shard trimmed since (its records, once read, now in a child it never read) and not the one listed.
  const put = (item: Record<string, AttributeValue>) => dev.client.send(new PutItemCommand({ TableName: dev.tableName, Item: { ...saved, ...item } }));
  await put({ shards: { M: { 'shardId-00000001000000000000-0123abcd': { S: sequenceNumber.S! } } } });
  expect(await reader.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'ann')]);
  expect(Object.keys((await savedPosition(dev.client, dev.tableName))!['shards']!.M!)).toEqual([shardId]);

  // The same shard and sequence number, but of another stream (a table created again): read from the start too.
  await put({ streamArn: { S: `${saved['streamArn']!.S!}-before` } });
  expect(await reader.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'ann')]);
  expect(await reader.eventsRead()).toEqual([]);
  reader.stream.stop();
});

it('reads a shard from the oldest record it keeps when the records after its position have been trimmed', async () => {
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-expired-${randomUUID()}` });
  await sendBatch(dev, [dashboard('ann', 'd1')]);
  const reader = recordingReader(dev.client, dev.tableName);
  await reader.eventsRead();
  await sendBatch(dev, [dashboard('bob', 'd2')]);
  // DynamoDB Streams answer so once the records are over 24 hours old (DynamoDB Local's GetRecords likewise).
  const send = DynamoDBStreamsClient.prototype.send;
  vi.spyOn(DynamoDBStreamsClient.prototype, 'send').mockImplementation(function (this: DynamoDBStreamsClient, command: unknown) {
    if (command instanceof GetShardIteratorCommand && command.input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER') {
      return Promise.reject(new TrimmedDataAccessException({ message: 'trimmed', $metadata: {} }));
    }
    return (send as (command: unknown) => Promise<unknown>).call(this, command);
  } as typeof send);
  expect(await reader.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'ann'), entityPartitionKey(dev.workspace, 'user', 'bob')]);
  reader.stream.stop();
});

it('never skips a record when two readers save at once: the one that saves last moves the position back, and its records are read again', async () => {
  const dev = await started({ endpoint: inject('dynamoEndpoint'), tableName: `position-concurrent-${randomUUID()}` });
  await sendBatch(dev, [dashboard('ann', 'd1')]);
  // npm start's timer reads ann's event, and is slow to hand it over.
  let handOver: (() => void) | undefined;
  const slow = new LocalChangeStream(dev.client, dev.tableName, { mark: () => new Promise<void>((done) => (handOver = done)) }, { positionInTable: true });
  const slowDrain = slow.drain();
  await vi.waitFor(() => expect(handOver).toBeDefined());

  // Meanwhile `evaluate --once` reads ann's event and bob's, and saves its position past them.
  await sendBatch(dev, [dashboard('bob', 'd2')]);
  const fast = recordingReader(dev.client, dev.tableName);
  expect(await fast.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'ann'), entityPartitionKey(dev.workspace, 'user', 'bob')]);
  // Then the slow one saves its own, before bob's event.
  handOver!();
  await slowDrain;
  slow.stop();
  expect(await fast.eventsRead()).toEqual([entityPartitionKey(dev.workspace, 'user', 'bob')]);
  fast.stream.stop();
});
