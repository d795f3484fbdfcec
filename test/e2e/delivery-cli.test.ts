import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { staticSecret, webhookDestination } from '../../functions/adapters/destinations';
import { defaultDeliveryPolicy } from '../../functions/core/delivery';
import { generateWebhookSecret } from '../../functions/core/webhook-signature';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { cli } from '../support/cli';
import { sampleLeadEvent } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';
import { verifiedByLibrary } from '../support/webhooks';

interface WebhookScenario {
  dev: DevRuntime;
  /** `pql-radar` against the runtime's table. */
  run: (...args: string[]) => ReturnType<typeof cli>;
  close: () => Promise<void>;
}

/**
 * `npm start`'s runtime with one webhook destination, `destination`, to a local receiver whose answer (an HTTP status)
 * `answer` gives for each request; retried with short delays for `retryWindowMs`.
 */
async function webhookScenario(destination: string, secret: string, retryWindowMs: number, answer: (headers: Record<string, string>, body: string) => number): Promise<WebhookScenario> {
  const tableName = `delivery-cli-${randomUUID()}`;
  const endpoint = inject('dynamoEndpoint');
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = answer(request.headers as Record<string, string>, Buffer.concat(chunks).toString('utf8'));
      response.writeHead(status).end(status === 200 ? 'ok' : 'not now');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const dev = await startDev({
    port: 0,
    endpoint,
    tableName,
    evaluateEveryMs: 0,
    deliverEveryMs: 100,
    destinations: [webhookDestination(destination, `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, staticSecret(secret))],
    deliveryPolicy: { ...defaultDeliveryPolicy, baseDelayMs: 10, maxDelayMs: 50, retryWindowMs },
  });
  return {
    dev,
    run: (...args) => cli('--endpoint', endpoint, '--table', tableName, ...args),
    close: async () => {
      await dev.stop();
      receiver.closeAllConnections();
      await new Promise((done) => receiver.close(done));
    },
  };
}

interface EvaluateWebhook {
  url: string;
  /** The webhook-id of each request, in order. */
  received: string[];
  /** Rules under which the user of one "Dashboard Created" qualifies. */
  rules: string;
  close: () => Promise<void>;
}

/** A receiver for `evaluate --webhook` whose answer (an HTTP status) `status` gives for each request, and its rules. */
async function evaluateWebhook(status: () => number): Promise<EvaluateWebhook> {
  const rules = join(tmpdir(), `evaluate-webhook-${randomUUID()}.rules.yaml`);
  writeFileSync(rules, 'version: 1\nsignals:\n  dashboards: { event: Dashboard Created, window: 30d, points: 50 }\ntiers:\n  - { name: PQL-A, min_score: 50, route: sales }\n');
  const received: string[] = [];
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received.push(String(request.headers['webhook-id']));
      response.writeHead(status()).end();
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/own`,
    received,
    rules,
    close: async () => {
      receiver.closeAllConnections();
      await new Promise((done) => receiver.close(done));
    },
  };
}

/**
 * The delivery commands as an operator runs them against `npm start`: `destinations list|test`, `deliveries list`,
 * `dlq list|redrive`, on the local runtime's webhooks.
 */
/** What `evaluate --webhook` says beside a local runtime whose own webhook is local-webhook-1. */
const runtimeNote = "note: this pass's lead events go to --webhook and this command's output only, not to the local runtime's webhooks (local-webhook-1)\n";

describe('delivery commands against the local runtime', () => {
  const secret = generateWebhookSecret();
  const received: { key: string; body: string; headers: Record<string, string>; at: number }[] = [];
  let status = 200;
  let scenario: WebhookScenario;
  let dev: DevRuntime;
  const run = (...args: string[]) => scenario.run(...args);

  beforeAll(async () => {
    // A short window, so a failing receiver fills the dead letters within the test.
    scenario = await webhookScenario('local-webhook-1', secret, 1500, (headers, body) => {
      received.push({ key: headers['webhook-id']!, body, headers, at: Date.now() });
      return status;
    });
    dev = scenario.dev;
  });

  afterAll(() => scenario?.close());

  it('lists the destination, sends a marked test lead through the worker, and shows the attempt', async () => {
    const listed = await run('destinations', 'list');
    expect(listed.stdout).toContain('local-webhook-1  webhook  route *  via the local runtime');

    const tested = await run('destinations', 'test', '*', '--wait', '20');
    expect(tested.stderr).toBe('');
    expect(tested.code).toBe(0);
    expect(tested.stdout).toMatch(/sent test lead test-[0-9a-f-]+ to local-webhook-1/);
    expect(tested.stdout).toMatch(/local-webhook-1 {2}delivered {2}Lead Qualified user pql-radar-test-lead {2}attempt 1 {2}HTTP 200 .* TEST/);
    const sample = received.find((request) => request.key.startsWith('test-'))!;
    expect(verifiedByLibrary(secret, sample.body, sample.headers, sample.at)).toMatchObject({ Detail: { test: true, summary: expect.stringMatching(/^TEST/) } });
    expect(tested.stdout).not.toContain('note:');

    // A route no destination names (a typo) still reaches the catch-all one, and the command says so.
    const misspelt = await run('destinations', 'test', 'salse', '--wait', '20');
    expect(misspelt.code).toBe(0);
    expect(misspelt.stdout).toContain('note: no destination is for route salse itself, only those of every route (*)\n');
  });

  it('lists deliveries of one lead and the failed ones, dead-letters after the window and redrives', async () => {
    status = 503;
    const lead = sampleLeadEvent({ entity: { type: 'user', id: 'u-cli' }, evaluatedAt: new Date().toISOString() });
    await dev.deliveries.publish([lead]);
    // The worker retries until the 1.5 s window has passed, then moves the event to the dead letters.
    const deadline = Date.now() + 20_000;
    while ((await dev.deliveries.queue.deadLetters('local-webhook-1')).length === 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));

    const failed = await run('deliveries', 'list', '--failed', '--lead', 'u-cli');
    expect(failed.code).toBe(0);
    const lines = failed.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/local-webhook-1 {2}retryable -> dead-letter {2}Lead Qualified user u-cli .* HTTP 503 /);
    expect(lines.every((line) => line.includes('u-cli') && line.includes('HTTP 503'))).toBe(true);
    expect(failed.stderr).toBe('');
    // Cut at --limit, which it says, on stderr.
    const newest = await run('deliveries', 'list', '--failed', '--lead', 'u-cli', '--limit', '1');
    expect(newest.stdout).toBe(`${lines[0]}\n`);
    expect(newest.stderr).toBe('more attempts than the 1 shown (--limit): a higher --limit shows them; --since, --lead or --failed narrow the list\n');

    const dlq = await run('dlq', 'list');
    expect(dlq.stdout).toContain('local-webhook-1  1 dead letter(s)');
    expect(dlq.stdout).toMatch(/user u-cli {2}key .* HTTP 503 after \d+ attempt\(s\)/);

    status = 200;
    const redriven = await run('dlq', 'redrive', 'local-webhook-1');
    expect(redriven.stdout).toContain('1 dead letter(s) of local-webhook-1 queued again');
    while (!received.some((request) => request.key === lead.detail.idempotencyKey && request.body.includes('u-cli')) && Date.now() < deadline + 10_000) {
      await new Promise((done) => setTimeout(done, 100));
    }
    const json = await run('deliveries', 'list', '--lead', 'u-cli', '--json');
    const entries = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as { outcome: string; attempt: number });
    // The redriven event's attempt follows those that failed before it was dead-lettered: the ledger counts them by key.
    expect(entries[0]).toMatchObject({ outcome: 'delivered', attempt: entries.length });
    expect(entries.length).toBeGreaterThanOrEqual(3);
    expect(entries.filter((entry) => entry.outcome === 'delivered')).toHaveLength(1);

    const unknown = await run('dlq', 'redrive', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no destination nope: the table records local-webhook-1');
  });
});

describe('destinations test against a destination that keeps failing', () => {
  let scenario: WebhookScenario;
  const run = (...args: string[]) => scenario.run(...args);

  // Retried for a minute: the sample waits behind the lead event all through the test.
  beforeAll(async () => (scenario = await webhookScenario('down-webhook', generateWebhookSecret(), 60_000, () => 503)));
  afterAll(() => scenario?.close());

  it('says why the sample was not tried: the destination is still retrying an earlier lead event, and how that failed', async () => {
    await scenario.dev.deliveries.publish([sampleLeadEvent({ entity: { type: 'user', id: 'u-waiting' }, evaluatedAt: new Date().toISOString() })]);
    const deadline = Date.now() + 20_000;
    while ((await run('deliveries', 'list', '--failed')).stdout.trim() === '' && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));

    const tested = await run('destinations', 'test', '*', '--wait', '1');
    expect(tested.code).toBe(1);
    expect(tested.stdout).toMatch(/^down-webhook has not tried the sample: it is still on earlier lead events; its last failed attempt, at \S+: HTTP 503$/m);
    expect(tested.stdout).toContain('not delivered (yet) to: down-webhook');
  }, 60_000);

  it("says that `evaluate --once` does not deliver to the running runtime's webhooks", async () => {
    const evaluated = await run('evaluate', '--once');
    expect(evaluated.code).toBe(0);
    expect(evaluated.stderr).toContain("note: this pass's lead events go to this command's output only, not to the local runtime's webhooks (down-webhook)");
  }, 60_000);
});

