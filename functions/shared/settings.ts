import { integerFrom, requiredText } from './environment';

/**
 * The settings that ingest, the evaluator, the CLI, the local runtime and the stack must agree on, defined once: the
 * defaults a deployment starts from, the environment variables the constructs in lib/ set and the functions read,
 * and the metrics the functions emit and the alarms and dashboard watch.
 */

/** Shards of the change lists and of the sweep index: change capture spreads entities over them, the evaluator runs one invocation per shard. */
export const defaultDirtyShards = 4;
/**
 * Deployed, the longest a change list write may take (adapters/dynamodb/change-lists.ts): change capture abandons a
 * write that takes longer, and an evaluator run leaves the lists written this recently to the next run.
 */
export const deployedListSettleMs = 20_000;
/**
 * Deployed, the minutes an account its members move waits after its last evaluation (evaluate-leads'
 * accountIntervalMs): an account's evaluation reads every member, so a large, busy one judged at every minute's run
 * costs in proportion to its members each minute.
 */
export const defaultAccountEveryMinutes = 10;
/**
 * Deployed, the minutes a user with new events waits after its last evaluation (evaluate-leads' userIntervalMs): an
 * evaluation recounts the changed day's events, so a user active all day, judged at every minute's run, would cost
 * reads that grow with the square of its day's events. At most `maxUserEveryMinutes`.
 */
export const defaultUserEveryMinutes = 5;
/** The most a user's change may wait: a lead should never be long in coming. */
export const maxUserEveryMinutes = 5;
/**
 * Deployed, the evaluator's memory (MB), and with it its CPU: Lambda gives a whole vCPU at 1,769 MB, about 0.58 at
 * this. What a shard evaluates a second follows its CPU, and the most events a run holds at once (those of its users'
 * changed days, every one on a rebuild: entity-rows' eventCharsReadableAtOnce) its memory.
 */
export const defaultEvaluatorMemoryMb = 1024;
/** The memory (MB) Lambda lets a function have. */
export const lambdaMemoryMb = { min: 128, max: 10_240 } as const;
/** The evaluator's Lambda timeout: no run lasts longer (the outbox waits this long, twice, for a save in flight). */
export const evaluatorTimeoutMinutes = 5;
/** Days an event, and the daily rollup summing it up, is kept after its own time. */
export const defaultRetentionDays = 400;
/** Days a message ingest rejected stays in the quarantine for an operator to list. */
export const defaultQuarantineRetentionDays = 14;

/** Days the delivery log keeps each attempt, and each destination remembers the idempotency keys it took. */
export const defaultDeliveryLogDays = 14;
/** Days rule health looks back over by default: the daily job, `pql-radar health` and the /leads/health page. */
export const defaultHealthPeriodDays = 90;

/** Hours a lead event is retried at a destination before it goes to the destination's dead-letter queue. */
export const defaultDeliveryRetryHours = 24;

/**
 * The environment variables lib/ sets and the functions read. Knobs a function reads but the stack never sets
 * (KEY_CACHE_SECONDS, SAFETY_MARGIN_MS) are named only in that function's schema.
 */
