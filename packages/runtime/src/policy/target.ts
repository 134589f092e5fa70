// A rule's target: the layer scope, principals, roles, actions and resources it speaks to.
import type { CompiledRule } from "./compile.js";
import type { PolicyLayer, PolicyPrincipal, PolicyRequest } from "./types.js";

/** The attribute a scoped layer compares with its scope. */
export function layerAttribute(principal: PolicyPrincipal, layer: PolicyLayer): string | undefined {
  switch (layer) {
    case "org":
      return principal.org;
    case "team":
      return principal.team;
    case "app":
      return principal.app;
    case "user":
      return principal.user ?? (principal.kind === "user" ? principal.id : undefined);
    default:
      return undefined;
  }
}

/** True when the rule's target (scope, principal, roles, action, resource) matches the request. */
export function targetMatches(rule: CompiledRule, request: PolicyRequest): boolean {
  const { principal } = request;
  if (rule.scope !== undefined && layerAttribute(principal, rule.layer) !== rule.scope) return false;
  const principals = rule.principals;
  if (principals !== undefined) {
    let hit = false;
    for (let i = 0; i < principals.length; i++) {
      if (principals[i]!.test(principal.id, principal.kind)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  const roles = rule.roles;
  if (roles !== undefined) {
    const held = principal.roles;
    if (held === undefined) return false;
    let hit = false;
    for (let i = 0; i < roles.length; i++) {
      if (held.includes(roles[i]!)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  const actions = rule.actions;
  let action = false;
  for (let i = 0; i < actions.length; i++) {
    if (actions[i]!.test(request.action)) {
      action = true;
      break;
    }
  }
  if (!action) return false;
  const resources = rule.resources;
  for (let i = 0; i < resources.length; i++) if (resources[i]!.test(request.resource)) return true;
  return false;
}

/** The part of a rule's target that missed a request, and why, in words. */
export interface TargetMiss {
  readonly field: "scope" | "principal" | "roles" | "action" | "resource";
  readonly why: string;
}

/** Why the rule's target misses the request, or undefined when it matches (for explanations). */
export function targetMiss(rule: CompiledRule, request: PolicyRequest): TargetMiss | undefined {
  const { principal } = request;
  if (rule.scope !== undefined && layerAttribute(principal, rule.layer) !== rule.scope) {
    return {
      field: "scope",
      why: `the ${rule.layer} layer's scope ${rule.scope} does not include this principal`,
    };
  }
  if (rule.principals !== undefined && !rule.principals.some((m) => m.test(principal.id, principal.kind))) {
    const patterns = rule.principals.map((m) => m.pattern).join(", ");
    return { field: "principal", why: `principal ${principal.id} is not among ${patterns}` };
  }
  if (rule.roles !== undefined && !rule.roles.some((role) => principal.roles?.includes(role) === true)) {
    return { field: "roles", why: `the principal holds none of the roles ${rule.roles.join(", ")}` };
  }
  if (!rule.actions.some((m) => m.test(request.action))) {
    const patterns = rule.actions.map((m) => m.pattern).join(", ");
    return { field: "action", why: `action ${request.action} is not among ${patterns}` };
  }
  if (!rule.resources.some((m) => m.test(request.resource))) {
    const patterns = rule.resources.map((m) => m.pattern).join(", ");
    return { field: "resource", why: `resource ${request.resource} is not among ${patterns}` };
  }
  return undefined;
}
