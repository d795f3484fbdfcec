import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Groups } from '../analysis/groups';
import { onStopSignal } from '../local/stop-signals';
import { mergeReplays } from '../analysis/replay';
import { InputError, terminalProgress, type LineBlock, type Progress, type SourceLine } from './backtest-input';
import type { ReplayPartResult, SpillResult, SpillTask, Task, WorkerSetup } from './backtest-worker';

/**
 * A backtest on worker threads, with memory bounded by a partition rather than by all users:
 *
 *  1. Spill. The main thread reads the input and hands batches of lines to the workers in turn (from files, blocks of
 *     bytes it only gunzips and cuts at line ends: fileBlocks); each splits, parses and validates its batches and
 *     appends what the history keeps of the accepted messages (historyEntry) to a
 *     file of its own. The main thread gathers, in input order, the bad lines (the first stops the run unless
 *     skipBad), the first and last times, and the links between entities into groups, as partitionHistory groups a
 *     history in memory: a user with its accounts, and so with their other members; a claimed identifier with its
 *     claimant; the same id as user and visitor.
 *  2. Regroup. Each worker moves its spilled lines to one file per partition, by the partition of the owner's group:
 *     a group never spans partitions. There are enough partitions that each holds at most about `partitionBytes` of
 *     lines, a multiple of the workers.
 *  3. Replay. The workers take the partitions one at a time: each reads a partition's lines back in input order
 *     (so repeats and trait ties resolve as in one pass), builds its EventHistory and replays it; the main thread
 *     merges the replays (mergeReplays). Only the partitions being replayed are in memory, and the merged entity
 *     histories: a few hundred bytes an entity.
 *
 * The figures are those of one EventHistory over the whole input, whatever the number of workers or partitions
 * (test/unit/backtest-partitions.test.ts). Temporary files go under the system's temporary directory (TMPDIR): about
 * the size of the events without their context, twice that at the peak of the regroup. They are removed when the run
 * ends, fails, or is stopped by a signal (Ctrl-C, a kill).
 */

export interface PartitionedReadOptions {
  /** The rules file's text (YAML or JSON), list files inlined (`LoadedRulesFile.json`). */
  rulesText: string;
  rulesSource: string;
  /** Worker threads, at least 1. */
  workers: number;
  /** Count bad lines and go on instead of stopping at the first. */
  skipBad?: boolean;
  /** Messages after this time are not kept. */
  until?: string;
  /** Replay anonymous visitors nobody claimed as leads of their own. @default the rules' setting */
  anonymous?: boolean;
  /** Count an event received on a later day from when it was received (EventHistoryOptions.asReceived). @default false */
  asReceived?: boolean;
  /** Anonymous ids whose user the replay names (EventHistoryOptions.namedVisitors). @default none */
  namedVisitors?: string[];
  /** Spilled lines per partition, about (bytes): what a worker holds at once. @default 8 MiB */
  partitionBytes?: number;
  progress?: Progress;
  /** When the events are read: no event happened more than a day after it (parseEvent). @default the time read starts */
  now?: Date;
}

export interface PartitionedReadStats {
  eventsRead: number;
  linesSkipped: number;
  /** The first few bad lines skipped. */
  skipped: InputError[];
  firstTimestamp: string | null;
  lastTimestamp: string | null;
}

/** The whole replay, and the history's counts, summed over the partitions. */
export interface PartitionedReplay extends ReplayPartResult {
  /** Partitions the history was replayed in. */
  partitions: number;
}

/** Lines a batch holds: enough to make a message between threads cheap beside the parsing. */
const batchLines = 2_000;
/** Batches in flight per worker: enough to keep it busy while the main thread reads, few enough to bound memory. */
const batchesPerWorker = 4;
/**
 * What bounds memory, and what the replay's CPU grows with: a worker holds one partition's history at a time, and the
 * larger that heap, the more each event costs (garbage collection, cache misses). Smaller partitions also cost less
 * CPU down to a few MiB, where the gain flattens within the noise (bench:backtest's million events, two workers, at a load of 2
 * to 6: 56 MiB, 4 partitions, 32.8 to 37.1 CPU-s and 680 to 905 MiB at the peak; 28 MiB 32.7 to 33.6 and 670 to 690;
 * 14 MiB 30.6 to 32.1 and 580 to 640; 8 MiB, 20 partitions, 30.1 to 32.2 and 515 to 580; 3 MiB 30.0 to 31.2 and 460 to
 * 490). Smaller still makes many more partitions of a large input, each a regroup buffer (ByteWriter) in every worker.
 */