describe('evaluate --once with a webhook of its own, beside the local runtime and its webhook', () => {
  const ownSecret = generateWebhookSecret();
  const atRuntime: string[] = [];
  let ownStatus = 503;
  let scenario: WebhookScenario;
  let own: EvaluateWebhook;
  const run = (...args: string[]) => scenario.run(...args);
  const evaluate = () => run('evaluate', '--once', '--rules', own.rules, '--webhook', own.url, '--webhook-secret', ownSecret);

  beforeAll(async () => {
    scenario = await webhookScenario('local-webhook-1', generateWebhookSecret(), 60_000, (headers) => {
      atRuntime.push(headers['webhook-id']!);
      return 200;
    });
    own = await evaluateWebhook(() => ownStatus);
    await sendBatch(scenario.dev, [{ type: 'track', userId: 'u-own', event: 'Dashboard Created', messageId: 'own-1' }]);
  });

  afterAll(async () => {
    await scenario?.close();
    await own?.close();
  });

  it("queues what its webhook did not take under the webhook's own id, retries it there, says so and exits 1", async () => {
    const failed = await evaluate();
    expect(failed.stdout).toContain('LEAD QUALIFIED  user u-own');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(runtimeNote);
    expect(own.received).toHaveLength(1);
    const [key] = own.received;
    const destinations = (await run('destinations', 'list', '--json')).stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string; transport: string });
    const id = destinations.find((destination) => destination.transport === 'evaluate')?.id;
    expect(id).toMatch(/^evaluate-webhook-[0-9a-f]{12}$/);
    expect(failed.stderr).toContain(`pql-radar: 1 lead event(s) not delivered to --webhook ${own.url} (${id}) (HTTP 503), queued for retry: a later \`pql-radar evaluate --webhook ${own.url}\` retries them`);
    // Not in the runtime's queue: its worker would have delivered it to the runtime's webhook.
    expect(await scenario.dev.deliveries.queue.head('local-webhook-1')).toBeUndefined();
    const queued = await scenario.dev.deliveries.queue.head(id!);
    expect(queued?.event.detail.idempotencyKey).toBe(key);

    // The next pass given the same webhook retries it, once its backoff is over; a refusal dead-letters it.
    await new Promise((done) => setTimeout(done, Date.parse(queued!.visibleAt) - Date.now() + 50));
    ownStatus = 400;
    const refused = await evaluate();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`pql-radar: 1 lead event(s) dead-lettered for --webhook ${own.url} (${id}): HTTP 400: the destination refused it, a retry would not change that; \`pql-radar dlq redrive ${id}\` queues them again`);
    expect((await run('dlq', 'list')).stdout).toContain(`${id}  1 dead letter(s)`);

    ownStatus = 200;
    expect((await run('dlq', 'redrive', id!)).stdout).toContain(`1 dead letter(s) of ${id} queued again: the next \`pql-radar evaluate\` given its --webhook delivers them`);
    const delivered = await evaluate();
    expect(delivered.stderr).toBe(runtimeNote);
    expect(delivered.code).toBe(0);
    expect(own.received).toEqual([key, key, key]);
    // The runtime's webhook never had it.
    expect(atRuntime).not.toContain(key);
    // A start of the runtime records its webhooks again, and leaves the pass's, whose dead letters dlq list shows.
    await scenario.dev.deliveries.register('table');
    expect((await run('destinations', 'list')).stdout).toContain(`${id}  webhook  route *  via \`pql-radar evaluate\` given its --webhook`);
  }, 60_000);
});

