import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { HealthReport } from '../../functions/analysis/live-health';
import type { LeadSummary, LeadView } from '../../functions/core/lead-view';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { chromiumLaunchOptions, ensureChromium } from '../support/chromium';
import { cli } from '../support/cli';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

/**
 * The local runtime's /leads pages in headless Chromium: offline and silent, escaping what clients sent, and showing
 * exactly the figures `pql-radar leads list|show --json` print.
 */

const setupTimeout = 10 * 60_000;
const hostileId = `<img src=x onerror=alert(1)>"'&`;
const rules = loadRules(`version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, at_least: 2, points: 30 }
  invited: { event: Teammate Invited, distinct: invitee, window: 30d, points: 30 }
  exported: { event: Data Exported, window: 30d, points: 20 }
  big_company: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
tiers:
  - { name: PQL-A, min_score: 70, route: sales }
  - { name: PQL-B, min_score: 30, route: nurture }
`);
const now = new Date();
const ago = (days: number) => new Date(now.getTime() - days * 86_400_000);
const track = (userId: string, event: string, at: Date, properties: Record<string, unknown> = {}) => ({ type: 'track', userId, event, properties, timestamp: at.toISOString(), messageId: randomUUID() });

let browser: Browser;
let dev: DevRuntime;
const leadsJson = async (...args: string[]) => {
  const { code, stdout, stderr } = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'leads', ...args, '--json');
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return stdout;
};

beforeAll(async () => {
  const executablePath = await ensureChromium();
  browser = await chromium.launch(chromiumLaunchOptions(executablePath));
  dev = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `pages-${randomUUID()}`, ruleset: rules, leads: new RecordingPublisher(), evaluateEveryMs: 0 });
  await sendBatch(dev, [
    { type: 'identify', userId: 'ada', traits: { name: 'Ada <b>Lovelace</b>', email: 'ada@example.com' }, timestamp: ago(6).toISOString(), messageId: randomUUID() },
    { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme', employees: 120 }, timestamp: ago(5).toISOString(), messageId: randomUUID() },
    track('ada', 'Dashboard Created', ago(3)),
    track('ada', 'Dashboard Created', ago(2)),
    track(hostileId, 'Data Exported', ago(1)),
    track(hostileId, `<script>alert(2)</script>`, ago(1)),
    track(hostileId, 'Dashboard Created', ago(1)),
    track(hostileId, 'Dashboard Created', ago(1.2)),
  ]);
  await dev.evaluateOnce(ago(1.5));
  await sendBatch(dev, [track('ada', 'Teammate Invited', ago(1), { invitee: 'bob' })]);
  await dev.evaluateOnce(now);
}, setupTimeout);

afterAll(async () => {
  await browser?.close();
  await dev?.stop();
});

interface Watch {
  problems: string[];
  requests: string[];
}

