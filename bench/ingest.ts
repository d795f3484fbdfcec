/**
 * Ingest benchmark: sends realistic Segment event streams through the local HTTP endpoint and reports throughput,
 * latency, and the DynamoDB write units paid per event, against the floor of writing the same events bare. Three
 * mixes, as the three kinds of Segment SDK send them, each against its own DynamoDB Local so its units are its own:
 *
 *   server   analytics-node: batches of 100 events of 8 users from 3 accounts, JSON to /v1/batch
 *   browser  analytics.js (analytics-next) defaults: one event of one visitor per request, text/plain to /v1/t, /v1/p,
 *            /v1/i, /v1/g
 *   mobile   analytics-kotlin: batches of 20 events of one user, gzipped text/plain to /v1/b
 *
 *   npm run bench:ingest                    20,000 events per mix (the server mix: 200 batches of 100)
 *   BENCH_EVENTS=2000 npm run bench:ingest  fewer; BENCH_EVENTS replaces BENCH_BATCHES (server batches = events / 100)
 *
 * Budget: the server mix at most 1.2 write units per event, amortized; exits 1 when over it. Browser and mobile have
 * none yet.
 */
import {
  BatchWriteItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CapacityTally } from '../functions/adapters/dynamodb/capacity';
import { DynamoDbChangeCapture, type WrittenKey } from '../functions/adapters/dynamodb/change-capture';
import { eventBodyOf } from '../functions/adapters/dynamodb/event-body';
import { defaultDirtyShards } from '../functions/shared/settings';
import { SeededRandom } from '../functions/core/random';
import { changesSortKey, eventSortKeyPrefix, memberSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { startDev, type DevRuntime } from '../functions/local/dev';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { scanAll } from '../test/support/scan';
import { bundleFunction } from './bundle';
import { bytes, count, fixed, percent, percentCoarse } from '../functions/analysis/format';

type Item = Record<string, AttributeValue>;
type Message = Record<string, unknown>;

if (process.env['BENCH_BATCHES'] !== undefined) throw new Error('BENCH_BATCHES is replaced by BENCH_EVENTS, the events of each mix (100 per server batch)');
const eventsPerMix = Number(process.env['BENCH_EVENTS'] ?? 20_000);
if (!Number.isInteger(eventsPerMix) || eventsPerMix < 1) throw new Error(`BENCH_EVENTS must be a positive integer, got ${process.env['BENCH_EVENTS']}`);
const userCount = 200;
const accountCount = 20;
const concurrency = 4;
/** Every stream spreads its events over the last three days, ordered in time as the SDKs would send them. */
const windowMs = 3 * 86_400_000;
const windowStart = Date.now() - windowMs;

// ---- the event streams ----

/** One HTTP request, as its SDK sends it. */
interface Call {
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

interface Stream {
  calls: Call[];
  /** Every message of the stream, as sent (a browser's with the writeKey and sentAt it carries). */
  messages: Message[];
  /** Who sends the stream, for the report. */
  senders: string;
}

interface Mix {
  name: string;
  /** How the SDK sends, for the report. */
  sdk: string;
  /** Write units per event the mix must stay under, if it has a budget yet. */
  budgetUnitsPerEvent?: number;
  stream(writeKey: string): Stream;
}

const featureEvents = ['Dashboard Created', 'Report Exported', 'Query Run', 'Alert Configured', 'Teammate Invited', 'Integration Connected', 'Chart Shared', 'API Key Created'];
const pages = ['Pricing', 'Billing', 'Settings', 'Docs', 'Dashboard', 'Integrations'];
const plans = ['free', 'trial', 'team', 'business'];

const userIdOf = (user: number) => `user-${String(user).padStart(4, '0')}`;
/** User u belongs to account u % accountCount. */
const accountOf = (user: number) => user % accountCount;
const accountIdOf = (account: number) => `account-${String(account).padStart(3, '0')}`;
const uuid = (rng: SeededRandom) => `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`;
const userTraits = (rng: SeededRandom, user: number) => ({ email: `${userIdOf(user)}@example.com`, name: `User ${user}`, plan: rng.pick(plans), seats: 1 + rng.int(0, 49) });
const accountTraits = (rng: SeededRandom, account: number) => ({ name: `Account ${account}`, plan: rng.pick(plans), employees: 10 + rng.int(0, 4999) });
/** A track's properties in the browser and mobile mixes. */
const trackProperties = (rng: SeededRandom, source: string) => ({ plan: rng.pick(plans), items: rng.int(0, 99), durationMs: rng.int(0, 59_999), source, objectId: rng.hex(24) });
const isoTime = (ms: number) => new Date(ms).toISOString();
const basicAuthorization = (writeKey: string) => `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

const serverEventsPerBatch = 100;
const serverMaxEventBytes = 1024;
/** A backend's SDK flushes what several users just did, mostly within one or a few accounts. */
const serverUsersPerBatch = 8;
const serverAccountsPerBatch = 3;

const server: Mix = {
  name: 'server',
  sdk: `analytics-node: batches of ${serverEventsPerBatch} to /v1/batch, application/json, Basic auth`,
  budgetUnitsPerEvent: 1.2,
  stream(writeKey) {
    const rng = new SeededRandom(20240501);
    const authorization = basicAuthorization(writeKey);
    const calls: Call[] = [];
    const messages: Message[] = [];
    for (let first = 0; first < eventsPerMix; first += serverEventsPerBatch) {
      const accounts = Array.from({ length: serverAccountsPerBatch }, () => rng.int(0, accountCount - 1));
      const users = Array.from({ length: serverUsersPerBatch }, () => rng.pick(accounts) + accountCount * rng.int(0, userCount / accountCount - 1));
      const batch = Array.from({ length: Math.min(serverEventsPerBatch, eventsPerMix - first) }, (_, i) => {
        const user = rng.pick(users);
        const account = accountOf(user);
        const common = {
          messageId: uuid(rng),
          userId: userIdOf(user),
          timestamp: isoTime(windowStart + ((first + i) / eventsPerMix) * windowMs),
          context: {
            library: { name: 'analytics-node-next', version: '3.1.0' },
            groupId: accountIdOf(account),
            ip: `10.0.${rng.int(0, 255)}.${rng.int(0, 255)}`,
            locale: 'en-US',
            timezone: 'Europe/Berlin',
            userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
          },
        };
        const kind = rng.next();
        if (kind < 0.05) return { ...common, type: 'identify', traits: userTraits(rng, user) };
        if (kind < 0.1) return { ...common, type: 'group', groupId: accountIdOf(account), traits: accountTraits(rng, account) };
        if (kind < 0.2) {
          return { ...common, type: 'page', name: rng.pick(pages), properties: { path: `/app/${rng.hex(6)}`, referrer: 'https://example.com/', title: 'pql-radar bench' } };
        }
        return {
          ...common,
          type: 'track',
          event: rng.pick(featureEvents),
          properties: { plan: rng.pick(plans), durationMs: rng.int(0, 59_999), items: rng.int(0, 99), source: rng.pick(['web', 'api', 'cli']), requestId: rng.hex(24) },
        };
      });
      for (const event of batch) {
        const size = jsonBytes(event);
        if (size > serverMaxEventBytes) throw new Error(`the server stream generator made a ${size}-byte event; events must stay under ${serverMaxEventBytes} bytes`);
      }
      messages.push(...batch);
      calls.push({
        path: '/v1/batch',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
      });
    }
    return {
      calls,
      messages,
      senders: `${userCount} users in ${accountCount} accounts, ${serverUsersPerBatch} users from ${serverAccountsPerBatch} accounts per batch`,
    };
  },
};

/** A browser or a phone, and who its person logs in as. The SDK keeps its anonymousId, and its userId from identify on. */
interface Visitor<Device> {
  anonymousId: string;
  device: Device;
  /** The user the visitor identifies as; none for an anonymous-only visitor. */
  user: number | undefined;
  identified: boolean;
}

/** One call of a session, before a mix gives it its SDK's shape. */
interface Action {
  type: 'view' | 'track' | 'identify' | 'group';
  time: number;
  /** The page or screen the visitor is on. */
  view: string;
  /** Set from the visitor's identify on, as the SDK attaches it. */
  userId: string | undefined;
}

interface Session<Device> {
  visitor: Visitor<Device>;
  actions: Action[];
}

/**
 * What visitors of a product do, session by session, eventsPerMix actions in all: a first view, then views and tracks;
 * a visitor who will identify does so once, in their first session, and selects their account (a group call) after it
 * now and then. Half the sessions are a returning visitor's. Sessions follow each other through the window.
 */
function visitorSessions<Device>(
  rng: SeededRandom,
  options: { anonymousShare: number; sessionLength: () => number; views: readonly string[]; newDevice: () => Device },
): Session<Device>[] {
  const visitors: Visitor<Device>[] = [];
  const sessions: Session<Device>[] = [];
  for (let done = 0; done < eventsPerMix; ) {
    let visitor = visitors.length > 0 && rng.chance(0.5) ? rng.pick(visitors) : undefined;
    if (!visitor) {
      visitor = { anonymousId: uuid(rng), device: options.newDevice(), user: rng.chance(options.anonymousShare) ? undefined : rng.int(0, userCount - 1), identified: false };
      visitors.push(visitor);
    }
    const length = Math.min(options.sessionLength(), eventsPerMix - done);
    const identifyAt = visitor.user !== undefined && !visitor.identified ? rng.int(1, length - 1) : undefined;
    // A session lasts at most an hour (60 actions a minute apart): starting in the window's first 71 hours, none ends after now.
    let time = windowStart + (done / eventsPerMix) * (windowMs - 3_600_000);
    let view = rng.pick(options.views);
    let groupNext = false;
    const actions: Action[] = [];
    for (let i = 0; i < length; i++) {
      time += rng.int(2_000, 60_000);
      let type: Action['type'];
      if (i === 0) type = 'view';
      else if (i === identifyAt) type = 'identify';
      else if (groupNext) type = 'group';
      else type = rng.chance(0.3) ? 'view' : 'track';
      if (type === 'identify') {
        visitor.identified = true;
        groupNext = rng.chance(0.3);
      }
      if (type === 'group') groupNext = false;
      if (type === 'view' && i > 0) view = rng.pick(options.views);
      actions.push({ type, time, view, userId: visitor.identified ? userIdOf(visitor.user!) : undefined });
    }
    sessions.push({ visitor, actions });
    done += length;
  }
  return sessions;
}

/** The visitors of the sessions, and how many of them never identified, for the report. */
function visitorCounts(sessions: Session<unknown>[]): string {
  const visitors = new Set(sessions.map((session) => session.visitor));
  const anonymous = [...visitors].filter((visitor) => !visitor.identified).length;
  return `${count(sessions.length)} sessions of ${count(visitors.size)} visitors, ${percent(anonymous / visitors.size)} never identified; ${userCount} users in ${accountCount} accounts`;
}

interface Browser {
  userAgent: string;
  /** navigator.userAgentData.toJSON(), which only Chromium browsers have. */
  userAgentData?: { brands: { brand: string; version: string }[]; mobile: boolean; platform: string };
  locale: string;
  timezone: string;
}

const chromeBrands = (browser: string) => [
  { brand: 'Chromium', version: '124' },
  { brand: browser, version: '124' },
  { brand: 'Not-A.Brand', version: '99' },
];
const browserAgents: Pick<Browser, 'userAgent' | 'userAgentData'>[] = [
  {
    userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    userAgentData: { brands: chromeBrands('Google Chrome'), mobile: false, platform: 'macOS' },
  },
  {
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    userAgentData: { brands: chromeBrands('Google Chrome'), mobile: false, platform: 'Windows' },
  },
  {
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
    userAgentData: { brands: chromeBrands('Microsoft Edge'), mobile: false, platform: 'Windows' },
  },
  { userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15' },
  { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0' },
];
const places = [
  { locale: 'en-US', timezone: 'America/New_York' },
  { locale: 'en-US', timezone: 'America/Los_Angeles' },
  { locale: 'en-GB', timezone: 'Europe/London' },
  { locale: 'de-DE', timezone: 'Europe/Berlin' },
  { locale: 'fr-FR', timezone: 'Europe/Paris' },
];
const webOrigin = 'https://app.acme-analytics.com';
const webPaths: Record<string, string> = {
  Pricing: '/pricing',
  Billing: '/settings/billing',
  Settings: '/settings/profile',
  Docs: '/docs/getting-started',
  Dashboard: '/app/dashboards',
  Integrations: '/app/integrations',
};
const referrers = ['', 'https://www.google.com/', 'https://www.linkedin.com/', 'https://news.ycombinator.com/', 'https://acme-analytics.com/blog/product-qualified-leads'];
/** analytics-next's call paths: one letter per call type. */
const browserPaths: Record<Action['type'], string> = { view: '/v1/p', track: '/v1/t', identify: '/v1/i', group: '/v1/g' };

const browser: Mix = {
  name: 'browser',
  sdk: 'analytics.js (analytics-next 1.84.3) defaults: one event per request to /v1/{t,p,i,g}, text/plain, Basic auth and writeKey in the body',
  stream(writeKey) {
    const rng = new SeededRandom(20240502);
    const sessions = visitorSessions<Browser>(rng, {
      anonymousShare: 0.3,
      sessionLength: () => rng.int(3, 20),
      views: pages,
      newDevice: () => ({ ...rng.pick(browserAgents), ...rng.pick(places) }),
    });
    const headers = { 'content-type': 'text/plain', authorization: basicAuthorization(writeKey) };
    const sent: { time: number; path: string; message: Message }[] = [];
    for (const { visitor, actions } of sessions) {
      // A single-page app: document.referrer stays the session's, the query string only lasts until the first navigation.
      const referrer = rng.pick(referrers);
      let search = rng.chance(0.25) ? `?utm_source=${rng.pick(['newsletter', 'google', 'linkedin'])}&utm_medium=${rng.pick(['email', 'cpc', 'social'])}&utm_campaign=spring_launch` : '';
      for (const action of actions) {
        if (action.type === 'view' && action !== actions[0]) search = '';
        const path = webPaths[action.view]!;
        const page = { path, referrer, search, title: `${action.view} · Acme Analytics`, url: `${webOrigin}${path}${search}` };
        sent.push({ time: action.time, path: browserPaths[action.type], message: browserMessage(rng, action, visitor, page, writeKey) });
      }
    }
    sent.sort((a, b) => a.time - b.time);
    return {
      calls: sent.map(({ path, message }) => ({ path, headers, body: JSON.stringify(message) })),
      messages: sent.map(({ message }) => message),
      senders: visitorCounts(sessions),
    };
  },
};

/** One call as analytics-next puts it on the wire: its event factory's fields, the page and environment enrichment, then what the Segment.io plugin adds. */
function browserMessage(rng: SeededRandom, action: Action, visitor: Visitor<Browser>, page: Record<string, string>, writeKey: string): Message {
  const { device } = visitor;
  // Only a visitor with a user identifies or selects an account.
  const user = visitor.user!;
  const call =
    action.type === 'view'
      ? { type: 'page', properties: { ...page, name: action.view }, name: action.view }
      : action.type === 'track'
        ? { event: rng.pick(featureEvents), type: 'track', properties: trackProperties(rng, 'web') }
        : action.type === 'identify'
          ? { type: 'identify', userId: action.userId, traits: userTraits(rng, user) }
          : { type: 'group', traits: accountTraits(rng, accountOf(user)), groupId: accountIdOf(accountOf(user)) };
  const campaign = new URLSearchParams(page['search']);
  return {
    timestamp: isoTime(action.time),
    integrations: {},
    ...call,
    context: {
      page,
      userAgent: device.userAgent,
      userAgentData: device.userAgentData,
      locale: device.locale,
      library: { name: 'analytics.js', version: 'npm:next-1.84.3' },
      ...(page['search'] ? { campaign: { source: campaign.get('utm_source'), medium: campaign.get('utm_medium'), name: campaign.get('utm_campaign') } } : {}),
      timezone: device.timezone,
    },
    messageId: `ajs-next-${action.time}-${uuid(rng)}`,
    userId: action.userId,
    anonymousId: visitor.anonymousId,
    writeKey,
    // Sent at once: a few milliseconds after the call.
    sentAt: isoTime(action.time + rng.int(5, 300)),
    _metadata: { bundled: ['Segment.io'], unbundled: [], bundledIds: [] },
  };
}

interface Phone {
  manufacturer: string;
  model: string;
  name: string;
  osVersion: string;
  build: string;
  screen: { density: number; height: number; width: number };
}

interface MobileDevice {
  phone: Phone;
  /** What the SDK reads as the device id, and the id it makes for this install. */
  deviceId: string;
  instanceId: string;
  app: { version: string; build: string };
  locale: string;
  timezone: string;
  wifi: boolean;
}

const phones: Phone[] = [
  { manufacturer: 'Google', model: 'Pixel 8', name: 'shiba', osVersion: '14', build: 'AP1A.240405.002', screen: { density: 2.625, height: 2400, width: 1080 } },
  { manufacturer: 'samsung', model: 'SM-S918B', name: 'dm3q', osVersion: '14', build: 'UP1A.231005.007', screen: { density: 3, height: 2340, width: 1080 } },
  { manufacturer: 'samsung', model: 'SM-A546B', name: 'a54x', osVersion: '13', build: 'TP1A.220624.014', screen: { density: 2.625, height: 2340, width: 1080 } },
  { manufacturer: 'Xiaomi', model: '23049PCD8G', name: 'marble', osVersion: '13', build: 'TKQ1.221114.001', screen: { density: 2.75, height: 2400, width: 1080 } },
];
const appVersions = [
  { version: '4.2.0', build: '420' },
  { version: '4.3.1', build: '431' },
];
const mobileScreens = ['Home', 'Dashboards', 'Dashboard', 'Reports', 'Alerts', 'Settings', 'Billing'];
const mobileBatchSize = 20;
const kotlinVersion = '1.19.1';

const mobile: Mix = {
  name: 'mobile',
  sdk: `analytics-kotlin ${kotlinVersion}: batches of ${mobileBatchSize} events of one user to /v1/b, gzipped text/plain, writeKey in the body`,
  stream(writeKey) {
    const rng = new SeededRandom(20240503);
    const sessions = visitorSessions<MobileDevice>(rng, {
      // Most apps sit behind a login: fewer people stay anonymous than on a website.
      anonymousShare: 0.1,
      // The SDK uploads every 20 events (flushAt), so a session goes out as whole batches.
      sessionLength: () => mobileBatchSize * rng.int(1, 3),
      views: mobileScreens,
      newDevice: () => ({ phone: rng.pick(phones), deviceId: rng.hex(16), instanceId: uuid(rng), app: rng.pick(appVersions), ...rng.pick(places), wifi: rng.chance(0.7) }),
    });
    const headers = { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'user-agent': `analytics-kotlin/${kotlinVersion}` };
    const uploads: { sentAt: number; batch: Message[] }[] = [];
    for (const { visitor, actions } of sessions) {
      for (let first = 0; first < actions.length; first += mobileBatchSize) {
        const chunk = actions.slice(first, first + mobileBatchSize);
        uploads.push({ sentAt: chunk.at(-1)!.time + rng.int(100, 2_000), batch: chunk.map((action) => mobileMessage(rng, action, visitor)) });
      }
    }
    uploads.sort((a, b) => a.sentAt - b.sentAt);
    return {
      calls: uploads.map(({ sentAt, batch }) => ({ path: '/v1/b', headers, body: gzipSync(JSON.stringify({ batch, sentAt: isoTime(sentAt), writeKey })) })),
      messages: uploads.flatMap(({ batch }) => batch),
      senders: visitorCounts(sessions),
    };
  },
};

/** One call as analytics-kotlin stores it for upload: the event's fields, then the identity, ids and the context its Android plugin adds. */
function mobileMessage(rng: SeededRandom, action: Action, visitor: Visitor<MobileDevice>): Message {
  const { phone, ...device } = visitor.device;
  // Only a visitor with a user identifies or selects an account.
  const user = visitor.user!;
  const call =
    action.type === 'view'
      ? { type: 'screen', name: action.view, properties: {} }
      : action.type === 'track'
        ? { type: 'track', event: rng.pick(featureEvents), properties: trackProperties(rng, 'android') }
        : action.type === 'identify'
          ? { type: 'identify', traits: userTraits(rng, user) }
          : { type: 'group', groupId: accountIdOf(accountOf(user)), traits: accountTraits(rng, accountOf(user)) };
  return {
    ...call,
    userId: action.userId,
    anonymousId: visitor.anonymousId,
    messageId: uuid(rng),
    integrations: {},
    context: {
      app: { name: 'Acme Analytics', version: device.app.version, namespace: 'com.acme.analytics', build: device.app.build },
      device: { id: device.deviceId, manufacturer: phone.manufacturer, model: phone.model, name: phone.name, type: 'android' },
      library: { name: 'analytics-kotlin', version: kotlinVersion },
      locale: device.locale,
      network: { wifi: device.wifi, cellular: !device.wifi, bluetooth: false },
      os: { name: 'Android', version: phone.osVersion },
      screen: phone.screen,
      timezone: device.timezone,
      traits: { anonymousId: visitor.anonymousId },
      userAgent: `Dalvik/2.1.0 (Linux; U; Android ${phone.osVersion}; ${phone.model} Build/${phone.build})`,
      instanceId: device.instanceId,
    },
    timestamp: isoTime(action.time),
    _metadata: { bundled: [], unbundled: [], bundledIds: [] },
  };
}
// ---- write units, from item sizes ----

/**
 * An attribute value's size by DynamoDB's rules: strings in UTF-8 bytes, binary in bytes, numbers 1 byte per 2
 * significant digits plus 1, booleans 1. Only the types the store writes are sized.
 */
function attributeValueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.B !== undefined) return value.B.length;
  if (value.N !== undefined) return numberSize(value.N);
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.BOOL !== undefined) return 1;
  throw new Error(`the benchmark cannot size attribute value ${JSON.stringify(value)}`);
}

function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

const itemKinds = ['events', 'members', 'profiles', 'change markers', 'dirty index', 'other'] as const;

/** Which of the items in table-definition.ts a sort key names, for the breakdown of the write units. */
function itemKind(sk: string): (typeof itemKinds)[number] {
  if (sk.startsWith(eventSortKeyPrefix)) return 'events';
  if (sk.startsWith(memberSortKeyPrefix)) return 'members';
  if (sk === profileSortKey) return 'profiles';
  if (sk === changesSortKey) return 'change markers';
  return 'other';
}

const itemSize = (item: Item) => Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + attributeValueSize(value), 0);
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));

/**
 * Counts the write units of every write a client sends, by DynamoDB's rules: the larger of the item's sizes before
 * and after, per 1 KB; plus one index write when an item enters or leaves the `dirty` index, two when it moves.
 * Every write to the table goes through this client, so the images it remembers are the table's. UpdateItem is
 * asked for ALL_NEW to learn the item's new size; the store reads nothing else from that answer.
 */
function countWriteUnitsBySize(client: DynamoDBClient): { units: number; byKind: Map<(typeof itemKinds)[number], number> } {
  const tally = { units: 0, byKind: new Map<(typeof itemKinds)[number], number>() };
  const add = (kind: (typeof itemKinds)[number], units: number) => {
    tally.units += units;
    tally.byKind.set(kind, (tally.byKind.get(kind) ?? 0) + units);
  };
  const images = new Map<string, { size: number; indexKey: string | undefined }>();
  const { partitionKey, sortKey, dirtyIndex } = tableDefinition;
  const written = (table: string, item: Item) => {
    const key = `${table}\n${item[partitionKey]?.S}\n${item[sortKey]?.S}`;
    const before = images.get(key);
    const size = itemSize(item);
    const indexed = item[dirtyIndex.partitionKey] !== undefined && item[dirtyIndex.sortKey] !== undefined;
    const indexKey = indexed ? `${item[dirtyIndex.partitionKey]!.S}\n${item[dirtyIndex.sortKey]!.S}` : undefined;
    add(itemKind(item[sortKey]?.S ?? ''), writeUnits(Math.max(size, before?.size ?? 0)));
    if (indexKey !== before?.indexKey) {
      const entrySize = itemSize({
        [partitionKey]: item[partitionKey]!,
        [sortKey]: item[sortKey]!,
        ...(indexed ? { [dirtyIndex.partitionKey]: item[dirtyIndex.partitionKey]!, [dirtyIndex.sortKey]: item[dirtyIndex.sortKey]! } : {}),
      });
      add('dirty index', (before?.indexKey !== undefined ? writeUnits(entrySize) : 0) + (indexKey !== undefined ? writeUnits(entrySize) : 0));
    }
    images.set(key, { size, indexKey });
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, any>;
      if (context.commandName === 'UpdateItemCommand') input['ReturnValues'] = 'ALL_NEW';
      const result = await next(args);
      const output = result.output as Record<string, any>;
      if (context.commandName === 'PutItemCommand') written(input['TableName'], input['Item']);
      if (context.commandName === 'UpdateItemCommand') written(input['TableName'], output['Attributes']);
      if (context.commandName === 'BatchWriteItemCommand') {
        for (const [table, requests] of Object.entries(input['RequestItems'] as Record<string, WriteRequest[]>)) {
          // Unprocessed items are not written yet: they count when a later call writes them.
          const keyOf = (item: Item) => `${item[partitionKey]?.S}\n${item[sortKey]?.S}`;
          const unprocessed = new Set((output['UnprocessedItems']?.[table] ?? []).map((request: WriteRequest) => keyOf(request.PutRequest!.Item!)));
          for (const request of requests) if (!unprocessed.has(keyOf(request.PutRequest!.Item!))) written(table, request.PutRequest!.Item!);
        }
      }
      return result;
    },
    { step: 'initialize', name: 'benchWriteUnitsBySize' },
  );
  return tally;
}

// ---- running ----

/** Runs `work` over `items` with `limit` in flight at once. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Nearest-rank percentile. */
const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;

function scanEvents(client: DynamoDBClient, tableName: string): Promise<Item[]> {
  return scanAll(client, tableName, { FilterExpression: 'begins_with(sk, :evt)', ExpressionAttributeValues: { ':evt': { S: eventSortKeyPrefix } } });
}

/** The floor: the same event items put with bare BatchWriteItem, 25 per call, nothing else written. */
async function writeBare(client: DynamoDBClient, tableName: string, items: Item[]) {
  const capacity = new CapacityTally();
  const bySize = countWriteUnitsBySize(client);
  const calls: WriteRequest[][] = [];
  for (let i = 0; i < items.length; i += 25) calls.push(items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })));
  const started = performance.now();
  await pool(calls, concurrency, async (requests) => {
    let pending = requests;
    while (pending.length > 0) {
      const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: pending }, ReturnConsumedCapacity: 'TOTAL' }));
      capacity.add('write', output.ConsumedCapacity);
      pending = output.UnprocessedItems?.[tableName] ?? [];
    }
  });
  return { seconds: (performance.now() - started) / 1000, reported: capacity.writeUnits, bySize: bySize.units };
}

async function bundleSize(): Promise<{ bytes: number; gzipBytes: number }> {
  return bundleFunction('functions/ingest/handler.ts', { sdk: 'bundled' });
}


interface MixResult {
  mix: Mix;
  stream: Stream;
  seconds: number;
  /** Milliseconds per request, sorted. */
  latencies: number[];
  /** Write units DynamoDB Local reported for the ingest, and counted from item sizes, with their breakdown. */
  reported: number;
  bySize: ReturnType<typeof countWriteUnitsBySize>;
  floor: Awaited<ReturnType<typeof writeBare>>;
  /** Change capture's marker writes, replayed per request and per 30-second window (see captureReplays). */
  capture: { perRequest: CaptureUnits; perWindow: CaptureUnits };
}

interface CaptureUnits {
  writeUnits: number;
  readUnits: number;
  batches: number;
}

/** The deployed change capture's batching window (lib/change-capture.ts). */
const captureWindowMs = 30_000;

/**
 * Change capture as deployed marks each changed entity once per stream batch, and a batch holds what was written in
 * about 30 seconds. How many events share a batch depends on traffic this bench does not have (it sends as fast as it
 * can), so the stored keys are replayed through change capture two ways, on a client of their own so the units are
 * measured apart from ingest's: one batch per request (the most marks there can be: a request's events are always
 * written together), and one batch per 30 seconds of the events' own times (live traffic, where an event is sent as
 * it happens).
 */
async function captureReplays(endpoint: string, tableName: string, stored: readonly Item[], calls: readonly Call[]) {
  const requestOf = new Map<string, number>();
  calls.forEach((call, index) => {
    const text = call.headers['content-encoding'] === 'gzip' ? gunzipSync(call.body).toString('utf8') : call.body.toString();
    const body = JSON.parse(text) as { batch?: { messageId: string }[]; messageId?: string };
    for (const message of body.batch ?? [body]) if (message.messageId !== undefined) requestOf.set(message.messageId, index);
  });
  const replay = async (batchOf: (item: Item, at: number) => number): Promise<CaptureUnits> => {
    const client = createDynamoDbClient(endpoint);
    const tally = new CapacityTally();
    const capture = new DynamoDbChangeCapture(client, tableName, defaultDirtyShards, tally);
    const batches = new Map<number, WrittenKey[]>();
    for (const item of stored) {
      const at = Date.parse((JSON.parse(eventBodyOf(item)!) as { timestamp: string }).timestamp);
      const batch = batchOf(item, at);
      batches.set(batch, [...(batches.get(batch) ?? []), { pk: item['pk']!.S!, sk: item['sk']!.S!, at: new Date(at) }]);
    }
    for (const batch of [...batches.keys()].sort((a, b) => a - b)) await capture.mark(batches.get(batch)!);
    client.destroy();
    return { writeUnits: tally.writeUnits, readUnits: tally.readUnits, batches: batches.size };
  };
  const perRequest = await replay((item) => requestOf.get(item['sk']!.S!.slice(eventSortKeyPrefix.length + 11)) ?? -1);
  const perWindow = await replay((_item, at) => Math.floor(at / captureWindowMs));
  return { perRequest, perWindow };
}

/** Sends a mix through its own local runtime and DynamoDB Local, then writes the events it stored bare beside it. */
async function measureMix(mix: Mix): Promise<MixResult> {
  const dynamoDb = await startDynamoDbLocal();
  const floorClient = createDynamoDbClient(dynamoDb.endpoint);
  let dev: DevRuntime | undefined;
  try {
    dev = await startDev({ port: 0, endpoint: dynamoDb.endpoint, tableName: `bench-ingest-${mix.name}` });
    const { url } = dev;
    const bySize = countWriteUnitsBySize(dev.client);
    const stream = mix.stream(dev.writeKey);
    const latencies: number[] = [];
    const started = performance.now();
    await pool(stream.calls, concurrency, async (call) => {
      const sent = performance.now();
      const response = await fetch(`${url}${call.path}`, { method: 'POST', headers: call.headers, body: call.body });
      const answer = await response.text();
      latencies.push(performance.now() - sent);
      if (response.status !== 200 || answer !== '{"success":true}') throw new Error(`the ingest answered ${mix.name}'s ${call.path} with ${response.status} ${answer.slice(0, 300)}`);
    });
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);

    const stored = await scanEvents(dev.client, dev.tableName);
    if (stored.length !== stream.messages.length) throw new Error(`${mix.name}: expected ${stream.messages.length} stored events, found ${stored.length}`);
    const floorTable = 'bench-floor';
    await ensureTable(floorClient, floorTable);
    const floor = await writeBare(floorClient, floorTable, stored);
    const capture = await captureReplays(dynamoDb.endpoint, dev.tableName, stored, stream.calls);
    return { mix, stream, seconds, latencies, reported: dev.events.capacity.writeUnits, bySize, floor, capture };
  } finally {
    floorClient.destroy();
    await dev?.stop();
    await dynamoDb.stop();
  }
}

