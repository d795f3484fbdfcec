import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject, vi } from 'vitest';
import { compiledRulesJson, type Ruleset } from '../../functions/core/rules/ruleset';

/** The rules as the stack bundles them beside the evaluator: compiled at synth, in a file of their own. */
export function compiledRulesFile(ruleset: Ruleset): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pql-radar-rules-')), 'rules.json');
  writeFileSync(file, compiledRulesJson(ruleset));
  return file;
}

/**
 * The deployed evaluator's environment (lib/evaluator.ts), on the test run's DynamoDB Local and, when given, a local
 * EventBridge endpoint; `vi.unstubAllEnvs()` takes it away.
 */
export function stubEvaluatorEnvironment(options: { tableName: string; ruleset: Ruleset; shards: number; eventBridgeUrl?: string }): void {
  stubFunctionEnvironment({
    TABLE_NAME: options.tableName,
    EVENT_BUS_NAME: 'pql-radar-leads',
    RULES_FILE: compiledRulesFile(options.ruleset),
    DIRTY_SHARDS: String(options.shards),
    ...(options.eventBridgeUrl ? { AWS_ENDPOINT_URL_EVENTBRIDGE: options.eventBridgeUrl } : {}),
  });
}

/**
 * A deployed function's environment: `variables`, on the test run's DynamoDB Local, with local credentials, and
 * Powertools quiet; `vi.unstubAllEnvs()` takes it away.
 */
export function stubFunctionEnvironment(variables: Record<string, string>): void {
  const environment = {
    AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    ...variables,
  };
  for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
}
