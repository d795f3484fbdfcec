import type { Command } from 'commander';
import { startDev } from '../local/dev';
import { localDestinations, localSinks, runtimeWebhookId, runPrinter, sinkOptions, UndeliveredReport, type SinkOptions } from './lead-output';
import { browserOrigin, defaultRulesFile, duration, parsedOption, readRules, tableOptions } from './options';
import { port } from './integer-option';

type DevOptions = SinkOptions & { allowOrigin: string[]; port: number; dynamodbPort: number; dataDir?: string; writeKey?: string; workspace: string; rules: string; evaluateEvery: number };

/** `pql-radar dev`: the local runtime, running until Ctrl-C. */
export function addDevCommand(program: Command) {
  const dev = program
    .command('dev')
    .description('run pql-radar locally: DynamoDB Local, the table, a write key, the ingest endpoint and the evaluator')
    .option('--port <port>', 'port of the ingest endpoint', port('--port'), 3000)
    .option('--dynamodb-port <port>', 'port for DynamoDB Local, so other commands can reach it', port('--dynamodb-port'), 8000)
    .option('--data-dir <dir>', 'keep DynamoDB Local data in this directory (default: in memory)')
    .option('--write-key <key>', 'accept this write key (default: create one and print it)')
    .option('--workspace <name>', 'workspace of the write key', 'default')
    .option('--allow-origin <origin>', 'accept browser events from this origin, e.g. http://localhost:5173, or * for any (repeatable)', browserOrigin, [])
    .option('--rules <file>', 'PQL rules file (YAML or JSON)', defaultRulesFile)
    .addOption(parsedOption('--evaluate-every <duration>', 'how often the evaluator runs; 0s: never on its own, only when replay --paced asks', duration('--evaluate-every'), '10s'));
  sinkOptions(dev).action(async (options: DevOptions) => {
    const { table, endpoint } = tableOptions(program);
    const ruleset = readRules(options.rules);
    const destinations = localDestinations(dev, options, runtimeWebhookId);
    let undelivered: UndeliveredReport | undefined;
    const runtime = await startDev({
      ruleset,
      leads: localSinks(options),
      destinations,
      onUndelivered: async (results, deliveries) => {
        undelivered ??= new UndeliveredReport(deliveries, destinations, options.webhook, () => 'this runtime retries them');
        for (const line of await undelivered.lines(results)) console.error(`pql-radar: ${line}`);
      },
      evaluateEveryMs: options.evaluateEvery,
      onEvaluation: runPrinter(),
      port: options.port,
      dynamoDbPort: options.dynamodbPort,
      tableName: table,
      workspace: options.workspace,
      ...(options.allowOrigin.length > 0 ? { allowedOrigins: options.allowOrigin } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
      ...(options.writeKey !== undefined ? { writeKey: options.writeKey } : {}),
      observer: {
        onResponse: (response) =>
          console.log(`ingest ${response.status} workspace=${response.summary.workspace ?? '-'} accepted=${response.summary.accepted} rejected=${response.summary.rejected}`),
        onError: (error, requestId) => console.error(`ingest failed (request ${requestId}):`, error),
      },
    });
    // Before the banner: a Ctrl-C as soon as it is read (a script, a test) would otherwise find no handler and end the
    // process at once, leaving the runtime unstopped and the exit status a signal's.
    let stopping = false;
    const shutdown = async (exitCode: number, say: () => void) => {
      if (stopping) return;
      stopping = true;
      say();
      await runtime.stop();
      process.exit(exitCode);
    };
    process.on('SIGINT', () => void shutdown(0, () => console.log('\nSIGINT: stopping pql-radar')));
    process.on('SIGTERM', () => void shutdown(0, () => console.log('\nSIGTERM: stopping pql-radar')));
    // Half a runtime would answer every request 500 and log a connection error at every evaluator run: stopped as
    // Ctrl-C stops it, but saying why, and failing. A Ctrl-C stops DynamoDB Local too, and is no failure (runtime.failed).
    void runtime.failed.then((reason) => shutdown(1, () => console.error(`pql-radar: ${reason}; stopping pql-radar`)));
    const auth = Buffer.from(`${runtime.writeKey}:`).toString('base64');
    // Only what is known: a DynamoDB it was given (AWS_ENDPOINT_URL_DYNAMODB, --endpoint) keeps its data as it does,
    // perhaps for good, and --data-dir does not apply to it.
    const storage = !runtime.startedDynamoDb ? 'external' : options.dataDir ? `data in ${options.dataDir}` : 'in memory';
    // 0 turns the timed runs off (startDev's evaluateEveryMs): "every 0 s" would promise runs that never come.
    const evaluated = options.evaluateEvery > 0 ? `evaluated every ${options.evaluateEvery / 1000} s` : 'evaluator off (--evaluate-every 0s): it runs only when replay --paced asks (POST /local/evaluate)';
    console.log(`pql-radar is running.
  ingest endpoint  ${runtime.url}/v1/{track,identify,group,page,screen,alias,batch,import} (and t, i, g, p, s, a, b)
  lead inspector   ${runtime.url}/leads (127.0.0.1 only; \`pql-radar leads list|show\` print the same)
  lead status      ${runtime.url}/v1/leads/{user,account}/<id> (GET, with a read key: keys create --read-only, below)
  DynamoDB         ${runtime.endpoint} (table ${runtime.tableName}, ${storage})
  write key        ${runtime.writeKey} (workspace ${runtime.workspace}${storage !== 'in memory' && options.writeKey === undefined ? '; a new one each start, and the earlier ones still accepted: --write-key KEY keeps one' : ''})
  browser origins  ${options.allowOrigin.length > 0 ? options.allowOrigin.join(', ') : 'none (--allow-origin ORIGIN lets a page send with analytics.js)'}
  rules            ${options.rules} (version ${ruleset.version}), ${evaluated}
  lead events      console${options.leadsFile ? `, ${options.leadsFile}` : ''}${options.webhook.length > 0 ? `, ${options.webhook.length} webhook(s)` : ''}

Send an event:
  curl -s ${runtime.url}/v1/track -H 'Authorization: Basic ${auth}' -H 'Content-Type: application/json' \\
    -d '{"userId":"user-1","event":"Dashboard Created","properties":{"dashboards":1}}'

Replay 30 days of a realistic sample product, a day at a time (users qualify, change tier, drop out and convert):
  npx pql-radar replay --url ${runtime.url} --write-key ${runtime.writeKey} --paced
  npx pql-radar --endpoint ${runtime.endpoint} health                 (then: each tier's live lift)

Other commands against this DynamoDB:
  npx pql-radar --endpoint ${runtime.endpoint} keys list
  npx pql-radar --endpoint ${runtime.endpoint} keys create --read-only --workspace ${runtime.workspace}   (for GET /v1/leads/...)
  npx pql-radar --endpoint ${runtime.endpoint} leads list             (leads in a tier; leads show ID for one)
  npx pql-radar --endpoint ${runtime.endpoint} rejected list --workspace ${runtime.workspace}
  npx pql-radar --endpoint ${runtime.endpoint} deliveries list        (every webhook attempt; --failed, --lead ID)
  npx pql-radar --endpoint ${runtime.endpoint} destinations test '*'  (a marked sample lead to every webhook)

Ctrl-C stops everything.`);
  });
}
