import { KinesisClient } from '@aws-sdk/client-kinesis';
import { KinesisEventBuffer } from '../adapters/kinesis/event-buffer';
import { environmentNames } from '../shared/settings';
import { createLambdaHandler, ingestClientOptions } from './lambda-handler';

/** Ingest putting requests on the Kinesis ingest buffer's stream (lib/ingest-buffer.ts). */
export const handler = createLambdaHandler({
  variable: environmentNames.ingestStream,
  create: (name, table, storedDirectly) => new KinesisEventBuffer(new KinesisClient(ingestClientOptions), name, table, storedDirectly),
});
