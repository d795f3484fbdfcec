import { describe, expect, it } from 'vitest';
import { conditionHolds } from '../../functions/core/rules/engine';

describe('numeric conditions on numbers sent as strings', () => {
  const cases: [condition: Parameters<typeof conditionHolds>[0], value: unknown, holds: boolean][] = [
    [{ gte: 42 }, '42', true],
    [{ gte: 42 }, '41.99', false],
    [{ gt: 42 }, '42', false],
    [{ gt: 42 }, '42.5', true],
    [{ lt: 0 }, '-3', true],
    [{ lte: 10 }, ' 10 ', true],
    [{ gte: 1 }, 42, true],
    [{ gte: 1 }, '', false],
    [{ gte: 1 }, '42 seats', false],
    [{ gte: 1 }, '0x2A', false],
    [{ gte: 1 }, 'Infinity', false],
    [{ gte: 1 }, '1e3', false],
    [{ gte: 1 }, true, false],
    [{ gte: 1 }, null, false],
    // Equality stays exact: "42" is not 42.
    [{ equals: 42 }, '42', false],
  ];
  for (const [condition, value, holds] of cases) {
    it(`${JSON.stringify(condition)} on ${JSON.stringify(value)}: ${holds}`, () => {
      expect(conditionHolds(condition, value)).toBe(holds);
    });
  }
});
