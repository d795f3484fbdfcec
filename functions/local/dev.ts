import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Server } from 'node:http';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { DynamoDbEvaluationStore } from '../adapters/dynamodb/evaluation-store';
import { recordShardCount } from '../adapters/dynamodb/shard-count';
import { defaultLocalTableName } from '../adapters/dynamodb/table-definition';
import { DynamoDbLeadStatusReader } from '../adapters/dynamodb/lead-status-reader';
import { DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import type { LeadPublisher } from '../core/ports';
import type { Ruleset } from '../core/rules/load';
import { allShards, evaluateChanges, runEvaluator, type EvaluateChangesResult, type EvaluatorRunSummary } from '../core/evaluate-leads';
import { accessOf, checkWorkspace, parseGivenKey, verifiedKey } from '../core/write-key';
import { defaultDeliveryLogDays, defaultDirtyShards } from '../shared/settings';
import { DynamoDbLeadReader } from '../adapters/dynamodb/lead-reader';
import { leadPages, type PageHandler } from './lead-inspector';
import { EvaluationTimeTooEarly, evaluateRoute } from './evaluate-route';
import { createIngestHandler, type IngestObserver } from '../ingest/http';
import { createLeadStatusHandler } from '../lead-status/http';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local';
import { serveHttpApi } from './http-server';
import { ensurePortFree } from './ports';
import { changeMarks, DynamoDbChangeCapture } from '../adapters/dynamodb/change-capture';
import { LocalChangeStream } from './change-stream';
import { LocalDeliveryWorker, type DrainResult } from './delivery-worker';
import { ConsoleLeadSink, FanOutLeadSink } from './lead-sinks';
import type { DeliveryPolicy, LeadDestination } from '../core/delivery';
import { DynamoDbFeedbackStore, ensureFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { createFeedbackLinkHandler } from '../ingest/feedback-http';
import { withFeedbackLinks } from '../adapters/destinations';
import { feedbackReasons } from '../core/lead-feedback';

export interface DevOptions {
  /** Port of the ingest endpoint; 0 picks a free one. @default 3000 */
  port?: number;
  /** A running DynamoDB to use instead of starting DynamoDB Local. @default process.env.AWS_ENDPOINT_URL_DYNAMODB */
  endpoint?: string;
  /** Port for the DynamoDB Local this starts. @default a free port */
  dynamoDbPort?: number;
  /** Directory where DynamoDB Local keeps its data; without it the data is in memory and gone on stop. */
  dataDir?: string;
  /** @default 'pql-radar' */
  tableName?: string;
  /** The write key to accept; registered in `workspace` if new. @default a newly created key */
  writeKey?: string;
  /** @default 'default' */
  workspace?: string;
  /**
   * Browser origins the workspace accepts events from (e.g. `http://localhost:5173`, or `*`); when given they replace
   * what the table holds. @default what the table holds, none in a new one: browsers are refused
   */
  allowedOrigins?: readonly string[];
  /** Settings of the event store, as the deployed function gets them. */
  retentionDays?: number;
  /** Shards of the `dirty` index, recorded in the table for `pql-radar evaluate`. @default 4 */
  dirtyShards?: number;
  observer?: IngestObserver;
  /** The rules the evaluator applies; without them only ingest runs. */
  ruleset?: Ruleset;
  /** Where lead events are written at once. @default the console */
  leads?: LeadPublisher;
  /** Where lead events are delivered through the delivery queues (webhooks): retried, deduplicated, logged. @default none */
  destinations?: readonly LeadDestination[];
  /** Milliseconds between passes of the delivery worker; 0 delivers only when deliverOnce() is called. @default 1000 */
  deliverEveryMs?: number;
  /** Called with what each timed pass of the delivery worker left undelivered, e.g. to say so. */
  onUndelivered?: (results: DrainResult[], deliveries: LocalDeliveryWorker) => Promise<void>;
  /** Retries of the delivery worker. @default core/delivery's: 24 hours */
  deliveryPolicy?: DeliveryPolicy;
  /** Milliseconds between evaluator runs; 0 runs it only when evaluateOnce() is called. @default 10000 */
  evaluateEveryMs?: number;
  /**
   * How long timed runs wait after a paced replay's last call or event (`POST /local/evaluate`): a replay stopped
   * half-way hands the clock back after it. @default 30000
   */
  pacedHoldMs?: number;
  /** Called with each timed run's summary, e.g. to print it. */
  onEvaluation?: (summary: EvaluatorRunSummary) => void;
  /** Called with the error of a timed run that failed, unless the runtime is stopping. @default logged */
  onEvaluationError?: (error: unknown) => void;
}

export interface DevRuntime {
  url: string;
  endpoint: string;
  /**
   * Whether it started DynamoDB Local (keeping the data in `dataDir` or in memory); false when it was given a running
   * DynamoDB (`endpoint`), whose data lives as that one keeps it, which this runtime cannot know.
   */
  startedDynamoDb: boolean;
  /**
   * Settles, with a line saying why, when something the runtime started ends on its own: DynamoDB Local exiting (its
   * Java process killed, out of memory). Every request fails from then on, so the caller stops the runtime. Never for a
   * DynamoDB it was given, or once stop() was called.
   */
  failed: Promise<string>;
  tableName: string;
  writeKey: string;
  workspace: string;
  client: DynamoDBClient;
  events: DynamoDbEventStore;
  keys: DynamoDbWriteKeyStore;
  evaluation: DynamoDbEvaluationStore;
  /** The delivery queues, their worker and its log. */
  deliveries: LocalDeliveryWorker;
  /**
   * Reads the table's stream from where the last read left it (this runtime's, an earlier one's on the same table, or
   * `pql-radar evaluate`'s) into change lists for the next evaluator run (an evaluator run reads it too, evaluating
   * what changed at once, as deployed). Returns the keys read.
   */
  collectChanges(): Promise<number>;
  /**
   * One evaluator pass over every shard, as the deployed schedule does, at `now` (default: the clock when it
   * starts). It starts once the runs asked for before it, timed ones included, have finished.
   */
  evaluateOnce(now?: Date): Promise<EvaluatorRunSummary>;
  stop(): Promise<void>;
}

/**
 * The local runtime: DynamoDB (Local, unless one is given), the table, a write key, and the ingest handler
 * served over HTTP. Everything it starts, stop() stops.
 */
export async function startDev(options: DevOptions = {}): Promise<DevRuntime> {
  const tableName = options.tableName ?? defaultLocalTableName;
  const dirtyShards = options.dirtyShards ?? defaultDirtyShards;
  const workspace = options.workspace ?? 'default';
  const configuredEndpoint = options.endpoint ?? process.env['AWS_ENDPOINT_URL_DYNAMODB'];
  const port = options.port ?? 3000;
  // Checked before anything starts: a refusal after DynamoDB Local started would only start it to stop it.
  checkWorkspace(workspace);
  const givenKey = options.writeKey === undefined ? undefined : givenWriteKey(options.writeKey);
  if (port !== 0) await ensurePortFree(port, '127.0.0.1', 'the ingest endpoint (--port chooses another)');
  const dynamoDbLocal: DynamoDbLocal | undefined = configuredEndpoint
    ? undefined
    : await startDynamoDbLocal({ ...(options.dynamoDbPort !== undefined ? { port: options.dynamoDbPort } : {}), ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}) });
  const endpoint = configuredEndpoint ?? dynamoDbLocal!.endpoint;
  const client = createDynamoDbClient(endpoint);
  let server: Server | undefined;
  let deliveries: LocalDeliveryWorker | undefined;
  let changeStream: LocalChangeStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** The last run asked for; the next one starts only after it has settled. */
  let lastRun: Promise<unknown> = Promise.resolve();
  const stop = async () => {
    stopping = true;
    clearTimeout(timer);
    await lastRun.catch(() => {});
    await deliveries?.stop();
    changeStream?.stop();
    if (server) {
      server.closeAllConnections();
      await new Promise((done) => server!.close(done));
    }
    client.destroy();
    await dynamoDbLocal?.stop();
  };

  try {
    await ensureTable(client, tableName);
    // The shards of a higher count this table had before are run too: what was left there is evaluated and published.
    const { highest: highestShards } = await recordShardCount(client, tableName, dirtyShards);
    const keys = new DynamoDbWriteKeyStore(client, tableName);
    const writeKey = await registeredWriteKey(keys, workspace, givenKey);
    if (options.allowedOrigins !== undefined) await keys.setAllowedOrigins(workspace, options.allowedOrigins);
    const events = new DynamoDbEventStore({
      client,
      tableName,
      ...(options.retentionDays !== undefined ? { retentionDays: options.retentionDays } : {}),
      ...(options.ruleset ? { timeZone: options.ruleset.calendar.timeZone } : {}),
    });
    // Feedback links are signed with a key kept in the table, as deployed (made, or moved out of META where versions
    // before kept it, before this serves), and point at this server.
    const feedbackSecret = await ensureFeedbackSecret(client, tableName);
    const feedbackStore = new DynamoDbFeedbackStore(client, tableName);
    const feedback = createFeedbackLinkHandler({ store: feedbackStore, secret: async () => feedbackSecret });
    // No key cache here: locally, a revoked key should stop working at once.
    /**
     * Until then timed runs wait: a paced replay runs the evaluator at the times of the history it sends. Its calls
     * and the events it sends meanwhile keep the hold, however long a day of history takes to send.
     */
    let pacedUntil = 0;
    const pacedHoldMs = options.pacedHoldMs ?? 30_000;
    const holdWhilePaced = () => {
      if (Date.now() < pacedUntil) pacedUntil = Date.now() + pacedHoldMs;
    };
    const observer: IngestObserver = {
      onResponse: (response, requestId) => {
        holdWhilePaced();
        options.observer?.onResponse(response, requestId);
      },
      onError: (error, requestId) => options.observer?.onError(error, requestId),
    };
    const handler = createIngestHandler({ keys, events }, observer, feedback);
    // The lead inspector's pages beside ingest, on 127.0.0.1 like it, and the evaluator control of a paced replay.
    const inspector = leadPages(
      new DynamoDbLeadReader(client, tableName, { shards: highestShards, deliveryLogDays: defaultDeliveryLogDays }),
      undefined,
      options.ruleset && { store: feedbackStore, ruleset: options.ruleset },
    );
    const control = options.ruleset && evaluateRoute((at) => evaluatePaced(at));
    const pages: PageHandler = control ? async (url, form) => (await control(url, form)) ?? inspector(url, form) : inspector;
    // The product's reads of lead status, uncached: locally a fresh evaluation shows at once.
    const reads = createLeadStatusHandler({ keys, leads: new DynamoDbLeadStatusReader(client, tableName) }, { maxAgeSeconds: 0 });
    const served = await serveHttpApi(handler, { port, pages, reads });
    server = served.server;

    changeStream = new LocalChangeStream(client, tableName, new DynamoDbChangeCapture(client, tableName, dirtyShards), { positionInTable: true });
    const collectChanges = () => changeStream!.drain();
    const evaluation = new DynamoDbEvaluationStore({ client, tableName, dirtyShards, ...(options.retentionDays !== undefined ? { retentionDays: options.retentionDays } : {}) });
    // Webhooks (and Slack) get feedback links to this server, signed with the table's key, as deployed notifiers do.
    const signer = async () => ({ secret: feedbackSecret, baseUrl: served.url });
    const reasons = options.ruleset ? Object.keys(feedbackReasons(options.ruleset)) : [];
    const destinations = (options.destinations ?? []).map((destination) => (options.ruleset && (destination.kind === 'webhook' || destination.kind === 'slack') ? withFeedbackLinks(destination, signer, reasons) : destination));
    deliveries = new LocalDeliveryWorker({ client, tableName, destinations, ...(options.deliveryPolicy ? { policy: options.deliveryPolicy } : {}) });
    await deliveries.register('table');
    const deliverEvery = options.deliverEveryMs ?? 1000;
    if (deliverEvery > 0) deliveries.start(deliverEvery, options.onUndelivered);
    const written = options.leads ?? new ConsoleLeadSink();
    const leads = options.destinations?.length ? new FanOutLeadSink([written, deliveries]) : written;
    /** The latest time a run evaluated anything at: a run at an earlier time would move leads back in time. */
    let latestEvaluatedAt = 0;
    const evaluateOnce = (now?: Date) => {
      const ruleset = options.ruleset;
      if (!ruleset) throw new Error('no rules: start the local runtime with a rules file to evaluate');
      // Runs never overlap: two runs at once would both read the outbox and deliver its transitions twice. Each
      // starts once the one before has settled, and reads the clock then.
      const run = lastRun
        .catch(() => {})
        .then(async () => {
          const at = now ?? new Date();
          // As deployed: the stream's changes evaluated as they are read, and the scheduled run (sweeps, what is left,
          // everyone after a rules change). Locally one pass at one time: the changes first, then the scheduled run,
          // which skips what they evaluated, so a sweep never runs on a state its new events have not reached yet.
          const seen = new Set<string>();
          let fresh: EvaluateChangesResult | undefined;
          // A drain hands its sink every key read, in one call.
          await changeStream!.drain({ mark: async (keys) => (fresh = await evaluateChanges(evaluation, leads, { marks: changeMarks(keys), ruleset, now: at, outOfTime: () => false, seen })) });
          const scheduled = await runEvaluator({ store: evaluation, publisher: leads, ruleset, shards: allShards(highestShards), now: at, deadline: Number.POSITIVE_INFINITY, seen });
          // The scheduled run publishes every shard's outbox after them: what it could not publish is all that is left.
          const summary: EvaluatorRunSummary = fresh
            ? { ...scheduled, evaluated: fresh.evaluated + scheduled.evaluated, transitions: [...fresh.transitions, ...scheduled.transitions], published: fresh.published + scheduled.published, newerStates: fresh.newerStates + scheduled.newerStates, evaluatedAlone: fresh.evaluatedAlone + scheduled.evaluatedAlone, failed: [...fresh.failed, ...scheduled.failed] }
            : scheduled;
          if (summary.evaluated > 0) latestEvaluatedAt = Math.max(latestEvaluatedAt, at.getTime());
          return summary;
        });
      lastRun = run;
      return run;
    };
    const evaluatePaced = async (at: Date) => {
      if (at.getTime() < latestEvaluatedAt) {
        throw new EvaluationTimeTooEarly(
          `the local evaluator has already evaluated leads at ${new Date(latestEvaluatedAt).toISOString()}, after ${at.toISOString()}: replay paced history into a fresh runtime (npm start without --data-dir)`,
        );
      }
      pacedUntil = Date.now() + pacedHoldMs;
      const summary = await evaluateOnce(at);
      pacedUntil = Date.now() + pacedHoldMs;
      options.onEvaluation?.(summary);
      return summary;
    };
    const every = options.evaluateEveryMs ?? 10_000;
    if (options.ruleset && every > 0) {
      // The next timed run is scheduled when the last one has finished, so a slow run delays the next instead of
      // letting runs pile up.
      const scheduleRun = () => {
        timer = setTimeout(() => {
          if (Date.now() < pacedUntil) return scheduleRun();
          evaluateOnce()
            .then(options.onEvaluation, (error: unknown) => {
              // Ctrl-C stops DynamoDB Local at once (killOnParentExit): a run it cut short is no failure to report.
              if (!stopping) (options.onEvaluationError ?? ((failure) => console.error('evaluator run failed:', failure)))(error);
            })
            .finally(() => {
              if (!stopping) scheduleRun();
            });
        }, every);
      };
      scheduleRun();
    }
    const failed = dynamoDbLocal ? dynamoDbLocal.exited.then((how) => `DynamoDB Local exited (${how})`) : new Promise<string>(() => {});
    return { url: served.url, endpoint, startedDynamoDb: dynamoDbLocal !== undefined, failed, tableName, writeKey, workspace, client, events, keys, evaluation, deliveries, collectChanges, evaluateOnce, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function givenWriteKey(key: string): { key: string; keyId: string } {
  return { key, keyId: parseGivenKey(key, '--write-key').keyId };
}

async function registeredWriteKey(keys: DynamoDbWriteKeyStore, workspace: string, given: { key: string; keyId: string } | undefined): Promise<string> {
  if (given === undefined) return (await keys.create(workspace)).key;
  const existing = await keys.find(given.keyId);
  if (!existing) await keys.create(workspace, { existingKey: given.key });
  else {
    // Known already (kept data): it must be a working write key of this workspace, or the banner would promise one
    // that ingest refuses, or that sends to another workspace than --workspace names.
    const problem = (await verifiedKey(given.key, async () => existing)) === undefined
      ? 'is revoked, or its secret does not match the key the table holds'
      : existing.workspace !== workspace
        ? `belongs to workspace ${existing.workspace}, not ${workspace}`
        : accessOf(existing) !== 'write'
          ? 'is a read key: it reads lead status, and cannot send events'
          : undefined;
    if (problem !== undefined) throw new Error(`--write-key ${problem} (key id ${given.keyId})`);
  }
  return given.key;
}
