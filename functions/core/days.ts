/**
 * Day arithmetic. The rules, the stored rollups, the replay's steps and the generators all count in whole UTC days
 * named YYYY-MM-DD; this module is the one place that turns times into days and back.
 */

export const dayMs = 86_400_000;

/** The day (YYYY-MM-DD, UTC) of an ISO 8601 time, a Date or epoch milliseconds. */
export function dayOf(time: string | Date | number): string {
  if (typeof time === 'string') return time.slice(0, 10);
  const ms = typeof time === 'number' ? time : time.getTime();
  // Formatting a Date is most of what a backtest's window arithmetic costs, over a few hundred distinct days.
  const index = Math.floor(ms / dayMs);
  let day = dayNames.get(index);
  if (day === undefined) {
    day = new Date(ms).toISOString().slice(0, 10);
    if (dayNames.size >= maxDayNames) dayNames.clear();
    dayNames.set(index, day);
  }
  return day;
}

/** Days by their number since 1970-01-01 (NaN and out-of-range times are not kept: toISOString throws on them). */
const dayNames = new Map<number, string>();
const maxDayNames = 100_000;

/** The day `days` after `day` (before it when negative). */
export const addDays = (day: string, days: number): string => dayOf(Date.parse(`${day}T00:00:00Z`) + days * dayMs);

/** The last millisecond of a day, the moment a backtest step evaluates at. */
export const dayEnd = (day: string): string => `${day}T23:59:59.999Z`;

/** The first day of a rolling window of `days` days that ends on the day of `now`. */
export const windowStart = (now: Date, days: number): string => dayOf(now.getTime() - (days - 1) * dayMs);

/** Whole days from `from` to `to` (rounded down); negative when `to` is earlier. */
export const daysBetween = (from: string, to: Date): number => Math.floor((to.getTime() - Date.parse(from)) / dayMs);

/** True for a real calendar day written YYYY-MM-DD (not 2026-02-30). */
export const isDay = (value: string): boolean => /^\d{4}-\d{2}-\d{2}$/.test(value) && dayOf(Date.parse(`${value}T00:00:00Z`)) === value;

/** The Monday of a day's ISO week. */
export function mondayOf(day: string): string {
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7;
  return addDays(day, -weekday);
}
