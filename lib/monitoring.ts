import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { destinationDimension, metricNames, metricNamespace, serviceName } from '../functions/shared/settings';
import { costWidgets, type PricedTable } from './cost-widgets';

/**
 * Where the functions' Powertools metrics land: the namespace is POWERTOOLS_METRICS_NAMESPACE and the one
 * dimension is Powertools' default `service` dimension (POWERTOOLS_SERVICE_NAME), both set by LambdaFunction.
 * A metric published with any further dimension is a different metric, which these alarms would not see.
 */
export const customMetricNamespace = metricNamespace;
export const customMetricDimensions = { service: serviceName };

export interface MonitoringProps {
  /**
   * The ingest endpoint: its API for the request metrics and its function for the error alarm; with a function URL
   * (lib/ingest-api.ts' `functionUrl`), its requests, 5xx and the function's throttles too (its reserved concurrency
   * is what bounds that endpoint).
   */
  readonly ingestApi: { readonly httpApi: apigwv2.IHttpApi; readonly handler: lambda.IFunction; readonly functionUrl?: lambda.IFunctionUrl };
  /** The evaluator function. */
  readonly evaluator: lambda.IFunction;
  /**
   * The table stream's change capture (lib/change-capture.ts): alarmed when its reader's oldest unread record is over
   * `changeCaptureDelayThreshold` old (evaluation has fallen behind, or keeps failing), and on a batch in its failure
   * queue (one the event source mapping gave up on).
   * @default none
   */
  readonly changeCapture?: ChangeCaptureParts;
  /** @default Duration.minutes(10) */
  readonly changeCaptureDelayThreshold?: Duration;
  /**
   * The ingest buffer. The Kinesis one (lib/ingest-buffer.ts): alarmed on its consumer's errors, and when its
   * oldest unread record is over `ingestBufferDelayThreshold` old (accepted events are not being stored; records leave
   * the stream at its retention, 24 h by default, and are lost). The Firehose one (lib/ingest-firehose-buffer.ts):
   * alarmed on its loader's errors, on a notification in its dead-letter queue, when its oldest notification is over
   * `ingestBufferDelayThreshold` old, and when Firehose holds records it has not written to the bucket for
   * `ingestBufferDeliveryMargin` past its buffering interval (it drops them at 24 hours).
   * @default none
   */
  readonly ingestBuffer?: KinesisBufferParts | FirehoseBufferParts;
  /**
   * Well over the buffer's batching window (at most 15 minutes), and most of the default retention still left to fix the cause.
   * @default Duration.hours(1)
   */
  readonly ingestBufferDelayThreshold?: Duration;
  /**
   * How long past its buffering interval the Firehose buffer's oldest record may wait for delivery to the bucket
   * before its alarm fires: Firehose writes an object a little after the interval, and retries a failed write.
   * @default Duration.minutes(15)
   */
  readonly ingestBufferDeliveryMargin?: Duration;
  /** The lead destinations' dead-letter queues; each gets an alarm on its first message, described by its `advice`. */
  readonly deadLetterQueues: { queue: sqs.IQueue; advice: string }[];
  /**
   * The dead-letter queues of the schedules (the evaluator's, rule health's): a run Scheduler could not start. Each
   * gets an alarm on its first message, which says there is nothing to redrive.
   * @default none
   */
  readonly scheduleDeadLetterQueues?: sqs.IQueue[];
  /**
   * The notifiers of the Slack, webhook and HubSpot destinations (lib/notifier-destination.ts). Each gets an alarm when
   * the lead event it keeps retrying has waited `deliveryDelayThreshold` (a destination that is down, hours before
   * its events reach the dead-letter queue), one when an event has waited that long in its queue unread and the first is
   * not in alarm (the notifier is not running), and one on its function's errors.
   * @default none
   */
  readonly notifiers?: NotifierParts[];
  /**
   * How long a lead event may wait for its destination before the destination's alarm fires.
   * @default Duration.hours(1)
   */
  readonly deliveryDelayThreshold?: Duration;
  /**
   * The queues of the routes' sqs destinations, for the user's own consumers: each gets an alarm when a lead event has
   * waited in it `routeQueueDelayThreshold` (nothing consumes it, or its consumer is far behind; SQS drops it after 14 days).
   * @default none
   */
  readonly routeQueues?: sqs.IQueue[];
  /** @default Duration.days(1) */
  readonly routeQueueDelayThreshold?: Duration;
  /**
   * Alarms made elsewhere (rule health's): notified through the alarm topic like these, and shown with them.
   * @default none
   */
  readonly otherAlarms?: cloudwatch.AlarmBase[];
  /** Every function of the stack, for the error and duration widgets, and the cost widgets (lib/cost-widgets.ts). */
  readonly functions: lambda.IFunction[];
  /**
   * The table (lib/event-store.ts): the cost widgets price its consumed units and its indexes', by its class.
   */
  readonly table: PricedTable;
  /** Who gets the alarms by e-mail; each address must confirm the subscription once. */
  readonly alarmEmails: string[];
  /**
   * The evaluator lag (age of the oldest change not yet evaluated) above which the lag alarm fires, when it
   * stays above for three periods in a row. Must exceed `evaluationInterval` and `changeWait` together.
   * @default Duration.minutes(10), or a minute more than `evaluationInterval` and `changeWait` together when they reach 10
   */
  readonly lagThreshold?: Duration;
  /**
   * How long the evaluator lets a change wait on purpose (lib/evaluator.ts' `userEveryMinutes`): a waiting change counts
   * as lag, so the lag alarm's threshold must leave room for it and a run's interval after it.
   * @default Duration.minutes(0)
   */
  readonly changeWait?: Duration;
  /**
   * How often the evaluator runs, in whole minutes. The lag alarm's period is this or 5 minutes, whichever is
   * longer, so that a run that is simply not due yet never counts as missing data.
   * @default Duration.minutes(1)
   */
  readonly evaluationInterval?: Duration;
  /**
   * @default - a name generated by CloudFormation
   */
  readonly dashboardName?: string;
}

