// Agents' public keys from the registry (GET /v1/agents/:id), cached for a time limit: a client checks
// executors' results with them, an agent its callers' invocations.
import { Ed25519PublicKey, isAgentId, parseStrictJson } from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import { ForbiddenError, SdkError, UnauthenticatedError, errorFromWire } from "./errors.js";
import type { HttpTransport } from "./http-transport.js";

/** A registered key as the SDK keeps it. */
export interface RegisteredKey {
  readonly key: Ed25519PublicKey;
  readonly state: "active" | "retiring" | "expired" | "revoked";
  /** When an expired (rotated-out) key stopped being valid for new signatures (ms). */
  readonly notAfter: number | undefined;
}

/** What a lookup found. `refused`: this principal may not read the registry (no `agent:read`). */
export type RegistryKeyLookup =
  | { readonly status: "found"; readonly key: RegisteredKey }
  | { readonly status: "unknown" }
  | { readonly status: "refused" };

interface CacheEntry {
  readonly fetchedAt: number;
  readonly keys: ReadonlyMap<string, RegisteredKey>;
}

const MAX_AGENTS = 1024;
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * Looks agents' keys up in the runtime's registry, once per agent per `ttlMs`; an unknown key id
 * triggers one refetch (the executor may have rotated). A refusal (`FORBIDDEN`/`UNAUTHENTICATED` on
 * this read) is remembered for `ttlMs` too, so a caller without `agent:read` does not ask every time.
 *
 * Example: `await directory.lookup("billing-bot", kid, auth)`.
 */
export class RegistryKeyDirectory {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #refusedUntil = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<CacheEntry | "refused">>();

  constructor(
    private readonly transport: HttpTransport,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async lookup(agentId: string, kid: string, auth: AuthConfig): Promise<RegistryKeyLookup> {
    let entry = this.#entries.get(agentId);
    let fresh = false;
    if (entry === undefined || this.now() - entry.fetchedAt > this.ttlMs) {
      const fetched = await this.#fetch(agentId, auth);
      if (fetched === "refused") return { status: "refused" };
      entry = fetched;
      fresh = true;
    }
    let key = entry.keys.get(kid);
    if (key === undefined && !fresh) {
      const fetched = await this.#fetch(agentId, auth);
      if (fetched === "refused") return { status: "refused" };
      key = fetched.keys.get(kid);
    }
    return key === undefined ? { status: "unknown" } : { status: "found", key };
  }

  /** Drops an agent's cached keys at once (a `key_revoked` notice), so the next lookup asks the registry. */
  forget(agentId: string): void {
    this.#entries.delete(agentId);
  }

  /** Drops every cached key (after a reconnect, when revocation notices may have been missed). */
  clear(): void {
    this.#entries.clear();
    this.#refusedUntil.clear();
  }

  #fetch(agentId: string, auth: AuthConfig): Promise<CacheEntry | "refused"> {
    const refusedUntil = this.#refusedUntil.get(auth.expectedSender);
    if (refusedUntil !== undefined && refusedUntil > this.now()) return Promise.resolve("refused");
    // Concurrent calls for one executor share one request.
    const key = `${auth.expectedSender}\n${agentId}`;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#load(agentId, auth).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #load(agentId: string, auth: AuthConfig): Promise<CacheEntry | "refused"> {
    if (!isAgentId(agentId)) throw new SdkError("Not an agent id", { reason: "agent_id" });
    const response = await this.transport.request({
      method: "GET",
      path: `v1/agents/${agentId}`,
      auth,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    });
    if (response.status === 404) {
      const entry = { fetchedAt: this.now(), keys: new Map<string, RegisteredKey>() };
      this.#remember(agentId, entry);
      return entry;
    }
    if (response.status !== 200) {
      const error = errorFromWire(response.text, response.status);
      if (error instanceof ForbiddenError || error instanceof UnauthenticatedError) {
        this.#refusedUntil.set(auth.expectedSender, this.now() + this.ttlMs);
        return "refused";
      }
      throw error;
    }
    const entry = { fetchedAt: this.now(), keys: parseAgentKeys(response.text, agentId) };
    this.#remember(agentId, entry);
    return entry;
  }

  #remember(agentId: string, entry: CacheEntry): void {
    this.#entries.delete(agentId);
    this.#entries.set(agentId, entry);
    if (this.#entries.size > MAX_AGENTS) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }
}

const KEY_STATES = new Set(["active", "retiring", "expired", "revoked"]);

/** Reads `{ id, keys: [{ kid, public_key, state, not_after }] }`; a key whose id does not match is dropped. */
function parseAgentKeys(text: string, agentId: string): Map<string, RegisteredKey> {
  let value: unknown;
  try {
    value = parseStrictJson(text, { maxBytes: MAX_RESPONSE_BYTES });
  } catch (cause) {
    throw new SdkError("The runtime's agent record is malformed", { reason: "bad_response", cause });
  }
  const record = value as { id?: unknown; keys?: unknown } | null;
  if (typeof record !== "object" || record === null || record.id !== agentId || !Array.isArray(record.keys)) {
    throw new SdkError("The runtime's agent record is malformed", { reason: "bad_response" });
  }
  const keys = new Map<string, RegisteredKey>();
  for (const item of record.keys as unknown[]) {
    const {
      kid,
      public_key: publicKey,
      state,
      not_after: notAfter,
    } = (item ?? {}) as Record<string, unknown>;
    if (typeof kid !== "string" || typeof publicKey !== "string" || typeof state !== "string") continue;
    if (!KEY_STATES.has(state)) continue;
    let key: Ed25519PublicKey;
    try {
      key = Ed25519PublicKey.fromBase64Url(publicKey);
    } catch {
      continue;
    }
    // The key id is computed, never taken on trust: a record cannot bind a kid to someone else's key.
    if (key.kid !== kid) continue;
    const notAfterMs = typeof notAfter === "string" ? Date.parse(notAfter) : Number.NaN;
    keys.set(kid, {
      key,
      state: state as RegisteredKey["state"],
      notAfter: Number.isFinite(notAfterMs) ? notAfterMs : undefined,
    });
  }
  return keys;
}
