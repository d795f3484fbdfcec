import type { Conversion } from '../analysis/metrics';
import { SeededRandom } from '../core/random';
import { companyPrefixes, employeeCounts as sampleEmployeeCounts, industries, pages as samplePages, type SampleMessage } from './sample-stream';
import { dayMs } from '../core/days';

/**
 * Event streams with planted signals: a realistic product's usage (identify and group calls, logins and page views on
 * a user's active days, members' events carrying context.groupId, as in sample-stream.ts) in which
 * chosen behaviours have KNOWN effects on conversion. Users who show a planted behaviour convert with its
 * `conversionRate` (p1); the others with `baseRate` (p0); noise behaviours (no conversionRate) change nothing. The
 * true lift of a planted behaviour is therefore p1 / p0, and that of a noise behaviour 1, which is what the tests of
 * the backtest and of discover check their figures against.
 *
 * Timing keeps the truth measurable: a user's behaviour events all happen in the first `onsetDays` days after they are
 * first seen, and conversions come after that (by `conversionDelayDays`), so every signal a user shows fires before
 * they convert. A converted user's plan trait changes to "pro" at conversion (an identify call): a later trait that a
 * replay must not see early. Deterministic: the same options always give the same stream (a seeded random generator).
 */

export interface PlantedEvent {
  /** The track event's name. */
  event: string;
  /** How many times a user who shows the behaviour sends it, at least and at most. @default [1, 1] */
  count?: readonly [number, number];
  /** Each property takes one of its listed values at random. */
  properties?: Readonly<Record<string, readonly unknown[]>>;
  /** A property given a value of its own on every event (an invitee's e-mail), so distinct counts grow with the count. */
  distinct?: string;
}

export interface PlantedBehaviour {
  /** What the behaviour is called in `users[].did`. */
  name: string;
  /** Share of users who show it, independently of every other behaviour. */
  share: number;
  /** The events it sends, within the user's first onsetDays days. */
  events: readonly PlantedEvent[];
  /** The conversion rate of users who show it (p1); omitted for noise, which does not change conversion. */
  conversionRate?: number;
}

export interface PlantedStreamOptions {
  /** @default 1 */
  seed?: number;
  /** @default 500 */
  users?: number;
  /** Accounts users belong to (accountShare of the users are members of one). @default users / 10 */
  accounts?: number;
  /** @default 0.7 */
  accountShare?: number;
  /** Days the stream spans, ending at `end`. @default 60 */
  days?: number;
  /** No message is later. @default 2025-03-31T00:00:00Z (a fixed date, so the stream is the same on every run) */
  end?: Date;
  behaviours: readonly PlantedBehaviour[];
  /** Conversion rate of users who show no planted behaviour (p0). @default 0.05 */
  baseRate?: number;
  /** A user's behaviour events fall in the first this many days after first being seen. @default 4 */
  onsetDays?: number;
  /** Conversions come this many days after the onset days, at least and at most. @default [1, 21] */
  conversionDelayDays?: readonly [number, number];
}

export interface PlantedUser {
  id: string;
  accountId: string | null;
  firstSeen: string;
  /** Names of the behaviours the user shows. */
  did: string[];
  /** The probability the user was given to convert. */
  conversionRate: number;
  convertedAt: string | null;
}

export interface PlantedStream {
  /** Segment messages, sorted by timestamp. */
  messages: SampleMessage[];
  /** Users who converted, and accounts (at their first member's conversion). */
  conversions: Conversion[];
  users: PlantedUser[];
  start: string;
  end: string;
}

const minuteMs = 60_000;
// The sample product's vocabulary, minus its last entries: the planted streams (and examples/backtest/) were made with these.
const pages = samplePages.slice(0, 5);
const companies = companyPrefixes.slice(0, 14);
const employeeCounts = sampleEmployeeCounts.slice(0, 7);
/** How often users come back on an ordinary day: everyone has a habit, whatever they will do. */
const habits = [0.04, 0.1, 0.2, 0.35, 0.55];

