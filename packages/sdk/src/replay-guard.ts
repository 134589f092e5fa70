// The executor's own memory of what it ran: (sender, id) and (sender, nonce), bounded, oldest dropped first.
import type { ContentHash } from "@signet/protocol";

/** Why an envelope was refused, or undefined when it is new. */
export type ReplayVerdict = "redelivered" | "duplicate_id" | "nonce_reused" | undefined;

/**
 * Remembers the last `capacity` envelopes an executor accepted. The runtime is the authority on
 * replay (it remembers across restarts and instances); this is defence in depth against a runtime
 * that delivers one call twice. Entries older than the freshness window are refused as stale before
 * they reach here, so the guard only has to hold one window's worth of calls; past `capacity` calls
 * per window the oldest are forgotten and only the runtime's check remains.
 *
 * Example: `guard.check(env.from, env.id, env.nonce, hash) ?? guard.remember(env.from, env.id, env.nonce, hash)`.
 */
export class ReplayGuard {
  readonly #ids = new Map<string, ContentHash>();
  readonly #nonces = new Map<string, string>();

  constructor(private readonly capacity: number) {}

  /** The verdict on an envelope, without remembering it. */
  check(sender: string, id: string, nonce: string, hash: ContentHash): ReplayVerdict {
    const seenHash = this.#ids.get(`${sender}\n${id}`);
    if (seenHash !== undefined) return seenHash === hash ? "redelivered" : "duplicate_id";
    const seenId = this.#nonces.get(`${sender}\n${nonce}`);
    if (seenId !== undefined && seenId !== id) return "nonce_reused";
    return undefined;
  }

  /** Records an accepted envelope. */
  remember(sender: string, id: string, nonce: string, hash: ContentHash): void {
    this.#ids.set(`${sender}\n${id}`, hash);
    this.#nonces.set(`${sender}\n${nonce}`, id);
    // Maps iterate in insertion order, so the first key is the oldest.
    while (this.#ids.size > this.capacity) this.#ids.delete(this.#ids.keys().next().value!);
    while (this.#nonces.size > this.capacity) this.#nonces.delete(this.#nonces.keys().next().value!);
  }
}
