import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect, inject, it, vi } from 'vitest';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { entityPartitionKey, metaPartitionKey, shardCountSortKey, shardOf } from '../../functions/adapters/dynamodb/item-keys';
import { readShardCount, recordShardCount } from '../../functions/adapters/dynamodb/shard-count';
import { DynamoDbChangeCapture } from '../../functions/adapters/dynamodb/change-capture';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { createDynamoDbClient } from '../../functions/local/dynamodb-local';
import { startDev } from '../../functions/local/dev';
import { loadRulesFile } from '../../lib/config';
import { cli } from '../support/cli';
import { freshTable } from '../support/dynamodb';
import { stubEvaluatorEnvironment } from '../support/evaluator-environment';
import { lambdaContext } from '../support/lambda-context';


// The shard count cannot disagree between the CLI and whatever writes to the table: the table records it.

it('the deployed evaluator records its DIRTY_SHARDS in the table on its first run', async () => {
  const { client, tableName } = await freshTable();
  expect(await readShardCount(client, tableName)).toBeUndefined();
  // The rules as the stack bundles them: compiled from the YAML at synth.
  stubEvaluatorEnvironment({ tableName, ruleset: loadRulesFile(join(import.meta.dirname, '../../examples/activation.rules.yaml')).ruleset, shards: 8 });
  try {
    const { handler } = await import('../../functions/evaluator/handler');
    await handler({ shard: 0 }, lambdaContext());
    await expect(handler({ shard: -1 }, lambdaContext())).rejects.toThrow(new Error('shard must be a whole number from 0, not -1'));
  } finally {
    vi.unstubAllEnvs();
  }
  expect(await readShardCount(client, tableName)).toEqual({ shards: 8, highest: 8 });
});

it('pql-radar evaluate works on every shard the table records, and refuses another count or none', async () => {
  const endpoint = inject('dynamoEndpoint');
  const tableName = `shards-${randomUUID()}`;
  // A user whose changes land in a shard that a CLI assuming the default 4 shards never reads.
  await trackedInUpperShard(endpoint, tableName, async (dev) => expect(await readShardCount(dev.client, tableName)).toEqual({ shards: 8, highest: 8 }));

  const table = ['--endpoint', endpoint, '--table', tableName];
  const otherCount = await cli(...table, 'evaluate', '--once', '--shards', '4');
  expect(otherCount.code).toBe(1);
  expect(otherCount.stderr).toBe(`pql-radar: --shards 4: table ${tableName} has 8 shards (recorded by its evaluator); leave --shards out\n`);

  const evaluated = await cli(...table, 'evaluate', '--once');
  expect(evaluated.code, evaluated.stderr).toBe(0);
  expect(evaluated.stdout).toContain('evaluated 1 entity, ');

  const { tableName: unrecorded } = await freshTable();
  const none = await cli('--endpoint', endpoint, '--table', unrecorded, 'evaluate', '--once');
  expect(none.code).toBe(1);
  expect(none.stderr).toContain(`table ${unrecorded} records no shard count yet`);
}, 120_000);

it('keeps every count the table had: a table recorded before with only its last count keeps that one too', async () => {
  const { client, tableName } = await freshTable();
  await client.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: metaPartitionKey }, sk: { S: shardCountSortKey }, shards: { N: '8' } } }));
  expect(await recordShardCount(client, tableName, 4)).toEqual({ shards: 4, highest: 8 });
  expect(await recordShardCount(client, tableName, 2)).toEqual({ shards: 2, highest: 8 });
  expect(await recordShardCount(client, tableName, 16)).toEqual({ shards: 16, highest: 16 });
  expect(await readShardCount(client, tableName)).toEqual({ shards: 16, highest: 16 });
});

it('after the count goes down, the deployed evaluator still evaluates a change left in a shard of the higher count', async () => {
  const endpoint = inject('dynamoEndpoint');
  const tableName = `shards-${randomUUID()}`;
  const left = await trackedInUpperShard(endpoint, tableName);
  // Listed as change capture listed it before the count went down: in the user's shard of 8.
  const client = createDynamoDbClient(endpoint);
  const stream = new LocalChangeStream(client, tableName, new DynamoDbChangeCapture(client, tableName, 8));
  await stream.drain();
  stream.stop();

  // Deployed again with 4 shards: the invocation of shard left - 4 runs the shard left too, a minute later (a deployed
  // run reads a list once it is 20 seconds old).
  vi.resetModules();
  stubEvaluatorEnvironment({ tableName, ruleset: loadRulesFile(join(import.meta.dirname, '../../examples/activation.rules.yaml')).ruleset, shards: 4 });
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 60_000 });
  try {
    const { handler } = await import('../../functions/evaluator/handler');
    expect(await handler({ shard: left - 4 }, lambdaContext())).toMatchObject({ evaluated: 1 });
    // The other invocations find nothing of hers.
    for (const shard of [0, 1, 2, 3].filter((shard) => shard !== left - 4)) expect(await handler({ shard }, lambdaContext())).toMatchObject({ evaluated: 0 });
  } finally {
    vi.useRealTimers();
    vi.unstubAllEnvs();
  }
  expect(await readShardCount(client, tableName)).toEqual({ shards: 4, highest: 8 });
  client.destroy();
}, 120_000);

/**
 * An event of a user in one of the shards 4 to 7 of 8, sent to a local runtime of 8 shards on a new table (`whileUp`
 * runs while it is up); the user's shard.
 */
async function trackedInUpperShard(endpoint: string, tableName: string, whileUp?: (dev: Awaited<ReturnType<typeof startDev>>) => Promise<void>): Promise<number> {
  const dev = await startDev({ port: 0, endpoint, tableName, workspace: 'acme', dirtyShards: 8, evaluateEveryMs: 0 });
  const shardOfUser = (id: string) => Number(shardOf(entityPartitionKey('acme', 'user', id), 8));
  const userId = Array.from({ length: 100 }, (_, i) => `user-${i}`).find((id) => shardOfUser(id) >= 4)!;
  try {
    await whileUp?.(dev);
    const response = await fetch(`${dev.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId, event: 'Dashboard Created' }),
    });
    expect(response.status).toBe(200);
  } finally {
    await dev.stop();
  }
  return shardOfUser(userId);
}
