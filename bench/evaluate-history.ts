/**
 * The stored-history side of bench:evaluate, shared with bench:cost: the rules (20 signals), a generator of users
 * with personas and their daily events, and the harness that stores a history in DynamoDB Local through
 * DynamoDbEventStore, runs the evaluator use case (runEvaluator) over it with the DynamoDB evaluation store, and
 * attributes each call's consumed capacity to a user's, an account's or the run's share.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BatchGetItemCommand, type BatchGetItemCommandInput, type BatchGetItemCommandOutput, type ConsumedCapacity, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbEvaluationStore } from '../functions/adapters/dynamodb/evaluation-store';
import { changeMarks, DynamoDbChangeCapture, type WrittenKey } from '../functions/adapters/dynamodb/change-capture';
import { DynamoDbEventStore } from '../functions/adapters/dynamodb/event-store';
import { LocalChangeStream, type ChangeSink } from '../functions/local/change-stream';
import { stateOf } from '../functions/adapters/dynamodb/entity-rows';
import { entityPartitionKey, stateSortKey } from '../functions/adapters/dynamodb/item-keys';
import { validateMessage, type AcceptedMessage } from '../functions/core/messages';
import type { ChangeMark, EntityRef, EntityUpdate, EvaluationCandidate, LeadPublisher } from '../functions/core/ports';
import { eventsByDay, recomputeDays, userFacts } from '../functions/core/facts';
import { evaluate, type EntityFacts, type UsageEvent } from '../functions/core/rules/engine';
import type { Ruleset } from '../functions/core/rules/load';
import { entityKey } from '../functions/core/changes';
import { allShards, evaluateChanges, runEvaluator, type EvaluatorRunOptions } from '../functions/core/evaluate-leads';
import { dayMs } from '../functions/core/days';
import { SeededRandom, seedFrom } from '../functions/core/random';
import { ensureTable } from '../functions/local/dynamodb-local';
import { companyPrefixes, companySuffixes, employeeCounts, firstNames, industries, lastNames } from '../functions/cli/sample-stream';
import { itemSize, pool } from './ingest-streams';

export const dirtyShards = 4;
/** Fixed, so every run computes the same windows. Events fall between 07:00 and 18:00 UTC of their day. */
export const now = new Date('2025-06-02T18:30:00.000Z');

export const workspace = 'ws_bench';
/**
 * The fixed dates lie in the past: with the default 400-day retention, DynamoDB Local could expire the older
 * events by TTL as the calendar moves on. Item sizes do not change (expiresAt has 10 digits either way).
 */
const retentionDays = 36_500;

// ---- the rules ----

