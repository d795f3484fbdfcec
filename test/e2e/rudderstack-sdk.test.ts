import { eventMessagesOf } from '../../functions/adapters/dynamodb/event-body';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entityPartitionKey, eventSortKeyPrefix, profileSortKey } from '../../functions/adapters/dynamodb/item-keys';
import type { IngestResponse } from '../../functions/core/ingest';
import type { DevRuntime } from '../../functions/local/dev';
import { startBrowserScenario } from '../support/browser-page';
import { scanAll } from '../support/scan';

/**
 * RudderStack's browser SDK, `@rudderstack/analytics-js` v3, as a product's page runs it: bundled from the npm
 * package, served from one origin, sending to `npm start`'s endpoint on another, in headless Chromium. Nothing comes
 * from RudderStack's servers: the `/bundled` export carries its plugins (the default export fetches them from
 * cdn.rudderlabs.com), and the source configuration, which the SDK otherwise asks api.rudderstack.com for, is served by
 * the page's own server at `configUrl`. The SDK posts each call as JSON to `<dataPlaneUrl>/v1/<type>` with Basic auth
 * and its own `AnonymousId` and `SentAt` headers, so the browser asks a CORS preflight first.
 */

let browser: Browser;
let page: { server: Server; origin: string };
let dev: DevRuntime;
const responses: IngestResponse[] = [];
/** The source configuration requests the page's server answered, as the SDK made them. */
const configRequests: { url: string; authorization: string | undefined }[] = [];

/** The SDK on the page: what a product's own bundler would make of `@rudderstack/analytics-js/bundled`. */
const analyticsEntry = "import { RudderAnalytics } from '@rudderstack/analytics-js/bundled'; window.RudderAnalytics = RudderAnalytics;";

/**
 * The smallest source configuration the SDK accepts (a source with an id, a config and no device-mode destinations),
 * with its error and metrics reporting off: they would post to RudderStack's services.
 */
const sourceConfig = (writeKey: string) => ({
  source: {
    id: 'pql-radar-local',
    name: 'pql-radar',
    workspaceId: 'local',
    writeKey,
    enabled: true,
    config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
    destinations: [],
  },
});

/** The control plane's `/sourceConfig/` answer for the SDK's `configUrl`, from the page's own server. */
function answerSourceConfig(request: IncomingMessage, response: ServerResponse): boolean {
  const url = new URL(request.url ?? '/', 'http://page');
  if (url.pathname !== '/sourceConfig/') return false;
  configRequests.push({ url: request.url ?? '', authorization: request.headers.authorization });
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(sourceConfig(url.searchParams.get('writeKey') ?? '')));
  return true;
}

let stop: () => Promise<void>;
beforeAll(async () => {
  ({ browser, page, dev, stop } = await startBrowserScenario({ entry: analyticsEntry, tableName: `e2e-rudderstack-${randomUUID()}`, responses, route: answerSourceConfig }));
}, 300_000);
afterAll(async () => {
  await stop?.();
});

interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown> | undefined;
}

/** Loads the SDK on the page, makes these calls, and waits until ingest has answered `requests` requests. */
async function runOnPage(calls: string, options: { requests: number }) {
  const tab = await browser.newPage();
  const consoleErrors: string[] = [];
  tab.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  const sent: SentRequest[] = [];
  tab.on('request', (request) => {
    const data = request.postData();
    sent.push({ method: request.method(), url: request.url(), headers: request.headers(), body: data ? (JSON.parse(data) as Record<string, unknown>) : undefined });
  });
  const before = responses.length;
  await tab.goto(`${page.origin}/`);
  const loadOptions = { configUrl: page.origin, polyfillIfRequired: false, logLevel: 'WARN' };
  const anonymousId = await tab.evaluate(
    `new Promise((loaded) => {
      const rudderanalytics = new window.RudderAnalytics();
      window.rudderanalytics = rudderanalytics;
      rudderanalytics.load(${JSON.stringify(dev.writeKey)}, ${JSON.stringify(dev.url)}, ${JSON.stringify(loadOptions)});
      rudderanalytics.ready(() => {
        ${calls}
        loaded(rudderanalytics.getAnonymousId());
      });
    })`,
  );
  await expect.poll(() => responses.length - before, { timeout: 20_000 }).toBeGreaterThanOrEqual(options.requests);
  await tab.close();
  return { consoleErrors, sent, anonymousId: anonymousId as string, answered: responses.slice(before) };
}

