import {
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { calendarOf, type Calendar } from '../../core/days';
import type { AcceptedMessage, RejectedMessage } from '../../core/messages';
import type { EventStore, Refusal } from '../../core/ports';
import { defaultQuarantineRetentionDays, defaultRetentionDays } from '../../shared/settings';
import { getAll, inSlices, putAll, queryAll, type Item } from './batch-write';
import { CapacityTally } from './capacity';
import { eventBodyAttributes } from './event-body';
import { eventChunks, type EventChunk } from './event-chunks';
import {
  entityPartitionKey,
  eventSortKey,
  memberSortKey,
  profileSortKey,
  quarantinePartitionKey,
  quarantineSortKey,
  receiptPartitionKey,
  receiptSortKey,
  type EntityType,
} from './item-keys';

export interface DynamoDbEventStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Days an event is kept after its day. @default 400 */
  retentionDays?: number;
  /** Days a rejected message is kept in the quarantine. @default 14 */
  quarantineRetentionDays?: number;
  /**
   * The time zone of the rules' calendar (the rules file's `timezone`): events are stored by their day in it, so the
   * evaluator reads a changed day as one set of items. @default UTC
   */
  timeZone?: string;
}

export interface QuarantinedMessage {
  receivedAt: string;
  requestId: string;
  index: number;
  messageId?: string;
  path: string;
  reason: string;
  /** The message as sent, as JSON; cut at maxQuarantinedRawBytes. */
  raw: string;
  rawTruncated: boolean;
}

const secondsPerDay = 86_400;
/** Keeps a quarantine item well under DynamoDB's 400 KB item limit (UTF-8 bytes): a request may be 500 KB. */
const maxQuarantinedRawBytes = 300_000;
/** Retries of a message come within minutes or hours; a week of receipts is plenty. */
const receiptRetentionSeconds = 7 * 86_400;
/** An UpdateExpression may be at most 4 KB; this many trait assignments stay far below it. */
const traitsPerUpdate = 50;

/** A change to one entity gathered from a request, applied as one update per entity. */
interface EntityChange {
  type: EntityType;
  id: string;
  traits: Map<string, unknown>;
  /** Indexes of the messages that brought the traits, refused together if the profile cannot take them. */
  traitSources: number[];
  accountsJoined: Set<string>;
}

/**
 * Stores events in DynamoDB under their user or visitor: the messages of one request for one entity and one day in
 * one item (a chunk, event-chunks.ts), keyed by day and an id derived from the chunk's messageIds, so a retried
 * request rewrites the same items; a message retried in another request lands in a second item, and readers keep one
 * copy. Events are not copied under accounts (that would double the write cost): an account has member items, and
 * each change of a member marks the account too, so the evaluator rolls account-wide figures up from its members.
 */
export class DynamoDbEventStore implements EventStore {
  readonly capacity = new CapacityTally();
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly retentionSeconds: number;
  private readonly quarantineRetentionSeconds: number;
  private readonly calendar: Calendar;

  constructor(options: DynamoDbEventStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.retentionSeconds = (options.retentionDays ?? defaultRetentionDays) * secondsPerDay;
    this.quarantineRetentionSeconds = (options.quarantineRetentionDays ?? defaultQuarantineRetentionDays) * secondsPerDay;
    this.calendar = calendarOf(options.timeZone ?? 'UTC');
  }

