/** Key builders for the items described in table-definition.ts; every adapter builds keys here and nowhere else. */

export type EntityType = 'user' | 'account';

export const writeKeysPartition = 'KEYS';
export const profileSortKey = 'PROFILE';
/** The marker of an entity with unevaluated changes; it carries the keys of the sparse `dirty` index. */
export const changesSortKey = 'CHANGES';
export const eventSortKeyPrefix = 'EVT#';
export const memberSortKeyPrefix = 'MEMBER#';

export const writeKeySortKey = (keyId: string) => `KEY#${keyId}`;
export const entityPartitionKey = (workspace: string, type: EntityType, id: string) => `WS#${workspace}#${type}#${id}`;
/** Events sort by day, so the evaluator can read exactly the days that changed. */
export const eventSortKey = (timestamp: string, messageId: string) => `${eventSortKeyPrefix}${timestamp.slice(0, 10)}#${messageId}`;
export const memberSortKey = (userKey: string) => `${memberSortKeyPrefix}${userKey}`;
export const quarantinePartitionKey = (workspace: string) => `WS#${workspace}#REJECTED`;
export const quarantineSortKey = (receivedAt: Date, requestId: string, index: number) =>
  `${receivedAt.toISOString()}#${requestId}#${String(index).padStart(4, '0')}`;
