/**
 * Backtest and discover benchmark: events per second and peak memory (RSS) of `pql-radar backtest` and
 * `pql-radar discover` on a large event file.
 *
 * 1. Generates BENCH_EVENTS Segment messages (default 1,000,000) with planted signals (functions/cli/planted-stream.ts,
 *    the behaviours of examples/backtest, a fixed seed) into a temporary events.jsonl.gz, and their conversions.csv.
 * 2. Runs `pql-radar backtest --rules examples/activation.rules.yaml --json` and `pql-radar discover --out ...` on them,
 *    each in a fresh child process (the real CLI, as a user runs it), so each one's peak RSS is its own:
 *    process.resourceUsage().maxRSS, recorded by the child as it exits.
 * 3. Measures the parse floor in a fresh process too: gunzip, split into lines and JSON.parse the same file on one
 *    core, nothing else. What a backtest does beyond that (validation, history, replay) is its own cost.
 * 4. Prints, for each: events, wall time (the whole command: start-up, reading the gzip, replay or discovery, output),
 *    events per second (wall, and per CPU-second: user + system time of the process), peak RSS, and PASS/FAIL against
 *    the budget: peak RSS under 1 GiB (2 GiB from 5 million events). Exits 1 on any FAIL.
 *
 *   npm run bench:backtest                          1,000,000 events
 *   BENCH_EVENTS=100000 npm run bench:backtest      a quick try first
 *   BENCH_EVENTS=10000000 BENCH_USERS=500000 BENCH_DISCOVER=0 npm run bench:backtest
 *                                                   10 million events of 500,000 users (generated in batches)
 *
 * Other knobs: BENCH_SEED (1), BENCH_DAYS (60: the span of the stream), BENCH_USERS (by default enough users for the
 * events at the example's ~30 events a user; set, or above 2 million events, the stream is generated in batches of
 * 20,000 users, each a planted stream of its own seed with ids prefixed by its batch, so memory stays flat),
 * BENCH_DISCOVER=0 skips discover, BENCH_KEEP=1 keeps the temporary directory.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { exampleBehaviours, generatePlantedStream, type PlantedStreamOptions } from '../functions/cli/planted-stream';
import type { Conversion } from '../functions/analysis/metrics';
import { count, decimals, textTable, withInterval } from '../functions/analysis/format';
import { positiveInt } from './knobs';

const eventCount = positiveInt('BENCH_EVENTS', 1_000_000);
const seed = positiveInt('BENCH_SEED', 1);
const days = positiveInt('BENCH_DAYS', 60);
const keep = process.env['BENCH_KEEP'] === '1';
const runDiscover = process.env['BENCH_DISCOVER'] !== '0';
const usersWanted = process.env['BENCH_USERS'] !== undefined ? positiveInt('BENCH_USERS', 1) : undefined;
const budgetBytes = eventCount >= 5_000_000 ? 2 * 1024 ** 3 : 1024 ** 3;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin/pql-radar.ts');
const rules = join(root, 'examples/activation.rules.yaml');

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`;

// ---- 1. the input ----

const streamOptions = (users: number): PlantedStreamOptions => ({
  seed,
  users,
  accounts: Math.max(1, Math.round(users / 10)),
  days,
  end: new Date('2025-03-31T00:00:00.000Z'),
  behaviours: exampleBehaviours,
  baseRate: 0.04,
});

/** Enough users for eventCount messages: measured on a sample of the same stream, with a margin; cut to exactly eventCount. */
function generate() {
  const sampleUsers = 2_000;
  const perUser = generatePlantedStream(streamOptions(sampleUsers)).messages.length / sampleUsers;
  let users = Math.max(10, Math.ceil((eventCount / perUser) * 1.03));
  for (;;) {
    const stream = generatePlantedStream(streamOptions(users));
    if (stream.messages.length >= eventCount) return { ...stream, users };
    users = Math.ceil(users * 1.1);
  }
}

const directory = await mkdtemp(join(tmpdir(), 'pql-radar-bench-backtest-'));
const eventsFile = join(directory, 'events.jsonl.gz');
const conversionsFile = join(directory, 'conversions.csv');
const suggestedFile = join(directory, 'suggested.rules.yaml');

