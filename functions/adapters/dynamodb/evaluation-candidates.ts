import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EntityRef, EvaluationCandidate, RulesetProgress } from '../../core/ports';
import type { CapacityTally } from './capacity';
import { changedPartition, changesSortKey, entityPartitionKey, metaPartitionKey, parseEntityPartitionKey, rulesetSortKey, sweepPartition } from './item-keys';
import { tableDefinition } from './table-definition';

/**
 * Which entities the evaluator looks at: changed ones through the sparse `dirty` index (the change markers ingest
 * writes), leads due for a sweep (the sweep partition the entity rows schedule), and everyone after a rules change,
 * with each shard's progress through such a re-evaluation.
 */
export class DynamoDbEvaluationCandidates {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly capacity: CapacityTally,
  ) {}

  async rulesetProgress(shard: string): Promise<RulesetProgress> {
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: metaKey(shard), ConsistentRead: true, ReturnConsumedCapacity: 'TOTAL' }),
    );
    this.capacity.add('read', ConsumedCapacity);
    return Item?.['progress']?.S ? (JSON.parse(Item['progress'].S) as RulesetProgress) : {};
  }

  async saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void> {
    const { ConsumedCapacity } = await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: { ...metaKey(shard), progress: { S: JSON.stringify(progress) } }, ReturnConsumedCapacity: 'TOTAL' }),
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

  /** Drops the change marker of an entity the rules do not evaluate. */
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
}

const metaKey = (shard: string) => ({ pk: { S: metaPartitionKey }, sk: { S: rulesetSortKey(shard) } });
