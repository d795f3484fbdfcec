/**
 * Cost benchmark (issue 11, "costs are measured, not guessed"): what a million events cost at us-east-1 list prices,
 * from the capacity DynamoDB Local reports (ReturnConsumedCapacity TOTAL, into the stores' CapacityTally) and from
 * measured durations, for three kinds of traffic (bench/ingest-streams.ts makes them):
 *
 *   server            analytics-node batches of 100 (bench:ingest's server stream)
 *   browser+backend   BENCH_BROWSER_SHARE (30%) of the events from analytics.js, one per request, the rest from
 *                     analytics-node batches of 100 in the product's backend, for the same users
 *   browser           analytics.js, one request per call (bench:ingest's browser stream)
 *
 * each as deployed by default: a request of one message goes through the Firehose ingest buffer
 * (lib/ingest-firehose-buffer.ts): ingest puts it on a delivery stream (a local endpoint, the real Firehose client);
 * every buffering interval (5 minutes) the records so far become one object in (local) S3, and the loader stores it
 * from S3's notification, as functions/ingest-buffer-loader/handler.ts wires it; a batch is written at once. Then:
 *
 *   browser+backend-unbuffered, browser-unbuffered
 *                     without the buffer (ingestBuffer: false): ingest writes every request to the table
 *   browser-kinesis   through the Kinesis variant (lib/ingest-buffer.ts): ingest puts each request of one message on a
 *                     stream (a local endpoint here), and the consumer stores each batching window's records (5
 *                     minutes) at once
 *
 * Each mix has a DynamoDB Local of its own and one user per 100 events, ten to an account (bench:ingest's 200
 * users in 20 accounts at the default 20,000 events), so that a smaller BENCH_EVENTS keeps the events per user and
 * day. Its events, spread over the last three whole UTC days, go through the ingest handler wired as deployed
 * (functions/ingest/lambda-handler.ts: cached write keys, default retention) behind the local HTTP server, 4 requests in
 * flight, and the handler's time per request is measured. The evaluator use case (runEvaluator with the DynamoDB
 * evaluation store, all 4 shards, bench:evaluate's 20-signal rules) runs on a simulated clock through those days, every
 * N minutes: the calls sent by a tick go in before the run at that tick. N is chosen from the stream: the interval whose
 * evaluations per active user-day (a user with events that day) come closest to BENCH_EVALUATIONS_PER_DAY (5). A tick
 * with nothing to do (no new events, no sweep due, nothing left by the last run) is skipped, but every 20th one is run
 * to measure a run that finds nothing among the working ones (and nine more after the stream).
 *
 * What the events cost the evaluator is what its runs did beyond as many runs that find nothing, which the schedule
 * (every shard every minute) pays whatever the traffic: that fixed cost is printed apart, and the evaluator's Lambda
 * invocations are in it. A run's time beyond is taken within the run itself: its time less that of its own calls that
 * every run makes (candidates, outbox, ruleset progress, lag) and an empty run's overhead besides them (about 1.5 ms),
 * since those calls' time against DynamoDB Local moves from run to run far more than a run's work. The work after
 * changes is then scaled to exactly 5 evaluations per active user-day (the cost per evaluation as measured): a stream
 * whose users send fewer separate requests a day (the server stream's send about 2.7) cannot be evaluated more often.
 * Sweeps (a lead with no events for 6 hours is evaluated again) count as measured. The table stream's invocations of
 * the evaluator are likewise at most one per stream shard per minute (a fixed cost, printed with the schedule's) plus
 * one per 1,000 records: the events' share is the latter, where the simulation's thin traffic (a few events a minute)
 * makes nearly every minute an invocation of its own.
 *
 * Priced per component: ingest DynamoDB (WRU $0.625/M, RRU $0.125/M), evaluation DynamoDB, HTTP API ($1.00/M
 * requests), Lambda (arm64 $0.0000133334/GB-s, billed per ms, and $0.20/M requests; memory read from lib/ingest-api.ts
 * and lib/evaluator.ts; durations measured against DynamoDB Local, which answers slower than DynamoDB), EventBridge
 * ($1.00/M lead events), the buffers (Kinesis $0.014/M PUT units of 25 KB; Firehose $0.029/GB with each record rounded
 * up to 5 KB, S3 $0.005/1,000 PUT and $0.0004/1,000 GET, SQS $0.40/M requests) and, apart, storage (DynamoDB $0.25 + PITR $0.20 per GB-month, from the stored items' sizes
 * plus DynamoDB's 100 bytes per item and per index entry) and CloudWatch Logs ($0.50/GB ingested: each request's access
 * log and metrics lines, measured as requestLogLines says). The totals, storage and logs left out, are judged against the
 * issue's targets: <= $0.60 server, <= $1.00 browser+backend, <= $1.00 for browser traffic besides the HTTP API's own
 * $1.00 per million requests. Each total is also shown without the HTTP API: what the same traffic costs through the
 * ingest function's URL (ingest.functionUrl), which charges nothing per request. The bench exits 0 whatever the verdict.
 *
 * Then what one evaluation costs as a day goes on and as history grows, on bench:evaluate's users, history and
 * harness (evaluate-history.ts): after the first evaluation of the stored history, every user gets a new batch of the
 * day's events before each of BENCH_RUNS_PER_DAY (20) runs; RCU/WCU per evaluation at the 1st, 2nd, 5th, 10th and
 * 20th run of the day, with BENCH_DAYS (30) and BENCH_DAYS x BENCH_SCALE (300) days of stored history.
 *
 *   npm run bench:cost                      20,000 events per mix (~13 min on 2 cores)
 *   BENCH_EVENTS=5000 npm run bench:cost    5,000 per mix on 50 users (~6 min): the same figures within a few percent
 *
 * Knobs: BENCH_EVENTS (20,000 per mix), BENCH_MIXES (all, or some by name: server,browser+backend,browser,
 * browser+backend-unbuffered,browser-unbuffered,browser-kinesis),
 * BENCH_BROWSER_SHARE (0.3), BENCH_EVALUATIONS_PER_DAY (5), BENCH_HISTORY_USERS (40, ten to an account), BENCH_DAYS (30),
 * BENCH_SCALE (10), BENCH_RUNS_PER_DAY (20).
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { changeMarks, reachesEvaluator } from '../functions/adapters/dynamodb/change-capture';
import { changeBatchSize, defaultChangeBatchingSeconds } from '../lib/change-capture';
import { bufferBatchSize, defaultBufferBatchingSeconds } from '../lib/ingest-buffer';
import { bufferLoaderMemoryMb, bufferObjectMegabytes, bufferObjectsPrefix, defaultFirehoseBufferSeconds } from '../lib/ingest-firehose-buffer';
import { DynamoDbEvaluationStore } from '../functions/adapters/dynamodb/evaluation-store';
import { DynamoDbEventStore } from '../functions/adapters/dynamodb/event-store';
import {
  changeListPartitionKey,
  daySortKeyPrefix,
  eventSortKeyPrefix,
  memberSortKeyPrefix,
  profileSortKey,
  receiptSortKey,
  stateSortKey,
} from '../functions/adapters/dynamodb/item-keys';
import { recordShardCount } from '../functions/adapters/dynamodb/shard-count';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../functions/adapters/dynamodb/write-key-store';
import { FirehoseEventBuffer } from '../functions/adapters/firehose/event-buffer';
import { KinesisEventBuffer } from '../functions/adapters/kinesis/event-buffer';
import { bufferObjectsOf, S3BufferObjects } from '../functions/adapters/s3/buffer-objects';
import { bufferedRequestOf, loadBufferObject, storeBufferedRequests } from '../functions/core/ingest-buffer';
import { allShards, evaluateChanges, runEvaluator } from '../functions/core/evaluate-leads';
import type { EventStore, LeadPublisher } from '../functions/core/ports';
import { loadRules, type Ruleset } from '../functions/core/rules/load';
import { createIngestHandler } from '../functions/ingest/http';
import { countError, countResponse } from '../functions/ingest/request-metrics';
import { LocalChangeStream } from '../functions/local/change-stream';
import { longLivedClientOptions } from '../functions/shared/sdk-clients';
import { createDynamoDbClient, databaseClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { serveHttpApi } from '../functions/local/http-server';
import { defaultEvaluatorMemoryMb, defaultRetentionDays, metricNamespace, serviceName } from '../functions/shared/settings';
import { bytes, count, fixed } from '../functions/analysis/format';
import { median } from '../functions/analysis/stats';
import { firehoseObjectKey, startFirehoseEndpoint } from '../test/support/firehose-endpoint';
import { startKinesisEndpoint } from '../test/support/kinesis-endpoint';
import { closeLocally } from '../test/support/local-server';
import { startS3Endpoint } from '../test/support/s3-endpoint';
import { scanAll } from '../test/support/scan';
import {
  AttributingStore,
  billMissingItems,
  dirtyShards,
  now as historyNow,
  prepareHistory,
  rulesYaml,
  storeAndEvaluate,
  todaysMessages,
  type EvaluationRound,
  type HistoryTable,
  type Share,
} from './evaluate-history';
import { browser, browserAndBackend, itemSize, sendCalls, server, type Call, type Mix, type Stream } from './ingest-streams';
import { positiveInt, positiveNumber } from './knobs';
import { accessLogFormat, ingestRoute } from '../lib/ingest-api';
import { listPrices } from '../lib/list-prices';

const eventsPerMix = positiveInt('BENCH_EVENTS', 20_000);
const browserShare = Number(process.env['BENCH_BROWSER_SHARE'] ?? 0.3);
/** BENCH_MIXES=server,browser: only those mixes (by name), for a quicker look at one. */
const onlyMixes = process.env['BENCH_MIXES']?.split(',');
const targetEvaluations = positiveNumber('BENCH_EVALUATIONS_PER_DAY', 5);
const historyUsers = positiveInt('BENCH_HISTORY_USERS', 40);
const historyAccounts = Math.max(1, Math.round(historyUsers / 10));
const historyDays = positiveInt('BENCH_DAYS', 30);
const historyScale = positiveInt('BENCH_SCALE', 10);
const runsPerDay = positiveInt('BENCH_RUNS_PER_DAY', 20);
/** One user per 100 events (bench:ingest's 200 at 20,000), ten to an account: fewer events keep the events per user and day. */
const streamUsers = Math.max(10, Math.round(eventsPerMix / 1000) * 10);
const streamAccounts = streamUsers / 10;
const concurrency = 4;
const dayMs = 86_400_000;
const windowDays = 3;
/** The three whole UTC days before today. */
const windowStart = Math.floor(Date.now() / dayMs) * dayMs - windowDays * dayMs;
const windowEnd = windowStart + windowDays * dayMs;
const workspace = 'bench';
/** Evaluator intervals to choose from, in minutes: the deployed schedule's 1 up to once a day. */
const intervals = [1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 240, 288, 360, 480, 720, 1440];
/** Batching windows (or scheduled runs) of this length in a 30-day month. */
const windowsPerMonth = (windowMs: number) => (30 * dayMs) / windowMs;
/** Evaluator runs a month per shard, deployed: one a minute. */
const runsPerMonth = windowsPerMonth(60_000);
/** The months of storage a million events pay: the default retention, in 30-day months. */
const keptMonths = defaultRetentionDays / 30;

