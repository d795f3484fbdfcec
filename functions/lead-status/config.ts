import { z } from 'zod';
import { environmentNames } from '../shared/settings';
import { settingsFromEnvironment } from '../shared/environment';

const environmentSchema = z.object({
  [environmentNames.tableName]: z.string().min(1, 'is required: the DynamoDB table of pql-radar'),
  /** How long a warm function trusts a key lookup; a revoked key is refused at most this much later. */
  KEY_CACHE_SECONDS: z.coerce.number().int().min(0).default(60),
  /** How long a warm function, and then the caller (Cache-Control max-age), keeps a lead status. */
  LEAD_CACHE_SECONDS: z.coerce.number().int().min(0).default(30),
});

export interface LeadStatusConfig {
  tableName: string;
  keyCacheSeconds: number;
  leadCacheSeconds: number;
}

/** Reads the lead status function's settings; a wrong value fails the cold start with the variable's name and the reason. */
export function leadStatusConfigFromEnvironment(environment: Record<string, string | undefined>): LeadStatusConfig {
  const env = settingsFromEnvironment(environmentSchema, environment, 'lead status');
  return { tableName: env[environmentNames.tableName], keyCacheSeconds: env.KEY_CACHE_SECONDS, leadCacheSeconds: env.LEAD_CACHE_SECONDS };
}
