import type { AcceptedMessage, RejectedMessage } from './messages';
import type { EventStore } from './ports';

/**
 * The opt-in ingest buffer's records: ingest puts the accepted messages of a request as one record on a stream (after
 * authenticating and validating it, as always) instead of writing them to the table, and the buffer's consumer stores
 * a batch of records at once, so that a visitor's events of one request each (analytics.js) share items. Pure: the
 * stream and the table are adapters.
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
