import { GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { CandidatePage, ChangeMark, EntityRef, EvaluationCandidate, RulesetProgress } from '../../core/ports';
import { changedCandidate } from '../../core/changes';
import type { CapacityTally } from './capacity';
import type { DynamoDbChangeLists } from './change-lists';
import { metaPartitionKey, parseEntityPartitionKey, rulesetSortKey, sweepPartition } from './item-keys';
import { tableDefinition } from './table-definition';

/**
 * Which entities the evaluator looks at: changed ones from the shard's change lists (change-lists.ts), leads due for a
 * sweep (the sweep partition of the `dirty` index, which the entity rows schedule), and everyone after a rules change,
 * with each shard's progress through such a re-evaluation.
 */
export class DynamoDbEvaluationCandidates {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly capacity: CapacityTally,
    private readonly lists: DynamoDbChangeLists,
  ) {}

  async rulesetProgress(shard: string): Promise<RulesetProgress> {
    // Eventually consistent: a progress a second stale only makes an overlapping run re-evaluate some entities again.
    const { Item, ConsumedCapacity } = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: metaKey(shard), ReturnConsumedCapacity: 'TOTAL' }));
    this.capacity.add('read', ConsumedCapacity);
    return Item?.['progress']?.S ? (JSON.parse(Item['progress'].S) as RulesetProgress) : {};
  }

  async saveRulesetProgress(shard: string, progress: RulesetProgress): Promise<void> {
    const { ConsumedCapacity } = await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: { ...metaKey(shard), progress: { S: JSON.stringify(progress) } }, ReturnConsumedCapacity: 'TOTAL' }),
    );
    this.capacity.add('write', ConsumedCapacity);
  }

  oldestChange(shard: string): Promise<string | undefined> {
    return this.lists.oldest(shard);
  }

  async candidates(shard: string, now: Date, limit: number, options: { everyone: boolean; after?: string }): Promise<CandidatePage> {
    const cursor = (options.after ? JSON.parse(options.after) : { phase: 'changed' }) as
      | { phase: 'changed'; lists?: { after?: string; upTo: string } }
      | { phase: 'sweep'; key?: Record<string, AttributeValue> };
    if (cursor.phase === 'changed') {
      // The first page fixes what this run reads: the lists after the shard's cursor written before it started.
      let lists = cursor.lists;
      if (lists === undefined) {
        await this.lists.adoptMarkers(shard);
        const after = await this.lists.cursor(shard);
        lists = { ...(after !== undefined ? { after } : {}), upTo: this.lists.readableUpTo() };
      }
      const { marks, last } = await this.lists.read(shard, { after: lists.after, upTo: lists.upTo, limit });
      const candidates = marks.map(changedCandidate).sort(usersFirst);
      if (last === undefined) return { candidates, next: JSON.stringify({ phase: 'sweep' }) };
      return { candidates, changes: last, next: JSON.stringify({ phase: 'changed', lists: { after: last, upTo: lists.upTo } }) };
    }
    const { dirtyIndex } = tableDefinition;
    const sweepDue = !options.everyone;
    const page = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: dirtyIndex.indexName,
        KeyConditionExpression: `${dirtyIndex.partitionKey} = :shard${sweepDue ? ` AND ${dirtyIndex.sortKey} <= :now` : ''}`,
        ExpressionAttributeValues: { ':shard': { S: sweepPartition(shard) }, ...(sweepDue ? { ':now': { S: now.toISOString() } } : {}) },
        Limit: limit,
        ExclusiveStartKey: cursor.key,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity.add('read', page.ConsumedCapacity);
    const reason: EvaluationCandidate['reason'] = options.everyone ? 'rules-changed' : 'sweep';
    const candidates = (page.Items ?? [])
      .map((item) => parseEntityPartitionKey(item['pk']?.S ?? ''))
      .filter((ref): ref is EntityRef => ref !== undefined)
      .map((ref): EvaluationCandidate => ({ ref, reason, days: [] }))
      .sort(usersFirst);
    return { candidates, ...(page.LastEvaluatedKey ? { next: JSON.stringify({ phase: 'sweep', key: page.LastEvaluatedKey }) } : {}) };
  }

  /** Lists what the page left, then moves the shard's cursor past the page (a crash between repeats work, loses none). */
  async settle(shard: string, changes: unknown, marks: readonly ChangeMark[]): Promise<void> {
    if (marks.length > 0) await this.lists.add(marks);
    if (typeof changes === 'string') await this.lists.advance(shard, changes);
  }
}

/** Users first: an account rolls up its members' fresh state. */
const usersFirst = (a: EvaluationCandidate, b: EvaluationCandidate) => (a.ref.type === b.ref.type ? 0 : a.ref.type === 'account' ? 1 : b.ref.type === 'account' ? -1 : 0);

const metaKey = (shard: string) => ({ pk: { S: metaPartitionKey }, sk: { S: rulesetSortKey(shard) } });
