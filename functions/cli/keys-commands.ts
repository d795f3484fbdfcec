import type { Command } from 'commander';
import { DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { browserOrigin, storage } from './options';

/** `pql-radar keys create|list|revoke` and `origins set|list`: who may send into a workspace. */
export function addKeysCommands(program: Command) {
  const keyStore = () => {
    const { client, tableName } = storage(program);
    return new DynamoDbWriteKeyStore(client, tableName);
  };
  const keys = program.command('keys').description('manage write keys');
  keys
    .command('create')
    .description('create a write key for a workspace and print it (it is shown only this once)')
    .requiredOption('--workspace <name>', 'workspace the key writes into')
    .option('--key <key>', 'register this existing key (e.g. a Segment write key your SDKs already send) instead of a new one')
    .action(async (options: { workspace: string; key?: string }) => {
      const { key, record } = await keyStore().create(options.workspace, options.key !== undefined ? { existingKey: options.key } : {});
      console.log(`key id    ${record.keyId}\nworkspace ${record.workspace}\nwrite key ${key}\n\nStore it now: pql-radar keeps only its hash.`);
    });
  keys
    .command('list')
    .description('list write keys (ids and workspaces, never the keys)')
    .action(async () => {
      const records = await keyStore().list();
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
      if (!(await keyStore().revoke(keyId))) {
        console.error(`no write key with id ${keyId}; \`pql-radar keys list\` shows the ids`);
        process.exitCode = 1;
        return;
      }
      console.log(`revoked ${keyId}`);
    });

  const origins = program.command('origins').description("the browser origins each workspace accepts events from (a browser SDK's page)");
  origins
    .command('set')
    .description('set the origins a workspace accepts (replacing the list); no origin refuses every browser; deployed functions follow within a minute')
    .requiredOption('--workspace <name>', 'the workspace')
    .argument('[origins...]', 'origins such as https://app.example.com, or * for any')
    .action(async (values: string[], options: { workspace: string }) => {
      const allowed = values.reduce<string[]>((list, value) => browserOrigin(value, list), []);
      await keyStore().setAllowedOrigins(options.workspace, allowed);
      console.log(allowed.length > 0 ? `${options.workspace} accepts browser events from ${allowed.join(', ')}` : `${options.workspace} accepts no browser events`);
    });
  origins
    .command('list')
    .description('list each workspace with the origins it accepts')
    .action(async () => {
      const allowed = await keyStore().allowedOrigins();
      if (allowed.size === 0) console.log('no workspace accepts browser events');
      for (const [workspace, list] of allowed) console.log(`${workspace.padEnd(20)}  ${list.join(', ')}`);
    });
}