let started = performance.now();
const conversionLines: string[] = [];
const conversionLine = (c: Conversion) => `${c.type},${c.id},${c.convertedAt},${c.value ?? ''}`;
let generated: { messages: number; users: number; userConversions: number; accountConversions: number; first: string; last: string };
if (usersWanted === undefined && eventCount <= 2_000_000) {
  const stream = generate();
  // The earliest eventCount messages (the stream is sorted by time): the file ends a little before the generated period.
  const messages = stream.messages.slice(0, eventCount);
  const lastTimestamp = messages.at(-1)!.timestamp;
  async function* lines() {
    const batch = 2_000;
    for (let i = 0; i < messages.length; i += batch) yield messages.slice(i, i + batch).map((message) => `${JSON.stringify(message)}\n`).join('');
  }
  await pipeline(Readable.from(lines()), createGzip({ level: 6 }), createWriteStream(eventsFile));
  conversionLines.push(...stream.conversions.map(conversionLine));
  const userConversions = stream.conversions.filter((c) => c.type === 'user').length;
  generated = { messages: messages.length, users: stream.users, userConversions, accountConversions: stream.conversions.length - userConversions, first: stream.start, last: lastTimestamp };
  messages.length = 0;
  stream.messages.length = 0;
} else {
  // Batches of users, each a planted stream of its own (seed and id prefix): the file is sorted within a batch only,
  // which a backtest does not need. Users are spread so that the batches together hold about eventCount messages.
  const batchUsers = 20_000;
  const perUser = generatePlantedStream(streamOptions(2_000)).messages.length / 2_000;
  const users = usersWanted ?? Math.ceil((eventCount / perUser) * 1.03);
  const batches = Math.ceil(users / batchUsers);
  const quota = Math.ceil(eventCount / batches);
  let written = 0;
  let first = '';
  let last = '';
  let userConversions = 0;
  let accountConversions = 0;
  const prefix = (batch: number, id: string) => `b${batch}-${id}`;
  async function* lines() {
    for (let batch = 0; batch < batches && written < eventCount; batch++) {
      const stream = generatePlantedStream({ ...streamOptions(Math.min(batchUsers, users - batch * batchUsers)), seed: seed * 100_000 + batch });
      // Enough events a user for the quota: a batch's stream is cut like the single stream, by time.
      const take = Math.min(quota, eventCount - written, stream.messages.length);
      const kept = stream.messages.slice(0, take);
      for (const message of kept) {
        const m = message as unknown as Record<string, unknown> & { context?: { groupId?: string } };
        m['userId'] = prefix(batch, m['userId'] as string);
        m['messageId'] = `${m['messageId'] as string}-b${batch}`;
        if (typeof m['groupId'] === 'string') m['groupId'] = prefix(batch, m['groupId']);
        if (m.context?.groupId !== undefined) m.context = { ...m.context, groupId: prefix(batch, m.context.groupId) };
      }
      for (const c of stream.conversions) {
        conversionLines.push(conversionLine({ ...c, id: prefix(batch, c.id) }));
        if (c.type === 'user') userConversions++;
        else accountConversions++;
      }
      if (first === '' || stream.start < first) first = stream.start;
      if (kept.at(-1)!.timestamp > last) last = kept.at(-1)!.timestamp;
      written += kept.length;
      for (let i = 0; i < kept.length; i += 2_000) yield kept.slice(i, i + 2_000).map((message) => `${JSON.stringify(message)}\n`).join('');
    }
  }
  await pipeline(Readable.from(lines()), createGzip({ level: 6 }), createWriteStream(eventsFile));
  generated = { messages: written, users, userConversions, accountConversions, first, last };
}
await writeFile(conversionsFile, 'entity_type,entity_id,converted_at,value\n' + conversionLines.join('\n') + '\n');
conversionLines.length = 0;
console.log(
  `generated ${count(generated.messages)} messages of ${count(generated.users)} users (${generated.first.slice(0, 10)} to ${generated.last.slice(0, 10)}, seed ${seed}), ` +
    `${count(generated.userConversions)} user and ${count(generated.accountConversions)} account conversions, ` +
    `in ${((performance.now() - started) / 1000).toFixed(1)} s: ${eventsFile} (${mib((await stat(eventsFile)).size)})`,
);

// ---- 2. the runs, each in a fresh process ----

/** Loaded into the child before the CLI: on exit, writes its peak RSS (KiB, as resourceUsage gives it) to a file. */
const rssProbe = `data:text/javascript,${encodeURIComponent(
  "import { writeFileSync } from 'node:fs'; process.on('exit', () => { const u = process.resourceUsage(); writeFileSync(process.env.BENCH_RSS_FILE, JSON.stringify({ maxRssKiB: u.maxRSS, cpuMicros: u.userCPUTime + u.systemCPUTime })); });",
)}`;

interface Run {
  name: string;
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  exitCode: number | null;
  output: string;
}

