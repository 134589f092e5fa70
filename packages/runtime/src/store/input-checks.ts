// Checks every adapter makes on its input the same way, so they refuse the same calls with the same code.
import { SignetError } from "@signet/protocol";
import type { AdmitRequest, AgentKeyRecord, AgentRecord } from "./types.js";

/**
 * Refuses keys that name another agent, or one kid twice: `putAgent` must store all or nothing.
 *
 * Example: `assertKeysBelongTo(agent, keys)` before the transaction starts.
 */
export function assertKeysBelongTo(agent: AgentRecord, keys: readonly AgentKeyRecord[]): void {
  const seen = new Set<string>();
  for (const key of keys) {
    if (key.agentId !== agent.id) {
      throw new SignetError("INVALID_REQUEST", `Key ${key.kid} belongs to ${key.agentId}, not ${agent.id}`);
    }
    if (seen.has(key.kid)) {
      throw new SignetError("INVALID_REQUEST", `Key ${key.kid} is listed twice`);
    }
    seen.add(key.kid);
  }
}

/**
 * Checks an admit request's clock and windows, and returns when the records it creates expire: after
 * the retention, but never before twice the window, so a nonce outlives every timestamp that could
 * still pass as fresh with it.
 *
 * Example: `admitExpiresAt({ ...request, now: 1_000, windowMs: 60_000, retentionMs: 0 }) === 121_000`.
 */
export function admitExpiresAt(request: AdmitRequest): number {
  const { ts, now, windowMs, retentionMs } = request;
  // NaN compares false with everything, so an unchecked NaN timestamp would pass as fresh.
  if (!Number.isSafeInteger(ts) || !Number.isSafeInteger(now)) {
    throw new SignetError("INVALID_REQUEST", "Message and clock timestamps must be integer milliseconds");
  }
  if (
    !Number.isSafeInteger(windowMs) ||
    windowMs < 0 ||
    !Number.isSafeInteger(retentionMs) ||
    retentionMs < 0
  ) {
    throw new SignetError("INVALID_REQUEST", "The replay window and retention must be non-negative integers");
  }
  const expiresAt = now + Math.max(retentionMs, 2 * windowMs);
  if (!Number.isSafeInteger(expiresAt)) {
    throw new SignetError("INVALID_REQUEST", "The replay retention reaches past the largest safe timestamp");
  }
  return expiresAt;
}

/**
 * The outcome as JSON text, which is how every adapter stores it; refuses what JSON cannot hold
 * (`undefined`, a function), since a retry would otherwise be answered with nothing.
 *
 * Example: `outcomeJson({ status: 200 }) === '{"status":200}'`.
 */
export function outcomeJson(outcome: unknown): string {
  // JSON.stringify is typed as returning string, but gives undefined for undefined and functions.
  const json = JSON.stringify(outcome) as string | undefined;
  if (json === undefined) {
    throw new SignetError("INVALID_REQUEST", "A message outcome must be a JSON value");
  }
  return json;
}
