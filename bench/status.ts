/**
 * Lead status benchmark (issue 12, item 5, "the product asks too"): what the product's reads of GET /v1/leads/... cost
 * per call, with the handler wired as deployed (functions/lead-status/handler.ts: keys cached 60 s, statuses 30 s) in
 * one warm function, against DynamoDB Local holding leads the evaluator made.
 *
 * The sample product (pql-radar sample: BENCH_USERS users over 30 days) is sent through `npm start`'s endpoint and
 * evaluated once with examples/activation.rules.yaml (whose leads are users). Then BENCH_CALLS page loads ask for their
 * user's status, on a simulated clock: sessions start BENCH_SESSIONS_PER_MINUTE (6) a minute, each of a user drawn with
 * a Zipf popularity (exponent BENCH_ZIPF, 1: the most active user comes back far more often than the 500th), loading
 * on average BENCH_PAGES_PER_SESSION (8) pages BENCH_SECONDS_BETWEEN_LOADS (5) seconds apart (exponential gaps); one
 * session in twenty is of a user the product has but pql-radar has not evaluated yet (404).
 *
 * Printed: read units per call (the STATE reads as DynamoDB Local reports them, ReturnConsumedCapacity; key lookups
 * counted, at 1 unit each, strongly consistent and under 4 KB), the caches' hit rates, the handler's time per call and
 * dollars per million calls at us-east-1 list prices: HTTP API $1.00/M, Lambda arm64 at the memory lib/lead-status-api.ts
 * gives it (billed per ms, each call at least 1 ms) + $0.20/M requests, DynamoDB $0.125/M read units. Durations are
 * measured against DynamoDB Local, which answers slower than DynamoDB. One warm function: deployed, each concurrent
 * instance has its own cache, so a busier product reads somewhat more than this. No budget is enforced; exits 0.
 *
 *   npm run bench:status
 *   BENCH_CALLS=2000 BENCH_USERS=100 npm run bench:status
 */
import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { CachedLeadStatusReader, DynamoDbLeadStatusReader } from '../functions/adapters/dynamodb/lead-status-reader';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../functions/adapters/dynamodb/write-key-store';
import { generateSample } from '../functions/cli/sample-stream';
import type { WriteKeyStore } from '../functions/core/ports';
import { SeededRandom } from '../functions/core/random';
import { loadRules } from '../functions/core/rules/load';
import { createLeadStatusHandler } from '../functions/lead-status/http';
import { startDev } from '../functions/local/dev';
import { leadStatusCacheSeconds, leadStatusMemoryMb } from '../lib/lead-status-api';
import { positiveInt, positiveNumber } from './knobs';
import { listPrices } from '../lib/list-prices';

const calls = positiveInt('BENCH_CALLS', 10_000);
const users = positiveInt('BENCH_USERS', 500);
const sessionsPerMinute = positiveNumber('BENCH_SESSIONS_PER_MINUTE', 6);
const pagesPerSession = positiveNumber('BENCH_PAGES_PER_SESSION', 8);
const secondsBetweenLoads = positiveNumber('BENCH_SECONDS_BETWEEN_LOADS', 5);
const zipfExponent = positiveNumber('BENCH_ZIPF', 1);
/** The deployed key cache (functions/lead-status/config.ts KEY_CACHE_SECONDS). */
const keyCacheSeconds = 60;
const end = new Date();

