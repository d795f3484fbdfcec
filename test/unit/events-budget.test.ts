import { describe, expect, it } from 'vitest';
import { evaluateShard } from '../../functions/core/evaluate-leads';
import { EventsBudget } from '../../functions/core/events-budget';
import type { EntityRef } from '../../functions/core/ports';
import { loadRules } from '../../functions/core/rules/load';
import { InMemoryEvaluationStore } from '../support/in-memory-evaluation-store';
import { RecordingPublisher } from '../support/lead-events';

describe('EventsBudget', () => {
  it("holds what every lease takes, refuses a lease past the limit alone as too many and one past it with the others' as held by others", () => {
    const budget = new EventsBudget(100);
    const first = budget.lease();
    const second = budget.lease();
    expect(first.take(60, 3)).toBe('fits');
    expect(second.take(30, 1)).toBe('fits');
    expect(second.take(20, 1)).toBe('held by others');
    expect(budget.held).toBe(110);
    // What a failed read took goes back; the lease keeps what it held before.
    second.giveBack(20, 1);
    expect([second.chars, second.events, budget.held]).toEqual([30, 1, 90]);
    expect(first.take(50, 2)).toBe('too many');
    first.giveBack();
    expect([first.chars, first.events, budget.held]).toEqual([0, 0, 30]);
  });

  it('moves what one lease holds to another, the run holding the same', () => {
    const budget = new EventsBudget(100);
    const prepared = budget.lease();
    const evaluation = budget.lease();
    prepared.take(40, 2);
    prepared.moveTo(evaluation);
    expect([prepared.chars, evaluation.chars, evaluation.events, budget.held]).toEqual([0, 40, 2, 40]);
    evaluation.giveBack();
    expect(budget.held).toBe(0);
  });
});

const ruleset = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
tiers:
  - { name: pql, min_score: 50, route: sales, level: user }
