// API keys: format, storage by hash, and every way verification refuses a key.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SignetError } from "@signet/protocol";
import {
  createApiKey,
  generateApiKey,
  isApiKeyId,
  parseApiKey,
  revokeApiKey,
  verifyApiKey,
} from "../../src/auth/api-keys.js";
import { type AuthFailure, isAuthFailure } from "../../src/auth/auth-failure.js";
import type { Principal } from "../../src/auth/principal.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { ApiKeyStore } from "../../src/store/types.js";
import { NOW, recordStore } from "./auth-fixtures.js";

const ctx = { actor: "admin" };

function reasonOf(result: Principal | AuthFailure): string {
  return isAuthFailure(result) ? result.reason : "ok";
}

async function storeWithKey(
  extra: { expiresInMs?: number } = {},
): Promise<{ store: ApiKeyStore; key: string; id: string }> {
  const store = createMemoryStores().apiKeys;
  const { key, record } = await createApiKey(
    store,
    {
      name: "ci",
      principal: "ci-deployer",
      kind: "service",
      permissions: ["agent:deploy"],
      now: NOW,
      ...extra,
    },
    ctx,
  );
  return { store, key, id: record.id };
}

/** Changes one character of the secret to another that keeps the key well-formed. */
function otherSecret(key: string): string {
  const at = key.length - 5;
  const swapped = key[at] === "A" ? "B" : "A";
  return key.slice(0, at) + swapped + key.slice(at + 1);
}

describe("generateApiKey / parseApiKey", () => {
  it("generates sgk_<16-char id>_<43-char secret> and parses its id back", () => {
    const { key, id, hash } = generateApiKey();
    expect(key).toMatch(/^sgk_[A-Za-z0-9_-]{16}_[A-Za-z0-9_-]{43}$/);
    expect(key.length).toBe(64);
    expect(parseApiKey(key)).toBe(id);
    expect(isApiKeyId(id)).toBe(true);
    expect(hash).toBe(createHash("sha256").update(key).digest("hex"));
  });

  it("parses every generated key, even ids and secrets full of `_` and `-`", () => {
    for (let i = 0; i < 500; i += 1) {
      const { key, id } = generateApiKey();
      expect(parseApiKey(key)).toBe(id);
    }
  });

  it("refuses anything not exactly in the format", () => {
    const { key } = generateApiKey();
    const bad = [
      "",
      "sgk_",
      key.slice(0, -1),
      `${key}A`,
      `SGK_${key.slice(4)}`,
      ` ${key}`,
      `${key}\n`,
      key.replace(/^sgk_/, "sgx_"),
      `${key.slice(0, 20)}.${key.slice(21)}`,
      `${key.slice(0, -1)}=`,
      // The secret's last character may only carry 2 bits: `B` would mean non-zero trailing bits.
      `${key.slice(0, -1)}B`,
    ];
    for (const text of bad) expect(parseApiKey(text), JSON.stringify(text)).toBeUndefined();
  });

  it("property: an arbitrary string either fails to parse or is a well-formed key", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const id = parseApiKey(text);
        if (id !== undefined) {
          expect(text.length).toBe(64);
          expect(text.slice(4, 20)).toBe(id);
        }
      }),
    );
  });

  it("property: a generated key with any one character changed is refused or names another key", () => {
    const { key, id } = generateApiKey();
    fc.assert(
      fc.property(
        fc.nat({ max: key.length - 1 }),
        fc.string({ minLength: 1, maxLength: 1 }),
        (at, replacement) => {
          const changed = key.slice(0, at) + replacement + key.slice(at + 1);
          const parsed = parseApiKey(changed);
          if (parsed !== undefined && at >= 4 && at < 20 && changed !== key) expect(parsed).not.toBe(id);
        },
      ),
    );
  });
});

