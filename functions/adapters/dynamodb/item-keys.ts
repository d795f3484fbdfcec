import { createHash } from 'node:crypto';
import type { EntityRef } from '../../core/ports';

/** Key builders for the items described in table-definition.ts; every adapter builds keys here and nowhere else. */

/** Users, accounts, and anonymous visitors apart from users (a userId never shares a partition with an anonymousId). */
export type EntityType = 'user' | 'account' | 'visitor';

export const writeKeysPartition = 'KEYS';
export const profileSortKey = 'PROFILE';
/**
 * The change marker of one entity, as versions before change lists wrote it (keys of the sparse `dirty` index under the
 * shard's number): the evaluator moves any it finds into a list (change-lists.ts).
 */
export const changesSortKey = 'CHANGES';
export const eventSortKeyPrefix = 'EVT#';
export const memberSortKeyPrefix = 'MEMBER#';
/** The claim that merges an identity into a user, on the claimed identity's profile: `claimTo`, `claimAt`, `claimMessageId`. */
export const claimAttributes = { to: 'claimTo', at: 'claimAt', messageId: 'claimMessageId', storedAt: 'claimStoredAt' } as const;

export const writeKeySortKey = (keyId: string) => `KEY#${keyId}`;
/** Every workspace's allowed browser origins, in one item beside the keys: ingest reads both. */
export const originsSortKey = 'ORIGINS';
/** The start of the partition key of every entity of one type in a workspace. */
export const entityPartitionPrefix = (workspace: string, type: EntityType) => `WS#${workspace}#${type}#`;
export const entityPartitionKey = (workspace: string, type: EntityType, id: string) => `${entityPartitionPrefix(workspace, type)}${id}`;
/** Every partition of workspace data (entities, receipts, quarantine), as an IAM `dynamodb:LeadingKeys` pattern. */
export const workspacePartitionsPattern = 'WS#*';
/**
 * Events sort by day, so the evaluator can read exactly the days that changed; `day` may be any timestamp of it. The id
 * is a chunk's (event-chunks.ts), or, in items written before chunks, the one message's messageId.
 */
export const eventSortKey = (day: string, id: string) => `${eventSortKeyPrefix}${day.slice(0, 10)}#${id}`;
/** The day (`yyyy-mm-dd`) of an event item's sort key. */
export const eventDayOf = (sortKey: string) => sortKey.slice(eventSortKeyPrefix.length, eventSortKeyPrefix.length + 10);
export const memberSortKey = (userKey: string) => `${memberSortKeyPrefix}${userKey}`;
/** The first receipt of a message that has no timestamp of its own, so a retry keeps the first receipt's time. */
export const receiptPartitionKey = (workspace: string, messageId: string) => `WS#${workspace}#MSG#${messageId}`;
export const receiptSortKey = 'RECEIPT';
export const quarantinePartitionKey = (workspace: string) => `WS#${workspace}#REJECTED`;
export const quarantineSortKey = (receivedAt: Date, requestId: string, index: number) =>
  `${receivedAt.toISOString()}#${requestId}#${String(index).padStart(4, '0')}`;

/**
 * Sales feedback waiting for the evaluator, in the entity's partition. It sorts between PROFILE and STATE, so the one
 * Query that reads both for every evaluation reads it too, at no extra request.
 */
export const feedbackSortKeyPrefix = `${profileSortKey}#FEEDBACK#`;
export const feedbackSortKey = (at: string, id: string) => `${feedbackSortKeyPrefix}${at}#${id}`;
/** A feedback link's nonce once used (until the link expires): single use. In the workspace's data, not an entity's. */
export const usedFeedbackLinkPartitionKey = (workspace: string, nonce: string) => `WS#${workspace}#FEEDBACKLINK#${nonce}`;
export const usedFeedbackLinkSortKey = 'USED';
/**
 * The key feedback links are signed with, alone in its partition: IAM (`dynamodb:LeadingKeys`) gives it to the
 * functions that sign or check links (ingest, the Slack and webhook notifiers) and to the bootstrap that makes it, and
 * to no role that reads META for its other items (the evaluator, rule health).
 */
export const feedbackSigningKeyPartition = 'FEEDBACK_SIGNING_KEY';
export const feedbackSigningKeySortKey = 'KEY';
/** Where versions before kept the signing key, under META: the bootstrap moves it to its own partition (feedback-store.ts). */
export const metaFeedbackSecretSortKey = 'FEEDBACK_SECRET';
/** A backtest's figures kept under META for rule health's promised vs delivered, one per rules version. */
export const backtestSortKey = (rulesVersion: string) => `BACKTEST#${rulesVersion}`;