const price = listPrices;
const gib = 2 ** 30;

/** The memory a construct in lib/ gives its function, read from its source so that a change there shows here. */
function configuredMemoryMb(file: string): number {
  const source = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
  const sizes = [...source.matchAll(/memorySize:\s*(\d+)/g)];
  if (sizes.length !== 1) throw new Error(`expected one memorySize in ${file}, found ${sizes.length}`);
  return Number(sizes[0]![1]);
}
const ingestMemoryMb = configuredMemoryMb('lib/ingest-api.ts');
const evaluatorMemoryMb = defaultEvaluatorMemoryMb;
const bufferConsumerMemoryMb = configuredMemoryMb('lib/ingest-buffer.ts');
/** Kinesis bills a record's data and partition key per started 25 KB. */
const kinesisPutUnitBytes = 25 * 1024;
/** The deployed change capture's batching window. */
const captureWindowMs = defaultChangeBatchingSeconds * 1000;
/** The ingest buffer's batching window, deployed by default: the Kinesis variant's, and the Firehose one's buffering interval. */
const bufferWindowMs = { kinesis: defaultBufferBatchingSeconds * 1000, firehose: defaultFirehoseBufferSeconds * 1000 };
/** Firehose bills the data ingested with each record rounded up to 5 KB. */
const firehoseRecordUnitBytes = 5 * 1024;
/**
 * SQS requests per object of the Firehose variant: S3 sends its notification (SendMessage), and the loader's event
 * source receives and deletes it (a message each at this traffic: an object every buffering interval at most).
 */
const sqsRequestsPerObject = 3;
/**
 * Lambda's event source polls an idle standard queue with 5 long polls at a time (ReceiveMessage waiting 20 s each):
 * the Firehose variant's one fixed cost.
 */
const idlePollers = 5;
const longPollSeconds = 20;
/** The delivery stream's buffering size, which fills an object before the interval ends at high traffic. */
const firehoseObjectBytes = bufferObjectMegabytes * 2 ** 20;
/** What an object costs besides the loader's time: S3's PUT (Firehose's) and GET (the loader's), SQS, the loader's invocation (batches of 1). */
const perObjectDollars = price.s3Put + price.s3Get + sqsRequestsPerObject * price.sqsRequest + price.lambdaRequest;

// ---- the evaluator's interval ----

/** The users (userId) each call carries events of. */
function usersOfCall(call: Call): string[] {
  if (typeof call.body !== 'string') throw new Error('bench:cost reads uncompressed JSON bodies only');
  const body = JSON.parse(call.body) as { batch?: { userId?: string }[]; userId?: string };
  const messages = body.batch ?? [body];
  return [...new Set(messages.map((message) => message.userId).filter((id): id is string => id !== undefined))];
}

/**
 * How many evaluations per active user-day an evaluator running every `minutes` would make of the stream: the
 * intervals in which a user sent something, over the days on which it did.
 */
function evaluationsPerUserDay(stream: Stream, minutes: number): number {
  const slots = new Set<string>();
  const days = new Set<string>();
  for (const call of stream.calls) {
    for (const user of usersOfCall(call)) {
      slots.add(`${user}\n${Math.floor((call.at - windowStart) / (minutes * 60_000))}`);
      days.add(`${user}\n${Math.floor(call.at / dayMs)}`);
    }
  }
  return slots.size / days.size;
}

/** The interval whose evaluations per active user-day come closest to the target; the longest of those as close. */
function chooseInterval(stream: Stream): { minutes: number; predicted: number } {
  const candidates = intervals.map((minutes) => ({ minutes, predicted: evaluationsPerUserDay(stream, minutes) }));
  const best = Math.min(...candidates.map(({ predicted }) => Math.abs(predicted - targetEvaluations)));
  return candidates.filter(({ predicted }) => Math.abs(predicted - targetEvaluations) <= best + 0.01).at(-1)!;
}

// ---- one mix ----

/** What the evaluator did over some runs: units, time and lead events, by what they were for. */
interface EvaluatorWork {
  runs: number;
  ms: number;
  /** Of `ms`, the time of the calls every run makes whatever it finds (AttributingStore's everyRunCallsMs). */
  everyRunMs: number;
  read: number;
  write: number;
  /** The runs' own calls: candidates, outbox, ruleset progress, lag. */
  run: { read: number; write: number };
  /** Entities' evaluations (from reading their rows to saving them) after a change (or a rules change), and sweeps of idle leads. */
  changed: Share;
  sweep: Share;
  /** Users among them. */
  usersChanged: number;
  usersSwept: number;
  published: number;
}

const noWork = (): EvaluatorWork => ({
  runs: 0,
  ms: 0,
  everyRunMs: 0,
  read: 0,
  write: 0,
  run: { read: 0, write: 0 },
  changed: { read: 0, write: 0, evaluated: 0 },
  sweep: { read: 0, write: 0, evaluated: 0 },
  usersChanged: 0,
  usersSwept: 0,
  published: 0,
});

/** `into` plus `sign` times `work`, field by field. */
function addWork(into: EvaluatorWork, work: EvaluatorWork, sign = 1): EvaluatorWork {
  const share = (a: Share, b: Share) => ({ read: a.read + sign * b.read, write: a.write + sign * b.write, evaluated: a.evaluated + sign * b.evaluated });
  return {
    runs: into.runs + sign * work.runs,
    ms: into.ms + sign * work.ms,
    everyRunMs: into.everyRunMs + sign * work.everyRunMs,
    read: into.read + sign * work.read,
    write: into.write + sign * work.write,
    run: { read: into.run.read + sign * work.run.read, write: into.run.write + sign * work.run.write },
    changed: share(into.changed, work.changed),
    sweep: share(into.sweep, work.sweep),
    usersChanged: into.usersChanged + sign * work.usersChanged,
    usersSwept: into.usersSwept + sign * work.usersSwept,
    published: into.published + sign * work.published,
  };
}