  async save(workspace: string, received: readonly AcceptedMessage[], receivedAt: Date): Promise<{ refused: Refusal[] }> {
    const { messages, receipts } = await this.withFirstReceipts(workspace, received, receivedAt);
    const profiles = await this.currentProfiles(workspace, messages);
    const memberships = new Map<string, Set<string>>();
    for (const message of messages) {
      const { kind, id } = message.identity;
      if (kind === 'user' && !memberships.has(id)) memberships.set(id, new Set(profiles.get(entityPartitionKey(workspace, 'user', id))?.['accounts']?.SS ?? []));
    }
    const changes = new Map<string, EntityChange>();
    const change = (type: EntityType, id: string) => {
      const key = entityPartitionKey(workspace, type, id);
      let entry = changes.get(key);
      if (!entry) {
        entry = { type, id, traits: new Map(), traitSources: [], accountsJoined: new Set() };
        changes.set(key, entry);
      }
      return entry;
    };

    const memberItems = new Map<number, Item>();
    for (const message of messages) {
      const { kind, id } = message.identity;
      const user = change(kind, id);
      // Accounts have users as members: an anonymous visitor's group is not a membership (core/identity merges the
      // visitor's events into its user, and the user's own messages name its accounts), but a visitor's group call
      // still sets the account's traits, so the account changes that day.
      if (message.groupId !== undefined && (kind === 'user' || message.type === 'group')) change('account', message.groupId);
      if (message.groupId !== undefined && kind === 'user') {
        const accounts = memberships.get(id) ?? new Set<string>();
        memberships.set(id, accounts);
        if (!accounts.has(message.groupId)) {
          accounts.add(message.groupId);
          user.accountsJoined.add(message.groupId);
          memberItems.set(message.index, this.memberItem(workspace, message.groupId, id, message.timestamp));
        }
      }
      const traitsOf = message.type === 'identify' ? user : message.type === 'group' ? change('account', message.groupId!) : undefined;
      if (traitsOf && message.traits && Object.keys(message.traits).length > 0) {
        for (const [name, value] of Object.entries(message.traits)) traitsOf.traits.set(name, value);
        traitsOf.traitSources.push(message.index);
      }
    }
    // Profiles first: traits that cannot fit refuse their messages, which are then not stored as events either.
    const refused: Refusal[] = [];
    await Promise.all(
      [...changes.entries()].map(async ([pk, requested]) => {
        const entry = withoutUnchangedTraits(requested, profiles.get(pk));
        changes.set(pk, entry);
        try {
          await this.updateProfile(pk, entry, receivedAt);
        } catch (error) {
          if (!isItemTooLarge(error)) throw error;
          const reason = `the traits would make the ${entry.type} profile larger than DynamoDB's 400 KB item limit; send fewer or smaller traits`;
          for (const index of entry.traitSources) refused.push({ index, path: 'traits', reason });
        }
      }),
    );
    const refusedIndexes = new Set(refused.map((refusal) => refusal.index));
    const stored = messages.filter((message) => !refusedIndexes.has(message.index));
    // Then the events. Change capture lists their users for the evaluator from the table's stream, and the accounts
    // whose profile (traits) was written above (change-capture.ts): ingest writes no marker.
    const members = stored.map((message) => memberItems.get(message.index)).filter((item): item is Item => item !== undefined);
    const chunks = eventChunks(
      stored.map((message) => ({
        entity: entityPartitionKey(workspace, message.identity.kind, message.identity.id),
        day: this.calendar.dayOf(message.timestamp),
        messageId: message.messageId,
        // The message as JSON, not as a DynamoDB map: any JSON survives (numbers beyond DynamoDB's range, empty keys).
        json: JSON.stringify(message.message),
      })),
    );
    await putAll(this.client, this.tableName, [...chunks.map((chunk) => this.eventItem(chunk)), ...members, ...receipts], { capacity: this.capacity });
    return { refused };
  }

  /**
   * A message without a time of its own is filed under the day it was received, which a retry after midnight would
   * change. The first receipt of its messageId is remembered for a week, and a retry takes that receipt's time, so it
   * rewrites the same item. Messages with their own timestamp need none of this (nor its extra write).
   */
  private async withFirstReceipts(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date) {
    const serverTimed = messages.filter((message) => message.serverTimed);
    if (serverTimed.length === 0) return { messages, receipts: [] as Item[] };
    const keys = [...new Set(serverTimed.map((message) => message.messageId))].map((messageId) => ({
      pk: { S: receiptPartitionKey(workspace, messageId) },
      sk: { S: receiptSortKey },
    }));
    const first = new Map<string, string>();
    const found = await getAll(this.client, this.tableName, keys, { projection: 'messageId, receivedAt', capacity: this.capacity });
    for (const item of found) first.set(item['messageId']!.S!, item['receivedAt']!.S!);
    const expiresAt = { N: String(Math.floor(receivedAt.getTime() / 1000) + receiptRetentionSeconds) };
    // A messageId met twice in one save (a retry buffered with the original, lib/ingest-buffer.ts) takes its first copy's time.
    const receipts: Item[] = [];
    for (const message of serverTimed) {
      if (first.has(message.messageId)) continue;
      first.set(message.messageId, message.timestamp);
      receipts.push({ ...keys.find((key) => key.pk.S === receiptPartitionKey(workspace, message.messageId))!, messageId: { S: message.messageId }, receivedAt: { S: message.timestamp }, expiresAt });
    }
    return {
      receipts,
      messages: messages.map((message) => {
        const firstTime = message.serverTimed ? first.get(message.messageId) : undefined;
        return firstTime === undefined || firstTime === message.timestamp ? message : { ...message, timestamp: firstTime, message: { ...message.message, timestamp: firstTime } };
      }),
    };
  }

