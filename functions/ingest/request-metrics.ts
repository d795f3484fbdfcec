import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { metricNames } from '../shared/settings';
import type { IngestResponse } from '../core/ingest';

/**
 * The ingest function's metrics of one request, which the alarms and the dashboard read (lib/monitoring.ts): one EMF
 * line a request once published. bench:cost counts the same on its own instance to measure that line.
 *
 * Rejected events only when there are some: nearly every request has none, and a zero took some 60 bytes of every
 * request's line (CloudWatch Logs bills each byte; a Sum over the dashboard's periods reads the same without them).
 */
export function countResponse(metrics: Metrics, summary: IngestResponse['summary']): void {
  metrics.addMetric(metricNames.acceptedEvents, MetricUnit.Count, summary.accepted);
  if (summary.rejected > 0) metrics.addMetric(metricNames.rejectedEvents, MetricUnit.Count, summary.rejected);
}

export function countError(metrics: Metrics): void {
  metrics.addMetric(metricNames.ingestErrors, MetricUnit.Count, 1);
}
