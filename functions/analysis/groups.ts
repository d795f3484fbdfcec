/**
 * Groups of keys joined by links (union-find): how a backtest splits its history into partitions that replay apart.
 * A group's representative is its smallest key, so the same links always give the same representatives, whatever
 * order they came in: a partition chosen from it is the same on every run and in every thread.
 */
export class Groups<K extends string | number> {
  /** Parent links of every key ever joined to another; a key not here is a group of its own. */
  private readonly parent = new Map<K, K>();

  /** The representative of the key's group (the key itself when it was never joined to another). */
  find(key: K): K {
    let root = key;
    for (let up = this.parent.get(root); up !== undefined && up !== root; up = this.parent.get(root)) root = up;
    // Path compression: the next find of any key on the way is one step.
    for (let node = key; node !== root; ) {
      const next = this.parent.get(node)!;
      this.parent.set(node, root);
      node = next;
    }
    return root;
  }

  /** Puts a and b in one group; false when they were in one already (the link brought nothing new). */
  join(a: K, b: K): boolean {
    if (!this.parent.has(a)) this.parent.set(a, a);
    if (!this.parent.has(b)) this.parent.set(b, b);
    const rootA = this.find(a);
    const rootB = this.find(b);
    if (rootA === rootB) return false;
    if (rootA < rootB) this.parent.set(rootB, rootA);
    else this.parent.set(rootA, rootB);
    return true;
  }

  /** Every key joined to another, with its group's representative. */
  *representatives(): IterableIterator<[K, K]> {
    for (const key of this.parent.keys()) yield [key, this.find(key)];
  }
}
