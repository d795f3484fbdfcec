/**
 * What `@smithy/core/event-streams` means inside a Lambda bundle (lib/lambda-bundling.ts aliases the module here).
 * Why: the SDK's protocols load event-stream support on demand (a dynamic import, which esbuild still bundles), about
 * 19 KB of every bundle, but only an operation with an event stream (S3 SelectObjectContent, Kinesis SubscribeToShard,
 * Bedrock...) ever calls it, and the functions call none (DynamoDB, EventBridge, SQS, Secrets Manager, Kinesis
 * PutRecord). Should one get called, it fails with this message instead of every bundle carrying 19 KB for nothing.
 */
const notBundled = (): never => {
  throw new Error('pql-radar: AWS SDK event streams are left out of the Lambda bundles (lib/lambda-bundling.ts)');
};

export class EventStreamSerde {
  constructor() {
    notBundled();
  }
}

export const eventStreamSerdeProvider = notBundled;

/**
 * A client with event-stream operations (Kinesis) resolves its event-stream config when it is built: left as it is,
 * so that building it works and only an event-stream operation would fail (it finds no marshaller).
 */
export const resolveEventStreamSerdeConfig = <T>(input: T): T => input;
