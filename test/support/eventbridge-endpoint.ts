import { EventBridgeClient, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeLocally, listenLocally } from './local-server';

/**
 * A local stand-in for the EventBridge PutEvents API, speaking its wire protocol (AWS JSON 1.1), so the real SDK
 * client serializes, signs, parses errors and retries as it does against AWS. There is no EventBridge emulator;
 * this validates what EventBridge validates for PutEvents and lets a test inject the failures EventBridge produces.
 */

/** An entry's Detail as parsed JSON: any value, since the endpoint must also see what a buggy client sends. */
export type ParsedDetail = any;

/** One entry the endpoint accepted, with its Detail parsed. */
export interface AcceptedEntry {
  eventId: string;
  source: string;
  detailType: string;
  detail: ParsedDetail;
  eventBusName: string | undefined;
  time: Date | undefined;
}

/** One HTTP call the endpoint answered, whatever its outcome. */
export interface RecordedCall {
  outcome: 'answered' | 'throttled' | 'invalid';
  /** Entries in the request. */
  entries: number;
  /** The idempotency key in each entry's Detail, in request order (undefined when it has none). */
  keys: (string | undefined)[];
  /** The SDK's `amz-sdk-request` header, e.g. "attempt=2; max=3": shows the SDK's own retries. */
  attempt: string | undefined;
}

/** What a fault predicate sees of an entry. */
export interface EntryView {
  source: string;
  detailType: string;
  detail: ParsedDetail;
  eventBusName: string | undefined;
}

export interface EventBridgeEndpoint {
  url: string;
  accepted: AcceptedEntry[];
  calls: RecordedCall[];
  /** The next n valid entries fail individually (partial failure of a call) with this error code. */
  failEntries(n: number, errorCode?: string): void;
  /** The next n calls are answered with HTTP 400 ThrottlingException, as a whole. */
  throttleCalls(n: number): void;
  /** Entries with this idempotency key, or matching this predicate, fail on every call. */
  alwaysFail(match: string | ((entry: EntryView) => boolean), errorCode?: string): void;
  close(): Promise<void>;
}

/** EventBridge's limits for one PutEvents call (see entrySize). */
const maxEntries = 10;
const maxTotalEntryBytes = 256 * 1024;

