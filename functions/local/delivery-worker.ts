import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbDeliveryLedger } from '../adapters/dynamodb/delivery-ledger';
import { DynamoDbDestinationRegistry } from '../adapters/dynamodb/destination-registry';
import { TableDeliveryQueue } from '../adapters/dynamodb/table-delivery-queue';
import { Pacer } from '../adapters/pacer';
import { defaultDeliveryPolicy, deliverLeadEvent, failureCause, type DeliveryPolicy, type LeadDestination } from '../core/delivery';
import type { LeadEvent } from '../core/lead-event';
import type { LeadPublisher } from '../core/ports';
import { defaultDeliveryLogDays } from '../shared/settings';

/**
 * The local runtime's delivery, as the deployed one works: publishing queues each lead event for every destination
 * (in the table, where SQS holds them deployed), and a worker delivers each destination's queue head first through
 * core/delivery, paced, deduplicated, logged, retried within the window and dead-lettered after it. `pql-radar
 * deliveries list`, `destinations test` and `dlq redrive` work on what it writes.
 */
export interface LocalDeliveryOptions {
  client: DynamoDBClient;
  tableName: string;
  destinations: readonly LeadDestination[];
  /** Requests per second to each destination. @default 10 */
  requestsPerSecond?: number;
  /** @default core/delivery's: 24 hours of retries, backoff from 10 s to 15 min */
  policy?: DeliveryPolicy;
  /** @default 14 */
  logDays?: number;
  now?: () => Date;
  /** Told when a destination's queue could not be worked (DynamoDB unreachable). @default console.error */
  onError?: (destination: string, error: unknown) => void;
}

/** What one drain of a destination's queue left undelivered. */
export interface DrainResult {
  destination: string;
  /**
   * Its queue still holds lead events: the idempotency key of its head, which waits for a retry, the rest behind it.
   * The key tells one waiting lead event from the next, so a running command tells of each once.
   */
  waiting?: string;
  /** Why this drain's last failed attempt failed (HTTP 503, a network error). */
  lastFailure?: string;
  /** Why each lead event this drain moved to the dead letters was given up on. */
  deadLettered: string[];
  /** The queue could not be worked (DynamoDB unreachable); told to onError too. */
  failed?: true;
}

export class LocalDeliveryWorker implements LeadPublisher {
  readonly queue: TableDeliveryQueue;
  readonly ledger: DynamoDbDeliveryLedger;
  readonly #destinations: readonly { destination: LeadDestination; pacer: Pacer }[];
  readonly #policy: DeliveryPolicy;
  readonly #now: () => Date;
  readonly #onError: (destination: string, error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(private readonly options: LocalDeliveryOptions) {
    this.queue = new TableDeliveryQueue(options.client, options.tableName);
    this.ledger = new DynamoDbDeliveryLedger(options.client, options.tableName, options.logDays ?? defaultDeliveryLogDays);
    this.#destinations = options.destinations.map((destination) => ({ destination, pacer: new Pacer(options.requestsPerSecond ?? 10) }));
    this.#policy = options.policy ?? defaultDeliveryPolicy;
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError ?? ((destination, error) => console.error(`pql-radar: delivery to ${destination} paused: ${(error as Error).message}`));
  }

  /**
   * Records the destinations in the table (every route), so the CLI's delivery commands find them: the local runtime's
   * (`table`) in place of those it recorded before, `pql-radar evaluate`'s beside the others, each with its queue.
   */
  async register(transport: 'table' | 'evaluate'): Promise<void> {
    const registry = new DynamoDbDestinationRegistry(this.options.client, this.options.tableName);
    const records = this.options.destinations.map((destination) => ({ id: destination.id, kind: destination.kind, route: '*', transport }));
    await (transport === 'table' ? registry.replace(records, transport) : registry.add(records));
  }

  /** The local bus: each event is queued for every destination; an event is failed only if it could not be queued. */
  async publish(events: readonly LeadEvent[]): Promise<{ failed: string[] }> {
    try {
      for (const { destination } of this.#destinations) await this.queue.enqueue(destination.id, events, this.#now());
      return { failed: [] };
    } catch {
      return { failed: events.map((event) => event.detail.idempotencyKey) };
    }
  }

  /** Works every destination's queue until its head is not due yet (or the queue is empty). Calls never overlap. */
  drain(): Promise<DrainResult[]> {
    const run = this.#running.then(() => Promise.all(this.#destinations.map((entry) => this.#drainOne(entry))));
    this.#running = run.catch(() => {});
    return run;
  }

  /** Drains every `everyMs` until stop(), handing what each drain left undelivered (and this worker) to `onDrained`. */
  start(everyMs: number, onDrained?: (results: DrainResult[], worker: LocalDeliveryWorker) => Promise<void>): void {
    const tick = () => {
      this.#timer = setTimeout(() => void this.drain().then((results) => onDrained?.(results, this)).catch((error: Error) => console.error(`pql-radar: what the delivery worker left undelivered could not be told: ${error.message}`)).finally(() => !this.#stopped && tick()), everyMs);
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #drainOne({ destination, pacer }: { destination: LeadDestination; pacer: Pacer }): Promise<DrainResult> {
    const result: DrainResult = { destination: destination.id, deadLettered: [] };
    // The attempt's own answer: a retry decision does not carry why.
    const watched: LeadDestination = {
      ...destination,
      send: async (event) => {
        const attempt = await destination.send(event);
        if (attempt.outcome === 'retryable' || attempt.outcome === 'permanent') result.lastFailure = failureCause(attempt);
        return attempt;
      },
    };
    try {
      for (;;) {
        const message = await this.queue.head(destination.id);
        if (!message) return result;
        if (message.visibleAt > this.#now().toISOString()) return { ...result, waiting: message.event.detail.idempotencyKey };
        await pacer.wait();
        const now = this.#now();
        const decision = await deliverLeadEvent(message.event, { destination: watched, ledger: this.ledger }, { receives: message.attempts + 1, queuedAt: new Date(message.queuedAt), now }, this.#policy);
        if (decision.action === 'done') await this.queue.remove(destination.id, message);
        else if (decision.action === 'retry') await this.queue.retryLater(destination.id, message, new Date(now.getTime() + decision.delayMs));
        else {
          await this.queue.deadLetter(destination.id, message, decision.reason, now);
          result.deadLettered.push(decision.reason);
        }
      }
    } catch (error) {
      this.#onError(destination.id, error);
      return { ...result, failed: true };
    }
  }
}
