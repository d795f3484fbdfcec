import { GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { queryAll } from './batch-write';
import type { WriteKeyStore } from '../../core/ports';
import { TtlCache } from '../../core/ttl-cache';
import { checkWorkspace, generateWriteKey, hashSecret, parseGivenKey, type KeyAccess, type WriteKeyRecord } from '../../core/write-key';
import { originsSortKey, writeKeySortKey, writeKeysPartition } from './item-keys';
import { conditionFailed } from './condition-failed';

const originsKey = { pk: { S: writeKeysPartition }, sk: { S: originsSortKey } };
/** One attribute per workspace in the origins item: `origins:<workspace>`, a string set. */
const originsAttributePrefix = 'origins:';

/** Write keys in the table: one item per key, holding only the SHA-256 of its secret. */
export class DynamoDbWriteKeyStore implements WriteKeyStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async find(keyId: string): Promise<WriteKeyRecord | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: this.key(keyId), ConsistentRead: true }),
    );
    return Item ? toRecord(Item) : undefined;
  }

  /**
   * Creates a key for the workspace and returns it: the only time the full key is ever available.
   * With `existingKey`, registers that key (e.g. a Segment write key the SDKs already use) instead of a new one.
   * With `access: 'read'`, a read key: it reads the workspace's lead status and cannot send events.
   */
  async create(workspace: string, options: { existingKey?: string; now?: Date; access?: KeyAccess } = {}): Promise<{ key: string; record: WriteKeyRecord }> {
    checkWorkspace(workspace);
    const access = options.access ?? 'write';
    // Keys are imported only for SDKs that already send one; a read key is always made here, so that it is recognisable.
    if (access === 'read' && options.existingKey !== undefined) throw new Error('a read key cannot be imported: create a new one');
    const { key, keyId, secret } = options.existingKey === undefined ? generateWriteKey(access) : importedKey(options.existingKey);
    const record: WriteKeyRecord = {
      keyId,
      workspace,
      secretHash: hashSecret(secret),
      createdAt: (options.now ?? new Date()).toISOString(),
      ...(access === 'read' ? { access } : {}),
    };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            ...this.key(keyId),
            keyId: { S: keyId },
            workspace: { S: workspace },
            secretHash: { S: record.secretHash },
            createdAt: { S: record.createdAt },
            ...(record.access ? { access: { S: record.access } } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
          // Names the workspace that has the key, with no second read.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      // Only an imported key can be there already (a generated id colliding is a 1 in 2^48 chance).
      if (!conditionFailed(error)) throw error;
      const registered = (error as { Item?: Record<string, AttributeValue> }).Item;
      const holder = registered === undefined ? undefined : toRecord(registered);
      throw new Error(
        `the key ${keyId} is registered already${holder ? `, in workspace ${holder.workspace}${holder.revokedAt ? `, revoked ${holder.revokedAt}` : ''}` : ''}: a key belongs to one workspace; see it with "keys list"`,
      );
    }
    return { key, record };
  }

  async allowedOrigins(): Promise<ReadonlyMap<string, readonly string[]>> {
    const { Item } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: originsKey, ConsistentRead: true }));
    const allowed = new Map<string, string[]>();
    for (const [name, value] of Object.entries(Item ?? {})) {
      if (name.startsWith(originsAttributePrefix) && value.SS) allowed.set(name.slice(originsAttributePrefix.length), [...value.SS].sort());
    }
    return allowed;
  }

  /** Sets the browser origins a workspace accepts events from (canonical origins or `*`); none means browsers are refused. */
  async setAllowedOrigins(workspace: string, origins: readonly string[]): Promise<void> {
    // A name no key can have would be kept, and listed by `origins list`, for a workspace that can never send.
    checkWorkspace(workspace);
    // One item holds every workspace's list, so ingest reads them all (for a preflight, which names no workspace) at once.
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: originsKey,
        ...(origins.length > 0
          ? { UpdateExpression: 'SET #workspace = :origins', ExpressionAttributeValues: { ':origins': { SS: [...new Set(origins)] } } }
          : { UpdateExpression: 'REMOVE #workspace' }),
        ExpressionAttributeNames: { '#workspace': `${originsAttributePrefix}${workspace}` },
      }),
    );
  }

  async list(): Promise<WriteKeyRecord[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: writeKeysPartition } },
    });
    return items.filter((item) => item['sk']?.S !== originsSortKey).map(toRecord);
  }

  /** Revokes a key; false when there is no such key. Revoking twice keeps the first revocation time. */
  async revoke(keyId: string, now = new Date()): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: this.key(keyId),
          UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :now)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':now': { S: now.toISOString() } },
        }),
      );
      return true;
    } catch (error) {
      if (conditionFailed(error)) return false;
      throw error;
    }
  }

  private key(keyId: string) {
    return { pk: { S: writeKeysPartition }, sk: { S: writeKeySortKey(keyId) } };
  }
}

function importedKey(key: string) {
  return { key, ...parseGivenKey(key, 'the write key') };
}

function toRecord(item: Record<string, AttributeValue>): WriteKeyRecord {
  return {
    keyId: item['keyId']?.S ?? '',
    workspace: item['workspace']?.S ?? '',
    secretHash: item['secretHash']?.S ?? '',
    createdAt: item['createdAt']?.S ?? '',
    ...(item['revokedAt']?.S ? { revokedAt: item['revokedAt'].S } : {}),
    ...(item['access']?.S === 'read' ? { access: 'read' as const } : {}),
  };
}

/**
 * Remembers lookups for a short time, so a warm Lambda does not read the key on every request.
 * A revocation, or a change of a workspace's origins, therefore takes effect within `ttlMs`.
 */
export class CachedWriteKeyStore implements WriteKeyStore {
  private readonly records: TtlCache<WriteKeyRecord | undefined>;
  private origins: { value: ReadonlyMap<string, readonly string[]>; expires: number } | undefined;

  constructor(
    private readonly inner: WriteKeyStore,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.records = new TtlCache(ttlMs, 10_000, now);
  }

  find(keyId: string): Promise<WriteKeyRecord | undefined> {
    return this.records.get(keyId, () => this.inner.find(keyId));
  }

  async allowedOrigins(): Promise<ReadonlyMap<string, readonly string[]>> {
    if (this.origins && this.origins.expires > this.now()) return this.origins.value;
    const value = await this.inner.allowedOrigins();
    this.origins = { value, expires: this.now() + this.ttlMs };
    return value;
  }
}
