/**
 * `npm run bench:delivery`: what delivering lead events costs, measured. The notifier's own work (core/delivery with
 * the DynamoDB ledger) runs against DynamoDB Local and a local receiver that answers after BENCH_RECEIVER_MS (300 by
 * default, a typical Slack or CRM answer), so the write and read units are DynamoDB's own figures and the Lambda time
 * is the measured time of each delivery. SQS, Lambda and EventBridge requests are counted from the design (one FIFO
 * message per delivery, batches of one at low traffic: the dearest case), priced at us-east-1 list prices.
 *
 * Two HubSpot cases. Contacts: one batch upsert per delivery. Companies whose lead event has a company trait: a batch
 * read of the company's name, then the batch upsert (adapters/hubspot/client.ts), so two requests, each answered after
 * BENCH_RECEIVER_MS, by test/support/hubspot.ts's FakeCompanies on the same local receiver; half the companies are
 * already in HubSpot with a name sales gave them (the read finds it, the upsert keeps it), half are new (the read finds
 * none, the upsert creates them named after the trait). That case runs as the notifier does, with its pacer at the
 * CRM's default requestsPerSecond (lib/config.ts): the upsert waits for its slot after the read, which costs Lambda time
 * only when the receiver answers faster than a slot (200 ms at 5 a second). The wait before each attempt is not timed:
 * at low traffic its slot is free, where the bench's deliveries, back to back, would wait.
 *
 *   npm run bench:delivery                          2,000 deliveries to a webhook, 500 to each HubSpot case
 *   BENCH_DELIVERIES=500 BENCH_RECEIVER_MS=100 npm run bench:delivery
 *
 * BENCH_DELIVERIES: webhook deliveries (first and redelivered); a quarter as many for each HubSpot case and for the
 * failed attempts. BENCH_RECEIVER_MS: how long the receiver takes to answer each request.
 *
 * Then a day of outage: the receiver answers 503 throughout, the retry schedule (core/delivery's nextStep, default
 * policy) is replayed on a virtual clock, and the attempts it makes are priced with the measured units of a failed one.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CapacityTally } from '../functions/adapters/dynamodb/capacity';
import { DynamoDbDeliveryLedger } from '../functions/adapters/dynamodb/delivery-ledger';
import { hubspotDestination, staticSecret, webhookDestination } from '../functions/adapters/destinations';
import { Pacer } from '../functions/adapters/pacer';
import { defaultDeliveryPolicy, deliverLeadEvent, nextStep, type LeadDestination } from '../functions/core/delivery';
import type { LeadEvent } from '../functions/core/lead-event';
import { generateWebhookSecret } from '../functions/core/webhook-signature';
import { createDynamoDbClient, ensureTable, startDynamoDbLocal } from '../functions/local/dynamodb-local';
import { count } from '../functions/analysis/format';
import { crmSchema } from '../lib/config';
import { FakeCompanies, type Received } from '../test/support/hubspot';
import { positiveInt, positiveNumber } from './knobs';

const deliveries = positiveInt('BENCH_DELIVERIES', 2000);
const receiverMs = positiveNumber('BENCH_RECEIVER_MS', 300);
/** Deliveries at once: a few, as a handful of notifiers would run, so DynamoDB Local's queueing does not inflate the times. */
const concurrency = 8;

/** us-east-1 list prices, USD. */
const price = {
  writeUnit: 0.625 / 1e6,
  readUnit: 0.125 / 1e6,
  fifoRequest: 0.5 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  /** arm64, per GB-second. */
  lambdaGbSecond: 0.0000133334,
  eventBridgeEvent: 1 / 1e6,
};
/** The notifier's memory (lib/notifier-destination.ts). */
const notifierGb = 128 / 1024;

/** HubSpot's companies, for the company case: its batch reads and upserts, and nothing else, go to them. */
const companies = new FakeCompanies();
const companiesPath = '/crm/v3/objects/companies/';
/** Requests received, by path. */
const requests = new Map<string, number>();

let status = 200;
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () =>
    setTimeout(() => {
      const path = request.url ?? '';
      requests.set(path, (requests.get(path) ?? 0) + 1);
      if (status === 200 && path.startsWith(companiesPath)) {
        const received: Received = { method: request.method ?? '', path, headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
        const answer = companies.respond(received)!;
        response.writeHead(answer.status, answer.headers);
        response.end(JSON.stringify(answer.body));
        return;
      }
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(status === 200 ? '{"status":"COMPLETE","results":[{"id":"901","new":false}]}' : '{"status":"error"}');
    }, receiverMs),
  );
});
await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

const dynamo = await startDynamoDbLocal();
const client = createDynamoDbClient(dynamo.endpoint);
await ensureTable(client, 'bench-delivery');

