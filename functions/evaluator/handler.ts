import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { changeMarks, type WrittenKey } from '../adapters/dynamodb/change-capture';
import { DynamoDbEvaluationStore } from '../adapters/dynamodb/evaluation-store';
import { recordShardCount, type ShardCount } from '../adapters/dynamodb/shard-count';
import { EventBridgePublisher } from '../adapters/eventbridge/publisher';
import { loadCompiledRules } from '../core/rules/ruleset';
import { integerFrom, requiredText, variablesFromEnvironment } from '../shared/environment';
import { logger, metrics } from '../shared/powertools';
import { deployedListSettleMs, environmentNames, metricNames, tableVariables } from '../shared/settings';
import { allShards, describeError, evaluateChanges, runEvaluator, shardsCoveredBy, type EntityFailure, type EvaluateChangesResult } from '../core/evaluate-leads';
import type { ChangeMark } from '../core/ports';
import { longLivedClientOptions } from '../shared/sdk-clients';

// Read without zod, as the rules are: the evaluator's bundle carries no zod (test/infra/bundling.test.ts).
const environment = variablesFromEnvironment(
  {
    ...tableVariables(),
    [environmentNames.eventBusName]: requiredText('the event bus lead events are published to'),
    /** The rules bundled beside the handler, compiled at synth (lib/evaluator.ts). */
    [environmentNames.rulesFile]: requiredText('the compiled rules file beside the handler'),
    /** Stop starting new entities this long before the Lambda timeout, so state is never cut mid-save. */
    SAFETY_MARGIN_MS: integerFrom(1, 15_000),
    /**
     * The schedule's interval: a run also stops within it (less the margin), so that it has ended when the next run
     * of its shard starts. Overlapping runs are safe (a save is refused if another run saved the entity first), but
     * they do the same work twice.
     */
    [environmentNames.runIntervalSeconds]: integerFrom(1),
    /** An account its members move waits this long after its last evaluation (evaluate-leads' accountIntervalMs). */
    [environmentNames.accountIntervalSeconds]: integerFrom(0, 0),
    /** A user with new events waits this long after its last evaluation (evaluate-leads' userIntervalMs). */
    [environmentNames.userIntervalSeconds]: integerFrom(0, 0),
  },
  process.env,
  'evaluator',
);
const tableName = environment[environmentNames.tableName];
const dirtyShards = environment[environmentNames.dirtyShards];
const rulesFile = environment[environmentNames.rulesFile];
const runIntervalSeconds = environment[environmentNames.runIntervalSeconds];
const accountIntervalMs = environment[environmentNames.accountIntervalSeconds] * 1000;
const userIntervalMs = environment[environmentNames.userIntervalSeconds] * 1000;

// Rules that are not what synth compiled (another format, or edited since) fail the cold start, before any lead is
// touched. Compiled, not the YAML a person edits: the YAML parser and the schema would add over 200 KB to the bundle.
const ruleset = loadCompiledRules(readFileSync(rulesFile, 'utf8'), rulesFile);
const client = new DynamoDBClient({ ...longLivedClientOptions, maxAttempts: 6 });
const store = new DynamoDbEvaluationStore({ client, tableName, dirtyShards, retentionDays: environment[environmentNames.retentionDays], listSettleMs: deployedListSettleMs });
const publisher = new EventBridgePublisher({ client: new EventBridgeClient(longLivedClientOptions), eventBusName: environment[environmentNames.eventBusName] });
/**
 * Recorded once per process: in the handler rather than at init, so that importing the bundle touches no table. The
 * highest count the table was evaluated with tells the shards left from a higher count, which the runs cover too.
 */
let shardCount: ShardCount | undefined;
/** Till when the users this instance's stream batches saved or left still wait (evaluateChanges' waits): kept while it is warm. */
const waits = new Map<string, string>();

/**
 * The shard an input names: `{ "shard": N }`, N a whole number from 0 (as `Number` reads it: the console's test
 * events may give "2"), or undefined without one, for every shard.
 */
function shardOf(input: unknown): number | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw new Error(`the input must be an object such as { "shard": 0 }, not ${JSON.stringify(input)}`);
  const given = (input as { shard?: unknown }).shard;
  if (given === undefined) return undefined;
  const shard = Number(given);
  if (!Number.isSafeInteger(shard) || shard < 0) throw new Error(`shard must be a whole number from 0, not ${JSON.stringify(given)}`);
  return shard;
}

/**
 * Scheduled: one schedule per shard passes `{ "shard": N }`; without it, the run covers every shard. From the table's
 * stream (lib/change-capture.ts): a batch of written keys, whose changed entities are evaluated at once.
 */
export async function handler(input: unknown, context: Context) {
  logger.addContext(context);
  try {
    shardCount ??= await recordShardCount(client, tableName, dirtyShards);
    return isStreamBatch(input) ? await evaluateStreamBatch(input, context) : await scheduledRun(input, shardCount.highest, context);
  } finally {
    metrics.publishStoredMetrics();
  }
}

