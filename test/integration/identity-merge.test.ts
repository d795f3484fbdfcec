import { randomUUID } from 'node:crypto';
import type { PutItemCommandInput, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadRules } from '../../functions/core/rules/load';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { allShards, runEvaluator } from '../../functions/core/evaluate-leads';
import { calendarOf } from '../../functions/core/days';
import { ClaimSet, claimsBefore, type Claim } from '../../functions/core/identity';
import { storeClaims } from '../../functions/core/merge-identities';
import { stateSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { createDynamoDbClient } from '../../functions/local/dynamodb-local';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { defaultDirtyShards } from '../../functions/shared/settings';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';
import { publishedTransitions, replayedTransitions } from '../support/agreement';
import { freshTable } from '../support/dynamodb';
import { threePricingViewsRules } from '../support/pricing-rules';

const rules = threePricingViewsRules;

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
    // The run goes on past bea (evaluate-leads' failed), as a run after a process that died would find her.
    const died = await runEvaluator({ store, publisher: leads, ruleset, shards, now: new Date(at(3, 23)), deadline: Number.POSITIVE_INFINITY });
    expect(died.failed.map((failure) => [failure.ref.id, String(failure.error)])).toEqual([['bea', 'Error: the process died']]);
    crashing.destroy();

    await dev.evaluateOnce(new Date(at(3, 23)));
    await dev.evaluateOnce(new Date(at(3, 23)));
    expect(await pricingViews('bea', at(3, 23))).toBe(3);
    expect(await pricingViews('ann', at(3, 23))).toBe(0);
  });

  it('keeps when a user took an identity: an earlier claim of its own keeps that time, one of another user sets its own', async () => {
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset: loadRules(rules, 'rules'), evaluateEveryMs: 0 }));
    const store = dev.evaluation;
    const browser = { kind: 'visitor', id: 'x' } as const;
    const claim = (to: string, day: number, messageId: string) => ({ from: browser, to, at: at(day), messageId });
    const storedAt = async () => (await store.claims(dev.workspace, [browser])).get('visitor:x')?.storedAt;
    const first = await store.claim(dev.workspace, claim('bea', 2, 'm1'), new Date(at(2, 23)));
    expect(first.held.storedAt).toBe(at(2, 23));
    // bea's own earlier message, bea seen holding it: the claim moves, the time bea took the browser stays.
    const own = await store.claim(dev.workspace, claim('bea', 1, 'm0'), new Date(at(3, 23)), 'bea');
    expect(own).toMatchObject({ held: { to: 'bea', at: at(1), storedAt: at(2, 23) }, replaced: { to: 'bea' } });
    expect(await storedAt()).toBe(at(2, 23));
    // ann's earlier claim takes it: ann took it now.
    const other = await store.claim(dev.workspace, claim('ann', 0, 'm2'), new Date(at(4, 23)), 'bea');
    expect(other).toMatchObject({ held: { to: 'ann', storedAt: at(4, 23) }, replaced: { to: 'bea' } });
    expect(await storedAt()).toBe(at(4, 23));
    // A later claim changes nothing.
    expect((await store.claim(dev.workspace, claim('bea', 3, 'm3'), new Date(at(5, 23)))).held).toMatchObject({ to: 'ann', storedAt: at(4, 23) });
    // bea's earlier one still, by a caller that last saw bea hold it: it takes the browser back from ann, now.
    const back = await store.claim(dev.workspace, claim('bea', -1, 'm4'), new Date(at(6, 23)), 'bea');
    expect(back).toMatchObject({ held: { to: 'bea', storedAt: at(6, 23) }, replaced: { to: 'ann' } });
    expect(await storedAt()).toBe(at(6, 23));
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
    const died = await runEvaluator({ store, publisher: leads, ruleset, shards: allShards(defaultDirtyShards), now: new Date(at(2, 23)), deadline: Number.POSITIVE_INFINITY });
    // Only ann, whom the run may try more than once.
    expect(new Set(died.failed.map((failure) => `${failure.ref.id} ${String(failure.error)}`))).toEqual(new Set(['ann Error: the process died']));
    crashing.destroy();
    expect(leads.published).toEqual([]);

    await dev.evaluateOnce(new Date(at(2, 23)));
    await dev.evaluateOnce(new Date(at(2, 23)));
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([['ann', 'PQL']]);
    expect(leads.published[0]!.detail.signals).toEqual([expect.objectContaining({ name: 'pricing', value: 3 })]);
  });

  it('gives a visitor claimed twice in one page the earlier claimant, whichever claim write answers last', async () => {
    const leads = new RecordingPublisher();
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `identity-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0 }));
    const view = (id: string, day: number) => ({ type: 'track', event: 'Pricing Viewed', messageId: id, timestamp: at(day), anonymousId: 'x' });
    // One shared browser: ann identifies at 09:00, bob at 10:00, both before the evaluator's run.
    const messages = [
      view('p1', 0),
      view('p2', 1),
      view('p3', 1),
      { type: 'identify', userId: 'ann', anonymousId: 'x', messageId: 'i-ann', timestamp: at(2, 9) },
      { type: 'identify', userId: 'bob', anonymousId: 'x', messageId: 'i-bob', timestamp: at(2, 10) },
    ];
    await sendBatch(dev, messages);
    await dev.collectChanges();
    // Bob's claim is written first and answers last; ann's, written after it, replaces it and answers first.
    const client = createDynamoDbClient(inject('dynamoEndpoint'));
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const claimant = context.commandName === 'UpdateItemCommand' ? (args.input as UpdateItemCommandInput).ExpressionAttributeValues?.[':to']?.S : undefined;
        if (claimant === 'ann') await sleep(300);
        const result = await next(args);
        if (claimant === 'bob') await sleep(1000);
        return result;
      },
      { step: 'initialize', name: 'claimAnswersOutOfOrder' },
    );
    const store = new DynamoDbEvaluationStore({ client, tableName: dev.tableName });
    await runEvaluator({ store, publisher: leads, ruleset, shards: allShards(defaultDirtyShards), now: new Date(ruleset.calendar.endOf(at(2).slice(0, 10))), deadline: Number.POSITIVE_INFINITY });
    client.destroy();
    await dev.evaluateOnce(new Date(ruleset.calendar.endOf(at(3).slice(0, 10))));
    const { lines } = replayedTransitions(ruleset, messages, at(0).slice(0, 10), at(3).slice(0, 10));
    expect(lines).toEqual(['2024-06-12T23:59:59.999Z user ann: none -> PQL']);
    expect(publishedTransitions(leads.published)).toEqual(lines);
  });

  it('decides claims at the same time by messageId as DynamoDB orders them, whatever order they are stored in', async () => {
    const browser = { kind: 'visitor', id: 'x' } as const;
    const time = '2025-03-03T10:00:00.000Z';
    // U+FF5E sorts after a character past U+FFFF by UTF-16 code units, before it by UTF-8 bytes (DynamoDB's order).
    const ann: Claim = { from: browser, to: 'ann', at: time, messageId: 'm-\uFF5E' };
    const bob: Claim = { from: browser, to: 'bob', at: time, messageId: 'm-\u{1F600}' };
    expect(claimsBefore(ann, bob)).toBe(true);
    const backtest = new ClaimSet();
    backtest.add(bob);
    backtest.add(ann);
    expect(backtest.rootOf(browser).id).toBe('ann');
    const holder = async (order: Claim[]) => {
      const store = new DynamoDbEvaluationStore(await freshTable());
      for (const claim of order) {
        const identify = { type: 'identify', userId: claim.to, anonymousId: 'x', timestamp: claim.at, messageId: claim.messageId };
        await storeClaims(store, 'ws', [identify as never], new Map(), new Date('2025-03-03T23:00:00.000Z'), calendarOf('UTC'));
      }
      return (await store.claims('ws', [browser])).get('visitor:x')?.to;
    };
    expect({ annFirst: await holder([ann, bob]), bobFirst: await holder([bob, ann]) }).toEqual({ annFirst: 'ann', bobFirst: 'ann' });
  });
});
