import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { DescribeTableCommand, ListTablesCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createDynamoDbClient, PortTakenError, startDynamoDbLocal, startDynamoDbLocalOn } from '../../functions/local/dynamodb-local';
import { findFreePort, onFreePort } from '../../functions/local/ports';
import { startDev } from '../../functions/local/dev';

/**
 * A second `pql-radar dev` while the first runs: it must stop before starting anything, naming the port taken. Before,
 * the first one's DynamoDB Local answered the second's start-up checks, and the second wrote a write key into that
 * table before failing on the ingest port.
 */

let taken: Server | undefined;
afterEach(async () => {
  if (taken) await new Promise((closed) => taken!.close(closed));
  taken = undefined;
});

/** A port something listens on (all interfaces, as DynamoDB Local does). */
async function portInUse(): Promise<number> {
  // Connections are dropped at once: DynamoDB Local's start-up probe may reach this server, and an open one would hold its close.
  taken = createServer((connection) => connection.destroy());
  await new Promise<void>((listening) => taken!.listen(0, listening));
  return (taken.address() as { port: number }).port;
}

describe('ports already in use', () => {
  it('DynamoDB Local refuses a port something listens on, naming it and the option that chooses another', async () => {
    const port = await portInUse();
    await expect(startDynamoDbLocal({ port })).rejects.toThrow(`port ${port} is in use (is pql-radar dev running already?); it was wanted for DynamoDB Local (--dynamodb-port chooses another)`);
  });

  it('the local runtime stops on a taken ingest port before it touches the table', async () => {
    const port = await portInUse();
    const tableName = `ports-${randomUUID()}`;
    const endpoint = inject('dynamoEndpoint');
    await expect(startDev({ port, endpoint, tableName, evaluateEveryMs: 0 })).rejects.toThrow(`port ${port} is in use (is pql-radar dev running already?); it was wanted for the ingest endpoint (--port chooses another)`);
    const client = createDynamoDbClient(endpoint);
    await expect(client.send(new DescribeTableCommand({ TableName: tableName }))).rejects.toBeInstanceOf(ResourceNotFoundException);
    client.destroy();
  });
});

describe('a --write-key the table knows already', () => {
  it('is taken when it is a working write key of the workspace, and refused, saying why, when it is of another workspace, revoked or a read key', async () => {
    const tableName = `dev-key-${randomUUID()}`;
    const endpoint = inject('dynamoEndpoint');
    const first = await startDev({ port: 0, endpoint, tableName, workspace: 'acme', evaluateEveryMs: 0 });
    const { keys } = first;
    const other = (await keys.create('default')).key;
    const revoked = await keys.create('acme');
    await keys.revoke(revoked.record.keyId);
    const read = (await keys.create('acme', { access: 'read' })).key;
    await first.stop();

    const again = await startDev({ port: 0, endpoint, tableName, workspace: 'acme', writeKey: first.writeKey, evaluateEveryMs: 0 });
    expect(again.writeKey).toBe(first.writeKey);
    await again.stop();
    await expect(startDev({ port: 0, endpoint, tableName, workspace: 'acme', writeKey: other, evaluateEveryMs: 0 })).rejects.toThrow(/^--write-key belongs to workspace default, not acme \(key id \w+\)$/);
    await expect(startDev({ port: 0, endpoint, tableName, workspace: 'acme', writeKey: revoked.key, evaluateEveryMs: 0 })).rejects.toThrow('--write-key is revoked, or its secret does not match the key the table holds');
    await expect(startDev({ port: 0, endpoint, tableName, workspace: 'acme', writeKey: read, evaluateEveryMs: 0 })).rejects.toThrow('--write-key is a read key: it reads lead status, and cannot send events');
  });
});

describe('a port found free, then taken before it is listened on', () => {
  // As when another test file's server, given port 0 by the system, is given the port just found free.
  it('DynamoDB Local starts on another one', async () => {
    const port = await portInUse();
    const chosen: number[] = [];
    const choosePort = async () => {
      chosen.push(chosen.length === 0 ? port : await findFreePort());
      return chosen.at(-1)!;
    };
    const dynamoDb = await onFreePort((free) => startDynamoDbLocalOn(free, {}), (error) => error instanceof PortTakenError, choosePort);
    try {
      // The first start, on the taken port, failed with PortTakenError: any other error would have been thrown.
      expect(chosen).toHaveLength(2);
      expect(dynamoDb.endpoint).toBe(`http://127.0.0.1:${chosen[1]}`);
      const client = createDynamoDbClient(dynamoDb.endpoint);
      await expect(client.send(new ListTablesCommand({}))).resolves.toMatchObject({ TableNames: [] });
      client.destroy();
    } finally {
      await dynamoDb.stop();
    }
  });

  it('gives up after its attempts, and at once on any other error', async () => {
    const alwaysTaken = new PortTakenError('taken');
    let starts = 0;
    const failing = (error: Error) => async () => {
      starts++;
      throw error;
    };
    await expect(onFreePort(failing(alwaysTaken), (error) => error instanceof PortTakenError, findFreePort, 3)).rejects.toBe(alwaysTaken);
    expect(starts).toBe(3);

    starts = 0;
    const other = new Error('no java');
    await expect(onFreePort(failing(other), (error) => error instanceof PortTakenError)).rejects.toBe(other);
    expect(starts).toBe(1);
  });
});
