import { DeleteItemCommand, GetItemCommand, PutItemCommand, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { LeadFeedback } from '../../core/lead-feedback';
import type { LeadState } from '../../core/lead-state';
import type { EntityRef, FeedbackStore } from '../../core/ports';
import {
  entityPartitionKey,
  feedbackSigningKeyPartition,
  feedbackSigningKeySortKey,
  feedbackSortKey,
  metaFeedbackSecretSortKey,
  metaPartitionKey,
  stateSortKey,
  usedFeedbackLinkPartitionKey,
  usedFeedbackLinkSortKey,
} from './item-keys';
import { conditionFailed, transactionConditionFailed } from './condition-failed';
import { stateOf } from './entity-rows';

/**
 * Sales feedback as the CLI, the lead page and the link handler write it: an item beside the entity (item-keys.ts
 * feedbackSortKey), which change capture lists for the evaluator, and which the evaluator's save applies and deletes
 * in one transaction with the state. Nothing here writes a lead's state: the evaluator stays its one writer, so
 * feedback never races a run, and feedback that was accepted waits until a run applies it.
 */
export class DynamoDbFeedbackStore implements FeedbackStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async state(ref: EntityRef): Promise<LeadState | undefined> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: pkOf(ref) }, sk: { S: stateSortKey } } }));
    return stateOf(Item)?.lead;
  }

  async give(ref: EntityRef, feedback: LeadFeedback, once?: { expires: Date }): Promise<boolean> {
    const item = { pk: { S: pkOf(ref) }, sk: { S: feedbackSortKey(feedback.at, feedback.id) }, feedback: { S: JSON.stringify(feedback) } };
    if (!once) {
      await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: item }));
      return true;
    }
    // The nonce and the feedback in one transaction: a link is used exactly when its feedback is kept.
    try {
      await this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { ...usedKey(ref.workspace, feedback.id), expiresAt: { N: String(Math.ceil(once.expires.getTime() / 1000)) } },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            { Put: { TableName: this.tableName, Item: item } },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (transactionConditionFailed(error)) return false;
      throw error;
    }
  }

  async used(workspace: string, nonce: string): Promise<boolean> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: usedKey(workspace, nonce), ConsistentRead: true }));
    return Item !== undefined;
  }
}

const pkOf = (ref: EntityRef) => entityPartitionKey(ref.workspace, ref.type, ref.id);
const usedKey = (workspace: string, nonce: string) => ({ pk: { S: usedFeedbackLinkPartitionKey(workspace, nonce) }, sk: { S: usedFeedbackLinkSortKey } });
const secretKey = { pk: { S: feedbackSigningKeyPartition }, sk: { S: feedbackSigningKeySortKey } };
/** A new signing key: 32 random bytes, base64url. */
const newSigningKey = () => randomBytes(32).toString('base64url');
/** The signing key as versions before kept it, in META, which the evaluator and rule health read for other items. */
const metaSecretKey = { pk: { S: metaPartitionKey }, sk: { S: metaFeedbackSecretSortKey } };

/**
 * The key feedback links are signed with, made once per table (a conditional put keeps the first) and kept in it, like
 * the write keys' hashes: no other secret store to create or pay for. Whoever can read this item can sign links, so it
 * has a partition of its own (item-keys.ts feedbackSigningKeyPartition), which only the roles that sign or check links
 * may read.
 */
export async function ensureFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<string> {
  await makeOrMoveFeedbackSecret(client, tableName);
  return (await readFeedbackSecret(client, tableName))!;
}

/**
 * Makes the signing key unless the table has one (the deploy's bootstrap, on every update of its custom resource;
 * `npm start`). A table whose key is still in META, where versions before kept it, gets that key in its own partition
 * instead of a new one, so the links already sent stay valid; then the META item is deleted, so that no role reading
 * META can read the key any more. Running it again changes nothing.
 */
export async function makeOrMoveFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<void> {
  const { Item: inMeta } = await client.send(new GetItemCommand({ TableName: tableName, Key: metaSecretKey, ConsistentRead: true }));
  const secret = inMeta?.['secret']?.S ?? newSigningKey();
  try {
    await client.send(new PutItemCommand({ TableName: tableName, Item: { ...secretKey, secret: { S: secret } }, ConditionExpression: 'attribute_not_exists(pk)' }));
  } catch (error) {
    // The first writer's key is the table's: an earlier run's (which moved this same key, or was interrupted before
    // the delete below), or a concurrent one's.
    if (!conditionFailed(error)) throw error;
  }
  // Only once the key is in its own partition: a failure before this leaves the META item for the next run to delete.
  if (inMeta) await client.send(new DeleteItemCommand({ TableName: tableName, Key: metaSecretKey }));
}

/**
 * Replaces the signing key with a new one (`pql-radar keys rotate-link-key`): links signed before stop working.
 * Deployed functions read the new key at their next cold start. Not the bootstrap's job: a deploy runs it only when its
 * custom resource's properties change, so deleting the key and deploying again made none.
 */
export async function rotateFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(new PutItemCommand({ TableName: tableName, Item: { ...secretKey, secret: { S: newSigningKey() } } }));
}

/**
 * The signing key, or undefined when no link was ever signed with this table. Read from its own partition only, never
 * from META: the bootstrap moves a key kept there before the functions that read it are updated (they depend on its
 * custom resource: lib/pql-radar-stack.ts), and `npm start` moves it before it serves.
 */
export async function readFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: secretKey, ConsistentRead: true }));
  return Item?.['secret']?.S;
}