describe('evaluate without --once, with a webhook that fails', () => {
  const ownSecret = generateWebhookSecret();
  let ownStatus = 503;
  let scenario: WebhookScenario;
  let own: EvaluateWebhook;
  let running: ChildProcess | undefined;
  let stderr = '';

  beforeAll(async () => {
    scenario = await webhookScenario('local-webhook-1', generateWebhookSecret(), 60_000, () => 200);
    own = await evaluateWebhook(() => ownStatus);
    await sendBatch(scenario.dev, [{ type: 'track', userId: 'u-running', event: 'Dashboard Created', messageId: 'running-1' }]);
  });

  afterAll(async () => {
    if (running && running.exitCode === null) {
      const exited = new Promise((done) => running!.once('exit', done));
      running.kill();
      await exited;
    }
    await scenario?.close();
    await own?.close();
  });

  async function until(found: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    for (const started = Date.now(); !found(); await new Promise((done) => setTimeout(done, 50))) {
      if (Date.now() - started > timeoutMs) throw new Error(`no ${what} within ${timeoutMs} ms; stderr: ${stderr}`);
    }
  }

  it('says once what waits for a retry and why, then what was dead-lettered and how to redrive it, and keeps running', async () => {
    const { url, rules } = own;
    const args = ['--endpoint', inject('dynamoEndpoint'), '--table', scenario.dev.tableName, 'evaluate', '--rules', rules, '--webhook', url, '--webhook-secret', ownSecret, '--evaluate-every', '200ms'];
    running = spawn(process.execPath, [join(import.meta.dirname, '../../bin/pql-radar.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const waiting = /^pql-radar: 1 lead event\(s\) not delivered to --webhook \S+ \((evaluate-webhook-[0-9a-f]{12})\) \(HTTP 503\)/m;
    await until(() => waiting.test(stderr), 'line on the failed delivery');
    const id = waiting.exec(stderr)![1]!;

    // Its retry (a second or more after, backoff) is refused: the passes in between found it waiting, and said nothing.
    ownStatus = 400;
    await until(() => stderr.includes('dead-lettered'), 'line on the dead letter');
    expect(own.received).toHaveLength(2);
    expect(stderr).toBe(
      runtimeNote +
      `pql-radar: 1 lead event(s) not delivered to --webhook ${url} (${id}) (HTTP 503), queued for retry: the next passes of this command retry them; \`pql-radar deliveries list --failed\` shows the attempts\n` +
        `pql-radar: 1 lead event(s) dead-lettered for --webhook ${url} (${id}): HTTP 400: the destination refused it, a retry would not change that; \`pql-radar dlq redrive ${id}\` queues them again\n`,
    );
    await new Promise((done) => setTimeout(done, 1000));
    expect(running.exitCode).toBeNull();
  }, 60_000);
});

describe('npm start with a webhook that fails', () => {
  const secret = generateWebhookSecret();
  let status = 503;
  let receiver: EvaluateWebhook;
  let dev: ChildProcess | undefined;

  afterAll(async () => {
    if (dev && dev.exitCode === null) {
      const exited = new Promise((done) => dev!.once('exit', done));
      dev.kill('SIGINT');
      await exited;
    }
    await receiver?.close();
  });

  it('says once what waits for a retry and why, then what was dead-lettered and how to redrive it, and keeps running', async () => {
    receiver = await evaluateWebhook(() => status);
    const args = ['dev', '--port', '0', '--dynamodb-port', '0', '--rules', receiver.rules, '--webhook', receiver.url, '--webhook-secret', secret, '--evaluate-every', '200ms'];
    dev = spawn(process.execPath, [join(import.meta.dirname, '../../bin/pql-radar.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    dev.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    dev.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const until = async (found: () => boolean, what: string) => {
      for (const started = Date.now(); !found(); await new Promise((done) => setTimeout(done, 50))) {
        if (Date.now() - started > 30_000) throw new Error(`no ${what} within 30 s; stdout: ${stdout}; stderr: ${stderr}`);
      }
    };
    await until(() => stdout.includes('Ctrl-C stops everything.'), 'start');
    const url = /ingest endpoint +(http:\/\/\S+?)\/v1\//.exec(stdout)![1]!;
    const writeKey = /write key +(pqr_\S+)/.exec(stdout)![1]!;
    const sent = await fetch(`${url}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u-dev', event: 'Dashboard Created', messageId: 'dev-1' }),
    });
    expect(sent.status).toBe(200);

    const waiting = /^pql-radar: 1 lead event\(s\) not delivered to --webhook \S+ \((local-webhook-1)\) \(HTTP 503\)/m;
    await until(() => waiting.test(stderr), 'line on the failed delivery');
    // Its retry (a second or more after, backoff) is refused: the passes in between found it waiting, and said nothing.
    status = 400;
    await until(() => stderr.includes('dead-lettered'), 'line on the dead letter');
    expect(receiver.received).toHaveLength(2);
    expect(stderr).toBe(
      `pql-radar: 1 lead event(s) not delivered to --webhook ${receiver.url} (local-webhook-1) (HTTP 503), queued for retry: this runtime retries them; \`pql-radar deliveries list --failed\` shows the attempts\n` +
        `pql-radar: 1 lead event(s) dead-lettered for --webhook ${receiver.url} (local-webhook-1): HTTP 400: the destination refused it, a retry would not change that; \`pql-radar dlq redrive local-webhook-1\` queues them again\n`,
    );
    expect(dev.exitCode).toBeNull();
  }, 60_000);
});
