/**
 * The one definition of pql-radar's DynamoDB table: its keys, its index and its TTL attribute.
 * The CDK construct (lib/event-store.ts) and the local runtime (functions/local) both build the table
 * from this object, so the deployed table and DynamoDB Local can never disagree.
 *
 * Item layout (single table, all keys are strings; item-keys.ts builds them):
 * | item                               | pk                          | sk                              |
 * |------------------------------------|-----------------------------|---------------------------------|
 * | write key                          | `KEYS`                      | `KEY#<keyId>`                   |
 * | events (a chunk; user or visitor)  | `WS#<ws>#<type>#<id>`       | `EVT#<yyyy-mm-dd>#<chunkId>`    |
 * | entity profile (traits)            | `WS#<ws>#<type>#<id>`       | `PROFILE`                       |
 * | account member                     | `WS#<ws>#account#<id>`      | `MEMBER#<userKey>`              |
 * | change list of a shard             | `CHANGES#<shard>`           | `<since>#<unique>`              |
 * | lead state, lifetime rollup        | `WS#<ws>#<type>#<id>`       | `STATE`                         |
 * | a user's day rollup                | `WS#<ws>#user#<userId>`     | `PDAY#<yyyy-mm-dd>`             |
 * | first receipt of a message         | `WS#<ws>#MSG#<messageId>`   | `RECEIPT`                       |
 * | quarantined message                | `WS#<ws>#REJECTED`          | `<receivedAt>#<requestId>#<i>`  |
 * | unpublished lead event (outbox)    | `OUTBOX#<shard>`            | `<evaluatedAt>#<idempotencyKey>`|
 * | a shard's ruleset progress         | `META`                      | `RULESET#<shard>`               |
 * | the table's shard count            | `META`                      | `SHARDS`                        |
 * | the local stream reader's position | `META`                      | `STREAM_POSITION`               |
 *
 * An event item holds the messages of one request for one user or visitor and one UTC day, as a (deflated) JSON
 * array, cut so that no item comes near the 400 KB limit; its chunkId hashes the messageIds, so a retried request
 * rewrites it (event-chunks.ts). Items written before chunks hold one message, under `EVT#<yyyy-mm-dd>#<messageId>`;
 * readers take both, each messageId once.
 *
 * Evaluated entities carry `dirtyShard` and `dirtySince` on their STATE item, the keys of the sparse `dirty` index:
 * the evaluator finds the leads due for a sweep with a Query per shard instead of a Scan. (Change markers of earlier
 * versions, `CHANGES` items under the entity, sit in the same index under the shard's number until a run lists them.)
 */
export const tableDefinition = {
  partitionKey: 'pk',
  sortKey: 'sk',
  timeToLiveAttribute: 'expiresAt',
  /**
   * The table's change stream: the keys of every written item, which change capture turns into the evaluator's
   * change lists (adapters/dynamodb/change-capture.ts), so ingest pays no marker write per request.
   */
  streamViewType: 'KEYS_ONLY',
  dirtyIndex: {
    indexName: 'dirty',
    partitionKey: 'dirtyShard',
    sortKey: 'dirtySince',
  },
} as const;

/** Default table name of the local runtime; the deployed stack passes its own name in TABLE_NAME. */
export const defaultLocalTableName = 'pql-radar';

/**
 * The CreateTable input for DynamoDB Local. Kept as a plain object (no SDK types) so that
 * the definition module has no dependency at all.
 */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, dirtyIndex } = tableDefinition;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    StreamSpecification: { StreamEnabled: true, StreamViewType: tableDefinition.streamViewType },
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' as const },
      { AttributeName: sortKey, AttributeType: 'S' as const },
      { AttributeName: dirtyIndex.partitionKey, AttributeType: 'S' as const },
      { AttributeName: dirtyIndex.sortKey, AttributeType: 'S' as const },
    ],
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' as const },
      { AttributeName: sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: dirtyIndex.indexName,
        KeySchema: [
          { AttributeName: dirtyIndex.partitionKey, KeyType: 'HASH' as const },
          { AttributeName: dirtyIndex.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' as const },
      },
    ],
  };
}
