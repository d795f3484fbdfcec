/**
 * Evaluator benchmark.
 *
 * (a) The PQL engine in memory: a 20-signal ruleset over realistic per-user facts (a rollup per active day of up to 30,
 *     made with rollupDay from generated events, plus the lifetime rollup), entities per second for evaluate() and its tier,
 *     beside json-rules-engine running the same rules over flat facts computed separately from the raw events.
 *     Both must give every entity the same tier (and the same matched signals), or the benchmark fails.
 * (b) The evaluator against DynamoDB Local: a stored history per user, a first evaluation that builds the state,
 *     then one new day of events for every user and a second evaluation, measured: read and write capacity units
 *     per evaluated entity, and entities per second. Repeated with 10x the stored history per user: an evaluation
 *     reads what changed, not the whole history, so the figures must not move. It also
 *     checks that every user's tier and score after the incremental runs equal an evaluation of its whole history.
 *
 *   npm run bench:evaluate                                                  10,000 users in memory; 100 users in 10 accounts on DynamoDB Local (~2 min on 2 cores)
 *   BENCH_ENTITIES=20000 BENCH_USERS=200 BENCH_ACCOUNTS=20 npm run bench:evaluate   bigger (~4 min)
 *
 * Other knobs: BENCH_RUNS (5), BENCH_WARMUP (3 rounds: the agreement pass over every user, then rounds over up to
 * 2,000), BENCH_DAYS (30: stored history of the first table), BENCH_SCALE (10: the second table has BENCH_DAYS x
 * BENCH_SCALE days). DynamoDB Local stores about 2,600 events/s here, which is what bounds BENCH_USERS.
 * Budget: the second table's capacity units per evaluated entity stay within 10% of the first's. Exits 1 when not,
 * or when the two engines disagree.
 */
import { BatchGetItemCommand, type AttributeValue, type ConsumedCapacity, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Engine, type RuleProperties, type TopLevelCondition } from 'json-rules-engine';
import { DynamoDbEvaluationStore } from '../functions/adapters/dynamodb/evaluation-store';
import { DynamoDbChangeCapture } from '../functions/adapters/dynamodb/change-capture';
import { DynamoDbEventStore } from '../functions/adapters/dynamodb/event-store';
import { LocalChangeStream } from '../functions/local/change-stream';
import { entityPartitionKey, stateSortKey } from '../functions/adapters/dynamodb/item-keys';
import { validateMessage, type AcceptedMessage } from '../functions/core/messages';
import type { EntityRef, EntityUpdate, LeadPublisher } from '../functions/core/ports';
import { eventsByDay, recomputeDays, userFacts } from '../functions/core/facts';
import { evaluate, type EntityFacts, type UsageEvent } from '../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../functions/core/rules/load';
import type { Condition, Signal } from '../functions/core/rules/schema';
import { allShards, runEvaluator } from '../functions/core/evaluate-leads';
import { dayMs } from '../functions/core/days';
import { SeededRandom, seedFrom } from '../functions/core/random';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { companyPrefixes, companySuffixes, employeeCounts, firstNames, industries, lastNames } from '../functions/cli/sample-stream';
import { bytes, count, fixed } from '../functions/analysis/format';

const positiveInt = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return value;
};
const entityCount = positiveInt('BENCH_ENTITIES', 10_000);
const runs = positiveInt('BENCH_RUNS', 5);
const warmupRounds = positiveInt('BENCH_WARMUP', 3);
const warmupEntities = Math.min(entityCount, 2_000);
const userCount = positiveInt('BENCH_USERS', 100);
const accountCount = Math.min(userCount, positiveInt('BENCH_ACCOUNTS', 10));
const historyDays = positiveInt('BENCH_DAYS', 30);
const historyScale = positiveInt('BENCH_SCALE', 10);
const dirtyShards = 4;
const budgetRatio = 1.1;
/** Fixed, so every run computes the same windows. Events fall between 07:00 and 18:00 UTC of their day. */
const now = new Date('2025-06-02T18:30:00.000Z');

const workspace = 'ws_bench';
/**
 * The fixed dates lie in the past: with the default 400-day retention, DynamoDB Local could expire the older
 * events by TTL as the calendar moves on. Item sizes do not change (expiresAt has 10 digits either way).
 */
const retentionDays = 36_500;

// ---- the rules ----

const rulesYaml = `
version: 1
name: bench-evaluate
signup:
  trait: createdAt
signals:
  # Engagement, rolling windows
  logins_7d:
    event: Logged In
    window: 7d
    at_least: 3
    points: 10
  dashboards_30d:
    event: Dashboard Created
    window: 30d
    at_least: 2
    points: 10
  shared_with_team_14d:
    event: Dashboard Shared
    where: { with: team }
    window: 14d
    points: 10
  invitees_30d:
    description: 3+ different teammates invited
    event: Teammate Invited
    distinct: invitee
    window: 30d
    at_least: 3
    points: 20
  rows_exported_30d:
    event: Data Exported
    sum: rows
    window: 30d
    at_least: 20000
    points: 10
  big_spreadsheet_exports_7d:
    event: Data Exported
    where: { rows: { gte: 5000 }, format: { in: [csv, xlsx] } }
    window: 7d
    points: 5
  premium_features_30d:
    event: Premium Feature Used
    distinct: feature
    window: 30d
    at_least: 2
    points: 15
  hit_plan_limit_14d:
    event: Plan Limit Reached
    window: 14d
    points: 15
  pricing_views_14d:
    event: Page Viewed
    where: { name: { in: [Pricing, Billing] } }
    window: 14d
    at_least: 2
    points: 10
  # Activation, within days of signup
  data_source_first_week:
    event: Data Source Connected
    since_signup: 7d
    points: 10
  dashboards_first_week:
    event: Dashboard Created
    since_signup: 7d
    at_least: 2
    points: 10
  invited_first_two_weeks:
    event: Teammate Invited
    since_signup: 2w
    points: 5
  # Anti-PQL
  barely_used_30d:
    events: ['*']
    window: 30d
    at_most: 5
    points: -20
  inactive_14d:
    inactive_for: 14d
    points: -30
  # Fit
  company_size:
    trait: employees
    of: account
    is: { gte: 50 }
    points: 15
  target_industry:
    trait: industry
    of: account
    is: { in: [software, fintech, ecommerce] }
    points: 5
  on_trial:
    trait: plan
    is: trial
    points: 10
  # Combinations
  activated:
    all: [data_source_first_week, dashboards_first_week, invited_first_two_weeks]
    points: 20
  team_intent:
    any: [invitees_30d, hit_plan_limit_14d, pricing_views_14d]
  pql_formula:
    all: [logins_7d, shared_with_team_14d, team_intent]
    not: barely_used_30d
scoring:
  cap: 100
tiers:
  - name: PQL-A
    level: user
    min_score: 70
    require: [pql_formula]
    route: sales
  - name: PQL-B
    level: user
    min_score: 40
    require: [team_intent]
    route: sales
  - name: engaged
    level: user
    min_score: 20
    route: nurture
`;

