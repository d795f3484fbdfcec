import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Groups } from '../analysis/groups';
import { EventHistory, historyEntry, historyReads, messageConverts, replay, type ReplayResult } from '../analysis/replay';
import { hash52 } from '../analysis/seen-set';
import { loadRules } from '../core/rules/load';
import { InputError, linesOfBlock, parseEvent, type LineBlock } from './backtest-input';
import { entryText, textEntry } from './backtest-spill';

/**
 * A worker thread of a partitioned backtest (backtest-partitions.ts describes the whole). It does the work that costs:
 *  - spill: parses and validates a batch of lines (ingest's validation, as a single-threaded read would), appends the
 *    accepted ones to its spill file (historyEntry: what the history keeps of them), each prefixed with its place in
 *    the input and its owner's node, and returns the bad lines, the times seen and the links between entities (a
 *    message's user and its account, a claimed identifier and its claimant) that the main thread gathers into groups;
 *  - regroup: moves its spill file's lines to one file per partition, by the partition of the owner's group;
 *  - replay: reads one partition's files in input order into an EventHistory and replays it.
 */

export interface WorkerSetup {
  /** The rules file's text (YAML or JSON), list files inlined (`LoadedRulesFile.json`). */
  rulesText: string;
  rulesSource: string;
  /** This worker's spill file, and its share of each partition's files: `${partitionPrefix}${partition}`. */
  spillFile: string;
  partitionPrefix: string;
  /** Messages after this time are not kept but for their conversions (EventHistory's `until`). */
  until?: string;
  anonymous?: boolean;
  asReceived?: boolean;
  /** EventHistoryOptions.namedVisitors. */
  namedVisitors?: string[];
  /** When the run reads the events (ms; parseEvent's readAt): one clock for every worker, whichever reads a line. */
  readAt: number;
}

export interface SpillTask {
  kind: 'spill';
  source: string;
  /** The place in the whole input of the batch's first line: partitions read their lines back in this order. */
  firstSeq: number;
  /** The number of the batch's first line in its source: the others follow it. */
  firstNumber: number;
  /** Lines, each a line or the reason the reader could not give it (a line too long); or a block of a file's lines (fileBlocks). */
  lines: (string | { error: string })[] | Pick<LineBlock, 'bytes'>;
}

export interface SpillResult {
  source: string;
  accepted: number;
  /** Bad lines, in order: their number and reason. */
  errors: { number: number; reason: string }[];
  /** The earliest and latest time of the messages kept (not after `until`), null for none. */
  first: string | null;
  last: string | null;
  /** Pairs of nodes [a0, b0, a1, b1, ...] newly linked by this batch (links this worker had already seen left out). */
  links: number[];
  /** Bytes appended to the spill file. */
  bytes: number;
}

export type Task =
  | SpillTask
  | { kind: 'close' }
  | { kind: 'regroup'; partitions: number; partitionOf: Map<number, number> }
  | { kind: 'replay'; files: string[]; from: string; to: string; stepDays: number };

/** A partition's replay, and the counts of its history. */
export interface ReplayPartResult {
  result: ReplayResult;
  duplicates: number;
  lateEvents: number;
  mergedIdentifiers: number;
  anonymousLeftOut: number;
}

/** The node of an identifier (a user's or a visitor's id: the same id is one node, as partitionHistory groups them). */
const identifierNode = (id: string) => hash52(id);
/** The node of an account. A hash shared by chance only joins two groups: partitions get coarser, never wrong. */
const accountNode = (id: string) => hash52(`account\n${id}`);

/**
 * Appends lines to a new file through a 64 KiB buffer (a worker thread may block on its own writes). Not more: the
 * buffered lines are strings on the heap, and those of a 1 MiB buffer lived through young-generation collections, which
 * copied them (parsing and spilling 300k lines: 1.49 to 1.65 CPU-s with 1 MiB, 1.37 to 1.51 with 64 KiB, no better
 * with 16 KiB).
 */
class LineWriter {
  private readonly fd: number;
  private chunks: string[] = [];
  private buffered = 0;
  /** Characters written so far (bytes for the ASCII most events are: a measure of size, not an offset). */
  bytes = 0;

  constructor(file: string) {
    this.fd = openSync(file, 'w');
  }

  write(text: string): void {
    this.chunks.push(text);
    this.buffered += text.length;
    this.bytes += text.length;
    if (this.buffered >= 1 << 16) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush() {
    if (this.buffered === 0) return;
    writeSync(this.fd, this.chunks.join(''));
    this.chunks = [];
    this.buffered = 0;
  }
}

/**
 * Appends bytes to a new file through a 256 KiB buffer: the regroup copies spilled lines as they are, never decoding
 * them. A worker has one for every partition at once, and small partitions make many (a 10-million-event input, some
 * 200 a worker): the file is open only while a full buffer is written, so that they hold no file descriptors (every
 * worker's writers open at once would be workers x partitions of them).
 */
class ByteWriter {
  private readonly buffer = Buffer.allocUnsafe(1 << 18);
  private buffered = 0;
  private created = false;

