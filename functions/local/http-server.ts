import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import * as querystring from 'node:querystring';
import type { PageHandler } from './lead-inspector';
import { feedbackPath } from '../core/lead-feedback';
import { failureBody, type FailureStatus } from '../core/request-failure';
import { corsHeaders, methodRefusal } from '../ingest/http';
import { maxBodyBytes, readBody } from './request-body';

type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Serves an HTTP API (payload v2) Lambda handler on a Node HTTP server, translating requests the way API Gateway
 * does (lowercase headers, binary bodies base64-encoded), so the local runtime runs the deployed code unchanged.
 * `pages` answers GET requests of its own paths (the lead inspector) and POSTs under /leads/ and /local/; without a
 * handler only they are served.
 * `reads` answers the API's other GET requests (the lead status), as its deployed GET route does; `handler` the rest.
 */
export function serveHttpApi(
  handler: HttpApiHandler | undefined,
  options: { port: number; host?: string; pages?: PageHandler; reads?: HttpApiHandler },
): Promise<{ server: Server; url: string }> {
  const server = createServer(async (request, response) => {
    const send = (status: number, body: string, headers: Record<string, string | number | boolean> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    // As the ingest function's own refusals: the browser SDK must see the status to drop what it should not retry.
    const refuse = (status: FailureStatus, reason: string, headers: Record<string, string> = {}) =>
      send(status, JSON.stringify(failureBody(status, '', reason)), { ...corsHeaders(request.headers.origin, false), ...headers });
    try {
      if (options.pages && (request.method === 'GET' || request.method === 'HEAD')) {
        // The Host header names the page's origin, which the pages check (a rebound name is not a loopback one).
        const page = await options.pages(new URL(request.url ?? '/', `http://${request.headers.host ?? 'localhost'}`));
        if (page) {
          response.writeHead(page.status, page.headers);
          response.end(request.method === 'HEAD' ? undefined : page.body);
          return;
        }
      }
      // A form posted by a lead page (sales feedback), or the local runtime's evaluator control (a paced replay).
      if (options.pages && request.method === 'POST' && /^\/(leads|local)\//.test(request.url ?? '')) {
        const posted = await readBody(request);
        const origin = request.headers.origin;
        const page = await options.pages(new URL(request.url!, `http://${request.headers.host ?? 'localhost'}`), { origin, body: posted?.toString('utf8') ?? '' });
        if (page) {
          response.writeHead(page.status, page.headers);
          response.end(page.body);
          return;
        }
      }
      if (!handler) {
        refuse(404, 'this server serves the lead inspector only: /leads');
        return;
      }
      const body = await readBody(request);
      if (body === undefined) {
        refuse(413, `the request body is larger than ${maxBodyBytes} bytes`);
        return;
      }
      // HEAD is GET without the body, as an HTTP server answers it.
      const method = request.method === 'HEAD' ? 'GET' : (request.method ?? 'POST');
      const path = new URL(request.url ?? '/', 'http://localhost').pathname;
      // Here, as the methods decide which function answers (a GET of /v1/track would reach the lead status reads).
      const wrongMethod = methodRefusal(method, path);
      if (wrongMethod) {
        refuse(405, wrongMethod.reason, { allow: wrongMethod.allow });
        return;
      }
      // GET is the lead status reads', and the ingest API's for feedback links (lib/ingest-api.ts); the ingest handler
      // answers the rest, an unknown path with 404.
      const target = method === 'GET' && path !== feedbackPath && options.reads ? options.reads : handler;
      const result = await target(toHttpApiEvent(request, method, body));
      send(result.statusCode ?? 200, result.body ?? '', result.headers ?? {});
    } catch (error) {
      // The handler answers every expected failure itself; reaching here is a bug worth seeing in the terminal.
      console.error('local HTTP server: unhandled error', error);
      refuse(500, 'internal error');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      resolve({ server, url: `http://${options.host ?? '127.0.0.1'}:${port}` });
    });
  });
}

function toHttpApiEvent(request: IncomingMessage, method: string, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: `${method} ${url.pathname}`,
    // API Gateway's HTTP API hands the function the path percent-decoded (a userId in it arrives as sent). Where
    // decodeURIComponent would throw, querystring's unescape decodes leniently: bytes that are not UTF-8 (%FF) become
    // U+FFFD, which the lead status refuses (core/lead-status.ts), and a % that starts no escape stays as it came.
    rawPath: querystring.unescape(url.pathname),
    rawQueryString: url.search.slice(1),
    headers,
    isBase64Encoded: true,
    body: body.toString('base64'),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers['host'] ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: `${method} ${url.pathname}`,
      stage: '$default',
      time: new Date(now).toISOString(),
      timeEpoch: now,
    },
  };
}
