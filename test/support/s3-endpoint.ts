import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import type { SQSEvent } from 'aws-lambda';
import { closeLocally, listenLocally } from './local-server';

/**
 * A local stand-in for the S3 operations of the Firehose buffer's objects: PutObject (what Firehose does, here the
 * test's or bench's), GetObject and DeleteObject (the loader's), speaking S3's REST protocol over HTTP/1.1 with
 * path-style URLs, which the SDK uses by itself for an endpoint given by IP address. The real SDK client signs (a
 * SigV4 Authorization header and x-amz-content-sha256 are required), sends and checks checksums, and parses S3's XML
 * errors (NoSuchKey, NoSuchBucket) as it does against AWS. Point a client at it with AWS_ENDPOINT_URL_S3 or `endpoint`.
 * An object put under `notifyPrefix` gives the SQS message body S3's event notification would (notifications).
 * S3 tells a caller that an object does not exist (404 NoSuchKey) only if it may list the bucket (s3:ListBucket);
 * to any other it answers 403 AccessDenied, as for an object it may not read: `mayList` says which caller this is.
 */

export interface S3Endpoint {
  url: string;
  /** An object's bytes; undefined if there is none. */
  object(bucket: string, key: string): Buffer | undefined;
  keys(bucket: string): string[];
  /** The bodies of the SQS messages S3 would have sent, one per object put under the prefix, in order. */
  notifications: string[];
  /** Every call, in order: `<method> <bucket>/<key>`. */
  calls: string[];
  close(): Promise<void>;
}

const region = 'us-east-1';

class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface StoredObject {
  body: Buffer;
  etag: string;
  checksumCrc32: string | undefined;
  lastModified: Date;
}

