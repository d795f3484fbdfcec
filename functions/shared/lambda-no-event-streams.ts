/**
 * What `@smithy/core/event-streams` means inside a Lambda bundle (lib/lambda-bundling.ts aliases the module here).
 * Why: the SDK's protocols load event-stream support on demand (a dynamic import, which esbuild still bundles), about
 * 19 KB of every bundle, but only an operation with an event stream (S3 SelectObjectContent, Bedrock, Transcribe...)
 * ever calls it, and none of DynamoDB, EventBridge, SQS or Secrets Manager has one. Should a client that does get
 * bundled, its event-stream operations fail with this message instead of every other bundle carrying 19 KB for nothing.
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