// ---- the event stream ----


const pages = ['Home', 'Dashboards', 'Dashboards', 'Docs', 'Settings', 'Pricing', 'Billing'];
const templates = ['blank', 'revenue', 'funnel', 'retention', 'marketing', 'support'];
const dataSources = ['postgres', 'snowflake', 'bigquery', 'stripe', 'hubspot', 'google_sheets'];
const premiumFeatures = ['sso', 'audit_log', 'scheduled_reports', 'custom_roles', 'api_access'];
const limits = ['dashboards', 'seats', 'data_sources', 'rows'];
const userAgents = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
];

type Persona = 'power_user' | 'activator' | 'steady' | 'evaluator' | 'tire_kicker' | 'churner';
const personaPattern: Persona[] = ['activator', 'steady', 'tire_kicker', 'power_user', 'churner', 'steady', 'evaluator', 'activator', 'tire_kicker', 'steady'];

interface Account {
  id: string;
  name: string;
  domain: string;
  employees: number;
  industry: string;
  plan: string;
}

interface User {
  index: number;
  id: string;
  persona: Persona;
  account: Account;
  name: string;
  email: string;
  plan: string;
  /** Days before today's date the user signed up (and first appears). */
  signupOffset: number;
  signupAt: string;
}

type Message = Record<string, unknown> & { type: string; timestamp: string; messageId: string; event?: string; properties?: Record<string, unknown> };

function makeAccounts(count: number, seed: number): Account[] {
  const rng = new SeededRandom(seedFrom(seed, 1));
  return Array.from({ length: count }, (_, index) => {
    const name = `${rng.pick(companyPrefixes)} ${rng.pick(companySuffixes)} ${index + 1}`;
    return {
      id: `acct_${String(index + 1).padStart(4, '0')}`,
      name,
      domain: `${name.toLowerCase().replaceAll(' ', '-')}.example.com`,
      employees: rng.pick(employeeCounts),
      industry: rng.pick(industries),
      plan: rng.chance(0.75) ? 'free' : 'trial',
    };
  });
}

