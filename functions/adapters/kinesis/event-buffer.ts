import { PutRecordCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { createHash } from 'node:crypto';
import { bufferRecordData, EventBuffer, type BufferedRequest, type DirectSaveListener } from '../../core/ingest-buffer';
import type { EventStore } from '../../core/ports';

/** Kinesis takes records up to 1 MiB (data and partition key); a deflated request of at most 500 KB is far under. */
const maxRecordBytes = 1024 * 1024 - 256;

/**
 * The Kinesis variant's buffer (lib/ingest-buffer.ts): a request is one record, durable in three zones once put. The
 * partition key is the request's first entity, so that a visitor's requests meet in one shard and its events of a
 * batch share items.
 */
export class KinesisEventBuffer extends EventBuffer {
  constructor(
    private readonly client: KinesisClient,
    private readonly streamName: string,
    table: EventStore,
    onDirectSave?: DirectSaveListener,
  ) {
    super(table, onDirectSave);
  }

  protected async put(request: BufferedRequest) {
    const data = bufferRecordData(request);
    if (data.length > maxRecordBytes) return 'too large' as const;
    const first = request.messages[0]!.identity;
    const partitionKey = createHash('sha256').update(`${request.workspace}\n${first.kind}\n${first.id}`).digest('base64url');
    await this.client.send(new PutRecordCommand({ StreamName: this.streamName, PartitionKey: partitionKey, Data: data }));
    return 'put' as const;
  }
}
