// /v1/auth/roles and /v1/auth/check: role assignments (RBAC for the admin API) and permission checks.
// Every change is recorded as an admin_action; nobody may assign or unassign a role that grants more
// than they hold themselves.
import { SignetError, isAgentId } from "@signet/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { EventRecorder } from "../../audit/audit-recorder.js";
import type { CertificatePrincipalEntry } from "../../auth/mtls.js";
import { type PermissionCheck, checkPermission } from "../../auth/permission-check.js";
import { isPermissionGrant } from "../../auth/principal.js";
import type { RoleAssignments } from "../../auth/role-assignments.js";
import { expandedRolePermissions, isRoleName, withinGrants } from "../../auth/roles.js";
import type { ApiKeyStore, RoleAssignmentRecord } from "../../store/types.js";
import { principalOf } from "../server.js";

export interface RoleRouteDeps {
  readonly roles: RoleAssignments;
  readonly apiKeys: ApiKeyStore;
  readonly events: EventRecorder;
  /** The client-certificate table, when the runtime accepts client certificates (for checks). */
  readonly certificatePrincipals?: Readonly<Record<string, CertificatePrincipalEntry>>;
  readonly now?: () => number;
}

function invalid(message: string, reason = "body"): never {
  throw new SignetError("INVALID_REQUEST", message, { reason });
}

function assignmentToWire(assignment: RoleAssignmentRecord): Record<string, unknown> {
  return {
    principal: assignment.principal,
    role: assignment.role,
    assigned_at: new Date(assignment.assignedAt).toISOString(),
    assigned_by: assignment.assignedBy,
  };
}

function checkToWire(check: PermissionCheck): Record<string, unknown> {
  return {
    principal: check.principal,
    permission: check.permission,
    allowed: check.allowed,
    roles: check.roles,
    by_roles: check.byRoles,
    granted_by_roles: check.grantedByRoles,
    credentials: check.credentials,
  };
}

/** The `{ principal, role }` body of an assign or unassign. */
function assignmentBody(request: FastifyRequest): { principal: string; role: string } {
  const input = request.body;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    invalid("The request body must be a JSON object");
  }
  const { principal, role, ...rest } = input as Record<string, unknown>;
  if (Object.keys(rest).length > 0) invalid(`unknown field ${Object.keys(rest)[0]!.slice(0, 64)}`);
  if (!isAgentId(principal)) invalid("principal: must be a bare id such as `alice`");
  if (!isRoleName(role)) invalid("role: a role name such as `operator`");
  return { principal, role };
}

/** A single query parameter, refusing repeats (`?principal=a&principal=b`). */
function queryParam(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") invalid(`${name}: give it once`, "query");
  return value;
}

export function registerRoleRoutes(app: FastifyInstance, deps: RoleRouteDeps): void {
  const { roles, events } = deps;
  const now = deps.now ?? Date.now;

  /** Refuses, and records, a change to a role that grants more than the caller holds. */
  async function requireWithinCaller(
    request: FastifyRequest,
    action: "role_assign" | "role_unassign",
    principal: string,
    role: string,
  ): Promise<void> {
    const caller = principalOf(request);
    const definition = roles.definition(role);
    // An undefined role grants nothing, so anyone who may manage roles may remove a stale assignment.
    if (definition === undefined || withinGrants(caller.permissions, definition)) return;
    await events.record({
      type: "admin_action",
      actor: caller.id,
      target: `principal:${principal}`,
      outcome: "deny",
      code: "FORBIDDEN",
      metadata: { action, role, reason: "role_exceeds_caller" },
    });
    throw new SignetError("FORBIDDEN", `The role ${role} grants permissions you do not hold`);
  }

  app.get("/v1/auth/roles/definitions", { config: { guard: { permission: "config:read" } } }, async () => ({
    roles: [...roles.catalogue.values()].map((role) => ({
      name: role.name,
      description: role.description,
      permissions: role.permissions,
      effective_permissions: expandedRolePermissions(role),
      source: role.source,
    })),
  }));

  app.get("/v1/auth/roles", { config: { guard: { permission: "auth:read" } } }, async (request) => {
    const principal = queryParam(request, "principal");
    const role = queryParam(request, "role");
    if (principal !== undefined && !isAgentId(principal)) invalid("principal: a bare id", "query");
    if (role !== undefined && !isRoleName(role)) invalid("role: a role name", "query");
    const assignments = await roles.list({
      ...(principal === undefined ? {} : { principal }),
      ...(role === undefined ? {} : { role }),
    });
    return { assignments: assignments.map(assignmentToWire) };
  });

  app.post("/v1/auth/roles", { config: { guard: { permission: "auth:roles" } } }, async (request, reply) => {
    const { principal, role } = assignmentBody(request);
    if (roles.definition(role) === undefined) invalid(`role: no role named ${role} is defined`);
    await requireWithinCaller(request, "role_assign", principal, role);
    const actor = principalOf(request).id;
    const change = await roles.assign(principal, role, { actor, requestId: request.id });
    await events.record({
      type: "admin_action",
      actor,
      target: `principal:${principal}`,
      outcome: "success",
      metadata: { action: "role_assign", role, changed: change.changed },
    });
    return reply.code(change.changed ? 201 : 200).send(change);
  });

  app.post("/v1/auth/roles/revoke", { config: { guard: { permission: "auth:roles" } } }, async (request) => {
    const { principal, role } = assignmentBody(request);
    await requireWithinCaller(request, "role_unassign", principal, role);
    const actor = principalOf(request).id;
    const change = await roles.unassign(principal, role, { actor, requestId: request.id });
    await events.record({
      type: "admin_action",
      actor,
      target: `principal:${principal}`,
      outcome: "success",
      metadata: { action: "role_unassign", role, changed: change.changed },
    });
    return change;
  });

  app.get("/v1/auth/check", { config: { guard: { permission: "auth:read" } } }, async (request) => {
    const principal = queryParam(request, "principal");
    const permission = queryParam(request, "permission");
    if (!isAgentId(principal)) invalid("principal: a bare id", "query");
    if (!isPermissionGrant(permission))
      invalid("permission: a known permission such as agent:deploy", "query");
    const check = await checkPermission(principal, permission, {
      roles,
      apiKeys: deps.apiKeys,
      ...(deps.certificatePrincipals === undefined
        ? {}
        : { certificatePrincipals: deps.certificatePrincipals }),
      now,
    });
    return checkToWire(check);
  });
}