async function openWatched(): Promise<{ page: Page; watch: Watch }> {
  const page = await browser.newPage();
  const watch: Watch = { problems: [], requests: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') watch.problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => watch.problems.push(`page error: ${String(error)}`));
  page.on('dialog', (dialog) => {
    watch.problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('request', (request) => watch.requests.push(request.url()));
  return { page, watch };
}

/** Every hooked figure: its name, its exact value, and the text it shows (a chart mark's <title> is a tooltip, not text). */
const hooks = (page: Page) =>
  page.$$eval('[data-metric]', (all) =>
    all.map((element) => {
      const text = (Array.from(element.childNodes) as { nodeName: string; textContent: string | null }[]).filter((node) => node.nodeName !== 'title').map((node) => node.textContent ?? '').join('').trim();
      return [element.getAttribute('data-metric')!, element.getAttribute('data-value')!, text] as const;
    }),
  );

describe('the /leads pages of the local runtime', () => {
  it('list the leads with the scores of `leads list --json`, and filter by tier', async () => {
    const rows = (await leadsJson('list')).trim().split('\n').map((line) => JSON.parse(line) as LeadSummary);
    expect(rows.map((row) => row.id)).toEqual(['ada', hostileId]);
    const { page, watch } = await openWatched();
    try {
      await page.goto(`${dev.url}/leads`);
      const shown = await hooks(page);
      expect(shown.map(([key, value]) => [key, Number(value)])).toEqual(rows.map((row) => [`lead:${row.type}:${row.id}:score`, row.score]));
      expect(await page.locator('#leads tbody th').allTextContents()).toEqual(rows.map((row) => `${row.type} ${row.id}`));

      await page.selectOption('select[name="tier"]', 'PQL-A');
      await Promise.all([page.waitForURL(/tier=PQL-A/), page.click('button[type="submit"]')]);
      expect(await page.locator('#leads tbody th').allTextContents()).toEqual(['user ada']);

      // A lead's page from its link.
      await Promise.all([page.waitForURL(/\/leads\/user\/ada/), page.click('#leads tbody a')]);
      expect(await page.locator('h1').textContent()).toBe('user ada');
      expect(watch.problems).toEqual([]);
      expect(watch.requests.filter((url) => !url.startsWith(`${dev.url}/`))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('show a lead with the figures, reasons and events of `leads show --json`, and its score as an inline chart', async () => {
    const view = JSON.parse(await leadsJson('show', 'ada')) as LeadView;
    expect(view.scores.length).toBe(2);
    const { page, watch } = await openWatched();
    try {
      const response = await page.goto(`${dev.url}/leads/user/ada`);
      expect(response!.status()).toBe(200);
      expect(response!.headers()['content-security-policy']).toContain("default-src 'none'");

      const expected = new Map<string, number | null>([
        ['score:total', view.score.total],
        ['score:engagement', view.score.engagement],
        ['score:fit', view.score.fit],
        ...view.scores.flatMap((point, index) => (['total', 'engagement', 'fit'] as const).map((part) => [`scores:${index}:${part}`, point[part]] as [string, number])),
        ...view.signals.map((signal) => [`signal:${signal.name}:points`, signal.points] as [string, number | null]),
      ]);
      const wrong: string[] = [];
      const seen = new Set<string>();
      for (const [key, value, text] of await hooks(page)) {
        seen.add(key);
        if (!expected.has(key)) wrong.push(`${key} is on the page, not in the JSON`);
        else if (JSON.parse(value) !== expected.get(key)) wrong.push(`${key}: page ${value}, JSON ${expected.get(key)}`);
        else if (text !== '' && text !== String(expected.get(key))) wrong.push(`${key} shows "${text}"`);
      }
      for (const key of expected.keys()) if (!seen.has(key)) wrong.push(`${key} is in the JSON, not on the page`);
      expect(wrong).toEqual([]);

      // The chart: a dot per point of the score history, drawn inline.
      expect(await page.locator('#chart-score circle[data-metric]').count()).toBe(view.scores.length);
      const box = await page.locator('#chart-score').boundingBox();
      expect(box!.width).toBeGreaterThan(300);

      expect(await page.locator('#signal-table tbody th').allTextContents()).toEqual(view.signals.map((signal) => signal.name));
      const reasons = await Promise.all((await page.locator('#transitions ol > li > ul').all()).map((list) => list.locator('li').allTextContents()));
      expect(reasons).toEqual(view.transitions.map((entry) => entry.reasons));
      expect(await page.locator('#event-table tbody td').allTextContents()).toEqual(view.lastEvents.map((event) => event.name));
      expect(await page.locator('#account-table tbody th').allTextContents()).toEqual(view.accounts.map((account) => account.id));
      // Traits are shown to the operator, as text.
      expect(await page.locator('#traits pre').textContent()).toContain('Ada <b>Lovelace</b>');
      expect(await page.locator('b').count()).toBe(0);

      expect(watch.problems).toEqual([]);
      expect(watch.requests).toEqual([`${dev.url}/leads/user/ada`]);
    } finally {
      await page.close();
    }
  });

  it('show rule health with the figures of `health --json`', async () => {
    const { stdout } = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'health', '--json');
    const report = JSON.parse(stdout) as HealthReport;
    expect(report.tiers.length).toBeGreaterThan(0);
    const { page, watch } = await openWatched();
    try {
      await page.goto(`${dev.url}/leads/health`);
      const shown = new Map((await hooks(page)).map(([key, value]) => [key, value === 'null' ? null : Number(value)]));
      for (const tier of report.tiers) {
        expect(shown.get(`health:${tier.tier}:qualified:entities`)).toBe(tier.qualified.entities);
        expect(shown.get(`health:${tier.tier}:notQualified:entities`)).toBe(tier.notQualified.entities);
        expect(shown.get(`health:${tier.tier}:lift:value`)).toBe(tier.lift?.value ?? null);
      }
      expect(await page.locator('#health tbody th').allTextContents()).toEqual(report.tiers.map((tier) => tier.tier));
      expect(watch.problems).toEqual([]);
      expect(watch.requests.filter((url) => !url.startsWith(`${dev.url}/`))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('show what clients sent as text: an id and an event name made of markup run nothing', async () => {
    const view = JSON.parse(await leadsJson('show', hostileId)) as LeadView;
    const { page, watch } = await openWatched();
    try {
      const response = await page.goto(`${dev.url}/leads/user/${encodeURIComponent(hostileId)}`);
      expect(response!.status()).toBe(200);
      expect(await page.locator('h1 code').textContent()).toBe(hostileId);
      expect(await page.locator('#event-table tbody td').allTextContents()).toEqual(view.lastEvents.map((event) => event.name));
      expect(view.lastEvents.map((event) => event.name)).toContain('<script>alert(2)</script>');
      expect(await page.locator('img, script').count()).toBe(0);
      expect(watch.problems).toEqual([]);
      expect(watch.requests.filter((url) => !url.startsWith(`${dev.url}/`))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('answer an unknown lead with a 404 naming its type and id', async () => {
    const { page, watch } = await openWatched();
    try {
      const response = await page.goto(`${dev.url}/leads/user/nobody`);
      expect(response!.status()).toBe(404);
      expect(await page.locator('#problem').textContent()).toContain('no lead user "nobody" in workspace "default"');
      const wrongType = await page.goto(`${dev.url}/leads/team/ada`);
      expect(wrongType!.status()).toBe(404);
      expect(await page.locator('#problem').textContent()).toContain('no lead type "team"');
      expect(watch.problems.filter((problem) => !problem.includes('404'))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('answers no other host name than a loopback one (a rebound DNS name gets nothing)', async () => {
    // fetch() will not send another Host than the URL's: a plain request does, as a browser on a rebound name would.
    const status = await new Promise<number | undefined>((done, fail) => {
      request(`${dev.url}/leads`, { headers: { host: 'evil.example' } }, (response) => {
        response.resume();
        done(response.statusCode);
      })
        .on('error', fail)
        .end();
    });
    expect(status).toBe(403);
  });
});
