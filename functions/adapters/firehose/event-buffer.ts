import { PutRecordCommand, ServiceUnavailableException, type FirehoseClient } from '@aws-sdk/client-firehose';
import { bufferObjectLine, EventBuffer, type BufferedRequest, type DirectSaveListener } from '../../core/ingest-buffer';
import type { EventStore } from '../../core/ports';

/**
 * The Firehose variant's buffer (lib/ingest-firehose-buffer.ts): a request is one record on the delivery stream (Direct
 * PUT), a line of the S3 object Firehose writes every buffering interval, which the loader stores in the table.
 */
export class FirehoseEventBuffer extends EventBuffer {
  constructor(
    private readonly client: FirehoseClient,
    private readonly deliveryStreamName: string,
    table: EventStore,
    onDirectSave?: DirectSaveListener,
  ) {
    super(table, onDirectSave);
  }

  protected async put(request: BufferedRequest) {
    // A record is at most 1,000 KiB: a message is at most 32 KB, so its line, deflated and in base64, always fits.
    try {
      await this.client.send(new PutRecordCommand({ DeliveryStreamName: this.deliveryStreamName, Record: { Data: bufferObjectLine(request) } }));
    } catch (error) {
      // Firehose answers ServiceUnavailableException when the delivery stream's throughput limit is reached; the SDK
      // has retried it already. The table is as durable as the stream (it is where the loader puts the record anyway),
      // so the request is stored there and answered 200, rather than answered 500 for the client to send again.
      if (error instanceof ServiceUnavailableException) return 'busy' as const;
      throw error;
    }
    return 'put' as const;
  }
}
