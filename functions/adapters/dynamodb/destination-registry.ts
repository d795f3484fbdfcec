import { DeleteItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { queryAll } from './batch-write';
import type { NotifierKind } from '../../core/delivery';
import { destinationSortKey, destinationSortKeyPrefix, metaPartitionKey } from './item-keys';

/**
 * The destinations of a deployment, recorded in its table so the CLI's delivery commands (`destinations list|test|
 * replay`, `dlq list|redrive`) need only `--table`: the deploy writes them (the bootstrap custom resource), the local
 * runtime writes its own when it starts.
 */
export interface DestinationRecord {
  /** `<route>-<kind>-<n>`, `crm-hubspot-<n>`, `local-webhook-<n>`, or `evaluate-webhook-<hash of its URL>`. */
  id: string;
  kind: NotifierKind | 'email' | 'sqs' | 'lambda';
  /** The route whose lead events it receives; `*` for every route (a CRM, the local runtime's webhooks). */
  route: string;
  /**
   * `sqs`: deployed, a FIFO delivery queue in front of the notifier (or, for email, sqs and lambda, EventBridge's
   * own retries). `table`: the local runtime's queue in the table. `evaluate`: a queue in the table too, of a webhook
   * given to `pql-radar evaluate`, which only a later `evaluate` given the same webhook works.
   */
  transport: 'sqs' | 'table' | 'evaluate';
  /** Deployed: the EventBridge rule of this destination alone, for a replay to it and no one else. */
  ruleArn?: string;
  /** Deployed: where a replay or a test sends from. */
  eventBusName?: string;
  archiveArn?: string;
  /** Deployed notifiers: the delivery queue, and the dead-letter queue of what the retry window gave up on. */
  queueUrl?: string;
  queueArn?: string;
  deadLetterQueueUrl?: string;
  deadLetterQueueArn?: string;
  /**
   * Deployed notifiers: the dead-letter queue of their rule's target, what EventBridge could not put on the delivery
   * queue (not redriven: replayed from the archive).
   */
  targetDeadLetterQueueUrl?: string;
}

const fields = ['kind', 'route', 'transport', 'ruleArn', 'eventBusName', 'archiveArn', 'queueUrl', 'queueArn', 'deadLetterQueueUrl', 'deadLetterQueueArn', 'targetDeadLetterQueueUrl'] as const;

export class DynamoDbDestinationRegistry {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async list(): Promise<DestinationRecord[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': { S: metaPartitionKey }, ':prefix': { S: destinationSortKeyPrefix } },
      ConsistentRead: true,
    });
    return items.map((item) => {
      const record: Record<string, string> = { id: item['sk']!.S!.slice(destinationSortKeyPrefix.length) };
      for (const field of fields) if (item[field]?.S !== undefined) record[field] = item[field].S;
      return record as unknown as DestinationRecord;
    });
  }

  /**
   * Makes the recorded destinations (those of `transport`, when given) exactly `records`: a destination removed from
   * the config disappears, and the local runtime's start leaves `evaluate`'s webhooks, whose queues it does not work.
   */
  async replace(records: readonly DestinationRecord[], transport?: DestinationRecord['transport']): Promise<void> {
    const keep = new Set(records.map((record) => record.id));
    for (const old of await this.list()) {
      if (!keep.has(old.id) && (transport === undefined || old.transport === transport)) {
        await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: { pk: { S: metaPartitionKey }, sk: { S: destinationSortKey(old.id) } } }));
      }
    }
    await this.add(records);
  }

  /** Records these destinations beside the others recorded. */
  async add(records: readonly DestinationRecord[]): Promise<void> {
    for (const record of records) {
      const item: Record<string, { S: string }> = { pk: { S: metaPartitionKey }, sk: { S: destinationSortKey(record.id) } };
      for (const field of fields) if (record[field] !== undefined) item[field] = { S: record[field] };
      await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: item }));
    }
  }
}
