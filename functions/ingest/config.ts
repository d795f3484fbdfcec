import { integerFrom, textOr, variablesFromEnvironment } from '../shared/environment';
import { defaultQuarantineRetentionDays, environmentNames, tableVariables } from '../shared/settings';

export interface IngestConfig {
  tableName: string;
  retentionDays: number;
  quarantineRetentionDays: number;
  keyCacheSeconds: number;
  timeZone: string;
  /** The ingest buffer's stream (lib/ingest-buffer.ts); empty when the buffer is off. */
  ingestStreamName: string;
  /** The Firehose variant's delivery stream (lib/ingest-firehose-buffer.ts); empty when that buffer is off. */
  ingestDeliveryStreamName: string;
}

/** Reads the ingest function's settings; a wrong value fails the cold start with the variable's name and the reason. */
export function ingestConfigFromEnvironment(environment: Record<string, string | undefined>): IngestConfig {
  const env = variablesFromEnvironment(
    {
      ...tableVariables(),
      [environmentNames.quarantineRetentionDays]: integerFrom(1, defaultQuarantineRetentionDays),
      /** How long a warm function trusts a write-key lookup; a revoked key is refused at most this much later. */
      KEY_CACHE_SECONDS: integerFrom(0, 60),
      [environmentNames.timeZone]: textOr('UTC'),
      [environmentNames.ingestStream]: textOr(''),
      [environmentNames.ingestDeliveryStream]: textOr(''),
    },
    environment,
    'ingest',
  );
  if (env[environmentNames.ingestStream] && env[environmentNames.ingestDeliveryStream]) {
    throw new Error(`ingest configuration is invalid: ${environmentNames.ingestStream} and ${environmentNames.ingestDeliveryStream} are both set (one ingest buffer at a time: Kinesis or Firehose)`);
  }
  return {
    tableName: env[environmentNames.tableName],
    retentionDays: env[environmentNames.retentionDays],
    quarantineRetentionDays: env[environmentNames.quarantineRetentionDays],
    keyCacheSeconds: env.KEY_CACHE_SECONDS,
    timeZone: env[environmentNames.timeZone],
    ingestStreamName: env[environmentNames.ingestStream],
    ingestDeliveryStreamName: env[environmentNames.ingestDeliveryStream],
  };
}
