/**
 * What a backtest remembers of every message it kept to tell a repeat: a 52-bit hash of a text (the user, day and
 * messageId ingest keys an event by), in a flat open-addressing table of doubles. 8 bytes a slot, at most 70% full:
 * some 12 bytes a message, where a Set of numbers costs 40 or more (each number above 2^31 is an object of its own).
 * Two different texts share a hash with a probability of about n^2 / 2^53 over n messages (1 in 90,000 for 10 million).
 */

/** A 52-bit hash of a string (cyrb53, two 32-bit multiply-xor lanes); never 0. */
export function hash52(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ char, 2654435761);
    h2 = Math.imul(h2 ^ char, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  const hash = 0x100000 * 0x1000 * (h2 & 0xfffff) + (h1 >>> 0);
  return hash === 0 ? 1 : hash;
}

/** A set of hash52 values. */
export class HashSet52 {
  private slots = new Float64Array(1 << 16);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds the hash; false when it was already there. */
  add(hash: number): boolean {
    if ((this.count + 1) * 10 > this.slots.length * 7) this.grow();
    const inserted = insert(this.slots, hash);
    if (inserted) this.count++;
    return inserted;
  }

  clear(): void {
    this.slots = new Float64Array(1 << 16);
    this.count = 0;
  }

  private grow() {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    for (const hash of old) if (hash !== 0) insert(this.slots, hash);
  }
}

function insert(slots: Float64Array, hash: number): boolean {
  const mask = slots.length - 1;
  // The low 32 bits are well mixed (h1); the table is a power of two.
  let index = (hash >>> 0) & mask;
  for (;;) {
    const slot = slots[index]!;
    if (slot === 0) {
      slots[index] = hash;
      return true;
    }
    if (slot === hash) return false;
    index = (index + 1) & mask;
  }
}
