import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { scheduleInvoker } from './schedule-invoker';
import { changeListPartitionsPattern, metaPartitionKey, outboxPartitionsPattern, workspacePartitionsPattern } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { compiledRulesJson, type Ruleset } from '../functions/core/rules/ruleset';
import { defaultAccountEveryMinutes, defaultDirtyShards, defaultEvaluatorMemoryMb, defaultRetentionDays, defaultUserEveryMinutes, environmentNames, evaluatorTimeoutMinutes, lambdaMemoryMb, maxUserEveryMinutes } from '../functions/shared/settings';
import type { LoadedRulesFile } from './config';
import { LambdaFunction } from './lambda-function';

/**
 * What the evaluator does with the table, item by item: reads and writes state, rollups and claims (entity partitions
 * `WS#*`, where it also deletes the change markers of earlier versions), change lists (`CHANGES#*`: what a run leaves,
 * and deleting what it did), lead events into and out of its outbox (`OUTBOX#*`), and the shard count and rules
 * progress (`META`), by key and by Query, and nothing else (functions/adapters/dynamodb/): never the write keys nor the
 * feedback links' signing key, which have partitions of their own.
 * Its TransactWriteItems (a state and the feedback it applied) needs no action of its own: IAM authorizes each Put and
 * Delete of a transaction as PutItem and DeleteItem, partition by partition. No Scan, no ConditionCheckItem.
 */
export const evaluatorTableAccess = {
  partitions: [workspacePartitionsPattern, changeListPartitionsPattern, outboxPartitionsPattern, metaPartitionKey],
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
  write: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'],
};

/**
 * The file name the rules get in the bundle, which is the function's working directory: the rules as validated at
 * synth, compiled (`compiledRulesJson`), so the function needs neither the YAML parser nor the schema (zod).
 */
const bundledRulesFile = 'rules.json';

/**
 * Writes the rules' JSON where the bundling can copy it from: a file named by its content under the system's
 * temporary directory, so synthesizing again reuses it rather than leaving another copy behind.
 */