export async function startS3Endpoint(options: { buckets: readonly string[]; notifyPrefix: string; mayList: boolean }): Promise<S3Endpoint> {
  const buckets = new Map(options.buckets.map((name) => [name, new Map<string, StoredObject>()]));
  const notifications: string[] = [];
  const calls: string[] = [];
  let sequence = 0;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof S3Error) sendError(response, error);
      else sendError(response, new S3Error(500, 'InternalError', String(error)));
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = new URL(request.url ?? '/', 'http://s3.local').pathname;
    const slash = path.indexOf('/', 1);
    const bucketName = decodeURIComponent(path.slice(1, slash === -1 ? undefined : slash));
    const key = slash === -1 ? '' : decodeURIComponent(path.slice(slash + 1));
    calls.push(`${request.method} ${bucketName}/${key}`);
    const authorization = request.headers['authorization'];
    if (typeof authorization !== 'string' || !authorization.startsWith('AWS4-HMAC-SHA256 ')) throw new S3Error(403, 'AccessDenied', 'Access Denied');
    const contentSha256 = request.headers['x-amz-content-sha256'];
    if (typeof contentSha256 !== 'string') throw new S3Error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    if (/^[0-9a-f]{64}$/.test(contentSha256) && createHash('sha256').update(body).digest('hex') !== contentSha256) {
      throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const bucket = buckets.get(bucketName);
    if (!bucket) throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucketName });
    if (key === '') throw new S3Error(501, 'NotImplemented', 'Only object operations are implemented here');

    switch (request.method) {
      case 'PUT': {
        const given = request.headers['x-amz-checksum-crc32'];
        const checksum = Buffer.alloc(4);
        checksum.writeUInt32BE(crc32(body));
        if (typeof given === 'string' && given !== checksum.toString('base64')) throw new S3Error(400, 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
        const etag = `"${createHash('md5').update(body).digest('hex')}"`;
        bucket.set(key, { body, etag, checksumCrc32: typeof given === 'string' ? given : undefined, lastModified: new Date() });
        if (key.startsWith(options.notifyPrefix)) notifications.push(notification(bucketName, key, body.length, etag));
        response.writeHead(200, { etag, 'x-amz-request-id': randomUUID(), ...(typeof given === 'string' ? { 'x-amz-checksum-crc32': given } : {}) });
        return response.end();
      }
      case 'GET': {
        const object = bucket.get(key);
        if (!object) throw options.mayList ? new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key }) : new S3Error(403, 'AccessDenied', 'Access Denied');
        const checksum = request.headers['x-amz-checksum-mode'] === 'ENABLED' && object.checksumCrc32 ? { 'x-amz-checksum-crc32': object.checksumCrc32, 'x-amz-checksum-type': 'FULL_OBJECT' } : {};
        response.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': object.body.length,
          etag: object.etag,
          'last-modified': object.lastModified.toUTCString(),
          'x-amz-request-id': randomUUID(),
          ...checksum,
        });
        return response.end(object.body);
      }
      case 'DELETE':
        // S3 answers 204 whether or not there was such an object.
        bucket.delete(key);
        response.writeHead(204, { 'x-amz-request-id': randomUUID() });
        return response.end();
      default:
        throw new S3Error(405, 'MethodNotAllowed', `The specified method is not allowed against this resource: ${request.method}`);
    }
  }

  /** S3's event notification of an object created, as S3 sends it to an SQS queue (event structure 2.1). */
  function notification(bucket: string, key: string, size: number, etag: string): string {
    return JSON.stringify({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: region,
          eventTime: new Date().toISOString(),
          eventName: 'ObjectCreated:Put',
          userIdentity: { principalId: 'AWS:AROAEXAMPLE:firehose' },
          requestParameters: { sourceIPAddress: '10.0.0.1' },
          responseElements: { 'x-amz-request-id': randomUUID(), 'x-amz-id-2': randomUUID() },
          s3: {
            s3SchemaVersion: '1.0',
            configurationId: 'buffer-objects',
            bucket: { name: bucket, ownerIdentity: { principalId: 'EXAMPLE' }, arn: `arn:aws:s3:::${bucket}` },
            object: { key: notificationKey(key), size, eTag: etag.slice(1, -1), sequencer: (++sequence).toString(16).toUpperCase().padStart(18, '0') },
          },
        },
      ],
    });
  }

  return {
    url: await listenLocally(server),
    object: (bucket, key) => buckets.get(bucket)?.get(key)?.body,
    keys: (bucket) => [...(buckets.get(bucket)?.keys() ?? [])],
    notifications,
    calls,
    close: () => closeLocally(server),
  };
}

/** A key as S3 writes it in a notification: URL-encoded as a form value ('+' for a space), slashes kept. */
export const notificationKey = (key: string) => encodeURIComponent(key).replaceAll('%2F', '/').replaceAll('%20', '+');

/** The message S3 sends when the notification is configured, to test it: no object. */
export function s3TestEvent(bucket: string): string {
  return JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: new Date().toISOString(), Bucket: bucket, RequestId: randomUUID(), HostId: randomUUID() });
}

/** Messages as an SQS event source hands them to a Lambda function. */
export function sqsEvent(bodies: readonly string[]): SQSEvent {
  return {
    Records: bodies.map((body) => ({
      messageId: randomUUID(),
      receiptHandle: randomUUID(),
      body,
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'AIDAEXAMPLE', ApproximateFirstReceiveTimestamp: String(Date.now()) },
      messageAttributes: {},
      md5OfBody: createHash('md5').update(body).digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:${region}:123456789012:buffer-objects`,
      awsRegion: region,
    })),
  };
}

function sendError(response: ServerResponse, error: S3Error) {
  const requestId = randomUUID();
  const detail = Object.entries(error.detail).map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`).join('');
  response.writeHead(error.status, { 'content-type': 'application/xml', 'x-amz-request-id': requestId });
  response.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>${detail}<RequestId>${requestId}</RequestId><HostId>local</HostId></Error>`);
}

const escapeXml = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
