/**
 * Ingest benchmark: sends realistic Segment event streams through the local HTTP endpoint and reports throughput,
 * latency, and the DynamoDB write units paid per event, against the floor of writing the same events bare. Three
 * mixes, as the three kinds of Segment SDK send them (bench/ingest-streams.ts makes them), each against its own
 * DynamoDB Local so its units are its own:
 *
 *   server   analytics-node: batches of 100 events of 8 users from 3 accounts, JSON to /v1/batch
 *   browser  analytics.js (analytics-next) defaults: one event of one visitor per request, text/plain to /v1/t, /v1/p,
 *            /v1/i, /v1/g
 *   mobile   analytics-kotlin: batches of 20 events of one user, gzipped text/plain to /v1/b
 *
 *   npm run bench:ingest                    20,000 events per mix (the server mix: 200 batches of 100)
 *   BENCH_EVENTS=2000 npm run bench:ingest  fewer; BENCH_EVENTS replaces BENCH_BATCHES (server batches = events / 100)
 *
 * Budget: the server mix at most 0.4 write units per event, amortized; exits 1 when over it. Browser and mobile have none yet.
 * Change capture adds no write: the evaluator evaluates the table stream's batches as it reads them.
 */
import {
  BatchWriteItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { CapacityTally } from '../functions/adapters/dynamodb/capacity';
import { eventMessagesOf } from '../functions/adapters/dynamodb/event-body';
import { changeListPartitionKey, eventSortKeyPrefix, memberSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { startDev, type DevRuntime } from '../functions/local/dev';
import { databaseClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { ingestEntries } from '../lib/ingest-api';
import { lambdaBundling } from '../lib/lambda-bundling';
import { scanAll } from '../test/support/scan';
import { bundleFunction } from './bundle';
import { bytes, count, fixed, percentCoarse } from '../functions/analysis/format';
import { itemSize, jsonBytes, mobile, pool, sendCalls, server, browser, type Mix, type Stream } from './ingest-streams';
import { positiveInt } from './knobs';

type Item = Record<string, AttributeValue>;

if (process.env['BENCH_BATCHES'] !== undefined) throw new Error('BENCH_BATCHES is replaced by BENCH_EVENTS, the events of each mix (100 per server batch)');
const eventsPerMix = positiveInt('BENCH_EVENTS', 20_000);
const concurrency = 4;
/** Every stream spreads its events over the last three days, ordered in time as the SDKs would send them. */
const windowMs = 3 * 86_400_000;
const windowStart = Date.now() - windowMs;

// ---- write units, from item sizes ----

const itemKinds = ['events', 'members', 'profiles', 'change lists', 'dirty index', 'other'] as const;

/** Which of the items in table-definition.ts a key names, for the breakdown of the write units. */
function itemKind(pk: string, sk: string): (typeof itemKinds)[number] {
  if (pk.startsWith(changeListPartitionKey(''))) return 'change lists';
  if (sk.startsWith(eventSortKeyPrefix)) return 'events';
  if (sk.startsWith(memberSortKeyPrefix)) return 'members';
  if (sk === profileSortKey) return 'profiles';
  return 'other';
}

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
    add(itemKind(item[partitionKey]?.S ?? '', item[sortKey]?.S ?? ''), writeUnits(Math.max(size, before?.size ?? 0)));
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

/** Ingest's entry without a buffer, as these mixes run it (bench:bundles measures each entry). */
async function bundleSize(): Promise<{ bytes: number; gzipBytes: number }> {
  return bundleFunction(ingestEntries.direct.entry, { sdk: 'bundled' });
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
  /** The size of each event item stored (a chunk of a request's events of one entity and day). */
  stored: number[];
}

/** Sends a mix through its own local runtime and DynamoDB Local, then writes the events it stored bare beside it. */
async function measureMix(mix: Mix): Promise<MixResult> {
  // The floor's table in a database of its own: in the runtime's, its every call would cost DynamoDB Local more for the
  // stream records the mix wrote before it (startDynamoDbLocal's sharedDb), and the floor would look slower than it is.
  const dynamoDb = await startDynamoDbLocal({ sharedDb: false });
  const floorClient = databaseClient(dynamoDb.endpoint, 'floor');
  let dev: DevRuntime | undefined;
  try {
    dev = await startDev({ port: 0, endpoint: dynamoDb.endpoint, tableName: `bench-ingest-${mix.name}` });
    const { url } = dev;
    const bySize = countWriteUnitsBySize(dev.client);
    const stream = mix.stream(dev.writeKey, { events: eventsPerMix, start: windowStart, windowMs });
    const started = performance.now();
    const latencies = await sendCalls(url, stream.calls, concurrency, mix.name);
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);

    const stored = await scanEvents(dev.client, dev.tableName);
    const storedMessages = stored.reduce((sum, item) => sum + eventMessagesOf(item).length, 0);
    if (storedMessages !== stream.messages.length) throw new Error(`${mix.name}: expected ${stream.messages.length} stored events, found ${storedMessages}`);
    const floorTable = 'bench-floor';
    await ensureTable(floorClient, floorTable);
    const floor = await writeBare(floorClient, floorTable, stored);
    return { mix, stream, seconds, latencies, reported: dev.events.capacity.writeUnits, bySize, floor, stored: stored.map(itemSize) };
  } finally {
    floorClient.destroy();
    await dev?.stop();
    await dynamoDb.stop();
  }
}

// ---- report ----

/** A mix's lines of the report, and whether it is within its budget (always, without one). */
function reportMix({ mix, stream, seconds, latencies, reported, bySize, floor, stored }: MixResult): { lines: string[]; pass: boolean } {
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
  const pass = budget === undefined || runtimeUnits <= budget;
  const lines = [
    `${mix.name}: ${mix.sdk}`,
    `stream   ${count(stream.calls.length)} requests, ${count(events)} events (${(events / stream.calls.length).toFixed(1)} per request, ${bytes(average(requestBytes))} per request on the wire); ${stream.senders}`,
    `events   ${typeShares}; ${bytes(average(eventBytes))} average, ${bytes(Math.max(...eventBytes))} largest`,
    `items    ${count(stored.length)} event items, ${(stored.length / events).toFixed(3)} per event; ${bytes(average(stored))} average, ${bytes(Math.max(...stored))} largest`,
    '',
    '                        events/s   p50 ms   p99 ms   WCU/event   WCU/event by size',
    `runtime (HTTP ingest)  ${fixed(events / seconds, 0, 8)} ${fixed(percentile(latencies, 50), 1, 8)} ${fixed(percentile(latencies, 99), 1, 8)} ${fixed(runtimeUnits, 3, 11)} ${fixed(bySize.units / events, 3, 19)}`,
    `floor (BatchWriteItem) ${fixed(events / floor.seconds, 0, 8)} ${'-'.padStart(8)} ${'-'.padStart(8)} ${fixed(floorUnits, 3, 11)} ${fixed(floor.bySize / events, 3, 19)}`,
    `runtime / floor        ${fixed(floor.seconds / seconds, 2, 8)} ${''.padStart(17)} ${fixed(runtimeUnits / floorUnits, 2, 11)}`,
    '',
    `write units: ${method}`,
    `write units per event by item, from sizes: ${itemKinds.map((kind) => `${kind} ${((bySize.byKind.get(kind) ?? 0) / events).toFixed(3)}`).join(', ')}`,
    budget === undefined
      ? `budget: no budget yet (${runtimeUnits.toFixed(3)} WCU/event)`
      : `budget: <= ${budget.toFixed(2)} WCU/event amortized: ${pass ? 'PASS' : 'FAIL'} (${runtimeUnits.toFixed(3)})`,
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
  console.log(`\ningest bundle without a buffer (esbuild, minified ESM, ${lambdaBundling.target}, SDK included): ${bytes(bundle.bytes)}, gzip ${bytes(bundle.gzipBytes)}`);
  if (!pass) process.exitCode = 1;
}

await main();
