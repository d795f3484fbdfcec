import { describe, expect, it, vi } from 'vitest';
import { addDays, dayMs } from '../../functions/core/days';
import { accountTraitsMove, evaluateChanges, evaluateShard, runEvaluator, shardsCoveredBy, type EvaluateShardOptions } from '../../functions/core/evaluate-leads';
import type { LeadState } from '../../functions/core/lead-state';
import type { LeadEvent } from '../../functions/core/lead-event';
import type { EntityRef, LeadPublisher } from '../../functions/core/ports';
import { loadRules } from '../../functions/core/rules/load';
import { InMemoryEvaluationStore } from '../support/in-memory-evaluation-store';
import { RecordingPublisher } from '../support/lead-events';

const ruleset = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
  inactive: { inactive_for: 3d, points: -100 }
  team_lead: { level: account, best_member_tier: pql, points: 50 }
tiers:
  - { name: pql, min_score: 50, route: sales, level: user }
  - { name: team, min_score: 50, route: sales, level: account }
`);

/** Routed by a trait of the user's accounts. */
const routed = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
tiers:
  - name: pql
    min_score: 50
    level: user
    route: { by: account.region, map: { emea: sales-emea, us: sales-us }, default: sales }
    owner: account.owner_email
`);

const workspace = 'ws';
const now = new Date('2025-03-10T12:00:00.000Z');
const hoursAgo = (hours: number) => new Date(now.getTime() - hours * 3_600_000).toISOString();
const user = (id: string): EntityRef => ({ workspace, type: 'user', id });
const account = (id: string): EntityRef => ({ workspace, type: 'account', id });

/** An account's tier on its members' exports: at least `count` in 3 days. */
const accountExports = (count: number) =>
  loadRules(`
version: 1
signals:
  exports: { level: account, event: Data Exported, window: 3d, at_least: ${count}, points: 50 }
tiers:
  - { name: team, min_score: 50, route: sales, level: account }
`);

/** An account's tier on its best member's: a user is warm on a day without a report. */
const warmTeams = loadRules(`
version: 1
signals:
  no_report_today: { event: Report Run, window: 1d, at_most: 0, points: 10 }
  team: { level: account, best_member_tier: warm, points: 50 }
tiers:
  - { name: warm, min_score: 10, route: nurture, level: user }
  - { name: team, min_score: 50, route: sales, level: account }
`);

const summary = (events: readonly LeadEvent[]) => events.map((event) => `${event.detail.entity.type} ${event.detail.entity.id}: ${event.detail.previousTier ?? 'none'} -> ${event.detail.tier ?? 'none'}`);

function run(store: InMemoryEvaluationStore, publisher: LeadPublisher, options: Partial<EvaluateShardOptions> = {}) {
  return evaluateShard(store, publisher, { shard: '0', ruleset, now, outOfTime: () => false, ...options });
}

/** `hour` (UTC, fractions allowed) of the day `day` days after 2025-03-01, and that day's last moment. */
const onDay = (day: number, hour: number) => new Date(Date.parse('2025-03-01T00:00:00.000Z') + day * dayMs + hour * 3_600_000);
const endOfDay = (day: number) => new Date(onDay(day + 1, 0).getTime() - 1);

/** Runs at one moment until a run finds nothing left, as a scheduled minute's runs would. */
async function evaluateUntilDone(store: InMemoryEvaluationStore, publisher: LeadPublisher, options: Partial<EvaluateShardOptions>) {
  for (let round = 0; round < 5; round++) if ((await run(store, publisher, options)).evaluated === 0) break;
}

/**
 * ann and bob in acme, a team lead through bob on day 0. On day 1 bob runs a report (a change) while ann's report
 * leaves the window (a sweep due by the day's run): acme's best member is ann now, and acme stays a team lead rather
 * than leaving and re-entering the tier. `onDayOne` adds to day 1's changes. Returns the store after day 1's runs, its
 * member states read by them alone.
 */
async function bestMemberSwept(onDayOne: (store: InMemoryEvaluationStore) => void = () => {}) {
  const store = new InMemoryEvaluationStore();
  const publisher = new RecordingPublisher();
  // Runs at one moment until one finds nothing left, as a scheduled minute's would.
  const evaluateAt = (time: Date) => evaluateUntilDone(store, publisher, { ruleset: warmTeams, now: time });
  store.join(workspace, 'ann', 'acme');
  store.join(workspace, 'bob', 'acme');
  store.track(workspace, 'ann', { event: 'Report Run', timestamp: onDay(0, 9).toISOString() });
  store.track(workspace, 'bob', { event: 'Teammate Invited', timestamp: onDay(0, 9).toISOString() });
  await evaluateAt(onDay(0, 23));
  expect(summary(publisher.published)).toEqual(['user bob: none -> warm', 'account acme: none -> team']);
  onDayOne(store);
  store.track(workspace, 'bob', { event: 'Report Run', timestamp: onDay(1, 9).toISOString() });
  publisher.published.length = 0;
  store.memberStatesRead.length = 0;
  await evaluateAt(onDay(1, 23));
  expect(summary(publisher.published).sort()).toEqual(['user ann: none -> warm', 'user bob: warm -> none']);
  return store;
}

/** Two dashboards today: enough for the pql tier. */
function qualify(store: InMemoryEvaluationStore, id: string) {
  store.track(workspace, id, { event: 'Dashboard Created', timestamp: hoursAgo(2) });
  store.track(workspace, id, { event: 'Dashboard Created', timestamp: hoursAgo(1) });
}