const rules = loadRules(readFileSync(new URL('../examples/activation.rules.yaml', import.meta.url), 'utf8'), 'examples/activation.rules.yaml');
const dev = await startDev({ port: 0, tableName: 'pql-radar-status-bench', ruleset: rules, evaluateEveryMs: 0, leads: { publish: async () => ({ failed: [] }) } });
try {
  const sample = generateSample({ users, accounts: Math.max(1, Math.round(users / 5)), end });
  for (let start = 0; start < sample.messages.length; start += 100) {
    const response = await fetch(`${dev.url}/v1/batch`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ batch: sample.messages.slice(start, start + 100) }),
    });
    if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
  }
  const evaluated = await dev.evaluateOnce(end);
  const readKey = (await dev.keys.create(dev.workspace, { access: 'read' })).key;

  // The deployed wiring, on a simulated clock so that the caches' periods pass as they would between page loads.
  let clock = end.getTime();
  const now = () => clock;
  let keyLookups = 0;
  const keyTable = new DynamoDbWriteKeyStore(dev.client, dev.tableName);
  const countedKeys: WriteKeyStore = { find: (keyId) => (keyLookups++, keyTable.find(keyId)), allowedOrigins: () => keyTable.allowedOrigins() };
  const table = new DynamoDbLeadStatusReader(dev.client, dev.tableName);
  const leads = new CachedLeadStatusReader(table, leadStatusCacheSeconds * 1000, now);
  const handle = createLeadStatusHandler({ keys: new CachedWriteKeyStore(countedKeys, keyCacheSeconds * 1000, now), leads }, { maxAgeSeconds: leadStatusCacheSeconds });

  const random = new SeededRandom(12);
  // Popularity by rank, in an order unrelated to the sample's personas.
  const ranked = [...sample.users].sort(() => random.next() - 0.5);
  const weights = ranked.map((_, rank) => 1 / (rank + 1) ** zipfExponent);
  const totalWeight = weights.reduce((sum, weight) => sum + weight, 0);
  const pick = () => {
    let r = random.next() * totalWeight;
    for (let i = 0; i < ranked.length; i++) if ((r -= weights[i]!) < 0) return ranked[i]!;
    return ranked.at(-1)!;
  };

  // Page loads of sessions that overlap, in time order.
  const exponential = (mean: number) => -Math.log(1 - random.next()) * mean;
  const loads: { at: number; path: string }[] = [];
  for (let sessionStart = clock; loads.length < calls; sessionStart += exponential(60_000 / sessionsPerMinute)) {
    const user = pick();
    const id = random.chance(0.05) ? `${user.id}-not-evaluated` : user.id;
    let at = sessionStart;
    do {
      loads.push({ at: Math.round(at), path: `/v1/leads/user/${encodeURIComponent(id)}` });
      at += exponential(secondsBetweenLoads * 1000);
    } while (random.chance(1 - 1 / pagesPerSession));
  }
  loads.sort((a, b) => a.at - b.at);
  loads.length = calls;

  const statuses = new Map<string, number>();
  let billedMs = 0;
  let handlerMs = 0;
  for (const load of loads) {
    clock = load.at;
    const started = performance.now();
    const response = await handle(requestFor(load.path, readKey, clock));
    const ms = performance.now() - started;
    handlerMs += ms;
    billedMs += Math.max(1, Math.ceil(ms));
    const body = JSON.parse(response.body ?? '{}') as { tier?: string | null };
    const kind = response.statusCode === 200 ? (body.tier ? '200 lead' : '200 not a lead') : String(response.statusCode);
    statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
  }

  const stateUnits = table.capacity.readUnits;
  const keyUnits = keyLookups;
  const readUnitsPerCall = (stateUnits + keyUnits) / calls;
  const gbSeconds = (billedMs / 1000) * (leadStatusMemoryMb / 1024);
  const perMillion = (dollars: number) => (dollars / calls) * 1e6;
  const dynamoDollars = perMillion((stateUnits + keyUnits) * listPrices.readUnit);
  const lambdaDollars = perMillion(calls * listPrices.lambdaRequest + gbSeconds * listPrices.lambdaGbSecond);
  const httpDollars = perMillion(calls * listPrices.httpRequest);
  const reads = leads.cache.hits + leads.cache.misses;
  const simulatedHours = (loads.at(-1)!.at - loads[0]!.at) / 3_600_000;

  console.log('pql-radar lead status benchmark: GET /v1/leads/... as deployed (one warm function, simulated clock), DynamoDB Local');
  console.log(`sample: ${users} users, ${sample.accounts.length} accounts, ${sample.messages.length} messages; ${evaluated.evaluated} entities evaluated`);
  console.log(
    `calls: ${calls} over ${simulatedHours.toFixed(1)} simulated hours (${sessionsPerMinute} sessions a minute, ${pagesPerSession} pages ${secondsBetweenLoads} s apart on average, Zipf ${zipfExponent}); ` +
      [...statuses].map(([kind, count]) => `${kind}: ${count}`).join(', '),
  );
  console.log(`status cache (${leadStatusCacheSeconds} s): hit rate ${pct(leads.cache.hits / reads)} (${leads.cache.misses} reads of ${reads} lookups); key cache (${keyCacheSeconds} s): ${keyLookups} key reads`);
  console.log(
    `read units per call: ${readUnitsPerCall.toFixed(3)} (STATE ${(stateUnits / calls).toFixed(3)}: ${(stateUnits / Math.max(1, leads.cache.misses)).toFixed(2)} per GetItem; keys ${(keyUnits / calls).toFixed(4)})`,
  );
  console.log(`handler time: ${(handlerMs / calls).toFixed(2)} ms per call, ${(billedMs / calls).toFixed(2)} ms billed (at least 1 ms each), ${leadStatusMemoryMb} MB arm64`);
  console.log(`$ per million calls (us-east-1 list prices):`);
  console.log(`  HTTP API   ${dollars(httpDollars)}`);
  console.log(`  Lambda     ${dollars(lambdaDollars)}  ($0.20/M requests + ${((gbSeconds / calls) * 1e6).toFixed(0)} GB-s per million)`);
  console.log(`  DynamoDB   ${dollars(dynamoDollars)}`);
  console.log(`  total      ${dollars(httpDollars + lambdaDollars + dynamoDollars)}`);
} finally {
  await dev.stop();
}

function requestFor(path: string, key: string, at: number): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'GET /v1/leads/{type}/{id}',
    // API Gateway hands the function the path decoded.
    rawPath: decodeURIComponent(path),
    rawQueryString: '',
    headers: { authorization: `Bearer ${key}` },
    isBase64Encoded: false,
    requestContext: {
      accountId: 'bench',
      apiId: 'bench',
      domainName: 'bench',
      domainPrefix: 'bench',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId: String(at),
      routeKey: 'GET /v1/leads/{type}/{id}',
      stage: '$default',
      time: new Date(at).toISOString(),
      timeEpoch: at,
    },
  };
}

function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

function dollars(value: number): string {
  return `$${value.toFixed(3)}`;
}
