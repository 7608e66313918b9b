/**
 * A least-recently-used map bounded by total cost (bytes for tiles, 1 per entry for handles).
 * Map keeps insertion order, so re-inserting on access makes the first key the least recent.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; cost: number }>();
  private total = 0;

  /**
   * @param maxCost upper bound on the summed cost of entries
   * @param onEvict called for every entry pushed out (e.g. to close a slide handle)
   */
  constructor(private readonly maxCost: number, private readonly onEvict?: (key: K, value: V) => void) {}

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  set(key: K, value: V, cost = 1): void {
    const old = this.map.get(key);
    if (old) {
      this.total -= old.cost;
      this.map.delete(key);
    }
    if (cost > this.maxCost) return;
    this.map.set(key, { value, cost });
    this.total += cost;
    while (this.total > this.maxCost) {
      const [k, e] = this.map.entries().next().value as [K, { value: V; cost: number }];
      this.map.delete(k);
      this.total -= e.cost;
      this.onEvict?.(k, e.value);
    }
  }

  /** Drops every entry whose key matches (a deleted slide). */
  deleteWhere(match: (key: K) => boolean): void {
    for (const [k, e] of [...this.map]) {
      if (match(k)) {
        this.map.delete(k);
        this.total -= e.cost;
        this.onEvict?.(k, e.value);
      }
    }
  }

  get size(): number { return this.map.size; }
  get cost(): number { return this.total; }
}
