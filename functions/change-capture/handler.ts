import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { DynamoDbChangeCapture, type WrittenKey } from '../adapters/dynamodb/change-capture';
import { logger, metrics } from '../shared/powertools';
import { variablesFromEnvironment } from '../shared/environment';
import { deployedListSettleMs, environmentNames, metricNames, tableVariables } from '../shared/settings';

/**
 * Change capture: a batch of the table's stream (the event source mapping filters it to event and profile items)
 * lists the changed users, visitors and accounts for the evaluator. A failure throws: the mapping retries the batch, splitting
 * it, until it succeeds, so no change is skipped (the IteratorAge alarm says when it falls behind).
 */
const environment = variablesFromEnvironment(tableVariables(), process.env, 'change capture');
const capture = new DynamoDbChangeCapture(new DynamoDBClient({ maxAttempts: 6 }), environment[environmentNames.tableName], environment[environmentNames.dirtyShards], {
  settleMs: deployedListSettleMs,
});

export async function handler(event: DynamoDBStreamEvent, context: Context): Promise<void> {
  logger.addContext(context);
  const keys: WrittenKey[] = event.Records.flatMap((record) => {
    const pk = record.dynamodb?.Keys?.['pk']?.S;
    const sk = record.dynamodb?.Keys?.['sk']?.S;
    if (pk === undefined || sk === undefined || record.eventName === 'REMOVE') return [];
    const seconds = record.dynamodb?.ApproximateCreationDateTime;
    return [{ pk, sk, at: seconds === undefined ? new Date() : new Date(seconds * 1000) }];
  });
  try {
    const marked = await capture.mark(keys);
    metrics.addMetric(metricNames.entitiesMarked, MetricUnit.Count, marked);
    logger.info('changes captured', { records: event.Records.length, marked });
  } finally {
    metrics.publishStoredMetrics();
  }
}
