import { randomUUID } from 'node:crypto';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, expect, inject, it, vi } from 'vitest';
import type { WrittenKey } from '../../functions/adapters/dynamodb/change-capture';
import { loadRules } from '../../functions/core/rules/load';
import { LocalChangeStream } from '../../functions/local/change-stream';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { changeListCount } from '../support/change-capture';
import { stubEvaluatorEnvironment } from '../support/evaluator-environment';
import { startEventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { lambdaContext } from '../support/lambda-context';
import { sendBatch } from '../support/send-batch';

// The deployed evaluator on its event source mapping: a batch of the table's stream is evaluated as it is read, and
// no change list is written or read for it.

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
