import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ChangeMessageVisibilityBatchCommand, ChangeMessageVisibilityCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { DynamoDbDeliveryLedger } from '../adapters/dynamodb/delivery-ledger';
import { cachedSecret, hubspotDestination, slackDestination, webhookDestination, withFeedbackLinks, type SecretSource } from '../adapters/destinations';
import { readFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { defaultCompanyIdProperty } from '../core/crm-properties';
import { Pacer } from '../adapters/pacer';
import { defaultDeliveryPolicy, deliverLeadEvent, nextStep, notifierKinds, type DeliveryDecision, type LeadDestination } from '../core/delivery';
import { leadEventDetailSchema, leadEventTypes, type LeadEvent } from '../core/lead-event';
import { logger, metrics } from '../shared/powertools';
import { defaultDeliveryLogDays, defaultDeliveryRetryHours, destinationDimension, environmentNames as names, metricNames } from '../shared/settings';
import { longLivedClientOptions } from '../shared/sdk-clients';

/**
 * The notifier of one destination (Slack, a signed webhook, HubSpot), fed by the destination's SQS FIFO delivery
 * queue, which its EventBridge rule fills. For each message, in order: core/delivery's one attempt (deduplicated on
 * the idempotency key, logged), then what the queue should do: delete it, hide it until the backoff or Retry-After
 * has passed (the message and everything after it in the batch are reported failed, so the FIFO group waits), or,
 * once the retry window has passed, move it to the dead-letter queue.
 */

const environment = z
  .object({
    [names.tableName]: z.string().min(1),
    [names.destinationId]: z.string().min(1),
    [names.destinationKind]: z.enum(notifierKinds),
    /** Slack: the incoming-webhook URL; webhook: the whsec_ signing secret(s); hubspot: the private-app token. */
    [names.secretId]: z.string().min(1),
    [names.webhookUrl]: z.string().url().optional(),
    [names.entityUrlTemplate]: z.string().url().optional(),
    [names.companyIdProperty]: z.string().min(1).optional(),
    [names.requestsPerSecond]: z.coerce.number().positive(),
    [names.retryHours]: z.coerce.number().positive().default(defaultDeliveryRetryHours),
    [names.deliveryLogDays]: z.coerce.number().int().positive().default(defaultDeliveryLogDays),
    [names.queueUrl]: z.string().url(),
    [names.deadLetterQueueUrl]: z.string().url(),
    [names.feedbackBaseUrl]: z.string().url().optional(),
    /** Comma-separated reason codes of the rules file (lib/config.ts), one link each. */
    [names.feedbackReasons]: z.string().default(''),
  })
  .parse(process.env);

const secretsManager = new SecretsManagerClient(longLivedClientOptions);
const sqs = new SQSClient(longLivedClientOptions);
const dynamodb = new DynamoDBClient(longLivedClientOptions);
const ledger = new DynamoDbDeliveryLedger(dynamodb, environment[names.tableName], environment[names.deliveryLogDays]);
const policy = { ...defaultDeliveryPolicy, retryWindowMs: environment[names.retryHours] * 3_600_000 };
const pacer = new Pacer(environment[names.requestsPerSecond]);
const destinationId = environment[names.destinationId];

/** Read at run time, cached for five minutes: rotating the secret needs no deploy. */
const secret: SecretSource = cachedSecret(async () => {
  const output = await secretsManager.send(new GetSecretValueCommand({ SecretId: environment[names.secretId] }));
  const value = output.SecretString?.trim();
  if (!value) throw new Error('the secret has no string value');
  return value;
});

function destination(): LeadDestination {
  const kind = environment[names.destinationKind];
  // The attempt stays well inside the function's timeout, which covers a batch of ten.
  const options = { timeoutMs: 5_000 };
  switch (kind) {
    case 'slack':
      return slackDestination(destinationId, secret, environment[names.entityUrlTemplate], options);
    case 'webhook': {
      const url = environment[names.webhookUrl];
      if (url === undefined) throw new Error(`${names.webhookUrl} is required for a webhook destination`);
      return webhookDestination(destinationId, url, secret, options);
    }
    case 'hubspot':
      // An attempt may make two requests (a read, then the upsert): each keeps to requestsPerSecond. A token without
      // the companies read scope still delivers: it is said once per container, not at each delivery.
      return hubspotDestination(destinationId, secret, environment[names.companyIdProperty] ?? defaultCompanyIdProperty, {
        ...options,
        pace: () => pacer.wait(),
        warn: (warning) => logger.warn(warning, { destination: destinationId }),
      });
  }
}
const feedbackBaseUrl = environment[names.feedbackBaseUrl];
/** The key feedback links are signed with (made by the deploy's bootstrap), read once it exists. */
let feedbackSecret: string | undefined;
const feedbackSigner = async () => {
  feedbackSecret ??= await readFeedbackSecret(dynamodb, environment[names.tableName]);
  return feedbackSecret === undefined || feedbackBaseUrl === undefined ? undefined : { secret: feedbackSecret, baseUrl: feedbackBaseUrl };
};
const reasons = environment[names.feedbackReasons].split(',').filter((reason) => reason !== '');
const target = feedbackBaseUrl === undefined ? destination() : withFeedbackLinks(destination(), feedbackSigner, reasons);

const envelopeSchema = z.object({ 'detail-type': z.enum(leadEventTypes), detail: leadEventDetailSchema });

function leadEventOf(record: SQSRecord): LeadEvent {
  const parsed = envelopeSchema.parse(JSON.parse(record.body));
  return { detailType: parsed['detail-type'], detail: parsed.detail };
}

/** SQS hides a message for at most twelve hours. */
const maxVisibilitySeconds = 12 * 60 * 60;

export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  logger.addContext(context);
  const failed: string[] = [];
  const followers: SQSRecord[] = [];
  let waiting: { record: SQSRecord; delayMs: number } | undefined;
  try {
    for (const record of event.Records) {
      // FIFO: once a message waits, the ones after it wait too, so the destination sees them in order.
      if (waiting !== undefined) {
        failed.push(record.messageId);
        followers.push(record);
        continue;
      }
      const decision = await deliver(record);
      if (decision.action === 'retry') {
        waiting = { record, delayMs: decision.delayMs };
        failed.push(record.messageId);
      }
    }
    await releaseFollowers(followers);
    reportWait(waiting);
  } finally {
    metrics.publishStoredMetrics();
  }
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * Makes the messages behind a waiting one visible again at once. Reported failed, they would stay in flight for the
 * queue's visibility timeout (six minutes), and SQS returns none of a group while one of it is in flight: the waiting
 * message, due again after its backoff (from 10 s), would wait those six minutes. Visible, they still wait for it,
 * in flight itself until its backoff ends. Failing here costs only that delay, so it is logged and not retried.
 */
async function releaseFollowers(followers: SQSRecord[]): Promise<void> {
  if (followers.length === 0) return;
  const notReleased = (detail: { error?: Error; count?: number }) =>
    logger.warn('lead events behind a retried one not released: they wait for the queue visibility timeout', { destination: destinationId, ...detail });
  try {
    // One request for the batch's (at most 9, batches of 10: the most a batch request takes).
    const { Failed } = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: environment[names.queueUrl],
        Entries: followers.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle, VisibilityTimeout: 0 })),
      }),
    );
    if (Failed !== undefined && Failed.length > 0) notReleased({ count: Failed.length });
  } catch (error) {
    notReleased({ error: error as Error });
  }
}

