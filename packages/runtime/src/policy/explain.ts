// `signet policy explain`: the decision, and for every rule whether it matched the request and why.
import type { CompiledPolicy } from "./engine.js";
import { LazyBindings, evaluateRule } from "./engine.js";
import { targetMiss } from "./target.js";
import type { LivePolicy } from "./live-policy.js";
import type { Decision, PolicyEffect, PolicyLayer, PolicyRequest } from "./types.js";

/** One rule, as it fared against the request. */
export interface RuleExplanation {
  readonly id: string;
  readonly effect: PolicyEffect;
  readonly layer: PolicyLayer;
  readonly source: string;
  readonly line?: number;
  /** Where the target missed: `scope`, `principal`, `roles`, `action` or `resource`; `matched` when it did not. */
  readonly target: "matched" | "scope" | "principal" | "roles" | "action" | "resource";
  /** For a matched allow rule: whether it grants; for a matched deny rule: whether it fires. */
  readonly applies: boolean;
  /** Whether the rule is one of the decision's rules. */
  readonly decided: boolean;
  readonly why: string;
}

export interface PolicyExplanation {
  readonly request: PolicyRequest;
  readonly decision: Decision;
  /** Every rule of the policy, in evaluation order. */
  readonly rules: readonly RuleExplanation[];
}

/**
 * Decides the request and explains every rule. Slower than `decide` (it looks at every rule), so it
 * is for people, not for the request path.
 *
 * Example: `explain(policy, { principal: { id: "bob" }, action: "invoke", resource: "tool:database/drop" })`.
 */
export function explain(policy: CompiledPolicy | LivePolicy, request: PolicyRequest): PolicyExplanation {
  const compiled = "current" in policy ? policy.current : policy;
  const decision = compiled.decide(request);
  const deciding = new Set(decision.rules);
  const bindings = new LazyBindings(request, compiled.readsTime);
  const rules = compiled.rules.map((rule): RuleExplanation => {
    const base = {
      id: rule.id,
      effect: rule.deny ? ("deny" as const) : ("allow" as const),
      layer: rule.layer,
      source: rule.source,
      ...(rule.location === undefined ? {} : { line: rule.location.line }),
      decided: deciding.has(rule.id),
    };
    const miss = targetMiss(rule, request);
    if (miss !== undefined) return { ...base, target: miss.field, applies: false, why: miss.why };
    const outcome = evaluateRule(rule, request, bindings);
    const verdict = rule.deny
      ? outcome.applies
        ? "fires"
        : "does not fire"
      : outcome.applies
        ? "allows"
        : "does not allow";
    return { ...base, target: "matched", applies: outcome.applies, why: `${verdict}: ${outcome.detail}` };
  });
  return { request, decision, rules };
}

/**
 * Formats an explanation for a terminal. By default rules whose action or resource does not match are
 * counted, not listed; `all` lists them too.
 */
export function formatExplanation(explanation: PolicyExplanation, options: { all?: boolean } = {}): string {
  const { decision, request } = explanation;
  const lines = [
    `${decision.effect.toUpperCase()}: ${request.principal.id} ${request.action} ${request.resource}`,
    `  rules:  ${decision.rules.length === 0 ? "(none: default deny)" : decision.rules.join(", ")}`,
    ...(decision.layer === undefined ? [] : [`  layer:  ${decision.layer}`]),
    `  reason: ${decision.reason}`,
    ...decision.rateLimits.map((limit) => `  rate limit: ${limit.spec} (rule ${limit.rule})`),
    "",
  ];
  const shown = explanation.rules.filter(
    (rule) => options.all === true || (rule.target !== "action" && rule.target !== "resource"),
  );
  lines.push(`rules considered (${shown.length} of ${explanation.rules.length}):`);
  for (const rule of shown) {
    const mark = rule.decided ? "*" : rule.target === "matched" ? "+" : "-";
    const where = rule.line === undefined ? rule.source : `${rule.source}:${rule.line}`;
    lines.push(`  ${mark} ${rule.id} [${rule.effect}, ${rule.layer}] ${where}`);
    lines.push(`      ${rule.target === "matched" ? "matches; " : ""}${rule.why}`);
  }
  const hidden = explanation.rules.length - shown.length;
  if (hidden > 0) lines.push(`  (${hidden} more do not match the action or resource; --all lists them)`);
  lines.push("", "  * decided   + matched   - did not match");
  return lines.join("\n");
}
