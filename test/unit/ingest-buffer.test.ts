import { describe, expect, it } from 'vitest';
import { deflateRawSync } from 'node:zlib';
import { bufferObjectsOf } from '../../functions/adapters/s3/buffer-objects';
import { bufferObjectLine, bufferedRequestsOfObject, bufferRecordJson, parseBufferRecord, storeBufferedRequests, type BufferedRequest } from '../../functions/core/ingest-buffer';
import { validateMessage, type AcceptedMessage, type RejectedMessage } from '../../functions/core/messages';
import type { EventStore, Refusal } from '../../functions/core/ports';

const receivedAt = new Date('2026-11-30T10:00:00.000Z');
const accepted = (messages: Record<string, unknown>[]): AcceptedMessage[] =>
  messages.map((message, index) => {
    const outcome = validateMessage(message, index, 'acme', receivedAt);
    if ('reason' in outcome) throw new Error(outcome.reason);
    return outcome;
  });
const request = (workspace: string, requestId: string, messages: Record<string, unknown>[], at = receivedAt): BufferedRequest => ({ workspace, requestId, receivedAt: at.toISOString(), messages: accepted(messages) });
const track = (messageId: string, userId: string) => ({ type: 'track', event: 'Report Exported', messageId, userId, timestamp: '2026-11-30T09:00:00.000Z' });

/** Records what it is given; refuses the messageIds it is told to, as the table refuses traits too large. */
class RecordingStore implements EventStore {
  saves: { workspace: string; messageIds: string[]; indexes: number[]; receivedAt: string }[] = [];
  quarantined: { workspace: string; requestId: string; rejected: RejectedMessage[] }[] = [];
  constructor(private readonly refuse: ReadonlySet<string> = new Set()) {}
  async save(workspace: string, messages: readonly AcceptedMessage[], at: Date) {
    this.saves.push({ workspace, messageIds: messages.map((m) => m.messageId), indexes: messages.map((m) => m.index), receivedAt: at.toISOString() });
    const refused: Refusal[] = messages.filter((m) => this.refuse.has(m.messageId)).map((m) => ({ index: m.index, path: 'traits', reason: 'too large' }));
    return { refused };
  }
  async quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[]) {
    this.quarantined.push({ workspace, requestId, rejected: [...rejected] });
  }
}

describe('the ingest buffer', () => {
  it('reads back what it wrote, and names what is wrong with a record it cannot read', () => {
    const written = request('acme', 'r1', [track('a', 'ann')]);
    expect(parseBufferRecord(bufferRecordJson(written))).toEqual(written);
    expect(() => parseBufferRecord(JSON.stringify({ ...written, v: 2 }))).toThrow('ingest buffer record: v must be 1, got 2');
    expect(() => parseBufferRecord(JSON.stringify({ v: 1, workspace: 'acme', requestId: 'r1', receivedAt: 'x', messages: {} }))).toThrow('ingest buffer record: messages must be an array');
    expect(() => parseBufferRecord(JSON.stringify({ v: 1, workspace: 7 }))).toThrow('ingest buffer record: workspace must be a string');
  });

  it('stores a batch in one save per workspace, in order, and quarantines a refusal under the request and index that sent it', async () => {
    const store = new RecordingStore(new Set(['b2']));
    const later = new Date('2026-11-30T10:00:30.000Z');
    const outcome = await storeBufferedRequests(store, [
      request('acme', 'r1', [track('a1', 'ann')]),
      request('globex', 'r2', [track('g1', 'gus')]),
      request('acme', 'r3', [track('b1', 'bob'), track('b2', 'bob')], later),
    ]);
    expect(store.saves).toEqual([
      { workspace: 'acme', messageIds: ['a1', 'b1', 'b2'], indexes: [0, 1, 2], receivedAt: later.toISOString() },
      { workspace: 'globex', messageIds: ['g1'], indexes: [0], receivedAt: receivedAt.toISOString() },
    ]);
    expect(store.quarantined).toHaveLength(1);
    expect(store.quarantined[0]).toMatchObject({ workspace: 'acme', requestId: 'r3', rejected: [{ index: 1, messageId: 'b2', path: 'traits', reason: 'too large' }] });
    expect(outcome).toEqual({ requests: 3, stored: 3, refused: 1 });
  });
});

describe("the Firehose variant's objects", () => {
  const key = 'requests/2026/11/30/10/pql-radar-Requests-1-2026-11-30-10-05-00-abc';
  const line = (text: string) => `${deflateRawSync(text).toString('base64')}\n`;

  it('reads back the requests of the lines Firehose wrote one after the other, in order', () => {
    const written = [request('acme', 'r1', [track('a', 'ann')]), request('globex', 'r2', [track('b', 'bob'), track('c', 'bob')])];
    const text = Buffer.concat(written.map(bufferObjectLine)).toString('utf8');
    expect(bufferedRequestsOfObject(text, key)).toEqual(written);
    expect(bufferedRequestsOfObject('', key)).toEqual([]);
  });

  it('names the object and the line of what is not a record, without quoting what it holds', () => {
    const good = Buffer.from(bufferObjectLine(request('acme', 'r1', [track('a', 'ann')]))).toString('utf8');
    expect(() => bufferedRequestsOfObject(`${good}not base64!\n`, key)).toThrow(`ingest buffer object ${key}: line 2 is not base64 (11 characters)`);
    expect(() => bufferedRequestsOfObject(`${good}\n${good}`, key)).toThrow(`ingest buffer object ${key}: line 2 is not base64 (empty)`);
    expect(() => bufferedRequestsOfObject(good.slice(0, -1), key)).toThrow(`ingest buffer object ${key}: line 1 has no newline at its end (a record cut short?)`);
    expect(() => bufferedRequestsOfObject(`${good}${Buffer.from('not deflated').toString('base64')}\n`, key)).toThrow(`ingest buffer object ${key}: line 2: invalid`);
    const notJson = () => bufferedRequestsOfObject(line('{"email": "ann@example.com"'), key);
    expect(notJson).toThrow(new Error(`ingest buffer object ${key}: line 1: its data is not JSON`));
    expect(() => bufferedRequestsOfObject(line(JSON.stringify({ v: 2 })), key)).toThrow(`ingest buffer object ${key}: line 1: ingest buffer record: v must be 1, got 2`);
  });

  it("reads the objects of S3's notification, keys URL-decoded, and none of its test event", () => {
    const notification = (objectKey: string) => JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: objectKey, size: 1 } } }] });
    expect(bufferObjectsOf(notification('requests/2026/a+b%2Bc%3D.txt'))).toEqual([{ bucket: 'b', key: 'requests/2026/a b+c=.txt' }]);
    expect(bufferObjectsOf(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' }))).toEqual([]);
    expect(() => bufferObjectsOf('{')).toThrow('S3 notification: the message body is not JSON');
    expect(() => bufferObjectsOf('{}')).toThrow('S3 notification: Records must be an array');
    expect(() => bufferObjectsOf(JSON.stringify({ Records: [{ s3: { bucket: { name: 'b' } } }] }))).toThrow('S3 notification: Records[0].s3 must name a bucket and an object key');
  });
});
