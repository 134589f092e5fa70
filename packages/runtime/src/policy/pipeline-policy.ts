// Adapts the policy engine to the pipeline's step 7: an invocation becomes a policy request.
import type { InvocationContext, PolicyDecision, PolicyEngine } from "../pipeline/hooks.js";
import type { Principal } from "../auth/principal.js";
import type { Decision, PolicyPrincipal, PolicyRequest } from "./types.js";

/** What the adapter needs: anything that decides (a CompiledPolicy or a LivePolicy). */
export interface PolicyDecider {
  decide(request: PolicyRequest): Decision;
}

export interface PipelinePolicyOptions {
  /** The principal's roles (from RBAC role assignments). Default: none. */
  readonly rolesOf?: (principal: Principal) => readonly string[];
  /** The principal's org, team, app, user and other attributes. Default: a user is its own user. */
  readonly attributesOf?: (principal: Principal) => Omit<PolicyPrincipal, "id" | "kind" | "roles">;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The policy request for one invocation: action `invoke` (or the envelope type), resource = `to`. */
export function invocationRequest(
  context: InvocationContext,
  options: PipelinePolicyOptions = {},
): PolicyRequest {
  const { principal, envelope } = context;
  const attributes =
    options.attributesOf?.(principal) ?? (principal.kind === "user" ? { user: principal.id } : {});
  const roles = options.rolesOf?.(principal);
  return {
    principal: {
      ...attributes,
      id: principal.id,
      kind: principal.kind,
      ...(roles === undefined ? {} : { roles }),
    },
    action: envelope.type,
    resource: envelope.to,
    ...(isPlainObject(envelope.body) ? { params: envelope.body } : {}),
    ...(envelope.intent === undefined ? {} : { intent: envelope.intent }),
    context: {
      now: context.now,
      ...(envelope.session === undefined ? {} : { session: envelope.session }),
      ...(context.sourceIp === undefined ? {} : { sourceIp: context.sourceIp }),
    },
  };
}

/**
 * The pipeline's policy step backed by a compiled policy. A deny carries the deciding rule (the
 * pipeline names `rules[0]`, or `default-deny` when none spoke) and the one-line reason.
 *
 * Example: `new InvocationPipeline({ ..., policy: createPipelinePolicy(live, { rolesOf }) })`.
 */
export function createPipelinePolicy(
  policy: PolicyDecider,
  options: PipelinePolicyOptions = {},
): PolicyEngine {
  return {
    decide: (context): PolicyDecision => policy.decide(invocationRequest(context, options)),
  };
}
