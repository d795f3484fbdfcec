import { createReadStream, type ReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Conversion } from '../analysis/metrics';
import { z } from 'zod';
import { identityOf } from '../core/identity';
import { isPlainObject } from '../core/message-traits';
import { decodeUtf8, hasInvalidBytes, identifyTraits, maxFutureMs, parseMessageJson, validateMessage, type AcceptedMessage, type StoredMessage } from '../core/messages';
import { unreadableReason } from '../local/readable-file';

/**
 * The files of `pql-radar backtest` and `discover`, read as streams: events (JSONL of Segment messages, the ingest
 * format, optionally gzipped) and conversions (CSV or JSONL). No file is ever held whole in memory: lines are read
 * one at a time, and each message goes through ingest's own validation (`validateMessage`), so the backtest sees
 * exactly what ingest would have stored, with the same resolved timestamp and user key.
 */

/** A problem in an input file, at a line: `events.jsonl:12: userId: userId or anonymousId is required`. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
  }
}

/** A bad line's error, telling the operator how to go on past such lines (other errors unchanged). */
export function withSkipBadHint(error: unknown): unknown {
  return error instanceof InputError && error.line > 0 ? new Error(`${error.message} (--skip-bad skips such lines and counts them)`) : error;
}

/** Lines longer than this are refused (ingest itself refuses events over 32 KB). */
export const maxLineBytes = 1024 * 1024;
/** The workspace name given to validateMessage: it only seeds the ids of messages that come without a messageId. */
const backtestWorkspace = 'backtest';

/** Reports progress; the terminal one rewrites a line on stderr every half second. */
export interface Progress {
  update(text: string): void;
  done(): void;
}

/** Progress on stderr when it is a terminal (a line rewritten with \r at most every 0.5 s); silent otherwise. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr, intervalMs = 500): Progress {
  if (!stream.isTTY) return { update: () => {}, done: () => {} };
  let last = 0;
  let shown = false;
  return {
    update(text) {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      shown = true;
      stream.write(`\r\x1b[K${text}`);
    },
    done() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

export interface ReadEventsOptions {
  /** Count malformed lines and go on, instead of stopping at the first with an InputError. */
  skipBad?: boolean;
  /** Where progress goes. @default terminalProgress() (silent unless stderr is a terminal) */
  progress?: Progress;
  /** When the events are read: no event happened more than a day after it (parseEvent). @default the time reading starts */
  now?: Date;
}

export interface ReadEventsStats {
  /** Valid messages read. */
  eventsRead: number;
  /** Malformed or invalid lines skipped (only with skipBad). */
  linesSkipped: number;
  /** The first few skipped lines, with their reasons. */
  skipped: InputError[];
}

/**
 * Segment messages from JSONL files (`.gz` files are gunzipped as they stream), validated as ingest validates them.
 * Iterate it with `for await`; `stats` counts what was read and skipped. A line that is not JSON, a message ingest
 * would reject, or a message without a time of its own (a backtest needs to know when each event happened) throws an
 * InputError naming the file and line, unless `skipBad`.
 */
export function readEvents(files: readonly string[], options: ReadEventsOptions = {}): EventReader {
  return new EventReader(() => fileLines(files), options);
}

/** One line of events, unparsed, with where it came from: what parseEvent takes. */
export interface SourceLine {
  source: string;
  line: string | Error;
  number: number;
}

/**
 * The lines of events files, in order, each with its file and number. One file's are its readLines as they are: a
 * generator re-yielding every line cost the main thread a fifth more (a million lines: 1.17 to 1.29 CPU-s, 0.95 to
 * 1.06 without it).
 */
export function fileLines(files: readonly string[]): AsyncIterable<SourceLine> {
  if (files.length === 1) return readLines(files[0]!);
  return (async function* () {
    for (const file of files) yield* readLines(file);
  })();
}

/** JSON texts from elsewhere as numbered lines of `source`. */
export async function* textLines(source: string, texts: AsyncIterable<string>): AsyncGenerator<SourceLine> {
  let number = 0;
  for await (const line of texts) yield { source, line, number: ++number };
}

export class EventReader implements AsyncIterable<AcceptedMessage> {
  readonly stats: ReadEventsStats = { eventsRead: 0, linesSkipped: 0, skipped: [] };

  constructor(
    private readonly lines: () => AsyncIterable<SourceLine>,
    private readonly options: ReadEventsOptions,
  ) {}

