/**
 * Evaluator benchmark.
 *
 * (a) The PQL engine in memory: a 20-signal ruleset over realistic per-user facts (a rollup per active day of up to 30,
 *     made with rollupDay from generated events, plus the lifetime rollup), entities per second for evaluate() and its tier,
 *     beside json-rules-engine running the same rules over flat facts computed separately from the raw events.
 *     Both must give every entity the same tier (and the same matched signals), or the benchmark fails.
 * (b) The evaluator against DynamoDB Local: a stored history per user, a first evaluation that builds the state,
 *     then one new day of events for every user and a second evaluation, measured: read and write capacity units
 *     per evaluated entity, the CPU each takes in the evaluator's process and in DynamoDB Local's, and entities per
 *     second: for users who signed up within the window, then for users who
 *     signed up before it, and for those with 10x the stored history: an evaluation reads what changed, not the whole
 *     history, so the last two must not differ. It also checks that every user's tier and score after the incremental
 *     runs equal an evaluation of its whole history.
 * (c) One shard's throughput, one entity at a time and as deployed, and the CPU each entity takes in the evaluator's
 *     process and in DynamoDB Local's: the evaluator's alone, without the attribution of units to calls and entities that
 *     (b) makes (its proxy and AsyncLocalStorage's promise hooks cost the process about a tenth of its CPU), and how much
 *     of DynamoDB Local's was its JVM's just-in-time compiler. Then the floor the calls alone set: bare calls of each kind
 *     on the same table, priced at the calls the runs made.
 * (d) A quiet week: the rules with an account signal reading a windowed signal of its members (members_matching), a run
 *     a day for 7 days with no new events; the entities the sweeps evaluate and their units: what keeping leads, and
 *     accounts' reads of their members, current costs when nothing else happens.
 * (e) Accounts by size: (d)'s rules, a new day for every user of accounts of BENCH_ACCOUNT_SIZES members (10,100,400),
 *     and the read units of an account's evaluation, which reads every member's state (and their days in reach when an
 *     account signal counts their events by day; (d)'s do not). Then a busy quarter of an hour of one account of 100
 *     members, judged at every move and with the deployed accountEveryMinutes: what waiting saves.
 * (f) Users active all along, an event a minute each, a run a minute: judged at every change and with the deployed
 *     userEveryMinutes, the units and dollars per million events of their evaluations.
 *
 *   npm run bench:evaluate                                                  10,000 users in memory; 100 users in 10 accounts on DynamoDB Local (~5 min on 2 cores)
 *   BENCH_ENTITIES=20000 BENCH_USERS=200 BENCH_ACCOUNTS=20 npm run bench:evaluate   bigger (about twice as long)
 *
 * BENCH_KINDS=new adds 8 signals of the newer kinds (active days and sessions, per-week habits, a streak, time to value)
 * to the rules and runs (b) only (json-rules-engine cannot say them): what they add to the stored rollups and the units.
 *
 * Other knobs: BENCH_RUNS (5), BENCH_WARMUP (3 rounds: the agreement pass over every user, then rounds over up to
 * 2,000), BENCH_DAYS (30: stored history of the first table, its users' signups within the window), BENCH_BUDGET_DAYS
 * (50: the second table, signups before the window) and BENCH_SCALE (10: the third table has BENCH_BUDGET_DAYS x
 * BENCH_SCALE days), BENCH_THROUGHPUT_ROUNDS (3: (c)'s rounds at each concurrency), BENCH_BUSY_USERS (10) and BENCH_BUSY_MINUTES (120: (f)). DynamoDB Local stores about 8,000
 * events/s here, in a database of the table's own, which is what bounds BENCH_USERS.
 * Budget: the third table's capacity units per evaluated entity stay within 10% of the second's. Exits 1 when not,
 * or when the two engines disagree.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Engine, type RuleProperties, type TopLevelCondition } from 'json-rules-engine';
import { evaluate, type EntityFacts } from '../functions/core/rules/engine';
import { loadRules, type Ruleset } from '../functions/core/rules/load';
import type { Condition, Signal } from '../functions/core/rules/schema';
import { addDays, dayMs, dayOf } from '../functions/core/days';
import { defaultEvaluatorConcurrency as evaluatorConcurrency } from '../functions/core/evaluate-leads';
import { longLivedClientOptions } from '../functions/shared/sdk-clients';
import { createDynamoDbClient, databaseClient, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { seedFrom } from '../functions/core/random';
import { defaultAccountEveryMinutes, defaultUserEveryMinutes } from '../functions/shared/settings';
import { GetItemCommand, PutItemCommand, QueryCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { entityPartitionKey, profileSortKey, stateSortKey } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { forEachConcurrently } from '../functions/core/concurrency';
import { bytes, count, fixed } from '../functions/analysis/format';
import {
  billMissingItems,
  countCalls,
  dayMessages,
  dirtyShards,
  entityFacts,
  isoDay,
  makeAccounts,
  makeUser,
  measureNewDay,
  now,
  storeAndEvaluate,
  prepareHistory,
  rulesYaml,
  todaysMessages,
  workspace as benchWorkspace,
  type EvaluationRound,
  type HistoryTable,
  type Message,
  type Share,
  type TableResult,
  type User,
  sumCpu,
  cpuBetween,
  cpuMsPer,
  type CpuSample,
  type CpuSeconds,
} from './evaluate-history';
import { positiveInt } from './knobs';
import { listPrices } from '../lib/list-prices';

const entityCount = positiveInt('BENCH_ENTITIES', 10_000);
const runs = positiveInt('BENCH_RUNS', 5);
const warmupRounds = positiveInt('BENCH_WARMUP', 3);
const warmupEntities = Math.min(entityCount, 2_000);
const userCount = positiveInt('BENCH_USERS', 100);
const accountCount = Math.min(userCount, positiveInt('BENCH_ACCOUNTS', 10));
const historyDays = positiveInt('BENCH_DAYS', 30);
/**
 * Days of history of the budget's first table. Users sign up as their history starts: past 47 days (the rules' 30-day
 * window, their 14-day since-signup span, the 3 days of signup spread of makeUser), every user's span ends before its
 * window starts and is read apart from it, as it is at 10x the history; at BENCH_DAYS a span lies in the window, one
 * query reads both, and the two tables would compare signup ages rather than lengths of history.
 */