export function generatePlantedStream(options: PlantedStreamOptions): PlantedStream {
  const seed = options.seed ?? 1;
  const userCount = options.users ?? 500;
  const accountCount = options.accounts ?? Math.max(1, Math.floor(userCount / 10));
  const accountShare = options.accountShare ?? 0.7;
  const days = Math.max(2, options.days ?? 60);
  const endMs = (options.end ?? new Date('2025-03-31T00:00:00.000Z')).getTime();
  const startMs = endMs - days * dayMs;
  const baseRate = options.baseRate ?? 0.05;
  const onsetDays = Math.max(1, options.onsetDays ?? 4);
  const [delayMin, delayMax] = options.conversionDelayDays ?? [1, 21];
  const random = new SeededRandom(seed);
  const iso = (ms: number) => new Date(ms).toISOString();
  const messages: SampleMessage[] = [];
  let counter = 0;

  const accounts = Array.from({ length: accountCount }, (_, index) => ({
    id: `acct_${String(index + 1).padStart(4, '0')}`,
    name: `${random.pick(companies)} ${index + 1}`,
    employees: random.pick(employeeCounts),
    industry: random.pick(industries),
    plan: random.next() < 0.8 ? 'free' : 'trial',
  }));

  const users: PlantedUser[] = [];
  const conversions: Conversion[] = [];
  const accountConversion = new Map<string, string>();
  for (let index = 0; index < userCount; index++) {
    const id = `user_${String(index + 1).padStart(5, '0')}`;
    const account = accounts.length > 0 && random.next() < accountShare ? random.pick(accounts) : null;
    const context = account ? { context: { groupId: account.id } } : {};
    const emit = (message: Omit<SampleMessage, 'userId' | 'messageId'>) => {
      if (Date.parse(message.timestamp) > endMs) return;
      messages.push({ userId: id, messageId: `planted-${seed}-${(counter++).toString(36).padStart(7, '0')}`, ...message });
    };
    const track = (at: number, event: string, properties: Record<string, unknown>) => emit({ type: 'track', event, properties, timestamp: iso(at), ...context });
    const page = (at: number) => {
      const shown = random.pick(pages);
      emit({ type: 'page', name: shown.name, properties: { path: shown.path, title: shown.name, url: `https://app.example.com${shown.path}` }, timestamp: iso(at), ...context });
    };
    /** A moment of a day's working hours. */
    const dayTime = (dayStart: number) => dayStart + random.int(7 * 60, 19 * 60) * minuteMs + random.int(0, 59) * 1000;

    const firstSeenMs = Math.floor((startMs + random.next() * (endMs - startMs - (onsetDays + 1) * dayMs)) / 1000) * 1000;
    const firstDay = firstSeenMs - (firstSeenMs % dayMs);
    const plan = account?.plan ?? (random.next() < 0.85 ? 'free' : 'trial');
    emit({ type: 'identify', timestamp: iso(firstSeenMs), traits: { createdAt: iso(firstSeenMs), plan, email: `${id}@example.com`, name: `User ${index + 1}`, ...(account ? { company: account.name } : {}) } });
    if (account) {
      emit({ type: 'group', groupId: account.id, timestamp: iso(firstSeenMs + 1000), traits: { name: account.name, employees: account.employees, industry: account.industry, plan: account.plan } });
    }
    track(firstSeenMs + 2000, 'Logged In', { method: random.pick(['password', 'google', 'sso']) });
    page(firstSeenMs + 3000);

    // Planted and noise behaviours, each drawn independently, in the onset days (never before the first message).
    const did: string[] = [];
    let conversionRate = baseRate;
    let plantedRate: number | undefined;
    for (const behaviour of options.behaviours) {
      if (random.next() >= behaviour.share) continue;
      did.push(behaviour.name);
      if (behaviour.conversionRate !== undefined) plantedRate = Math.max(plantedRate ?? 0, behaviour.conversionRate);
      for (const planted of behaviour.events) {
        const [min, max] = planted.count ?? [1, 1];
        for (let n = random.int(min, max), k = 1; k <= n; k++) {
          const at = Math.max(dayTime(firstDay + random.int(0, onsetDays - 1) * dayMs), firstSeenMs + 4000 + k * 1000);
          const properties: Record<string, unknown> = {};
          for (const [name, values] of Object.entries(planted.properties ?? {})) properties[name] = random.pick(values);
          if (planted.distinct !== undefined) properties[planted.distinct] = `${planted.distinct}-${k}.${id}@example.com`;
          track(at, planted.event, properties);
        }
      }
    }
    if (plantedRate !== undefined) conversionRate = plantedRate;

    // An ordinary habit of coming back: logins and page views, unrelated to conversion.
    const habit = random.pick(habits);
    for (let day = firstDay + dayMs; day < endMs; day += dayMs) {
      if (random.next() >= habit) continue;
      const at = dayTime(day);
      track(at, 'Logged In', { method: random.pick(['password', 'google', 'sso']) });
      for (let n = random.int(1, 3); n > 0; n--) page(at + n * random.int(1, 9) * minuteMs);
    }

    let convertedAt: string | null = null;
    if (random.next() < conversionRate) {
      const atMs = firstDay + (onsetDays + random.int(delayMin, delayMax)) * dayMs + random.int(8 * 60, 18 * 60) * minuteMs;
      convertedAt = iso(atMs);
      conversions.push({ type: 'user', id, convertedAt, value: random.pick([49, 99, 299]) });
      emit({ type: 'identify', timestamp: convertedAt, traits: { plan: 'pro' } });
      if (account && (!accountConversion.has(account.id) || convertedAt < accountConversion.get(account.id)!)) accountConversion.set(account.id, convertedAt);
    }
    users.push({ id, accountId: account?.id ?? null, firstSeen: iso(firstSeenMs), did, conversionRate, convertedAt });
  }
  for (const [id, convertedAt] of [...accountConversion.entries()].sort(([a], [b]) => a.localeCompare(b))) conversions.push({ type: 'account', id, convertedAt });

  messages.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  return { messages, conversions, users, start: iso(startMs), end: iso(endMs) };
}

