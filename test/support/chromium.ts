import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { LaunchOptions } from 'playwright-core';

/**
 * Debian's Chromium for the browser tests, driven by playwright-core (which downloads no browser of its own: the
 * machines reach Debian's and npm's registries and nothing else). CI starts from a clean machine, so the first test
 * that needs it installs it with apt-get when it can.
 */

export const chromiumPath = '/usr/bin/chromium';

/**
 * The machine's network is closed: without these, Chromium keeps trying to reach its update, sync and field-trial
 * servers and hammers refused connections. Playwright adds --headless and --no-sandbox itself too; repeating them is
 * harmless and keeps these options right for a launch that ignores Playwright's defaults.
 */
export const chromiumArgs: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Options for playwright-core's `chromium.launch`. Each launch gets a fresh user data dir: Playwright creates a new
 * temporary profile for every non-persistent launch and deletes it on close (it refuses --user-data-dir in args).
 */
export function chromiumLaunchOptions(executablePath: string): LaunchOptions {
  return { executablePath, headless: true, args: [...chromiumArgs] };
}

let ensured: Promise<string> | undefined;

/**
 * The path of Debian's Chromium, installing it first when it is missing and this process may: as root, with apt-get
 * on the PATH. Installing takes a minute or two on a clean machine; when Chromium is present this returns at once.
 */
export function ensureChromium(): Promise<string> {
  ensured ??= locateOrInstall().catch((error: unknown) => {
    ensured = undefined; // a later call may try again
    throw error;
  });
  return ensured;
}

async function locateOrInstall(): Promise<string> {
  if (isExecutable(chromiumPath)) return chromiumPath;
  const aptGet = onPath('apt-get');
  const root = process.getuid?.() === 0;
  if (!aptGet || !root) {
    throw new Error(
      `Chromium is not installed at ${chromiumPath}, and this process cannot install it ` +
        `(${!aptGet ? 'no apt-get on the PATH' : 'not running as root'}). ` +
        'Install it with: sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium',
    );
  }
  const started = Date.now();
  process.stderr.write(`[ensureChromium] ${chromiumPath} is missing: installing Debian's chromium with apt-get…\n`);
  // Several test files (separate processes) may need Chromium at once: one installs under a file lock, the others
  // wait for it and find Chromium there. dpkg's own lock is waited for too, should anything else hold it.
  const lockWait = '-o DPkg::Lock::Timeout=600';
  const install = `${aptGet} update ${lockWait} && ${aptGet} install -y --no-install-recommends ${lockWait} chromium`;
  await run('flock', ['--wait', '900', join(tmpdir(), 'pql-radar-chromium-install.lock'), 'sh', '-c', `test -x ${chromiumPath} || { ${install}; }`]);
  if (!isExecutable(chromiumPath)) {
    throw new Error(`apt-get installed chromium, but ${chromiumPath} is still missing or not executable`);
  }
  process.stderr.write(`[ensureChromium] installed ${chromiumPath} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return chromiumPath;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(command: string): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter);
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, command);
    if (existsSync(candidate) && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Runs one apt-get step; on failure the error carries the end of its output (e.g. "Could not resolve host"). */
function run(command: string, args: string[]): Promise<void> {
  const shown = `${command} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => reject(new Error(`Could not run ${shown}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      reject(
        new Error(
          `Installing Chromium failed: \`${shown}\` exited with ${signal ?? `code ${code}`} ` +
            '(no network to the Debian mirror? apt sources broken?). Its last output:\n' +
            output.trim().split('\n').slice(-20).join('\n'),
        ),
      );
    });
  });
}
