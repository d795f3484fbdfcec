import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { ensureFeedbackSecret, makeOrMoveFeedbackSecret, readFeedbackSecret } from '../../functions/adapters/dynamodb/feedback-store';
import { cli } from '../support/cli';
import { freshTable } from '../support/dynamodb';
import { scanAll } from '../support/scan';

// The items spelled out rather than taken from item-keys.ts: the META item is what tables made by earlier versions
// hold, and the new one is the partition the stack's IAM conditions name (test/infra/stack.test.ts).
const keptByEarlierVersions = (secret: string) => ({ pk: { S: 'META' }, sk: { S: 'FEEDBACK_SECRET' }, secret: { S: secret } });
const inItsOwnPartition = (secret: string) => ({ pk: { S: 'FEEDBACK_SIGNING_KEY' }, sk: { S: 'KEY' }, secret: { S: secret } });

const put = (client: DynamoDBClient, tableName: string, item: Record<string, { S: string }>) => client.send(new PutItemCommand({ TableName: tableName, Item: item }));

describe('the feedback links\' signing key against DynamoDB Local', () => {
  it('of a table made by a version that kept it in META is moved to its own partition, the same key, and META holds it no more', async () => {
    const { client, tableName } = await freshTable();
    await put(client, tableName, keptByEarlierVersions('key-of-the-links-already-sent'));

    // The deploy's bootstrap.
    await makeOrMoveFeedbackSecret(client, tableName);
    expect(await readFeedbackSecret(client, tableName)).toBe('key-of-the-links-already-sent');
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition('key-of-the-links-already-sent')]);

    // Every later deploy, and `npm start` on the same table: nothing changes.
    await makeOrMoveFeedbackSecret(client, tableName);
    expect(await ensureFeedbackSecret(client, tableName)).toBe('key-of-the-links-already-sent');
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition('key-of-the-links-already-sent')]);
  });

  it('is moved by `npm start` too, which then signs with the key of the links already sent', async () => {
    const { client, tableName } = await freshTable();
    await put(client, tableName, keptByEarlierVersions('key-of-the-links-already-sent'));
    expect(await ensureFeedbackSecret(client, tableName)).toBe('key-of-the-links-already-sent');
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition('key-of-the-links-already-sent')]);
  });

  it('keeps the first key written when two moves run at once', async () => {
    const { client, tableName } = await freshTable();
    await put(client, tableName, keptByEarlierVersions('key-of-the-links-already-sent'));
    await Promise.all([makeOrMoveFeedbackSecret(client, tableName), makeOrMoveFeedbackSecret(client, tableName)]);
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition('key-of-the-links-already-sent')]);
  });

  it('left in META by a move interrupted after its copy is deleted by the next run, and the copy kept', async () => {
    const { client, tableName } = await freshTable();
    await put(client, tableName, inItsOwnPartition('key-of-the-links-already-sent'));
    await put(client, tableName, keptByEarlierVersions('key-of-the-links-already-sent'));
    await makeOrMoveFeedbackSecret(client, tableName);
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition('key-of-the-links-already-sent')]);
  });

  it('of a new table is made once, in its own partition, and kept by every later run', async () => {
    const { client, tableName } = await freshTable();
    expect(await readFeedbackSecret(client, tableName)).toBeUndefined();
    await makeOrMoveFeedbackSecret(client, tableName);
    const made = await readFeedbackSecret(client, tableName);
    // 32 random bytes, base64url.
    expect(made).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await makeOrMoveFeedbackSecret(client, tableName);
    expect(await ensureFeedbackSecret(client, tableName)).toBe(made);
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition(made!)]);
  });

  it('is replaced by `pql-radar keys rotate-link-key`, which no later deploy undoes', async () => {
    const { client, tableName } = await freshTable();
    const made = await ensureFeedbackSecret(client, tableName);
    const rotated = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, 'keys', 'rotate-link-key');
    expect(rotated.stderr).toBe('');
    expect(rotated.stdout).toContain("rotated the feedback links' signing key");
    const replaced = await readFeedbackSecret(client, tableName);
    expect(replaced).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(replaced).not.toBe(made);
    // The deploy's bootstrap after it keeps the new key.
    await makeOrMoveFeedbackSecret(client, tableName);
    expect(await scanAll(client, tableName)).toEqual([inItsOwnPartition(replaced!)]);
  });
});