async function run(name: string, args: string[], script = cli): Promise<Run> {
  const rssFile = join(directory, `${name}.rss.json`);
  const outputFile = join(directory, `${name}.out`);
  const output = createWriteStream(outputFile);
  const begin = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', rssProbe, script, ...args], {
    cwd: root,
    env: { ...process.env, BENCH_RSS_FILE: rssFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(output);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise<number | null>((done) => child.on('close', done));
  const seconds = (performance.now() - begin) / 1000;
  await new Promise((done) => output.end(done));
  let peakRssBytes = Number.NaN;
  let cpuSeconds = Number.NaN;
  try {
    const usage = JSON.parse(await readFile(rssFile, 'utf8')) as { maxRssKiB: number; cpuMicros: number };
    peakRssBytes = usage.maxRssKiB * 1024;
    cpuSeconds = usage.cpuMicros / 1e6;
  } catch {
    // No record: the child died before exiting normally; reported as a failure below.
  }
  return { name, seconds, cpuSeconds, peakRssBytes, exitCode, output: (await readFile(outputFile, 'utf8')) + stderr };
}

/**
 * The parse floor: gunzip, lines and JSON.parse of the file, nothing else, on the main thread of a fresh process. In
 * chunks of 64 KiB: V8 puts a string over about 128 KiB in its large-object space, and decoding 256 KiB chunks took
 * the floor 3.2 to 3.6 s of a million events instead of 1.7 to 2.2 (the kernel's time mostly: a mapping per chunk).
 */
const floorScript = join(directory, 'parse-floor.mjs');
await writeFile(
  floorScript,
  `import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
let pending = '';
let lines = 0;
for await (const chunk of createReadStream(process.argv[2]).pipe(createGunzip({ chunkSize: 64 * 1024 })).setEncoding('utf8')) {
  const text = pending + chunk;
  let start = 0;
  for (let end = text.indexOf('\\n'); end !== -1; end = text.indexOf('\\n', start)) {
    if (end > start) { JSON.parse(text.slice(start, end)); lines++; }
    start = end + 1;
  }
  pending = text.slice(start);
}
if (pending !== '') { JSON.parse(pending); lines++; }
console.log(lines);
`,
);

started = performance.now();
const floor = await run('parse floor', [eventsFile], floorScript);
const backtest = await run('backtest', ['backtest', '--rules', rules, '--events', eventsFile, '--conversions', conversionsFile, '--json']);
const discover = runDiscover ? await run('discover', ['discover', '--events', eventsFile, '--conversions', conversionsFile, '--out', suggestedFile, '--top', '15']) : undefined;

// ---- 3. the figures ----

const runs = [floor, backtest, ...(discover ? [discover] : [])];
let failed = false;
const rows = runs.map((result) => {
  const ok = result.exitCode === 0 && result.peakRssBytes < budgetBytes;
  if (!ok) failed = true;
  return [
    result.name,
    count(eventCount),
    result.seconds.toFixed(1),
    count(Math.round(eventCount / result.seconds)),
    result.cpuSeconds.toFixed(1),
    count(Math.round(eventCount / result.cpuSeconds)),
    result === floor ? "100%" : `${((floor.cpuSeconds / result.seconds) * 100).toFixed(0)}%`,
    Number.isNaN(result.peakRssBytes) ? 'unknown' : mib(result.peakRssBytes),
    result.exitCode === 0 ? (ok ? 'PASS' : 'FAIL') : `FAIL (exit ${result.exitCode})`,
  ];
});
const header = ['command', 'events', 'seconds', 'events/s', 'CPU s', 'events/CPU-s', 'of floor', 'peak RSS', `budget < ${mib(budgetBytes)}`];

for (const result of runs) {
  if (result.exitCode !== 0) console.log(`\n${result.name} failed (exit ${result.exitCode}):\n${result.output.slice(-3000)}`);
}
if (backtest.exitCode === 0) {
  const report = JSON.parse(backtest.output.slice(0, backtest.output.lastIndexOf('}') + 1)) as {
    input: { eventsRead: number; entities: { user: number; account: number } };
    period: { from: string; to: string; stepDays: number };
    tiers: { tier: string; qualified: { entities: number }; lift: { value: number; low: number; high: number } | null }[];
  };
  console.log(
    `\nbacktest: ${count(report.input.eventsRead)} events, ${count(report.input.entities.user)} users and ${count(report.input.entities.account)} accounts ` +
      `replayed ${report.period.from} to ${report.period.to} every ${report.period.stepDays}d (examples/activation.rules.yaml); ` +
      report.tiers.map((tier) => `${tier.tier} ${count(tier.qualified.entities)} qualified, lift ${tier.lift ? withInterval(tier.lift, decimals(2), '[low, high]') : 'n/a'}`).join('; '),
  );
}
if (discover?.exitCode === 0) {
  const selected = discover.output.split('\n').filter((row) => row.includes('SELECTED'));
  console.log(`discover: ${selected.length} signals selected:\n${selected.join('\n')}`);
}
console.log(`\n${textTable(header, rows, (column) => column !== 0 && column !== 8)}`);
console.log(
  `\n(wall time of the whole command in a fresh process; CPU s = its user + system time, all threads; "of floor" = the command's events/s (wall) over the parse floor's events/CPU-s, ` +
    `the floor being gunzip + JSON.parse of the same file on one core; peak RSS = process.resourceUsage().maxRSS of that process; ${process.version}, ${availableParallelism()} cores, ` +
    `runs took ${((performance.now() - started) / 1000).toFixed(0)} s)`,
);

if (keep) console.log(`kept ${directory}`);
else await rm(directory, { recursive: true, force: true });
process.exitCode = failed ? 1 : 0;
