// A small read-through cache with a TTL and LRU eviction, safe against reads racing invalidations.

/** Options of {@link createTtlCache}. */
export interface TtlCacheOptions {
  /** How long (ms) a loaded value is trusted before it is loaded again. 0 turns caching off. */
  readonly ttlMs: number;
  /** The most values held; the least recently used goes first. */
  readonly maxEntries: number;
  /** A monotonic clock (ms) for the TTL. Defaults to performance.now. */
  readonly clock?: () => number;
}

export interface TtlCache<V> {
  /**
   * The cached value for `key`, or `load()`'s, which is cached when `cacheable(value)` holds and no
   * invalidation happened while it loaded.
   */
  read(key: string, load: () => Promise<V>, cacheable?: (value: V) => boolean): Promise<V>;
  /** Drops one entry; a load already running will not refill it. */
  invalidate(key: string): void;
  /** Drops every entry. */
  clear(): void;
}

interface Entry<V> {
  readonly value: V;
  readonly until: number;
}

/**
 * Creates a cache. Throws a TypeError for a negative TTL or a non-positive size.
 *
 * Example: `const cache = createTtlCache<string[]>({ ttlMs: 5_000, maxEntries: 1_024 });
 *  const roles = await cache.read(principal, () => store.rolesOf(principal));`
 */
export function createTtlCache<V>(options: TtlCacheOptions): TtlCache<V> {
  const { ttlMs, maxEntries } = options;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw new TypeError("ttlMs must be a non-negative integer");
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new TypeError("maxEntries must be a positive integer");
  }
  const clock = options.clock ?? (() => performance.now());
  // A Map iterates in insertion order, so re-inserting on every hit keeps the least recently used first.
  const entries = new Map<string, Entry<V>>();
  // Bumped by every invalidation. A load that started before one may have read the value as it was
  // before the change, so it may answer its own caller but must not fill the cache.
  let generation = 0;

  return {
    async read(key, load, cacheable = () => true) {
      if (ttlMs === 0) return load();
      const now = clock();
      const entry = entries.get(key);
      if (entry !== undefined) {
        entries.delete(key);
        if (now < entry.until) {
          entries.set(key, entry);
          return entry.value;
        }
      }
      const startedAt = generation;
      const value = await load();
      if (!cacheable(value) || startedAt !== generation) return value;
      // A concurrent miss for the same key may have filled it already; replace it rather than evict another.
      entries.delete(key);
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
      entries.set(key, { value, until: now + ttlMs });
      return value;
    },
    invalidate(key) {
      generation += 1;
      entries.delete(key);
    },
    clear() {
      generation += 1;
      entries.clear();
    },
  };
}
