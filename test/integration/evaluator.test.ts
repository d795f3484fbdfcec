import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { EventBridgePublisher } from '../../functions/adapters/eventbridge/publisher';
import { leadEventDetailSchema, type LeadEvent } from '../../functions/core/lead-event';
import type { LeadPublisher } from '../../functions/core/ports';
import { BatchWriteItemCommand, GetItemCommand, QueryCommand, UpdateItemCommand, type BatchGetItemCommandInput, type PutItemCommandInput, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { daySortKeyPrefix, entityPartitionKey, eventSortKeyPrefix, outboxPartitionKey, stateSortKey } from '../../functions/adapters/dynamodb/item-keys';
import { dayOf } from '../../functions/core/days';
import { defaultDirtyShards } from '../../functions/shared/settings';
import { itemSize } from '../../bench/ingest-streams';
import { allShards, entityUpdate, evaluateShard, readFacts, runEvaluator, type EvaluatorRunSummary } from '../../functions/core/evaluate-leads';
import { buildLeadEvent, decide } from '../../functions/core/lead-state';
import { evaluate, maxDistinctValueLength } from '../../functions/core/rules/engine';
import { loadRules } from '../../functions/core/rules/load';
import { startDev, type DevOptions, type DevRuntime } from '../../functions/local/dev';
import { eventBridgeClientFor, startEventBridgeEndpoint } from '../support/eventbridge-endpoint';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';

const rulesYaml = (extra = '') => `
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 30d, at_least: 2, points: 30 }
  invited: { event: Teammate Invited, distinct: invitee, window: 30d, points: 30 }
  exported: { event: Data Exported, window: 30d, points: 20 }
  inactive: { inactive_for: 14d, points: -100 }
  big_company: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
  team: { level: account, active_users: 7d, at_least: 2, points: 50 }${extra}
tiers:
  - { name: PQL-A, min_score: 70, route: sales }
  - { name: PQL-B, min_score: 30, route: nurture }
policy: { cooldown: 7d }
`;

const day = (offset: number, base = new Date('2024-06-20T12:00:00Z')) => new Date(base.getTime() + offset * 86_400_000);

let runtime: DevRuntime | undefined;
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
});

async function start(leads: LeadPublisher, rules = rulesYaml(), options: Partial<DevOptions> = {}) {
  runtime = await startDev({
    port: 0,
    endpoint: inject('dynamoEndpoint'),
    tableName: `eval-${randomUUID()}`,
    ruleset: loadRules(rules, 'test rules'),
    leads,
    evaluateEveryMs: 0,
    ...options,
  });
  return runtime;
}

const track = (userId: string, event: string, at: Date, properties: Record<string, unknown> = {}, groupId?: string) => ({
  type: 'track',
  userId,
  event,
  properties,
  timestamp: at.toISOString(),
  messageId: `${userId}-${event}-${at.toISOString()}-${JSON.stringify(properties)}`,
  ...(groupId ? { context: { groupId } } : {}),
});

/** An account's tier on its members' exports, for the tests of the order of users and accounts in a run. */
const exportsYaml = `
version: 1
signals:
  exports: { level: account, event: Data Exported, window: 3d, at_least: 4, points: 50 }
tiers:
  - { name: team, min_score: 50, route: sales, level: account }
`;

/** Lists a user's change for the scheduled run, as the stream's evaluation leaves one: a change list of its own. */
const listChange = (dev: DevRuntime, id: string, at: Date) =>
  dev.evaluation.keep([{ ref: { workspace: dev.workspace, type: 'user', id }, days: [at.toISOString().slice(0, 10)], since: at.toISOString() }]);

/** The sort keys of every shard's outbox items: lead events not yet published. */
async function outboxSortKeys(dev: DevRuntime): Promise<string[]> {
  const shards = Array.from({ length: defaultDirtyShards }, (_, shard) => String(shard));
  const pages = await Promise.all(
    shards.map((shard) => dev.client.send(new QueryCommand({ TableName: dev.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: outboxPartitionKey(shard) } }, ConsistentRead: true }))),
  );
  return pages.flatMap((page) => (page.Items ?? []).map((item) => item['sk']!.S!));
}

const summaryOf = (events: LeadEvent[]) =>
  events.map((event) => `${event.detailType}: ${event.detail.entity.type} ${event.detail.entity.id} ${event.detail.previousTier ?? 'none'} -> ${event.detail.tier ?? 'none'}`).sort();

/** The users' STATE items the runtime's client reads in batches from now on, and whether strongly consistent. */
function recordUserStateReads(dev: DevRuntime): { pk: string; consistent: boolean }[] {
  const reads: { pk: string; consistent: boolean }[] = [];
  dev.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'BatchGetItemCommand') {
        const { Keys = [], ConsistentRead } = Object.values((args.input as BatchGetItemCommandInput).RequestItems!)[0]!;
        const users = Keys.filter((key) => key['sk']?.S === stateSortKey && key['pk']!.S!.startsWith(entityPartitionKey(dev.workspace, 'user', '')));
        reads.push(...users.map((key) => ({ pk: key['pk']!.S!, consistent: ConsistentRead === true })));
      }
      return next(args);
    },
    { step: 'initialize', name: 'testRecordStateReads' },
  );
  return reads;
}

/** The sort keys of a user's items with the prefix, in order. */
async function sortKeys(dev: DevRuntime, id: string, prefix: string): Promise<string[]> {
  const { Items } = await dev.client.send(
    new QueryCommand({
      TableName: dev.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': { S: entityPartitionKey(dev.workspace, 'user', id) }, ':prefix': { S: prefix } },
      ConsistentRead: true,
    }),
  );
  return (Items ?? []).map((item) => item['sk']!.S!);
}

/**
 * Puts a user's days back as a version before `PDAY#` kept them: under `DAY#`, its STATE item without the prefix it
 * was saved with.
 */
