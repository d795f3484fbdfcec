import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventSortKeyPrefix, profileSortKey } from '../../functions/adapters/dynamodb/item-keys';
import type { IngestResponse } from '../../functions/core/ingest';
import type { LeadEvent } from '../../functions/core/lead-event';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { bundleForBrowser, servePage, startBrowserScenario } from '../support/browser-page';
import { scanAll } from '../support/scan';

/**
 * Segment's browser SDK, analytics-next, as a product's page runs it: bundled from the npm package, served from one
 * origin, sending to `npm start`'s endpoint on another, in headless Chromium. It posts each call to a one-letter path
 * (or /v1/b when batching) with an Authorization header, so the browser asks a CORS preflight first.
 */

let browser: Browser;
let page: { server: Server; origin: string };
let dev: DevRuntime;
const responses: IngestResponse[] = [];

/** analytics-next on the page: what a product's own bundler would make of `@segment/analytics-next`. */
const analyticsEntry = "import { AnalyticsBrowser } from '@segment/analytics-next'; window.AnalyticsBrowser = AnalyticsBrowser;";

let stop: () => Promise<void>;
beforeAll(async () => {
  ({ browser, page, dev, stop } = await startBrowserScenario({ entry: analyticsEntry, tableName: `e2e-browser-${randomUUID()}`, responses }));
}, 300_000);
afterAll(async () => {
  await stop?.();
});

/** Runs analytics-next on the page with these calls, and waits until ingest has answered `requests` requests. */
async function runOnPage(calls: string, options: { batching: boolean; requests: number }) {
  const tab = await browser.newPage();
  const consoleErrors: string[] = [];
  tab.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  const before = responses.length;
  await tab.goto(`${page.origin}/`);
  const apiHost = `${new URL(dev.url).host}/v1`;
  const segmentIo = {
    apiKey: dev.writeKey,
    apiHost,
    protocol: 'http',
    ...(options.batching ? { deliveryStrategy: { strategy: 'batching', config: { size: 50, timeout: 200 } } } : {}),
  };
  await tab.evaluate(
    `(async () => {
      const [analytics] = await window.AnalyticsBrowser.load(
        { writeKey: ${JSON.stringify(dev.writeKey)}, cdnSettings: { integrations: { 'Segment.io': ${JSON.stringify(segmentIo)} }, metrics: { sampleRate: 0 } } },
        { integrations: { 'Segment.io': { apiHost: ${JSON.stringify(apiHost)}, protocol: 'http' } } },
      );
      window.analytics = analytics;
      ${calls}
    })()`,
  );
  await expect.poll(() => responses.length - before, { timeout: 20_000 }).toBeGreaterThanOrEqual(options.requests);
  await tab.close();
  return { consoleErrors, answered: responses.slice(before) };
}

async function storedEvents() {
  const items = await scanAll(dev.client, dev.tableName);
  return {
    events: items.filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).flatMap(eventMessagesOf) as Record<string, unknown>[],
    profiles: items.filter((item) => item['sk']?.S === profileSortKey),
  };
}

describe('Segment analytics-next in Chromium, from another origin', () => {
  it('stores page, track, identify and group calls, each once, sent one request per call', async () => {
    const user = `browser-${randomUUID()}`;
    const { consoleErrors, answered } = await runOnPage(
      `await analytics.page('Pricing');
       await analytics.track('Dashboard Created', { template: 'funnel' });
       await analytics.identify(${JSON.stringify(user)}, { plan: 'trial' });
       await analytics.group('acct-browser', { employees: 42 });
       await analytics.track('Teammate Invited', { invitee: 'sam' });`,
      { batching: false, requests: 5 },
    );
    expect(consoleErrors).toEqual([]);
    expect(answered.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answered.every((response) => response.allowOrigin === page.origin)).toBe(true);

    const { events, profiles } = await storedEvents();
    const mine = events.filter((event) => event['userId'] === user || event['type'] === 'page');
    expect(mine.map((event) => event['type']).sort()).toEqual(['group', 'identify', 'page', 'track']);
    expect(events.filter((event) => event['userId'] === user && event['type'] === 'track').map((event) => event['event'])).toEqual(['Teammate Invited']);
    // Before identify the SDK knows only its anonymousId: the first track is the anonymous visitor's.
    expect(events.filter((event) => event['event'] === 'Dashboard Created' && event['anonymousId'] !== undefined)).toHaveLength(1);
    expect(new Set(events.map((event) => event['messageId'])).size).toBe(events.length);
    expect(profiles.length).toBeGreaterThan(0);
  });

  it('stores a batch posted to /v1/b, and a sendBeacon without custom headers', async () => {
    const user = `batched-${randomUUID()}`;
    const beaconId = randomUUID();
    await runOnPage(
      `analytics.identify(${JSON.stringify(user)});
       analytics.track('Export Started');
       analytics.track('Export Finished');
       navigator.sendBeacon(${JSON.stringify(`${dev.url}/v1/t`)}, JSON.stringify({ writeKey: ${JSON.stringify(dev.writeKey)}, userId: ${JSON.stringify(user)}, event: 'Tab Closed', messageId: ${JSON.stringify(beaconId)} }));`,
      { batching: true, requests: 2 },
    );
    await expect.poll(async () => (await storedEvents()).events.filter((event) => event['userId'] === user).length, { timeout: 20_000 }).toBe(4);
    const { events } = await storedEvents();
    expect(events.filter((event) => event['userId'] === user).map((event) => event['event'] ?? event['type']).sort()).toEqual(['Export Finished', 'Export Started', 'Tab Closed', 'identify']);
  });

  it('refuses a page whose origin no workspace accepts: the preflight fails and nothing is stored', async () => {
    const stranger = await servePage(await bundleForBrowser(analyticsEntry));
    try {
      const tab = await browser.newPage();
      await tab.goto(`${stranger.origin}/`);
      const outcome = await tab.evaluate(
        `fetch(${JSON.stringify(`${dev.url}/v1/t`)}, { method: 'POST', headers: { 'Content-Type': 'text/plain', Authorization: 'Basic ' + btoa(${JSON.stringify(`${dev.writeKey}:`)}) }, body: JSON.stringify({ userId: 'stranger', event: 'Copied Snippet' }) })
          .then((response) => 'answered ' + response.status, (error) => 'blocked: ' + error.message)`,
      );
      expect(outcome).toMatch(/^blocked/);
      await tab.close();
      expect((await storedEvents()).events.filter((event) => event['userId'] === 'stranger')).toEqual([]);
    } finally {
      stranger.server.close();
    }
  });
});