export const rulesYaml = `
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

export interface Account {
  id: string;
  name: string;
  domain: string;
  employees: number;
  industry: string;
  plan: string;
}

export interface User {
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

export type Message = Record<string, unknown> & { type: string; timestamp: string; messageId: string; event?: string; properties?: Record<string, unknown> };

export function makeAccounts(count: number, seed: number): Account[] {
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
export function makeUser(index: number, accounts: readonly Account[], history: number, today: Date, lateSignups: boolean, seed: number): User {
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

export const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * One user's messages on one day, `offset` days before today. The first two weeks after signup follow the persona's
 * onboarding; later days its habit. Each day has its own seed, so a day's events are the same whatever the length of
 * the history around it. `forceActive` makes an inactive day a light one instead (the benchmark's "new day").
 */
export function dayMessages(user: User, offset: number, today: Date, seed: number, forceActive = false): Message[] {
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


/** The engine's facts, as the evaluator builds them (core/facts) from every stored event of the user. */
export function entityFacts(user: User, messages: readonly Message[], ruleset: Ruleset): EntityFacts {
  const { days, totals } = recomputeDays(ruleset, eventsByDay(messages as unknown as UsageEvent[], ruleset.calendar), undefined);
  const { account } = user;
  return userFacts({
    id: user.id,
    traits: { createdAt: user.signupAt, name: user.name, email: user.email, plan: user.plan, company: account.name },
    accountTraits: [{ name: account.name, employees: account.employees, industry: account.industry, plan: account.plan }],
    totals,
    days,
  });
}

// ---- the evaluator against DynamoDB Local ----

const isEntityRef = (value: unknown): value is EntityRef => typeof value === 'object' && value !== null && 'workspace' in value && 'type' in value && 'id' in value;

export interface Share {
  read: number;
  write: number;
  evaluated: number;
}

/**
 * The evaluation store as the use case sees it, attributing the capacity of each call to what it was for: a user's
 * or an account's evaluation (from reading its rows to saving it), or the run itself (candidates, outbox, ruleset
 * progress, lag); and, apart, an evaluation's to why its entity was a candidate (changed, due for a sweep, or a rules
 * change). A call about one entity (its rows, events, save) is that entity's; any other (claims, account traits,
 * rollups in reach) goes to the entity read last, which a page's rows, all read before its evaluations, make an
 * entity of the same kind and page (so of the same reason), not always the one evaluated. The tally's difference over
 * each stretch of calls in flight is that stretch's; a call's own units are those reported within it. A proxy, so that
 * every method of the store passes through, whatever the port grows.
 */
export class AttributingStore {
  readonly shares: Record<'user' | 'account' | 'run', Share> = { user: { read: 0, write: 0, evaluated: 0 }, account: { read: 0, write: 0, evaluated: 0 }, run: { read: 0, write: 0, evaluated: 0 } };
  /** The user and account shares again, by the reason their entities were candidates. */
  readonly reasons: Record<EvaluationCandidate['reason'], Share> = {
    changed: { read: 0, write: 0, evaluated: 0 },
    sweep: { read: 0, write: 0, evaluated: 0 },
    'rules-changed': { read: 0, write: 0, evaluated: 0 },
  };
  /** Users (and visitors) saved, by the reason they were candidates. */
  readonly usersSaved: Record<EvaluationCandidate['reason'], number> = { changed: 0, sweep: 0, 'rules-changed': 0 };
  /** The last tier and score saved per user. */
  readonly users = new Map<string, { tier: string | null; score: number }>();
  /** When the saved leads are due for a sweep (ms since the epoch), one entry per save that scheduled one. */
  readonly sweeps: number[] = [];
  /** Units by store call, for finding where an evaluation's units go. */
  readonly byCall = new Map<string, { read: number; write: number; calls: number }>();
  /**
   * Wall time (ms) while a call that every run makes, whatever it finds, was in flight: looking for candidates, the
   * outbox, the ruleset's progress and the lag (calls that overlap counted once). What a run took beyond it is its work.
   */
  everyRunCallsMs = 0;
  readonly store: DynamoDbEvaluationStore;
  /** The call whose units the tally is reporting: its context follows the call through the client. */
  readonly #call = new AsyncLocalStorage<string>();

  constructor(readonly inner: DynamoDbEvaluationStore) {
    const { shares, reasons, usersSaved, users, sweeps, byCall } = this;
    // The run's own calls: those it makes whatever it finds, and those that come with work.
    const everyRunCalls = new Set(['pendingLeadEvents', 'rulesetProgress', 'oldestChange', 'candidates', 'settle']);
    const runCalls = new Set([...everyRunCalls, 'claimLeadEvents', 'markPublished', 'markUndelivered', 'saveRulesetProgress', 'keep']);
    let everyRunInFlight = 0;
    let everyRunSince = 0;
    const tallies = this;
    /** Why each candidate of the pages read so far was one; an entity read otherwise (a visitor's owner) counts as changed. */
    const why = new Map<string, EvaluationCandidate['reason']>();
    let entity: EntityRef | undefined;
    let inFlight = 0;
    let before = { readUnits: 0, writeUnits: 0 };
    // Calls of one entity overlap (its events and its days are read at once): each call's units are those reported to
    // the tally within it, as the call's context follows them through the client.
    const call = this.#call;
    const { capacity } = inner;
    const add = capacity.add.bind(capacity);
    capacity.add = (kind, consumed) => {
      const { readUnits, writeUnits } = capacity;
      add(kind, consumed);
      const name = call.getStore();
      if (name === undefined) return;
      const tally = byCall.get(name) ?? { read: 0, write: 0, calls: 0 };
      tally.read += capacity.readUnits - readUnits;
      tally.write += capacity.writeUnits - writeUnits;
      byCall.set(name, tally);
    };
    this.store = new Proxy(inner, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        // Synchronous and free: no call to the table.
        if (property === 'shardOf' || property === 'eventsBudget') return value.bind(target);
        return async (...args: unknown[]) => {
          // The last entity read need not be the one saved: a page's rows are all read before its evaluations.
          const own = isEntityRef(args[0]) ? args[0] : undefined;
          // What an account reads after its members (their days) is the account's; after sweeping those due first, whose
          // reads made them the entity last read, it is the last one's, as any call that names no entity.
          if (property === 'entity' || property === 'members') entity = own;
          const subject = own ?? entity;
          // A visitor's reads and writes (forwarded to its user, or dismissed) are the user's cost.
          const runCall = runCalls.has(String(property));
          const share = shares[runCall ? 'run' : subject!.type === 'account' ? 'account' : 'user'];
          const reasonName = runCall ? undefined : (why.get(entityKey(subject!)) ?? 'changed');
          const reason = reasonName && reasons[reasonName];
          if (property === 'save') {
            share.evaluated++;
            if (reason) reason.evaluated++;
            if (reasonName && subject!.type !== 'account') usersSaved[reasonName]++;
            const { state, nextSweep } = args[1] as EntityUpdate;
            if (subject!.type === 'user' && state.lead) users.set(subject!.id, { tier: state.lead.tier, score: state.lead.score });
            if (nextSweep) sweeps.push(nextSweep.getTime());
          }
          if (inFlight++ === 0) before = { ...target.capacity };
          const name = String(property);
          const everyRun = everyRunCalls.has(name);
          if (everyRun && everyRunInFlight++ === 0) everyRunSince = performance.now();
          try {
            const result = (await call.run(name, () => value.apply(target, args))) as unknown;
            if (property === 'candidates') for (const candidate of (result as { candidates: EvaluationCandidate[] }).candidates) why.set(entityKey(candidate.ref), candidate.reason);
            return result;
          } finally {
            const tally = byCall.get(name) ?? { read: 0, write: 0, calls: 0 };
            tally.calls++;
            byCall.set(name, tally);
            if (everyRun && --everyRunInFlight === 0) tallies.everyRunCallsMs += performance.now() - everyRunSince;
            if (--inFlight === 0) {
              for (const into of reason ? [share, reason] : [share]) {
                into.read += target.capacity.readUnits - before.readUnits;
                into.write += target.capacity.writeUnits - before.writeUnits;
              }
            }
          }
        };
      },
    });
  }

  /**
   * The store without the attribution, for runs measured by their speed alone ((c)): the attribution costs the bench's
   * process CPU on every call (the proxy, and AsyncLocalStorage's promise hooks, on for every promise from the first
   * attributed call until disabled), which is the bench's cost, not the evaluator's. A call through `store` attributes
   * again.
   */
  unattributed(): DynamoDbEvaluationStore {
    this.#call.disable();
    return this.inner;
  }

  reset() {
    this.inner.capacity.readUnits = 0;
    this.inner.capacity.writeUnits = 0;
    this.everyRunCallsMs = 0;
    for (const share of [...Object.values(this.shares), ...Object.values(this.reasons)]) Object.assign(share, { read: 0, write: 0, evaluated: 0 });
    Object.assign(this.usersSaved, { changed: 0, sweep: 0, 'rules-changed': 0 });
  }
}

/**
 * Makes a client's BatchGetItem report what DynamoDB bills for the keys it finds no item for: 1 read unit for a
 * strongly consistent read, 0.5 for an eventually consistent one (its developer guide, "Capacity unit consumption for
 * read operations"). DynamoDB Local reports 0 for them in a BatchGetItem (for a GetItem it reports the unit). The charge
 * is added to the ConsumedCapacity the call returns, before the stores' CapacityTally adds it up. `missing` counts them.
 */
export function billMissingItems(client: DynamoDBClient): { missing: number } {
  const counted = { missing: 0 };
  const charge = (consumed: ConsumedCapacity | undefined, tableName: string, missing: number, consistent: boolean | undefined): ConsumedCapacity => {
    counted.missing += missing;
    const units = missing * (consistent ? 1 : 0.5);
    return { ...consumed, TableName: consumed?.TableName ?? tableName, CapacityUnits: (consumed?.CapacityUnits ?? 0) + units };
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'BatchGetItemCommand') {
        const input = args.input as BatchGetItemCommandInput;
        const output = result.output as BatchGetItemCommandOutput;
        const consumed = output.ConsumedCapacity ?? [];
        for (const [tableName, request] of Object.entries(input.RequestItems ?? {})) {
          const missing = (request.Keys?.length ?? 0) - (output.Responses?.[tableName]?.length ?? 0) - (output.UnprocessedKeys?.[tableName]?.Keys?.length ?? 0);
          if (missing <= 0) continue;
          const at = consumed.findIndex((entry) => entry.TableName === tableName);
          if (at === -1) consumed.push(charge(undefined, tableName, missing, request.ConsistentRead));
          else consumed[at] = charge(consumed[at], tableName, missing, request.ConsistentRead);
        }
        output.ConsumedCapacity = consumed;
      }
      return result;
    },
    { step: 'initialize', name: 'benchBillMissingItems' },
  );
  return counted;
}

/** Which calls the client made, and for how many DynamoDB Local reported ConsumedCapacity. */
export function countCalls(client: DynamoDBClient) {
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

/**
 * Stores messages as ingest would (validated, then DynamoDbEventStore.save), a user's messages in requests of up to
 * 500, then reads the table's stream as change capture does, so the evaluator finds them marked.
 */
export async function store(events: DynamoDbEventStore, changes: LocalChangeStream, byUser: readonly Message[][], receivedAt: Date, sink?: ChangeSink): Promise<number> {
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
  await changes.drain(sink);
  return requests.reduce((sum, request) => sum + request.length, 0);
}


/** What one evaluation after new events cost: the entities evaluated and the units of their calls, by share. */
export interface EvaluationRound {
  newEvents: number;
  evaluated: number;
  /** Entities evaluated by each run until a run found nothing left. */
  passes: number[];
  seconds: number;
  read: number;
  write: number;
  shares: AttributingStore['shares'];
  published: number;
  /** With a `cpu` sampler: the CPU seconds of the evaluation in the bench's process and DynamoDB Local's. */
  cpuSeconds?: CpuSeconds;
}

export interface TableResult extends EvaluationRound {
  days: number;
  storedEvents: number;
  ingestSeconds: number;
  firstRun: { evaluated: number; passes: number; seconds: number };
  calls: Map<string, { calls: number; reported: number }>;
  /** Users whose tier and score after the incremental runs equal an evaluation of their whole history in memory. */
  sameAsFromScratch: number;
  /** Average size of the STATE items the evaluator rewrites on every evaluation, and of the lifetime rollup in them. */
  stateBytes: Record<'user' | 'account', { item: number; lifetime: number }>;
  /** CPU milliseconds per evaluated entity of the measured runs, in the evaluator's process and DynamoDB Local's. */
  cpuMs: CpuSeconds;
}

/**
 * CPU used by the bench's process (`own`) and by DynamoDB Local's (`database`, null: not known), and of the latter by
 * its JVM's just-in-time compiler threads (`compiler`): code the JVM is still optimising, which a warmer JVM, or
 * DynamoDB in AWS, would not spend.
 */
export interface CpuSeconds {
  own: number;
  database: number | null;
  compiler: number | null;
}

/** CPU seconds used so far by the bench's process and by DynamoDB Local's. */
export type CpuSample = () => CpuSeconds;

/** `by` of each figure of `a` and `b`: a figure not known in either is not known. */
function eachFigure(a: CpuSeconds, b: CpuSeconds, by: (a: number, b: number) => number): CpuSeconds {
  const known = (x: number | null, y: number | null) => (x === null || y === null ? null : by(x, y));
  return { own: by(a.own, b.own), database: known(a.database, b.database), compiler: known(a.compiler, b.compiler) };
}

export const sumCpu = (total: CpuSeconds, added: CpuSeconds) => eachFigure(total, added, (a, b) => a + b);
export const cpuBetween = (before: CpuSeconds, after: CpuSeconds) => eachFigure(after, before, (a, b) => a - b);
/** `cpu` in milliseconds per entity of `entities`. */
export const cpuMsPer = (cpu: CpuSeconds, entities: number) => eachFigure(cpu, cpu, (seconds) => (seconds * 1000) / entities);

/** The average size of the entities' STATE items, by DynamoDB's rule (attribute names and values), and of their lifetime rollup. */
async function stateSizes(client: DynamoDBClient, tableName: string, type: 'user' | 'account', ids: readonly string[]) {
  let item = 0;
  let lifetime = 0;
  for (let i = 0; i < ids.length; i += 100) {
    const keys = ids.slice(i, i + 100).map((id) => ({ pk: { S: entityPartitionKey(workspace, type, id) }, sk: { S: stateSortKey } }));
    const output = await client.send(new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys } } }));
    if (Object.keys(output.UnprocessedKeys ?? {}).length > 0) throw new Error('DynamoDB Local left STATE items unprocessed');
    for (const found of output.Responses?.[tableName] ?? []) {
      item += itemSize(found);
      lifetime += Buffer.byteLength(JSON.stringify(stateOf(found)!.lifetime));
    }
  }
  return { item: item / ids.length, lifetime: lifetime / ids.length };
}

/**
 * How the bench's runs evaluate: runEvaluator's options of that name (the intervals 0 unless given), and whether their
 * units are attributed to calls, entities and reasons (AttributingStore; the default), or only counted, the process's
 * CPU then the evaluator's own.
 */
export type BenchRunOptions = Pick<EvaluatorRunOptions, 'concurrency' | 'accountIntervalMs' | 'userIntervalMs'> & { attributed?: boolean };

const storeOf = (evaluation: AttributingStore, attributed = true) => (attributed ? evaluation.store : evaluation.unattributed());

/**
 * One scheduled run over every shard. One entity at a time unless told: the attribution of AttributingStore follows
 * the calls of one entity after another.
 */
const scheduledRun = (evaluation: AttributingStore, publisher: LeadPublisher, ruleset: Ruleset, at: Date, { attributed, ...run }: BenchRunOptions) =>
  runEvaluator({ store: storeOf(evaluation, attributed), publisher, ruleset, shards: allShards(dirtyShards), now: at, deadline: Number.POSITIVE_INFINITY, ...run, concurrency: run.concurrency ?? 1 });

/** Runs the evaluator until a run finds nothing to do (what a run left for the next). */
export async function evaluateUntilSettled(evaluation: AttributingStore, publisher: LeadPublisher, ruleset: Ruleset, at: Date, run: BenchRunOptions = {}) {
  const passes: number[] = [];
  for (let pass = 0; pass < 5; pass++) {
    const before = { ...evaluation.inner.capacity };
    const shares = JSON.stringify(evaluation.shares);
    const summary = await scheduledRun(evaluation, publisher, ruleset, at, run);
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

/** A table with a stored history, evaluated once at yesterday's evening. */
export interface HistoryTable {
  tableName: string;
  /** Days of stored history. */
  days: number;
  users: User[];
  accounts: Account[];
  /** Each user's stored messages. */
  history: Message[][];
  events: DynamoDbEventStore;
  /** The table's stream, read after each store as change capture would. */
  changes: LocalChangeStream;
  evaluation: AttributingStore;
  /** The waits stream batches left (evaluateChanges' waits), kept as one warm evaluator instance keeps them. */
  streamWaits: Map<string, string>;
  publisher: LeadPublisher & { published: number };
  storedEvents: number;
  ingestSeconds: number;
  firstRun: { evaluated: number; passes: number; seconds: number };
}

/**
 * Stores `days` of history up to yesterday for `users` users in `accounts` accounts in a fresh table, and runs the
 * first evaluation (which builds the state) at yesterday's evening.
 */
export async function prepareHistory(client: DynamoDBClient, ruleset: Ruleset, options: { days: number; users: number; accounts: number }): Promise<HistoryTable> {
  const { days } = options;
  const tableName = `bench-evaluate-${days}d-${Date.now().toString(36)}`;
  await ensureTable(client, tableName);
  const events = new DynamoDbEventStore({ client, tableName, retentionDays });
  // Marking is change capture's work, not the evaluator's: it has no tally here, and it runs before the calls are counted.
  const changes = new LocalChangeStream(client, tableName, new DynamoDbChangeCapture(client, tableName, dirtyShards));
  const evaluation = new AttributingStore(new DynamoDbEvaluationStore({ client, tableName, dirtyShards, retentionDays }));
  const publisher = {
    published: 0,
    async publish(leadEvents: readonly unknown[]) {
      publisher.published += leadEvents.length;
      return { failed: [] };
    },
  };

  const yesterday = new Date(now.getTime() - dayMs);
  const accounts = makeAccounts(Math.min(options.users, options.accounts), 11);
  const users = Array.from({ length: options.users }, (_, index) => makeUser(index, accounts, days, now, false, 11));
  const history = users.map((user) => Array.from({ length: user.signupOffset }, (_, i) => dayMessages(user, user.signupOffset - i, now, 11)).flat());
  let started = performance.now();
  const storedEvents = await store(events, changes, history, new Date(yesterday.getTime() - 3_600_000));
  const ingestSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  const firstPasses = await evaluateUntilSettled(evaluation, publisher, ruleset, yesterday);
  const firstRun = { evaluated: firstPasses.reduce((a, b) => a + b, 0), passes: firstPasses.length, seconds: (performance.now() - started) / 1000 };
  return { tableName, days, users, accounts, history, events, changes, evaluation, streamWaits: new Map(), publisher, storedEvents, ingestSeconds, firstRun };
}

/**
 * Stores new events for every user (`byUser`, in the users' order), then evaluates at `at` until a run finds nothing
 * left: what those evaluations cost, counted from zero. `stored` is called between the two. `fromStream`: the changes
 * go to the evaluator as deployed, from the table's stream (evaluateChanges, every batch on one warm instance), and
 * what that leaves to one scheduled run (a run a minute), both counted whatever they find: what waits too.
 */
export async function storeAndEvaluate(
  table: HistoryTable,
  byUser: readonly Message[][],
  times: { receivedAt: Date; at: Date },
  ruleset: Ruleset,
  options: BenchRunOptions & { stored?: () => void; fromStream?: boolean; cpu?: CpuSample } = {},
): Promise<EvaluationRound> {
  const { stored, fromStream, cpu, ...run } = options;
  const streamed: ChangeMark[] = [];
  const streamSink = { mark: async (keys: readonly WrittenKey[]) => streamed.push(...changeMarks(keys)) };
  const newEvents = await store(table.events, table.changes, byUser, times.receivedAt, fromStream ? streamSink : undefined);
  stored?.();
  // From the moment the events are stored to the end of the evaluation.
  const cpuBefore = cpu?.();
  table.evaluation.reset();
  table.publisher.published = 0;
  const started = performance.now();
  const { attributed, ...changesRun } = run;
  const passes = fromStream
    ? [
        (await evaluateChanges(storeOf(table.evaluation, attributed), table.publisher, { marks: streamed, ruleset, now: times.at, outOfTime: () => false, waits: table.streamWaits, ...changesRun, concurrency: run.concurrency ?? 1 })).evaluated,
        (await scheduledRun(table.evaluation, table.publisher, ruleset, times.at, run)).evaluated,
      ]
    : await evaluateUntilSettled(table.evaluation, table.publisher, ruleset, times.at, run);
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = cpu?.();
  return {
    ...(cpuBefore && cpuAfter
      ? { cpuSeconds: cpuBetween(cpuBefore, cpuAfter) }
      : {}),
    newEvents,
    evaluated: passes.reduce((a, b) => a + b, 0),
    passes,
    seconds,
    read: table.evaluation.inner.capacity.readUnits,
    write: table.evaluation.inner.capacity.writeUnits,
    shares: structuredClone(table.evaluation.shares),
    published: table.publisher.published,
  };
}

/** A user's events of today, the `round`th batch of them (round 0 is bench:evaluate's new day): a different seed each. */
export const todaysMessages = (user: User, round = 0) => dayMessages(user, 0, now, round === 0 ? 11 : seedFrom(11, 5, round), true);

/**
 * bench:evaluate's measurement: one new day of events for every user, evaluated this evening; then checks every
 * user's tier and score against an evaluation of its whole history in memory. `calls` counts the client's calls.
 */
export async function measureNewDay(table: HistoryTable, reader: DynamoDBClient, calls: ReturnType<typeof countCalls>, ruleset: Ruleset, cpu: CpuSample): Promise<TableResult> {
  const { users, accounts, history, tableName } = table;
  const today = users.map((user) => todaysMessages(user));
  // Only the evaluator's calls and CPU are counted: from the moment today's events are stored.
  const round = await storeAndEvaluate(table, today, { receivedAt: new Date(now.getTime() - 1_800_000), at: now }, ruleset, { stored: () => calls.clear(), cpu });
  const cpuMs = cpuMsPer(round.cpuSeconds!, round.evaluated);
  // The incremental path (rollups of changed days, lifetime adjusted) against the engine over everything stored.
  let sameAsFromScratch = 0;
  users.forEach((user, index) => {
    const expected = evaluate(entityFacts(user, [...history[index]!, ...today[index]!], ruleset), ruleset, now);
    const saved = table.evaluation.users.get(user.id);
    if (saved?.tier === expected.tier && saved.score === expected.score.total) sameAsFromScratch++;
  });
  return {
    ...round,
    days: table.days,
    storedEvents: table.storedEvents,
    ingestSeconds: table.ingestSeconds,
    firstRun: table.firstRun,
    calls: structuredClone(calls),
    sameAsFromScratch,
    cpuMs,
    stateBytes: {
      user: await stateSizes(reader, tableName, 'user', users.map((user) => user.id)),
      account: await stateSizes(reader, tableName, 'account', accounts.map((account) => account.id)),
    },
  };
}
