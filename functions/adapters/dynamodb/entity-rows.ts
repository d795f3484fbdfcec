import { getHeapStatistics } from 'node:v8';
import { PutItemCommand, TransactWriteItemsCommand, type TransactWriteItem, UpdateItemCommand, type AttributeValue, type DynamoDBClient, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import type { DayRange, StoredEntityState } from '../../core/facts';
import { identityKey, type Claim, type Identity } from '../../core/identity';
import { RunHoldsTooManyEventsError, TooManyEventsError, type AccountMember, type EntityRef, type EntityRows, type EntityUpdate, type MembersRead, type StoredEvent } from '../../core/ports';
import type { StoredMessage } from '../../core/messages';
import { EventsBudget, type EventsLease } from '../../core/events-budget';
import type { DayRollup } from '../../core/rules/engine';
import { addDays } from '../../core/days';
import { getAll, putAll, queryAll, queryPages, type Item } from './batch-write';
import { forEachConcurrently } from '../../core/concurrency';
import type { CapacityTally } from './capacity';
import { compressedJson, compressedJsonOf, type CompressedJsonAttributes } from './compressed-json';
import type { DynamoDbChangeLists } from './change-lists';
import { dayDictionary, stateDictionary } from './dictionaries';
import { eventBodyOf, messagesOfBody } from './event-body';
import { uniqueByMessageId } from './event-chunks';
import type { DynamoDbOutbox } from './outbox';
import {
  claimAttributes,
  daySortKey,
  daySortKeyPrefix,
  entityPartitionKey,
  eventDayOf,
  eventSortKeyPrefix,
  feedbackSortKey,
  feedbackSortKeyPrefix,
  memberSortKeyPrefix,
  profileSortKey,
  parseEntityPartitionKey,
  shardOf,
  stateSortKey,
  sweepPartition,
} from './item-keys';
import { tableDefinition } from './table-definition';
import type { LeadFeedback } from '../../core/lead-feedback';
import { conditionFailed, transactionConditionFailed } from './condition-failed';

/** Sorts after every real due time: evaluated entities that are not leads wait in the sweep index for a rules change only. */
const neverDue = '9999-12-31T00:00:00.000Z';
/** Entities whose day rollups are read at once (an account's members). */
const readConcurrency = 8;
/** Changed days the state keeps open at once (facts.ts closeDays): more, and the entity's days are rebuilt instead. */
const maxChangedDaysPerSave = 90;

/** What `entity()` learnt that `save()` needs. */
interface SaveToken {
  /** The state's revision when read; the save succeeds only if it is unchanged (no overlapping run saved meanwhile). */
  revision?: number;
  /** The sweep time the `dirty` index holds for the entity, kept when still ahead and not later than the new one. */
  sweep?: string;
}

/**
 * An entity's rows, as the evaluator reads and writes them: its STATE item (lead state and totals), its profile, its
 * events, one rollup item per day beside the events, and an account's member items. Rows in, rows out: what they
 * mean to the rules is core/facts' business.
 */
export class DynamoDbEntityRows {
  readonly maxChangedDaysPerSave = maxChangedDaysPerSave;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly capacity: CapacityTally,
    private readonly lists: DynamoDbChangeLists,
    private readonly outbox: DynamoDbOutbox,
    private readonly options: { dirtyShards: number; retentionSeconds: number; /** See eventCharsReadableAtOnce. */ maxEventCharsRead: number },
  ) {}

  async entity(ref: EntityRef, changedDays: readonly string[] = [], daysFrom?: string): Promise<EntityRows> {
    // PROFILE and STATE sort next to each other, with only feedback waiting to be applied between them, and a user's
    // days just before them: one Query reads them all for the units of their summed size (usually one), where two
    // gets bill a unit each, and the days in reach come with them, a round trip and a call less per evaluation.
    const withDays = daysFrom !== undefined && ref.type !== 'account';
    const items = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :state',
      ExpressionAttributeValues: { ':pk': { S: pkOf(ref) }, ':from': { S: withDays ? daySortKey(daysFrom) : profileSortKey }, ':state': { S: stateSortKey } },
      ConsistentRead: true,
    });
    const stateItem = items.find((item) => item['sk']?.S === stateSortKey);
    const profile = items.find((item) => item['sk']?.S === profileSortKey);
    const rebuildDays = ref.type !== 'account' && daysElsewhere(stateItem);
    const token: SaveToken = {
      ...(stateItem?.['revision']?.N !== undefined ? { revision: Number(stateItem['revision'].N) } : {}),
      ...(stateItem?.[tableDefinition.dirtyIndex.sortKey]?.S !== undefined ? { sweep: stateItem[tableDefinition.dirtyIndex.sortKey]!.S! } : {}),
    };
    const state = stateOf(stateItem);
    const claim = ref.type === 'account' ? undefined : claimOf(ref, profile);
    const feedback = items.filter((item) => item['sk']?.S?.startsWith(feedbackSortKeyPrefix)).map((item) => JSON.parse(item['feedback']!.S!) as LeadFeedback);
    const days = withDays && !rebuildDays ? { days: { from: daysFrom, rollups: items.filter((item) => item['sk']?.S?.startsWith(daySortKeyPrefix)).flatMap((item) => rollupOf(item) ?? []) } } : {};
    return {
      ...(state ? { state } : {}),
      changedDays: [...changedDays],
      traits: traitsOf(profile),
      accounts: profile?.['accounts']?.SS ?? [],
      ...(claim ? { claim } : {}),
      feedback,
      ...days,
      ...(rebuildDays ? { rebuildDays } : {}),
      token,
    };
  }

  async claims(workspace: string, identities: readonly Identity[]): Promise<Map<string, Claim>> {
    const keys = identities.map((identity) => ({ pk: { S: entityPartitionKey(workspace, identity.kind, identity.id) }, sk: { S: profileSortKey } }));
    const projection = `pk, ${Object.values(claimAttributes).join(', ')}`;
    const claims = new Map<string, Claim>();
    for (const item of await getAll(this.client, this.tableName, keys, { projection, consistent: true, capacity: this.capacity })) {
      const ref = parseEntityPartitionKey(item['pk']!.S!);
      const claim = ref && ref.type !== 'account' ? claimOf(ref, item) : undefined;
      if (claim) claims.set(identityKey(claim.from), claim);
    }
    return claims;
  }

  async claim(workspace: string, claim: Claim, now: Date, heldBy?: string): Promise<{ held: Claim; replaced?: Claim }> {
    const ref: EntityRef = { workspace, type: claim.from.kind, id: claim.from.id };
    const { to, at, messageId, storedAt } = claimAttributes;
    const takenAt = now.toISOString();
    const stored: Claim = { from: claim.from, to: claim.to, at: claim.at, messageId: claim.messageId, storedAt: takenAt };
    // First claim wins (core/identity's claimsBefore): the earlier message, then the smaller messageId, then claimant.
    const earlier = '(attribute_not_exists(#at) OR #at > :at OR (#at = :at AND (#mid > :mid OR (#mid = :mid AND #to > :to))))';
    const update = async (sameHolder: boolean) => {
      const output = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pkOf(ref) }, sk: { S: profileSortKey } },
          // The same user's earlier claim keeps when it took the identity; any other sets it.
          UpdateExpression: sameHolder ? 'SET #at = :at, #mid = :mid' : 'SET #to = :to, #at = :at, #mid = :mid, #stored = :stored',
          ConditionExpression: sameHolder ? `${earlier} AND #to = :to` : earlier,
          ExpressionAttributeNames: { '#to': to, '#at': at, '#mid': messageId, ...(sameHolder ? {} : { '#stored': storedAt }) },
          ExpressionAttributeValues: { ':to': { S: claim.to }, ':at': { S: claim.at }, ':mid': { S: claim.messageId }, ...(sameHolder ? {} : { ':stored': { S: takenAt } }) },
          ReturnValues: sameHolder ? 'ALL_OLD' : 'UPDATED_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', output.ConsumedCapacity);
      return claimOf(ref, output.Attributes);
    };
    // Where the caller last saw the claimant itself hold it (its own earlier message), the identity is not taken from
    // anyone: one write that keeps its time, unless another user took it since (then the write that sets it).
    if (heldBy === claim.to) {
      try {
        const replaced = await update(true);
        const held: Claim = { ...claim, ...(replaced?.storedAt !== undefined ? { storedAt: replaced.storedAt } : {}) };
        return { held, ...(replaced ? { replaced } : {}) };
      } catch (error) {
        if (!conditionFailed(error)) throw error;
      }
    }
    try {
      const replaced = await update(false);
      return { held: stored, ...(replaced ? { replaced } : {}) };
    } catch (error) {
      if (!conditionFailed(error)) throw error;
      // The same claim again, or an earlier one: it keeps the identity.
      const item = (error as Error & { Item?: Item }).Item;
      return { held: claimOf(ref, item) ?? stored };
    }
  }

  async mark(ref: EntityRef, days: readonly string[], at: Date): Promise<void> {
    await this.lists.add([{ ref, days: [...days], since: at.toISOString() }]);
  }

  /** A budget for one run's event reads (EvaluationStore.eventsBudget): see eventCharsReadableAtOnce. */
  eventsBudget(): EventsBudget {
    return new EventsBudget(this.options.maxEventCharsRead);
  }

  async events(ref: EntityRef, days: readonly string[] | 'all', lease = this.eventsBudget().lease()): Promise<StoredEvent[]> {
    /** What this read took from the lease, given back if it fails; once it failed, its other queries take nothing more. */
    const taken = { chars: 0, events: 0, failed: false };
    // Decoded item by item as the pages come, and counted: a read stops once past what the process may hold, rather than
    // run out of memory.
    const read = async (prefix: string) => {
      const decoded: StoredMessage[] = [];
      for await (const item of this.eventItems(ref, [prefix])) {
        if (taken.failed) return decoded;
        for (const message of takenMessages(item, ref, lease, taken, () => days)) decoded.push(message);
      }
      return decoded;
    };
    try {
      const messages = await Promise.all(eventPrefixes(days).map(read));
      // A message retried in a request batched differently sits in two chunks: the first copy, in days' and sort-key order, counts.
      return uniqueByMessageId(messages.flat() as StoredEvent[]);
    } catch (error) {
      taken.failed = true;
      lease.giveBack(taken.chars, taken.events);
      throw error;
    }
  }

  async eachEventDay(ref: EntityRef, days: readonly string[] | 'all', onDay: (day: string, events: StoredEvent[]) => void, lease = this.eventsBudget().lease()): Promise<void> {
    /** The stored days read and not given back to the lease yet, oldest first, with what each took. */
    const held: { day: string; chars: number; events: number }[] = [];
    let decoded: StoredMessage[] = [];
    const handOn = () => {
      const current = held.at(-1);
      if (current === undefined) return;
      onDay(current.day, uniqueByMessageId(decoded as StoredEvent[]));
      decoded = [];
      const stillHeld = addDays(current.day, -3);
      while (held[0]!.day < stillHeld) {
        const { chars, events } = held.shift()!;
        lease.giveBack(chars, events);
      }
    };
    try {
      // In the days' order: one query for every day, or one a day asked.
      for await (const item of this.eventItems(ref, eventPrefixes(days === 'all' ? days : [...days].sort()))) {
        const day = eventDayOf(item['sk']!.S!);
        if (day !== held.at(-1)?.day) {
          handOn();
          held.push({ day, chars: 0, events: 0 });
        }
        for (const message of takenMessages(item, ref, lease, held.at(-1)!, () => held.map((read) => read.day))) decoded.push(message);
      }
      handOn();
    } finally {
      // Read to the end, or failed: the reader's last days are its own to hold from here.
      for (const { chars, events } of held) lease.giveBack(chars, events);
    }
  }

  async dayRollups(ref: EntityRef, days: readonly string[]): Promise<DayRollup[]> {
    return (await this.getItems(pkOf(ref), days.map(daySortKey))).flatMap((item) => rollupOf(item) ?? []);
  }

  async dayRollupsIn(entities: readonly { ref: EntityRef; ranges: readonly DayRange[] }[]): Promise<DayRollup[][]> {
    const results: DayRollup[][] = [];
    await forEachConcurrently(
      entities.map((entity, index) => ({ ...entity, index })),
      readConcurrency,
      async ({ ref, ranges, index }) => {
        results[index] = await this.dayRange(ref, ranges);
      },
    );
    return results;
  }

  /**
   * One batch read, eventually consistent (half the units): account traits a second stale are read again with the
   * member's next change, and a change of the account's own traits lists the account, which reads them consistently.
   */
  async accountTraits(workspace: string, ids: readonly string[]): Promise<Record<string, unknown>[]> {
    const keys = ids.map((id) => ({ pk: { S: entityPartitionKey(workspace, 'account', id) }, sk: { S: profileSortKey } }));
    const profiles = new Map((await getAll(this.client, this.tableName, keys, { capacity: this.capacity })).map((item) => [item['pk']!.S!, item]));
    return ids.map((id) => traitsOf(profiles.get(entityPartitionKey(workspace, 'account', id))));
  }

  async members(ref: EntityRef, read: MembersRead = {}): Promise<AccountMember[]> {
    const memberItems = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': { S: pkOf(ref) }, ':prefix': { S: memberSortKeyPrefix } },
    });
    const ids = memberItems.map((item) => item['userKey']!.S!);
    const known = new Map<string, StoredEntityState>();
    for (const id of ids) {
      const state = read.saved?.(id);
      if (state !== undefined) known.set(id, state);
    }
    const keys = ids.filter((id) => !known.has(id)).map((id) => ({ pk: { S: entityPartitionKey(ref.workspace, 'user', id) }, sk: { S: stateSortKey } }));
    // Strongly consistent unless asked: an account judged just after another run's save of it must see the members that
    // run saved before (an eventually consistent read could judge it on a member's state from before, and flip its
    // tier back).
    const items = new Map((await getAll(this.client, this.tableName, keys, { consistent: read.eventuallyConsistent !== true, capacity: this.capacity })).map((item) => [item['pk']!.S!, item]));
    return ids.map((id) => {
      const savedState = known.get(id);
      // Saved with its days rebuilt, if they were to be, and swept next at a time to come.
      if (savedState !== undefined) return { id, state: savedState };
      const item = items.get(entityPartitionKey(ref.workspace, 'user', id));
      const state = stateOf(item);
      const sweepDue = item?.[tableDefinition.dirtyIndex.sortKey]?.S;
      return { id, ...(state ? { state } : {}), ...(sweepDue !== undefined && sweepDue !== neverDue ? { sweepDue } : {}), ...(daysElsewhere(item) ? { rebuildDays: true as const } : {}) };
    });
  }

  async save(ref: EntityRef, update: EntityUpdate, token: unknown): Promise<boolean> {
    const loaded = token as SaveToken;
    const pk = pkOf(ref);
    const shard = shardOf(pk, this.options.dirtyShards);
    const readRevision = loaded.revision ?? 0;
    const stateItem: Item = {
      pk: { S: pk },
      sk: { S: stateSortKey },
      ...stateBodyAttributes(update.state),
      revision: { N: String(readRevision + 1) },
      ...(ref.type === 'account' ? {} : { [dayPrefixAttribute]: { S: daySortKeyPrefix } }),
      [tableDefinition.dirtyIndex.partitionKey]: { S: sweepPartition(shard) },
      [tableDefinition.dirtyIndex.sortKey]: { S: sweepIndexed(loaded.sweep, update.nextSweep?.toISOString() ?? neverDue, update.evaluatedAt.toISOString()) },
    };
    // Optimistic concurrency: a run that overlaps this one and saved first wins; this one leaves the change for later.
    const unchanged =
      loaded.revision === undefined
        ? { ConditionExpression: 'attribute_not_exists(revision)' }
        : { ConditionExpression: 'revision = :revision', ExpressionAttributeValues: { ':revision': { N: String(loaded.revision) } } };
    // Days first, state last: a crash between them leaves the state read before, whose open days still win over
    // the day items, so the lifetime total always matches the days. Rebuilt days are idempotent (many, batched).
    if (update.rebuiltDays.length > 0) await putAll(this.client, this.tableName, update.rebuiltDays.map((rollup) => this.dayItem(pk, rollup, readRevision)), { capacity: this.capacity });
    await Promise.all(update.days.map((rollup) => this.closeDay(pk, rollup, readRevision)));
    // A lead event goes to the outbox first, then the state: a crash between them, or a save that fails its
    // condition, leaves an event whose state was never saved, which the outbox tells from one whose publish is due
    // (outbox.ts) and drops. The state alone is one conditional put; a transaction only forgets the feedback it
    // applied with it (applied once; until then it waits), since a transaction bills every write twice.
    if (update.event) await this.outbox.put(shard, update.event, { statePk: pk, revision: readRevision + 1 });
    const forgotten: TransactWriteItem[] = update.appliedFeedback.map((feedback) => ({ Delete: { TableName: this.tableName, Key: { pk: { S: pk }, sk: { S: feedbackSortKey(feedback.at, feedback.id) } } } }));
    try {
      const { ConsumedCapacity } = forgotten.length > 0
        ? await this.client.send(
            new TransactWriteItemsCommand({
              TransactItems: [{ Put: { TableName: this.tableName, Item: stateItem, ...unchanged } }, ...forgotten],
              ReturnConsumedCapacity: 'TOTAL',
            }),
          )
        : await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: stateItem, ...unchanged, ReturnConsumedCapacity: 'TOTAL' }));
      this.capacity.add('write', ConsumedCapacity);
    } catch (error) {
      if (conditionFailed(error) || transactionConditionFailed(error)) return false;
      throw error;
    }
    return true;
  }

  /**
   * One conditional update of the STATE item: the sweep index key moves to `at` (unless the sweep is due by then
   * already), and the revision moves on, so that an overlapping run that read the entity before fails its save and
   * leaves its change for later rather than index a later sweep over this one.
   */
  async sweepBy(ref: EntityRef, at: Date, token: unknown, options: { postpone?: boolean } = {}): Promise<boolean> {
    const loaded = token as SaveToken;
    // Never saved: there is no state to sweep, and no run's save to be ordered against.
    if (loaded.revision === undefined) return false;
    const time = at.toISOString();
    try {
      const { ConsumedCapacity } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pkOf(ref) }, sk: { S: stateSortKey } },
          UpdateExpression: 'SET #sweep = :sweep, revision = :next',
          ConditionExpression: 'revision = :revision',
          ExpressionAttributeNames: { '#sweep': tableDefinition.dirtyIndex.sortKey },
          ExpressionAttributeValues: {
            ':sweep': { S: !options.postpone && loaded.sweep !== undefined && loaded.sweep <= time ? loaded.sweep : time },
            ':next': { N: String(loaded.revision + 1) },
            ':revision': { N: String(loaded.revision) },
          },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', ConsumedCapacity);
    } catch (error) {
      if (conditionFailed(error)) return false;
      throw error;
    }
    return true;
  }

  /**
   * Writes a day the state closes, unless a save of a later state revision wrote it already: a run that read an older
   * state and is slow to write must not bring back the value that state held.
   */
  private async closeDay(pk: string, rollup: DayRollup, revision: number): Promise<void> {
    try {
      const { ConsumedCapacity } = await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: this.dayItem(pk, rollup, revision),
          ConditionExpression: 'attribute_not_exists(#revision) OR #revision <= :revision',
          ExpressionAttributeNames: { '#revision': 'stateRevision' },
          ExpressionAttributeValues: { ':revision': { N: String(revision) } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', ConsumedCapacity);
    } catch (error) {
      if (!conditionFailed(error)) throw error;
    }
  }

  /** The entity's day rollups within the ranges (queried at once), each day once. */
  private async dayRange(ref: EntityRef, ranges: readonly DayRange[]): Promise<DayRollup[]> {
    const pages = await Promise.all(
      ranges.map(({ from, to }) =>
        this.queryAll({
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': { S: pkOf(ref) }, ':from': { S: daySortKey(from) }, ':to': { S: daySortKey(to) } },
        }),
      ),
    );
    const days = new Map<string, DayRollup>();
    for (const items of pages) {
      for (const item of items) {
        const rollup = rollupOf(item);
        if (rollup) days.set(item['sk']!.S!.slice(daySortKeyPrefix.length), rollup);
      }
    }
    return [...days.values()];
  }

  /** The event items under each sort key prefix, a prefix after the other, each in sort-key order. */
  private async *eventItems(ref: EntityRef, prefixes: readonly string[]): AsyncGenerator<Item> {
    for (const prefix of prefixes) {
      const query = { TableName: this.tableName, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', ExpressionAttributeValues: { ':pk': { S: pkOf(ref) }, ':prefix': { S: prefix } } };
      for await (const items of queryPages(this.client, query, { capacity: this.capacity })) yield* items;
    }
  }

  /** A day item, with the revision of the state it was read from or rebuilt on. */
  private dayItem(pk: string, rollup: DayRollup, stateRevision: number): Item {
    return {
      pk: { S: pk },
      sk: { S: daySortKey(rollup.day) },
      ...compressedJson(JSON.stringify(rollup), dayAttributes),
      stateRevision: { N: String(stateRevision) },
      expiresAt: { N: String(Math.floor(Date.parse(rollup.day) / 1000) + this.options.retentionSeconds) },
    };
  }

  /** Strongly consistent reads of several items of one entity, in the order of the sort keys given. */
  private async getItems(pk: string, sortKeys: string[]): Promise<(Item | undefined)[]> {
    const keys = sortKeys.map((sk) => ({ pk: { S: pk }, sk: { S: sk } }));
    const found = new Map((await getAll(this.client, this.tableName, keys, { consistent: true, capacity: this.capacity })).map((item) => [item['sk']!.S!, item]));
    return sortKeys.map((sk) => found.get(sk));
  }

  private queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    return queryAll(this.client, { ...input, TableName: this.tableName }, { capacity: this.capacity });
  }
}

