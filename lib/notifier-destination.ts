import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deliveryPartitionsPatterns, feedbackSigningKeyPartition } from '../functions/adapters/dynamodb/item-keys';
import type { NotifierKind } from '../functions/core/delivery';
import { defaultDeliveryLogDays, defaultDeliveryRetryHours, environmentNames } from '../functions/shared/settings';
import { encryptedQueue, ruleTargetDeadLetterQueue } from './dead-letter-queue';
import { LambdaFunction } from './lambda-function';

/**
 * What a notifier does with the table: reads and writes the delivery log (`DELIVERIES#<day>`) and what its
 * destination took (`DELIVERED#<destination>`), and nothing else (functions/adapters/dynamodb/item-keys.ts).
 */
export const notifierTableAccess = {
  actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:Query'],
  partitions: [...deliveryPartitionsPatterns],
};

/** How long one notifier invocation may take: a batch of ten, paced, with the HTTP timeouts of a slow destination. */
export const notifierTimeout = Duration.seconds(60);

/**
 * Lambda's advice for a queue it polls: a visibility timeout of at least six times the function timeout, so a batch
 * whose invocation was throttled is not received again while Lambda still retries it.
 */
const visibilityTimeout = Duration.seconds(notifierTimeout.toSeconds() * 6);

/**
 * A complete secret ARN ends in the "-" and six random characters Secrets Manager adds to the name; an ARN without
 * them is a partial one, which GetSecretValue takes as long as the name itself does not end so (Secrets Manager, as
 * this, would take it for complete).
 */
const completeSecretArn = /-[A-Za-z0-9]{6}$/;

/**
 * The delivery queue's own redrive, only a safety net: the notifier moves a message to the dead-letter queue
 * itself once the retry window has passed, and spaces its attempts to take fewer receives than this over the longest
 * window (core/delivery's receiveBudget; each retry is a receive). 1000 is the most SQS allows.
 */
const safetyNetReceiveCount = 1000;

export interface NotifierDestinationProps {
  /** The destination's id, unique in the deployment: `<route>-<kind>-<n>` or `crm-hubspot-<n>`. */
  readonly destinationId: string;
  readonly kind: NotifierKind;
  /** What the function's description says it delivers, e.g. `lead events of route sales`. */
  readonly purpose: string;
  /**
   * Slack and webhook: sign one-click sales feedback links into the events of leads in a tier, to `baseUrl` (the
   * ingest API), one per reason code. The key is read from the table (`FEEDBACK_SIGNING_KEY`), where the deploy's
   * bootstrap made it.
   * @default no links
   */
  readonly feedbackLinks?: { readonly baseUrl: string; readonly reasons: readonly string[] };
  /**
   * Name or ARN of the Secrets Manager secret the notifier reads at run time (slack: the webhook URL; webhook: the
   * signing secrets; hubspot: the token), so replacing its value needs no deploy. An ARN may be complete or partial
   * (without the six random characters Secrets Manager adds); one ending in "-" and six letters or digits is taken
   * for complete.
   */
  readonly secret: string;
  /** The table of the delivery log and of what each destination took. */
  readonly table: dynamodb.ITable;
  /** The bus the destination's rule listens on. */
  readonly eventBus: events.IEventBus;
  /** The lead events of this destination: its rule's pattern. */
  readonly eventPattern: events.EventPattern;
  /** Requests per second the notifier sends to the destination, at most. */
  readonly requestsPerSecond: number;
  /**
   * webhook: the URL it POSTs to.
   * @default - none (required for a webhook)
   */
  readonly webhookUrl?: string;
  /**
   * slack: the link to the lead in the user's tools, with `{type}`, `{id}` and `{workspace}`.
   * @default - no link
   */
  readonly entityUrlTemplate?: string;
  /**
   * hubspot: the unique company property holding pql-radar's account id.
   * @default - none (required for hubspot)
   */
  readonly companyIdProperty?: string;
  /**
   * Hours a lead event is retried, from when the delivery queue received it, before the notifier moves it to the
   * dead-letter queue.
   * @default 24 (defaultDeliveryRetryHours)
   */
  readonly retryHours?: number;
  /**
   * Days the delivery log keeps an attempt, and the destination remembers a lead event it took.
   * @default 14 (defaultDeliveryLogDays)
   */
  readonly deliveryLogDays?: number;
  /**
   * How long EventBridge keeps trying to put a lead event into the delivery queue before it goes to the target's
   * dead-letter queue.
   * @default Duration.hours(24)
   */
  readonly maxEventAge?: Duration;
  /**
   * Attempts EventBridge makes within maxEventAge to put a lead event into the delivery queue.
   * @default 185
   */
  readonly retryAttempts?: number;
  /**
   * How long the notifier's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * One slack, webhook or CRM destination: its EventBridge rule, a FIFO delivery queue and the notifier Lambda that
 * drains it.
 *
 * - The rule puts every lead event of the destination into the delivery queue, all in one message group (the
 *   destination id), so Lambda hands the notifier one batch at a time, in order: the notifier paces its requests to
 *   requestsPerSecond and a CRM sees the transitions of a lead in the order they happened. What EventBridge cannot
 *   put into the queue (retried for up to maxEventAge) goes to the target's dead-letter queue, a standard queue: an
 *   EventBridge dead-letter queue cannot be FIFO.
 * - The notifier (functions/notifier/handler.ts) gets batches of ten and reports the messages it did not deliver
 *   (ReportBatchItemFailures); it hides a message it will retry for its backoff (ChangeMessageVisibility) and, once
 *   the retry window (retryHours) has passed or the destination refused it for good, sends it to the FIFO
 *   dead-letter queue itself (DEAD_LETTER_QUEUE_URL). The delivery queue's own redrive to that dead-letter queue
 *   after 1000 receives is only a safety net.
 * - It reads its secret at run time, records each attempt in the delivery log and remembers what the destination
 *   took (duplicates from a redelivery or a replay are skipped); its role reaches only those partitions.
 *
 * Its three queues are the project's encrypted queues (lib/dead-letter-queue.ts: SQS-managed encryption, TLS only,
 * messages kept 14 days). The delivery queue and its dead-letter queue deduplicate on content: whether or not a
 * sender gives a deduplication id, SendMessage is accepted, and two sends of one body within five minutes are one
 * message.
 */
export class NotifierDestination extends Construct {
  /** The destination's id (`<route>-<kind>-<n>`, `crm-hubspot-<n>`). */
  public readonly destinationId: string;
  /** The FIFO queue in front of the notifier. */
  public readonly queue: sqs.Queue;
  /** The FIFO queue of what the notifier gave up on. */
  public readonly deadLetterQueue: sqs.Queue;
  /** The standard queue of what EventBridge could not put into the delivery queue. */
  public readonly targetDeadLetterQueue: sqs.Queue;
  public readonly function: lambda.Function;
  /** This destination's rule alone, e.g. for a replay to it and no one else. */
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: NotifierDestinationProps) {
    super(scope, id);
    const { destinationId, kind } = props;
    this.destinationId = destinationId;
    if (kind === 'webhook' && props.webhookUrl === undefined) throw new Error(`${destinationId}: a webhook destination needs its URL`);
    if (kind === 'hubspot' && props.companyIdProperty === undefined) throw new Error(`${destinationId}: a hubspot destination needs companyIdProperty`);

    this.deadLetterQueue = encryptedQueue(this, 'DeadLetterQueue', { fifo: true, contentBasedDeduplication: true });
    this.queue = encryptedQueue(this, 'Queue', {
      fifo: true,
      contentBasedDeduplication: true,
      visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: safetyNetReceiveCount },
    });
    this.targetDeadLetterQueue = ruleTargetDeadLetterQueue(this, 'TargetDeadLetterQueue');

