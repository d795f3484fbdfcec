import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeLocally, listenLocally } from './local-server';

/**
 * A local stand-in for Amazon Data Firehose's PutRecord, the one operation ingest calls with the Firehose buffer on,
 * speaking its wire protocol (AWS JSON 1.1, `X-Amz-Target: Firehose_20150804.PutRecord`) over HTTP/1.1 as the Firehose
 * client does (NodeHttpHandler, unlike Kinesis's HTTP/2), so the real SDK client serializes (Data as base64), signs
 * and retries as it does against AWS. Point a client at it with AWS_ENDPOINT_URL_FIREHOSE or `endpoint`. It validates
 * what Firehose validates for the call, keeps what it accepted in order, and gives out what it gathered since the
 * last time as Firehose writes an S3 object at the end of a buffering interval (flush); failNext() refuses the next
 * calls as a delivery stream over its throughput limit does.
 */

export interface FirehoseRecord {
  deliveryStreamName: string;
  data: Buffer;
  recordId: string;
}

export interface FirehoseEndpoint {
  url: string;
  /** Every record accepted, in order. */
  records: FirehoseRecord[];
  /** The next `n` calls are refused with ServiceUnavailableException (HTTP 503), as over the throughput limit. */
  failNext(n: number): void;
  /**
   * The records accepted since the last flush as one object's bytes (their data one after the other, nothing added,
   * as Firehose writes them), and how many; undefined when there are none (Firehose writes no empty object).
   */
  flush(): { body: Buffer; records: number } | undefined;
  close(): Promise<void>;
}

/** Firehose's own limits: a record's data (before base64) at most 1,000 KiB; a delivery stream's name 1 to 64 of [a-zA-Z0-9_.-]. */
const maxRecordBytes = 1000 * 1024;
const streamNamePattern = /^[a-zA-Z0-9_.-]{1,64}$/;
const account = '123456789012';

class FirehoseError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A Firehose endpoint with these delivery streams: any other name is ResourceNotFoundException, as in an account. */
export async function startFirehoseEndpoint(deliveryStreams: readonly string[]): Promise<FirehoseEndpoint> {
  const records: FirehoseRecord[] = [];
  let flushed = 0;
  let failures = 0;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof FirehoseError) send(response, { __type: error.type, message: error.message }, error.status);
      else send(response, { __type: 'InternalFailure', message: String(error) }, 500);
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    const authorization = request.headers['authorization'];
    if (request.method !== 'POST' || request.url !== '/') throw new FirehoseError('UnknownOperationException', `${request.method} ${request.url} is not a Firehose JSON call`);
    if (typeof authorization !== 'string' || !authorization.startsWith('AWS4-HMAC-SHA256 ')) throw new FirehoseError('MissingAuthenticationTokenException', 'Missing or non-SigV4 Authorization header', 403);
    if (request.headers['content-type'] !== 'application/x-amz-json-1.1') throw new FirehoseError('SerializationException', `Unexpected content-type: ${String(request.headers['content-type'])}`);
    if (target !== 'Firehose_20150804.PutRecord') throw new FirehoseError('UnknownOperationException', `Unsupported X-Amz-Target: ${target}`);
    let input: { DeliveryStreamName?: unknown; Record?: { Data?: unknown } };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof input;
    } catch {
      throw new FirehoseError('SerializationException', 'Request body is not valid JSON');
    }
    const { DeliveryStreamName: name, Record: record } = input;
    if (typeof name !== 'string' || !streamNamePattern.test(name)) {
      throw new FirehoseError('ValidationException', "1 validation error detected: Value at 'deliveryStreamName' failed to satisfy constraint: Member must have length between 1 and 64 and match [a-zA-Z0-9_.-]+");
    }
    if (typeof record?.Data !== 'string') throw new FirehoseError('ValidationException', "1 validation error detected: Value null at 'record.data' failed to satisfy constraint: Member must not be null");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(record.Data) || record.Data.length % 4 !== 0) throw new FirehoseError('SerializationException', 'Record.Data is not valid base64');
    const data = Buffer.from(record.Data, 'base64');
    if (data.length > maxRecordBytes) {
      throw new FirehoseError('ValidationException', "1 validation error detected: Value at 'record.data' failed to satisfy constraint: Member must have length less than or equal to 1024000");
    }
    if (!deliveryStreams.includes(name)) throw new FirehoseError('ResourceNotFoundException', `Firehose ${name} under account ${account} not found.`);
    if (failures > 0) {
      failures--;
      throw new FirehoseError('ServiceUnavailableException', 'Slow down.', 503);
    }
    const recordId = randomBytes(112).toString('base64').slice(0, 152);
    records.push({ deliveryStreamName: name, data, recordId });
    return send(response, { RecordId: recordId, Encrypted: false });
  }

  return {
    url: await listenLocally(server),
    records,
    failNext(n) {
      failures = n;
    },
    flush() {
      const gathered = records.slice(flushed);
      flushed = records.length;
      return gathered.length === 0 ? undefined : { body: Buffer.concat(gathered.map((record) => record.data)), records: gathered.length };
    },
    close: () => closeLocally(server),
  };
}

/**
 * The key Firehose gives an object it writes under `prefix` at `at` (UTC), for a prefix without expressions:
 * `<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<random>`.
 */
export function firehoseObjectKey(prefix: string, deliveryStreamName: string, at: Date): string {
  const [date, time] = at.toISOString().slice(0, 19).split('T') as [string, string];
  return `${prefix}${date.replaceAll('-', '/')}/${time.slice(0, 2)}/${deliveryStreamName}-1-${date}-${time.replaceAll(':', '-')}-${randomUUID()}`;
}

function send(response: ServerResponse, body: unknown, status = 200) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
  response.end(JSON.stringify(body));
}
