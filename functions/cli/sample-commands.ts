import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { integer } from './options';
import { generateSampleStream, toJsonl } from './sample-stream';

/** `pql-radar sample` writes a sample event stream; `pql-radar replay` sends one to an ingest endpoint. */
export function addSampleCommands(program: Command) {
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
}

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
