/**
 * A deterministic stream of Segment messages from a made-up analytics product, for demos, the backtest and tests.
 * The same options always give the same messages (a seeded random generator, no clock unless `end` is left out),
 * and the event names are the ones the rules files in examples/ use:
 *
 *   track   Logged In {method}                  Dashboard Created {dashboard_id, template, widgets}
 *           Dashboard Shared {dashboard_id, with} Teammate Invited {invitee, role}
 *           Data Source Connected {source}       Data Exported {format, rows}
 *           Premium Feature Used {feature}       Plan Limit Reached {limit, plan, usage, max}
 *   page    Page Viewed (type page) {path, title, url}
 *   identify  traits {createdAt, plan, email, name, company?}
 *   group     traits {name, employees, industry, plan}; members' track and page events carry context.groupId
 *
 * Users follow one of four personas: activators (dashboards, invites and a data source in their first week),
 * power users (daily logins, exports, premium features, plan limits), tire kickers (a couple of page views, then
 * nothing; half of them signed up months ago) and churners (a good first week, then silent for three weeks or more).
 * Some users upgrade to the pro plan (an identify with plan "pro", the example rules' conversion), most often the
 * activators and power users a week or more after their milestones, sometimes a tire kicker or a churner: so a
 * backtest, or the live rule health after a paced replay, has conversions to measure against.
 */

import { dayMs } from '../core/days';
import { SeededRandom } from '../core/random';

export type Persona = 'activator' | 'power_user' | 'tire_kicker' | 'churner';

export interface SampleStreamOptions {
  /** @default 1 */
  seed?: number;
  /** @default 60 */
  users?: number;
  /** @default 12 */
  accounts?: number;
  /** How many days the stream spans, ending at `end`. @default 30 */
  days?: number;
  /** The stream ends here: no message is later. @default now */
  end?: Date;
}

/** A Segment message as an SDK sends it in a /v1/batch. */
export interface SampleMessage {
  type: 'track' | 'identify' | 'group' | 'page';
  userId: string;
  messageId: string;
  timestamp: string;
  event?: string;
  name?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  groupId?: string;
  context?: Record<string, unknown>;
}

export interface SampleUser {
  id: string;
  persona: Persona;
  accountId: string | null;
  /** The createdAt trait: may be before the stream starts. */
  signupAt: string;
  email: string;
  /** When the user upgraded to the pro plan, or null: not within the stream. */
  convertedAt: string | null;
}

export interface SampleAccount {
  id: string;
  name: string;
  employees: number;
  industry: string;
  plan: string;
}

export interface SampleStream {
  messages: SampleMessage[];
  users: SampleUser[];
  accounts: SampleAccount[];
  start: string;
  end: string;
}

const minuteMs = 60_000;

