import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * The Powertools instances, created once per process and shared by every handler, so that log and metric settings
 * (service name, namespace, level via POWERTOOLS_LOG_LEVEL) live in one place.
 */
export const logger = new Logger({ serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'pql-radar' });
export const metrics = new Metrics({
  namespace: process.env['POWERTOOLS_METRICS_NAMESPACE'] ?? 'pql-radar',
  serviceName: process.env['POWERTOOLS_SERVICE_NAME'] ?? 'pql-radar',
});