/**
 * How long the event this batch left waiting (the destination's oldest: one FIFO group) will have waited, since its
 * queue received it, when it is next tried (its backoff or Retry-After), or 0: the `delivery failing` alarm's metric,
 * reported once per attempt, so the wait ahead is counted now rather than hours later. Not the queue's
 * ApproximateAgeOfOldestMessage, which SQS documents leaves out a message received again and again and not deleted
 * (a poison pill), as a waiting event is at each attempt.
 */
function reportWait(waiting: { record: SQSRecord; delayMs: number } | undefined): void {
  const waitSeconds = waiting === undefined ? 0 : Math.max(0, Math.round((Date.now() + waiting.delayMs - Number(waiting.record.attributes.SentTimestamp)) / 1000));
  const metric = metrics.singleMetric();
  metric.addDimension(destinationDimension, destinationId);
  metric.addMetric(metricNames.leadDeliveryWaitSeconds, MetricUnit.Seconds, waitSeconds);
}

async function deliver(record: SQSRecord): Promise<DeliveryDecision> {
  let lead: LeadEvent;
  try {
    lead = leadEventOf(record);
  } catch (error) {
    // Not a lead event (a message sent to the queue by hand): no retry can fix it, the dead-letter queue keeps it.
    return settle(record, undefined, { action: 'dead-letter', reason: `not a lead event: ${(error as Error).message.slice(0, 300)}` });
  }
  return settle(record, lead, await attempt(record, lead));
}

