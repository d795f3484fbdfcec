import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { Command, InvalidArgumentError } from 'commander';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DynamoDbEvaluationStore } from '../functions/adapters/dynamodb/evaluation-store';
import { DynamoDbEventStore } from '../functions/adapters/dynamodb/event-store';
import { DynamoDbWriteKeyStore } from '../functions/adapters/dynamodb/write-key-store';
import { EventBridgePublisher } from '../functions/adapters/eventbridge/publisher';
import type { AcceptedMessage } from '../functions/core/messages';
import type { LeadPublisher } from '../functions/core/ports';
import { loadRules, type Ruleset } from '../functions/core/rules/load';
import { rulesJsonSchema } from '../functions/core/rules/schema';
import { allShards, runEvaluator, type EvaluatorRunSummary } from '../functions/core/evaluate-leads';
import { startDev } from '../functions/local/dev';
import { createDynamoDbClient } from '../functions/local/dynamodb-local';
import { ConsoleLeadSink, FanOutLeadSink, JsonlLeadSink, WebhookLeadSink } from '../functions/local/lead-sinks';
import { generateSampleStream, toJsonl } from '../functions/cli/sample-stream';

// The SDK warns on Node 20 that *future* SDK releases need Node 22; the versions pinned in package-lock.json run fine.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const program = new Command()
  .name('pql-radar')
  .description('Product-qualified leads from your own usage events, in your own AWS account.')
  .option('--table <name>', 'DynamoDB table of pql-radar', process.env['PQL_RADAR_TABLE'] ?? 'pql-radar')
  .option('--endpoint <url>', 'DynamoDB endpoint, e.g. the one `pql-radar dev` prints (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS)')
  .showHelpAfterError();

const integer = (name: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
  return parsed;
};

/** `10s`, `1m`, `500ms`: how often the evaluator runs. */
const duration = (name: string) => (value: string) => {
  const match = /^(\d+)(ms|s|m)$/.exec(value);
  if (!match) throw new InvalidArgumentError(`${name} must be a duration such as 10s, 1m or 500ms`);
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
};
const collect = (value: string, previous: string[]) => [...previous, value];

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const defaultRulesFile = resolve(projectRoot, 'examples/activation.rules.yaml');

async function readRules(path: string): Promise<Ruleset> {
  return loadRules(await readFile(path, 'utf8'), path);
}

interface SinkOptions {
  leadsFile?: string;
  webhook: string[];
  webhookSecret?: string;
}

const sinkOptions = (command: Command) =>
  command
    .option('--leads-file <file>', 'append lead events to this JSONL file (one EventBridge entry per line)')
    .option('--webhook <url>', 'POST lead events to this URL, signed (repeatable)', collect, [])
    .option('--webhook-secret <secret>', 'secret for the webhook signatures (default: PQL_RADAR_WEBHOOK_SECRET)', process.env['PQL_RADAR_WEBHOOK_SECRET']);

/** The local destinations of lead events: always the console, plus a JSONL file and webhooks when asked for. */
function localSinks(options: SinkOptions, extra: LeadPublisher[] = []): LeadPublisher {
  if (options.webhook.length > 0 && !options.webhookSecret) {
    throw new InvalidArgumentError('--webhook needs --webhook-secret (or PQL_RADAR_WEBHOOK_SECRET): receivers verify the signature with it');
  }
  return new FanOutLeadSink([
    new ConsoleLeadSink(),
    ...(options.leadsFile ? [new JsonlLeadSink(options.leadsFile)] : []),
    ...options.webhook.map((url) => new WebhookLeadSink({ url, secret: options.webhookSecret! })),
    ...extra,
  ]);
}

function printRun(summary: EvaluatorRunSummary) {
  if (summary.transitions.length === 0 && summary.unpublished.length === 0 && summary.incompleteShards.length === 0) return;
  console.log(
    `evaluator: ${summary.evaluated} evaluated, ${summary.transitions.length} transitions, ${summary.published} published` +
      (summary.unpublished.length > 0 ? `, ${summary.unpublished.length} left in the outbox for the next run` : '') +
      (summary.incompleteShards.length > 0 ? `, shards ${summary.incompleteShards.join(', ')} unfinished` : ''),
  );
}

function storage() {
  const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
  const client = createDynamoDbClient(endpoint);
  return { client, tableName: table };
}