async function keepDaysAsBefore(dev: DevRuntime, id: string): Promise<void> {
  const pk = entityPartitionKey(dev.workspace, 'user', id);
  const { Items = [] } = await dev.client.send(
    new QueryCommand({ TableName: dev.tableName, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)', ExpressionAttributeValues: { ':pk': { S: pk }, ':prefix': { S: daySortKeyPrefix } } }),
  );
  expect(Items.length).toBeGreaterThan(0);
  await dev.client.send(
    new BatchWriteItemCommand({
      RequestItems: {
        [dev.tableName]: Items.flatMap((item) => [
          { PutRequest: { Item: { ...item, sk: { S: `DAY#${item['sk']!.S!.slice(daySortKeyPrefix.length)}` } } } },
          { DeleteRequest: { Key: { pk: item['pk']!, sk: item['sk']! } } },
        ]),
      },
    }),
  );
  await dev.client.send(new UpdateItemCommand({ TableName: dev.tableName, Key: { pk: { S: pk }, sk: { S: stateSortKey } }, UpdateExpression: 'REMOVE dayPrefix' }));
}

describe('the evaluator against DynamoDB Local, fed through the HTTP endpoint', () => {
  it('qualifies users and accounts with reasons, and a second pass changes nothing', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [
      { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme', employees: 120 }, timestamp: day(-5).toISOString(), messageId: 'g-ada' },
      { type: 'group', userId: 'bob', groupId: 'acme', timestamp: day(-5).toISOString(), messageId: 'g-bob' },
      track('ada', 'Dashboard Created', day(-3)),
      track('ada', 'Dashboard Created', day(-2)),
      track('ada', 'Teammate Invited', day(-2), { invitee: 'bob' }),
      track('ada', 'Teammate Invited', day(-1), { invitee: 'bob' }),
      track('bob', 'Data Exported', day(-1), {}, 'acme'),
      track('bob', 'Data Exported', day(-1, day(0)), { format: 'csv' }, 'acme'),
      track('cy', 'Page Viewed', day(-1)),
    ]);
    const first = await dev.evaluateOnce(day(0));
    const second = await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual([
      'Lead Qualified: account acme none -> PQL-B',
      'Lead Qualified: user ada none -> PQL-A',
      'Lead Qualified: user bob none -> PQL-B',
    ]);
    expect(first.evaluated + second.evaluated).toBeGreaterThanOrEqual(4);

    const ada = leads.published.find((event) => event.detail.entity.id === 'ada')!;
    expect(leadEventDetailSchema.parse(ada.detail)).toBeTruthy();
    expect(ada.detail.score).toEqual({ total: 70, engagement: 60, fit: 10 });
    expect(ada.detail.signals.map((signal) => [signal.name, signal.value])).toEqual([
      ['dashboards', 2],
      ['invited', 1],
      ['big_company', 120],
    ]);
    expect(ada.detail.route).toBe('sales');
    expect(ada.detail.context.traits.company).toBe('Acme');
    expect(ada.detail.reasons[0]).toBe('PQL-A: score 70 >= 70');
    const account = leads.published.find((event) => event.detail.entity.type === 'account')!;
    expect(account.detail.context.members).toEqual([
      { id: 'ada', tier: 'PQL-A' },
      { id: 'bob', tier: 'PQL-B' },
    ]);

    const third = await dev.evaluateOnce(day(0));
    expect(third.transitions).toEqual([]);
    expect(leads.published).toHaveLength(3);
  });

  it("judges an account's members again when a group call changes its traits", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [
      { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme', employees: 120 }, timestamp: day(-5).toISOString(), messageId: 'g-ada' },
      { type: 'group', userId: 'bob', groupId: 'acme', timestamp: day(-5).toISOString(), messageId: 'g-bob' },
      track('bob', 'Dashboard Created', day(-3)),
      track('bob', 'Dashboard Created', day(-2)),
      track('bob', 'Teammate Invited', day(-2), { invitee: 'cy' }),
    ]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user bob none -> PQL-A']);

    // ada's group call shrinks acme: bob's fit signal turns, with nothing new of his own.
    await sendBatch(dev, [{ type: 'group', userId: 'ada', groupId: 'acme', traits: { employees: 12 }, timestamp: day(0.1).toISOString(), messageId: 'g-ada-2' }]);
    const userStates = recordUserStateReads(dev);
    await dev.evaluateOnce(day(0.2));
    expect(summaryOf(leads.published.slice(1))).toEqual(['Lead Tier Changed: user bob PQL-A -> PQL-B']);
    // Which members the new traits move, from both their states eventually consistent; acme, judged after them, reads
    // strongly consistent the one state its run did not save.
    const [ada, bob] = ['ada', 'bob'].map((id) => entityPartitionKey(dev.workspace, 'user', id));
    expect(userStates.filter((read) => !read.consistent).map((read) => read.pk)).toEqual([ada, bob]);
    expect(userStates.filter((read) => read.consistent)).toHaveLength(1);
  });

  it('counts a late event in its own day and moves the lead up a tier', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [track('dee', 'Data Exported', day(-1)), track('dee', 'Dashboard Created', day(-1))]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual([]);
    // Arrives now, happened ten days ago: still inside the 30-day windows.
    await sendBatch(dev, [track('dee', 'Dashboard Created', day(-10)), track('dee', 'Teammate Invited', day(-10), { invitee: 'eve' })]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user dee none -> PQL-A']);
  });

  it("reads a user's days in its windows with its profile and state, in one query", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [track('dee', 'Dashboard Created', day(-4)), track('dee', 'Teammate Invited', day(-3), { invitee: 'eve' }), track('dee', 'Data Exported', day(-2))]);
    await dev.evaluateOnce(day(0));
    expect(await sortKeys(dev, 'dee', daySortKeyPrefix)).toEqual([-4, -3, -2].map((offset) => `${daySortKeyPrefix}${dayOf(day(offset))}`));
    const queries: QueryCommandInput[] = [];
    dev.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'QueryCommand') queries.push(args.input as QueryCommandInput);
        return next(args);
      },
      { step: 'initialize', name: 'testRecordQueries' },
    );
    await sendBatch(dev, [track('dee', 'Dashboard Created', day(1))]);
    expect(summaryOf((await dev.evaluateOnce(day(1))).transitions)).toEqual(['Lead Tier Changed: user dee PQL-B -> PQL-A']);
    const pk = entityPartitionKey(dev.workspace, 'user', 'dee');
    const ofDee = queries.filter((input) => input.ExpressionAttributeValues?.[':pk']?.S === pk).map((input) => Object.values(input.ExpressionAttributeValues!).slice(1).map((value) => value.S));
    // Its rows with the days from the 30-day window's first day on, and the new day's events: nothing else.
    expect(ofDee).toEqual([
      [`${daySortKeyPrefix}${dayOf(day(-28))}`, stateSortKey],
      [`${eventSortKeyPrefix}${dayOf(day(1))}#`],
    ]);
  });

  it("reads the states of an account's members, strongly consistent, but for those the run saved before it", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [
      { type: 'group', userId: 'ada', groupId: 'acme', timestamp: day(-5).toISOString(), messageId: 'g-ada' },
      { type: 'group', userId: 'bob', groupId: 'acme', timestamp: day(-5).toISOString(), messageId: 'g-bob' },
      track('ada', 'Dashboard Created', day(-2)),
    ]);
    await dev.evaluateOnce(day(0));
    expect(leads.published).toEqual([]);
    const userStates = recordUserStateReads(dev);
    // bob's event makes two active members: acme is judged after him, on ada's stored state and bob's as just saved.
    await sendBatch(dev, [track('bob', 'Dashboard Created', day(1))]);
    expect(summaryOf((await dev.evaluateOnce(day(1))).transitions)).toEqual(['Lead Qualified: account acme none -> PQL-B']);
    expect(userStates).toEqual([{ pk: entityPartitionKey(dev.workspace, 'user', 'ada'), consistent: true }]);
  });

  it('rebuilds the days of a user saved before they moved (then under DAY#) once, keeping its lead, and an account those of its members first', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, exportsYaml);
    await sendBatch(dev, [
      ...['ann', 'ben'].flatMap((id) => [track(id, 'Data Exported', day(-2), {}, 'acme'), track(id, 'Data Exported', day(-1), {}, 'acme')]),
      track('cat', 'Data Exported', day(-1)),
    ]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: account acme none -> team']);
    for (const id of ['ann', 'ben', 'cat']) await keepDaysAsBefore(dev, id);

    // Later the same day, an event of cat's (no account) and a change of acme's traits: each evaluation finds its days
    // where it reads them.
    await sendBatch(dev, [track('cat', 'Data Exported', day(0.2)), { type: 'group', userId: 'ann', groupId: 'acme', traits: { plan: 'team' }, timestamp: day(0.2).toISOString(), messageId: 'g-ann' }]);
    const run = await dev.evaluateOnce(day(0.3));
    // Read under PDAY# alone, ann's and ben's days would count no export, and acme would leave its tier.
    expect(run.transitions).toEqual([]);
    // Ben, with nothing new, was rebuilt before acme read him; a rebuild writes out every day, today's too (ann's group call).
    expect(await sortKeys(dev, 'ben', daySortKeyPrefix)).toEqual([-2, -1].map((offset) => `${daySortKeyPrefix}${dayOf(day(offset))}`));
    expect(await sortKeys(dev, 'ann', daySortKeyPrefix)).toEqual([-2, -1, 0].map((offset) => `${daySortKeyPrefix}${dayOf(day(offset))}`));
    expect(await sortKeys(dev, 'cat', daySortKeyPrefix)).toEqual([-1, 0].map((offset) => `${daySortKeyPrefix}${dayOf(day(offset))}`));
    const state = await dev.client.send(new GetItemCommand({ TableName: dev.tableName, Key: { pk: { S: entityPartitionKey(dev.workspace, 'user', 'cat') }, sk: { S: stateSortKey } }, ConsistentRead: true }));
    expect(state.Item?.['dayPrefix']?.S).toBe(daySortKeyPrefix);
    // The days left under DAY# are not read again; they expire.
    await sendBatch(dev, [track('ann', 'Data Exported', day(0.35), {}, 'acme')]);
    expect((await dev.evaluateOnce(day(0.4))).transitions).toEqual([]);
  });

  it('disqualifies an inactive lead by the clock alone, then keeps it out during the cooldown', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [track('fay', 'Dashboard Created', day(-1)), track('fay', 'Dashboard Created', day(-1, day(0.1))), track('fay', 'Data Exported', day(-1))]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user fay none -> PQL-B']);

    // No new events: the sweep of qualified leads notices the inactivity 15 days later.
    const later = await dev.evaluateOnce(day(15));
    expect(summaryOf(later.transitions)).toEqual(['Lead Disqualified: user fay PQL-B -> none']);
    expect(later.transitions[0]!.detail.reasons[0]).toBe('score -50 < 30 needed for PQL-B');

    // Active again two days later: qualifies on score, but the 7-day cooldown holds it back.
    await sendBatch(dev, [track('fay', 'Dashboard Created', day(16)), track('fay', 'Dashboard Created', day(16.1)), track('fay', 'Data Exported', day(16))]);
    expect((await dev.evaluateOnce(day(17))).transitions).toEqual([]);
    await sendBatch(dev, [track('fay', 'Data Exported', day(23))]);
    expect(summaryOf((await dev.evaluateOnce(day(23))).transitions)).toEqual(['Lead Qualified: user fay none -> PQL-B']);
  });

  it('judges an account after its members changed on later pages of the change lists, and settles every page', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, exportsYaml, { dirtyShards: 1 });
    const ruleset = loadRules(exportsYaml, 'test rules');
    const endOf = (offset: number) => new Date(ruleset.calendar.endOf(day(offset).toISOString().slice(0, 10)));
    // Changes as the change lists hold them for a scheduled run (what the stream's evaluation left, say): ann's list,
    // then more lists than a page reads (25 a query), then bob's, so that ann and bob come on different pages.
    const send = async (offset: number, messages: { id: string; event: string }[]) => {
      await sendBatch(dev, messages.map(({ id, event }) => track(id, event, day(offset), {}, 'acme')));
      for (const { id } of messages.filter((message) => message.id === 'ann')) await listChange(dev, id, day(offset));
      for (let other = 0; other < 26; other++) await listChange(dev, `other-${other}`, day(offset));
      for (const { id } of messages.filter((message) => message.id === 'bob')) await listChange(dev, id, day(offset));
    };
    const evaluateAt = async (offset: number) => {
      for (let round = 0; round < 5; round++) {
        const run = await evaluateShard(dev.evaluation, leads, { shard: '0', ruleset, now: endOf(offset), outOfTime: () => false, pageSize: 1 });
        if (run.evaluated === 0) break;
      }
    };
    for (const offset of [0, 1, 2]) {
      await send(offset, [...(offset === 2 ? [{ id: 'ann', event: 'Data Exported' }] : []), { id: 'bob', event: 'Data Exported' }]);
      await evaluateAt(offset);
    }
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: account acme none -> team']);
    // Bob's first export leaves the window and his fourth comes in; ann only runs a report: acme still has four
    // exports in three days, and neither leaves its tier nor re-enters it.
    await send(3, [
      { id: 'ann', event: 'Report Run' },
      { id: 'bob', event: 'Data Exported' },
    ]);
    leads.published.length = 0;
    await evaluateAt(3);
    expect(summaryOf(leads.published)).toEqual([]);
    expect(await dev.evaluation.oldestChange('0')).toBeUndefined();
  });

  it("publishes an account's lead event in the run that judges it, though its shard's outbox was published earlier in the run", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, exportsYaml);
    const ruleset = loadRules(exportsYaml, 'test rules');
    const shards = allShards(defaultDirtyShards);
    const shardOf = (type: 'user' | 'account', id: string) => dev.evaluation.shardOf({ workspace: dev.workspace, type, id });
    // The account in the first shard the run goes through, its member in a later one, which moves it.
    const accountId = Array.from({ length: 100 }, (_, index) => `acme-${index}`).find((id) => shardOf('account', id) === shards[0])!;
    const userId = Array.from({ length: 100 }, (_, index) => `bob-${index}`).find((id) => shardOf('user', id) !== shards[0])!;
    await sendBatch(dev, [0, 1, 2, 3].map((hour) => track(userId, 'Data Exported', day(hour / 24), {}, accountId)));
    await listChange(dev, userId, day(0));
    const now = new Date(ruleset.calendar.endOf(day(0).toISOString().slice(0, 10)));
    const run = await runEvaluator({ store: dev.evaluation, publisher: leads, ruleset, shards, now, deadline: Number.POSITIVE_INFINITY });
    expect(summaryOf(run.transitions)).toEqual(['Lead Qualified: account ' + accountId + ' none -> team']);
    expect(summaryOf(leads.published)).toEqual(summaryOf(run.transitions));
    expect(run.published).toBe(1);
    expect(await outboxSortKeys(dev)).toEqual([]);
  });

  it('publishes a lead event once when two runs publish the same outbox at once', async () => {
    // The first run (the stream's evaluation and a scheduled run) is held in its publish; meanwhile another run (a
    // shard's scheduled run, or one that judged an account of that shard) publishes the same outbox.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let publishing!: () => void;
    const inPublish = new Promise<void>((resolve) => (publishing = resolve));
    const first = new RecordingPublisher();
    const heldPublisher: LeadPublisher = {
      async publish(events) {
        publishing();
        await held;
        return first.publish(events);
      },
    };
    const dev = await start(heldPublisher);
    const ruleset = loadRules(rulesYaml(), 'test rules');
    await sendBatch(dev, [track('gus', 'Data Exported', day(-1)), track('gus', 'Dashboard Created', day(-1)), track('gus', 'Dashboard Created', day(-1, day(0.1)))]);
    const shard = dev.evaluation.shardOf({ workspace: dev.workspace, type: 'user', id: 'gus' });
    const firstRun = dev.evaluateOnce(day(0));
    await inPublish;
    const second = new RecordingPublisher();
    const secondRun = await evaluateShard(dev.evaluation, second, { shard, ruleset, now: day(0), outOfTime: () => false });
    release();
    await firstRun;
    expect(summaryOf(first.published)).toEqual(['Lead Qualified: user gus none -> PQL-B']);
    expect(second.published).toEqual([]);
    expect(secondRun.published).toBe(0);
    expect(await outboxSortKeys(dev)).toEqual([]);
  });

  it('judges an account a run left when time ran out with its page in the next run, ahead of the changes behind it', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, exportsYaml, { dirtyShards: 1 });
    const ruleset = loadRules(exportsYaml, 'test rules');
    const now = new Date(ruleset.calendar.endOf(day(0).toISOString().slice(0, 10)));
    await sendBatch(dev, [0, 1, 2, 3].map((hour) => track('bob', 'Data Exported', day(hour / 24), {}, 'acme')));
    await listChange(dev, 'bob', day(0));
    // The run's clock: the entities it saved.
    let saved = 0;
    const store = Object.assign(Object.create(dev.evaluation) as typeof dev.evaluation, {
      save: (...args: Parameters<typeof dev.evaluation.save>) => dev.evaluation.save(...args).then((done) => ((saved += done ? 1 : 0), done)),
    });
    // Time runs out once bob is evaluated: acme, which bob moved, waits for the next run, listed as a change.
    const first = await evaluateShard(store, leads, { shard: '0', ruleset, now, outOfTime: () => saved >= 1, pageSize: 1 });
    expect(first).toMatchObject({ evaluated: 1, incomplete: true });
    expect(summaryOf(leads.published)).toEqual([]);
    // A backlog behind it that the next run does not get through either: acme is judged with its own page (the lists
    // of one query, 25: acme's and 24 others), before time runs out on the next one.
    for (let other = 0; other < 30; other++) await listChange(dev, `other-${other}`, day(0));
    saved = 0;
    const second = await evaluateShard(store, leads, { shard: '0', ruleset, now, outOfTime: () => saved >= 25, pageSize: 1 });
    expect(second.incomplete).toBe(true);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: account acme none -> team']);
  });

  it('qualifies a user without a tier by the clock alone, and sweeps no quiet user that time cannot change', async () => {
    const leads = new RecordingPublisher();
    const rules = `
version: 1
signals:
  exported: { event: Data Exported, window: 30d, points: 20 }
  errors: { event: Error Seen, window: 3d }
  no_errors: { not: errors, points: 20 }
  veteran: { signup_older_than: 10d, points: 10 }
  inactive: { inactive_for: 5d, points: -100 }
tiers:
  - { name: PQL-A, min_score: 50, route: sales }
  - { name: PQL-B, min_score: 40, route: nurture }
`;
    const dev = await start(leads, rules);
    await sendBatch(dev, [
      track('gus', 'Data Exported', day(0)),
      track('gus', 'Error Seen', day(0)),
      // Quiet: 20 points (no errors), nothing that time can raise before its signup age (inactivity takes points).
      track('hal', 'Logged In', day(0)),
    ]);
    expect((await dev.evaluateOnce(day(0.1))).evaluated).toBe(2);
    expect(leads.published).toEqual([]);

    // No new events. Nothing is due before gus's error leaves its 3-day window (the midnight after its third day).
    expect((await dev.evaluateOnce(day(2.4))).evaluated).toBe(0);
    const noErrors = await dev.evaluateOnce(day(2.6));
    expect(noErrors.evaluated).toBe(1);
    expect(summaryOf(noErrors.transitions)).toEqual(['Lead Qualified: user gus none -> PQL-B']);
  });

  it('counts days in the rules file\'s time zone: stores an evening event on its local day, and drops the lead at local midnight', async () => {
    const leads = new RecordingPublisher();
    const rules = 'version: 1\ntimezone: America/New_York\nsignals:\n  today: { event: Login, window: 1d, points: 1 }\ntiers:\n  - { name: pql, min_score: 1, route: sales }\n';
    const dev = await start(leads, rules);
    // 22:30 on the 14th in New York.
    await sendBatch(dev, [track('ivy', 'Login', new Date('2024-06-15T02:30:00.000Z'))]);
    const { Items } = await dev.client.send(
      new QueryCommand({ TableName: dev.tableName, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)', ExpressionAttributeValues: { ':pk': { S: entityPartitionKey(dev.workspace, 'user', 'ivy') }, ':events': { S: eventSortKeyPrefix } } }),
    );
    expect(Items?.map((item) => item['sk']!.S!.slice(0, eventSortKeyPrefix.length + 10))).toEqual([`${eventSortKeyPrefix}2024-06-14`]);

    expect(summaryOf((await dev.evaluateOnce(new Date('2024-06-15T03:30:00.000Z'))).transitions)).toEqual(['Lead Qualified: user ivy none -> pql']);
    expect((await dev.evaluateOnce(new Date('2024-06-15T03:59:00.000Z'))).evaluated).toBe(0);
    expect(summaryOf((await dev.evaluateOnce(new Date('2024-06-15T04:00:30.000Z'))).transitions)).toEqual(['Lead Disqualified: user ivy pql -> none']);
  });

  it('loses nothing when it crashes between saving state and publishing, and re-delivers with the same key', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [track('gus', 'Data Exported', day(-1)), track('gus', 'Dashboard Created', day(-1)), track('gus', 'Dashboard Created', day(-1, day(0.1)))]);
    leads.crashNext = true;
    await expect(dev.evaluateOnce(day(0))).rejects.toThrow('simulated crash');
    expect(leads.published).toEqual([]);

    const retry = await dev.evaluateOnce(day(0));
    expect(retry.transitions).toEqual([]);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user gus none -> PQL-B']);
    const key = leads.published[0]!.detail.idempotencyKey;
    await dev.evaluateOnce(day(0));
    expect(leads.published.map((event) => event.detail.idempotencyKey)).toEqual([key]);
  });

  it('drops the lead event of a state a crash kept from being saved, and publishes the transition once when it is made', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [track('gus', 'Data Exported', day(-1)), track('gus', 'Dashboard Created', day(-1)), track('gus', 'Dashboard Created', day(-1, day(0.1)))]);
    // The run dies between putting the lead event in the outbox and saving the state that causes it.
    let crashes = 1;
    dev.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as PutItemCommandInput;
        if (context.commandName === 'PutItemCommand' && input.Item?.['sk']?.S === stateSortKey && crashes > 0) {
          crashes--;
          throw new Error('simulated crash before the state was saved');
        }
        return next(args);
      },
      { step: 'initialize', name: 'crashBeforeState' },
    );
    // The run goes on past gus, whose save threw, and leaves him for the next run.
    const crashed = await dev.evaluateOnce(day(0));
    expect(crashed.failed.map((failure) => [failure.ref.id, String(failure.error)])).toEqual([['gus', 'Error: simulated crash before the state was saved']]);
    expect(await outboxSortKeys(dev)).toHaveLength(1);
    expect(leads.published).toEqual([]);

    const retry = await dev.evaluateOnce(new Date(day(0).getTime() + 60_000));
    expect(summaryOf(retry.transitions)).toEqual(['Lead Qualified: user gus none -> PQL-B']);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user gus none -> PQL-B']);
    expect(leads.published[0]!.detail.evaluatedAt).toBe(new Date(day(0).getTime() + 60_000).toISOString());
    expect(await outboxSortKeys(dev)).toEqual([]);
  });

  it("publishes only the saved run's lead event when two overlapping runs make the same transition", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    const ruleset = loadRules(rulesYaml(), 'test rules');
    const qualifying = (id: string) => [track(id, 'Data Exported', day(-1)), track(id, 'Dashboard Created', day(-1)), track(id, 'Dashboard Created', day(-1, day(0.1)))];
    await sendBatch(dev, [...qualifying('gus'), ...qualifying('hal')]);
    await dev.collectChanges();
    const overlapping = async (id: string, winnerAt: Date, loserAt: Date) => {
      const ref = { workspace: dev.workspace, type: 'user' as const, id };
      const read = async () => readFacts(dev.evaluation, ref, ruleset, day(0), await dev.evaluation.entity(ref, [dayOf(day(-1))]));
      const saveAt = async (loaded: Awaited<ReturnType<typeof read>>, now: Date) => {
        const evaluation = evaluate(loaded.facts, ruleset, now);
        const { state, transition } = decide(loaded.rows.state?.lead, evaluation, loaded.facts, ruleset, now);
        const event = buildLeadEvent(dev.workspace, loaded.facts, evaluation, transition!, ruleset, now);
        return { saved: await dev.evaluation.save(ref, entityUpdate(loaded, state, event, null, ruleset, now), loaded.rows.token), event };
      };
      const [first, second] = [await read(), await read()];
      const winner = await saveAt(first, winnerAt);
      const loser = await saveAt(second, loserAt);
      expect([winner.saved, loser.saved]).toEqual([true, false]);
      expect(loser.event.detail.idempotencyKey).toBe(winner.event.detail.idempotencyKey);
      return { shard: dev.evaluation.shardOf(ref), winner: winner.event };
    };

    // The loser evaluated a second later: its event is left in the outbox, and dropped as never saved.
    const gus = await overlapping('gus', day(0), new Date(day(0).getTime() + 1000));
    expect(await outboxSortKeys(dev)).toHaveLength(2);
    expect(await dev.evaluation.pendingLeadEvents(gus.shard, day(0))).toEqual([gus.winner]);
    expect(await outboxSortKeys(dev)).toHaveLength(1);
    await dev.evaluation.markPublished(gus.shard, [gus.winner]);

    // At the same millisecond both put the same item: the loser's failed save must not take the winner's event.
    const hal = await overlapping('hal', day(0), day(0));
    expect(await dev.evaluation.pendingLeadEvents(hal.shard, day(0))).toEqual([hal.winner]);
  });

  it('keeps counts exact when a run dies after reading, and lets only one of two overlapping runs save', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    const ruleset = loadRules(rulesYaml(), 'test rules');
    await sendBatch(dev, [track('max', 'Dashboard Created', day(-2))]);
    await dev.evaluateOnce(day(0));
    await sendBatch(dev, [track('max', 'Dashboard Created', day(-1))]);
    const ref = { workspace: dev.workspace, type: 'user' as const, id: 'max' };
    await dev.collectChanges();
    // What a run reads for max, changed on these days (its candidate's).
    const read = async (...days: Date[]) => readFacts(dev.evaluation, ref, ruleset, day(0), await dev.evaluation.entity(ref, days.map(dayOf)));

    // A run that read the change and died before saving leaves no trace: the next run counts the day once.
    await read(day(-1));
    // Two runs overlapping on the same entity: the second to save finds the state moved on, and saves nothing.
    const first = await read(day(-1));
    const second = await read(day(-1));
    const saveAs = (loaded: typeof first) => {
      const { state } = decide(loaded.rows.state?.lead, evaluate(loaded.facts, ruleset, day(0)), loaded.facts, ruleset, day(0));
      return dev.evaluation.save(ref, entityUpdate(loaded, state, undefined, null, ruleset, day(0)), loaded.rows.token);
    };
    expect(await saveAs(first)).toBe(true);
    expect(await saveAs(second)).toBe(false);

    await sendBatch(dev, [track('max', 'Data Exported', day(0))]);
    await dev.collectChanges();
    const third = await read(day(0));
    const dashboards = third.facts.days.reduce((sum, rollup) => sum + (rollup.measures['dashboards']?.count ?? 0), 0);
    expect(dashboards).toBe(2);
    // The lifetime total moves by each recomputed day's difference: a lost or doubled day would show here.
    expect(third.facts.lifetime.activity).toBe(3);

    // A save with a recomputed day, like one of the state alone, is one conditional put of the STATE item (the day
    // stays open in it): its write units are the item's size, billed once, no transaction, no day item.
    const stateUnits = async () => {
      const { Item } = await dev.client.send(new GetItemCommand({ TableName: dev.tableName, Key: { pk: { S: entityPartitionKey(dev.workspace, 'user', 'max') }, sk: { S: stateSortKey } }, ConsistentRead: true }));
      return Math.ceil(itemSize(Item!) / 1024);
    };
    const savedAlone = async (loaded: typeof first) => {
      const [unitsBefore, writesBefore] = [await stateUnits(), dev.evaluation.capacity.writeUnits];
      expect(await saveAs(loaded)).toBe(true);
      expect(dev.evaluation.capacity.writeUnits - writesBefore).toBe(Math.max(unitsBefore, await stateUnits()));
    };
    expect(third.days.map((rollup) => rollup.day)).toEqual([dayOf(day(0))]);
    await savedAlone(third);
    const [quietFirst, quietSecond] = [await read(), await read()];
    expect(quietFirst.days).toEqual([]);
    await savedAlone(quietFirst);
    expect(await saveAs(quietSecond)).toBe(false);
  });

  it("moves an entity's sweep earlier, never later, and makes an overlapping run's save fail", async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    const ruleset = loadRules(rulesYaml(), 'test rules');
    const ref = { workspace: dev.workspace, type: 'user' as const, id: 'max' };
    const shard = dev.evaluation.shardOf(ref);
    await sendBatch(dev, [track('max', 'Dashboard Created', day(-1))]);
    await dev.evaluateOnce(day(0));
    const minutesOn = (minutes: number) => new Date(day(0).getTime() + minutes * 60_000);
    /** The ids of the shard's candidates due for a sweep by `at`, read page by page as a run reads them. */
    const sweepsAt = async (at: Date) => {
      const ids: string[] = [];
      let after: string | undefined;
      do {
        const page = await dev.evaluation.candidates(shard, at, 100, { everyone: false, ...(after !== undefined ? { after } : {}) });
        ids.push(...page.candidates.filter((candidate) => candidate.reason === 'sweep').map((candidate) => candidate.ref.id));
        after = page.next;
      } while (after !== undefined);
      return ids;
    };
    // A lead of PQL-B: swept when it turns inactive, 14 days on.
    expect(await sweepsAt(minutesOn(10))).toEqual([]);

    const overlapping = await dev.evaluation.entity(ref);
    expect(await dev.evaluation.sweepBy(ref, minutesOn(10), (await dev.evaluation.entity(ref)).token)).toBe(true);
    expect(await sweepsAt(minutesOn(9))).toEqual([]);
    expect(await sweepsAt(minutesOn(10))).toEqual(['max']);
    // Due by then already: a later time keeps it.
    expect(await dev.evaluation.sweepBy(ref, minutesOn(30), (await dev.evaluation.entity(ref)).token)).toBe(true);
    expect(await sweepsAt(minutesOn(10))).toEqual(['max']);
    // A run that read the entity before cannot move the sweep, nor save over it.
    expect(await dev.evaluation.sweepBy(ref, minutesOn(5), overlapping.token)).toBe(false);
    const loaded = await readFacts(dev.evaluation, ref, ruleset, day(0), overlapping);
    const { state } = decide(loaded.rows.state?.lead, evaluate(loaded.facts, ruleset, day(0)), loaded.facts, ruleset, day(0));
    expect(await dev.evaluation.save(ref, entityUpdate(loaded, state, undefined, null, ruleset, day(0)), loaded.rows.token)).toBe(false);
    expect(await sweepsAt(minutesOn(10))).toEqual(['max']);
    // Never evaluated: nothing to sweep.
    const stranger = { workspace: dev.workspace, type: 'user' as const, id: 'stranger' };
    expect(await dev.evaluation.sweepBy(stranger, minutesOn(10), (await dev.evaluation.entity(stranger)).token)).toBe(false);
  });

  it('re-evaluates everyone after a rules change, notifying only leads whose tier moved', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads);
    await sendBatch(dev, [
      track('hal', 'Data Exported', day(-1)),
      track('hal', 'Dashboard Created', day(-1)),
      track('hal', 'Dashboard Created', day(-1, day(0.1))),
      track('ida', 'Data Exported', day(-1)),
      track('ida', 'Dashboard Created', day(-2)),
      track('ida', 'Dashboard Created', day(-2, day(0.1))),
      track('ida', 'Report Shared', day(-1)),
    ]);
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user hal none -> PQL-B', 'Lead Qualified: user ida none -> PQL-B']);

    // A new signal only ida has: a new ruleset version, measured from the stored events.
    const changed = await startAgainWithRules(dev, leads, rulesYaml('\n  shared: { event: Report Shared, window: 30d, points: 40 }'));
    const result = await changed.evaluateOnce(day(0));
    expect(result.evaluated).toBeGreaterThanOrEqual(2);
    expect(summaryOf(leads.published.slice(2))).toEqual(['Lead Tier Changed: user ida PQL-B -> PQL-A']);
  });

  it('publishes to an EventBridge endpoint, resending entries that failed', async () => {
    const bus = await startEventBridgeEndpoint();
    try {
      const publisher = new EventBridgePublisher({ client: eventBridgeClientFor(bus.url), eventBusName: 'pql-radar-test', baseDelayMs: 1 });
      const dev = await start(publisher);
      await sendBatch(dev, ['jo', 'kim', 'lee'].flatMap((user) => [track(user, 'Data Exported', day(-1)), track(user, 'Dashboard Created', day(-1)), track(user, 'Dashboard Created', day(-1, day(0.1)))]));
      bus.failEntries(2);
      await dev.evaluateOnce(day(0));
      expect(bus.accepted.map((entry) => entry.detail.entity.id).sort()).toEqual(['jo', 'kim', 'lee']);
      expect(bus.accepted.every((entry) => entry.source === 'pql-radar' && entry.detailType === 'Lead Qualified')).toBe(true);
    } finally {
      await bus.close();
    }
  });
});