const budgetDays = positiveInt('BENCH_BUDGET_DAYS', 50);
const historyScale = positiveInt('BENCH_SCALE', 10);
const throughputRounds = positiveInt('BENCH_THROUGHPUT_ROUNDS', 3);
const budgetRatio = 1.1;
/** (e)'s accounts: members each; BENCH_USERS users split into accounts of that size (at least one account). */
const accountSizes = (process.env['BENCH_ACCOUNT_SIZES'] ?? '10,100,400').split(',').map((size) => {
  const members = Number(size);
  if (!Number.isInteger(members) || members < 1) throw new Error(`BENCH_ACCOUNT_SIZES: ${size} is not a whole number of members, at least 1`);
  return members;
});
const withNewKinds = process.env['BENCH_KINDS'] === 'new';
/** Signals of the kinds json-rules-engine has no counterpart for, over the events the bench generates. */
const newKindsYaml = `
  active_days_14d: { event: '*', count: days, window: 14d, at_least: 5, points: 5 }
  sessions_7d: { event: '*', count: sessions, window: 7d, at_least: 3, points: 5 }
  used_twice_ever: { event: '*', count: days, at_most: 2, points: -5 }
  login_week: { event: Logged In, window: 4w, per: week, at_least: 5, points: 5 }
  regular: { event: '*', window: 4w, per: week, periods: 3, points: 5 }
  streak: { event: '*', window: 14d, per: day, consecutive: 3, points: 5 }
  first_dashboard: { event: Dashboard Created }
  fast_dashboard: { to: first_dashboard, within: 2d, points: 5 }
`;

// ---- (a) facts for the engine, and flat facts for json-rules-engine ----

const nameOf = (message: Message) => (message.type === 'track' ? message.event : message.type === 'page' ? 'Page Viewed' : message.type === 'screen' ? 'Screen Viewed' : undefined);


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

// ---- report ----

async function main() {
  // The SDK warns on Node 20 that future releases need Node 22; the pinned version runs fine (as in vitest.config.ts).
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  // DynamoDB Local's JVM (which takes this process's environment) keeps the compiler threads it starts with and starts
  // no others, none of which could end between two of cpuSeconds' readings and take its CPU out of their sum.
  process.env['JDK_JAVA_OPTIONS'] = ['-XX:-UseDynamicNumberOfCompilerThreads', process.env['JDK_JAVA_OPTIONS']].filter(Boolean).join(' ');
  const ruleset = loadRules(withNewKinds ? rulesYaml.replace('\nscoring:', `${newKindsYaml}scoring:`) : rulesYaml, 'bench-evaluate.rules.yaml');
  const signals = Object.values(ruleset.file.signals);
  const kinds = (kind: Signal['kind']) => signals.filter((signal) => signal.kind === kind).length;
  const lines: string[] = ['pql-radar evaluate benchmark', `now ${now.toISOString()}; ${signals.length} signals (${kinds('event')} event, ${kinds('inactivity')} inactivity, ${kinds('trait')} trait, ${kinds('combination')} combinations), ${ruleset.file.tiers.length} tiers; windows <= ${ruleset.maxWindowDays}d, since_signup <= ${ruleset.maxSinceSignupDays}d`, ''];

  if (!withNewKinds) await engineInMemory(ruleset, lines);
  await evaluatorOnDynamoDb(ruleset, lines);
  if (!withNewKinds) {
    await quietWeek();
    await accountsBySize();
    await busyUsers(ruleset);
  }
}

