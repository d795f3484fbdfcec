import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, expect, inject, it, vi } from 'vitest';
import type { WrittenKey } from '../../functions/adapters/dynamodb/change-capture';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { entityPartitionKey, eventSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { allShards, runEvaluator } from '../../functions/core/evaluate-leads';
import { loadRules } from '../../functions/core/rules/load';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { environmentNames } from '../../functions/shared/settings';
import { changeListCount, listedChanges, twoDashboardsRules } from '../support/change-capture';
import { freshTable } from '../support/dynamodb';
import { stubEvaluatorEnvironment } from '../support/evaluator-environment';
import { startEventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { lambdaContext } from '../support/lambda-context';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';
import { cli } from '../support/cli';

// The deployed evaluator on its event source mapping: a batch of the table's stream is evaluated as it is read, and
// no change list is written or read for it; with USER_INTERVAL_SECONDS (lib/evaluator.ts' userEveryMinutes), a user's
// new events within the interval of its last evaluation are listed for the scheduled runs instead.

let runtime: DevRuntime | undefined;
afterEach(async () => {
  vi.unstubAllEnvs();
  await runtime?.stop();
  runtime = undefined;
});

/** The stream's records of what was written so far, as Lambda's event source mapping hands them over. */
async function streamBatch(dev: DevRuntime): Promise<DynamoDBStreamEvent> {
  const keys: WrittenKey[] = [];
  const stream = new LocalChangeStream(dev.client, dev.tableName, { mark: async (read) => keys.push(...read) });
  try {
    await stream.drain();
  } finally {
    stream.stop();
  }
  return {
    Records: keys.map((key) => ({
      eventName: 'INSERT' as const,
      eventSource: 'aws:dynamodb',
      dynamodb: { Keys: { pk: { S: key.pk }, sk: { S: key.sk } }, ApproximateCreationDateTime: Math.floor(key.at.getTime() / 1000), StreamViewType: 'KEYS_ONLY' as const },
    })),
  };
}

/** Two dashboards of ann's, which qualify her, and one of bob's, which does not. */
const annQualifiesBobNot = (timestamp: string) => [
  { type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd1', timestamp },
  { type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd2', timestamp },
  { type: 'track', userId: 'bob', event: 'Dashboard Created', messageId: 'd3', timestamp },
];

it('evaluates a stream batch at once, publishes the lead, lists nothing, and changes nothing when the batch is retried', async () => {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `stream-${randomUUID()}`, evaluateEveryMs: 0 }));
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  await sendBatch(dev, annQualifiesBobNot(hourAgo));
  const batch = await streamBatch(dev);
  expect(batch.Records.length).toBeGreaterThan(0);

  const bus = await startEventBridgeEndpoint();
  stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset: loadRules(twoDashboardsRules, 'rules.yaml'), shards: 4, eventBridgeUrl: bus.url });
  try {
    const { handler } = await import('../../functions/evaluator/handler');
    expect(await handler(batch, lambdaContext())).toEqual({ evaluated: 2, transitions: 1, left: 0 });
    expect(bus.accepted.map((entry) => `${entry.detailType}: ${entry.detail.entity.id} ${entry.detail.tier}`)).toEqual(['Lead Qualified: ann PQL-A']);
    expect(await changeListCount(dev.client, dev.tableName)).toBe(0);

    // The event source mapping retries a batch whose invocation failed: evaluating it again changes nothing.
    expect(await handler(batch, lambdaContext())).toEqual({ evaluated: 2, transitions: 0, left: 0 });
    expect(bus.accepted).toHaveLength(1);
    expect(await changeListCount(dev.client, dev.tableName)).toBe(0);
  } finally {
    await bus.close();
  }
});