/** What Monitoring watches of a destination's notifier (lib/notifier-destination.ts). */
export interface NotifierParts {
  /** The destination's id: the dimension of its notifier's metrics. */
  readonly destinationId: string;
  readonly function: lambda.IFunction;
  /** Its delivery queue. */
  readonly queue: sqs.IQueue;
}

/** What Monitoring watches of the table stream's change capture (lib/change-capture.ts). */
export interface ChangeCaptureParts {
  /** The function reading the stream (the evaluator). */
  readonly handler: lambda.IFunction;
  /** The batches the event source mapping gave up on: their place in the stream. */
  readonly failureQueue: sqs.IQueue;
}

/** What Monitoring watches of the Kinesis ingest buffer (lib/ingest-buffer.ts). */
export interface KinesisBufferParts {
  /** The function reading the stream. */
  readonly consumer: lambda.IFunction;
  /** The stream, and its provisioned shards: the cost widgets price its records and shard hours. */
  readonly stream: kinesis.IStream;
  readonly shards: number;
}

/** What Monitoring watches of the Firehose ingest buffer (lib/ingest-firehose-buffer.ts). */
export interface FirehoseBufferParts {
  readonly deliveryStream: firehose.IDeliveryStream;
  /** The delivery stream's buffering interval. */
  readonly bufferingInterval: Duration;
  /** The bucket's notifications of new objects. */
  readonly queue: sqs.IQueue;
  /** Notifications of objects the loader kept failing on. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The function storing the objects. */
  readonly loader: lambda.IFunction;
}

const fiveMinutes = Duration.minutes(5);
/**
 * How long a notifier's `delivery stalled` alarm holds its actions for `delivery failing`, which explains its delay.
 * Wait: `delivery failing` normally goes first (the notifier reports the wait ahead at each attempt), but its metric
 * comes through the logs and both evaluate 5-minute periods, so the queue's age may cross a few minutes before.
 * Extension: once the destination is back, the events queued meanwhile have to be delivered, and a 5-minute period of
 * the queue's age pass under the threshold, before `delivery delayed` clears.
 */
const deliveryStalledSuppression = { waitPeriod: Duration.minutes(15), extensionPeriod: Duration.minutes(30) };

/**
 * Alarms to an SNS topic (e-mail) and one CloudWatch dashboard for pql-radar.
 *
 * Alarms: a message in any dead-letter queue, ingest 5xx, ingest and evaluator function errors, evaluator lag, and lead
 * events the outbox keeps; each notifier's waiting event and errors; a route queue nobody reads; with change capture,
 * its iterator age, a batch in its failure queue, and its stopping altogether; with the ingest buffer, its consumer's
 * errors, iterator age and stopping; with its Firehose variant, its loader's errors, dead letters and stopping, its
 * oldest notification's age and Firehose's S3 delivery freshness.
 * Each notifies on ALARM and again on OK, so whoever was woken up also learns when it is over.
 *
 * The topic is encrypted with a customer managed KMS key because CloudWatch cannot use the AWS managed
 * `aws/sns` key (its key policy cannot grant CloudWatch anything), and alarms would fail to publish silently.
 */