/** An account signal reading a windowed user signal of the members, for (d). */
const memberSignalYaml = '  active_members: { level: account, members_matching: logins_7d, at_least: 2, points: 10 }\n';
/** (a)'s rules and memberSignalYaml's account signal: the rules of (d) and (e). */
const membersRules = () => loadRules(rulesYaml.replace('\nsignals:\n', `\nsignals:\n${memberSignalYaml}`), 'bench-evaluate-members.rules.yaml');

/**
 * (d) Sweeps through a quiet week: the rules of (a) and an account signal reading a windowed user signal of its members
 * (members_matching); after (b)'s new day, a run a day for 7 days with no new events. Only time moves anything, so
 * what they cost is the sweeps that keep leads current, and accounts' reads of their members.
 */
async function quietWeek() {
  const ruleset = membersRules();
  const dynamoDb = await startDynamoDbLocal();
  const client = createDynamoDbClient(dynamoDb.endpoint);
  const missing = billMissingItems(client);
  try {
    const table = await prepareHistory(client, ruleset, { days: historyDays, users: userCount, accounts: accountCount });
    await storeAndEvaluate(table, table.users.map((user) => todaysMessages(user)), { receivedAt: new Date(now.getTime() - 1_800_000), at: now }, ruleset);
    const quietDays: EvaluationRound[] = [];
    for (let day = 1; day <= 7; day++) {
      const at = new Date(now.getTime() + day * dayMs);
      quietDays.push(await storeAndEvaluate(table, [], { receivedAt: at, at }, ruleset));
    }
    const sum = (field: 'evaluated' | 'read' | 'write') => quietDays.reduce((total, round) => total + round[field], 0);
    const dollars = sum('read') * listPrices.readUnit + sum('write') * listPrices.writeUnit;
    const lines = [
      '',
      `(d) a quiet week on DynamoDB Local: ${userCount} users in ${accountCount} accounts, ${historyDays}d of history and (b)'s new day, the rules of (a) and`,
      `    ${memberSignalYaml.trim()}; then a run a day for 7 days, no new events: the sweeps time alone calls for`,
      'day  evaluated      RCU      WCU',
      ...quietDays.map((round, index) => `${String(index + 1).padStart(3)} ${fixed(round.evaluated, 0, 10)} ${fixed(round.read, 1, 8)} ${fixed(round.write, 1, 8)}`),
      `week: ${count(sum('evaluated'))} evaluations, ${fixed(sum('read'), 1, 0)} RCU and ${fixed(sum('write'), 1, 0)} WCU = $${(dollars * 1e6 / userCount).toFixed(2)} per million users a week at on-demand list prices (BatchGetItem keys with no item, from the start: ${count(missing.missing)}, billed as DynamoDB does)`,
    ];
    console.log(lines.join('\n'));
  } finally {
    client.destroy();
    await dynamoDb.stop();
  }
}

/**
 * (e) What an account's evaluation reads, by its size: each member's state (strongly consistent; none the same run
 * saved, which it has as saved), and their day rollups in reach when a rule counts their events by day. A table of its
 * own per size, at least BENCH_USERS users.
 */
async function accountsBySize() {
  const ruleset = membersRules();
  // A database of each table's own, as (b)'s.
  const dynamoDb = await startDynamoDbLocal({ sharedDb: false });
  const clients: DynamoDBClient[] = [];
  /** A client for a table of its own, its BatchGetItem keys with no item billed. */
  const tableClient = () => {
    const client = databaseClient(dynamoDb.endpoint, `accounts${clients.length}`);
    billMissingItems(client);
    clients.push(client);
    return client;
  };
  const lines = [
    '',
    `(e) accounts by size on DynamoDB Local: (d)'s rules, ${historyDays}d of history, then (b)'s new day for every user, one entity at a time; an account's evaluation`,
    "    reads each member's state (and their days when a rule counts their events by day), so it costs in proportion to its members, at every move;",
    "    but after its members' evaluations it has the states the run saved of them. Judged alone a minute later (a sweep, a change of its own), it reads them all",
    'members  users  accounts  account evaluations  RCU each  RCU per member  alone: RCU each  RCU per member  user evaluations  RCU each',
  ];
  try {
    for (const members of accountSizes) {
      const users = Math.max(userCount, members);
      const table = await prepareHistory(tableClient(), ruleset, { days: historyDays, users, accounts: Math.max(1, Math.floor(users / members)) });
      // One entity at a time: what an account reads of its members is then the account's (AttributingStore).
      const round = await storeAndEvaluate(table, table.users.map((user) => todaysMessages(user)), { receivedAt: new Date(now.getTime() - 1_800_000), at: now }, ruleset);
      const { user, account } = round.shares;
      const perAccount = account.read / Math.max(1, account.evaluated);
      const later = new Date(now.getTime() + 60_000);
      for (const { id } of table.accounts) await table.evaluation.inner.mark({ workspace: benchWorkspace, type: 'account', id }, [], later);
      const alone = (await storeAndEvaluate(table, [], { receivedAt: later, at: later }, ruleset)).shares.account;
      const perAccountAlone = alone.read / Math.max(1, alone.evaluated);
      lines.push(
        `${fixed(members, 0, 7)} ${fixed(users, 0, 6)} ${fixed(table.accounts.length, 0, 9)} ${fixed(account.evaluated, 0, 20)} ${fixed(perAccount, 1, 9)} ${fixed(perAccount / members, 2, 15)} ${fixed(perAccountAlone, 1, 15)} ${fixed(perAccountAlone / members, 2, 15)} ${fixed(user.evaluated, 0, 17)} ${fixed(user.read / Math.max(1, user.evaluated), 1, 9)}`,
      );
    }
    lines.push(...(await busyAccount(tableClient, ruleset)));
    console.log(lines.join('\n'));
  } finally {
    for (const client of clients) client.destroy();
    await dynamoDb.stop();
  }
}

