// Who is calling: the principal every authentication method produces, whatever the method.
import type { PrincipalKind } from "../store/types.js";

/** How the principal was authenticated. */
export type AuthMethod = "api_key" | "jwt" | "mtls" | "dev";

/**
 * An authenticated caller. `id` is a bare id (DESIGN "Identities"): the same string is an envelope's
 * sender, an API key's principal, a JWT's `sub` and a certificate's CN.
 */
export interface Principal {
  readonly id: string;
  readonly kind: PrincipalKind;
  /** Permissions such as `agent:deploy`, `metrics:read`; `*` grants every permission. */
  readonly permissions: readonly string[];
  readonly method: AuthMethod;
  /** For API keys: the key's public id, for audit (never the secret). */
  readonly credentialId?: string;
}

/** Every permission the runtime checks, with what it grants. */
export const PERMISSIONS = {
  "*": "every permission",
  "agent:deploy": "register and update agents",
  "agent:read": "read the agent registry",
  "agent:keys": "rotate and revoke agent keys",
  "auth:keys": "create, list and revoke API keys",
  "metrics:read": "read Prometheus metrics",
  "audit:read": "query and export the audit log",
  "policy:read": "explain policy decisions",
  "envelope:send": "submit envelopes and connect as an agent",
} as const;

export type Permission = keyof typeof PERMISSIONS;

/** True when the principal holds `permission` (directly or through `*`). */
export function hasPermission(principal: Principal, permission: Permission): boolean {
  return principal.permissions.includes("*") || principal.permissions.includes(permission);
}
