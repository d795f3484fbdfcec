import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { scheduleInvoker } from './schedule-invoker';
import { metaPartitionKey, workspacePartitionsPattern } from '../functions/adapters/dynamodb/item-keys';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';
import { defaultDirtyShards, defaultHealthPeriodDays, environmentNames, metricNames } from '../functions/shared/settings';
import { LambdaFunction } from './lambda-function';
import { customMetricDimensions, customMetricNamespace } from './monitoring';

/**
 * What the rule-health job does with the table: reads the shard counts it has had and the recorded backtests (GetItem
 * in `META`) and the lead states, through the `dirty` index's sweep partitions of those shards (Query) and the STATE
 * items by key (BatchGetItem, GetItem in `WS#*`), as `DynamoDbLeadReader.leadStates()` does. Nothing else: not the
 * write keys nor the feedback links' signing key, which have partitions of their own.
 */
export const ruleHealthTableAccess = {
  table: { actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'], partitions: [workspacePartitionsPattern, metaPartitionKey] },
  dirtyIndex: ['dynamodb:Query'],
};

export interface RuleHealthProps {
  /** The table of the EventStore: lead states are found through its `dirty` index. */
  readonly table: dynamodb.ITable;
  /** The rules' tier names in the rules file's order: the top tier of a workspace is the first that qualified leads. */
  readonly tierOrder: readonly string[];
  /**
   * Shards of the `dirty` index; must equal the evaluator's.
   * @default 4
   */
  readonly shards?: number;
  /**
   * Hours between two runs; also the alarm's period. At most 24, CloudWatch's longest alarm window.
   * @default 24
   */
  readonly everyHours?: number;
  /**
   * Days the report looks back over.
   * @default 90
   */
  readonly periodDays?: number;
  /**
   * The alarm fires when a workspace's top tier's lift, at the lower bound of its 95% interval, is below this: its
   * leads may convert no better than the entities the rules left alone.
   * @default 1.0
   */
  readonly liftAlarmBelow?: number;
  /**
   * Where the alarms notify, on ALARM and on OK.
   * @default - no notification: the alarm only shows in CloudWatch
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The rule-health job: a Lambda (functions/health/handler.ts) that builds `pql-radar health`'s report of each
 * workspace and emits its top tier's lift, run by EventBridge Scheduler every `everyHours`, reading the table only;
 * an alarm on the lift's lower bound, and one on a run that did not complete. The lift's alarm takes no data (no tier
 * qualified a lead, or the job did not run) as not breaching: a quiet period is not a bad rule. A run that failed, or
 * that Lambda dropped without running it, is what the failure alarm is for, and a run Scheduler could not start waits
 * in the dead-letter queue, which lib/monitoring.ts alarms on like every other. Nothing else is kept of a lost run:
 * it has nothing to redo that the next run does not do.
 */
export class RuleHealth extends Construct {
  public readonly handler: lambda.Function;
  /** The group of the job's schedule; only its schedule may assume the scheduler role. */
  public readonly scheduleGroup: scheduler.ScheduleGroup;
  public readonly schedule: scheduler.Schedule;
  /** Invocations Scheduler could not deliver after its retries; kept 14 days. */
  public readonly deadLetterQueue: sqs.Queue;
  /** On the lift's lower bound. */
  public readonly alarm: cloudwatch.Alarm;
  /**
   * On a run that did not complete within the last `everyHours`: an invocation Lambda dropped (AsyncEventsDropped),
   * after it failed or unrun.
   */
  public readonly failureAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RuleHealthProps) {
    super(scope, id);
    const everyHours = props.everyHours ?? 24;
    const liftAlarmBelow = props.liftAlarmBelow ?? 1;
    if (!Number.isInteger(everyHours) || everyHours < 1 || everyHours > 24) {
      throw new Error(`RuleHealth: everyHours must be a whole number from 1 to 24, got ${everyHours}`);
    }

    this.handler = new LambdaFunction(this, 'Handler', {
      entry: 'functions/health/handler.ts',
      description: 'pql-radar rule health: the top tier lift of each workspace, as metrics',
      memorySize: 1024,
      timeout: Duration.minutes(5),
      logRetention: props.logRetention,
      environment: {
        [environmentNames.tableName]: props.table.tableName,
        [environmentNames.dirtyShards]: String(props.shards ?? defaultDirtyShards),
        [environmentNames.tierOrder]: JSON.stringify(props.tierOrder),
        [environmentNames.healthPeriodDays]: String(props.periodDays ?? defaultHealthPeriodDays),
      },
    }).function;
    // A failed run is not retried: the next one reads the same states. Scheduler invokes the function asynchronously,
    // so Lambda drops the failed run's invocation, as it drops one that waited, throttled, longer than it keeps one (6
    // hours): the failure alarm counts both (AsyncEventsDropped), where the function's errors would miss the second.
    this.handler.configureAsyncInvoke({ retryAttempts: 0 });

    // Read-only, written out: grantReadData would add Scan, ConditionCheckItem, DescribeTable and every index.
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ruleHealthTableAccess.table.actions,
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ruleHealthTableAccess.table.partitions } },
      }),
    );
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ruleHealthTableAccess.dirtyIndex,
        resources: [`${props.table.tableArn}/index/${tableDefinition.dirtyIndex.indexName}`],
      }),
    );

    const { group, role: schedulerRole, deadLetterQueue } = scheduleInvoker(this, this.handler, 'pql-radar: EventBridge Scheduler runs the rule-health job');
    this.scheduleGroup = group;
    this.deadLetterQueue = deadLetterQueue;
    const target: scheduler.IScheduleTarget = {
      bind: () => ({
        arn: this.handler.functionArn,
        role: schedulerRole,
        input: scheduler.ScheduleTargetInput.fromObject({}),
        retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: Duration.hours(1).toSeconds() },
        deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
      }),
    };
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'pql-radar rule health',
      scheduleGroup: this.scheduleGroup,
      schedule: scheduler.ScheduleExpression.rate(Duration.hours(everyHours)),
      target,
    });
    this.schedule.node.addDependency(this.scheduleGroup);

    this.alarm = new cloudwatch.Alarm(this, 'LiftAlarm', {
      alarmName: `${Stack.of(this).stackName} rule health lift`,
      alarmDescription:
        `The top tier of a workspace had a lift whose 95% lower bound is below ${liftAlarmBelow} over the last ` +
        `${props.periodDays ?? defaultHealthPeriodDays} days: its leads may convert no better than the entities the rules left alone. ` +
        'See `pql-radar health` and the job\'s log (the workspace is in the metric record).',
      metric: new cloudwatch.Metric({
        namespace: customMetricNamespace,
        metricName: metricNames.tierLiftLowerBound,
        dimensionsMap: customMetricDimensions,
        statistic: 'Minimum',
        period: Duration.hours(everyHours),
      }),
      threshold: liftAlarmBelow,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No qualified leads, no lift: not a bad rule.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // Over the job's own period: a failed run keeps it in ALARM for about that long (till the next run), not five minutes.
    this.failureAlarm = new cloudwatch.Alarm(this, 'FailureAlarm', {
      alarmName: `${Stack.of(this).stackName} rule health failed`,
      alarmDescription:
        'A run of the rule-health job did not complete: it failed (a timeout on a large table, DynamoDB errors, a crash), ' +
        'or Lambda dropped it unrun (throttled for the 6 hours it keeps an invocation). It published no lift, so the lift ' +
        "alarm cannot fire. See the job's log group, and its throttles; it is not retried, the next run reads the same states.",
      metric: this.handler.metric('AsyncEventsDropped', { period: Duration.hours(everyHours), statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // No invocation, nothing dropped: a run Scheduler could not start is in the dead-letter queue.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      for (const alarm of [this.alarm, this.failureAlarm]) {
        alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
        alarm.addOkAction(new actions.SnsAction(props.alarmTopic));
      }
    }
  }
}