describe('the evaluator use case', () => {
  it('goes on past an entity whose evaluation throws, leaving its change for the next run, which tries it again', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'ann');
    qualify(store, 'bob');
    qualify(store, 'cat');
    const read = store.entity.bind(store);
    // bob's rows cannot be read (an item the code cannot decode), in the page's reads and in his evaluation alike.
    const entity = vi.spyOn(store, 'entity').mockImplementation(async (ref, ...rest) => {
      if (ref.id === 'bob') throw new TypeError('cannot read the item');
      return read(ref, ...rest);
    });

    const failing = await run(store, publisher);
    expect(summary(failing.transitions).sort()).toEqual(['user ann: none -> pql', 'user cat: none -> pql']);
    expect(failing.failed.map((failure) => [failure.ref.id, String(failure.error)])).toEqual([['bob', 'TypeError: cannot read the item']]);
    // Tried again at every run while it throws, the rest of the shard not held up.
    expect((await run(store, publisher)).failed.map((failure) => failure.ref.id)).toEqual(['bob']);

    entity.mockRestore();
    const fixed = await run(store, publisher);
    expect(summary(fixed.transitions)).toEqual(['user bob: none -> pql']);
    expect(fixed.failed).toEqual([]);
    expect(publisher.published.map((event) => event.detail.entity.id).sort()).toEqual(['ann', 'bob', 'cat']);
  });

  it('evaluates changed users before changed accounts, then only the leads due for a sweep', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.join(workspace, 'ann', 'acme');
    store.join(workspace, 'bob', 'acme');
    // A day earlier bob's change moves acme, which the same run evaluates after bob.
    store.track(workspace, 'bob', { event: 'Logged In', timestamp: hoursAgo(27) });
    await run(store, publisher, { now: new Date(now.getTime() - dayMs) });
    expect(store.reads).toEqual(['user bob', 'account acme']);
    expect(store.isMarked(account('acme'))).toBe(false);
    // acme's traits change before ann's events arrive, yet ann must be evaluated first.
    store.setTraits(account('acme'), { employees: 40 });
    await store.mark(account('acme'), [], new Date(hoursAgo(5)));
    store.reads.length = 0;
    qualify(store, 'ann');

    const first = await run(store, publisher);
    expect(store.reads).toEqual(['user ann', 'account acme']);
    // The account saw its member's new tier in the same run.
    expect(summary(first.transitions)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    expect(first.published).toBe(2);

    // Nothing new, no sweep due yet: nothing to read.
    store.reads.length = 0;
    expect((await run(store, publisher)).evaluated).toBe(0);
    expect(store.reads).toEqual([]);

    // Four quiet days later the sweep finds the leads inactive; bob, no lead and quiet, is not read.
    const later = await run(store, publisher, { now: new Date(now.getTime() + 4 * dayMs) });
    expect(store.reads).toEqual(['user ann', 'account acme']);
    expect(summary(later.transitions)).toEqual(['user ann: pql -> none', 'account acme: team -> none']);
  });

  it('publishes after a crash between saving and publishing, with the same key, and notifies nobody twice', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'cat');
    publisher.crashNext = true;
    await expect(run(store, publisher)).rejects.toThrow('simulated crash');
    expect(store.outbox).toHaveLength(1);
    const key = store.outbox[0]!.detail.idempotencyKey;

    const retry = await run(store, publisher);
    expect(retry.transitions).toEqual([]);
    expect(retry.published).toBe(1);
    await run(store, publisher);
    expect(publisher.published.map((event) => event.detail.idempotencyKey)).toEqual([key]);
    expect(store.outbox).toEqual([]);
  });

  it('keeps an event the bus refused for a later run, marked undelivered, and deletes only what was delivered', async () => {
    const store = new InMemoryEvaluationStore();
    qualify(store, 'cat');
    qualify(store, 'dan');
    let refused: string | undefined;
    const refusing: LeadPublisher = {
      async publish(events) {
        refused ??= events[0]!.detail.idempotencyKey;
        return { failed: events.filter((event) => event.detail.idempotencyKey === refused).map((event) => event.detail.idempotencyKey), reasons: ['InternalFailure: try again'] };
      },
    };
    const first = await run(store, refusing);
    expect([first.published, first.unpublished, first.unpublishedReasons]).toEqual([1, [refused], ['InternalFailure: try again']]);
    expect(store.undelivered).toEqual([refused]);
    expect(store.outbox.map((event) => event.detail.idempotencyKey)).toEqual([refused]);

    const publisher = new RecordingPublisher();
    const retry = await run(store, publisher);
    expect([retry.published, retry.unpublished, retry.unpublishedReasons]).toEqual([1, [], []]);
    expect(publisher.published.map((event) => event.detail.idempotencyKey)).toEqual([refused]);
    expect(store.undelivered).toEqual([refused]);
    expect(store.outbox).toEqual([]);
  });

  it('lets only one of two overlapping runs save an entity, counting its events once', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'dan');
    let overlapping: Awaited<ReturnType<typeof run>> | undefined;
    // A second run starts after the first read dan, and saves dan first.
    store.afterRead = async () => {
      overlapping = await run(store, publisher);
    };

    const first = await run(store, publisher);
    expect(overlapping?.evaluated).toBe(1);
    expect(first.evaluated).toBe(0);
    expect(first.transitions).toEqual([]);
    expect(summary(publisher.published)).toEqual(['user dan: none -> pql']);
    expect(store.stateOf(user('dan'))?.lifetime.activity).toBe(2);

    // A late event still counts, once.
    store.track(workspace, 'dan', { event: 'Dashboard Created', timestamp: hoursAgo(30) });
    await run(store, publisher);
    expect(store.stateOf(user('dan'))?.lifetime.activity).toBe(3);
    expect(publisher.published).toHaveLength(1);
  });

  it('leaves an entity a run of a later time saved (evaluate --at ahead; the stream, overlapping a scheduled run), so that its lead events stay in time order', async () => {
    const twoTiers = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
  exports: { event: Data Exported, window: 30d, at_least: 1, points: 50 }
tiers:
  - { name: hot, min_score: 100, route: sales, level: user }
  - { name: pql, min_score: 50, route: sales, level: user }
`);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const daysOn = (days: number) => new Date(now.getTime() + days * dayMs);
    const runAt = (days: number) => run(store, publisher, { ruleset: twoTiers, now: daysOn(days) });
    store.track(workspace, 'ann', { event: 'Data Exported', timestamp: hoursAgo(3) });
    qualify(store, 'ann');
    expect(summary((await runAt(0)).transitions)).toEqual(['user ann: none -> hot']);
    // A pass eight days on: her dashboards have left their window.
    expect(summary((await runAt(8)).transitions)).toEqual(['user ann: hot -> pql']);

    // A dashboard now, judged by a pass at an earlier time than the last: at that time she would be hot again, a lead
    // event dated before the one published. She is left, her change kept for the time she was saved at.
    store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: daysOn(0.5).toISOString() });
    expect(await runAt(1)).toMatchObject({ evaluated: 0, transitions: [], newerStates: 1 });
    expect(store.stateOf(user('ann'))?.lead?.evaluatedAt).toBe(daysOn(8).toISOString());
    expect(store.isMarked(user('ann'))).toBe(true);
    // From that time on, her change is judged.
    expect(await runAt(8.001)).toMatchObject({ evaluated: 1, transitions: [], newerStates: 0 });
    expect(store.isMarked(user('ann'))).toBe(false);
    const times = publisher.published.map((event) => event.detail.evaluatedAt);
    expect(times).toEqual([...times].sort());
  });

  it('re-reads a day that changed while it was evaluated, without counting it twice', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: hoursAgo(2) });
    // An event arrives after the run read eve's marker: the save goes through, the marker stays for the next run.
    store.afterRead = async () => store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: hoursAgo(1) });
    const first = await run(store, publisher);
    expect(summary(first.transitions)).toEqual(['user eve: none -> pql']);
    expect(store.isMarked(user('eve'))).toBe(true);

    const next = await run(store, publisher);
    expect(next).toMatchObject({ evaluated: 1, transitions: [] });
    expect(store.stateOf(user('eve'))?.lifetime.activity).toBe(2);
    expect(store.isMarked(user('eve'))).toBe(false);
  });

  it('reads a changed day\'s stored rollup only when the state saw activity on that day or later', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const asked: string[] = [];
    const read = store.dayRollups.bind(store);
    store.dayRollups = async (ref, days) => {
      asked.push(...days);
      return read(ref, days);
    };
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(0, 9).toISOString() });
    await run(store, publisher, { now: onDay(0, 18) });
    // Three days on, March 1st is written out as a day item; a new day (March 4th) follows the last activity: it can
    // hold no stored rollup with anything to take out of the totals, and is not read.
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(3, 9).toISOString() });
    await run(store, publisher, { now: onDay(3, 18) });
    expect(asked).toEqual([]);
    expect(store.stateOf(user('eve'))?.lifetime.activity).toBe(2);
    // A late event on March 1st: that day's item is read, and taken out before the day is counted again.
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(0, 10).toISOString() });
    await run(store, publisher, { now: onDay(3, 19) });
    expect(asked).toEqual(['2025-03-01']);
    expect(store.stateOf(user('eve'))?.lifetime.activity).toBe(3);
  });

  it("takes the window's days with the rows, reads those before it beside the events, and again when the events move them (an earlier first activity)", async () => {
    const onboarding = loadRules(`
version: 1
signals:
  onboarded: { event: Dashboard Created, since_signup: 30d, at_least: 3, points: 50 }
  recent: { event: Dashboard Created, window: 7d, at_least: 1, points: 10 }
tiers:
  - { name: pql, min_score: 50, route: sales, level: user }
`);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const asked: string[][] = [];
    const read = store.dayRollupsIn.bind(store);
    store.dayRollupsIn = async (entities) => {
      for (const { ranges } of entities) asked.push(ranges.map((range) => `${range.from}..${range.to}`));
      return read(entities);
    };
    const evaluateAt = (time: Date) => run(store, publisher, { ruleset: onboarding, now: time });
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(10, 9).toISOString() });
    await evaluateAt(onDay(10, 18));
    // The days in reach (from the signup on March 11th, within the 7-day window from March 5th) came with the rows.
    expect(asked).toEqual([]);
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(11, 9).toISOString() });
    await evaluateAt(onDay(11, 18));
    expect(asked).toEqual([]);
    // A late event on March 3rd moves the signup, so the span, before the window (March 6th): those days are read.
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(2, 9).toISOString() });
    const { transitions } = await evaluateAt(onDay(11, 19));
    expect(asked).toEqual([['2025-03-03..2025-03-05']]);
    expect(summary(transitions)).toEqual(['user eve: none -> pql']);
    // Weeks later the span lies before the window: the state places it, and it is read beside the events, once; the
    // state keeps what the span counts from then on (SpanDays), and the next evaluations read nothing of it.
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(40, 9).toISOString() });
    await evaluateAt(onDay(40, 18));
    expect(asked.slice(1)).toEqual([['2025-03-03..2025-04-01']]);
    expect(store.stateOf(user('eve'))?.spanDays).toEqual({
      from: '2025-03-03',
      through: '2025-04-10',
      days: ['2025-03-03', '2025-03-11', '2025-03-12'].map((day) => ({ day, activity: 1, names: {}, measures: { onboarded: expect.objectContaining({ count: 1 }) } })),
    });
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(41, 9).toISOString() });
    await evaluateAt(onDay(41, 18));
    // A late event in the span is counted with its day, which the evaluation recomputes from its events.
    store.track(workspace, 'eve', { event: 'Dashboard Created', timestamp: onDay(20, 9).toISOString() });
    await evaluateAt(onDay(41, 19));
    expect(asked.slice(2)).toEqual([]);
    expect(store.stateOf(user('eve'))?.spanDays?.days.map((rollup) => [rollup.day, rollup.measures['onboarded']?.count])).toEqual([
      ['2025-03-03', 1],
      ['2025-03-11', 1],
      ['2025-03-12', 1],
      ['2025-03-21', 1],
    ]);
  });

  it("sweeps an account's members due by now before judging it, so it does not move twice at one moment", async () => {
    const store = await bestMemberSwept();
    // acme had bob's state as the run saved it, and ann's as its sweep saved it: it read ann's once, to find her due.
    expect(store.memberStatesRead).toEqual(['ann']);
  });

  it("judges an account on the states the run saved of its members, reading only the others'", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.join(workspace, 'ann', 'acme');
    store.join(workspace, 'bob', 'acme');
    qualify(store, 'ann');
    const result = await run(store, publisher);
    expect(summary(result.transitions)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    expect(store.memberStatesRead).toEqual(['bob']);
  });

  it("past the 10,000 states a run keeps, an account reads again the members it swept, as the run could not keep their states", async () => {
    // With 10,000 more users of another account changed on day 1: the run keeps the states of bob and 9,999 of them,
    // no more, so not the state ann's sweep saves. Judged on ann's state as read before her sweep, acme would leave its tier.
    const store = await bestMemberSwept((store) => {
      for (let n = 0; n < 10_000; n++) {
        const id = `user${String(n).padStart(5, '0')}`;
        store.join(workspace, id, 'lots');
        store.track(workspace, id, { event: 'Report Run', timestamp: onDay(1, 8).toISOString() });
      }
    });
    expect(store.memberStatesRead.filter((id) => id === 'ann' || id === 'bob')).toEqual(['ann', 'ann']);
    expect(store.memberStatesRead.filter((id) => id.startsWith('user'))).toEqual(['user09999']);
  }, 60_000);

  it("judges an account after every changed member of the run, not at the end of the page of the first one", async () => {
    const exports = accountExports(4);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const at = (day: number) => onDay(day, 1.25).toISOString();
    // Pages of one entity: ann's page comes before bob's, as members spread over a busy shard's pages of 100.
    const evaluateAt = (day: number) => evaluateUntilDone(store, publisher, { ruleset: exports, now: endOfDay(day), pageSize: 1 });
    for (const id of ['ann', 'bob']) store.join(workspace, id, 'acme');
    for (const day of [0, 1, 2]) {
      store.track(workspace, 'bob', { event: 'Data Exported', timestamp: at(day) });
      if (day === 2) store.track(workspace, 'ann', { event: 'Data Exported', timestamp: at(day) });
      await evaluateAt(day);
    }
    expect(summary(publisher.published)).toEqual(['account acme: none -> team']);
    // Day 3: bob's first export leaves the window and his fourth comes in; ann only looks at a report. acme still has
    // four exports in three days: judged on ann's page, before bob's, it would leave its tier and re-enter it at once.
    store.track(workspace, 'ann', { event: 'Report Run', timestamp: at(3) });
    store.track(workspace, 'bob', { event: 'Data Exported', timestamp: at(3) });
    publisher.published.length = 0;
    await evaluateAt(3);
    expect(summary(publisher.published)).toEqual([]);
    expect(store.stateOf(account('acme'))?.lead?.tier).toBe('team');
  });

  it("reads an account's members' days only for its lead event when no account signal counts their events by day", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    /** The runs that read bob's days: he is quiet, so only his account reads them. */
    let bobDaysRead = 0;
    const read = store.dayRollupsIn.bind(store);
    store.dayRollupsIn = async (entities) => {
      if (entities.some(({ ref }) => ref.id === 'bob')) bobDaysRead++;
      return read(entities);
    };
    for (const id of ['ann', 'bob']) store.join(workspace, id, 'acme');
    store.track(workspace, 'bob', { event: 'Report Run', timestamp: hoursAgo(30) });
    await run(store, publisher, { now: new Date(Date.parse(hoursAgo(29))) });
    const bobsOwn = bobDaysRead;

    // ann qualifies: acme's lead event names its members' top events, bob's too.
    qualify(store, 'ann');
    await run(store, publisher);
    expect(summary(publisher.published)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    expect(publisher.published[1]!.detail.context.topEvents).toEqual([
      { name: 'Dashboard Created', count: 2 },
      { name: 'Report Run', count: 1 },
    ]);
    expect(bobDaysRead - bobsOwn).toBe(1);
    // Judged again with no transition: nothing of its members' days is read.
    await store.mark(account('acme'), [], now);
    await run(store, publisher);
    expect(store.saves.at(-1)).toBe('account acme');
    expect(bobDaysRead - bobsOwn).toBe(1);
  });

  it('judges an account its members move within accountIntervalMs of its last evaluation once, at the end of it', async () => {
    const exports = accountExports(3);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const minutes = (count: number) => new Date(onDay(0, 9).getTime() + count * 60_000);
    const runAt = async (minute: number) => {
      store.saves.length = 0;
      publisher.published.length = 0;
      await evaluateUntilDone(store, publisher, { ruleset: exports, now: minutes(minute), accountIntervalMs: 10 * 60_000 });
      return { saves: [...store.saves], published: summary(publisher.published) };
    };
    for (const id of ['ann', 'bob']) store.join(workspace, id, 'acme');
    const exported = (id: string, minute: number) => store.track(workspace, id, { event: 'Data Exported', timestamp: minutes(minute).toISOString() });

    // Its first evaluation, then moves 2 and 4 minutes later: the third export would qualify it, but it waits.
    exported('ann', 0);
    expect(await runAt(0)).toEqual({ saves: ['user ann', 'account acme'], published: [] });
    exported('bob', 2);
    expect(await runAt(2)).toEqual({ saves: ['user bob'], published: [] });
    exported('ann', 4);
    expect(await runAt(4)).toEqual({ saves: ['user ann'], published: [] });
    expect(await runAt(9)).toEqual({ saves: [], published: [] });
    // Ten minutes after its last evaluation, its sweep judges both moves at once.
    expect(await runAt(10)).toEqual({ saves: ['account acme'], published: ['account acme: none -> team'] });
    // A quiet spell longer than the interval: the next move is judged at once.
    exported('bob', 25);
    expect(await runAt(25)).toEqual({ saves: ['user bob', 'account acme'], published: [] });
  });

  it('keeps the new events of a user evaluated within userIntervalMs for later runs, unread, and judges them together at the end of it', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const eventReads = vi.spyOn(store, 'events');
    const minutes = (count: number) => new Date(onDay(0, 9).getTime() + count * 60_000);
    const runAt = async (minute: number, userIntervalMs = 5 * 60_000) => {
      store.saves.length = 0;
      publisher.published.length = 0;
      eventReads.mockClear();
      store.reads.length = 0;
      await evaluateUntilDone(store, publisher, { now: minutes(minute), userIntervalMs });
      return { saves: [...store.saves], published: summary(publisher.published), eventReads: eventReads.mock.calls.length, rowReads: store.reads.length };
    };
    const dashboard = (minute: number) => store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: minutes(minute).toISOString() });

    // Her first evaluation is at once; a dashboard a minute later would qualify her, but she waits, her events unread:
    // her rows tell when her interval ends, which her kept change carries.
    dashboard(0);
    expect(await runAt(0)).toMatchObject({ saves: ['user ann'], published: [] });
    dashboard(1);
    expect(await runAt(2)).toEqual({ saves: [], published: [], eventReads: 0, rowReads: 1 });
    expect(store.isMarked(user('ann'))).toBe(true);
    // Still a change not evaluated: the evaluator's lag counts it.
    expect(await store.oldestChange('0')).toBeDefined();
    // The next runs leave it by its mark, reading nothing of hers, even with a further change.
    dashboard(3);
    expect(await runAt(3)).toEqual({ saves: [], published: [], eventReads: 0, rowReads: 0 });
    expect(await runAt(4)).toEqual({ saves: [], published: [], eventReads: 0, rowReads: 0 });
    // Five minutes after her last evaluation, what came meanwhile is judged at once.
    expect(await runAt(5)).toMatchObject({ saves: ['user ann'], published: ['user ann: none -> pql'] });
    expect(store.isMarked(user('ann'))).toBe(false);
    // After a quiet spell longer than the interval, her next change is judged at once.
    dashboard(20);
    expect(await runAt(20)).toMatchObject({ saves: ['user ann'] });
    dashboard(21);
    expect(await runAt(22)).toMatchObject({ saves: [], rowReads: 1 });
    // The interval lowered to a minute since: her mark's end, further off than that, is not trusted; her rows are read.
    expect(await runAt(23, 60_000)).toMatchObject({ saves: ['user ann'] });
    // With no interval, every change is judged at once.
    dashboard(24);
    expect(await runAt(24, 0)).toMatchObject({ saves: ['user ann'] });
  });

  it("evaluates a user with its claimed visitor's new events in the same run, before the user's sweep", async () => {
    const reports = loadRules(`
version: 1
signals:
  reported: { event: Report Run, window: 1d, points: 10 }
tiers:
  - { name: warm, min_score: 10, route: nurture, level: user }
`);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const at = (day: number) => onDay(day, 1.25).toISOString();
    const evaluateAt = (day: number) => evaluateUntilDone(store, publisher, { ruleset: reports, now: endOfDay(day) });
    // Day 0: ann runs a report on her laptop, claiming its visitor. Day 1: she runs one logged out, as that visitor.
    store.track(workspace, 'ann', { event: 'Report Run', timestamp: at(0), anonymousId: 'laptop' });
    await evaluateAt(0);
    store.trackVisitor(workspace, 'laptop', { event: 'Report Run', timestamp: at(1) });
    publisher.published.length = 0;
    await evaluateAt(1);
    // Her day-0 report leaves the window at the end of day 1 (a sweep), but her day-1 one keeps her warm: no drop
    // and return at one moment.
    expect(summary(publisher.published)).toEqual([]);
    expect(store.stateOf(user('ann'))?.lead?.tier).toBe('warm');
  });

  it("reads every event of a user that took its visitor back, whichever run evaluates it: the visitor's events of meanwhile were another user's", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const at = (day: number, hour: number) => onDay(day, hour).toISOString();
    // Day 1: bea claims the laptop's visitor. Day 2: ann's late event of the same moment takes it (the smaller
    // messageId), and the visitor's late event of day 0 goes to ann.
    store.track(workspace, 'bea', { event: 'Report Run', timestamp: at(1, 2), anonymousId: 'laptop', messageId: 'b' });
    await evaluateUntilDone(store, publisher, { now: endOfDay(1) });
    store.track(workspace, 'ann', { event: 'Report Run', timestamp: at(1, 2), anonymousId: 'laptop', messageId: 'a' });
    store.trackVisitor(workspace, 'laptop', { event: 'Report Run', timestamp: at(0, 5), messageId: 'v' });
    await run(store, publisher, { now: endOfDay(2) });
    expect(store.stateOf(user('ann'))?.firstSeen).toBe(at(0, 5));
    // Day 3: bea's late event of day 1, earlier still, takes the laptop back; the run's time is up once her rows and
    // events are read (its prepare), before her evaluation, which the next run makes.
    store.track(workspace, 'bea', { event: 'Report Run', timestamp: at(1, 1), anonymousId: 'laptop', messageId: 'c' });
    let checks = 0;
    const cut = await run(store, publisher, { now: endOfDay(3), concurrency: 1, outOfTime: () => ++checks > 1 });
    expect(cut).toMatchObject({ evaluated: 0, incomplete: true });
    await evaluateUntilDone(store, publisher, { now: new Date(endOfDay(3).getTime() + 60_000) });
    expect(store.stateOf(user('bea'))?.firstSeen).toBe(at(0, 5));
  });

  it("reads each identity's whole history once when a claim merges one more: a new user's first evaluation, its visitor claimed, reads its own once", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: hoursAgo(2), anonymousId: 'laptop' });
    store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: hoursAgo(1), anonymousId: 'laptop' });
    const read = store.events.bind(store);
    const reads: string[] = [];
    store.events = (ref, days, lease) => {
      reads.push(`${ref.type} ${ref.id} ${days === 'all' ? 'all' : days.join(',')}`);
      return read(ref, days, lease);
    };
    await run(store, publisher);
    // Her changed day ahead of the page's evaluations (prepare); every day for her first evaluation (a rebuild), whose
    // events claim the laptop; then the laptop's, and not hers again.
    expect(reads).toEqual(['user ann 2025-03-10', 'user ann all', 'visitor laptop all']);
    expect(summary(publisher.published)).toEqual(['user ann: none -> pql']);
  });

  it("takes a claimed visitor's new days into its user's evaluation when both are on the page, rather than evaluating the user again next run", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.track(workspace, 'ann', { event: 'Report Run', timestamp: onDay(0, 1).toISOString(), anonymousId: 'laptop' });
    await evaluateUntilDone(store, publisher, { now: endOfDay(0) });
    // Day 1: ann logged in, and on her laptop logged out.
    store.track(workspace, 'ann', { event: 'Report Run', timestamp: onDay(1, 1).toISOString() });
    store.trackVisitor(workspace, 'laptop', { event: 'Dashboard Created', timestamp: onDay(1, 2).toISOString() });
    const first = await run(store, publisher, { now: endOfDay(1) });
    expect(first.evaluated).toBe(1);
    expect(store.isMarked(user('ann'))).toBe(false);
    expect(store.stateOf(user('ann'))?.lastSeen).toBe(onDay(1, 2).toISOString());
    expect((await run(store, publisher, { now: endOfDay(1) })).evaluated).toBe(0);
  });

  it('stores the claims of a page before evaluating its users: a later claim on a visitor never counts it first', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    // A shared laptop's visitor created two dashboards; zoe then amy logged in on it, both within one run.
    store.trackVisitor(workspace, 'laptop', { event: 'Dashboard Created', timestamp: hoursAgo(4) });
    store.trackVisitor(workspace, 'laptop', { event: 'Dashboard Created', timestamp: hoursAgo(3.5) });
    store.track(workspace, 'amy', { event: 'Report Run', timestamp: hoursAgo(2), anonymousId: 'laptop' });
    store.track(workspace, 'zoe', { event: 'Report Run', timestamp: hoursAgo(3), anonymousId: 'laptop' });
    // One at a time, amy (listed first) before zoe, whose claim comes first.
    await evaluateUntilDone(store, publisher, { concurrency: 1 });
    expect(summary(publisher.published)).toEqual(['user zoe: none -> pql']);
  });

  it('stores the claims of a page before evaluating its users: an aliased user is not judged on its own in the run that reads the alias', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'cal');
    // dan is who cal became (an alias), in the same run as cal's dashboards.
    store.track(workspace, 'dan', { type: 'alias', timestamp: hoursAgo(0.5), previousId: 'cal' });
    await evaluateUntilDone(store, publisher, { concurrency: 1 });
    expect(summary(publisher.published)).toEqual(['user dan: none -> pql']);
  });

  it('has a lead the run judged on an earlier page than the claim on it leave its tier at the next run, not keep it for good', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'cal');
    await evaluateUntilDone(store, publisher, {});
    // cal does something more, and becomes dan (an alias) in the same run; on pages of one, cal's page comes first.
    store.track(workspace, 'cal', { event: 'Dashboard Created', timestamp: hoursAgo(0.5) });
    store.track(workspace, 'dan', { type: 'alias', timestamp: hoursAgo(0.4), previousId: 'cal' });
    await evaluateUntilDone(store, publisher, { pageSize: 1 });
    expect(summary(publisher.published)).toEqual(['user cal: none -> pql', 'user dan: none -> pql', 'user cal: pql -> none']);
    expect(publisher.published.at(-1)!.detail.reasons).toEqual(['merged into user dan: its events count for that user now']);
    // Its state names the user it merged into: rule health judges the two as one person.
    expect((await store.entity({ workspace, type: 'user', id: 'cal' })).state?.lead?.mergedInto).toBe('dan');
    expect((await store.entity({ workspace, type: 'user', id: 'dan' })).state?.lead?.mergedInto).toBeUndefined();
  });

  it('names the user on the state of a non-lead merged after the run judged it, at the next change of its own', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.track(workspace, 'cal', { event: 'Report Run', timestamp: hoursAgo(3) });
    await evaluateUntilDone(store, publisher, {});
    // cal does something, and becomes dan (an alias) in the same run; on pages of one, cal's page comes first.
    store.track(workspace, 'cal', { event: 'Report Run', timestamp: hoursAgo(0.5) });
    store.track(workspace, 'dan', { type: 'alias', timestamp: hoursAgo(0.4), previousId: 'cal' });
    await evaluateUntilDone(store, publisher, { pageSize: 1 });
    expect(publisher.published).toEqual([]);
    expect((await store.entity({ workspace, type: 'user', id: 'cal' })).state?.lead?.mergedInto).toBe('dan');
  });

  it("keeps the changes of a run's pages whose accounts time did not let it judge", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    await run(store, publisher);
    store.join(workspace, 'ann', 'acme');
    store.join(workspace, 'bob', 'acme');
    qualify(store, 'ann');
    qualify(store, 'bob');
    // Time runs out after both users, on their pages of one, before acme is judged.
    const stopped = await run(store, publisher, { pageSize: 1, outOfTime: () => store.saves.length >= 2 });
    expect(stopped).toMatchObject({ evaluated: 2, incomplete: true });
    expect(summary(publisher.published).sort()).toEqual(['user ann: none -> pql', 'user bob: none -> pql']);
    expect(store.isMarked(account('acme'))).toBe(true);
    const rest = await run(store, publisher, { pageSize: 1 });
    expect(summary(rest.transitions)).toEqual(['account acme: none -> team']);
    expect(store.isMarked(account('acme'))).toBe(false);
  });

  it('stops taking entities at the deadline, reports the run incomplete, and leaves the rest marked', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    // A first run records that the shard evaluated everyone under these rules: from then on only changes are candidates.
    await run(store, publisher);
    for (const id of ['fay', 'gus', 'hal']) qualify(store, id);

    // One at a time, so that the deadline falls between two of them.
    const stopped = await run(store, publisher, { concurrency: 1, outOfTime: () => store.saves.length >= 2 });
    expect(stopped).toMatchObject({ evaluated: 2, incomplete: true });
    expect(summary(publisher.published)).toEqual(['user fay: none -> pql', 'user gus: none -> pql']);
    expect(store.isMarked(user('hal'))).toBe(true);

    // A run whose deadline has passed starts nothing, and reports its lag: the age of the oldest change left.
    const late = await runEvaluator({ store, publisher, ruleset, shards: ['0'], now, deadline: 0 });
    expect(late).toMatchObject({ evaluated: 0, incompleteShards: ['0'], lagSeconds: 2 * 3600 });

    const rest = await run(store, publisher);
    expect(rest).toMatchObject({ evaluated: 1, incomplete: false });
    expect(summary(rest.transitions)).toEqual(['user hal: none -> pql']);
    expect(store.isMarked(user('hal'))).toBe(false);
  });

  it("routes by the traits of a user's accounts in account id order, whatever order they were joined in", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.join(workspace, 'dan', 'zeta');
    store.join(workspace, 'dan', 'acme');
    store.setTraits(account('zeta'), { region: 'us', owner_email: 'zed@example.com' });
    store.setTraits(account('acme'), { region: 'emea', owner_email: 'ann@example.com' });
    qualify(store, 'dan');
    const { transitions } = await run(store, publisher, { ruleset: routed });
    expect(transitions.map((event) => [event.detail.entity.id, event.detail.route, event.detail.owner])).toEqual([['dan', 'sales-emea', 'ann@example.com']]);
  });

  it("judges an account's members again when its traits change, not when a run left the account after a member moved it", async () => {
    const routedTeams = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
  team_lead: { level: account, best_member_tier: pql, points: 50 }
tiers:
  - { name: pql, min_score: 50, level: user, route: { by: account.region, map: { emea: sales-emea, us: sales-us }, default: sales } }
  - { name: team, min_score: 50, route: sales, level: account }
`);
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.setTraits(account('acme'), { region: 'emea' });
    for (const id of ['ann', 'bob']) {
      store.join(workspace, id, 'acme');
      qualify(store, id);
    }
    await run(store, publisher, { ruleset: routedTeams });
    const savedUsers = () => store.saves.filter((key) => key.startsWith('user'));
    store.saves.length = 0;

    // A group call rewrote the profile (change capture lists it with traitsChanged): both members move to the new route.
    store.setTraits(account('acme'), { region: 'us' });
    await store.keep([{ ref: account('acme'), days: [], since: now.toISOString(), traitsChanged: true }]);
    await run(store, publisher, { ruleset: routedTeams, now: new Date(now.getTime() + 60_000) });
    expect(['ann', 'bob'].map((id) => store.stateOf(user(id))?.lead?.route)).toEqual(['sales-us', 'sales-us']);
    expect(savedUsers().sort()).toEqual(['user ann', 'user bob']);
    store.saves.length = 0;

    // An earlier run ran out of time before judging the account its member ann moved: its traits are as they were.
    await store.keep([{ ref: account('acme'), days: ['2025-03-10'], since: now.toISOString() }]);
    await run(store, publisher, { ruleset: routedTeams, now: new Date(now.getTime() + 120_000) });
    expect(store.saves).toEqual(['account acme']);
  });

  it("reads the traits of a page's accounts once, together, for the users that share them", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const asked: string[][] = [];
    const read = store.accountTraits.bind(store);
    store.accountTraits = async (workspace, ids) => {
      asked.push([...ids]);
      return read(workspace, ids);
    };
    for (const id of ['ann', 'bob', 'cat']) {
      store.join(workspace, id, 'acme');
      qualify(store, id);
    }
    store.join(workspace, 'cat', 'zeta');
    store.setTraits(account('acme'), { region: 'emea' });
    const { transitions } = await run(store, publisher, { ruleset: routed });
    expect(transitions.map((event) => [event.detail.entity.id, event.detail.route]).sort()).toEqual([
      ['ann', 'sales-emea'],
      ['bob', 'sales-emea'],
      ['cat', 'sales-emea'],
    ]);
    // Each account once, in one read before the page's evaluations; the next run reads them again.
    expect(asked.map((ids) => [...ids].sort())).toEqual([['acme', 'zeta']]);
    qualify(store, 'ann');
    await run(store, publisher, { ruleset: routed, now: new Date(now.getTime() + 60_000) });
    expect(asked.map((ids) => [...ids].sort())).toEqual([['acme', 'zeta'], ['acme']]);
  });
});

