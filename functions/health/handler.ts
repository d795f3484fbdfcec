import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { DynamoDbLeadReader } from '../adapters/dynamodb/lead-reader';
import { readShardCount } from '../adapters/dynamodb/shard-count';
import { healthWithPromise, type EvaluatedLead } from '../analysis/live-health';
import { logger, metrics } from '../shared/powertools';
import { defaultDeliveryLogDays, defaultHealthPeriodDays, environmentNames, metricNames } from '../shared/settings';
import { tableEnvironmentSchema } from '../shared/table-environment';
import { topTierLift } from './top-tier';
import { longLivedClientOptions } from '../shared/sdk-clients';

const environment = tableEnvironmentSchema
  .extend({
    /**
     * The rules' tier names in their order, a JSON array (a tier's name may hold any character, a comma too): the top
     * tier is the first that qualified leads.
     */
    [environmentNames.tierOrder]: z.string().default('[]'),
    [environmentNames.healthPeriodDays]: z.coerce.number().int().positive().default(defaultHealthPeriodDays),
  })
  .parse(process.env);
const tierOrder = z.array(z.string()).parse(JSON.parse(environment[environmentNames.tierOrder]));
const periodDays = environment[environmentNames.healthPeriodDays];

const client = new DynamoDBClient({ ...longLivedClientOptions, maxAttempts: 6 });
const tableName = environment[environmentNames.tableName];

/**
 * The lead states are in the sweep partitions of every shard the table has had: after `evaluation.shards` went down,
 * those of the higher count hold the entities not saved since (adapters/dynamodb/shard-count.ts).
 */
async function leadReader(): Promise<DynamoDbLeadReader> {
  const recorded = await readShardCount(client, tableName);
  // The delivery log is never read here (leadStates only); its days are the reader's own default.
  return new DynamoDbLeadReader(client, tableName, { shards: Math.max(environment[environmentNames.dirtyShards], recorded?.highest ?? 0), deliveryLogDays: defaultDeliveryLogDays });
}

/**
 * Scheduled daily: rule health (analysis/live-health.ts) of each workspace over the last `periodDays`, and its top
 * tier's lift as metrics. Two records per workspace: `TierLift`, `TierLiftLowerBound` and (when a backtest of the
 * rules version is recorded) `TierLiftPromised` by `Tier`, for the
 * dashboard, and `TierLiftLowerBound` with the service dimension only, the one the alarm watches (its Minimum over
 * the workspaces). The workspace is metadata of the record (in the log, not a dimension), so the metrics stay few.
 * Reads only.
 */
export async function handler(_input: unknown, context: Context) {
  logger.addContext(context);
  const now = new Date();
  const reader = await leadReader();
  const states = await reader.leadStates();
  const byWorkspace = new Map<string, EvaluatedLead[]>();
  for (const state of states) byWorkspace.set(state.ref.workspace, [...(byWorkspace.get(state.ref.workspace) ?? []), state]);

  const reported: { tier: string; lift: number; lowerBound: number; promised: number | null }[] = [];
  for (const [workspace, leads] of [...byWorkspace].sort(([a], [b]) => a.localeCompare(b))) {
    const top = topTierLift(await healthWithPromise({ leads, now, periodDays }, reader), tierOrder);
    if (!top) continue;
    metrics.addDimension('Tier', top.tier);
    metrics.addMetadata('workspace', workspace);
    metrics.addMetric(metricNames.tierLift, MetricUnit.NoUnit, top.lift.value);
    metrics.addMetric(metricNames.tierLiftLowerBound, MetricUnit.NoUnit, top.lift.low);
    if (top.promised) metrics.addMetric(metricNames.tierLiftPromised, MetricUnit.NoUnit, top.promised.value);
    metrics.publishStoredMetrics();
    metrics.addMetadata('workspace', workspace);
    metrics.addMetadata('tier', top.tier);
    metrics.addMetric(metricNames.tierLiftLowerBound, MetricUnit.NoUnit, top.lift.low);
    metrics.publishStoredMetrics();
    reported.push({ tier: top.tier, lift: top.lift.value, lowerBound: top.lift.low, promised: top.promised?.value ?? null });
  }
  // Counts and lifts only: no entity id, trait or workspace name.
  logger.info('rule health', {
    periodDays,
    workspaces: byWorkspace.size,
    states: states.length,
    reported: reported.length,
    lowestLowerBound: reported.length > 0 ? Math.min(...reported.map((entry) => entry.lowerBound)) : null,
  });
  return { workspaces: byWorkspace.size, reported: reported.length };
}
