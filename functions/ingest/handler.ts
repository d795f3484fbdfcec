import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { FirehoseEventBuffer } from '../adapters/firehose/event-buffer';
import { KinesisEventBuffer } from '../adapters/kinesis/event-buffer';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { logger, metrics } from '../shared/powertools';
import { ingestConfigFromEnvironment } from './config';
import { createIngestHandler } from './http';
import { countError, countResponse } from './request-metrics';
import { DynamoDbFeedbackStore, readFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { createFeedbackLinkHandler } from './feedback-http';
import type { DirectSaveListener } from '../core/ingest-buffer';
import { longLivedClientOptions } from '../shared/sdk-clients';

const config = ingestConfigFromEnvironment(process.env);
// More attempts than the SDK's default 3: a throttled write retried here is a 200 instead of a client retry.
const client = new DynamoDBClient({ ...longLivedClientOptions, maxAttempts: 6 });

/** The links' signing key (made by the deploy's bootstrap), read once it exists. */
let feedbackSecret: string | undefined;
const feedback = createFeedbackLinkHandler({
  store: new DynamoDbFeedbackStore(client, config.tableName),
  secret: async () => (feedbackSecret ??= await readFeedbackSecret(client, config.tableName)),
});

const table = new DynamoDbEventStore({ client, ...config });
/**
 * With an ingest buffer on, its consumer writes the table a batch of requests at a time: the Kinesis variant
 * (lib/ingest-buffer.ts) or the Firehose one (lib/ingest-firehose-buffer.ts); the config allows one at most.
 */
function eventStore() {
  const storedDirectly: DirectSaveListener = (reason, requestId) => logger.warn('ingest buffer did not take a request: stored in the table at once', { requestId, reason });
  if (config.ingestStreamName) return new KinesisEventBuffer(new KinesisClient({ ...longLivedClientOptions, maxAttempts: 6 }), config.ingestStreamName, table, storedDirectly);
  if (config.ingestDeliveryStreamName) return new FirehoseEventBuffer(new FirehoseClient({ ...longLivedClientOptions, maxAttempts: 6 }), config.ingestDeliveryStreamName, table, storedDirectly);
  return table;
}
const handleRequest = createIngestHandler(
  {
    events: eventStore(),
    keys: new CachedWriteKeyStore(new DynamoDbWriteKeyStore(client, config.tableName), config.keyCacheSeconds * 1000),
  },
  {
    onResponse(response, requestId) {
      logger.info('ingest request', { requestId, status: response.status, ...response.summary });
      countResponse(metrics, response.summary);
    },
    onError(error, requestId) {
      logger.error('ingest request failed', { requestId, error: error as Error });
      countError(metrics);
    },
  },
  feedback,
);

export async function handler(event: APIGatewayProxyEventV2, context: Context) {
  logger.addContext(context);
  try {
    return await handleRequest(event);
  } finally {
    metrics.publishStoredMetrics();
  }
}