/** The vocabulary of the sample product's people and companies, shared with the benchmarks that need realistic names. */
export const firstNames = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elena', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kemi', 'Liam', 'Maya', 'Noah', 'Olga', 'Priya', 'Quinn', 'Rosa', 'Sami', 'Tara', 'Umar', 'Vera', 'Wen', 'Yusuf', 'Zoe'];
export const lastNames = ['Okafor', 'Schmidt', 'Tanaka', 'Silva', 'Novak', 'Haddad', 'Larsen', 'Moreau', 'Kowalski', 'Reyes', 'Ivanova', 'Chen', 'Walsh', 'Mensah', 'Berg', 'Rossi'];
export const companyPrefixes = ['Acme', 'Northwind', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell', 'Soylent', 'Cyberdyne', 'Vandelay', 'Wonka', 'Aperture', 'Massive', 'Pied Piper'];
export const companySuffixes = ['Analytics', 'Labs', 'Logistics', 'Health', 'Finance', 'Retail', 'Media', 'Systems'];
export const industries = ['software', 'fintech', 'ecommerce', 'healthcare', 'education', 'media', 'logistics', 'manufacturing'];
export const employeeCounts = [4, 9, 25, 60, 140, 320, 900, 2500];
export const pages = [
  { name: 'Home', path: '/' },
  { name: 'Dashboards', path: '/dashboards' },
  { name: 'Pricing', path: '/pricing' },
  { name: 'Settings', path: '/settings' },
  { name: 'Docs', path: '/docs' },
  { name: 'Billing', path: '/settings/billing' },
];
const templates = ['blank', 'revenue', 'funnel', 'retention', 'marketing', 'support'];
const dataSources = ['postgres', 'snowflake', 'bigquery', 'stripe', 'hubspot', 'google_sheets'];
const premiumFeatures = ['sso', 'audit_log', 'scheduled_reports', 'custom_roles', 'api_access'];
const limits = ['dashboards', 'seats', 'data_sources', 'rows'];
const limitMax: Record<string, number> = { dashboards: 3, seats: 3, data_sources: 2, rows: 100_000 };
/** Chance of upgrading to pro, and when (ms after the user's first day), by persona. */
const upgrades: Record<Persona, { chance: number; afterDays: [number, number] }> = {
  activator: { chance: 0.45, afterDays: [8, 20] },
  power_user: { chance: 0.4, afterDays: [10, 26] },
  tire_kicker: { chance: 0.1, afterDays: [1, 12] },
  churner: { chance: 0.08, afterDays: [2, 9] },
};
/** Spread so that any prefix of four users has every persona, and tire kickers and activators are the most common. */
const personaPattern: Persona[] = ['activator', 'power_user', 'tire_kicker', 'churner', 'activator', 'tire_kicker', 'power_user', 'activator', 'churner', 'tire_kicker'];

/** The stream with what it was made of (personas, accounts), for tests and demos that want to know who is who. */
export function generateSample(options: SampleStreamOptions = {}): SampleStream {
  const seed = options.seed ?? 1;
  const userCount = options.users ?? 60;
  const accountCount = options.accounts ?? 12;
  const days = Math.max(1, options.days ?? 30);
  const endMs = (options.end ?? new Date()).getTime();
  const startMs = endMs - days * dayMs;
  const random = new SeededRandom(seed);
  // Upgrades draw from their own sequence, so the rest of the stream is the same with or without them.
  const upgradeRandom = new SeededRandom(seed ^ 0x9e3779b9);
  const messages: SampleMessage[] = [];
  let counter = 0;
  const messageId = () => `sample-${seed}-${(counter++).toString(36).padStart(6, '0')}`;
  const iso = (ms: number) => new Date(ms).toISOString();

  const slugs = new Set<string>();
  const accounts: SampleAccount[] = Array.from({ length: accountCount }, (_, index) => {
    let name = `${random.pick(companyPrefixes)} ${random.pick(companySuffixes)}`;
    if (slugs.has(name)) name = `${name} ${index + 1}`;
    slugs.add(name);
    return {
      id: `acct_${String(index + 1).padStart(3, '0')}`,
      name,
      employees: random.pick(employeeCounts),
      industry: random.pick(industries),
      plan: random.chance(0.8) ? 'free' : 'trial',
    };
  });

  const personas = userCount > 0 ? Array.from({ length: userCount }, (_, index) => personaPattern[index % personaPattern.length]!) : [];
  const users: SampleUser[] = [];
  for (const [index, persona] of random.shuffle(personas).entries()) {
    const id = `user_${String(index + 1).padStart(3, '0')}`;
    const first = random.pick(firstNames);
    const last = random.pick(lastNames);
    const email = `${first}.${last}.${index + 1}@example.com`.toLowerCase();
    const account = accounts.length > 0 && random.chance(0.8) ? random.pick(accounts) : null;
    const plan = account?.plan ?? (random.chance(0.85) ? 'free' : 'trial');
    const emit = (message: Omit<SampleMessage, 'userId' | 'messageId'>) => {
      if (Date.parse(message.timestamp) > endMs || Date.parse(message.timestamp) < startMs) return;
      messages.push({ userId: id, messageId: messageId(), ...message });
    };
    const context = account ? { context: { groupId: account.id } } : {};
    const track = (at: number, event: string, properties: Record<string, unknown> = {}) =>
      emit({ type: 'track', event, properties, timestamp: iso(at), ...context });
    const page = (at: number) => {
      const shown = random.pick(pages);
      emit({ type: 'page', name: shown.name, properties: { path: shown.path, title: shown.name, url: `https://app.example.com${shown.path}` }, timestamp: iso(at), ...context });
    };
    /** A session from `at`: a login, then the events `fill` adds, a few minutes apart. */
    const session = (at: number, fill: (next: () => number) => void) => {
      let clock = at;
      const next = () => (clock += random.int(1, 9) * minuteMs + random.int(0, 59_000));
      track(clock, 'Logged In', { method: random.pick(['password', 'google', 'sso']) });
      fill(next);
    };
    const dayTime = (dayStart: number) => dayStart + random.int(7 * 60, 19 * 60) * minuteMs + random.int(0, 59) * 1000;

    // Signup: when the account was created (createdAt), and when this stream first hears of the user.
    const span = endMs - startMs;
    let signupMs: number;
    let firstSeenMs: number;
    switch (persona) {
      case 'activator':
        signupMs = startMs + random.next() * Math.max(0, span - 8 * dayMs);
        firstSeenMs = signupMs;
        break;
      case 'power_user':
        // Existing users: signed up before or early in the stream, busy throughout.
        signupMs = startMs - random.int(0, 40) * dayMs + random.next() * Math.min(span * 0.2, 3 * dayMs);
        firstSeenMs = Math.max(signupMs, startMs + random.next() * Math.min(span * 0.1, dayMs));
        break;
      case 'tire_kicker':
        // Half signed up months ago and drop by once; half sign up now and never come back.
        firstSeenMs = startMs + random.next() * Math.max(0, span - 15 * dayMs);
        signupMs = random.chance(0.5) ? Math.min(firstSeenMs, endMs - random.int(65, 120) * dayMs) : firstSeenMs;
        break;
      case 'churner':
        signupMs = startMs + random.next() * Math.max(span * 0.1, span - 28 * dayMs);
        firstSeenMs = signupMs;
        break;
    }
    signupMs = Math.floor(signupMs / 1000) * 1000;
    firstSeenMs = Math.max(Math.floor(firstSeenMs / 1000) * 1000, Math.ceil(startMs / 1000) * 1000);
    const user: SampleUser = { id, persona, accountId: account?.id ?? null, signupAt: iso(signupMs), email, convertedAt: null };
    users.push(user);

    emit({
      type: 'identify',
      timestamp: iso(firstSeenMs),
      traits: { createdAt: iso(signupMs), plan, email, name: `${first} ${last}`, ...(account ? { company: account.name } : {}) },
    });
    if (account) {
      emit({
        type: 'group',
        groupId: account.id,
        timestamp: iso(firstSeenMs + 1000),
        traits: { name: account.name, employees: account.employees, industry: account.industry, plan: account.plan },
      });
    }

    let dashboards = 0;
    let invites = 0;
    const dashboardId = () => `dash_${id}_${++dashboards}`;
    const invite = (at: number) =>
      track(at, 'Teammate Invited', { invitee: `teammate${++invites}.${id}@example.com`, role: random.pick(['editor', 'viewer']) });
    const dayStartOf = (ms: number) => ms - (ms % dayMs);
    const firstDay = dayStartOf(firstSeenMs);

    switch (persona) {
      case 'activator': {
        // The first week: the activation milestones (2+ dashboards, a teammate, a data source) and sharing.
        session(firstSeenMs + 2000, (next) => {
          page(next());
          page(next());
          track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(2, 8) });
        });
        const order = random.shuffle([1, 2, 3, 4, 5, 6]);
        const connectDay = order[0]!;
        const dashboardDay = order[1]!;
        const inviteDay = order[2]!;
        const shareDay = Math.max(dashboardDay, order[3]!);
        for (let day = 1; day <= 6; day++) {
          if (![connectDay, dashboardDay, inviteDay, shareDay].includes(day) && !random.chance(0.5)) continue;
          session(dayTime(firstDay + day * dayMs), (next) => {
            page(next());
            if (day === connectDay) track(next(), 'Data Source Connected', { source: random.pick(dataSources) });
            if (day === dashboardDay) {
              for (let n = random.int(1, 3); n > 0; n--) track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(2, 12) });
            }
            if (day === inviteDay) for (let n = random.int(1, 3); n > 0; n--) invite(next());
            if (day === shareDay) track(next(), 'Dashboard Shared', { dashboard_id: `dash_${id}_1`, with: random.pick(['team', 'public_link']) });
          });
        }
        // Afterwards, a steady habit.
        for (let day = firstDay + 7 * dayMs; day < endMs; day += dayMs) {
          if (!random.chance(0.55)) continue;
          session(dayTime(day), (next) => {
            for (let n = random.int(1, 3); n > 0; n--) page(next());
            if (random.chance(0.2)) track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(2, 12) });
            if (random.chance(0.25)) track(next(), 'Dashboard Shared', { dashboard_id: `dash_${id}_${random.int(1, dashboards)}`, with: 'team' });
            if (random.chance(0.1)) invite(next());
            if (random.chance(0.15)) track(next(), 'Data Exported', { format: random.pick(['csv', 'xlsx']), rows: random.int(50, 5_000) });
          });
        }
        break;
      }
      case 'power_user': {
        const limitFrom = firstDay + Math.floor((endMs - firstDay) * 0.6);
        for (let day = firstDay; day < endMs; day += dayMs) {
          if (!random.chance(0.85)) continue;
          for (let visit = random.int(1, 3); visit > 0; visit--) {
            session(Math.max(dayTime(day), firstSeenMs + 2000), (next) => {
              for (let n = random.int(1, 4); n > 0; n--) page(next());
              if (random.chance(0.25)) track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(4, 20) });
              if (random.chance(0.3)) track(next(), 'Dashboard Shared', { dashboard_id: `dash_${id}_${Math.max(1, dashboards)}`, with: 'team' });
              if (random.chance(0.25)) track(next(), 'Data Exported', { format: random.pick(['csv', 'xlsx', 'parquet']), rows: random.int(1_000, 250_000) });
              if (random.chance(0.2)) track(next(), 'Premium Feature Used', { feature: random.pick(premiumFeatures), plan_required: 'business' });
              if (random.chance(0.06)) invite(next());
              if (day >= limitFrom && random.chance(0.3)) {
                const limit = random.pick(limits);
                const max = limitMax[limit]!;
                track(next(), 'Plan Limit Reached', { limit, plan, usage: max, max });
              }
            });
          }
        }
        break;
      }
      case 'tire_kicker': {
        emit({ type: 'page', name: 'Home', properties: { path: '/', title: 'Home', url: 'https://app.example.com/' }, timestamp: iso(firstSeenMs + 2000), ...context });
        page(firstSeenMs + 2000 + random.int(1, 5) * minuteMs);
        if (random.chance(0.4)) {
          const back = firstDay + random.int(1, 3) * dayMs;
          emit({ type: 'page', name: 'Pricing', properties: { path: '/pricing', title: 'Pricing', url: 'https://app.example.com/pricing' }, timestamp: iso(dayTime(back)), ...context });
        }
        break;
      }
      case 'churner': {
        // A good first week, then nothing for three weeks or more (up to the end of the stream).
        const activeDays = random.int(5, 8);
        const lastActive = Math.min(firstDay + activeDays * dayMs, endMs - 22 * dayMs);
        session(firstSeenMs + 2000, (next) => {
          page(next());
          track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(2, 6) });
        });
        for (let day = firstDay + dayMs; day <= lastActive; day += dayMs) {
          if (!random.chance(0.7)) continue;
          session(dayTime(day), (next) => {
            for (let n = random.int(1, 3); n > 0; n--) page(next());
            if (random.chance(0.3)) track(next(), 'Dashboard Created', { dashboard_id: dashboardId(), template: random.pick(templates), widgets: random.int(2, 6) });
            if (random.chance(0.2)) track(next(), 'Data Source Connected', { source: random.pick(dataSources) });
            if (random.chance(0.15)) invite(next());
          });
        }
        break;
      }
    }

    const upgrade = upgrades[persona];
    const [roll, after, hour] = [upgradeRandom.next(), upgradeRandom.next(), upgradeRandom.next()];
    const upgradeMs = Math.floor((firstDay + (upgrade.afterDays[0] + after * (upgrade.afterDays[1] - upgrade.afterDays[0])) * dayMs + (8 + hour * 10) * 3_600_000) / 1000) * 1000;
    if (roll < upgrade.chance && upgradeMs <= endMs) {
      user.convertedAt = iso(upgradeMs);
      messages.push({ userId: id, messageId: `sample-${seed}-upgrade-${index + 1}`, type: 'identify', timestamp: user.convertedAt, traits: { plan: 'pro' } });
    }
  }

  // Stable sort: messages of one moment keep the order they were made in (identify before group before events).
  messages.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  return { messages, users, accounts, start: iso(startMs), end: iso(endMs) };
}

/** Segment messages as an SDK would send them to /v1/batch, sorted by timestamp. */
export function generateSampleStream(options: SampleStreamOptions = {}): SampleMessage[] {
  return generateSample(options).messages;
}

/** One JSON message per line, the format of examples/*.jsonl and of `pql-radar backtest`. */
export function toJsonl(messages: readonly object[]): string {
  return messages.map((message) => JSON.stringify(message)).join('\n') + (messages.length > 0 ? '\n' : '');
}
