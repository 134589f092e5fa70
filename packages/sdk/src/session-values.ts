// The values session bodies carry, checked before anything is signed: enumerations taken in any case
// and sent in the exact case the runtime requires, ids and numbers in their ranges.
import { isAgentId } from "@signet/protocol";
import { SdkError } from "./errors.js";
import { type JsonObject, isJsonObject } from "./session-wire.js";

/** A string enumeration value in upper, lower or capitalized case (`APPROVE`, `approve`, `Approve`). */
export type AnyCase<T extends string> = T | Lowercase<T> | Uppercase<T> | Capitalize<Lowercase<T>>;

/** A decision vote, as sent (docs/sessions.md). */
export type DecisionVote = "APPROVE" | "REJECT" | "ABSTAIN";
/** An evaluation's recommendation, as sent; `BLOCK` stops the whole decision. */
export type DecisionRecommendation = "APPROVE" | "REVIEW" | "BLOCK" | "REJECT";
/** An objection's severity, as sent (lower case on the wire); `critical` stops the whole decision. */
export type ObjectionSeverity = "low" | "medium" | "high" | "critical";

export const DECISION_VOTES: readonly DecisionVote[] = ["APPROVE", "REJECT", "ABSTAIN"];
export const DECISION_RECOMMENDATIONS: readonly DecisionRecommendation[] = [
  "APPROVE",
  "REVIEW",
  "BLOCK",
  "REJECT",
];
export const OBJECTION_SEVERITIES: readonly ObjectionSeverity[] = ["low", "medium", "high", "critical"];

// What docs/sessions.md calls an id: proposal_id, task_id, counters.
const BODY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MAX_TEXT = 4096;

/** A local refusal of a body value: never sent, reason `session_body`, naming the member. */
export function badValue(member: string, rule: string): never {
  throw new SdkError(`${member} must be ${rule}`, { reason: "session_body" });
}

/**
 * The wire form of an enumeration value given in any case. Only ASCII letters are compared, so no
 * Unicode case mapping can turn an odd string into a valid value.
 */
export function enumValue<T extends string>(value: unknown, allowed: readonly T[], member: string): T {
  if (typeof value === "string" && /^[A-Za-z]{1,32}$/.test(value)) {
    const folded = value.toLowerCase();
    const match = allowed.find((candidate) => candidate.toLowerCase() === folded);
    if (match !== undefined) return match;
  }
  const shown = typeof value === "string" && value.length <= 32 ? ` (got ${JSON.stringify(value)})` : "";
  return badValue(member, `one of ${allowed.join(", ")}, in any case${shown}`);
}

/** A body id (`proposal_id`, `task_id`, `counters`). */
export function idValue(value: unknown, member: string): string {
  if (typeof value !== "string" || !BODY_ID.test(value)) {
    return badValue(member, "1 to 128 of A-Z a-z 0-9 . _ : -, not starting with a symbol");
  }
  return value;
}

/** A text member: 1 to 4096 characters. */
export function textValue(value: unknown, member: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_TEXT) {
    return badValue(member, "text of 1 to 4096 characters");
  }
  return value;
}

/** An agent id member (`to`, `assignee`). */
export function agentValue(value: unknown, member: string): string {
  if (!isAgentId(value)) return badValue(member, "a bare agent id");
  return value;
}

/** A number in a closed range. */
export function numberValue(value: unknown, member: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    return badValue(member, `a number from ${min} to ${max}`);
  }
  return value;
}

/** A JSON object member (`terms`, `context`). */
export function objectValue(value: unknown, member: string): JsonObject {
  if (!isJsonObject(value)) return badValue(member, "a JSON object");
  return value;
}

/** `{ name: value }` when the value is given, `{}` when it is not (optional members are left out, never null). */
export function optional<T>(name: string, value: T | undefined, check: (value: T) => T): Record<string, T> {
  return value === undefined ? {} : { [name]: check(value) };
}
