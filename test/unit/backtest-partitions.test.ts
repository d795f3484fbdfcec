import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventHistory, replay } from '../../functions/analysis/replay';
import { fileBlocks, fileLines, readEvents } from '../../functions/cli/backtest-input';
import { PartitionedHistory } from '../../functions/cli/backtest-partitions';
import { loadRules } from '../../functions/core/rules/load';
import { cli } from '../support/cli';
import { messagesWithIdentities } from '../support/identity-stream';

/**
 * A backtest on worker threads spills the events to files by entity group, replays the partitions apart and merges
 * them: the figures must be those of one pass over the whole input, for any number of workers and partitions. The
 * stream puts every way entities meet in play: accounts shared by members, anonymous visits claimed later, aliases,
 * an account's traits set by a visitor's group call, repeated messages (one kept: the first), messages without a
 * messageId (their id comes from their line number), and identifiers that are a user's and a visitor's at once.
 */

const dir = mkdtempSync(join(tmpdir(), 'pql-backtest-partitions-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const examples = join(import.meta.dirname, '../../examples');

function eventsFile(): string {
  // Some product events received days after they happened: counted then with asReceived, visitors' ones included.
  const messages = (messagesWithIdentities() as Record<string, unknown>[]).map((message, index) =>
    index % 7 === 3 && ['track', 'page'].includes(message['type'] as string) && typeof message['timestamp'] === 'string'
      ? { ...message, receivedAt: new Date(Date.parse(message['timestamp']) + (1 + (index % 4)) * 86_400_000).toISOString() }
      : message,
  );
  const lines = messages.map((message) => JSON.stringify(message));
  // Repeats, one of them changed (the first kept wins), at both ends of the file so they land in different batches.
  for (let i = 0; i < messages.length; i += 97) lines.push(JSON.stringify(messages[i]));
  lines.splice(3, 0, JSON.stringify({ ...messages[200], properties: { changed: true } }));
  const first = messages[0]!;
  lines.push(
    JSON.stringify({ type: 'group', anonymousId: 'visitor-1', groupId: (messages.find((message) => message['type'] === 'group')!['groupId'] as string), traits: { employees: 5000 }, timestamp: first['timestamp'], messageId: 'visitor-group' }),
    JSON.stringify({ type: 'track', userId: 'visitor-1', event: 'Dashboard Shared', timestamp: first['timestamp'] }),
    JSON.stringify({ type: 'track', userId: 'visitor-1', event: 'Dashboard Shared', timestamp: first['timestamp'] }),
    // A user in two accounts, the second one named by another user's group call: the user and both accounts must be
    // one group (a worker links a user to each account it names, not only to the first).
    ...['first-account', 'second-account'].map((groupId, index) => JSON.stringify({ type: 'track', userId: 'two-accounts', event: 'Dashboard Shared', timestamp: first['timestamp'], messageId: `two-accounts-${index}`, context: { groupId } })),
    JSON.stringify({ type: 'group', userId: 'second-account-founder', groupId: 'second-account', traits: { employees: 5000, plan: 'enterprise', industry: 'software' }, timestamp: first['timestamp'], messageId: 'second-account-founded' }),
    '',
  );
  const file = join(dir, 'events.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('a backtest partitioned on worker threads', () => {
  const file = eventsFile();
  const rulesFiles = ['activation', 'team-accounts', 'plan-limits'].map((name) => join(examples, `${name}.rules.yaml`));

  it.each(rulesFiles)('replays exactly as one pass does, whatever the workers and partitions: %s', async (rulesSource) => {
    const rulesText = readFileSync(rulesSource, 'utf8');
    const ruleset = loadRules(rulesText, rulesSource);
    const replays: ReturnType<typeof replay>[] = [];
    for (const [anonymous, asReceived] of [[false, false], [true, true], [false, true]]) {
      const whole = new EventHistory(ruleset, { anonymous, asReceived });
      for await (const message of readEvents([file])) whole.add(message);
      const { firstTimestamp, lastTimestamp } = whole.stats;
      const options = { from: firstTimestamp!.slice(0, 10), to: lastTimestamp!.slice(0, 10), stepDays: 1 };
      const expected = replay(whole, options);
      replays.push(expected);
      expect(whole.stats.duplicates).toBeGreaterThan(0);
      expect(whole.stats.mergedIdentifiers).toBeGreaterThan(0);
      expect(whole.stats.lateEvents).toBeGreaterThan(0);

      // Lines one by one (as from the table) and in blocks of bytes (as from files).
      for (const [workers, partitionBytes, lines] of [[1, 1e9, fileLines], [3, 30_000, fileBlocks]] as const) {
        const history = await PartitionedHistory.read(lines([file]), { rulesText, rulesSource, workers, partitionBytes, anonymous, asReceived });
        try {
          expect(history.stats).toMatchObject({ eventsRead: whole.stats.messages + whole.stats.duplicates, linesSkipped: 0, firstTimestamp, lastTimestamp });
          const replayed = await history.replay(options);
          // Many partitions, so that groups that span them, if any, would show.
          if (workers === 1) expect(replayed.partitions).toBe(1);
          else expect(replayed.partitions).toBeGreaterThan(20);
          expect(replayed.result).toStrictEqual(expected);
          const { duplicates, lateEvents, mergedIdentifiers, anonymousLeftOut } = whole.stats;
          expect(replayed).toMatchObject({ duplicates, lateEvents, mergedIdentifiers, anonymousLeftOut });
        } finally {
          await history.close();
        }
      }
    }
    // The late events move some decision: had the workers not counted them as received, the figures would differ.
    expect(replays[2]).not.toStrictEqual(replays[0]);
  }, 120_000);

  it('keeps nothing after `until`, as one pass does', async () => {
    const rulesSource = rulesFiles[0]!;
    const rulesText = readFileSync(rulesSource, 'utf8');
    const all = new EventHistory(loadRules(rulesText, rulesSource));
    for await (const message of readEvents([file])) all.add(message);
    const { firstTimestamp, lastTimestamp } = all.stats;
    const until = new Date((Date.parse(firstTimestamp!) + Date.parse(lastTimestamp!)) / 2).toISOString();
    const whole = new EventHistory(loadRules(rulesText, rulesSource), { until });
    for await (const message of readEvents([file])) whole.add(message);
    expect(whole.stats.ignoredAfter).toBeGreaterThan(0);
    const options = { from: firstTimestamp!.slice(0, 10), to: lastTimestamp!.slice(0, 10), stepDays: 1 };
    const expected = replay(whole, options);
    const history = await PartitionedHistory.read(fileLines([file]), { rulesText, rulesSource, workers: 2, partitionBytes: 30_000, until });
    try {
      expect(history.stats).toMatchObject({ firstTimestamp, lastTimestamp: whole.stats.lastTimestamp });
      const replayed = await history.replay(options);
      expect(replayed.result).toStrictEqual(expected);
      expect(replayed).toMatchObject({ duplicates: whole.stats.duplicates, mergedIdentifiers: whole.stats.mergedIdentifiers });
    } finally {
      await history.close();
    }
  }, 120_000);

  it('stops at the first bad line of the input, or counts the bad lines with skipBad', async () => {
    const good = JSON.stringify({ type: 'track', userId: 'ann', event: 'Dashboard Shared', timestamp: '2025-01-01T10:00:00Z' });
    const bad = join(dir, 'bad.jsonl');
    // Far enough apart to be in different batches: the first in the input is the one named.
    writeFileSync(bad, `${Array.from({ length: 5_000 }, (_, i) => (i === 2_500 ? '{"type":"track"' : i === 4_500 ? '[]' : good)).join('\n')}\n`);
    const rulesSource = join(examples, 'activation.rules.yaml');
    const options = { rulesText: readFileSync(rulesSource, 'utf8'), rulesSource, workers: 2 };
    for (const lines of [fileLines, fileBlocks]) {
      await expect(PartitionedHistory.read(lines([bad]), options)).rejects.toThrow(`${bad}:2501: not valid JSON`);
      const skipping = await PartitionedHistory.read(lines([bad]), { ...options, skipBad: true });
      await skipping.close();
      expect(skipping.stats).toMatchObject({ eventsRead: 4_998, linesSkipped: 2 });
      expect(skipping.stats.skipped.map((error) => error.line)).toEqual([2_501, 4_501]);
    }
  });

  it("judges times ahead of the run alike whatever the workers: one clock for the run, as one pass's", async () => {
    const now = new Date('2025-01-03T00:00:00Z');
    const bound = now.getTime() + 86_400_000;
    // Times on both sides of the bound, from either path of validation (sentAt takes zod's), in many batches.
    const lines = Array.from({ length: 7_000 }, (_, i) => {
      const timestamp = new Date(bound + (i % 7) - 3).toISOString();
      return JSON.stringify({ type: 'track', userId: `u${i % 300}`, event: 'Dashboard Shared', timestamp, messageId: `m${i}`, ...(i % 5 === 0 ? { sentAt: timestamp } : {}) });
    });
    const ahead = join(dir, 'ahead.jsonl');
    writeFileSync(ahead, `${lines.join('\n')}\n`);
    const rulesSource = join(examples, 'activation.rules.yaml');
    const rulesText = readFileSync(rulesSource, 'utf8');
    const whole = new EventHistory(loadRules(rulesText, rulesSource));
    const reader = readEvents([ahead], { now, skipBad: true });
    for await (const message of reader) whole.add(message);
    expect(reader.stats.linesSkipped).toBe(3_000);
    const options = { from: '2025-01-04', to: '2025-01-04', stepDays: 1 };
    const expected = replay(whole, options);
    for (const [workers, lines] of [[1, fileLines], [3, fileBlocks]] as const) {
      await expect(PartitionedHistory.read(lines([ahead]), { rulesText, rulesSource, workers, now })).rejects.toThrow(`${ahead}:5: timestamp: is 2025-01-04T00:00:00.001Z, more than a day after it was read`);
      const history = await PartitionedHistory.read(lines([ahead]), { rulesText, rulesSource, workers, partitionBytes: 30_000, now, skipBad: true });
      try {
        expect(history.stats).toMatchObject({ eventsRead: reader.stats.eventsRead, linesSkipped: 3_000, lastTimestamp: whole.stats.lastTimestamp });
        expect(history.stats.skipped.map((error) => error.message)).toEqual(reader.stats.skipped.map((error) => error.message));
        expect((await history.replay(options)).result).toStrictEqual(expected);
      } finally {
        await history.close();
      }
    }
  }, 120_000);

  it('gives the same JSON report from the CLI with one worker and with several', async () => {
    const file = eventsFile();
    const run = async (...extra: string[]) => {
      const result = await cli('backtest', '--rules', 'examples/activation.rules.yaml', '--events', file, '--json', ...extra);
      expect(result.code, result.stderr).toBe(0);
      return result.stdout.replace(/"generatedAt": "[^"]+"/, '');
    };
    const single = await run('--workers', '1');
    expect(JSON.parse(`${single.replace(/^\{\s*,?/, '{')}`)).toHaveProperty('tiers');
    expect(await run('--workers', '3', '--partition-size', '1')).toBe(single);
  }, 120_000);
});
