import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { RecordedBacktest } from '../../analysis/live-health';
import { backtestSortKey, metaPartitionKey } from './item-keys';

const keyOf = (rulesVersion: string) => ({ pk: { S: metaPartitionKey }, sk: { S: backtestSortKey(rulesVersion) } });

/** Keeps a backtest's figures for its rules version (`pql-radar backtest --record`), replacing an earlier one's. */
export async function recordBacktest(client: DynamoDBClient, tableName: string, backtest: RecordedBacktest): Promise<void> {
  await client.send(new PutItemCommand({ TableName: tableName, Item: { ...keyOf(backtest.rules.version), backtest: { S: JSON.stringify(backtest) } } }));
}

/** The backtest recorded for a rules version, if any. */
export async function recordedBacktest(client: DynamoDBClient, tableName: string, rulesVersion: string): Promise<RecordedBacktest | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: keyOf(rulesVersion) }));
  const stored = Item?.['backtest']?.S;
  return stored === undefined ? undefined : (JSON.parse(stored) as RecordedBacktest);
}
