// A short-lived, bounded cache of API key records in front of the ApiKeyStore, for verifyApiKey.
//
// What it saves is the store round trip, never a check: verifyApiKey still hashes the presented key and
// compares it with timingSafeEqual, and still judges revocation and expiry against the current time, on
// every request. Only records that were found are cached, so an unknown id (a typo, someone guessing)
// always reaches the store and cannot push real keys out of the cache.
//
// Staleness is bounded by the TTL, and only for changes this cache does not see: a revocation made
// through it (the runtime's revoke route, or anything else holding this wrapper) drops the entry at once,
// while one made through another runtime instance sharing the database, or straight in the store, is
// seen within `ttlMs`. A deployment that needs cross-instance revocation to be immediate sets `ttlMs: 0`.
import type { ApiKeyRecord, ApiKeyStore, StoreContext } from "../store/types.js";
import { createTtlCache } from "./ttl-cache.js";

export interface ApiKeyCacheOptions {
  /** How long (ms) a record read from the store is trusted before it is read again. 0 turns caching off. */
  readonly ttlMs: number;
  /** The most records held; the least recently used goes first. */
  readonly maxEntries: number;
  /** A monotonic clock (ms) for the TTL. Defaults to performance.now; key expiry never uses it. */
  readonly clock?: () => number;
}

/** The defaults the runtime uses: 5 s, 1024 keys. */
export const DEFAULT_API_KEY_CACHE: ApiKeyCacheOptions = { ttlMs: 5_000, maxEntries: 1_024 };

/** An ApiKeyStore that answers repeated lookups from memory, and can be told to forget a key. */
export interface CachedApiKeyStore extends ApiKeyStore {
  /** Drops one key's entry, so its next lookup reads the store. */
  invalidate(id: string): void;
  /** Drops every entry. */
  clear(): void;
}

/** A caller's own copy: ApiKeyRecord's only non-scalar field is `permissions`. */
function copyOf(record: ApiKeyRecord): ApiKeyRecord {
  return { ...record, permissions: [...record.permissions] };
}

/**
 * Wraps `store` so that `getApiKey` answers from a bounded LRU for `ttlMs` after a record is read, and
 * `revokeApiKey` and `putApiKey` drop the key's entry. Give the same wrapper to everything in the process
 * that verifies or revokes keys, so a revocation here takes effect on the next request.
 *
 * Example:
 * `const apiKeys = createApiKeyCache(stores.apiKeys, { ttlMs: 5_000, maxEntries: 1_024 });
 *  createAuthenticator({ apiKeys }); registerAuthRoutes(app, { apiKeys, events });`
 */
export function createApiKeyCache(store: ApiKeyStore, options: ApiKeyCacheOptions): CachedApiKeyStore {
  const cache = createTtlCache<ApiKeyRecord | undefined>(options);
  const invalidate = (id: string): void => cache.invalidate(id);

  return {
    async getApiKey(id: string) {
      // Cached records are private copies; each caller gets its own.
      const record = await cache.read(
        id,
        async () => {
          const found = await store.getApiKey(id);
          return found === undefined ? undefined : copyOf(found);
        },
        (found) => found !== undefined,
      );
      return record === undefined ? undefined : copyOf(record);
    },
    async revokeApiKey(id: string, at: number, ctx: StoreContext) {
      invalidate(id);
      try {
        return await store.revokeApiKey(id, at, ctx);
      } finally {
        // Again once the store has answered: a lookup that ran alongside may have read the old record.
        invalidate(id);
      }
    },
    async putApiKey(key: ApiKeyRecord, ctx: StoreContext) {
      try {
        await store.putApiKey(key, ctx);
      } finally {
        invalidate(key.id);
      }
    },
    listApiKeys: () => store.listApiKeys(),
    invalidate,
    clear: () => cache.clear(),
  };
}
