// /v1/agents: deploy, read, rotate and revoke agent keys. Each change is recorded by the registry.
import { SignetError } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import type { AgentKeyView, AgentRegistry } from "../../registry/agent-registry.js";
import type { AgentRecord } from "../../store/types.js";
import { principalOf } from "../server.js";

/** The wire form of an agent. */
export function agentToWire(agent: AgentRecord, keys?: readonly AgentKeyView[]): Record<string, unknown> {
  return {
    id: agent.id,
    version: agent.version ?? null,
    description: agent.description,
    serves: agent.serves,
    capabilities: Array.isArray(agent.definition.capabilities) ? agent.definition.capabilities : [],
    tools: Array.isArray(agent.definition.tools) ? agent.definition.tools : [],
    definition: agent.definition,
    created_at: new Date(agent.createdAt).toISOString(),
    updated_at: new Date(agent.updatedAt).toISOString(),
    deployed_by: agent.deployedBy,
    ...(keys === undefined ? {} : { keys: keys.map(keyToWire) }),
  };
}

/** The wire form of an agent key. */
export function keyToWire(key: AgentKeyView): Record<string, unknown> {
  return {
    kid: key.kid,
    public_key: key.publicKey,
    state: key.state,
    created_at: new Date(key.createdAt).toISOString(),
    not_after: key.notAfter === undefined ? null : new Date(key.notAfter).toISOString(),
    revoked_at: key.revokedAt === undefined ? null : new Date(key.revokedAt).toISOString(),
    revoked_reason: key.revokedReason ?? null,
  };
}

function body(request: { body: unknown }): Record<string, unknown> {
  if (typeof request.body !== "object" || request.body === null || Array.isArray(request.body)) {
    throw new SignetError("INVALID_REQUEST", "The request body must be a JSON object", { reason: "body" });
  }
  return request.body as Record<string, unknown>;
}

export function registerAgentRoutes(app: FastifyInstance, deps: { registry: AgentRegistry }): void {
  const { registry } = deps;

  app.post<{ Querystring: { validate_only?: string } }>(
    "/v1/agents",
    { config: { guard: { permission: "agent:deploy" } } },
    async (request, reply) => {
      const input = body(request);
      if (typeof input.definition !== "string") {
        throw new SignetError("INVALID_REQUEST", "definition must be the agent's Markdown text", {
          reason: "body",
        });
      }
      const keys = input.public_keys ?? (input.public_key === undefined ? [] : [input.public_key]);
      if (!Array.isArray(keys) || keys.length > 16) {
        throw new SignetError("INVALID_REQUEST", "public_keys must be a list of at most 16 keys", {
          reason: "body",
        });
      }
      if (request.query.validate_only === "true" || request.query.validate_only === "1") {
        const definition = registry.validate(input.definition, keys);
        return reply.code(200).send({
          valid: true,
          name: definition.name,
          capabilities: definition.capabilities,
          tools: definition.tools,
          serves: definition.serves,
        });
      }
      const {
        agent,
        keys: views,
        created,
      } = await registry.deploy(input.definition, keys, {
        actor: principalOf(request).id,
        requestId: request.id,
      });
      return reply.code(created ? 201 : 200).send(agentToWire(agent, views));
    },
  );

  app.get("/v1/agents", { config: { guard: { permission: "agent:list" } } }, async () => ({
    agents: (await registry.listAgents()).map((agent) => agentToWire(agent)),
  }));

  app.get<{ Params: { id: string } }>(
    "/v1/agents/:id",
    { config: { guard: { permission: "agent:read" } } },
    async (request) => {
      const agent = await registry.getAgent(request.params.id);
      if (agent === undefined) throw new SignetError("NOT_FOUND", "No such agent");
      return agentToWire(agent, await registry.listKeys(agent.id));
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/agents/:id/keys",
    { config: { guard: { permission: "agent:read" } } },
    async (request) => {
      const agent = await registry.getAgent(request.params.id);
      if (agent === undefined) throw new SignetError("NOT_FOUND", "No such agent");
      return { keys: (await registry.listKeys(agent.id)).map(keyToWire) };
    },
  );

  app.post<{ Params: { id: string } }>(
    "/v1/agents/:id/keys",
    { config: { guard: { permission: "agent:keys" } } },
    async (request, reply) => {
      const input = body(request);
      const grace = input.grace_period_ms;
      if (grace !== undefined && (typeof grace !== "number" || !Number.isSafeInteger(grace) || grace < 0)) {
        throw new SignetError("INVALID_REQUEST", "grace_period_ms must be a non-negative integer", {
          reason: "body",
        });
      }
      const keys = await registry.rotateKey(
        request.params.id,
        input.public_key,
        { actor: principalOf(request).id, requestId: request.id },
        grace,
      );
      return reply.code(201).send({ keys: keys.map(keyToWire) });
    },
  );

  app.post<{ Params: { id: string; kid: string } }>(
    "/v1/agents/:id/keys/:kid/revoke",
    { config: { guard: { permission: "agent:keys" } } },
    async (request) => {
      const input = request.body === undefined || request.body === null ? {} : body(request);
      const reason = typeof input.reason === "string" ? input.reason.slice(0, 256) : "unspecified";
      const key = await registry.revokeKey(request.params.id, request.params.kid, reason, {
        actor: principalOf(request).id,
        requestId: request.id,
      });
      return keyToWire(key);
    },
  );
}
