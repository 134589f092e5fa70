// The API key cache: hits skip the store but no check; revocation through it applies at once; TTL and size bounds.
import { describe, expect, it } from "vitest";
import { createApiKeyCache } from "../../src/auth/api-key-cache.js";
import { createApiKey, revokeApiKey, verifyApiKey } from "../../src/auth/api-keys.js";
import { type AuthFailure, isAuthFailure } from "../../src/auth/auth-failure.js";
import type { Principal } from "../../src/auth/principal.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { ApiKeyRecord, ApiKeyStore } from "../../src/store/types.js";
import { NOW } from "./auth-fixtures.js";

const ctx = { actor: "admin" };
const TTL_MS = 5_000;

function reasonOf(result: Principal | AuthFailure): string {
  return isAuthFailure(result) ? result.reason : "ok";
}

/** Changes one character of the secret to another that keeps the key well-formed. */
function otherSecret(key: string): string {
  const at = key.length - 5;
  return key.slice(0, at) + (key[at] === "A" ? "B" : "A") + key.slice(at + 1);
}

/** A real in-memory ApiKeyStore that counts lookups, and can hold the next lookup until released. */
class CountingStore implements ApiKeyStore {
  readonly inner = createMemoryStores().apiKeys;
  lookups = 0;
  private held: { release: () => void; ready: Promise<void> } | undefined;

  /** The next getApiKey reads the store at once but answers only after `release()`. */
  holdNextLookup(): () => void {
    let release!: () => void;
    const ready = new Promise<void>((resolve) => (release = resolve));
    this.held = { release, ready };
    return release;
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    this.lookups += 1;
    const record = await this.inner.getApiKey(id);
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) await held.ready;
    return record;
  }

  putApiKey: ApiKeyStore["putApiKey"] = (key, context) => this.inner.putApiKey(key, context);
  listApiKeys: ApiKeyStore["listApiKeys"] = () => this.inner.listApiKeys();
  revokeApiKey: ApiKeyStore["revokeApiKey"] = (id, at, context) => this.inner.revokeApiKey(id, at, context);
}

