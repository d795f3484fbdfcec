import { describe, expect, it } from 'vitest';
import { forEachConcurrently } from '../../functions/core/concurrency';
import { utcCalendar } from '../../functions/core/days';
import { closeDays, maxStateBytes, rangesInReach, withinStateBound, withOpenDays, type StoredEntityState } from '../../functions/core/facts';
import { loadRules } from '../../functions/core/rules/load';
import { rollupDay, type DayRollup } from '../../functions/core/rules/engine';

const ruleset = loadRules(`
version: 1
signals:
  dashboards: { event: Dashboard Created, window: 7d, at_least: 2, points: 50 }
tiers:
  - { name: pql, min_score: 50, route: sales }
`);
const rollup = (day: string, dashboards: number): DayRollup =>
  rollupDay(day, Array.from({ length: dashboards }, (_, i) => ({ type: 'track', event: 'Dashboard Created', timestamp: `${day}T10:00:0${i}Z` })), ruleset);
const days = (rollups: readonly DayRollup[]) => rollups.map((day) => `${day.day}:${day.activity}`);
const now = new Date('2025-03-10T12:00:00Z');

describe('open days: the day rollups an evaluation keeps inside the state', () => {
  it('keeps every recomputed day open, carries yesterday and today, and closes older days with the value the state held', () => {
    const previous = [rollup('2025-03-07', 1), rollup('2025-03-08', 2), rollup('2025-03-09', 3), rollup('2025-03-10', 4)];
    // A late event recomputes March 7th: it stays open, whatever its age.
    const { open, closed } = closeDays(previous, [rollup('2025-03-07', 2), rollup('2025-03-10', 5)], now, utcCalendar);
    expect(days(open)).toEqual(['2025-03-07:2', '2025-03-09:3', '2025-03-10:5']);
    expect(days(closed)).toEqual(['2025-03-08:2']);
  });

  it('changes nothing for an evaluation that recomputed nothing on the same day', () => {
    const previous = [rollup('2025-03-09', 3), rollup('2025-03-10', 4)];
    expect(closeDays(previous, [], now, utcCalendar)).toEqual({ open: previous, closed: [] });
    // The next morning March 9th is older than yesterday: written out.
    expect(days(closeDays(previous, [], new Date('2025-03-11T08:00:00Z'), utcCalendar).closed)).toEqual(['2025-03-09:3']);
  });

  it('lets open days win over stored day items, within reach only', () => {
    const stored = [rollup('2025-03-01', 9), rollup('2025-03-09', 1)];
    const state = { openDays: [rollup('2025-03-09', 3), rollup('2025-03-10', 4)] };
    expect(days(withOpenDays(stored, state, [{ from: '2025-03-02', to: '2025-03-10' }])).sort()).toEqual(['2025-03-01:9', '2025-03-09:3', '2025-03-10:4']);
    expect(days(withOpenDays(stored, state, [{ from: '2025-03-02', to: '2025-03-09' }])).sort()).toEqual(['2025-03-01:9', '2025-03-09:3']);
    expect(withOpenDays(stored, undefined, [])).toEqual(stored);
  });
});

describe('rangesInReach: the days an evaluation reads', () => {
  // A 30-day window and a 7-day since-signup span; now is 2025-03-10, so the window is 02-09 to 03-10.
  const both = loadRules(`
version: 1
signals:
  recent: { event: Dashboard Created, window: 30d }
  early: { event: Dashboard Created, since_signup: 7d }
tiers:
  - { name: pql, min_score: 0, route: sales }
`);

  it('reads a recent signup\'s span and the window as one range, each day once', () => {
    expect(rangesInReach(both, now, '2025-03-01')).toEqual([{ from: '2025-02-09', to: '2025-03-10' }]);
    // A span that runs past today (signed up 3 days ago) stretches the range to its last day.
    expect(rangesInReach(both, now, '2025-03-08')).toEqual([{ from: '2025-02-09', to: '2025-03-14' }]);
  });

  it('joins a span that overlaps the window\'s start or ends the day before it', () => {
    expect(rangesInReach(both, now, '2025-02-05')).toEqual([{ from: '2025-02-05', to: '2025-03-10' }]);
    expect(rangesInReach(both, now, '2025-02-02')).toEqual([{ from: '2025-02-02', to: '2025-03-10' }]);
  });

  it('keeps an older span apart, so the days between are not read', () => {
    expect(rangesInReach(both, now, '2025-02-01')).toEqual([
      { from: '2025-02-09', to: '2025-03-10' },
      { from: '2025-02-01', to: '2025-02-07' },
    ]);
  });

  it('gives the one range a ruleset has, and none without a signup for a since-signup span', () => {
    expect(rangesInReach(ruleset, now, '2025-01-01')).toEqual([{ from: '2025-03-04', to: '2025-03-10' }]);
    const spanOnly = loadRules('version: 1\nsignals:\n  early: { event: Dashboard Created, since_signup: 7d }\ntiers:\n  - { name: pql, min_score: 0, route: sales }\n');
    expect(rangesInReach(spanOnly, now, '2025-01-01')).toEqual([{ from: '2025-01-01', to: '2025-01-07' }]);
    expect(rangesInReach(spanOnly, now, null)).toEqual([]);
  });
});