interface StoredKind {
  items: number;
  bytes: number;
}

interface MixResult {
  mix: Mix;
  stream: Stream;
  interval: { minutes: number; predicted: number };
  activeUserDays: number;
  ingest: { write: number; read: number; ms: number[] };
  /** The stream's invocations of the evaluator (one per minute with events), and the records they carried. */
  capture: { batches: number; records: number };
  /** With an ingest buffer: the records put and what they are billed by, and the consumer's (loader's) time per batch (object). */
  buffer?: BufferStats;
  /** The runs that had work: new events came, something was evaluated or written. */
  work: EvaluatorWork;
  /** Ticks with nothing to do (skipped, or run and found empty). */
  idleTicks: number;
  /** The median of the runs that find nothing (every 20th idle tick, and nine after the stream): what every shard pays every minute, deployed, whatever the traffic. */
  emptyRun: EvaluatorWork;
  /**
   * The median time an empty run took beyond its calls that every run makes: the handler's own overhead. Those calls'
   * time is DynamoDB Local's and moves a lot (the empty runs of one mix took 53 to 460 ms), so what a working run did
   * is taken as its time beyond its own such calls, less this.
   */
  emptyRunOverheadMs: number;
  storage: Map<string, StoredKind>;
  /** What the requests sent CloudWatch Logs, CloudWatch's 26 bytes per log event included (requestLogLines). */
  logs: { accessBytes: number; metricsBytes: number };
  /** The evaluator store's units by call, over the whole simulation (working and empty runs). */
  byCall: Map<string, { read: number; write: number; calls: number }>;
  /** Wall time of the simulation. */
  seconds: number;
  /** BatchGetItem keys with no item, billed as DynamoDB bills them (billMissingItems): DynamoDB Local reports 0. */
  missingReads: number;
}

/** Which item a stored item is, for the storage breakdown (table-definition.ts lists them). */
function storedKind(item: Record<string, AttributeValue>): string {
  const pk = item['pk']?.S ?? '';
  const sk = item['sk']?.S ?? '';
  if (pk.startsWith(changeListPartitionKey(''))) return 'change lists';
  if (sk.startsWith(eventSortKeyPrefix)) return 'events';
  if (sk.startsWith(daySortKeyPrefix)) return 'day rollups';
  if (sk === stateSortKey) return 'states';
  if (sk === profileSortKey) return 'profiles';
  if (sk.startsWith(memberSortKeyPrefix)) return 'members';
  if (sk === receiptSortKey) return 'receipts';
  if (pk.startsWith('OUTBOX#')) return 'outbox';
  return 'other';
}

/** DynamoDB bills storage for each item's size plus 100 bytes, and for each index entry (its keys here) plus 100. */
async function storedBytes(client: DynamoDBClient, tableName: string): Promise<Map<string, StoredKind>> {
  const { partitionKey, sortKey, dirtyIndex } = tableDefinition;
  const kinds = new Map<string, StoredKind>();
  const add = (kind: string, size: number) => {
    const entry = kinds.get(kind) ?? { items: 0, bytes: 0 };
    entry.items++;
    entry.bytes += size + 100;
    kinds.set(kind, entry);
  };
  for (const item of await scanAll(client, tableName)) {
    add(storedKind(item), itemSize(item));
    if (item[dirtyIndex.partitionKey] !== undefined && item[dirtyIndex.sortKey] !== undefined) {
      const keys = [partitionKey, sortKey, dirtyIndex.partitionKey, dirtyIndex.sortKey];
      add('dirty index', itemSize(Object.fromEntries(keys.map((name) => [name, item[name]!]))));
    }
  }
  return kinds;
}

type BufferVariant = 'kinesis' | 'firehose';

type BufferStats =
  | { variant: 'kinesis'; records: number; putUnits: number; ms: number[] }
  | { variant: 'firehose'; records: number; ingestedBytes: number; objects: number; objectBytes: number; ms: number[] };

/** An ingest buffer as deployed, on local endpoints: what ingest puts its requests on, and how a window of them is stored. */
interface BenchBuffer {
  /** Ingest's store. */
  events: EventStore;
  /** How many records have been put so far. */
  put(): number;
  /** Stores the records put from `from` to `to` (put() counts) as one batching window, as deployed, at `at`. */
  store(from: number, to: number, at: number): Promise<void>;
  stats: BufferStats;
  close(): Promise<void>;
}

const localCredentials = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

/**
 * The Kinesis variant: ingest puts each request on the stream, and the consumer stores a window's records at once,
 * as functions/ingest-buffer/handler.ts does deployed.
 */
async function kinesisBuffer(table: DynamoDbEventStore): Promise<BenchBuffer> {
  const kinesis = await startKinesisEndpoint();
  const client = new KinesisClient({ endpoint: kinesis.url, ...localCredentials, maxAttempts: 6 });
  const stats: BufferStats = { variant: 'kinesis', records: 0, putUnits: 0, ms: [] };
  return {
    events: new KinesisEventBuffer(client, 'bench-ingest-buffer', table),
    put: () => kinesis.records.length,
    async store(from, to) {
      const records = kinesis.records.slice(from, to);
      const started = performance.now();
      await storeBufferedRequests(table, records.map((record) => bufferedRequestOf(record.data)));
      stats.ms.push(performance.now() - started);
      stats.records += records.length;
      stats.putUnits += sum(records.map((record) => Math.ceil((record.data.length + Buffer.byteLength(record.partitionKey)) / kinesisPutUnitBytes)));
    },
    stats,
    async close() {
      client.destroy();
      await kinesis.close();
    },
  };
}

/**
 * The Firehose variant: ingest puts each request on the delivery stream; at the end of a buffering interval its
 * records become one object in S3 (as Firehose writes it, here through the S3 client), and the loader gets S3's
 * notification and stores the object's requests, as functions/ingest-buffer-loader/handler.ts does deployed.
 */
async function firehoseBuffer(table: DynamoDbEventStore): Promise<BenchBuffer> {
  const deliveryStream = 'bench-ingest-requests';
  const bucket = 'bench-ingest-buffer';
  const firehose = await startFirehoseEndpoint([deliveryStream]);
  const s3 = await startS3Endpoint({ buckets: [bucket], notifyPrefix: bufferObjectsPrefix, mayList: true });
  const client = new FirehoseClient({ endpoint: firehose.url, ...localCredentials, maxAttempts: 6 });
  const s3Client = new S3Client({ endpoint: s3.url, ...localCredentials });
  const objects = new S3BufferObjects(s3Client);
  const stats: BufferStats = { variant: 'firehose', records: 0, ingestedBytes: 0, objects: 0, objectBytes: 0, ms: [] };
  return {
    events: new FirehoseEventBuffer(client, deliveryStream, table),
    put: () => firehose.records.length,
    async store(from, to, at) {
      const records = firehose.records.slice(from, to);
      const body = Buffer.concat(records.map((record) => record.data));
      await s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: firehoseObjectKey(bufferObjectsPrefix, deliveryStream, new Date(at)), Body: body }));
      const notification = s3.notifications.at(-1)!;
      const started = performance.now();
      for (const object of bufferObjectsOf(notification)) await loadBufferObject(objects, table, object);
      stats.ms.push(performance.now() - started);
      stats.records += records.length;
      stats.ingestedBytes += sum(records.map((record) => Math.ceil(record.data.length / firehoseRecordUnitBytes) * firehoseRecordUnitBytes));
      stats.objects++;
      stats.objectBytes += body.length;
    },
    stats,
    async close() {
      client.destroy();
      s3Client.destroy();
      await firehose.close();
      await s3.close();
    },
  };
}

/** CloudWatch Logs' overhead per log event, billed as ingested data. */
const logEventOverheadBytes = 26;

/**
 * The lines each request sends CloudWatch Logs as deployed by default (ingest.requestLogs off: the function's logger
 * writes nothing for a request that goes well, and Lambda no START and REPORT records), measured request by request:
 *  - the metrics' EMF line: the handler's own counts (functions/ingest/request-metrics.ts) on a Powertools Metrics of
 *    the deployed namespace and service, serialized as publishStoredMetrics writes it;
 *  - the HTTP API's access log line: lib/ingest-api.ts's format with the request's values in API Gateway's shapes (a
 *    16-character request id, `dd/Mon/yyyy:HH:mm:ss +0000`, the route's template, `-` for what it has not). A
 *    variable the bench cannot fill fails it, so a changed format is measured or noticed.
 */