// ---- report ----

/** A mix's lines of the report, and whether it is within its budget (always, without one). */
function reportMix({ mix, stream, seconds, latencies, reported, bySize, floor, capture }: MixResult): { lines: string[]; pass: boolean } {
  const events = stream.messages.length;
  const types = new Map<string, number>();
  for (const message of stream.messages) types.set(String(message['type']), (types.get(String(message['type'])) ?? 0) + 1);
  const typeShares = [...types.entries()].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${percentCoarse(n / events)} ${type}`).join(', ');
  const eventBytes = stream.messages.map(jsonBytes);
  const requestBytes = stream.calls.map((call) => Buffer.byteLength(call.body));

  const method = reported > 0
    ? 'reported by DynamoDB Local (ReturnConsumedCapacity TOTAL, GSI writes included)'
    : 'DynamoDB Local reported no consumed capacity: computed from item sizes, ceil(size / 1 KB) per item and GSI entry written';
  const runtimeUnits = (reported > 0 ? reported : bySize.units) / events;
  const floorUnits = (floor.reported > 0 ? floor.reported : floor.bySize) / events;
  const budget = mix.budgetUnitsPerEvent;
  // The budget counts what marks the events for the evaluator too, wherever it is written: at most one batch per request.
  const withCapture = runtimeUnits + capture.perRequest.writeUnits / events;
  const pass = budget === undefined || withCapture <= budget;
  const lines = [
    `${mix.name}: ${mix.sdk}`,
    `stream   ${count(stream.calls.length)} requests, ${count(events)} events (${(events / stream.calls.length).toFixed(1)} per request, ${bytes(average(requestBytes))} per request on the wire); ${stream.senders}`,
    `events   ${typeShares}; ${bytes(average(eventBytes))} average, ${bytes(Math.max(...eventBytes))} largest`,
    '',
    '                        events/s   p50 ms   p99 ms   WCU/event   WCU/event by size',
    `runtime (HTTP ingest)  ${fixed(events / seconds, 0, 8)} ${fixed(percentile(latencies, 50), 1, 8)} ${fixed(percentile(latencies, 99), 1, 8)} ${fixed(runtimeUnits, 3, 11)} ${fixed(bySize.units / events, 3, 19)}`,
    `floor (BatchWriteItem) ${fixed(events / floor.seconds, 0, 8)} ${'-'.padStart(8)} ${'-'.padStart(8)} ${fixed(floorUnits, 3, 11)} ${fixed(floor.bySize / events, 3, 19)}`,
    `runtime / floor        ${fixed(floor.seconds / seconds, 2, 8)} ${''.padStart(17)} ${fixed(runtimeUnits / floorUnits, 2, 11)}`,
    '',
    `write units: ${method}`,
    `write units per event by item, from sizes: ${itemKinds.map((kind) => `${kind} ${((bySize.byKind.get(kind) ?? 0) / events).toFixed(3)}`).join(', ')}`,
    `change capture, WCU/RCU per event: one batch per request (the most) ${(capture.perRequest.writeUnits / events).toFixed(3)}/${(capture.perRequest.readUnits / events).toFixed(3)}, ` +
      `per ${captureWindowMs / 1000} s of event time (live traffic) ${(capture.perWindow.writeUnits / events).toFixed(3)}/${(capture.perWindow.readUnits / events).toFixed(3)}`,
    budget === undefined
      ? `budget: no budget yet (${withCapture.toFixed(3)} WCU/event with change capture)`
      : `budget: <= ${budget.toFixed(2)} WCU/event amortized, change capture included: ${pass ? 'PASS' : 'FAIL'} (${withCapture.toFixed(3)})`,
  ];
  return { lines, pass };
}

const average = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function main() {
  console.log(
    [
      'pql-radar ingest benchmark',
      `${count(eventsPerMix)} events per mix, each mix against its own DynamoDB Local; ${concurrency} HTTP requests in flight (floor: ${concurrency} BatchWriteItem calls of 25 events)`,
    ].join('\n'),
  );
  let pass = true;
  // One after the other, so that no mix slows another down.
  for (const mix of [server, browser, mobile]) {
    const report = reportMix(await measureMix(mix));
    console.log(['', ...report.lines].join('\n'));
    pass &&= report.pass;
  }
  const bundle = await bundleSize();
  console.log(`\ningest bundle (esbuild, minified ESM, node22, SDK included): ${bytes(bundle.bytes)}, gzip ${bytes(bundle.gzipBytes)}`);
  if (!pass) process.exitCode = 1;
}

await main();
