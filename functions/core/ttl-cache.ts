/**
 * What a warm Lambda remembers between requests: each value for `ttlMs`, at most `maxEntries` of them (the oldest
 * stored goes first), misses included, so a flood of lookups of made-up names cannot turn into a flood of reads.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const cached = this.entries.get(key);
    if (cached && cached.expires > this.now()) {
      this.hits++;
      return cached.value;
    }
    this.misses++;
    const value = await load();
    // Deleted first, so that a refreshed entry moves to the end of the insertion order and is evicted last.
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }
}