async function storedEvents() {
  const items = await scanAll(dev.client, dev.tableName);
  return items.filter((item) => item['sk']?.S?.startsWith(eventSortKeyPrefix)).flatMap(eventMessagesOf) as Record<string, unknown>[];
}

describe('RudderStack analytics-js in Chromium, from another origin, offline', () => {
  it('stores page, track, identify and group calls, each once, sent one request per call to /v1/<type>', async () => {
    const user = `rudder-${randomUUID()}`;
    const account = `acct-${randomUUID()}`;
    const { consoleErrors, sent, anonymousId, answered } = await runOnPage(
      `rudderanalytics.page('Docs', 'Pricing');
       rudderanalytics.track('Dashboard Created', { template: 'funnel' });
       rudderanalytics.identify(${JSON.stringify(user)}, { plan: 'trial' });
       rudderanalytics.group(${JSON.stringify(account)}, { employees: 42 });
       rudderanalytics.track('Teammate Invited', { invitee: 'sam' });`,
      { requests: 5 },
    );
    expect(consoleErrors).toEqual([]);
    expect(answered.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answered.every((response) => response.allowOrigin === page.origin)).toBe(true);

    // Offline: the page asked only its own origin (page, bundle, source configuration) and the ingest.
    const ingestOrigin = new URL(dev.url).origin;
    expect(sent.filter((request) => ![page.origin, ingestOrigin].includes(new URL(request.url).origin))).toEqual([]);
    expect(configRequests.some((request) => new URL(request.url, page.origin).searchParams.get('writeKey') === dev.writeKey)).toBe(true);

    // What the SDK sends: one JSON POST per call, the write key as Basic auth, the anonymousId and the send time as headers.
    const posts = sent.filter((request) => request.method === 'POST');
    expect(posts.map((request) => new URL(request.url).pathname).sort()).toEqual(['/v1/group', '/v1/identify', '/v1/page', '/v1/track', '/v1/track']);
    for (const request of posts) {
      expect(request.url.startsWith(ingestOrigin)).toBe(true);
      expect(request.headers['authorization']).toBe(`Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`);
      expect(request.headers['content-type']).toBe('application/json;charset=UTF-8');
      expect(request.headers['anonymousid']).toBe(Buffer.from(anonymousId).toString('base64'));
      expect(request.headers['sentat']).toBe(request.body?.['sentAt']);
    }

    const events = (await storedEvents()).filter((event) => event['anonymousId'] === anonymousId);
    expect(events.map((event) => event['type']).sort()).toEqual(['group', 'identify', 'page', 'track', 'track']);
    expect(new Set(events.map((event) => event['messageId'])).size).toBe(5);
    expect(posts.map((request) => request.body?.['messageId']).sort()).toEqual(events.map((event) => event['messageId']).sort());
    // Before identify the SDK knows only its anonymousId; after it, every call carries the userId.
    const byName = (name: string) => events.find((event) => event['event'] === name || event['name'] === name);
    expect(byName('Pricing')).toMatchObject({ type: 'page', category: 'Docs', channel: 'web' });
    expect(byName('Dashboard Created')?.['userId'] || undefined).toBeUndefined();
    expect(byName('Teammate Invited')).toMatchObject({ userId: user, properties: { invitee: 'sam' } });
    expect(events.find((event) => event['type'] === 'group')).toMatchObject({ userId: user, groupId: account, traits: { employees: 42 } });
    // RudderStack puts identify's traits in context.traits, not in a top-level `traits` as Segment does: the profile
    // takes them from there.
    expect(events.find((event) => event['type'] === 'identify')).toMatchObject({ userId: user, context: { traits: { plan: 'trial' } } });
    const profile = (await scanAll(dev.client, dev.tableName)).find((item) => item['pk']?.S === entityPartitionKey(dev.workspace, 'user', user) && item['sk']?.S === profileSortKey);
    expect(profile?.['trait:plan']?.S).toBe('"trial"');
  });
});