/**
 * (e)'s busy quarter: one account of 100 members; a run every minute for 10 minutes, each after new events of 10
 * members, then runs at 12 and 15 minutes. Judged at every move, and with the deployed interval: a table each.
 */
async function busyAccount(tableClient: () => DynamoDBClient, ruleset: Ruleset): Promise<string[]> {
  const members = 100;
  const lines = ['', `    a busy quarter of an hour: ${members} members in one account, a run a minute for 10 minutes after new events of 10 members each, then runs at 12 and 15 minutes`, 'account every  account evaluations   RCU   WCU  $ per busy hour'];
  for (const intervalMinutes of [0, defaultAccountEveryMinutes]) {
    const table = await prepareHistory(tableClient(), ruleset, { days: historyDays, users: members, accounts: 1 });
    const shares = { evaluated: 0, read: 0, write: 0 };
    for (const minute of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15]) {
      const at = new Date(now.getTime() + minute * 60_000);
      const byUser = table.users.map((user, index) => (minute < 10 && index % 10 === minute ? dayMessages(user, 0, now, seedFrom(21, minute), true) : []));
      const { account } = (await storeAndEvaluate(table, byUser, { receivedAt: at, at }, ruleset, { accountIntervalMs: intervalMinutes * 60_000 })).shares;
      shares.evaluated += account.evaluated;
      shares.read += account.read;
      shares.write += account.write;
    }
    const dollarsPerHour = 4 * (shares.read * listPrices.readUnit + shares.write * listPrices.writeUnit);
    lines.push(`${`${intervalMinutes} min`.padStart(13)} ${fixed(shares.evaluated, 0, 20)} ${fixed(shares.read, 0, 5)} ${fixed(shares.write, 0, 5)} ${`$${dollarsPerHour.toFixed(5)}`.padStart(16)}`);
  }
  return lines;
}

/**
 * (f) Users active all along: BENCH_BUSY_USERS (10) users each sending one event a minute for BENCH_BUSY_MINUTES (120,
 * from midnight: 1440 is a whole day), one request each as a browser sends them; each minute's events are evaluated as deployed, from the table's stream,
 * and what that leaves by the minute's scheduled run. An evaluation recounts the changed day's events, so judged at
 * every change a user's reads grow with its day; the deployed userEveryMinutes judges what a user sent meanwhile at
 * most every so many minutes. A table of its own for each. Everything is counted, what only finds changes that wait
 * too; the units are the users' own (their rows, events, days, claims and saves), and apart the runs' own (change
 * lists, cursors, progress, outbox), which a run a minute has whoever is active.
 */
