// API keys: `sgk_<id>_<secret>` credentials, stored only as a SHA-256 hash, checked in constant time.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { SignetError, isAgentId } from "@signet/protocol";
import type { ApiKeyRecord, ApiKeyStore, PrincipalKind, StoreContext } from "../store/types.js";
import { type AuthFailure, authFailure } from "./auth-failure.js";
import { isPrincipalKind } from "./principal-checks.js";
import { type Principal, isPermissionGrant } from "./principal.js";

/** Every API key starts with this, so secret scanners and people can recognise one. */
export const API_KEY_PREFIX = "sgk_";

// 12 random bytes give a 16-character base64url id with no padding. The id is public (it is logged and
// shown in listings) so it needs uniqueness, not secrecy: 96 bits make a collision negligible even
// across billions of keys, and a random id reveals nothing about how many keys exist.
const ID_BYTES = 12;
// 32 random bytes (256 bits) is the secret: far beyond brute force, which is also why a single fast
// SHA-256 suffices for storage; a slow password hash only helps low-entropy secrets.
const SECRET_BYTES = 32;

// Parsed by position, not by splitting on `_`: base64url itself contains `_` and `-`. The secret's last
// character may only carry 2 significant bits (256 = 42 * 6 + 4), so it is one of 16 characters; that
// keeps exactly one accepted spelling per key.
const API_KEY_PATTERN = /^sgk_([A-Za-z0-9_-]{16})_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const API_KEY_ID_PATTERN = /^[A-Za-z0-9_-]{16}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A freshly generated key. `key` is the only copy of the secret: show it once, store `hash`. */
export interface GeneratedApiKey {
  readonly key: string;
  readonly id: string;
  readonly hash: string;
}

/** SHA-256 of the whole key string; its lower-case hex is ApiKeyRecord.hash. */
function hashKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/**
 * Generates a new API key from node:crypto randomness.
 *
 * Example: `const { key, id, hash } = generateApiKey(); // key = "sgk_Q2x...._3vB..."`
 */
export function generateApiKey(): GeneratedApiKey {
  const id = randomBytes(ID_BYTES).toString("base64url");
  const secret = randomBytes(SECRET_BYTES).toString("base64url");
  const key = `${API_KEY_PREFIX}${id}_${secret}`;
  return { key, id, hash: hashKey(key).toString("hex") };
}

/**
 * Checks the exact key format and returns the key's public id, or undefined.
 *
 * Example: `parseApiKey(generateApiKey().key)` → the 16-character id; `parseApiKey("sgk_x")` → undefined.
 */
export function parseApiKey(text: string): string | undefined {
  if (typeof text !== "string") return undefined;
  return API_KEY_PATTERN.exec(text)?.[1];
}

/** True when `value` has the shape of an API key id. Example: `isApiKeyId(generateApiKey().id) === true`. */
export function isApiKeyId(value: unknown): value is string {
  return typeof value === "string" && API_KEY_ID_PATTERN.test(value);
}

/**
 * Verifies a presented API key against the store at time `now` (ms). Returns the key's Principal, or an
 * AuthFailure whose reason is for the record only. Store errors are not caught: "could not check" is
 * the caller's to report, and must not look like "refused". The runtime passes a createApiKeyCache
 * wrapper as `store`: that saves the lookup only, since every check below runs on every call.
 *
 * Example: `const result = await verifyApiKey(presented, stores.apiKeys, Date.now());`
 */
export async function verifyApiKey(
  presented: string,
  store: ApiKeyStore,
  now: number,
): Promise<Principal | AuthFailure> {
  const id = parseApiKey(presented);
  if (id === undefined) return authFailure("malformed", "api_key");
  const hints = { credentialId: id };

  // The id is public, so a lookup that is faster for unknown ids leaks nothing worth hiding.
  const record = await store.getApiKey(id);
  if (record === undefined) return authFailure("unknown_key", "api_key", hints);
  if (record.id !== id || !SHA256_HEX.test(record.hash)) {
    return authFailure("invalid_record", "api_key", hints);
  }

  // Both sides are 32-byte digests, so timingSafeEqual never sees unequal lengths and the comparison
  // time does not depend on where the first differing byte is.
  if (!timingSafeEqual(hashKey(presented), Buffer.from(record.hash, "hex"))) {
    return authFailure("bad_secret", "api_key", hints);
  }
  // Revocation and expiry are checked only after the secret matched: a caller without the secret learns
  // nothing about the key's state, and only a genuine holder shows up as "revoked" or "expired".
  if (record.revokedAt !== undefined) return authFailure("revoked", "api_key", hints);
  if (record.expiresAt !== undefined && now >= record.expiresAt) {
    return authFailure("expired", "api_key", hints);
  }
  if (!isAgentId(record.principal) || !isPrincipalKind(record.kind)) {
    return authFailure("invalid_record", "api_key", hints);
  }
  return {
    id: record.principal,
    kind: record.kind,
    permissions: [...record.permissions],
    method: "api_key",
    credentialId: record.id,
  };
}

