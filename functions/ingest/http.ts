import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { gunzipSync } from 'node:zlib';
import { decodeUtf8, ingestLimits } from '../core/messages';
import { callTypeOfPath, callTypes, ingest, StorageFailure, type IngestDependencies, type IngestResponse } from '../core/ingest';
import { originAllowed } from '../core/origins';
import { feedbackPath } from '../core/lead-feedback';
import { leadStatusPathPrefix } from '../core/lead-status';
import { failureBody, type FailureStatus } from '../core/request-failure';

export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

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
export function createIngestHandler(dependencies: IngestDependencies, observer?: IngestObserver, feedback?: HttpApiHandler) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    // Sales feedback links (feedback-http.ts) are served by this function too: one function, one URL to sign for.
    if (feedback && event.rawPath === feedbackPath) return feedback(event);
    const requestId = event.requestContext.requestId;
    const origin = event.headers['origin'];
    const refused = corsHeaders(origin, false);
    // Through the function URL, which hands the function every method; the local server refuses them before (serveHttpApi).
    const wrongMethod = methodRefusal(event.requestContext.http.method, event.rawPath);
    if (wrongMethod) return json(405, failureBody(405, '', wrongMethod.reason), { ...refused, allow: wrongMethod.allow });
    const callType = callTypeOfPath(event.rawPath);
    if (callType === undefined) {
      return json(404, failureBody(404, '', 'not found', `no such endpoint: ${event.rawPath}; use /v1/${callTypes.join(', /v1/')}`), refused);
    }
    if (event.requestContext.http.method === 'OPTIONS') return preflight(origin, event.headers, dependencies);
    const decoded = decodeBody(event);
    if (!decoded.ok) return json(decoded.status, failureBody(decoded.status, '', decoded.reason), refused);

    try {
      const response = await ingest(
        {
          callType,
          body: decoded.body,
          authorization: event.headers['authorization'],
          ...(origin !== undefined ? { origin } : {}),
          receivedAt: new Date(event.requestContext.timeEpoch || Date.now()),
          requestId,
        },
        dependencies,
      );
      observer?.onResponse(response, requestId);
      return json(response.status, response.body, corsHeaders(origin, response.allowOrigin !== undefined));
    } catch (thrown) {
      const error = thrown instanceof StorageFailure ? thrown.cause : thrown;
      observer?.onError(error, requestId);
      // A failure to store comes after the request's origin was accepted; one before (the key store's) leaves it unknown.
      const cors = corsHeaders(origin, thrown instanceof StorageFailure);
      if (error instanceof Error && throttlingErrors.has(error.name)) {
        return json(429, failureBody(429, '', 'throttled', 'storage is throttled; retry later'), { ...cors, 'retry-after': '5' });
      }
      // Nothing can be promised about this request: a 5xx makes the SDK retry it, and storing is idempotent.
      return json(500, failureBody(500, '', 'internal error', `internal error; retry the request (request id ${requestId})`), cors);
    }
  };
}

/**
 * The methods of the API's paths (lib/ingest-api.ts, lib/lead-status-api.ts): events are sent with POST (OPTIONS is the
 * browsers' preflight), lead status is read with GET. The feedback links' path answers its own (feedback-http.ts).
 */
const pathMethods: { matches: (path: string) => boolean; allow: readonly string[]; use: string }[] = [
  { matches: (path) => callTypeOfPath(path) !== undefined, allow: ['POST', 'OPTIONS'], use: 'events are sent with POST' },
  { matches: (path) => path.startsWith(leadStatusPathPrefix), allow: ['GET'], use: 'lead status is read with GET' },
];

/**
 * Why a known path refuses `method` (a 405) and its Allow header; undefined when the method is the path's, or the path
 * is not known (a 404 says so). The deployed HTTP API has routes for these methods only and answers any other with its
 * own 404 before a function runs; the local server and the function URL answer this.
 */
export function methodRefusal(method: string, path: string): { reason: string; allow: string } | undefined {
  const known = pathMethods.find((route) => route.matches(path));
  if (!known || known.allow.includes(method)) return undefined;
  return { reason: `${method} is not supported on ${path}: ${known.use}`, allow: known.allow.join(', ') };
}

type Decoded = { ok: true; body: string } | { ok: false; status: FailureStatus; reason: string };

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

/**
 * Browser SDKs send their write key in an Authorization header (and analytics.js an X-Retry-Count), so the browser
 * asks first. The preflight carries no key, so it cannot tell the workspace: an origin that some workspace accepts
 * passes it, and the request itself is then checked against its own workspace's origins.
 */
async function preflight(origin: string | undefined, headers: APIGatewayProxyEventV2['headers'], dependencies: IngestDependencies): Promise<APIGatewayProxyStructuredResultV2> {
  const accepted = origin !== undefined && [...(await dependencies.keys.allowedOrigins()).values()].some((origins) => originAllowed(origins, origin));
  if (!accepted) {
    const reason = origin === undefined ? 'a preflight needs an Origin header' : `${origin} is not an origin any workspace accepts browser events from`;
    return json(403, failureBody(403, 'origin', reason, reason), corsHeaders(origin, false));
  }
  return {
    statusCode: 204,
    headers: {
      ...corsHeaders(origin, true),
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': allowedRequestHeaders(headers['access-control-request-headers']),
      // Chromium keeps a preflight for at most 2 hours: one per page session instead of one per call.
      'access-control-max-age': '7200',
    },
  };
}

/**
 * The headers the browser asks to send. SDKs add their own (analytics.js X-Retry-Count; RudderStack AnonymousId,
 * SentAt and its Rsa-* retry headers) and ingest reads none of them but the key, so any well-formed list is allowed.
 */
function allowedRequestHeaders(requested: string | undefined): string {
  const names = (requested ?? '').split(',').map((name) => name.trim().toLowerCase()).filter((name) => /^[a-z0-9-]{1,64}$/.test(name));
  return [...new Set(['authorization', 'content-type', 'content-encoding', ...names.slice(0, 32)])].join(', ');
}

/**
 * The CORS headers of any answer to a browser's request (`origin`, its Origin header; none without one), errors
 * included: a browser hides an answer without them from the page, and analytics.js then takes a 4xx it should drop
 * for a network failure and retries it, and cannot see a 429's Retry-After (exposed here). Echoing any origin on an
 * error is safe: an error's body holds only the reason and the field at fault, nothing of the workspace's data.
 * `accepted`: the origin is one the request's workspace accepts (a preflight, which carries no key: one some
 * workspace accepts). Only then are credentials allowed: analytics.js can be set to send with `credentials:
 * 'include'`, and the browser then reads the answer only if access-control-allow-credentials is true, as well as
 * the origin echoed (never `*`).
 */
export function corsHeaders(origin: string | undefined, accepted: boolean): Record<string, string> {
  if (origin === undefined) return {};
  return {
    'access-control-allow-origin': origin,
    vary: 'origin',
    'access-control-expose-headers': 'retry-after',
    ...(accepted ? { 'access-control-allow-credentials': 'true' } : {}),
  };
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}