  async *[Symbol.asyncIterator](): AsyncIterator<AcceptedMessage> {
    const progress = this.options.progress ?? terminalProgress();
    const report = () => progress.update(`reading events: ${this.stats.eventsRead.toLocaleString('en-US')}${this.stats.linesSkipped > 0 ? ` (${this.stats.linesSkipped} lines skipped)` : ''}`);
    // Every thousand messages, and once at the end: formatting the count for every message costs more than parsing it.
    let sinceReport = 0;
    const readAt = (this.options.now ?? new Date()).getTime();
    try {
      for await (const { source, line, number } of this.lines()) {
        const outcome = parseEvent(source, line, number, readAt);
        if (outcome === undefined) continue;
        if (outcome instanceof InputError) {
          if (!this.options.skipBad) throw outcome;
          this.stats.linesSkipped++;
          if (this.stats.skipped.length < 10) this.stats.skipped.push(outcome);
          continue;
        }
        this.stats.eventsRead++;
        if (++sinceReport === 1_000) {
          sinceReport = 0;
          report();
        }
        yield outcome;
      }
      report();
    } finally {
      progress.done();
    }
  }
}

/**
 * One line of an events file: the accepted message, undefined for a blank line, or the reason it is bad. `readAt` (ms)
 * is when the run reads it: no event can have happened after that, so a time more than a day after it (maxFutureMs, as
 * ingest bounds a time by its receipt) is refused; one clock for the whole run, so every line is judged alike.
 */
export function parseEvent(file: string, line: string | Error, number: number, readAt: number): AcceptedMessage | InputError | undefined {
  if (line instanceof Error) return new InputError(file, number, line.message);
  if (line.trim() === '') return undefined;
  let raw: unknown;
  try {
    raw = parseMessageJson(line);
  } catch (error) {
    const hint = line.charCodeAt(0) === 0x1f ? ' (the file looks gzip-compressed: name it .gz)' : '';
    return new InputError(file, number, `not valid JSON (${error instanceof Error ? error.message : 'parse error'})${hint}`);
  }
  // includes first: on the one-byte strings most lines are, it answers at once.
  const invalidBytes = line.includes('\udfff') && hasInvalidBytes(line);
  const fast = line.length <= fastPathMaxChars && !invalidBytes ? acceptCommonMessage(raw, number, readAt) : undefined;
  if (fast !== undefined) return fast;
  const { receivedAt, known } = receivedAtOf(raw);
  const outcome = validateMessage(raw, number, backtestWorkspace, receivedAt, { receivedAtKnown: known, invalidBytes, readAt: new Date(readAt) });
  if ('reason' in outcome) return new InputError(file, number, outcome.path ? `${outcome.path}: ${outcome.reason}` : outcome.reason);
  if (outcome.serverTimed) return new InputError(file, number, 'timestamp: the message has no timestamp or originalTimestamp, and a backtest needs the time each event happened');
  return outcome;
}

/**
 * The validation fast path: the same AcceptedMessage validateMessage gives (its checks, zod's output, normalise's
 * shape, key order included), for the messages backtests are made of: a track, identify, group, page or screen call
 * with a string messageId, string identifiers, a `timestamp` and plain-object properties, traits and context. Anything
 * else (alias, numbers as identifiers, no messageId, originalTimestamp or sentAt, an invalid field, deep nesting, a
 * `__proto__` key, a time too far ahead: `readAt` is parseEvent's) returns undefined and takes the full path, zod
 * included, which then accepts or names the problem. zod alone caps a backtest at some 35,000 messages a second;
 * test/unit/backtest-fast-validation.test.ts checks with fast-check that both paths agree on generated messages.
 * @internal exported for that test
 */