async function scheduledRun(input: unknown, highestShards: number, context: Context) {
  const shard = shardOf(input);
  const shards = shard === undefined ? allShards(highestShards) : shardsCoveredBy(shard, dirtyShards, highestShards);
  const summary = await runEvaluator({
    store,
    publisher,
    ruleset,
    shards,
    now: new Date(),
    accountIntervalMs,
    userIntervalMs,
    deadline: Date.now() + Math.min(context.getRemainingTimeInMillis(), (runIntervalSeconds ?? Infinity) * 1000) - environment.SAFETY_MARGIN_MS,
  });
  logger.info('evaluation run', {
    shards,
    rulesetVersion: ruleset.version,
    evaluated: summary.evaluated,
    transitions: summary.transitions.length,
    published: summary.published,
    unpublished: summary.unpublished.length,
    incompleteShards: summary.incompleteShards,
    lagSeconds: summary.lagSeconds,
    leftUnread: summary.leftUnread,
    newerStates: summary.newerStates,
    evaluatedAlone: summary.evaluatedAlone,
  });
  addRunMetrics(summary);
  // One value per invocation (a shard); the alarm takes the Maximum.
  metrics.addMetric(metricNames.evaluatorLagSeconds, MetricUnit.Seconds, summary.lagSeconds);
  return { evaluated: summary.evaluated, transitions: summary.transitions.length, incompleteShards: summary.incompleteShards };
}

/**
 * A batch of the stream: its changes evaluated now, what is left listed for the scheduled run, and the whole batch
 * listed when its evaluation fails (listForScheduledRun).
 */
async function evaluateStreamBatch(event: DynamoDBStreamEvent, context: Context) {
  const keys: WrittenKey[] = event.Records.flatMap((record) => {
    const pk = record.dynamodb?.Keys?.['pk']?.S;
    const sk = record.dynamodb?.Keys?.['sk']?.S;
    if (pk === undefined || sk === undefined || record.eventName === 'REMOVE') return [];
    const seconds = record.dynamodb?.ApproximateCreationDateTime;
    return [{ pk, sk, at: seconds === undefined ? new Date() : new Date(seconds * 1000) }];
  });
  const marks = changeMarks(keys);
  let summary: EvaluateChangesResult;
  try {
    summary = await evaluateChanges(store, publisher, {
      marks,
      ruleset,
      now: new Date(),
      accountIntervalMs,
      userIntervalMs,
      waits,
      outOfTime: () => context.getRemainingTimeInMillis() < environment.SAFETY_MARGIN_MS,
    });
  } catch (error) {
    return listForScheduledRun(event.Records.length, marks, error);
  }
  logger.info('changes evaluated', {
    records: event.Records.length,
    changes: marks.length,
    rulesetVersion: ruleset.version,
    evaluated: summary.evaluated,
    transitions: summary.transitions.length,
    published: summary.published,
    unpublished: summary.unpublished.length,
    left: summary.left,
    // Of those, the waiting users this instance (or a mark) knew the end of: left with no read.
    leftUnread: summary.leftUnread,
    // Of those, the entities a run of a later time (a scheduled run begun since) had saved meanwhile.
    newerStates: summary.newerStates,
    // Of those, the entities other entities' events left no memory for.
    evaluatedAlone: summary.evaluatedAlone,
  });
  addRunMetrics(summary);
  metrics.addMetric(metricNames.changesLeft, MetricUnit.Count, summary.left);
  return { evaluated: summary.evaluated, transitions: summary.transitions.length, left: summary.left };
}

/**
 * A batch whose evaluation failed (an entity whose evaluation throws, DynamoDB errors past the SDK's retries): its
 * changes are listed for the scheduled run, as those a batch has no time for are, so that it neither holds up its
 * stream shard while the event source mapping retries it nor has its changes dropped when it gives up. Evaluating the
 * entities saved before the failure again changes nothing. Throws only when the listing fails too: the mapping then
 * retries the batch, and sends its place in the stream to the failure queue once it gives up (lib/change-capture.ts).
 * The logs carry counts and the errors, never the keys (user ids).
 */
async function listForScheduledRun(records: number, marks: readonly ChangeMark[], error: unknown) {
  try {
    await store.keep(marks);
  } catch (listingError) {
    logger.error('stream batch neither evaluated nor listed for the scheduled run: the event source mapping retries it', {
      records,
      changes: marks.length,
      error: error as Error,
      listingError: listingError as Error,
    });
    throw listingError;
  }
  logger.error('stream batch not evaluated: its changes are listed for the scheduled run', { records, changes: marks.length, rulesetVersion: ruleset.version, error: error as Error });
  metrics.addMetric(metricNames.changesNotEvaluated, MetricUnit.Count, marks.length);
  return { evaluated: 0, transitions: 0, left: marks.length };
}

function addRunMetrics(summary: { evaluated: number; transitions: readonly unknown[]; unpublished: readonly unknown[]; unpublishedReasons: readonly string[]; failed: readonly EntityFailure[] }) {
  if (summary.unpublished.length > 0) {
    logger.warn('lead events left in the outbox: the event bus refused them; the next run tries again', {
      unpublished: summary.unpublished.length,
      reasons: summary.unpublishedReasons.slice(0, 5),
    });
  }
  if (summary.failed.length > 0) {
    // The entity types and what they threw: the ids are the product's users, kept out of the logs.
    logger.error('entities not evaluated: their evaluation threw; each is left for the next run to try again', {
      failed: summary.failed.length,
      types: [...new Set(summary.failed.map((failure) => failure.ref.type))],
      errors: [...new Set(summary.failed.map((failure) => describeError(failure.error)))].slice(0, 5),
      firstError: summary.failed[0]!.error as Error,
    });
  }
  metrics.addMetric(metricNames.entitiesFailed, MetricUnit.Count, summary.failed.length);
  metrics.addMetric(metricNames.entitiesEvaluated, MetricUnit.Count, summary.evaluated);
  metrics.addMetric(metricNames.leadTransitions, MetricUnit.Count, summary.transitions.length);
  metrics.addMetric(metricNames.leadEventsUnpublished, MetricUnit.Count, summary.unpublished.length);
}

const isStreamBatch = (input: unknown): input is DynamoDBStreamEvent =>
  typeof input === 'object' && input !== null && Array.isArray((input as { Records?: unknown }).Records);
