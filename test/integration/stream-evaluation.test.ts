import { randomUUID } from 'node:crypto';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, expect, inject, it, vi } from 'vitest';
import type { WrittenKey } from '../../functions/adapters/dynamodb/change-capture';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { allShards, runEvaluator } from '../../functions/core/evaluate-leads';
import { loadRules } from '../../functions/core/rules/load';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { environmentNames } from '../../functions/shared/settings';
import { changeListCount } from '../support/change-capture';
import { stubEvaluatorEnvironment } from '../support/evaluator-environment';
import { startEventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { lambdaContext } from '../support/lambda-context';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

// The deployed evaluator on its event source mapping: a batch of the table's stream is evaluated as it is read, and
// no change list is written or read for it; with USER_INTERVAL_SECONDS (lib/evaluator.ts' userEveryMinutes), a user's
// new events within the interval of its last evaluation are listed for the scheduled runs instead.

const rules = `
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 60 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
`;

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

it('evaluates a stream batch at once, publishes the lead, lists nothing, and changes nothing when the batch is retried', async () => {
  const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `stream-${randomUUID()}`, evaluateEveryMs: 0 }));
  const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
  await sendBatch(dev, [
    { type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd1', timestamp: hourAgo },
    { type: 'track', userId: 'ann', event: 'Dashboard Created', messageId: 'd2', timestamp: hourAgo },
    { type: 'track', userId: 'bob', event: 'Dashboard Created', messageId: 'd3', timestamp: hourAgo },
  ]);
  const batch = await streamBatch(dev);
  expect(batch.Records.length).toBeGreaterThan(0);

  const bus = await startEventBridgeEndpoint();
  stubEvaluatorEnvironment({ tableName: dev.tableName, ruleset: loadRules(rules, 'rules.yaml'), shards: 4, eventBridgeUrl: bus.url });
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
  const ruleset = loadRules(rules, 'rules.yaml');
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
