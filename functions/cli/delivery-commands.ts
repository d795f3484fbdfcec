import { EventBridgeClient, PutEventsCommand, StartReplayCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueAttributesCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { InvalidArgumentError, type Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { DynamoDbDeliveryLedger } from '../adapters/dynamodb/delivery-ledger';
import { DynamoDbDestinationRegistry, type DestinationRecord } from '../adapters/dynamodb/destination-registry';
import { TableDeliveryQueue } from '../adapters/dynamodb/table-delivery-queue';
import { testLeadEvent, type DeliveryLogEntry } from '../core/delivery';
import { dayMs } from '../core/days';
import { leadEventSource } from '../core/lead-event';
import { defaultDeliveryLogDays } from '../shared/settings';
import { age, isoDateOrTime, parsedOption, printUpToLimit, storage } from './options';
import { integer } from './integer-option';

/**
 * `pql-radar deliveries list`, `destinations list|test|replay` and `dlq list|redrive`: the delivery log and the
 * destinations of a deployment (its table records them) or of the local runtime, by the same commands.
 */

const isoTime = (name: string) => (value: string) => {
  const at = isoDateOrTime(value);
  if (at === undefined) throw new InvalidArgumentError(`${name} must be an ISO 8601 date or time, e.g. 2026-11-30 or 2026-11-30T09:00:00Z`);
  return at;
};

function formatEntry(entry: DeliveryLogEntry): string {
  const answer = entry.status !== undefined ? `HTTP ${entry.status}` : (entry.error ?? '');
  const parts = [
    entry.at,
    entry.destination,
    `${entry.outcome}${entry.next === 'done' ? '' : ` -> ${entry.next}`}`,
    `${entry.detailType} ${entry.entity.type} ${entry.entity.id}`,
    `attempt ${entry.attempt}`,
    ...(answer ? [answer] : []),
    ...(entry.latencyMs !== undefined ? [`${entry.latencyMs} ms`] : []),
    `key ${entry.idempotencyKey}`,
    ...(entry.test ? ['TEST'] : []),
    ...(entry.status !== undefined && entry.error ? [entry.error] : []),
    ...(entry.excerpt ? [`"${entry.excerpt}"`] : []),
    ...(entry.warning ? [`warning: ${entry.warning}`] : []),
  ];
  return parts.join('  ');
}

/** Who delivers a destination's lead events, by its transport. */
const transports: Record<DestinationRecord['transport'], string> = {
  sqs: 'SQS/EventBridge',
  table: 'the local runtime',
  evaluate: '`pql-radar evaluate` given its --webhook',
};

export function addDeliveryCommands(program: Command) {
  const registry = () => {
    const { client, tableName } = storage(program);
    return new DynamoDbDestinationRegistry(client, tableName);
  };
  const find = async (id: string): Promise<DestinationRecord> => {
    const all = await registry().list();
    const found = all.find((record) => record.id === id);
    if (!found) throw new InvalidArgumentError(`no destination ${id}: the table records ${all.map((record) => record.id).join(', ') || 'none (deploy, or start `pql-radar dev --webhook URL`)'}`);
    return found;
  };

  program
    .command('deliveries')
    .description('the delivery log: every attempt at a destination, with its status, latency and a short excerpt of the answer')
    .command('list')
    .description('list delivery attempts, newest first')
    .option('--lead <id>', 'only the deliveries of this lead (user or account id)')
    .option('--failed', 'only attempts that did not deliver')
    .addOption(parsedOption('--since <age>', 'how far back, e.g. 7d, 12h or 30m, up to what the log keeps (delivery.logDays)', age('--since'), `${defaultDeliveryLogDays}d`))
    .option('--limit <n>', 'at most this many', integer('--limit', 1), 100)
    .option('--json', 'one JSON object per line')
    .action(async (options: { lead?: string; failed?: boolean; since: number; limit: number; json?: boolean }) => {
      const { client, tableName } = storage(program);
      const until = new Date();
      const ledger = new DynamoDbDeliveryLedger(client, tableName, defaultDeliveryLogDays);
      const shown = await printUpToLimit(
        (limit) =>
          ledger.list({
            since: new Date(until.getTime() - options.since),
            until,
            limit,
            ...(options.lead !== undefined ? { lead: options.lead } : {}),
            ...(options.failed ? { failed: true } : {}),
          }),
        options.limit,
        (entry) => console.log(options.json ? JSON.stringify(entry) : formatEntry(entry)),
        'more attempts',
        '--since, --lead or --failed',
      );
      if (shown === 0 && !options.json) console.log('no deliveries');
    });

  const destinations = program.command('destinations').description('the destinations lead events are delivered to');
  destinations
    .command('list')
    .description('the destinations the table records (the deployment\'s, or the local runtime\'s webhooks)')
    .option('--json', 'one JSON object per line')
    .action(async (options: { json?: boolean }) => {
      const records = await registry().list();
      for (const record of records) console.log(options.json ? JSON.stringify(record) : `${record.id}  ${record.kind}  route ${record.route}  via ${transports[record.transport]}`);
      if (records.length === 0 && !options.json) console.log('no destinations recorded');
    });

  destinations
    .command('test')
    .argument('<route>', 'the route whose destinations get the sample (`*`: every destination of the local runtime)')
    .description('send a clearly marked sample lead (test: true, TEST in its summary) through the real path, and show what each destination answered')
    .option('--workspace <name>', 'workspace named in the sample', 'default')
    .option('--wait <seconds>', 'how long to wait for the attempts', integer('--wait'), 30)
    .action(async (route: string, options: { workspace: string; wait: number }) => {
      // An `evaluate` webhook's queue is worked only by a later pass given it: the sample would wait there till then.
      const registered = (await registry().list()).filter((record) => record.transport !== 'evaluate');
      const records = registered.filter((record) => record.route === route || record.route === '*' || route === '*');
      if (records.length === 0) throw new InvalidArgumentError(`no destination receives route ${route}`);
      const now = new Date();
      const event = testLeadEvent(route === '*' ? 'test' : route, options.workspace, now, randomUUID());
      const deployed = records.find((record) => record.transport === 'sqs' && record.eventBusName !== undefined);
      if (deployed) {
        const result = await new EventBridgeClient({}).send(
          new PutEventsCommand({ Entries: [{ EventBusName: deployed.eventBusName, Source: leadEventSource, DetailType: event.detailType, Detail: JSON.stringify(event.detail) }] }),
        );
        if (result.FailedEntryCount) throw new Error(`the bus refused the sample: ${result.Entries?.[0]?.ErrorMessage ?? 'unknown error'}`);
      }
      const { client, tableName } = storage(program);
      const queue = new TableDeliveryQueue(client, tableName);
      for (const record of records.filter((record) => record.transport === 'table')) await queue.enqueue(record.id, [event], now);
      console.log(`sent test lead ${event.detail.idempotencyKey} to ${records.map((record) => record.id).join(', ')}`);
      // A misspelt route still reaches the catch-all destinations: say so, or the typo passes for a working route.
      if (route !== '*' && records.every((record) => record.route === '*')) {
        const routes = [...new Set(registered.map((record) => record.route).filter((named) => named !== '*'))].sort();
        console.log(`note: no destination is for route ${route} itself, only those of every route (*)${routes.length > 0 ? `; the routes destinations name: ${routes.join(', ')}` : ''}`);
      }

      // Only notifier destinations log attempts; e-mail, queues and functions take the event from EventBridge.
      const logged = records.filter((record) => record.kind === 'slack' || record.kind === 'webhook' || record.kind === 'hubspot');
      const ledger = new DynamoDbDeliveryLedger(client, tableName, defaultDeliveryLogDays);
      const deadline = Date.now() + options.wait * 1000;
      let entries: DeliveryLogEntry[] = [];
      for (;;) {
        entries = (await ledger.list({ since: now, until: new Date(Date.now() + 60_000), limit: 1000 })).filter((entry) => entry.idempotencyKey === event.detail.idempotencyKey);
        const settled = new Set(entries.filter((entry) => entry.next !== 'retry').map((entry) => entry.destination));
        if (logged.every((record) => settled.has(record.id)) || Date.now() > deadline) break;
        await delay(1000);
      }
      for (const entry of entries.reverse()) console.log(formatEntry(entry));
      const delivered = new Set(entries.filter((entry) => entry.outcome === 'delivered').map((entry) => entry.destination));
      const missing = logged.filter((record) => !delivered.has(record.id)).map((record) => record.id);
      if (missing.length > 0) {
        // Delivery is in order: a destination that has not tried the sample is still on events before it, most likely
        // retrying one. Its last failure says why, where "not delivered" alone would not.
        const attempted = new Set(entries.map((entry) => entry.destination));
        const untried = missing.filter((id) => !attempted.has(id));
        const failures = untried.length > 0 ? await ledger.list({ since: new Date(now.getTime() - dayMs), until: new Date(), failed: true, limit: 1000 }) : [];
        for (const id of untried) {
          const last = failures.find((entry) => entry.destination === id);
          if (last) console.log(`${id} has not tried the sample: it is still on earlier lead events; its last failed attempt, at ${last.at}: ${last.error ?? `HTTP ${last.status ?? '?'}`}`);
        }
        console.log(`not delivered (yet) to: ${missing.join(', ')}: see \`pql-radar deliveries list --lead pql-radar-test-lead\``);
        process.exitCode = 1;
      }
    });

  destinations
    .command('replay')
    .argument('<destination>', 'the destination id (`destinations list`)')
    .description('replay archived lead events to this one destination (its rule alone); what it already took within the log\'s days is skipped')
    .requiredOption('--from <time>', 'first event time, ISO 8601', isoTime('--from'))
    .option('--to <time>', 'last event time, ISO 8601 (default: now)', isoTime('--to'))
    .action(async (id: string, options: { from: Date; to?: Date }) => {
      const record = await find(id);
      if (!record.archiveArn || !record.ruleArn || !record.eventBusName) throw new InvalidArgumentError(`${id} is not a deployed destination: the local runtime keeps no archive`);
      // arn:<partition>:events:<region>:<account>:archive/<name>: the bus lives beside it.
      const [arnPrefix] = record.archiveArn.split(':archive/');
      const name = `${id}-${Date.now()}`.slice(0, 64);
      await new EventBridgeClient({}).send(
        new StartReplayCommand({
          ReplayName: name,
          EventSourceArn: record.archiveArn,
          EventStartTime: options.from,
          EventEndTime: options.to ?? new Date(),
          Destination: { Arn: `${arnPrefix}:event-bus/${record.eventBusName}`, FilterArns: [record.ruleArn] },
        }),
      );
      console.log(`replay ${name} started: aws events describe-replay --replay-name ${name}`);
    });

  const dlq = program.command('dlq').description('lead events a destination gave up on after its retry window');
  dlq
    .command('list')
    .description('how many lead events each destination\'s dead-letter queue holds')
    .action(async () => {
      const { client, tableName } = storage(program);
      const records = await registry().list();
      if (records.length === 0) console.log('no destinations recorded');
      for (const record of records) {
        if (record.transport !== 'sqs') {
          const letters = await new TableDeliveryQueue(client, tableName).deadLetters(record.id);
          console.log(`${record.id}  ${letters.length} dead letter(s)`);
          for (const letter of letters) console.log(`  ${letter.deadLetteredAt}  ${letter.event.detailType} ${letter.event.detail.entity.type} ${letter.event.detail.entity.id}  key ${letter.event.detail.idempotencyKey}  ${letter.reason}`);
        } else if (record.deadLetterQueueUrl) {
          const sqs = new SQSClient({});
          const waiting = async (queueUrl: string) =>
            (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes?.ApproximateNumberOfMessages ?? '?';
          console.log(`${record.id}  ${await waiting(record.deadLetterQueueUrl)} dead letter(s)  ${record.deadLetterQueueUrl}`);
          // What EventBridge could not put on the notifier's queue never reached it: `dlq redrive` cannot move it there.
          if (record.targetDeadLetterQueueUrl) {
            const unqueued = await waiting(record.targetDeadLetterQueueUrl);
            if (unqueued !== '0') console.log(`  and ${unqueued} the event bus could not queue for it  ${record.targetDeadLetterQueueUrl}: replay them from the archive (pql-radar destinations replay ${record.id} --from ...)`);
          }
        } else {
          // Every deployed destination is recorded with its queue (lib/lead-fanout.ts): a record without one was written otherwise.
          console.log(`${record.id}  no dead-letter queue recorded, so none to count`);
        }
      }
    });
  dlq
    .command('redrive')
    .argument('<destination>', 'the destination id (`destinations list`)')
    .description('send the destination\'s dead letters back to its delivery queue, with a fresh retry window')
    .action(async (id: string) => {
      const record = await find(id);
      if (record.transport !== 'sqs') {
        const { client, tableName } = storage(program);
        const count = await new TableDeliveryQueue(client, tableName).redrive(id, new Date());
        const deliverer = record.transport === 'table' ? 'the running `pql-radar dev` delivers them' : 'the next `pql-radar evaluate` given its --webhook delivers them';
        console.log(`${count} dead letter(s) of ${id} queued again: ${deliverer}, after the lead events delivered meanwhile (a lead's events are in order by detail.evaluatedAt, not by arrival)`);
        return;
      }
      if (!record.queueArn || !record.deadLetterQueueArn) {
        // E-mail, sqs and lambda targets: EventBridge's dead-letter queue has no source queue SQS could move back to.
        throw new InvalidArgumentError(`${id} is delivered by EventBridge directly: replay it from the archive instead (pql-radar destinations replay ${id} --from ...)`);
      }
      const { TaskHandle } = await new SQSClient({}).send(new StartMessageMoveTaskCommand({ SourceArn: record.deadLetterQueueArn, DestinationArn: record.queueArn }));
      console.log(`redrive of ${id} started (task ${TaskHandle}): its notifier delivers the events again, skipping any already delivered, after the lead events delivered meanwhile (a lead's events are in order by detail.evaluatedAt, not by arrival)`);
    });
}
