import { randomUUID } from 'node:crypto';
import type { QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { eventCharsReadableAtOnce } from '../../functions/adapters/dynamodb/entity-rows';
import { DynamoDbEvaluationStore } from '../../functions/adapters/dynamodb/evaluation-store';
import { allShards, describeError, readFacts, runEvaluator } from '../../functions/core/evaluate-leads';
import { TooManyEventsError } from '../../functions/core/ports';
import { EventsBudget } from '../../functions/core/events-budget';
import { loadRules, type Ruleset } from '../../functions/core/rules/load';
import { createDynamoDbClient } from '../../functions/local/dynamodb-local';
import { startDev, type DevRuntime } from '../../functions/local/dev';
import { defaultDirtyShards } from '../../functions/shared/settings';
import { RecordingPublisher } from '../support/lead-events';
import { sendBatch } from '../support/send-batch';
import { threePricingViewsRules } from '../support/pricing-rules';

const rules = threePricingViewsRules;

const at = (day: number, minute = 0) => new Date(Date.UTC(2024, 5, 10 + day, 10, minute)).toISOString();
const views = (userId: string, count: number, day = 0) =>
  Array.from({ length: count }, (_, index) => ({ type: 'track', userId, event: 'Pricing Viewed', messageId: `${userId}-${day}-${index}`, timestamp: at(day, index % 60) }));

/** What a read counts of events stored in one request a day: the characters of their JSON, as stored. */
const charsOf = (events: readonly unknown[]) => JSON.stringify(events).length;

let runtime: DevRuntime | undefined;
afterEach(async () => {
  await runtime?.stop();
  runtime = undefined;
});

describe('eventCharsReadableAtOnce', () => {
  it('is what takes half the heap at 1.5 bytes a character, the heap no more than the function memory where Lambda gives one', () => {
    expect(eventCharsReadableAtOnce(2 * 1024 ** 3, 1024)).toBe(357_913_941);
    expect(eventCharsReadableAtOnce(900 * 1024 ** 2, 1024)).toBe(314_572_800);
    expect(eventCharsReadableAtOnce(900 * 1024 ** 2, Number.NaN)).toBe(314_572_800);
  });
});

describe('a user with more events than an evaluation may hold, on DynamoDB Local', () => {
  it('fails that user alone, naming the lever and not the user, waits out the user interval unread, and evaluates it once the limit allows', async () => {
    const leads = new RecordingPublisher();
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0 }));
    // Chunks of one request hold many messages: the limit counts messages, not items.
    await sendBatch(dev, [...views('ann', 3), ...views('bot-7f3a', 40)]);
    await dev.collectChanges();
    const shards = allShards(defaultDirtyShards);
    const userIntervalMs = 5 * 60_000;
    // The queries of the user's events: the run's first read finds too many, and its evaluation does not read them again.
    const client = createDynamoDbClient(inject('dynamoEndpoint'));
    let botEventQueries = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as QueryCommandInput;
        if (context.commandName === 'QueryCommand' && input.ExpressionAttributeValues?.[':pk']?.S?.endsWith('#bot-7f3a') && input.KeyConditionExpression?.includes('begins_with')) botEventQueries++;
        return next(args);
      },
      { step: 'initialize', name: 'countEventQueries' },
    );
    const run = (maxEventCharsRead: number, now: string) =>
      runEvaluator({ store: new DynamoDbEvaluationStore({ client, tableName: dev.tableName, maxEventCharsRead }), publisher: leads, ruleset, shards, now: new Date(now), deadline: Number.POSITIVE_INFINITY, userIntervalMs });
    // Room for ann's 3 views, not for the bot's 40.
    const limit = Math.round((charsOf(await dev.evaluation.events({ workspace: dev.workspace, type: 'user', id: 'bot-7f3a' }, 'all')) * 25) / 40);

    const first = await run(limit, at(0, 30));
    expect(first.failed.map((failure) => [failure.ref.id, failure.error instanceof TooManyEventsError])).toEqual([['bot-7f3a', true]]);
    expect(botEventQueries).toBe(1);
    const message = describeError(first.failed[0]!.error);
    expect(message).toContain(`TooManyEventsError: a user's events of 2024-06-10 pass ${limit.toLocaleString('en-US')} characters of JSON (at 40 events)`);
    expect(message).toContain('evaluation.memoryMb');
    // The lever of `pql-radar evaluate --once` and the lead inspector, which read with the CLI's own heap.
    expect(message).toContain('NODE_OPTIONS=--max-old-space-size=');
    expect(message).not.toContain('bot-7f3a');
    // The other user of the same page is evaluated and qualifies.
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([['ann', 'PQL']]);

    // Within the interval the change waits, nothing of it read; after it, the limit still refuses it.
    const waiting = await run(limit, at(0, 33));
    expect({ failed: waiting.failed.length, leftUnread: waiting.leftUnread, evaluated: waiting.evaluated }).toEqual({ failed: 0, leftUnread: 1, evaluated: 0 });
    expect((await run(limit, at(0, 36))).failed.map((failure) => failure.ref.id)).toEqual(['bot-7f3a']);

    // More memory (a higher limit): the change kept is evaluated, every event counted.
    const later = await run(limit * 2, at(0, 42));
    expect({ failed: later.failed.length, evaluated: later.evaluated }).toEqual({ failed: 0, evaluated: 1 });
    expect(leads.published.map((event) => [event.detail.entity.id, event.detail.tier])).toEqual([
      ['ann', 'PQL'],
      ['bot-7f3a', 'PQL'],
    ]);
    client.destroy();
  });

  it('postpones a due sweep whose rebuild reads too many events, rather than read them up to the limit at every run', async () => {
    const leads = new RecordingPublisher();
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset: loadRules(rules, 'rules'), leads, evaluateEveryMs: 0 }));
    await sendBatch(dev, views('bot-7f3a', 40));
    await dev.collectChanges();
    const shards = allShards(defaultDirtyShards);
    const run = (ruleset: Ruleset, maxEventCharsRead: number, now: string) =>
      runEvaluator({ store: new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, maxEventCharsRead }), publisher: leads, ruleset, shards, now: new Date(now), deadline: Number.POSITIVE_INFINITY, userIntervalMs: 5 * 60_000 });
    const failedIds = async (ruleset: Ruleset, now: string) => (await run(ruleset, 1_000, now)).failed.map((failure) => failure.ref.id);
    expect((await run(loadRules(rules, 'rules'), 1_000_000, at(0, 30))).evaluated).toBe(1);
    expect(leads.published.map((event) => event.detail.tier)).toEqual(['PQL']);

    // New rules rebuild every user's days from all its events: the rules change's pass fails the bot, and once its
    // views leave the window, its sweep is due and fails too.
    const changed = loadRules(rules.replace('at_least: 3', 'at_least: 4'), 'rules');
    expect(await failedIds(changed, at(31, 0))).toEqual(['bot-7f3a']);
    expect(await failedIds(changed, at(31, 1))).toEqual(['bot-7f3a']);
    // Then the sweep waits out the interval, nothing of it read, and is tried again after it.
    expect(await failedIds(changed, at(31, 2))).toEqual([]);
    expect(await failedIds(changed, at(31, 7))).toEqual(['bot-7f3a']);
  });

  it("counts the events of every day a read asks for together, a rebuild's too", async () => {
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset, evaluateEveryMs: 0 }));
    await sendBatch(dev, [...views('bea', 15, 0), ...views('bea', 15, 1)]);
    const store = (maxEventCharsRead: number) => new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, maxEventCharsRead });
    const bea = { workspace: dev.workspace, type: 'user' as const, id: 'bea' };
    const days = [at(0).slice(0, 10), at(1).slice(0, 10)];
    // Each day's views are one item: the chunk of that day's messages of the request.
    const chars = charsOf(await dev.evaluation.events(bea, [days[0]!])) + charsOf(await dev.evaluation.events(bea, [days[1]!]));
    expect(await store(chars).events(bea, 'all')).toHaveLength(30);
    await expect(store(chars - 1).events(bea, 'all')).rejects.toThrow(/^a user's events of every day \(a rebuild of its days\) pass [\d,]+ characters of JSON \(at 30 events\)/);
    await expect(store(chars - 1).events(bea, days)).rejects.toThrow(/^a user's events of 2 days from 2024-06-10 pass [\d,]+ characters of JSON \(at 30 events\)/);
  });

  it("holds the events of a page's users within one budget for the run, evaluating one that finds no room once the others are done", async () => {
    const ruleset = loadRules(rules, 'rules');
    const leads = new RecordingPublisher();
    // One shard: the three users are on one page.
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset, leads, evaluateEveryMs: 0, dirtyShards: 1 }));
    const ids = ['ada', 'ben', 'cy'];
    await sendBatch(dev, ids.flatMap((id) => views(id, 40)));
    await dev.collectChanges();
    // Each user's views are one item of the same size: room for one user's and a half.
    const limit = Math.floor(charsOf(await dev.evaluation.events({ workspace: dev.workspace, type: 'user', id: 'ada' }, 'all')) * 1.5);
    const store = new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, maxEventCharsRead: limit });
    // What the run's leases hold each time a read of theirs fits: never two users' events at once.
    const budgets: EventsBudget[] = [];
    let peak = 0;
    store.eventsBudget = () => {
      const budget = new EventsBudget(limit);
      budgets.push(budget);
      const lease = budget.lease.bind(budget);
      budget.lease = () => {
        const made = lease();
        const take = made.take.bind(made);
        made.take = (chars, events) => {
          const fits = take(chars, events);
          if (fits === 'fits') peak = Math.max(peak, budget.held);
          return fits;
        };
        return made;
      };
      return budget;
    };
    const result = await runEvaluator({ store, publisher: leads, ruleset, shards: allShards(1), now: new Date(at(0, 30)), deadline: Number.POSITIVE_INFINITY });
    expect({ evaluated: result.evaluated, failed: result.failed.map((failure) => describeError(failure.error)) }).toEqual({ evaluated: 3, failed: [] });
    expect(leads.published.map((event) => event.detail.entity.id).sort()).toEqual(ids);
    expect(peak).toBeGreaterThan(limit / 2);
    expect(peak).toBeLessThanOrEqual(limit);
    // Every lease was given back once its evaluation (or its page) was done.
    expect(budgets.map((budget) => budget.held)).toEqual([0]);
  });

  it("rebuilds a user whose events of every day pass what a read may hold a day at a time, to the facts of a read of them all, whatever the rules' time zone", async () => {
    // Stored by Kiritimati's days (UTC+14), as ingest does under these rules; read under them, and under Pago Pago's
    // (UTC-11) after a change of time zone: a day there takes events from the two stored days after it.
    const kiritimati = loadRules(`${rules}timezone: Pacific/Kiritimati\n`, 'rules');
    const pagoPago = loadRules(`${rules}timezone: Pacific/Pago_Pago\n`, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset: kiritimati, evaluateEveryMs: 0 }));
    // Twelve days of views through each UTC day, the first claiming an anonymous visitor with a day of its own. The one
    // at 10:30 UTC is 23:30 the day before in Pago Pago and 00:30 the next day in Kiritimati: two stored days on.
    const hours = [1, 5, 10.5, 13, 17, 21];
    const eve = Array.from({ length: 12 }, (_, day) =>
      hours.map((hour, index) => ({ type: 'track', userId: 'eve', event: 'Pricing Viewed', messageId: `eve-${day}-${index}`, timestamp: new Date(Date.UTC(2024, 5, 10 + day) + hour * 3_600_000).toISOString(), ...(day === 0 && index === 0 ? { anonymousId: 'v-eve' } : {}) })),
    ).flat();
    await sendBatch(dev, [{ type: 'track', anonymousId: 'v-eve', event: 'Pricing Viewed', messageId: 'v-eve-0', timestamp: '2024-06-08T12:00:00.000Z' }]);
    // A request a day: an item a day, as a browser's or a server's traffic stores them.
    for (let day = 0; day < 12; day++) await sendBatch(dev, eve.slice(day * hours.length, (day + 1) * hours.length));
    const ref = { workspace: dev.workspace, type: 'user' as const, id: 'eve' };
    const chars = charsOf(await dev.evaluation.events(ref, 'all'));
    // Room for seven and a half of its twelve days: the most a day at a time holds is five stored days.
    const limited = new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, maxEventCharsRead: Math.floor((chars / 12) * 7.5) });
    await expect(limited.events(ref, 'all')).rejects.toThrow(TooManyEventsError);
    const daysHanded: string[] = [];
    const eachEventDay = limited.eachEventDay;
    limited.eachEventDay = (entity, days, onDay, lease) => eachEventDay(entity, days, (day, events) => (daysHanded.push(day), onDay(day, events)), lease);
    const now = new Date('2024-06-23T12:00:00.000Z');
    for (const ruleset of [kiritimati, pagoPago]) {
      daysHanded.length = 0;
      const { rows: _ample, ...allAtOnce } = await readFacts(dev.evaluation, ref, ruleset, now);
      const { rows: _limited, ...dayByDay } = await readFacts(limited, ref, ruleset, now);
      // Read twice: the first read finds the claim on the visitor, whose history then joins.
      // Its views from 13:00 UTC are the next day in Kiritimati: thirteen stored days.
      const storedDays = Array.from({ length: 13 }, (_, day) => `2024-06-${10 + day}`);
      expect(daysHanded).toEqual([...storedDays, ...storedDays]);
      expect(dayByDay).toEqual(allAtOnce);
      expect(dayByDay.merged).toEqual(['visitor:v-eve']);
      expect(dayByDay.days.reduce((sum, rollup) => sum + rollup.activity, 0)).toBe(eve.length + 1);
    }
  });

  it("recomputes a user's changed days that pass what a read may hold a day at a time, to the facts of a read of them all", async () => {
    const ruleset = loadRules(rules, 'rules');
    const dev = (runtime = await startDev({ port: 0, endpoint: inject('dynamoEndpoint'), tableName: `too-many-${randomUUID()}`, ruleset, evaluateEveryMs: 0 }));
    const ref = { workspace: dev.workspace, type: 'user' as const, id: 'fay' };
    await sendBatch(dev, views('fay', 1, 0));
    await dev.collectChanges();
    const shards = allShards(defaultDirtyShards);
    expect((await runEvaluator({ store: dev.evaluation, publisher: new RecordingPublisher(), ruleset, shards, now: new Date(at(0, 30)), deadline: Number.POSITIVE_INFINITY })).evaluated).toBe(1);
    // Then a backfill: ten days of views at once, a request a day.
    const changedDays = Array.from({ length: 10 }, (_, day) => at(day + 1).slice(0, 10));
    for (let day = 1; day <= 10; day++) await sendBatch(dev, views('fay', 8, day));
    const backfilled = charsOf(await dev.evaluation.events(ref, changedDays));
    // Room for six and a half of the ten days: a day at a time holds at most five.
    const limited = new DynamoDbEvaluationStore({ client: dev.client, tableName: dev.tableName, maxEventCharsRead: Math.floor((backfilled / 10) * 6.5) });
    await expect(limited.events(ref, changedDays)).rejects.toThrow(TooManyEventsError);
    const daysHanded: string[] = [];
    const eachEventDay = limited.eachEventDay;
    limited.eachEventDay = (entity, days, onDay, lease) => eachEventDay(entity, days, (day, events) => (daysHanded.push(day), onDay(day, events)), lease);
    const now = new Date(at(11));
    const { rows: _ample, ...allAtOnce } = await readFacts(dev.evaluation, ref, ruleset, now, await dev.evaluation.entity(ref, changedDays));
    const { rows: _limited, ...dayByDay } = await readFacts(limited, ref, ruleset, now, await limited.entity(ref, changedDays));
    expect(daysHanded).toEqual(changedDays);
    expect(dayByDay).toEqual(allAtOnce);
    expect([dayByDay.rebuilt, dayByDay.days.length, dayByDay.facts.lifetime.activity]).toEqual([false, 10, 81]);
  });
});
