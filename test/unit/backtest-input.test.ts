import { identityKey } from '../../functions/core/identity';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { fileBlocks, fileLines, InputError, linesOfBlock, maxLineBytes, parseTime, readConversions, readEvents, readLines, splitCsvLine, type Progress, type SourceLine, withSkipBadHint } from '../../functions/cli/backtest-input';

const dir = mkdtempSync(join(tmpdir(), 'pql-backtest-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

const track = (userId: string, timestamp: string, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'track', event: 'Logged In', userId, timestamp, messageId: `${userId}-${timestamp}`, ...extra });
const good = [track('ann', '2025-01-01T10:00:00Z'), track('bob', '2025-01-02T10:00:00Z'), JSON.stringify({ type: 'identify', anonymousId: 'a-1', traits: { plan: 'free' }, originalTimestamp: '2025-01-03T10:00:00Z', sentAt: '2025-01-03T10:00:05Z', receivedAt: '2025-01-03T10:00:07Z' })];

async function collect(files: string[], options: Parameters<typeof readEvents>[1] = {}) {
  const reader = readEvents(files, options);
  const messages = [];
  for await (const message of reader) messages.push(message);
  return { messages, stats: reader.stats };
}

async function failure(promise: Promise<unknown>): Promise<InputError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError');
}

