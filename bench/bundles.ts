/**
 * `npm run bench:bundles`: each Lambda's bundle size and its init time (importing the bundle in a fresh Node
 * process, median of BENCH_RUNS, 10 by default), with the AWS SDK bundled (as deployed) beside the same function with the SDK left out.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiledRulesJson } from '../functions/core/rules/ruleset';
import { loadRulesFile } from '../lib/config';
import { ingestEntries } from '../lib/ingest-api';
import { lambdaBundling } from '../lib/lambda-bundling';
import { bundleFunction, projectRoot } from './bundle';
import { positiveInt } from './knobs';

const runs = positiveInt('BENCH_RUNS', 10);

/** The evaluator reads its rules as the stack bundles them: compiled at synth (lib/evaluator.ts). */
const rulesJson = join(projectRoot, 'node_modules/.cache/pql-radar-bench/rules.json');
mkdirSync(join(rulesJson, '..'), { recursive: true });
writeFileSync(rulesJson, compiledRulesJson(loadRulesFile(join(projectRoot, 'examples/activation.rules.yaml')).ruleset));

/** Each function with the environment its module needs at import time (what the stack sets); ingest in each of its entries (lib/ingest-api.ts). */
const functions: { name: string; entry: string; env: Record<string, string> }[] = [
  { name: 'ingest', entry: ingestEntries.direct.entry, env: { TABLE_NAME: 'pql-radar' } },
  { name: 'ingest-kinesis', entry: ingestEntries.kinesis.entry, env: { TABLE_NAME: 'pql-radar', [ingestEntries.kinesis.variable]: 'pql-radar-IngestBuffer' } },
  { name: 'ingest-firehose', entry: ingestEntries.firehose.entry, env: { TABLE_NAME: 'pql-radar', [ingestEntries.firehose.variable]: 'pql-radar-Requests' } },
  { name: 'ingest-buffer', entry: 'functions/ingest-buffer/handler.ts', env: { TABLE_NAME: 'pql-radar' } },
  { name: 'buffer-loader', entry: 'functions/ingest-buffer-loader/handler.ts', env: { TABLE_NAME: 'pql-radar' } },
  { name: 'lead-status', entry: 'functions/lead-status/handler.ts', env: { TABLE_NAME: 'pql-radar' } },
  {
    name: 'evaluator',
    entry: 'functions/evaluator/handler.ts',
    env: { TABLE_NAME: 'pql-radar', EVENT_BUS_NAME: 'pql-radar-leads', RULES_FILE: rulesJson },
  },
  {
    name: 'notifier',
    entry: 'functions/notifier/handler.ts',
    env: {
      TABLE_NAME: 'pql-radar',
      DESTINATION_ID: 'sales-webhook-1',
      DESTINATION_KIND: 'webhook',
      SECRET_ID: 'hook',
      WEBHOOK_URL: 'https://hooks.example.com/pql',
      REQUESTS_PER_SECOND: '10',
      QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/delivery.fifo',
      DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters.fifo',
    },
  },
  { name: 'rule-health', entry: 'functions/health/handler.ts', env: { TABLE_NAME: 'pql-radar', TIER_ORDER: '["PQL-A","PQL-B"]' } },
  { name: 'bootstrap', entry: 'functions/bootstrap/handler.ts', env: {} },
];

/**
 * The import's wall time, and the CPU time the process spent on it (all threads): on a busy machine the wall time
 * grows with the wait for a CPU, the CPU time hardly, so it tells what an idle machine's wall time would be.
 */
function initMs(file: string, env: Record<string, string>): { wall: number; cpu: number } {
  const script =
    'const t = performance.now(); const c = process.cpuUsage(); await import(process.argv[1]); const u = process.cpuUsage(c);' +
    ' console.log(performance.now() - t, (u.user + u.system) / 1000);';
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script, pathToFileURL(file).href], {
    env: { PATH: process.env['PATH'] ?? '', AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    encoding: 'utf8',
  });
  const [wall, cpu] = output.trim().split(' ').map(Number);
  return { wall: wall!, cpu: cpu! };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`.padStart(8);
console.log(`Lambda bundles (lib/lambda-bundling.ts: minified ESM, ${lambdaBundling.target} target); init = import in a fresh Node ${process.version} process, median of ${runs}`);
console.log('function        SDK bundled: size     gzip   init ms    cpu ms   |  SDK external: size     gzip   init ms    cpu ms');
for (const fn of functions) {
  const row: string[] = [fn.name.padEnd(15)];
  for (const sdk of ['bundled', 'external'] as const) {
    const bundle = await bundleFunction(fn.entry, { sdk });
    const times = Array.from({ length: runs }, () => initMs(bundle.outfile, fn.env));
    const ms = (pick: (time: { wall: number; cpu: number }) => number) => median(times.map(pick)).toFixed(1).padStart(9);
    row.push(`${kb(bundle.bytes)} ${kb(bundle.gzipBytes)} ${ms((time) => time.wall)} ${ms((time) => time.cpu)}`);
  }
  console.log(`${row[0]}${' '.repeat(7)}${row[1]}   |${' '.repeat(9)}${row[2]}`);
}
console.log('init ms: wall time of the import; cpu ms: CPU time the process spent on it, which waiting for a busy CPU does not inflate.');
console.log("SDK external: @aws-sdk/* and @smithy/* resolved from this project's node_modules, as the runtime's own SDK copy would be on Lambda.");