it("with USER_INTERVAL_SECONDS, keeps a user's new events within the interval for the scheduled runs, which judge them once it is over", async () => {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `interval-${randomUUID()}`, evaluateEveryMs: 0 }));
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  const ruleset = loadRules(twoDashboardsRules, 'rules.yaml');
  const bus = await startEventBridgeEndpoint();
  let lastEvaluated = 0;
  stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset, shards: 4, eventBridgeUrl: bus.url });
  vi.stubEnv(environmentNames.userIntervalSeconds, '300');
  try {
    // The handler reads its environment once, when loaded: loaded anew with the interval.
    vi.resetModules();
    const { handler } = await import('../../functions/evaluator/handler');
    await sendBatch(dev, [{ type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd1', timestamp: hourAgo }]);
    expect(await handler(await streamBatch(dev), lambdaContext())).toEqual({ evaluated: 1, transitions: 0, left: 0 });
    // The scheduled run's first pass under these rules judges everyone, whatever their last evaluation.
    expect(await handler({}, lambdaContext())).toMatchObject({ evaluated: 1, transitions: 0 });
    lastEvaluated = Date.now();

    // Her second dashboard would qualify her: within the interval, it is listed for the scheduled runs, not judged.
    await sendBatch(dev, [{ type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd2', timestamp: hourAgo }]);
    expect(await handler(await streamBatch(dev), lambdaContext())).toEqual({ evaluated: 0, transitions: 0, left: 1 });
    expect(await changeListCount(dev.client, dev.tableName)).toBe(1);
    expect(bus.accepted).toEqual([]);
  } finally {
    await bus.close();
  }

  // The scheduled runs that follow, on a clock of their own (deployed, a list is read once 20 s old): within the
  // interval the change waits again, listed anew with the end of her interval, so that nothing of hers is read; once
  // it is over, it is judged, and she qualifies.
  const store = new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, dirtyShards: 4 });
  const publisher = new RecordingPublisher();
  const rowReads = vi.spyOn(store, 'entity');
  const scheduledRun = (minutes: number) =>
    runEvaluator({ store, publisher, ruleset, shards: allShards(4), now: new Date(lastEvaluated + minutes * 60_000), deadline: Number.POSITIVE_INFINITY, userIntervalMs: 5 * 60_000 });
  expect(await scheduledRun(2)).toMatchObject({ evaluated: 0, transitions: [], leftUnread: 1 });
  expect(await changeListCount(dev.client, dev.tableName)).toBe(2);
  expect((await scheduledRun(3)).lagSeconds).toBeGreaterThanOrEqual(3 * 60 - 5);
  expect(rowReads).not.toHaveBeenCalled();
  const judged = await scheduledRun(5.1);
  expect(rowReads).toHaveBeenCalled();
  expect(judged.evaluated).toBe(1);
  expect(judged.transitions.map((event) => `${event.detail.entity.id} ${event.detail.tier}`)).toEqual(['ann PQL-A']);
  expect(await scheduledRun(6)).toMatchObject({ evaluated: 0, transitions: [], lagSeconds: 0 });
});

/**
 * A runtime where ann qualifies and bob does not, an hour ago, beside an event item of eve's that the evaluator cannot
 * read: every evaluation of eve throws.
 */
async function withEveUnreadable(tablePrefix: string): Promise<DevRuntime> {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `${tablePrefix}-${randomUUID()}`, evaluateEveryMs: 0 }));
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  await sendBatch(dev, annQualifiesBobNot(hourAgo));
  await dev.client.send(
    new PutItemCommand({
      TableName: dev.tableName,
      Item: { pk: { S: entityPartitionKey(dev.workspace, 'user', 'eve') }, sk: { S: eventSortKey(hourAgo, 'corrupt') }, msg: { S: '[{"type": "tra' } },
    }),
  );
  return dev;
}

it('evaluates the rest of a batch past an entity it cannot read, lists that one for the scheduled run, and logs its type and error', async () => {
  const dev = await withEveUnreadable('poison');
  const batch = await streamBatch(dev);

  const bus = await startEventBridgeEndpoint();
  stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset: loadRules(twoDashboardsRules, 'rules.yaml'), shards: 4, eventBridgeUrl: bus.url });
  try {
    vi.resetModules();
    const { handler } = await import('../../functions/evaluator/handler');
    const { logger } = await import('../../functions/shared/powertools');
    const errors = vi.spyOn(logger, 'error');
    expect(await handler(batch, lambdaContext())).toEqual({ evaluated: 2, transitions: 1, left: 1 });
    expect([...(await listedChanges(dev.client, dev.tableName)).keys()]).toEqual(['user eve']);
    expect(bus.accepted.map((entry) => entry.detail.entity.id)).toEqual(['ann']);
    // The type and the error, never the id.
    expect(errors.mock.calls).toEqual([
      [
        'entities not evaluated: their evaluation threw; each is left for the next run to try again',
        { failed: 1, types: ['user'], errors: [expect.stringMatching(/^SyntaxError: /)], firstError: expect.any(SyntaxError) },
      ],
    ]);
    expect(JSON.stringify(errors.mock.calls)).not.toContain('eve');
  } finally {
    await bus.close();
  }
});