  constructor(private readonly file: string) {}

  /** Appends bytes [start, end) of `source`. */
  write(source: Buffer, start: number, end: number): void {
    if (this.buffered > 0 && this.buffered + end - start > this.buffer.length) this.flush();
    if (end - start > this.buffer.length) this.append(source, start, end);
    else this.buffered += source.copy(this.buffer, this.buffered, start, end);
  }

  /** Writes what is left; the file is made even when empty (the replay reads every worker's file of a partition). */
  close(): void {
    if (this.buffered > 0 || !this.created) this.flush();
  }

  private flush() {
    this.append(this.buffer, 0, this.buffered);
    this.buffered = 0;
  }

  private append(bytes: Buffer, start: number, end: number) {
    const fd = openSync(this.file, this.created ? 'a' : 'w');
    this.created = true;
    try {
      writeSync(fd, bytes, start, end - start);
    } finally {
      closeSync(fd);
    }
  }
}

const setup = workerData as WorkerSetup;
const ruleset = loadRules(setup.rulesText, setup.rulesSource);
const reads = historyReads(ruleset);
const links = new Groups<number>();
/**
 * The account each owner was last linked to, and each account's node: a user's messages name the same account over
 * and over, and the link it makes is new only once (the lookups and hash of every such link were some 8% of a spill,
 * 3% of a worker's CPU, at a million events).
 */
const lastAccountOf = new Map<number, number>();
const accountNodes = new Map<string, number>();
const spill = new LineWriter(setup.spillFile);

function spillBatch(task: SpillTask): SpillResult {
  const result: SpillResult = { source: task.source, accepted: 0, errors: [], first: null, last: null, links: [], bytes: 0 };
  const link = (a: number, b: number) => {
    if (links.join(a, b)) result.links.push(a, b);
  };
  const startBytes = spill.bytes;
  const lines = Array.isArray(task.lines) ? task.lines : linesOfBlock(task.lines);
  lines.forEach((line, index) => {
    const number = task.firstNumber + index;
    const outcome = parseEvent(task.source, typeof line === 'string' ? line : new Error(line.error), number, setup.readAt);
    if (outcome === undefined) return;
    if (outcome instanceof InputError) {
      result.errors.push({ number: outcome.line, reason: outcome.reason });
      return;
    }
    result.accepted++;
    const { timestamp } = outcome;
    // After `until` only a conversion is kept (EventHistory's until): no times, no links, and no entry made for the
    // others (a history that ends long before its input would make one for every message it drops).
    const afterUntil = setup.until !== undefined && timestamp > setup.until;
    if (afterUntil && !messageConverts(outcome, ruleset)) return;
    const entry = historyEntry(outcome, ruleset, reads);
    const owner = identifierNode(entry.identity.id);
    if (!afterUntil) {
      if (result.first === null || timestamp < result.first) result.first = timestamp;
      if (result.last === null || timestamp > result.last) result.last = timestamp;
      // Accounts read their members, and an account's traits come from group calls: one group with the account.
      if (entry.groupId !== undefined) {
        let account = accountNodes.get(entry.groupId);
        if (account === undefined) accountNodes.set(entry.groupId, (account = accountNode(entry.groupId)));
        if (lastAccountOf.get(owner) !== account) {
          lastAccountOf.set(owner, account);
          link(owner, account);
        }
      }
      // A claimed identifier's history becomes its claimant's (EventHistory.finish): one group with the claimant.
      for (const claim of entry.claims) link(identifierNode(claim.from.id), identifierNode(claim.to));
    }
    spill.write(`${task.firstSeq + index}\t${owner}\t${entryText(entry)}\n`);
  });
  result.bytes = spill.bytes - startBytes;
  return result;
}

/**
 * Splits this worker's spill file into its share of each partition's files, deleting it. The lines are moved as bytes,
 * the owner read from its digits: decoding them into strings and encoding them back was most of the regroup's time.
 */
function regroup(partitions: number, partitionOf: Map<number, number>): void {
  const writers = Array.from({ length: partitions }, (_, partition) => new ByteWriter(`${setup.partitionPrefix}${partition}`));
  const lines = new SpilledLines(setup.spillFile);
  try {
    for (; !lines.done; lines.advance()) {
      const owner = lines.owner();
      lines.writeTo(writers[partitionOf.get(owner) ?? owner % partitions]!);
    }
  } finally {
    lines.close();
  }
  for (const writer of writers) writer.close();
  rmSync(setup.spillFile);
}

/** Replays one partition: its files (one from each worker) read back in input order, so duplicates and trait ties resolve as in one pass. */
function replayPartition(files: string[], from: string, to: string, stepDays: number): ReplayPartResult {
  const history = new EventHistory(ruleset, {
    ...(setup.until !== undefined ? { until: setup.until } : {}),
    ...(setup.anonymous ? { anonymous: true } : {}),
    ...(setup.asReceived ? { asReceived: true } : {}),
    ...(setup.namedVisitors ? { namedVisitors: new Set(setup.namedVisitors) } : {}),
  });
  for (const text of inInputOrder(files)) history.addEntry(textEntry(text));
  for (const file of files) rmSync(file);
  const result = replay(history, { from, to, stepDays });
  const { duplicates, lateEvents, mergedIdentifiers, anonymousLeftOut } = history.stats;
  return { result, duplicates, lateEvents, mergedIdentifiers, anonymousLeftOut };
}

/** The entries' texts of sorted spill files, merged by their place in the input. */
function* inInputOrder(files: string[]): Generator<string> {
  const readers = files.map((file) => new SpilledLines(file));
  try {
    for (;;) {
      let next: SpilledLines | undefined;
      for (const reader of readers) if (!reader.done && (next === undefined || reader.seq < next.seq)) next = reader;
      if (next === undefined) return;
      yield next.entryText();
      next.advance();
    }
  } finally {
    for (const reader of readers) reader.close();
  }
}

/**
 * The lines of a spill or partition file (every line ends with \n, as LineWriter and ByteWriter write them), read in
 * 1 MiB chunks of bytes, a line at a time: its place in the input read from its digits, and only what is asked of it
 * decoded. Cheaper than decoding each chunk into a string to slice lines from (a worker's profile at a million events,
 * with the merge: 0.26 s instead of 0.45).
 */
class SpilledLines {
  /** There is no line left; else the current line's place in the input. */
  done = false;
  seq = 0;
  private fd: number | undefined;
  private buffer = Buffer.allocUnsafe(1 << 20);
  /** Bytes of the buffer read from the file. */
  private filled = 0;
  /** The current line is the bytes [lineStart, lineEnd) of the buffer, its \n at lineEnd. */
  private lineStart = 0;
  private lineEnd = -1;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
    this.advance();
  }

