import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it } from 'vitest';
import { countError, countResponse } from '../../functions/ingest/request-metrics';
import { metricNames } from '../../functions/shared/settings';

describe("ingest's request metrics", () => {
  const metricsOf = (count: (metrics: Metrics) => void) => {
    const metrics = new Metrics({ namespace: 'test', serviceName: 'test' });
    count(metrics);
    return metrics.serializeMetrics() as unknown as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Metrics: { Name: string; Unit: string }[] }[] } };
  };

  it('counts the accepted and rejected events of a response under the names the alarms and dashboard read', () => {
    const line = metricsOf((metrics) => countResponse(metrics, { accepted: 3, rejected: 1 }));
    expect(line[metricNames.acceptedEvents]).toBe(3);
    expect(line[metricNames.rejectedEvents]).toBe(1);
    expect(line._aws.CloudWatchMetrics[0]!.Metrics).toEqual([
      { Name: metricNames.acceptedEvents, Unit: 'Count' },
      { Name: metricNames.rejectedEvents, Unit: 'Count' },
    ]);
  });

  it('leaves out rejected events when there are none, so that their zero is not logged with every request', () => {
    const line = metricsOf((metrics) => countResponse(metrics, { accepted: 2, rejected: 0 }));
    expect(line[metricNames.acceptedEvents]).toBe(2);
    expect(line[metricNames.rejectedEvents]).toBeUndefined();
    expect(line._aws.CloudWatchMetrics[0]!.Metrics).toEqual([{ Name: metricNames.acceptedEvents, Unit: 'Count' }]);
  });

  it('counts a failed request as an ingest error', () => {
    const line = metricsOf(countError);
    expect(line[metricNames.ingestErrors]).toBe(1);
    expect(line[metricNames.acceptedEvents]).toBeUndefined();
  });
});