function leadEvent(index: number): LeadEvent {
  return {
    detailType: 'Lead Qualified',
    detail: {
      workspace: 'acme',
      entity: { type: 'user', id: `u-${index}` },
      tier: 'PQL-A',
      previousTier: null,
      score: { total: 85, engagement: 70, fit: 15 },
      signals: [{ name: 'activated', value: 1, points: 40 }, { name: 'invited_teammates', value: 3, points: 30 }, { name: 'company_size', value: 120, points: 15 }],
      route: 'sales',
      rulesetVersion: 'v1',
      evaluatedAt: new Date(Date.now() + index).toISOString(),
      idempotencyKey: `acme:user:u-${index}:none->PQL-A:${index}`,
      reasons: ['activated', 'invited 3 teammates', 'company of 120'],
      summary: 'none -> PQL-A, score 85: activated=1, invited_teammates=3, company_size=120',
      context: { traits: { email: `u-${index}@example.com`, company: 'Acme' }, firstSeen: null, lastSeen: null, topEvents: [{ name: 'Dashboard Created', count: 4 }] },
    },
  };
}

/** An account's lead event with a company trait: its HubSpot delivery reads the company's name before the upsert. */
function companyEvent(index: number): LeadEvent {
  const { detail } = leadEvent(index);
  const id = `acct-${index}`;
  return {
    detailType: 'Lead Qualified',
    detail: {
      ...detail,
      entity: { type: 'account', id },
      idempotencyKey: `acme:account:${id}:none->PQL-A:${index}`,
      context: { ...detail.context, traits: { company: 'Acme' }, members: [{ id: `u-${index}`, tier: 'PQL-A' }, { id: `u-${index}-2`, tier: null }] },
    },
  };
}

/**
 * A destination as a notifier process runs it (functions/notifier/handler.ts): one Pacer at `requestsPerSecond`, waited
 * on before each attempt and, by a HubSpot attempt, before its second request (`pace`).
 */
interface Paced {
  requestsPerSecond: number;
  destination: (pace: () => Promise<void>) => LeadDestination;
}

interface Measured {
  name: string;
  count: number;
  readUnits: number;
  writeUnits: number;
  lambdaMs: number;
}

