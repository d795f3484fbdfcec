import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoDbLeadReader } from '../../functions/adapters/dynamodb/lead-reader';
import { leadView, type LeadSummary, type LeadView } from '../../functions/core/lead-view';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { defaultDeliveryLogDays, defaultDirtyShards } from '../../functions/shared/settings';
import { cli } from '../support/cli';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

/** `pql-radar leads list|show` through the CLI, against what the local runtime ingested and evaluated. */

const rules = loadRules(
  `version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, at_least: 2, points: 30 }
  invited: { event: Teammate Invited, distinct: invitee, window: 30d, points: 30 }
  exported: { event: Data Exported, window: 30d, points: 20 }
  big_company: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
  team: { level: account, active_users: 7d, at_least: 2, points: 50 }
tiers:
  - { name: PQL-A, min_score: 70, route: sales }
  - { name: PQL-B, min_score: 30, route: nurture }
`,
  'inspector rules',
);

const now = new Date();
const ago = (days: number) => new Date(now.getTime() - days * 86_400_000);
const track = (userId: string, event: string, at: Date, properties: Record<string, unknown> = {}) => ({
  type: 'track',
  userId,
  event,
  properties,
  timestamp: at.toISOString(),
  messageId: `${userId}-${event}-${at.toISOString()}`,
});

let dev: DevRuntime;
const leadsCli = (...args: string[]) => cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', ...args);

beforeAll(async () => {
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `leads-${randomUUID()}`, ruleset: rules, leads: new RecordingPublisher(), evaluateEveryMs: 0 });
  await sendBatch(dev, [
    { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme', employees: 120 }, timestamp: ago(5).toISOString(), messageId: 'g-ada' },
    { type: 'group', userId: 'bob', groupId: 'acme', timestamp: ago(5).toISOString(), messageId: 'g-bob' },
    track('ada', 'Dashboard Created', ago(3)),
    track('ada', 'Dashboard Created', ago(2)),
    track('bob', 'Data Exported', ago(1)),
    track('bob', 'Dashboard Created', ago(1)),
    track('bob', 'Dashboard Created', ago(0.5)),
    track('cy', 'Page Viewed', ago(1)),
  ]);
  // A user of another workspace, through a key of its own: `leads show` in the default workspace names where it is.
  const { key: prodKey } = await dev.keys.create('prod');
  await sendBatch({ url: dev.url, writeKey: prodKey }, [track('dee', 'Page Viewed', ago(1))]);
  await dev.evaluateOnce(ago(1.5));
  // A day later ada invites a teammate and moves up: a second transition and a second point of her score.
  await sendBatch(dev, [track('ada', 'Teammate Invited', ago(1), { invitee: 'bob' })]);
  // 30 page views of one visitor over 6 days, in separate requests (separate chunks of a day): not a lead, but evaluated.
  for (let request = 0; request < 3; request++) {
    await sendBatch(dev, Array.from({ length: 10 }, (_, index) => ({ type: 'page', userId: 'eve', name: `P${request * 10 + index}`, timestamp: ago((request * 10 + index) / 5).toISOString(), messageId: `eve-${request}-${index}` })));
  }
  await dev.evaluateOnce(now);
});

afterAll(async () => {
  await dev?.stop();
});

