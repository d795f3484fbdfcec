import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { gunzipSync } from 'node:zlib';
import { decodeUtf8, ingestLimits } from '../core/messages';
import { callTypes, ingest, type CallType, type IngestDependencies, type IngestResponse } from '../core/ingest';

export interface IngestObserver {
  /** Called once per request with what may be logged: counts, status, workspace and key id, never message contents. */
  onResponse(response: IngestResponse, requestId: string): void;
  onError(error: unknown, requestId: string): void;
}

/** DynamoDB's throttling errors, still failing after the SDK's retries: the client should come back later. */
const throttlingErrors = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);

/**
 * The ingest primary adapter: an API Gateway HTTP API (payload v2) request in, the ingest use case, a response out.
 * The local runtime serves this very function behind a Node HTTP server.
 */
export function createIngestHandler(dependencies: IngestDependencies, observer?: IngestObserver) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const requestId = event.requestContext.requestId;
    const callType = event.rawPath.match(/^\/v1\/([a-z]+)\/?$/)?.[1];
    if (!isCallType(callType)) {
      return json(404, { success: false, error: `no such endpoint: ${event.rawPath}; use /v1/${callTypes.join(', /v1/')}`, path: '', reason: 'not found' });
    }
    const decoded = decodeBody(event);
    if (!decoded.ok) return json(decoded.status, { success: false, error: decoded.reason, path: '', reason: decoded.reason });

    try {
      const response = await ingest(
        {
          callType,
          body: decoded.body,
          authorization: event.headers['authorization'],
          receivedAt: new Date(event.requestContext.timeEpoch || Date.now()),
          requestId,
        },
        dependencies,
      );
      observer?.onResponse(response, requestId);
      return json(response.status, response.body);
    } catch (error) {
      observer?.onError(error, requestId);
      if (error instanceof Error && throttlingErrors.has(error.name)) {
        return json(429, { success: false, error: 'storage is throttled; retry later', path: '', reason: 'throttled' }, { 'retry-after': '5' });
      }
      // Nothing can be promised about this request: a 5xx makes the SDK retry it, and storing is idempotent.
      return json(500, { success: false, error: `internal error; retry the request (request id ${requestId})`, path: '', reason: 'internal error' });
    }
  };
}

type Decoded = { ok: true; body: string } | { ok: false; status: number; reason: string };

/** Undoes base64 and gzip, enforcing the request size limit on the decompressed body (a small gzip can inflate hugely). */
export function decodeBody(event: Pick<APIGatewayProxyEventV2, 'body' | 'isBase64Encoded' | 'headers'>): Decoded {
  const tooLarge = `the request body is larger than ${ingestLimits.maxRequestBytes} bytes; send smaller batches`;
  let bytes = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
  const encoding = (event.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === 'gzip') {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: ingestLimits.maxRequestBytes + 1 });
    } catch (error) {
      if (error instanceof RangeError) return { ok: false, status: 413, reason: tooLarge };
      return { ok: false, status: 400, reason: 'the body is not valid gzip (Content-Encoding: gzip)' };
    }
  } else if (encoding !== '' && encoding !== 'identity') {
    return { ok: false, status: 415, reason: `Content-Encoding "${encoding}" is not supported; use gzip or none` };
  }
  if (bytes.length > ingestLimits.maxRequestBytes) return { ok: false, status: 413, reason: tooLarge };
  return { ok: true, body: decodeUtf8(bytes) };
}

function isCallType(value: string | undefined): value is CallType {
  return (callTypes as readonly string[]).includes(value ?? '');
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
