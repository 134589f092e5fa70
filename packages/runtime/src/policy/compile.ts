// Compiles rule sources once: validates every rule, builds its matchers and checks, and indexes the
// rules by action and by resource key so that a decision looks at a handful of rules, not all of them.
import { type Condition, compileCondition } from "./condition.js";
import { CompiledPolicy } from "./engine.js";
import {
  type Matcher,
  type PrincipalMatcher,
  compileActionPattern,
  compilePrincipalPattern,
  compileResourcePattern,
} from "./glob.js";
import { type ParamCheck, compileDeniedParams, compileParamConstraint } from "./params.js";
import { PolicyLoadError, type PolicyProblem } from "./policy-error.js";
import { parseRateLimit } from "./rate-limit.js";
import { GROUP_INDEX_MIN, buildRuleIndex } from "./rule-index.js";
import { formatPath, readRule, ruleToDocument } from "./rule-schema.js";
import {
  POLICY_LAYERS,
  type PolicyLayer,
  type PolicyRequest,
  type PolicySource,
  type RuleDefinition,
  type RuleRateLimit,
  type SourceLocation,
} from "./types.js";

/** Checks a request's declared intent; returns why it falls short, or undefined. */
export type IntentCheck = (request: PolicyRequest) => string | undefined;

/** A rule ready to evaluate. Read-only to everything but the engine's de-duplication stamp. */
export interface CompiledRule {
  /** Position in evaluation order: layers from global to user, then the order loaded. */
  readonly order: number;
  readonly id: string;
  readonly deny: boolean;
  readonly layer: PolicyLayer;
  readonly layerIndex: number;
  readonly scope: string | undefined;
  /** The policy file (or other source) the rule came from. */
  readonly source: string;
  readonly location: SourceLocation | undefined;
  readonly definition: RuleDefinition;
  /** Undefined: any principal (the rule names roles instead). */
  readonly principals: readonly PrincipalMatcher[] | undefined;
  readonly roles: readonly string[] | undefined;
  readonly actions: readonly Matcher[];
  readonly resources: readonly Matcher[];
  /** Parameter constraints then forbidden parameters. */
  readonly paramChecks: readonly ParamCheck[];
  readonly intent: IntentCheck | undefined;
  readonly condition: Condition | undefined;
  /** True when the rule has parameter, forbidden-parameter or intent checks. */
  readonly constrained: boolean;
  readonly rateLimit: RuleRateLimit | undefined;
  /** The decision that last collected this rule (internal). */
  stamp: number;
}

function compileIntent(rule: RuleDefinition): IntentCheck | undefined {
  const requirement = rule.intent;
  if (requirement === undefined) return undefined;
  const fixed = requirement.permissions;
  const purpose = requirement.purpose === true;
  return (request) => {
    const intent = request.intent;
    if (intent === undefined) return "no intent was declared";
    if (purpose && (intent.purpose === undefined || intent.purpose.trim() === "")) {
      return "the declared intent has no purpose";
    }
    const declared = intent.permissions ?? [];
    if (fixed === undefined) {
      const needed = `${request.action}:${request.resource}`;
      return declared.includes(needed) ? undefined : `the declared intent does not include ${needed}`;
    }
    for (const permission of fixed) {
      if (!declared.includes(permission)) return `the declared intent does not include ${permission}`;
    }
    return undefined;
  };
}

function compileRule(
  rule: RuleDefinition,
  source: PolicySource,
  order: number,
  location: SourceLocation | undefined,
): CompiledRule {
  const paramChecks: ParamCheck[] = Object.entries(rule.params ?? {}).map(([name, constraint]) =>
    compileParamConstraint(name, constraint),
  );
  if (rule.deniedParams !== undefined && rule.deniedParams.length > 0) {
    paramChecks.push(compileDeniedParams(rule.deniedParams));
  }
  const intent = compileIntent(rule);
  const rateLimit = rule.rateLimit === undefined ? undefined : parseRateLimit(rule.rateLimit);
  return {
    order,
    id: rule.id,
    deny: rule.effect === "deny",
    layer: source.layer,
    layerIndex: POLICY_LAYERS.indexOf(source.layer),
    scope: source.scope,
    source: source.name,
    location,
    definition: rule,
    principals: rule.principals?.map(compilePrincipalPattern),
    roles: rule.roles,
    actions: rule.actions.map(compileActionPattern),
    resources: rule.resources.map(compileResourcePattern),
    paramChecks,
    intent,
    condition: rule.when === undefined ? undefined : compileCondition(rule.when),
    constrained: paramChecks.length > 0 || intent !== undefined,
    rateLimit: rateLimit === undefined ? undefined : { ...rateLimit, rule: rule.id },
    stamp: 0,
  };
}

export interface CompileOptions {
  /**
   * Rules filed under one action and resource key are indexed by principal too once there are this
   * many (default 12); below it a scan is cheaper. Tests set 0 to exercise the principal index.
   */
  readonly groupIndexMin?: number;
}

/**
 * Validates and compiles rule sources into an immutable policy. Throws a PolicyLoadError listing
 * every problem (file, line, rule) when any rule is invalid or two rules share an id.
 *
 * Example:
 * ```ts
 * const policy = compilePolicy([{ name: "inline", layer: "global", rules: [
 *   { id: "demo-query", effect: "allow", principals: ["alice", "bob"], actions: ["invoke"],
 *     resources: ["tool:database/query"] },
 * ] }]);
 * policy.decide({ principal: { id: "alice" }, action: "invoke", resource: "tool:database/query" });
 * ```
 */
export function compilePolicy(
  sources: readonly PolicySource[],
  options: CompileOptions = {},
): CompiledPolicy {
  const problems: PolicyProblem[] = [];
  const seen = new Map<string, string>();
  // Evaluation order is layer order; within a layer, the order the sources and rules were given.
  const ordered = sources
    .map((source, position) => ({ source, position }))
    .sort(
      (a, b) =>
        POLICY_LAYERS.indexOf(a.source.layer) - POLICY_LAYERS.indexOf(b.source.layer) ||
        a.position - b.position,
    )
    .map(({ source }) => source);
  const rules: CompiledRule[] = [];
  for (const source of ordered) {
    if (!(POLICY_LAYERS as readonly string[]).includes(source.layer)) {
      problems.push({ file: source.name, message: `layer must be one of ${POLICY_LAYERS.join(", ")}` });
      continue;
    }
    if (source.layer === "global" && source.scope !== undefined) {
      problems.push({ file: source.name, message: "the global layer has no scope" });
    }
    for (const definition of source.rules) {
      const location = source.locations?.[definition.id];
      const where = {
        file: location?.file ?? source.name,
        ...(location === undefined ? {} : { line: location.line }),
      };
      // Rules built in code go through the same schema as rules read from files.
      const { problems: ruleProblems } = readRule(ruleToDocument(definition));
      for (const problem of ruleProblems) {
        problems.push({
          ...where,
          rule: problem.rule ?? definition.id,
          message: `${formatPath(problem.path) || "rule"}: ${problem.message}`,
        });
      }
      const earlier = seen.get(definition.id);
      if (earlier !== undefined) {
        problems.push({ ...where, rule: definition.id, message: `the id is already used in ${earlier}` });
      } else {
        seen.set(definition.id, location === undefined ? source.name : `${location.file}:${location.line}`);
      }
      if (ruleProblems.length === 0) rules.push(compileRule(definition, source, rules.length, location));
    }
  }
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return new CompiledPolicy(rules, buildRuleIndex(rules, options.groupIndexMin ?? GROUP_INDEX_MIN), ordered);
}