export function acceptCommonMessage(raw: unknown, index: number, readAt: number): AcceptedMessage | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const input = raw as Record<string, unknown>;
  const type = input['type'];
  const known = typeof type === 'string' ? schemaKeys.get(type) : undefined;
  if (known === undefined || !shallowAndSafe(input, 0)) return undefined;
  const { messageId, timestamp } = input;
  if (!isIdentifier(messageId) || typeof timestamp !== 'string' || !isoDateTime.test(timestamp)) return undefined;
  if (Object.hasOwn(input, 'originalTimestamp') || Object.hasOwn(input, 'sentAt')) return undefined;
  const userId = optionalIdentifier(input['userId']);
  const anonymousId = optionalIdentifier(input['anonymousId']);
  if (userId === invalid || anonymousId === invalid || (!userId && !anonymousId)) return undefined;
  const resolved = resolvedTime(timestamp);
  if (resolved === undefined) return undefined;
  // A time further ahead of an export's receivedAt, or of the run, than ingest takes: the full path names it.
  const { receivedAt } = input;
  const latest = (typeof receivedAt === 'string' ? Math.min(Date.parse(receivedAt), readAt) : readAt) + maxFutureMs;
  if (!(Date.parse(resolved) <= latest)) return undefined;

  // The schema's keys in its order (originalTimestamp and sentAt are not here; messageId, timestamp and type are
  // there, checked above; a track's event and a group's groupId are required), each set by its name: a loop over the
  // keys, storing by a key that changes, took a third more of this path's time (300k messages: 0.27 CPU-s, 0.20 now).
  const message: Record<string, unknown> = { messageId };
  if (userId !== undefined) message['userId'] = userId;
  if (anonymousId !== undefined) message['anonymousId'] = anonymousId;
  message['timestamp'] = timestamp;
  if (Object.hasOwn(input, 'context')) {
    const context = copyContext(input['context']);
    if (context === undefined) return undefined;
    message['context'] = context;
  }
  if (Object.hasOwn(input, 'integrations')) {
    if (!isPlainObject(input['integrations'])) return undefined;
    message['integrations'] = input['integrations'];
  }
  message['type'] = type;
  if (type === 'track') {
    const event = input['event'];
    if (!isEventName(event)) return undefined;
    message['event'] = event;
  } else if (type === 'group') {
    const groupId = input['groupId'];
    if (!isIdentifier(groupId)) return undefined;
    message['groupId'] = groupId;
  } else if (type === 'page' || type === 'screen') {
    if (Object.hasOwn(input, 'name')) {
      if (!isEventName(input['name'])) return undefined;
      message['name'] = input['name'];
    }
    if (Object.hasOwn(input, 'category')) {
      if (typeof input['category'] !== 'string') return undefined;
      message['category'] = input['category'];
    }
  }
  if (type === 'identify' || type === 'group') {
    if (Object.hasOwn(input, 'traits')) {
      if (!isPlainObject(input['traits'])) return undefined;
      message['traits'] = input['traits'];
    }
  } else if (Object.hasOwn(input, 'properties')) {
    if (!isPlainObject(input['properties'])) return undefined;
    message['properties'] = input['properties'];
  }
  for (const key of Object.keys(input)) if (!known.has(key)) message[key] = input[key];

  // As normalise's { ...message, messageId, timestamp }: both keys are there already, so the order is the same.
  message['timestamp'] = resolved;
  const context = message['context'] as Record<string, unknown> | undefined;
  const groupId = (type === 'group' ? message['groupId'] : context?.['groupId']) as string | undefined;
  const name = (type === 'track' ? message['event'] : type === 'page' || type === 'screen' ? message['name'] : undefined) as string | undefined;
  const traits = (type === 'identify' ? identifyTraits(message) : type === 'group' ? message['traits'] : undefined) as Record<string, unknown> | undefined;
  // Set one by one, in the order of validateMessage's keys: spreading `{ name }` or `{}` into a literal, three times,
  // was a third of this fast path's time.
  const accepted: Partial<AcceptedMessage> = { index, messageId: messageId as string, type: type as AcceptedMessage['type'] };
  if (name !== undefined) accepted.name = name;
  accepted.timestamp = resolved;
  accepted.serverTimed = false;
  accepted.identity = identityOf(message);
  if (groupId !== undefined) accepted.groupId = groupId;
  if (traits !== undefined) accepted.traits = traits;
  accepted.message = message as StoredMessage;
  return accepted as AcceptedMessage;
}

/**
 * Lines up to this long take the fast path: however a line's numbers are written (1e20 is 21 digits once
 * serialised), the message cannot serialise to more than ingest's 32 KB limit, so its size needs no measuring.
 */
const fastPathMaxChars = 2_000;
/** core/messages' range of storable times. */
const earliestEventTime = Date.UTC(2000, 0, 1);
const latestEventTime = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const earliestEventIso = new Date(earliestEventTime).toISOString();

/**
 * A timestamp that matched isoDateTime, as toISOString writes it; undefined when it is outside the storable times.
 * One written that way already (24 characters: milliseconds and Z) is its own, and its fields checked by the pattern
 * (a real date, four digits of year), it compares with the earliest as text: Date.parse was a tenth of the fast path.
 * @internal exported for its test
 */
