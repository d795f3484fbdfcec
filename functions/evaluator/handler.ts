import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Context } from 'aws-lambda';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DynamoDbEvaluationStore } from '../adapters/dynamodb/evaluation-store';
import { EventBridgePublisher } from '../adapters/eventbridge/publisher';
import { loadRules } from '../core/rules/load';
import { logger, metrics } from '../shared/powertools';
import { allShards, runEvaluator } from '../core/evaluate-leads';

const environment = z
  .object({
    TABLE_NAME: z.string().min(1),
    EVENT_BUS_NAME: z.string().min(1),
    /** The rules file bundled beside the handler. */
    RULES_FILE: z.string().min(1).default('rules.yaml'),
    DIRTY_SHARDS: z.coerce.number().int().positive().default(4),
    RETENTION_DAYS: z.coerce.number().int().positive().default(400),
    /** Stop starting new entities this long before the Lambda timeout, so state is never cut mid-save. */
    SAFETY_MARGIN_MS: z.coerce.number().int().positive().default(15_000),
    /**
     * The schedule's interval: a run also stops within it (less the margin), so that it has ended when the next run
     * of its shard starts; two runs of one entity at once could each overwrite the other's rollup totals.
     */
    RUN_INTERVAL_SECONDS: z.coerce.number().int().positive().optional(),
  })
  .parse(process.env);

// A wrong rules file fails the cold start, with every problem listed, before any lead is touched.
const ruleset = loadRules(readFileSync(environment.RULES_FILE, 'utf8'), environment.RULES_FILE);
const store = new DynamoDbEvaluationStore({
  client: new DynamoDBClient({ maxAttempts: 6 }),
  tableName: environment.TABLE_NAME,
  dirtyShards: environment.DIRTY_SHARDS,
  retentionDays: environment.RETENTION_DAYS,
});
const publisher = new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: environment.EVENT_BUS_NAME });

const inputSchema = z.object({ shard: z.coerce.number().int().min(0).optional() }).passthrough();

/** Scheduled: one schedule per shard passes `{ "shard": N }`; without it, the run covers every shard. */
export async function handler(input: unknown, context: Pick<Context, 'getRemainingTimeInMillis'>) {
  const { shard } = inputSchema.parse(input ?? {});
  const shards = shard === undefined ? allShards(environment.DIRTY_SHARDS) : [String(shard)];
  try {
    const summary = await runEvaluator({
      store,
      publisher,
      ruleset,
      shards,
      now: new Date(),
      deadline: Date.now() + Math.min(context.getRemainingTimeInMillis(), (environment.RUN_INTERVAL_SECONDS ?? Infinity) * 1000) - environment.SAFETY_MARGIN_MS,
    });
    logger.info('evaluation run', {
      shards,
      rulesetVersion: ruleset.version,
      evaluated: summary.evaluated,
      transitions: summary.transitions.length,
      published: summary.published,
      unpublished: summary.unpublished.length,
      incompleteShards: summary.incompleteShards,
      lagSeconds: summary.lagSeconds,
    });
    metrics.addMetric('EntitiesEvaluated', MetricUnit.Count, summary.evaluated);
    metrics.addMetric('LeadTransitions', MetricUnit.Count, summary.transitions.length);
    metrics.addMetric('LeadEventsUnpublished', MetricUnit.Count, summary.unpublished.length);
    // One value per invocation (a shard); the alarm takes the Maximum.
    metrics.addMetric('EvaluatorLagSeconds', MetricUnit.Seconds, summary.lagSeconds);
    return { evaluated: summary.evaluated, transitions: summary.transitions.length, incompleteShards: summary.incompleteShards };
  } finally {
    metrics.publishStoredMetrics();
  }
}
