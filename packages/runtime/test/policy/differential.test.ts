// The compiled engine against a reference evaluator written from the specification alone: a linear
// scan over every rule, globs as regular expressions, CEL run from source on every call. On random
// policies and random requests they must agree on the effect, the deciding rules and the layer.
import { isCelError, run } from "@bufbuild/cel";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RE2JS } from "@bufbuild/re2";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/compile.js";
import type {
  ParamConstraint,
  PolicyLayer,
  PolicyRequest,
  PolicySource,
  RuleDefinition,
} from "../../src/policy/types.js";

// ---------------------------------------------------------------------------------------------
// The reference evaluator. Deliberately naive: no index, no caching, no shared code with the engine.
// ---------------------------------------------------------------------------------------------

const LAYERS: PolicyLayer[] = ["global", "org", "team", "app", "user"];

function escape(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * `*` = any run without `/`; a whole `**` segment = zero or more segments. Each segment is written
 * with the `/` before it, and the name is tested with a `/` in front, so `**` needs no special cases.
 */
function resourceMatches(pattern: string, resource: string): boolean {
  if (pattern === "*" || pattern === "**") return true;
  const [kind, ...rest] = pattern.split(":");
  const colon = resource.indexOf(":");
  if (colon < 0) return false;
  if (kind !== "*" && resource.slice(0, colon) !== kind) return false;
  const name = rest
    .join(":")
    .split("/")
    .map((segment) => (segment === "**" ? "(?:/[^/]*)*" : `/${segment.split("*").map(escape).join("[^/]*")}`))
    .join("");
  return new RegExp(`^${name}$`).test(`/${resource.slice(colon + 1)}`);
}

function starRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.split("*").map(escape).join("[\\s\\S]*")}$`);
}

function principalMatches(pattern: string, id: string, kind: string | undefined): boolean {
  const colon = pattern.indexOf(":");
  if (colon >= 0) {
    const wanted = pattern.slice(0, colon);
    if (wanted !== "*" && wanted !== kind) return false;
    return starRegex(pattern.slice(colon + 1)).test(id);
  }
  return starRegex(pattern).test(id);
}

function scopeAttribute(request: PolicyRequest, layer: PolicyLayer): string | undefined {
  const p = request.principal;
  if (layer === "org") return p.org;
  if (layer === "team") return p.team;
  if (layer === "app") return p.app;
  if (layer === "user") return p.user !== undefined ? p.user : p.kind === "user" ? p.id : undefined;
  return undefined;
}

interface RefRule {
  rule: RuleDefinition;
  layer: PolicyLayer;
  scope?: string;
}

function targetOf(entry: RefRule, request: PolicyRequest): boolean {
  const { rule } = entry;
  if (entry.scope !== undefined && scopeAttribute(request, entry.layer) !== entry.scope) return false;
  if (
    rule.principals &&
    !rule.principals.some((p) => principalMatches(p, request.principal.id, request.principal.kind))
  ) {
    return false;
  }
  if (rule.roles && !rule.roles.some((r) => (request.principal.roles ?? []).includes(r))) return false;
  if (!rule.actions.some((a) => starRegex(a).test(request.action))) return false;
  return rule.resources.some((r) => resourceMatches(r, request.resource));
}

function paramOk(name: string, c: ParamConstraint, params: Record<string, unknown>): boolean {
  if (!Object.keys(params).includes(name)) return c.required !== true;
  const v = params[name];
  if (c.values && !c.values.some((x) => x === v)) return false;
  if (c.min !== undefined || c.max !== undefined) {
    if (typeof v !== "number" || !isFinite(v)) return false;
    if (c.min !== undefined && v < c.min) return false;
    if (c.max !== undefined && v > c.max) return false;
  }
  if (c.maxLength !== undefined) {
    if (typeof v === "string" || Array.isArray(v)) {
      if (v.length > c.maxLength) return false;
    } else return false;
  }
  if (c.pattern !== undefined) {
    if (typeof v !== "string" || !RE2JS.compile(c.pattern).test(v)) return false;
  }
  return true;
}

/** True when every parameter, forbidden-parameter and intent check passes. */
function checksPass(rule: RuleDefinition, request: PolicyRequest): boolean {
  const params = (request.params ?? {}) as Record<string, unknown>;
  for (const [name, c] of Object.entries(rule.params ?? {})) if (!paramOk(name, c, params)) return false;
  for (const name of rule.deniedParams ?? []) if (Object.keys(params).includes(name)) return false;
  if (rule.intent) {
    const intent = request.intent;
    if (!intent) return false;
    if (rule.intent.purpose && !(intent.purpose && intent.purpose.trim())) return false;
    const needed = rule.intent.permissions ?? [`${request.action}:${request.resource}`];
    if (!needed.every((p) => (intent.permissions ?? []).includes(p))) return false;
  }
  return true;
}

function hasChecks(rule: RuleDefinition): boolean {
  return (
    Object.keys(rule.params ?? {}).length > 0 ||
    (rule.deniedParams ?? []).length > 0 ||
    rule.intent !== undefined
  );
}

/** "true", "false" or "error". */
function refCondition(expression: string, request: PolicyRequest): "true" | "false" | "error" {
  const p = request.principal;
  const colon = request.resource.indexOf(":");
  const bindings: Record<string, unknown> = {
    principal: Object.assign(
      { id: p.id, kind: p.kind ?? "", roles: [...(p.roles ?? [])], attributes: {} },
      p.org === undefined ? {} : { org: p.org },
      p.team === undefined ? {} : { team: p.team },
      p.app === undefined ? {} : { app: p.app },
      p.user === undefined ? {} : { user: p.user },
    ),
    action: request.action,
    resource: {
      id: request.resource,
      kind: request.resource.slice(0, colon),
      name: request.resource.slice(colon + 1),
    },
    params: request.params ?? {},
    intent: Object.assign(
      { permissions: [...(request.intent?.permissions ?? [])] },
      request.intent?.purpose === undefined ? {} : { purpose: request.intent.purpose },
    ),
    context: Object.assign(
      { time: timestampFromMs(request.context?.now ?? 0) },
      request.context?.session === undefined ? {} : { session: request.context.session },
      request.context?.sourceIp === undefined ? {} : { source_ip: request.context.sourceIp },
    ),
  };
  const result = run(expression, bindings as never);
  if (isCelError(result) || typeof result !== "boolean") return "error";
  return result ? "true" : "false";
}

interface RefDecision {
  effect: "allow" | "deny";
  rules: string[];
  layer?: PolicyLayer;
}

function referenceDecide(sources: PolicySource[], request: PolicyRequest): RefDecision {
  const all: RefRule[] = [];
  for (const layer of LAYERS) {
    for (const source of sources) {
      if (source.layer !== layer) continue;
      for (const rule of source.rules)
        all.push({ rule, layer, ...(source.scope ? { scope: source.scope } : {}) });
    }
  }
  const allowedBy: string[] = [];
  let lastAllowingLayer: PolicyLayer | undefined;
  for (const layer of LAYERS) {
    const here = all.filter((entry) => entry.layer === layer && targetOf(entry, request));
    const fired = here.filter(({ rule }) => {
      if (rule.effect !== "deny") return false;
      if (hasChecks(rule) && checksPass(rule, request)) return false;
      if (rule.when === undefined) return true;
      return refCondition(rule.when, request) !== "false";
    });
    if (fired.length > 0) return { effect: "deny", rules: fired.map((e) => e.rule.id), layer };
    const allows = here.filter(({ rule }) => rule.effect === "allow");
    if (allows.length === 0) continue;
    const granting = allows.filter(
      ({ rule }) =>
        checksPass(rule, request) && (rule.when === undefined || refCondition(rule.when, request) === "true"),
    );
    if (granting.length === 0) return { effect: "deny", rules: allows.map((e) => e.rule.id), layer };
    allowedBy.push(...granting.map((e) => e.rule.id));
    lastAllowingLayer = layer;
  }
  if (lastAllowingLayer === undefined) return { effect: "deny", rules: [] };
  return { effect: "allow", rules: allowedBy, layer: lastAllowingLayer };
}

// ---------------------------------------------------------------------------------------------
// Random policies and requests, over small alphabets so that rules and requests meet often.
// ---------------------------------------------------------------------------------------------

const IDS = ["alice", "bob", "customer-eu", "customer-us"];
const PRINCIPAL_PATTERNS = [
  "alice",
  "bob",
  "agent:alice",
  "user:*",
  "agent:customer-*",
  "customer-*",
  "*",
  "*:bob",
  "c*-*",
];
const ROLES = ["admin", "dev", "viewer"];
const ACTIONS = ["invoke", "send", "memory.read", "memory.write"];
const ACTION_PATTERNS = ["invoke", "send", "memory.read", "memory.*", "*", "mem*.w*"];
const RESOURCES = [
  "tool:db/query",
  "tool:db/drop",
  "tool:db/a/query",
  "tool:db",
  "tool:dbx/query",
  "agent:alice",
  "capability:refunds",
];
const RESOURCE_PATTERNS = [
  "tool:db/query",
  "tool:db/*",
  "tool:db/**",
  "tool:**",
  "tool:**/query",
  "tool:d*/q*",
  "tool:db/*/query",
  "*:refunds",
  "agent:*",
  "agent:alice",
  "tool:db",
  "*",
  "*:db/**",
];
const CONDITIONS = [
  "true",
  "false",
  'principal.id == "alice"',
  '"admin" in principal.roles',
  "has(params.amount) && params.amount > 10",
  "params.amount > 10", // errors when amount is absent
  'context.source_ip.startsWith("10.")', // errors when there is no source IP
  "has(context.session)",
  'resource.name.startsWith("db/")',
  'action == "invoke" || intent.purpose == "audit"',
  "context.time.getHours() < 12",
  "size(intent.permissions) > 0",
];
const ORGS = ["acme", "globex"];

/** `arb` one time in `every`, otherwise undefined. */
function sometimes<T>(arb: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: every - 1 }, { arbitrary: arb, weight: 1 });
}

const constraintArb: fc.Arbitrary<ParamConstraint> = fc
  .record(
    {
      required: fc.boolean(),
      values: fc.constantFrom<(string | number)[]>([1, 5, 50], ["read", "write"], [5, "5"]),
      min: fc.constantFrom(0, 5),
      max: fc.constantFrom(10, 100),
      pattern: fc.constantFrom("^r", "e$", "^[a-z]+$"),
      maxLength: fc.constantFrom(0, 3, 5),
    },
    { requiredKeys: [] },
  )
  .filter((c) => Object.keys(c).length > 0 && !(c.min !== undefined && c.max !== undefined && c.min > c.max));

const ruleArb = (id: string): fc.Arbitrary<RuleDefinition> =>
  fc
    .record({
      effect: fc.constantFrom<"allow" | "deny">("allow", "allow", "allow", "deny"),
      principals: fc.uniqueArray(fc.constantFrom(...PRINCIPAL_PATTERNS), { minLength: 1, maxLength: 2 }),
      roles: sometimes(fc.uniqueArray(fc.constantFrom(...ROLES), { minLength: 1, maxLength: 2 }), 3),
      usePrincipals: fc.boolean(),
      actions: fc.uniqueArray(fc.constantFrom(...ACTION_PATTERNS), { minLength: 1, maxLength: 2 }),
      resources: fc.uniqueArray(fc.constantFrom(...RESOURCE_PATTERNS), { minLength: 1, maxLength: 3 }),
      params: sometimes(
        fc.dictionary(fc.constantFrom("amount", "mode"), constraintArb, { minKeys: 1, maxKeys: 2 }),
        4,
      ),
      deniedParams: sometimes(fc.constantFrom(["raw"], ["mode"]), 5),
      intent: sometimes(
        fc.constantFrom({}, { permissions: ["db:read"] }, { permissions: ["db:read"], purpose: true }),
        5,
      ),
      when: sometimes(fc.constantFrom(...CONDITIONS), 4),
      rateLimit: sometimes(fc.constantFrom("10/second", "100/minute"), 4),
    })
    .map((r) => {
      const hasRoles = r.roles !== undefined;
      const rule: RuleDefinition = {
        id,
        effect: r.effect,
        ...(r.usePrincipals || !hasRoles ? { principals: r.principals } : {}),
        ...(hasRoles ? { roles: r.roles! } : {}),
        actions: r.actions,
        resources: r.resources,
        ...(r.params ? { params: r.params } : {}),
        ...(r.deniedParams ? { deniedParams: r.deniedParams } : {}),
        ...(r.intent ? { intent: r.intent } : {}),
        ...(r.when ? { when: r.when } : {}),
        ...(r.rateLimit && r.effect === "allow" ? { rateLimit: r.rateLimit } : {}),
      };
      return rule;
    });

const sourceArb = (index: number): fc.Arbitrary<PolicySource> =>
  fc
    .record({
      layer: fc.constantFrom(...LAYERS),
      scope: sometimes(fc.constantFrom(...ORGS, "carol"), 3),
      count: fc.integer({ min: 1, max: 5 }),
    })
    .chain(({ layer, scope, count }) =>
      fc
        .tuple(...Array.from({ length: count }, (_, i) => ruleArb(`s${index}-r${i}`)))
        .map((rules): PolicySource => ({
          name: `source-${index}.yaml`,
          layer,
          ...(scope && layer !== "global" ? { scope } : {}),
          rules,
        })),
    );

const policyArb: fc.Arbitrary<PolicySource[]> = fc
  .integer({ min: 1, max: 4 })
  .chain((count) => fc.tuple(...Array.from({ length: count }, (_, i) => sourceArb(i))));

const requestArb: fc.Arbitrary<PolicyRequest> = fc
  .record(
    {
      id: fc.constantFrom(...IDS, "carol"),
      kind: fc.constantFrom<"agent" | "user" | "service">("agent", "agent", "user", "service"),
      roles: fc.uniqueArray(fc.constantFrom(...ROLES), { maxLength: 2 }),
      org: fc.constantFrom(...ORGS),
      team: fc.constantFrom(...ORGS),
      app: fc.constantFrom(...ORGS),
      user: fc.constantFrom("carol", "dave"),
      action: fc.constantFrom(...ACTIONS),
      resource: fc.constantFrom(...RESOURCES),
      params: fc.dictionary(
        fc.constantFrom("amount", "mode", "raw", "constructor"),
        fc.oneof(
          fc.constantFrom(0, 1, 5, 7, 50, 200, "5", "read", "write", "r", "", "abc!", true, null),
          fc.constant([1, 2, 3, 4]),
        ),
        { maxKeys: 3 },
      ),
      intent: fc.record(
        {
          purpose: fc.constantFrom("audit", "", " ", "report"),
          permissions: fc.uniqueArray(
            fc.constantFrom(
              "db:read",
              "db:write",
              "invoke:tool:db/query",
              "invoke:tool:db/drop",
              "send:agent:alice",
            ),
            { maxLength: 3 },
          ),
        },
        { requiredKeys: [] },
      ),
      sourceIp: fc.constantFrom("10.0.0.1", "192.0.2.7"),
      session: fc.constant("s-1"),
      hour: fc.integer({ min: 0, max: 23 }),
    },
    { requiredKeys: ["id", "kind", "action", "resource", "hour"] },
  )
  .map((r) => ({
    principal: {
      id: r.id,
      kind: r.kind,
      ...(r.roles ? { roles: r.roles } : {}),
      ...(r.org ? { org: r.org } : {}),
      ...(r.team ? { team: r.team } : {}),
      ...(r.app ? { app: r.app } : {}),
      ...(r.user ? { user: r.user } : {}),
    },
    action: r.action,
    resource: r.resource,
    ...(r.params ? { params: r.params } : {}),
    ...(r.intent ? { intent: r.intent } : {}),
    context: {
      now: Date.UTC(2026, 0, 5, r.hour, 30),
      ...(r.sourceIp ? { sourceIp: r.sourceIp } : {}),
      ...(r.session ? { session: r.session } : {}),
    },
  }));

describe("the compiled engine agrees with the reference evaluator", () => {
  it("on the reference's own glob translation", () => {
    // The reference is only as good as its globs: pin them to the documented examples first.
    expect(resourceMatches("tool:database/**", "tool:database")).toBe(true);
    expect(resourceMatches("tool:database/**", "tool:database/a/b")).toBe(true);
    expect(resourceMatches("tool:database/**", "tool:databases")).toBe(false);
    expect(resourceMatches("tool:**/query", "tool:query")).toBe(true);
    expect(resourceMatches("tool:**/query", "tool:a/b/query")).toBe(true);
    expect(resourceMatches("tool:**/query", "tool:aquery")).toBe(false);
    expect(resourceMatches("tool:db/*", "tool:db/a/b")).toBe(false);
    expect(resourceMatches("*:db/**", "tool:db")).toBe(true);
  });

  it("on random policies and requests: same effect, same deciding rules, same layer", () => {
    let allows = 0;
    let denies = 0;
    let defaults = 0;
    fc.assert(
      fc.property(policyArb, fc.array(requestArb, { minLength: 1, maxLength: 25 }), (sources, requests) => {
        // Once as configured, once with every group indexed by principal (groups here are small).
        const policy = compilePolicy(sources);
        const indexed = compilePolicy(sources, { groupIndexMin: 0 });
        for (const request of requests) {
          const actual = policy.decide(request);
          const expected = referenceDecide(sources, request);
          const viaIndex = indexed.decide(request);
          expect({ effect: viaIndex.effect, rules: viaIndex.rules }).toEqual({
            effect: expected.effect,
            rules: expected.rules,
          });
          expect({ effect: actual.effect, rules: actual.rules, layer: actual.layer }).toEqual({
            effect: expected.effect,
            rules: expected.rules,
            layer: expected.layer,
          });
          if (actual.effect === "allow") {
            allows++;
            const limited = sources
              .flatMap((s) => s.rules)
              .filter((r) => actual.rules.includes(r.id) && r.rateLimit !== undefined)
              .map((r) => r.id);
            expect(actual.rateLimits.map((l) => l.rule).sort()).toEqual(limited.sort());
          } else if (actual.rules.length === 0) defaults++;
          else denies++;
        }
      }),
      { numRuns: 400 },
    );
    // The generator must exercise every outcome, or agreement proves little.
    expect(allows).toBeGreaterThan(100);
    expect(denies).toBeGreaterThan(100);
    expect(defaults).toBeGreaterThan(100);
  });
});
