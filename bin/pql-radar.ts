import { Command } from 'commander';
import { defaultLocalTableName } from '../functions/adapters/dynamodb/table-definition';

// The SDK warns on Node 20 that *future* SDK releases need Node 22; the versions pinned in package-lock.json run fine.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

// Output piped into a reader that stops early (`leads list | head`): the rest is not wanted, and that is no error. The
// command goes on to its end, unread, so that what it does after printing (discover --out, backtest --record) is done.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
});

const program = new Command()
  .name('pql-radar')
  .description('Product-qualified leads from your own usage events, in your own AWS account.')
  .option('--table <name>', 'DynamoDB table of pql-radar', process.env['PQL_RADAR_TABLE'] ?? defaultLocalTableName)
  .option('--endpoint <url>', 'DynamoDB endpoint, e.g. the one `pql-radar dev` prints (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS)')
  .showHelpAfterError();
// The command modules, in the order of `--help`, with the top-level commands each adds. A run loads only the module
// of its command: loading them all (the AWS SDK, the local stack, ...) cost a backtest some 0.5 CPU-seconds.
const commandModules: [names: string[], load: () => Promise<(program: Command) => void>][] = [
  [['dev'], async () => (await import('../functions/cli/dev-command')).addDevCommand],
  [['evaluate'], async () => (await import('../functions/cli/evaluate-command')).addEvaluateCommand],
  [['leads'], async () => (await import('../functions/cli/leads-commands')).addLeadsCommands],
  [['rules'], async () => (await import('../functions/cli/rules-commands')).addRulesCommands],
  [['sample', 'replay'], async () => (await import('../functions/cli/sample-commands')).addSampleCommands],
  [['backtest'], async () => (await import('../functions/cli/backtest-command')).addBacktestCommand],
  [['health'], async () => (await import('../functions/cli/health-command')).addHealthCommand],
  [['discover'], async () => (await import('../functions/cli/discover-command')).addDiscoverCommand],
  [['keys', 'origins'], async () => (await import('../functions/cli/keys-commands')).addKeysCommands],
  [['rejected'], async () => (await import('../functions/cli/rejected-command')).addRejectedCommand],
  [['webhooks'], async () => (await import('../functions/cli/webhooks-command')).addWebhooksCommand],
  [['deliveries', 'destinations', 'dlq'], async () => (await import('../functions/cli/delivery-commands')).addDeliveryCommands],
];

/**
 * The command the arguments name: the first one that is neither a global option nor its value. Undefined when an
 * option comes first that is not a global one with its value (`--help`, a mistake): commander then needs them all.
 */
function commandNamed(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--table' || arg === '--endpoint') i++;
    else if (!arg.startsWith('--table=') && !arg.startsWith('--endpoint=')) return arg.startsWith('-') ? undefined : arg;
  }
  return undefined;
}

// Any other word (help, a typo commander suggests a command for) loads every module, as does no command at all.
const named = commandNamed(process.argv.slice(2));
const own = commandModules.find(([names]) => named !== undefined && names.includes(named));
for (const [, load] of own !== undefined ? [own] : commandModules) (await load())(program);

try {
  await program.parseAsync();
} catch (error) {
  // One line an operator can act on; the stack only when asked for.
  // fetch's own message is only "fetch failed": the reason (a refused connection, a name not found) is its cause.
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  const message = error instanceof Error ? `${error.message}${cause}` : String(error);
  console.error(`pql-radar: ${message}${hintFor(error)}`);
  if (process.env['PQL_RADAR_DEBUG'] && error instanceof Error) console.error(error.stack);
  process.exit(1);
}

/** What the operator can do about a failure of the table's storage, where the SDK's message does not say. */
function hintFor(error: unknown): string {
  if (!(error instanceof Error)) return '';
  const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
  if (error.name === 'ResourceNotFoundException') return ` (is --table ${table} right, and --endpoint?)`;
  if (error.name === 'CredentialsProviderError') return ' (a deployed table is reached with your AWS credentials (e.g. AWS_PROFILE); the local one needs --endpoint, as `pql-radar dev` prints it)';
  if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED' && endpoint !== undefined) return ` (nothing answers at --endpoint ${endpoint}: is \`pql-radar dev\` running?)`;
  return '';
}
