import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { HealthReport } from '../../functions/analysis/live-health';
import { loadRulesFile } from '../../functions/local/rules-file';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { evaluatePath } from '../../functions/local/evaluate-route';
import { cli } from '../support/cli';
import { RecordingPublisher } from '../support/lead-events';

/**
 * `pql-radar replay --paced` into the local runtime: a day of the sample at a time, the runtime's evaluator run at each
 * day's end, so leads qualify on the days they would have live and rule health sees them qualify before converting.
 */

const { ruleset } = loadRulesFile(join(import.meta.dirname, '../../examples/activation.rules.yaml'));
const leads = new RecordingPublisher();
let dev: DevRuntime;

beforeAll(async () => {
  // Timed runs every 50 ms: without the paced replay's hold they would evaluate its days at the wall clock.
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `paced-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 50 });
});

afterAll(async () => {
  await dev?.stop();
});

describe('replay --paced', () => {
  it('qualifies leads at the ends of their days, before their conversions, and rule health measures them', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pql-radar-paced-')), 'sample.jsonl');
    expect((await cli('sample', '--out', file, '--users', '40', '--days', '20')).code).toBe(0);
    const replay = await cli('replay', file, '--url', dev.url, '--write-key', dev.writeKey, '--paced');
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/^\d{4}-\d\d-\d\d: sent \d+ messages; evaluated \d+, \d+ transitions$/m);

    const qualified = leads.published.filter((event) => event.detailType === 'Lead Qualified');
    expect(qualified.length).toBeGreaterThan(3);
    // Every run but the last (at the wall clock, the stream's end) was at a day's end: no timed run slipped in.
    const midnights = qualified.filter((event) => event.detail.evaluatedAt.endsWith('T00:00:00.000Z'));
    expect(midnights.length).toBeGreaterThanOrEqual(qualified.length - 1);
    expect(new Set(qualified.map((event) => event.detail.evaluatedAt.slice(0, 10))).size).toBeGreaterThan(3);

    const health = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--json');
    const report = JSON.parse(health.stdout) as HealthReport;
    const converted = report.tiers.reduce((sum, tier) => sum + tier.qualified.converted, 0);
    expect(converted).toBeGreaterThan(0);
    expect(report.tiers.some((tier) => tier.lift !== null)).toBe(true);
    // Twenty-one evaluator runs one after another against DynamoDB Local, and three CLI processes: about 23 s alone on
    // two cores, over 30 s beside the rest of the suite.
  }, 120_000);

  it('refuses a time before one already evaluated, a bad time, the future, and other sites', async () => {
    const post = (body: string, headers: Record<string, string> = {}) => fetch(`${dev.url}${evaluatePath}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const early = await post(JSON.stringify({ at: '2020-01-01T00:00:00Z' }));
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: string }).error).toMatch(/already evaluated leads at .*: replay paced history into a fresh runtime/);
    const bad = await post(JSON.stringify({ at: 'yesterday' }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ path: 'at', error: expect.stringContaining('must be an ISO time') });
    expect((await post(JSON.stringify({ at: new Date(Date.now() + 3_600_000).toISOString() }))).status).toBe(400);
    expect((await post('not json')).status).toBe(400);
    expect((await post(JSON.stringify({ at: new Date().toISOString() }), { origin: 'https://evil.example' })).status).toBe(403);
    const now = await post(JSON.stringify({ at: new Date().toISOString() }));
    expect(now.status).toBe(200);
    expect(await now.json()).toMatchObject({ evaluated: expect.any(Number), transitions: expect.any(Number) });
  });

  it('holds the timed runs while the replay keeps sending, however long a day takes, and hands the clock back after', async () => {
    const runs: string[] = [];
    const paced = await startDev({
      port: 0,
      endpoint: inject('dynamoEndpoint'),
      tableName: `paced-${randomUUID()}`,
      ruleset,
      leads: new RecordingPublisher(),
      evaluateEveryMs: 20,
      // Ten times the spacing of the events below: a request slowed by a loaded machine does not end the hold early.
      pacedHoldMs: 1000,
      onEvaluation: () => runs.push(new Date().toISOString()),
    });
    try {
      const post = (at: string) => fetch(`${paced.url}${evaluatePath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at }) });
      expect((await post(new Date(Date.now() - 86_400_000).toISOString())).status).toBe(200);
      const afterCall = runs.length;
      // Events for longer than the hold, one every 100 ms: no timed run in between.
      for (let sent = 0; sent < 15; sent++) {
        const response = await fetch(`${paced.url}/v1/track`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`${paced.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
          body: JSON.stringify({ userId: 'slow-day', event: 'Page Viewed', timestamp: new Date(Date.now() - 86_400_000).toISOString() }),
        });
        expect(response.status).toBe(200);
        await new Promise((done) => setTimeout(done, 100));
      }
      expect(runs.length).toBe(afterCall);
      // Then silence: the hold ends and timed runs come back.
      await vi.waitFor(() => expect(runs.length).toBeGreaterThan(afterCall), { timeout: 5000, interval: 50 });
    } finally {
      await paced.stop();
    }
  });

  it('says the endpoint cannot pace when it has no local evaluator', async () => {
    const ingestOnly = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `paced-${randomUUID()}`, evaluateEveryMs: 0 });
    try {
      const file = join(mkdtempSync(join(tmpdir(), 'pql-radar-paced-')), 'sample.jsonl');
      await cli('sample', '--out', file, '--users', '4', '--days', '2');
      const replay = await cli('replay', file, '--url', ingestOnly.url, '--write-key', ingestOnly.writeKey, '--paced');
      expect(replay.code).not.toBe(0);
      expect(replay.stderr).toContain('has no evaluator to pace');
    } finally {
      await ingestOnly.stop();
    }
  });

  it('says why it cannot reach the endpoint, not only that a fetch failed', async () => {
    // Port 4 is below the ephemeral range, so no server another test file starts on port 0 can take it, and off fetch's
    // list of ports it refuses to ask (9, discard, is on it).
    const replay = await cli('replay', '--url', 'http://127.0.0.1:4', '--write-key', 'pqr_unused');
    expect(replay.code).toBe(1);
    expect(replay.stderr).toBe('pql-radar: fetch failed (connect ECONNREFUSED 127.0.0.1:4)\n');
  });
});
