import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { defaultDeliveryPolicy, type DeliveryPolicy } from '../../functions/core/delivery';
import { generateWebhookSecret } from '../../functions/core/webhook-signature';
import { LocalDeliveryWorker } from '../../functions/local/delivery-worker';
import { freshTable } from '../support/dynamodb';
import { sampleLeadEvent } from '../support/lead-events';
import { verifiedByLibrary } from '../support/webhooks';

/**
 * The local delivery path end to end against DynamoDB Local and a real HTTP receiver that is down for a while, then
 * answers 500, then 429 with Retry-After, then recovers: every lead is delivered exactly once per idempotency key,
 * in order per lead, and every attempt is in the delivery log.
 */

type Reply = 'drop' | { status: number; headers?: Record<string, string> };

interface Received {
  at: number;
  key: string;
  status: number | 'dropped';
  body: string;
  headers: Record<string, string>;
}

class ScriptedReceiver {
  readonly received: Received[] = [];
  /** Replies in order, one per request; then `then` for every request. */
  script: Reply[] = [];
  then: Reply = { status: 200 };
  readonly #server: Server = createServer((request, response) => this.#handle(request, response));

  async start() {
    await new Promise<void>((done) => this.#server.listen(0, '127.0.0.1', done));
  }

  get url() {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks/pql`;
  }

  deliveredKeys() {
    return this.received.filter((request) => request.status === 200).map((request) => request.key);
  }

  async stop() {
    this.#server.closeAllConnections();
    await new Promise((done) => this.#server.close(done));
  }

  #handle(request: IncomingMessage, response: ServerResponse) {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const reply = this.script.shift() ?? this.then;
      const headers = request.headers as Record<string, string>;
      const body = Buffer.concat(chunks).toString('utf8');
      this.received.push({ at: Date.now(), key: headers['webhook-id']!, status: reply === 'drop' ? 'dropped' : reply.status, body, headers });
      // A receiver that is down: the connection closes without an answer.
      if (reply === 'drop') return request.socket.destroy();
      response.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
      response.end(reply.status === 200 ? 'ok' : `failed for someone@example.com at ${reply.status}`);
    });
  }
}

const secret = generateWebhookSecret();
const quickPolicy: DeliveryPolicy = { ...defaultDeliveryPolicy, baseDelayMs: 20, maxDelayMs: 100, retryWindowMs: 60_000 };

const qualified = sampleLeadEvent({ evaluatedAt: '2026-11-30T10:00:00.000Z' });
const tierChanged = sampleLeadEvent({ previousTier: 'PQL-A', tier: 'PQL-B', evaluatedAt: '2026-11-30T10:05:00.000Z' });
const other = sampleLeadEvent({ entity: { type: 'user', id: 'u-7' }, evaluatedAt: '2026-11-30T10:01:00.000Z' });
const keys = (events: { detail: { idempotencyKey: string } }[]) => events.map((event) => event.detail.idempotencyKey);

/** Drains until every queue is empty (or `timeoutMs` passes), as the running worker's timer would. */
async function drainUntilEmpty(worker: LocalDeliveryWorker, destination: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await worker.drain();
    if ((await worker.queue.head(destination)) === undefined) return;
    await new Promise((done) => setTimeout(done, 25));
  }
  throw new Error(`the queue of ${destination} did not drain in ${timeoutMs} ms`);
}

describe('local delivery through the table queue', () => {
  const receiver = new ScriptedReceiver();
  beforeAll(() => receiver.start());
  afterAll(() => receiver.stop());
  beforeEach(() => {
    receiver.received.length = 0;
    receiver.script = [];
    receiver.then = { status: 200 };
  });

  async function workerFor(policy: DeliveryPolicy = quickPolicy) {
    const { client, tableName } = await freshTable();
    const destination = webhookDestination('local-webhook-1', receiver.url, staticSecret(secret));
    const worker = new LocalDeliveryWorker({ client, tableName, destinations: [destination], policy, requestsPerSecond: 1000, onError: (_id, error) => { throw error; } });
    await worker.register('table');
    return worker;
  }

  it('survives an outage: down, 500, 429 with Retry-After, then delivers each lead exactly once, in order, logged', async () => {
    const worker = await workerFor();
    receiver.script = ['drop', 'drop', { status: 500 }, { status: 429, headers: { 'retry-after': '2' } }];
    expect(await worker.publish([qualified, other, tierChanged])).toEqual({ failed: [] });
    // The evaluator publishing the same transitions again (a crash before it cleared its outbox) changes nothing.
    expect(await worker.publish([qualified, tierChanged])).toEqual({ failed: [] });
    await drainUntilEmpty(worker, 'local-webhook-1');

    // Exactly once per key, in the order of the transitions (the queue's head waits while it fails).
    expect(receiver.deliveredKeys()).toEqual(keys([qualified, other, tierChanged]));
    // Four failed attempts at the head, then the three deliveries.
    expect(receiver.received.map((request) => request.status)).toEqual(['dropped', 'dropped', 500, 429, 200, 200, 200]);
    expect(receiver.received.slice(0, 5).every((request) => request.key === qualified.detail.idempotencyKey)).toBe(true);
    // Retry-After: 2 was honoured.
    expect(receiver.received[4]!.at - receiver.received[3]!.at).toBeGreaterThanOrEqual(1900);
    // Every delivery verifies with the Standard Webhooks library, as a receiver would check it.
    for (const request of receiver.received.filter((request) => request.status === 200)) {
      expect(verifiedByLibrary(secret, request.body, request.headers, request.at)).toMatchObject({ Source: 'pql-radar' });
    }

    const log = await worker.ledger.list({ since: new Date(Date.now() - 60_000), until: new Date(), limit: 100 });
    const head = log.filter((entry) => entry.idempotencyKey === qualified.detail.idempotencyKey).reverse();
    expect(head.map((entry) => [entry.attempt, entry.outcome, entry.next, entry.status ?? entry.error?.slice(0, 5)])).toEqual([
      [1, 'retryable', 'retry', expect.any(String)],
      [2, 'retryable', 'retry', expect.any(String)],
      [3, 'retryable', 'retry', 500],
      [4, 'retryable', 'retry', 429],
      [5, 'delivered', 'done', 200],
    ]);
    expect(head[2]!.excerpt).toBe('failed for [email] at 500');
    expect(JSON.stringify(log)).not.toMatch(/someone@example\.com/);
    expect(log.filter((entry) => entry.outcome === 'delivered').map((entry) => entry.idempotencyKey).sort()).toEqual(keys([qualified, other, tierChanged]).sort());

    // --failed and --lead as the CLI asks.
    const failed = await worker.ledger.list({ since: new Date(Date.now() - 60_000), until: new Date(), limit: 100, failed: true });
    expect(failed).toHaveLength(4);
    const ofU7 = await worker.ledger.list({ since: new Date(Date.now() - 60_000), until: new Date(), limit: 100, lead: 'u-7' });
    expect(ofU7.map((entry) => entry.outcome)).toEqual(['delivered']);
  });

  it('a redelivery after the delivery is logged as a duplicate and not sent again', async () => {
    const worker = await workerFor();
    await worker.publish([qualified]);
    await drainUntilEmpty(worker, 'local-webhook-1');
    // The queue item is gone; the same transition queued again (e.g. a replay) reaches the ledger, not the receiver.
    await worker.queue.enqueue('local-webhook-1', [qualified], new Date());
    await drainUntilEmpty(worker, 'local-webhook-1');
    expect(receiver.deliveredKeys()).toEqual(keys([qualified]));
    const log = await worker.ledger.list({ since: new Date(Date.now() - 60_000), until: new Date(), limit: 10 });
    expect(log.map((entry) => entry.outcome)).toEqual(['duplicate', 'delivered']);
  });

  it('dead-letters what the retry window gave up on, and a redrive delivers it once the receiver is back', async () => {
    const worker = await workerFor({ ...quickPolicy, retryWindowMs: 400 });
    receiver.then = { status: 503 };
    await worker.publish([qualified, other]);
    await drainUntilEmpty(worker, 'local-webhook-1');
    const letters = await worker.queue.deadLetters('local-webhook-1');
    expect(letters.map((letter) => letter.event.detail.idempotencyKey)).toEqual(keys([qualified, other]));
    expect(letters[0]!.reason).toMatch(/HTTP 503 after \d+ attempt\(s\).*retry window has passed/);
    expect(receiver.deliveredKeys()).toEqual([]);

    // A 400 is not worth a retry: straight to the dead letters.
    receiver.then = { status: 400 };
    const refused = sampleLeadEvent({ entity: { type: 'user', id: 'u-9' }, evaluatedAt: '2026-11-30T10:09:00.000Z' });
    await worker.publish([refused]);
    await drainUntilEmpty(worker, 'local-webhook-1');
    expect((await worker.queue.deadLetters('local-webhook-1')).map((letter) => letter.reason)).toContainEqual(expect.stringMatching(/^HTTP 400: the destination refused it/));

    receiver.then = { status: 200 };
    expect(await worker.queue.redrive('local-webhook-1', new Date())).toBe(3);
    await drainUntilEmpty(worker, 'local-webhook-1');
    expect(receiver.deliveredKeys()).toEqual(keys([qualified, other, refused]));
    expect(await worker.queue.deadLetters('local-webhook-1')).toEqual([]);
  });
});
