import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import type { BacktestReport } from '../../functions/analysis/report';
import { startDev } from '../../functions/local/dev';
import { exampleBehaviours, generatePlantedStream } from '../../functions/cli/planted-stream';
import { cli } from '../support/cli';

const dir = mkdtempSync(join(tmpdir(), 'pql-backtest-ddb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('replays and mines the events stored in the live table exactly as the same events from a file', async () => {
  const stream = generatePlantedStream({ seed: 7, users: 60, accounts: 6, days: 20, behaviours: exampleBehaviours });
  const events = join(dir, 'events.jsonl');
  const conversions = join(dir, 'conversions.csv');
  writeFileSync(events, stream.messages.map((message) => JSON.stringify(message)).join('\n'));
  writeFileSync(conversions, ['entity_type,entity_id,converted_at', ...stream.conversions.map((c) => `${c.type},${c.id},${c.convertedAt}`)].join('\n'));

  const tableName = `backtest-${randomUUID()}`;
  const dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName, workspace: 'acme', evaluateEveryMs: 0 });
  try {
    for (let i = 0; i < stream.messages.length; i += 500) {
      const response = await fetch(`${dev.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ batch: stream.messages.slice(i, i + 500) }),
      });
      expect(response.status).toBe(200);
    }
  } finally {
    await dev.stop();
  }

  const common = ['backtest', '--rules', 'examples/activation.rules.yaml', '--conversions', conversions, '--json'];
  const fromFile = await cli(...common, '--events', events);
  const fromTable = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, ...common, '--source', 'dynamodb', '--workspace', 'acme');
  expect(fromFile.code, fromFile.stderr).toBe(0);
  expect(fromTable.code, fromTable.stderr).toBe(0);
  const strip = (report: BacktestReport) => ({ ...report, generatedAt: '' });
  const fileReport = JSON.parse(fromFile.stdout) as BacktestReport;
  expect(fileReport.input.eventsRead).toBe(stream.messages.length);
  expect(strip(JSON.parse(fromTable.stdout) as BacktestReport)).toEqual(strip(fileReport));

  // discover reads through the same path.
  const discoverArgs = ['discover', '--conversions', conversions, '--min-users', '5'];
  const discoverFile = await cli(...discoverArgs, '--events', events);
  const discoverTable = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, ...discoverArgs, '--source', 'dynamodb', '--workspace', 'acme');
  expect(discoverFile.code, discoverFile.stderr).toBe(0);
  expect(discoverTable.stdout).toBe(discoverFile.stdout);
  expect(discoverFile.stdout).toContain(`read ${stream.messages.length.toLocaleString('en-US')} messages`);

  const both = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, ...common, '--source', 'dynamodb', '--events', events);
  expect(both.code).toBe(1);
  expect(both.stderr).toContain('--events and --source dynamodb exclude each other');
});