/** A user whose history starts about `history` days ago (some activators sign up later, when `lateSignups`). */
function makeUser(index: number, accounts: readonly Account[], history: number, today: Date, lateSignups: boolean, seed: number): User {
  const rng = new SeededRandom(seedFrom(seed, 2, index));
  const persona = personaPattern[index % personaPattern.length]!;
  const account = accounts[index % accounts.length]!;
  const first = rng.pick(firstNames);
  const last = rng.pick(lastNames);
  const signupOffset = lateSignups && persona === 'activator' ? rng.int(8, history - 1) : history - 1 - rng.int(0, Math.min(2, history - 1));
  const signupMs = Date.parse(`${isoDay(today.getTime() - signupOffset * dayMs)}T08:${String(rng.int(10, 59))}:00.000Z`);
  return {
    index,
    id: `usr_${String(index + 1).padStart(5, '0')}`,
    persona,
    account,
    name: `${first} ${last}`,
    email: `${first}.${last}.${index + 1}@${account.domain}`.toLowerCase(),
    plan: account.plan === 'trial' || rng.chance(0.1) ? 'trial' : 'free',
    signupOffset,
    signupAt: new Date(signupMs).toISOString(),
  };
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * One user's messages on one day, `offset` days before today. The first two weeks after signup follow the persona's
 * onboarding; later days its habit. Each day has its own seed, so a day's events are the same whatever the length of
 * the history around it. `forceActive` makes an inactive day a light one instead (the benchmark's "new day").
 */
function dayMessages(user: User, offset: number, today: Date, seed: number, forceActive = false): Message[] {
  const daysSinceSignup = user.signupOffset - offset;
  if (daysSinceSignup < 0) return [];
  const onboarding = daysSinceSignup < 14;
  const rng = new SeededRandom(onboarding ? seedFrom(seed, 3, user.index, daysSinceSignup) : seedFrom(seed, 4, user.index, offset));
  const dayStart = Date.parse(`${isoDay(today.getTime() - offset * dayMs)}T00:00:00.000Z`);
  const messages: Message[] = [];
  const context = {
    groupId: user.account.id,
    library: { name: 'analytics-node-next', version: '3.1.0' },
    ip: `10.${user.index % 200}.${rng.int(0, 255)}.${rng.int(1, 254)}`,
    locale: 'en-US',
    timezone: 'Europe/Berlin',
    userAgent: userAgents[user.index % userAgents.length],
  };
  let counter = 0;
  const base = (at: number) => ({ messageId: `${user.id}-${isoDay(at)}-${String(counter++).padStart(3, '0')}-${rng.hex(8)}`, userId: user.id, timestamp: new Date(at).toISOString(), context });
  const track = (at: number, event: string, properties: Record<string, unknown>) => messages.push({ ...base(at), type: 'track', event, properties });
  const page = (at: number, name = rng.pick(pages)) => {
    const path = `/${name.toLowerCase()}`;
    messages.push({ ...base(at), type: 'page', name, properties: { name, path, title: `${name} - Radar`, url: `https://app.example.com${path}`, referrer: '' } });
  };
  /** Colleagues from the company's staff (at most 400 names): the same person is sometimes invited again. */
  const invite = (at: number) => {
    const colleague = rng.int(0, Math.min(user.account.employees, 400) - 1);
    const invitee = `${firstNames[colleague % firstNames.length]}.${lastNames[Math.floor(colleague / firstNames.length) % lastNames.length]}@${user.account.domain}`.toLowerCase();
    track(at, 'Teammate Invited', { invitee, role: rng.pick(['editor', 'viewer']) });
  };
  const dashboard = (at: number) => track(at, 'Dashboard Created', { dashboard_id: `dash_${rng.hex(8)}`, template: rng.pick(templates), widgets: rng.int(2, 16) });
  const share = (at: number) => track(at, 'Dashboard Shared', { dashboard_id: `dash_${rng.hex(8)}`, with: rng.chance(0.75) ? 'team' : 'public_link' });
  const exportData = (at: number, big: boolean) =>
    track(at, 'Data Exported', { format: rng.pick(['csv', 'xlsx', 'parquet']), rows: big ? rng.int(1_000, 60_000) : rng.int(20, 4_000) });
  /** A session from a random time of the day: a login, then what `fill` adds, a few minutes apart. */
  const session = (fill: (next: () => number) => void) => {
    let clock = dayStart + rng.int(7 * 60, 16 * 60) * 60_000 + rng.int(0, 59) * 1000;
    const next = () => (clock = Math.min(clock + rng.int(1, 6) * 60_000 + rng.int(0, 59_000), dayStart + 18 * 3_600_000));
    track(clock, 'Logged In', { method: rng.pick(['password', 'google', 'sso']) });
    fill(next);
  };

  if (daysSinceSignup === 0) {
    const at = Date.parse(user.signupAt);
    messages.push({ ...base(at), type: 'identify', traits: { createdAt: user.signupAt, name: user.name, email: user.email, plan: user.plan, company: user.account.name } });
    messages.push({
      ...base(at + 1000),
      type: 'group',
      groupId: user.account.id,
      traits: { name: user.account.name, employees: user.account.employees, industry: user.account.industry, plan: user.account.plan },
    });
  }

  const persona = user.persona;
  const habit = () => {
    switch (persona) {
      case 'power_user':
        for (let n = rng.int(1, 3); n > 0; n--) {
          session((next) => {
            for (let p = rng.int(1, 4); p > 0; p--) page(next());
            if (rng.chance(0.25)) dashboard(next());
            if (rng.chance(0.3)) share(next());
            if (rng.chance(0.25)) exportData(next(), true);
            if (rng.chance(0.2)) track(next(), 'Premium Feature Used', { feature: rng.pick(premiumFeatures), plan_required: 'business' });
            if (rng.chance(0.06)) invite(next());
            if (rng.chance(0.08)) track(next(), 'Plan Limit Reached', { limit: rng.pick(limits), plan: user.plan });
          });
        }
        break;
      case 'activator':
      case 'steady':
        session((next) => {
          for (let p = rng.int(1, 3); p > 0; p--) page(next());
          if (rng.chance(0.15)) dashboard(next());
          if (rng.chance(persona === 'activator' ? 0.25 : 0.1)) share(next());
          if (rng.chance(0.1)) invite(next());
          if (rng.chance(0.15)) exportData(next(), rng.chance(0.3));
          if (rng.chance(0.05)) track(next(), 'Premium Feature Used', { feature: rng.pick(premiumFeatures), plan_required: 'business' });
        });
        break;
      case 'evaluator':
        session((next) => {
          page(next(), rng.pick(['Pricing', 'Billing', 'Dashboards']));
          page(next());
          if (rng.chance(0.2)) track(next(), 'Plan Limit Reached', { limit: rng.pick(limits), plan: user.plan });
          if (rng.chance(0.2)) share(next());
          if (rng.chance(0.1)) exportData(next(), true);
        });
        break;
      default:
        session((next) => page(next()));
    }
  };

  if (onboarding) {
    const eager = persona === 'activator' || persona === 'power_user' || persona === 'churner';
    const active = daysSinceSignup === 0 || forceActive || rng.chance(eager ? 0.9 : persona === 'tire_kicker' ? 0.3 : 0.7);
    if (active) {
      session((next) => {
        page(next(), daysSinceSignup === 0 ? 'Home' : rng.pick(pages));
        if (eager && rng.chance(0.3)) track(next(), 'Data Source Connected', { source: rng.pick(dataSources) });
        if (persona !== 'tire_kicker' && rng.chance(eager ? 0.5 : 0.2)) dashboard(next());
        if (eager && rng.chance(0.25)) invite(next());
        if (persona === 'tire_kicker' && rng.chance(0.3)) page(next(), 'Pricing');
      });
    }
  } else {
    const activity: Record<Persona, number> = { power_user: 0.95, activator: 0.85, steady: 0.75, evaluator: 0.6, tire_kicker: 0.1, churner: offset > 20 ? 0.6 : 0 };
    if (forceActive || rng.chance(activity[persona])) habit();
  }
  return messages;
}

// ---- (a) facts for the engine, and flat facts for json-rules-engine ----

const nameOf = (message: Message) => (message.type === 'track' ? message.event : message.type === 'page' ? 'Page Viewed' : message.type === 'screen' ? 'Screen Viewed' : undefined);

/** The engine's facts, as the evaluator builds them (core/facts) from every stored event of the user. */
function entityFacts(user: User, messages: readonly Message[], ruleset: Ruleset): EntityFacts {
  const { days, totals } = recomputeDays(ruleset, eventsByDay(messages as unknown as UsageEvent[]), undefined);
  const { account } = user;
  return userFacts({
    id: user.id,
    traits: { createdAt: user.signupAt, name: user.name, email: user.email, plan: user.plan, company: account.name },
    accountTraits: [{ name: account.name, employees: account.employees, industry: account.industry, plan: account.plan }],
    totals,
    days,
  });
}

type Flat = Record<string, number | string | boolean | null>;

/** A condition as the flat-fact builder reads it: its own code, not the engine's. */
function holds(condition: Condition, value: unknown): boolean {
  if (typeof condition !== 'object') return value === condition;
  const [[operator, operand]] = Object.entries(condition) as [[string, unknown]];
  switch (operator) {
    case 'equals':
      return value === operand;
    case 'in':
      return (operand as unknown[]).includes(value);
    case 'gte':
      return typeof value === 'number' && value >= (operand as number);
    default:
      throw new Error(`the benchmark's flat facts do not implement "${operator}"`);
  }
}

/**
 * json-rules-engine's facts for one user, computed straight from the raw events (not from the rollups): per event
 * signal the count, sum or number of distinct values in its window; the traits; the days since the last event.
 */
function flatFacts(user: User, messages: readonly Message[], ruleset: Ruleset, at: Date): Flat {
  const today = isoDay(at.getTime());
  const signupDay = user.signupAt.slice(0, 10);
  const events = messages.flatMap((message) => {
    const event = nameOf(message);
    return event === undefined ? [] : [{ event, day: message.timestamp.slice(0, 10), at: Date.parse(message.timestamp), properties: message.properties ?? {} }];
  });
  const flat: Flat = {};
  for (const [name, signal] of Object.entries(ruleset.file.signals)) {
    if (signal.kind !== 'event') continue;
    const from = signal.window !== undefined ? isoDay(at.getTime() - (signal.window - 1) * dayMs) : signal.since_signup !== undefined ? signupDay : '0000';
    const to = signal.since_signup !== undefined ? isoDay(Date.parse(signupDay) + (signal.since_signup - 1) * dayMs) : today;
    const names = signal.events ?? [signal.event!];
    const where = Object.entries(signal.where ?? {});
    let count = 0;
    let sum = 0;
    const distinct = new Set<string>();
    for (const { event, day, properties } of events) {
      if (day < from || day > to || (!names.includes('*') && !names.includes(event))) continue;
      if (!where.every(([path, condition]) => holds(condition, properties[path]))) continue;
      count++;
      if (signal.sum !== undefined && typeof properties[signal.sum] === 'number') sum += properties[signal.sum] as number;
      if (signal.distinct !== undefined && properties[signal.distinct] !== undefined) distinct.add(String(properties[signal.distinct]));
    }
    flat[name] = signal.distinct !== undefined ? distinct.size : signal.sum !== undefined ? sum : count;
  }
  let lastSeen = -Infinity;
  for (const event of events) lastSeen = Math.max(lastSeen, event.at);
  flat['days_since_last_seen'] = Number.isFinite(lastSeen) ? Math.floor((at.getTime() - lastSeen) / dayMs) : null;
  flat['plan'] = user.plan;
  flat['account_employees'] = user.account.employees;
  flat['account_industry'] = user.account.industry;
  return flat;
}

// ---- (a) the same rules in json-rules-engine ----

const thresholdCondition = (fact: string, signal: { at_least?: number | undefined; at_most?: number | undefined; exactly?: number | undefined }) =>
  signal.exactly !== undefined
    ? { fact, operator: 'equal', value: signal.exactly }
    : signal.at_most !== undefined
      ? { fact, operator: 'lessThanInclusive', value: signal.at_most }
      : { fact, operator: 'greaterThanInclusive', value: signal.at_least ?? 1 };

function traitCondition(fact: string, condition: Condition) {
  if (typeof condition !== 'object') return { fact, operator: 'equal', value: condition };
  const [[operator, value]] = Object.entries(condition) as [[string, unknown]];
  const operators: Record<string, string> = { equals: 'equal', not_equals: 'notEqual', in: 'in', not_in: 'notIn', gt: 'greaterThan', gte: 'greaterThanInclusive', lt: 'lessThan', lte: 'lessThanInclusive' };
  if (!operators[operator]) throw new Error(`no json-rules-engine operator for "${operator}"`);
  return { fact, operator: operators[operator], value };
}

/** One named condition per signal (combinations reference their parts by name), and one rule per signal whose event carries its points. */
function jsonRulesEngine(ruleset: Ruleset): Engine {
  const engine = new Engine([], { allowUndefinedFacts: true });
  const rules: RuleProperties[] = [];
  for (const name of ruleset.order) {
    const signal: Signal = ruleset.file.signals[name]!;
    let condition: TopLevelCondition;
    switch (signal.kind) {
      case 'event':
        condition = { all: [thresholdCondition(name, signal)] };
        break;
      case 'inactivity':
        condition = { all: [{ fact: 'days_since_last_seen', operator: 'greaterThanInclusive', value: signal.inactive_for }] };
        break;
      case 'trait':
        condition = { all: [traitCondition(signal.of === 'account' ? `account_${signal.trait}` : signal.trait, signal.is)] };
        break;
      case 'combination':
        condition = {
          all: [
            ...(signal.all ?? []).map((part) => ({ condition: part })),
            ...(signal.any ? [{ any: signal.any.map((part) => ({ condition: part })) }] : []),
            ...(signal.not !== undefined ? [{ not: { condition: signal.not } }] : []),
          ],
        };
        break;
      default:
        throw new Error(`the benchmark does not translate ${signal.kind} signals`);
    }
    engine.setCondition(name, condition);
    rules.push({ name, conditions: { condition: name }, event: { type: name, params: { points: signal.points } } });
  }
  for (const rule of rules) engine.addRule(rule);
  return engine;
}

/** The score and tier from the fired events, as the rules file defines them. */
function pickTier(ruleset: Ruleset, fired: ReadonlySet<string>, points: number): string | null {
  const { file } = ruleset;
  const total = file.scoring.cap !== undefined ? Math.min(file.scoring.cap, points) : points;
  return (
    file.tiers.find(
      (tier) => tier.level !== 'account' && (tier.min_score === undefined || total >= tier.min_score) && tier.require.every((name) => fired.has(name)),
    )?.name ?? null
  );
}

async function runJsonRulesEngine(engine: Engine, ruleset: Ruleset, flat: Flat): Promise<{ tier: string | null; fired: Set<string> }> {
  const { events } = await engine.run(flat);
  const fired = new Set<string>();
  let points = 0;
  for (const event of events) {
    fired.add(event.type);
    points += (event.params?.['points'] as number | undefined) ?? 0;
  }
  return { tier: pickTier(ruleset, fired, points), fired };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function benchEngine(ruleset: Ruleset) {
  const accounts = makeAccounts(Math.max(1, Math.round(entityCount / 10)), 7);
  const entities: { facts: EntityFacts; flat: Flat }[] = [];
  let eventTotal = 0;
  let dayTotal = 0;
  for (let index = 0; index < entityCount; index++) {
    const user = makeUser(index, accounts, historyDays, now, true, 7);
    const messages: Message[] = [];
    for (let offset = user.signupOffset; offset >= 0; offset--) messages.push(...dayMessages(user, offset, now, 7));
    const facts = entityFacts(user, messages, ruleset);
    entities.push({ facts, flat: flatFacts(user, messages, ruleset, now) });
    eventTotal += messages.length;
    dayTotal += facts.days.length;
  }

  // Agreement first, every entity through both engines: this is also the first warm-up round.
  const engine = jsonRulesEngine(ruleset);
  let tiersAgree = 0;
  let signalsAgree = 0;
  const tierCounts = new Map<string, number>();
  const mismatches: string[] = [];
  for (const { facts, flat } of entities) {
    const ours = evaluate(facts, ruleset, now);
    const theirs = await runJsonRulesEngine(engine, ruleset, flat);
    const matched = Object.entries(ours.signals).filter(([, result]) => result.matched).map(([name]) => name).sort();
    tierCounts.set(ours.tier ?? 'none', (tierCounts.get(ours.tier ?? 'none') ?? 0) + 1);
    if (ours.tier === theirs.tier) tiersAgree++;
    if (matched.join() === [...theirs.fired].sort().join()) signalsAgree++;
    else if (mismatches.length < 3) {
      const differing = Object.keys(ruleset.file.signals).filter((name) => (ours.signals[name]?.matched ?? false) !== theirs.fired.has(name));
      mismatches.push(`${facts.id}: ${differing.map((name) => `${name} engine=${ours.signals[name]?.matched}(${ours.signals[name]?.value}) jre=${theirs.fired.has(name)}(${flat[name] ?? ''})`).join(', ')}; tiers ${ours.tier} / ${theirs.tier}`);
    }
  }

  const timeOurs = () => {
    const started = performance.now();
    let qualified = 0;
    for (const { facts } of entities) if (evaluate(facts, ruleset, now).tier !== null) qualified++;
    return { seconds: (performance.now() - started) / 1000, qualified };
  };
  const timeTheirs = async () => {
    const started = performance.now();
    let qualified = 0;
    for (const { flat } of entities) if ((await runJsonRulesEngine(engine, ruleset, flat)).tier !== null) qualified++;
    return { seconds: (performance.now() - started) / 1000, qualified };
  };
  for (let round = 1; round < warmupRounds; round++) {
    for (let i = 0; i < warmupEntities; i++) evaluate(entities[i]!.facts, ruleset, now);
    for (let i = 0; i < warmupEntities; i++) await runJsonRulesEngine(engine, ruleset, entities[i]!.flat);
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  // Interleaved, so a slow moment of the machine hits both alike.
  for (let run = 0; run < runs; run++) {
    ours.push(entityCount / timeOurs().seconds);
    theirs.push(entityCount / (await timeTheirs()).seconds);
  }
  return {
    eventsPerEntity: eventTotal / entityCount,
    daysPerEntity: dayTotal / entityCount,
    tiersAgree,
    signalsAgree,
    tierCounts,
    mismatches,
    ours: median(ours),
    theirs: median(theirs),
  };
}

// ---- (b) the evaluator against DynamoDB Local ----

interface Share {
  read: number;
  write: number;
  evaluated: number;
}

/**
 * The evaluation store as the use case sees it, attributing the capacity of each call to what it was for: a user's
 * or an account's evaluation (from reading its rows to saving it), or the run itself (candidates, outbox, ruleset
 * progress, lag). The use case works on one entity at a time, and its calls overlap only within one entity's reads,
 * so the tally's difference over each stretch of calls in flight is that stretch's. A proxy, so that every method of
 * the store passes through, whatever the port grows.
 */
class AttributingStore {
  readonly shares: Record<'user' | 'account' | 'run', Share> = { user: { read: 0, write: 0, evaluated: 0 }, account: { read: 0, write: 0, evaluated: 0 }, run: { read: 0, write: 0, evaluated: 0 } };
  /** The last tier and score saved per user. */
  readonly users = new Map<string, { tier: string | null; score: number }>();
  readonly store: DynamoDbEvaluationStore;

  constructor(readonly inner: DynamoDbEvaluationStore) {
    const { shares, users } = this;
    const runCalls = new Set(['pendingLeadEvents', 'markPublished', 'rulesetProgress', 'saveRulesetProgress', 'oldestChange', 'candidates', 'dismiss']);
    let entity: EntityRef | undefined;
    let inFlight = 0;
    let before = { readUnits: 0, writeUnits: 0 };
    this.store = new Proxy(inner, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (property === 'entity') entity = args[0] as EntityRef;
          // A visitor's reads and writes (forwarded to its user, or dismissed) are the user's cost.
          const share = shares[runCalls.has(String(property)) ? 'run' : entity!.type === 'account' ? 'account' : 'user'];
          if (property === 'save') {
            share.evaluated++;
            const { lead } = (args[1] as EntityUpdate).state;
            if (entity!.type === 'user' && lead) users.set(entity!.id, { tier: lead.tier, score: lead.score });
          }
          if (inFlight++ === 0) before = { ...target.capacity };
          try {
            return (await value.apply(target, args)) as unknown;
          } finally {
            if (--inFlight === 0) {
              share.read += target.capacity.readUnits - before.readUnits;
              share.write += target.capacity.writeUnits - before.writeUnits;
            }
          }
        };
      },
    });
  }

  reset() {
    this.inner.capacity.readUnits = 0;
    this.inner.capacity.writeUnits = 0;
    for (const share of Object.values(this.shares)) Object.assign(share, { read: 0, write: 0, evaluated: 0 });
  }
}

/** Which calls the client made, and for how many DynamoDB Local reported ConsumedCapacity. */
function countCalls(client: DynamoDBClient) {
  const calls = new Map<string, { calls: number; reported: number }>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity;
      const name = context.commandName ?? 'unknown';
      const entry = calls.get(name) ?? { calls: 0, reported: 0 };
      entry.calls++;
      if ([consumed ?? []].flat().some((item) => item.CapacityUnits !== undefined)) entry.reported++;
      calls.set(name, entry);
      return result;
    },
    { step: 'initialize', name: 'benchCountCalls' },
  );
  return calls;
}

