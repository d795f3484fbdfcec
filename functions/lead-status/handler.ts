import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { CachedLeadStatusReader, DynamoDbLeadStatusReader } from '../adapters/dynamodb/lead-status-reader';
import { CachedWriteKeyStore, DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { logger } from '../shared/powertools';
import { leadStatusConfigFromEnvironment } from './config';
import { createLeadStatusHandler } from './http';
import { longLivedClientOptions } from '../shared/sdk-clients';

const config = leadStatusConfigFromEnvironment(process.env);
const client = new DynamoDBClient(longLivedClientOptions);

const handleRequest = createLeadStatusHandler(
  {
    keys: new CachedWriteKeyStore(new DynamoDbWriteKeyStore(client, config.tableName), config.keyCacheSeconds * 1000),
    leads: new CachedLeadStatusReader(new DynamoDbLeadStatusReader(client, config.tableName), config.leadCacheSeconds * 1000),
  },
  { maxAgeSeconds: config.leadCacheSeconds },
  {
    onResponse(response, requestId) {
      // Answers (200, 404) are in the API's access logs already; a line per page load would cost more than the read.
      if (response.status !== 200 && response.status !== 404) logger.info('lead status refused', { requestId, status: response.status, ...response.summary });
    },
    onError(error, requestId) {
      logger.error('lead status request failed', { requestId, error: error as Error });
    },
  },
);

export async function handler(event: APIGatewayProxyEventV2, context: Context) {
  logger.addContext(context);
  return handleRequest(event);
}
