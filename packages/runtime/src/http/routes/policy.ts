// POST /v1/policy/explain: the decision for a hypothetical request, with every rule and why it did or did not match.
import { SignetError, isAgentId } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import { explain, formatExplanation } from "../../policy/explain.js";
import type { LivePolicy } from "../../policy/live-policy.js";
import type { PolicyRequest } from "../../policy/types.js";

function invalid(message: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason: "body" });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Builds a policy request from the route's body, refusing anything malformed. */
export function explainRequest(body: unknown): PolicyRequest {
  if (!isObject(body)) invalid("The request body must be a JSON object");
  const { principal, kind, roles, action, resource, params, intent } = body;
  if (!isAgentId(principal)) invalid("principal: a bare id");
  if (kind !== undefined && kind !== "agent" && kind !== "user" && kind !== "service")
    invalid("kind: agent, user or service");
  if (roles !== undefined && (!Array.isArray(roles) || !roles.every((role) => typeof role === "string"))) {
    invalid("roles: a list of role names");
  }
  if (typeof action !== "string" || action === "") invalid("action: e.g. invoke");
  if (typeof resource !== "string" || resource === "") invalid("resource: e.g. tool:database/query");
  if (params !== undefined && !isObject(params)) invalid("params: a JSON object");
  if (intent !== undefined && !isObject(intent)) invalid("intent: a JSON object");
  return {
    principal: {
      id: principal,
      ...(kind === undefined ? {} : { kind }),
      ...(roles === undefined ? {} : { roles: roles }),
    },
    action,
    resource,
    ...(params === undefined ? {} : { params }),
    ...(intent === undefined ? {} : { intent: intent }),
    context: { now: Date.now() },
  };
}

export function registerPolicyRoutes(app: FastifyInstance, deps: { live: LivePolicy }): void {
  app.post("/v1/policy/explain", { config: { guard: { permission: "policy:read" } } }, async (request) => {
    const policyRequest = explainRequest(request.body);
    const explanation = explain(deps.live, policyRequest);
    return {
      decision: explanation.decision,
      rules: explanation.rules,
      text: formatExplanation(explanation, { all: true }),
    };
  });
}