describe("createApiKey", () => {
  it("stores the hash of the key, never the key or its secret", async () => {
    const store = createMemoryStores().apiKeys;
    const { key, record } = await createApiKey(
      store,
      { name: "ci", principal: "ci-deployer", kind: "service", permissions: ["agent:deploy"], now: NOW },
      ctx,
    );
    const secret = key.slice(21);
    const stored = await store.getApiKey(record.id);
    expect(stored).toEqual(record);
    expect(stored!.hash).not.toBe(key);
    expect(stored!.hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect(JSON.stringify(await store.listApiKeys())).not.toContain(secret);
    expect(record).toMatchObject({ principal: "ci-deployer", createdAt: NOW, createdBy: "admin" });
    expect(record.expiresAt).toBeUndefined();
  });

  it("sets expiresAt from expiresInMs", async () => {
    const store = createMemoryStores().apiKeys;
    const { record } = await createApiKey(
      store,
      { name: "tmp", principal: "alice", kind: "user", permissions: [], expiresInMs: 60_000, now: NOW },
      ctx,
    );
    expect(record.expiresAt).toBe(NOW + 60_000);
  });

  it("refuses bad input with INVALID_REQUEST", async () => {
    const store = createMemoryStores().apiKeys;
    const base = { name: "k", principal: "alice", kind: "user" as const, permissions: [] as string[] };
    const bad = [
      { ...base, name: "" },
      { ...base, principal: "Alice" },
      { ...base, principal: "agent:alice" },
      { ...base, kind: "root" as "user" },
      { ...base, permissions: ["agent:deplyo"] },
      { ...base, expiresInMs: 0 },
      { ...base, expiresInMs: 1.5 },
    ];
    for (const input of bad) {
      await expect(createApiKey(store, input, ctx)).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    }
    expect(await store.listApiKeys()).toEqual([]);
  });
});

describe("verifyApiKey", () => {
  it("accepts a valid key and returns its principal, without the secret", async () => {
    const { store, key, id } = await storeWithKey();
    const result = await verifyApiKey(key, store, NOW);
    expect(result).toEqual({
      id: "ci-deployer",
      kind: "service",
      permissions: ["agent:deploy"],
      method: "api_key",
      credentialId: id,
    });
    expect(JSON.stringify(result)).not.toContain(key.slice(21));
  });

  it("refuses the right id with a wrong secret of the same length (bad_secret)", async () => {
    const { store, key, id } = await storeWithKey();
    const wrong = otherSecret(key);
    expect(parseApiKey(wrong)).toBe(id);
    expect(wrong.length).toBe(key.length);
    const result = await verifyApiKey(wrong, store, NOW);
    expect(result).toEqual({
      ok: false,
      reason: "bad_secret",
      method: "api_key",
      hints: { credentialId: id },
    });
  });

  it("refuses an unknown id", async () => {
    const { store } = await storeWithKey();
    expect(reasonOf(await verifyApiKey(generateApiKey().key, store, NOW))).toBe("unknown_key");
  });

  it("refuses a malformed key without touching the store", async () => {
    let lookups = 0;
    const store: ApiKeyStore = {
      ...recordStore([]),
      getApiKey: () => {
        lookups += 1;
        return Promise.resolve(undefined);
      },
    };
    for (const text of ["", "sgk_short", "Bearer sgk_x", generateApiKey().key.toUpperCase()]) {
      expect(reasonOf(await verifyApiKey(text, store, NOW))).toBe("malformed");
    }
    expect(lookups).toBe(0);
  });

  it("refuses an expired key from its expiry instant on", async () => {
    const { store, key } = await storeWithKey({ expiresInMs: 1_000 });
    expect(reasonOf(await verifyApiKey(key, store, NOW + 999))).toBe("ok");
    expect(reasonOf(await verifyApiKey(key, store, NOW + 1_000))).toBe("expired");
  });

  it("refuses a revoked key", async () => {
    const { store, key, id } = await storeWithKey();
    const revoked = await revokeApiKey(store, id, ctx, NOW + 1);
    expect(revoked?.revokedAt).toBe(NOW + 1);
    expect(reasonOf(await verifyApiKey(key, store, NOW + 2))).toBe("revoked");
  });

  it("reports expiry and revocation only to a holder of the secret", async () => {
    const { store, key, id } = await storeWithKey({ expiresInMs: 1_000 });
    await revokeApiKey(store, id, ctx, NOW);
    expect(reasonOf(await verifyApiKey(otherSecret(key), store, NOW + 5_000))).toBe("bad_secret");
  });

  it("refuses a stored record whose hash is corrupt or whose principal is not a bare id", async () => {
    const { key, id, hash } = generateApiKey();
    const record = {
      id,
      name: "k",
      principal: "alice",
      kind: "user" as const,
      permissions: [],
      hash,
      createdAt: NOW,
      createdBy: "admin",
    };
    expect(reasonOf(await verifyApiKey(key, recordStore([record]), NOW))).toBe("ok");
    const corrupt = [
      { ...record, hash: hash.slice(2) },
      { ...record, hash: hash.toUpperCase() },
      { ...record, principal: "Alice" },
    ];
    for (const bad of corrupt) {
      expect(reasonOf(await verifyApiKey(key, recordStore([bad]), NOW))).toBe("invalid_record");
    }
  });

  it("lets store errors through: 'could not check' is not 'refused'", async () => {
    const store: ApiKeyStore = { ...recordStore([]), getApiKey: () => Promise.reject(new Error("down")) };
    await expect(verifyApiKey(generateApiKey().key, store, NOW)).rejects.toThrow("down");
  });
});

describe("revokeApiKey", () => {
  it("returns undefined for an unknown id and refuses a malformed one", async () => {
    const store = createMemoryStores().apiKeys;
    expect(await revokeApiKey(store, generateApiKey().id, ctx)).toBeUndefined();
    await expect(revokeApiKey(store, "not-an-id", ctx)).rejects.toBeInstanceOf(SignetError);
    await expect(revokeApiKey(store, "not-an-id", ctx)).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });
});