export function resolvedTime(timestamp: string): string | undefined {
  if (timestamp.length === 24 && timestamp.charCodeAt(19) === 46 && timestamp.charCodeAt(23) === 90) return timestamp >= earliestEventIso ? timestamp : undefined;
  const time = Date.parse(timestamp);
  return time >= earliestEventTime && time <= latestEventTime ? new Date(time).toISOString() : undefined;
}
/** zod's own ISO date-time check (segment-schema's timestamps), so both paths accept the same times. */
const isoDateTime = (z.iso.datetime({ offset: true })._zod as unknown as { pattern: RegExp }).pattern;
/**
 * segment-schema's keys by type (the common ones, then the type's own): zod's output puts them first, in the schema's
 * order (acceptCommonMessage writes them in it), then the others.
 */
const schemaKeys = new Map<string, Set<string>>(
  (
    [
      ['track', ['event', 'properties']],
      ['identify', ['traits']],
      ['group', ['groupId', 'traits']],
      ['page', ['name', 'category', 'properties']],
      ['screen', ['name', 'category', 'properties']],
    ] as const
  ).map(([type, own]) => [type, new Set(['messageId', 'userId', 'anonymousId', 'timestamp', 'originalTimestamp', 'sentAt', 'context', 'integrations', 'type', ...own])]),
);
const invalid = Symbol('invalid');

const isIdentifier = (value: unknown): value is string => typeof value === 'string' && value.length >= 1 && value.length <= 200 && value.isWellFormed();
const isEventName = isIdentifier;

/** userId or anonymousId as validateMessage keeps it: a valid string; undefined when absent, null or "" (withoutAbsentFields drops those); anything else is invalid here. */
function optionalIdentifier(value: unknown): string | undefined | typeof invalid {
  if (value === '' || value === undefined || value === null) return undefined;
  return isIdentifier(value) ? value : invalid;
}

/** context as zod gives it (groupId and traits first), or undefined when it is anything but the common case. */
function copyContext(value: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(value)) return undefined;
  const context: Record<string, unknown> = {};
  if (Object.hasOwn(value, 'groupId')) {
    if (!isIdentifier(value['groupId'])) return undefined;
    context['groupId'] = value['groupId'];
  }
  if (Object.hasOwn(value, 'traits')) {
    if (!isPlainObject(value['traits'])) return undefined;
    context['traits'] = value['traits'];
  }
  for (const key of Object.keys(value)) if (key !== 'groupId' && key !== 'traits') context[key] = value[key];
  return context;
}

/** No `__proto__` key and no nesting deeper than a few levels (ingest refuses past 32; deeper ones take the full path). */
function shallowAndSafe(value: Record<string, unknown> | unknown[], depth: number): boolean {
  if (depth > 8) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (item !== null && typeof item === 'object' && !shallowAndSafe(item as Record<string, unknown>, depth + 1)) return false;
    return true;
  }
  for (const key in value) {
    if (key === '__proto__') return false;
    const item = value[key];
    if (item !== null && typeof item === 'object' && !shallowAndSafe(item as Record<string, unknown>, depth + 1)) return false;
  }
  return true;
}

/**
 * The time ingest would have received the message: exports of Segment data carry `receivedAt`; without it, `sentAt`
 * (no clock-skew correction then). Only used to correct originalTimestamp by sentAt, as ingest does.
 */
function receivedAtOf(raw: unknown): { receivedAt: Date; known: boolean } {
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const key of ['receivedAt', 'sentAt']) {
      const value = (raw as Record<string, unknown>)[key];
      if (typeof value === 'string') {
        const parsed = new Date(value);
        if (!Number.isNaN(parsed.getTime())) return { receivedAt: parsed, known: key === 'receivedAt' };
      }
    }
  }
  return { receivedAt: new Date(0), known: false };
}

/** What readLines and fileBlocks give in place of a line over maxLineBytes. */
const lineTooLong = () => new Error(`the line is longer than ${maxLineBytes} bytes`);