async function setUp(options: { expiresInMs?: number; maxEntries?: number } = {}) {
  const store = new CountingStore();
  let clock = 0;
  const cache = createApiKeyCache(store, {
    ttlMs: TTL_MS,
    maxEntries: options.maxEntries ?? 16,
    clock: () => clock,
  });
  const newKey = async () =>
    createApiKey(
      store,
      {
        name: "ci",
        principal: "ci-deployer",
        kind: "service",
        permissions: ["agent:deploy"],
        now: NOW,
        ...(options.expiresInMs === undefined ? {} : { expiresInMs: options.expiresInMs }),
      },
      ctx,
    );
  const { key, record } = await newKey();
  return {
    store,
    cache,
    key,
    id: record.id,
    newKey,
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

describe("createApiKeyCache", () => {
  it("answers a repeated lookup from memory, without querying the store again", async () => {
    const { store, cache, key } = await setUp();
    expect(reasonOf(await verifyApiKey(key, cache, NOW))).toBe("ok");
    expect(store.lookups).toBe(1);
    for (let i = 0; i < 5; i += 1) expect(reasonOf(await verifyApiKey(key, cache, NOW))).toBe("ok");
    expect(store.lookups).toBe(1);
  });

  it("still compares the secret on every request: a wrong secret is refused from a cached entry", async () => {
    const { store, cache, key } = await setUp();
    await verifyApiKey(key, cache, NOW);
    expect(reasonOf(await verifyApiKey(otherSecret(key), cache, NOW))).toBe("bad_secret");
    expect(store.lookups).toBe(1);
  });

  it("honours expiry at the current time from a cached entry", async () => {
    const { store, cache, key } = await setUp({ expiresInMs: 1_000 });
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 999))).toBe("ok");
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 1_000))).toBe("expired");
    expect(store.lookups).toBe(1);
  });

  it("reads the store again once the TTL has passed", async () => {
    const { store, cache, key, advance } = await setUp();
    await verifyApiKey(key, cache, NOW);
    advance(TTL_MS - 1);
    await verifyApiKey(key, cache, NOW);
    expect(store.lookups).toBe(1);
    advance(1);
    await verifyApiKey(key, cache, NOW);
    expect(store.lookups).toBe(2);
  });

  it("refuses a key revoked through it on the very next request", async () => {
    const { store, cache, key, id } = await setUp();
    expect(reasonOf(await verifyApiKey(key, cache, NOW))).toBe("ok");
    await revokeApiKey(cache, id, ctx, NOW + 1);
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 2))).toBe("revoked");
    expect(store.lookups).toBe(2);
  });

  it("sees a revocation made behind its back (another instance) within the TTL, not before", async () => {
    const { store, cache, key, id, advance } = await setUp();
    await verifyApiKey(key, cache, NOW);
    await store.inner.revokeApiKey(id, NOW + 1, ctx);
    advance(TTL_MS - 1);
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 2))).toBe("ok");
    advance(1);
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 3))).toBe("revoked");
    expect(store.lookups).toBe(2);
  });

  it("does not cache a record read by a lookup that was in flight when the key was revoked", async () => {
    const { store, cache, key, id } = await setUp();
    const release = store.holdNextLookup();
    // This lookup reads the record before the revocation and answers after it.
    const racing = verifyApiKey(key, cache, NOW);
    await Promise.resolve();
    await revokeApiKey(cache, id, ctx, NOW + 1);
    release();
    expect(reasonOf(await racing)).toBe("ok");
    expect(reasonOf(await verifyApiKey(key, cache, NOW + 2))).toBe("revoked");
  });

  it("never caches an unknown id, so a created key is found and guesses always reach the store", async () => {
    const { store, cache, newKey } = await setUp();
    const { key } = await newKey();
    const unknown = `${key.slice(0, 4)}AAAAAAAAAAAAAAAA${key.slice(20)}`;
    expect(reasonOf(await verifyApiKey(unknown, cache, NOW))).toBe("unknown_key");
    expect(reasonOf(await verifyApiKey(unknown, cache, NOW))).toBe("unknown_key");
    expect(store.lookups).toBe(2);
  });

  it("holds at most maxEntries keys, dropping the least recently used", async () => {
    const { store, cache, key: first, newKey } = await setUp({ maxEntries: 2 });
    const second = (await newKey()).key;
    const third = (await newKey()).key;
    await verifyApiKey(first, cache, NOW);
    await verifyApiKey(second, cache, NOW);
    await verifyApiKey(first, cache, NOW); // first is now the most recently used
    await verifyApiKey(third, cache, NOW); // evicts second
    expect(store.lookups).toBe(3);
    await verifyApiKey(first, cache, NOW);
    await verifyApiKey(third, cache, NOW);
    expect(store.lookups).toBe(3);
    await verifyApiKey(second, cache, NOW);
    expect(store.lookups).toBe(4);
  });

  it("hands out copies: changing a returned record changes nothing cached", async () => {
    const { cache, id } = await setUp();
    const first = (await cache.getApiKey(id)) as unknown as { permissions: string[]; principal: string };
    first.permissions.push("*");
    first.principal = "admin";
    expect(await cache.getApiKey(id)).toEqual(await cache.getApiKey(id));
    expect(await cache.getApiKey(id)).toMatchObject({
      principal: "ci-deployer",
      permissions: ["agent:deploy"],
    });
  });

  it("lets store errors through, and a failed lookup leaves nothing behind", async () => {
    const { store, key } = await setUp();
    let down = true;
    const flaky = createApiKeyCache(
      {
        ...store,
        getApiKey: (id) => (down ? Promise.reject(new Error("down")) : store.getApiKey(id)),
      },
      { ttlMs: TTL_MS, maxEntries: 4 },
    );
    await expect(verifyApiKey(key, flaky, NOW)).rejects.toThrow("down");
    down = false;
    expect(reasonOf(await verifyApiKey(key, flaky, NOW))).toBe("ok");
    expect(store.lookups).toBe(1);
  });

  it("invalidate and clear drop entries; ttlMs 0 turns caching off", async () => {
    const { store, cache, key, id } = await setUp();
    await verifyApiKey(key, cache, NOW);
    cache.invalidate(id);
    await verifyApiKey(key, cache, NOW);
    cache.clear();
    await verifyApiKey(key, cache, NOW);
    expect(store.lookups).toBe(3);

    const uncached = createApiKeyCache(store, { ttlMs: 0, maxEntries: 1 });
    await verifyApiKey(key, uncached, NOW);
    await verifyApiKey(key, uncached, NOW);
    expect(store.lookups).toBe(5);
  });

  it("refuses a negative TTL or a size below one", () => {
    const store = new CountingStore();
    expect(() => createApiKeyCache(store, { ttlMs: -1, maxEntries: 1 })).toThrow(TypeError);
    expect(() => createApiKeyCache(store, { ttlMs: 1.5, maxEntries: 1 })).toThrow(TypeError);
    expect(() => createApiKeyCache(store, { ttlMs: 1, maxEntries: 0 })).toThrow(TypeError);
  });
});