async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Stores messages as ingest would (validated, then DynamoDbEventStore.save), a user's messages in requests of up to
 * 500, then reads the table's stream as change capture does, so the evaluator finds them marked.
 */
async function store(events: DynamoDbEventStore, changes: LocalChangeStream, byUser: readonly Message[][], receivedAt: Date): Promise<number> {
  const requests: Message[][] = [];
  for (const messages of byUser) for (let i = 0; i < messages.length; i += 500) requests.push(messages.slice(i, i + 500));
  await pool(requests, 4, async (request) => {
    const accepted = request.map((raw, index) => {
      const outcome = validateMessage(raw, index, workspace, receivedAt);
      if ('reason' in outcome) throw new Error(`the generator made an invalid message: ${outcome.path}: ${outcome.reason}`);
      return outcome as AcceptedMessage;
    });
    await events.save(workspace, accepted, receivedAt);
  });
  await changes.drain();
  return requests.reduce((sum, request) => sum + request.length, 0);
}

interface TableResult {
  days: number;
  storedEvents: number;
  ingestSeconds: number;
  newEvents: number;
  firstRun: { evaluated: number; passes: number; seconds: number };
  evaluated: number;
  passes: number[];
  seconds: number;
  read: number;
  write: number;
  shares: AttributingStore['shares'];
  published: number;
  calls: Map<string, { calls: number; reported: number }>;
  /** Users whose tier and score after the incremental runs equal an evaluation of their whole history in memory. */
  sameAsFromScratch: number;
  /** Average size of the STATE items the evaluator rewrites on every evaluation, and of the lifetime rollup in them. */
  stateBytes: Record<'user' | 'account', { item: number; lifetime: number }>;
}