describe('forEachConcurrently', () => {
  it('runs every item, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, item % 3));
      running--;
      done.push(item);
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('starts nothing after a failure and rejects with it once the running tasks are done', async () => {
    const started: number[] = [];
    let finished = 0;
    const run = forEachConcurrently([1, 2, 3, 4, 5], 2, async (item) => {
      started.push(item);
      if (item === 1) throw new Error('first failed');
      await new Promise((resolve) => setTimeout(resolve, 5));
      finished++;
    });
    await expect(run).rejects.toThrow('first failed');
    expect(started).toEqual([1, 2]);
    expect(finished).toBe(1);
  });
});

describe("withinStateBound: a state within DynamoDB's item limit", () => {
  // A day of a hundred long event names: what a client can send, and a state kept open by the dozen.
  const bulky = (day: string) => ({ ...rollup(day, 1), names: Object.fromEntries(Array.from({ length: 100 }, (_, index) => [`${'x'.repeat(190)}${index}`, 1])) });
  const stateOf = (openDays: DayRollup[], spanDays?: DayRollup[]): StoredEntityState => ({
    lifetime: rollup('lifetime', 0),
    firstSeen: '2025-01-01T00:00:00.000Z',
    lastSeen: '2025-03-10T10:00:00.000Z',
    rollupVersion: 'v',
    openDays,
    ...(spanDays ? { spanDays: { from: '2025-01-01', through: '2025-03-10', days: spanDays } } : {}),
  });
  const size = (state: StoredEntityState) => Buffer.byteLength(JSON.stringify(state));
  const lateDays = (count: number) => Array.from({ length: count }, (_, index) => bulky(`2025-02-${String(index + 1).padStart(2, '0')}`));

  it('keeps a state within the bound as it is', () => {
    const state = stateOf([rollup('2025-03-09', 3), rollup('2025-03-10', 4)], [rollup('2025-01-02', 1)]);
    expect(withinStateBound(state, [rollup('2025-03-01', 1)], now, utcCalendar)).toEqual({ state, closed: [rollup('2025-03-01', 1)] });
  });

  it('sheds the span days first, a saving only', () => {
    const state = stateOf([rollup('2025-03-10', 4)], lateDays(10));
    expect(size(state)).toBeGreaterThan(maxStateBytes);
    const bounded = withinStateBound(state, [], now, utcCalendar);
    expect(bounded.state.spanDays).toBeUndefined();
    expect(days(bounded.state.openDays!)).toEqual(['2025-03-10:4']);
    expect(bounded.closed).toEqual([]);
  });

  it('then writes out the open days older than yesterday, with the days it closed anyway, in order', () => {
    const state = stateOf([...lateDays(10), rollup('2025-03-09', 3), rollup('2025-03-10', 4)]);
    expect(size(state)).toBeGreaterThan(maxStateBytes);
    const bounded = withinStateBound(state, [rollup('2025-01-15', 2)], now, utcCalendar);
    expect(days(bounded.state.openDays!)).toEqual(['2025-03-09:3', '2025-03-10:4']);
    expect(days(bounded.closed)).toEqual(['2025-01-15:2', ...lateDays(10).map((day) => `${day.day}:1`)]);
    expect(size(bounded.state)).toBeLessThanOrEqual(maxStateBytes);
  });

  it('then every open day, when yesterday and today alone are too large', () => {
    const huge = (day: string) => ({ ...bulky(day), names: Object.fromEntries(Array.from({ length: 600 }, (_, index) => [`${'y'.repeat(190)}${index}`, 1])) });
    const state = stateOf([huge('2025-03-09'), huge('2025-03-10')]);
    const bounded = withinStateBound(state, [], now, utcCalendar);
    expect(bounded.state.openDays).toBeUndefined();
    expect(bounded.closed.map((day) => day.day)).toEqual(['2025-03-09', '2025-03-10']);
  });

  it('counts bytes, not characters: days of three-byte text within the bound in characters are written out all the same', () => {
    // 80,000 characters a day, 160,000 in the state; three times as many bytes, past DynamoDB's 400 KB stored deflated.
    const wide = (day: string) => ({ ...rollup(day, 1), names: Object.fromEntries(Array.from({ length: 400 }, (_, index) => [`${'語'.repeat(190)}${index}`, 1])) });
    const state = stateOf([wide('2025-03-09'), wide('2025-03-10')]);
    expect(JSON.stringify(state).length).toBeLessThan(maxStateBytes);
    expect(size(state)).toBeGreaterThan(400 * 1024);
    const bounded = withinStateBound(state, [], now, utcCalendar);
    expect(bounded.state.openDays).toBeUndefined();
    expect(size(bounded.state)).toBeLessThanOrEqual(maxStateBytes);
  });
});