export class Monitoring extends Construct {
  public readonly alarmTopic: sns.Topic;
  /** The key that encrypts the alarm topic. */
  public readonly topicKey: kms.Key;
  /** Every alarm that notifies the topic, these and `otherAlarms`. */
  public readonly alarms: cloudwatch.AlarmBase[];
  public readonly dashboard: cloudwatch.Dashboard;
  /** The dashboard in the CloudWatch console, for a stack output. */
  public readonly dashboardUrl: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const evaluationInterval = props.evaluationInterval ?? Duration.minutes(1);
    const changeWait = props.changeWait ?? Duration.minutes(0);
    const lagThreshold = props.lagThreshold ?? Duration.minutes(Math.max(10, evaluationInterval.toMinutes({ integral: false }) + changeWait.toMinutes({ integral: false }) + 1));
    if (evaluationInterval.toSeconds() % 60 !== 0 || evaluationInterval.toSeconds() === 0) {
      throw new Error(`evaluationInterval must be a whole number of minutes, got ${evaluationInterval.toHumanString()}`);
    }
    if (lagThreshold.toSeconds() <= evaluationInterval.toSeconds() + changeWait.toSeconds()) {
      // Changes wait up to one interval for the next run by design, and a user's change its wait before that: a
      // threshold within them would call the schedule lag.
      throw new Error(
        `lagThreshold (${lagThreshold.toHumanString()}) must exceed evaluationInterval (${evaluationInterval.toHumanString()})` +
          (changeWait.toSeconds() > 0 ? ` and changeWait (${changeWait.toHumanString()}) together: lower evaluation.everyMinutes or evaluation.userEveryMinutes` : ''),
      );
    }

