import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

/** `npm start` as the README has a newcomer run it: what it prints, an event sent as it says, Ctrl-C. */
interface Started {
  url: string;
  writeKey: string;
  dynamoPort: number;
  banner: string;
  /** Sends Ctrl-C and waits for the end: its exit code. */
  stop: () => Promise<number | null>;
  /** The process started: npm, or the CLI. */
  pid: number;
  /** Its exit code once it ends on its own. */
  ended: Promise<number | null>;
  /** What it printed so far, stdout and stderr. */
  output: () => string;
}

/**
 * `npm start` itself (through the npm that runs the tests), or the CLI it runs; `dataDir` undefined keeps the data in
 * memory. `more` adds options (later ones win) and environment variables.
 */
async function startDevCommand(dataDir: string | undefined, through: 'cli' | 'npm start' = 'cli', more: { options?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Started> {
  let pid: number;
  const options = ['--port', '0', '--dynamodb-port', '0', ...(dataDir !== undefined ? ['--data-dir', dataDir] : []), '--evaluate-every', '500ms', ...(more.options ?? [])];
  const npm = process.env['npm_execpath'];
  const [command, args] =
    through === 'cli' ? [process.execPath, [join(root, 'bin/pql-radar.js'), 'dev', ...options]] : npm?.endsWith('.js') ? [process.execPath, [npm, 'start', '--', ...options]] : ['npm', ['start', '--', ...options]];
  // npm start leads a process group of its own, so that the test can end whatever a failure leaves running.
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...more.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: through === 'npm start' });
  pid = child.pid!;
  const ended = new Promise<number | null>((done) => child.once('close', (code) => done(code)));
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const banner = await new Promise<string>((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops everything.')) done(output);
    });
    void ended.then(() => fail(new Error(`pql-radar dev ended before it was ready:\n${output}`)));
  });
  return {
    url: /ingest endpoint +(http:\/\/\S+?)\/v1\//.exec(banner)![1]!,
    writeKey: /write key +(pqr_\S+)/.exec(banner)![1]!,
    dynamoPort: Number(/DynamoDB +http:\/\/127\.0\.0\.1:(\d+)/.exec(banner)![1]),
    banner,
    pid,
    ended,
    output: () => output,
    stop: async () => {
      child.kill('SIGINT');
      return ended;
    },
  };
}

const track = (url: string, writeKey: string) =>
  fetch(`${url}/v1/track`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'user-1', event: 'Dashboard Created', properties: { dashboards: 1 } }),
  });

/** Whether anything still listens on the port (DynamoDB Local's Java process, once stopped, does not). */
const listening = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });

describe('pql-radar dev (npm start)', () => {
  it('takes an event sent as it prints, stops everything on Ctrl-C, and with --data-dir keeps the data and the earlier write keys', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pql-radar-dev-data-'));
    const first = await startDevCommand(dataDir);
    expect(first.banner).toContain(`data in ${dataDir}`);
    expect(first.banner).toContain('a new one each start, and the earlier ones still accepted: --write-key KEY keeps one');
    const sent = await track(first.url, first.writeKey);
    expect(await sent.json()).toEqual({ success: true });
    expect(await first.stop()).toBe(0);
    expect(await listening(first.dynamoPort)).toBe(false);
    // DynamoDB Local stopped by Ctrl-C is no failure to tell.
    expect(first.output()).not.toContain('DynamoDB Local exited');

    const second = await startDevCommand(dataDir);
    expect(second.writeKey).not.toBe(first.writeKey);
    // The first start's key is in the kept table: an SDK configured with it goes on sending.
    expect(await (await track(second.url, first.writeKey)).json()).toEqual({ success: true });
    expect(await second.stop()).toBe(0);
    expect(await listening(second.dynamoPort)).toBe(false);
  }, 120_000);

  it('stops everything when a process manager stops npm start with SIGTERM to npm alone', async () => {
    const started = await startDevCommand(mkdtempSync(join(tmpdir(), 'pql-radar-dev-')), 'npm start');
    const ingestPort = Number(new URL(started.url).port);
    expect(await listening(started.dynamoPort)).toBe(true);
    // Not the process group, as Ctrl-C in a terminal does: the signal reaches npm only, which hands it to its script.
    process.kill(started.pid, 'SIGTERM');
    let left = [true, true];
    try {
      for (let waited = 0; waited < 30_000 && left.some(Boolean); waited += 250) {
        await sleep(250);
        left = await Promise.all([listening(ingestPort), listening(started.dynamoPort)]);
      }
    } finally {
      try {
        process.kill(-started.pid, 'SIGKILL');
      } catch {
        // The group is gone: nothing was left.
      }
    }
    expect(left).toEqual([false, false]);
  }, 120_000);

  it('stops cleanly on a Ctrl-C sent as soon as the banner is read', async () => {
    // A DynamoDB it was given: nothing to start, so the banner comes soonest.
    const started = await startDevCommand(undefined, 'cli', { env: { AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint') } });
    expect(await started.stop()).toBe(0);
  }, 120_000);

  it('says a DynamoDB it was given is external, not in memory nor in --data-dir: its data is its own', async () => {
    const endpoint = inject('dynamoEndpoint');
    const started = await startDevCommand(mkdtempSync(join(tmpdir(), 'pql-radar-dev-data-')), 'cli', { env: { AWS_ENDPOINT_URL_DYNAMODB: endpoint } });
    // Stopped first, so that a failed expectation leaves nothing running.
    expect(await started.stop()).toBe(0);
    expect(started.banner).toContain(`DynamoDB         ${endpoint} (table pql-radar, external)`);
  }, 120_000);

  it('says the evaluator is off with --evaluate-every 0s, rather than that it runs every 0 s', async () => {
    const started = await startDevCommand(undefined, 'cli', { options: ['--evaluate-every', '0s'], env: { AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint') } });
    expect(await started.stop()).toBe(0);
    expect(started.banner).toContain('evaluator off (--evaluate-every 0s): it runs only when replay --paced asks (POST /local/evaluate)');
    expect(started.banner).not.toContain('every 0 s');
  }, 120_000);

  it('says so in one line and stops everything, exiting 1, when DynamoDB Local exits on its own', async () => {
    const started = await startDevCommand(undefined);
    const ingestPort = Number(new URL(started.url).port);
    // DynamoDB Local's Java process is the CLI's child.
    const java = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(started.pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find(([, command]) => command === 'java')!;
    process.kill(Number(java[0]), 'SIGKILL');
    // Stopped with Ctrl-C when it keeps running half-dead, as it did, so that the test leaves nothing running.
    expect(await Promise.race([started.ended, sleep(30_000).then(async () => `still running (then ${await started.stop()})`)])).toBe(1);
    expect(started.output().match(/DynamoDB Local exited/g)).toEqual(['DynamoDB Local exited']);
    expect(started.output()).toContain('pql-radar: DynamoDB Local exited (signal SIGKILL); stopping pql-radar\n');
    expect(await listening(ingestPort)).toBe(false);
  }, 120_000);
});
