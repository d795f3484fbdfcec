import { GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { leadStatusOf, type AskedEntity, type LeadStatus, type LeadStatusReader } from '../../core/lead-status';
import { TtlCache } from '../../core/ttl-cache';
import { CapacityTally } from './capacity';
import { stateOf } from './entity-rows';
import { entityPartitionKey, stateSortKey } from './item-keys';

/**
 * An entity's lead status from its STATE item: one GetItem, eventually consistent, which DynamoDB bills half a read
 * unit per 4 KB (a deflated state is well under that). A second-old state is fine for an upgrade prompt; the
 * evaluator's own reads are the strongly consistent ones.
 */
export class DynamoDbLeadStatusReader implements LeadStatusReader {
  readonly capacity = new CapacityTally();

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async leadStatus(entity: AskedEntity): Promise<LeadStatus | undefined> {
    const { Item, ConsumedCapacity } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: entityPartitionKey(entity.workspace, entity.type, entity.id) }, sk: { S: stateSortKey } },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    this.capacity.add('read', ConsumedCapacity);
    const lead = stateOf(Item)?.lead;
    return lead ? leadStatusOf(entity, lead) : undefined;
  }
}

/**
 * Remembers statuses (and their absence) for `ttlMs`, so a product asking on every page load reads each entity at
 * most once per period per warm function. A change of tier therefore shows at most `ttlMs` later. The answers kept
 * are the small views, not the states (whose history and scores are kilobytes), so 10,000 of them fit in a few MB.
 */
export class CachedLeadStatusReader implements LeadStatusReader {
  readonly cache: TtlCache<LeadStatus | undefined>;

  constructor(
    private readonly inner: LeadStatusReader,
    ttlMs: number,
    now: () => number = Date.now,
  ) {
    this.cache = new TtlCache(ttlMs, 10_000, now);
  }

  leadStatus(entity: AskedEntity): Promise<LeadStatus | undefined> {
    return this.cache.get(entityPartitionKey(entity.workspace, entity.type, entity.id), () => this.inner.leadStatus(entity));
  }
}
