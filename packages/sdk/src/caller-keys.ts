// The executor's view of its callers' keys: revocation notices applied at once, registry checks cached.
import { SignetError, type Ed25519PublicKey, type Envelope } from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import type { HttpTransport } from "./http-transport.js";
import { RegistryKeyDirectory } from "./registry-keys.js";

/**
 * How an agent confirms the key a caller signed with.
 *
 * - `"delivery"`: the key the runtime names in the signed delivery (`sender_key`) — the runtime looked
 *   it up in its registry before signing the delivery.
 * - `"registry"`: also looks the key up in the registry itself (`GET /v1/agents/:id`, which needs
 *   `agent:read`), cached for `callerKeyTtlMs`, and refuses a key the registry does not list as usable.
 * - `"auto"` (default): `"registry"` when the agent may read the registry, else `"delivery"`.
 *
 * In every mode a `key_revoked` notice from the runtime stops a key at once, whatever is cached.
 */
export type CallerKeyMode = "auto" | "registry" | "delivery";

const MAX_REVOKED_KIDS = 10_000;

function refuse(code: "KEY_REVOKED" | "UNKNOWN_AGENT" | "UNAVAILABLE", reason: string): never {
  throw new SignetError(code, undefined, { reason });
}

/**
 * Keeps the revoked key ids an agent has been told about and, in registry mode, a time-limited cache of
 * callers' registered keys. A notice drops the caller's cached keys and marks the key id revoked for
 * good; after a reconnect the cache is emptied, since notices sent while disconnected were missed.
 *
 * Example: `await callerKeys.check(envelope, senderKey, auth)` throws `KEY_REVOKED` for a revoked key.
 */
export class CallerKeys {
  readonly #revoked = new Set<string>();
  readonly #registry: RegistryKeyDirectory;

  constructor(
    private readonly mode: CallerKeyMode,
    transport: HttpTransport,
    ttlMs: number,
  ) {
    this.#registry = new RegistryKeyDirectory(transport, ttlMs);
  }

  /** A `key_revoked` notice: the key stops working now, not when a cache entry expires. */
  revoke(agent: string, kid: string): void {
    if (this.#revoked.size >= MAX_REVOKED_KIDS) this.#revoked.delete(this.#revoked.values().next().value!);
    this.#revoked.add(kid);
    this.#registry.forget(agent);
  }

  /** True for a key id the runtime announced as revoked. */
  isRevoked(kid: string): boolean {
    return this.#revoked.has(kid);
  }

  /** Forgets cached registry answers (revoked ids stay revoked). */
  reset(): void {
    this.#registry.clear();
  }

  /**
   * Confirms the caller's key per the mode. Throws a `SignetError` with the code the agent answers:
   * `KEY_REVOKED`, `UNKNOWN_AGENT` (the registry does not list the key for the sender) or `UNAVAILABLE`
   * (the registry could not be asked; the caller may retry).
   */
  async check(envelope: Envelope, senderKey: Ed25519PublicKey, auth: AuthConfig): Promise<void> {
    if (this.#revoked.has(senderKey.kid)) refuse("KEY_REVOKED", "sender_key");
    if (this.mode === "delivery") return;
    let lookup;
    try {
      lookup = await this.#registry.lookup(envelope.from, senderKey.kid, auth);
    } catch {
      // Fail closed: a registry the agent relies on but cannot reach confirms nothing.
      return refuse("UNAVAILABLE", "caller_key_registry");
    }
    // Checked again after the wait: a notice may have arrived while the registry was being asked.
    if (this.#revoked.has(senderKey.kid)) refuse("KEY_REVOKED", "sender_key");
    if (lookup.status === "refused") {
      if (this.mode === "registry") refuse("UNAVAILABLE", "caller_key_registry_forbidden");
      return;
    }
    if (lookup.status === "unknown") refuse("UNKNOWN_AGENT", "caller_key");
    const { state, notAfter } = lookup.key;
    if (state === "revoked") {
      this.revoke(envelope.from, senderKey.kid);
      refuse("KEY_REVOKED", "caller_key");
    }
    if (state === "expired" && (notAfter === undefined || envelope.ts > notAfter)) {
      refuse("KEY_REVOKED", "caller_key_expired");
    }
  }
}
