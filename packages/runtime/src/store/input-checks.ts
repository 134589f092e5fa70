// Checks every adapter makes on its input the same way, so they refuse the same calls with the same code.
import { SignetError } from "@signet/protocol";
import type { AgentKeyRecord, AgentRecord, EventQuery } from "./types.js";

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
 * The query's limit as a count, or undefined for "no limit"; refuses negative and fractional limits.
 *
 * Example: `eventLimit({ limit: 10 }) === 10`.
 */
export function eventLimit(query: EventQuery): number | undefined {
  const { limit } = query;
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new SignetError("INVALID_REQUEST", "The event limit must be a non-negative integer");
  }
  return limit;
}
