import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { bufferObjectsOf, S3BufferObjects } from '../adapters/s3/buffer-objects';
import { loadBufferObject } from '../core/ingest-buffer';
import { ingestConfigFromEnvironment } from '../ingest/config';
import { logger, metrics } from '../shared/powertools';
import { metricNames } from '../shared/settings';
import { longLivedClientOptions } from '../shared/sdk-clients';

const config = ingestConfigFromEnvironment(process.env);
const store = new DynamoDbEventStore({ client: new DynamoDBClient({ ...longLivedClientOptions, maxAttempts: 6 }), ...config });
const objects = new S3BufferObjects(new S3Client(longLivedClientOptions));

/**
 * The Firehose variant's loader (lib/ingest-firehose-buffer.ts): each SQS message is S3's notification of an object
 * the delivery stream wrote; its requests are stored in the table as ingest would have one at a time, then the object
 * is deleted. A message that fails is reported alone (reportBatchItemFailures), retried and then dead-lettered, and
 * its object stays: its lines are accepted events.
 */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  logger.addContext(context);
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  try {
    for (const message of event.Records) {
      try {
        for (const object of bufferObjectsOf(message.body)) {
          const outcome = await loadBufferObject(objects, store, object);
          if (outcome === undefined) {
            logger.info('buffer object already loaded', { key: object.key });
            continue;
          }
          logger.info('buffered requests stored', { key: object.key, ...outcome });
          // The accepted count is ingest's; what the buffer refuses after the 200 is a rejection like ingest's.
          metrics.addMetric(metricNames.rejectedEvents, MetricUnit.Count, outcome.refused);
        }
      } catch (error) {
        logger.error('buffer object not loaded', { messageId: message.messageId, error: error as Error });
        metrics.addMetric(metricNames.bufferObjectsFailed, MetricUnit.Count, 1);
        batchItemFailures.push({ itemIdentifier: message.messageId });
      }
    }
  } finally {
    metrics.publishStoredMetrics();
  }
  return { batchItemFailures };
}