function requestLogLines() {
  const bytes = { accessBytes: 0, metricsBytes: 0 };
  const metrics = new Metrics({ namespace: metricNamespace, serviceName });
  // Counted and serialized at once, within the observer's call: requests in flight never share a line.
  const metricsLine = () => {
    bytes.metricsBytes += Buffer.byteLength(JSON.stringify(metrics.serializeMetrics())) + logEventOverheadBytes;
    metrics.clearMetrics();
  };
  const format = accessLogFormat(false);
  return {
    bytes,
    observer: {
      onResponse: (response: { summary: Parameters<typeof countResponse>[1] }) => {
        countResponse(metrics, response.summary);
        metricsLine();
      },
      onError: () => {
        countError(metrics);
        metricsLine();
      },
    },
    access(event: APIGatewayProxyEventV2, response: APIGatewayProxyStructuredResultV2, ms: number) {
      // `Thu, 04 Dec 2026 05:00:00 GMT`: the fields of API Gateway's `04/Dec/2026:05:00:00 +0000`.
      const [, day, month, year, time] = new Date(event.requestContext.timeEpoch).toUTCString().split(' ');
      const latency = String(Math.max(1, Math.round(ms)));
      const values: Record<string, string> = {
        '$context.requestId': event.requestContext.requestId.replace(/-/g, '').slice(0, 15) + '=',
        '$context.requestTime': `${day}/${month}/${year}:${time} +0000`,
        '$context.httpMethod': event.requestContext.http.method,
        '$context.routeKey': `${event.requestContext.http.method} ${ingestRoute}`,
        '$context.protocol': event.requestContext.http.protocol,
        '$context.status': String(response.statusCode),
        '$context.responseLength': String(Buffer.byteLength(response.body ?? '')),
        '$context.responseLatency': latency,
        '$context.integrationStatus': '200',
        '$context.integrationLatency': latency,
        '$context.integrationErrorMessage': '-',
        '$context.error.message': '-',
      };
      const line = Object.fromEntries(
        Object.entries(format).map(([field, variable]) => {
          const value = values[variable];
          if (value === undefined) throw new Error(`bench:cost: no value for the access log's ${variable} (lib/ingest-api.ts accessLogFormat)`);
          return [field, value];
        }),
      );
      bytes.accessBytes += Buffer.byteLength(JSON.stringify(line)) + logEventOverheadBytes;
    },
  };
}

/**
 * Sends the mix's stream through the ingest handler and runs the evaluator on a simulated clock: at every tick of
 * its interval, the calls sent by then go in first, then one run over every shard at the tick's time.
 */
async function simulateMix(endpoint: string, mix: Mix, ruleset: Ruleset, variant: BufferVariant | undefined): Promise<MixResult> {
  const client = createDynamoDbClient(endpoint, longLivedClientOptions);
  const missing = billMissingItems(client);
  const reader = createDynamoDbClient(endpoint);
  const tableName = `bench-cost-${mix.name.replace(/[^a-z]+/g, '-')}`;
  const started = performance.now();
  let closeServer = async () => {};
  let changes: LocalChangeStream | undefined;
  let buffer: BenchBuffer | undefined;
  try {
    await ensureTable(client, tableName);
    await recordShardCount(client, tableName, dirtyShards);
    const keys = new DynamoDbWriteKeyStore(client, tableName);
    const { key: writeKey } = await keys.create(workspace);
    // As functions/ingest/lambda-handler.ts wires it when deployed: default retention, write keys cached for a minute.
    const events = new DynamoDbEventStore({ client, tableName });
    if (variant) buffer = await (variant === 'kinesis' ? kinesisBuffer : firehoseBuffer)(events);
    const logLines = requestLogLines();
    const handler = createIngestHandler({ events: buffer?.events ?? events, keys: new CachedWriteKeyStore(keys, 60_000) }, logLines.observer);
    const handlerMs: number[] = [];
    const timed = async (event: APIGatewayProxyEventV2) => {
      const started = performance.now();
      let response: APIGatewayProxyStructuredResultV2 | undefined;
      try {
        return (response = await handler(event));
      } finally {
        const ms = performance.now() - started;
        handlerMs.push(ms);
        if (response) logLines.access(event, response, ms);
      }
    };
    const served = await serveHttpApi(timed, { port: 0 });
    closeServer = () => closeLocally(served.server);

    const stream = mix.stream(writeKey, { events: eventsPerMix, start: windowStart, windowMs: windowEnd - windowStart, users: streamUsers, accounts: streamAccounts });
    const interval = chooseInterval(stream);
    const activeUserDays = new Set(
      stream.messages.filter((message) => typeof message['userId'] === 'string').map((message) => `${message['userId']}\n${String(message['timestamp']).slice(0, 10)}`),
    ).size;

    // Change capture as deployed: a batch of the stream every minute of arrivals, its changes evaluated at once by
    // the evaluator (one invocation per batch), at the time of the batch's last call.
    changes = new LocalChangeStream(client, tableName, { mark: async () => {} });
    const capture = { batches: 0, records: 0 };
    /** The table stream's new records, as the evaluator reads a batch of them at `now`. */
    const evaluateStream = async (now: Date) => {
      const before = snapshot(0);
      // The invocation's time: what the handler does with the records. Reading the stream is Lambda's poller's work,
      // neither billed as the function's duration nor charged as reads; locally it was a quarter of this line's time.
      let invocationMs = 0;
      let invoked = false;
      await changes!.drain({
        mark: async (keys) => {
          // Deployed, the stream's filter leaves out every other write (the evaluator's own): no invocation for those.
          const streamed = keys.filter((key) => reachesEvaluator(key.sk));
          if (streamed.length === 0) return;
          const started = performance.now();
          invoked = true;
          capture.records += streamed.length;
          await evaluateChanges(evaluation.store, publisher, { marks: changeMarks(streamed), ruleset, now, outOfTime: () => false, concurrency: 1 });
          invocationMs += performance.now() - started;
        },
      });
      // No record for the evaluator, no invocation.
      if (!invoked) return;
      capture.batches++;
      // The stream's evaluations are the events' work, all of it: no share of the schedule's empty runs to take off.
      work = addWork(work, { ...addWork(snapshot(invocationMs), before, -1), runs: 0, everyRunMs: 0 });
    };
    /** With the buffer: the records put and not stored yet, by the end of their batching window (simulated time). */
    const pending: { from: number; to: number; storeAt: number }[] = [];
    /** Stores the buffered records whose batching window has ended by `at`, a batch per window; true if any. */
    const storeBuffered = async (at: number) => {
      if (!buffer) return false;
      const due = pending.filter((entry) => entry.storeAt <= at);
      if (due.length === 0) return false;
      pending.splice(0, due.length);
      // Entries are put in order, so a window's are one run of records.
      for (const storeAt of [...new Set(due.map((entry) => entry.storeAt))]) {
        const window = due.filter((entry) => entry.storeAt === storeAt);
        await buffer.store(window[0]!.from, window.at(-1)!.to, storeAt);
      }
      return true;
    };
    /** Sends calls a batching window of the table stream at a time, each window's changes evaluated at its last call. */
    const send = async (calls: Call[]) => {
      const byWindow = new Map<number, Call[]>();
      for (const call of calls) {
        const window = Math.floor(call.at / captureWindowMs);
        byWindow.set(window, [...(byWindow.get(window) ?? []), call]);
      }
      for (const window of [...byWindow.keys()].sort((a, b) => a - b)) {
        const batch = byWindow.get(window)!;
        const put = buffer?.put() ?? 0;
        await sendCalls(served.url, batch, concurrency, mix.name);
        const last = Math.max(...batch.map((call) => call.at));
        if (buffer) {
          const windowMs = bufferWindowMs[buffer.stats.variant];
          // Batches are written at once: a window of them alone puts nothing to store.
          const to = buffer.put();
          if (to > put) pending.push({ from: put, to, storeAt: (Math.floor(last / windowMs) + 1) * windowMs });
          await storeBuffered(last);
        }
        await evaluateStream(new Date(last));
      }
    };
    const evaluation = new AttributingStore(new DynamoDbEvaluationStore({ client, tableName, dirtyShards }));
    let published = 0;
    const publisher: LeadPublisher = {
      publish: async (leadEvents) => {
        published += leadEvents.length;
        return { failed: [] };
      },
    };
    const { shares, reasons, usersSaved, inner } = evaluation;
    const snapshot = (ms: number): EvaluatorWork => ({
      runs: 1,
      ms,
      everyRunMs: evaluation.everyRunCallsMs,
      read: inner.capacity.readUnits,
      write: inner.capacity.writeUnits,
      run: { read: shares.run.read, write: shares.run.write },
      changed: addWork({ ...noWork(), changed: { ...reasons.changed } }, { ...noWork(), changed: reasons['rules-changed'] }).changed,
      sweep: { ...reasons.sweep },
      usersChanged: usersSaved.changed + usersSaved['rules-changed'],
      usersSwept: usersSaved.sweep,
      published,
    });
    /** One evaluator run over every shard at `at`: what it did. */
    const run = async (at: number): Promise<EvaluatorWork> => {
      const before = snapshot(0);
      const started = performance.now();
      // One entity at a time, so that AttributingStore puts each call's units on the right entity and reason.
      await runEvaluator({ store: evaluation.store, publisher, ruleset, shards: allShards(dirtyShards), now: new Date(at), deadline: Number.POSITIVE_INFINITY, concurrency: 1 });
      return { ...addWork(snapshot(performance.now() - started), before, -1), runs: 1 };
    };

    let work = noWork();
    // Runs that find nothing, measured among the working ones (every emptySampleEvery-th idle tick is run), so that
    // what a working run did beyond an empty one is taken against an empty run of the same moment's table and load.
    const empties: EvaluatorWork[] = [];
    const step = interval.minutes * 60_000;
    let next = 0;
    let idleTicks = 0;
    let leftOver = false;
    // Until the first tick at or after the window's end: every call is sent by then.
    for (let tick = windowStart + step; tick - step < windowEnd; tick += step) {
      const due: Call[] = [];
      while (next < stream.calls.length && stream.calls[next]!.at <= tick) due.push(stream.calls[next++]!);
      if (due.length > 0) await send(due);
      // Buffered records whose window has ended since are stored, and their changes evaluated, before the run.
      const stored = await storeBuffered(tick);
      if (stored) await evaluateStream(new Date(tick));
      const sweepDue = evaluation.sweeps.some((at) => at > tick - step && at <= tick);
      if (due.length === 0 && !stored && !sweepDue && !leftOver) {
        if (++idleTicks % emptySampleEvery === 0) {
          const empty = await run(tick);
          if (empty.changed.evaluated + empty.sweep.evaluated > 0 || empty.write > 0) throw new Error(`${mix.name}: a tick with nothing due evaluated or wrote something at ${new Date(tick).toISOString()}`);
          empties.push(empty);
        }
        continue;
      }
      const done = await run(tick);
      const evaluated = done.changed.evaluated + done.sweep.evaluated;
      // A run that finds nothing (a sweep superseded by a later evaluation) is the schedule's, not the events'.
      if (due.length > 0 || stored || evaluated > 0 || done.write > 0) work = addWork(work, done);
      else idleTicks++;
      // What a run leaves (accounts marked by the members it evaluated) the next tick takes.
      leftOver = evaluated > 0;
    }
    if (next < stream.calls.length) throw new Error(`${mix.name}: ${stream.calls.length - next} calls were never sent`);
    if (pending.length > 0) throw new Error(`${mix.name}: ${pending.length} batches of buffered records were never stored`);

    for (let i = 0; i < 9; i++) empties.push(await run(windowEnd + dayMs + i * 60_000));
    const emptyRun = empties.sort((a, b) => a.ms - b.ms)[Math.floor(empties.length / 2)]!;

    return {
      mix,
      stream,
      interval,
      activeUserDays,
      ingest: { write: events.capacity.writeUnits, read: events.capacity.readUnits, ms: handlerMs },
      logs: logLines.bytes,
      capture,
      ...(buffer ? { buffer: buffer.stats } : {}),
      work,
      idleTicks,
      emptyRun,
      emptyRunOverheadMs: median(empties.map((empty) => empty.ms - empty.everyRunMs))!,
      storage: await storedBytes(reader, tableName),
      byCall: evaluation.byCall,
      seconds: (performance.now() - started) / 1000,
      missingReads: missing.missing,
    };
  } finally {
    await closeServer();
    await buffer?.close();
    changes?.stop();
    client.destroy();
    reader.destroy();
  }
}

