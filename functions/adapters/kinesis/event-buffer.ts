import { PutRecordCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { bufferRecordJson, parseBufferRecord, type BufferedRequest } from '../../core/ingest-buffer';
import type { AcceptedMessage, RejectedMessage } from '../../core/messages';
import type { EventStore } from '../../core/ports';

/** Kinesis takes records up to 1 MiB (data and partition key); a deflated request of at most 500 KB is far under. */
const maxRecordBytes = 1024 * 1024 - 256;

/** A record's data: the request's JSON, deflated (a Kinesis PUT is billed per 25 KB, and a record is at most 1 MiB). */
export const bufferRecordData = (request: BufferedRequest): Uint8Array => deflateRawSync(bufferRecordJson(request));

export const bufferedRequestOf = (data: Uint8Array): BufferedRequest => parseBufferRecord(inflateRawSync(data).toString('utf8'));

/**
 * Ingest's store when the buffer is on: a request's accepted messages become one record on the stream, and the 200
 * follows once Kinesis has it (durably, in three zones). The partition key is the request's first entity, so that a
 * visitor's requests meet in one shard and its events of a batch share items. Quarantined messages go to the table
 * as before: they are rare, and an operator looks for them there.
 */
export class KinesisEventBuffer implements EventStore {
  constructor(
    private readonly client: KinesisClient,
    private readonly streamName: string,
    /** The table's store: the quarantine, and a request too large for one record. */
    private readonly table: EventStore,
  ) {}

  async save(workspace: string, messages: readonly AcceptedMessage[], receivedAt: Date, requestId: string) {
    const data = bufferRecordData({ workspace, requestId, receivedAt: receivedAt.toISOString(), messages: [...messages] });
    if (data.length > maxRecordBytes) return this.table.save(workspace, messages, receivedAt, requestId);
    const first = messages[0]!.identity;
    const partitionKey = createHash('sha256').update(`${workspace}\n${first.kind}\n${first.id}`).digest('base64url');
    await this.client.send(new PutRecordCommand({ StreamName: this.streamName, PartitionKey: partitionKey, Data: data }));
    return { refused: [] };
  }

  quarantine(workspace: string, requestId: string, rejected: readonly RejectedMessage[], receivedAt: Date) {
    return this.table.quarantine(workspace, requestId, rejected, receivedAt);
  }
}