async function busyUsers(ruleset: Ruleset) {
  const users = positiveInt('BENCH_BUSY_USERS', 10);
  const minutes = positiveInt('BENCH_BUSY_MINUTES', 120);
  const dynamoDb = await startDynamoDbLocal();
  const client = createDynamoDbClient(dynamoDb.endpoint);
  billMissingItems(client);
  const lines = [
    '',
    `(f) busy users on DynamoDB Local: ${users} users each sending an event a minute for ${minutes} minutes from midnight (a request each, as a browser sends them), each minute's events`,
    `    evaluated from the table's stream as deployed, then the minute's scheduled run; judged at every change and with the deployed userEveryMinutes;`,
    `    ${historyDays}d of history before, one entity at a time; the users' own units (rows, events, days, claims, saves), and apart the runs' own (lists, cursors, outbox)`,
    "user every  events  evaluations  users' RCU  users' WCU  RCU per event  WCU per event  evaluation $ per million events  runs' own RCU / WCU",
  ];
  // From the start of a day, the day after the history's: up to 1,440 minutes are one day, which an evaluation recounts.
  const midnight = Date.parse(`${addDays(dayOf(now), 1)}T00:00:00.000Z`);
  // The users' read units per evaluation in each hour of their day: an evaluation recounts its day's events so far.
  const hourly: string[] = [];
  try {
    for (const intervalMinutes of [0, defaultUserEveryMinutes]) {
      const hours: { evaluated: number; read: number }[] = [];
      const table = await prepareHistory(client, ruleset, { days: historyDays, users, accounts: 1 });
      // Each user's messages of a day, sent one a minute at that minute (under ids of their own: each is a new message).
      const days = table.users.map((user) => todaysMessages(user));
      const totals = { events: 0, evaluated: 0, read: 0, write: 0, runRead: 0, runWrite: 0 };
      for (let minute = 0; minute < minutes; minute++) {
        const at = new Date(midnight + minute * 60_000);
        const byUser = days.map((day) => {
          const message = day[minute % day.length];
          return message === undefined ? [] : [{ ...message, messageId: `${message.messageId}-${minute}`, timestamp: at.toISOString() }];
        });
        const round = await storeAndEvaluate(table, byUser, { receivedAt: at, at }, ruleset, { userIntervalMs: intervalMinutes * 60_000, fromStream: true });
        totals.events += round.newEvents;
        totals.evaluated += round.evaluated;
        totals.read += round.shares.user.read;
        totals.write += round.shares.user.write;
        totals.runRead += round.shares.run.read;
        totals.runWrite += round.shares.run.write;
        const hour = (hours[Math.floor(minute / 60)] ??= { evaluated: 0, read: 0 });
        hour.evaluated += round.evaluated;
        hour.read += round.shares.user.read;
      }
      hourly.push(`${`${intervalMinutes} min`.padStart(10)}  ${hours.map((hour) => fixed(hour.read / hour.evaluated, 2, 6)).join(' ')}`);
      const dollars = totals.read * listPrices.readUnit + totals.write * listPrices.writeUnit;
      lines.push(
        `${`${intervalMinutes} min`.padStart(10)} ${fixed(totals.events, 0, 7)} ${fixed(totals.evaluated, 0, 12)} ${fixed(totals.read, 1, 11)} ${fixed(totals.write, 1, 11)} ${fixed(totals.read / totals.events, 2, 14)} ${fixed(totals.write / totals.events, 2, 14)} ${`$${((dollars / totals.events) * 1e6).toFixed(3)}`.padStart(31)} ${`${fixed(totals.runRead, 0, 0)} / ${fixed(totals.runWrite, 0, 0)}`.padStart(20)}`,
      );
    }
    lines.push("users' RCU per evaluation, hour by hour (an evaluation recounts its day's events so far, so it grows through the day)", ...hourly);
    console.log(lines.join('\n'));
  } finally {
    client.destroy();
    await dynamoDb.stop();
  }
}

/** (a) The engine in memory beside json-rules-engine; throws when they disagree. */
async function engineInMemory(ruleset: Ruleset, lines: string[]) {
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
}

