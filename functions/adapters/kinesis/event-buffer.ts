import { PutRecordCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { createHash } from 'node:crypto';
import { bufferRecordData, EventBuffer, type BufferedRequest, type DirectSaveListener } from '../../core/ingest-buffer';
import type { EventStore } from '../../core/ports';

/**
 * The Kinesis variant's buffer (lib/ingest-buffer.ts): a request is one record, durable in three zones once put (at
 * most 1 MiB: a message is at most 32 KB). The partition key is the message's entity, so that a visitor's requests
 * meet in one shard and its events of a batch share items.
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
    const { identity } = request.messages[0]!;
    const partitionKey = createHash('sha256').update(`${request.workspace}\n${identity.kind}\n${identity.id}`).digest('base64url');
    await this.client.send(new PutRecordCommand({ StreamName: this.streamName, PartitionKey: partitionKey, Data: bufferRecordData(request) }));
    return 'put' as const;
  }
}
