// The policy model, feature by feature: one table row per behaviour a policy author relies on.
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/compile.js";
import { PolicyLoadError } from "../../src/policy/policy-error.js";
import type {
  PolicyLayer,
  PolicyPrincipal,
  PolicyRequest,
  PolicySource,
  RuleDefinition,
} from "../../src/policy/types.js";

type Rule = Partial<RuleDefinition> & { id: string };

/** A rule with defaults that match broadly, so each row states only what it is about. */
function rule(fields: Rule): RuleDefinition {
  return {
    effect: "allow",
    principals: ["*"],
    actions: ["invoke"],
    resources: ["tool:database/query"],
    ...fields,
  };
}

function request(
  fields: Partial<Omit<PolicyRequest, "principal">> & { principal?: Partial<PolicyPrincipal> } = {},
): PolicyRequest {
  return {
    action: "invoke",
    resource: "tool:database/query",
    ...fields,
    principal: { id: "alice", kind: "agent", ...fields.principal },
  };
}

const global = (...rules: Rule[]): PolicySource => ({
  name: "test",
  layer: "global",
  rules: rules.map(rule),
});
const layer = (name: PolicyLayer, scope: string | undefined, ...rules: Rule[]): PolicySource => ({
  name: `${name}.yaml`,
  layer: name,
  ...(scope === undefined ? {} : { scope }),
  rules: rules.map(rule),
});

interface Case {
  readonly name: string;
  readonly sources: readonly PolicySource[];
  readonly request: PolicyRequest;
  readonly effect: "allow" | "deny";
  readonly rules: readonly string[];
  readonly layer?: PolicyLayer;
  readonly reason?: RegExp;
}