`);
const workspace = 'ws';
const now = new Date('2025-03-10T12:00:00.000Z');
const user = (id: string): EntityRef => ({ workspace, type: 'user', id });

/** `count` dashboards `apartMs` apart (an hour), up to that long ago: two qualify. */
function dashboards(store: InMemoryEvaluationStore, id: string, count: number, apartMs = 3_600_000) {
  for (let index = 0; index < count; index++) store.track(workspace, id, { event: 'Dashboard Created', timestamp: new Date(now.getTime() - (index + 1) * apartMs).toISOString() });
}

/** The characters of a user's events, as a read takes them. */
async function charsOf(store: InMemoryEvaluationStore, id: string): Promise<number> {
  return (await store.events(user(id), 'all')).reduce((sum, event) => sum + JSON.stringify(event).length, 0);
}

describe('the events one run holds at once', () => {
  it('have a user whose events fit alone, but not beside those another evaluation holds, evaluated again alone at the end of its page', async () => {
    const sized = new InMemoryEvaluationStore();
    dashboards(sized, 'ann', 20);
    const chars = await charsOf(sized, 'ann');
    const store = new InMemoryEvaluationStore({ maxEventChars: Math.floor(chars * 1.5) });
    for (const id of ['ann', 'bob', 'cat']) dashboards(store, id, 20);
    const publisher = new RecordingPublisher();
    const result = await evaluateShard(store, publisher, { shard: '0', ruleset, now, outOfTime: () => false });
    // Prepare reads ann's events; bob's and cat's find no room. Their evaluations, beside ann's, find none either, and
    // are made again once the others are done, one at a time.
    expect([result.evaluated, result.evaluatedAlone, result.failed.length]).toEqual([3, 2, 0]);
    expect(publisher.published.map((event) => event.detail.entity.id)).toEqual(['ann', 'bob', 'cat']);
  });

  it("drop the page's prepared events to make room for a user whose evaluation reads more, rather than leave that user", async () => {
    const sized = new InMemoryEvaluationStore();
    dashboards(sized, 'a1', 2);
    dashboards(sized, 'heavy', 40);
    const [small, heavy] = [await charsOf(sized, 'a1'), await charsOf(sized, 'heavy')];
    // Room for the heavy user and four and a half small ones.
    const store = new InMemoryEvaluationStore({ maxEventChars: heavy + Math.floor(small * 4.5) });
    const ids = ['a1', 'a2', 'a3', 'a4', 'a5', 'heavy', 'z1', 'z2', 'z3', 'z4', 'z5'];
    for (const id of ids) dashboards(store, id, id === 'heavy' ? 40 : 2);
    const publisher = new RecordingPublisher();
    // One at a time, in the page's order: prepare reads a1 to a5, finds no room for heavy, reads z1 to z5. Evaluated
    // next, heavy finds z1 to z5's events held, which its evaluation drops; theirs read them again.
    const result = await evaluateShard(store, publisher, { shard: '0', ruleset, now, outOfTime: () => false, concurrency: 1 });
    expect([result.evaluated, result.evaluatedAlone, result.failed.length]).toEqual([11, 0, 0]);
    expect(publisher.published.map((event) => event.detail.entity.id).sort()).toEqual(ids);
  });

  it('are all given back by the end of a page, those read ahead for evaluations that time then left undone too', async () => {
    const store = new InMemoryEvaluationStore({ maxEventChars: 1_000_000 });
    for (const id of ['ann', 'bob']) dashboards(store, id, 2);
    const budgets: EventsBudget[] = [];
    const budget = store.eventsBudget;
    store.eventsBudget = () => {
      budgets.push(budget());
      return budgets.at(-1)!;
    };
    // Time runs out once both users' events are read ahead (a check each), before either is evaluated.
    let checks = 0;
    const result = await evaluateShard(store, new RecordingPublisher(), { shard: '0', ruleset, now, outOfTime: () => ++checks > 2, concurrency: 1 });
    expect([result.evaluated, result.incomplete]).toEqual([0, true]);
    expect(budgets.map((made) => made.held)).toEqual([0]);
  });

  it("fail a user whose events of one day pass the budget alone, and no other", async () => {
    const sized = new InMemoryEvaluationStore();
    // A minute apart: all on one day, which a rebuild a day at a time cannot split.
    dashboards(sized, 'bot', 40, 60_000);
    const store = new InMemoryEvaluationStore({ maxEventChars: (await charsOf(sized, 'bot')) - 1 });
    dashboards(store, 'ann', 2);
    dashboards(store, 'bot', 40, 60_000);
    const publisher = new RecordingPublisher();
    const result = await evaluateShard(store, publisher, { shard: '0', ruleset, now, outOfTime: () => false });
    expect(result.failed.map((failure) => [failure.ref.id, (failure.error as Error).name])).toEqual([['bot', 'TooManyEventsError']]);
    // Refused beside ann's events first, then alone.
    expect([result.evaluated, result.evaluatedAlone]).toEqual([1, 1]);
  });

  it('rebuild a user whose events of every day pass the budget a day at a time, to the state a read of them all makes', async () => {
    /** Twelve days of dashboards, eight a day, and an anonymous visitor's two days before them, which its first claims. */
    const history = (store: InMemoryEvaluationStore) => {
      for (let day = 12; day >= 1; day--) {
        for (let index = 0; index < 8; index++) {
          const timestamp = new Date(now.getTime() - day * 86_400_000 + index * 60_000).toISOString();
          store.track(workspace, 'dan', { event: 'Dashboard Created', timestamp, ...(day === 12 && index === 0 ? { anonymousId: 'v-dan' } : {}) });
        }
      }
      for (const day of [15, 14]) store.trackVisitor(workspace, 'v-dan', { event: 'Dashboard Created', timestamp: new Date(now.getTime() - day * 86_400_000).toISOString() });
    };
    const ample = new InMemoryEvaluationStore();
    history(ample);
    const allAtOnce = await evaluateShard(ample, new RecordingPublisher(), { shard: '0', ruleset, now, outOfTime: () => false });
    const sized = new InMemoryEvaluationStore();
    history(sized);
    // Room for seven and a half of its twelve days: a day at a time holds at most five (the day read and the four
    // before it, whose days of the rules' calendar may take events from it), never all.
    const store = new InMemoryEvaluationStore({ maxEventChars: Math.floor(((await charsOf(sized, 'dan')) / 12) * 7.5) });
    history(store);
    const daysRead: string[] = [];
    const eachEventDay = store.eachEventDay.bind(store);
    store.eachEventDay = (ref, days, onDay, lease) => eachEventDay(ref, days, (day, events) => (daysRead.push(day), onDay(day, events)), lease);
    const result = await evaluateShard(store, new RecordingPublisher(), { shard: '0', ruleset, now, outOfTime: () => false });
    expect(result.failed.map((failure) => (failure.error as Error).message)).toEqual([]);
    expect(result.evaluated).toBe(allAtOnce.evaluated);
    expect(daysRead.length).toBeGreaterThanOrEqual(12);
    expect(store.stateOf(user('dan'))).toEqual(ample.stateOf(user('dan')));
    expect(store.stateOf(user('dan'))?.merged).toEqual(['visitor:v-dan']);
    const days = (from: InMemoryEvaluationStore) => from.dayRollups(user('dan'), Array.from({ length: 16 }, (_, day) => new Date(now.getTime() - day * 86_400_000).toISOString().slice(0, 10)));
    expect(await days(store)).toEqual(await days(ample));
  });

  it("recompute a user's changed days that pass the budget together a day at a time, to the state a read of them all makes", async () => {
    const start = new Date(now.getTime() - 15 * 86_400_000);
    /** A dashboard twenty days ago, evaluated five days later; then twelve days of them at once, eight a day: a backfill. */
    const evaluatedThenBackfilled = async (store: InMemoryEvaluationStore) => {
      store.track(workspace, 'eli', { event: 'Dashboard Created', timestamp: new Date(now.getTime() - 20 * 86_400_000).toISOString() });
      await evaluateShard(store, new RecordingPublisher(), { shard: '0', ruleset, now: start, outOfTime: () => false });
      for (let day = 12; day >= 1; day--) {
        for (let index = 0; index < 8; index++) store.track(workspace, 'eli', { event: 'Dashboard Created', timestamp: new Date(now.getTime() - day * 86_400_000 + index * 60_000).toISOString() });
      }
    };
    const ample = new InMemoryEvaluationStore();
    await evaluatedThenBackfilled(ample);
    const backfilled = (await ample.events(user('eli'), 'all')).slice(1).reduce((sum, event) => sum + JSON.stringify(event).length, 0);
    await evaluateShard(ample, new RecordingPublisher(), { shard: '0', ruleset, now, outOfTime: () => false });
    // Room for seven and a half of the twelve days: a day at a time holds at most five.
    const store = new InMemoryEvaluationStore({ maxEventChars: Math.floor((backfilled / 12) * 7.5) });
    await evaluatedThenBackfilled(store);
    const daysRead: string[] = [];
    const eachEventDay = store.eachEventDay.bind(store);
    store.eachEventDay = (ref, days, onDay, lease) => eachEventDay(ref, days, (day, events) => (daysRead.push(day), onDay(day, events)), lease);
    const result = await evaluateShard(store, new RecordingPublisher(), { shard: '0', ruleset, now, outOfTime: () => false });
    expect(result.failed.map((failure) => (failure.error as Error).message)).toEqual([]);
    // The changed days alone, not a rebuild: the first day is not read again.
    expect(daysRead).toEqual(Array.from({ length: 12 }, (_, day) => new Date(now.getTime() - (12 - day) * 86_400_000).toISOString().slice(0, 10)));
    expect(store.stateOf(user('eli'))).toEqual(ample.stateOf(user('eli')));
    const days = (from: InMemoryEvaluationStore) => from.dayRollups(user('eli'), Array.from({ length: 21 }, (_, day) => new Date(now.getTime() - day * 86_400_000).toISOString().slice(0, 10)));
    expect(await days(store)).toEqual(await days(ample));
  });
});