async function measure(name: string, destination: LeadDestination | Paced, events: LeadEvent[]): Promise<Measured> {
  const capacity = new CapacityTally();
  const ledger = new DynamoDbDeliveryLedger(client, 'bench-delivery', 14, capacity);
  let lambdaMs = 0;
  let next = 0;
  const worker = async () => {
    // Each worker is one notifier process, with its own pacer.
    const pacer = 'requestsPerSecond' in destination ? new Pacer(destination.requestsPerSecond) : undefined;
    const target = 'requestsPerSecond' in destination ? destination.destination(() => pacer!.wait()) : destination;
    while (next < events.length) {
      const event = events[next++]!;
      // The handler's wait before an attempt, not timed: at low traffic its slot is free (see the header).
      await pacer?.wait();
      const started = performance.now();
      const now = new Date();
      await deliverLeadEvent(event, { destination: target, ledger }, { receives: 1, queuedAt: now, now });
      lambdaMs += performance.now() - started;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { name, count: events.length, readUnits: capacity.readUnits, writeUnits: capacity.writeUnits, lambdaMs };
}

/** Dollars per million deliveries: DynamoDB measured, Lambda measured time, SQS FIFO send + receive + delete per message. */
function perMillion(measured: Measured) {
  const perDelivery = {
    dynamodb: (measured.readUnits * price.readUnit + measured.writeUnits * price.writeUnit) / measured.count,
    sqs: 3 * price.fifoRequest,
    lambda: price.lambdaRequest + (measured.lambdaMs / measured.count / 1000) * notifierGb * price.lambdaGbSecond,
  };
  return { ...perDelivery, total: perDelivery.dynamodb + perDelivery.sqs + perDelivery.lambda };
}

const webhook = webhookDestination('sales-webhook-1', `${base}/hook`, staticSecret(generateWebhookSecret()));
const crm = hubspotDestination('crm-hubspot-1', staticSecret('pat-bench'), 'pql_radar_account_id', { baseUrl: base });
const events = Array.from({ length: deliveries }, (_, index) => leadEvent(index));
const crmEvents = events.slice(0, Math.max(1, Math.floor(deliveries / 4)));
/** The notifier's default pace for HubSpot. */
const hubspotRequestsPerSecond = crmSchema.parse({ type: 'hubspot', tokenSecret: 'pql-radar/hubspot' }).requestsPerSecond;
const pacedCrm: Paced = {
  requestsPerSecond: hubspotRequestsPerSecond,
  destination: (pace) => hubspotDestination('crm-hubspot-1', staticSecret('pat-bench'), 'pql_radar_account_id', { baseUrl: base, pace }),
};
const companyEvents = crmEvents.map((_, index) => companyEvent(index));
// Every other company is in HubSpot already, named by sales.
for (const [index, event] of companyEvents.entries()) if (index % 2 === 0) companies.add(event.detail.entity.id, { name: `Acme (sales) ${index}` });

const results = [
  await measure('webhook, first delivery', webhook, events),
  await measure('webhook, redelivery (skipped)', webhook, events),
  await measure('CRM (HubSpot), first sync', crm, crmEvents),
  await measure('HubSpot company, name read', pacedCrm, companyEvents),
];
status = 503;
const failed = await measure('webhook, failed attempt (503)', webhook, events.map((event, index) => leadEvent(index + deliveries * 10)).slice(0, Math.max(1, Math.floor(deliveries / 4))));
results.push(failed);

const dollars = (value: number) => `$${value.toFixed(value < 0.01 ? 4 : 2)}`;
console.log(`\nbench:delivery: ${deliveries} deliveries, receiver answering in ${receiverMs} ms, ${concurrency} at a time (DynamoDB Local units)\n`);
console.log('case                              RCU/delivery  WCU/delivery  Lambda ms  $/M DynamoDB  $/M SQS  $/M Lambda  $/M total');
for (const measured of results) {
  const cost = perMillion(measured);
  console.log(
    [
      measured.name.padEnd(32),
      count(Number((measured.readUnits / measured.count).toFixed(2))).padStart(12),
      count(Number((measured.writeUnits / measured.count).toFixed(2))).padStart(13),
      count(Number((measured.lambdaMs / measured.count).toFixed(0))).padStart(10),
      dollars(cost.dynamodb * 1e6).padStart(13),
      dollars(cost.sqs * 1e6).padStart(8),
      dollars(cost.lambda * 1e6).padStart(11),
      dollars(cost.total * 1e6).padStart(10),
    ].join('  '),
  );
}
console.log(`(+ ${dollars(price.eventBridgeEvent * 1e6)}/M lead events for PutEvents, paid once by the evaluator whatever the number of destinations)`);
// What the company case sent, and what HubSpot holds after it: the read's effect, checked rather than assumed.
const reads = requests.get(`${companiesPath}batch/read`) ?? 0;
const upserts = requests.get(`${companiesPath}batch/upsert`) ?? 0;
const kept = companyEvents.filter((event, index) => companies.records.get(event.detail.entity.id)?.properties.name === (index % 2 === 0 ? `Acme (sales) ${index}` : 'Acme')).length;
console.log(
  `(HubSpot company: ${count(reads)} batch reads and ${count(upserts)} batch upserts for ${count(companyEvents.length)} deliveries, paced at ${hubspotRequestsPerSecond} requests/s; ` +
    `${count(kept)} of ${count(companyEvents.length)} companies named as expected: sales' name kept, new ones named after the trait)`,
);

// A day of outage: the head of the destination's FIFO queue is retried on the default schedule until the window
// passes. The messages behind it received in its batch (at most 9: batches of 10) are made visible again at each
// attempt, in one ChangeMessageVisibilityBatch request; the others wait without cost. Averaged over 1,000 schedules (the backoff
// is jittered).
let attempts = 0;
const schedules = 1000;
for (let run = 0; run < schedules; run++) {
  const queuedAt = new Date(0);
  let now = queuedAt;
  for (let attempt = 1; ; attempt++) {
    attempts++;
    const decision = nextStep({ outcome: 'retryable', status: 503, latencyMs: 0 }, { attempt, receives: attempt, queuedAt, now }, defaultDeliveryPolicy);
    if (decision.action !== 'retry') break;
    now = new Date(now.getTime() + decision.delayMs);
  }
}
const perDay = attempts / schedules;
const failedCost = perMillion(failed);
// Each attempt: a receive and a ChangeMessageVisibility instead of a delete, one invocation, the measured units and time.
const attemptCost = failedCost.dynamodb + 2 * price.fifoRequest + failedCost.lambda;
/** The request releasing the messages behind the head in its batch at each attempt (functions/notifier/handler.ts). */
const releaseRequests = 1;
console.log(`\na day of outage (receiver down 24 h, default policy): ${count(Number((perDay).toFixed(1)))} attempts at the head of each destination's queue`);
console.log(
  `  costs ${dollars(perDay * attemptCost)} per destination per day with no lead waiting behind it, ` +
    `${dollars(perDay * (attemptCost + releaseRequests * price.fifoRequest))} with any (each attempt releases those of its batch in one request), whatever their number`,
);
console.log(`  (each failed attempt: ${count(Number((failed.readUnits / failed.count).toFixed(2)))} RCU, ${count(Number((failed.writeUnits / failed.count).toFixed(2)))} WCU, ${count(Number((failed.lambdaMs / failed.count).toFixed(0)))} ms)`);

receiver.closeAllConnections();
receiver.close();
client.destroy();
await dynamo.stop();
