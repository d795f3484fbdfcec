import { Command } from 'commander';
import { defaultLocalTableName } from '../functions/adapters/dynamodb/table-definition';
import { addBacktestCommand } from '../functions/cli/backtest-command';
import { addDeliveryCommands } from '../functions/cli/delivery-commands';
import { addDevCommand } from '../functions/cli/dev-command';
import { addDiscoverCommand } from '../functions/cli/discover-command';
import { addEvaluateCommand } from '../functions/cli/evaluate-command';
import { addHealthCommand } from '../functions/cli/health-command';
import { addKeysCommands } from '../functions/cli/keys-commands';
import { addLeadsCommands } from '../functions/cli/leads-commands';
import { addRejectedCommand } from '../functions/cli/rejected-command';
import { addRulesCommands } from '../functions/cli/rules-commands';
import { addSampleCommands } from '../functions/cli/sample-commands';
import { addWebhooksCommand } from '../functions/cli/webhooks-command';

// The SDK warns on Node 20 that *future* SDK releases need Node 22; the versions pinned in package-lock.json run fine.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const program = new Command()
  .name('pql-radar')
  .description('Product-qualified leads from your own usage events, in your own AWS account.')
  .option('--table <name>', 'DynamoDB table of pql-radar', process.env['PQL_RADAR_TABLE'] ?? defaultLocalTableName)
  .option('--endpoint <url>', 'DynamoDB endpoint, e.g. the one `pql-radar dev` prints (default: AWS_ENDPOINT_URL_DYNAMODB, else AWS)')
  .showHelpAfterError();
// In this order in `--help`.
addDevCommand(program);
addEvaluateCommand(program);
addLeadsCommands(program);
addRulesCommands(program);
addSampleCommands(program);
addBacktestCommand(program);
addHealthCommand(program);
addDiscoverCommand(program);
addKeysCommands(program);
addRejectedCommand(program);
addWebhooksCommand(program);
addDeliveryCommands(program);

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
