// Session envelopes go through policy (action = envelope type, resource = session:<id>) and the rate
// limits, session starts per sender included; every refusal is audited with its code.
import { randomUUID } from "node:crypto";
import { type JsonValue, signEnvelope } from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

const POLICY = `version: 1
rules:
  - id: team-sessions
    effect: allow
    principals: [alice, bob]
    actions: ["session.*"]
    resources: ["session:*"]
  - id: mallory-may-vote-only
    effect: allow
    principals: [mallory]
    actions: [session.vote]
    resources: ["session:*"]
`;

let fx: RuntimeFixture;
let alice: TestAgent;
let bob: TestAgent;
let mallory: TestAgent;

beforeAll(async () => {
  fx = await startRuntime({
    policies: { "sessions.yaml": POLICY },
    yaml: "rate_limits:\n  session_starts_per_minute: 2\n",
  });
  alice = await registerAgent(fx, "alice");
  bob = await registerAgent(fx, "bob");
  mallory = await registerAgent(fx, "mallory");
});

afterAll(async () => {
  await fx.close();
});

function send(agent: TestAgent, session: string, verb: string, body: Record<string, JsonValue>) {
  const signed = signEnvelope(
    { type: `session.${verb}`, from: agent.id, to: `session:${session}`, session, body },
    agent.key,
  );
  return call(fx, "POST", "/v1/sessions/messages", { headers: agent.headers, body: signed.wire });
}

async function audited(code: string, actor: string) {
  const response = await call(fx, "GET", `/v1/audit?actor=${actor}&outcome=deny&limit=100`, {
    headers: { authorization: `Bearer ${fx.adminKey}` },
  });
  return (response.body.entries as { code?: string; event_type: string }[]).filter((e) => e.code === code);
}

describe("policy and limits on session messages", () => {
  it("refuses an action no rule allows with POLICY_DENIED, audited", async () => {
    const denied = await send(mallory, randomUUID(), "start", { mode: "decision", participants: ["alice"] });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: "POLICY_DENIED" });
    expect((await audited("POLICY_DENIED", "mallory")).length).toBeGreaterThan(0);
  });

  it("limits session starts per sender (RATE_LIMITED with retry_after_ms), not other senders", async () => {
    for (let i = 0; i < 2; i++) {
      const started = await send(alice, randomUUID(), "start", { mode: "decision", participants: ["bob"] });
      expect(started.status, JSON.stringify(started.body)).toBe(200);
    }
    const third = await send(alice, randomUUID(), "start", { mode: "decision", participants: ["bob"] });
    expect(third.status).toBe(429);
    // The headers name the limit that refused: two session starts a minute, none left.
    expect(third.headers["x-ratelimit-limit"]).toBe("2");
    expect(third.headers["x-ratelimit-remaining"]).toBe("0");
    expect(third.body.error.code).toBe("RATE_LIMITED");
    expect(third.body.error.retry_after_ms).toBeGreaterThan(0);
    expect(third.headers["retry-after"]).toBeDefined();
    expect((await audited("RATE_LIMITED", "alice")).length).toBeGreaterThan(0);
    const bobStarts = await send(bob, randomUUID(), "start", { mode: "decision", participants: ["alice"] });
    expect(bobStarts.status).toBe(200);
  });

  it("refuses a verb the mode does not have with SESSION_RULE_VIOLATION unknown_verb", async () => {
    const id = randomUUID();
    expect((await send(bob, id, "start", { mode: "decision", participants: ["alice"] })).status).toBe(200);
    const odd = await send(alice, id, "approve", {});
    expect(odd.status).toBe(409);
    expect(odd.body.error).toMatchObject({ code: "SESSION_RULE_VIOLATION", reason: "unknown_verb" });
    expect((await audited("SESSION_RULE_VIOLATION", "alice")).length).toBeGreaterThan(0);
  });
});
