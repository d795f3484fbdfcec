import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError, type Command } from 'commander';
import { DynamoDbDestinationRegistry } from '../adapters/dynamodb/destination-registry';
import { DynamoDbEvaluationStore } from '../adapters/dynamodb/evaluation-store';
import { readShardCount, type ShardCount } from '../adapters/dynamodb/shard-count';
import { EventBridgePublisher } from '../adapters/eventbridge/publisher';
import { dayMs } from '../core/days';
import { allShards, runEvaluator } from '../core/evaluate-leads';
import { createDynamoDbClient } from '../local/dynamodb-local';
import { DynamoDbChangeCapture } from '../adapters/dynamodb/change-capture';
import { LocalChangeStream } from '../local/change-stream';
import { LocalDeliveryWorker } from '../local/delivery-worker';
import { evaluateWebhookId, failureLines, localDestinations, localSinks, newerStatesLine, runPrinter, sinkOptions, UndeliveredReport, type SinkOptions } from './lead-output';
import { defaultRulesFile, duration, isoDateOrTime, parsedOption, readRules, tableOptions } from './options';
import { integer } from './integer-option';
import { counted } from '../analysis/format';
import { deployedListSettleMs } from '../shared/settings';

type EvaluateOptions = SinkOptions & { once?: boolean; rules: string; rulesChange?: boolean; shards?: number; evaluateEvery: number; eventBus?: string; at?: string };

/** `pql-radar evaluate`: the evaluator's runs, from this machine, against the configured DynamoDB. */
export function addEvaluateCommand(program: Command) {
  const evaluate = program
    .command('evaluate')
    .description('run the evaluator against the configured DynamoDB and print what changed')
    .option('--once', 'one pass over every shard, then exit (default: keep running every --evaluate-every)')
    .option('--rules <file>', 'PQL rules file (YAML or JSON)', defaultRulesFile)
    .option('--rules-change', "locally: evaluate the table's leads under --rules though they were evaluated under other rules (a rules change: every lead is judged again)")
    .option('--shards <n>', 'shards of the dirty index; the table records them (its evaluator or `pql-radar dev` does), and a different count is refused', integer('--shards', 1))
    .addOption(parsedOption('--evaluate-every <duration>', 'pause between passes without --once', duration('--evaluate-every'), '10s'))
    .option('--event-bus <name>', 'also publish lead events to this EventBridge bus')
    .option('--at <time>', 'evaluate as of this time instead of now: an ISO date or +Nd (e.g. +21d to see inactive leads drop out); local data only');
  sinkOptions(evaluate).action(async (options: EvaluateOptions) => {
    const { table, endpoint } = tableOptions(program);
    const local = Boolean(endpoint ?? process.env['AWS_ENDPOINT_URL_DYNAMODB']);
    if (!local && !options.eventBus) {
      // Against a deployed table, a pass publishes transitions only here and marks them delivered: subscribers would miss them.
      throw new InvalidArgumentError('against AWS, pass --event-bus <name> so lead events reach your subscribers (or --endpoint for a local DynamoDB)');
    }
    if (options.at !== undefined && !local) throw new InvalidArgumentError('--at moves the lead state through time: use it on a local DynamoDB only');
    const at = options.at === undefined ? undefined : parseAt(options.at);
    const ruleset = readRules(options.rules);
    // Before the table is read: a webhook that cannot be delivered to is refused at start.
    const destinations = localDestinations(evaluate, options, evaluateWebhookId);
    const client = createDynamoDbClient(endpoint);
    const { shards, highest } = await shardCountOf(client, table, options.shards);
    // A deployed table's change lists are written by change capture as this runs: read only those settled.
    const store = new DynamoDbEvaluationStore({ client, tableName: table, dirtyShards: shards, ...(local ? {} : { listSettleMs: deployedListSettleMs }) });
    if (options.rulesChange && !local) throw new InvalidArgumentError('--rules-change is for a local DynamoDB: a deployment changes its rules with cdk deploy');
    if (options.eventBus || !options.rulesChange) await refuseOtherRules(store, allShards(highest), ruleset.version, options.rules, options.eventBus ? 'deployed' : 'local');
    const bus = options.eventBus ? [new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: options.eventBus })] : [];
    if (local) {
      // The running `npm start`'s webhooks are its own to deliver: this pass's lead events go to this command's sinks.
      const running = (await new DynamoDbDestinationRegistry(client, table).list()).filter((destination) => destination.transport === 'table').map((destination) => destination.id);
      if (running.length > 0) {
        const own = destinations.length > 0 ? '--webhook and ' : '';
        const hint = destinations.length > 0 ? '' : '; --webhook URL --webhook-secret S delivers them to a receiver';
        console.error(`note: this pass's lead events go to ${own}this command's output${options.leadsFile ? ' and --leads-file' : ''} only, not to the local runtime's webhooks (${running.join(', ')})${hint}`);
      }
    }
    // Webhooks are delivered through queues as `dev` delivers them, each its own: what a pass cannot deliver stays
    // queued for a later pass given the same webhook, which the delivery commands (dlq list|redrive) find recorded.
    const deliveries = destinations.length > 0 ? new LocalDeliveryWorker({ client, tableName: table, destinations }) : undefined;
    await deliveries?.register('evaluate');
    const publisher = localSinks(options, [...bus, ...(deliveries ? [deliveries] : [])]);
    // Locally nothing reads the table's stream but this (or `dev`): its changes are marked before each pass, from where
    // the last pass (or `dev`) left it. Deployed, the evaluator reads the stream itself.
    const changeStream = local ? new LocalChangeStream(client, table, new DynamoDbChangeCapture(client, table, shards), { positionInTable: true }) : undefined;
    const undelivered = deliveries
      ? new UndeliveredReport(deliveries, destinations, options.webhook, (url) => (options.once ? `a later \`pql-radar evaluate --webhook ${url}\` retries them` : 'the next passes of this command retry them'))
      : undefined;
    const printRun = runPrinter();
    for (;;) {
      await changeStream?.drain();
      // Shards of a higher count the table had before too: what was left there is evaluated and published.
      const summary = await runEvaluator({ store, publisher, ruleset, shards: allShards(highest), now: at ?? new Date(), deadline: Number.POSITIVE_INFINITY });
      const drained = (await deliveries?.drain()) ?? [];
      if (options.once) {
        console.log(`evaluated ${counted(summary.evaluated, 'entity', 'entities')}, ${counted(summary.transitions.length, 'transition')}, ${counted(summary.published, 'lead event')} published`);
        if (summary.newerStates > 0) console.log(newerStatesLine(summary.newerStates));
        for (const line of failureLines(summary.failed)) console.error(line);
        if (summary.unpublished.length > 0 || summary.failed.length > 0) process.exitCode = 1;
      } else {
        printRun(summary);
      }
      const problems = (await undelivered?.lines(drained)) ?? [];
      for (const problem of problems) console.error(`pql-radar: ${problem}`);
      // A running command goes on: its next passes retry what waits, and a dead letter waits for `dlq redrive`.
      if (options.once) {
        if (problems.length > 0 || drained.some((result) => result.failed)) process.exitCode = 1;
        changeStream?.stop();
        return;
      }
      await new Promise((done) => setTimeout(done, options.evaluateEvery));
    }
  });
}