/** (b) The evaluator on DynamoDB Local at two lengths of history, and (c) one shard's throughput. */
async function evaluatorOnDynamoDb(ruleset: Ruleset, lines: string[]) {
  // Each table in a database of its own, all in one JVM (databaseClient): in one, the later, longer histories looked
  // slower to evaluate than they are.
  const dynamoDb = await startDynamoDbLocal({ sharedDb: false });
  const databases = [historyDays, budgetDays, budgetDays * historyScale].map((days, index) => {
    const client = databaseClient(dynamoDb.endpoint, `evaluate${index}`, longLivedClientOptions);
    /** For looking at the stored items afterwards, outside the counted calls. */
    const reader = databaseClient(dynamoDb.endpoint, `evaluate${index}`);
    return { days, client, reader, calls: countCalls(client), missing: billMissingItems(client) };
  });
  try {
    // Every table is prepared before any is measured, so that each measured run finds DynamoDB Local's JVM equally warm.
    const tables: HistoryTable[] = [];
    for (const { days, client } of databases) tables.push(await prepareHistory(client, ruleset, { days, users: userCount, accounts: accountCount }));
    const results: TableResult[] = [];
    for (const [index, table] of tables.entries()) results.push(await measureNewDay(table, databases[index]!.reader, databases[index]!.calls, ruleset, () => cpuSeconds(dynamoDb.pid)));
    const missing = databases.reduce((sum, database) => sum + database.missing.missing, 0);
    const [recent, small, large] = results as [TableResult, TableResult, TableResult];
    const per = (result: TableResult) => ({ read: result.read / result.evaluated, write: result.write / result.evaluated, rate: result.evaluated / result.seconds });
    const shareText = (share: Share) => (share.evaluated === 0 ? '-' : `${(share.read / share.evaluated).toFixed(1)}/${(share.write / share.evaluated).toFixed(1)}`);
    const label = (result: TableResult) => `${result.days}d`.padEnd(9);
    lines.push(
      `(b) evaluator on DynamoDB Local: ${userCount} users in ${accountCount} accounts, ${dirtyShards} shards, the rules of (a)${withNewKinds ? " with the 8 newer kinds" : ""}; stored history up to yesterday, first run (builds`,
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
          `${label(result)}CPU per evaluated entity: ${result.cpuMs.own.toFixed(2)} ms in the evaluator's process, ${result.cpuMs.database === null ? 'n/a' : `${result.cpuMs.database.toFixed(2)} ms`} in DynamoDB Local's JVM${jitShare(result.cpuMs)}`,
      ),
      ...results.map(
        (result) =>
          `${label(result)}STATE item (rewritten by every evaluation) ${bytes(result.stateBytes.user.item)} per user, of which the lifetime rollup ${bytes(result.stateBytes.user.lifetime)}; ${bytes(result.stateBytes.account.item)} per account, lifetime ${bytes(result.stateBytes.account.lifetime)}`,
      ),
      `budget: capacity per evaluated entity with ${historyScale}x the history within ${Math.round((budgetRatio - 1) * 100)}%: RCU ${within(readRatio) ? 'PASS' : 'FAIL'} (x${readRatio.toFixed(3)}), WCU ${within(writeRatio) ? 'PASS' : 'FAIL'} (x${writeRatio.toFixed(3)}): ${pass ? 'PASS' : 'FAIL'}`,
      `  entities/s x${rateRatio.toFixed(3)} (${Math.abs(rateRatio - 1) <= budgetRatio - 1 ? 'within' : 'NOT within'} 10%): wall time of one evaluator process on DynamoDB Local, shown, not judged (noisier than the units);`,
      `  CPU per entity x${(large.cpuMs.own / small.cpuMs.own).toFixed(2)} in the evaluator's process${large.cpuMs.database !== null && small.cpuMs.database !== null ? `, x${(large.cpuMs.database / small.cpuMs.database).toFixed(2)} in DynamoDB Local's JVM, for the same calls and units` : ''}`,
      `  ${recent.days}d: signups within the window, whose since-signup span the window's query reads too: RCU/entity x${(per(recent).read / s.read).toFixed(3)} the ${small.days}d table's, whose spans are read apart`,
    );
    // Which calls reported capacity, in the measured runs of every table.
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
        ? `  DynamoDB Local reported consumed capacity for every one of them; BatchGetItem keys with no item, billed as DynamoDB bills them (DynamoDB Local reports 0): ${missing} in all of (b), the first runs that build the state included.`
        : `  NOT reported for: ${unreported.map((name) => `${name.replace(/Command$/, '')} (${merged.get(name)!.calls - merged.get(name)!.reported} of ${merged.get(name)!.calls} calls)`).join(', ')}: those calls count 0 units above`,
    );
    // (c) Throughput of one shard's run on the first table: rounds of a further day of events for every user each,
    // evaluated one entity at a time (as every run did before runs overlapped their entities) and as deployed, taking
    // turns, summed: one round of 100 entities is a second or so, and its CPU figures moved by a third between runs.
    const throughput: string[] = [];
    const rates: { concurrency: number; rate: number; ownMs: number; databaseMs: number | null; compilerMs: number | null }[] = [];
    const totals = new Map<number, { evaluated: number; seconds: number; cpu: CpuSeconds }>();
    const table = tables[0]!;
    const { client, calls } = databases[0]!;
    /** The client's calls in (c)'s runs, by operation: both processes' CPU follows them more than anything else. */
    const throughputCalls = new Map<string, number>();
    for (let round = 0, offset = 1; round < throughputRounds; round++) {
      for (const concurrency of withNewKinds ? [] : [1, evaluatorConcurrency]) {
        const at = new Date(now.getTime() + offset * dayMs);
        // CPU from the moment the day's events are stored to the end of the evaluation: the evaluator's process and
        // DynamoDB Local's JVM, which share this machine's cores.
        const result = await storeAndEvaluate(table, table.users.map((user) => dayMessages(user, 0, at, 12 + offset, true)), { receivedAt: new Date(at.getTime() - 1_800_000), at }, ruleset, { cpu: () => cpuSeconds(dynamoDb.pid), concurrency, stored: () => calls.clear(), attributed: false });
        for (const [name, entry] of calls) throughputCalls.set(name, (throughputCalls.get(name) ?? 0) + entry.calls);
        const total = totals.get(concurrency) ?? { evaluated: 0, seconds: 0, cpu: { own: 0, database: 0, compiler: 0 } };
        totals.set(concurrency, { evaluated: total.evaluated + result.evaluated, seconds: total.seconds + result.seconds, cpu: sumCpu(total.cpu, result.cpuSeconds!) });
        offset++;
      }
    }
    for (const [concurrency, total] of totals) {
      const { own: ownMs, database: databaseMs, compiler: compilerMs } = cpuMsPer(total.cpu, total.evaluated);
      rates.push({ concurrency, rate: total.evaluated / total.seconds, ownMs, databaseMs, compilerMs });
      const known = (ms: number | null, width: number) => (ms === null ? 'n/a'.padStart(width) : fixed(ms, 2, width));
      throughput.push(
        `${String(concurrency).padStart(11)} ${fixed(total.evaluated, 0, 9)} ${fixed(total.seconds, 2, 9)} ${fixed(total.evaluated / total.seconds, 1, 10)} ${fixed(ownMs, 2, 17)} ${known(databaseMs, 22)} ${known(compilerMs, 18)}`,
      );
    }
    if (throughput.length > 0) {
      const [oneAtATime, deployed] = rates as [(typeof rates)[number], (typeof rates)[number]];
      const evaluated = [...totals.values()].reduce((sum, total) => sum + total.evaluated, 0);
      const ceiling = 1000 / deployed.ownMs;
      const busy = deployed.databaseMs === null ? null : ((deployed.ownMs + deployed.databaseMs) * deployed.rate) / 1000;
      lines.push(
        `(c) one shard's throughput on the ${recent.days}d table, ${throughputRounds} rounds at each concurrency, a further day of events for every user each: entities evaluated per second of wall time,`,
        `    and the CPU each entity took in the evaluator's process and in DynamoDB Local's JVM (${availableParallelism()} cores between them)`,
        'concurrency evaluated seconds entities/s  evaluator CPU ms  DynamoDB Local CPU ms  of which its JIT',
        ...throughput,
        ...(deployed.databaseMs === null || deployed.compilerMs === null
          ? []
          : [
              `  DynamoDB Local's JIT compiler, still optimising its code, took ${fixed((deployed.compilerMs / deployed.databaseMs) * 100, 0, 0)}% of its CPU as deployed; without it, both processes' CPU would allow`,
              `  at most ${Math.round((availableParallelism() * 1000) / (deployed.ownMs + deployed.databaseMs - deployed.compilerMs))} entities/s on ${availableParallelism()} cores (${fixed(deployed.ownMs + deployed.databaseMs - deployed.compilerMs, 2, 0)} ms an entity)`,
            ]),
        `  as deployed: x${(deployed.rate / oneAtATime.rate).toFixed(2)} the entities/s of one at a time${busy === null ? '' : `, with ${busy.toFixed(2)} of ${availableParallelism()} cores busy`}; the evaluator's own CPU`,
        `  bounds a shard at ${Math.round(ceiling)} entities/s per core (x${(ceiling / oneAtATime.rate).toFixed(1)} one at a time here) where the database has cores of its own, as DynamoDB in AWS does`,
        `  DynamoDB calls per evaluated entity, the runs' own (candidates, outbox, progress) included: ${perEntityCalls(throughputCalls, evaluated)}`,
      );
      const floor = await callsFloor(client, table, () => cpuSeconds(dynamoDb.pid));
      if (floor !== null) {
        // Each operation priced as the nearest of the three measured: a batch read as a get, a batch write or an update as a put.
        const priced = (name: string) => floor[/Query/.test(name) ? 'query' : /Put|Write|Update|Delete/.test(name) ? 'put' : 'get'];
        const perEntity = (side: 'own' | 'database') => [...throughputCalls].reduce((sum, [name, made]) => sum + (made / evaluated) * priced(name)[side], 0);
        const both = perEntity('own') + perEntity('database');
        lines.push(
          `  the calls alone, each as a bare call of its kind at concurrency ${evaluatorConcurrency} on this table (get ${fixed(floor.get.own, 2, 0)} + ${fixed(floor.get.database, 2, 0)} ms, query ${fixed(floor.query.own, 2, 0)} + ${fixed(floor.query.database, 2, 0)},`,
          `  conditional put ${fixed(floor.put.own, 2, 0)} + ${fixed(floor.put.database, 2, 0)}, this process + DynamoDB Local's JVM): ${fixed(perEntity('own'), 2, 0)} + ${fixed(perEntity('database'), 2, 0)} ms of CPU per entity, so at most ${Math.round((availableParallelism() * 1000) / both)} entities/s`,
          `  on ${availableParallelism()} cores shared by both with none of the evaluator's own work; ${fixed(deployed.ownMs + deployed.databaseMs!, 2, 0)} ms measured above`,
        );
      }
    }
    console.log(lines.join('\n'));
    if (!pass) process.exitCode = 1;
    for (const result of results) {
      if (result.sameAsFromScratch !== userCount) throw new Error(`${result.days}d: the evaluator's tier or score differs from an evaluation from scratch for ${userCount - result.sameAsFromScratch} users`);
    }
  } finally {
    for (const { client, reader } of databases) {
      client.destroy();
      reader.destroy();
    }
    await dynamoDb.stop();
  }
}