/** The average size of the entities' STATE items (DynamoDB's rule: attribute names and values; every attribute here is a string). */
async function stateSizes(client: DynamoDBClient, tableName: string, type: 'user' | 'account', ids: readonly string[]) {
  let item = 0;
  let lifetime = 0;
  for (let i = 0; i < ids.length; i += 100) {
    const keys = ids.slice(i, i + 100).map((id) => ({ pk: { S: entityPartitionKey(workspace, type, id) }, sk: { S: stateSortKey } }));
    const output = await client.send(new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys } } }));
    if (Object.keys(output.UnprocessedKeys ?? {}).length > 0) throw new Error('DynamoDB Local left STATE items unprocessed');
    for (const found of output.Responses?.[tableName] ?? []) {
      item += Object.entries(found).reduce((sum: number, [name, value]: [string, AttributeValue]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value.S ?? ''), 0);
      lifetime += Buffer.byteLength(JSON.stringify((JSON.parse(found['state']!.S!) as { lifetime: unknown }).lifetime));
    }
  }
  return { item: item / ids.length, lifetime: lifetime / ids.length };
}

/** Runs the evaluator until a run finds nothing to do (accounts marked again by members evaluated after them). */
async function evaluateUntilSettled(evaluation: AttributingStore, publisher: LeadPublisher, ruleset: Ruleset, at: Date) {
  const passes: number[] = [];
  for (let pass = 0; pass < 5; pass++) {
    const before = { ...evaluation.inner.capacity };
    const shares = JSON.stringify(evaluation.shares);
    const summary = await runEvaluator({ store: evaluation.store, publisher, ruleset, shards: allShards(dirtyShards), now: at, deadline: Number.POSITIVE_INFINITY });
    if (summary.evaluated === 0) {
      // The run that only finds nothing left is not part of the work: take its reads back out.
      evaluation.inner.capacity.readUnits = before.readUnits;
      evaluation.inner.capacity.writeUnits = before.writeUnits;
      Object.assign(evaluation.shares, JSON.parse(shares));
      break;
    }
    passes.push(summary.evaluated);
  }
  return passes;
}