describe("a user's state within DynamoDB's 400 KB item limit, whatever a client sends", () => {
  // A random text of `length` hexadecimal characters: what compresses least, as a client bent on it would send.
  const randomText = (length: number) => randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
  const rulesWith = (signals: string) => `
version: 1
signals:
${signals}
tiers:
  - { name: PQL-S, min_score: 50, route: sales }
  - { name: PQL-A, min_score: 30, route: sales }
`;
  const message = (userId: string, event: string, at: Date, properties: Record<string, unknown> = {}) => ({ type: 'track', userId, event, properties, timestamp: at.toISOString(), messageId: randomUUID() });
  const inBatches = async (dev: DevRuntime, messages: Record<string, unknown>[], perRequest = 500) => {
    for (let start = 0; start < messages.length; start += perRequest) await sendBatch(dev, messages.slice(start, start + perRequest));
  };
  const qualifying = (userId: string) => [1, 2, 3].map(() => message(userId, 'Dashboard Created', day(-0.5)));
  const failures = (run: EvaluatorRunSummary) => run.failed.map((failure) => `${failure.ref.id}: ${String(failure.error)}`);

  // Each of these made the user's every save fail: ValidationException: Item size has exceeded the maximum allowed size.
  it('saves users sent thousands of long event names in a day, or late batches of long names over two months', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, rulesWith('  dashboards: { event: Dashboard Created, window: 90d, at_least: 2, points: 30 }'));
    const names = Array.from({ length: 5_000 }, (_, index) => message('names', randomText(200), new Date(day(0).getTime() - 3_600_000 + index)));
    await inBatches(dev, [...names, ...qualifying('names'), ...qualifying('late')]);
    const first = await dev.evaluateOnce(day(0));
    expect(failures(first)).toEqual([]);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user late none -> PQL-A', 'Lead Qualified: user names none -> PQL-A']);
    // The day kept its most counted names: the lead event's top events still lead with the one sent three times.
    expect(leads.published.find((event) => event.detail.entity.id === 'names')!.detail.context.topEvents[0]).toEqual({ name: 'Dashboard Created', count: 3 });

    // A user with a state keeps the days a run recomputes open in it.
    const lateMonths = Array.from({ length: 60 }, (_, offset) => Array.from({ length: 100 }, (_, index) => message('late', randomText(200), new Date(day(-offset - 1).getTime() + index)))).flat();
    await inBatches(dev, lateMonths);
    const second = await dev.evaluateOnce(day(0.1));
    expect(failures(second)).toEqual([]);
    expect(second.evaluated).toBe(1);
    // Saved, it is judged again as anyone is: the next run finds nothing to change.
    const third = await dev.evaluateOnce(day(0.2));
    expect(failures(third)).toEqual([]);
    expect(third.transitions).toEqual([]);
  });

  it('saves a user sent hundreds of long distinct values a day over its since-signup span, counting each', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(
      leads,
      rulesWith(`  dashboards: { event: Dashboard Created, window: 2d, at_least: 2, points: 30 }
  invited: { event: Teammate Invited, distinct: invitee, since_signup: 30d, at_least: 3, points: 10 }
  shared: { event: Teammate Invited, distinct: board, since_signup: 30d, at_least: 3, points: 10 }`),
    );
    await inBatches(dev, qualifying('distinct'));
    await dev.evaluateOnce(day(0));
    // The state keeps the days of a span that starts before the window, and those a run recomputes.
    const distinctDays = Array.from({ length: 12 }, (_, offset) =>
      Array.from({ length: 200 }, (_, index) => message('distinct', 'Teammate Invited', new Date(day(-offset).getTime() - 3_600_000 + index), { invitee: randomText(200), board: randomText(200) })),
    ).flat();
    await inBatches(dev, distinctDays);
    const second = await dev.evaluateOnce(day(0.1));
    expect(failures(second)).toEqual([]);
    const lead = leads.published.at(-1)!.detail;
    expect(lead.tier).toBe('PQL-S');
    // Long values kept short still count one each, up to the most a measure keeps (200).
    expect(lead.signals.find((signal) => signal.name === 'invited')?.value).toBe(200);
    expect(lead.score.total).toBe(30 + 10 + 10);
    const third = await dev.evaluateOnce(day(0.2));
    expect(failures(third)).toEqual([]);
    expect(third.transitions).toEqual([]);
  });

  it("writes out even today's and yesterday's days when they alone would pass the bound, and counts today's later events on top", async () => {
    const leads = new RecordingPublisher();
    // 12: about the most distinct signals a rules file may have (rules/day-size.ts), each sent the longest values kept as
    // sent. Never met: their counts here are 0 or the 200 a count stops at.
    const signals = Array.from({ length: 12 }, (_, index) => `  distinct_${index}: { event: Teammate Invited, distinct: p${index}, window: 2d, exactly: 199, points: 1 }`);
    const dev = await start(leads, rulesWith([...signals, '  dashboards: { event: Dashboard Created, window: 2d, at_least: 3, points: 30 }'].join('\n')));
    await inBatches(dev, [message('wide', 'Dashboard Created', day(-1))]);
    await dev.evaluateOnce(day(0));
    // 200 long values a day for each distinct signal, yesterday and today, and a second dashboard.
    const wide = [-1, 0].flatMap((offset) =>
      Array.from({ length: 200 }, (_, index) =>
        message('wide', 'Teammate Invited', new Date(day(offset).getTime() - 3_600_000 + index), Object.fromEntries(signals.map((_, signal) => [`p${signal}`, randomText(maxDistinctValueLength)]))),
      ),
    );
    await inBatches(dev, [...wide, message('wide', 'Dashboard Created', new Date(day(0).getTime() - 60_000))], 50);
    const second = await dev.evaluateOnce(day(0));
    expect(failures(second)).toEqual([]);
    expect(leads.published).toEqual([]);
    // Written out as day items, which a state keeps open otherwise.
    const today = day(0).toISOString().slice(0, 10);
    const yesterday = day(-1).toISOString().slice(0, 10);
    expect(await sortKeys(dev, 'wide', daySortKeyPrefix)).toEqual([`${daySortKeyPrefix}${yesterday}`, `${daySortKeyPrefix}${today}`]);
    // The third dashboard, today: today's day, written out, is read back and counted with it.
    await inBatches(dev, [message('wide', 'Dashboard Created', new Date(day(0).getTime() + 60_000))]);
    const third = await dev.evaluateOnce(day(0.1));
    expect(failures(third)).toEqual([]);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user wide none -> PQL-A']);
    const lead = leads.published[0]!.detail;
    expect(lead.signals.find((signal) => signal.name === 'dashboards')?.value).toBe(3);
    expect(lead.score.total).toBe(30);
  });

  it('saves a day of text in three-byte characters, which deflates to about 2.3 bytes a character: its values and names are bounded in bytes', async () => {
    const leads = new RecordingPublisher();
    // Random characters of U+0800 to U+D7FF, three bytes each in UTF-8, which deflate cannot shrink much.
    const wideText = (length: number) => {
      const random = randomBytes(4 * length);
      return String.fromCodePoint(...Array.from({ length }, (_, index) => 0x0800 + (random.readUInt32BE(4 * index) % 53_248)));
    };
    // The first qualifies once all its 200 values are counted; the others never (their counts are 0 or 200).
    const signals = Array.from({ length: 12 }, (_, index) => `  distinct_${index}: { event: Teammate Invited, distinct: p${index}, window: 2d, ${index === 0 ? 'at_least: 200' : 'exactly: 199'}, points: 60 }`);
    const dev = await start(leads, rulesWith(signals.join('\n')));
    await inBatches(dev, [message('threebyte', 'Dashboard Created', day(-1))]);
    await dev.evaluateOnce(day(0));
    // Today: 200 values of 64 such characters for each distinct signal, and 100 event names of 200 (as long as ingest takes).
    const at = (index: number) => new Date(day(0).getTime() - 3_600_000 + index);
    const invites = Array.from({ length: 200 }, (_, index) => message('threebyte', 'Teammate Invited', at(index), Object.fromEntries(signals.map((_, signal) => [`p${signal}`, wideText(maxDistinctValueLength)]))));
    const named = Array.from({ length: 100 }, (_, index) => message('threebyte', wideText(200), at(200 + index)));
    await inBatches(dev, [...invites, ...named], 25);
    const second = await dev.evaluateOnce(day(0));
    expect(failures(second)).toEqual([]);
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user threebyte none -> PQL-S']);
    expect(leads.published[0]!.detail.signals.find((signal) => signal.name === 'distinct_0')?.value).toBe(200);
  });
});