// ---- dollars ----

interface Priced {
  label: string;
  dollars: number;
}

interface MixCost {
  lines: string[];
  components: Priced[];
  /** Dollars per million events without storage, with and without the HTTP API. */
  total: number;
  totalWithoutHttp: number;
  storagePerMonth: number;
  /** CloudWatch Logs of the requests (ingestion), apart from the total as the targets leave it out. */
  logs: number;
  /** The total with storage over the default retention, in either table class; and when Standard-IA starts to pay. */
  kept: { standard: number; infrequentAccess: number; breakEvenMonths: number };
  target: { dollars: number; withoutHttp: boolean };
  /** Whether the total is within the target (the browser's besides the HTTP API). */
  meetsTarget: boolean;
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
/** Every how many idle ticks an empty run is measured. */
const emptySampleEvery = 20;
const perMillion = (dollars: number, events: number) => (dollars / events) * 1e6;
const money = (dollars: number) => `$${dollars < 0.1 ? dollars.toFixed(4) : dollars.toFixed(3)}`;
/** Lambda bills each invocation's duration rounded up to the millisecond. */
const billedSeconds = (ms: readonly number[]) => sum(ms.map((value) => Math.ceil(value))) / 1000;

/**
 * The evaluator's work that the events cause: everything its runs did beyond what as many runs finding nothing
 * would have done (that the schedule pays anyway), with the work after changes scaled so that users are evaluated
 * `targetEvaluations` times per active day. Sweeps are as measured. Units beyond the median empty run's; time beyond
 * each run's own calls that every run makes and the median empty run's overhead (emptyRunOverheadMs): the same
 * subtraction by the median empty run's whole time moved with DynamoDB Local's (the same code measured 56 to 96 ms an
 * evaluation).
 */
function eventsShare(result: MixResult) {
  const { work, emptyRun } = result;
  const scale = work.usersChanged === 0 ? 0 : (targetEvaluations * result.activeUserDays) / work.usersChanged;
  const runBeyondEmpty = { read: Math.max(0, work.run.read - work.runs * emptyRun.read), write: Math.max(0, work.run.write - work.runs * emptyRun.write) };
  const measured = {
    read: work.changed.read + work.sweep.read + runBeyondEmpty.read,
    write: work.changed.write + work.sweep.write + runBeyondEmpty.write,
    evaluations: work.changed.evaluated + work.sweep.evaluated,
    ms: Math.max(0, work.ms - work.everyRunMs - work.runs * result.emptyRunOverheadMs),
  };
  const evaluations = scale * work.changed.evaluated + work.sweep.evaluated;
  return {
    scale,
    measured,
    read: scale * (work.changed.read + runBeyondEmpty.read) + work.sweep.read,
    write: scale * (work.changed.write + runBeyondEmpty.write) + work.sweep.write,
    evaluations,
    ms: measured.evaluations === 0 ? 0 : measured.ms * (evaluations / measured.evaluations),
  };
}

function priceMix(result: MixResult, target: MixCost['target']): MixCost {
  const { mix, stream, work, ingest, capture } = result;
  const events = stream.messages.length;
  const requests = stream.calls.length;
  const evaluator = eventsShare(result);

  const ingestDollars = perMillion(ingest.write * price.writeUnit + ingest.read * price.readUnit, events);
  // Invocations are at most one per stream shard per batching window, a fixed cost whatever the traffic (printed with
  // the schedule's), or one per full batch: what the events add is the latter (the simulation's thin traffic makes
  // its every minute with events an invocation, which is the fixed cost's own count).
  const lambdaCaptureDollars = perMillion((capture.records / changeBatchSize) * price.lambdaRequest, events);
  const evaluationDollars = perMillion(evaluator.read * price.readUnit + evaluator.write * price.writeUnit, events);
  const httpDollars = perMillion(requests * price.httpRequest, events);
  const ingestGbSeconds = billedSeconds(ingest.ms) * (ingestMemoryMb / 1024);
  const lambdaIngestDollars = perMillion(requests * price.lambdaRequest + ingestGbSeconds * price.lambdaGbSecond, events);
  const evaluatorGbSeconds = (evaluator.ms / 1000) * (evaluatorMemoryMb / 1024);
  const lambdaEvaluatorDollars = perMillion(evaluatorGbSeconds * price.lambdaGbSecond, events);
  const eventBridgeDollars = perMillion(work.published * price.eventBridgeEvent, events);
  const { buffer } = result;
  const kinesis = buffer?.variant === 'kinesis' ? buffer : undefined;
  const firehose = buffer?.variant === 'firehose' ? buffer : undefined;
  const kinesisDollars = kinesis ? perMillion(kinesis.putUnits * price.kinesisPutUnit, events) : 0;
  const firehoseDollars = firehose ? perMillion((firehose.ingestedBytes / gib) * price.firehoseGb, events) : 0;
  // As the Kinesis consumer's invocations: at most one object per buffering interval (the fixed cost, whatever the
  // traffic) plus one per full object (the buffering size): what the events add is the latter. The simulation's thin
  // traffic (a few requests an interval) makes every interval with requests an object, the fixed cost's own count.
  const fullObjects = firehose ? firehose.objectBytes / firehoseObjectBytes : 0;
  const objectDollars = perMillion(fullObjects * (perObjectDollars - price.lambdaRequest), events);
  const bufferMemoryMb = firehose ? bufferLoaderMemoryMb : bufferConsumerMemoryMb;
  const bufferGbSeconds = buffer ? billedSeconds(buffer.ms) * (bufferMemoryMb / 1024) : 0;
  // As the table stream's: at most one invocation per shard per window (the fixed cost) plus one per full batch.
  const bufferInvocations = kinesis ? kinesis.records / bufferBatchSize : fullObjects;
  const lambdaBufferDollars = perMillion(bufferInvocations * price.lambdaRequest + bufferGbSeconds * price.lambdaGbSecond, events);

  const logsAllDollars = ((result.logs.accessBytes + result.logs.metricsBytes) / gib) * price.logsIngestedGb;
  const logsDollars = perMillion(logsAllDollars, events);
  const stored = sum([...result.storage.values()].map((kind) => kind.bytes));
  const storagePerMonth = perMillion((stored / gib) * (price.storageGbMonth + price.pitrGbMonth), events);
  // Standard-IA: DynamoDB's requests dearer once, its storage cheaper every month the events are kept.
  const infrequentAccessPerMonth = perMillion((stored / gib) * (price.infrequentAccessStorageGbMonth + price.pitrGbMonth), events);
  const requestsExtra = (ingestDollars + evaluationDollars) * (price.infrequentAccessRequestFactor - 1);

  const components: Priced[] = [
    { label: 'ingest DynamoDB', dollars: ingestDollars },
    { label: 'evaluation DynamoDB', dollars: evaluationDollars },
    { label: 'HTTP API', dollars: httpDollars },
    { label: 'Lambda ingest', dollars: lambdaIngestDollars },
    { label: 'Lambda stream', dollars: lambdaCaptureDollars },
    { label: 'Kinesis buffer', dollars: kinesisDollars },
    { label: 'Firehose buffer', dollars: firehoseDollars },
    { label: 'S3 + SQS buffer', dollars: objectDollars },
    { label: 'Lambda buffer', dollars: lambdaBufferDollars },
    { label: 'Lambda evaluator', dollars: lambdaEvaluatorDollars },
    { label: 'EventBridge', dollars: eventBridgeDollars },
  ];
  const total = sum(components.map((c) => c.dollars));
  const totalWithoutHttp = total - httpDollars;
  const kept = {
    standard: total + storagePerMonth * keptMonths,
    infrequentAccess: total + requestsExtra + infrequentAccessPerMonth * keptMonths,
    breakEvenMonths: requestsExtra / (storagePerMonth - infrequentAccessPerMonth),
  };
  const judged = target.withoutHttp ? totalWithoutHttp : total;
  const meetsTarget = judged <= target.dollars;

  const per = (value: number, digits = 3) => (value / events).toFixed(digits);
  const medianMs = [...ingest.ms].sort((a, b) => a - b)[Math.floor(ingest.ms.length / 2)]!;
  const storageKinds = [...result.storage.entries()].sort((a, b) => b[1].bytes - a[1].bytes).filter(([, kind]) => kind.bytes / events >= 1);
  const { measured, scale } = evaluator;
  const scaled = Math.abs(scale - 1) > 0.005;
  const row = (label: string, text: string, dollars: number | string) => `${label.padEnd(21)}${text.padEnd(100)}${typeof dollars === 'string' ? dollars : fixed(dollars, 3, 10)}`;
  const lines = [
    `${mix.name}: ${mix.sdk} (simulated in ${result.seconds.toFixed(0)} s)`,
    `stream     ${count(requests)} requests, ${count(events)} events (${(events / requests).toFixed(1)} per request); ${stream.senders}`,
    `           ${count(result.activeUserDays)} active user-days: ${(events / result.activeUserDays).toFixed(1)} events per active user-day (anonymous visitors' included)`,
    `evaluator  every ${minutesText(result.interval.minutes)} of simulated time (predicted ${result.interval.predicted.toFixed(2)} evaluations per active user-day, for a target of ${targetEvaluations}): ${count(work.runs)} runs with work, ${count(result.idleTicks)} ticks with none;`,
    `           ${count(work.changed.evaluated)} evaluations after changes (${count(work.usersChanged)} of users: ${(work.usersChanged / result.activeUserDays).toFixed(2)} per active user-day), ${eachText(work.changed)};`,
    `           ${count(work.sweep.evaluated)} sweeps (entities time alone can change: leads, and those time can raise into a tier), ${eachText(work.sweep)}; ${count(work.published)} lead events`,
    ...(scaled
      ? [`           priced at ${targetEvaluations} evaluations per active user-day: the work after changes x${scale.toFixed(2)} (cost per evaluation as measured)`]
      : []),
    '',
    `${'component'.padEnd(21)}${'measured'.padEnd(100)}${'$/M events'.padStart(10)}`,
    row('ingest DynamoDB', `${per(ingest.write)} WCU + ${per(ingest.read)} RCU per event`, ingestDollars),
    row(
      'evaluation DynamoDB',
      `${(measured.read / measured.evaluations).toFixed(2)} RCU + ${(measured.write / measured.evaluations).toFixed(2)} WCU per evaluation; ${per(evaluator.read)} RCU + ${per(evaluator.write)} WCU per event${scaled ? ` (as run: ${per(measured.read)} + ${per(measured.write)})` : ''}`,
      evaluationDollars,
    ),
    row('HTTP API', `${per(requests, 4)} requests per event`, httpDollars),
    row('Lambda ingest', `${per(requests, 4)} requests per event, median ${medianMs.toFixed(1)} ms at ${ingestMemoryMb} MB: ${per(ingestGbSeconds, 5)} GB-s per event`, lambdaIngestDollars),
    row(
      'Lambda stream',
      `${per(capture.records)} stream records per event, ${changeBatchSize} to a full batch (run here: ${capture.batches} invocations, a minute's each; time in the evaluator's line)`,
      lambdaCaptureDollars,
    ),
    ...(kinesis
      ? [
          row('Kinesis buffer', `${per(kinesis.records, 4)} records per event, ${per(kinesis.putUnits, 4)} PUT payload units (25 KB) per event; shard hours in the fixed cost`, kinesisDollars),
          row('Lambda buffer', `the consumer: ${(sum(kinesis.ms) / kinesis.records).toFixed(2)} ms per record at ${bufferConsumerMemoryMb} MB (${kinesis.ms.length} batches, ${bufferWindowMs.kinesis / 1000} s each), ${bufferBatchSize} records to a full batch`, lambdaBufferDollars),
        ]
      : []),
    ...(firehose && firehose.records === 0 ? [row('Firehose buffer', 'no request of one message: every batch written to the table at once, nothing buffered', firehoseDollars)] : []),
    ...(firehose && firehose.records > 0
      ? [
          row(
            'Firehose buffer',
            `${per(firehose.records, 4)} records per event, ${(firehose.ingestedBytes / firehose.records / 1024).toFixed(1)} KB billed each (${(firehose.objectBytes / firehose.records).toFixed(0)} bytes, rounded up to 5 KB)`,
            firehoseDollars,
          ),
          row(
            'S3 + SQS buffer',
            `${count(firehose.objects)} objects of ${(firehose.records / firehose.objects).toFixed(1)} records (${bytes(firehose.objectBytes / firehose.objects)}); priced per full ${firehoseObjectBytes / 2 ** 20} MiB object (${count(Math.floor(firehoseObjectBytes / (firehose.objectBytes / firehose.records)))} records): PUT, GET, ${sqsRequestsPerObject} SQS requests (as run: ${money(perMillion(firehose.objects * (perObjectDollars - price.lambdaRequest), events))})`,
            objectDollars,
          ),
          row(
            'Lambda buffer',
            `the loader: ${(sum(firehose.ms) / firehose.records).toFixed(2)} ms per record at ${bufferLoaderMemoryMb} MB (${firehose.ms.length} objects, ${bufferWindowMs.firehose / 1000} s each), an invocation per full object (as run: one per object, ${money(perMillion(firehose.objects * price.lambdaRequest, events))})`,
            lambdaBufferDollars,
          ),
        ]
      : []),
    row('Lambda evaluator', `${(measured.ms / measured.evaluations).toFixed(1)} ms per evaluation at ${evaluatorMemoryMb} MB: ${per(evaluatorGbSeconds, 5)} GB-s per event; invocations: the schedule's`, lambdaEvaluatorDollars),
    row('EventBridge', `${per(work.published, 5)} lead events per event`, eventBridgeDollars),
    row('total', target.withoutHttp ? 'with the HTTP API' : '', total),
    ...(target.withoutHttp ? [row('', "apart from the HTTP API's $1.00 per million requests", totalWithoutHttp)] : []),
    `target     <= ${money(target.dollars)}${target.withoutHttp ? ' besides the HTTP API' : ''}: ${meetsTarget ? 'PASS' : 'FAIL'} (${money(judged)})`,
    `by call    ${[...result.byCall.entries()]
      .filter(([, tally]) => tally.read + tally.write > 0)
      .sort((a, b) => b[1].read + b[1].write - (a[1].read + a[1].write))
      .map(([call, tally]) => `${call} ${per(tally.read)}/${per(tally.write)}`)
      .join(', ')} (evaluator RCU/WCU per event, all runs)`,
    `storage    ${bytes(stored / events)} stored per event (${storageKinds.map(([kind, entry]) => `${kind} ${bytes(entry.bytes / events)}`).join(', ')}): ${money(storagePerMonth)} per million events per month kept`,
    `logs       ${bytes(result.logs.accessBytes / requests)} access log + ${bytes(result.logs.metricsBytes / requests)} metrics (EMF) per request as deployed, CloudWatch's ${logEventOverheadBytes} B a log event included: ${money(logsDollars)} per million events (${money(perMillion(logsAllDollars, requests))} per million requests), apart from the total`,
    `kept       ${defaultRetentionDays} days (the default retention, ${keptMonths.toFixed(1)} months): ${money(kept.standard)} per million events in all; with a Standard-IA table ${money(kept.infrequentAccess)} (requests +${money(requestsExtra)}, storage ${money(infrequentAccessPerMonth)} a month), which pays from ${kept.breakEvenMonths.toFixed(1)} months kept`,
    `missing    ${count(result.missingReads)} BatchGetItem keys with no item, in the units above as DynamoDB bills them (1 RCU strongly consistent, 0.5 eventually; DynamoDB Local reports 0)`,
  ];
  return { lines, components, total, totalWithoutHttp, storagePerMonth, logs: logsDollars, kept, target, meetsTarget };
}

const eachText = (share: Share) => (share.evaluated === 0 ? 'none' : `${(share.read / share.evaluated).toFixed(2)} RCU + ${(share.write / share.evaluated).toFixed(2)} WCU each`);
const minutesText = (minutes: number) => (minutes < 60 ? `${minutes} min` : minutes % 60 === 0 ? `${minutes / 60} h` : `${(minutes / 60).toFixed(1)} h`);

// ---- one evaluation, through a day and with more history ----

/** Every user gets a new batch of today's events before each run; the rounds' costs, run by run. */
async function runsOfADay(table: HistoryTable, ruleset: Ruleset): Promise<EvaluationRound[]> {
  const rounds: EvaluationRound[] = [];
  for (let round = 0; round < runsPerDay; round++) {
    // The day's events fall between 07:00 and 18:00; the runs follow each other a minute apart from 18:30.
    const at = new Date(historyNow.getTime() + round * 60_000);
    rounds.push(await storeAndEvaluate(table, table.users.map((user) => todaysMessages(user, round)), { receivedAt: at, at }, ruleset));
  }
  return rounds;
}

async function main() {
  // The SDK warns on Node 20 that future releases need Node 22; the pinned version runs fine (as in vitest.config.ts).
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const ruleset = loadRules(rulesYaml, 'bench-evaluate.rules.yaml');
  const started = performance.now();
  console.log(
    [
      'pql-radar cost benchmark: dollars per million events at us-east-1 list prices (DynamoDB on demand, Lambda arm64)',
      `${count(eventsPerMix)} events per mix over ${windowDays} days (${new Date(windowStart).toISOString().slice(0, 10)} to ${new Date(windowEnd - 1).toISOString().slice(0, 10)}), each mix in a DynamoDB Local of its own;`,
      `ingest through the deployed handler's wiring, ${concurrency} requests in flight; the evaluator (${dirtyShards} shards, bench:evaluate's ${Object.keys(ruleset.file.signals).length} signals) on a simulated clock`,
      `prices: DynamoDB $0.625/M WRU, $0.125/M RRU, $0.25/GB-month + PITR $0.20/GB-month; Lambda $0.0000133334/GB-s + $0.20/M requests`,
      `(ingest ${ingestMemoryMb} MB, evaluator ${evaluatorMemoryMb} MB, from lib/); HTTP API $1.00/M requests; EventBridge $1.00/M events`,
    ].join('\n'),
  );

  // For the history tables below, each in a database of its own (databaseClient).
  const dynamoDb = await startDynamoDbLocal({ sharedDb: false });
  const clients: DynamoDBClient[] = [];
  try {
    const serverTarget = { dollars: 0.6, withoutHttp: false };
    const mixTarget = { dollars: 1, withoutHttp: false };
    const browserTarget = { dollars: 1, withoutHttp: true };
    const browserAndBackendMix = browserAndBackend(browserShare);
    /** As deployed by default: requests of one message through the Firehose buffer, batches written at once. */
    const deployed = (mix: Mix, target: MixCost['target']) => ({ mix: { ...mix, sdk: `${mix.sdk}; as deployed: requests of one message through the Firehose ingest buffer` }, target, buffer: 'firehose' as const });
    /** `mix` under `name` with another ingest buffer setting, against the same target. */
    const otherwise = (mix: Mix, name: string, target: MixCost['target'], buffer: BufferVariant | undefined) => ({
      mix: { ...mix, name, sdk: `${mix.sdk}; ${buffer === 'kinesis' ? 'through the Kinesis ingest buffer (ingestBuffer: { service: kinesis })' : 'without an ingest buffer (ingestBuffer: false)'}` },
      target,
      ...(buffer ? { buffer } : {}),
    });
    const mixes: { mix: Mix; target: MixCost['target']; buffer?: BufferVariant }[] = [
      deployed(server, serverTarget),
      deployed(browserAndBackendMix, mixTarget),
      deployed(browser, browserTarget),
      // What the default buffer does, and the other one.
      otherwise(browserAndBackendMix, `${browserAndBackendMix.name}-unbuffered`, mixTarget, undefined),
      otherwise(browser, 'browser-unbuffered', browserTarget, undefined),
      otherwise(browser, 'browser-kinesis', browserTarget, 'kinesis'),
    ].filter(({ mix }) => onlyMixes === undefined || onlyMixes.includes(mix.name));
    const costs: { name: string; cost: MixCost; result: MixResult }[] = [];
    for (const { mix, target, buffer } of mixes) {
      // Each mix in a DynamoDB Local of its own: one database answers slower and slower as the mixes before leave their
      // tables in it, every call reading past their stream records (startDynamoDbLocal's sharedDb; the Firehose mix's
      // evaluator measured 31 ms an evaluation alone, 129 ms after the four others), and the Lambda rows are measured time.
      const ownDynamoDb = await startDynamoDbLocal();
      const result = await simulateMix(ownDynamoDb.endpoint, mix, ruleset, buffer).finally(() => ownDynamoDb.stop());
      const cost = priceMix(result, target);
      console.log(['', ...cost.lines].join('\n'));
      costs.push({ name: mix.name, cost, result });
    }

    // The summary, one column per mix.
    const width = Math.max(17, ...costs.map(({ name }) => name.length + 2));
    const column = (value: string) => value.padStart(width);
    const table = [
      '',
      `$ per million events ${costs.map(({ name }) => column(name)).join('')}`,
      ...costs[0]!.cost.components.map((component, index) => `${component.label.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.components[index]!.dollars, 3, 0))).join('')}`),
      `${'total'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.total, 3, 0))).join('')}`,
      `${'  via function URL'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.totalWithoutHttp, 3, 0))).join('')}`,
      `${'target'.padEnd(21)}${costs.map(({ cost }) => column(`<= ${cost.target.dollars.toFixed(2)}${cost.target.withoutHttp ? ' + HTTP' : ''}`)).join('')}`,
      `${'verdict'.padEnd(21)}${costs.map(({ cost }) => column(cost.meetsTarget ? 'PASS' : 'FAIL')).join('')}`,
      `${'CloudWatch Logs'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.logs, 3, 0))).join('')}`,
      `${'storage per month'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.storagePerMonth, 3, 0))).join('')}`,
      `${'total + 1 month'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.total + cost.storagePerMonth, 3, 0))).join('')}`,
      `${`kept ${defaultRetentionDays} days`.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.kept.standard, 3, 0))).join('')}`,
      `${'  Standard-IA'.padEnd(21)}${costs.map(({ cost }) => column(fixed(cost.kept.infrequentAccess, 3, 0))).join('')}`,
      `${'  pays from (months)'.padEnd(21)}${costs.map(({ cost }) => column(cost.kept.breakEvenMonths.toFixed(1))).join('')}`,
      `The totals leave storage out: it is paid per month that the events are kept (${defaultRetentionDays} days by default), and is shown apart.`,
      `CloudWatch Logs, which the targets leave out: the access log line and the metrics' line of every request, as deployed by default (ingest.requestLogs off); $${price.logsIngestedGb.toFixed(2)} per GB ingested.`,
      `Kept ${defaultRetentionDays} days: the total with storage and PITR over the default retention; with a Standard-IA table (tableClass: standard-infrequent-access), whose requests cost 25% more and storage 60% less, from the months kept shown.`,
      "Via function URL: the total without the HTTP API, for calls sent to the ingest function's URL (ingest.functionUrl), which costs nothing beyond the invocation.",
    ];
    const empties = costs.map(({ result }) => result.emptyRun).sort((a, b) => a.ms - b.ms);
    const empty = empties[Math.floor((empties.length - 1) / 2)]!;
    const fixedGbSeconds = runsPerMonth * (Math.ceil(empty.ms) / 1000) * (evaluatorMemoryMb / 1024);
    const fixedDollars = fixedGbSeconds * price.lambdaGbSecond + runsPerMonth * dirtyShards * price.lambdaRequest + runsPerMonth * (empty.read * price.readUnit + empty.write * price.writeUnit);
    const streamWindowsPerMonth = windowsPerMonth(captureWindowMs);
    table.push(
      `Fixed per month, whatever the traffic: the evaluator's schedule, ${dirtyShards} shards every minute, a run of all of them that finds nothing measured at ${empty.ms.toFixed(0)} ms and ${empty.read} RCU (the mixes' median):`,
      `  ${count(runsPerMonth * dirtyShards)} invocations, ${count(Math.round(fixedGbSeconds))} GB-s, ${count(runsPerMonth * empty.read)} RCU = ${money(fixedDollars)} a month (before the free tier).`,
      `And at most, the stream's invocations by batching window: ${count(streamWindowsPerMonth)} a month per stream shard (a minute's records each) = ${money(streamWindowsPerMonth * price.lambdaRequest)} per shard a month; a table's stream has a shard per partition.`,
    );
    if (costs.some(({ result }) => result.buffer?.variant === 'kinesis')) {
      const shardMonth = 30 * 24 * price.kinesisShardHour;
      const bufferWindowsPerMonth = windowsPerMonth(bufferWindowMs.kinesis);
      table.push(
        `With the ingest buffer on: ${money(shardMonth)} a month per Kinesis shard (1,000 records/s, 1 MB/s each), and at most ${count(bufferWindowsPerMonth)} consumer invocations per shard (${money(bufferWindowsPerMonth * price.lambdaRequest)}).`,
      );
    }
    if (costs.some(({ result }) => result.buffer?.variant === 'firehose')) {
      const objectsPerMonth = windowsPerMonth(bufferWindowMs.firehose);
      const idlePolls = (idlePollers * 30 * dayMs) / (longPollSeconds * 1000);
      table.push(
        `With the Firehose buffer on: no stream to provision; Lambda's SQS event source polls the idle queue with ${idlePollers} long polls of ${longPollSeconds} s at a time, ${count(idlePolls)} ReceiveMessage a month = ${money(idlePolls * price.sqsRequest)},`,
        `  and at most ${count(objectsPerMonth)} objects a month below the buffering size (one per ${bufferWindowMs.firehose / 1000} s interval with requests): S3 PUT + GET, ${sqsRequestsPerObject} SQS requests and an invocation each = ${money(objectsPerMonth * perObjectDollars)} a month (before the free tiers).`,
      );
    }
    console.log(table.join('\n'));

    // Through a day, and with 10x the history.
    const tables: HistoryTable[] = [];
    for (const [index, days] of [historyDays, historyDays * historyScale].entries()) {
      const client = databaseClient(dynamoDb.endpoint, `costHistory${index}`, longLivedClientOptions);
      billMissingItems(client);
      clients.push(client);
      tables.push(await prepareHistory(client, ruleset, { days, users: historyUsers, accounts: historyAccounts }));
    }
    const days: { table: HistoryTable; rounds: EvaluationRound[] }[] = [];
    for (const history of tables) days.push({ table: history, rounds: await runsOfADay(history, ruleset) });
    const shown = [...new Set([1, 2, 5, 10, runsPerDay].filter((run) => run <= runsPerDay))];
    const cell = (round: EvaluationRound) => `${(round.read / round.evaluated).toFixed(1)}/${(round.write / round.evaluated).toFixed(1)}`.padStart(12);
    const dollars = (round: EvaluationRound) => (round.read * price.readUnit + round.write * price.writeUnit) / round.evaluated;
    /** What an evaluation costs at the day's last run over its first: the issue's target is no more than 10% growth. */
    const dayGrowth = days.map(({ rounds }) => dollars(rounds.at(-1)!) / dollars(rounds[0]!));
    console.log(
      [
        '',
        `One evaluation through a day and with more history: bench:evaluate's users (${historyUsers} in ${historyAccounts} accounts) and rules; after the first evaluation of the stored`,
        `history, ${runsPerDay} runs of one day, each after a new batch of that day's events for every user (~${(sum(days[0]!.rounds.map((r) => r.newEvents)) / runsPerDay / historyUsers).toFixed(0)} events). RCU/WCU per evaluation (run share included):`,
        `${'history'.padEnd(9)}${'stored'.padStart(9)}${shown.map((run) => `run ${run}`.padStart(12)).join('')}   ${'run ' + runsPerDay + ' / run 1'}`,
        ...days.map(({ table: history, rounds }) => {
          const first = rounds[0]!;
          const last = rounds.at(-1)!;
          const growth = `RCU x${((last.read / last.evaluated) / (first.read / first.evaluated)).toFixed(2)}, WCU x${((last.write / last.evaluated) / (first.write / first.evaluated)).toFixed(2)}, $ x${(dollars(last) / dollars(first)).toFixed(2)}`;
          return `${`${history.days}d`.padEnd(9)}${fixed(history.storedEvents, 0, 9)}${shown.map((run) => cell(rounds[run - 1]!)).join('')}   ${growth}`;
        }),
        `${`${historyDays * historyScale}d/${historyDays}d`.padEnd(18)}${shown
          .map((run) => {
            const [small, large] = [days[0]!.rounds[run - 1]!, days[1]!.rounds[run - 1]!];
            return `x${((large.read / large.evaluated) / (small.read / small.evaluated)).toFixed(2)}/x${((large.write / large.evaluated) / (small.write / small.evaluated)).toFixed(2)}`.padStart(12);
          })
          .join('')}`,
        `through the day: $ per evaluation at run ${runsPerDay} over run 1 ${dayGrowth.map((growth) => `x${growth.toFixed(2)}`).join(' and ')}: ${dayGrowth.every((growth) => growth <= 1.1) ? 'PASS' : 'FAIL'} (at most x1.10)`,
        `Run 1 is a user's first evaluation of the day (bench:evaluate's measured run); run ${runsPerDay} reads the day's ${runsPerDay} batches again to recompute its rollup.`,
        `At ${historyDays}d users signed up within the longest window, whose query reads their since-signup span too; at ${historyDays * historyScale}d the span is read apart: the ratio is`,
        "  signup age as much as history (bench:evaluate's (b) compares two lengths of history with signups before the window).",
        '',
        `${((performance.now() - started) / 1000).toFixed(0)} s in all. ${costs.every(({ cost }) => cost.meetsTarget) ? 'Every mix meets its cost target' : 'Not every mix meets its cost target'}: this reports, it does not fail (exit 0).`,
      ].join('\n'),
    );
  } finally {
    for (const client of clients) client.destroy();
    await dynamoDb.stop();
  }
}

await main();