  async quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date): Promise<void> {
    const expiresAt = Math.floor(receivedAt.getTime() / 1000) + this.quarantineRetentionSeconds;
    const items = rejected.map((message): Item => {
      const raw = serialise(message.raw);
      const bytes = Buffer.from(raw);
      return {
        pk: { S: quarantinePartitionKey(workspace) },
        sk: { S: quarantineSortKey(receivedAt, requestId, message.index) },
        receivedAt: { S: receivedAt.toISOString() },
        requestId: { S: requestId },
        index: { N: String(message.index) },
        ...(message.messageId ? { messageId: { S: message.messageId } } : {}),
        path: { S: message.path },
        reason: { S: message.reason },
        raw: { S: bytes.subarray(0, maxQuarantinedRawBytes).toString('utf8') },
        rawTruncated: { BOOL: bytes.length > maxQuarantinedRawBytes },
        expiresAt: { N: String(expiresAt) },
      };
    });
    await putAll(this.client, this.tableName, items, { capacity: this.capacity });
  }

  /** The quarantined messages of a workspace, newest first. */
  async listRejected(workspace: string, limit = 100): Promise<QuarantinedMessage[]> {
    const items = await queryAll(
      this.client,
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: quarantinePartitionKey(workspace) } }, ScanIndexForward: false },
      { limit, capacity: this.capacity },
    );
    return items.map((item) => ({
      receivedAt: item['receivedAt']?.S ?? '',
      requestId: item['requestId']?.S ?? '',
      index: Number(item['index']?.N ?? 0),
      ...(item['messageId']?.S ? { messageId: item['messageId'].S } : {}),
      path: item['path']?.S ?? '',
      reason: item['reason']?.S ?? '',
      raw: item['raw']?.S ?? '',
      rawTruncated: item['rawTruncated']?.BOOL ?? false,
    }));
  }

  private eventItem(chunk: EventChunk): Item {
    // Kept from the end of its day, so that no message of the chunk goes before its retention is over.
    const endOfDaySeconds = Date.parse(chunk.day) / 1000 + secondsPerDay;
    return {
      pk: { S: chunk.entity },
      sk: { S: eventSortKey(chunk.day, chunk.id) },
      ...eventBodyAttributes(chunk.json),
      expiresAt: { N: String(endOfDaySeconds + this.retentionSeconds) },
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

  /**
   * The stored profiles of the request's users that name an account (their accounts: is it a new membership?) and of
   * every entity it sets traits on (so traits sent again unchanged, as analytics.js does on every page, are not written
   * again); a page or track call that does neither reads nothing. Strongly consistent: a write skipped on a stale read
   * would let an earlier value win over the latest request's. A read unit costs a fifth of a write.
   */
  private async currentProfiles(workspace: string, messages: readonly AcceptedMessage[]): Promise<Map<string, Item>> {
    const pks = new Set<string>();
    for (const message of messages) {
      const { kind, id } = message.identity;
      const hasTraits = message.traits !== undefined && Object.keys(message.traits).length > 0;
      if ((kind === 'user' && message.groupId !== undefined) || (message.type === 'identify' && hasTraits)) pks.add(entityPartitionKey(workspace, kind, id));
      if (message.type === 'group' && message.groupId !== undefined && hasTraits) pks.add(entityPartitionKey(workspace, 'account', message.groupId));
    }
    const keys = [...pks].map((pk) => ({ pk: { S: pk }, sk: { S: profileSortKey } }));
    const profiles = new Map<string, Item>();
    for (const item of await getAll(this.client, this.tableName, keys, { consistent: true, capacity: this.capacity })) profiles.set(item['pk']!.S!, item);
    return profiles;
  }

  /**
   * Writes traits and memberships; a profile is touched only when the request changes one of them. Identity links
   * cost ingest nothing: the evaluator learns them from the events it reads (core/identity, evaluate-leads).
   */
  private async updateProfile(pk: string, entry: EntityChange, receivedAt: Date): Promise<void> {
    const traitEntries = [...entry.traits.entries()];
    if (traitEntries.length === 0 && entry.accountsJoined.size === 0) return;

    const traitGroups = inSlices(traitEntries, traitsPerUpdate);
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
        values[`:t${i}`] = { S: traitValue(value) };
        set.push(`#t${i} = :t${i}`);
      });
      if (groupIndex === 0) {
        if (entry.accountsJoined.size > 0) {
          values[':accounts'] = { SS: [...entry.accountsJoined] };
          add.push('accounts :accounts');
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

/** The change without the traits the stored profile already holds with the same value. */
function withoutUnchangedTraits(entry: EntityChange, profile: Item | undefined): EntityChange {
  if (profile === undefined || entry.traits.size === 0) return entry;
  const traits = new Map([...entry.traits].filter(([name, value]) => profile[`trait:${name}`]?.S !== traitValue(value)));
  return traits.size === entry.traits.size ? entry : { ...entry, traits };
}

/** A trait as the profile stores it: its JSON. */
const traitValue = (value: unknown): string => JSON.stringify(value) ?? 'null';

/** DynamoDB refuses items over 400 KB with a ValidationException that says so. */
function isItemTooLarge(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationException' && /item size/i.test(error.message);
}

/** JSON of a rejected message; one nested too deep to serialise is kept as a note rather than failing the request. */
function serialise(raw: unknown): string {
  try {
    return JSON.stringify(raw) ?? 'null';
  } catch {
    return JSON.stringify('(not storable: the message nests too deeply to serialise)');
  }
}
