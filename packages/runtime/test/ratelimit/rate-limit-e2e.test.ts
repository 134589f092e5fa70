// Rate limits end to end over TLS: a sender over its limit is refused with RATE_LIMITED and the limit
// headers while another sender is not, the tool never runs for a refused call, and the refusal is
// audited; policy rules and agent definitions tighten limits; unauthenticated requests are limited per
// client address, and X-Forwarded-For only moves that key when server.trust_proxy says so.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signEnvelope } from "@signet/protocol";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load-config.js";
import { type Runtime, createRuntime } from "../../src/runtime.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RuntimeFixture, TEST_POLICY, call, startRuntime } from "../helpers/runtime-fixture.js";

const LIMITS_POLICY = `version: 1
rules:
  - id: carol-queries
    effect: allow
    principals: [carol]
    actions: [invoke]
    resources: ["tool:database/*"]
    rate_limit: 2/minute
`;

describe("per-sender limits on POST /v1/envelopes", () => {
  let fx: RuntimeFixture;
  let alice: TestAgent;
  let bob: TestAgent;
  let carol: TestAgent;
  let dave: TestAgent;
  let dbBot: TestAgent;
  let orders: TestAgent;
  const executors: RawExecutor[] = [];

  beforeAll(async () => {
    fx = await startRuntime({
      yaml: "rate_limits:\n  messages_per_minute: 5\n",
      policies: { "test-allow-all.yaml": TEST_POLICY, "limits.yaml": LIMITS_POLICY },
    });
    alice = await registerAgent(fx, "alice");
    bob = await registerAgent(fx, "bob");
    carol = await registerAgent(fx, "carol");
    dave = await registerAgent(fx, "dave");
    dbBot = await registerAgent(fx, "db-bot", ["database/query", "database/insert"]);
    orders = await registerAgent(
      fx,
      "orders",
      [],
      "capabilities: [order-processing]\ncapability_access:\n  order-processing: { allowed_requesters: [dave] }\n" +
        'rate_limits: { order-processing: "2/minute" }\n',
    );
  });
  afterEach(async () => {
    await Promise.all(executors.splice(0).map((executor) => executor.close()));
  });
  afterAll(async () => fx?.close());

  async function executor(agent: TestAgent, serves: string[], capabilities?: string[]): Promise<RawExecutor> {
    const started = new RawExecutor({
      url: fx.url,
      caPath: fx.certs.caCert,
      apiKey: agent.apiKey,
      agentId: agent.id,
      key: agent.key,
      serves,
      ...(capabilities === undefined ? {} : { capabilities }),
    });
    executors.push(started);
    await started.connect();
    return started;
  }

  const submit = (agent: TestAgent, to = "tool:database/query", body: object = { q: 1 }) => {
    const signed = signEnvelope({ type: "invoke", from: agent.id, to, body: body as never }, agent.key);
    return call(fx, "POST", "/v1/envelopes", { headers: agent.headers, body: signed.wire }).then(
      (response) => ({ ...response, hash: signed.hash }),
    );
  };

  it("refuses a sender over its limit with RATE_LIMITED and the limit headers; another sender passes", async () => {
    const tool = await executor(dbBot, ["database/query"]);
    const remaining: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await submit(alice, "tool:database/query", { i });
      expect(response.status).toBe(200);
      expect(response.headers["x-ratelimit-limit"]).toBe("5");
      remaining.push(response.headers["x-ratelimit-remaining"]);
    }
    expect(remaining).toEqual(["4", "3", "2", "1", "0"]);
    expect(tool.calls).toBe(5);

    const refused = await submit(alice, "tool:database/query", { i: 5 });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({
      code: "RATE_LIMITED",
      retryable: true,
      reason: "sender_limit",
    });
    const wait = refused.body.error.retry_after_ms as number;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60_000);
    expect(refused.headers["retry-after"]).toBe(String(Math.ceil(wait / 1000)));
    expect(refused.headers["x-ratelimit-limit"]).toBe("5");
    expect(refused.headers["x-ratelimit-remaining"]).toBe("0");
    // The tool never ran for the refused call.
    expect(tool.calls).toBe(5);

    const other = await submit(bob);
    expect(other.status).toBe(200);
    expect(other.headers["x-ratelimit-remaining"]).toBe("4");
    expect(tool.calls).toBe(6);

    // The refusal is in the audit log, naming the sender, the request and the code.
    const events = await fx.runtime.audit.query({ eventType: "rate_limited" });
    const entry = events.find((event) => event.request?.hash === refused.hash);
    expect(entry).toMatchObject({
      type: "rate_limited",
      actor: "alice",
      target: "tool:database/query",
      outcome: "deny",
      code: "RATE_LIMITED",
    });
    expect(refused.body.error.audit_id).toBe(entry!.id);
  });

  it("applies a policy rule's rate_limit per tool, on top of the sender's limit", async () => {
    const tool = await executor(dbBot, ["database/query", "database/insert"]);
    expect((await submit(carol)).status).toBe(200);
    const second = await submit(carol);
    expect(second.status).toBe(200);
    expect(second.headers["x-ratelimit-limit"]).toBe("2");
    expect(second.headers["x-ratelimit-remaining"]).toBe("0");
    const third = await submit(carol);
    expect(third.body.error).toMatchObject({
      code: "RATE_LIMITED",
      reason: "rule_limit",
      rule: "carol-queries",
    });
    expect(third.headers["x-ratelimit-limit"]).toBe("2");
    // Another tool under the same rule has a count of its own.
    expect((await submit(carol, "tool:database/insert")).status).toBe(200);
    expect(tool.calls).toBe(3);
  });

  it("applies an agent definition's rate_limits to requests for its capability", async () => {
    const provider = await executor(orders, [], ["order-processing"]);
    expect((await submit(dave, "capability:order-processing")).status).toBe(200);
    expect((await submit(dave, "capability:order-processing")).status).toBe(200);
    const third = await submit(dave, "capability:order-processing");
    expect(third.status).toBe(429);
    expect(third.body.error).toMatchObject({
      code: "RATE_LIMITED",
      rule: "agent:orders:capability:order-processing",
    });
    expect(provider.calls).toBe(2);
  });
});