describe('an anonymous visitor of a page using analytics-next', () => {
  /** Two template previews before signup and a dashboard after it make a PQL-A lead: only with the anonymous history. */
  const rules = `
version: 1
signals:
  previewed_templates: { event: Template Previewed, window: 7d, at_least: 2, points: 40 }
  created_dashboard: { event: Dashboard Created, window: 7d, at_least: 1, points: 30 }
tiers:
  - { name: PQL-A, min_score: 60, require: [previewed_templates, created_dashboard], route: sales }
`;
  let leadDev: DevRuntime;
  const published: LeadEvent[] = [];

  beforeAll(async () => {
    leadDev = await startDev({
      port: 0,
      endpoint: inject('dynamoEndpoint'),
      tableName: `e2e-browser-lead-${randomUUID()}`,
      allowedOrigins: [page.origin],
      ruleset: loadRules(rules, 'inline.rules.yaml'),
      evaluateEveryMs: 0,
      leads: { publish: async (events) => (published.push(...events), { failed: [] }) },
    });
  });
  afterAll(async () => {
    await leadDev?.stop();
  });

  it('becomes a qualified lead after signing up, with the events before signup among its signals', async () => {
    const user = `signup-${randomUUID()}`;
    const tab = await browser.newPage();
    await tab.goto(`${page.origin}/`);
    const apiHost = `${new URL(leadDev.url).host}/v1`;
    await tab.evaluate(
      `(async () => {
        const segmentIo = { apiKey: ${JSON.stringify(leadDev.writeKey)}, apiHost: ${JSON.stringify(apiHost)}, protocol: 'http' };
        const [analytics] = await window.AnalyticsBrowser.load(
          { writeKey: ${JSON.stringify(leadDev.writeKey)}, cdnSettings: { integrations: { 'Segment.io': segmentIo }, metrics: { sampleRate: 0 } } },
          { integrations: { 'Segment.io': { apiHost: ${JSON.stringify(apiHost)}, protocol: 'http' } } },
        );
        await analytics.track('Template Previewed', { template: 'funnel' });
        await analytics.track('Template Previewed', { template: 'revenue' });
        await analytics.identify(${JSON.stringify(user)}, { email: 'ann@example.com' });
        await analytics.track('Dashboard Created');
      })()`,
    );
    await tab.close();
    const stored = async () => (await scanAll(leadDev.client, leadDev.tableName)).filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).flatMap(eventMessagesOf).length;
    await expect.poll(stored, { timeout: 20_000 }).toBe(4);

    const summary = await leadDev.evaluateOnce();
    const lead = summary.transitions.find((event) => event.detail.entity.id === user);
    expect(lead?.detailType).toBe('Lead Qualified');
    expect(lead?.detail).toMatchObject({ entity: { type: 'user', id: user }, tier: 'PQL-A' });
    expect(lead?.detail.signals).toContainEqual({ name: 'previewed_templates', value: 2, points: 40 });
    expect(lead?.detail.reasons.some((reason) => reason.startsWith('previewed_templates = 2'))).toBe(true);
    // The visitor alone is no lead, before or after the merge.
    expect(summary.transitions.filter((event) => event.detail.entity.type !== 'user')).toEqual([]);
    expect(published.map((event) => event.detail.idempotencyKey)).toContain(lead!.detail.idempotencyKey);
  });
});
