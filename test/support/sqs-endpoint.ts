import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeLocally, listenLocally } from './local-server';

/**
 * A local stand-in for the SQS operations the notifier calls, ChangeMessageVisibility (and its batch) and
 * SendMessage, speaking SQS's wire protocol (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.<operation>`), so the real SDK
 * client serializes, signs and checks the answer (SendMessage's MD5 of the body) as it does against AWS. Point a
 * client at it with AWS_ENDPOINT_URL_SQS and use queueUrl() for the queue URLs. It validates what SQS validates for
 * these calls and records what it accepted; failNext() makes SQS refuse the next calls of an operation.
 */

export interface VisibilityChange {
  queueUrl: string;
  receiptHandle: string;
  visibilityTimeout: number;
}

export interface SentMessage {
  queueUrl: string;
  messageId: string;
  body: string;
  groupId: string | undefined;
  deduplicationId: string | undefined;
  /** String attributes, by name. */
  attributes: Record<string, string>;
}

export interface SqsEndpoint {
  url: string;
  /** The URL of a queue on this endpoint, as SQS shapes them: <endpoint>/<account>/<name>. */
  queueUrl(name: string): string;
  visibilityChanges: VisibilityChange[];
  sent: SentMessage[];
  /** Every operation called, in order, whatever the outcome. */
  operations: string[];
  /** The next `n` calls of `operation` are refused as a whole (HTTP 400, `errorType`). */
  failNext(operation: 'ChangeMessageVisibility' | 'ChangeMessageVisibilityBatch' | 'SendMessage', n: number, errorType?: string): void;
  reset(): void;
  close(): Promise<void>;
}

