import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../functions/local/dynamodb-local';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/**
 * One in-memory DynamoDB Local for the whole run; test files stay independent by using their own tables
 * (see freshTable). An endpoint already set in AWS_ENDPOINT_URL_DYNAMODB is used instead.
 */
// The SDK warns on Node 20 that future SDK releases need Node 22; the pinned versions run fine.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Every temporary file of the run, the tests' own and those of the commands they start, in one directory removed at
  // the end: a test that fails half-way, or a command it stops, leaves nothing in the machine's temporary directory.
  // The test files' processes inherit the environment set here.
  const temporary = mkdtempSync(join(tmpdir(), 'pql-radar-test-'));
  process.env['TMPDIR'] = temporary;
  const removeTemporary = () => rmSync(temporary, { recursive: true, force: true });
  const configured = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  if (configured) {
    project.provide('dynamoEndpoint', configured);
    return async () => removeTemporary();
  }
  const dynamoDb = await startDynamoDbLocal();
  project.provide('dynamoEndpoint', dynamoDb.endpoint);
  return async () => {
    await dynamoDb.stop();
    removeTemporary();
  };
}
