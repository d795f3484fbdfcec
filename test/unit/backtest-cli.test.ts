import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { BacktestReport } from '../../functions/analysis/report';
import { exampleFiles } from '../../examples/backtest/generate';
import { cli } from '../support/cli';

const root = join(import.meta.dirname, '../..');
const example = join(root, 'examples/backtest');
const dir = mkdtempSync(join(tmpdir(), 'pql-backtest-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const exampleArgs = ['backtest', '--rules', 'examples/activation.rules.yaml', '--events', 'examples/backtest/events.jsonl.gz', '--conversions', 'examples/backtest/conversions.csv'];

describe('pql-radar backtest', () => {
  it('ships an example that the planted-signal generator reproduces exactly', () => {
    const files = exampleFiles();
    expect(gunzipSync(readFileSync(join(example, 'events.jsonl.gz'))).toString('utf8')).toBe(files.events);
    expect(readFileSync(join(example, 'conversions.csv'), 'utf8')).toBe(files.conversions);
  });

  it('runs the example: a summary on stdout, the report as JSON, and the HTML report', async () => {
    const summary = await cli(...exampleArgs);
    expect(summary.code, summary.stderr).toBe(0);
    expect(summary.stdout).toContain('Backtest of examples/activation.rules.yaml');
    expect(summary.stdout).toMatch(/^PQL-A\s+user\s+\d+\/\d+/m);

    const html = join(dir, 'report.html');
    const json = await cli(...exampleArgs, '--json', '--report', html);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as BacktestReport;
    expect(report.period).toEqual({ from: '2025-01-30', to: '2025-03-30', stepDays: 1, horizonDays: 30 });
    expect(report.input).toEqual({ eventsRead: 30_724, linesSkipped: 0, entities: { user: 1_000, account: 100 }, mergedIdentifiers: 0, anonymousLeftOut: 0, lateEvents: 0, asReceived: false, conversions: 197, conversionsFrom: 'the file examples/backtest/conversions.csv' });
    // Activation drives conversion in the example; sharing dashboards (key_feature) does not.
    const pqlA = report.tiers.find((tier) => tier.tier === 'PQL-A')!;
    expect(pqlA.lift!.low).toBeGreaterThan(1);
    const signal = (name: string) => report.signals.find((candidate) => candidate.signal === name)!;
    expect(signal('activated').lift!.low).toBeGreaterThan(3);
    expect(signal('key_feature').lift!.low).toBeLessThan(1);
    expect(signal('key_feature').lift!.high).toBeGreaterThan(1);
    // The summary and the JSON are the same figures.
    expect(summary.stdout).toContain(`${pqlA.qualified.converted}/${pqlA.qualified.entities}`);
    expect(json.stderr).toContain(`wrote ${html}`);
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/i);
  }, 120_000);

  it('takes conversions from the event stream by default, by the rules file conversion, and says so', async () => {
    const json = await cli(...exampleArgs.slice(0, -2), '--json');
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as BacktestReport;
    // The sample's users move to the pro plan at conversion; conversions after the events end are not in the stream.
    expect(report.input).toEqual({ eventsRead: 30_724, linesSkipped: 0, entities: { user: 1_000, account: 100 }, mergedIdentifiers: 0, anonymousLeftOut: 0, lateEvents: 0, asReceived: false, conversions: 112, conversionsFrom: 'the event stream, by the rules file\'s conversion (trait "plan" "pro")' });
    expect(report.tiers.find((tier) => tier.tier === 'PQL-A')!.lift!.low).toBeGreaterThan(1);
    expect(report.signals.find((candidate) => candidate.signal === 'activated')!.lift!.low).toBeGreaterThan(3);

    const rules = join(dir, 'no-conversion.rules.yaml');
    writeFileSync(rules, readFileSync(join(root, 'examples/activation.rules.yaml'), 'utf8').replace(/\nconversion:\n  trait: plan\n  is: pro\n/, '\n'));
    const without = await cli('backtest', '--rules', rules, '--events', 'examples/backtest/events.jsonl.gz');
    expect(without.code).toBe(1);
    expect(without.stderr).toContain(`${rules} defines no conversion: add one (e.g. conversion: { event: Order Completed }) or give --conversions FILE`);
  }, 120_000);

  it('with --to, counts the conversions the events after it hold within the horizon, as a conversions file of them does', async () => {
    const at = (day: string, hour: number) => `2025-03-${day}T${String(hour).padStart(2, '0')}:00:00.000Z`;
    const identify = (userId: string, timestamp: string, traits: Record<string, unknown>) => ({ type: 'identify', userId, messageId: `${userId}-${timestamp}`, timestamp, traits });
    const track = (userId: string, timestamp: string) => ({ type: 'track', userId, event: 'X', messageId: `${userId}-x-${timestamp}`, timestamp });
    const events = [
      ...['u1', 'u2', 'u3'].map((id) => identify(id, at('01', 9), { plan: 'free' })),
      track('u1', at('02', 10)),
      track('u2', at('03', 10)),
      identify('u3', at('04', 12), { plan: 'pro' }),
      // After --to: u1, qualified on 03-02, converts within the horizon.
      identify('u1', at('05', 12), { plan: 'pro' }),
    ];
    const eventsFile = join(dir, 'to-conversions.jsonl');
    writeFileSync(eventsFile, events.map((event) => JSON.stringify(event)).join('\n') + '\n');
    const conversionsFile = join(dir, 'to-conversions.csv');
    writeFileSync(conversionsFile, `entity_type,entity_id,converted_at\nuser,u1,${at('05', 12)}\nuser,u3,${at('04', 12)}\n`);
    const rules = join(dir, 'to-conversions.rules.yaml');
    writeFileSync(rules, 'version: 1\nsignals:\n  did_x: { event: X, points: 10 }\ntiers:\n  - { name: A, min_score: 10, route: sales }\nconversion: { trait: plan, is: pro }\n');
    const tierA = async (...more: string[]) => {
      const run = await cli('backtest', '--rules', rules, '--events', eventsFile, '--to', '2025-03-04', '--json', ...more);
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as BacktestReport;
      return { conversions: report.input.conversions, qualified: report.tiers[0]!.qualified };
    };
    const fromStream = await tierA();
    expect(fromStream.conversions).toBe(2);
    expect(fromStream.qualified).toMatchObject({ entities: 2, converted: 1 });
    expect(fromStream).toEqual(await tierA('--conversions', conversionsFile));
  }, 60_000);

  it('discover takes conversions from the events as told, or from a file, and says which', async () => {
    const events = ['--events', 'examples/backtest/events.jsonl.gz', '--min-users', '1000000'];
    const fromTrait = await cli('discover', ...events, '--conversion-trait', 'plan=pro,business');
    expect(fromTrait.code, fromTrait.stderr).toBe(0);
    expect(fromTrait.stdout).toContain('read 30,724 messages and 112 user conversions from the events (trait "plan" {"in":["pro","business"]})');
    const fromEvent = await cli('discover', ...events, '--conversion-event', 'Plan Limit Reached');
    expect(fromEvent.stdout).toMatch(/read 30,724 messages and \d+ user conversions from the events \(event "Plan Limit Reached"\)/);
    const fromFile = await cli('discover', ...events, '--conversions', 'examples/backtest/conversions.csv');
    expect(fromFile.stdout).toContain('read 30,724 messages and 133 user conversions from the file examples/backtest/conversions.csv (64 account conversions left out: discover learns from users)');
    const misspelt = await cli('discover', ...events, '--conversion-event', 'Plan Limit Reachd');
    expect(misspelt.code).toBe(1);
    expect(misspelt.stderr).toBe('pql-radar: no user conversions in the events (event "Plan Limit Reachd"): nothing to learn from\n');
    const neither = await cli('discover', ...events);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toContain('say what converting means with one of --conversion-event NAME, --conversion-trait NAME=VALUES or --conversions FILE');
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    const nothing = await cli('discover', '--events', empty, '--conversion-event', 'Plan Limit Reached');
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toBe(`pql-radar: no events to learn from in ${empty}\n`);
    const malformed = await cli('discover', ...events, '--conversion-trait', 'plan');
    expect(malformed.stderr).toContain('--conversion-trait plan: must be NAME=VALUE[,VALUE...]');
  }, 120_000);

  it("gives a conversion the file lists under a claimed visitor's anonymousId to its user, with one worker or two", async () => {
    const events = join(dir, 'claimed.jsonl');
    writeFileSync(
      events,
      [
        { type: 'track', anonymousId: 'v1', event: 'Logged In', timestamp: '2025-03-01T07:00:00Z', messageId: 'a' },
        { type: 'track', userId: 'u1', anonymousId: 'v1', event: 'Data Exported', timestamp: '2025-03-02T07:00:00Z', messageId: 'b' },
        { type: 'track', userId: 'u2', event: 'Logged In', timestamp: '2025-03-05T08:00:00Z', messageId: 'c' },
      ].map((line) => JSON.stringify(line)).join('\n'),
    );
    const rules = join(dir, 'claimed.rules.yaml');
    writeFileSync(rules, 'version: 1\nsignals:\n  exported: { event: Data Exported, points: 10 }\ntiers:\n  - { name: lead, min_score: 10, route: sales }\n');
    const conversions = join(dir, 'claimed.csv');
    writeFileSync(conversions, 'entity_type,entity_id,converted_at\nvisitor,v1,2025-03-04T12:00:00Z\n');
    for (const workers of ['1', '2']) {
      const { code, stdout, stderr } = await cli('backtest', '--rules', rules, '--events', events, '--conversions', conversions, '--workers', workers, '--json');
      expect(code, stderr).toBe(0);
      const report = JSON.parse(stdout) as BacktestReport;
      expect(report.tiers[0]!.qualified).toMatchObject({ entities: 1, converted: 1 });
      expect(report.warnings.filter((warning) => warning.includes('never appear'))).toEqual([]);
    }
  });

  it('counts the events received on a later day, and with --as-received counts them from then: the report says which', async () => {
    const events = join(dir, 'late.jsonl');
    const track = (day: string, receivedDay: string) => JSON.stringify({ type: 'track', userId: 'ann', event: 'Data Exported', messageId: `export-${day}`, timestamp: `2025-01-${day}T10:00:00Z`, receivedAt: `2025-01-${receivedDay}T10:00:00Z` });
    writeFileSync(events, `${track('01', '01')}\n${track('02', '05')}\n${track('06', '06')}\n`);
    const args = ['backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--conversions', join(dir, 'none.csv')];
    writeFileSync(join(dir, 'none.csv'), 'entity_type,entity_id,converted_at\n');
    const timed = await cli(...args);
    expect(timed.code, timed.stderr).toBe(0);
    expect(timed.stdout).toContain('Late events: 1 product event received on a later day than it happened, counted from their own time; the live evaluator counts them once received (--as-received replays that)');
    const received = await cli(...args, '--as-received', '--json');
    expect(received.code, received.stderr).toBe(0);
    expect((JSON.parse(received.stdout) as BacktestReport).input).toMatchObject({ eventsRead: 3, lateEvents: 1, asReceived: true });
  }, 60_000);

  it('exits non-zero naming the file and line of a malformed event, and skips it with --skip-bad', async () => {
    const events = join(dir, 'events.jsonl');
    const good = (day: string) => JSON.stringify({ type: 'track', userId: 'ann', event: 'Dashboard Shared', timestamp: `2025-01-${day}T10:00:00Z` });
    writeFileSync(events, `${good('01')}\n${good('02')}\n{"type":"track","userId":"ann"\n${good('03')}\n`);
    const conversions = join(dir, 'conversions.csv');
    writeFileSync(conversions, 'entity_type,entity_id,converted_at\nuser,ann,2025-01-20\n');
    const args = ['backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--conversions', conversions];

    const failed = await cli(...args);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toMatch(new RegExp(`^pql-radar: ${events.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: not valid JSON \\(.+\\) \\(--skip-bad skips such lines and counts them\\)\\n$`));

    const skipped = await cli(...args, '--skip-bad', '--json');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toContain(`skipped 1 bad lines; the first: ${events}:3: not valid JSON`);
    const report = JSON.parse(skipped.stdout) as BacktestReport;
    expect(report.input).toMatchObject({ eventsRead: 3, linesSkipped: 1 });
    expect(report.warnings).toContain('1 malformed input lines were skipped (--skip-bad).');

    const badConversions = join(dir, 'bad-conversions.csv');
    writeFileSync(badConversions, 'entity_type,entity_id,converted_at\nuser,ann,soon\n');
    const badConversion = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--conversions', badConversions, '--skip-bad');
    expect(badConversion.code).toBe(1);
    expect(badConversion.stderr).toContain(`${badConversions}:2: converted_at: must be an ISO 8601 date`);

    const badStep = await cli(...args, '--step', '1h');
    expect(badStep.code).toBe(1);
    expect(badStep.stderr).toContain('--step must be a number of days or weeks, at least 1');
    expect(existsSync(join(dir, 'nothing.html'))).toBe(false);
  }, 120_000);

  it("refuses an event more than a day after the run, without receivedAt too, and with --skip-bad the period ends at the last event's day", async () => {
    const events = join(dir, 'wrong-clock.jsonl');
    const track = (day: string) => JSON.stringify({ type: 'track', userId: 'ann', event: 'Dashboard Shared', timestamp: `${day}T10:00:00Z` });
    writeFileSync(events, `${track('2025-01-01')}\n${track('2025-01-02')}\n${track('2125-01-01')}\n${track('2025-01-03')}\n`);
    const args = ['backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--json'];
    const failed = await cli(...args);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`^pql-radar: ${events.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: timestamp: is 2125-01-01T10:00:00.000Z, more than a day after it was read \\(.+\\): an event not yet happened, from a wrong clock \\(--skip-bad skips such lines and counts them\\)\\n$`));
    const skipped = await cli(...args, '--skip-bad');
    expect(skipped.code, skipped.stderr).toBe(0);
    const report = JSON.parse(skipped.stdout) as BacktestReport;
    expect(report.input).toMatchObject({ eventsRead: 3, linesSkipped: 1 });
    expect(report.period).toMatchObject({ from: '2025-01-01', to: '2025-01-03' });
  }, 120_000);

  it('refuses a --report or --out path it could not write before reading or generating any events, naming the option, and creates no file', async () => {
    // Events that do not exist: a command that reads them before checking its output path names them instead.
    const events = join(dir, 'never-read.jsonl');
    const aFile = join(dir, 'a-file.txt');
    writeFileSync(aFile, '');
    const unwritable: [path: string, reason: string][] = [
      [join(dir, 'no-such-directory', 'report.html'), `the directory ${join(dir, 'no-such-directory')} does not exist`],
      [dir, 'is a directory; give the name of a file to write'],
      [join(aFile, 'report.html'), `${aFile} is not a directory`],
    ];
    for (const [path, reason] of unwritable) {
      const backtest = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--report', path);
      expect(backtest.code).toBe(1);
      expect(backtest.stderr).toBe(`pql-radar: --report ${path}: ${reason}\n`);
      const discover = await cli('discover', '--events', events, '--conversions', 'examples/backtest/conversions.csv', '--out', path);
      expect(discover.code).toBe(1);
      expect(discover.stderr).toBe(`pql-radar: --out ${path}: ${reason}\n`);
      const sample = await cli('sample', '--out', path);
      expect(sample.code).toBe(1);
      expect(sample.stderr).toBe(`pql-radar: --out ${path}: ${reason}\n`);
    }
    // A good path passes the check without being created: the run that fails later leaves nothing there.
    const report = join(dir, 'not-written.html');
    const failed = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--report', report);
    expect(failed.stderr).toBe(`pql-radar: ${events}: no such file\n`);
    expect(existsSync(report)).toBe(false);
  }, 60_000);

  it('sample --out writes the stream and says on stderr what it wrote, as the other commands writing a file do', async () => {
    const out = join(dir, 'sample.jsonl');
    const sample = await cli('sample', '--out', out, '--users', '5', '--days', '3');
    expect(sample.code, sample.stderr).toBe(0);
    expect(sample.stdout).toBe('');
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(sample.stderr).toBe(`wrote ${lines.length} events of 5 users over 3 days to ${out}\n`);
  });

  // Root may write anywhere: the permission check can only be seen failing as another user.
  it.skipIf(process.getuid?.() === 0)('refuses a --report in a directory it may not write in, or a file it may not overwrite', async () => {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    const readOnly = join(dir, 'read-only.html');
    writeFileSync(readOnly, '');
    chmodSync(readOnly, 0o444);
    chmodSync(locked, 0o555);
    try {
      const events = join(dir, 'never-read.jsonl');
      const inLocked = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--report', join(locked, 'report.html'));
      expect(inLocked.stderr).toBe(`pql-radar: --report ${join(locked, 'report.html')}: no file can be created in ${locked}: permission denied\n`);
      const overwrite = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--report', readOnly);
      expect(overwrite.stderr).toBe(`pql-radar: --report ${readOnly}: cannot be written: permission denied\n`);
    } finally {
      chmodSync(locked, 0o755);
    }
  }, 60_000);

  it('leaves no temporary files behind, whether it ends or is stopped by Ctrl-C mid-run', async () => {
    // The example's events five times over (repeats are read, spilled and counted once): a run of a few seconds.
    const events = join(dir, 'repeated.jsonl');
    writeFileSync(events, gunzipSync(readFileSync(join(example, 'events.jsonl.gz'))).toString('utf8').repeat(5));
    const temporary = join(dir, 'tmp');
    mkdirSync(temporary);
    const run = () =>
      spawn(process.execPath, [join(root, 'bin/pql-radar.js'), 'backtest', '--rules', 'examples/activation.rules.yaml', '--events', events, '--conversions', 'examples/backtest/conversions.csv', '--workers', '1'], {
        cwd: root,
        env: { ...process.env, TMPDIR: temporary },
        stdio: 'ignore',
      });
    const ended = (child: ReturnType<typeof run>) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('close', (code, signal) => done({ code, signal })));
    // Its own, that is: tsx keeps a cache there too.
    const backtestDirectories = () => readdirSync(temporary).filter((name) => name.startsWith('pql-radar-backtest-'));
    const spilling = () => backtestDirectories().some((name) => existsSync(join(temporary, name, 'spill-0')));

    expect(await ended(run())).toEqual({ code: 0, signal: null });
    expect(backtestDirectories()).toEqual([]);

    const stopped = run();
    const end = ended(stopped);
    while (!spilling()) await sleep(10);
    stopped.kill('SIGINT');
    // Ended by the signal, as Ctrl-C ends a command, with its spill gone.
    expect(await end).toEqual({ code: null, signal: 'SIGINT' });
    expect(backtestDirectories()).toEqual([]);
  }, 120_000);

  it('goes on to its end when its output is piped to a reader that stops early (`| head`): discover still writes its rules file', async () => {
    const out = join(dir, 'piped.rules.yaml');
    const child = spawn(process.execPath, [join(root, 'bin/pql-radar.js'), 'discover', '--events', 'examples/backtest/events.jsonl.gz', '--conversions', 'examples/backtest/conversions.csv', '--out', out], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader goes away after the first line, as head -1 would: every later write meets a closed pipe (EPIPE).
    child.stdout.once('data', () => child.stdout.destroy());
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((done) => child.once('close', done));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^signals:/m);
  }, 120_000);
});
