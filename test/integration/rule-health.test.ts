import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { recordBacktest } from '../../functions/adapters/dynamodb/backtest-records';
import { DynamoDbLeadReader } from '../../functions/adapters/dynamodb/lead-reader';
import type { HealthReport, RecordedBacktest } from '../../functions/analysis/live-health';
import { outcome } from '../../functions/analysis/metrics';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { cli } from '../support/cli';
import { lambdaContext } from '../support/lambda-context';
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
    const report = JSON.parse(stdout) as HealthReport;
    const tier = report.tiers[0]!;
    const response = await fetch(`${dev.url}/leads/health?since=30d&workspace=default`);
    expect(response.status).toBe(200);
    const page = await response.text();
    const shown = Object.fromEntries([...page.matchAll(/data-metric="([^"]+)" data-value="([^"]+)"/g)].map(([, key, value]) => [key, value === 'null' ? null : Number(value)]));
    // Alerts per week are over the weeks up to the moment of each request, which differ by the milliseconds between them.
    expect(shown['health:PQL-A:alertsPerWeek']).toBeCloseTo(tier.alertsPerWeek, 4);
    expect({ ...shown, 'health:PQL-A:alertsPerWeek': tier.alertsPerWeek }).toEqual({
      'health:PQL-A:qualified:converted': tier.qualified.converted,
      'health:PQL-A:qualified:entities': tier.qualified.entities,
      'health:PQL-A:notQualified:converted': tier.notQualified.converted,
      'health:PQL-A:notQualified:entities': tier.notQualified.entities,
      'health:PQL-A:lift:value': tier.lift!.value,
      'health:PQL-A:alertsPerWeek': tier.alertsPerWeek,
      'health:PQL-A:medianDaysToConversion': tier.medianDaysToConversion,
      ...Object.fromEntries(
        report.signals.flatMap((signal) => {
          const key = (name: string) => `health:signal:${signal.signal}:${name}`;
          return [
            [key('fireRate'), signal.fireRate],
            [key('fired:converted'), signal.fired.converted],
            [key('fired:entities'), signal.fired.entities],
            [key('notFired:converted'), signal.notFired.converted],
            [key('notFired:entities'), signal.notFired.entities],
            [key('lift:value'), signal.lift?.value ?? null],
          ];
        }),
      ),
    });
    expect(report.signals.map((signal) => signal.signal)).toEqual(['dashboards']);
    expect(page).toContain('too few to trust its rates');
    expect((await fetch(`${dev.url}/leads/health?since=soon`)).status).toBe(400);
  });

  it('takes on /leads/health the periods `health --since` takes, and its form writes back one it takes', async () => {
    const weeks = await fetch(`${dev.url}/leads/health?since=2w`);
    expect(weeks.status).toBe(200);
    const page = await weeks.text();
    expect(page).toContain('The last 14 days (');
    const written = /<input name="since" value="([^"]+)"/.exec(page)![1]!;
    expect(written).toBe('14d');
    expect((await fetch(`${dev.url}/leads/health?since=${written}`)).status).toBe(200);
    for (const refused of ['12h', '30m', '0d']) {
      const answer = await fetch(`${dev.url}/leads/health?since=${refused}`);
      expect(answer.status, refused).toBe(400);
      expect(await answer.text()).toContain(`since &quot;${refused}&quot;: must be a number of days or weeks, at least 1, such as 30d or 2w`);
    }
  });

  it('keeps the workspace of /leads/health when its form is submitted, and in its link to the lead list', async () => {
    // The query a browser sends when the page's form is submitted as it is written: each input's name and value.
    const submitted = (page: string) => {
      const form = /<form method="get" action="\/leads\/health"[^>]*>([\s\S]*?)<\/form>/.exec(page)![1]!;
      return new URLSearchParams([...form.matchAll(/<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"/g)].map(([, name, value]): [string, string] => [name!, value!]));
    };
    const asked = await (await fetch(`${dev.url}/leads/health?since=2w&workspace=nobody`)).text();
    expect(asked).toContain('Nothing found for workspace &quot;nobody&quot;');
    expect(submitted(asked).toString()).toBe('workspace=nobody&since=14d');
    const resubmitted = await (await fetch(`${dev.url}/leads/health?${submitted(asked)}`)).text();
    expect(resubmitted).toContain('Nothing found for workspace &quot;nobody&quot;');
    expect(asked).toContain('<a href="/leads?workspace=nobody">All leads</a>');
    // Asked for none, the page is of every workspace, and so is what its form asks for.
    const every = await (await fetch(`${dev.url}/leads/health?since=2w`)).text();
    expect(submitted(every).toString()).toBe('since=14d');
    expect(every).toContain('<a href="/leads">All leads</a>');
  });

  it('prints the table, and nothing evaluated in another workspace', async () => {
    const table = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/PQL-A +user +1\/2 50% /);
    const weeks = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--since', '2w');
    expect(weeks.stdout).toMatch(/^Rule health: the last 14 days \(/);
    expect(weeks.stdout).toMatch(/PQL-A +user +1\/2 50% /);
    const nothing = 'Nothing found for workspace "nobody": no entity of it has been evaluated (evaluated workspaces: default).';
    const elsewhere = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--workspace', 'nobody', '--json');
    expect((JSON.parse(elsewhere.stdout) as HealthReport).warnings).toEqual([nothing, 'No entity was evaluated in the last 90 days.']);
    const said = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--workspace', 'nobody');
    expect(said.code).toBe(0);
    expect(said.stdout).toContain(`  - ${nothing}\n`);
  });
});

describe('a user aliased into another, against DynamoDB Local', () => {
  let aliased: DevRuntime;
  beforeAll(async () => {
    aliased = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `health-alias-${randomUUID()}`, ruleset: rules, leads: new RecordingPublisher(), evaluateEveryMs: 0 });
    // eve qualifies, then becomes fay (an alias), who buys.
    await sendBatch(aliased, [track('eve', 'Dashboard Created', ago(5)), track('eve', 'Dashboard Created', ago(4.5))]);
    await aliased.evaluateOnce(ago(4));
    await sendBatch(aliased, [{ type: 'alias', userId: 'fay', previousId: 'eve', timestamp: ago(3).toISOString(), messageId: 'alias-eve' }, track('fay', 'Order Completed', ago(2))]);
    await aliased.evaluateOnce(now);
  });
  afterAll(async () => {
    await aliased?.stop();
  });

  it('judges the two as one person: a lead as eve that converted as fay', async () => {
    const { code, stdout } = await cli('--endpoint', aliased.endpoint, '--table', aliased.tableName, 'health', '--since', '30d', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as HealthReport;
    expect(report.entities).toEqual({ user: 1, account: 0 });
    expect(report.tiers[0]).toMatchObject({ tier: 'PQL-A', qualified: { entities: 1, converted: 1 }, notQualified: { entities: 0, converted: 0 }, medianDaysToConversion: 2 });
    // The lead inspector says where eve went.
    const shown = await cli('--endpoint', aliased.endpoint, '--table', aliased.tableName, 'leads', 'show', 'eve');
    expect(shown.stdout.split('\n')[1]).toBe('merged into user fay: judged as that user since (leads show fay)');
  });
});

