// The schema of rules and policy documents as written (snake_case YAML), checked field by field so
// each problem carries the path of the field at fault.
import { compileCondition } from "./condition.js";
import { actionPatternProblem, principalPatternProblem, resourcePatternProblem } from "./glob.js";
import { patternProblem } from "./params.js";
import { parseRateLimit } from "./rate-limit.js";
import {
  type IntentRequirement,
  POLICY_LAYERS,
  type ParamConstraint,
  type PolicyLayer,
  type RuleDefinition,
} from "./types.js";

/** Where in a document a value sits: `["rules", 2, "params", "limit", "max"]`. */
export type FieldPath = readonly (string | number)[];

/** One problem with the field at `path`. */
export interface FieldProblem {
  readonly path: FieldPath;
  readonly message: string;
  /** The rule's id, when the problem is inside a rule that has a usable one. */
  readonly rule?: string;
}

/** `rules[2].params.limit.max`. */
export function formatPath(path: FieldPath): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? part : `.${part}`;
  }
  return text;
}

/** Rule ids: readable, stable, safe to print and to put in an audit entry. */
export const RULE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/;
const ROLE_PATTERN = /^[a-z0-9][a-z0-9._:-]{0,63}$/;
const PARAM_NAME_PATTERN = /^[A-Za-z0-9_$][A-Za-z0-9_$.-]{0,127}$/;
const MAX_LIST = 1024;
const MAX_TEXT = 512;
const MAX_CONDITION = 4096;

const RULE_KEYS = new Set([
  "id",
  "effect",
  "description",
  "principals",
  "roles",
  "actions",
  "resources",
  "params",
  "denied_params",
  "intent",
  "when",
  "rate_limit",
  "reason",
]);
const CONSTRAINT_KEYS = new Set(["required", "values", "min", "max", "pattern", "max_length"]);
const INTENT_KEYS = new Set(["permissions", "purpose"]);
const DOCUMENT_KEYS = new Set(["version", "layer", "scope", "description", "rules"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A list of strings, also accepting one bare string. Reports and returns undefined on anything else. */
function readStrings(
  value: unknown,
  path: FieldPath,
  problems: FieldProblem[],
  check: (item: string) => string | undefined,
): string[] | undefined {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) {
    problems.push({ path, message: "must be a list of strings" });
    return undefined;
  }
  if (list.length > MAX_LIST) {
    problems.push({ path, message: `has more than ${MAX_LIST} entries` });
    return undefined;
  }
  const items: string[] = [];
  list.forEach((item: unknown, index) => {
    const at = typeof value === "string" ? path : [...path, index];
    if (typeof item !== "string") {
      problems.push({ path: at, message: "must be a string" });
      return;
    }
    const problem = check(item);
    if (problem === undefined) items.push(item);
    else problems.push({ path: at, message: `"${item.slice(0, 140)}": ${problem}` });
  });
  return items.length === list.length ? items : undefined;
}

const nonEmpty = (item: string): string | undefined =>
  item.length === 0 || item.length > 128 ? "must be 1 to 128 characters" : undefined;

function readConstraint(
  value: unknown,
  path: FieldPath,
  problems: FieldProblem[],
): ParamConstraint | undefined {
  if (!isRecord(value)) {
    problems.push({
      path,
      message: "must be a mapping of checks (required, values, min, max, pattern, max_length)",
    });
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(value)) {
    if (!CONSTRAINT_KEYS.has(key)) problems.push({ path: [...path, key], message: "unknown check" });
  }
  if (Object.keys(value).length === 0) problems.push({ path, message: "has no checks" });
  const constraint: {
    required?: boolean;
    values?: (string | number | boolean | null)[];
    min?: number;
    max?: number;
    pattern?: string;
    maxLength?: number;
  } = {};
  if (value.required !== undefined) {
    if (typeof value.required !== "boolean")
      problems.push({ path: [...path, "required"], message: "must be true or false" });
    else constraint.required = value.required;
  }
  if (value.values !== undefined) {
    const values = value.values;
    if (!Array.isArray(values) || values.length === 0 || values.length > MAX_LIST) {
      problems.push({ path: [...path, "values"], message: "must be a non-empty list" });
    } else if (
      !values.every((item) => item === null || ["string", "number", "boolean"].includes(typeof item))
    ) {
      problems.push({ path: [...path, "values"], message: "must list strings, numbers, booleans or null" });
    } else {
      constraint.values = values as (string | number | boolean | null)[];
    }
  }
  for (const key of ["min", "max"] as const) {
    const bound = value[key];
    if (bound === undefined) continue;
    if (typeof bound !== "number" || !Number.isFinite(bound))
      problems.push({ path: [...path, key], message: "must be a number" });
    else constraint[key] = bound;
  }
  if (constraint.min !== undefined && constraint.max !== undefined && constraint.min > constraint.max) {
    problems.push({ path: [...path, "min"], message: "is greater than max" });
  }
  if (value.pattern !== undefined) {
    if (typeof value.pattern !== "string" || value.pattern.length > MAX_TEXT) {
      problems.push({
        path: [...path, "pattern"],
        message: `must be a string of at most ${MAX_TEXT} characters`,
      });
    } else {
      const problem = patternProblem(value.pattern);
      if (problem === undefined) constraint.pattern = value.pattern;
      else problems.push({ path: [...path, "pattern"], message: problem });
    }
  }
  if (value.max_length !== undefined) {
    const length = value.max_length;
    if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
      problems.push({ path: [...path, "max_length"], message: "must be a whole number, 0 or more" });
    } else {
      constraint.maxLength = length;
    }
  }
  return problems.length === before ? constraint : undefined;
}