export const environmentNames = {
  tableName: 'TABLE_NAME',
  dirtyShards: 'DIRTY_SHARDS',
  retentionDays: 'RETENTION_DAYS',
  quarantineRetentionDays: 'QUARANTINE_RETENTION_DAYS',
  eventBusName: 'EVENT_BUS_NAME',
  rulesFile: 'RULES_FILE',
  /** The rules file's time zone, for the days ingest stores events by. */
  timeZone: 'TIME_ZONE',
  /** The Kinesis ingest buffer's stream, where ingest's Kinesis entry (functions/ingest/kinesis-handler.ts) puts requests of one message. */
  ingestStream: 'INGEST_STREAM_NAME',
  /**
   * The Firehose ingest buffer's delivery stream (the default buffer), where ingest's Firehose entry
   * (functions/ingest/firehose-handler.ts) puts requests of one message.
   */
  ingestDeliveryStream: 'INGEST_DELIVERY_STREAM_NAME',
  runIntervalSeconds: 'RUN_INTERVAL_SECONDS',
  /** The evaluator: the least time between two evaluations of an account its members move, in seconds (0: none). */
  accountIntervalSeconds: 'ACCOUNT_INTERVAL_SECONDS',
  /** The evaluator: the least time between two evaluations of a user with new events, in seconds (0: none). */
  userIntervalSeconds: 'USER_INTERVAL_SECONDS',
  /** The rule-health job: the rules' tier names in order (comma-separated), and the days it looks back over. */
  tierOrder: 'TIER_ORDER',
  healthPeriodDays: 'HEALTH_PERIOD_DAYS',
  /** A Slack or webhook notifier's feedback links: the ingest API's base URL they point at, and the rules' reason codes. */
  feedbackBaseUrl: 'FEEDBACK_BASE_URL',
  feedbackReasons: 'FEEDBACK_REASONS',
  /** The notifier's destination: its id (`<route>-<kind>-<n>`), kind, secret, and the knobs of its delivery. */
  destinationId: 'DESTINATION_ID',
  destinationKind: 'DESTINATION_KIND',
  /** The notifier's secret as GetSecretValue's SecretId takes it: its name, or its complete or partial ARN. */
  secretId: 'SECRET_ID',
  webhookUrl: 'WEBHOOK_URL',
  entityUrlTemplate: 'ENTITY_URL_TEMPLATE',
  companyIdProperty: 'COMPANY_ID_PROPERTY',
  requestsPerSecond: 'REQUESTS_PER_SECOND',
  retryHours: 'RETRY_HOURS',
  deliveryLogDays: 'DELIVERY_LOG_DAYS',
  queueUrl: 'QUEUE_URL',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  /** Powertools' own variables: the service name is the one dimension of every custom metric. */
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;

/**
 * The table settings ingest, change capture, the evaluator and rule health read from their environment, with the same
 * defaults: plain readers (./environment.ts), so that this module, which every function imports, carries no zod;
 * ./table-environment.ts gives them to rule health, which reads the rest of its settings with zod. A function rather
 * than an object, so that the bundles that read no table settings leave it and the readers out.
 */
export function tableVariables() {
  return {
    [environmentNames.tableName]: requiredText('the DynamoDB table of pql-radar'),
    [environmentNames.dirtyShards]: integerFrom(1, defaultDirtyShards),
    [environmentNames.retentionDays]: integerFrom(1, defaultRetentionDays),
  };
}

/** Powertools' service name and the namespace of the custom metrics, as LambdaFunction sets them. */
export const serviceName = 'pql-radar';
export const metricNamespace = 'pql-radar';

/** The dimension, beside Powertools' `service`, naming the destination of a notifier's per-destination metrics. */
export const destinationDimension = 'destination';

/** The custom metrics the functions emit; lib/monitoring.ts alarms on and charts them under these names. */
export const metricNames = {
  acceptedEvents: 'AcceptedEvents',
  rejectedEvents: 'RejectedEvents',
  ingestErrors: 'IngestErrors',
  entitiesEvaluated: 'EntitiesEvaluated',
  /**
   * The transitions a run saved with a lead event, those `policy.notify` names: what the bus will carry (the cost
   * dashboard's lead events). A transition the policy does not notify is in the lead's state and history alone.
   */
  leadTransitions: 'LeadTransitions',
  leadEventsUnpublished: 'LeadEventsUnpublished',
  evaluatorLagSeconds: 'EvaluatorLagSeconds',
  changesLeft: 'ChangesLeft',
  /** Changes of stream batches whose evaluation failed, listed for the scheduled run instead (functions/evaluator/handler.ts). */
  changesNotEvaluated: 'ChangesNotEvaluated',
  /** Entities whose evaluation threw, left for the next run (core/evaluate-leads' failed): alarmed on. */
  entitiesFailed: 'EntitiesFailed',
  leadDeliveries: 'LeadDeliveries',
  leadDeliveriesRetried: 'LeadDeliveriesRetried',
  leadDeliveriesDeadLettered: 'LeadDeliveriesDeadLettered',
  /**
   * How long the lead event a notifier's batch left waiting will have waited, since its queue received it, at its next
   * attempt; 0 when the batch left none: by destination (`destinationDimension`), for its `delivery failing` alarm.
   */
  leadDeliveryWaitSeconds: 'LeadDeliveryWaitSeconds',
  /**
   * Buffer objects the Firehose variant's loader failed to load (functions/ingest-buffer-loader/handler.ts): it reports
   * the message failed rather than throwing, which Lambda's errors do not count. Alarmed on with them.
   */
  bufferObjectsFailed: 'BufferObjectsFailed',
  /**
   * The rule-health job: the top tier's lift per workspace, its 95% interval's lower bound, and the lift the backtest
   * recorded for the same rules version promised (when one is recorded).
   */
  tierLift: 'TierLift',
  tierLiftLowerBound: 'TierLiftLowerBound',
  tierLiftPromised: 'TierLiftPromised',
} as const;