/** A backtest of these rules, as `pql-radar backtest --record` keeps it: the promise beside the live figures. */
const recorded = (version: string): RecordedBacktest => ({
  rules: { source: 'health rules', version },
  period: { from: '2026-01-01', to: '2026-03-31', stepDays: 1, horizonDays: 30 },
  generatedAt: '2026-04-01T00:00:00.000Z',
  conversionsFrom: 'the event stream',
  tiers: [{ tier: 'PQL-A', qualified: outcome(120, 48), notQualified: outcome(900, 90), lift: { value: 4, low: 2.9, high: 5.5 }, alertsPerWeek: 9.2, medianDaysToConversion: 6 }],
  signals: [{ signal: 'dashboards', level: 'user', fired: outcome(120, 48), notFired: outcome(900, 90), lift: { value: 4, low: 2.9, high: 5.5 }, fireRate: 0.12 }],
});

describe('promised vs delivered, against DynamoDB Local', () => {
  it("puts the backtest recorded for the rules version beside the live figures, in the CLI's --json and its table", async () => {
    await recordBacktest(dev.client, dev.tableName, recorded(rules.version));
    const { stdout } = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--since', '30d', '--json');
    const report = JSON.parse(stdout) as HealthReport;
    expect(report.rulesVersion).toBe(rules.version);
    expect(report.promised).toMatchObject({ rules: { version: rules.version }, period: { horizonDays: 30 } });
    expect(report.tiers[0]!.promised).toMatchObject({ qualified: { entities: 120, converted: 48 }, lift: { value: 4 } });
    expect(report.signals.find((signal) => signal.signal === 'dashboards')).toMatchObject({ fired: { entities: 2, converted: 1 }, promised: { lift: { value: 4 } } });
    const table = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--since', '30d');
    expect(table.stdout).toMatch(/PQL-A +48\/120 40% .* +1\/2 50% .* +4\.00 \(2\.90-5\.50\)/);
  });

  it('the deployed rule-health job reads the states and the recorded backtest, and emits the top tier\'s lift, its lower bound and the promised lift', async () => {
    await recordBacktest(dev.client, dev.tableName, recorded(rules.version));
    const { result, records } = await runHealthJob(4);
    expect(result).toEqual({ workspaces: 1, reported: 1 });
    const byTier = records.find((record) => record['Tier'] === 'PQL-A')!;
    expect(byTier).toMatchObject({ TierLiftLowerBound: expect.any(Number), TierLiftPromised: 4 });
    expect(byTier['TierLift']).toBeCloseTo(1);
    expect(records.some((record) => record['Tier'] === undefined && typeof record['TierLiftLowerBound'] === 'number')).toBe(true);
  });

  it('the deployed rule-health job reads every shard the table has had, after evaluation.shards went down', async () => {
    // The runtime evaluated with 4 shards, and some of its leads wait in the sweep partitions of shards 1 to 3.
    const inFirstShard = await new DynamoDbLeadReader(dev.client, dev.tableName, { shards: 1, deliveryLogDays: 1 }).leadStates();
    expect(inFirstShard.length).toBeLessThan((await new DynamoDbLeadReader(dev.client, dev.tableName, { shards: 4, deliveryLogDays: 1 }).leadStates()).length);
    await recordBacktest(dev.client, dev.tableName, recorded(rules.version));
    const figures = ({ records }: Awaited<ReturnType<typeof runHealthJob>>) => records.map(({ Tier, TierLift, TierLiftLowerBound, TierLiftPromised }) => ({ Tier, TierLift, TierLiftLowerBound, TierLiftPromised }));
    expect(figures(await runHealthJob(1))).toEqual(figures(await runHealthJob(4)));
  });
});

/** The deployed rule-health job, on the test table with `shards` as its DIRTY_SHARDS: what it returns and its EMF records. */
async function runHealthJob(shards: number): Promise<{ result: unknown; records: Record<string, unknown>[] }> {
  const environment = {
    TABLE_NAME: dev.tableName,
    DIRTY_SHARDS: String(shards),
    TIER_ORDER: '["PQL-A"]',
    HEALTH_PERIOD_DAYS: '30',
    AWS_ENDPOINT_URL_DYNAMODB: dev.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  };
  for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
  const written: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  try {
    // Its environment is read when the module loads: loaded anew for each.
    vi.resetModules();
    const { handler } = await import('../../functions/health/handler');
    const result = await handler({}, lambdaContext());
    // Embedded metric format records, one JSON object a line.
    return { result, records: written.join('').split('\n').filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>) };
  } finally {
    write.mockRestore();
    vi.unstubAllEnvs();
  }
}