describe('pql-radar leads, against DynamoDB Local', () => {
  it('lists the leads in a tier, newest first, with tier, route, score and since; filters by tier and since', async () => {
    const { code, stdout, stderr } = await leadsCli('list', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n').map((line) => JSON.parse(line) as LeadSummary);
    expect(rows.map((row) => `${row.type} ${row.id} ${row.tier} ${row.route} ${row.score}`)).toEqual(expect.arrayContaining(['user ada PQL-A sales 70', 'user bob PQL-B nurture 60', 'account acme PQL-B nurture 50']));
    expect(rows).toHaveLength(3);
    expect(rows.map((row) => row.since)).toEqual(rows.map((row) => row.since).toSorted().toReversed());
    expect(rows.find((row) => row.id === 'ada')!.since).toBe(now.toISOString());

    const hot = await leadsCli('list', '--json', '--tier', 'PQL-A');
    expect(hot.stdout.trim().split('\n').map((line) => (JSON.parse(line) as LeadSummary).id)).toEqual(['ada']);
    // bob entered his tier a day and a half ago, ada now.
    const recent = await leadsCli('list', '--json', '--since', '1d');
    expect(recent.stdout.trim().split('\n').map((line) => (JSON.parse(line) as LeadSummary).id)).toEqual(['ada']);
  });

  it('names a --tier or --route no lead is in now, and those leads are in; a tier with leads the other filters leave out, not', async () => {
    const unknown = await leadsCli('list', '--tier', 'PQL-Z');
    expect(unknown).toEqual({ code: 0, stdout: 'no lead in a tier matches: no lead is in tier "PQL-Z" now; the tiers leads are in now: PQL-A, PQL-B\n', stderr: '' });
    const noRoute = await leadsCli('list', '--route', 'expansion');
    expect(noRoute).toEqual({ code: 0, stdout: 'no lead in a tier matches: no lead is on route "expansion" now; the routes leads are on now: nurture, sales\n', stderr: '' });
    const neither = await leadsCli('list', '--tier', 'PQL-Z', '--route', 'expansion');
    expect(neither.stdout).toBe('no lead in a tier matches: no lead is in tier "PQL-Z" now; the tiers leads are in now: PQL-A, PQL-B; no lead is on route "expansion" now; the routes leads are on now: nurture, sales\n');
    const filteredOut = await leadsCli('list', '--tier', 'PQL-B', '--since', '1d');
    expect(filteredOut).toEqual({ code: 0, stdout: 'no lead in a tier matches\n', stderr: '' });
  });

  it('shows a lead: score and its history, matched signals with values, transitions with reasons, events, accounts', async () => {
    const { code, stdout } = await leadsCli('show', 'ada', '--json');
    expect(code).toBe(0);
    const view = JSON.parse(stdout) as LeadView;
    expect(view.entity).toEqual({ workspace: 'default', type: 'user', id: 'ada' });
    expect(view).toMatchObject({ tier: 'PQL-A', route: 'sales', since: now.toISOString() });
    expect(view.score).toEqual({ total: 70, engagement: 60, fit: 10 });
    expect(view.scores.map((point) => [point.at, point.total, point.engagement, point.fit])).toEqual([
      [ago(1.5).toISOString(), 40, 30, 10],
      [now.toISOString(), 70, 60, 10],
    ]);
    expect(view.signals).toEqual([
      { name: 'dashboards', value: 2, points: 30 },
      { name: 'invited', value: 1, points: 30 },
      { name: 'big_company', value: 120, points: 10 },
    ]);
    expect(view.transitions.map((entry) => `${entry.previousTier ?? 'none'} -> ${entry.tier}`)).toEqual(['PQL-B -> PQL-A', 'none -> PQL-B']);
    expect(view.transitions[0]!.reasons).toEqual(['PQL-A: score 70 >= 70', 'dashboards = 2 (+30)', 'invited = 1 (+30)', 'big_company = 120 (+10)']);
    expect(view.lastEvents).toEqual([
      { name: 'Teammate Invited', at: ago(1).toISOString() },
      { name: 'Dashboard Created', at: ago(2).toISOString() },
      { name: 'Dashboard Created', at: ago(3).toISOString() },
      { name: 'group', at: ago(5).toISOString() },
    ]);
    expect(view.accounts).toEqual([{ id: 'acme', tier: 'PQL-B' }]);
    expect(view.traits).toEqual({});

    const account = JSON.parse((await leadsCli('show', 'acme', '--type', 'account', '--json')).stdout) as LeadView;
    expect(account.members).toEqual([
      { id: 'ada', tier: 'PQL-A' },
      { id: 'bob', tier: 'PQL-B' },
    ]);
    expect(account.traits).toMatchObject({ name: 'Acme', employees: 120 });
    expect(account.lastEvents).toEqual([]);

    const text = await leadsCli('show', 'ada');
    expect(text.stdout).toContain('score 70 (engagement 60, fit 10)');
    expect(text.stdout).toContain('PQL-B -> PQL-A');
    // Not a lead: no parts or signal values are kept, and none are printed as unknown.
    const notALead = (await leadsCli('show', 'eve')).stdout;
    expect(notALead).toMatch(/^score \d+  evaluated /m);
    expect(notALead).not.toContain('?');
  });

  it('names the id, type and workspace of an unknown lead and exits non-zero', async () => {
    const missing = await leadsCli('show', 'nobody', '--json');
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('no lead user "nobody" in workspace "default"');
    const wrongType = await leadsCli('show', 'ada', '--type', 'account');
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toContain('no lead account "ada" in workspace "default": nothing of that type and id has been evaluated; that id has been evaluated as a user in workspace "default"\n');
    const otherWorkspace = await leadsCli('show', 'dee', '--type', 'account');
    expect(otherWorkspace.code).not.toBe(0);
    expect(otherWorkspace.stderr).toContain('no lead account "dee" in workspace "default": nothing of that type and id has been evaluated; that id has been evaluated as a user in workspace "prod"\n');
    expect((await leadsCli('show', 'dee', '--workspace', 'prod')).code).toBe(0);
    const badType = await leadsCli('show', 'ada', '--type', 'team');
    expect(badType.code).not.toBe(0);
    expect(badType.stderr).toContain('--type team: must be one of user, account, visitor');
  });

  it('serves the same pages on 127.0.0.1 alone with `leads serve`, and no ingest', async () => {
    const serve = spawn(process.execPath, [join(import.meta.dirname, '../../bin/pql-radar.js'), '--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(serve.stdout, 'data')) as [Buffer];
      const url = /(http:\/\/127\.0\.0\.1:\d+)\/leads/.exec(line.toString())![1]!;
      const page = await fetch(`${url}/leads/user/ada`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('data-metric="score:total" data-value="70"');
      const nobody = await fetch(`${url}/leads/user/nobody`);
      expect(nobody.status).toBe(404);
      expect(await nobody.text()).toContain('no lead user &quot;nobody&quot; in workspace &quot;default&quot;: nothing of that type and id has been evaluated<');
      expect(await (await fetch(`${url}/leads/account/ada`)).text()).toContain('that id has been evaluated as a user in workspace &quot;default&quot;<');
      expect((await fetch(`${url}/v1/track`, { method: 'POST', body: '{}' })).status).toBe(404);
      const port = new URL(url).port;
      const second = await leadsCli('serve', '--port', port);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`pql-radar: port ${port} is in use (is pql-radar leads serve running already?); it was wanted for the lead inspector (--port chooses another)`);
    } finally {
      serve.kill();
    }
  });

  it('reads the list from the sweep index and the STATE items only, and a lead from its own rows', async () => {
    const reader = new DynamoDbLeadReader(dev.client, dev.tableName, { shards: defaultDirtyShards, deliveryLogDays: defaultDeliveryLogDays });
    const states = await reader.leadStates();
    const listUnits = reader.capacity.readUnits;
    // Six evaluated entities (ada, bob, cy, eve, acme, and dee of prod): a Query per shard (0.5 unit each, eventually
    // consistent) and a half unit per STATE item read.
    expect(states).toHaveLength(6);
    expect(listUnits).toBeLessThanOrEqual(defaultDirtyShards * 0.5 + states.length * 0.5);
    await reader.lead({ workspace: 'default', type: 'user', id: 'ada' }, now);
    const showUnits = reader.capacity.readUnits - listUnits;
    console.log(`lead inspector read units: list ${listUnits} for ${states.length} evaluated entities; show ${showUnits} for one user (state, events, accounts, ${defaultDeliveryLogDays} days of the delivery log)`);
    expect(showUnits).toBeGreaterThan(0);

    // The newest 20 of eve's 30 events, though a day's chunks sort by their hash and not by time.
    const eve = leadView((await reader.lead({ workspace: 'default', type: 'user', id: 'eve' }, now))!)!;
    expect(eve.tier).toBeNull();
    expect(eve.lastEvents).toEqual(Array.from({ length: 20 }, (_, index) => ({ name: 'Page Viewed', at: ago(index / 5).toISOString() })));
  });
});