const pkOf = (ref: EntityRef) => entityPartitionKey(ref.workspace, ref.type, ref.id);

/**
 * Heap the events read take for each character of their JSON, about, with a margin: measured on DynamoDB Local, 435
 * bytes an event for server events of about 320 characters, 1,200 for browser events with their context (about 880).
 */
const heapBytesPerEventChar = 1.5;

/**
 * The most characters of event JSON one run's reads may hold at once (the run's EventsBudget), and so one entity's:
 * what takes half the heap the process may use, so that the rest of a run (rows, rollups, the SDK) keeps room. The
 * heap is V8's limit, and deployed no more than the function's memory. At 1,024 MB (a heap of about 920 MB), some 300
 * million characters: about 340,000 browser events, 950,000 server ones.
 */
export function eventCharsReadableAtOnce(heapLimitBytes = getHeapStatistics().heap_size_limit, functionMemoryMb = Number(process.env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] ?? Number.NaN)): number {
  const usable = Number.isFinite(functionMemoryMb) ? Math.min(heapLimitBytes, functionMemoryMb * 2 ** 20) : heapLimitBytes;
  return Math.floor(usable / 2 / heapBytesPerEventChar);
}

/** The sort key prefixes of the events of these days: one for every day, or one a day. */
const eventPrefixes = (days: readonly string[] | 'all') => (days === 'all' ? [eventSortKeyPrefix] : days.map((day) => `${eventSortKeyPrefix}${day}#`));

