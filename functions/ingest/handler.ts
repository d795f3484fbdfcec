import { createLambdaHandler } from './lambda-handler';

/** Ingest writing the table, with no ingest buffer (or one draining: lib/ingest-api.ts). */
export const handler = createLambdaHandler();
