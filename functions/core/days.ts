/**
 * Day arithmetic. The rules, the stored rollups, the replay's steps and the generators all count in whole days named
 * YYYY-MM-DD: UTC days, or the days of the rules file's time zone through a Calendar; this module is the one place
 * that turns times into days and back.
 */

import { remembered } from './remembered';

export const dayMs = 86_400_000;

/** Days in a period of an event signal's `per` (rules/schema.ts). */
export const periodDays = { day: 1, week: 7 } as const;

/** `7d`, `12h`, `30m`: how far back, in milliseconds; undefined for anything else. */
export function ageMs(value: string): number | undefined {
  const match = /^(\d+)(d|h|m)$/.exec(value);
  return match ? Number(match[1]) * { d: dayMs, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'] : undefined;
}

/** The day (YYYY-MM-DD, UTC) of an ISO 8601 time, a Date or epoch milliseconds. */
export function dayOf(time: string | Date | number): string {
  if (typeof time === 'string') return time.slice(0, 10);
  const ms = typeof time === 'number' ? time : time.getTime();
  return dayNamed(Math.floor(ms / dayMs));
}

/** A day by its number since 1970-01-01 (NaN and out-of-range numbers throw: toISOString does). */
const dayNamed = remembered((index: number) => new Date(index * dayMs).toISOString().slice(0, 10));

/** Epoch ms of a day's UTC midnight (NaN for anything but a day). */
const utcMidnight = remembered((day: string) => Date.parse(`${day}T00:00:00Z`));

/** The day `days` after `day` (before it when negative). */
export const addDays = (day: string, days: number): string => dayOf(utcMidnight(day) + days * dayMs);

let isoTimeMs = Number.NaN;
let isoTimeText = '';

/**
 * A time's toISOString(), the last one remembered: an evaluator's pass and a backtest's step decide many entities at
 * one time, and formatting it again for each was a fortieth of a replay. Throws as toISOString does for an invalid
 * time (NaN is never the one remembered).
 */
export function isoTime(time: Date): string {
  const ms = time.getTime();
  if (ms !== isoTimeMs) {
    isoTimeText = time.toISOString();
    isoTimeMs = ms;
  }
  return isoTimeText;
}

/** The last millisecond of a day, the moment a backtest step evaluates at. */
export const dayEnd = (day: string): string => `${day}T23:59:59.999Z`;

/** The first day of a rolling window of `days` days that ends on the day of `now`. */
export const windowStart = (now: Date, days: number): string => dayOf(now.getTime() - (days - 1) * dayMs);

/** The last two times timeMs parsed, newest first ('' parses to NaN, as Date.parse gives it). */
const parsedTimes = ['', ''];
const parsedMs = [Number.NaN, Number.NaN];

/**
 * Date.parse, remembering the last two times parsed: an evaluation and its sweep time read an entity's last seen
 * and signup times twice each, and parsing them was 5% of a backtest's replay.
 */
export function timeMs(time: string): number {
  if (time === parsedTimes[0]) return parsedMs[0]!;
  if (time === parsedTimes[1]) return parsedMs[1]!;
  const ms = Date.parse(time);
  parsedTimes[1] = parsedTimes[0]!;
  parsedMs[1] = parsedMs[0]!;
  parsedTimes[0] = time;
  parsedMs[0] = ms;
  return ms;
}

/** Whole days from `from` to `to` (rounded down); negative when `to` is earlier. */
export const daysBetween = (from: string, to: Date): number => Math.floor((to.getTime() - timeMs(from)) / dayMs);

/** True for a real calendar day written YYYY-MM-DD (not 2026-02-30). */
export const isDay = (value: string): boolean => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  // Month 13 or day 0 does not parse at all; February 30 parses, as March 2.
  const ms = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(ms) && dayOf(ms) === value;
};

/** The Monday of a day's ISO week. */
export function mondayOf(day: string): string {
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(day, -weekday);
}

/**
 * Calendar days in one time zone (the rules file's `timezone`): which day a time falls on, when a day begins, and
 * the rolling windows, so that "today" and "the last 7 days" are the days of the product's users. Day names and
 * `addDays` stay plain date arithmetic; only the boundaries between days move with the zone (and its daylight saving).
 */
export interface Calendar {
  /** An IANA time zone, e.g. Europe/Berlin; UTC by default. */
  readonly timeZone: string;
  /** The day (YYYY-MM-DD) of a time in this zone. */
  dayOf(time: string | Date | number): string;
  /** Epoch ms of a day's first moment in this zone (its midnight, or the first moment after a daylight-saving gap). */
  startOf(day: string): number;
  /** The first day of a rolling window of `days` days that ends on the day of `now`. */
  windowStart(now: Date, days: number): string;
  /** The last millisecond of a day (ISO 8601, UTC), the moment a backtest step evaluates at. */
  endOf(day: string): string;
}

export const utcCalendar: Calendar = {
  timeZone: 'UTC',
  dayOf,
  startOf: utcMidnight,
  windowStart,
  endOf: dayEnd,
};

/** Zone offsets and daylight-saving switches fall on quarter hours, so a day is the same within one. */
const quarterHourMs = 900_000;

/** The calendar of an IANA time zone; throws a RangeError naming the zone when it is unknown. */
export function calendarOf(timeZone: string): Calendar {
  if (timeZone === 'UTC') return utcCalendar;
  const format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const wallClock = (ms: number) => {
    const parts: Record<string, number> = {};
    for (const part of format.formatToParts(ms)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
    return Date.UTC(parts['year']!, parts['month']! - 1, parts['day']!, parts['hour']!, parts['minute']!, parts['second']!);
  };
  // Formatting is slow next to the rest of a backtest's day arithmetic: each quarter hour's day is remembered.
  const quarterDay = remembered((quarter: number) => new Date(wallClock(quarter * quarterHourMs)).toISOString().slice(0, 10));
  const zonedDayOf = (time: string | Date | number): string => {
    const ms = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : time.getTime();
    return quarterDay(Math.floor(ms / quarterHourMs));
  };
  const startOf = remembered((day: string): number => {
    const midnight = utcMidnight(day);
    // The UTC moment whose wall clock reads midnight, corrected once for an offset that differs on either side.
    let start = midnight - (wallClock(midnight) - midnight);
    start = midnight - (wallClock(start) - start);
    start -= start % quarterHourMs;
    while (zonedDayOf(start) < day) start += quarterHourMs;
    while (zonedDayOf(start - quarterHourMs) === day) start -= quarterHourMs;
    return start;
  });
  return {
    timeZone,
    dayOf: zonedDayOf,
    startOf,
    windowStart: (now, length) => addDays(zonedDayOf(now), -(length - 1)),
    endOf: (day) => new Date(startOf(addDays(day, 1)) - 1).toISOString(),
  };
}