describe('readEvents', () => {
  it('streams JSONL and gzipped JSONL through ingest validation, with resolved timestamps and user keys', async () => {
    const plain = file('events.jsonl', `${good.join('\n')}\n\n`);
    const zipped = file('more.jsonl.gz', gzipSync(`${track('cy', '2025-01-04T10:00:00Z')}\r\n${track('cy', '2025-01-05T10:00:00Z')}`));
    const { messages, stats } = await collect([plain, zipped]);
    expect(messages.map((message) => [identityKey(message.identity), message.timestamp])).toEqual([
      ['user:ann', '2025-01-01T10:00:00.000Z'],
      ['user:bob', '2025-01-02T10:00:00.000Z'],
      // Clock-skew corrected as ingest does: receivedAt - (sentAt - originalTimestamp).
      ['visitor:a-1', '2025-01-03T10:00:02.000Z'],
      ['user:cy', '2025-01-04T10:00:00.000Z'],
      ['user:cy', '2025-01-05T10:00:00.000Z'],
    ]);
    expect(stats).toEqual({ eventsRead: 5, linesSkipped: 0, skipped: [] });
  });

  it('reads a file that begins with a UTF-8 byte order mark, gzipped or not (.gz in either case), from its first event', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const text = `${good[0]}\n${good[1]}\n`;
    const plain = file('bom.jsonl', Buffer.concat([bom, Buffer.from(text)]));
    const zipped = file('bom.JSONL.GZ', gzipSync(Buffer.concat([bom, Buffer.from(text)])));
    const { messages } = await collect([plain, zipped]);
    expect(messages.map((message) => identityKey(message.identity))).toEqual(['user:ann', 'user:bob', 'user:ann', 'user:bob']);
  });

  it('stops at a malformed line naming the file, the line and the reason', async () => {
    const bad = file('bad.jsonl', [good[0], '{"type":"track",', good[1]].join('\n'));
    expect((await failure(collect([bad]))).message).toBe(`${bad}:2: not valid JSON (${jsonError('{"type":"track",')})`);

    const invalid = file('invalid.jsonl', [good[0], good[1], JSON.stringify({ type: 'track', event: 'X', timestamp: '2025-01-01T00:00:00Z' })].join('\n'));
    expect((await failure(collect([invalid]))).message).toBe(`${invalid}:3: userId: userId or anonymousId is required`);

    const timeless = file('timeless.jsonl', JSON.stringify({ type: 'track', event: 'X', userId: 'ann' }));
    expect((await failure(collect([timeless]))).message).toMatch(new RegExp(`^${escape(timeless)}:1: timestamp: the message has no timestamp or originalTimestamp`));

    const wrongType = file('type.jsonl', JSON.stringify({ type: 'purchase', userId: 'ann', timestamp: '2025-01-01T00:00:00Z' }));
    expect((await failure(collect([wrongType]))).message).toBe(`${wrongType}:1: type: must be one of track, identify, group, page, screen, alias`);

    // An export's receivedAt bounds its time as ingest's receipt does (without one, the run's clock: see below).
    const wrongClock = file('wrong-clock.jsonl', [track('ann', '2125-01-01T10:00:00Z', { receivedAt: '2025-01-01T10:00:01Z' }), track('bob', '2025-01-02T10:00:00Z', { receivedAt: '2025-01-01T10:00:01Z' })].join('\n'));
    expect((await failure(collect([wrongClock]))).message).toBe(
      `${wrongClock}:1: timestamp: is 2125-01-01T10:00:00.000Z, more than a day after the request was received (2025-01-01T10:00:01.000Z): an event not yet happened, from a wrong clock`,
    );

    // Bytes that are not UTF-8 are refused as ingest refuses them: decoded to U+FFFD, two such ids would be one user.
    const notUtf8 = file('not-utf8.jsonl', Buffer.concat([Buffer.from(good[0]!.replace('"ann"', '"ann-X"')).map((byte) => (byte === 0x58 ? 0xff : byte)), Buffer.from(`\n${good[1]}\n`)]));
    expect((await failure(collect([notUtf8]))).message).toBe(`${notUtf8}:1: userId: holds bytes that are not valid UTF-8`);

    const notGzipped = file('really-gzip.jsonl', gzipSync(good[0]!));
    expect((await failure(collect([notGzipped]))).message).toContain('(the file looks gzip-compressed: name it .gz)');
  });

  it("bounds a time by the run's clock as ingest bounds it by its receipt: a line without receivedAt too", async () => {
    const now = new Date('2025-01-03T00:00:00Z');
    const ahead = (time: string) => `is ${time}, more than a day after it was read (2025-01-03T00:00:00.000Z): an event not yet happened, from a wrong clock`;
    const lines = [
      // A day after the run at most, as ingest's receipt allows.
      track('ann', '2025-01-04T00:00:00.000Z'),
      track('ann', '2025-01-04T00:00:00.001Z'),
      track('bob', '2125-01-01T10:00:00Z'),
      // A wrong clock's sentAt is as wrong as its timestamp: the skew-corrected time is still ahead of the run.
      track('bob', '2125-01-01T10:00:00Z', { sentAt: '2125-01-01T10:00:05Z' }),
      JSON.stringify({ type: 'identify', userId: 'cy', originalTimestamp: '2125-01-01T10:00:00Z', timestamp: '2125-01-01T10:00:00Z' }),
      JSON.stringify({ type: 'identify', userId: 'cy', originalTimestamp: '2125-01-01T10:00:00Z' }),
      // A receipt after the run does not widen its bound.
      track('dee', '2025-02-01T10:00:00Z', { receivedAt: '2025-02-01T10:00:01Z' }),
      track('dee', '2025-01-02T10:00:00Z'),
    ];
    const wrongClock = file('run-clock.jsonl', lines.join('\n'));
    expect((await failure(collect([wrongClock], { now }))).message).toBe(`${wrongClock}:2: timestamp: ${ahead('2025-01-04T00:00:00.001Z')}`);
    const { messages, stats } = await collect([wrongClock], { now, skipBad: true });
    expect(messages.map((message) => [identityKey(message.identity), message.timestamp])).toEqual([
      ['user:ann', '2025-01-04T00:00:00.000Z'],
      ['user:dee', '2025-01-02T10:00:00.000Z'],
    ]);
    expect(stats.skipped.map((error) => [error.line, error.reason])).toEqual([
      [2, `timestamp: ${ahead('2025-01-04T00:00:00.001Z')}`],
      [3, `timestamp: ${ahead('2125-01-01T10:00:00.000Z')}`],
      [4, `timestamp: ${ahead('2125-01-01T10:00:00.000Z')}`],
      [5, `timestamp: ${ahead('2125-01-01T10:00:00.000Z')}`],
      [6, `originalTimestamp: ${ahead('2125-01-01T10:00:00.000Z')}`],
      [7, `timestamp: ${ahead('2025-02-01T10:00:00.000Z')}`],
    ]);
    // By default the clock is the machine's when reading starts.
    const farAhead = file('far-ahead.jsonl', track('ann', '2125-01-01T10:00:00Z'));
    expect((await failure(collect([farAhead]))).message).toMatch(new RegExp(`^${escape(farAhead)}:1: timestamp: is 2125-01-01T10:00:00.000Z, more than a day after it was read \\(\\d{4}-`));
  });

  it('skips and counts bad lines with skipBad, keeping the first reasons', async () => {
    const mixed = file('mixed.jsonl', [good[0], 'nonsense', good[1], '[1,2]', JSON.stringify({ type: 'track', event: 'X', userId: 'ann', timestamp: 'yesterday' })].join('\n'));
    const { messages, stats } = await collect([mixed], { skipBad: true });
    expect(messages).toHaveLength(2);
    expect(stats.eventsRead).toBe(2);
    expect(stats.linesSkipped).toBe(3);
    expect(stats.skipped.map((error) => [error.line, error.reason])).toEqual([
      [2, expect.stringMatching(/^not valid JSON/)],
      [4, 'must be a JSON object'],
      [5, 'timestamp: must be an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z'],
    ]);
  });

  it('names a missing file and a corrupt gzip', async () => {
    const missing = join(dir, 'nowhere.jsonl');
    expect((await failure(collect([missing]))).message).toBe(`${missing}: no such file`);
    const corrupt = file('corrupt.jsonl.gz', gzipSync(good.join('\n')).subarray(0, 30));
    const broken = await failure(collect([corrupt]));
    expect(broken.message).toMatch(new RegExp(`^${escape(corrupt)}: not a valid gzip file after line \\d+ \\(.+\\): it is cut short or damaged$`));
    // A fault of the file, not of a line: the CLI does not suggest --skip-bad, which would not skip it.
    expect(withSkipBadHint(broken)).toBe(broken);
  });

  it('reports progress while reading, and says when it is done', async () => {
    const updates: string[] = [];
    let done = 0;
    const progress: Progress = { update: (text) => updates.push(text), done: () => done++ };
    await collect([file('progress.jsonl', good.join('\n'))], { progress });
    expect(updates.at(-1)).toBe('reading events: 3');
    expect(done).toBe(1);
  });

  it('reads long files line by line without holding them', async () => {
    const lines = Array.from({ length: 20_000 }, (_, index) => track(`u${index % 50}`, new Date(Date.UTC(2025, 0, 1) + index * 60_000).toISOString()));
    const big = file('big.jsonl.gz', gzipSync(lines.join('\n')));
    let count = 0;
    for await (const { line } of readLines(big)) if (typeof line === 'string' && line !== '') count++;
    expect(count).toBe(20_000);
    const tooLong = file('long.jsonl', `${good[0]}\n${'x'.repeat(1024 * 1024 + 10)}\n${good[1]}\n`);
    const { stats } = await collect([tooLong], { skipBad: true });
    expect(stats.eventsRead).toBe(2);
    expect(stats.skipped[0]!.message).toBe(`${tooLong}:2: the line is longer than 1048576 bytes`);
  });
});