/**
 * CPU per call of this process and of DynamoDB Local's JVM, for bare calls like the evaluator's commonest: a strongly
 * consistent get of a user's STATE item, a query of its PROFILE to STATE, and a conditional put of a copy of its STATE
 * item under a key of the bench's own (its day items' size and condition); null where /proc is not there.
 */
async function callsFloor(client: DynamoDBClient, table: HistoryTable, cpu: CpuSample) {
  const calls = 2_000;
  const keys = table.users.map((user) => ({ pk: { S: entityPartitionKey(benchWorkspace, 'user', user.id) }, sk: { S: stateSortKey } }));
  const { Item: stateItem } = await client.send(new GetItemCommand({ TableName: table.tableName, Key: keys[0]!, ConsistentRead: true }));
  // Out of the sweep index: the copies are no entity's.
  const { [tableDefinition.dirtyIndex.partitionKey]: _shard, [tableDefinition.dirtyIndex.sortKey]: _due, ...copied } = stateItem!;
  const operations = {
    get: (index: number) => client.send(new GetItemCommand({ TableName: table.tableName, Key: keys[index % keys.length]!, ConsistentRead: true })),
    query: (index: number) =>
      client.send(
        new QueryCommand({
          TableName: table.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': keys[index % keys.length]!.pk, ':from': { S: profileSortKey }, ':to': { S: stateSortKey } },
          ConsistentRead: true,
        }),
      ),
    // Each write's revision above every earlier one's, so that every condition holds, as a save's does.
    put: (index: number) =>
      client.send(
        new PutItemCommand({
          TableName: table.tableName,
          Item: { ...copied, pk: { S: `BENCH#calls#${index % keys.length}` }, stateRevision: { N: String(index) } },
          ConditionExpression: 'attribute_not_exists(stateRevision) OR stateRevision <= :revision',
          ExpressionAttributeValues: { ':revision': { N: String(index) } },
        }),
      ),
  };
  const perCall: Record<keyof typeof operations, { own: number; database: number }> = { get: { own: 0, database: 0 }, query: { own: 0, database: 0 }, put: { own: 0, database: 0 } };
  for (const [name, operation] of Object.entries(operations) as [keyof typeof operations, (index: number) => Promise<unknown>][]) {
    // The first round warms the JVM's code for the call; the second is measured.
    for (const measured of [false, true]) {
      const before = cpu();
      const first = measured ? calls : 0;
      await forEachConcurrently([...Array(calls).keys()], evaluatorConcurrency, async (index) => void (await operation(first + index)));
      const spent = cpuMsPer(cpuBetween(before, cpu()), calls);
      if (spent.database === null) return null;
      if (measured) perCall[name] = { own: spent.own, database: spent.database };
    }
  }
  return perCall;
}

