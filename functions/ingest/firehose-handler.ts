import { FirehoseClient } from '@aws-sdk/client-firehose';
import { FirehoseEventBuffer } from '../adapters/firehose/event-buffer';
import { environmentNames } from '../shared/settings';
import { createLambdaHandler, ingestClientOptions } from './lambda-handler';

/** Ingest putting requests on the Firehose ingest buffer's delivery stream (lib/ingest-firehose-buffer.ts). */
export const handler = createLambdaHandler({
  variable: environmentNames.ingestDeliveryStream,
  create: (name, table, storedDirectly) => new FirehoseEventBuffer(new FirehoseClient(ingestClientOptions), name, table, storedDirectly),
});
