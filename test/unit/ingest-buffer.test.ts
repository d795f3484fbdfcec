import { describe, expect, it } from 'vitest';
import { bufferRecordJson, parseBufferRecord, storeBufferedRequests, type BufferedRequest } from '../../functions/core/ingest-buffer';
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