/**
 * An event item's messages, decoded, counted into `taken` and taken from the lease (none for an item without events);
 * TooManyEventsError or RunHoldsTooManyEventsError, naming the days read, when they do not fit.
 */
function takenMessages(item: Item, ref: EntityRef, lease: EventsLease, taken: { chars: number; events: number }, readDays: () => readonly string[] | 'all'): StoredMessage[] {
  const body = eventBodyOf(item);
  if (body === undefined) return [];
  // An item is at most 400 KB: decoding one more before the check is what the limit's margin is for.
  const chunk = messagesOfBody(body);
  taken.chars += body.length;
  taken.events += chunk.length;
  const fits = lease.take(body.length, chunk.length);
  if (fits === 'too many') throw tooManyEvents(ref, readDays(), lease);
  if (fits === 'held by others') throw runHoldsTooMany(ref, readDays(), lease);
  return chunk;
}

/** The days a read asked for, as its errors name them. */
const daysRead = (days: readonly string[] | 'all') => (days === 'all' ? 'every day (a rebuild of its days)' : days.length === 1 ? days[0] : `${days.length} days from ${days[0]}`);

/** The entity's type and days (never its id: errors reach the logs), how far its reads got, and the operator's lever. */
function tooManyEvents(ref: EntityRef, days: readonly string[] | 'all', lease: EventsLease): TooManyEventsError {
  return new TooManyEventsError(
    `a ${ref.type}'s events of ${daysRead(days)} pass ${lease.limit.toLocaleString('en-US')} characters of JSON (at ${lease.events.toLocaleString('en-US')} events), ` +
      'what one evaluation reads at once with this memory: it is left for a later run; give the evaluator more (evaluation.memoryMb; ' +
      'the pql-radar CLI: NODE_OPTIONS=--max-old-space-size=<MB>), or find what sends so many events as one user',
  );
}

