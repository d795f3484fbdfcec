import { createHash } from 'node:crypto';

/**
 * How ingest packs events into items: the messages of one request for one entity and one UTC day share an item (a
 * chunk), as one JSON array. DynamoDB bills a write per started KB of an item, so a server batch's dozen events of a
 * user cost about two write units as one deflated chunk instead of a dozen or more as single items. Pure (no AWS), so
 * the grouping, the ids and the deduplication are unit-tested apart from the table.
 */

/**
 * A chunk's JSON is cut before it passes this many bytes. DynamoDB refuses items over 400 KB (keys and attribute names
 * included); a chunk is deflated only when that makes it smaller, so 256 KB of text keeps every item well under the
 * limit whatever the messages compress to. A single message (at most 32 KB on the wire) always fits alone.
 */
export const maxChunkJsonBytes = 256 * 1024;

/** A message of a request, as the chunks need it: its entity (the item's partition), its UTC day and its JSON. */
export interface ChunkedMessage {
  entity: string;
  day: string;
  messageId: string;
  json: string;
}

export interface EventChunk {
  entity: string;
  day: string;
  /** The chunk's id in its sort key (chunkId of its messageIds). */
  id: string;
  /** The chunk's messages as a JSON array, in request order. */
  json: string;
}

/**
 * The request's messages in chunks: grouped by entity and day in request order, each messageId once (the first copy
 * in the request), and a group cut into consecutive chunks of at most maxChunkJsonBytes. The cut depends only on the
 * request, so an identical retry makes the same chunks, with the same ids.
 */
export function eventChunks(messages: readonly ChunkedMessage[]): EventChunk[] {
  const groups = new Map<string, ChunkedMessage[]>();
  for (const message of messages) {
    const key = JSON.stringify([message.entity, message.day]);
    const group = groups.get(key);
    if (group) group.push(message);
    else groups.set(key, [message]);
  }
  const chunks: EventChunk[] = [];
  for (const group of groups.values()) {
    const { entity, day } = group[0]!;
    let members: ChunkedMessage[] = [];
    let bytes = 0;
    const close = () => {
      if (members.length === 0) return;
      chunks.push({ entity, day, id: chunkId(members.map((message) => message.messageId)), json: `[${members.map((message) => message.json).join(',')}]` });
      members = [];
      bytes = 0;
    };
    for (const message of uniqueByMessageId(group)) {
      // The brackets and a comma per message, so `bytes` is the array's exact length.
      const added = Buffer.byteLength(message.json) + 1;
      if (bytes + added + 1 > maxChunkJsonBytes) close();
      members.push(message);
      bytes += added;
    }
    close();
  }
  return chunks;
}

/**
 * The id of a chunk in its sort key: a hash of its sorted messageIds, so an identical retry of a request rewrites the
 * same items instead of adding copies (a message retried in a request batched differently does land in a second
 * item: readers drop the copy, see uniqueByMessageId). 128 bits of SHA-256, in hex: no two chunks of an entity's day
 * collide in practice, and no messageId of an item written before chunks (`EVT#<day>#<messageId>`) is mistaken for one.
 */
export function chunkId(messageIds: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(messageIds.toSorted())).digest('hex').slice(0, 32);
}

/**
 * Each messageId once, the first copy in the order given. Readers pass the items in sort-key order and each item's
 * messages in stored order, so the copy in the item with the smallest sort key wins, the same for the evaluator and
 * for an export. Copies are normally identical (a retried message); a client that re-sends other content under the
 * same messageId gets that one copy counted, never both.
 */
export function uniqueByMessageId<T extends { messageId: string }>(messages: Iterable<T>): T[] {
  const seen = new Set<string>();
  const unique: T[] = [];
  for (const message of messages) {
    if (seen.has(message.messageId)) continue;
    seen.add(message.messageId);
    unique.push(message);
  }
  return unique;
}