  /** The current line's owner node: the digits between its first two tabs (`seq \t owner \t entry`, spillBatch). */
  owner(): number {
    let owner = 0;
    for (let at = this.buffer.indexOf(9, this.lineStart) + 1; this.buffer[at] !== 9; at++) owner = owner * 10 + this.buffer[at]! - 48;
    return owner;
  }

  /** The current line's entry: what follows its second tab. */
  entryText(): string {
    const entryStart = this.buffer.indexOf(9, this.buffer.indexOf(9, this.lineStart) + 1) + 1;
    return this.buffer.toString('utf8', entryStart, this.lineEnd);
  }

  /** Appends the current line, its \n included, as it is. */
  writeTo(writer: ByteWriter): void {
    writer.write(this.buffer, this.lineStart, this.lineEnd + 1);
  }

  advance(): void {
    let start = this.lineEnd + 1;
    let newline = this.newlineFrom(start);
    while (newline === -1) {
      // What is left of the line goes to the buffer's start, and the file's next bytes after it.
      const pending = this.buffer.copy(this.buffer, 0, start, this.filled);
      // A line longer than the buffer: a larger one.
      if (pending === this.buffer.length) this.buffer = Buffer.concat([this.buffer, Buffer.allocUnsafe(this.buffer.length)]);
      const read = readSync(this.fd!, this.buffer, pending, this.buffer.length - pending, null);
      if (read === 0) {
        this.done = true;
        this.close();
        return;
      }
      this.filled = pending + read;
      start = 0;
      newline = this.newlineFrom(pending);
    }
    let seq = 0;
    for (let at = start; this.buffer[at] !== 9; at++) seq = seq * 10 + this.buffer[at]! - 48;
    this.seq = seq;
    this.lineStart = start;
    this.lineEnd = newline;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private newlineFrom(start: number): number {
    const newline = this.buffer.indexOf(10, start);
    return newline < this.filled ? newline : -1;
  }
}

parentPort!.on('message', ({ id, task }: { id: number; task: Task }) => {
  try {
    parentPort!.postMessage({ id, result: run(task) });
  } catch (error) {
    parentPort!.postMessage({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});

function run(task: Task): unknown {
  switch (task.kind) {
    case 'spill':
      return spillBatch(task);
    case 'close':
      spill.close();
      return null;
    case 'regroup':
      return regroup(task.partitions, task.partitionOf);
    case 'replay':
      return replayPartition(task.files, task.from, task.to, task.stepDays);
  }
}
