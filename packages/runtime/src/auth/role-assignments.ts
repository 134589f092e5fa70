// Role assignments in the runtime: a bounded, short-lived cache over the RoleStore, the changes that
// keep it current, and the principal every request runs as (its credential's permissions ∪ its roles').
//
// Changes made through this service apply to the next request: the cache entry is dropped before and
// after the store write. Changes made by another runtime instance sharing the database are seen within
// `ttlMs`, as for API key revocations (see api-key-cache.ts); `ttlMs: 0` reads the store every time.
import { SignetError } from "@signet/protocol";
import type { RoleAssignmentQuery, RoleAssignmentRecord, RoleStore, StoreContext } from "../store/types.js";
import type { Principal } from "./principal.js";
import { type RoleCatalogue, type RoleDefinition, roleGrants } from "./roles.js";
import { createTtlCache } from "./ttl-cache.js";

export interface RoleAssignmentCacheOptions {
  /** How long (ms) a principal's roles read from the store are trusted. 0 turns caching off. */
  readonly ttlMs: number;
  /** The most principals held; the least recently used goes first. */
  readonly maxEntries: number;
  /** A monotonic clock (ms) for the TTL. Defaults to performance.now. */
  readonly clock?: () => number;
}

/** The defaults: 5 s, 4096 principals. */
export const DEFAULT_ROLE_ASSIGNMENT_CACHE: RoleAssignmentCacheOptions = { ttlMs: 5_000, maxEntries: 4_096 };

/** The result of an assignment change: whether anything changed, and the principal's roles after it. */
export interface RoleChange {
  readonly principal: string;
  readonly role: string;
  readonly changed: boolean;
  readonly roles: readonly string[];
}

export interface RoleAssignments {
  /** The roles in effect (built-in and roles.yaml). */
  readonly catalogue: RoleCatalogue;
  /** The role's definition, or undefined when no such role is defined. */
  definition(role: string): RoleDefinition | undefined;
  /** The roles a principal holds, from the cache when fresh. Rejects with UNAVAILABLE when the store fails. */
  rolesOf(principal: string): Promise<readonly string[]>;
  /**
   * The principal with its roles, and its permissions widened by theirs. Every request passes through
   * this after authentication; it never narrows what the credential grants.
   */
  resolve(principal: Principal): Promise<Principal>;
  /** Assigns a defined role (INVALID_REQUEST for one that is not). The next request sees it. */
  assign(principal: string, role: string, ctx: StoreContext): Promise<RoleChange>;
  /** Removes an assignment, defined role or not. The next request no longer has it. */
  unassign(principal: string, role: string, ctx: StoreContext): Promise<RoleChange>;
  list(query?: RoleAssignmentQuery): Promise<RoleAssignmentRecord[]>;
  /** Drops every cached entry. */
  clear(): void;
}

/**
 * Builds the runtime's role assignments over `store`, for the roles `catalogue` defines.
 *
 * Example:
 * `const roles = createRoleAssignments(stores.roles, loadRoleCatalogue(path, { required: false }),
 *    DEFAULT_ROLE_ASSIGNMENT_CACHE);
 *  const principal = await roles.resolve(await authenticator.authenticate(request));`
 */
export function createRoleAssignments(
  store: RoleStore,
  catalogue: RoleCatalogue,
  options: RoleAssignmentCacheOptions,
  now: () => number = Date.now,
): RoleAssignments {
  const cache = createTtlCache<readonly string[]>(options);
  const invalidate = (principal: string): void => cache.invalidate(principal);

  async function readRoles(principal: string): Promise<readonly string[]> {
    let assignments: RoleAssignmentRecord[];
    try {
      assignments = await store.listRoleAssignments({ principal });
    } catch (error) {
      // Fail closed, and say "could not check" rather than "refused": the caller may retry.
      throw new SignetError("UNAVAILABLE", "Role assignments could not be read", {}, { cause: error });
    }
    return Object.freeze(assignments.map((assignment) => assignment.role));
  }

  async function rolesOf(principal: string): Promise<readonly string[]> {
    // Principals without roles are cached too: they are most requests, and each would read the store.
    return cache.read(principal, () => readRoles(principal));
  }

  async function change(principal: string, role: string, write: () => Promise<boolean>): Promise<RoleChange> {
    invalidate(principal);
    let changed: boolean;
    try {
      changed = await write();
    } finally {
      // Again once the store has answered: a read that ran alongside may have seen the old roles.
      invalidate(principal);
    }
    return { principal, role, changed, roles: await rolesOf(principal) };
  }

  return {
    catalogue,
    definition: (role) => catalogue.get(role),
    rolesOf,
    async resolve(principal) {
      const roles = await rolesOf(principal.id);
      if (roles.length === 0) return { ...principal, roles };
      const permissions = [...principal.permissions];
      for (const grant of roleGrants(catalogue, roles)) {
        if (!permissions.includes(grant)) permissions.push(grant);
      }
      return { ...principal, permissions, roles };
    },
    assign(principal, role, ctx) {
      if (!catalogue.has(role)) {
        return Promise.reject(
          new SignetError("INVALID_REQUEST", `role: no role named ${role} is defined`, { reason: "body" }),
        );
      }
      return change(principal, role, () =>
        store.assignRole({ principal, role, assignedAt: now(), assignedBy: ctx.actor }, ctx),
      );
    },
    unassign(principal, role, ctx) {
      return change(principal, role, () => store.unassignRole(principal, role, ctx));
    },
    list: (query = {}) => store.listRoleAssignments(query),
    clear: () => cache.clear(),
  };
}
