import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP receiver for the webhook and Slack POSTs: it records every request and answers with the scripted
 * replies in turn, then with `otherwise` (200 by default). A reply can be slow (`delayMs`) or never come (`hang`),
 * so timeouts are real timeouts.
 */

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer only after this many milliseconds. */
  delayMs?: number;
  /** Never answer (until the receiver stops). */
  hang?: boolean;
}

export class HttpReceiver {
  readonly received: ReceivedRequest[] = [];
  replies: Reply[] = [];
  otherwise: Reply = { status: 200, body: '{"ok":true}' };
  /** The origin, e.g. http://127.0.0.1:4321. */
  origin = '';
  readonly #server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      this.received.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = this.replies.shift() ?? this.otherwise;
      if (reply.hang) return;
      const answer = () => {
        response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        response.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  });

  constructor(private readonly path = '/hooks/pql') {}

  /** The URL of the receiver's path. */
  get url(): string {
    return `${this.origin}${this.path}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', resolve);
    });
    this.origin = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  reply(...replies: Reply[]): void {
    this.replies.push(...replies);
  }

  reset(): void {
    this.received.length = 0;
    this.replies = [];
    this.otherwise = { status: 200, body: '{"ok":true}' };
  }

  async stop(): Promise<void> {
    // Keep-alive and hanging connections would keep the server from closing.
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** A URL on which nothing listens (a port just freed): connections to it are refused. */
export async function refusingUrl(path = '/hook'): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return `http://127.0.0.1:${port}${path}`;
}