/**
 * The stream of examples/backtest: the sample product's events, where activation in the first days (two dashboards,
 * a teammate invited, a data source connected) and hitting a plan limit drive conversion, and sharing dashboards,
 * exporting data and trying premium features do not. Against examples/activation.rules.yaml, PQL-A (activation and
 * sharing) predicts conversion; PQL-B (sharing) does not.
 */
export const exampleBehaviours: readonly PlantedBehaviour[] = [
  {
    name: 'activation',
    share: 0.3,
    conversionRate: 0.35,
    events: [
      { event: 'Dashboard Created', count: [2, 3], properties: { template: ['blank', 'revenue', 'funnel', 'retention'], widgets: [2, 4, 6, 8] } },
      { event: 'Teammate Invited', count: [1, 2], distinct: 'invitee', properties: { role: ['editor', 'viewer'] } },
      { event: 'Data Source Connected', properties: { source: ['postgres', 'snowflake', 'bigquery', 'stripe', 'hubspot'] } },
    ],
  },
  { name: 'plan_limit', share: 0.12, conversionRate: 0.2, events: [{ event: 'Plan Limit Reached', count: [1, 2], properties: { limit: ['dashboards', 'seats', 'data_sources'], plan: ['free'] } }] },
  { name: 'sharing', share: 0.45, events: [{ event: 'Dashboard Shared', count: [1, 3], properties: { with: ['team', 'public_link'] } }] },
  { name: 'exports', share: 0.35, events: [{ event: 'Data Exported', count: [1, 3], properties: { format: ['csv', 'xlsx'], rows: [120, 1500, 8000] } }] },
  { name: 'premium', share: 0.25, events: [{ event: 'Premium Feature Used', count: [1, 4], properties: { feature: ['sso', 'audit_log', 'scheduled_reports', 'api_access'] } }] },
];

/** The options that made examples/backtest/events.jsonl.gz and conversions.csv. */
export const exampleStreamOptions: PlantedStreamOptions = {
  seed: 7,
  users: 1000,
  accounts: 100,
  days: 60,
  end: new Date('2025-03-31T00:00:00.000Z'),
  behaviours: exampleBehaviours,
  baseRate: 0.04,
};
