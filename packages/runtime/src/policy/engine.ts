// The decision: collect the rules the index offers for the action and resource, keep those whose
// target matches, then walk the layers from global to user. Inside a layer deny overrides allow; every
// layer that speaks must allow; nothing allowed means denied.
import type { CompiledRule } from "./compile.js";
import {
  type ConditionBindings,
  type ConditionResult,
  conditionBindings,
  conditionReadsTime,
} from "./condition.js";
import { type RuleIndex, collectMatching } from "./rule-index.js";
import type { Decision, PolicyLayer, PolicyRequest, PolicySource, RuleRateLimit } from "./types.js";

/** How one rule came out on one request (for explanations, and the engine's own bookkeeping). */
export interface RuleOutcome {
  /** For an allow rule: it grants. For a deny rule: it fires. */
  readonly applies: boolean;
  /** The first failed check, or why a deny rule did not fire. */
  readonly detail: string;
}

const NO_RATE_LIMITS: readonly RuleRateLimit[] = [];

/** The first failed parameter or intent check, or undefined when all pass. */
function constraintFailure(rule: CompiledRule, request: PolicyRequest): string | undefined {
  if (rule.paramChecks.length > 0) {
    const params = request.params ?? {};
    for (const check of rule.paramChecks) {
      const failure = check(params);
      if (failure !== undefined) return failure;
    }
  }
  return rule.intent?.(request);
}

/**
 * Evaluates a rule whose target matched. An allow rule grants when every check passes and its
 * condition is true. A deny rule fires when its condition is true or fails to evaluate (fail closed)
 * and, if it has checks, one of them fails: its checks are limits no other rule can lift.
 */
export function evaluateRule(
  rule: CompiledRule,
  request: PolicyRequest,
  bindings: LazyBindings,
): RuleOutcome {
  const failure = constraintFailure(rule, request);
  if (!rule.deny) {
    if (failure !== undefined) return { applies: false, detail: failure };
    if (rule.condition === undefined) return { applies: true, detail: "every check passes" };
    const result = rule.condition(bindings.get());
    if (result === true) return { applies: true, detail: "every check passes and the condition is true" };
    return { applies: false, detail: describeCondition(result) };
  }
  if (rule.constrained && failure === undefined) return { applies: false, detail: "every check passes" };
  if (rule.condition === undefined) return { applies: true, detail: failure ?? "the rule matches" };
  const result = rule.condition(bindings.get());
  if (result === false) return { applies: false, detail: "the condition is false" };
  const because = result === true ? "the condition is true" : describeCondition(result);
  return { applies: true, detail: failure === undefined ? because : `${failure}; ${because}` };
}

function describeCondition(result: ConditionResult): string {
  return result === true
    ? "the condition is true"
    : result === false
      ? "the condition is false"
      : `the condition failed to evaluate (${result.error})`;
}

/** A compiled, immutable policy. Build one with `compilePolicy`; swap whole policies to change it. */
export class CompiledPolicy {
  /** Stamps de-duplicate rules that several index entries offer for one decision. */
  private epoch = 0;
  /** Whether any condition may read `context.time`. */
  readonly readsTime: boolean;

  constructor(
    /** Every rule in evaluation order. */
    readonly rules: readonly CompiledRule[],
    private readonly index: RuleIndex,
    readonly sources: readonly PolicySource[],
  ) {
    this.readsTime = rules.some(
      (rule) => rule.definition.when !== undefined && conditionReadsTime(rule.definition.when),
    );
  }

  /** The rules whose target matches the request, in evaluation order. */
  matchingRules(request: PolicyRequest): CompiledRule[] {
    return collectMatching(this.index, request, ++this.epoch);
  }

  /**
   * Decides a request.
   *
   * Example:
   * ```ts
   * const decision = policy.decide({ principal: { id: "alice" }, action: "invoke", resource: "tool:database/query" });
   * if (decision.effect === "deny") console.log(decision.rules[0], decision.reason);
   * ```
   */
  decide(request: PolicyRequest): Decision {
    const candidates = this.matchingRules(request);
    if (candidates.length === 0) return defaultDeny(request);
    const bindings = new LazyBindings(request, this.readsTime);

    const allowed: string[] = [];
    let rateLimits: RuleRateLimit[] | undefined;
    let allowingLayer: PolicyLayer | undefined;
    let start = 0;
    while (start < candidates.length) {
      const layer = candidates[start]!.layerIndex;
      let end = start;
      while (end < candidates.length && candidates[end]!.layerIndex === layer) end++;

      // Deny overrides allow: every deny rule of the layer that fires is named.
      let fired: string[] | undefined;
      let firstFired: CompiledRule | undefined;
      let firedDetail = "";
      for (let i = start; i < end; i++) {
        const rule = candidates[i]!;
        if (!rule.deny) continue;
        const outcome = evaluateRule(rule, request, bindings);
        if (!outcome.applies) continue;
        if (fired === undefined) {
          fired = [];
          firstFired = rule;
          firedDetail = outcome.detail;
        }
        fired.push(rule.id);
      }
      if (fired !== undefined) {
        const reason = firstFired!.definition.reason ?? `denied by rule ${firstFired!.id} (${firedDetail})`;
        return { effect: "deny", rules: fired, layer: firstFired!.layer, reason, rateLimits: NO_RATE_LIMITS };
      }

      // A layer speaks through its allow rules; a deny rule that did not fire says nothing.
      let spoke = false;
      let granted = 0;
      let refused: string[] | undefined;
      let refusal = "";
      for (let i = start; i < end; i++) {
        const rule = candidates[i]!;
        if (rule.deny) continue;
        spoke = true;
        const outcome = evaluateRule(rule, request, bindings);
        if (outcome.applies) {
          granted++;
          allowed.push(rule.id);
          if (rule.rateLimit !== undefined) (rateLimits ??= []).push(rule.rateLimit);
        } else if (granted === 0) {
          if (refused === undefined) refusal = `${outcome.detail} (rule ${rule.id})`;
          (refused ??= []).push(rule.id);
        }
      }
      if (spoke) {
        if (granted === 0) {
          return {
            effect: "deny",
            rules: refused!,
            layer: candidates[start]!.layer,
            reason: refusal,
            rateLimits: NO_RATE_LIMITS,
          };
        }
        allowingLayer = candidates[start]!.layer;
      }
      start = end;
    }
    if (allowingLayer === undefined) return defaultDeny(request);
    return {
      effect: "allow",
      rules: allowed,
      layer: allowingLayer,
      reason: `allowed by ${allowed.join(", ")}`,
      rateLimits: rateLimits ?? NO_RATE_LIMITS,
    };
  }
}

/** A request's condition bindings, built on first use: most decisions run no condition at all. */
export class LazyBindings {
  private value: ConditionBindings | undefined;

  constructor(
    private readonly request: PolicyRequest,
    private readonly withTime: boolean,
  ) {}

  get(): ConditionBindings {
    return (this.value ??= conditionBindings(
      this.request,
      this.request.context?.now ?? Date.now(),
      this.withTime,
    ));
  }
}

function defaultDeny(request: PolicyRequest): Decision {
  return {
    effect: "deny",
    rules: [],
    reason: `no rule allows ${request.action} on ${request.resource} for ${request.principal.id}`,
    rateLimits: NO_RATE_LIMITS,
  };
}
