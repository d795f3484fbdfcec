import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { deliverWebhook, signedLeadEventRequest, type WebhookRequest } from '../adapters/webhook/delivery';
import { parseWebhookSecrets } from '../core/webhook-signature';
import { leadEventDetailSchema, leadEventTypes, type LeadEvent } from '../core/lead-event';
import { logger, metrics } from '../shared/powertools';
import { slackMessage } from './format';

const httpsUrl = z
  .string()
  .url()
  .refine((url) => url.startsWith('https://'), 'must be an https:// URL');

const environment = z
  .discriminatedUnion('DESTINATION_TYPE', [
    z.object({
      DESTINATION_TYPE: z.literal('slack'),
      /** Its value is the incoming-webhook URL. */
      SECRET_ARN: z.string().min(1),
      ENTITY_URL_TEMPLATE: z.string().url().optional(),
    }),
    z.object({
      DESTINATION_TYPE: z.literal('webhook'),
      /** Its value signs the requests. */
      SECRET_ARN: z.string().min(1),
      WEBHOOK_URL: httpsUrl,
    }),
  ])
  .parse(process.env);

const secrets = new SecretsManagerClient({});
let secretValue: Promise<string> | undefined;

/** Read once per execution environment; a failed read is not cached, so the retry reads again. */
function secret(): Promise<string> {
  secretValue ??= secrets
    .send(new GetSecretValueCommand({ SecretId: environment.SECRET_ARN }))
    .then((output) => {
      const value = output.SecretString?.trim();
      if (!value) throw new Error('the secret has no string value');
      return value;
    })
    .catch((error: unknown) => {
      secretValue = undefined;
      throw error;
    });
  return secretValue;
}

const eventSchema = z.object({ 'detail-type': z.enum(leadEventTypes), detail: leadEventDetailSchema });

async function destination(event: LeadEvent): Promise<{ url: string; request: (nowMs: number) => WebhookRequest }> {
  if (environment.DESTINATION_TYPE === 'webhook') {
    // Several secrets in the value (space-separated) during a rotation: each signs, a receiver holding either verifies.
    const secrets = parseWebhookSecrets(await secret());
    return { url: environment.WEBHOOK_URL, request: (nowMs) => signedLeadEventRequest(event, secrets, nowMs) };
  }
  const url = httpsUrl.safeParse(await secret());
  // The URL is the secret: the error names the problem, never the value.
  if (!url.success) throw new Error('the Slack secret is not an https:// incoming-webhook URL');
  const request = { headers: { 'content-type': 'application/json' }, body: JSON.stringify(slackMessage(event.detail, environment.ENTITY_URL_TEMPLATE)) };
  return { url: url.data, request: () => request };
}

/**
 * Invoked asynchronously by the route's rule with the whole EventBridge event. Throws on anything but a 2xx
 * answer, so Lambda retries and then sends the event to the destination's dead-letter queue.
 */
export async function handler(input: unknown, context: Context): Promise<void> {
  logger.addContext(context);
  const parsed = eventSchema.parse(input);
  const event: LeadEvent = { detailType: parsed['detail-type'], detail: parsed.detail };
  const log = { destination: environment.DESTINATION_TYPE, idempotencyKey: event.detail.idempotencyKey };
  try {
    const { url, request } = await destination(event);
    // One attempt, under the function's 10 s timeout: Lambda retries a failed invocation, then the destination's
    // dead-letter queue keeps the event, so a slow receiver ends in a logged error rather than a timeout.
    const result = await deliverWebhook(url, request, { maxAttempts: 1, timeoutMs: 8_000 });
    if (!result.delivered) {
      throw new Error(`${environment.DESTINATION_TYPE} ${result.status !== undefined ? `answered HTTP ${result.status}` : `could not be reached: ${result.error}`}`);
    }
    logger.info('lead event delivered', { ...log, status: result.status });
    metrics.addMetric('LeadNotificationsDelivered', MetricUnit.Count, 1);
  } catch (error) {
    logger.error('lead event not delivered', { ...log, error: error as Error });
    metrics.addMetric('LeadNotificationsFailed', MetricUnit.Count, 1);
    throw error;
  } finally {
    metrics.publishStoredMetrics();
  }
}