    const secret = !props.secret.startsWith('arn:')
      ? secretsmanager.Secret.fromSecretNameV2(this, 'Secret', props.secret)
      : completeSecretArn.test(props.secret)
        ? secretsmanager.Secret.fromSecretCompleteArn(this, 'Secret', props.secret)
        : secretsmanager.Secret.fromSecretPartialArn(this, 'Secret', props.secret);

    const environment: Record<string, string> = {
      [environmentNames.tableName]: props.table.tableName,
      [environmentNames.destinationId]: destinationId,
      [environmentNames.destinationKind]: kind,
      // As given: a secret known by name is read by its name, not by the partial ARN CDK makes of it, which Secrets
      // Manager would take for a complete one when the name ends in "-" and six characters, and not find.
      [environmentNames.secretId]: props.secret,
      [environmentNames.requestsPerSecond]: String(props.requestsPerSecond),
      [environmentNames.retryHours]: String(props.retryHours ?? defaultDeliveryRetryHours),
      [environmentNames.deliveryLogDays]: String(props.deliveryLogDays ?? defaultDeliveryLogDays),
      [environmentNames.queueUrl]: this.queue.queueUrl,
      [environmentNames.deadLetterQueueUrl]: this.deadLetterQueue.queueUrl,
    };
    if (kind === 'webhook') environment[environmentNames.webhookUrl] = props.webhookUrl!;
    if (kind === 'slack' && props.entityUrlTemplate !== undefined) environment[environmentNames.entityUrlTemplate] = props.entityUrlTemplate;
    if (kind === 'hubspot') environment[environmentNames.companyIdProperty] = props.companyIdProperty!;
    if (props.feedbackLinks) {
      environment[environmentNames.feedbackBaseUrl] = props.feedbackLinks.baseUrl;
      environment[environmentNames.feedbackReasons] = props.feedbackLinks.reasons.join(',');
    }

    this.function = new LambdaFunction(this, 'Notifier', {
      entry: 'functions/notifier/handler.ts',
      description: `pql-radar: delivers ${props.purpose} to ${kind} destination ${destinationId}`,
      timeout: notifierTimeout,
      // It waits on HTTP answers and does little else: the smallest size halves the cost of that waiting.
      memorySize: 128,
      logRetention: props.logRetention,
      environment,
    }).function;
    // Receive, delete, and hide for a backoff or release (sqs:ChangeMessageVisibility, its batch call's too) on the
    // delivery queue: the event source mapping grants these (grantConsumeMessages) to the function's role.
    this.function.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true }));
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        // A secret known by name or partial ARN has an ARN ending in "-" and six random characters.
        resources: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
      }),
    );
    // SendMessage alone: the notifier knows the queue's URL from its environment.
    this.function.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] }));
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: notifierTableAccess.actions,
        resources: [props.table.tableArn],
        // The delivery log and the delivered keys, never the events, the leads or the write keys.
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': notifierTableAccess.partitions } },
      }),
    );
    if (props.feedbackLinks) {
      // The feedback links' signing key, read-only: the partition holds nothing else.
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['dynamodb:GetItem'],
          resources: [props.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [feedbackSigningKeyPartition] } },
        }),
      );
    }

    this.rule = new events.Rule(this, 'Rule', {
      eventBus: props.eventBus,
      description: `pql-radar: ${props.purpose} to ${destinationId}`,
      eventPattern: props.eventPattern,
      targets: [
        new targets.SqsQueue(this.queue, {
          messageGroupId: destinationId,
          deadLetterQueue: this.targetDeadLetterQueue,
          maxEventAge: props.maxEventAge ?? Duration.hours(24),
          retryAttempts: props.retryAttempts ?? 185,
        }),
      ],
    });
  }
}
