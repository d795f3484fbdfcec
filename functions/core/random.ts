/**
 * A seeded random generator (mulberry32): the same seed gives the same numbers on every platform, so a generated
 * stream or a benchmark is the same on every run. Fast and small, and not for secrets.
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  /** `digits` lowercase hexadecimal digits, eight from each number drawn. */
  hex(digits: number): string {
    let text = '';
    while (text.length < digits) text += Math.floor(this.next() * 4_294_967_296).toString(16).padStart(8, '0');
    return text.slice(0, digits);
  }
}

/**
 * One seed from several numbers (a run's seed, a user's index, a day): each part of a stream gets its own
 * generator, so it comes out the same however much of the stream around it is generated.
 */
export function seedFrom(...parts: number[]): number {
  return parts.reduce((hash, part) => Math.imul(hash ^ part, 0x9e3779b1) ^ (hash >>> 15), 0x1234567);
}