function stageRulesJson(json: string): string {
  const file = join(tmpdir(), 'pql-radar-rules', `${createHash('sha256').update(json).digest('hex').slice(0, 32)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  // Written beside and renamed, so that a synth running at the same time never copies half a file.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, json);
  renameSync(partial, file);
  return file;
}

/**
 * A run that has waited this long is superseded by a later one, which reads the same change lists: neither Scheduler
 * nor Lambda's asynchronous queue should keep it longer.
 */
const staleAfter = Duration.minutes(5);

export interface EvaluatorProps {
  /** The table of the EventStore: changed entities are found through its `dirty` index. */
  readonly table: dynamodb.ITable;
  /** The bus lead events are published to; the evaluator may put events on it and on no other bus. */
  readonly eventBus: events.IEventBus;
  /**
   * The PQL rules file (YAML or JSON) as `loadConfig` or `loadRulesFile` (lib/config.ts) read and validated it at
   * synth, so a wrong file has already failed `cdk synth` with every problem. Its rules are bundled with the function,
   * compiled, as `rules.json`.
   */
  readonly rulesFile: LoadedRulesFile;
  /**
   * Shards of the `dirty` index; must equal the ingest function's. One schedule per shard.
   * @default 4
   */
  readonly shards?: number;
  /**
   * Reserve one concurrent execution per shard, which also caps the evaluator at that: the table stream's batches
   * (lib/change-capture.ts) then share those executions with the scheduled runs, and wait (the stream's event source
   * retries a throttled batch) while they are busy. Needs an account whose unreserved concurrency stays at 100 or more
   * afterwards: new accounts, with a limit of 10, must ask for more first.
   * @default false
   */
  readonly reservedConcurrency?: boolean;
  /**
   * The function's memory in MB, from 128 to 10,240, and with it its CPU (a whole vCPU at 1,769 MB). More of it makes
   * a shard evaluate more entities a second, up to 1,769 MB, for about the same cost per evaluation (Lambda bills
   * memory by the second, and the evaluator's work is mostly CPU); and a run holds more events at once: the events of
   * its users' changed days, every event on a rebuild, all its reads together at most half the heap (at 1,024 MB, about
   * 340,000 browser events or 950,000 server ones). A user with more fails alone (TooManyEventsError) and is tried
   * again until the memory allows.
   * @default 1024
   */
  readonly memoryMb?: number;
  /**
   * Minutes between two runs of a shard.
   * @default 1
   */
  readonly everyMinutes?: number;
  /**
   * Minutes an account its members move waits after its last evaluation: the moves made meanwhile are judged at once,
   * by a sweep at the end of them (the first move after a quiet spell is judged at once). An account's evaluation
   * reads every member's state (and days, when a rule counts their events by day), so without it a large account
   * whose members are active is read in full at every run. 0 judges accounts at every move.
   * @default 10
   */
  readonly accountEveryMinutes?: number;
  /**
   * Minutes a user with new events waits after its last evaluation: its changes meanwhile are kept for the runs that
   * follow and judged together once the minutes are over (the first change after a quiet spell is judged at once). An
   * evaluation recounts the changed day's events, so without it a user active all day, judged at every run, costs
   * reads that grow with the square of its day's events. At most 5, so that a lead is never long in coming (the
   * wait counts as evaluator lag, which the lag alarm leaves room for: lib/monitoring.ts' changeWait). 0 judges users
   * at every change.
   * @default 5
   */
  readonly userEveryMinutes?: number;
  /**
   * Days a daily rollup is kept, as the events it sums up.
   * @default 400
   */
  readonly retentionDays?: number;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The evaluator: a Lambda that evaluates the rules over the entities that changed and publishes lead events. The
 * table's stream invokes it with each batch of changes (lib/change-capture.ts), which it evaluates at once; EventBridge
 * Scheduler runs it with one schedule per shard (input `{"shard": N}`) every `everyMinutes` for what time alone
 * changes (sweeps), what a batch left, and everyone after a rules change.
 *
 * Overlapping runs are safe: an entity's state is saved only if nobody saved it since it was read, so of two runs
 * evaluating one entity at once one saves and the other leaves the entity marked for later. A run also stops taking
 * new entities within the interval (RUN_INTERVAL_SECONDS, less the handler's safety margin), so runs of one shard
 * rarely meet. No concurrency is reserved unless asked (`reservedConcurrency`): reserving it fails the deploy in an
 * account at the default concurrency limit of new accounts.
 *
 * Scheduler invokes the function asynchronously: its retry policy and dead-letter queue cover invocations Lambda
 * did not accept; the function's own asynchronous configuration does not retry a failed run and drops a run that
 * waited longer than five minutes, because the next tick does the same work. Nothing of such a run is lost: what it
 * would have evaluated stays listed in the table (the `dirty` index, the change lists) for the next. Nor is it silent
 * (lib/monitoring.ts): a failed run raises `evaluator errors`, and runs that keep failing or being dropped
 * `evaluator lag`, whose metric only scheduled runs report and whose missing data is breaching.
 */
export class Evaluator extends Construct {
  public readonly handler: lambda.Function;
  /** Invocations Scheduler could not deliver after its retries; kept 14 days. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The group of the evaluator's schedules; only its schedules may assume the scheduler role. */
  public readonly scheduleGroup: scheduler.ScheduleGroup;
  /** One schedule per shard, in shard order. */
  public readonly schedules: scheduler.Schedule[];
  /** The validated rules, e.g. to check that every route a tier names has destinations. */
  public readonly ruleset: Ruleset;

  constructor(scope: Construct, id: string, props: EvaluatorProps) {
    super(scope, id);
    const shards = props.shards ?? defaultDirtyShards;
    const everyMinutes = props.everyMinutes ?? 1;
    const accountEveryMinutes = props.accountEveryMinutes ?? defaultAccountEveryMinutes;
    const userEveryMinutes = props.userEveryMinutes ?? defaultUserEveryMinutes;
    const memoryMb = props.memoryMb ?? defaultEvaluatorMemoryMb;
    if (!Number.isInteger(shards) || shards < 1) throw new Error(`Evaluator: shards must be a positive integer, got ${shards}`);
    if (!Number.isInteger(everyMinutes) || everyMinutes < 1) {
      throw new Error(`Evaluator: everyMinutes must be a positive integer, got ${everyMinutes}`);
    }
    if (!Number.isInteger(accountEveryMinutes) || accountEveryMinutes < 0) {
      throw new Error(`Evaluator: accountEveryMinutes must be a whole number of minutes, 0 or more, got ${accountEveryMinutes}`);
    }
    if (!Number.isInteger(userEveryMinutes) || userEveryMinutes < 0 || userEveryMinutes > maxUserEveryMinutes) {
      throw new Error(`Evaluator: userEveryMinutes must be a whole number of minutes from 0 to ${maxUserEveryMinutes}, got ${userEveryMinutes}`);
    }
    if (!Number.isInteger(memoryMb) || memoryMb < lambdaMemoryMb.min || memoryMb > lambdaMemoryMb.max) {
      throw new Error(`Evaluator: memoryMb must be a whole number of MB from ${lambdaMemoryMb.min} to ${lambdaMemoryMb.max} (Lambda's range), got ${memoryMb}`);
    }
    const rulesPath = props.rulesFile.path;
    if (!isAbsolute(rulesPath)) throw new Error(`Evaluator: rulesFile must be an absolute path, got ${rulesPath}`);
    this.ruleset = props.rulesFile.ruleset;

    this.handler = new LambdaFunction(this, 'Handler', {
      entry: 'functions/evaluator/handler.ts',
      description: 'pql-radar evaluator: PQL rules over changed entities, lead events to the bus',
      memorySize: memoryMb,
      timeout: Duration.minutes(evaluatorTimeoutMinutes),
      reservedConcurrentExecutions: props.reservedConcurrency ? shards : undefined,
      logRetention: props.logRetention,
      copyFiles: [{ from: stageRulesJson(compiledRulesJson(this.ruleset)), to: bundledRulesFile }],
      environment: {
        [environmentNames.tableName]: props.table.tableName,
        [environmentNames.eventBusName]: props.eventBus.eventBusName,
        [environmentNames.dirtyShards]: String(shards),
        [environmentNames.retentionDays]: String(props.retentionDays ?? defaultRetentionDays),
        [environmentNames.rulesFile]: bundledRulesFile,
        [environmentNames.runIntervalSeconds]: String(everyMinutes * 60),
        [environmentNames.accountIntervalSeconds]: String(accountEveryMinutes * 60),
        [environmentNames.userIntervalSeconds]: String(userEveryMinutes * 60),
      },
    }).function;
    // The scheduled runs' invocations only: the table stream's event source mapping invokes synchronously, with its
    // own retries (lib/change-capture.ts).
    this.handler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: staleAfter });

    // Explicit rather than grantReadWriteData, which would add Scan, ConditionCheckItem and every index; reads and
    // writes in its own partitions only.
    for (const actions of [evaluatorTableAccess.read, evaluatorTableAccess.write]) {
      this.handler.addToRolePolicy(
        new iam.PolicyStatement({
          actions,
          resources: [props.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': evaluatorTableAccess.partitions } },
        }),
      );
    }
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [`${props.table.tableArn}/index/${tableDefinition.dirtyIndex.indexName}`],
      }),
    );
    this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [props.eventBus.eventBusArn] }));

    const { group, role: schedulerRole, deadLetterQueue } = scheduleInvoker(this, this.handler, 'pql-radar: EventBridge Scheduler runs the evaluator');
    this.scheduleGroup = group;
    this.deadLetterQueue = deadLetterQueue;

    this.schedules = Array.from({ length: shards }, (_, shard) => {
      const target: scheduler.IScheduleTarget = {
        bind: () => ({
          arn: this.handler.functionArn,
          role: schedulerRole,
          input: scheduler.ScheduleTargetInput.fromObject({ shard }),
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: staleAfter.toSeconds() },
          deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
        }),
      };
      const schedule = new scheduler.Schedule(this, `Shard${shard}`, {
        description: `pql-radar evaluator, shard ${shard}`,
        scheduleGroup: this.scheduleGroup,
        schedule: scheduler.ScheduleExpression.rate(Duration.minutes(everyMinutes)),
        target,
      });
      // The schedule names its group by a literal name, which gives CloudFormation no order to create them in.
      schedule.node.addDependency(this.scheduleGroup);
      return schedule;
    });
  }
}