describe('the evaluation of fresh changes (the table stream)', () => {
  const fresh = (store: InMemoryEvaluationStore, publisher: LeadPublisher, options: { outOfTime?: () => boolean } = {}) =>
    evaluateChanges(store, publisher, { marks: store.takeChanges(), ruleset, now, outOfTime: options.outOfTime ?? (() => false) });

  it('evaluates the changed users, then the accounts they moved, and publishes their transitions at once', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    store.join(workspace, 'ann', 'acme');
    qualify(store, 'ann');

    const result = await fresh(store, publisher);
    expect(store.reads).toEqual(['user ann', 'account acme']);
    expect(summary(result.transitions)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    expect(summary(publisher.published)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    expect(store.outbox).toEqual([]);
    expect(result.left).toBe(0);
    // Nothing kept for the scheduled run, whose first pass (everyone, under a ruleset new to it) changes nothing.
    expect(store.isMarked(user('ann'))).toBe(false);
    expect((await run(store, publisher)).transitions).toEqual([]);
  });

  it("leaves an account its members move again within accountIntervalMs to its sweep, which a scheduled run takes", async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
    const options = (minutes: number) => ({ ruleset, now: later(minutes), outOfTime: () => false, accountIntervalMs: 10 * 60_000 });
    for (const id of ['ann', 'bob']) store.join(workspace, id, 'acme');
    qualify(store, 'ann');
    await evaluateChanges(store, publisher, { marks: store.takeChanges(), ...options(0) });
    expect(summary(publisher.published)).toEqual(['user ann: none -> pql', 'account acme: none -> team']);
    // The scheduled run's first pass under these rules (everyone), at the same minute.
    await run(store, publisher, options(0));

    qualify(store, 'bob');
    store.saves.length = 0;
    const result = await evaluateChanges(store, publisher, { marks: store.takeChanges(), ...options(2) });
    expect(store.saves).toEqual(['user bob']);
    expect(result.left).toBe(0);
    expect(store.isMarked(account('acme'))).toBe(false);
    store.saves.length = 0;
    await run(store, publisher, options(9));
    expect(store.saves).toEqual([]);
    await run(store, publisher, options(10));
    expect(store.saves).toEqual(['account acme']);
  });

  it('keeps the changes of a user evaluated within userIntervalMs for the scheduled run, which judges them at the end of it', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
    const options = (minutes: number) => ({ ruleset, now: later(minutes), outOfTime: () => false, userIntervalMs: 5 * 60_000 });
    store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: hoursAgo(2) });
    expect(await evaluateChanges(store, publisher, { marks: store.takeChanges(), ...options(0) })).toMatchObject({ evaluated: 1, left: 0 });
    await run(store, publisher, options(0));

    store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: later(1).toISOString() });
    const eventReads = vi.spyOn(store, 'events');
    expect(await evaluateChanges(store, publisher, { marks: store.takeChanges(), ...options(1) })).toMatchObject({ evaluated: 0, left: 1 });
    expect(eventReads).not.toHaveBeenCalled();
    expect(store.isMarked(user('ann'))).toBe(true);
    expect((await run(store, publisher, options(4))).evaluated).toBe(0);
    expect(summary((await run(store, publisher, options(5))).transitions)).toEqual(['user ann: none -> pql']);
  });

  it('remembers between stream batches till when a user it saved or left still waits, and reads nothing of hers until then', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
    const waits = new Map<string, string>();
    const batch = async (minutes: number, kept = waits) => {
      store.reads.length = 0;
      const result = await evaluateChanges(store, publisher, { marks: store.takeChanges(), ruleset, now: later(minutes), outOfTime: () => false, userIntervalMs: 5 * 60_000, waits: kept });
      return { evaluated: result.evaluated, left: result.left, leftUnread: result.leftUnread, rowReads: store.reads.length };
    };
    const dashboard = (minutes: number) => store.track(workspace, 'ann', { event: 'Dashboard Created', timestamp: later(minutes).toISOString() });
    // Saved now, she waits till minute 5.
    dashboard(0);
    expect(await batch(0)).toEqual({ evaluated: 1, left: 0, leftUnread: 0, rowReads: 1 });
    expect([...waits.values()]).toEqual([later(5).toISOString()]);
    // The next batches leave her new changes unread; without what was remembered, her rows tell it.
    dashboard(1);
    expect(await batch(1)).toEqual({ evaluated: 0, left: 1, leftUnread: 1, rowReads: 0 });
    const forgotten = new Map<string, string>();
    dashboard(2);
    expect(await batch(2, forgotten)).toEqual({ evaluated: 0, left: 1, leftUnread: 0, rowReads: 1 });
    // What a batch leaves to wait is remembered too: the end her rows gave.
    expect([...forgotten.values()]).toEqual([later(5).toISOString()]);
    dashboard(3);
    expect(await batch(3, forgotten)).toEqual({ evaluated: 0, left: 1, leftUnread: 1, rowReads: 0 });
    // Once her wait is over, it is forgotten, and what came meanwhile is judged.
    dashboard(5.5);
    expect(await batch(5.5)).toMatchObject({ evaluated: 1, left: 0 });
    expect([...waits.values()]).toEqual([later(10.5).toISOString()]);
  });

  it('is not undone by a scheduled run that began before it and reads the entity after it saved', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
    qualify(store, 'ann');
    // Her change is listed for the scheduled run, and comes off the stream too.
    const marks = store.takeChanges();
    await store.keep(marks);
    await evaluateChanges(store, publisher, { marks, ruleset, now: later(1), outOfTime: () => false });
    expect(summary(publisher.published)).toEqual(['user ann: none -> pql']);

    // The scheduled run of minute 0, still going, reads her now: she is left for a later run, her state as saved.
    expect(await run(store, publisher, { now: later(0) })).toMatchObject({ evaluated: 0, transitions: [], newerStates: 1 });
    expect(store.stateOf(user('ann'))?.lead?.evaluatedAt).toBe(later(1).toISOString());
    expect(store.isMarked(user('ann'))).toBe(true);
    expect(await run(store, publisher, { now: later(2) })).toMatchObject({ evaluated: 1, transitions: [], newerStates: 0 });
    expect(store.stateOf(user('ann'))?.lead?.evaluatedAt).toBe(later(2).toISOString());
  });

  it('keeps what it could not evaluate for the scheduled run', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'bea');

    const result = await fresh(store, publisher, { outOfTime: () => true });
    expect(result).toMatchObject({ evaluated: 0, left: 1 });
    expect(store.isMarked(user('bea'))).toBe(true);
    expect(summary((await run(store, publisher)).transitions)).toEqual(['user bea: none -> pql']);
  });

  it('leaves a transition it could not publish in the outbox, which the scheduled run publishes with the same key', async () => {
    const store = new InMemoryEvaluationStore();
    const publisher = new RecordingPublisher();
    qualify(store, 'cy');
    publisher.crashNext = true;
    await expect(fresh(store, publisher)).rejects.toThrow('simulated crash');
    expect(store.outbox).toHaveLength(1);
    const key = store.outbox[0]!.detail.idempotencyKey;

    // A retried batch evaluates cy again: no second transition.
    qualify(store, 'cy');
    store.takeChanges();
    await run(store, publisher);
    expect(publisher.published.map((event) => event.detail.idempotencyKey)).toEqual([key]);
    expect(store.outbox).toEqual([]);
  });
});

