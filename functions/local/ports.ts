import { createServer } from 'node:net';

/** Listens on the port (0: one the system gives) and closes again: the port it listened on. */
async function listenOnce(port: number, host?: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(port, host, done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === 'string') throw new Error('Could not find a free TCP port');
  return address.port;
}

/** A TCP port nothing listens on now, as the system gives one. */
export function findFreePort(): Promise<number> {
  return listenOnce(0);
}

/**
 * `start(port)` on a port found free, and on another one when `taken(error)` says something listened there between
 * the finding and the start (a process that cannot be handed port 0, as Java's DynamoDB Local, must be given a number).
 * Other errors, and the last attempt's, are thrown.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, taken: (error: unknown) => boolean, choosePort = findFreePort, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await choosePort());
    } catch (error) {
      if (attempt >= attempts || !taken(error)) throw error;
    }
  }
}

/**
 * Throws when something listens on the port already, saying what wanted it (`wantedFor`, with how to choose another)
 * and the likeliest holder (`command`, running twice). Checked before anything starts: a second `pql-radar dev` found
 * the first one's DynamoDB Local answering on its port and wrote a write key into that table before failing on the
 * ingest port; elsewhere it replaces Node's bare `listen EADDRINUSE`.
 */
export async function ensurePortFree(port: number, host: string | undefined, wantedFor: string, command = 'pql-radar dev'): Promise<void> {
  try {
    await listenOnce(port, host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new Error(`port ${port} is in use (is ${command} running already?); it was wanted for ${wantedFor}`);
  }
}