const dev = program
  .command('dev')
  .description('run pql-radar locally: DynamoDB Local, the table, a write key, the ingest endpoint and the evaluator')
  .option('--port <port>', 'port of the ingest endpoint', integer('--port'), 3000)
  .option('--dynamodb-port <port>', 'port for DynamoDB Local, so other commands can reach it', integer('--dynamodb-port'), 8000)
  .option('--data-dir <dir>', 'keep DynamoDB Local data in this directory (default: in memory)')
  .option('--write-key <key>', 'accept this write key (default: create one and print it)')
  .option('--workspace <name>', 'workspace of the write key', 'default')
  .option('--rules <file>', 'PQL rules file (YAML or JSON)', defaultRulesFile)
  .option('--evaluate-every <duration>', 'how often the evaluator runs', duration('--evaluate-every'), 10_000);
sinkOptions(dev).action(
  async (options: SinkOptions & { port: number; dynamodbPort: number; dataDir?: string; writeKey?: string; workspace: string; rules: string; evaluateEvery: number }) => {
    const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
    const ruleset = await readRules(options.rules);
    const runtime = await startDev({
      ruleset,
      leads: localSinks(options),
      evaluateEveryMs: options.evaluateEvery,
      onEvaluation: printRun,
      port: options.port,
      dynamoDbPort: options.dynamodbPort,
      tableName: table,
      workspace: options.workspace,
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
      ...(options.writeKey !== undefined ? { writeKey: options.writeKey } : {}),
      observer: {
        onResponse: (response) =>
          console.log(`ingest ${response.status} workspace=${response.summary.workspace ?? '-'} accepted=${response.summary.accepted} rejected=${response.summary.rejected}`),
        onError: (error, requestId) => console.error(`ingest failed (request ${requestId}):`, error),
      },
    });
    const auth = Buffer.from(`${runtime.writeKey}:`).toString('base64');
    console.log(`pql-radar is running.
  ingest endpoint  ${runtime.url}/v1/{track,identify,group,page,screen,alias,batch,import}
  DynamoDB         ${runtime.endpoint} (table ${runtime.tableName}${options.dataDir ? `, data in ${options.dataDir}` : ', in memory'})
  write key        ${runtime.writeKey} (workspace ${runtime.workspace})
  rules            ${options.rules} (version ${ruleset.version}), evaluated every ${options.evaluateEvery / 1000} s
  lead events      console${options.leadsFile ? `, ${options.leadsFile}` : ''}${options.webhook.length > 0 ? `, ${options.webhook.length} webhook(s)` : ''}

Send an event:
  curl -s ${runtime.url}/v1/track -H 'Authorization: Basic ${auth}' -H 'Content-Type: application/json' \\
    -d '{"userId":"user-1","event":"Dashboard Created","properties":{"dashboards":1}}'

Replay 30 days of a realistic sample product (users qualify, change tier and drop out):
  npx pql-radar replay --url ${runtime.url} --write-key ${runtime.writeKey}

Other commands against this DynamoDB:
  npx pql-radar --endpoint ${runtime.endpoint} keys list
  npx pql-radar --endpoint ${runtime.endpoint} rejected list --workspace ${runtime.workspace}

Ctrl-C stops everything.`);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: stopping pql-radar`);
      await runtime.stop();
      process.exit(0);
    };
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  },
);

const evaluate = program
  .command('evaluate')
  .description('run the evaluator against the configured DynamoDB and print what changed')
  .option('--once', 'one pass over every shard, then exit (default: keep running every --evaluate-every)')
  .option('--rules <file>', 'PQL rules file (YAML or JSON)', defaultRulesFile)
  .option('--shards <n>', 'shards of the dirty index: the DIRTY_SHARDS of your deployment', integer('--shards'), 4)
  .option('--evaluate-every <duration>', 'pause between passes without --once', duration('--evaluate-every'), 10_000)
  .option('--event-bus <name>', 'also publish lead events to this EventBridge bus')
  .option('--at <time>', 'evaluate as of this time instead of now: an ISO date or +Nd (e.g. +21d to see inactive leads drop out); local data only');
sinkOptions(evaluate).action(async (options: SinkOptions & { once?: boolean; rules: string; shards: number; evaluateEvery: number; eventBus?: string; at?: string }) => {
  const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
  const local = Boolean(endpoint ?? process.env['AWS_ENDPOINT_URL_DYNAMODB']);
  if (!local && !options.eventBus) {
    // Against a deployed table, a pass publishes transitions only here and marks them delivered: subscribers would miss them.
    throw new InvalidArgumentError('against AWS, pass --event-bus <name> so lead events reach your subscribers (or --endpoint for a local DynamoDB)');
  }
  if (options.at !== undefined && !local) throw new InvalidArgumentError('--at moves the lead state through time: use it on a local DynamoDB only');
  const at = options.at === undefined ? undefined : parseAt(options.at);
  const ruleset = await readRules(options.rules);
  const store = new DynamoDbEvaluationStore({ client: createDynamoDbClient(endpoint), tableName: table, dirtyShards: options.shards });
  const bus = options.eventBus ? [new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: options.eventBus })] : [];
  const publisher = localSinks(options, bus);
  for (;;) {
    const summary = await runEvaluator({ store, publisher, ruleset, shards: allShards(options.shards), now: at ?? new Date(), deadline: Number.POSITIVE_INFINITY });
    if (options.once) {
      console.log(`evaluated ${summary.evaluated} entities, ${summary.transitions.length} transitions, ${summary.published} lead events published`);
      if (summary.unpublished.length > 0) process.exitCode = 1;
      return;
    }
    printRun(summary);
    await new Promise((done) => setTimeout(done, options.evaluateEvery));
  }
});

function parseAt(value: string): Date {
  const offset = /^\+(\d+)d$/.exec(value);
  const at = offset ? new Date(Date.now() + Number(offset[1]) * 86_400_000) : new Date(value);
  if (Number.isNaN(at.getTime())) throw new InvalidArgumentError(`--at ${value}: expected an ISO date or +Nd`);
  return at;
}

const rules = program.command('rules').description('check PQL rules files and print their JSON Schema');
rules
  .command('check')
  .description('validate rules files; prints every problem with its path and line, exits non-zero on any')
  .argument('<files...>', 'rules files (YAML or JSON)')
  .action(async (files: string[]) => {
    for (const file of files) {
      try {
        const ruleset = await readRules(file);
        console.log(`${file}: ok, ${Object.keys(ruleset.file.signals).length} signals, ${ruleset.file.tiers.length} tiers, version ${ruleset.version}`);
      } catch (error) {
        console.error(error instanceof Error ? error.message : String(error));
        process.exitCode = 1;
      }
    }
  });
rules
  .command('schema')
  .description('print the JSON Schema of the rules file, for editors (e.g. yaml-language-server)')
  .action(() => console.log(JSON.stringify(rulesJsonSchema(), null, 2)));

program
  .command('sample')
  .description('write a realistic sample event stream (Segment messages, JSONL) ending now')
  .option('--out <file>', 'write here instead of standard output')
  .option('--seed <n>', 'random seed', integer('--seed'), 1)
  .option('--users <n>', 'users', integer('--users'), 60)
  .option('--days <n>', 'days of history', integer('--days'), 30)
  .action(async (options: { out?: string; seed: number; users: number; days: number }) => {
    const jsonl = toJsonl(generateSampleStream({ seed: options.seed, users: options.users, days: options.days }));
    if (options.out) await writeFile(options.out, jsonl);
    else process.stdout.write(jsonl);
  });

program
  .command('replay')
  .description('send Segment messages from a JSONL file (default: a fresh sample stream) to an ingest endpoint')
  .argument('[file]', 'JSONL of Segment messages, as `pql-radar sample` writes')
  .requiredOption('--write-key <key>', 'write key of the endpoint')
  .option('--url <url>', 'ingest endpoint', 'http://127.0.0.1:3000')
  .option('--batch-size <n>', 'messages per /v1/batch request', integer('--batch-size'), 100)
  .action(async (file: string | undefined, options: { writeKey: string; url: string; batchSize: number }) => {
    const messages: unknown[] = file ? await readJsonl(file) : generateSampleStream();
    const authorization = `Basic ${Buffer.from(`${options.writeKey}:`).toString('base64')}`;
    let rejected = 0;
    for (let i = 0; i < messages.length; i += options.batchSize) {
      const response = await fetch(`${options.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ batch: messages.slice(i, i + options.batchSize) }),
      });
      const body = (await response.json()) as { rejected?: unknown[]; error?: string };
      if (!response.ok) throw new Error(`${options.url} answered ${response.status}: ${body.error ?? 'no reason given'}`);
      rejected += body.rejected?.length ?? 0;
    }
    console.log(`sent ${messages.length} messages to ${options.url}${rejected > 0 ? `, ${rejected} rejected (see \`pql-radar rejected list\`)` : ''}`);
  });

async function readJsonl(file: string): Promise<unknown[]> {
  const messages: unknown[] = [];
  let lineNumber = 0;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    lineNumber++;
    if (line.trim() === '') continue;
    try {
      messages.push(JSON.parse(line));
    } catch {
      throw new Error(`${file}:${lineNumber}: not valid JSON`);
    }
  }
  return messages;
}

interface EventSourceOptions {
  events?: string[];
  source: string;
  workspace: string;
  skipBad?: boolean;
}

/**
 * Reads the events of `backtest` and `discover` into `consume`: from JSONL files, or with `--source dynamodb` from
 * what the live table stored. Returns the reader's counts and a description of the source for messages.
 */
async function consumeEvents(options: EventSourceOptions, consume: (message: AcceptedMessage) => void) {
  const { InputError, readEvents, readEventTexts } = await import('../functions/cli/backtest-input');
  if (options.source !== 'files' && options.source !== 'dynamodb') throw new InvalidArgumentError(`--source ${options.source}: must be files or dynamodb`);
  if ((options.source === 'files') !== (options.events !== undefined)) {
    throw new InvalidArgumentError(options.source === 'files' ? '--events is required (or --source dynamodb)' : '--events and --source dynamodb exclude each other');
  }
  const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
  const skipBad = options.skipBad ?? false;
  const reader =
    options.events !== undefined
      ? readEvents(options.events, { skipBad })
      : readEventTexts(`dynamodb:${table}`, (await import('../functions/adapters/dynamodb/stored-events')).storedEventTexts(createDynamoDbClient(endpoint), table, options.workspace), { skipBad });
  try {
    for await (const message of reader) consume(message);
  } catch (error) {
    if (error instanceof InputError && error.line > 0) throw new Error(`${error.message} (--skip-bad skips such lines and counts them)`);
    throw error;
  }
  return { stats: reader.stats, source: options.events?.join(', ') ?? `table ${table}, workspace ${options.workspace}` };
}

const eventSourceOptions = (command: Command) =>
  command
    .option('--events <files...>', 'JSONL of Segment messages, the ingest format (.gz accepted), one or more files')
    .option('--source <source>', 'where events come from: files (--events) or dynamodb (the live table: --table, --endpoint, --workspace)', 'files')
    .option('--workspace <name>', 'with --source dynamodb: the workspace whose events are read', 'default');

eventSourceOptions(
  program
    .command('backtest')
    .description('replay past events through a rules file, step by step as the evaluator would have, and measure how well it predicted conversion')
    .requiredOption('--rules <file>', 'PQL rules file (YAML or JSON)'),
)
  .requiredOption('--conversions <file>', 'conversions: CSV (entity_type, entity_id, converted_at[, value]) or JSONL')
  .option('--from <day>', 'first day replayed, YYYY-MM-DD (default: the first event\'s day)')
  .option('--to <day>', 'last day replayed, YYYY-MM-DD (default: the last event\'s day)')
  .option('--step <duration>', 'time between evaluations, in days or weeks (e.g. 1d, 7d, 1w)', '1d')
  .option('--horizon <duration>', 'a qualified lead counts as converted when it converts within this long (days or weeks)', '30d')
  .option('--report <file>', 'also write the report as one self-contained HTML file')
  .option('--json', 'print the report as JSON instead of the summary tables')
  .option('--skip-bad', 'skip malformed or invalid lines (counted) instead of stopping at the first')
  .action(async (options: EventSourceOptions & { rules: string; conversions: string; from?: string; to?: string; step: string; horizon: string; report?: string; json?: boolean }) => {
    const { durationSchema } = await import('../functions/core/rules/schema');
    const { EventHistory, replay } = await import('../functions/analysis/replay');
    const { dayEnd } = await import('../functions/core/days');
    const { buildReport, formatSummary } = await import('../functions/analysis/metrics');
    const { readConversions, terminalProgress } = await import('../functions/cli/backtest-input');
    const days = (flag: string, value: string) => {
      const parsed = durationSchema.safeParse(value);
      if (!parsed.success) throw new InvalidArgumentError(`${flag} ${value}: must be a duration in days or weeks, such as 1d, 7d or 2w`);
      return parsed.data;
    };
    const day = (flag: string, value: string | undefined) => {
      if (value === undefined) return undefined;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) {
        throw new InvalidArgumentError(`${flag} ${value}: must be a day, YYYY-MM-DD`);
      }
      return value;
    };
    const stepDays = days('--step', options.step);
    const horizonDays = days('--horizon', options.horizon);
    const from = day('--from', options.from);
    const to = day('--to', options.to);
    if (from !== undefined && to !== undefined && from > to) throw new InvalidArgumentError(`--from ${from} is after --to ${to}`);

    const ruleset = await readRules(options.rules);
    const conversions = await readConversions(options.conversions);
    const history = new EventHistory(ruleset, to !== undefined ? { until: dayEnd(to) } : {});
    const { stats, source: eventsSource } = await consumeEvents(options, (message) => history.add(message));
    const { eventsRead, linesSkipped, skipped } = stats;
    if (linesSkipped > 0) console.error(`skipped ${linesSkipped.toLocaleString('en-US')} bad lines; the first: ${skipped[0]?.message ?? ''}`);
    const { firstTimestamp, lastTimestamp } = history.stats;
    if (firstTimestamp === null || lastTimestamp === null) throw new Error(`no events to replay in ${eventsSource}${to !== undefined ? ` up to ${to}` : ''}`);
    const period = { from: from ?? firstTimestamp.slice(0, 10), to: to ?? lastTimestamp.slice(0, 10) };
    if (period.from > period.to) throw new InvalidArgumentError(`--from ${period.from} is after the last event's day (${period.to})`);

    const progress = terminalProgress();
    const result = replay(history, { ...period, stepDays, onStep: (index, steps) => progress.update(`replaying: step ${index} of ${steps}`) });
    progress.done();
    const report = buildReport({
      replay: result,
      conversions,
      ruleset,
      rulesSource: options.rules,
      horizonDays,
      input: { eventsRead, linesSkipped, duplicates: history.stats.duplicates },
    });
    if (options.json) console.log(JSON.stringify(report, null, 2));
    else process.stdout.write(formatSummary(report));
    if (options.report) {
      const { renderReportHtml } = await import('../functions/analysis/html');
      await writeFile(options.report, renderReportHtml(report));
      (options.json ? console.error : console.log)(`\nwrote ${options.report}`);
    }
  });