    this.topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: 'pql-radar: encrypts the alarm topic',
      enableKeyRotation: true,
      // It protects alarm notifications in flight only; nothing stored needs it once the stack is gone.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Publishing to an encrypted topic needs a data key; this key is for this topic alone.
    this.topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'pql-radar alarms',
      masterKey: this.topicKey,
      enforceSSL: true,
    });
    // The topic policy that enforceSSL creates replaces SNS's default policy, which is what lets CloudWatch
    // publish; only this account's alarms may.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    for (const email of props.alarmEmails) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));

    const deliveryDelayThreshold = props.deliveryDelayThreshold ?? Duration.hours(1);
    const routeQueueDelayThreshold = props.routeQueueDelayThreshold ?? Duration.days(1);
    const lagPeriod = Duration.seconds(Math.max(fiveMinutes.toSeconds(), evaluationInterval.toSeconds()));
    const lagMetric = customMetric(metricNames.evaluatorLagSeconds, 'Maximum', lagPeriod);

    /** Something that should keep up has fallen behind: an age (`metric`'s maximum), over two periods, reached `threshold`. */
    const behind = (id: string, what: string, description: string, metric: cloudwatch.IMetric, threshold: number) =>
      new cloudwatch.Alarm(this, id, {
        alarmName: `${stack.stackName} ${what} behind`,
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 2,
        // Nothing to read, no data: nothing waits.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    /** A stream's reader has fallen behind: its oldest unread record, over two periods, is older than `threshold`. */
    const readerBehind = (id: string, what: string, description: string, reader: lambda.IFunction, threshold: Duration) =>
      behind(id, what, description, reader.metric('IteratorAge', { period: fiveMinutes, statistic: 'Maximum' }), threshold.toMilliseconds());
    /** A message that exhausted its retries waits in `queue`. */
    const deadLetters = (queue: sqs.IQueue, description: string) =>
      new cloudwatch.Alarm(this, `DeadLetters-${relativePath(queue).replaceAll('/', '-')}`, {
        alarmName: `${stack.stackName} dead letters in ${relativePath(queue)}`,
        alarmDescription: description,
        metric: queue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        // SQS stops publishing metrics for an empty, idle queue: no data means no messages.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    /** A message has waited `threshold` in `queue` (its oldest message's age); an idle queue reports no data: nothing waits. */
    const waitedIn = (id: string, name: string, queue: sqs.IQueue, threshold: Duration, description: string) =>
      new cloudwatch.Alarm(this, `${id}-${relativePath(queue).replaceAll('/', '-')}`, {
        alarmName: `${stack.stackName} ${name} ${relativePath(queue)}`,
        alarmDescription: description,
        metric: queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
        threshold: threshold.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    /** Fires on any one of `metric` (a sum over five minutes); no data is no calls, so nothing failed. */
    const anyInFiveMinutes = (id: string, name: string, description: string, metric: cloudwatch.IMetric) =>
      new cloudwatch.Alarm(this, id, {
        alarmName: `${stack.stackName} ${name}`,
        alarmDescription: description,
        metric,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    /** The function storing the ingest buffer's requests failed. */
    const bufferErrors = (fn: lambda.IFunction, description: string) =>
      anyInFiveMinutes('IngestBufferErrors', 'ingest buffer errors', description, fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }));
    const bufferDelayThreshold = props.ingestBufferDelayThreshold ?? Duration.hours(1);
    const hour = Duration.hours(1);
    const twoHours = { evaluationPeriods: 2, datapointsToAlarm: 2 };
    // No actions of its own: the part of each `stopped` alarm that says events keep coming in.
    let eventsArriving: cloudwatch.Alarm | undefined;
    /**
     * A reader that has stopped altogether: events were accepted in each of the last two hours, and `reader` (a sum
     * that only its reads of them make) had none. Its age alarms cannot tell, having no data then. A composite of two
     * alarms rather than metric math, whose FILL of a metric with no data at all in the range is not documented.
     */
    const stopped = (id: string, what: string, description: string, reader: cloudwatch.IMetric) => {
      eventsArriving ??= new cloudwatch.Alarm(this, 'EventsArriving', {
        alarmName: `${stack.stackName} events arriving`,
        alarmDescription: 'Part of the `stopped` alarms, without actions: events were accepted in each of the last two hours.',
        metric: customMetric(metricNames.acceptedEvents, 'Sum', hour),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        ...twoHours,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      const idle = new cloudwatch.Alarm(this, `${id}Idle`, {
        alarmName: `${stack.stackName} ${what} idle`,
        alarmDescription: `Part of the \`${what} stopped\` alarm, without actions: no reads in each of the last two hours, which is right when no events come in.`,
        metric: reader,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        ...twoHours,
        // No reads, no data.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      return new cloudwatch.CompositeAlarm(this, id, {
        compositeAlarmName: `${stack.stackName} ${what} stopped`,
        alarmDescription: description,
        alarmRule: cloudwatch.AlarmRule.allOf(
          cloudwatch.AlarmRule.fromAlarm(eventsArriving, cloudwatch.AlarmState.ALARM),
          cloudwatch.AlarmRule.fromAlarm(idle, cloudwatch.AlarmState.ALARM),
        ),
      });
    };

    this.alarms = [
      ...props.deadLetterQueues.map(({ queue, advice }) => deadLetters(queue, `A message is waiting in the dead-letter queue ${relativePath(queue)}. ${advice}`)),
      ...(props.scheduleDeadLetterQueues ?? []).map((queue) =>
        deadLetters(
          queue,
          `EventBridge Scheduler could not start a scheduled run after its retries; the message in ${relativePath(queue)} ` +
            'holds its input, and its attributes the error (aws sqs receive-message --message-attribute-names All). ' +
            'There is nothing to redrive: the next scheduled run does the missed one\'s work. Fix the cause (a permission, ' +
            'the function throttled or deleted), then purge the queue.',
        ),
      ),
      ...(props.notifiers ?? []).flatMap(({ destinationId, function: notifier, queue }) => {
        const failing = new cloudwatch.Alarm(this, `DeliveryFailing-${destinationId}`, {
          alarmName: `${stack.stackName} delivery failing to ${destinationId}`,
          alarmDescription:
            `The lead event on which destination ${destinationId} keeps failing has waited, or will have by its next attempt, over ` +
            `${deliveryDelayThreshold.toHumanString()} (or its notifier cannot reach the table). \`pql-radar deliveries list --failed\` shows the answers; ` +
            'the events behind it wait too, in order. After the retry window the event goes to the dead-letter queue. ' +
            'If the event left its queue by other means (a purge), the alarm stays until the next delivery: ' +
            `aws cloudwatch set-alarm-state --alarm-name "${stack.stackName} delivery failing to ${destinationId}" --state-value OK --state-reason purged.`,
          // The notifier reports at each attempt the age its waiting event will have at the next one, and 0 once it
          // delivers: SQS leaves a message received again and again out of the queue's age of its oldest message.
          metric: customMetric(metricNames.leadDeliveryWaitSeconds, 'Maximum', fiveMinutes).with({
            dimensionsMap: { ...customMetricDimensions, [destinationDimension]: destinationId },
          }),
          threshold: deliveryDelayThreshold.toSeconds(),
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          // Between two attempts (a backoff of up to 15 minutes, a Retry-After of hours) the notifier reports
          // nothing: the state stays what the last attempt made it.
          treatMissingData: cloudwatch.TreatMissingData.IGNORE,
        });
        const stalledName = `${stack.stackName} delivery stalled for ${destinationId}`;
        // What the notifier cannot report: it is not reading its queue at all.
        const delayed = waitedIn(
          'DeliveryDelayed',
          'delivery delayed in',
          queue,
          deliveryDelayThreshold,
          `Part of the \`${stalledName}\` alarm, without actions: a lead event has waited over ${deliveryDelayThreshold.toHumanString()} ` +
            `in the delivery queue of ${destinationId} (SQS leaves the event being retried out of this age).`,
        );
        return [
          failing,
          // A destination that is down fills its queue behind the event retried: one page for it, `delivery failing`'s.
          new cloudwatch.CompositeAlarm(this, `DeliveryStalled-${destinationId}`, {
            compositeAlarmName: stalledName,
            alarmDescription:
              `A lead event has waited over ${deliveryDelayThreshold.toHumanString()} in the delivery queue of ${destinationId} ` +
              `(\`delivery delayed in ${relativePath(queue)}\`), and \`delivery failing to ${destinationId}\` does not explain it: it is not in ` +
              `alarm, did not go into alarm within ${deliveryStalledSuppression.waitPeriod.toHumanString()}, and did not clear less than ` +
              `${deliveryStalledSuppression.extensionPeriod.toHumanString()} ago (while it is in alarm, the events wait behind the one being retried, ` +
              'and only it notifies). The notifier is not reading the queue: its event source mapping disabled (aws lambda ' +
              'list-event-source-mappings --function-name <the notifier>; aws lambda update-event-source-mapping --uuid <its UUID> --enabled), ' +
              `its concurrency set to 0, or the function failing (see \`notifier errors for ${destinationId}\`); or, the destination back, it ` +
              'has not delivered the events queued meanwhile (see its log group).',
            alarmRule: cloudwatch.AlarmRule.fromAlarm(delayed, cloudwatch.AlarmState.ALARM),
            actionsSuppressor: failing,
            actionsSuppressorWaitPeriod: deliveryStalledSuppression.waitPeriod,
            actionsSuppressorExtensionPeriod: deliveryStalledSuppression.extensionPeriod,
          }),
          anyInFiveMinutes(
            `NotifierErrors-${destinationId}`,
            `notifier errors for ${destinationId}`,
            `The notifier of destination ${destinationId} failed (a crash, a timeout, a failed cold start, or the dead-letter queue refused a message that is not a lead event): ` +
              "its batch is received again after the queue's visibility timeout, so its lead events are late, not lost. See its log group.",
            notifier.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
          ),
        ];
      }),
      ...(props.routeQueues ?? []).map((queue) =>
        waitedIn(
          'LeadsUnread',
          'lead events unread in',
          queue,
          routeQueueDelayThreshold,
          `A lead event has waited over ${routeQueueDelayThreshold.toHumanString()} in ${relativePath(queue)}, a route's queue for your own ` +
            'consumers (the stack output LeadQueueUrl...): nothing consumes it, or its consumer is far behind. SQS drops a message after 14 days. ' +
            'Point a consumer at it, or replace the route\'s sqs destination with one pql-radar delivers (slack, webhook, email, lambda).',
        ),
      ),
      new cloudwatch.Alarm(this, 'LeadEventsUnpublished', {
        alarmName: `${stack.stackName} lead events unpublished`,
        alarmDescription:
          'Lead events have stayed in the evaluator\'s outbox for 15 minutes: EventBridge refused them at every run (a failed entry of PutEvents, ' +
          'after its retries), so no destination has heard of those transitions. Each run tries them again, in order, and nothing is lost. ' +
          'The evaluator\'s log line "lead events left in the outbox" gives the count and the reasons EventBridge gave (its error codes). ' +
          '(When no call gets through at all, the run fails instead: see `evaluator errors`.)',
        metric: customMetric(metricNames.leadEventsUnpublished, 'Sum', fiveMinutes),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // One refused call is retried a minute later; only a refusal that lasts is worth waking someone.
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      ...(props.changeCapture
        ? [
            readerBehind(
              'ChangeCaptureBehind',
              'change capture',
              'The evaluator has not read the table stream for a while (its iterator age is high): new events are not ' +
                'evaluated. Its logs say why; a batch still failing after its retries, or an hour, goes to the failure queue.',
              props.changeCapture.handler,
              props.changeCaptureDelayThreshold ?? Duration.minutes(10),
            ),
            stopped(
              'ChangeCaptureStopped',
              'change capture',
              'Events were accepted in each of the last two hours, and the evaluator read nothing of the table stream: its event ' +
                'source mapping is disabled or gone (aws lambda list-event-source-mappings --function-name <the evaluator>), so new events ' +
                "are not evaluated until their users' next sweep. Enable it (aws lambda update-event-source-mapping --uuid <its UUID> --enabled; one deleted has to be created again): " +
                'it reads on from where it stopped, and records stay in the stream 24 hours; a deploy does not undo a change made outside ' +
                "CloudFormation. Other causes: the ingest buffer's alarms fire too (nothing was stored), or every event accepted was a " +
                'resend of one already stored (an identical write makes no stream record).',
              // Only the stream's invocations report an iterator age: the scheduled runs do not.
              props.changeCapture.handler.metric('IteratorAge', { period: hour, statistic: 'SampleCount' }),
            ),
            deadLetters(
              props.changeCapture.failureQueue,
              'The evaluator gave up on a batch of the table stream: it could neither evaluate its changes nor list them ' +
                'for the scheduled run, or the batch was over an hour old (throttled, e.g. under its reserved concurrency). ' +
                `The message in ${relativePath(props.changeCapture.failureQueue)} names the stream ` +
                "shard, the sequence numbers and the times of the batch's first and last records, not its keys: their users " +
                "are evaluated at their next event or sweep. See why in the evaluator's logs (stream batch neither evaluated " +
                'nor listed) or its throttles, fix the cause, then delete the message. The README says how to evaluate the records at once.',
            ),
          ]
        : []),
      ...(props.ingestBuffer && 'consumer' in props.ingestBuffer
        ? [
            readerBehind(
              'IngestBufferBehind',
              'ingest buffer',
              'The ingest buffer has not written its stream to the table for a while (its iterator age is high): accepted ' +
                "events are neither stored nor evaluated. The consumer's logs say why; a record older than the stream's " +
                'retention (24 hours by default) is lost.',
              props.ingestBuffer.consumer,
              bufferDelayThreshold,
            ),
            stopped(
              'IngestBufferStopped',
              'ingest buffer',
              "Events were accepted in each of the last two hours, and the ingest buffer's consumer read nothing of its stream: its " +
                'event source mapping is disabled or gone (aws lambda list-event-source-mappings --function-name <the consumer>). ' +
                "Accepted events are neither stored nor evaluated, and a record older than the stream's retention (24 hours by default) " +
                'is lost. Enable it (aws lambda update-event-source-mapping --uuid <its UUID> --enabled): it reads on from where it stopped; ' +
                'a deploy does not undo a change made outside CloudFormation.',
              props.ingestBuffer.consumer.metricInvocations({ period: hour, statistic: 'Sum' }),
            ),
            bufferErrors(
              props.ingestBuffer.consumer,
              "The ingest buffer's consumer failed (DynamoDB errors, a timeout, a crash): the batch is retried, split, until " +
                'it is stored or leaves the stream. See its log group.',
            ),
          ]
        : []),
      ...(props.ingestBuffer && 'loader' in props.ingestBuffer
        ? [
            behind(
              'IngestBufferBehind',
              'ingest buffer',
              `An object of accepted requests has waited over ${bufferDelayThreshold.toHumanString()} for the ingest buffer's loader ` +
                "(its queue's oldest notification): its events are neither stored nor evaluated. The loader's logs say why; " +
                'each failed object is retried, then its notification goes to the dead-letter queue.',
              props.ingestBuffer.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
              bufferDelayThreshold.toSeconds(),
            ),
            stopped(
              'IngestBufferStopped',
              'ingest buffer',
              "Events were accepted in each of the last two hours, and the ingest buffer's loader ran not once: Firehose writes nothing " +
                "to the bucket (then `ingest buffer delivery behind` fires too), the bucket no longer notifies the loader's queue of new " +
                "objects, or the loader's event source mapping is disabled (then `ingest buffer behind` fires too: notifications wait). " +
                'Accepted events are neither stored nor evaluated; their objects wait in the bucket until its retention. A deploy does ' +
                "not undo a change made outside CloudFormation: the README's Ingest buffer says how to restore each and have the " +
                'objects written meanwhile loaded.',
              props.ingestBuffer.loader.metricInvocations({ period: hour, statistic: 'Sum' }),
            ),
            behind(
              'IngestBufferDeliveryBehind',
              'ingest buffer delivery',
              "Firehose holds accepted requests it has not written to the ingest buffer's bucket (its S3 delivery freshness is " +
                'well over the buffering interval): see the delivery stream\'s error logs. Firehose retries for 24 hours, then drops them.',
              props.ingestBuffer.deliveryStream.metric('DeliveryToS3.DataFreshness', { period: fiveMinutes, statistic: 'Maximum' }),
              props.ingestBuffer.bufferingInterval.plus(props.ingestBufferDeliveryMargin ?? Duration.minutes(15)).toSeconds(),
            ),
            anyInFiveMinutes(
              'IngestBufferErrors',
              'ingest buffer errors',
              "The ingest buffer's loader failed on an object (DynamoDB or S3 errors, a timeout, a crash): the object stays in the " +
                'bucket and is retried every 30 minutes, then its notification goes to the dead-letter queue. See its log group.',
              // Its own failures are reported, not thrown (BufferObjectsFailed); a timeout or a crash is a Lambda error.
              new cloudwatch.MathExpression({
                expression: 'FILL(errors, 0) + FILL(failed, 0)',
                usingMetrics: {
                  errors: props.ingestBuffer.loader.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
                  failed: customMetric(metricNames.bufferObjectsFailed, 'Sum', fiveMinutes),
                },
                period: fiveMinutes,
              }),
            ),
            deadLetters(
              props.ingestBuffer.deadLetterQueue,
              "The ingest buffer's loader kept failing on an object of accepted requests: its notification is in the dead-letter " +
                `queue ${relativePath(props.ingestBuffer.deadLetterQueue)} and the object in the bucket, until the bucket's ` +
                "retention. See why in the loader's logs, fix the cause, then move the notifications back to the loader's queue " +
                '(aws sqs start-message-move-task --source-arn <dead-letter queue ARN>).',
            ),
          ]
        : []),
      anyInFiveMinutes(
        'Ingest5xx',
        'ingest 5xx',
        'The HTTP API answered 5xx: on an ingest route, events were not stored and SDKs are retrying; the lead status route shares the API. ' +
          'See the API access logs (their route) and the ingest function errors.',
        props.ingestApi.httpApi.metricServerError({ period: fiveMinutes, statistic: 'Sum' }),
      ),
      ...(props.ingestApi.functionUrl
        ? [
            anyInFiveMinutes(
              'IngestFunctionUrl5xx',
              'ingest function URL 5xx',
              'The ingest function URL answered 5xx: events were not stored and SDKs are retrying. See the ingest function errors and its log group.',
              props.ingestApi.handler.metric('Url5xxCount', { period: fiveMinutes, statistic: 'Sum' }),
            ),
            anyInFiveMinutes(
              'IngestThrottled',
              'ingest throttled',
              "The ingest function was throttled, at its reserved concurrency (ingest.functionUrl.reservedConcurrency) or the account's " +
                'limit: callers got 429 from the function URL or a 5xx from the HTTP API, and retry, so events arrive late. Raise the reservation if this is traffic rather than a flood.',
              props.ingestApi.handler.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }),
            ),
          ]
        : []),
      anyInFiveMinutes(
        'IngestErrors',
        'ingest function errors',
        'The ingest function failed (crash, timeout or a failed cold start). See its log group.',
        props.ingestApi.handler.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      ),
      // An evaluator that is not invoked at all produces no data here; the lag alarm is the one that catches it.
      anyInFiveMinutes(
        'EvaluatorErrors',
        'evaluator errors',
        'The evaluator failed (e.g. a rules file that does not load, a timeout, DynamoDB errors, or a run out of memory: ' +
          "Max Memory Used at the function's memory in its log; raise evaluation.memoryMb). " +
          'Changed entities stay listed and are evaluated by the next successful run. See its log group.',
        props.evaluator.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      ),
      anyInFiveMinutes(
        'EntitiesNotEvaluated',
        'entities not evaluated',
        "The evaluation of some entities threw (an item it cannot read, a bug a rare input finds, a user with more events than the evaluator's memory lets it read at once: TooManyEventsError, raise evaluation.memoryMb): each is left for the next run, which tries it again, and the rest of its shard goes on. " +
          "The evaluator's log line \"entities not evaluated\" gives their types and errors; `pql-radar evaluate --once --rules <the rules file of your deployment config> --event-bus <its bus>` against the table names them.",
        customMetric(metricNames.entitiesFailed, 'Sum', fiveMinutes),
      ),
      new cloudwatch.Alarm(this, 'EvaluatorLag', {
        alarmName: `${stack.stackName} evaluator lag`,
        alarmDescription:
          `Changes have waited more than ${lagThreshold.toHumanString()} to be evaluated, or the evaluator has ` +
          'reported nothing (not scheduled, or failing before it reports): leads are late. First see the evaluator errors alarm and ' +
          'the schedule dead-letter queue, then its "evaluation run" log lines (incompleteShards: runs out of time); ' +
          'if runs are healthy but behind, raise evaluation.shards.',
        metric: lagMetric,
        threshold: lagThreshold.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        // The evaluator reports its lag on every run, so silence means it is not running: that is lag too.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      }),
      ...(props.otherAlarms ?? []),
    ];
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    }

    const api = props.ingestApi.httpApi;
    const sum = { period: fiveMinutes, statistic: 'Sum' };
    const urlMetric = props.ingestApi.functionUrl ? (name: string, label: string) => props.ingestApi.handler.metric(name, { ...sum, label }) : undefined;
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 6, height: 6, ...extra });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(24),
      widgets: [
        [
          graph('Ingest requests', [api.metricCount({ ...sum, label: 'requests' }), ...(urlMetric ? [urlMetric('UrlRequestCount', 'function URL requests')] : [])]),
          graph('Ingest 4xx and 5xx', [
            api.metricClientError({ ...sum, label: '4xx' }),
            api.metricServerError({ ...sum, label: '5xx' }),
            ...(urlMetric ? [urlMetric('Url4xxCount', 'function URL 4xx'), urlMetric('Url5xxCount', 'function URL 5xx')] : []),
          ]),
          graph('Ingest latency (ms)', [
            api.metricLatency({ period: fiveMinutes, statistic: 'p50', label: 'p50' }),
            api.metricLatency({ period: fiveMinutes, statistic: 'p99', label: 'p99' }),
            api.metricIntegrationLatency({ period: fiveMinutes, statistic: 'p99', label: 'integration p99' }),
          ]),
          graph('Events accepted and rejected', [
            customMetric(metricNames.acceptedEvents, 'Sum', fiveMinutes, 'accepted'),
            customMetric(metricNames.rejectedEvents, 'Sum', fiveMinutes, 'rejected'),
          ]),
        ],
        [
          graph('Evaluator: entities and lead transitions', [
            customMetric(metricNames.entitiesEvaluated, 'Sum', fiveMinutes, 'entities evaluated'),
            customMetric(metricNames.leadTransitions, 'Sum', fiveMinutes, 'lead transitions notified (lead events)'),
            customMetric(metricNames.leadEventsUnpublished, 'Sum', fiveMinutes, 'lead events left in the outbox'),
            customMetric(metricNames.changesNotEvaluated, 'Sum', fiveMinutes, 'stream changes not evaluated, listed for the scheduled run'),
            customMetric(metricNames.entitiesFailed, 'Sum', fiveMinutes, 'entities whose evaluation threw, left for the next run'),
          ]),
          graph('Evaluator lag (s)', [lagMetric.with({ label: 'oldest unevaluated change' })], {
            leftAnnotations: [{ value: lagThreshold.toSeconds(), label: 'alarm threshold' }],
          }),
          graph('Function errors', props.functions.map((fn) => fn.metricErrors({ ...sum, label: relativePath(fn) }))),
          graph(
            'Function duration p99 (ms)',
            props.functions.map((fn) => fn.metricDuration({ period: fiveMinutes, statistic: 'p99', label: relativePath(fn) })),
          ),
        ],
        [
          graph(
            'Dead-letter queues: messages waiting',
            [
              ...props.deadLetterQueues.map(({ queue }) => queue),
              ...(props.scheduleDeadLetterQueues ?? []),
              ...(props.changeCapture ? [props.changeCapture.failureQueue] : []),
              ...(props.ingestBuffer && 'loader' in props.ingestBuffer ? [props.ingestBuffer.deadLetterQueue] : []),
            ].map((queue) =>
              queue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: 'Maximum', label: relativePath(queue) }),
            ),
            { width: 12 },
          ),
          new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 12, height: 6 }),
        ],
        [
          graph(
            "Rule health: each workspace's top tier lift, live and as its backtest promised",
            [
              tierLiftSearch(metricNames.tierLift, 'live'),
              tierLiftSearch(metricNames.tierLiftLowerBound, 'live, 95% lower bound'),
              tierLiftSearch(metricNames.tierLiftPromised, 'backtest'),
            ],
            { width: 24, leftAnnotations: [{ value: 1, label: 'no better than chance' }] },
          ),
        ],
        costWidgets({
          table: props.table,
          functions: props.functions,
          httpApi: api,
          acceptedEvents: customMetric(metricNames.acceptedEvents, 'Sum', fiveMinutes),
          leadEvents: customMetric(metricNames.leadTransitions, 'Sum', fiveMinutes),
          buffer: props.ingestBuffer,
        }),
      ],
    });

    this.dashboardUrl =
      `https://${stack.region}.console.aws.amazon.com/cloudwatch/home?region=${stack.region}` +
      `#dashboards/dashboard/${this.dashboard.dashboardName}`;
  }
}

/**
 * The rule-health job's daily figure for every tier it reported (the `Tier` dimension names the top tier, which the
 * rules decide): a search, so a renamed tier shows without a deploy.
 */
function tierLiftSearch(metricName: string, label: string): cloudwatch.MathExpression {
  const day = Duration.days(1);
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{${customMetricNamespace},Tier,service} MetricName="${metricName}"', 'Maximum', ${day.toSeconds()})`,
    label,
    period: day,
    usingMetrics: {},
  });
}

function customMetric(metricName: string, statistic: string, period: Duration, label?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: customMetricNamespace,
    metricName,
    dimensionsMap: customMetricDimensions,
    statistic,
    period,
    label,
  });
}

/** A construct's path inside its stack: readable, unique, and known at synth time (unlike its physical name). */
function relativePath(construct: IConstruct): string {
  return construct.node.path.slice(Stack.of(construct).node.path.length + 1);
}
