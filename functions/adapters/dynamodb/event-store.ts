import {
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { AcceptedMessage, RejectedMessage } from '../../core/ingest';
import type { EventStore } from '../../core/ports';
import { backoff, putAll, type Item } from './batch-write';
import { CapacityTally } from './capacity';
import { markChanged } from './change-marker';
import {
  entityPartitionKey,
  eventSortKey,
  memberSortKey,
  profileSortKey,
  quarantinePartitionKey,
  quarantineSortKey,
  type EntityType,
} from './item-keys';

export interface DynamoDbEventStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Days an event is kept after its timestamp. @default 400 */
  retentionDays?: number;
  /** Days a rejected message is kept in the quarantine. @default 14 */
  quarantineRetentionDays?: number;
  /** Shards of the `dirty` index; the evaluator can run one invocation per shard. @default 4 */
  dirtyShards?: number;
}

export interface QuarantinedMessage {
  receivedAt: string;
  requestId: string;
  index: number;
  messageId?: string;
  path: string;
  reason: string;
  /** The message as sent, as JSON; cut at maxQuarantinedRawChars. */
  raw: string;
  rawTruncated: boolean;
}

const secondsPerDay = 86_400;
/** Keeps a quarantine item well under DynamoDB's 400 KB item limit: a request may be 500 KB. */
const maxQuarantinedRawChars = 300_000;
/** An UpdateExpression may be at most 4 KB; this many trait assignments stay far below it. */
const traitsPerUpdate = 50;

/** A change to one entity gathered from a request, applied as one update per entity. */
interface EntityChange {
  type: EntityType;
  id: string;
  days: Set<string>;
  traits: Map<string, unknown>;
  accountsJoined: Set<string>;
  aliases: Set<string>;
}

/**
 * Stores events in DynamoDB, once per messageId: each event is one item under its user, keyed by day and
 * messageId, so a retried message rewrites the same item. Events are not copied under accounts (that would
 * double the write cost): an account has member items, and each change of a member marks the account too,
 * so the evaluator rolls account-wide figures up from its members.
 */
export class DynamoDbEventStore implements EventStore {
  readonly capacity = new CapacityTally();
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly retentionSeconds: number;
  private readonly quarantineRetentionSeconds: number;
  private readonly dirtyShards: number;

  constructor(options: DynamoDbEventStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.retentionSeconds = (options.retentionDays ?? 400) * secondsPerDay;
    this.quarantineRetentionSeconds = (options.quarantineRetentionDays ?? 14) * secondsPerDay;
    this.dirtyShards = options.dirtyShards ?? 4;
  }

