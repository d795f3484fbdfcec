import { integerFrom, textOr, variablesFromEnvironment } from '../shared/environment';
import { defaultQuarantineRetentionDays, environmentNames, tableVariables } from '../shared/settings';

export interface IngestConfig {
  tableName: string;
  retentionDays: number;
  quarantineRetentionDays: number;
  keyCacheSeconds: number;
  timeZone: string;
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
    },
    environment,
    'ingest',
  );
  return {
    tableName: env[environmentNames.tableName],
    retentionDays: env[environmentNames.retentionDays],
    quarantineRetentionDays: env[environmentNames.quarantineRetentionDays],
    keyCacheSeconds: env.KEY_CACHE_SECONDS,
    timeZone: env[environmentNames.timeZone],
  };
}