describe('the local runtime\'s evaluator runs', () => {
  /**
   * Holds each publish for a while, long enough for several timers to fire meanwhile, and counts the publishes in
   * flight: a run that started while another was publishing would show here, and would publish the outbox again.
   */
  class SlowPublisher implements LeadPublisher {
    inFlight = 0;
    mostInFlight = 0;
    published: LeadEvent[] = [];
    async publish(events: readonly LeadEvent[]) {
      this.mostInFlight = Math.max(this.mostInFlight, ++this.inFlight);
      await sleep(300);
      this.published.push(...events);
      this.inFlight--;
      return { failed: [] };
    }
  }

  async function until(condition: () => boolean) {
    while (!condition()) await sleep(20);
  }

  it('never overlap, timed or asked for, and deliver each transition once', async () => {
    const leads = new SlowPublisher();
    let runs = 0;
    const dev = await start(leads, rulesYaml(), { evaluateEveryMs: 100, onEvaluation: () => void runs++ });
    const users = Array.from({ length: 30 }, (_, index) => `run-${index}`);
    const yesterday = day(-1, new Date());
    await sendBatch(dev, users.flatMap((user) => [track(user, 'Data Exported', yesterday), track(user, 'Dashboard Created', yesterday), track(user, 'Dashboard Created', day(0.1, yesterday))]));
    // Runs asked for while timed ones keep coming: each waits for the one before.
    const asked = Promise.all([dev.evaluateOnce(), dev.evaluateOnce(), dev.evaluateOnce()]);
    const overlapped = () => leads.mostInFlight > 1;
    await until(() => overlapped() || leads.published.length >= users.length);
    // Timed runs after every transition was delivered: none may deliver one again.
    const runsSoFar = runs;
    await until(() => overlapped() || runs >= runsSoFar + 3);

    expect(leads.mostInFlight).toBe(1);
    const keys = leads.published.map((event) => event.detail.idempotencyKey);
    expect(keys).toHaveLength(new Set(keys).size);
    expect(leads.published.map((event) => event.detail.entity.id).sort()).toEqual([...users].sort());
    expect((await asked).every((summary) => summary.unpublished.length === 0)).toBe(true);
  });
});

