import { describe, expect, it } from 'vitest';
import { calendarOf, utcCalendar } from '../../functions/core/days';
import { EventHistory, replay } from '../../functions/analysis/replay';
import { validateMessage } from '../../functions/core/messages';
import { evaluate, type UsageEvent } from '../../functions/core/rules/engine';
import { loadRules, RulesError } from '../../functions/core/rules/load';
import { changesByTimeAt } from '../../functions/core/rules/time-changes';
import { factsFor } from '../support/facts';

const iso = (ms: number) => new Date(ms).toISOString();

describe('a calendar in a time zone', () => {
  const cases: { zone: string; time: string; day: string }[] = [
    // Berlin in winter is UTC+1, in summer UTC+2.
    { zone: 'Europe/Berlin', time: '2024-01-15T22:59:59.999Z', day: '2024-01-15' },
    { zone: 'Europe/Berlin', time: '2024-01-15T23:00:00.000Z', day: '2024-01-16' },
    { zone: 'Europe/Berlin', time: '2024-07-15T21:59:59.999Z', day: '2024-07-15' },
    { zone: 'Europe/Berlin', time: '2024-07-15T22:00:00.000Z', day: '2024-07-16' },
    // New York is behind UTC: the evening there is the next UTC day.
    { zone: 'America/New_York', time: '2024-06-15T03:59:59.999Z', day: '2024-06-14' },
    { zone: 'America/New_York', time: '2024-06-15T04:00:00.000Z', day: '2024-06-15' },
    // A quarter-hour offset.
    { zone: 'Asia/Kathmandu', time: '2024-05-31T18:14:59.999Z', day: '2024-05-31' },
    { zone: 'Asia/Kathmandu', time: '2024-05-31T18:15:00.000Z', day: '2024-06-01' },
    { zone: 'UTC', time: '2024-06-15T23:59:59.999Z', day: '2024-06-15' },
  ];
  it.each(cases)('$time is $day in $zone', ({ zone, time, day }) => {
    expect(calendarOf(zone).dayOf(time)).toBe(day);
    expect(calendarOf(zone).dayOf(Date.parse(time))).toBe(day);
  });

  const days: { zone: string; day: string; start: string; end: string; hours: number }[] = [
    { zone: 'Europe/Berlin', day: '2024-03-30', start: '2024-03-29T23:00:00.000Z', end: '2024-03-30T22:59:59.999Z', hours: 24 },
    // Daylight saving starts: the day has 23 hours; it ends: 25.
    { zone: 'Europe/Berlin', day: '2024-03-31', start: '2024-03-30T23:00:00.000Z', end: '2024-03-31T21:59:59.999Z', hours: 23 },
    { zone: 'Europe/Berlin', day: '2024-10-27', start: '2024-10-26T22:00:00.000Z', end: '2024-10-27T22:59:59.999Z', hours: 25 },
    { zone: 'America/New_York', day: '2024-11-03', start: '2024-11-03T04:00:00.000Z', end: '2024-11-04T04:59:59.999Z', hours: 25 },
    // Santiago skips midnight when daylight saving starts: the day begins at 01:00.
    { zone: 'America/Santiago', day: '2024-09-08', start: '2024-09-08T04:00:00.000Z', end: '2024-09-09T02:59:59.999Z', hours: 23 },
  ];
  it.each(days)('$day in $zone begins at $start and lasts $hours hours', ({ zone, day, start, end, hours }) => {
    const calendar = calendarOf(zone);
    expect(iso(calendar.startOf(day))).toBe(start);
    expect(calendar.endOf(day)).toBe(end);
    expect(calendar.dayOf(calendar.startOf(day))).toBe(day);
    expect(calendar.dayOf(calendar.startOf(day) - 1)).not.toBe(day);
    expect((Date.parse(end) + 1 - Date.parse(start)) / 3_600_000).toBe(hours);
  });

  it('is UTC by default, and an unknown zone is a rules check error naming the field', () => {
    expect(loadRules('version: 1\nsignals: { a: { event: A } }\ntiers: [{ name: t, route: r }]\n').calendar).toBe(utcCalendar);
    const load = () => loadRules('version: 1\ntimezone: Europe/Berlni\nsignals: { a: { event: A } }\ntiers: [{ name: t, route: r }]\n');
    expect(load).toThrow(RulesError);
    expect(load).toThrow(/line 2: timezone: must be an IANA time zone/);
  });
});

describe('rules counting in a time zone', () => {
  const rulesIn = (zone: string) =>
    loadRules(`version: 1\ntimezone: ${zone}\nsignals:\n  today: { event: Login, window: 1d, points: 1 }\ntiers:\n  - { name: pql, min_score: 1, route: sales }\n`);
  const login = (timestamp: string): UsageEvent => ({ type: 'track', event: 'Login', properties: {}, timestamp });

  // 22:30 in New York on the 14th is 02:30 UTC on the 15th.
  const lateEvening = login('2024-06-15T02:30:00.000Z');
  const cases: { zone: string; now: string; matched: boolean }[] = [
    { zone: 'UTC', now: '2024-06-15T12:00:00.000Z', matched: true },
    { zone: 'America/New_York', now: '2024-06-15T03:59:59.999Z', matched: true },
    { zone: 'America/New_York', now: '2024-06-15T04:00:00.000Z', matched: false },
    { zone: 'UTC', now: '2024-06-16T00:00:00.000Z', matched: false },
  ];
  it.each(cases)('"today" at $now in $zone: $matched', ({ zone, now, matched }) => {
    const ruleset = rulesIn(zone);
    const facts = factsFor([lateEvening], ruleset);
    expect(evaluate(facts, ruleset, new Date(now)).signals['today']!.matched).toBe(matched);
  });

  it('a counted day leaves a window when the next local day begins, across daylight saving', () => {
    const ruleset = rulesIn('Europe/Berlin');
    // Saturday 2024-03-30 in Berlin; Sunday the 31st has 23 hours, so it begins at 23:00 UTC the day before.
    const facts = factsFor([login('2024-03-30T10:00:00.000Z')], ruleset);
    const now = new Date('2024-03-30T12:00:00.000Z');
    const moment = changesByTimeAt(facts, evaluate(facts, ruleset, now), ruleset, now, 3_600_000).any;
    expect(iso(moment)).toBe('2024-03-30T23:00:00.000Z');
    expect(evaluate(facts, ruleset, new Date(moment - 1)).signals['today']!.matched).toBe(true);
    expect(evaluate(facts, ruleset, new Date(moment)).signals['today']!.matched).toBe(false);
  });

  it('the backtest steps at the end of each local day and counts events in their local day', () => {
    const ruleset = rulesIn('America/New_York');
    const history = new EventHistory(ruleset);
    const message = { type: 'track', userId: 'ada', event: 'Login', timestamp: '2024-06-15T02:30:00.000Z', messageId: 'm1' };
    const accepted = validateMessage(message, 0, 'test', new Date(0), { receivedAtKnown: false });
    if ('reason' in accepted) throw new Error(`${accepted.path}: ${accepted.reason}`);
    history.add(accepted);
    const result = replay(history, { from: '2024-06-14', to: '2024-06-15' });
    expect(result.steps).toEqual(['2024-06-15T03:59:59.999Z', '2024-06-16T03:59:59.999Z']);
    expect(result.entities[0]!.transitions).toEqual([
      { at: '2024-06-15T03:59:59.999Z', from: null, to: 'pql' },
      { at: '2024-06-16T03:59:59.999Z', from: 'pql', to: null },
    ]);
  });
});
