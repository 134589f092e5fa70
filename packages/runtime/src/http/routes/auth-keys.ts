// /v1/auth: create, list and revoke API keys (auth:keys), and who-am-I for any principal.
import { SignetError, isAgentId } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import { createApiKey, revokeApiKey } from "../../auth/api-keys.js";
import { isPermission, isPrincipalKind } from "../../auth/principal-checks.js";
import type { EventRecorder } from "../../audit/event-recorder.js";
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

  app.get("/v1/auth/whoami", async (request) => {
    const principal = principalOf(request);
    return {
      id: principal.id,
      kind: principal.kind,
      permissions: principal.permissions,
      method: principal.method,
    };
  });

  app.post("/v1/auth/keys", { config: { guard: { permission: "auth:keys" } } }, async (request, reply) => {
    const input = (request.body ?? {}) as Record<string, unknown>;
    if (typeof input !== "object" || Array.isArray(input)) invalid("The request body must be a JSON object");
    const { name, principal, kind = "agent", permissions = [], expires_in_ms: expiresIn } = input;
    if (typeof name !== "string" || name.length === 0 || name.length > 128)
      invalid("name: 1 to 128 characters");
    if (!isAgentId(principal)) invalid("principal: must be a bare id");
    if (!isPrincipalKind(kind)) invalid("kind: agent, user or service");
    if (!Array.isArray(permissions) || !permissions.every(isPermission))
      invalid("permissions: unknown permission");
    if (
      expiresIn !== undefined &&
      (typeof expiresIn !== "number" || !Number.isSafeInteger(expiresIn) || expiresIn <= 0)
    ) {
      invalid("expires_in_ms: a positive integer");
    }
    const actor = principalOf(request).id;
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
      details: { key_id: created.record.id, name, permissions },
    });
    // The only time the key itself is ever sent: it is stored as a hash.
    return reply.code(201).send({ key: created.key, ...keyToWire(created.record, now()) });
  });

  app.get("/v1/auth/keys", { config: { guard: { permission: "auth:keys" } } }, async () => ({
    keys: (await deps.apiKeys.listApiKeys()).map((record) => keyToWire(record, now())),
  }));

  app.post<{ Params: { id: string } }>(
    "/v1/auth/keys/:id/revoke",
    { config: { guard: { permission: "auth:keys" } } },
    async (request) => {
      const actor = principalOf(request).id;
      const revoked = await revokeApiKey(deps.apiKeys, request.params.id, { actor, requestId: request.id });
      if (revoked === undefined) throw new SignetError("NOT_FOUND", "No such API key");
      await deps.events.record({
        type: "api_key_revoked",
        actor,
        target: `principal:${revoked.principal}`,
        outcome: "success",
        details: { key_id: revoked.id },
      });
      return keyToWire(revoked, now());
    },
  );
}