/** Same table, a new ruleset: what a deploy with an edited rules file does. */
async function startAgainWithRules(dev: DevRuntime, leads: LeadPublisher, rules: string): Promise<DevRuntime> {
  await dev.stop();
  runtime = await startDev({
    port: 0,
    endpoint: dev.endpoint,
    tableName: dev.tableName,
    writeKey: dev.writeKey,
    ruleset: loadRules(rules, 'changed rules'),
    leads,
    evaluateEveryMs: 0,
  });
  return runtime;
}

describe('conversions, as the rules file defines them, against DynamoDB Local', () => {
  const orderRules = rulesYaml().replace('policy:', 'conversion: { event: Order Completed, where: { total: { gte: 100 } } }\npolicy:');

  it('records a lead conversion once and publishes one Lead Converted, surviving a crash between save and publish', async () => {
    const leads = new RecordingPublisher();
    const dev = await start(leads, orderRules);
    await sendBatch(dev, [track('gus', 'Data Exported', day(-3)), track('gus', 'Dashboard Created', day(-3)), track('gus', 'Dashboard Created', day(-3, day(0.1)))]);
    await dev.evaluateOnce(day(-2));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: user gus none -> PQL-B']);

    // A small order is not a conversion; the one at the threshold is.
    await sendBatch(dev, [track('gus', 'Order Completed', day(-1), { total: 99 })]);
    await dev.evaluateOnce(day(-1));
    expect(leads.published).toHaveLength(1);
    await sendBatch(dev, [track('gus', 'Order Completed', day(-0.5), { total: 100 })]);
    leads.crashNext = true;
    await expect(dev.evaluateOnce(day(0))).rejects.toThrow('simulated crash');
    await dev.evaluateOnce(day(0));
    await sendBatch(dev, [track('gus', 'Order Completed', day(0.1), { total: 500 }), track('gus', 'Dashboard Created', day(0.1))]);
    await dev.evaluateOnce(day(1));

    expect(summaryOf(leads.published)).toEqual(['Lead Converted: user gus PQL-B -> none', 'Lead Qualified: user gus none -> PQL-B']);
    const converted = leads.published.find((event) => event.detailType === 'Lead Converted')!;
    expect(leadEventDetailSchema.parse(converted.detail)).toBeTruthy();
    expect(converted.detail).toMatchObject({
      route: 'nurture',
      tier: null,
      previousTier: 'PQL-B',
      conversion: { convertedAt: day(-0.5).toISOString(), tier: 'PQL-B', qualifiedAt: day(-2).toISOString(), qualifiedTier: 'PQL-B', qualifiedOn: ['dashboards', 'exported'], daysSinceQualification: 1 },
    });
    expect(new Set(leads.published.map((event) => event.detail.idempotencyKey)).size).toBe(2);
  });

  it('converts an account when a member converts, and a user by a trait change, keeping them in the tiers when the rules say so', async () => {
    const leads = new RecordingPublisher();
    const rules = rulesYaml().replace('policy:', 'conversion: { trait: plan, is: { in: [pro, business] }, keep_in_tiers: true }\npolicy:');
    const dev = await start(leads, rules);
    await sendBatch(dev, [
      { type: 'group', userId: 'ada', groupId: 'acme', traits: { name: 'Acme' }, timestamp: day(-5).toISOString(), messageId: 'g-ada' },
      { type: 'group', userId: 'bob', groupId: 'acme', timestamp: day(-5).toISOString(), messageId: 'g-bob' },
      track('ada', 'Page Viewed', day(-1), {}, 'acme'),
      track('bob', 'Data Exported', day(-1), {}, 'acme'),
      track('bob', 'Dashboard Created', day(-1), {}, 'acme'),
      track('bob', 'Dashboard Created', day(-1, day(0.1)), {}, 'acme'),
    ]);
    await dev.evaluateOnce(day(0));
    await dev.evaluateOnce(day(0));
    expect(summaryOf(leads.published)).toEqual(['Lead Qualified: account acme none -> PQL-B', 'Lead Qualified: user bob none -> PQL-B']);

    await sendBatch(dev, [{ type: 'identify', userId: 'bob', traits: { plan: 'free' }, timestamp: day(0.2).toISOString(), messageId: 'i-bob-1' }]);
    await dev.evaluateOnce(day(0.3));
    expect(leads.published).toHaveLength(2);
    await sendBatch(dev, [{ type: 'identify', userId: 'bob', traits: { plan: 'pro' }, timestamp: day(0.4).toISOString(), messageId: 'i-bob-2' }]);
    await dev.evaluateOnce(day(0.5));
    await dev.evaluateOnce(day(0.6));
    expect(summaryOf(leads.published.slice(2))).toEqual(['Lead Converted: account acme PQL-B -> PQL-B', 'Lead Converted: user bob PQL-B -> PQL-B']);
    const account = leads.published.find((event) => event.detailType === 'Lead Converted' && event.detail.entity.type === 'account')!;
    expect(account.detail.conversion).toMatchObject({ convertedAt: day(0.4).toISOString(), tier: 'PQL-B' });
  });
});