const defaultPartitionBytes = 8 * 1024 ** 2;

/** Reads events into a partitioned history on worker threads (step 1); `replay` does steps 2 and 3; `close` in any case. */
export class PartitionedHistory {
  readonly stats: PartitionedReadStats = { eventsRead: 0, linesSkipped: 0, skipped: [], firstTimestamp: null, lastTimestamp: null };
  private readonly groups = new Groups<number>();
  private spilledBytes = 0;

  private constructor(
    private readonly pool: WorkerPool,
    private readonly directory: string,
    /** Takes away the handlers that remove the directory on a signal (removedOnSignal). */
    private readonly forgetSignals: () => void,
    private readonly options: PartitionedReadOptions,
  ) {}

  static async read(lines: AsyncIterable<SourceLine | LineBlock>, options: PartitionedReadOptions): Promise<PartitionedHistory> {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error(`workers must be a whole number, at least 1 (got ${options.workers})`);
    const readAt = (options.now ?? new Date()).getTime();
    const directory = await mkdtemp(join(tmpdir(), 'pql-radar-backtest-'));
    const forgetSignals = removedOnSignal(directory);
    const setups = Array.from({ length: options.workers }, (_, index): WorkerSetup => ({
      rulesText: options.rulesText,
      rulesSource: options.rulesSource,
      spillFile: join(directory, `spill-${index}`),
      partitionPrefix: join(directory, `w${index}-p`),
      ...(options.until !== undefined ? { until: options.until } : {}),
      ...(options.anonymous ? { anonymous: true } : {}),
      ...(options.asReceived ? { asReceived: true } : {}),
      ...(options.namedVisitors !== undefined && options.namedVisitors.length > 0 ? { namedVisitors: options.namedVisitors } : {}),
      readAt,
    }));
    let pool: WorkerPool;
    try {
      pool = new WorkerPool(await workerScript(directory), setups);
    } catch (error) {
      forgetSignals();
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
    const history = new PartitionedHistory(pool, directory, forgetSignals, options);
    try {
      await history.spill(lines);
    } catch (error) {
      await history.close();
      throw error;
    }
    return history;
  }

  private async spill(lines: AsyncIterable<SourceLine | LineBlock>) {
    const progress = this.options.progress ?? terminalProgress();
    const { pool } = this;
    // Results are taken in input order, so the first bad line is the first in the input, as in one pass.
    const inFlight: Promise<SpillResult>[] = [];
    const take = async () => this.gather((await inFlight.shift()!) as SpillResult);
    // Lines gathered into a batch, sent when full or when the next line does not follow it.
    let batch: { source: string; firstSeq: number; firstNumber: number; lines: (string | { error: string })[] } | undefined;
    let seq = 0;
    let next = 0;
    const run = async (task: SpillTask) => {
      // A block's bytes move to the worker: the main thread never copies them again.
      inFlight.push(pool.run(next, task, Array.isArray(task.lines) ? [] : [task.lines.bytes.buffer]) as Promise<SpillResult>);
      next = (next + 1) % pool.size;
      if (inFlight.length >= pool.size * batchesPerWorker) await take();
      progress.update(`reading events: ${this.stats.eventsRead.toLocaleString('en-US')}`);
    };
    const send = async () => {
      if (batch === undefined) return;
      const task: SpillTask = { kind: 'spill', ...batch };
      batch = undefined;
      await run(task);
    };
    try {
      for await (const item of lines) {
        if ('bytes' in item) {
          await send();
          await run({ kind: 'spill', source: item.source, firstSeq: seq, firstNumber: item.firstNumber, lines: { bytes: item.bytes } });
          seq += item.lines;
          continue;
        }
        const { source, line, number } = item;
        if (batch !== undefined && (batch.source !== source || batch.firstNumber + batch.lines.length !== number)) await send();
        batch ??= { source, firstSeq: seq, firstNumber: number, lines: [] };
        batch.lines.push(typeof line === 'string' ? line : { error: line.message });
        seq++;
        if (batch.lines.length === batchLines) await send();
      }
      await send();
      while (inFlight.length > 0) await take();
    } catch (error) {
      // Let the batches still in flight settle before the workers go (close), whatever they say.
      await Promise.allSettled(inFlight);
      throw error;
    } finally {
      progress.done();
    }
    await Promise.all(pool.all({ kind: 'close' }));
  }

  private gather(result: SpillResult) {
    const { stats } = this;
    for (const { number, reason } of result.errors) {
      const error = new InputError(result.source, number, reason);
      if (!this.options.skipBad) throw error;
      stats.linesSkipped++;
      if (stats.skipped.length < 10) stats.skipped.push(error);
    }
    stats.eventsRead += result.accepted;
    if (result.first !== null && (stats.firstTimestamp === null || result.first < stats.firstTimestamp)) stats.firstTimestamp = result.first;
    if (result.last !== null && (stats.lastTimestamp === null || result.last > stats.lastTimestamp)) stats.lastTimestamp = result.last;
    for (let i = 0; i < result.links.length; i += 2) this.groups.join(result.links[i]!, result.links[i + 1]!);
    this.spilledBytes += result.bytes;
  }

  /**
   * Regroups the spilled lines into partitions and replays them, a partition per worker at a time, into the replay of
   * the whole history (mergeReplays). `onPartition` is called as each one is done.
   */
  async replay(options: { from: string; to: string; stepDays: number; onPartition?: (done: number, partitions: number) => void }): Promise<PartitionedReplay> {
    const { pool, directory } = this;
    // A multiple of the workers, so that none waits for the others' last partition with nothing to do.
    const partitions = pool.size * Math.max(1, Math.ceil(this.spilledBytes / (this.options.partitionBytes ?? defaultPartitionBytes) / pool.size));
    // Only nodes linked to others are listed; any other owner is a group of its own (its node is its representative).
    const partitionOf = new Map<number, number>();
    for (const [node, representative] of this.groups.representatives()) partitionOf.set(node, representative % partitions);
    await Promise.all(pool.all({ kind: 'regroup', partitions, partitionOf }));
    partitionOf.clear();

    const parts: ReplayPartResult[] = [];
    let nextPartition = 0;
    // Each worker takes the next partition as soon as it is free: partitions differ in size.
    const drain = async (worker: number) => {
      while (nextPartition < partitions) {
        const partition = nextPartition++;
        const files = Array.from({ length: pool.size }, (_, index) => join(directory, `w${index}-p${partition}`));
        parts[partition] = (await pool.run(worker, { kind: 'replay', files, from: options.from, to: options.to, stepDays: options.stepDays })) as ReplayPartResult;
        options.onPartition?.(parts.filter(Boolean).length, partitions);
      }
    };
    await Promise.all(Array.from({ length: pool.size }, (_, worker) => drain(worker)));
    const sum = (field: 'duplicates' | 'lateEvents' | 'mergedIdentifiers' | 'anonymousLeftOut') => parts.reduce((total, part) => total + part[field], 0);
    return {
      result: mergeReplays(parts.map((part) => part.result)),
      partitions,
      duplicates: sum('duplicates'),
      lateEvents: sum('lateEvents'),
      mergedIdentifiers: sum('mergedIdentifiers'),
      anonymousLeftOut: sum('anonymousLeftOut'),
    };
  }

  /** Stops the workers and deletes the temporary files. */
  async close(): Promise<void> {
    this.forgetSignals();
    await this.pool.terminate();
    await rm(this.directory, { recursive: true, force: true });
  }
}

/**
 * Has the directory removed if a signal stops the process (onStopSignal): a large backtest's spill (gigabytes for tens
 * of millions of events) would otherwise stay in the temporary directory at every Ctrl-C. Returns what takes it away.
 */
function removedOnSignal(directory: string): () => void {
  // Retried: a worker may still be writing a file into it.
  return onStopSignal(() => rmSync(directory, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 }));
}

