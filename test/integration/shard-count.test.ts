import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect, inject, it, vi } from 'vitest';
import { entityPartitionKey, shardOf } from '../../functions/adapters/dynamodb/item-keys';
import { readShardCount } from '../../functions/adapters/dynamodb/shard-count';
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
  expect(await readShardCount(client, tableName)).toBe(8);
});

it('pql-radar evaluate works on every shard the table records, and refuses another count or none', async () => {
  const endpoint = inject('dynamoEndpoint');
  const tableName = `shards-${randomUUID()}`;
  const dev = await startDev({ port: 0, endpoint, tableName, workspace: 'acme', dirtyShards: 8, evaluateEveryMs: 0 });
  // A user whose changes land in a shard that a CLI assuming the default 4 shards never reads.
  const userId = Array.from({ length: 100 }, (_, i) => `user-${i}`).find((id) => Number(shardOf(entityPartitionKey('acme', 'user', id), 8)) >= 4)!;
  try {
    expect(await readShardCount(dev.client, tableName)).toBe(8);
    const response = await fetch(`${dev.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId, event: 'Dashboard Created' }),
    });
    expect(response.status).toBe(200);
  } finally {
    await dev.stop();
  }

  const table = ['--endpoint', endpoint, '--table', tableName];
  const otherCount = await cli(...table, 'evaluate', '--once', '--shards', '4');
  expect(otherCount.code).toBe(1);
  expect(otherCount.stderr).toBe(`pql-radar: --shards 4: table ${tableName} has 8 shards (recorded by its evaluator); leave --shards out\n`);

  const evaluated = await cli(...table, 'evaluate', '--once');
  expect(evaluated.code, evaluated.stderr).toBe(0);
  expect(evaluated.stdout).toContain('evaluated 1 entities');

  const { tableName: unrecorded } = await freshTable();
  const none = await cli('--endpoint', endpoint, '--table', unrecorded, 'evaluate', '--once');
  expect(none.code).toBe(1);
  expect(none.stderr).toContain(`table ${unrecorded} records no shard count yet`);
}, 120_000);
