import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { metricNamespace, serviceName } from './settings';

/**
 * The Powertools instances, created once per process and shared by every handler, so that log and metric settings
 * (service name, namespace, level via POWERTOOLS_LOG_LEVEL) live in one place. The names are the ones the alarms
 * watch (lib/monitoring.ts), not whatever the environment says, so a metric can never land where no alarm looks.
 * Each handler starts with `logger.addContext(context)`, so every log line names its request id, function and cold start.
 */
export const logger = new Logger({ serviceName });
export const metrics = new Metrics({ namespace: metricNamespace, serviceName });
