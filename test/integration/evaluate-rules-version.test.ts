import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { recordShardCount } from '../../functions/adapters/dynamodb/shard-count';
import { cli, cliWithEnvironment } from '../support/cli';
import { freshTable } from '../support/dynamodb';
import { startEventBridgeEndpoint, type EventBridgeEndpoint } from '../support/eventbridge-endpoint';

// `evaluate --once --event-bus` is what an operator runs against a deployment (the alarm of entities not evaluated
// says so): with rules other than the deployment's it would re-evaluate every lead and publish what moved.

let bus: EventBridgeEndpoint;
beforeAll(async () => {
  bus = await startEventBridgeEndpoint();
});
afterAll(async () => {
  await bus.close();
});

/** A table the example rules (a deployment's, or npm start's) evaluated first, and a rules file of another version. */
async function evaluatedTable(): Promise<{ table: string[]; otherRules: string }> {
  const { client, tableName } = await freshTable();
  await recordShardCount(client, tableName, 2);
  const table = ['--endpoint', inject('dynamoEndpoint'), '--table', tableName];
  expect((await cli(...table, 'evaluate', '--once')).code).toBe(0);
  const otherRules = join(mkdtempSync(join(tmpdir(), 'rules-version-')), 'other.rules.yaml');
  writeFileSync(otherRules, 'version: 1\nsignals:\n  active: { event: Logged In, points: 10 }\ntiers:\n  - { name: PQL-A, min_score: 10, route: sales }\n');
  return { table, otherRules };
}

it('refuses to publish with rules other than those the table was evaluated with, and publishes with the same', async () => {
  const { table, otherRules } = await evaluatedTable();
  const withBus = (...args: string[]) => cliWithEnvironment({ ...process.env, AWS_ENDPOINT_URL_EVENTBRIDGE: bus.url, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' }, ...table, 'evaluate', '--once', '--event-bus', 'leads', ...args);

  const refused = await withBus('--rules', otherRules);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(new RegExp(`--rules ${otherRules} is rules version \\w+, but the table's leads were evaluated with version \\w+ \\(its evaluator's\\)`));
  expect(refused.stderr).toContain('give --rules the rules file your deployment config names');
  expect(refused.stdout).toBe('');

  const same = await withBus();
  expect(same.code, same.stderr).toBe(0);
  expect(same.stdout).toContain('evaluated 0 entities');
}, 120_000);

it('refuses, locally too, rules other than those the table was evaluated with, unless --rules-change asks for the change', async () => {
  const { table, otherRules } = await evaluatedTable();
  const refused = await cli(...table, 'evaluate', '--once', '--rules', otherRules);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(new RegExp(`--rules ${otherRules} is rules version \\w+, but the table's leads were evaluated with version \\w+ \\(npm start's rules, or an earlier pass's\\)`));
  expect(refused.stderr).toContain('or --rules-change to judge the leads under it');

  const changed = await cli(...table, 'evaluate', '--once', '--rules', otherRules, '--rules-change');
  expect(changed.code, changed.stderr).toBe(0);
  // The table's leads are now those rules': the same file is taken without the flag.
  expect((await cli(...table, 'evaluate', '--once', '--rules', otherRules)).code).toBe(0);
}, 120_000);
