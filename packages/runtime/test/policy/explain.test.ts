// `explain` and the pipeline adapter: what `signet policy explain` prints, and how an invocation
// becomes a policy request at step 7.
import type { Envelope } from "@signet/protocol";
import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/principal.js";
import type { InvocationContext } from "../../src/pipeline/hooks.js";
import { compilePolicy } from "../../src/policy/compile.js";
import { explain, formatExplanation } from "../../src/policy/explain.js";
import { LivePolicy } from "../../src/policy/live-policy.js";
import { createPipelinePolicy, invocationRequest } from "../../src/policy/pipeline-policy.js";
import { parsePolicyFile } from "../../src/policy/policy-file.js";

const POLICY = `rules:
  - id: demo-query
    effect: allow
    principals: [alice, bob]
    actions: [invoke]
    resources: ["tool:database/query"]
    params:
      limit: { max: 100 }
  - id: no-drop
    effect: deny
    principals: ["*"]
    actions: ["*"]
    resources: ["tool:database/drop"]
    reason: Dropping tables is never allowed from an agent
  - id: ops-memory
    effect: allow
    roles: [operator]
    actions: ["memory.*"]
    resources: ["*"]
`;

function policy() {
  const { source, problems } = parsePolicyFile(POLICY, "policies/dev.yaml");
  expect(problems).toEqual([]);
  return compilePolicy([source]);
}

describe("explain", () => {
  it("gives the decision and, for every rule, whether and why it matched", () => {
    const result = explain(policy(), {
      principal: { id: "bob" },
      action: "invoke",
      resource: "tool:database/query",
      params: { limit: 500 },
    });
    expect(result.decision).toMatchObject({ effect: "deny", rules: ["demo-query"], layer: "global" });
    expect(result.rules).toEqual([
      expect.objectContaining({
        id: "demo-query",
        target: "matched",
        applies: false,
        decided: true,
        line: 2,
        why: "does not allow: params.limit is above 100",
      }),
      expect.objectContaining({
        id: "no-drop",
        target: "resource",
        applies: false,
        decided: false,
        why: "resource tool:database/query is not among tool:database/drop",
      }),
      expect.objectContaining({
        id: "ops-memory",
        target: "roles",
        why: "the principal holds none of the roles operator",
      }),
    ]);
  });

  it("formats for a terminal, listing the rules that could have applied", () => {
    const text = formatExplanation(
      explain(new LivePolicy(policy()), {
        principal: { id: "mallory" },
        action: "invoke",
        resource: "tool:database/drop",
      }),
    );
    expect(text).toContain("DENY: mallory invoke tool:database/drop");
    expect(text).toContain("rules:  no-drop");
    expect(text).toContain("reason: Dropping tables is never allowed from an agent");
    expect(text).toContain("* no-drop [deny, global] policies/dev.yaml:9");
    expect(text).toContain("- demo-query [allow, global] policies/dev.yaml:2");
    expect(text).toContain("principal mallory is not among alice, bob");
    // ops-memory misses on its roles, so it is listed; a rule for another action would be counted.
    expect(text).toContain("ops-memory");
  });

  it("says so when no rule spoke", () => {
    const text = formatExplanation(
      explain(policy(), { principal: { id: "x" }, action: "send", resource: "agent:y" }),
      {
        all: true,
      },
    );
    expect(text).toContain("rules:  (none: default deny)");
    expect(text).toContain("reason: no rule allows send on agent:y for x");
    expect(text).toContain("rules considered (3 of 3)");
  });
});

function invocation(
  overrides: Partial<Envelope> = {},
  principal: Partial<Principal> = {},
): InvocationContext {
  const envelope = {
    v: "signet/1",
    id: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
    type: "invoke",
    from: "alice",
    to: "tool:database/query",
    ts: 1_763_769_600_000,
    nonce: "AAECAwQFBgcICQoLDA0ODw",
    kid: "k",
    body_hash: "sha256:00",
    body: { query: "select 1", limit: 10 },
    sig: "s",
    ...overrides,
  } as Envelope;
  return {
    principal: { id: "alice", kind: "agent", permissions: [], method: "api_key", ...principal },
    envelope,
    tool: "database/query",
    sourceIp: "10.0.0.7",
    now: 1_763_769_600_123,
  };
}

describe("the pipeline adapter", () => {
  it("maps an invocation to a request: invoke, the target, the body as params, intent and context", () => {
    const context = invocation({
      intent: { purpose: "report", permissions: ["database:read"] },
      session: "s-1",
    });
    expect(invocationRequest(context, { rolesOf: () => ["analyst"] })).toEqual({
      principal: { id: "alice", kind: "agent", roles: ["analyst"] },
      action: "invoke",
      resource: "tool:database/query",
      params: { query: "select 1", limit: 10 },
      intent: { purpose: "report", permissions: ["database:read"] },
      context: { now: 1_763_769_600_123, session: "s-1", sourceIp: "10.0.0.7" },
    });
  });

  it("has no params for a body that is not an object, and makes a user its own user", () => {
    const request = invocationRequest(invocation({ body: [1, 2] }, { id: "carol", kind: "user" }));
    expect(request.params).toBeUndefined();
    expect(request.principal).toEqual({ id: "carol", kind: "user", user: "carol" });
  });

  it("decides for the pipeline: a deny names the rule and the reason", () => {
    const step = createPipelinePolicy(policy());
    expect(step.decide(invocation())).toMatchObject({ effect: "allow", rules: ["demo-query"] });
    expect(step.decide(invocation({ to: "tool:database/drop" }))).toMatchObject({
      effect: "deny",
      rules: ["no-drop"],
      reason: "Dropping tables is never allowed from an agent",
    });
    expect(step.decide(invocation({ body: { limit: 1000 } }))).toMatchObject({
      effect: "deny",
      rules: ["demo-query"],
      reason: "params.limit is above 100 (rule demo-query)",
    });
    expect(step.decide(invocation({}, { id: "eve" }))).toMatchObject({ effect: "deny", rules: [] });
  });
});
