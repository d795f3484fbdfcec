import type { Estimate } from './stats';

/**
 * How numbers are written for people: the backtest summary, discover's table and rules file, the HTML report and the
 * benchmarks. The exact numbers go to machines (--json, the HTML's data-value); these are the rounded texts.
 * The styles differ on purpose where their readers differ (a terminal column, a report with room for decimals), and
 * each is written once, here.
 */

export type Format = (value: number) => string;

/** Commas between thousands whatever the machine's locale; a fraction to two decimals: 1,234,567 and 1,234.50. */
export function count(value: number): string {
  const digits = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A fraction as a percentage: percent(0.1234) = 12%, percent(0.1234, 1) = 12.3%. */
export function percent(fraction: number, decimals = 0): string {
  return `${(fraction * 100).toFixed(decimals)}%`;
}

/** Whole percentages, with one decimal under 10% so that small rates are not all 0% or 3% (the summary's columns). */
export const percentCoarse: Format = (fraction) => percent(fraction, fraction > 0 && fraction < 0.1 ? 1 : 0);

/** One decimal, two under 1% (the HTML report). */
export const percentFine: Format = (fraction) => {
  const scaled = fraction * 100;
  return percent(fraction, scaled !== 0 && Math.abs(scaled) < 1 ? 2 : 1);
};

export const decimals = (digits: number): Format => (value) => value.toFixed(digits);

/** Two decimals, none from 100 on: 1.23, 45.60, 123 (lifts in the summary and its warnings). */
export const twoDecimalsBelow100: Format = (value) => value.toFixed(Math.abs(value) >= 100 ? 0 : 2);

/** About three significant figures: 0.12, 1.23, 12.3, 123 (lifts in discover's table and rules file). */
export const threeFigures: Format = (value) => value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);

/** A ratio with a times sign, three decimals under 0.1: 1.23×, 0.042× (lifts in the HTML report). */
export const times: Format = (value) => `${value.toFixed(value < 0.1 ? 3 : 2)}×`;

/** A score: whole as it is, a fraction to two decimals. */
export const score: Format = (value) => (Number.isInteger(value) ? String(value) : value.toFixed(2));

export const days: Format = (value) => `${value.toFixed(1)} d`;

/** A period of whole days, in words: `90 days`, `1 day`. */
/** `1 transition`, `2 transitions`: a count and its noun. */
export const counted = (value: number, noun: string, plural = `${noun}s`): string => `${value} ${value === 1 ? noun : plural}`;

export const periodText = (periodDays: number): string => counted(periodDays, 'day');

/** An estimate and its 95% interval, in the summary's style `1.23 (0.98-1.50)` or discover's `1.23 [0.98, 1.50]`. */
export function withInterval(estimate: Estimate, format: Format, style: '(low-high)' | '[low, high]'): string {
  const [open, separator, close] = style === '(low-high)' ? ['(', '-', ')'] : ['[', ', ', ']'];
  return `${format(estimate.value)} ${open}${format(estimate.low)}${separator}${format(estimate.high)}${close}`;
}

/** Byte sizes: 1,234 B. */
export const bytes: Format = (value) => `${count(Math.round(value))} B`;

/** A benchmark column: `digits` decimals, right-aligned in `width` characters. */
export const fixed = (value: number, digits: number, width: number) => value.toFixed(digits).padStart(width);

/**
 * A plain-text table: a header, a rule of dashes, the rows; columns two spaces apart, each as wide as its widest
 * cell, numbers (where `rightAligned`) flush right, trailing spaces cut.
 */
export function textTable(header: readonly string[], rows: readonly string[][], rightAligned: (column: number) => boolean): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => (rightAligned(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}