describe('shardsCoveredBy', () => {
  it('is the shard alone while the count has never been higher', () => {
    expect(shardsCoveredBy(0, 4, 4)).toEqual(['0']);
    expect(shardsCoveredBy(3, 4, 2)).toEqual(['3']);
  });

  it('adds the shards of a higher count that no invocation of today\'s count has, each to exactly one of them, its own shard first', () => {
    expect(shardsCoveredBy(2, 4, 8)).toEqual(['2', '6']);
    expect(shardsCoveredBy(1, 2, 7)).toEqual(['1', '3', '5']);
    const covered = [0, 1, 2].flatMap((shard) => shardsCoveredBy(shard, 3, 16));
    expect(covered.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, shard) => shard));
  });
});

describe("an account's new traits", () => {
  const fit = loadRules(`
version: 1
signals:
  big: { trait: employees, of: account, is: { gte: 50 }, points: 10 }
  pro: { trait: plan, is: pro, points: 5 }
tiers:
  - { name: warm, min_score: 10, route: nurture }
`);
  const byRegion = loadRules(`
version: 1
signals:
  active: { event: Report Run, points: 10 }
tiers:
  - { name: warm, min_score: 10, route: { by: account.region, map: { emea: sales-emea }, default: sales } }
`);
  // What of a member's lead state the check reads: its tier and matched signals.
  const lead = (tier: string | null, matched: string[]) => ({ tier, matched }) as Partial<LeadState> as LeadState;

  it('move a member whose signal on its accounts would turn, either way', () => {
    expect(accountTraitsMove(fit, { employees: 300 }, lead(null, []))).toBe(true);
    expect(accountTraitsMove(fit, { employees: 20 }, lead('warm', ['big']))).toBe(true);
  });

  it('leave alone a member whose signals hold as they were, and one never judged', () => {
    expect(accountTraitsMove(fit, { employees: 320 }, lead('warm', ['big', 'pro']))).toBe(false);
    expect(accountTraitsMove(fit, { employees: 20 }, lead(null, ['pro']))).toBe(false);
    expect(accountTraitsMove(fit, { employees: 300 }, undefined)).toBe(false);
  });

  it("move a lead whose route comes from its accounts' traits, not a member out of the tiers", () => {
    expect(accountTraitsMove(byRegion, { region: 'emea' }, lead('warm', ['active']))).toBe(true);
    expect(accountTraitsMove(byRegion, { region: 'emea' }, lead(null, []))).toBe(false);
  });
});

