import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterEach, expect, it, vi } from 'vitest';
import { DynamoDbWriteKeyStore } from '../../functions/adapters/dynamodb/write-key-store';
import { freshTable } from '../support/dynamodb';
import { stubFunctionEnvironment } from '../support/evaluator-environment';
import { lambdaContext } from '../support/lambda-context';
import { storedEventMessages } from '../support/stored-events';

// The ingest function behind a Lambda function URL (lib/ingest-api.ts' functionUrl): the same function as behind the
// HTTP API, given the events a function URL sends. They are payload format 2.0 too, but with the route `$default`,
// the account `anonymous`, a time in the access-log format, and a text body (analytics.js sends text/plain) as it
// came, not in base64.

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

/** A function URL's event, as Lambda documents it (the "Request payload format" of function URLs). */
function functionUrlEvent(method: string, path: string, headers: Record<string, string>, body?: string): APIGatewayProxyEventV2 {
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'abcdefghij.lambda-url.eu-west-1.on.aws', 'x-forwarded-proto': 'https', ...headers },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghij',
      domainName: 'abcdefghij.lambda-url.eu-west-1.on.aws',
      domainPrefix: 'abcdefghij',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'Mozilla/5.0' },
      requestId: `function-url-${now}`,
      routeKey: '$default',
      stage: '$default',
      time: '01/Dec/2026:19:03:58 +0000',
      timeEpoch: now,
    },
    isBase64Encoded: false,
    ...(body !== undefined ? { body } : {}),
  };
}

it("stores a browser's call, answers the preflight of an allowed origin and refuses a wrong key, as behind the HTTP API", async () => {
  const { client, tableName } = await freshTable();
  stubFunctionEnvironment({ TABLE_NAME: tableName });
  const keys = new DynamoDbWriteKeyStore(client, tableName);
  const { key } = await keys.create('acme');
  await keys.setAllowedOrigins('acme', ['https://app.example.com']);
  const { handler } = await import('../../functions/ingest/handler');
  const call = (event: APIGatewayProxyEventV2) => handler(event, lambdaContext()) as Promise<{ statusCode: number; headers?: Record<string, string>; body?: string }>;
  const origin = 'https://app.example.com';

  const preflight = await call(functionUrlEvent('OPTIONS', '/v1/t', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }));
  expect(preflight.statusCode).toBe(204);
  expect(preflight.headers?.['access-control-allow-origin']).toBe(origin);

  const timestamp = new Date(Date.now() - 60_000).toISOString();
  const track = { type: 'track', event: 'Pricing Viewed', anonymousId: 'visitor-7', messageId: 'url-1', timestamp, writeKey: key };
  const stored = await call(functionUrlEvent('POST', '/v1/t', { origin, 'content-type': 'text/plain' }, JSON.stringify(track)));
  expect({ status: stored.statusCode, body: JSON.parse(stored.body!) }).toEqual({ status: 200, body: { success: true } });
  expect(stored.headers?.['access-control-allow-origin']).toBe(origin);

  const refused = await call(functionUrlEvent('POST', '/v1/t', { origin, 'content-type': 'text/plain' }, JSON.stringify({ ...track, messageId: 'url-2', writeKey: 'pqr_not_a_key' })));
  expect(refused.statusCode).toBe(401);

  expect((await storedEventMessages(client, tableName)).map((message) => message.messageId)).toEqual(['url-1']);
});
