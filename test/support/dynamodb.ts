import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { createDynamoDbClient, ensureTable } from '../../functions/local/dynamodb-local';

/** A new, empty pql-radar table on the test run's DynamoDB, so no two tests see each other's items. */
export async function freshTable(): Promise<{ client: DynamoDBClient; tableName: string }> {
  const client = createDynamoDbClient(inject('dynamoEndpoint'));
  const tableName = `test-${randomUUID()}`;
  await ensureTable(client, tableName);
  return { client, tableName };
}