describe('an identity judged as another, or no longer at all', () => {
  const workspace = 'ws';
  const firstDay = '2025-03-03';
  /** The sweep time of an entity no sweep looks at. */
  const never = '9999-12-31T00:00:00.000Z';
  const at = (day: number, hour: number) => `${addDays(firstDay, day)}T${String(hour).padStart(2, '0')}:15:00.000Z`;
  const pricingRules = (anonymousLeads: boolean) =>
    JSON.stringify({
      version: 1,
      signals: { pricing: { event: 'Pricing Viewed', window: '30d', at_least: 3, points: 40 } },
      tiers: [{ name: 'PQL', min_score: 40, route: 'sales' }],
      ...(anonymousLeads ? { identity: { anonymous_leads: true } } : {}),
    });

  it('takes a visitor lead no one claimed out of its tier once new rules judge no visitors, notifying it, and sweeps it no more', async () => {
    const on = loadRules(pricingRules(true), 'anonymous leads on');
    const off = loadRules(pricingRules(false), 'anonymous leads off');
    const store = new InMemoryEvaluationStore({ calendar: on.calendar });
    const publisher = new RecordingPublisher();
    const visitor: EntityRef = { workspace, type: 'visitor', id: 'x' };
    for (const [id, hour] of [['p1', 9], ['p2', 10], ['p3', 11]] as const) store.trackVisitor(workspace, 'x', { event: 'Pricing Viewed', timestamp: at(0, hour), messageId: id });
    await evaluateShard(store, publisher, { shard: '0', ruleset: on, now: new Date(on.calendar.endOf(firstDay)), outOfTime: () => false });
    expect(store.stateOf(visitor)?.lead?.tier).toBe('PQL');

    const rerun = await evaluateShard(store, publisher, { shard: '0', ruleset: off, now: new Date(off.calendar.endOf(addDays(firstDay, 1))), outOfTime: () => false });
    expect(rerun.evaluated).toBe(1);
    expect(store.stateOf(visitor)?.lead?.tier).toBeNull();
    expect(publisher.published.map((event) => [event.detailType, event.detail.entity.id, event.detail.reasons])).toEqual([
      ['Lead Qualified', 'x', expect.any(Array)],
      ['Lead Disqualified', 'x', ['an anonymous visitor no one claimed: the rules judge no visitors as leads (identity.anonymous_leads)']],
    ]);
    expect(store.sweepDueOf(visitor)).toBe(never);
  });

  it('reads a user merged into another no more once the sweep it waited for comes due', async () => {
    const ruleset = loadRules(
      JSON.stringify({ version: 1, signals: { pricing: { event: 'Pricing Viewed', points: 10 }, dormant: { inactive_for: '3d', points: 40 } }, tiers: [{ name: 'PQL', min_score: 50, route: 'sales' }] }),
      'sweep rules',
    );
    const store = new InMemoryEvaluationStore({ calendar: ruleset.calendar });
    const publisher = new RecordingPublisher();
    const run = (day: number) => evaluateShard(store, publisher, { shard: '0', ruleset, now: new Date(ruleset.calendar.endOf(addDays(firstDay, day))), outOfTime: () => false });
    store.track(workspace, 'a', { event: 'Pricing Viewed', timestamp: at(0, 9), messageId: 'pa' });
    await run(0);
    // No tier, but a sweep ahead: inactivity gives points in three days.
    expect(store.sweepDueOf({ workspace, type: 'user', id: 'a' })).toBe('2025-03-06T09:15:00.000Z');
    // Aliased into b: judged as b from now on, it is saved once more, to be swept no more.
    store.track(workspace, 'b', { type: 'alias', timestamp: at(1, 9), messageId: 'al', previousId: 'a' } as never);
    await run(1);
    expect(store.sweepDueOf({ workspace, type: 'user', id: 'a' })).toBe(never);
    store.reads.length = 0;
    for (let day = 4; day < 10; day++) await run(day);
    expect(store.reads.filter((read) => read === 'user a')).toEqual([]);
    // Never a lead, it had no tier to leave: its user's inactivity qualifies b.
    expect(publisher.published.map((event) => [event.detailType, event.detail.entity.id])).toEqual([['Lead Qualified', 'b']]);
  });
});

