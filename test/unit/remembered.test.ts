import { describe, expect, it } from 'vitest';
import { remembered } from '../../functions/core/remembered';
import { addDays, calendarOf, dayOf, isoTime, timeMs } from '../../functions/core/days';

describe('remembered', () => {
  it('computes each key once, null and NaN results included', () => {
    const calls: unknown[] = [];
    const parse = remembered((text: string) => {
      calls.push(text);
      return text === 'none' ? null : Number(text);
    });
    expect([parse('1'), parse('1'), parse('none'), parse('none'), parse('x'), parse('x')]).toStrictEqual([1, 1, null, null, Number.NaN, Number.NaN]);
    expect(calls).toStrictEqual(['1', 'none', 'x']);
  });

  it('keeps at most its limit, and computes again what it forgot', () => {
    let calls = 0;
    const double = remembered((n: number) => (calls++, n * 2), 2);
    for (const n of [1, 2, 3, 1]) double(n);
    expect(calls).toBe(4);
  });

  it('remembers nothing of a call that throws', () => {
    let calls = 0;
    const failing = remembered((_key: string): number => {
      calls++;
      throw new RangeError('no');
    });
    expect(() => failing('a')).toThrow(RangeError);
    expect(() => failing('a')).toThrow(RangeError);
    expect(calls).toBe(2);
  });

  it('leaves day arithmetic as it was, asked again and again', () => {
    const berlin = calendarOf('Europe/Berlin');
    for (let round = 0; round < 2; round++) {
      expect(addDays('2024-02-28', 2)).toBe('2024-03-01');
      expect(dayOf(Date.UTC(2024, 0, 31, 23, 59))).toBe('2024-01-31');
      expect(() => dayOf(Number.NaN)).toThrow(RangeError);
      expect(berlin.dayOf('2024-03-30T23:30:00Z')).toBe('2024-03-31');
      expect(berlin.startOf('2024-03-31')).toBe(Date.UTC(2024, 2, 30, 23));
    }
  });

  it('isoTime is toISOString, for the same time asked again, another time, or a Date set to another time', () => {
    const times = [0, 0, 1_718_452_800_000, 1_718_452_800_000, -1, 253_402_300_799_999, 1_718_452_800_001];
    for (const ms of times) expect(isoTime(new Date(ms))).toBe(new Date(ms).toISOString());
    const moving = new Date(0);
    expect(isoTime(moving)).toBe('1970-01-01T00:00:00.000Z');
    moving.setTime(86_400_000);
    expect(isoTime(moving)).toBe('1970-01-02T00:00:00.000Z');
    expect(() => isoTime(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => isoTime(new Date(Number.NaN))).toThrow(RangeError);
  });

  it('timeMs is Date.parse, for times asked again, in turn, or anew, and for what is no time', () => {
    const a = '2024-06-15T12:00:00.000Z';
    const b = '2024-03-01T08:30:00.000Z';
    const c = '2023-12-31T23:59:59.999Z';
    for (const time of [a, a, b, a, b, c, a, b, c, c, '', 'not a time', '', a]) expect(timeMs(time)).toBe(Date.parse(time));
  });
});
