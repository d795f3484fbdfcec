/**
 * The event streams of bench:ingest and bench:cost: what the Segment SDKs send for a product's users, request by
 * request, spread over a window of time and ordered as they would be sent.
 *
 *   server            analytics-node: batches of 100 events of 8 users from 3 accounts, JSON to /v1/batch
 *   browser           analytics.js (analytics-next) defaults: one event of one visitor per request, text/plain to /v1/t,
 *                     /v1/p, /v1/i, /v1/g
 *   mobile            analytics-kotlin: batches of 20 events of one user, gzipped text/plain to /v1/b
 *   browser+backend   browserAndBackend(share): the browser stream for a share of the events, the server stream for the
 *                     rest, the same users, merged in time
 *
 * Every stream has userCount users in accountCount accounts unless told otherwise; a stream's seed is fixed, so the
 * same options give the same stream. Also here: an item's size by DynamoDB's rules, and the sending of a stream's calls to an ingest endpoint.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { gzipSync } from 'node:zlib';
import { SeededRandom } from '../functions/core/random';
import { count, percent, percentCoarse } from '../functions/analysis/format';

export type Message = Record<string, unknown>;
type Item = Record<string, AttributeValue>;

export const userCount = 200;
export const accountCount = 20;

/** One HTTP request, as its SDK sends it. */
export interface Call {
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
  /** When the SDK sends it (ms since the epoch): after the last event it carries. Calls come in this order. */
  at: number;
}

export interface Stream {
  calls: Call[];
  /** Every message of the stream, as sent (a browser's with the writeKey and sentAt it carries). */
  messages: Message[];
  /** Who sends the stream, for the report. */
  senders: string;
}

/** How many events a stream has, the stretch of time they are spread over, and the people who send them. */
export interface StreamOptions {
  events: number;
  /** Start of the window, ms since the epoch. */
  start: number;
  windowMs: number;
  /** Users in all, user u in account u % accounts: a multiple of `accounts`. @default userCount */
  users?: number;
  /** @default accountCount */
  accounts?: number;
}

/** The users and accounts of a stream's options. */
function population(options: StreamOptions): { users: number; accounts: number } {
  const users = options.users ?? userCount;
  const accounts = options.accounts ?? accountCount;
  if (!Number.isInteger(users / accounts) || accounts < 1) throw new Error(`a stream's users (${users}) must be a multiple of its accounts (${accounts})`);
  return { users, accounts };
}

export interface Mix {
  name: string;
  /** How the SDK sends, for the report. */
  sdk: string;
  /** Write units per event the mix must stay under, if it has a budget yet. */
  budgetUnitsPerEvent?: number;
  stream(writeKey: string, options: StreamOptions): Stream;
}

const featureEvents = ['Dashboard Created', 'Report Exported', 'Query Run', 'Alert Configured', 'Teammate Invited', 'Integration Connected', 'Chart Shared', 'API Key Created'];
const pages = ['Pricing', 'Billing', 'Settings', 'Docs', 'Dashboard', 'Integrations'];
const plans = ['free', 'trial', 'team', 'business'];