/** A file's bytes, gunzipped when its name ends in .gz (`stream`), and the file's own stream (`source`), to destroy. */
function fileBytes(file: string): { source: ReadStream; stream: Readable } {
  const source = createReadStream(file);
  if (!file.toLowerCase().endsWith('.gz')) return { source, stream: source };
  // Larger chunks than zlib's 16 KB: fewer round trips through the stream for the same bytes.
  const gunzip = createGunzip({ chunkSize: 128 * 1024 });
  pipeline(source, gunzip, () => {});
  return { source, stream: gunzip };
}

/**
 * The lines of a file, each with the file and its number from 1, streamed (gunzipped when the name ends in .gz); a
 * line over maxLineBytes is given as an Error in its place (and skipped over) so a reader can report or skip it.
 * Errors of the file itself (missing, unreadable, a corrupt gzip) throw an InputError naming the file. They are the
 * lines of fileBlocks' blocks, split here instead of in a backtest's worker thread: one reader of files for both.
 */
export async function* readLines(file: string): AsyncGenerator<SourceLine> {
  for await (const item of blocksOf(file)) {
    if (!('bytes' in item)) {
      yield item;
      continue;
    }
    let number = item.firstNumber;
    for (const line of linesOfBlock(item)) yield { source: file, line, number: number++ };
  }
}

/** Whole lines of a file as its bytes (UTF-8, each ending with \n but perhaps the file's last): `linesOfBlock` splits them. */
export interface LineBlock {
  source: string;
  /** The number of the block's first line in its file, from 1. */
  firstNumber: number;
  /** How many lines it holds. */
  lines: number;
  /** Its own memory (never a slice of a shared pool), so it can be moved to a worker thread without a copy. */
  bytes: Uint8Array<ArrayBuffer>;
}

/** Bytes of whole lines a block gathers at least before it is given (about a thousand events of a few hundred bytes). */
const blockBytes = 1 << 18;

/**
 * The lines of events files as readLines gives them, in blocks of bytes left undecoded: for the backtest, whose worker
 * threads split and parse them (linesOfBlock), so that the thread reading the files only gunzips and finds where lines
 * end. A line over maxLineBytes (in bytes) is given as readLines gives it, an Error in its place, between blocks.
 */
export async function* fileBlocks(files: readonly string[]): AsyncGenerator<LineBlock | SourceLine> {
  for (const file of files) yield* blocksOf(file);
}

async function* blocksOf(file: string): AsyncGenerator<LineBlock | SourceLine> {
  const { source, stream } = fileBytes(file);
  // Lines given so far; whole lines held for the next block (slices of the chunks: a stream never reuses a chunk's
  // memory); the start of a line not yet ended (dropped once it is too long: `skipping` to its end).
  let number = 0;
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let heldLines = 0;
  let tail: Uint8Array[] = [];
  let tailBytes = 0;
  let skipping = false;
  const hold = (bytes: Uint8Array) => {
    if (bytes.length === 0) return;
    held.push(bytes);
    heldBytes += bytes.length;
  };
  function* give(): Generator<LineBlock> {
    if (heldLines === 0) return;
    const bytes = Buffer.allocUnsafeSlow(heldBytes);
    let at = 0;
    for (const part of held) {
      bytes.set(part, at);
      at += part.length;
    }
    yield { source: file, firstNumber: number + 1, lines: heldLines, bytes };
    number += heldLines;
    held = [];
    heldBytes = 0;
    heldLines = 0;
  }
  const tooLong = (): SourceLine => ({ source: file, line: lineTooLong(), number: ++number });
  let firstChunk = true;
  try {
    for await (const chunk of stream) {
      // A UTF-8 byte order mark (some editors and Windows tools write one) is not part of the first line.
      const bytes = firstChunk && hasByteOrderMark(chunk as Buffer) ? (chunk as Buffer).subarray(3) : (chunk as Buffer);
      firstChunk = false;
      // [run, from): whole lines of this chunk not yet held.
      let run = 0;
      let from = 0;
      for (let newline = bytes.indexOf(10); newline !== -1; newline = bytes.indexOf(10, from)) {
        if (skipping || tailBytes + newline - from > maxLineBytes) {
          hold(bytes.subarray(run, from));
          yield* give();
          yield tooLong();
          skipping = false;
          run = newline + 1;
        } else {
          // Only the chunk's first line can have begun in an earlier chunk: its start goes before the run.
          for (const part of tail) hold(part);
          heldLines++;
        }
        tail = [];
        tailBytes = 0;
        from = newline + 1;
      }
      hold(bytes.subarray(run, from));
      if (!skipping && from < bytes.length) {
        tail.push(bytes.subarray(from));
        tailBytes += bytes.length - from;
        if (tailBytes > maxLineBytes) {
          skipping = true;
          tail = [];
          tailBytes = 0;
        }
      }
      if (heldBytes >= blockBytes) yield* give();
    }
    // The last line, when the file does not end with a newline.
    if (!skipping) {
      for (const part of tail) hold(part);
      if (tailBytes > 0) heldLines++;
    }
    yield* give();
    if (skipping) yield tooLong();
  } catch (error) {
    // The number of the lines read whole so far, given or held: the file failed on the next one.
    throw fileError(file, number + heldLines, error);
  } finally {
    source.destroy();
  }
}

