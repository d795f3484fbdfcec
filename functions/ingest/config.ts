import { z } from 'zod';
import { defaultQuarantineRetentionDays, environmentNames, tableEnvironmentSchema } from '../shared/settings';
import { settingsFromEnvironment } from '../shared/environment';

const environmentSchema = tableEnvironmentSchema.extend({
  [environmentNames.quarantineRetentionDays]: z.coerce.number().int().positive().default(defaultQuarantineRetentionDays),
  /** How long a warm function trusts a write-key lookup; a revoked key is refused at most this much later. */
  KEY_CACHE_SECONDS: z.coerce.number().int().min(0).default(60),
  [environmentNames.timeZone]: z.string().min(1).default('UTC'),
});

export interface IngestConfig {
  tableName: string;
  retentionDays: number;
  quarantineRetentionDays: number;
  keyCacheSeconds: number;
  timeZone: string;
}

/** Reads the ingest function's settings; a wrong value fails the cold start with the variable's name and the reason. */
export function ingestConfigFromEnvironment(environment: Record<string, string | undefined>): IngestConfig {
  const env = settingsFromEnvironment(environmentSchema, environment, 'ingest');
  return {
    tableName: env[environmentNames.tableName],
    retentionDays: env[environmentNames.retentionDays],
    quarantineRetentionDays: env[environmentNames.quarantineRetentionDays],
    keyCacheSeconds: env.KEY_CACHE_SECONDS,
    timeZone: env[environmentNames.timeZone],
  };
}