/**
 * Stores the history of a fresh table and runs the first evaluation; returns the measurement, to run once every table
 * is prepared, so that each measured run finds DynamoDB Local's JVM equally warm.
 */
async function prepareTable(client: DynamoDBClient, endpoint: string, reader: DynamoDBClient, calls: ReturnType<typeof countCalls>, ruleset: Ruleset, days: number): Promise<() => Promise<TableResult>> {
  const tableName = `bench-evaluate-${days}d-${Date.now().toString(36)}`;
  await ensureTable(client, tableName);
  const events = new DynamoDbEventStore({ client, tableName, dirtyShards, retentionDays });
  // Marking is change capture's work, not the evaluator's: its units are not counted here (reader is not counted).
  const changes = new LocalChangeStream(reader, tableName, endpoint, new DynamoDbChangeCapture(reader, tableName, dirtyShards));
  const evaluation = new AttributingStore(new DynamoDbEvaluationStore({ client, tableName, dirtyShards, retentionDays }));
  let published = 0;
  const publisher: LeadPublisher = {
    publish: async (leadEvents) => {
      published += leadEvents.length;
      return { failed: [] };
    },
  };

  // History up to yesterday, evaluated at yesterday's evening; then today, evaluated this evening.
  const yesterday = new Date(now.getTime() - dayMs);
  const accounts = makeAccounts(accountCount, 11);
  const users = Array.from({ length: userCount }, (_, index) => makeUser(index, accounts, days, now, false, 11));
  const history = users.map((user) => Array.from({ length: user.signupOffset }, (_, i) => dayMessages(user, user.signupOffset - i, now, 11)).flat());
  let started = performance.now();
  const storedEvents = await store(events, changes, history, new Date(yesterday.getTime() - 3_600_000));
  const ingestSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  const firstPasses = await evaluateUntilSettled(evaluation, publisher, ruleset, yesterday);
  const firstRun = { evaluated: firstPasses.reduce((a, b) => a + b, 0), passes: firstPasses.length, seconds: (performance.now() - started) / 1000 };

  return async () => {
    const today = users.map((user) => dayMessages(user, 0, now, 11, true));
    const newEvents = await store(events, changes, today, new Date(now.getTime() - 1_800_000));

    evaluation.reset();
    published = 0;
    calls.clear();
    const started = performance.now();
    const passes = await evaluateUntilSettled(evaluation, publisher, ruleset, now);
    const seconds = (performance.now() - started) / 1000;

    // The incremental path (rollups of changed days, lifetime adjusted) against the engine over everything stored.
    let sameAsFromScratch = 0;
    users.forEach((user, index) => {
      const expected = evaluate(entityFacts(user, [...history[index]!, ...today[index]!], ruleset), ruleset, now);
      const saved = evaluation.users.get(user.id);
      if (saved?.tier === expected.tier && saved.score === expected.score.total) sameAsFromScratch++;
    });
    return {
      days,
      storedEvents,
      ingestSeconds,
      newEvents,
      firstRun,
      evaluated: passes.reduce((a, b) => a + b, 0),
      passes,
      seconds,
      read: evaluation.inner.capacity.readUnits,
      write: evaluation.inner.capacity.writeUnits,
      shares: structuredClone(evaluation.shares),
      published,
      calls: structuredClone(calls),
      sameAsFromScratch,
      stateBytes: {
        user: await stateSizes(reader, tableName, 'user', users.map((user) => user.id)),
        account: await stateSizes(reader, tableName, 'account', accounts.map((account) => account.id)),
      },
    };
  };
}