describe('fileBlocks and readLines', () => {
  /** Each line as [file, number, text or error message]. */
  const plain = (item: SourceLine) => [item.source, item.number, typeof item.line === 'string' ? item.line : `error: ${item.line.message}`];
  /** The lines as readLines gives them, and as the blocks give them split as a worker splits them. */
  async function both(files: string[]) {
    const read = [];
    for await (const item of fileLines(files)) read.push(plain(item));
    const split = [];
    for await (const item of fileBlocks(files)) {
      if (!('bytes' in item)) {
        split.push(plain(item));
        continue;
      }
      // Its own memory, so that it can be moved to a worker thread.
      expect(item.bytes.byteOffset).toBe(0);
      expect(item.bytes.buffer.byteLength).toBe(item.bytes.length);
      const lines = linesOfBlock(item);
      expect(lines).toHaveLength(item.lines);
      lines.forEach((line, index) => split.push([item.source, item.firstNumber + index, line]));
    }
    return { read, split };
  }
  const numbered = (source: string, lines: string[]) => lines.map((line, index) => [source, index + 1, line]);

  it('gives each line of a file once, without its \n (and a \r before it), across chunks, blocks, files and gzip', async () => {
    // Lines of many lengths, so that line ends fall everywhere in the streams' chunks; multi-byte characters, CRLF,
    // blank lines, and no newline at the end.
    const lines = Array.from({ length: 30_000 }, (_, index) => (index % 97 === 0 ? '' : `${index}:${'é€😀x'.repeat(index % 53)}${index % 5 === 0 ? '\r' : ''}`));
    const text = lines.join('\n');
    const files = [file('blocks.jsonl', text), file('blocks.jsonl.gz', gzipSync(`${text}\n`)), file('empty.jsonl', '')];
    const withoutReturns = lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
    const expected = [...numbered(files[0]!, withoutReturns), ...numbered(files[1]!, withoutReturns)];
    const { read, split } = await both(files);
    expect(read).toEqual(expected);
    expect(split).toEqual(expected);
  });

  it('gives a line over maxLineBytes (in bytes) as an error in its place, wherever it ends', async () => {
    // Just over the limit (found at its newline) and far over it (found before: its bytes are never held), in the
    // middle and at the end of a file; a line of exactly the limit is a line. The limit counts bytes, not characters.
    const tooLong = `error: the line is longer than ${maxLineBytes} bytes`;
    const cases = [maxLineBytes, maxLineBytes + 1, maxLineBytes + 10, maxLineBytes + 300_000].map((length) => ['x'.repeat(length), length > maxLineBytes] as const);
    cases.push(['é'.repeat(maxLineBytes / 2), false], ['é'.repeat(maxLineBytes / 2 + 1), true]);
    for (const [long, over] of cases) {
      const files = [file('long-middle.jsonl', `a\n${long}\nb\n`), file('long-end.jsonl.gz', gzipSync(`a\nb\n${long}`))];
      const expected = [...numbered(files[0]!, ['a', over ? tooLong : long, 'b']), ...numbered(files[1]!, ['a', 'b', over ? tooLong : long])];
      const { read, split } = await both(files);
      expect(read).toEqual(expected);
      expect(split).toEqual(expected);
    }
  });
});

