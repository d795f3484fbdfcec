import { InvalidArgumentError, type Command } from 'commander';
import { integer } from './integer-option';
import { counted } from '../analysis/format';
import { checkOutputFile, writeOutputFile } from './output-file';
import { generateSampleStream, toJsonl } from './sample-stream';
import { count } from '../analysis/format';
import { evaluatePath } from '../local/evaluate-route';

/** `pql-radar sample` writes a sample event stream; `pql-radar replay` sends one to an ingest endpoint. */
export function addSampleCommands(program: Command) {
  program
    .command('sample')
    .description('write a realistic sample event stream (Segment messages, JSONL) ending now')
    .option('--out <file>', 'write here instead of standard output')
    .option('--seed <n>', 'random seed', integer('--seed'), 1)
    .option('--users <n>', 'users', integer('--users', 1), 60)
    .option('--days <n>', 'days of history', integer('--days', 1), 30)
    .action(async (options: { out?: string; seed: number; users: number; days: number }) => {
      if (options.out !== undefined) await checkOutputFile('--out', options.out);
      const messages = generateSampleStream({ seed: options.seed, users: options.users, days: options.days });
      if (options.out === undefined) process.stdout.write(toJsonl(messages));
      else {
        await writeOutputFile('--out', options.out, toJsonl(messages));
        console.error(`wrote ${count(messages.length)} events of ${count(options.users)} users over ${count(options.days)} days to ${options.out}`);
      }
    });

  program
    .command('replay')
    .description('send Segment messages from a JSONL file (default: a fresh sample stream) to an ingest endpoint')
    .argument('[file]', 'JSONL of Segment messages, as `pql-radar sample` writes')
    .requiredOption('--write-key <key>', 'write key of the endpoint')
    .option('--url <url>', 'ingest endpoint', 'http://127.0.0.1:3000')
    .option('--batch-size <n>', 'messages per /v1/batch request', integer('--batch-size', 1), 100)
    .option('--paced', "send a day at a time, the local runtime's evaluator running at each day's end (`npm start` only): leads qualify on the days they would have live")
    .action(async (file: string | undefined, options: { writeKey: string; url: string; batchSize: number; paced?: boolean }) => {
      const messages = file ? await readJsonl(file) : generateSampleStream();
      const authorization = `Basic ${Buffer.from(`${options.writeKey}:`).toString('base64')}`;
      let rejected = 0;
      const send = async (batch: readonly unknown[]) => {
        for (let i = 0; i < batch.length; i += options.batchSize) {
          const body = await post(`${options.url}/v1/batch`, { batch: batch.slice(i, i + options.batchSize) }, authorization);
          rejected += (body as { rejected?: unknown[] }).rejected?.length ?? 0;
        }
      };
      if (!options.paced) await send(messages);
      else {
        const days = byDay(messages);
        if (days.length === 0) throw new InvalidArgumentError('--paced: no message has a timestamp to pace by');
        // A run before the first day: it holds the runtime's own timed runs, which would date the days sent today.
        await evaluateAt(options.url, `${days[0]!.day}T00:00:00.000Z`);
        for (const [index, { day, messages: ofDay }] of days.entries()) {
          await send(ofDay);
          // The next day's midnight, or now for the last day (and for a next day that has not ended).
          const now = new Date().toISOString();
          const nextMidnight = index < days.length - 1 ? `${days[index + 1]!.day}T00:00:00.000Z` : now;
          const run = await evaluateAt(options.url, nextMidnight < now ? nextMidnight : now);
          console.log(`${day}: sent ${ofDay.length} messages; evaluated ${run.evaluated}, ${counted(run.transitions, 'transition')}`);
        }
      }
      console.log(`sent ${messages.length} messages to ${options.url}${rejected > 0 ? `, ${rejected} rejected (see \`pql-radar rejected list\`)` : ''}`);
    });
}

/** Messages grouped by their UTC day, in order; a message without a timestamp goes with the one before it. */
function byDay(messages: readonly unknown[]): { day: string; messages: unknown[] }[] {
  const days: { day: string; messages: unknown[] }[] = [];
  for (const message of messages) {
    const timestamp = (message as { timestamp?: unknown }).timestamp;
    const day = typeof timestamp === 'string' && !Number.isNaN(Date.parse(timestamp)) ? new Date(timestamp).toISOString().slice(0, 10) : days.at(-1)?.day;
    if (day === undefined) continue;
    const last = days.at(-1);
    if (last && last.day >= day) last.messages.push(message);
    else days.push({ day, messages: [message] });
  }
  return days;
}

async function evaluateAt(url: string, at: string): Promise<{ evaluated: number; transitions: number }> {
  const answer = await fetch(`${url}${evaluatePath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at }) });
  if (answer.status === 404 || answer.status === 405) throw new Error(`--paced: ${url} has no evaluator to pace (${answer.status}); it works with the local runtime (npm start) only`);
  const body = (await answer.json()) as { evaluated: number; transitions: number; error?: string };
  if (!answer.ok) throw new Error(`--paced: ${url} answered ${answer.status}: ${body.error ?? 'no reason given'}`);
  return body;
}

async function post(url: string, payload: object, authorization: string): Promise<unknown> {
  const response = await fetch(url, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  const body = (await response.json()) as { error?: string };
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${body.error ?? 'no reason given'}`);
  return body;
}

async function readJsonl(file: string): Promise<unknown[]> {
  // The events files' reader: .gz files gunzipped, and a file that cannot be read named with why.
  const { readLines } = await import('./backtest-input');
  const messages: unknown[] = [];
  for await (const { line, number } of readLines(file)) {
    if (line instanceof Error) throw new Error(`${file}:${number}: ${line.message}`);
    if (line.trim() === '') continue;
    try {
      messages.push(JSON.parse(line));
    } catch {
      throw new Error(`${file}:${number}: not valid JSON`);
    }
  }
  return messages;
}