const hasByteOrderMark = (bytes: Buffer) => bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;

/**
 * Bytes of whole lines decoded into one string, at most (unless one line is longer). V8 puts a string over about 128
 * KiB in its large-object space, a memory mapping of its own: decoding a 256 KiB block at once cost some 30 times
 * decoding it in pieces (a million events: 0.58 CPU-s a worker against 0.02, most of it the kernel's).
 */
const decodedPieceBytes = 1 << 16;

/** The lines of a block (fileBlocks), as readLines gives them: without their \n, and a \r before it. */
export function linesOfBlock(block: Pick<LineBlock, 'bytes'>): string[] {
  const bytes = Buffer.from(block.bytes.buffer, block.bytes.byteOffset, block.bytes.byteLength);
  const lines: string[] = [];
  for (let pieceStart = 0; pieceStart < bytes.length; ) {
    let pieceEnd = bytes.length;
    if (pieceStart + decodedPieceBytes < bytes.length) {
      // After the last \n within the piece's bytes, else after the \n ending a longer line: a \n byte is never part of a longer UTF-8 character.
      const last = bytes.lastIndexOf(10, pieceStart + decodedPieceBytes - 1);
      const newline = last >= pieceStart ? last : bytes.indexOf(10, pieceStart);
      if (newline !== -1) pieceEnd = newline + 1;
    }
    // As ingest decodes a request: a byte that is not UTF-8 is marked, so that validation refuses its line.
    const text = decodeUtf8(bytes.subarray(pieceStart, pieceEnd));
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      const next = end === -1 ? text.length : end + 1;
      if (end === -1) end = text.length;
      lines.push(text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end));
      start = next;
    }
    pieceStart = pieceEnd;
  }
  return lines;
}

function fileError(file: string, line: number, error: unknown): InputError {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  const unreadable = unreadableReason(error);
  if (unreadable !== undefined) return new InputError(file, 0, unreadable);
  // The file's own fault, not a line's: --skip-bad skips bad lines, never the rest of a file cut short.
  if (code?.startsWith('Z_')) return new InputError(file, 0, `not a valid gzip file after line ${line} (${error instanceof Error ? error.message : String(error)}): it is cut short or damaged`);
  return new InputError(file, line, error instanceof Error ? error.message : String(error));
}

export type { Conversion };

const requiredColumns = ['entity_type', 'entity_id', 'converted_at'] as const;

/**
 * Conversions from a CSV file (a header line naming entity_type, entity_id, converted_at and optionally value, in any
 * order; other columns are ignored) or a JSONL file (one object a line: entityType or entity_type, entityId or
 * entity_id, convertedAt or converted_at, value); which one is told by the first line. `.gz` is gunzipped. Any bad
 * line throws an InputError with its line number.
 */
export async function readConversions(file: string): Promise<Conversion[]> {
  const conversions: Conversion[] = [];
  let format: 'csv' | 'jsonl' | undefined;
  let columns: Map<string, number> | undefined;
  for await (const { line, number } of readLines(file)) {
    if (line instanceof Error) throw new InputError(file, number, line.message);
    if (line.trim() === '') continue;
    format ??= line.trimStart().startsWith('{') ? 'jsonl' : 'csv';
    if (format === 'jsonl') {
      conversions.push(conversionFromJson(file, number, line));
      continue;
    }
    const cells = splitCsvLine(line);
    if (cells === undefined) throw new InputError(file, number, 'unterminated quoted field (quoted fields cannot span lines)');
    if (columns === undefined) {
      columns = new Map(cells.map((cell, index) => [cell.trim().toLowerCase(), index]));
      const missing = requiredColumns.filter((name) => !columns!.has(name));
      if (missing.length > 0) {
        throw new InputError(file, number, `the header must name the columns ${requiredColumns.join(', ')} (and optionally value); missing: ${missing.join(', ')}`);
      }
      continue;
    }
    const cell = (name: string) => {
      const index = columns!.get(name);
      return index === undefined ? undefined : cells[index]?.trim();
    };
    conversions.push(conversionFrom(file, number, { type: cell('entity_type'), id: cell('entity_id'), convertedAt: cell('converted_at'), value: cell('value') }, 'csv'));
  }
  return conversions;
}

