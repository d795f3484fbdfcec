import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { tableDefinition } from '../../functions/adapters/dynamodb/table-definition';
import { databaseClient, ensureTable, JavaMissingError, startDynamoDbLocal } from '../../functions/local/dynamodb-local';
import { freshTable } from '../support/dynamodb';

const modulePath = new URL('../../functions/local/dynamodb-local.ts', import.meta.url).pathname;

/** Whether a process of that id runs (a signal 0 finds it). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ensureTable on DynamoDB Local', () => {
  it('creates a table that stores and returns items', async () => {
    const { client, tableName } = await freshTable();
    const key = { pk: { S: 'WS#acme#user#u1' }, sk: { S: 'PROFILE' } };

    await client.send(new PutItemCommand({ TableName: tableName, Item: { ...key, plan: { S: 'pro' } } }));
    const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));

    expect(Item).toEqual({ ...key, plan: { S: 'pro' } });
  });

  it('creates the dirty index and enables TTL, and can be called again', async () => {
    const { client, tableName } = await freshTable();

    await ensureTable(client, tableName);

    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual([tableDefinition.dirtyIndex.indexName]);
    const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    expect(TimeToLiveDescription).toEqual({
      TimeToLiveStatus: 'ENABLED',
      AttributeName: tableDefinition.timeToLiveAttribute,
    });
  });
});

describe('startDynamoDbLocal', () => {
  it('fails with JavaMissingError when java is not on PATH', async () => {
    const emptyDir = await mkdtemp(join(tmpdir(), 'no-java-'));
    const path = process.env.PATH;
    // child_process.spawn looks java up in process.env.PATH at spawn time.
    process.env.PATH = emptyDir;
    try {
      const started = startDynamoDbLocal();
      await expect(started).rejects.toBeInstanceOf(JavaMissingError);
      await expect(started).rejects.toThrow(/java not found on PATH/i);
    } finally {
      process.env.PATH = path;
      await rm(emptyDir, { recursive: true });
    }
  });

  it('tells when the Java process exits on its own, and not when stop() ends it', async () => {
    const killed = await startDynamoDbLocal();
    process.kill(killed.pid, 'SIGKILL');
    expect(await killed.exited).toBe('signal SIGKILL');
    await killed.stop();

    const stopped = await startDynamoDbLocal();
    await stopped.stop();
    expect(await Promise.race([stopped.exited, sleep(500).then(() => 'not told')])).toBe('not told');
  });

  it('leaves no Java process behind when the process that started it is killed, where no handler of its runs', async () => {
    const started = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { startDynamoDbLocal } from ${JSON.stringify(modulePath)}; console.log((await startDynamoDbLocal()).pid);`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: started.stdout! }), 'line')) as [string];
    const javaPid = Number(line);
    expect(() => process.kill(javaPid, 0)).not.toThrow();

    started.kill('SIGKILL');

    const deadline = Date.now() + 10_000;
    while (isRunning(javaPid) && Date.now() < deadline) await sleep(100);
    expect(isRunning(javaPid)).toBe(false);
  });

  it('shares one database whatever the credentials, by default', async () => {
    const { client, tableName } = await freshTable();
    const key = { pk: { S: 'WS#acme#user#u1' }, sk: { S: 'PROFILE' } };
    await client.send(new PutItemCommand({ TableName: tableName, Item: key }));
    const other = databaseClient(inject('dynamoEndpoint'), 'someoneElse');
    try {
      const { Item } = await other.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
      expect(Item).toEqual(key);
    } finally {
      other.destroy();
    }
  });

  it('keeps each access key id in a database of its own with sharedDb false', async () => {
    const dynamoDb = await startDynamoDbLocal({ sharedDb: false });
    const [first, second] = ['first', 'second'].map((name) => databaseClient(dynamoDb.endpoint, name)) as [DynamoDBClient, DynamoDBClient];
    try {
      const key = { pk: { S: 'WS#acme#user#u1' }, sk: { S: 'PROFILE' } };
      await ensureTable(first, 'pql-radar');
      await first.send(new PutItemCommand({ TableName: 'pql-radar', Item: { ...key, plan: { S: 'pro' } } }));
      // The same table name in the other database: created apart, and empty.
      await ensureTable(second, 'pql-radar');

      expect((await second.send(new GetItemCommand({ TableName: 'pql-radar', Key: key, ConsistentRead: true }))).Item).toBeUndefined();
      expect((await first.send(new GetItemCommand({ TableName: 'pql-radar', Key: key, ConsistentRead: true }))).Item).toEqual({ ...key, plan: { S: 'pro' } });
    } finally {
      first.destroy();
      second.destroy();
      await dynamoDb.stop();
    }
  });

  it('refuses a database name DynamoDB Local would not take as an access key id', () => {
    expect(() => databaseClient(inject('dynamoEndpoint'), 'bench-evaluate')).toThrow('a DynamoDB Local database name is letters and digits only (got "bench-evaluate")');
  });

  it('leaves no Java process behind after stop()', async () => {
    const dynamoDb = await startDynamoDbLocal();
    expect(() => process.kill(dynamoDb.pid, 0)).not.toThrow();

    await dynamoDb.stop();

    expect(() => process.kill(dynamoDb.pid, 0)).toThrow();
  });
});
