import { InvalidArgumentError, type Command } from 'commander';
import { rotateFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { accessOf } from '../core/write-key';
import { browserOrigin, storage } from './options';
import { parseGivenKey } from '../core/write-key';

/** `pql-radar keys create|list|revoke|rotate-link-key` and `origins set|list`: who may send into a workspace, and the feedback links' key. */
export function addKeysCommands(program: Command) {
  const keyStore = () => {
    const { client, tableName } = storage(program);
    return new DynamoDbWriteKeyStore(client, tableName);
  };
  const keys = program.command('keys').description('manage write keys and read keys');
  keys
    .command('create')
    .description('create a write key for a workspace (or with --read-only a read key) and print it (it is shown only this once)')
    .requiredOption('--workspace <name>', 'workspace the key writes into (or reads from)')
    .option('--key <key>', 'register this existing key (e.g. a Segment write key your SDKs already send) instead of a new one')
    .option('--read-only', "a read key for your product's backend: it reads lead status (GET /v1/leads/...) and cannot send events")
    .action(async (options: { workspace: string; key?: string; readOnly?: boolean }) => {
      if (options.readOnly && options.key !== undefined) throw new InvalidArgumentError('--read-only makes a new key: a read key cannot be imported with --key');
      // Checked in the action, before the table is written: an option parser's refusal would repeat the key, a secret.
      if (options.key !== undefined) parseGivenKey(options.key, '--key');
      const { key, record } = await keyStore().create(options.workspace, {
        ...(options.key !== undefined ? { existingKey: options.key } : {}),
        ...(options.readOnly ? { access: 'read' as const } : {}),
      });
      const label = options.readOnly ? 'read key ' : 'write key';
      const use = options.readOnly ? '\nUse it from your backend only (Authorization: Bearer <read key>); never ship it to a browser or an app.' : '';
      console.log(`key id    ${record.keyId}\nworkspace ${record.workspace}\n${label} ${key}\n\nStore it now: pql-radar keeps only its hash.${use}`);
    });
  keys
    .command('list')
    .description('list keys (ids, workspaces and whether they write or only read; never the keys)')
    .action(async () => {
      const records = await keyStore().list();
      if (records.length === 0) console.log('no keys');
      for (const record of records) {
        console.log(`${record.keyId}  ${record.workspace.padEnd(20)}  ${accessOf(record).padEnd(5)}  created ${record.createdAt}${record.revokedAt ? `  REVOKED ${record.revokedAt}` : ''}`);
      }
    });
  keys
    .command('revoke')
    .description('revoke a key (write or read) by its id; deployed functions stop accepting it within a minute')
    .argument('<keyId>', 'the key id that `keys list` shows')
    .action(async (keyId: string) => {
      if (!(await keyStore().revoke(keyId))) throw new InvalidArgumentError(`no key with id ${keyId}; \`pql-radar keys list\` shows the ids`);
      console.log(`revoked ${keyId}`);
    });

  keys
    .command('rotate-link-key')
    .description('replace the key feedback links are signed with: links sent before stop working; deployed functions take the new key at their next cold start')
    .action(async () => {
      const { client, tableName } = storage(program);
      await rotateFeedbackSecret(client, tableName);
      console.log(`rotated the feedback links' signing key of ${tableName}; links sent before now answer 403`);
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
