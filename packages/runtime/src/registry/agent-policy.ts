// Compiles agent definitions into policy rules, so definitions and policy files decide together.
import type { PolicySource, RuleDefinition } from "../policy/types.js";
import type { AgentRecord } from "../store/types.js";

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The rules an agent's definition stands for, in the global layer:
 * - `agent:NAME:tools` allows the agent to invoke each tool in `tools`;
 * - `agent:NAME:capability:CAP` allows `capability_access.CAP.allowed_requesters` to invoke
 *   `capability:CAP`, with `rate_limits.CAP` as its rate limit.
 * Policy files still apply on top: a deny rule, or a layer that does not allow, still refuses.
 *
 * Example: `agentPolicySource(record)?.rules.map((rule) => rule.id)`.
 */
export function agentPolicySource(agent: AgentRecord): PolicySource | undefined {
  const definition = agent.definition;
  const rules: RuleDefinition[] = [];
  const tools = stringList(definition.tools);
  if (tools.length > 0) {
    rules.push({
      id: `agent:${agent.id}:tools`,
      effect: "allow",
      principals: [`agent:${agent.id}`],
      actions: ["invoke"],
      resources: tools.map((tool) => `tool:${tool}`),
      description: `tools ${agent.id} may call (its definition)`,
    });
  }
  const access = isObject(definition.capability_access) ? definition.capability_access : {};
  const limits = isObject(definition.rate_limits) ? definition.rate_limits : {};
  for (const [capability, entry] of Object.entries(access)) {
    const requesters = isObject(entry) ? stringList(entry.allowed_requesters) : [];
    if (requesters.length === 0) continue;
    const limit = limits[capability];
    rules.push({
      id: `agent:${agent.id}:capability:${capability}`,
      effect: "allow",
      principals: requesters,
      actions: ["invoke"],
      resources: [`capability:${capability}`],
      ...(typeof limit === "string" ? { rateLimit: limit } : {}),
      description: `who may request ${agent.id}'s capability ${capability} (its definition)`,
    });
  }
  return rules.length === 0 ? undefined : { name: `agent:${agent.id}`, layer: "global", rules };
}

/** The policy sources of every agent, in id order (so rule order is stable). */
export function agentPolicySources(agents: readonly AgentRecord[]): PolicySource[] {
  return [...agents]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(agentPolicySource)
    .filter((source): source is PolicySource => source !== undefined);
}
