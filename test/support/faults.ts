import { DynamoDBClient, type BatchGetItemCommandInput, type BatchGetItemCommandOutput, type BatchWriteItemCommandInput, type BatchWriteItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpResponse, type HttpRequest } from '@smithy/protocol-http';
import { Readable } from 'node:stream';
import { inject } from 'vitest';

/**
 * A DynamoDB client for DynamoDB Local whose transport answers the first `throttledCalls` requests of the given
 * operation with a real ThrottlingException response, so the SDK's own deserialisation and retry strategy handle it.
 */
export function throttlingClient(operation: string, throttledCalls: number, maxAttempts = 6) {
  const transport = new NodeHttpHandler();
  const counts = { throttled: 0, calls: 0 };
  const client = new DynamoDBClient({
    endpoint: inject('dynamoEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts,
    requestHandler: {
      async handle(request: HttpRequest) {
        if (request.headers['x-amz-target'] === `DynamoDB_20120810.${operation}`) {
          counts.calls++;
          if (counts.throttled < throttledCalls) {
            counts.throttled++;
            const body = JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' });
            return {
              response: new HttpResponse({
                statusCode: 400,
                headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `throttle-${counts.throttled}` },
                body: Readable.from([Buffer.from(body)]),
              }),
            };
          }
        }
        return transport.handle(request);
      },
      updateHttpClientConfig: () => {},
      httpHandlerConfigs: () => ({}),
      destroy: () => transport.destroy(),
    },
  });
  return { client, counts };
}

/**
 * Makes BatchWriteItem behave as DynamoDB does under load: each call writes only the first `writtenPerCall` items
 * and hands the rest back as UnprocessedItems, for the first `partialCalls` calls.
 */
export function leaveItemsUnprocessed(client: DynamoDBClient, partialCalls: number, writtenPerCall = 1) {
  const counts = { partial: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'BatchWriteItemCommand' || counts.partial >= partialCalls) return next(args);
      const input = args.input as BatchWriteItemCommandInput;
      const [tableName, requests] = Object.entries(input.RequestItems ?? {})[0]!;
      if (requests.length <= writtenPerCall) return next(args);
      counts.partial++;
      const result = await next({ ...args, input: { ...input, RequestItems: { [tableName]: requests.slice(0, writtenPerCall) } } });
      const output = result.output as BatchWriteItemCommandOutput;
      return { ...result, output: { ...output, UnprocessedItems: { [tableName]: requests.slice(writtenPerCall) } } };
    },
    { step: 'initialize', name: 'leaveItemsUnprocessed' },
  );
  return counts;
}

/**
 * Makes BatchGetItem behave as DynamoDB does under load: each of the first `partialCalls` calls reads only its first
 * `readPerCall` keys and hands the rest back as UnprocessedKeys. Also counts the calls in flight at once (`mostAtOnce`).
 */
export function leaveKeysUnprocessed(client: DynamoDBClient, partialCalls: number, readPerCall = 1) {
  const counts = { partial: 0, inFlight: 0, mostAtOnce: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'BatchGetItemCommand') return next(args);
      counts.mostAtOnce = Math.max(counts.mostAtOnce, ++counts.inFlight);
      try {
        const input = args.input as BatchGetItemCommandInput;
        const [tableName, request] = Object.entries(input.RequestItems ?? {})[0]!;
        const keys = request.Keys ?? [];
        if (counts.partial >= partialCalls || keys.length <= readPerCall) return await next(args);
        counts.partial++;
        const result = await next({ ...args, input: { ...input, RequestItems: { [tableName]: { ...request, Keys: keys.slice(0, readPerCall) } } } });
        const output = result.output as BatchGetItemCommandOutput;
        return { ...result, output: { ...output, UnprocessedKeys: { [tableName]: { ...request, Keys: keys.slice(readPerCall) } } } };
      } finally {
        counts.inFlight--;
      }
    },
    { step: 'initialize', name: 'leaveKeysUnprocessed' },
  );
  return counts;
}
