import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { AcceptedMessage, RejectedMessage } from './messages';
import type { EventStore, Refusal } from './ports';

/**
 * The ingest buffer's records: ingest puts a request of one accepted message as a record on a stream (after
 * authenticating and validating it, as always) instead of writing it to the table, and the buffer's consumer stores
 * a batch of records at once, so that a visitor's events of one request each (analytics.js) share items. Two
 * variants: a Kinesis stream (lib/ingest-buffer.ts) and a Firehose delivery stream writing S3 objects
 * (lib/ingest-firehose-buffer.ts). Pure: the streams, the objects and the table are adapters.
 */

/** One accepted request, as the buffer carries it. */
export interface BufferedRequest {
  workspace: string;
  requestId: string;
  /** ISO 8601. */
  receivedAt: string;
  /** As validated: what the table's store would have been given at once. */
  messages: AcceptedMessage[];
}

/** The record format's version: a consumer refuses one it does not know rather than guess. */
const recordVersion = 1;

export const bufferRecordJson = (request: BufferedRequest): string => JSON.stringify({ v: recordVersion, ...request });

/** Reads a record back; an error names what is wrong (the record stays on the stream, and the consumer is retried). */
export function parseBufferRecord(json: string): BufferedRequest {
  const record = JSON.parse(json) as Partial<BufferedRequest> & { v?: unknown };
  if (record.v !== recordVersion) throw new Error(`ingest buffer record: v must be ${recordVersion}, got ${JSON.stringify(record.v)} (written by another version of pql-radar?)`);
  for (const field of ['workspace', 'requestId', 'receivedAt'] as const) {
    if (typeof record[field] !== 'string') throw new Error(`ingest buffer record: ${field} must be a string`);
  }
  if (!Array.isArray(record.messages)) throw new Error('ingest buffer record: messages must be an array');
  const { v: _version, ...request } = record;
  return request as BufferedRequest;
}

/** A record's data: the request's JSON, deflated (both streams bill by size, and take at most about 1 MB a record). */
export const bufferRecordData = (request: BufferedRequest): Uint8Array => deflateRawSync(bufferRecordJson(request));

export const bufferedRequestOf = (data: Uint8Array): BufferedRequest => parseBufferRecord(inflateRawSync(data).toString('utf8'));

/**
 * A record of the Firehose variant: its data in base64 and a newline. Firehose writes the records it gathered into one
 * object one after the other, with nothing between them, so the lines are what tells them apart again.
 */
export const bufferObjectLine = (request: BufferedRequest): Uint8Array => Buffer.from(`${Buffer.from(bufferRecordData(request)).toString('base64')}\n`);

const base64Line = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The requests of an object Firehose wrote, in order. A line that is not a record fails the whole object with its key
 * and line number: the loader's message is retried and then dead-lettered, and the object stays for an operator,
 * since its other lines are accepted events.
 */
export function bufferedRequestsOfObject(text: string, key: string): BufferedRequest[] {
  const lines = text.split('\n');
  // Every record ends its line, so what follows the last newline is empty unless the object was cut short.
  const last = lines.pop();
  if (last !== '') throw new Error(`ingest buffer object ${key}: line ${lines.length + 1} has no newline at its end (a record cut short?)`);
  return lines.map((line, index) => {
    const where = `ingest buffer object ${key}: line ${index + 1}`;
    // Node's base64 decoder skips what is not base64 rather than fail: checked here, so that nothing is read wrongly.
    if (!base64Line.test(line)) throw new Error(`${where} is not base64 (${line === '' ? 'empty' : `${line.length} characters`})`);
    try {
      return bufferedRequestOf(Buffer.from(line, 'base64'));
    } catch (error) {
      // JSON.parse quotes the text it fails on, which may hold personal data: the error goes to the logs.
      throw new Error(`${where}: ${error instanceof SyntaxError ? 'its data is not JSON' : (error as Error).message}`);
    }
  });
}

/**
 * Why a buffer gave a request back to be stored in the table at once: still refused after the SDK's retries. (A
 * request of one message, at most 32 KB, always fits a record.)
 */
export type DirectSaveReason = 'busy';

/** Told of each request a buffer stored in the table instead (no personal data: the request's id and the reason). */
export type DirectSaveListener = (reason: DirectSaveReason, requestId: string) => void;