function runHoldsTooMany(ref: EntityRef, days: readonly string[] | 'all', lease: EventsLease): RunHoldsTooManyEventsError {
  return new RunHoldsTooManyEventsError(
    `a ${ref.type}'s events of ${daysRead(days)} (${lease.chars.toLocaleString('en-US')} characters of JSON so far) and those the run holds of other entities ` +
      `pass ${lease.limit.toLocaleString('en-US')} characters: it is evaluated again once they are done`,
  );
}

/**
 * On a user's STATE item: the sort key prefix its day items are under. Saved by every evaluation; a state saved
 * before days moved to daySortKeyPrefix has none, and its entity's next evaluation rebuilds its days (as a rules
 * change does), which writes them where they are read now. The days left under the old prefix expire.
 */
const dayPrefixAttribute = 'dayPrefix';

/** Whether a user's state was saved with its days under another prefix than the one read now. */
const daysElsewhere = (stateItem: Item | undefined): boolean => stateItem !== undefined && stateItem[dayPrefixAttribute]?.S !== daySortKeyPrefix;

/**
 * The sweep time to index: a new time moves the index key, which costs an index write (a delete and a put) on every
 * save of a lead; keeping an earlier time still ahead costs nothing but one early sweep, which then indexes the real
 * time. A time already past (this is that sweep, or a late one) is replaced.
 */
