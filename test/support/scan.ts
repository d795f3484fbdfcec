import { ScanCommand, type AttributeValue, type DynamoDBClient, type ScanCommandInput } from '@aws-sdk/client-dynamodb';

// Reading every page of a table, for tests and benchmarks: no vitest imports here, so benchmarks can use it too.

type Item = Record<string, AttributeValue>;

/** Every item of a paginated Scan or Query: `readPage` reads the page that starts at the key it is given. */
export async function allPages(readPage: (startKey: Item | undefined) => Promise<{ Items?: Item[]; LastEvaluatedKey?: Item }>): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const page = await readPage(startKey);
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Every item of a table (with `input`, every one its filter keeps), read by a consistent Scan, page by page. */
export function scanAll(client: DynamoDBClient, tableName: string, input: Omit<ScanCommandInput, 'TableName' | 'ExclusiveStartKey'> = {}): Promise<Item[]> {
  return allPages((startKey) => client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ...input, ExclusiveStartKey: startKey })));
}
