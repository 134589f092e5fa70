// Policy end to end through a real runtime: denials never reach the tool, are audited with their
// rules, and a policy change applies on the next call without a restart.
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signEnvelope } from "@signet/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";
import { createRuntime } from "../../src/runtime.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

const POLICY = `version: 1
layer: global
rules:
  - id: alice-may-query
    effect: allow
    principals: [alice]
    actions: [invoke]
    resources: ["tool:database/query"]
    params:
      limit: { max: 100 }
  - id: no-secrets-table
    effect: deny
    principals: ["*"]
    actions: [invoke]
    resources: ["tool:database/**"]
    when: 'has(params.table) && params.table == "secrets"'
    reason: The secrets table is off limits
`;

let fx: RuntimeFixture;
let alice: TestAgent;
let bob: TestAgent;
let tool: RawExecutor;

beforeAll(async () => {
  fx = await startRuntime({
    policies: { "10-main.yaml": POLICY },
    yaml: "policy:\n  debounce_ms: 20\n",
  });
  alice = await registerAgent(fx, "alice");
  bob = await registerAgent(fx, "bob");
  const db = await registerAgent(fx, "db-bot", ["database/query"]);
  tool = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: db.apiKey,
    agentId: "db-bot",
    key: db.key,
    serves: ["database/query"],
  });
  await tool.connect();
});
afterAll(async () => {
  await tool?.close();
  await fx?.close();
});

const submit = (agent: TestAgent, body: Record<string, unknown>) =>
  call(fx, "POST", "/v1/envelopes", {
    headers: agent.headers,
    body: signEnvelope(
      { type: "invoke", from: agent.id, to: "tool:database/query", body: body as never },
      agent.key,
    ).wire,
  });

describe("policy in the pipeline", () => {
  it("allows what a rule allows, naming the rule in the receipt", async () => {
    const response = await submit(alice, { q: "select 1", limit: 10 });
    expect(response.status).toBe(200);
    expect(response.body.receipt.rules).toEqual(["alice-may-query"]);
  });

  it("denies with POLICY_DENIED, the rule and the reason; the tool never runs; the audit names the rules", async () => {
    const before = tool.calls;
    const cases: [TestAgent, Record<string, unknown>, string][] = [
      [alice, { q: "select 1", limit: 500 }, "alice-may-query"],
      [alice, { q: "select 1", table: "secrets" }, "no-secrets-table"],
      [bob, { q: "select 1" }, "default-deny"],
    ];
    for (const [agent, body, rule] of cases) {
      const response = await submit(agent, body);
      expect(response.status).toBe(403);
      expect(response.body.error).toMatchObject({ code: "POLICY_DENIED", rule });
      expect(typeof response.body.error.reason).toBe("string");
      const events = await fx.runtime.audit.query({ eventType: "policy_denied", limit: 10_000 });
      const entry = events.find((event) => event.id === response.body.error.audit_id);
      expect(entry?.code).toBe("POLICY_DENIED");
      expect(entry?.metadata?.rule).toBe(rule);
      if (rule !== "default-deny") expect(entry?.rules).toContain(rule);
    }
    expect(tool.calls).toBe(before);
  });

  it("reloads a changed policy file without a restart", async () => {
    expect((await submit(bob, { q: "select 1" })).status).toBe(403);
    writeFileSync(
      join(fx.dir, "policies", "20-bob.yaml"),
      'version: 1\nrules:\n  - id: bob-may-query\n    effect: allow\n    principals: [bob]\n    actions: [invoke]\n    resources: ["tool:database/query"]\n',
    );
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      status = (await submit(bob, { q: "select 1" })).status;
    }
    expect(status).toBe(200);

    // A broken file keeps the policy as it was.
    writeFileSync(join(fx.dir, "policies", "30-broken.yaml"), "rules:\n  - id: broken\n    effect: maybe\n");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await submit(bob, { q: "select 1" })).status).toBe(200);
    unlinkSync(join(fx.dir, "policies", "30-broken.yaml"));
  });
});

describe("agent definitions compile into policy", () => {
  it("an agent whose definition lists a tool may call it; validate_only stores nothing", async () => {
    const admin = { authorization: `Bearer ${fx.adminKey}` };
    const { Ed25519PrivateKey } = await import("@signet/protocol");
    const key = Ed25519PrivateKey.generate();
    const definition = "---\nname: reporter\ntools: [database/query]\n---\nBuilds reports.\n";
    const checked = await call(fx, "POST", "/v1/agents?validate_only=true", {
      headers: admin,
      body: { definition, public_keys: [key.publicKey.toBase64Url()] },
    });
    expect(checked.body).toMatchObject({ valid: true, name: "reporter", tools: ["database/query"] });
    expect((await call(fx, "GET", "/v1/agents/reporter", { headers: admin })).status).toBe(404);

    const unknownTool = await call(fx, "POST", "/v1/agents?validate_only=true", {
      headers: admin,
      body: {
        definition: definition.replace("database/query", "nobody/serves"),
        public_keys: [key.publicKey.toBase64Url()],
      },
    });
    expect(unknownTool.body.error).toMatchObject({ code: "INVALID_REQUEST" });
    expect(unknownTool.body.error.message).toContain("tools[0] (line 3)");

    const reporter = await registerAgent(fx, "reporter-2");
    expect((await submit(reporter, { q: "select 1" })).body.error.rule).toBe("default-deny");
    const deployed = await call(fx, "POST", "/v1/agents", {
      headers: admin,
      body: { definition: definition.replace("reporter", "reporter-2") },
    });
    expect(deployed.status).toBe(200);
    const allowed = await submit(reporter, { q: "select 1" });
    expect(allowed.status).toBe(200);
    expect(allowed.body.receipt.rules).toEqual(["agent:reporter-2:tools"]);
  });
});

describe("starting without a policy", () => {
  it("production refuses to start without a policy directory; a bad policy file stops any start", async () => {
    const fx2 = await startRuntime({ listen: false, policies: null });
    try {
      await fx2.runtime.stop();
      const production = loadConfig({ dataDir: fx2.dir, env: { SIGNET_ENV: "production" } });
      await expect(createRuntime(production, { logger: pino({ level: "silent" }) })).rejects.toBeInstanceOf(
        ConfigError,
      );

      const { mkdirSync } = await import("node:fs");
      mkdirSync(join(fx2.dir, "policies"));
      writeFileSync(join(fx2.dir, "policies", "bad.yaml"), "rules:\n  - id: x\n    effect: allow\n");
      const development = loadConfig({ dataDir: fx2.dir, env: {} });
      const refused = createRuntime(development, { logger: pino({ level: "silent" }) });
      await expect(refused).rejects.toBeInstanceOf(ConfigError);
      await expect(refused).rejects.toMatchObject({ message: expect.stringContaining("bad.yaml") });
    } finally {
      await fx2.close();
    }
  });
});