// ---- report ----

async function main() {
  // The SDK warns on Node 20 that future releases need Node 22; the pinned version runs fine (as in vitest.config.ts).
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const ruleset = loadRules(rulesYaml, 'bench-evaluate.rules.yaml');
  const signals = Object.values(ruleset.file.signals);
  const kinds = (kind: Signal['kind']) => signals.filter((signal) => signal.kind === kind).length;
  const lines: string[] = ['pql-radar evaluate benchmark', `now ${now.toISOString()}; ${signals.length} signals (${kinds('event')} event, ${kinds('inactivity')} inactivity, ${kinds('trait')} trait, ${kinds('combination')} combinations), ${ruleset.file.tiers.length} tiers; windows <= ${ruleset.maxWindowDays}d, since_signup <= ${ruleset.maxSinceSignupDays}d`, ''];

  // (a)
  const a = await benchEngine(ruleset);
  const ratio = a.ours / a.theirs;
  lines.push(
    `(a) engine in memory: ${count(entityCount)} users, ${a.eventsPerEntity.toFixed(0)} events and ${a.daysPerEntity.toFixed(1)} daily rollups each (of up to ${historyDays} days); median of ${runs} runs after ${warmupRounds} warm-up rounds (the first is the agreement check)`,
    '                                entities/s   us/entity',
    `pql-radar evaluate + tier      ${fixed(a.ours, 0, 10)} ${fixed(1e6 / a.ours, 1, 11)}`,
    `json-rules-engine 7.3.1        ${fixed(a.theirs, 0, 10)} ${fixed(1e6 / a.theirs, 1, 11)}`,
    `pql-radar / json-rules-engine  ${fixed(ratio, 2, 10)}x`,
    `agreement: same tier ${count(a.tiersAgree)}/${count(entityCount)}, same matched signals ${count(a.signalsAgree)}/${count(entityCount)}; tiers ${[...a.tierCounts.entries()].sort().map(([tier, n]) => `${tier} ${count(n)}`).join(', ')}`,
    'json-rules-engine reads flat precomputed facts (window counts, sums and distinct counts per signal, traits, days since last seen),',
    '  computed from the raw events outside the timing: that favours it; pql-radar merges the daily rollups of each window itself.',
    ...a.mismatches.map((mismatch) => `MISMATCH ${mismatch}`),
    '',
  );
  if (a.tiersAgree !== entityCount || a.signalsAgree !== entityCount) {
    console.log(lines.join('\n'));
    throw new Error(`the engines disagree: same tier for ${a.tiersAgree} of ${entityCount} users, same signals for ${a.signalsAgree}`);
  }
  console.log(lines.splice(0).join('\n'));

  // (b)
  const dynamoDb = await startDynamoDbLocal();
  const client = createDynamoDbClient(dynamoDb.endpoint);
  const calls = countCalls(client);
  /** For looking at the stored items afterwards, outside the counted calls. */
  const reader = createDynamoDbClient(dynamoDb.endpoint);
  try {
    const measurements = [];
    for (const days of [historyDays, historyDays * historyScale]) measurements.push(await prepareTable(client, dynamoDb.endpoint, reader, calls, ruleset, days));
    const results: TableResult[] = [];
    for (const measure of measurements) results.push(await measure());
    const [small, large] = results as [TableResult, TableResult];
    const per = (result: TableResult) => ({ read: result.read / result.evaluated, write: result.write / result.evaluated, rate: result.evaluated / result.seconds });
    const shareText = (share: Share) => (share.evaluated === 0 ? '-' : `${(share.read / share.evaluated).toFixed(1)}/${(share.write / share.evaluated).toFixed(1)}`);
    const label = (result: TableResult) => `${result.days}d`.padEnd(9);
    lines.push(
      `(b) evaluator on DynamoDB Local: ${userCount} users in ${accountCount} accounts, ${dirtyShards} shards, the rules of (a); stored history up to yesterday, first run (builds`,
      `    the state) at ${new Date(now.getTime() - dayMs).toISOString()}; then one new day of events for every user, and the measured run at ${now.toISOString()},`,
      '    repeated until a run finds nothing left (accounts marked again by members evaluated after them)',
      'history  stored events  ingest s  first run s  new events  evaluated (runs)  RCU/entity  WCU/entity  entities/s',
      ...results.map((result) => {
        const figures = per(result);
        return [
          label(result),
          fixed(result.storedEvents, 0, 13),
          fixed(result.ingestSeconds, 1, 9),
          fixed(result.firstRun.seconds, 1, 12),
          fixed(result.newEvents, 0, 11),
          `${result.evaluated} (${result.passes.join('+')})`.padStart(17),
          fixed(figures.read, 2, 11),
          fixed(figures.write, 2, 11),
          fixed(figures.rate, 1, 11),
        ].join(' ');
      }),
    );
    const s = per(small);
    const l = per(large);
    const readRatio = l.read / s.read;
    const writeRatio = l.write / s.write;
    const rateRatio = l.rate / s.rate;
    const within = (value: number) => value <= budgetRatio;
    const pass = within(readRatio) && within(writeRatio);
    lines.push(
      `${`${large.days}d/${small.days}d`.padEnd(9)} ${''.padStart(66)} ${fixed(readRatio, 3, 11)} ${fixed(writeRatio, 3, 11)} ${fixed(rateRatio, 3, 11)}`,
      ...results.map(
        (result) =>
          `${label(result)}RCU/WCU per user ${shareText(result.shares.user)}, per account ${shareText(result.shares.account)}, per run (candidates, outbox, progress, lag) ${result.shares.run.read.toFixed(1)}/${result.shares.run.write.toFixed(1)}; lead events ${result.published}; tier and score as from scratch ${result.sameAsFromScratch}/${userCount} users`,
      ),
      ...results.map(
        (result) =>
          `${label(result)}STATE item (rewritten by every evaluation) ${bytes(result.stateBytes.user.item)} per user, of which the lifetime rollup ${bytes(result.stateBytes.user.lifetime)}; ${bytes(result.stateBytes.account.item)} per account, lifetime ${bytes(result.stateBytes.account.lifetime)}`,
      ),
      `budget: capacity per evaluated entity with ${historyScale}x the history within ${Math.round((budgetRatio - 1) * 100)}%: RCU ${within(readRatio) ? 'PASS' : 'FAIL'} (x${readRatio.toFixed(3)}), WCU ${within(writeRatio) ? 'PASS' : 'FAIL'} (x${writeRatio.toFixed(3)}): ${pass ? 'PASS' : 'FAIL'}`,
      `  entities/s x${rateRatio.toFixed(3)} (${Math.abs(rateRatio - 1) <= budgetRatio - 1 ? 'within' : 'NOT within'} 10%): wall time of one evaluator process on DynamoDB Local, shown, not judged (noisier than the units)`,
    );
    // Which calls reported capacity, in the measured runs of both tables.
    const merged = new Map<string, { calls: number; reported: number }>();
    for (const result of results) {
      for (const [name, entry] of result.calls) {
        const into = merged.get(name) ?? { calls: 0, reported: 0 };
        into.calls += entry.calls;
        into.reported += entry.reported;
        merged.set(name, into);
      }
    }
    const names = [...merged.keys()].sort();
    const unreported = names.filter((name) => merged.get(name)!.reported < merged.get(name)!.calls);
    lines.push(
      `capacity units: as DynamoDB Local reports them (ReturnConsumedCapacity TOTAL) to the evaluation store's tally; calls in the measured runs: ${names.map((name) => `${name.replace(/Command$/, '')} ${merged.get(name)!.calls}`).join(', ')}`,
      unreported.length === 0
        ? '  DynamoDB Local reported consumed capacity for every one of them.'
        : `  NOT reported for: ${unreported.map((name) => `${name.replace(/Command$/, '')} (${merged.get(name)!.calls - merged.get(name)!.reported} of ${merged.get(name)!.calls} calls)`).join(', ')}: those calls count 0 units above`,
    );
    console.log(lines.join('\n'));
    if (!pass) process.exitCode = 1;
    for (const result of results) {
      if (result.sameAsFromScratch !== userCount) throw new Error(`${result.days}d: the evaluator's tier or score differs from an evaluation from scratch for ${userCount - result.sameAsFromScratch} users`);
    }
  } finally {
    client.destroy();
    reader.destroy();
    await dynamoDb.stop();
  }
}

await main();