export const userIdOf = (user: number) => `user-${String(user).padStart(4, '0')}`;
const accountIdOf = (account: number) => `account-${String(account).padStart(3, '0')}`;
const uuid = (rng: SeededRandom) => `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`;
const userTraits = (rng: SeededRandom, user: number) => ({ email: `${userIdOf(user)}@example.com`, name: `User ${user}`, plan: rng.pick(plans), seats: 1 + rng.int(0, 49) });
const accountTraits = (rng: SeededRandom, account: number) => ({ name: `Account ${account}`, plan: rng.pick(plans), employees: 10 + rng.int(0, 4999) });
/** A track's properties in the browser and mobile mixes. */
const trackProperties = (rng: SeededRandom, source: string) => ({ plan: rng.pick(plans), items: rng.int(0, 99), durationMs: rng.int(0, 59_999), source, objectId: rng.hex(24) });
const isoTime = (ms: number) => new Date(ms).toISOString();
const basicAuthorization = (writeKey: string) => `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
export const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

const serverEventsPerBatch = 100;
const serverMaxEventBytes = 1024;
/** A backend's SDK flushes what several users just did, mostly within one or a few accounts. */
const serverUsersPerBatch = 8;
const serverAccountsPerBatch = 3;

export const server: Mix = {
  name: 'server',
  sdk: `analytics-node: batches of ${serverEventsPerBatch} to /v1/batch, application/json, Basic auth`,
  // Measured 0.35 once a request's events of a user and day share an item (0.15 of it the event items, about two write
  // units per chunk of a dozen events); 0.4 leaves room for a little variation in the messages, and fails a return to
  // one item per event (over 1).
  budgetUnitsPerEvent: 0.4,
  stream(writeKey, options) {
    const { events, start, windowMs } = options;
    const people = population(options);
    const rng = new SeededRandom(20240501);
    const authorization = basicAuthorization(writeKey);
    const calls: Call[] = [];
    const messages: Message[] = [];
    for (let first = 0; first < events; first += serverEventsPerBatch) {
      const accounts = Array.from({ length: serverAccountsPerBatch }, () => rng.int(0, people.accounts - 1));
      const users = Array.from({ length: serverUsersPerBatch }, () => rng.pick(accounts) + people.accounts * rng.int(0, people.users / people.accounts - 1));
      const batch = Array.from({ length: Math.min(serverEventsPerBatch, events - first) }, (_, i) => {
        const user = rng.pick(users);
        const account = user % people.accounts;
        const common = {
          messageId: uuid(rng),
          userId: userIdOf(user),
          timestamp: isoTime(start + ((first + i) / events) * windowMs),
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
        // The SDK flushes once the batch is full, as its last event happens.
        at: Date.parse(batch.at(-1)!.timestamp),
      });
    }
    return {
      calls,
      messages,
      senders: `${people.users} users in ${people.accounts} accounts, ${serverUsersPerBatch} users from ${serverAccountsPerBatch} accounts per batch`,
    };
  },
};

/** A browser or a phone, and who its person logs in as. The SDK keeps its anonymousId, and its userId from identify on. */
interface Visitor<Device> {
  anonymousId: string;
  device: Device;
  /** The user the visitor identifies as; none for an anonymous-only visitor. */
  user: number | undefined;
  /** The user's account. */
  account: number | undefined;
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
 * What visitors of a product do, session by session, `options.events` actions in all: a first view, then views and tracks;
 * a visitor who will identify does so once, in their first session, and selects their account (a group call) after it
 * now and then. Half the sessions are a returning visitor's. Sessions follow each other through the window.
 */
function visitorSessions<Device>(
  rng: SeededRandom,
  stream: StreamOptions,
  options: { anonymousShare: number; sessionLength: () => number; views: readonly string[]; newDevice: () => Device },
): Session<Device>[] {
  const { events, start, windowMs } = stream;
  const people = population(stream);
  const visitors: Visitor<Device>[] = [];
  const sessions: Session<Device>[] = [];
  for (let done = 0; done < events; ) {
    let visitor = visitors.length > 0 && rng.chance(0.5) ? rng.pick(visitors) : undefined;
    if (!visitor) {
      // In this order: the generator draws the id, the device, then the user.
      const anonymousId = uuid(rng);
      const device = options.newDevice();
      const user = rng.chance(options.anonymousShare) ? undefined : rng.int(0, people.users - 1);
      visitor = { anonymousId, device, user, account: user === undefined ? undefined : user % people.accounts, identified: false };
      visitors.push(visitor);
    }
    const length = Math.min(options.sessionLength(), events - done);
    const identifyAt = visitor.user !== undefined && !visitor.identified ? rng.int(1, length - 1) : undefined;
    // A session lasts at most an hour (60 actions a minute apart): starting before the window's last hour, none ends after it.
    let time = start + (done / events) * (windowMs - 3_600_000);
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
function visitorCounts(sessions: Session<unknown>[], options: StreamOptions): string {
  const people = population(options);
  const visitors = new Set(sessions.map((session) => session.visitor));
  const anonymous = [...visitors].filter((visitor) => !visitor.identified).length;
  return `${count(sessions.length)} sessions of ${count(visitors.size)} visitors, ${percent(anonymous / visitors.size)} never identified; ${people.users} users in ${people.accounts} accounts`;
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

export const browser: Mix = {
  name: 'browser',
  sdk: 'analytics.js (analytics-next 1.84.3) defaults: one event per request to /v1/{t,p,i,g}, text/plain, Basic auth and writeKey in the body',
  stream(writeKey, options) {
    const rng = new SeededRandom(20240502);
    const sessions = visitorSessions<Browser>(rng, options, {
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
      calls: sent.map(({ time, path, message }) => ({ path, headers, body: JSON.stringify(message), at: time })),
      messages: sent.map(({ message }) => message),
      senders: visitorCounts(sessions, options),
    };
  },
};

/** One call as analytics-next puts it on the wire: its event factory's fields, the page and environment enrichment, then what the Segment.io plugin adds. */
function browserMessage(rng: SeededRandom, action: Action, visitor: Visitor<Browser>, page: Record<string, string>, writeKey: string): Message {
  const { device } = visitor;
  // Only a visitor with a user identifies or selects an account.
  const user = visitor.user!;
  const account = visitor.account!;
  const call =
    action.type === 'view'
      ? { type: 'page', properties: { ...page, name: action.view }, name: action.view }
      : action.type === 'track'
        ? { event: rng.pick(featureEvents), type: 'track', properties: trackProperties(rng, 'web') }
        : action.type === 'identify'
          ? { type: 'identify', userId: action.userId, traits: userTraits(rng, user) }
          : { type: 'group', traits: accountTraits(rng, account), groupId: accountIdOf(account) };
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

export const mobile: Mix = {
  name: 'mobile',
  sdk: `analytics-kotlin ${kotlinVersion}: batches of ${mobileBatchSize} events of one user to /v1/b, gzipped text/plain, writeKey in the body`,
  stream(writeKey, options) {
    const rng = new SeededRandom(20240503);
    const sessions = visitorSessions<MobileDevice>(rng, options, {
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
      calls: uploads.map(({ sentAt, batch }) => ({ path: '/v1/b', headers, body: gzipSync(JSON.stringify({ batch, sentAt: isoTime(sentAt), writeKey })), at: sentAt })),
      messages: uploads.flatMap(({ batch }) => batch),
      senders: visitorCounts(sessions, options),
    };
  },
};

/** One call as analytics-kotlin stores it for upload: the event's fields, then the identity, ids and the context its Android plugin adds. */
function mobileMessage(rng: SeededRandom, action: Action, visitor: Visitor<MobileDevice>): Message {
  const { phone, ...device } = visitor.device;
  // Only a visitor with a user identifies or selects an account.
  const user = visitor.user!;
  const account = visitor.account!;
  const call =
    action.type === 'view'
      ? { type: 'screen', name: action.view, properties: {} }
      : action.type === 'track'
        ? { type: 'track', event: rng.pick(featureEvents), properties: trackProperties(rng, 'android') }
        : action.type === 'identify'
          ? { type: 'identify', traits: userTraits(rng, user) }
          : { type: 'group', groupId: accountIdOf(account), traits: accountTraits(rng, account) };
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

/**
 * A product that sends from both sides for the same users: analytics.js in the browser (page views and clicks, one
 * request per call) and analytics-node in its backend (what the server does for a user, batches of 100). A share
 * `browserShare` of the events comes from the browser, the rest from the backend, merged in the order they are sent.
 */
export function browserAndBackend(browserShare: number): Mix {
  if (!(browserShare > 0 && browserShare < 1)) throw new Error(`the browser share of the browser+backend mix must be between 0 and 1, got ${browserShare}`);
  return {
    name: 'browser+backend',
    sdk: `${percentCoarse(browserShare)} of the events from analytics.js (one per request), ${percentCoarse(1 - browserShare)} from analytics-node (batches of ${serverEventsPerBatch}), the same users`,
    stream(writeKey, options) {
      const browserEvents = Math.min(options.events - 1, Math.max(1, Math.round(options.events * browserShare)));
      const front = browser.stream(writeKey, { ...options, events: browserEvents });
      const back = server.stream(writeKey, { ...options, events: options.events - browserEvents });
      return {
        // Stable: a browser call and a batch sent at the same millisecond keep their streams' order.
        calls: [...front.calls, ...back.calls].sort((a, b) => a.at - b.at),
        messages: [...front.messages, ...back.messages],
        senders: `browser: ${count(front.calls.length)} requests, ${front.senders}; backend: ${count(back.calls.length)} batches`,
      };
    },
  };
}

// ---- item sizes ----

/**
 * An attribute value's size by DynamoDB's rules: strings and binaries in bytes, numbers 1 byte per 2 significant
 * digits plus 1, booleans and null 1, sets the sum of their members, a map or a list 3 bytes plus its contents (a
 * map's names included) plus 1 byte per element.
 */
export function attributeValueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.length;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.length, 0);
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.M !== undefined) return 3 + Object.entries(value.M).reduce((sum, [name, inner]) => sum + Buffer.byteLength(name) + attributeValueSize(inner) + 1, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, inner) => sum + attributeValueSize(inner) + 1, 0);
  throw new Error(`the benchmark cannot size attribute value ${JSON.stringify(value)}`);
}

function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/** An item's size as DynamoDB counts it for capacity: its attribute names and values. */
export const itemSize = (item: Item) => Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + attributeValueSize(value), 0);

// ---- sending ----

/** Runs `work` over `items` with `limit` in flight at once. */
export async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Sends `calls` to the ingest endpoint at `url`, `concurrency` in flight, each as its SDK would; every one must be
 * answered 200 {"success":true}. Returns each request's milliseconds, in the order they finished.
 */
export async function sendCalls(url: string, calls: readonly Call[], concurrency: number, what: string): Promise<number[]> {
  const latencies: number[] = [];
  await pool(calls, concurrency, async (call) => {
    const sent = performance.now();
    const response = await fetch(`${url}${call.path}`, { method: 'POST', headers: call.headers, body: call.body });
    const answer = await response.text();
    latencies.push(performance.now() - sent);
    if (response.status !== 200 || answer !== '{"success":true}') throw new Error(`the ingest answered ${what}'s ${call.path} with ${response.status} ${answer.slice(0, 300)}`);
  });
  return latencies;
}
