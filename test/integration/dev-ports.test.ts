import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { DescribeTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createDynamoDbClient, startDynamoDbLocal } from '../../functions/local/dynamodb-local';
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
  taken = createServer();
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
