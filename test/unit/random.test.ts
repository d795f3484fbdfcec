import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../functions/core/random';

describe('SeededRandom', () => {
  it('gives the same numbers for the same seed, and others for another seed', () => {
    const draw = (seed: number) => {
      const random = new SeededRandom(seed);
      return Array.from({ length: 5 }, () => random.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    expect(draw(7).every((value) => value >= 0 && value < 1)).toBe(true);
  });

  it('draws integers within their bounds, both included', () => {
    const random = new SeededRandom(1);
    const drawn = new Set(Array.from({ length: 200 }, () => random.int(3, 5)));
    expect([...drawn].sort()).toEqual([3, 4, 5]);
  });

  it('writes hexadecimal digits, as many as asked for', () => {
    const random = new SeededRandom(1);
    expect([3, 8, 12].map((digits) => random.hex(digits))).toEqual([expect.stringMatching(/^[0-9a-f]{3}$/), expect.stringMatching(/^[0-9a-f]{8}$/), expect.stringMatching(/^[0-9a-f]{12}$/)]);
  });
});
