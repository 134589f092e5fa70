// "May this principal do that?" answered from what the runtime knows: the principal's roles, its API
// keys, and the client-certificate table. JWT permissions travel in each token, so they are not known
// ahead of a request and are not part of the answer.
import type { ApiKeyStore } from "../store/types.js";
import {
  type CertificatePrincipalEntry,
  DEFAULT_CERTIFICATE_PERMISSIONS,
  certificatePrincipals,
} from "./mtls.js";
import { type PermissionGrant, grantsPermission } from "./principal.js";
import type { RoleAssignments } from "./role-assignments.js";
import { roleGrants } from "./roles.js";

/** Where the answer looks. */
export interface PermissionCheckSources {
  readonly roles: RoleAssignments;
  readonly apiKeys: ApiKeyStore;
  /** The client-certificate table, when the runtime accepts client certificates. */
  readonly certificatePrincipals?: Readonly<Record<string, CertificatePrincipalEntry>>;
  readonly now: () => number;
}

/** One credential the principal may authenticate with, and whether, with its roles, it is allowed. */
export type CredentialCheck =
  | { readonly type: "api_key"; readonly id: string; readonly name: string; readonly allowed: boolean }
  | { readonly type: "certificate"; readonly allowed: boolean };

export interface PermissionCheck {
  readonly principal: string;
  readonly permission: PermissionGrant;
  /** True when the principal's roles grant it, or one of its credentials does (together with its roles). */
  readonly allowed: boolean;
  readonly roles: readonly string[];
  /** The roles that grant the permission on their own (whatever credential is used); empty otherwise. */
  readonly grantedByRoles: readonly string[];
  /** True when the roles together grant it, whatever credential the principal authenticates with. */
  readonly byRoles: boolean;
  readonly credentials: readonly CredentialCheck[];
}

/**
 * Checks what `principal` may do with respect to `permission`.
 *
 * Example: `await checkPermission("alice", "agent:deploy", { roles, apiKeys, now: Date.now })`
 * → `{ allowed: true, roles: ["developer"], grantedByRoles: ["developer"], byRoles: true, ... }`.
 */
export async function checkPermission(
  principal: string,
  permission: PermissionGrant,
  sources: PermissionCheckSources,
): Promise<PermissionCheck> {
  const roles = await sources.roles.rolesOf(principal);
  const fromRoles = roleGrants(sources.roles.catalogue, roles);
  const byRoles = grantsPermission(fromRoles, permission);
  const grantedByRoles = roles.filter((role) => {
    const definition = sources.roles.definition(role);
    return definition !== undefined && grantsPermission(definition.permissions, permission);
  });
  const allowedWith = (credential: readonly string[]) =>
    grantsPermission([...credential, ...fromRoles], permission);

  const now = sources.now();
  const credentials: CredentialCheck[] = (await sources.apiKeys.listApiKeys())
    .filter(
      (key) =>
        key.principal === principal &&
        key.revokedAt === undefined &&
        (key.expiresAt === undefined || key.expiresAt > now),
    )
    .map((key) => ({ type: "api_key", id: key.id, name: key.name, allowed: allowedWith(key.permissions) }));
  if (sources.certificatePrincipals !== undefined) {
    const entry = certificatePrincipals(sources.certificatePrincipals)(principal);
    credentials.push({
      type: "certificate",
      allowed: allowedWith(entry?.permissions ?? DEFAULT_CERTIFICATE_PERMISSIONS),
    });
  }
  return {
    principal,
    permission,
    allowed: byRoles || credentials.some((credential) => credential.allowed),
    roles,
    grantedByRoles,
    byRoles,
    credentials,
  };
}
