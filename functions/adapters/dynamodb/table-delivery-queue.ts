import { DeleteItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { queryAll } from './batch-write';
import type { LeadEvent } from '../../core/lead-event';
import { localDeadLetterPartitionKey, localQueuePartitionKey } from './item-keys';
import { conditionFailed } from './condition-failed';

/**
 * The local runtime's delivery queues, in the table: what SQS FIFO queues are to the deployed notifiers. One
 * partition per destination, in the order of the transitions (evaluatedAt), worked head first, so one destination
 * sees one lead's transitions in order and a failing head holds the rest back, as a FIFO message group does. A
 * message the retry window gave up on moves to the destination's dead letters, from which `dlq redrive` takes it back.
 */
export interface QueuedDelivery {
  event: LeadEvent;
  /** When the queue received it (again, after a redrive): the retry window runs from there. */
  queuedAt: string;
  /** Attempts made so far. */
  attempts: number;
  /** Not before this time (a backoff, or what Retry-After asked). */
  visibleAt: string;
  sortKey: string;
}

export interface DeadLetter {
  event: LeadEvent;
  reason: string;
  deadLetteredAt: string;
  sortKey: string;
}

export class TableDeliveryQueue {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  /** Queues each event for the destination; an event already queued (the evaluator published it again) stays as it is. */
  async enqueue(destination: string, events: readonly LeadEvent[], now: Date): Promise<void> {
    for (const event of events) {
      try {
        await this.client.send(
          new PutItemCommand({
            TableName: this.tableName,
            Item: this.#item(localQueuePartitionKey(destination), sortKeyOf(event), event, now),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (!conditionFailed(error)) throw error;
      }
    }
  }

  /** The head of the destination's queue, visible or not. */
  async head(destination: string): Promise<QueuedDelivery | undefined> {
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: localQueuePartitionKey(destination) } },
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    const item = Items[0];
    if (!item) return undefined;
    return {
      event: JSON.parse(item['event']!.S!) as LeadEvent,
      queuedAt: item['queuedAt']!.S!,
      attempts: Number(item['attempts']!.N),
      visibleAt: item['visibleAt']!.S!,
      sortKey: item['sk']!.S!,
    };
  }

  /** How many lead events the destination's queue holds, due or not. */
  async size(destination: string): Promise<number> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: localQueuePartitionKey(destination) } },
      ProjectionExpression: 'sk',
      ConsistentRead: true,
    });
    return items.length;
  }

  async retryLater(destination: string, message: QueuedDelivery, visibleAt: Date): Promise<void> {
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: localQueuePartitionKey(destination) }, sk: { S: message.sortKey } },
        UpdateExpression: 'SET attempts = attempts + :one, visibleAt = :at',
        ExpressionAttributeValues: { ':one': { N: '1' }, ':at': { S: visibleAt.toISOString() } },
      }),
    );
  }

  async remove(destination: string, message: Pick<QueuedDelivery, 'sortKey'>): Promise<void> {
    await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: { pk: { S: localQueuePartitionKey(destination) }, sk: { S: message.sortKey } } }));
  }

  /** Moves the message to the destination's dead letters; written there before it leaves the queue, so a crash loses nothing. */
  async deadLetter(destination: string, message: QueuedDelivery, reason: string, now: Date): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: {
          pk: { S: localDeadLetterPartitionKey(destination) },
          sk: { S: message.sortKey },
          event: { S: JSON.stringify(message.event) },
          reason: { S: reason },
          deadLetteredAt: { S: now.toISOString() },
        },
      }),
    );
    await this.remove(destination, message);
  }

  async deadLetters(destination: string): Promise<DeadLetter[]> {
    const items = await queryAll(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: localDeadLetterPartitionKey(destination) } },
      ConsistentRead: true,
    });
    return items.map((item) => ({
      event: JSON.parse(item['event']!.S!) as LeadEvent,
      reason: item['reason']!.S!,
      deadLetteredAt: item['deadLetteredAt']!.S!,
      sortKey: item['sk']!.S!,
    }));
  }

  /** Puts every dead letter back in the queue with a fresh retry window; returns how many. */
  async redrive(destination: string, now: Date): Promise<number> {
    const letters = await this.deadLetters(destination);
    for (const letter of letters) {
      // Queued before it is removed from the dead letters: a crash in between leaves a copy, which the ledger deduplicates.
      await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: this.#item(localQueuePartitionKey(destination), letter.sortKey, letter.event, now) }));
      await this.client.send(new DeleteItemCommand({ TableName: this.tableName, Key: { pk: { S: localDeadLetterPartitionKey(destination) }, sk: { S: letter.sortKey } } }));
    }
    return letters.length;
  }

  #item(pk: string, sortKey: string, event: LeadEvent, now: Date) {
    return {
      pk: { S: pk },
      sk: { S: sortKey },
      event: { S: JSON.stringify(event) },
      queuedAt: { S: now.toISOString() },
      attempts: { N: '0' },
      visibleAt: { S: now.toISOString() },
    };
  }
}

const sortKeyOf = (event: LeadEvent) => `${event.detail.evaluatedAt}#${event.detail.idempotencyKey}`;
