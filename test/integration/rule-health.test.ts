import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { HealthReport } from '../../functions/analysis/live-health';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { cli } from '../support/cli';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

/** `pql-radar health` through the CLI, against what the local runtime ingested and evaluated. */

const rules = loadRules(
  `version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, at_least: 2, points: 50 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
conversion: { event: Order Completed }
`,
  'health rules',
);

const now = new Date();
const ago = (days: number) => new Date(now.getTime() - days * 86_400_000);
const track = (userId: string, event: string, at: Date) => ({ type: 'track', userId, event, timestamp: at.toISOString(), messageId: `${userId}-${event}-${at.toISOString()}` });

let dev: DevRuntime;

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `health-${randomUUID()}`, ruleset: rules, leads: new RecordingPublisher(), evaluateEveryMs: 0 });
  // ada and bob qualify; cy and dan never do.
  await sendBatch(dev, [
    track('ada', 'Dashboard Created', ago(5)),
    track('ada', 'Dashboard Created', ago(4.5)),
    track('bob', 'Dashboard Created', ago(5)),
    track('bob', 'Dashboard Created', ago(4.5)),
    track('cy', 'Page Viewed', ago(4.5)),
    track('dan', 'Page Viewed', ago(4.5)),
  ]);
  await dev.evaluateOnce(ago(4));
  // Two days after qualifying ada buys; so does cy, whom the rules left alone.
  await sendBatch(dev, [track('ada', 'Order Completed', ago(2)), track('cy', 'Order Completed', ago(2))]);
  await dev.evaluateOnce(now);
});

afterAll(async () => {
  await dev?.stop();
});

describe('pql-radar health, against DynamoDB Local', () => {
  it("reports the tier's leads and their conversion against the non-leads', with the small-sample warnings", async () => {
    const { code, stdout, stderr } = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--since', '30d', '--workspace', 'default', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as HealthReport;
    expect(report.entities).toEqual({ user: 4, account: 0 });
    expect(report.tiers).toHaveLength(1);
    expect(report.tiers[0]).toMatchObject({ tier: 'PQL-A', level: 'user', qualified: { entities: 2, converted: 1 }, notQualified: { entities: 2, converted: 1 }, medianDaysToConversion: 2 });
    expect(report.tiers[0]!.lift!.value).toBeCloseTo(1);
    expect(report.warnings).toContain('Tier PQL-A: only 2 qualified entities (under 30): too few to trust its rates.');
  });

  it('shows the same figures on /leads/health as the CLI prints with --json', async () => {
    const { stdout } = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--since', '30d', '--workspace', 'default', '--json');
    const tier = (JSON.parse(stdout) as HealthReport).tiers[0]!;
    const response = await fetch(`${dev.url}/leads/health?since=30d&workspace=default`);
    expect(response.status).toBe(200);
    const page = await response.text();
    const shown = Object.fromEntries([...page.matchAll(/data-metric="([^"]+)" data-value="([^"]+)"/g)].map(([, key, value]) => [key, value === 'null' ? null : Number(value)]));
    expect(shown).toEqual({
      'health:PQL-A:qualified:converted': tier.qualified.converted,
      'health:PQL-A:qualified:entities': tier.qualified.entities,
      'health:PQL-A:notQualified:converted': tier.notQualified.converted,
      'health:PQL-A:notQualified:entities': tier.notQualified.entities,
      'health:PQL-A:lift:value': tier.lift!.value,
      'health:PQL-A:alertsPerWeek': tier.alertsPerWeek,
      'health:PQL-A:medianDaysToConversion': tier.medianDaysToConversion,
    });
    expect(page).toContain('too few to trust its rates');
    expect((await fetch(`${dev.url}/leads/health?since=soon`)).status).toBe(400);
  });

  it('prints the table, and nothing evaluated in another workspace', async () => {
    const table = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/PQL-A +user +1\/2 50% /);
    const elsewhere = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--workspace', 'nobody', '--json');
    expect((JSON.parse(elsewhere.stdout) as HealthReport).warnings).toEqual(['No entity was evaluated in the last 90 days.']);
  });
});
