/**
 * Ingest benchmark: sends a realistic Segment event stream through the local HTTP endpoint and reports throughput,
 * latency, and the DynamoDB write units paid per event, against the floor of writing the same events bare.
 *
 *   npm run bench:ingest                    200 batches of 100 events
 *   BENCH_BATCHES=50 npm run bench:ingest   fewer
 *
 * Budget: at most 1.2 write units per event, amortized. Exits 1 when over it.
 */
import {
  BatchWriteItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { CapacityTally } from '../functions/adapters/dynamodb/capacity';
import { SeededRandom } from '../functions/core/random';
import { changesSortKey, eventSortKeyPrefix, memberSortKeyPrefix, profileSortKey } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { startDev } from '../functions/local/dev';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { scanAll } from '../test/support/scan';
import { bundleFunction } from './bundle';
import { bytes, fixed } from '../functions/analysis/format';

type Item = Record<string, AttributeValue>;

const batches = Number(process.env['BENCH_BATCHES'] ?? 200);
if (!Number.isInteger(batches) || batches < 1) throw new Error(`BENCH_BATCHES must be a positive integer, got ${process.env['BENCH_BATCHES']}`);
const eventsPerBatch = 100;
const maxEventBytes = 1024;
const userCount = 200;
const accountCount = 20;
/** A backend's SDK flushes what several users just did, mostly within one or a few accounts. */
const usersPerBatch = 8;
const accountsPerBatch = 3;
const concurrency = 4;
const budgetUnitsPerEvent = 1.2;

// ---- the event stream ----

const featureEvents = ['Dashboard Created', 'Report Exported', 'Query Run', 'Alert Configured', 'Teammate Invited', 'Integration Connected', 'Chart Shared', 'API Key Created'];
const pages = ['Pricing', 'Billing', 'Settings', 'Docs', 'Dashboard', 'Integrations'];
const plans = ['free', 'trial', 'team', 'business'];

function makeStream(seed: number): { bodies: string[]; eventBytes: number[] } {
  const rng = new SeededRandom(seed);
  const userAccount = (user: number) => user % accountCount;
  const start = Date.now() - 3 * 86_400_000;
  const bodies: string[] = [];
  const eventBytes: number[] = [];
  for (let b = 0; b < batches; b++) {
    const accounts = Array.from({ length: accountsPerBatch }, () => rng.int(0, accountCount - 1));
    // Users of the chosen accounts: user u belongs to account u % accountCount.
    const users = Array.from({ length: usersPerBatch }, () => rng.pick(accounts) + accountCount * rng.int(0, userCount / accountCount - 1));
    const batch = Array.from({ length: eventsPerBatch }, (_, i) => {
      const user = rng.pick(users);
      const userId = `user-${String(user).padStart(4, '0')}`;
      const groupId = `account-${String(userAccount(user)).padStart(3, '0')}`;
      const common = {
        messageId: `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`,
        userId,
        // Spread over three days and ordered within the batch, as an SDK queue would send them.
        timestamp: new Date(start + ((b * eventsPerBatch + i) / (batches * eventsPerBatch)) * 3 * 86_400_000).toISOString(),
        context: {
          library: { name: 'analytics-node-next', version: '3.1.0' },
          groupId,
          ip: `10.0.${rng.int(0, 255)}.${rng.int(0, 255)}`,
          locale: 'en-US',
          timezone: 'Europe/Berlin',
          userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
        },
      };
      const kind = rng.next();
      if (kind < 0.05) {
        return { ...common, type: 'identify', traits: { email: `${userId}@example.com`, name: `User ${user}`, plan: rng.pick(plans), seats: 1 + rng.int(0, 49) } };
      }
      if (kind < 0.1) {
        return { ...common, type: 'group', groupId, traits: { name: `Account ${userAccount(user)}`, plan: rng.pick(plans), employees: 10 + rng.int(0, 4999) } };
      }
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
      const bytes = Buffer.byteLength(JSON.stringify(event));
      if (bytes > maxEventBytes) throw new Error(`the stream generator made a ${bytes}-byte event; events must stay under ${maxEventBytes} bytes`);
      eventBytes.push(bytes);
    }
    bodies.push(JSON.stringify({ batch, sentAt: new Date().toISOString() }));
  }
  return { bodies, eventBytes };
}

// ---- write units, from item sizes ----

/**
 * An attribute value's size by DynamoDB's rules: strings in UTF-8 bytes, numbers 1 byte per 2 significant digits
 * plus 1, booleans 1. Only the types the store writes are sized.
 */
function attributeValueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
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

// ---- report ----

async function main() {
  const { bodies, eventBytes } = makeStream(20240501);
  const totalEvents = batches * eventsPerBatch;
  const dynamoDb = await startDynamoDbLocal();
  const dev = await startDev({ port: 0, endpoint: dynamoDb.endpoint, tableName: 'bench-ingest' });
  const floorClient = createDynamoDbClient(dynamoDb.endpoint);
  try {
    const bySize = countWriteUnitsBySize(dev.client);
    const authorization = `Basic ${Buffer.from(`${dev.writeKey}:`).toString('base64')}`;
    const latencies: number[] = [];
    const started = performance.now();
    await pool(bodies, concurrency, async (body) => {
      const sent = performance.now();
      const response = await fetch(`${dev.url}/v1/batch`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body });
      const answer = await response.text();
      latencies.push(performance.now() - sent);
      if (response.status !== 200 || answer !== '{"success":true}') throw new Error(`the ingest answered ${response.status} ${answer.slice(0, 300)}`);
    });
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);

    const stored = await scanEvents(dev.client, dev.tableName);
    if (stored.length !== totalEvents) throw new Error(`expected ${totalEvents} stored events, found ${stored.length}`);
    const floorTable = 'bench-floor';
    await ensureTable(floorClient, floorTable);
    const floor = await writeBare(floorClient, floorTable, stored);

    const reported = dev.events.capacity.writeUnits > 0;
    const method = reported
      ? 'reported by DynamoDB Local (ReturnConsumedCapacity TOTAL, GSI writes included)'
      : 'DynamoDB Local reported no consumed capacity: computed from item sizes, ceil(size / 1 KB) per item and GSI entry written';
    const runtimeUnits = (reported ? dev.events.capacity.writeUnits : bySize.units) / totalEvents;
    const floorUnits = (floor.reported > 0 ? floor.reported : floor.bySize) / totalEvents;
    const pass = runtimeUnits <= budgetUnitsPerEvent;
    const bundle = await bundleSize();
    const averageBytes = eventBytes.reduce((a, b) => a + b, 0) / eventBytes.length;

    const lines = [
      'pql-radar ingest benchmark',
      `stream   ${batches} batches x ${eventsPerBatch} events = ${totalEvents} events; ${userCount} users in ${accountCount} accounts, ${usersPerBatch} users from ${accountsPerBatch} accounts per batch; 80% track, 10% page, 5% identify, 5% group`,
      `events   ${Math.round(averageBytes)} B average, ${Math.max(...eventBytes)} B largest; ${concurrency} HTTP requests in flight (floor: ${concurrency} BatchWriteItem calls)`,
      '',
      '                        events/s   p50 ms   p99 ms   WCU/event   WCU/event by size',
      `runtime (HTTP ingest)  ${fixed(totalEvents / seconds, 0, 8)} ${fixed(percentile(latencies, 50), 1, 8)} ${fixed(percentile(latencies, 99), 1, 8)} ${fixed(runtimeUnits, 3, 11)} ${fixed(bySize.units / totalEvents, 3, 19)}`,
      `floor (BatchWriteItem) ${fixed(totalEvents / floor.seconds, 0, 8)} ${'-'.padStart(8)} ${'-'.padStart(8)} ${fixed(floorUnits, 3, 11)} ${fixed(floor.bySize / totalEvents, 3, 19)}`,
      `runtime / floor        ${fixed(floor.seconds / seconds, 2, 8)} ${''.padStart(17)} ${fixed(runtimeUnits / floorUnits, 2, 11)}`,
      '',
      `write units: ${method}`,
      `write units per event by item, from sizes: ${itemKinds.map((kind) => `${kind} ${((bySize.byKind.get(kind) ?? 0) / totalEvents).toFixed(3)}`).join(', ')}`,
      `budget: <= ${budgetUnitsPerEvent.toFixed(2)} WCU/event amortized: ${pass ? 'PASS' : 'FAIL'} (${runtimeUnits.toFixed(3)})`,
      `ingest bundle (esbuild, minified ESM, node22, SDK included): ${bytes(bundle.bytes)}, gzip ${bytes(bundle.gzipBytes)}`,
    ];
    console.log(lines.join('\n'));
    if (!pass) process.exitCode = 1;
  } finally {
    floorClient.destroy();
    await dev.stop();
    await dynamoDb.stop();
  }
}

await main();