/** What a new API key is for. Every field is required except the expiry. */
export interface NewApiKey {
  /** A label for people (`ci-deployer`, `alice laptop`). */
  readonly name: string;
  /** The bare id the key authenticates as. */
  readonly principal: string;
  readonly kind: PrincipalKind;
  /**
   * Permissions from PERMISSIONS, or wildcards over a family (`keys:*`); an empty list is allowed (the
   * key identifies but grants nothing, unless its principal is assigned roles).
   */
  readonly permissions: readonly string[];
  /** Lifetime in ms; omitted means the key lives until revoked. */
  readonly expiresInMs?: number;
  /** The creation time (ms); defaults to Date.now(). */
  readonly now?: number;
}

/** The result of createApiKey: the plaintext key (shown once, never stored) and the stored record. */
export interface CreatedApiKey {
  readonly key: string;
  readonly record: ApiKeyRecord;
}

const NAME_PATTERN = /^\P{Cc}{1,128}$/u;

function invalid(message: string): SignetError {
  return new SignetError("INVALID_REQUEST", message);
}

/**
 * Creates and stores a new API key. The returned `key` is the only time the secret exists outside the
 * caller's hands; the store keeps its hash.
 *
 * Example:
 * `const { key } = await createApiKey(stores.apiKeys, { name: "ci", principal: "ci-deployer",
 *   kind: "service", permissions: ["agent:deploy"], expiresInMs: 90 * 86_400_000 }, { actor: "admin" });`
 */
export async function createApiKey(
  store: ApiKeyStore,
  input: NewApiKey,
  ctx: StoreContext,
): Promise<CreatedApiKey> {
  if (typeof input.name !== "string" || !NAME_PATTERN.test(input.name)) {
    throw invalid("name: 1 to 128 characters, no control characters");
  }
  if (!isAgentId(input.principal)) throw invalid("principal: must be a bare id such as `alice`");
  if (!isPrincipalKind(input.kind)) throw invalid("kind: must be agent, user or service");
  if (!Array.isArray(input.permissions)) throw invalid("permissions: must be a list");
  const unknown = input.permissions.filter((permission) => !isPermissionGrant(permission));
  // A typo such as `agent:deplyo` would otherwise grant nothing silently, or be read as granting.
  if (unknown.length > 0) throw invalid(`permissions: unknown ${unknown.map(String).join(", ")}`);
  const { expiresInMs } = input;
  if (expiresInMs !== undefined && !(Number.isSafeInteger(expiresInMs) && expiresInMs > 0)) {
    throw invalid("expiresInMs: must be a positive integer");
  }
  const now = input.now ?? Date.now();

  const generated = generateApiKey();
  const record: ApiKeyRecord = {
    id: generated.id,
    name: input.name,
    principal: input.principal,
    kind: input.kind,
    permissions: [...new Set(input.permissions)],
    hash: generated.hash,
    createdAt: now,
    createdBy: ctx.actor,
    ...(expiresInMs === undefined ? {} : { expiresAt: now + expiresInMs }),
  };
  await store.putApiKey(record, ctx);
  return { key: generated.key, record };
}

/**
 * Revokes an API key by its public id. Returns the updated record, or undefined when there is no such
 * key. A malformed id is refused with INVALID_REQUEST rather than looked up.
 *
 * Example: `await revokeApiKey(stores.apiKeys, "Q2xrZ0x1c3RlcjE2", { actor: "admin" });`
 */
export async function revokeApiKey(
  store: ApiKeyStore,
  id: string,
  ctx: StoreContext,
  now: number = Date.now(),
): Promise<ApiKeyRecord | undefined> {
  if (!isApiKeyId(id)) throw invalid("id: not an API key id");
  return store.revokeApiKey(id, now, ctx);
}