function sweepIndexed(indexed: string | undefined, next: string, now: string): string {
  return indexed !== undefined && indexed > now && indexed <= next ? indexed : next;
}

const stateAttributes: CompressedJsonAttributes = { text: 'state', deflated: 'stateZ', dictionary: stateDictionary };

/**
 * The attribute holding an entity state, deflated with the states' dictionary: a user's state with its open days is
 * ~2 KB of JSON, ~0.7 KB deflated alone and ~0.5 KB with the dictionary, which keeps most STATE items (keys, revision
 * and sweep index included) within one write unit.
 */
export const stateBodyAttributes = (state: StoredEntityState): Item => compressedJson(JSON.stringify(state), stateAttributes);

/** The entity state a STATE item holds, in either of its forms. */
export const stateOf = (item: Item | undefined): StoredEntityState | undefined => {
  const json = compressedJsonOf(item, stateAttributes);
  return json === undefined ? undefined : (JSON.parse(json) as StoredEntityState);
};

/** The claim stored on a user's or visitor's profile item, if any. */
function claimOf(ref: EntityRef, item: Record<string, AttributeValue> | undefined): Claim | undefined {
  const to = item?.[claimAttributes.to]?.S;
  const at = item?.[claimAttributes.at]?.S;
  const messageId = item?.[claimAttributes.messageId]?.S;
  const storedAt = item?.[claimAttributes.storedAt]?.S;
  if (to === undefined || at === undefined || messageId === undefined) return undefined;
  return { from: { kind: ref.type === 'visitor' ? 'visitor' : 'user', id: ref.id }, to, at, messageId, ...(storedAt !== undefined ? { storedAt } : {}) };
}

/**
 * A day item's rollup, deflated with the days' dictionary: a third to a half of its JSON, and the window's days are read
 * with every evaluation, strongly consistent. Items written before read as text.
 */
const dayAttributes: CompressedJsonAttributes = { text: 'rollup', deflated: 'rollupZ', dictionary: dayDictionary };

/** The rollup a day item holds; undefined for an item with none. */
function rollupOf(item: Item | undefined): DayRollup | undefined {
  const json = compressedJsonOf(item, dayAttributes);
  return json === undefined ? undefined : (JSON.parse(json) as DayRollup);
}

function traitsOf(profile: Record<string, AttributeValue> | undefined): Record<string, unknown> {
  const traits: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(profile ?? {})) {
    if (name.startsWith('trait:') && value.S !== undefined) traits[name.slice('trait:'.length)] = JSON.parse(value.S);
  }
  return traits;
}