eventSourceOptions(program.command('discover').description('find the usage signals that predicted conversion in past events, and suggest a rules file'))
  .requiredOption('--conversions <file>', 'conversions: CSV (entity_type, entity_id, converted_at[, value]) or JSONL')
  .option('--out <file>', 'write the suggested rules (YAML, commented) to this file')
  .option('--skip-bad', 'skip malformed or invalid lines (counted) instead of stopping at the first')
  .option('--signup-trait <name>', 'trait holding the signup time, as the rules\' signup.trait; "none": the first event', 'createdAt')
  .option('--min-users <n>', 'an event is a candidate when at least this many users did it', integer('--min-users'), 30)
  .option('--max-signals <n>', 'at most this many signals in the suggestion', integer('--max-signals'), 8)
  .option('--top <n>', 'rows of the ranked table', integer('--top'), 30)
  .action(async (options: EventSourceOptions & { conversions: string; out?: string; signupTrait: string; minUsers: number; maxSignals: number; top: number }) => {
    const { DiscoveryCollector } = await import('../functions/analysis/discover/collect');
    const { discover } = await import('../functions/analysis/discover/select');
    const { formatDiscoveryTable, suggestedRulesYaml } = await import('../functions/analysis/discover/present');
    const { readConversions } = await import('../functions/cli/backtest-input');
    // Conversions first: the collector drops every event at or after its user's conversion as it reads.
    const conversions = await readConversions(options.conversions);
    const collector = new DiscoveryCollector(conversions, { signupTrait: options.signupTrait === 'none' ? null : options.signupTrait });
    const { stats, source } = await consumeEvents(options, (message) => collector.add(message));
    const result = discover(collector.snapshot(), { minUsers: options.minUsers, maxSignals: options.maxSignals });
    const { eventsRead, linesSkipped, skipped } = stats;
    console.log(`read ${eventsRead.toLocaleString('en-US')} messages and ${conversions.length.toLocaleString('en-US')} conversions` +
      (linesSkipped > 0 ? `; skipped ${linesSkipped.toLocaleString('en-US')} bad lines (first: ${skipped[0]?.message ?? ''})` : '') +
      (result.input.duplicates > 0 ? `; ${result.input.duplicates.toLocaleString('en-US')} repeated messages counted once` : ''));
    console.log(formatDiscoveryTable(result, options.top));
    if (!options.out) {
      if (result.selected.length > 0) console.log('\n--out FILE writes these signals and tiers as a rules file.');
      return;
    }
    const yaml = suggestedRulesYaml(result, { generatedAt: new Date(), source });
    if (yaml === null) {
      console.error(`\nno rules file written to ${options.out}: no signal was confirmed on the holdout`);
      process.exitCode = 1;
      return;
    }
    // The file is checked as `rules check` checks it before it is written: a suggestion always loads.
    const ruleset = loadRules(yaml, options.out);
    await writeFile(options.out, yaml);
    console.log(`\nwrote ${options.out}: ${Object.keys(ruleset.file.signals).length} signals, ${ruleset.file.tiers.length} tiers; ` +
      `\`pql-radar rules check ${options.out}\` accepts it. Replay it with \`pql-radar backtest --rules ${options.out}\` before it goes live.`);
  });