/**
 * One attempt at a lead event. A table that cannot be read or written (the delivery ledger, the feedback links' key)
 * fails it as an unreachable destination would: retried with the same backoff within the same window, then
 * dead-lettered with its reason. Retried at every visibility timeout, a table outage of days would end instead in
 * SQS's own redrive after 1,000 receives, the window passed unnoticed and no reason given.
 */
async function attempt(record: SQSRecord, lead: LeadEvent): Promise<DeliveryDecision> {
  await pacer.wait();
  const queue = { receives: receivesOf(record), queuedAt: new Date(Number(record.attributes.SentTimestamp)), now: new Date() };
  try {
    return await deliverLeadEvent(lead, { destination: target, ledger }, queue, policy);
  } catch (error) {
    logger.error('lead event delivery failed', { destination: destinationId, idempotencyKey: lead.detail.idempotencyKey, error: error as Error });
    const failure = { outcome: 'retryable' as const, error: `the delivery ledger could not be read or written (${(error as Error).name})`, latencyMs: 0 };
    // The ledger, which counts the attempts, could not be read: the receives are as many or more.
    return nextStep(failure, { ...queue, attempt: queue.receives, now: new Date() }, policy);
  }
}

/** How many times SQS has handed the message over, this time included. */
const receivesOf = (record: SQSRecord) => Number(record.attributes.ApproximateReceiveCount);

/**
 * Has the queue do what the attempt decided. When SQS does not take the retry or the dead-letter, the message is kept:
 * reported failed, it is received again after the queue's visibility timeout.
 */
async function settle(record: SQSRecord, lead: LeadEvent | undefined, decision: DeliveryDecision): Promise<DeliveryDecision> {
  const log = { destination: destinationId, idempotencyKey: lead?.detail.idempotencyKey, receives: receivesOf(record) };
  try {
    switch (decision.action) {
      case 'done':
        metrics.addMetric(metricNames.leadDeliveries, MetricUnit.Count, 1);
        break;
      case 'retry':
        await sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: environment[names.queueUrl],
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: Math.min(maxVisibilitySeconds, Math.ceil(decision.delayMs / 1000)),
          }),
        );
        logger.info('lead event delivery retried later', { ...log, delaySeconds: Math.ceil(decision.delayMs / 1000) });
        metrics.addMetric(metricNames.leadDeliveriesRetried, MetricUnit.Count, 1);
        break;
      case 'dead-letter':
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: environment[names.deadLetterQueueUrl],
            MessageBody: record.body,
            MessageGroupId: destinationId,
            MessageDeduplicationId: record.messageId,
            MessageAttributes: { reason: { DataType: 'String', StringValue: decision.reason.slice(0, 1000) } },
          }),
        );
        logger.warn('lead event moved to the dead-letter queue', { ...log, reason: decision.reason });
        metrics.addMetric(metricNames.leadDeliveriesDeadLettered, MetricUnit.Count, 1);
        break;
    }
    return decision;
  } catch (error) {
    logger.error('lead event kept in its queue: SQS did not take its next step', { ...log, next: decision.action, error: error as Error });
    return { action: 'retry', delayMs: 0 };
  }
}