/** An entity's lead state, lifetime rollup and first/last seen, written by the evaluator. */
export const stateSortKey = 'STATE';
/**
 * Day rollups sort just before PROFILE (no other key of an entity lies between them): one query from the first day
 * an evaluation reads to STATE reads those days with the profile and the state. Earlier versions kept them under
 * `DAY#`, which an entity leaves when its days are next rebuilt (entity-rows.ts, `dayPrefixAttribute`).
 */
export const daySortKeyPrefix = 'PDAY#';
/** The evaluator's rollup of one day of a user's events. */
export const daySortKey = (day: string) => `${daySortKeyPrefix}${day}`;
/** Lead events saved with the state that caused them and not yet published: the outbox of one shard. */
export const outboxPartitionKey = (shard: string) => `OUTBOX#${shard}`;
/** Every shard's outbox, as an IAM `dynamodb:LeadingKeys` pattern. */
export const outboxPartitionsPattern = 'OUTBOX#*';
export const outboxSortKey = (evaluatedAt: string, idempotencyKey: string) => `${evaluatedAt}#${idempotencyKey}`;
export const metaPartitionKey = 'META';
/** The shard count of the deployment writing to the table, for `pql-radar evaluate` (shard-count.ts). */
export const shardCountSortKey = 'SHARDS';
/** Where the local runtime and `pql-radar evaluate` have read the table's stream to (local/change-stream.ts). */
export const streamPositionSortKey = 'STREAM_POSITION';
/** A destination of the deployment (or of the local runtime), for the delivery commands of the CLI. */
export const destinationSortKeyPrefix = 'DESTINATION#';
export const destinationSortKey = (id: string) => `${destinationSortKeyPrefix}${id}`;
/** The delivery log: one partition per UTC day of attempts, newest last. */
export const deliveryLogPartitionKey = (day: string) => `DELIVERIES#${day}`;
export const deliveryLogSortKey = (at: string, destination: string, idempotencyKey: string, attempt: number, outcome: string) =>
  `${at}#${destination}#${idempotencyKey}#${attempt}#${outcome}`;
/** What a destination took: its idempotency keys, and for a CRM the time of the last transition applied per lead. */
export const deliveredPartitionKey = (destination: string) => `DELIVERED#${destination}`;
export const deliveredKeySortKey = (idempotencyKey: string) => `KEY#${idempotencyKey}`;
export const appliedSortKey = (workspace: string, type: string, id: string) => `LEAD#${workspace}#${type}#${id}`;
/** Every partition the notifier writes, as IAM `dynamodb:LeadingKeys` patterns. */
export const deliveryPartitionsPatterns = ['DELIVERIES#*', 'DELIVERED#*'] as const;
/** The local runtime's delivery queue of a destination and its dead letters (deployed, SQS holds both). */
export const localQueuePartitionKey = (destination: string) => `DELIVERYQ#${destination}`;
export const localDeadLetterPartitionKey = (destination: string) => `DEADLETTER#${destination}`;
/** The ruleset version a shard last evaluated everyone with. */
export const rulesetSortKey = (shard: string) => `RULESET#${shard}`;

/** The evaluator's lists of changed entities of one shard, oldest change first (change-lists.ts). */
export const changeListPartitionKey = (shard: string) => `CHANGES#${shard}`;
/** Every shard's change lists, as an IAM `dynamodb:LeadingKeys` pattern. */
export const changeListPartitionsPattern = 'CHANGES#*';
/** A list sorts by the time it was written, then a unique tail. */
export const changeListSortKey = (writtenAt: string, unique: string) => `${writtenAt}#${unique}`;
/** The last change list of a shard the evaluator has evaluated. */
export const changeCursorSortKey = (shard: string) => `LISTS#${shard}`;

/** Partitions of the `dirty` index: the markers of earlier versions, and evaluated entities waiting for their next sweep. */
export const changedPartition = (shard: string) => shard;
export const sweepPartition = (shard: string) => `sweep#${shard}`;

/** The shard an entity belongs to, the same for ingest and the evaluator. */
export function shardOf(entityPartitionKey: string, shards: number): string {
  return String(createHash('sha256').update(entityPartitionKey).digest().readUInt32BE(0) % shards);
}

export function parseEntityPartitionKey(pk: string): EntityRef | undefined {
  const match = /^WS#([^#]+)#(user|account|visitor)#(.+)$/s.exec(pk);
  return match ? { workspace: match[1]!, type: match[2] as EntityType, id: match[3]! } : undefined;
}