function readIntent(
  value: unknown,
  path: FieldPath,
  problems: FieldProblem[],
): IntentRequirement | undefined {
  if (value === "required" || value === true) return {};
  if (!isRecord(value)) {
    problems.push({ path, message: 'must be "required" or a mapping with permissions and/or purpose' });
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(value)) {
    if (!INTENT_KEYS.has(key)) problems.push({ path: [...path, key], message: "unknown key" });
  }
  const intent: { permissions?: string[]; purpose?: boolean } = {};
  if (value.permissions !== undefined) {
    const permissions = readStrings(value.permissions, [...path, "permissions"], problems, nonEmpty);
    if (permissions !== undefined && permissions.length === 0) {
      problems.push({ path: [...path, "permissions"], message: "must not be empty" });
    } else if (permissions !== undefined) {
      intent.permissions = permissions;
    }
  }
  if (value.purpose !== undefined) {
    if (value.purpose === true || value.purpose === "required") intent.purpose = true;
    else if (value.purpose !== false)
      problems.push({ path: [...path, "purpose"], message: 'must be "required", true or false' });
  }
  return problems.length === before ? intent : undefined;
}

/**
 * Reads one rule as written in a policy file (snake_case keys). Returns the rule when it is valid;
 * problems carry paths relative to the rule.
 */