/**
 * The shard count the table records. It is never assumed: a count below the deployment's would skip the changed
 * entities of the other shards without a word, and mark accounts in shards the deployed evaluator does not read.
 */
export async function shardCountOf(client: DynamoDBClient, table: string, requested: number | undefined): Promise<ShardCount> {
  const recorded = await readShardCount(client, table);
  if (recorded === undefined) {
    throw new InvalidArgumentError(
      `table ${table} records no shard count yet: its deployed evaluator records it on its first run, \`pql-radar dev\` when it starts`,
    );
  }
  if (requested !== undefined && requested !== recorded.shards) {
    throw new InvalidArgumentError(`--shards ${requested}: table ${table} has ${recorded.shards} shards (recorded by its evaluator); leave --shards out`);
  }
  return recorded;
}

function parseAt(value: string): Date {
  const offset = /^\+(\d+)d$/.exec(value);
  const at = offset ? new Date(Date.now() + Number(offset[1]) * dayMs) : isoDateOrTime(value);
  if (at === undefined) throw new InvalidArgumentError(`--at ${value}: expected an ISO 8601 date or time (2026-11-30, 2026-11-30T09:00:00Z) or +Nd (days from now)`);
  return at;
}

/**
 * A pass with rules other than those the table's leads were evaluated with re-evaluates every lead under them. Against
 * a deployment (--event-bus) it would publish what moved, and the deployed evaluator would then move them back,
 * publishing again: two waves of false alerts. Locally, a running `npm start` would move them back just the same, and
 * a tier left under the other rules may keep their cooldown: done only when asked (--rules-change). Refused, naming the
 * rules the table records.
 */
async function refuseOtherRules(store: DynamoDbEvaluationStore, shards: string[], version: string, rulesFile: string, where: 'deployed' | 'local'): Promise<void> {
  for (const shard of shards) {
    const progress = await store.rulesetProgress(shard);
    if (progress.version === undefined || progress.version === version || progress.migrating?.version === version) continue;
    throw new InvalidArgumentError(
      where === 'deployed'
        ? `--rules ${rulesFile} is rules version ${version}, but the table's leads were evaluated with version ${progress.version} (its evaluator's): ` +
            'publishing with other rules would re-evaluate every lead and notify what moved, and the deployed evaluator would move them back; ' +
            'give --rules the rules file your deployment config names (a new version goes live with cdk deploy)'
        : `--rules ${rulesFile} is rules version ${version}, but the table's leads were evaluated with version ${progress.version} (npm start's rules, or an earlier pass's): ` +
            'this pass would judge every lead again under it, and a running npm start would judge them back; give --rules the file npm start runs with, ' +
            'or --rules-change to judge the leads under it (with npm start stopped, or started with that file)',
    );
  }
}