const keys = program.command('keys').description('manage write keys');
keys
  .command('create')
  .description('create a write key for a workspace and print it (it is shown only this once)')
  .requiredOption('--workspace <name>', 'workspace the key writes into')
  .option('--key <key>', 'register this existing key (e.g. a Segment write key your SDKs already send) instead of a new one')
  .action(async (options: { workspace: string; key?: string }) => {
    const { client, tableName } = storage();
    const { key, record } = await new DynamoDbWriteKeyStore(client, tableName).create(options.workspace, options.key !== undefined ? { existingKey: options.key } : {});
    console.log(`key id    ${record.keyId}\nworkspace ${record.workspace}\nwrite key ${key}\n\nStore it now: pql-radar keeps only its hash.`);
  });
keys
  .command('list')
  .description('list write keys (ids and workspaces, never the keys)')
  .action(async () => {
    const { client, tableName } = storage();
    const records = await new DynamoDbWriteKeyStore(client, tableName).list();
    if (records.length === 0) console.log('no write keys');
    for (const record of records) {
      console.log(`${record.keyId}  ${record.workspace.padEnd(20)}  created ${record.createdAt}${record.revokedAt ? `  REVOKED ${record.revokedAt}` : ''}`);
    }
  });
keys
  .command('revoke')
  .description('revoke a write key by its id; deployed functions stop accepting it within a minute')
  .argument('<keyId>', 'the key id that `keys list` shows')
  .action(async (keyId: string) => {
    const { client, tableName } = storage();
    if (!(await new DynamoDbWriteKeyStore(client, tableName).revoke(keyId))) {
      console.error(`no write key with id ${keyId}; \`pql-radar keys list\` shows the ids`);
      process.exitCode = 1;
      return;
    }
    console.log(`revoked ${keyId}`);
  });