export function readRule(raw: unknown): { rule?: RuleDefinition; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  if (!isRecord(raw)) return { problems: [{ path: [], message: "a rule must be a mapping" }] };
  for (const key of Object.keys(raw)) {
    if (!RULE_KEYS.has(key)) problems.push({ path: [key], message: "unknown key" });
  }
  const strings = (key: string, check: (item: string) => string | undefined): string[] | undefined =>
    raw[key] === undefined ? undefined : readStrings(raw[key], [key], problems, check);
  const text = (key: string, max: number): string | undefined => {
    const value = raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.length === 0 || value.length > max) {
      problems.push({ path: [key], message: `must be a string of 1 to ${max} characters` });
      return undefined;
    }
    return value;
  };

  const id = raw.id;
  if (id === undefined) problems.push({ path: ["id"], message: "is required" });
  else if (typeof id !== "string" || !RULE_ID_PATTERN.test(id)) {
    problems.push({ path: ["id"], message: "must be 1 to 128 of letters, digits and . _ : / @ -" });
  }
  const effect = raw.effect;
  if (effect === undefined) problems.push({ path: ["effect"], message: "is required (allow or deny)" });
  else if (effect !== "allow" && effect !== "deny")
    problems.push({ path: ["effect"], message: "must be allow or deny" });

  const principals = strings("principals", (item) => principalPatternProblem(item));
  const roles = strings("roles", (item) => (ROLE_PATTERN.test(item) ? undefined : "is not a role name"));
  if (raw.principals === undefined && raw.roles === undefined) {
    problems.push({
      path: [],
      message: 'names no principals or roles (write principals: ["*"] for everyone)',
    });
  }
  const actions = strings("actions", (item) => actionPatternProblem(item));
  if (raw.actions === undefined)
    problems.push({ path: ["actions"], message: 'is required (["*"] for every action)' });
  const resources = strings("resources", (item) => resourcePatternProblem(item));
  if (raw.resources === undefined)
    problems.push({ path: ["resources"], message: 'is required (["*"] for every resource)' });
  for (const [key, list] of [
    ["principals", principals],
    ["roles", roles],
    ["actions", actions],
    ["resources", resources],
  ] as const) {
    if (list !== undefined && list.length === 0) problems.push({ path: [key], message: "must not be empty" });
  }

  let params: Record<string, ParamConstraint> | undefined;
  if (raw.params !== undefined) {
    if (!isRecord(raw.params))
      problems.push({ path: ["params"], message: "must be a mapping from parameter name to checks" });
    else {
      const entries: [string, ParamConstraint][] = [];
      for (const [name, value] of Object.entries(raw.params)) {
        if (!PARAM_NAME_PATTERN.test(name))
          problems.push({ path: ["params", name], message: "is not a parameter name" });
        const constraint = readConstraint(value, ["params", name], problems);
        if (constraint !== undefined) entries.push([name, constraint]);
      }
      // fromEntries defines own keys, so even a parameter named __proto__ stays a parameter.
      params = Object.fromEntries(entries);
    }
  }
  const deniedParams = strings("denied_params", (item) =>
    PARAM_NAME_PATTERN.test(item) ? undefined : "is not a parameter name",
  );
  const intent = raw.intent === undefined ? undefined : readIntent(raw.intent, ["intent"], problems);

  const when = text("when", MAX_CONDITION);
  if (when !== undefined) {
    try {
      compileCondition(when);
    } catch (error) {
      problems.push({
        path: ["when"],
        message: `is not a valid condition: ${(error as Error).message.split("\n")[0]}`,
      });
    }
  }
  const rateLimit = text("rate_limit", 64);
  if (rateLimit !== undefined) {
    if (parseRateLimit(rateLimit) === undefined) {
      problems.push({
        path: ["rate_limit"],
        message: 'must be COUNT/WINDOW, such as "100/minute" (second, minute, hour, day)',
      });
    } else if (effect === "deny") {
      problems.push({ path: ["rate_limit"], message: "only an allow rule can carry a rate limit" });
    }
  }
  const reason = text("reason", MAX_TEXT);
  if (reason !== undefined && /[\r\n]/.test(reason))
    problems.push({ path: ["reason"], message: "must be one line" });
  const description = text("description", 4096);

  const ruleId = typeof id === "string" && RULE_ID_PATTERN.test(id) ? id : undefined;
  if (problems.length > 0) {
    return {
      problems: ruleId === undefined ? problems : problems.map((problem) => ({ ...problem, rule: ruleId })),
    };
  }
  return {
    rule: {
      id: ruleId!,
      effect: effect as RuleDefinition["effect"],
      ...(principals === undefined ? {} : { principals }),
      ...(roles === undefined ? {} : { roles }),
      actions: actions!,
      resources: resources!,
      ...(params === undefined ? {} : { params }),
      ...(deniedParams === undefined ? {} : { deniedParams }),
      ...(intent === undefined ? {} : { intent }),
      ...(when === undefined ? {} : { when }),
      ...(rateLimit === undefined ? {} : { rateLimit }),
      ...(reason === undefined ? {} : { reason }),
      ...(description === undefined ? {} : { description }),
    },
    problems,
  };
}

