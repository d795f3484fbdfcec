import { describe, expect, it } from 'vitest';
import {
  bytes,
  count,
  counted,
  fixed,
  percent,
  percentCoarse,
  percentFine,
  periodText,
  textTable,
  threeFigures,
  times,
  twoDecimalsBelow100,
  withInterval,
} from '../../functions/analysis/format';

describe('number formats', () => {
  it('puts a count beside its noun, singular for one only', () => {
    expect([0, 1, 2].map((value) => counted(value, 'transition'))).toEqual(['0 transitions', '1 transition', '2 transitions']);
    expect(counted(1, 'entity', 'entities')).toBe('1 entity');
    expect(counted(3, 'entity', 'entities')).toBe('3 entities');
  });

  it('groups thousands with commas whatever the locale, and writes a fraction to two decimals', () => {
    expect([0, 999, 1000, 1234567, -1234].map(count)).toEqual(['0', '999', '1,000', '1,234,567', '-1,234']);
    expect(count(1234.5)).toBe('1,234.50');
    expect(bytes(2047.6)).toBe('2,048 B');
  });

  it('writes a period in days', () => {
    expect([90, 14, 1].map(periodText)).toEqual(['90 days', '14 days', '1 day']);
  });

  it('writes percentages with the decimals each reader needs', () => {
    expect([percent(0.1234), percent(0.1234, 1)]).toEqual(['12%', '12.3%']);
    // The summary: whole, one decimal under 10% (but 0 stays 0%).
    expect([0, 0.042, 0.1, 0.5].map(percentCoarse)).toEqual(['0%', '4.2%', '10%', '50%']);
    // The HTML report: one decimal, two under 1%.
    expect([0, 0.00042, 0.042, 1].map(percentFine)).toEqual(['0.0%', '0.04%', '4.2%', '100.0%']);
  });

  it('writes ratios to the precision of each style', () => {
    expect([0.5, 12.345, 123.4].map(twoDecimalsBelow100)).toEqual(['0.50', '12.35', '123']);
    expect([0.5, 12.345, 123.4].map(threeFigures)).toEqual(['0.50', '12.3', '123']);
    expect([0.042, 1.5].map(times)).toEqual(['0.042×', '1.50×']);
    expect(fixed(3.14159, 2, 6)).toBe('  3.14');
  });

  it('writes an estimate with its interval in either style', () => {
    const estimate = { value: 1.5, low: 1.25, high: 2 };
    expect(withInterval(estimate, twoDecimalsBelow100, '(low-high)')).toBe('1.50 (1.25-2.00)');
    expect(withInterval({ value: 0.5, low: 0.25, high: 0.75 }, percent, '[low, high]')).toBe('50% [25%, 75%]');
  });

  it('lays out a text table: columns as wide as their widest cell, figures flush right, no trailing spaces', () => {
    const table = textTable(['name', 'n', 'note'], [['a', '1,000', ''], ['bbb', '5', 'x']], (column) => column === 1);
    expect(table.split('\n')).toEqual(['name      n  note', '----  -----  ----', 'a     1,000', 'bbb       5  x']);
  });
});
