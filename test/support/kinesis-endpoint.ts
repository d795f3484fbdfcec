import { randomUUID } from 'node:crypto';
import { createServer, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { listenLocally } from './local-server';

/**
 * A local stand-in for Kinesis Data Streams' PutRecord, the one operation ingest calls with the buffer on, speaking
 * its wire protocol (AWS JSON 1.1, `X-Amz-Target: Kinesis_20131202.PutRecord`) over HTTP/2 as the Kinesis client does,
 * so the real SDK client serializes (Data as base64), signs and retries as it does against AWS. Point a client at it with `endpoint`. It validates
 * what Kinesis validates for the call, keeps what it accepted in order, and hands it out as a Lambda event source
 * would (kinesisEvent); failNext() throttles the next calls.
 */

export interface PutRecord {
  streamName: string;
  partitionKey: string;
  data: Buffer;
  sequenceNumber: string;
}

export interface KinesisEndpoint {
  url: string;
  records: PutRecord[];
  /** The next `n` calls are refused with ProvisionedThroughputExceededException (HTTP 400), as a busy shard does. */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** Kinesis's own limits: 1 MiB of data and partition key, a partition key of 1 to 256 characters. */
const maxRecordBytes = 1024 * 1024;

class KinesisError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startKinesisEndpoint(): Promise<KinesisEndpoint> {
  const records: PutRecord[] = [];
  let failures = 0;

  const sessions = new Set<Http2Session>();
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof KinesisError) send(response, { __type: error.type, message: error.message }, 400);
      else send(response, { __type: 'InternalFailure', message: String(error) }, 500);
    });
  });

  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  async function handle(request: Http2ServerRequest, response: Http2ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    const authorization = request.headers['authorization'];
    if (typeof authorization !== 'string' || !authorization.startsWith('AWS4-HMAC-SHA256 ')) throw new KinesisError('MissingAuthenticationTokenException', 'Missing or non-SigV4 Authorization header');
    if (request.headers['content-type'] !== 'application/x-amz-json-1.1') throw new KinesisError('SerializationException', `Unexpected content-type: ${String(request.headers['content-type'])}`);
    if (target !== 'Kinesis_20131202.PutRecord') throw new KinesisError('UnknownOperationException', `Unsupported X-Amz-Target: ${target}`);
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    if (failures > 0) {
      failures--;
      throw new KinesisError('ProvisionedThroughputExceededException', 'Rate exceeded for shard shardId-000000000000');
    }
    const { StreamName: streamName, PartitionKey: partitionKey, Data: data } = input;
    if (typeof streamName !== 'string' || streamName === '') throw new KinesisError('ValidationException', 'StreamName or StreamARN is required');
    if (typeof partitionKey !== 'string' || partitionKey.length < 1 || partitionKey.length > 256) throw new KinesisError('ValidationException', 'PartitionKey must be 1 to 256 characters');
    if (typeof data !== 'string') throw new KinesisError('ValidationException', 'Data is required');
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length + Buffer.byteLength(partitionKey) > maxRecordBytes) throw new KinesisError('ValidationException', 'Record is larger than 1 MiB');
    const sequenceNumber = String(records.length + 1).padStart(56, '0');
    records.push({ streamName, partitionKey, data: bytes, sequenceNumber });
    return send(response, { ShardId: 'shardId-000000000000', SequenceNumber: sequenceNumber });
  }

  return {
    url: await listenLocally(server),
    records,
    failNext(n) {
      failures = n;
    },
    close() {
      for (const session of sessions) session.destroy();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/** Records as a Kinesis event source hands them to a Lambda function. */
export function kinesisEvent(records: readonly PutRecord[]) {
  return {
    Records: records.map((record) => ({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: record.partitionKey,
        sequenceNumber: record.sequenceNumber,
        data: record.data.toString('base64'),
        approximateArrivalTimestamp: Date.now() / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${record.sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/consumer',
      awsRegion: 'us-east-1',
      eventSourceARN: `arn:aws:kinesis:us-east-1:123456789012:stream/${record.streamName}`,
    })),
  };
}

function send(response: Http2ServerResponse, body: unknown, status = 200) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
  response.end(JSON.stringify(body));
}