/** The script the workers run, and their Node options (undefined: the process's). */
interface WorkerScript {
  url: URL;
  execArgv?: string[];
}

/**
 * The workers' code: backtest-worker.ts bundled by esbuild into one CommonJS file in the run's temporary directory.
 * A worker does not inherit the main thread's tsx loader: through backtest-worker.mjs each one registers tsx again (a
 * loader thread of its own) and loads the TypeScript through it, and a CLI run through tsx (`tsx`, `node --import tsx`)
 * has every worker preload tsx too (the process's options: the bundle's workers leave its preloads out). Measured on a
 * 200-line backtest with two workers: 2.3 to 2.8 CPU-seconds through tsx, 1.6 to 1.7 with the bundle, of which esbuild
 * takes some 0.1. esbuild is the compiler tsx runs on, so it is installed wherever tsx is; if it cannot bundle, the
 * workers load the TypeScript through tsx as before.
 */
async function workerScript(directory: string): Promise<WorkerScript> {
  try {
    const { build } = await import('esbuild');
    const outfile = join(directory, 'backtest-worker.cjs');
    await build({ entryPoints: [fileURLToPath(new URL('./backtest-worker.ts', import.meta.url))], outfile, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'silent' });
    return { url: pathToFileURL(outfile), execArgv: withoutPreloads(process.execArgv) };
  } catch {
    return { url: new URL('./backtest-worker.mjs', import.meta.url) };
  }
}

