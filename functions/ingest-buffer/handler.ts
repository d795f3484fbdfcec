import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context, KinesisStreamEvent } from 'aws-lambda';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { bufferedRequestOf, storeBufferedRequests } from '../core/ingest-buffer';
import { ingestConfigFromEnvironment } from '../ingest/config';
import { logger, metrics } from '../shared/powertools';
import { metricNames } from '../shared/settings';
import { longLivedClientOptions } from '../shared/sdk-clients';

const config = ingestConfigFromEnvironment(process.env);
const store = new DynamoDbEventStore({ client: new DynamoDBClient({ ...longLivedClientOptions, maxAttempts: 6 }), ...config });

/**
 * The ingest buffer's consumer (lib/ingest-buffer.ts): stores a batch of the stream's requests in the table, as
 * ingest would have one at a time. A failure fails the batch, which the event source retries (split in halves) until
 * it is stored or its records expire: they are accepted events.
 */
export async function handler(event: KinesisStreamEvent, context: Context) {
  logger.addContext(context);
  try {
    const requests = event.Records.map((record) => bufferedRequestOf(Buffer.from(record.kinesis.data, 'base64')));
    const outcome = await storeBufferedRequests(store, requests);
    logger.info('buffered requests stored', { ...outcome });
    // The accepted count is ingest's; what the buffer refuses after the 200 is a rejection like ingest's.
    metrics.addMetric(metricNames.rejectedEvents, MetricUnit.Count, outcome.refused);
  } finally {
    metrics.publishStoredMetrics();
  }
}
