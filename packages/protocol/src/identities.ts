// Identities and targets: one bare-id grammar for senders, principals, JWT subjects and certificate CNs.

/** A bare agent id: `alice`, `billing-bot`. */
export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;
/** A tool name: `database/query`. */
export const TOOL_NAME_PATTERN = /^[a-z0-9][a-z0-9._/-]{0,127}$/;
/** A capability name: `order-processing`. */
export const CAPABILITY_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** A session target's id: what an envelope's `session` member may hold. */
const SESSION_TARGET_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** The kinds a target can name: `session:ID` is a coordination session's messages' receiver. */
export type TargetKind = "agent" | "tool" | "capability" | "session";

/** A parsed target such as `tool:database/query`. */
export interface Target {
  readonly kind: TargetKind;
  readonly name: string;
}

/** True when `value` is a valid bare agent id. Example: `isAgentId("alice") === true`. */
export function isAgentId(value: unknown): value is string {
  return typeof value === "string" && AGENT_ID_PATTERN.test(value);
}

/** Parses `agent:ID`, `tool:NAME`, `capability:NAME` or `session:ID`; undefined for anything else. */
export function parseTarget(value: unknown): Target | undefined {
  if (typeof value !== "string") return undefined;
  const colon = value.indexOf(":");
  if (colon < 0) return undefined;
  const kind = value.slice(0, colon);
  const name = value.slice(colon + 1);
  switch (kind) {
    case "agent":
      return AGENT_ID_PATTERN.test(name) ? { kind, name } : undefined;
    case "tool":
      return TOOL_NAME_PATTERN.test(name) && !name.includes("//") && !name.endsWith("/")
        ? { kind, name }
        : undefined;
    case "capability":
      return CAPABILITY_NAME_PATTERN.test(name) ? { kind, name } : undefined;
    case "session":
      return SESSION_TARGET_PATTERN.test(name) ? { kind, name } : undefined;
    default:
      return undefined;
  }
}

/** Formats a target. Example: `formatTarget({ kind: "tool", name: "db/query" }) === "tool:db/query"`. */
export function formatTarget(target: Target): string {
  return `${target.kind}:${target.name}`;
}