/**
 * Ingest's store when a buffer is on: a request of one accepted message (analytics.js sends one per event) becomes a
 * record on the stream, and the 200 follows once the stream has it (durably). A request of several is stored in the
 * table at once, as without a buffer: its messages share an item per entity and day already (a backend's batch of 100
 * costs 0.1 write units a message), so the buffer would only make its leads later. A request the stream does not take
 * (`put` says why) is stored in the table at once too. Quarantined messages go to the table as before: they are rare,
 * and an operator looks for them there.
 */
export abstract class EventBuffer implements EventStore {
  constructor(
    /** The table's store: the quarantine, and a request the stream does not take. */
    private readonly table: EventStore,
    private readonly onDirectSave: DirectSaveListener = () => {},
  ) {}

  /** Puts the request on the stream as one record; 'busy' (still refused after retries): not put. */
  protected abstract put(request: BufferedRequest): Promise<'put' | DirectSaveReason>;

  async save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date, requestId: string): Promise<{ refused: Refusal[] }> {
    if (messages.length !== 1) return this.table.save(workspace, messages, receivedAt, requestId);
    const outcome = await this.put({ workspace, requestId, receivedAt: receivedAt.toISOString(), messages: [...messages] });
    if (outcome === 'put') return { refused: [] };
    this.onDirectSave(outcome, requestId);
    return this.table.save(workspace, messages, receivedAt, requestId);
  }

  quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date) {
    return this.table.quarantine(workspace, requestId, rejected, receivedAt);
  }
}

/** An object a buffer's delivery stream wrote. */
export interface BufferObject {
  bucket: string;
  key: string;
}

/** Where a delivery stream's objects are read and, once stored, removed. */
export interface BufferObjects {
  /** The object's text; undefined once it is gone. */
  read(object: BufferObject): Promise<string | undefined>;
  remove(object: BufferObject): Promise<void>;
}

/**
 * Stores the requests of an object a delivery stream wrote, then removes it; undefined if it was gone. Removing it
 * only after the table has its requests means a failure in between leaves it to the next attempt, which stores the
 * same items again, no copy (storeBufferedRequests); an object already gone was stored and removed by an earlier
 * delivery of the same notification, so there is nothing left to do.
 */
export async function loadBufferObject(objects: BufferObjects, store: EventStore, object: BufferObject): Promise<BufferedStoreOutcome | undefined> {
  const text = await objects.read(object);
  if (text === undefined) return undefined;
  const outcome = await storeBufferedRequests(store, bufferedRequestsOfObject(text, object.key));
  await objects.remove(object);
  return outcome;
}

export interface BufferedStoreOutcome {
  requests: number;
  stored: number;
  /** Messages the table's store refused (traits too large for a profile): quarantined under their request. */
  refused: number;
}

/**
 * Stores a batch of buffered requests: one save per workspace with every request's messages in order (the first copy
 * of a messageId counts, as in one request), then the refused ones quarantined under the request that sent them,
 * as ingest would have answered them. A batch stored again (the consumer retried) rewrites the same items.
 */
export async function storeBufferedRequests(store: EventStore, requests: readonly BufferedRequest[]): Promise<BufferedStoreOutcome> {
  const byWorkspace = new Map<string, BufferedRequest[]>();
  for (const request of requests) {
    const group = byWorkspace.get(request.workspace);
    if (group) group.push(request);
    else byWorkspace.set(request.workspace, [request]);
  }
  let stored = 0;
  let refusedCount = 0;
  for (const [workspace, group] of byWorkspace) {
    // Indexes are the save's own: each message is numbered in the batch, and mapped back to its request to quarantine.
    const origins: { request: BufferedRequest; message: AcceptedMessage }[] = [];
    const messages = group.flatMap((request) =>
      request.messages.map((message) => {
        origins.push({ request, message });
        return { ...message, index: origins.length - 1 };
      }),
    );
    const latest = group.reduce((last, request) => (request.receivedAt > last ? request.receivedAt : last), group[0]!.receivedAt);
    const { refused } = await store.save(workspace, messages, new Date(latest), group[0]!.requestId);
    stored += messages.length - refused.length;
    refusedCount += refused.length;
    const rejectedByRequest = new Map<BufferedRequest, RejectedMessage[]>();
    for (const refusal of refused) {
      const { request, message } = origins[refusal.index]!;
      const rejected = rejectedByRequest.get(request) ?? [];
      rejected.push({ index: message.index, messageId: message.messageId, path: refusal.path, reason: refusal.reason, raw: message.message });
      rejectedByRequest.set(request, rejected);
    }
    for (const [request, rejected] of rejectedByRequest) await store.quarantine(workspace, request.requestId, rejected, new Date(request.receivedAt));
  }
  return { requests: requests.length, stored, refused: refusedCount };
}