  async save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date): Promise<void> {
    const memberships = await this.currentMemberships(workspace, [...new Set(messages.map((m) => m.userKey))]);
    const changes = new Map<string, EntityChange>();
    const change = (type: EntityType, id: string) => {
      const key = entityPartitionKey(workspace, type, id);
      let entry = changes.get(key);
      if (!entry) {
        entry = { type, id, days: new Set(), traits: new Map(), accountsJoined: new Set(), aliases: new Set() };
        changes.set(key, entry);
      }
      return entry;
    };

    const eventItems: Item[] = [];
    const memberItems: Item[] = [];
    for (const message of messages) {
      const day = message.timestamp.slice(0, 10);
      const user = change('user', message.userKey);
      user.days.add(day);
      if (message.groupId !== undefined) {
        change('account', message.groupId).days.add(day);
        const accounts = memberships.get(message.userKey) ?? new Set<string>();
        memberships.set(message.userKey, accounts);
        if (!accounts.has(message.groupId)) {
          accounts.add(message.groupId);
          user.accountsJoined.add(message.groupId);
          memberItems.push(this.memberItem(workspace, message.groupId, message.userKey, message.timestamp));
        }
      }
      if (message.type === 'identify') for (const [name, value] of Object.entries(message.traits ?? {})) user.traits.set(name, value);
      if (message.type === 'group') for (const [name, value] of Object.entries(message.traits ?? {})) change('account', message.groupId!).traits.set(name, value);
      if (message.previousId !== undefined) user.aliases.add(message.previousId);
      eventItems.push(this.eventItem(workspace, message));
    }
    // Every account a user belongs to is re-evaluated when the user changes; taken after the loop, so the
    // marks are the same whatever the order of the messages, and the same when a request is retried.
    for (const entry of [...changes.values()]) {
      if (entry.type !== 'user') continue;
      for (const accountId of memberships.get(entry.id) ?? []) for (const day of entry.days) change('account', accountId).days.add(day);
    }

    // Order matters: events, then profiles, then the change markers the evaluator looks for, so a marker never
    // points at events that are not yet there.
    await putAll(this.client, this.tableName, [...eventItems, ...memberItems], { capacity: this.capacity });
    await Promise.all([...changes.entries()].map(([pk, entry]) => this.updateProfile(pk, entry, receivedAt)));
    await Promise.all(
      [...changes.entries()].map(([pk, entry]) =>
        markChanged(this.client, this.tableName, { pk, ...entry }, { at: receivedAt, shards: this.dirtyShards, capacity: this.capacity }),
      ),
    );
  }

  async quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date): Promise<void> {
    const expiresAt = Math.floor(receivedAt.getTime() / 1000) + this.quarantineRetentionSeconds;
    const items = rejected.map((message): Item => {
      const raw = JSON.stringify(message.raw) ?? 'undefined';
      return {
        pk: { S: quarantinePartitionKey(workspace) },
        sk: { S: quarantineSortKey(receivedAt, requestId, message.index) },
        receivedAt: { S: receivedAt.toISOString() },
        requestId: { S: requestId },
        index: { N: String(message.index) },
        ...(message.messageId ? { messageId: { S: message.messageId } } : {}),
        path: { S: message.path },
        reason: { S: message.reason },
        raw: { S: raw.slice(0, maxQuarantinedRawChars) },
        rawTruncated: { BOOL: raw.length > maxQuarantinedRawChars },
        expiresAt: { N: String(expiresAt) },
      };
    });
    await putAll(this.client, this.tableName, items, { capacity: this.capacity });
  }

  /** The quarantined messages of a workspace, newest first. */
  async listRejected(workspace: string, limit = 100): Promise<QuarantinedMessage[]> {
    const found: QuarantinedMessage[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': { S: quarantinePartitionKey(workspace) } },
          ScanIndexForward: false,
          Limit: limit - found.length,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        found.push({
          receivedAt: item['receivedAt']?.S ?? '',
          requestId: item['requestId']?.S ?? '',
          index: Number(item['index']?.N ?? 0),
          ...(item['messageId']?.S ? { messageId: item['messageId'].S } : {}),
          path: item['path']?.S ?? '',
          reason: item['reason']?.S ?? '',
          raw: item['raw']?.S ?? '',
          rawTruncated: item['rawTruncated']?.BOOL ?? false,
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey && found.length < limit);
    return found;
  }

  private eventItem(workspace: string, message: AcceptedMessage): Item {
    const eventSeconds = Math.floor(Date.parse(message.timestamp) / 1000);
    return {
      pk: { S: entityPartitionKey(workspace, 'user', message.userKey) },
      sk: { S: eventSortKey(message.timestamp, message.messageId) },
      // The message as JSON, not as a DynamoDB map: any JSON survives (numbers beyond DynamoDB's range, empty keys).
      msg: { S: JSON.stringify(message.message) },
      ...(message.groupId !== undefined ? { account: { S: message.groupId } } : {}),
      expiresAt: { N: String(eventSeconds + this.retentionSeconds) },
    };
  }

  private memberItem(workspace: string, accountId: string, userKey: string, joinedAt: string): Item {
    return {
      pk: { S: entityPartitionKey(workspace, 'account', accountId) },
      sk: { S: memberSortKey(userKey) },
      userKey: { S: userKey },
      joinedAt: { S: joinedAt },
    };
  }

  /** The accounts each user already belongs to, from their profiles. */
  private async currentMemberships(workspace: string, userKeys: string[]) {
    const memberships = new Map<string, Set<string>>();
    for (let i = 0; i < userKeys.length; i += 100) {
      let keys: Record<string, AttributeValue>[] | undefined = userKeys
        .slice(i, i + 100)
        .map((userKey) => ({ pk: { S: entityPartitionKey(workspace, 'user', userKey) }, sk: { S: profileSortKey } }));
      for (let round = 0; keys && keys.length > 0; round++) {
        if (round >= 10) throw new Error('DynamoDB left user profiles unprocessed after 10 rounds of BatchGetItem');
        if (round > 0) await backoff(round);
        const output: BatchGetItemCommandOutput = await this.client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ProjectionExpression: 'entityId, accounts' } },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
        this.capacity.add('read', output.ConsumedCapacity);
        for (const item of output.Responses?.[this.tableName] ?? []) {
          const userKey = item['entityId']?.S;
          if (userKey === undefined) continue;
          memberships.set(userKey, new Set(item['accounts']?.SS ?? []));
        }
        keys = output.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return memberships;
  }

  /** Writes traits, memberships and aliases; a profile is touched only when the request changes one of them. */
  private async updateProfile(pk: string, entry: EntityChange, receivedAt: Date): Promise<void> {
    const traitEntries = [...entry.traits.entries()];
    const hasOtherChanges = entry.accountsJoined.size > 0 || entry.aliases.size > 0;
    if (traitEntries.length === 0 && !hasOtherChanges) return;

    const traitGroups: [string, unknown][][] = [];
    for (let i = 0; i < traitEntries.length; i += traitsPerUpdate) traitGroups.push(traitEntries.slice(i, i + traitsPerUpdate));
    if (traitGroups.length === 0) traitGroups.push([]);

    for (const [groupIndex, traits] of traitGroups.entries()) {
      const names: Record<string, string> = {};
      const values: Record<string, AttributeValue> = {
        ':type': { S: entry.type },
        ':id': { S: entry.id },
        ':now': { S: receivedAt.toISOString() },
      };
      const set = ['entityType = :type', 'entityId = :id', 'createdAt = if_not_exists(createdAt, :now)'];
      const add: string[] = [];
      traits.forEach(([name, value], i) => {
        names[`#t${i}`] = `trait:${name}`;
        values[`:t${i}`] = { S: JSON.stringify(value) ?? 'null' };
        set.push(`#t${i} = :t${i}`);
      });
      if (groupIndex === 0) {
        if (entry.accountsJoined.size > 0) {
          values[':accounts'] = { SS: [...entry.accountsJoined] };
          add.push('accounts :accounts');
        }
        if (entry.aliases.size > 0) {
          values[':aliases'] = { SS: [...entry.aliases] };
          add.push('aliases :aliases');
        }
      }
      const output = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pk }, sk: { S: profileSortKey } },
          UpdateExpression: `SET ${set.join(', ')}${add.length > 0 ? ` ADD ${add.join(', ')}` : ''}`,
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', output.ConsumedCapacity);
    }
  }
}
