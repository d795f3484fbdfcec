import { InvalidArgumentError, type Command } from 'commander';
import type { AcceptedMessage } from '../core/messages';
import { createDynamoDbClient } from '../local/dynamodb-local';
import { tableOptions } from './options';

/** The events `backtest` and `discover` read: JSONL files, or what the live table stored. */

export interface EventSourceOptions {
  events?: string[];
  source: string;
  workspace: string;
  skipBad?: boolean;
}

export const eventSourceOptions = (command: Command) =>
  command
    .option('--events <files...>', 'JSONL of Segment messages, the ingest format (.gz accepted), one or more files')
    .option('--source <source>', 'where events come from: files (--events) or dynamodb (the live table: --table, --endpoint, --workspace)', 'files')
    .option('--workspace <name>', 'with --source dynamodb: the workspace whose events are read', 'default');

/**
 * Reads the events of `backtest` and `discover` into `consume`: from JSONL files, or with `--source dynamodb` from
 * what the live table stored. Returns the reader's counts and a description of the source for messages.
 */
export async function consumeEvents(program: Command, options: EventSourceOptions, consume: (message: AcceptedMessage) => void) {
  const { InputError, readEvents, readEventTexts } = await import('./backtest-input');
  if (options.source !== 'files' && options.source !== 'dynamodb') throw new InvalidArgumentError(`--source ${options.source}: must be files or dynamodb`);
  if ((options.source === 'files') !== (options.events !== undefined)) {
    throw new InvalidArgumentError(options.source === 'files' ? '--events is required (or --source dynamodb)' : '--events and --source dynamodb exclude each other');
  }
  const { table, endpoint } = tableOptions(program);
  const skipBad = options.skipBad ?? false;
  const reader =
    options.events !== undefined
      ? readEvents(options.events, { skipBad })
      : readEventTexts(`dynamodb:${table}`, (await import('../adapters/dynamodb/stored-events')).storedEventTexts(createDynamoDbClient(endpoint), table, options.workspace), { skipBad });
  try {
    for await (const message of reader) consume(message);
  } catch (error) {
    if (error instanceof InputError && error.line > 0) throw new Error(`${error.message} (--skip-bad skips such lines and counts them)`);
    throw error;
  }
  return { stats: reader.stats, source: options.events?.join(', ') ?? `table ${table}, workspace ${options.workspace}` };
}