/** Writes a rule back in the file vocabulary, so rules built in code are checked by the same schema. */
export function ruleToDocument(rule: RuleDefinition): Record<string, unknown> {
  const params =
    rule.params === undefined
      ? undefined
      : Object.fromEntries(
          Object.entries(rule.params).map(([name, c]) => [
            name,
            {
              ...(c.required === undefined ? {} : { required: c.required }),
              ...(c.values === undefined ? {} : { values: c.values }),
              ...(c.min === undefined ? {} : { min: c.min }),
              ...(c.max === undefined ? {} : { max: c.max }),
              ...(c.pattern === undefined ? {} : { pattern: c.pattern }),
              ...(c.maxLength === undefined ? {} : { max_length: c.maxLength }),
            },
          ]),
        );
  return {
    id: rule.id,
    effect: rule.effect,
    ...(rule.principals === undefined ? {} : { principals: rule.principals }),
    ...(rule.roles === undefined ? {} : { roles: rule.roles }),
    actions: rule.actions,
    resources: rule.resources,
    ...(params === undefined ? {} : { params }),
    ...(rule.deniedParams === undefined ? {} : { denied_params: rule.deniedParams }),
    ...(rule.intent === undefined
      ? {}
      : {
          intent: {
            ...(rule.intent.permissions === undefined ? {} : { permissions: rule.intent.permissions }),
            ...(rule.intent.purpose === undefined ? {} : { purpose: rule.intent.purpose }),
          },
        }),
    ...(rule.when === undefined ? {} : { when: rule.when }),
    ...(rule.rateLimit === undefined ? {} : { rate_limit: rule.rateLimit }),
    ...(rule.reason === undefined ? {} : { reason: rule.reason }),
    ...(rule.description === undefined ? {} : { description: rule.description }),
  };
}

/** A policy document as written: its layer and scope, its valid rules, and every problem found. */
export interface PolicyDocument {
  readonly layer: PolicyLayer;
  readonly scope?: string;
  readonly description?: string;
  /** One entry per written rule: the rule, or undefined when it has problems. */
  readonly rules: readonly (RuleDefinition | undefined)[];
  readonly problems: readonly FieldProblem[];
}

/**
 * Reads a whole policy document (`version`, `layer`, `scope`, `description`, `rules`).
 *
 * Example: `readPolicyDocument({ rules: [{ id: "r", effect: "deny", principals: ["*"], actions: ["*"], resources: ["*"] }] })`.
 */
export function readPolicyDocument(raw: unknown): PolicyDocument {
  const problems: FieldProblem[] = [];
  if (raw === null || raw === undefined) {
    return {
      layer: "global",
      rules: [],
      problems: [{ path: [], message: "the document is empty (it needs rules:)" }],
    };
  }
  if (!isRecord(raw)) {
    return {
      layer: "global",
      rules: [],
      problems: [{ path: [], message: "the document must be a mapping with rules:" }],
    };
  }
  for (const key of Object.keys(raw)) {
    if (!DOCUMENT_KEYS.has(key)) problems.push({ path: [key], message: "unknown key" });
  }
  if (raw.version !== undefined && raw.version !== 1)
    problems.push({ path: ["version"], message: "must be 1" });
  let layer: PolicyLayer = "global";
  if (raw.layer !== undefined) {
    if (typeof raw.layer === "string" && (POLICY_LAYERS as readonly string[]).includes(raw.layer)) {
      layer = raw.layer as PolicyLayer;
    } else {
      problems.push({ path: ["layer"], message: `must be one of ${POLICY_LAYERS.join(", ")}` });
    }
  }
  let scope: string | undefined;
  if (raw.scope !== undefined) {
    if (typeof raw.scope !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/.test(raw.scope)) {
      problems.push({ path: ["scope"], message: "must be an org, team, app or user id" });
    } else if (layer === "global") {
      problems.push({ path: ["scope"], message: "the global layer has no scope" });
    } else {
      scope = raw.scope;
    }
  }
  let description: string | undefined;
  if (raw.description !== undefined) {
    if (typeof raw.description !== "string")
      problems.push({ path: ["description"], message: "must be a string" });
    else description = raw.description;
  }
  const rules: (RuleDefinition | undefined)[] = [];
  if (raw.rules === undefined) problems.push({ path: ["rules"], message: "is required (a list of rules)" });
  else if (!Array.isArray(raw.rules)) problems.push({ path: ["rules"], message: "must be a list of rules" });
  else {
    raw.rules.forEach((item: unknown, index) => {
      const { rule, problems: ruleProblems } = readRule(item);
      rules.push(rule);
      for (const problem of ruleProblems) {
        problems.push({
          ...problem,
          path: ["rules", index, ...problem.path],
          rule: problem.rule ?? `rules[${index}]`,
        });
      }
    });
  }
  return {
    layer,
    ...(scope === undefined ? {} : { scope }),
    ...(description === undefined ? {} : { description }),
    rules,
    problems,
  };
}