const cases: Case[] = [
  // Principals
  {
    name: "an exact principal id",
    sources: [global({ id: "r", principals: ["alice"] })],
    request: request(),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "another principal is not matched: default deny",
    sources: [global({ id: "r", principals: ["bob"] })],
    request: request(),
    effect: "deny",
    rules: [],
    reason: /no rule allows invoke on tool:database\/query for alice/,
  },
  {
    name: "a kind-qualified glob matches that kind",
    sources: [global({ id: "r", principals: ["agent:customer-*"] })],
    request: request({ principal: { id: "customer-eu" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a kind-qualified glob refuses another kind",
    sources: [global({ id: "r", principals: ["agent:customer-*"] })],
    request: request({ principal: { id: "customer-eu", kind: "user" } }),
    effect: "deny",
    rules: [],
  },
  {
    name: "a bare glob matches every kind",
    sources: [global({ id: "r", principals: ["customer-*"] })],
    request: request({ principal: { id: "customer-eu", kind: "service" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "* matches everyone",
    sources: [global({ id: "r", principals: ["*"] })],
    request: request({ principal: { id: "zed", kind: "user" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a glob does not match a longer id by prefix alone",
    sources: [global({ id: "r", principals: ["ali*e"] })],
    request: request({ principal: { id: "alicex" } }),
    effect: "deny",
    rules: [],
  },

  // Roles
  {
    name: "a role the principal holds",
    sources: [global({ id: "r", principals: undefined, roles: ["operator"] })],
    request: request({ principal: { roles: ["viewer", "operator"] } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a role the principal lacks",
    sources: [global({ id: "r", principals: undefined, roles: ["operator"] })],
    request: request({ principal: { roles: ["viewer"] } }),
    effect: "deny",
    rules: [],
  },
  {
    name: "principals and roles must both match",
    sources: [global({ id: "r", principals: ["bob"], roles: ["operator"] })],
    request: request({ principal: { roles: ["operator"] } }),
    effect: "deny",
    rules: [],
  },

  // Actions
  {
    name: "an exact action",
    sources: [global({ id: "r", actions: ["memory.read"] })],
    request: request({ action: "memory.read" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "an action glob",
    sources: [global({ id: "r", actions: ["memory.*"] })],
    request: request({ action: "memory.write" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "an action glob needs its literal part",
    sources: [global({ id: "r", actions: ["memory.*"] })],
    request: request({ action: "memory" }),
    effect: "deny",
    rules: [],
  },
  {
    name: "another action is not matched",
    sources: [global({ id: "r", actions: ["send"] })],
    request: request(),
    effect: "deny",
    rules: [],
  },

  // Resources
  {
    name: "* matches within one segment",
    sources: [global({ id: "r", resources: ["tool:database/*"] })],
    request: request({ resource: "tool:database/query" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "* does not cross a /",
    sources: [global({ id: "r", resources: ["tool:database/*"] })],
    request: request({ resource: "tool:database/a/b" }),
    effect: "deny",
    rules: [],
  },
  {
    name: "** crosses segments",
    sources: [global({ id: "r", resources: ["tool:database/**"] })],
    request: request({ resource: "tool:database/a/b" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "** matches zero segments",
    sources: [global({ id: "r", resources: ["tool:database/**"] })],
    request: request({ resource: "tool:database" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "** does not match a sibling with the same prefix",
    sources: [global({ id: "r", resources: ["tool:database/**"] })],
    request: request({ resource: "tool:databases/x" }),
    effect: "deny",
    rules: [],
  },
  {
    name: "** in the middle",
    sources: [global({ id: "r", resources: ["tool:**/query"] })],
    request: request({ resource: "tool:a/b/query" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "* inside a segment",
    sources: [global({ id: "r", resources: ["tool:data*/q*"] })],
    request: request({ resource: "tool:database/query" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "the kind is literal",
    sources: [global({ id: "r", resources: ["agent:*"] })],
    request: request({ resource: "tool:alice" }),
    effect: "deny",
    rules: [],
  },
  {
    name: "a * kind matches every kind",
    sources: [global({ id: "r", resources: ["*:refunds"] })],
    request: request({ resource: "capability:refunds" }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "* alone matches every resource",
    sources: [global({ id: "r", resources: ["*"] })],
    request: request({ resource: "agent:bob" }),
    effect: "allow",
    rules: ["r"],
  },

  // Deny overrides allow inside a layer
  {
    name: "deny overrides allow",
    sources: [global({ id: "a" }, { id: "d", effect: "deny", reason: "maintenance window" })],
    request: request(),
    effect: "deny",
    rules: ["d"],
    layer: "global",
    reason: /^maintenance window$/,
  },
  {
    name: "every deny that fires is named, in order",
    sources: [
      global({ id: "d1", effect: "deny" }, { id: "a" }, { id: "d2", effect: "deny", resources: ["tool:**"] }),
    ],
    request: request(),
    effect: "deny",
    rules: ["d1", "d2"],
  },
  {
    name: "a deny without a reason says which rule",
    sources: [global({ id: "d", effect: "deny" })],
    request: request(),
    effect: "deny",
    rules: ["d"],
    reason: /denied by rule d/,
  },
  {
    name: "all allowing rules are named",
    sources: [global({ id: "a1" }, { id: "a2", resources: ["tool:**"] })],
    request: request(),
    effect: "allow",
    rules: ["a1", "a2"],
  },

  // Layers
  {
    name: "every layer that speaks must allow",
    sources: [global({ id: "g" }), layer("org", undefined, { id: "o" })],
    request: request(),
    effect: "allow",
    rules: ["g", "o"],
    layer: "org",
  },
  {
    name: "a stricter layer refuses",
    sources: [global({ id: "g" }), layer("team", undefined, { id: "t", params: { limit: { max: 10 } } })],
    request: request({ params: { limit: 50 } }),
    effect: "deny",
    rules: ["t"],
    layer: "team",
    reason: /params\.limit is above 10 \(rule t\)/,
  },
  {
    name: "a layer with no rule for the request is silent",
    sources: [global({ id: "g" }), layer("app", undefined, { id: "other", resources: ["tool:email/send"] })],
    request: request(),
    effect: "allow",
    rules: ["g"],
    layer: "global",
  },
  {
    name: "a more specific layer alone can allow",
    sources: [layer("user", undefined, { id: "u" })],
    request: request(),
    effect: "allow",
    rules: ["u"],
    layer: "user",
  },
  {
    name: "a deny in a broad layer beats an allow in a specific one",
    sources: [global({ id: "g", effect: "deny" }), layer("user", undefined, { id: "u" })],
    request: request(),
    effect: "deny",
    rules: ["g"],
    layer: "global",
  },
  {
    name: "a deny that does not fire leaves its layer silent",
    sources: [
      global({ id: "g" }),
      layer("org", undefined, { id: "o", effect: "deny", when: "context.source_ip == '1.2.3.4'" }),
    ],
    request: request({ context: { sourceIp: "10.0.0.1" } }),
    effect: "allow",
    rules: ["g"],
  },
  {
    name: "deny rules that do not fire allow nothing",
    sources: [global({ id: "d", effect: "deny", when: "false" })],
    request: request(),
    effect: "deny",
    rules: [],
  },
  {
    name: "a scoped layer speaks to its own org",
    sources: [global({ id: "g" }), layer("org", "acme", { id: "o", effect: "deny" })],
    request: request({ principal: { org: "acme" } }),
    effect: "deny",
    rules: ["o"],
    layer: "org",
  },
  {
    name: "a scoped layer is silent for another org",
    sources: [global({ id: "g" }), layer("org", "acme", { id: "o", effect: "deny" })],
    request: request({ principal: { org: "globex" } }),
    effect: "allow",
    rules: ["g"],
  },
  {
    name: "a scoped layer is silent for a principal without an org",
    sources: [layer("org", "acme", { id: "o" })],
    request: request(),
    effect: "deny",
    rules: [],
  },
  {
    name: "a user principal is its own user",
    sources: [layer("user", "carol", { id: "u" })],
    request: request({ principal: { id: "carol", kind: "user" } }),
    effect: "allow",
    rules: ["u"],
  },
  {
    name: "an agent acts for its user",
    sources: [layer("user", "carol", { id: "u" })],
    request: request({ principal: { user: "carol" } }),
    effect: "allow",
    rules: ["u"],
  },

  // Parameters
  {
    name: "an allowed value",
    sources: [global({ id: "r", params: { mode: { values: ["read", "explain"] } } })],
    request: request({ params: { mode: "read" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a value not allowed",
    sources: [global({ id: "r", params: { mode: { values: ["read"] } } })],
    request: request({ params: { mode: "write" } }),
    effect: "deny",
    rules: ["r"],
    reason: /params\.mode is not one of the allowed values/,
  },
  {
    name: "a number within range",
    sources: [global({ id: "r", params: { limit: { min: 1, max: 100 } } })],
    request: request({ params: { limit: 100 } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a number below the minimum",
    sources: [global({ id: "r", params: { limit: { min: 1 } } })],
    request: request({ params: { limit: 0 } }),
    effect: "deny",
    rules: ["r"],
    reason: /below 1/,
  },
  {
    name: "a string where a number is wanted",
    sources: [global({ id: "r", params: { limit: { max: 100 } } })],
    request: request({ params: { limit: "5" } }),
    effect: "deny",
    rules: ["r"],
    reason: /must be a number/,
  },
  {
    name: "a pattern that matches",
    sources: [global({ id: "r", params: { query: { pattern: "^(?i)select " } } })],
    request: request({ params: { query: "SELECT 1" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a pattern that does not match",
    sources: [global({ id: "r", params: { query: { pattern: "^select " } } })],
    request: request({ params: { query: "drop table x" } }),
    effect: "deny",
    rules: ["r"],
    reason: /does not match the allowed pattern/,
  },
  {
    name: "a string within max_length",
    sources: [global({ id: "r", params: { query: { maxLength: 5 } } })],
    request: request({ params: { query: "12345" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a string over max_length",
    sources: [global({ id: "r", params: { query: { maxLength: 5 } } })],
    request: request({ params: { query: "123456" } }),
    effect: "deny",
    rules: ["r"],
    reason: /longer than 5/,
  },
  {
    name: "a list over max_length",
    sources: [global({ id: "r", params: { ids: { maxLength: 2 } } })],
    request: request({ params: { ids: [1, 2, 3] } }),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "an absent optional parameter passes",
    sources: [global({ id: "r", params: { limit: { max: 10 } } })],
    request: request({ params: {} }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "an absent required parameter fails",
    sources: [global({ id: "r", params: { limit: { required: true, max: 10 } } })],
    request: request({ params: {} }),
    effect: "deny",
    rules: ["r"],
    reason: /params\.limit is required/,
  },
  {
    name: "no parameters at all and a required one",
    sources: [global({ id: "r", params: { limit: { required: true } } })],
    request: request(),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "an inherited key is not a parameter",
    sources: [global({ id: "r", params: { constructor: { required: true } } })],
    request: request({ params: {} }),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "a forbidden parameter",
    sources: [global({ id: "r", deniedParams: ["raw_sql"] })],
    request: request({ params: { raw_sql: "x" } }),
    effect: "deny",
    rules: ["r"],
    reason: /params\.raw_sql is not allowed/,
  },
  {
    name: "without the forbidden parameter",
    sources: [global({ id: "r", deniedParams: ["raw_sql"] })],
    request: request({ params: { query: "x" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a deny rule's limit no allow can lift",
    sources: [
      global(
        { id: "a" },
        {
          id: "cap",
          effect: "deny",
          params: { amount: { max: 10000 } },
          reason: "refunds above 10000 need a human",
        },
      ),
    ],
    request: request({ params: { amount: 20000 } }),
    effect: "deny",
    rules: ["cap"],
    reason: /need a human/,
  },
  {
    name: "a deny rule's limit that holds does not fire",
    sources: [global({ id: "a" }, { id: "cap", effect: "deny", params: { amount: { max: 10000 } } })],
    request: request({ params: { amount: 20 } }),
    effect: "allow",
    rules: ["a"],
  },
  {
    name: "a deny rule's forbidden parameter fires",
    sources: [global({ id: "a" }, { id: "no-raw", effect: "deny", deniedParams: ["raw_sql"] })],
    request: request({ params: { raw_sql: "x" } }),
    effect: "deny",
    rules: ["no-raw"],
  },

  // Declared intent
  {
    name: "intent required: the action's own permission declared",
    sources: [global({ id: "r", intent: {} })],
    request: request({ intent: { permissions: ["invoke:tool:database/query"] } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "intent required: none declared",
    sources: [global({ id: "r", intent: {} })],
    request: request(),
    effect: "deny",
    rules: ["r"],
    reason: /no intent was declared/,
  },
  {
    name: "intent required: the action exceeds what was declared",
    sources: [global({ id: "r", resources: ["tool:database/*"], intent: {} })],
    request: request({
      resource: "tool:database/drop",
      intent: { permissions: ["invoke:tool:database/query"] },
    }),
    effect: "deny",
    rules: ["r"],
    reason: /does not include invoke:tool:database\/drop/,
  },
  {
    name: "named permissions all declared",
    sources: [global({ id: "r", intent: { permissions: ["database:read"] } })],
    request: request({ intent: { purpose: "report", permissions: ["database:read", "email:send"] } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a named permission missing",
    sources: [global({ id: "r", intent: { permissions: ["database:write"] } })],
    request: request({ intent: { permissions: ["database:read"] } }),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "declared permissions are matched exactly, not as globs",
    sources: [global({ id: "r", intent: { permissions: ["database:read"] } })],
    request: request({ intent: { permissions: ["database:*"] } }),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "a purpose required and given",
    sources: [global({ id: "r", intent: { permissions: ["database:read"], purpose: true } })],
    request: request({ intent: { purpose: "nightly report", permissions: ["database:read"] } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a purpose required and missing",
    sources: [global({ id: "r", intent: { purpose: true } })],
    request: request({ intent: { permissions: ["invoke:tool:database/query"] } }),
    effect: "deny",
    rules: ["r"],
    reason: /no purpose/,
  },
  {
    name: "a deny rule on undeclared intent",
    sources: [
      global({ id: "a" }, { id: "need-intent", effect: "deny", intent: { permissions: ["database:read"] } }),
    ],
    request: request(),
    effect: "deny",
    rules: ["need-intent"],
  },

  // CEL conditions
  {
    name: "a true condition",
    sources: [global({ id: "r", when: 'context.source_ip.startsWith("10.")' })],
    request: request({ context: { sourceIp: "10.1.2.3" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a false condition",
    sources: [global({ id: "r", when: 'context.source_ip.startsWith("10.")' })],
    request: request({ context: { sourceIp: "192.0.2.1" } }),
    effect: "deny",
    rules: ["r"],
    reason: /the condition is false/,
  },
  {
    name: "a condition over params and principal",
    sources: [
      global({
        id: "r",
        when: 'params.limit <= 10 && principal.id == "alice" && "analyst" in principal.roles',
      }),
    ],
    request: request({ principal: { roles: ["analyst"] }, params: { limit: 5 } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a condition over the resource and intent",
    sources: [
      global({
        id: "r",
        resources: ["tool:**"],
        when: 'resource.name.startsWith("database/") && intent.purpose == "audit"',
      }),
    ],
    request: request({ intent: { purpose: "audit" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a condition over the time",
    sources: [global({ id: "r", when: "context.time.getHours() >= 9 && context.time.getHours() < 17" })],
    request: request({ context: { now: Date.UTC(2026, 0, 5, 10) } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "a condition over the time, out of hours",
    sources: [global({ id: "r", when: "context.time.getHours() >= 9 && context.time.getHours() < 17" })],
    request: request({ context: { now: Date.UTC(2026, 0, 5, 20) } }),
    effect: "deny",
    rules: ["r"],
  },
  {
    name: "a condition on the session",
    sources: [global({ id: "r", when: "has(context.session)" })],
    request: request({ context: { session: "s-1" } }),
    effect: "allow",
    rules: ["r"],
  },
  {
    name: "an allow condition that errors does not allow",
    sources: [global({ id: "r", when: "params.missing > 1" })],
    request: request({ params: {} }),
    effect: "deny",
    rules: ["r"],
    reason: /failed to evaluate/,
  },
  {
    name: "a deny condition that errors fails closed",
    sources: [global({ id: "a" }, { id: "d", effect: "deny", when: "params.missing > 1" })],
    request: request({ params: {} }),
    effect: "deny",
    rules: ["d"],
  },
  {
    name: "checks run before the condition",
    sources: [global({ id: "r", params: { limit: { max: 1 } }, when: "true" })],
    request: request({ params: { limit: 2 } }),
    effect: "deny",
    rules: ["r"],
    reason: /above 1/,
  },
];

describe("policy decisions", () => {
  it.each(cases)("$name", (row) => {
    const decision = compilePolicy(row.sources).decide(row.request);
    expect({ effect: decision.effect, rules: decision.rules }).toEqual({
      effect: row.effect,
      rules: row.rules,
    });
    if (row.layer !== undefined) expect(decision.layer).toBe(row.layer);
    if (row.reason !== undefined) expect(decision.reason).toMatch(row.reason);
    expect(decision.reason).not.toMatch(/\n/);
  });

  it("exposes the rate limits of the allowing rules for the rate-limit step", () => {
    const policy = compilePolicy([
      global({ id: "a", rateLimit: "100/minute" }, { id: "b", resources: ["tool:**"], rateLimit: "5/1h" }),
    ]);
    expect(policy.decide(request()).rateLimits).toEqual([
      { rule: "a", limit: 100, windowMs: 60_000, spec: "100/minute" },
      { rule: "b", limit: 5, windowMs: 3_600_000, spec: "5/1h" },
    ]);
    expect(policy.decide(request({ principal: { id: "x" }, action: "send" })).rateLimits).toEqual([]);
  });

  it("refuses invalid rules with every problem, naming the rule", () => {
    const attempt = () =>
      compilePolicy([
        global(
          { id: "bad-resource", resources: ["database/query"] },
          { id: "bad-when", when: "unknown_var == 1" },
          { id: "dup" },
          { id: "dup" },
          { id: "no-one", principals: undefined },
        ),
      ]);
    expect(attempt).toThrow(PolicyLoadError);
    try {
      attempt();
    } catch (error) {
      const problems = (error as PolicyLoadError).problems;
      expect((error as PolicyLoadError).code).toBe("POLICY_INVALID");
      expect(problems.map((problem) => problem.rule)).toEqual(["bad-resource", "bad-when", "dup", "no-one"]);
      expect(problems[1]!.message).toMatch(/unknown name unknown_var/);
      expect(problems[2]!.message).toMatch(/already used/);
    }
  });

  it("keeps one compiled policy per decision: the index finds what a scan would", () => {
    const rules: Rule[] = [];
    for (let i = 0; i < 300; i++) {
      rules.push({
        id: `r${i}`,
        principals: [`agent-${i % 7}`],
        resources: [i % 2 === 0 ? `tool:ns${i % 5}/t${i}` : `tool:ns${i % 5}/**`],
      });
    }
    const policy = compilePolicy([global(...rules)]);
    const decision = policy.decide(request({ principal: { id: "agent-3" }, resource: "tool:ns3/t10" }));
    const expected = rules
      .filter(
        (r) =>
          r.principals![0] === "agent-3" &&
          (r.resources![0] === "tool:ns3/t10" || r.resources![0] === "tool:ns3/**"),
      )
      .map((r) => r.id);
    expect(expected.length).toBeGreaterThan(0);
    expect(decision.rules).toEqual(expected);
  });
});