it('evaluate --once names an entity whose evaluation throws, with its error, evaluates the others and exits 1', async () => {
  const dev = await withEveUnreadable('poison-cli');
  const evaluated = await cli('--endpoint', dev.endpoint, '--table', dev.tableName, 'evaluate', '--once');
  expect(evaluated.code).toBe(1);
  expect(evaluated.stdout).toContain('evaluated 2 entities, ');
  expect(evaluated.stderr).toMatch(/^evaluator: user eve \(default\) not evaluated: SyntaxError: .*; it is left for the next pass to try again$/m);
}, 60_000);

it('lists every change of a batch whose lead events cannot be published for the scheduled run, and returns, with a log line of counts and the error', async () => {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `unpublished-${randomUUID()}`, evaluateEveryMs: 0 }));
  await sendBatch(dev, annQualifiesBobNot(new Date(Date.now() - 3_600_000).toISOString()));
  const batch = await streamBatch(dev);
  // Nothing answers where the bus was: publishing throws once the SDK's retries are spent.
  const bus = await startEventBridgeEndpoint();
  await bus.close();
  stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset: loadRules(twoDashboardsRules, 'rules.yaml'), shards: 4, eventBridgeUrl: bus.url });
  vi.resetModules();
  const { handler } = await import('../../functions/evaluator/handler');
  const { logger } = await import('../../functions/shared/powertools');
  const errors = vi.spyOn(logger, 'error');
  // Returned, not thrown: the event source mapping moves on, and the scheduled run has the changes and the outbox.
  expect(await handler(batch, lambdaContext())).toEqual({ evaluated: 0, transitions: 0, left: 2 });
  expect([...(await listedChanges(dev.client, dev.tableName)).keys()].sort()).toEqual(['user ann', 'user bob']);
  expect(errors.mock.calls).toEqual([
    ['stream batch not evaluated: its changes are listed for the scheduled run', { records: batch.Records.length, changes: 2, rulesetVersion: expect.any(String), error: expect.any(Error) }],
  ]);
});

it('logs the lead events the bus refused, with its reasons, and counts them in LeadEventsUnpublished', async () => {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `refused-${randomUUID()}`, evaluateEveryMs: 0 }));
  await sendBatch(dev, annQualifiesBobNot(new Date(Date.now() - 3_600_000).toISOString()));
  const batch = await streamBatch(dev);
  const bus = await startEventBridgeEndpoint();
  try {
    bus.alwaysFail(() => true, 'AccessDeniedException');
    stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset: loadRules(twoDashboardsRules, 'rules.yaml'), shards: 4, eventBridgeUrl: bus.url });
    vi.resetModules();
    const { handler } = await import('../../functions/evaluator/handler');
    const { logger } = await import('../../functions/shared/powertools');
    const warnings = vi.spyOn(logger, 'warn');
    expect(await handler(batch, lambdaContext())).toMatchObject({ evaluated: 2, transitions: 1 });
    expect(warnings.mock.calls).toContainEqual([
      'lead events left in the outbox: the event bus refused them; the next run tries again',
      { unpublished: 1, reasons: ['AccessDeniedException: Injected permanent failure'] },
    ]);
  } finally {
    await bus.close();
  }
}, 60_000);

it('throws when the changes of a batch it cannot evaluate cannot be listed either, so that the event source mapping retries the batch', async () => {
  const { client, tableName } = await freshTable();
  stubEvaluatorEnvironment({ tableName, ruleset: loadRules(twoDashboardsRules, 'rules.yaml'), shards: 4 });
  vi.resetModules();
  const { handler } = await import('../../functions/evaluator/handler');
  const { logger } = await import('../../functions/shared/powertools');
  // A first batch records the shard count; then the table goes, so that the evaluation and the listing both fail.
  expect(await handler({ Records: [] }, lambdaContext())).toEqual({ evaluated: 0, transitions: 0, left: 0 });
  await client.send(new DeleteTableCommand({ TableName: tableName }));
  const errors = vi.spyOn(logger, 'error');
  const record = { eventName: 'INSERT', dynamodb: { Keys: { pk: { S: entityPartitionKey('default', 'user', 'ann') }, sk: { S: eventSortKey('2026-01-01', 'c1') } } } };
  await expect(handler({ Records: [record] }, lambdaContext())).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  expect(errors.mock.calls).toEqual([
    [
      'stream batch neither evaluated nor listed for the scheduled run: the event source mapping retries it',
      { records: 1, changes: 1, error: expect.objectContaining({ name: 'ResourceNotFoundException' }), listingError: expect.objectContaining({ name: 'ResourceNotFoundException' }) },
    ],
  ]);
});
