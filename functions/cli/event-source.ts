import { InvalidArgumentError, type Command } from 'commander';
import type { AcceptedMessage } from '../core/messages';
import type { LineBlock, SourceLine } from './backtest-input';

/**
 * The events `backtest` and `discover` read: JSONL files, or what the live table stored. The DynamoDB modules load
 * only for the table, so reading files starts without the AWS SDK.
 */

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
 * The unparsed lines of `backtest` and `discover`'s events: from JSONL files, or with `--source dynamodb` the JSON
 * texts the live table stored. `blocks` gives the same lines, a file's in blocks of bytes (fileBlocks) for the
 * backtest's worker threads to split. `source` describes where they come from, for messages.
 */
export async function eventLines(program: Command, options: EventSourceOptions): Promise<{ lines: () => AsyncIterable<SourceLine>; blocks: () => AsyncIterable<SourceLine | LineBlock>; source: string }> {
  const { fileBlocks, fileLines, textLines } = await import('./backtest-input');
  if (options.source !== 'files' && options.source !== 'dynamodb') throw new InvalidArgumentError(`--source ${options.source}: must be files or dynamodb`);
  if ((options.source === 'files') !== (options.events !== undefined)) {
    throw new InvalidArgumentError(options.source === 'files' ? '--events is required (or --source dynamodb)' : '--events and --source dynamodb exclude each other');
  }
  const files = options.events;
  if (files !== undefined) return { lines: () => fileLines(files), blocks: () => fileBlocks(files), source: files.join(', ') };
  const { tableOptions } = await import('./options');
  const { createDynamoDbClient } = await import('../local/dynamodb-local');
  const { storedEventTexts } = await import('../adapters/dynamodb/stored-events');
  const { table, endpoint } = tableOptions(program);
  const lines = () => textLines(`dynamodb:${table}`, storedEventTexts(createDynamoDbClient(endpoint), table, options.workspace));
  return { lines, blocks: lines, source: `table ${table}, workspace ${options.workspace}` };
}

/**
 * Reads the events of `discover` into `consume`, validated as ingest validates them. Returns the reader's counts
 * and a description of the source for messages.
 */
export async function consumeEvents(program: Command, options: EventSourceOptions, consume: (message: AcceptedMessage) => void) {
  const { EventReader, withSkipBadHint } = await import('./backtest-input');
  const { lines, source } = await eventLines(program, options);
  const reader = new EventReader(lines, { skipBad: options.skipBad ?? false });
  try {
    for await (const message of reader) consume(message);
  } catch (error) {
    throw withSkipBadHint(error);
  }
  return { stats: reader.stats, source };
}
