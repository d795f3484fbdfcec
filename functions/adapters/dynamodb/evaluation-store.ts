import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { LeadEvent } from '../../core/lead-event';
import type { LeadState } from '../../core/lead-state';
import type { EntityRef, EvaluationCandidate, EvaluationStore, RulesetProgress } from '../../core/ports';
import { addDays, dayOf, windowStart } from '../../core/days';
import { mergeRollups, rollupDay, signupTime, type DayRollup, type Measure, type EntityFacts, type MemberFacts, type UsageEvent } from '../../core/rules/engine';
import type { Ruleset } from '../../core/rules/load';
import { tableDefinition } from './table-definition';
import { deleteAll, getAll, putAll, queryAll, type Item } from './batch-write';
import { CapacityTally } from './capacity';
import { markChanged } from './change-marker';
import {
  changedPartition,
  changesSortKey,
  daySortKey,
  daySortKeyPrefix,
  entityPartitionKey,
  eventSortKeyPrefix,
  memberSortKeyPrefix,
  metaPartitionKey,
  outboxPartitionKey,
  outboxSortKey,
  parseEntityPartitionKey,
  profileSortKey,
  rulesetSortKey,
  shardOf,
  stateSortKey,
  sweepPartition,
} from './item-keys';

export interface DynamoDbEvaluationStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Must equal the ingest function's DIRTY_SHARDS. @default 4 */
  dirtyShards?: number;
  /** Days a daily rollup is kept, as the events it sums up. @default 400 */
  retentionDays?: number;
}

/** Sorts after every real due time: evaluated entities that are not leads wait in the sweep index for a rules change only. */
const neverDue = '9999-12-31T00:00:00.000Z';
/** Changed days saved in the state's transaction (DynamoDB allows 100 items; the state and an outbox item take two). */
const maxDaysPerSave = 90;
/** Members read at once when rolling an account up. */
const memberReadConcurrency = 8;

/** What load() learnt that save() must persist or act on; opaque to the use case. */
interface LoadToken {
  markerVersion?: string;
  /** The state's revision when read; the save succeeds only if it is unchanged (no overlapping run saved meanwhile). */
  revision?: number;
  /** Recomputed daily rollups, written with the state so the lifetime total and the days never disagree. */
  days: DayRollup[];
  changedDays: string[];
  accounts: string[];
  lifetime: DayRollup;
  firstSeen: string | null;
  lastSeen: string | null;
  previousTier: string | null;
}

interface StoredState {
  lead?: LeadState;
  lifetime: DayRollup;
  firstSeen: string | null;
  lastSeen: string | null;
  /** The ruleset version the rollups were computed with; another version means they are rebuilt from the events. */
  rollupVersion: string;
}

/**
 * The evaluator's storage: finds candidates through the sparse `dirty` index (changed entities, sweeps due,
 * everyone after a rules change), keeps one rollup item per user and day beside the events, and the lead state
 * with its lifetime rollup in a STATE item. A run reads the days that changed and the days the ruleset's windows
 * reach, never the whole history (except once per entity after the rules' measures change).
 */
export class DynamoDbEvaluationStore implements EvaluationStore {
  readonly capacity = new CapacityTally();
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly dirtyShards: number;
  private readonly retentionSeconds: number;

  constructor(options: DynamoDbEvaluationStoreOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.dirtyShards = options.dirtyShards ?? 4;
    this.retentionSeconds = (options.retentionDays ?? 400) * 86_400;
  }