export async function startEventBridgeEndpoint(): Promise<EventBridgeEndpoint> {
  const accepted: AcceptedEntry[] = [];
  const calls: RecordedCall[] = [];
  let entriesToFail: { remaining: number; errorCode: string } = { remaining: 0, errorCode: 'InternalFailure' };
  let callsToThrottle = 0;
  const permanentFailures: { match: (entry: EntryView) => boolean; errorCode: string }[] = [];

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      sendError(response, 500, 'InternalException', String(error));
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const body = await readBody(request);
    const target = request.headers['x-amz-target'];
    const authorization = request.headers['authorization'];
    if (request.method !== 'POST' || request.url !== '/') {
      return sendError(response, 404, 'UnknownOperationException', `${request.method} ${request.url} is not an EventBridge operation`);
    }
    if (typeof authorization !== 'string' || !authorization.startsWith('AWS4-HMAC-SHA256 ')) {
      return sendError(response, 403, 'MissingAuthenticationTokenException', 'Missing or non-SigV4 Authorization header');
    }
    if (target !== 'AWSEvents.PutEvents') {
      return sendError(response, 400, 'UnknownOperationException', `Unsupported x-amz-target: ${String(target)}`);
    }
    if (request.headers['content-type'] !== 'application/x-amz-json-1.1') {
      return sendError(response, 400, 'SerializationException', `Unexpected content-type: ${String(request.headers['content-type'])}`);
    }
    let input: { Entries?: unknown };
    try {
      input = JSON.parse(body) as { Entries?: unknown };
    } catch {
      return sendError(response, 400, 'SerializationException', 'Request body is not valid JSON');
    }
    const entries = Array.isArray(input.Entries) ? (input.Entries as Record<string, unknown>[]) : [];
    const parsed = entries.map((entry) => parseDetail(entry['Detail']));
    const call: RecordedCall = {
      outcome: 'answered',
      entries: entries.length,
      keys: parsed.map((detail) => (typeof detail?.idempotencyKey === 'string' ? detail.idempotencyKey : undefined)),
      attempt: header(request, 'amz-sdk-request'),
    };
    calls.push(call);

    if (callsToThrottle > 0) {
      callsToThrottle--;
      call.outcome = 'throttled';
      return sendError(response, 400, 'ThrottlingException', 'Rate exceeded');
    }
    const invalid =
      entries.length === 0 || entries.length > maxEntries
        ? `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to ${maxEntries} and greater than or equal to 1`
        : entries.reduce((total, entry) => total + entrySize(entry), 0) > maxTotalEntryBytes
          ? 'Total size of the entries in the request is over the limit.'
          : undefined;
    if (invalid) {
      call.outcome = 'invalid';
      return sendError(response, 400, 'ValidationException', invalid);
    }

    // Entry by entry, like EventBridge: a bad or failed entry does not stop the others.
    const results = entries.map((entry, index) => {
      const problem = entryProblem(entry, parsed[index]);
      if (problem) return problem;
      const view: EntryView = {
        source: entry['Source'] as string,
        detailType: entry['DetailType'] as string,
        detail: parsed[index],
        eventBusName: typeof entry['EventBusName'] === 'string' ? entry['EventBusName'] : undefined,
      };
      const permanent = permanentFailures.find((failure) => failure.match(view));
      if (permanent) return { ErrorCode: permanent.errorCode, ErrorMessage: 'Injected permanent failure' };
      if (entriesToFail.remaining > 0) {
        entriesToFail.remaining--;
        return { ErrorCode: entriesToFail.errorCode, ErrorMessage: 'Injected failure' };
      }
      const eventId = randomUUID();
      accepted.push({ eventId, ...view, time: typeof entry['Time'] === 'number' ? new Date(entry['Time'] * 1000) : undefined });
      return { EventId: eventId };
    });
    const failedEntryCount = results.filter((result) => 'ErrorCode' in result).length;
    send(response, 200, { FailedEntryCount: failedEntryCount, Entries: results });
  }

  return {
    url: await listenLocally(server),
    accepted,
    calls,
    failEntries(n, errorCode = 'InternalFailure') {
      entriesToFail = { remaining: n, errorCode };
    },
    throttleCalls(n) {
      callsToThrottle = n;
    },
    alwaysFail(match, errorCode = 'InternalFailure') {
      const predicate = typeof match === 'string' ? (entry: EntryView) => entry.detail?.idempotencyKey === match : match;
      permanentFailures.push({ match: predicate, errorCode });
    },
    close: () => closeLocally(server),
  };
}

/** A real EventBridge client pointed at the endpoint, with dummy credentials; everything else is the SDK default. */
export function eventBridgeClientFor(url: string, config: Partial<EventBridgeClientConfig> = {}): EventBridgeClient {
  return new EventBridgeClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret' },
    ...config,
  });
}

function parseDetail(detail: unknown): ParsedDetail {
  if (typeof detail !== 'string') return undefined;
  try {
    return JSON.parse(detail);
  } catch {
    return undefined;
  }
}

/** The per-entry errors EventBridge reports for a malformed entry, in its result rather than for the whole call. */
function entryProblem(entry: Record<string, unknown>, detail: unknown): { ErrorCode: string; ErrorMessage: string } | undefined {
  for (const field of ['Source', 'DetailType', 'Detail']) {
    if (typeof entry[field] !== 'string' || entry[field] === '') {
      return { ErrorCode: 'InvalidArgument', ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
    }
  }
  // EventBridge wants a JSON object as Detail, not just any JSON value.
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) {
    return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' };
  }
  return undefined;
}

/** EventBridge's own size of an entry: Time counts 14 bytes; Source, DetailType, Detail and Resources their UTF-8 bytes. */
function entrySize(entry: Record<string, unknown>): number {
  const bytes = (value: unknown) => (typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : 0);
  const resources = Array.isArray(entry['Resources']) ? entry['Resources'] : [];
  return (entry['Time'] !== undefined ? 14 : 0) + bytes(entry['Source']) + bytes(entry['DetailType']) + bytes(entry['Detail']) +
    resources.reduce((total: number, resource: unknown) => total + bytes(resource), 0);
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID(), ...headers });
  response.end(JSON.stringify(body));
}

/** AWS JSON 1.1 error shape: the type in `__type` and in the `x-amzn-errortype` header. */
function sendError(response: ServerResponse, status: number, type: string, message: string) {
  send(response, status, { __type: type, message }, { 'x-amzn-errortype': type });
}
