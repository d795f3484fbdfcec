import type { Command } from 'commander';
import { DynamoDbEventStore } from '../adapters/dynamodb/event-store';
import { DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { printUpToLimit, storage } from './options';
import { integer } from './integer-option';

/** `pql-radar rejected list`: the quarantine of messages ingest refused. */
export function addRejectedCommand(program: Command) {
  program
    .command('rejected')
    .description('messages the ingest endpoint refused, kept in a quarantine with their reasons')
    .command('list')
    .description('list quarantined messages, newest first')
    .option('--workspace <name>', 'only this workspace (default: every workspace that has a write key)')
    .option('--limit <n>', 'at most this many per workspace', integer('--limit', 1), 50)
    .option('--json', 'one JSON object per line, with the raw message')
    .action(async (options: { workspace?: string; limit: number; json?: boolean }) => {
      const { client, tableName } = storage(program);
      const workspaces = options.workspace
        ? [options.workspace]
        : [...new Set((await new DynamoDbWriteKeyStore(client, tableName).list()).map((record) => record.workspace))];
      const store = new DynamoDbEventStore({ client, tableName });
      let total = 0;
      for (const workspace of workspaces) {
        total += await printUpToLimit(
          (limit) => store.listRejected(workspace, limit),
          options.limit,
          (rejected) => {
            if (options.json) console.log(JSON.stringify({ workspace, ...rejected }));
            else console.log(`${rejected.receivedAt}  ${workspace}  #${rejected.index}${rejected.messageId ? ` ${rejected.messageId}` : ''}  ${rejected.path || '(message)'}: ${rejected.reason}`);
          },
          // The limit is each workspace's: the workspace is named.
          `more rejected messages in workspace ${workspace}`,
        );
      }
      if (total === 0 && !options.json) console.log('no rejected messages');
    });
}