program
  .command('rejected')
  .description('messages the ingest endpoint refused, kept in a quarantine with their reasons')
  .command('list')
  .description('list quarantined messages, newest first')
  .option('--workspace <name>', 'only this workspace (default: every workspace that has a write key)')
  .option('--limit <n>', 'at most this many per workspace', integer('--limit'), 50)
  .option('--json', 'one JSON object per line, with the raw message')
  .action(async (options: { workspace?: string; limit: number; json?: boolean }) => {
    const { client, tableName } = storage();
    const workspaces = options.workspace
      ? [options.workspace]
      : [...new Set((await new DynamoDbWriteKeyStore(client, tableName).list()).map((record) => record.workspace))];
    const store = new DynamoDbEventStore({ client, tableName });
    let total = 0;
    for (const workspace of workspaces) {
      for (const rejected of await store.listRejected(workspace, options.limit)) {
        total++;
        if (options.json) console.log(JSON.stringify({ workspace, ...rejected }));
        else console.log(`${rejected.receivedAt}  ${workspace}  #${rejected.index}${rejected.messageId ? ` ${rejected.messageId}` : ''}  ${rejected.path || '(message)'}: ${rejected.reason}`);
      }
    }
    if (total === 0 && !options.json) console.log('no rejected messages');
  });

try {
  await program.parseAsync();
} catch (error) {
  // One line an operator can act on; the stack only when asked for.
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof Error && error.name === 'ResourceNotFoundException' ? ` (is --table ${program.opts().table} right, and --endpoint?)` : '';
  console.error(`pql-radar: ${message}${hint}`);
  if (process.env['PQL_RADAR_DEBUG'] && error instanceof Error) console.error(error.stack);
  process.exit(1);
}
