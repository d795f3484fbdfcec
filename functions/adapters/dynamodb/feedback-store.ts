import { GetItemCommand, PutItemCommand, TransactWriteItemsCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import type { LeadFeedback } from '../../core/lead-feedback';
import type { LeadState } from '../../core/lead-state';
import type { EntityRef, FeedbackStore } from '../../core/ports';
import { entityPartitionKey, feedbackSecretSortKey, feedbackSortKey, metaPartitionKey, stateSortKey, usedFeedbackLinkPartitionKey, usedFeedbackLinkSortKey } from './item-keys';
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
const secretKey = { pk: { S: metaPartitionKey }, sk: { S: feedbackSecretSortKey } };

/**
 * The key feedback links are signed with, made once per table (a conditional put keeps the first)
 * and kept in it, like the write keys' hashes: no other secret store to create or pay for. Whoever can read this item
 * can sign links, so a role meant to read leads only should not get GetItem on the META partition.
 */
export async function ensureFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<string> {
  await createFeedbackSecret(client, tableName);
  return (await readFeedbackSecret(client, tableName))!;
}

/** Makes the signing key unless the table has one (the deploy's bootstrap, every deploy; `npm start`). */
export async function createFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new PutItemCommand({ TableName: tableName, Item: { ...secretKey, secret: { S: randomBytes(32).toString('base64url') } }, ConditionExpression: 'attribute_not_exists(pk)' }));
  } catch (error) {
    if (!conditionFailed(error)) throw error;
  }
}

/** The signing key, or undefined when no link was ever signed with this table. */
export async function readFeedbackSecret(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: secretKey, ConsistentRead: true }));
  return Item?.['secret']?.S;
}