describe("unauthenticated requests per client address", () => {
  const bad = { authorization: "Bearer sk_not_a_real_key" };

  it("refuses an address after its limit, whatever X-Forwarded-For says, even with a valid credential", async () => {
    const fx = await startRuntime({ yaml: "rate_limits:\n  unauthenticated_per_minute: 3\n" });
    try {
      // A different spoofed X-Forwarded-For each time: without trust_proxy the key stays the socket's.
      for (let i = 0; i < 3; i++) {
        const response = await call(fx, "GET", "/v1/auth/whoami", {
          headers: { ...bad, "x-forwarded-for": `198.51.100.${i}` },
        });
        expect(response.status).toBe(401);
      }
      const refused = await call(fx, "GET", "/v1/auth/whoami", {
        headers: { ...bad, "x-forwarded-for": "198.51.100.77" },
      });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: "RATE_LIMITED", reason: "unauthenticated_limit" });
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(60);
      expect(refused.headers["x-ratelimit-limit"]).toBe("3");
      expect(refused.headers["x-ratelimit-remaining"]).toBe("0");

      // Blocked before authentication: a good key from the same address waits too, and no request
      // without credentials gets through to be checked either.
      const admin = await call(fx, "GET", "/v1/auth/whoami", {
        headers: { authorization: `Bearer ${fx.adminKey}` },
      });
      expect(admin.status).toBe(429);
      expect((await call(fx, "GET", "/v1/agents")).status).toBe(429);
      // Public routes stay open.
      expect((await call(fx, "GET", "/v1/health")).status).toBe(200);

      const events = await fx.runtime.audit.query({ eventType: "rate_limited" });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: "deny", code: "RATE_LIMITED" });
      expect(events[0]!.metadata).toMatchObject({ reason: "unauthenticated_limit", source_ip: "127.0.0.1" });
    } finally {
      await fx.close();
    }
  });

  it("keys on the forwarded client address only when server.trust_proxy is set", async () => {
    const fx = await startTrustingProxy("rate_limits:\n  unauthenticated_per_minute: 2\n");
    try {
      const from = (ip: string) =>
        call(fx, "GET", "/v1/auth/whoami", { headers: { ...bad, "x-forwarded-for": ip } });
      expect((await from("203.0.113.1")).status).toBe(401);
      expect((await from("203.0.113.1")).status).toBe(401);
      expect((await from("203.0.113.1")).status).toBe(429);
      // Another client behind the same proxy has a count of its own.
      expect((await from("203.0.113.2")).status).toBe(401);
      const admin = await call(fx, "GET", "/v1/auth/whoami", {
        headers: { authorization: `Bearer ${fx.adminKey}`, "x-forwarded-for": "203.0.113.3" },
      });
      expect(admin.status).toBe(200);
    } finally {
      await fx.close();
    }
  });
});

/** A fixture whose signet.yaml also sets `server.trust_proxy: true` (the fixture writes `server:` itself). */
async function startTrustingProxy(yaml: string): Promise<RuntimeFixture> {
  const base = await startRuntime({ listen: false });
  let runtime: Runtime | undefined;
  try {
    await base.runtime.stop();
    const path = join(base.dir, "signet.yaml");
    const config = readFileSync(path, "utf8").replace("server:\n", "server:\n  trust_proxy: true\n");
    writeFileSync(path, `${config}\n${yaml}`);
    runtime = await createRuntime(loadConfig({ dataDir: base.dir, env: {} }), {
      logger: pino({ level: "silent" }),
    });
    const url = await runtime.start();
    const started = runtime;
    return {
      ...base,
      runtime: started,
      url,
      client: (options) => base.client(options),
      close: async () => {
        await started.stop();
        await base.close();
      },
    };
  } catch (error) {
    await runtime?.stop();
    await base.close();
    throw error;
  }
}
