import { z } from 'zod';

const positiveInteger = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const environmentSchema = z.object({
  TABLE_NAME: z.string().min(1, 'is required: the DynamoDB table of pql-radar'),
  RETENTION_DAYS: positiveInteger(400),
  QUARANTINE_RETENTION_DAYS: positiveInteger(14),
  DIRTY_SHARDS: positiveInteger(4),
  /** How long a warm function trusts a write-key lookup; a revoked key is refused at most this much later. */
  KEY_CACHE_SECONDS: z.coerce.number().int().min(0).default(60),
});

export interface IngestConfig {
  tableName: string;
  retentionDays: number;
  quarantineRetentionDays: number;
  dirtyShards: number;
  keyCacheSeconds: number;
}

/** Reads the ingest function's settings; a wrong value fails the cold start with the variable's name and the reason. */
export function ingestConfigFromEnvironment(environment: Record<string, string | undefined>): IngestConfig {
  const parsed = environmentSchema.safeParse(environment);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ');
    throw new Error(`ingest configuration is invalid: ${problems}`);
  }
  const env = parsed.data;
  return {
    tableName: env.TABLE_NAME,
    retentionDays: env.RETENTION_DAYS,
    quarantineRetentionDays: env.QUARANTINE_RETENTION_DAYS,
    dirtyShards: env.DIRTY_SHARDS,
    keyCacheSeconds: env.KEY_CACHE_SECONDS,
  };
}