const account = '123456789012';
/** SQS's own limits. */
const maxVisibilityTimeout = 43_200;
const maxBodyBytes = 1024 * 1024;

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startSqsEndpoint(): Promise<SqsEndpoint> {
  const visibilityChanges: VisibilityChange[] = [];
  const sent: SentMessage[] = [];
  const operations: string[] = [];
  const failures = new Map<string, { remaining: number; errorType: string }>();
  let url = '';

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (error instanceof SqsError) sendError(response, 400, error.type, error.message);
      else sendError(response, 500, 'InternalError', String(error));
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const body = await readBody(request);
    const target = String(request.headers['x-amz-target'] ?? '');
    const authorization = request.headers['authorization'];
    if (request.method !== 'POST' || request.url !== '/') throw new SqsError('UnsupportedOperation', `${request.method} ${request.url} is not an SQS JSON call`);
    if (typeof authorization !== 'string' || !authorization.startsWith('AWS4-HMAC-SHA256 ')) {
      return sendError(response, 403, 'MissingAuthenticationToken', 'Missing or non-SigV4 Authorization header');
    }
    if (request.headers['content-type'] !== 'application/x-amz-json-1.0') {
      throw new SqsError('SerializationException', `Unexpected content-type: ${String(request.headers['content-type'])}`);
    }
    const operation = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : target;
    operations.push(operation);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body) as Record<string, unknown>;
    } catch {
      throw new SqsError('SerializationException', 'Request body is not valid JSON');
    }
    const failure = failures.get(operation);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      throw new SqsError(failure.errorType, 'Injected failure');
    }
    const queueUrl = queueOf(input);
    switch (operation) {
      case 'ChangeMessageVisibility': {
        changeVisibility(queueUrl, input);
        return send(response, {});
      }
      case 'ChangeMessageVisibilityBatch': {
        const entries = input['Entries'];
        if (!Array.isArray(entries) || entries.length === 0) throw new SqsError('AWS.SimpleQueueService.EmptyBatchRequest', 'There should be at least one ChangeMessageVisibilityBatchRequestEntry in the request.');
        if (entries.length > 10) throw new SqsError('AWS.SimpleQueueService.TooManyEntriesInBatchRequest', 'Maximum number of entries per request are 10.');
        const ids = entries.map((entry: { Id?: unknown }) => entry.Id);
        if (ids.some((id) => typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(id))) throw new SqsError('AWS.SimpleQueueService.InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores, at most 80.');
        if (new Set(ids).size !== ids.length) throw new SqsError('AWS.SimpleQueueService.BatchEntryIdsNotDistinct', 'Two or more batch entries in the request have the same Id.');
        for (const entry of entries as Record<string, unknown>[]) changeVisibility(queueUrl, entry);
        return send(response, { Successful: ids.map((id) => ({ Id: id })), Failed: [] });
      }
      case 'SendMessage': {
        const messageBody = input['MessageBody'];
        if (typeof messageBody !== 'string' || messageBody === '') throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
        if (Buffer.byteLength(messageBody) > maxBodyBytes) throw new SqsError('InvalidParameterValue', 'One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.');
        const groupId = optionalString(input, 'MessageGroupId');
        const deduplicationId = optionalString(input, 'MessageDeduplicationId');
        if (queueUrl.endsWith('.fifo')) {
          if (groupId === undefined) throw new SqsError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
          // The notifier's queues have no content-based deduplication.
          if (deduplicationId === undefined) throw new SqsError('InvalidParameterValue', 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
          if (input['DelaySeconds'] !== undefined) throw new SqsError('InvalidParameterValue', 'Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.');
          for (const [name, value] of [['MessageGroupId', groupId], ['MessageDeduplicationId', deduplicationId]] as const) {
            if (value.length > 128 || !/^[\x21-\x7e]+$/.test(value)) throw new SqsError('InvalidParameterValue', `Value for parameter ${name} is invalid.`);
          }
        }
        const attributes: Record<string, string> = {};
        const given = (input['MessageAttributes'] ?? {}) as Record<string, { DataType?: unknown; StringValue?: unknown }>;
        for (const [name, attribute] of Object.entries(given)) {
          if (attribute.DataType !== 'String' || typeof attribute.StringValue !== 'string') throw new SqsError('InvalidParameterValue', `Message attribute ${name} must be a String with a StringValue.`);
          attributes[name] = attribute.StringValue;
        }
        const messageId = randomUUID();
        sent.push({ queueUrl, messageId, body: messageBody, groupId, deduplicationId, attributes });
        return send(response, {
          MessageId: messageId,
          MD5OfMessageBody: createHash('md5').update(messageBody, 'utf8').digest('hex'),
          ...(queueUrl.endsWith('.fifo') ? { SequenceNumber: String(sent.length).padStart(20, '0') } : {}),
        });
      }
      default:
        throw new SqsError('UnsupportedOperation', `Unsupported X-Amz-Target: ${target}`);
    }
  }

  /** One message's visibility change (ChangeMessageVisibility, or an entry of its batch), checked as SQS does. */
  function changeVisibility(queueUrl: string, input: Record<string, unknown>) {
    const receiptHandle = input['ReceiptHandle'];
    const timeout = input['VisibilityTimeout'];
    if (typeof receiptHandle !== 'string' || receiptHandle === '') throw new SqsError('MissingParameter', 'The request must contain the parameter ReceiptHandle.');
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > maxVisibilityTimeout) {
      throw new SqsError('InvalidParameterValue', `Value ${String(timeout)} for parameter VisibilityTimeout is invalid. Reason: must be between 0 and 43200, if provided.`);
    }
    visibilityChanges.push({ queueUrl, receiptHandle, visibilityTimeout: timeout });
  }

  function queueOf(input: Record<string, unknown>): string {
    const queueUrl = input['QueueUrl'];
    if (typeof queueUrl !== 'string' || queueUrl === '') throw new SqsError('MissingParameter', 'The request must contain the parameter QueueUrl.');
    if (!queueUrl.startsWith(`${url}/${account}/`)) throw new SqsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
    return queueUrl;
  }

  url = await listenLocally(server);

  return {
    url,
    queueUrl: (name) => `${url}/${account}/${name}`,
    visibilityChanges,
    sent,
    operations,
    failNext(operation, n, errorType = 'KmsAccessDenied') {
      failures.set(operation, { remaining: n, errorType });
    },
    reset() {
      visibilityChanges.length = 0;
      sent.length = 0;
      operations.length = 0;
      failures.clear();
    },
    close: () => closeLocally(server),
  };
}

function optionalString(input: Record<string, unknown>, name: string): string | undefined {
  const value = input[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new SqsError('InvalidParameterValue', `Value for parameter ${name} is invalid.`);
  return value;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(response: ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID(), ...headers });
  response.end(JSON.stringify(body));
}

/** AWS JSON 1.0 error, with SQS's query-compatible code in x-amzn-query-error as SQS sends it. */
function sendError(response: ServerResponse, status: number, type: string, message: string) {
  send(response, { __type: `com.amazonaws.sqs#${type}`, message }, status, { 'x-amzn-query-error': `${type};Sender` });
}
