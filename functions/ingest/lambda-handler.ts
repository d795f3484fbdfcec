import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { logger, metrics } from '../shared/powertools';
import { requiredText, variablesFromEnvironment } from '../shared/environment';
import { ingestConfigFromEnvironment } from './config';
import { createIngestHandler } from './http';
import { countError, countResponse } from './request-metrics';
import { DynamoDbFeedbackStore, readFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { createFeedbackLinkHandler } from './feedback-http';
import type { DirectSaveListener } from '../core/ingest-buffer';
import type { EventStore } from '../core/ports';
import { longLivedClientOptions } from '../shared/sdk-clients';

/** The SDK clients' options: more attempts than the default 3, since a throttled write retried here is a 200 instead of a client retry. */
export const ingestClientOptions = { ...longLivedClientOptions, maxAttempts: 6 };

/**
 * The ingest buffer an entry puts requests on: the variable naming it, and its adapter around the table. Each buffered
 * entry (kinesis-handler.ts, firehose-handler.ts) imports its own service's client only, so that a bundle carries no
 * client its deployment does not use; lib/ingest-api.ts picks the entry, and sets the variable, by the buffer.
 */
export interface IngestBufferAdapter {
  readonly variable: string;
  create(name: string, table: EventStore, storedDirectly: DirectSaveListener): EventStore;
}

/** The buffer's name, from its variable: a buffered entry without it fails its cold start, naming the variable. */
function bufferName(variable: string): string {
  return variablesFromEnvironment({ [variable]: requiredText('the ingest buffer this entry puts requests on') }, process.env, 'ingest')[variable]!;
}

/**
 * The ingest Lambda's handler, wired at cold start: writing the table, or with `buffer`, putting each request of one
 * message on it (the buffer's function then writes the table a batch of requests at a time).
 */
export function createLambdaHandler(buffer?: IngestBufferAdapter) {
  const config = ingestConfigFromEnvironment(process.env);
  const client = new DynamoDBClient(ingestClientOptions);

  /** The links' signing key (made by the deploy's bootstrap), read once it exists. */
  let feedbackSecret: string | undefined;
  const feedback = createFeedbackLinkHandler({
    store: new DynamoDbFeedbackStore(client, config.tableName),
    secret: async () => (feedbackSecret ??= await readFeedbackSecret(client, config.tableName)),
  });

  const table = new DynamoDbEventStore({ client, ...config });
  const storedDirectly: DirectSaveListener = (reason, requestId) => logger.warn('ingest buffer did not take a request: stored in the table at once', { requestId, reason });
  const handleRequest = createIngestHandler(
    {
      events: buffer ? buffer.create(bufferName(buffer.variable), table, storedDirectly) : table,
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

  return async function handler(event: APIGatewayProxyEventV2, context: Context) {
    logger.addContext(context);
    try {
      return await handleRequest(event);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}
