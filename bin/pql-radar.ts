import { Command, InvalidArgumentError } from 'commander';
import { DynamoDbEventStore } from '../functions/adapters/dynamodb/event-store';
import { DynamoDbWriteKeyStore } from '../functions/adapters/dynamodb/write-key-store';
import { startDev } from '../functions/local/dev';
import { createDynamoDbClient } from '../functions/local/dynamodb-local';

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

function storage() {
  const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
  const client = createDynamoDbClient(endpoint);
  return { client, tableName: table };
}

program
  .command('dev')
  .description('run pql-radar locally: DynamoDB Local, the table, a write key and the ingest endpoint')
  .option('--port <port>', 'port of the ingest endpoint', integer('--port'), 3000)
  .option('--dynamodb-port <port>', 'port for DynamoDB Local, so other commands can reach it', integer('--dynamodb-port'), 8000)
  .option('--data-dir <dir>', 'keep DynamoDB Local data in this directory (default: in memory)')
  .option('--write-key <key>', 'accept this write key (default: create one and print it)')
  .option('--workspace <name>', 'workspace of the write key', 'default')
  .action(async (options: { port: number; dynamodbPort: number; dataDir?: string; writeKey?: string; workspace: string }) => {
    const { table, endpoint } = program.opts<{ table: string; endpoint?: string }>();
    const runtime = await startDev({
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

Send an event:
  curl -s ${runtime.url}/v1/track -H 'Authorization: Basic ${auth}' -H 'Content-Type: application/json' \\
    -d '{"userId":"user-1","event":"Dashboard Created","properties":{"dashboards":1}}'

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
