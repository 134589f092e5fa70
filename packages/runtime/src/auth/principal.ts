// Who is calling, and what they may do: the principal every authentication method produces, and the
// permission catalogue the admin API is guarded by.
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
  /**
   * Permissions such as `agent:deploy`, `metrics:read`, or grants such as `keys:*` and `*`. Once the
   * runtime has resolved the principal's roles, this is the credential's permissions together with
   * those of every assigned role.
   */
  readonly permissions: readonly string[];
  readonly method: AuthMethod;
  /** For API keys: the key's public id, for audit (never the secret). */
  readonly credentialId?: string;
  /** The roles assigned to the principal (RBAC), once resolved; policy rules may match them. */
  readonly roles?: readonly string[];
}

/** Every permission the runtime checks, with what it grants. `*` grants all of them. */
export const PERMISSIONS = {
  "*": "every permission, including ones added later",
  "agent:deploy": "register and update agents",
  "agent:list": "list agents",
  "agent:read": "read an agent's definition and keys (includes agent:list)",
  "agent:keys": "rotate and revoke agent keys",
  "keys:create": "create API keys (with at most the creator's own permissions)",
  "keys:list": "list API keys (never the keys themselves)",
  "keys:revoke": "revoke API keys",
  "auth:keys": "every API key permission: the same as keys:* (kept for keys created before keys:*)",
  "auth:read": "read role assignments and check what a principal may do",
  "auth:roles":
    "assign and unassign roles (includes auth:read; only roles within the caller's own permissions)",
  "config:read": "read the role definitions in effect (roles.yaml)",
  "metrics:read": "read Prometheus metrics",
  "audit:read": "query the audit log",
  "audit:export": "export the audit log (NDJSON, for a SIEM)",
  "policy:read": "explain policy decisions",
  "session:read": "read and list every coordination session (participants always see their own)",
  "session:watch": "watch the lifecycle events of the sessions one may see (GET /v1/sessions/watch)",
  "session:cancel": "cancel any open session, as an operator",
  "envelope:send": "submit envelopes and connect as an agent",
} as const;

/** A permission from the catalogue, or `*`. */
export type Permission = keyof typeof PERMISSIONS;

/** The part of a permission before its `:`: `agent`, `keys`, `audit`... */
export type PermissionFamily = Permission extends infer P
  ? P extends `${infer Family}:${string}`
    ? Family
    : never
  : never;

/** What a credential or a role may carry: a permission, `*`, or every permission of a family (`keys:*`). */
export type PermissionGrant = Permission | `${PermissionFamily}:*`;

/** Every concrete permission (all but `*`), in catalogue order. */
export const CONCRETE_PERMISSIONS: readonly Exclude<Permission, "*">[] = Object.keys(PERMISSIONS).filter(
  (permission): permission is Exclude<Permission, "*"> => permission !== "*",
);

const FAMILIES: ReadonlySet<string> = new Set(
  CONCRETE_PERMISSIONS.map((permission) => permission.slice(0, permission.indexOf(":"))),
);

// Older permissions that stand for newer, finer ones, so credentials created before the finer ones
// existed keep exactly the access they had. Closed under nothing else: one level, fixed in code.
const IMPLIED: Readonly<Partial<Record<Permission, readonly Permission[]>>> = {
  "agent:read": ["agent:list"],
  "auth:keys": ["keys:create", "keys:list", "keys:revoke"],
  "auth:roles": ["auth:read"],
};

/**
 * True for a grant a credential or a role may carry: a catalogue permission, `*`, or `FAMILY:*` for a
 * family the catalogue has. Anything else (a typo, `agent*`, `*:read`, `unknown:*`) is refused where
 * grants are written, so it can never be read as granting more than intended.
 *
 * Example: `isPermissionGrant("keys:*") === true`, `isPermissionGrant("keys:delete") === false`.
 */
export function isPermissionGrant(value: unknown): value is PermissionGrant {
  if (typeof value !== "string") return false;
  if (Object.hasOwn(PERMISSIONS, value)) return true;
  return value.endsWith(":*") && FAMILIES.has(value.slice(0, -2));
}

/** The concrete permissions one grant stands for; empty for tokens that are not grants (`openid`). */
function expandGrant(grant: string): readonly Exclude<Permission, "*">[] {
  if (grant === "*") return CONCRETE_PERMISSIONS;
  if (grant.endsWith(":*")) {
    const family = grant.slice(0, -1);
    // Only a known family expands: `:*` or `unknown:*` grant nothing.
    if (!FAMILIES.has(family.slice(0, -1))) return [];
    return CONCRETE_PERMISSIONS.filter((permission) => permission.startsWith(family));
  }
  return Object.hasOwn(PERMISSIONS, grant) ? [grant as Exclude<Permission, "*">] : [];
}

/**
 * The concrete permissions a list of grants amounts to: wildcards expanded against the catalogue, older
 * permissions expanded to the finer ones they stand for, tokens the runtime does not know ignored.
 *
 * Example: `effectivePermissions(["keys:*", "agent:read"])` → keys:create, keys:list, keys:revoke,
 * agent:read, agent:list.
 */
export function effectivePermissions(grants: readonly string[]): ReadonlySet<Permission> {
  // Not memoized: a few dozen set insertions cost less than the doubt a cache keyed on a mutable
  // array would leave about whether a check saw the grants as they are now.
  const out = new Set<Permission>();
  for (const grant of grants) {
    if (grant === "*") out.add("*");
    for (const permission of expandGrant(grant)) {
      out.add(permission);
      for (const implied of IMPLIED[permission] ?? []) out.add(implied);
    }
  }
  return out;
}

/**
 * True when `grants` cover `required`. `required` may itself be a grant: `keys:*` is covered only by
 * grants that cover every `keys:` permission, and `*` only by `*` itself, so a family or a catalogue
 * that grows later is never granted by accident. Unknown requirements are never covered.
 *
 * Example: `grantsPermission(["agent:*"], "agent:deploy") === true`;
 * `grantsPermission(["keys:create"], "keys:*") === false`.
 */
export function grantsPermission(grants: readonly string[], required: string): boolean {
  const held = effectivePermissions(grants);
  if (required === "*") return held.has("*");
  if (held.has("*")) return isPermissionGrant(required);
  const needed = expandGrant(required);
  return needed.length > 0 && needed.every((permission) => held.has(permission));
}

/**
 * True when the principal holds `permission`: directly, through a wildcard (`*`, `keys:*`) or through
 * an older permission that stands for it (`auth:keys` holds `keys:create`).
 *
 * Example: `hasPermission({ permissions: ["agent:read"] }, "agent:list") === true`.
 */
export function hasPermission(
  principal: Pick<Principal, "permissions">,
  permission: PermissionGrant,
): boolean {
  return grantsPermission(principal.permissions, permission);
}