function conversionFromJson(file: string, number: number, line: string): Conversion {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (error) {
    throw new InputError(file, number, `not valid JSON (${error instanceof Error ? error.message : 'parse error'})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(file, number, 'must be a JSON object');
  const record = raw as Record<string, unknown>;
  const pick = (...names: string[]) => names.map((name) => record[name]).find((value) => value !== undefined);
  return conversionFrom(file, number, {
    type: pick('entityType', 'entity_type'),
    id: pick('entityId', 'entity_id'),
    convertedAt: pick('convertedAt', 'converted_at'),
    value: pick('value'),
  }, 'jsonl');
}

function conversionFrom(file: string, number: number, fields: { type: unknown; id: unknown; convertedAt: unknown; value: unknown }, format: 'csv' | 'jsonl'): Conversion {
  const name = (csv: string, json: string) => (format === 'csv' ? csv : json);
  const fail = (field: string, reason: string): never => {
    throw new InputError(file, number, `${field}: ${reason}`);
  };
  const type = typeof fields.type === 'string' ? fields.type.toLowerCase() : fields.type;
  if (type !== 'user' && type !== 'visitor' && type !== 'account') fail(name('entity_type', 'entityType'), `must be user, visitor or account${fields.type === undefined || fields.type === '' ? '' : `, got ${JSON.stringify(fields.type)}`}`);
  const id = typeof fields.id === 'number' && Number.isFinite(fields.id) ? String(fields.id) : fields.id;
  if (typeof id !== 'string' || id === '') fail(name('entity_id', 'entityId'), 'is required');
  const convertedAt = parseTime(fields.convertedAt);
  if (convertedAt === undefined) {
    fail(name('converted_at', 'convertedAt'), `must be an ISO 8601 date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z) or epoch seconds${fields.convertedAt === undefined || fields.convertedAt === '' ? '' : `, got ${JSON.stringify(fields.convertedAt)}`}`);
  }
  let value: number | undefined;
  if (fields.value !== undefined && fields.value !== null && fields.value !== '') {
    value = typeof fields.value === 'number' ? fields.value : typeof fields.value === 'string' ? Number(fields.value) : Number.NaN;
    if (!Number.isFinite(value)) fail('value', `must be a number, got ${JSON.stringify(fields.value)}`);
  }
  return { type: type as Conversion['type'], id: id as string, convertedAt: convertedAt!, ...(value !== undefined ? { value } : {}) };
}

const isoTime = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** An ISO date (start of the day, UTC), an ISO date-time (UTC when it has no offset), or epoch seconds / milliseconds. */
export function parseTime(value: unknown): string | undefined {
  let epoch: number | undefined;
  if (typeof value === 'number') epoch = value;
  else if (typeof value === 'string' && /^\d{9,13}$/.test(value.trim())) epoch = Number(value.trim());
  if (epoch !== undefined) {
    if (!Number.isFinite(epoch)) return undefined;
    const date = new Date(Math.abs(epoch) < 1e11 ? epoch * 1000 : epoch);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  if (typeof value !== 'string') return undefined;
  const match = isoTime.exec(value.trim());
  if (!match) return undefined;
  const [, day, time, zone] = match;
  const date = new Date(time === undefined ? `${day}T00:00:00Z` : `${day}T${time}${zone ?? 'Z'}`);
  // Rejects impossible dates (2024-02-31) that Date would roll over, whatever the offset.
  if (Number.isNaN(date.getTime()) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) return undefined;
  return date.toISOString();
}

/** One CSV line split into cells (RFC 4180 quoting: "a, b" and "" for a quote); undefined when a quote is left open. */
export function splitCsvLine(line: string): string[] | undefined {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"' && cell.trim() === '') {
      quoted = true;
      cell = '';
    } else if (char === ',') {
      cells.push(cell);
      cell = '';
    } else cell += char;
  }
  if (quoted) return undefined;
  cells.push(cell);
  return cells;
}