/** `calls` by operation, per entity of `evaluated`, all of them first, then the most made first. */
function perEntityCalls(calls: ReadonlyMap<string, number>, evaluated: number): string {
  const sorted = [...calls].sort(([, a], [, b]) => b - a);
  const all = sorted.reduce((sum, [, made]) => sum + made, 0);
  return [`${(all / evaluated).toFixed(2)} in all`, ...sorted.map(([name, made]) => `${name.replace(/Command$/, '')} ${(made / evaluated).toFixed(2)}`)].join(', ');
}

/** ", of which its JIT compiler N ms", where that is known. */
const jitShare = (cpuMs: CpuSeconds) => (cpuMs.compiler === null ? '' : `, of which its JIT compiler ${cpuMs.compiler.toFixed(2)} ms`);

/**
 * CPU seconds used so far by this process and by the process `databasePid`, and by that JVM's just-in-time compiler
 * threads (from Linux's /proc; null elsewhere or once it is gone).
 */
function cpuSeconds(databasePid: number): CpuSeconds {
  const { user, system } = process.cpuUsage();
  const own = (user + system) / 1e6;
  try {
    const database = ticksToSeconds(readFileSync(`/proc/${databasePid}/stat`, 'utf8'));
    const compiler = readdirSync(`/proc/${databasePid}/task`)
      .map(threadStat(databasePid))
      .filter((stat) => /^\d+ \(C[12] CompilerThre/.test(stat))
      .reduce((sum, stat) => sum + ticksToSeconds(stat), 0);
    return { own, database, compiler };
  } catch {
    return { own, database: null, compiler: null };
  }
}

/**
 * A thread's /proc stat line, or '' for a thread that ended since its directory was listed (the JVM's HTTP server ends
 * idle threads of its pool at any time; the compiler threads it keeps never end, see main).
 */
const threadStat = (pid: number) => (thread: string) => {
  try {
    return readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
  } catch {
    return '';
  }
};

/**
 * The user and system time in a /proc stat line: the 14th and 15th fields, in clock ticks (100 a second on Linux). The
 * name, field 2, may hold spaces, so the fields are counted after its closing parenthesis.
 */
function ticksToSeconds(stat: string): number {
  const fields = stat.split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

await main();
