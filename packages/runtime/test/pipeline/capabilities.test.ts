// Capability routing: `to: capability:NAME` reaches a connected agent that provides it and whose
// definition's capability_access admits the requester.
import { signEnvelope } from "@signet/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let fx: RuntimeFixture;
let alice: TestAgent;
let bob: TestAgent;
let ordersForAlice: TestAgent;
let ordersForAdmins: TestAgent;
const executors: RawExecutor[] = [];

const access = (requesters: string) =>
  `capabilities: [order-processing]\ncapability_access:\n  order-processing: { allowed_requesters: [${requesters}] }\n`;

beforeAll(async () => {
  fx = await startRuntime();
  alice = await registerAgent(fx, "alice");
  bob = await registerAgent(fx, "bob");
  ordersForAlice = await registerAgent(fx, "orders-a", [], access("alice"));
  ordersForAdmins = await registerAgent(fx, "orders-b", [], access('"admin-*"'));
});
afterEach(async () => {
  await Promise.all(executors.splice(0).map((executor) => executor.close()));
});
afterAll(async () => fx?.close());

async function provider(agent: TestAgent, capabilities = ["order-processing"]): Promise<RawExecutor> {
  const executor = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: agent.apiKey,
    agentId: agent.id,
    key: agent.key,
    serves: [],
    capabilities,
  });
  executors.push(executor);
  await executor.connect();
  return executor;
}

const ask = (agent: TestAgent, to = "capability:order-processing") =>
  call(fx, "POST", "/v1/envelopes", {
    headers: agent.headers,
    body: signEnvelope({ type: "invoke", from: agent.id, to, body: { sku: "A-1" } }, agent.key).wire,
  });

describe("capability routing", () => {
  it("routes to a provider whose capability_access admits the requester, never to one that does not", async () => {
    const a = await provider(ordersForAlice);
    const b = await provider(ordersForAdmins);
    for (let i = 0; i < 4; i++) {
      const response = await ask(alice);
      expect(response.status).toBe(200);
      expect(response.body.result.from).toBe("orders-a");
    }
    expect(a.calls).toBe(4);
    expect(b.calls).toBe(0);
  });

  it("refuses a requester no provider admits with POLICY_DENIED (capability_access)", async () => {
    const a = await provider(ordersForAlice);
    const response = await ask(bob);
    expect(response.body.error).toMatchObject({ code: "POLICY_DENIED", rule: "capability_access" });
    expect(a.calls).toBe(0);
  });

  it("answers UNKNOWN_TOOL for a capability nobody provides, and TARGET_UNAVAILABLE when no admitting provider is connected", async () => {
    expect((await ask(alice, "capability:nobody-has-this")).body.error.code).toBe("UNKNOWN_TOOL");
    await provider(ordersForAdmins);
    expect((await ask(alice)).body.error.code).toBe("TARGET_UNAVAILABLE");
  });

  it("refuses a hello declaring a capability the agent's definition does not provide", async () => {
    await expect(provider(alice)).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});
