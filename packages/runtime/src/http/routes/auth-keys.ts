// /v1/auth: create, list and revoke API keys (keys:create, keys:list, keys:revoke, all held by the
// older auth:keys), and who-am-I for any principal.
import { SignetError, isAgentId } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import { createApiKey, revokeApiKey } from "../../auth/api-keys.js";
import { isPrincipalKind } from "../../auth/principal-checks.js";
import { grantsPermission, isPermissionGrant } from "../../auth/principal.js";
import type { EventRecorder } from "../../audit/audit-recorder.js";
import type { ApiKeyRecord, ApiKeyStore } from "../../store/types.js";
import { principalOf } from "../server.js";

function keyToWire(record: ApiKeyRecord, now: number): Record<string, unknown> {
  const state =
    record.revokedAt !== undefined
      ? "revoked"
      : record.expiresAt !== undefined && record.expiresAt <= now
        ? "expired"
        : "active";
  return {
    id: record.id,
    name: record.name,
    principal: record.principal,
    kind: record.kind,
    permissions: record.permissions,
    state,
    created_at: new Date(record.createdAt).toISOString(),
    created_by: record.createdBy,
    expires_at: record.expiresAt === undefined ? null : new Date(record.expiresAt).toISOString(),
    revoked_at: record.revokedAt === undefined ? null : new Date(record.revokedAt).toISOString(),
  };
}

function invalid(message: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason: "body" });
}

export function registerAuthRoutes(
  app: FastifyInstance,
  deps: { apiKeys: ApiKeyStore; events: EventRecorder; now?: () => number },
): void {
  const now = deps.now ?? Date.now;

  // `?permission=P` adds whether the caller holds P, so anyone can check themselves without auth:read.
  app.get<{ Querystring: { permission?: unknown } }>(
    "/v1/auth/whoami",
    { config: { guard: { authenticated: true } } },
    async (request) => {
      const principal = principalOf(request);
      const { permission } = request.query;
      if (permission !== undefined && !isPermissionGrant(permission)) {
        throw new SignetError("INVALID_REQUEST", "permission: a known permission such as agent:deploy", {
          reason: "query",
        });
      }
      return {
        id: principal.id,
        kind: principal.kind,
        // What this request may do: the credential's permissions and those of the principal's roles.
        permissions: principal.permissions,
        roles: principal.roles ?? [],
        method: principal.method,
        ...(permission === undefined
          ? {}
          : { permission, allowed: grantsPermission(principal.permissions, permission) }),
      };
    },
  );

  app.post("/v1/auth/keys", { config: { guard: { permission: "keys:create" } } }, async (request, reply) => {
    const input = (request.body ?? {}) as Record<string, unknown>;
    if (typeof input !== "object" || Array.isArray(input)) invalid("The request body must be a JSON object");
    const { name, principal, kind = "agent", permissions = [], expires_in_ms: expiresIn } = input;
    if (typeof name !== "string" || name.length === 0 || name.length > 128)
      invalid("name: 1 to 128 characters");
    if (!isAgentId(principal)) invalid("principal: must be a bare id");
    if (!isPrincipalKind(kind)) invalid("kind: agent, user or service");
    if (!Array.isArray(permissions) || !permissions.every(isPermissionGrant))
      invalid("permissions: unknown permission");
    if (
      expiresIn !== undefined &&
      (typeof expiresIn !== "number" || !Number.isSafeInteger(expiresIn) || expiresIn <= 0)
    ) {
      invalid("expires_in_ms: a positive integer");
    }
    const caller = principalOf(request);
    const actor = caller.id;
    // A key is a credential someone else will hold: it may carry no more than its creator holds, or
    // keys:create alone would be a way to mint `*`.
    const beyond = permissions.filter((grant) => !grantsPermission(caller.permissions, grant));
    if (beyond.length > 0) {
      await deps.events.record({
        type: "admin_action",
        actor,
        target: `principal:${principal}`,
        outcome: "deny",
        code: "FORBIDDEN",
        metadata: { action: "api_key_create", reason: "exceeds_caller", permissions: beyond },
      });
      throw new SignetError(
        "FORBIDDEN",
        `A key may not carry permissions you do not hold: ${beyond.join(", ")}`,
      );
    }
    const created = await createApiKey(
      deps.apiKeys,
      {
        name,
        principal,
        kind,
        permissions: permissions,
        ...(expiresIn === undefined ? {} : { expiresInMs: expiresIn }),
      },
      { actor, requestId: request.id },
    );
    await deps.events.record({
      type: "api_key_created",
      actor,
      target: `principal:${principal}`,
      outcome: "success",
      metadata: { key_id: created.record.id, name, permissions },
    });
    // The only time the key itself is ever sent: it is stored as a hash.
    return reply.code(201).send({ key: created.key, ...keyToWire(created.record, now()) });
  });

  app.get("/v1/auth/keys", { config: { guard: { permission: "keys:list" } } }, async () => ({
    keys: (await deps.apiKeys.listApiKeys()).map((record) => keyToWire(record, now())),
  }));

  app.post<{ Params: { id: string } }>(
    "/v1/auth/keys/:id/revoke",
    { config: { guard: { permission: "keys:revoke" } } },
    async (request) => {
      const actor = principalOf(request).id;
      const revoked = await revokeApiKey(deps.apiKeys, request.params.id, { actor, requestId: request.id });
      if (revoked === undefined) throw new SignetError("NOT_FOUND", "No such API key");
      await deps.events.record({
        type: "api_key_revoked",
        actor,
        target: `principal:${revoked.principal}`,
        outcome: "success",
        metadata: { key_id: revoked.id },
      });
      return keyToWire(revoked, now());
    },
  );
}