  async pendingLeadEvents(shard: string): Promise<LeadEvent[]> {
    const items = await this.queryAll({ KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: outboxPartitionKey(shard) } }, ConsistentRead: true });
    return items.map((item) => JSON.parse(item['event']!.S!) as LeadEvent);
  }

  async markPublished(shard: string, events: readonly LeadEvent[]): Promise<void> {
    const keys = events.map((event) => ({ pk: { S: outboxPartitionKey(shard) }, sk: { S: outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey) } }));
    await deleteAll(this.client, this.tableName, keys, { capacity: this.capacity });
  }

  async rulesetProgress(shard: string): Promise<RulesetProgress> {
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: this.metaKey(shard), ConsistentRead: true, ReturnConsumedCapacity: 'TOTAL' }),
    );
    this.capacity.add('read', ConsumedCapacity);
    return Item?.['progress']?.S ? (JSON.parse(Item['progress'].S) as RulesetProgress) : {};
  }

  async saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void> {
    const { ConsumedCapacity } = await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: { ...this.metaKey(shard), progress: { S: JSON.stringify(progress) } }, ReturnConsumedCapacity: 'TOTAL' }),
    );
    this.capacity.add('write', ConsumedCapacity);
  }

  async oldestChange(shard: string): Promise<string | undefined> {
    const { dirtyIndex } = tableDefinition;
    // The index sorts a shard's markers by dirtySince, which a mark sets only when absent: the first is the oldest.
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: dirtyIndex.indexName,
        KeyConditionExpression: `${dirtyIndex.partitionKey} = :shard`,
        ExpressionAttributeValues: { ':shard': { S: changedPartition(shard) } },
        ScanIndexForward: true,
        Limit: 1,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity.add('read', page.ConsumedCapacity);
    return page.Items?.[0]?.[dirtyIndex.sortKey]?.S;
  }

  async candidates(shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }) {
    const cursor: { phase: 'changed' | 'sweep'; key?: Record<string, AttributeValue> } = options.after ? JSON.parse(options.after) : { phase: 'changed' };
    const { dirtyIndex } = tableDefinition;
    const sweepDue = cursor.phase === 'sweep' && !options.everyone;
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: dirtyIndex.indexName,
        KeyConditionExpression: `${dirtyIndex.partitionKey} = :shard${sweepDue ? ` AND ${dirtyIndex.sortKey} <= :now` : ''}`,
        ExpressionAttributeValues: {
          ':shard': { S: cursor.phase === 'changed' ? changedPartition(shard) : sweepPartition(shard) },
          ...(sweepDue ? { ':now': { S: now.toISOString() } } : {}),
        },
        Limit: limit,
        ExclusiveStartKey: cursor.key,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity.add('read', page.ConsumedCapacity);
    const reason: EvaluationCandidate['reason'] = cursor.phase === 'changed' ? 'changed' : options.everyone ? 'rules-changed' : 'sweep';
    const candidates = (page.Items ?? [])
      .map((item) => parseEntityPartitionKey(item['pk']?.S ?? ''))
      .filter((ref): ref is EntityRef => ref !== undefined)
      // Users first: an account rolls up its members' fresh state.
      .sort((a, b) => (a.type === b.type ? 0 : a.type === 'user' ? -1 : 1))
      .map((ref) => ({ ref, reason }));
    const next = page.LastEvaluatedKey
      ? JSON.stringify({ phase: cursor.phase, key: page.LastEvaluatedKey })
      : cursor.phase === 'changed'
        ? JSON.stringify({ phase: 'sweep' })
        : undefined;
    return { candidates, ...(next !== undefined ? { next } : {}) };
  }

  async load(ref: EntityRef, ruleset: Ruleset, now: Date): Promise<{ facts: EntityFacts; state?: LeadState; token: unknown }> {
    const pk = entityPartitionKey(ref.workspace, ref.type, ref.id);
    const [marker, stateItem, profile] = await this.getItems(pk, [changesSortKey, stateSortKey, profileSortKey]);
    const stored = stateItem?.['state']?.S ? (JSON.parse(stateItem['state'].S) as StoredState) : undefined;
    const changedDays = marker?.['days']?.SS ?? [];
    const traits = traitsOf(profile);
    const accounts = profile?.['accounts']?.SS ?? [];

    const rollups = ref.type === 'user' ? await this.userRollups(pk, ruleset, now, stored, changedDays, traits) : await this.accountRollups(ref, ruleset, now);
    const accountTraits = ref.type === 'user' && accounts.length > 0 ? await this.accountTraits(ref.workspace, accounts) : [];
    const facts: EntityFacts = {
      type: ref.type,
      id: ref.id,
      traits,
      accountTraits,
      firstSeen: rollups.firstSeen,
      lastSeen: rollups.lastSeen,
      days: rollups.days,
      lifetime: rollups.lifetime,
      members: rollups.members,
    };
    const token: LoadToken = {
      ...(marker?.['version']?.N !== undefined ? { markerVersion: marker['version'].N } : {}),
      ...(stateItem?.['revision']?.N !== undefined ? { revision: Number(stateItem['revision'].N) } : {}),
      days: rollups.changed,
      changedDays,
      // Accounts are re-evaluated after a member only when some rule looks at accounts.
      accounts: ruleset.evaluatesAccounts ? accounts : [],
      lifetime: pruneLifetime(rollups.lifetime, ruleset),
      firstSeen: rollups.firstSeen,
      lastSeen: rollups.lastSeen,
      previousTier: stored?.lead?.tier ?? null,
    };
    return { facts, ...(stored?.lead ? { state: stored.lead } : {}), token };
  }

  async save(ref: EntityRef, lead: LeadState, event: LeadEvent | undefined, token: unknown, nextSweep: Date | null): Promise<boolean> {
    const loaded = token as LoadToken;
    const pk = entityPartitionKey(ref.workspace, ref.type, ref.id);
    const shard = shardOf(pk, this.dirtyShards);
    const revision = (loaded.revision ?? 0) + 1;
    const state: StoredState = { lead, lifetime: loaded.lifetime, firstSeen: loaded.firstSeen, lastSeen: loaded.lastSeen, rollupVersion: lead.rulesetVersion };
    const stateItem: Item = {
      pk: { S: pk },
      sk: { S: stateSortKey },
      state: { S: JSON.stringify(state) },
      revision: { N: String(revision) },
      [tableDefinition.dirtyIndex.partitionKey]: { S: sweepPartition(shard) },
      [tableDefinition.dirtyIndex.sortKey]: { S: nextSweep?.toISOString() ?? neverDue },
    };
    // Optimistic concurrency: a run that overlaps this one and saved first wins; this one leaves the marker for later.
    const unchanged =
      loaded.revision === undefined
        ? { ConditionExpression: 'attribute_not_exists(revision)' }
        : { ConditionExpression: 'revision = :revision', ExpressionAttributeValues: { ':revision': { N: String(loaded.revision) } } };
    const outbox = event
      ? [{ pk: { S: outboxPartitionKey(shard) }, sk: { S: outboxSortKey(event.detail.evaluatedAt, event.detail.idempotencyKey) }, event: { S: JSON.stringify(event) } }]
      : [];
    // State, recomputed days and lead event in one transaction: a crash before it changes nothing, after it loses
    // nothing (the outbox is published later), and the lifetime total always matches the stored days.
    try {
      const { ConsumedCapacity } = await this.client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: this.tableName, Item: stateItem, ...unchanged } },
            ...[...outbox, ...loaded.days.map((day) => this.dayItem(pk, day))].map((Item) => ({ Put: { TableName: this.tableName, Item } })),
          ],
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', ConsumedCapacity);
    } catch (error) {
      if (error instanceof Error && error.name === 'TransactionCanceledException' && /ConditionalCheckFailed/.test(error.message)) return false;
      throw error;
    }

    if (loaded.markerVersion !== undefined) await this.clearMarker(pk, loaded.markerVersion);
    // A member's change can move its accounts (counts, active users, members' tiers): evaluate them after it.
    const tierMoved = lead.tier !== loaded.previousTier;
    if (ref.type === 'user' && (loaded.changedDays.length > 0 || tierMoved)) {
      const days = new Set(loaded.changedDays.length > 0 ? loaded.changedDays : [dayOf(lead.evaluatedAt)]);
      await Promise.all(
        loaded.accounts.map((accountId) =>
          markChanged(
            this.client,
            this.tableName,
            { pk: entityPartitionKey(ref.workspace, 'account', accountId), type: 'account', id: accountId, days },
            { at: new Date(lead.evaluatedAt), shards: this.dirtyShards, capacity: this.capacity },
          ),
        ),
      );
    }
    return true;
  }

  async dismiss(ref: EntityRef): Promise<void> {
    const { ConsumedCapacity } = await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: entityPartitionKey(ref.workspace, ref.type, ref.id) }, sk: { S: changesSortKey } },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity.add('write', ConsumedCapacity);
  }

  /** Deletes the change marker only if no event arrived since it was read; otherwise the next run sees the new days. */
  private async clearMarker(pk: string, version: string): Promise<void> {
    try {
      const { ConsumedCapacity } = await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: pk }, sk: { S: changesSortKey } },
          ConditionExpression: 'version = :version',
          ExpressionAttributeValues: { ':version': { N: version } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
      );
      this.capacity.add('write', ConsumedCapacity);
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
  }

  /** Recomputes the changed days from their events (or every day after a rules change) and reads the days the windows reach. */
  private async userRollups(pk: string, ruleset: Ruleset, now: Date, stored: StoredState | undefined, changedDays: string[], traits: Record<string, unknown>) {
    // Rebuilt from every event under a new ruleset, or when more days changed than one transaction can save with the
    // state; a rebuild is idempotent, so its days can be written before the state.
    const rebuild = stored === undefined || stored.rollupVersion !== ruleset.version || changedDays.length > maxDaysPerSave;
    const eventsByDay = new Map<string, UsageEvent[]>();
    const eventQueries = rebuild
      ? [this.queryAll({ KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', ExpressionAttributeValues: { ':pk': { S: pk }, ':prefix': { S: eventSortKeyPrefix } } })]
      : changedDays.map((day) =>
          this.queryAll({ KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', ExpressionAttributeValues: { ':pk': { S: pk }, ':prefix': { S: `${eventSortKeyPrefix}${day}#` } } }),
        );
    for (const items of await Promise.all(eventQueries)) {
      for (const item of items) {
        const day = item['sk']!.S!.slice(eventSortKeyPrefix.length, eventSortKeyPrefix.length + 10);
        const list = eventsByDay.get(day) ?? [];
        list.push(JSON.parse(item['msg']!.S!) as UsageEvent);
        eventsByDay.set(day, list);
      }
    }
    const fresh = new Map([...(rebuild ? [] : changedDays), ...eventsByDay.keys()].map((day) => [day, rollupDay(day, eventsByDay.get(day) ?? [], ruleset)]));

    let firstSeen = rebuild ? null : stored.firstSeen;
    let lastSeen = rebuild ? null : stored.lastSeen;
    for (const events of eventsByDay.values()) {
      for (const event of events) if (firstSeen === null || event.timestamp < firstSeen) firstSeen = event.timestamp;
    }
    for (const rollup of fresh.values()) if (rollup.lastActivity && (lastSeen === null || rollup.lastActivity > lastSeen)) lastSeen = rollup.lastActivity;

    // The lifetime total moves by the difference between each recomputed day and what it was before.
    const previousDays = rebuild ? new Map<string, DayRollup>() : await this.readDays(pk, [...fresh.keys()]);
    let lifetime: DayRollup;
    if (rebuild) lifetime = mergeRollups('lifetime', [...fresh.values()]);
    else {
      lifetime = mergeRollups('lifetime', [stored.lifetime, ...fresh.values()]);
      for (const previous of previousDays.values()) subtractCounts(lifetime, previous);
    }
    if (rebuild) await putAll(this.client, this.tableName, [...fresh.values()].map((rollup) => this.dayItem(pk, rollup)), { capacity: this.capacity });

    const signupDay = signupDayOf(firstSeen, traits, ruleset);
    const windowed = await this.readDayRange(pk, ruleset, now, signupDay);
    for (const [day, rollup] of fresh) windowed.set(day, rollup);
    return {
      days: [...windowed.values()].sort((a, b) => a.day.localeCompare(b.day)),
      changed: rebuild ? [] : [...fresh.values()],
      lifetime,
      firstSeen,
      lastSeen,
      members: [] as MemberFacts[],
    };
  }

  /** An account's figures are its members' added up: their daily rollups, their lifetimes, and their own lead state. */
  private async accountRollups(ref: EntityRef, ruleset: Ruleset, now: Date) {
    const accountPk = entityPartitionKey(ref.workspace, 'account', ref.id);
    const memberItems = await this.queryAll({
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': { S: accountPk }, ':prefix': { S: memberSortKeyPrefix } },
    });
    const memberIds = memberItems.map((item) => item['userKey']!.S!);
    const members: MemberFacts[] = [];
    const lifetimes: DayRollup[] = [];
    const dayGroups = new Map<string, DayRollup[]>();
    let firstSeen: string | null = null;
    let lastSeen: string | null = null;
    let next = 0;
    const worker = async () => {
      while (next < memberIds.length) {
        const memberId = memberIds[next++]!;
        const memberPk = entityPartitionKey(ref.workspace, 'user', memberId);
        const [stateItem] = await this.getItems(memberPk, [stateSortKey]);
        const stored = stateItem?.['state']?.S ? (JSON.parse(stateItem['state'].S) as StoredState) : undefined;
        members.push({ id: memberId, lastSeen: stored?.lastSeen ?? null, tier: stored?.lead?.tier ?? null, matched: stored?.lead?.matched ?? [] });
        if (!stored) continue;
        lifetimes.push(stored.lifetime);
        if (stored.firstSeen && (firstSeen === null || stored.firstSeen < firstSeen)) firstSeen = stored.firstSeen;
        if (stored.lastSeen && (lastSeen === null || stored.lastSeen > lastSeen)) lastSeen = stored.lastSeen;
        for (const rollup of (await this.readDayRange(memberPk, ruleset, now, signupDayOf(stored.firstSeen, {}, ruleset))).values()) {
          dayGroups.set(rollup.day, [...(dayGroups.get(rollup.day) ?? []), rollup]);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(memberReadConcurrency, memberIds.length) }, worker));
    members.sort((a, b) => a.id.localeCompare(b.id));
    const days = [...dayGroups.entries()].map(([day, rollups]) => mergeRollups(day, rollups)).sort((a, b) => a.day.localeCompare(b.day));
    return { days, changed: [] as DayRollup[], lifetime: mergeRollups('lifetime', lifetimes), firstSeen, lastSeen, members };
  }

  /** The daily rollups in the longest rolling window, and in the since-signup span. */
  private async readDayRange(pk: string, ruleset: Ruleset, now: Date, signupDay: string | null): Promise<Map<string, DayRollup>> {
    const ranges: [string, string][] = [];
    const today = dayOf(now);
    if (ruleset.maxWindowDays > 0) ranges.push([windowStart(now, ruleset.maxWindowDays), today]);
    if (ruleset.maxSinceSignupDays > 0 && signupDay !== null) {
      ranges.push([signupDay, addDays(signupDay, ruleset.maxSinceSignupDays - 1)]);
    }
    const days = new Map<string, DayRollup>();
    for (const [from, to] of ranges) {
      const items = await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
        ExpressionAttributeValues: { ':pk': { S: pk }, ':from': { S: daySortKey(from) }, ':to': { S: daySortKey(to) } },
      });
      for (const item of items) days.set(item['sk']!.S!.slice(daySortKeyPrefix.length), JSON.parse(item['rollup']!.S!) as DayRollup);
    }
    return days;
  }

  private async readDays(pk: string, days: string[]): Promise<Map<string, DayRollup>> {
    const items = await this.getItems(pk, days.map(daySortKey));
    const found = new Map<string, DayRollup>();
    for (const item of items) if (item?.['rollup']?.S) found.set(item['sk']!.S!.slice(daySortKeyPrefix.length), JSON.parse(item['rollup'].S) as DayRollup);
    return found;
  }

  private async accountTraits(workspace: string, accounts: string[]): Promise<Record<string, unknown>[]> {
    const profiles: Record<string, unknown>[] = [];
    for (const accountId of accounts) {
      const [profile] = await this.getItems(entityPartitionKey(workspace, 'account', accountId), [profileSortKey]);
      profiles.push(traitsOf(profile));
    }
    return profiles;
  }

  private dayItem(pk: string, rollup: DayRollup): Item {
    return {
      pk: { S: pk },
      sk: { S: daySortKey(rollup.day) },
      rollup: { S: JSON.stringify(rollup) },
      expiresAt: { N: String(Math.floor(Date.parse(rollup.day) / 1000) + this.retentionSeconds) },
    };
  }

  /** Strongly consistent reads of several items of one entity, in the order of the sort keys given. */
  private async getItems(pk: string, sortKeys: string[]): Promise<(Record<string, AttributeValue> | undefined)[]> {
    const keys = sortKeys.map((sk) => ({ pk: { S: pk }, sk: { S: sk } }));
    const found = new Map((await getAll(this.client, this.tableName, keys, { consistent: true, capacity: this.capacity })).map((item) => [item['sk']!.S!, item]));
    return sortKeys.map((sk) => found.get(sk));
  }

  private queryAll(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    return queryAll(this.client, { ...input, TableName: this.tableName }, { capacity: this.capacity });
  }

  private metaKey(shard: string) {
    return { pk: { S: metaPartitionKey }, sk: { S: rulesetSortKey(shard) } };
  }
}

function traitsOf(profile: Record<string, AttributeValue> | undefined): Record<string, unknown> {
  const traits: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(profile ?? {})) {
    if (name.startsWith('trait:') && value.S !== undefined) traits[name.slice('trait:'.length)] = JSON.parse(value.S);
  }
  return traits;
}

function signupDayOf(firstSeen: string | null, traits: Record<string, unknown>, ruleset: Ruleset): string | null {
  return signupTime({ firstSeen, traits }, ruleset)?.slice(0, 10) ?? null;
}

/** Takes a day's old counts out of a lifetime total. Distinct values and last times only grow, so they stay. */
function subtractCounts(lifetime: DayRollup, day: DayRollup): void {
  lifetime.activity -= day.activity;
  for (const [name, count] of Object.entries(day.names)) lifetime.names[name] = (lifetime.names[name] ?? 0) - count;
  for (const [name, measure] of Object.entries(day.measures)) {
    const total = lifetime.measures[name];
    if (!total) continue;
    total.count -= measure.count;
    total.sum -= measure.sum;
  }
}

/**
 * The lifetime total is saved with every evaluation, so it keeps only what a rule reads from it: the measures of
 * signals without a window. Everything else in it would grow with history and make each save cost more.
 */
function pruneLifetime(lifetime: DayRollup, ruleset: Ruleset): DayRollup {
  const measures: Record<string, Measure> = {};
  for (const name of ruleset.lifetimeSignals) if (Object.hasOwn(lifetime.measures, name)) measures[name] = lifetime.measures[name]!;
  return { day: lifetime.day, activity: lifetime.activity, ...(lifetime.lastActivity ? { lastActivity: lifetime.lastActivity } : {}), names: {}, measures };
}
