// Roles for the admin API (RBAC): named sets of permission grants, the built-in defaults, and lookups.
import { type PermissionGrant, effectivePermissions, grantsPermission } from "./principal.js";

/** One role: the permission grants it carries, and where its definition came from. */
export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly PermissionGrant[];
  /** `default` for a built-in role, otherwise the file that defined it. */
  readonly source: string;
}

/** The roles in effect, by name. */
export type RoleCatalogue = ReadonlyMap<string, RoleDefinition>;

// Lower-case, starts with a letter, like a policy rule's role names; `:` and `*` are kept out so a role
// name can never be mistaken for a permission or a glob.
const ROLE_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** True for a well-formed role name. Example: `isRoleName("operator") === true`, `isRoleName("*") === false`. */
export function isRoleName(value: unknown): value is string {
  return typeof value === "string" && ROLE_NAME.test(value);
}

/**
 * The built-in roles. Each is a strict superset of the one before it, and none holds `*`: what only `*`
 * may do (anything added to the catalogue later) stays with the keys `signet init` creates.
 * - viewer: sees what is deployed and how the runtime is doing, changes nothing, reads no audit log.
 * - developer: ships agents (deploy, rotate and revoke their keys) and reads the audit log to debug
 *   them; manages no credentials and no roles.
 * - operator: runs the runtime: everything a developer does, plus API keys, role assignments, audit
 *   export and configuration. Still limited by "only roles within your own permissions".
 */
export const DEFAULT_ROLES: readonly RoleDefinition[] = [
  {
    name: "viewer",
    description: "Read-only: agents, metrics, policy explanations and role definitions",
    permissions: ["agent:list", "agent:read", "metrics:read", "policy:read", "config:read"],
    source: "default",
  },
  {
    name: "developer",
    description: "Deploys agents and manages their keys; reads the audit log",
    permissions: [
      "agent:list",
      "agent:read",
      "agent:deploy",
      "agent:keys",
      "audit:read",
      "session:read",
      "session:watch",
      "metrics:read",
      "policy:read",
      "config:read",
    ],
    source: "default",
  },
  {
    name: "operator",
    description: "Runs the runtime: agents, API keys, role assignments, audit log, configuration",
    permissions: [
      "agent:*",
      "keys:*",
      "auth:*",
      "audit:*",
      "config:*",
      "session:*",
      "metrics:read",
      "policy:read",
    ],
    source: "default",
  },
];

/**
 * Builds a catalogue from role definitions; a later definition of a name replaces an earlier one (so
 * a file's `viewer` replaces the default `viewer`).
 *
 * Example: `roleCatalogue([...DEFAULT_ROLES, ...fromFile])`.
 */
export function roleCatalogue(definitions: readonly RoleDefinition[]): RoleCatalogue {
  const catalogue = new Map<string, RoleDefinition>();
  for (const definition of definitions) catalogue.set(definition.name, definition);
  return catalogue;
}

/**
 * The grants of the roles named, in the catalogue's terms. Names the catalogue does not define (a role
 * assigned, then removed from roles.yaml) grant nothing.
 *
 * Example: `roleGrants(catalogue, ["viewer"])` → `["agent:list", "agent:read", ...]`.
 */
export function roleGrants(catalogue: RoleCatalogue, roles: readonly string[]): PermissionGrant[] {
  const grants = new Set<PermissionGrant>();
  for (const role of roles) for (const grant of catalogue.get(role)?.permissions ?? []) grants.add(grant);
  return [...grants];
}

/**
 * True when `grants` cover everything `role` grants: the rule that keeps someone who may assign roles
 * from handing out (or taking away) more than they hold themselves.
 *
 * Example: `withinGrants(["*"], operator) === true`; `withinGrants(["auth:roles"], operator) === false`.
 */
export function withinGrants(grants: readonly string[], role: RoleDefinition): boolean {
  return role.permissions.every((grant) => grantsPermission(grants, grant));
}

/** The concrete permissions a role amounts to, sorted: what `GET /v1/auth/roles/definitions` shows. */
export function expandedRolePermissions(role: RoleDefinition): string[] {
  return [...effectivePermissions(role.permissions)].sort();
}
