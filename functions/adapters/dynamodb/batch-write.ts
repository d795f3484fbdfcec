import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  QueryCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type DynamoDBClient,
  type QueryCommandInput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelayMs } from '../../core/backoff';
import { forEachConcurrently } from '../../core/concurrency';
import type { CapacityTally } from './capacity';

export type Item = Record<string, AttributeValue>;

/** DynamoDB's own limits of items per BatchWriteItem call and keys per BatchGetItem call. */
const itemsPerCall = 25;
const keysPerGet = 100;
/** Calls in flight at once for one batch read or write: enough to hide latency, few enough not to self-throttle a partition. */
const concurrentCalls = 8;

export interface BatchWriteOptions {
  /** Rounds of resending UnprocessedItems before giving up. */
  maxRounds?: number;
  /** First backoff; it doubles each round, with full jitter, capped at 5 s. */
  baseDelayMs?: number;
  capacity?: CapacityTally;
}

/**
 * Puts every item, resending whatever DynamoDB leaves unprocessed with exponential backoff, and throws if
 * anything is still unwritten after the last round: the caller must never report success for items not stored.
 * Throttling errors of a whole call are retried by the SDK client's own retry strategy.
 */
export function putAll(client: DynamoDBClient, tableName: string, items: readonly Item[], options: BatchWriteOptions = {}): Promise<void> {
  return writeAll(client, tableName, items.map((Item) => ({ PutRequest: { Item } })), options);
}

/** Deletes every key, with the same retries as putAll. */
export function deleteAll(client: DynamoDBClient, tableName: string, keys: readonly Item[], options: BatchWriteOptions = {}): Promise<void> {
  return writeAll(client, tableName, keys.map((Key) => ({ DeleteRequest: { Key } })), options);
}

async function writeAll(client: DynamoDBClient, tableName: string, requests: readonly WriteRequest[], options: BatchWriteOptions): Promise<void> {
  // One BatchWriteItem call must not name the same key twice; a message repeated within a request is one item anyway.
  const keyOf = (request: WriteRequest) => {
    const item = request.PutRequest?.Item ?? request.DeleteRequest?.Key ?? {};
    return `${item['pk']?.S}\n${item['sk']?.S}`;
  };
  const unique = [...new Map(requests.map((request) => [keyOf(request), request])).values()];
  await forEachConcurrently(inSlices(unique, itemsPerCall), concurrentCalls, (chunk) => writeChunk(client, tableName, chunk, options));
}

/** `items` in slices of `size` (the last may be shorter), in order. */
export function inSlices<T>(items: readonly T[], size: number): T[][] {
  const slices: T[][] = [];
  for (let i = 0; i < items.length; i += size) slices.push(items.slice(i, i + size));
  return slices;
}

async function writeChunk(client: DynamoDBClient, tableName: string, requests: WriteRequest[], options: BatchWriteOptions): Promise<void> {
  const { maxRounds = 10, baseDelayMs = 50, capacity } = options;
  let pending = requests;
  for (let round = 0; round < maxRounds; round++) {
    if (round > 0) await backoff(round, baseDelayMs);
    const output = await client.send(
      new BatchWriteItemCommand({ RequestItems: { [tableName]: pending }, ReturnConsumedCapacity: 'TOTAL' }),
    );
    capacity?.add('write', output.ConsumedCapacity);
    pending = output.UnprocessedItems?.[tableName] ?? [];
    if (pending.length === 0) return;
  }
  throw new Error(`DynamoDB left ${pending.length} of ${requests.length} items unprocessed after ${maxRounds} rounds of BatchWriteItem`);
}

/** Exponential backoff with full jitter, capped at 5 s: what AWS recommends for retrying unprocessed items. */
function backoff(round: number, baseDelayMs = 50): Promise<void> {
  return sleep(backoffDelayMs(round, baseDelayMs, 5000));
}

/**
 * Reads every key (100 per BatchGetItem call, DynamoDB's limit), resending UnprocessedKeys with backoff; returns the
 * items found, in no particular order.
 */
export async function getAll(
  client: DynamoDBClient,
  tableName: string,
  keys: readonly Item[],
  options: { projection?: string; consistent?: boolean; capacity?: CapacityTally; maxRounds?: number } = {},
): Promise<Item[]> {
  const { maxRounds = 10 } = options;
  const found: Item[] = [];
  // Calls at once, as writes make them: a large account's members are read in a fraction of the time one after another takes.
  await forEachConcurrently(inSlices(keys, keysPerGet), concurrentCalls, async (slice) => {
    let pending: Item[] | undefined = slice;
    for (let round = 0; pending && pending.length > 0; round++) {
      if (round >= maxRounds) throw new Error(`DynamoDB left ${pending.length} keys unprocessed after ${maxRounds} rounds of BatchGetItem`);
      if (round > 0) await backoff(round);
      const output: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [tableName]: {
              Keys: pending,
              ...(options.projection ? { ProjectionExpression: options.projection } : {}),
              ...(options.consistent ? { ConsistentRead: true } : {}),
            },
          },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      options.capacity?.add('read', output.ConsumedCapacity);
      found.push(...(output.Responses?.[tableName] ?? []));
      pending = output.UnprocessedKeys?.[tableName]?.Keys;
    }
  });
  return found;
}

/** The items a Query finds, a page at a time, up to `limit` items when given. */
export async function* queryPages(
  client: DynamoDBClient,
  input: QueryCommandInput & { TableName: string },
  options: { limit?: number; capacity?: CapacityTally } = {},
): AsyncGenerator<Item[]> {
  let found = 0;
  let startKey: Item | undefined;
  do {
    const remaining = options.limit === undefined ? undefined : options.limit - found;
    const page = await client.send(
      new QueryCommand({ ...input, ...(remaining !== undefined ? { Limit: remaining } : {}), ExclusiveStartKey: startKey, ReturnConsumedCapacity: 'TOTAL' }),
    );
    options.capacity?.add('read', page.ConsumedCapacity);
    const items = page.Items ?? [];
    found += items.length;
    yield items;
    startKey = page.LastEvaluatedKey;
  } while (startKey && (options.limit === undefined || found < options.limit));
}

/** Every item a Query finds, page after page, up to `limit` items when given. */
export async function queryAll(
  client: DynamoDBClient,
  input: QueryCommandInput & { TableName: string },
  options: { limit?: number; capacity?: CapacityTally } = {},
): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of queryPages(client, input, options)) items.push(...page);
  return items;
}
