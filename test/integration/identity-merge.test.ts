import { randomUUID } from 'node:crypto';
import type { PutItemCommandInput } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadRules } from '../../functions/core/rules/load';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { allShards, runEvaluator } from '../../functions/core/evaluate-leads';
import { stateSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { createDynamoDbClient } from '../../functions/local/dynamodb-local';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { defaultDirtyShards } from '../../functions/shared/settings';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

const rules = `
version: 1
signals:
  pricing: { event: Pricing Viewed, window: 30d, at_least: 3, points: 40 }
tiers:
  - { name: PQL, min_score: 40, route: sales }
`;

const at = (day: number, hour = 10) => new Date(Date.UTC(2024, 5, 10 + day, hour)).toISOString();

let runtime: DevRuntime | undefined;
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
});

describe('identity resolution in the evaluator, on DynamoDB Local', () => {
  it('qualifies a user on anonymous pre-signup activity after identify, and counts late anonymous events', async () => {
    const leads = new RecordingPublisher();
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset: loadRules(rules, 'rules'), leads, evaluateEveryMs: 0 }));
    const view = (id: string, day: number, fields: Record<string, unknown>) => ({ type: 'track', event: 'Pricing Viewed', messageId: id, timestamp: at(day), ...fields });

    await sendBatch(dev, [view('p1', 0, { anonymousId: 'x' }), view('p2', 1, { anonymousId: 'x' }), { type: 'track', anonymousId: 'y', event: 'Pricing Viewed', messageId: 'p9', timestamp: at(1) }]);
    await dev.evaluateOnce(new Date(at(1, 23)));
    expect(leads.published).toEqual([]);

    await sendBatch(dev, [{ type: 'identify', userId: 'ann', anonymousId: 'x', traits: { email: 'ann@example.com' }, messageId: 'i1', timestamp: at(2) }, view('p3', 2, { userId: 'ann', anonymousId: 'x' })]);
    await dev.evaluateOnce(new Date(at(2, 23)));
    expect(leads.published.map((event) => [event.detail.entity, event.detail.tier])).toEqual([[{ type: 'user', id: 'ann' }, 'PQL']]);
    // Three views: two of them before signup, under the anonymousId.
    expect(leads.published[0]!.detail.signals).toEqual([expect.objectContaining({ name: 'pricing', value: 3 })]);

    // A late (retried) anonymous event lands on ann; repeated, it counts once.
    await sendBatch(dev, [view('p0', 0, { anonymousId: 'x' })]);
    await sendBatch(dev, [view('p0', 0, { anonymousId: 'x' })]);
    await dev.evaluateOnce(new Date(at(3, 1)));
    await dev.evaluateOnce(new Date(at(3, 1)));
    const { facts } = await (await import('../../functions/core/evaluate-leads')).readFacts(dev.evaluation, { workspace: dev.workspace, type: 'user', id: 'ann' }, loadRules(rules, 'rules'), new Date(at(3, 1)));
    expect(facts.days.reduce((sum, day) => sum + (day.names['Pricing Viewed'] ?? 0), 0)).toBe(4);
  });

  it('takes a visitor back from its user when an earlier claim on it arrives late, with its events', async () => {
    const leads = new RecordingPublisher();
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0 }));
    const view = (id: string, day: number, fields: Record<string, unknown>) => ({ type: 'track', event: 'Pricing Viewed', messageId: id, timestamp: at(day), ...fields });
    const pricingViews = async (id: string, now: string) => {
      const { facts } = await (await import('../../functions/core/evaluate-leads')).readFacts(dev.evaluation, { workspace: dev.workspace, type: 'user', id }, ruleset, new Date(now));
      return facts.days.reduce((sum, day) => sum + (day.names['Pricing Viewed'] ?? 0), 0);
    };
    await sendBatch(dev, [view('p1', 0, { anonymousId: 'x' }), view('p2', 1, { anonymousId: 'x' })]);
    await sendBatch(dev, [{ type: 'identify', userId: 'ann', anonymousId: 'x', messageId: 'i1', timestamp: at(2) }, view('p3', 2, { userId: 'ann' })]);
    await dev.evaluateOnce(new Date(at(2, 23)));
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([['ann', 'PQL']]);

    // bob identified on the same browser a day before ann (a device shared, a batch retried late): the first claim wins.
    await sendBatch(dev, [{ type: 'identify', userId: 'bob', anonymousId: 'x', messageId: 'i0', timestamp: at(1, 12) }, view('p4', 3, { userId: 'ann' })]);
    await dev.evaluateOnce(new Date(at(3, 23)));
    await dev.evaluateOnce(new Date(at(3, 23)));
    expect(await pricingViews('ann', at(3, 23))).toBe(2);
    expect(await pricingViews('bob', at(3, 23))).toBe(2);
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([
      ['ann', 'PQL'],
      ['ann', null],
    ]);
  });

  it('reads every event of a user that took its visitor back, even when a crash kept it from saving in that run', async () => {
    const leads = new RecordingPublisher();
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0 }));
    const view = (id: string, day: number, hour: number, fields: Record<string, unknown>) => ({ type: 'track', event: 'Pricing Viewed', messageId: id, timestamp: at(day, hour), ...fields });
    const pricingViews = async (id: string, now: string) => {
      const { facts } = await (await import('../../functions/core/evaluate-leads')).readFacts(dev.evaluation, { workspace: dev.workspace, type: 'user', id }, ruleset, new Date(now));
      return facts.days.reduce((sum, day) => sum + (day.names['Pricing Viewed'] ?? 0), 0);
    };
    await sendBatch(dev, [{ type: 'identify', userId: 'bea', anonymousId: 'x', messageId: 'i-b', timestamp: at(1) }, view('p1', 1, 11, { userId: 'bea' })]);
    await dev.evaluateOnce(new Date(at(1, 23)));
    // ann identified on the browser at the same moment (the smaller messageId wins), and its visitor's view of day 0
    // comes in late: ann's.
    // One scheduled run: bea, whom ann's claim marks, is the next run's.
    await sendBatch(dev, [{ type: 'identify', userId: 'ann', anonymousId: 'x', messageId: 'i-a', timestamp: at(1) }, view('p0', 0, 10, { anonymousId: 'x' })]);
    await dev.collectChanges();
    const shards = allShards(defaultDirtyShards);
    await runEvaluator({ store: dev.evaluation, publisher: leads, ruleset, shards, now: new Date(at(2, 23)), deadline: Number.POSITIVE_INFINITY });
    expect(await pricingViews('ann', at(2, 23))).toBe(1);

    // bea's view of an hour earlier takes the browser back; the evaluator dies at its save of bea.
    await sendBatch(dev, [view('p2', 1, 9, { userId: 'bea', anonymousId: 'x' })]);
    await dev.collectChanges();
    const crashing = createDynamoDbClient(inject('dynamoEndpoint'));
    crashing.middlewareStack.add(
      (next, context) => async (args) => {
        const item = (args.input as PutItemCommandInput).Item;
        if (context.commandName === 'PutItemCommand' && item?.['sk']?.S === stateSortKey && item['pk']?.S?.endsWith('#bea')) throw new Error('the process died');
        return next(args);
      },
      { step: 'initialize', name: 'crashAtSave' },
    );
    const store = new DynamoDbEvaluationStore({ client: crashing, tableName: dev.tableName });
    await expect(runEvaluator({ store, publisher: leads, ruleset, shards, now: new Date(at(3, 23)), deadline: Number.POSITIVE_INFINITY })).rejects.toThrow('the process died');
    crashing.destroy();

    await dev.evaluateOnce(new Date(at(3, 23)));
    await dev.evaluateOnce(new Date(at(3, 23)));
    expect(await pricingViews('bea', at(3, 23))).toBe(3);
    expect(await pricingViews('ann', at(3, 23))).toBe(0);
  });

  it('completes a merge cut short by a crash between storing the claim and saving the user, notifying once', async () => {
    const leads = new RecordingPublisher();
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0 }));
    const view = (id: string, day: number, fields: Record<string, unknown>) => ({ type: 'track', event: 'Pricing Viewed', messageId: id, timestamp: at(day), ...fields });
    await sendBatch(dev, [view('p1', 0, { anonymousId: 'x' }), view('p2', 1, { anonymousId: 'x' })]);
    await sendBatch(dev, [{ type: 'identify', userId: 'ann', anonymousId: 'x', messageId: 'i1', timestamp: at(2) }, view('p3', 2, { userId: 'ann' })]);
    await dev.collectChanges();

    // The evaluator process dies at its first save: the claim may be stored, the user's state is not.
    const crashing = createDynamoDbClient(inject('dynamoEndpoint'));
    crashing.middlewareStack.add(
      (next, context) => async (args) => {
        const saving = context.commandName === 'TransactWriteItemsCommand' || (context.commandName === 'PutItemCommand' && (args.input as PutItemCommandInput).Item?.['sk']?.S === stateSortKey);
        if (saving) throw new Error('the process died');
        return next(args);
      },
      { step: 'initialize', name: 'crashAtSave' },
    );
    const store = new DynamoDbEvaluationStore({ client: crashing, tableName: dev.tableName });
    await expect(runEvaluator({ store, publisher: leads, ruleset, shards: allShards(defaultDirtyShards), now: new Date(at(2, 23)), deadline: Number.POSITIVE_INFINITY })).rejects.toThrow('the process died');
    crashing.destroy();
    expect(leads.published).toEqual([]);

    await dev.evaluateOnce(new Date(at(2, 23)));
    await dev.evaluateOnce(new Date(at(2, 23)));
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([['ann', 'PQL']]);
    expect(leads.published[0]!.detail.signals).toEqual([expect.objectContaining({ name: 'pricing', value: 3 })]);
  });
});

