import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { eventMessagesOf, eventBodyAttributes } from '../../functions/adapters/dynamodb/event-body';
import { chunkId, eventChunks, maxChunkJsonBytes, uniqueByMessageId, type ChunkedMessage } from '../../functions/adapters/dynamodb/event-chunks';

const message = (entity: string, day: string, messageId: string, extra: Record<string, unknown> = {}): ChunkedMessage => ({
  entity,
  day,
  messageId,
  json: JSON.stringify({ type: 'track', messageId, timestamp: `${day}T10:00:00.000Z`, ...extra }),
});

const idsOf = (json: string) => (JSON.parse(json) as { messageId: string }[]).map((m) => m.messageId);

describe('eventChunks', () => {
  it('puts the messages of one entity and day in one chunk, in request order, one chunk per entity and day', () => {
    const chunks = eventChunks([
      message('u1', '2024-05-01', 'a'),
      message('u2', '2024-05-01', 'b'),
      message('u1', '2024-05-02', 'c'),
      message('u1', '2024-05-01', 'd'),
    ]);
    expect(chunks.map((chunk) => [chunk.entity, chunk.day, idsOf(chunk.json)])).toEqual([
      ['u1', '2024-05-01', ['a', 'd']],
      ['u2', '2024-05-01', ['b']],
      ['u1', '2024-05-02', ['c']],
    ]);
    expect(chunks[0]!.id).toBe(chunkId(['a', 'd']));
  });

  it('keeps the first copy of a messageId repeated within a request', () => {
    const [chunk] = eventChunks([message('u1', '2024-05-01', 'a', { n: 1 }), message('u1', '2024-05-01', 'a', { n: 2 }), message('u1', '2024-05-01', 'b')]);
    expect(JSON.parse(chunk!.json)).toMatchObject([{ messageId: 'a', n: 1 }, { messageId: 'b' }]);
  });

  it('cuts a large group into chunks of at most maxChunkJsonBytes of JSON, every message kept once', () => {
    const padding = 'x'.repeat(30_000);
    const messages = Array.from({ length: 40 }, (_, i) => message('u1', '2024-05-01', `m${i}`, { padding }));
    const chunks = eventChunks(messages);
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(Buffer.byteLength(chunk.json)).toBeLessThanOrEqual(maxChunkJsonBytes);
    expect(chunks.flatMap((chunk) => idsOf(chunk.json))).toEqual(messages.map((m) => m.messageId));
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(chunks.length);
    // The cut fills each chunk: merging a chunk with the next message would pass the limit.
    expect(Buffer.byteLength(chunks[0]!.json) + Buffer.byteLength(messages[idsOf(chunks[0]!.json).length]!.json) + 1).toBeGreaterThan(maxChunkJsonBytes);
  });

  it('stores a message larger than the limit alone', () => {
    const huge = message('u1', '2024-05-01', 'big', { padding: 'y'.repeat(maxChunkJsonBytes) });
    const chunks = eventChunks([message('u1', '2024-05-01', 'a'), huge, message('u1', '2024-05-01', 'b')]);
    expect(chunks.map((chunk) => idsOf(chunk.json))).toEqual([['a'], ['big'], ['b']]);
  });

  it('makes the same chunks, with the same ids, for an identical retry', () => {
    const request = [message('u1', '2024-05-01', 'a'), message('u2', '2024-05-01', 'b'), message('u1', '2024-05-01', 'c')];
    expect(eventChunks(request.map((m) => ({ ...m })))).toEqual(eventChunks(request));
  });
});

describe('chunkId', () => {
  it('depends on the set of messageIds, not their order', () => {
    expect(chunkId(['b', 'a'])).toBe(chunkId(['a', 'b']));
    expect(chunkId(['a', 'b'])).not.toBe(chunkId(['a', 'c']));
    // Unambiguous: ids that join to the same text are different sets.
    expect(chunkId(['a,b'])).not.toBe(chunkId(['a', 'b']));
    expect(chunkId(['a'])).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('uniqueByMessageId', () => {
  it('keeps the first copy of each messageId, in order', () => {
    const copies = [
      { messageId: 'a', copy: 1 },
      { messageId: 'b', copy: 1 },
      { messageId: 'a', copy: 2 },
    ];
    expect(uniqueByMessageId(copies)).toEqual([
      { messageId: 'a', copy: 1 },
      { messageId: 'b', copy: 1 },
    ]);
  });
});

describe('eventMessagesOf', () => {
  it('reads a chunk, deflated or not, and items written before chunks (one message) or before the dictionary (`z`)', () => {
    const single = { type: 'track', messageId: 'old', timestamp: '2024-05-01T10:00:00.000Z' };
    expect(eventMessagesOf(eventBodyAttributes(JSON.stringify(single)))).toEqual([single]);
    const [small] = eventChunks([message('u1', '2024-05-01', 'a')]);
    expect(eventMessagesOf(eventBodyAttributes(small!.json)).map((m) => m.messageId)).toEqual(['a']);
    const [large] = eventChunks(Array.from({ length: 12 }, (_, i) => message('u1', '2024-05-01', `m${i}`, { context: { page: { url: 'https://example.com/pricing' } } })));
    const item = eventBodyAttributes(large!.json);
    expect(item['zd']?.B).toBeDefined();
    expect(eventMessagesOf(item).map((m) => m.messageId)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    expect(eventMessagesOf({ z: { B: deflateRawSync(large!.json) } }).map((m) => m.messageId)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
    expect(eventMessagesOf({})).toEqual([]);
  });
});
