import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DayRange } from '../../core/facts';
import type { Claim, Identity } from '../../core/identity';
import type { LeadEvent } from '../../core/lead-event';
import type { ChangeMark, EntityRef, EntityUpdate, EvaluationStore, MembersRead, RulesetProgress, StoredEvent } from '../../core/ports';
import { dayMs } from '../../core/days';
import type { EventsLease } from '../../core/events-budget';
import { defaultDirtyShards, defaultRetentionDays } from '../../shared/settings';
import { CapacityTally } from './capacity';
import { DynamoDbChangeLists } from './change-lists';
import { DynamoDbEntityRows, eventCharsReadableAtOnce } from './entity-rows';
import { DynamoDbEvaluationCandidates } from './evaluation-candidates';
import { DynamoDbOutbox } from './outbox';
import { entityPartitionKey, shardOf } from './item-keys';

export interface DynamoDbEvaluationStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Must equal change capture's DIRTY_SHARDS. @default 4 */
  dirtyShards?: number;
  /** How long a change list write may take (change-lists.ts): deployed, settings' listSettleMs. @default 0 */
  listSettleMs?: number;
  /** Days a daily rollup is kept, as the events it sums up. @default 400 */
  retentionDays?: number;
  /**
   * The most characters of event JSON one run's reads may hold at once (eventsBudget), and so one entity's, past which
   * its evaluation fails (TooManyEventsError); a read without a lease holds its own. @default eventCharsReadableAtOnce()
   */
  maxEventCharsRead?: number;
}

/**
 * The evaluator's storage on the one table, put together from its three jobs: finding candidates (and each shard's
 * ruleset progress), the outbox of lead events, and the entities' rows. They share one capacity tally.
 */
export class DynamoDbEvaluationStore implements EvaluationStore {
  readonly capacity = new CapacityTally();
  readonly candidatesIndex: DynamoDbEvaluationCandidates;
  readonly outbox: DynamoDbOutbox;
  readonly rows: DynamoDbEntityRows;
  readonly maxChangedDaysPerSave: number;
  private readonly lists: DynamoDbChangeLists;
  private readonly dirtyShards: number;

  constructor(options: DynamoDbEvaluationStoreOptions) {
    const { client, tableName } = options;
    this.dirtyShards = options.dirtyShards ?? defaultDirtyShards;
    this.lists = new DynamoDbChangeLists(client, tableName, { shards: this.dirtyShards, settleMs: options.listSettleMs ?? 0, capacity: this.capacity });
    this.candidatesIndex = new DynamoDbEvaluationCandidates(client, tableName, this.capacity, this.lists);
    this.outbox = new DynamoDbOutbox(client, tableName, this.capacity);
    this.rows = new DynamoDbEntityRows(client, tableName, this.capacity, this.lists, this.outbox, {
      dirtyShards: options.dirtyShards ?? defaultDirtyShards,
      retentionSeconds: ((options.retentionDays ?? defaultRetentionDays) * dayMs) / 1000,
      maxEventCharsRead: options.maxEventCharsRead ?? eventCharsReadableAtOnce(),
    });
    this.maxChangedDaysPerSave = this.rows.maxChangedDaysPerSave;
  }

  pendingLeadEvents = (shard: string, now: Date) => this.outbox.pending(shard, now);
  claimLeadEvents = (shard: string, events: readonly LeadEvent[], now: Date) => this.outbox.claim(shard, events, now);
  markPublished = (shard: string, events: readonly LeadEvent[]) => this.outbox.markPublished(shard, events);
  markUndelivered = (shard: string, events: readonly LeadEvent[]) => this.outbox.markUndelivered(shard, events);

  rulesetProgress = (shard: string) => this.candidatesIndex.rulesetProgress(shard);
  saveRulesetProgress = (shard: string, progress: RulesetProgress) => this.candidatesIndex.saveRulesetProgress(shard, progress);
  oldestChange = (shard: string) => this.candidatesIndex.oldestChange(shard);
  candidates = (shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }) => this.candidatesIndex.candidates(shard, now, limit, options);
  settle = (shard: string, changes: unknown, marks: readonly ChangeMark[]) => this.candidatesIndex.settle(shard, changes, marks);
  keep = async (marks: readonly ChangeMark[]) => void (await this.lists.add(marks));
  shardOf = (ref: EntityRef) => shardOf(entityPartitionKey(ref.workspace, ref.type, ref.id), this.dirtyShards);

  entity = (ref: EntityRef, changedDays?: readonly string[], daysFrom?: string) => this.rows.entity(ref, changedDays, daysFrom);
  events = (ref: EntityRef, days: readonly string[] | 'all', lease?: EventsLease) => this.rows.events(ref, days, lease);
  eachEventDay = (ref: EntityRef, days: readonly string[] | 'all', onDay: (day: string, events: StoredEvent[]) => void, lease?: EventsLease) => this.rows.eachEventDay(ref, days, onDay, lease);
  eventsBudget = () => this.rows.eventsBudget();
  claims = (workspace: string, identities: readonly Identity[]) => this.rows.claims(workspace, identities);
  claim = (workspace: string, claim: Claim, now: Date, heldBy?: string) => this.rows.claim(workspace, claim, now, heldBy);
  mark = (ref: EntityRef, days: readonly string[], at: Date) => this.rows.mark(ref, days, at);
  dayRollups = (ref: EntityRef, days: readonly string[]) => this.rows.dayRollups(ref, days);
  dayRollupsIn = (entities: readonly { ref: EntityRef; ranges: readonly DayRange[] }[]) => this.rows.dayRollupsIn(entities);
  accountTraits = (workspace: string, ids: readonly string[]) => this.rows.accountTraits(workspace, ids);
  members = (ref: EntityRef, read?: MembersRead) => this.rows.members(ref, read);
  save = (ref: EntityRef, update: EntityUpdate, token: unknown) => this.rows.save(ref, update, token);
  sweepBy = (ref: EntityRef, at: Date, token: unknown, options?: { postpone?: boolean }) => this.rows.sweepBy(ref, at, token, options);
}