describe('readConversions', () => {
  it('reads CSV with a header in any order, quoted cells, optional values and extra columns', async () => {
    const csv = file('conversions.csv', 'entity_id,entity_type,converted_at,value,note\nann,user,2025-02-01T10:00:00Z,99,"first, paid"\n"acme",Account,2025-02-03,,\nbob,user,2025-02-04 09:30,12.5,\n');
    expect(await readConversions(csv)).toEqual([
      { type: 'user', id: 'ann', convertedAt: '2025-02-01T10:00:00.000Z', value: 99 },
      { type: 'account', id: 'acme', convertedAt: '2025-02-03T00:00:00.000Z' },
      { type: 'user', id: 'bob', convertedAt: '2025-02-04T09:30:00.000Z', value: 12.5 },
    ]);
  });

  it('reads JSONL in either spelling, gzipped too', async () => {
    const jsonl = file('conversions.jsonl.gz', gzipSync('{"entityType":"user","entityId":"ann","convertedAt":"2025-02-01T10:00:00+02:00"}\n{"entity_type":"account","entity_id":7,"converted_at":1738400000,"value":5}\n'));
    expect(await readConversions(jsonl)).toEqual([
      { type: 'user', id: 'ann', convertedAt: '2025-02-01T08:00:00.000Z' },
      { type: 'account', id: '7', convertedAt: '2025-02-01T08:53:20.000Z', value: 5 },
    ]);
  });

  it('stops at a bad line with its number and the reason', async () => {
    const noHeader = file('no-header.csv', 'ann,user,2025-02-01\n');
    expect((await failure(readConversions(noHeader))).message).toBe(`${noHeader}:1: the header must name the columns entity_type, entity_id, converted_at (and optionally value); missing: entity_type, entity_id, converted_at`);
    const badType = file('bad-type.csv', 'entity_type,entity_id,converted_at\nuser,ann,2025-02-01\ncompany,acme,2025-02-01\n');
    expect((await failure(readConversions(badType))).message).toBe(`${badType}:3: entity_type: must be user, visitor or account, got "company"`);
    const badDate = file('bad-date.csv', 'entity_type,entity_id,converted_at\n\nuser,ann,2025-02-31\n');
    expect((await failure(readConversions(badDate))).message).toMatch(new RegExp(`^${escape(badDate)}:3: converted_at: must be an ISO 8601 date`));
    const badValue = file('bad-value.jsonl', '{"entityType":"user","entityId":"ann","convertedAt":"2025-02-01","value":"lots"}\n');
    expect((await failure(readConversions(badValue))).message).toBe(`${badValue}:1: value: must be a number, got "lots"`);
    const missingId = file('missing-id.jsonl', '{"entityType":"user","convertedAt":"2025-02-01"}\n');
    expect((await failure(readConversions(missingId))).message).toBe(`${missingId}:1: entityId: is required`);
    const open = file('open-quote.csv', 'entity_type,entity_id,converted_at\nuser,"ann,2025-02-01\n');
    expect((await failure(readConversions(open))).message).toBe(`${open}:2: unterminated quoted field (quoted fields cannot span lines)`);
  });

  it('parses times and CSV cells strictly', () => {
    expect(parseTime('2025-02-01')).toBe('2025-02-01T00:00:00.000Z');
    expect(parseTime('2025-02-01T10:00')).toBe('2025-02-01T10:00:00.000Z');
    expect(parseTime('1738400000000')).toBe('2025-02-01T08:53:20.000Z');
    expect(parseTime('2025-13-01')).toBeUndefined();
    expect(parseTime('2025-02-31T12:00:00Z')).toBeUndefined();
    expect(parseTime('2025-02-31T12:00:00+01:00')).toBeUndefined();
    expect(parseTime('2025-02-28T12:00:00+01:00')).toBe('2025-02-28T11:00:00.000Z');
    expect(parseTime('next tuesday')).toBeUndefined();
    expect(splitCsvLine('a,"b ""quoted"", c",d')).toEqual(['a', 'b "quoted", c', 'd']);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