/** Node options less those that load a module before the thread's own code: how a CLI run through tsx loads it. */
function withoutPreloads(options: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const preload = /^(--import|--require|-r)(=|$)/.exec(options[i]!);
    if (preload === null) kept.push(options[i]!);
    // `--import tsx`: the module is the next option; `--import=tsx`: this one.
    else if (preload[2] === '') i++;
  }
  return kept;
}

/** Worker threads (backtest-worker.ts) that run tasks one at a time each, in the order given. */
class WorkerPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(script: WorkerScript, setups: WorkerSetup[]) {
    this.workers = setups.map((setup) => {
      // A larger young generation than V8's default: parsing and replaying make many short-lived objects, and fewer
      // scavenges cost less CPU. Measured on bench:backtest's million events, two workers: 64 MiB took some 5% off a
      // worker's CPU against the default; 128 MiB, in three runs each beside one at 64, 17.3 to 24.0 s and 30.8 to 32.8
      // CPU-s against 20.4 to 27.8 s and 31.1 to 34.8, for about 110 MiB more at the peak (610 to 680 MiB); 256 MiB
      // did no better and peaked at 860 to 900.
      const worker = new Worker(script.url, { ...(script.execArgv !== undefined ? { execArgv: script.execArgv } : {}), workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 128 } });
      worker.on('message', ({ id, result, error }: { id: number; result?: unknown; error?: string }) => {
        const call = this.pending.get(id)!;
        this.pending.delete(id);
        if (error !== undefined) call.reject(new Error(`backtest worker: ${error}`));
        else call.resolve(result);
      });
      // A worker that dies (out of memory, a crash) fails every task still waiting, and any later one.
      worker.on('error', (error) => this.fail(new Error(`backtest worker failed: ${error.message}`)));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`backtest worker exited with code ${code}`));
      });
      return worker;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  /** `transfer`: memory the task moves to the worker (postMessage's transfer list). */
  run(worker: number, task: Task, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const result = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[worker]!.postMessage({ id, task }, transfer);
    });
    // Callers await their results in order: a failure of one not yet awaited is not unhandled (it is awaited later).
    result.catch(() => {});
    return result;
  }

  /** The same task on every worker. */
  all(task: Task): Promise<unknown>[] {
    return this.workers.map((_, worker) => this.run(worker, task));
  }

  async terminate(): Promise<void> {
    // Terminated on purpose: no longer a failure.
    this.failure ??= new Error('backtest workers stopped');
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }

  private fail(error: Error) {
    this.failure ??= error;
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}
