// Two runtime instances of one deployment, sharing PostgreSQL and Redis (real servers): calls reach
// an executor connected to the other instance, a replay sent to the other instance is refused, rate
// limits are shared, registry changes made on one apply at once on the other, and the audit log stays
// one verifiable order.
import { Ed25519PrivateKey, type Receipt, signEnvelope, verifyReceipt } from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { type PostgresServer, startPostgres } from "../helpers/postgres-server.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";
import { until } from "../helpers/until.js";

let postgres: PostgresServer;
let redis: RedisServer;
let a: RuntimeFixture;
let b: RuntimeFixture;
let alice: TestAgent;
let dbBot: TestAgent;
let executorOnB: RawExecutor;

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres({ database: "two_instances" }), startRedisServer()]);
  const runtimeKeyPem = Ed25519PrivateKey.generate().toPem();
  const yaml = `redis:\n  url: ${redis.url}\nrate_limits:\n  messages_per_minute: 8\n`;
  a = await startRuntime({ databaseUrl: postgres.url, runtimeKeyPem, yaml });
  b = await startRuntime({ databaseUrl: postgres.url, runtimeKeyPem, yaml });
  alice = await registerAgent(a, "alice");
  dbBot = await registerAgent(a, "db-bot", ["database/query"]);
  // Deployed on A, the executor connects to B: B learned of db-bot through the registry channel.
  await until(() => b.runtime.registry.isServedTool("database/query"), "B to learn of db-bot");
  executorOnB = new RawExecutor({
    url: b.url,
    caPath: b.certs.caCert,
    apiKey: dbBot.apiKey,
    agentId: "db-bot",
    key: dbBot.key,
    serves: ["database/query"],
  });
  await executorOnB.connect();
  await until(() => a.runtime.cluster!.has("tool:database/query"), "A to see B's executor");
}, 90_000);

afterAll(async () => {
  await executorOnB?.close();
  await a?.close();
  await b?.close();
  await Promise.all([postgres?.stop(), redis?.stop()]);
});

function invoke(q: string) {
  return signEnvelope({ type: "invoke", from: "alice", to: "tool:database/query", body: { q } }, alice.key);
}

describe("two instances on shared PostgreSQL and Redis", () => {
  it("routes a call arriving at A to the executor connected to B, and the result comes back", async () => {
    const request = invoke("select 1");
    const response = await call(a, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const receipt = (response.body as { receipt: Receipt }).receipt;
    verifyReceipt(receipt, a.runtime.signingKey.publicKey);
    expect(receipt.result).toMatchObject({ from: "db-bot", status: "ok" });
    expect(executorOnB.calls).toBe(1);
  });

  it("refuses at B a replay of a message A admitted, and never runs it twice", async () => {
    const request = invoke("select 2");
    const first = await call(a, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect(first.status).toBe(200);
    const calls = executorOnB.calls;
    // The identical envelope at B gets A's stored outcome; a different message under the same id is a replay.
    const retried = await call(b, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect((retried.body as { receipt: Receipt }).receipt.duplicate).toBe(true);
    const forged = signEnvelope(
      {
        type: "invoke",
        from: "alice",
        to: "tool:database/query",
        body: { q: "drop" },
        id: request.envelope.id,
      },
      alice.key,
    );
    const replayed = await call(b, "POST", "/v1/envelopes", { headers: alice.headers, body: forged.wire });
    expect(replayed.body.error?.code).toBe("DUPLICATE_MESSAGE");
    expect(executorOnB.calls).toBe(calls);
  });

  it("still refuses a replay after Redis restarts: nonces live in PostgreSQL", async () => {
    const request = invoke("select 3");
    const first = await call(a, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect(first.status).toBe(200);
    await redis.kill();
    await redis.restart();
    const forged = signEnvelope(
      {
        type: "invoke",
        from: "alice",
        to: "tool:database/query",
        body: { q: "again" },
        id: request.envelope.id,
      },
      alice.key,
    );
    const replayed = await call(b, "POST", "/v1/envelopes", { headers: alice.headers, body: forged.wire });
    expect(replayed.body.error?.code).toBe("DUPLICATE_MESSAGE");
    // The links reconnect by themselves (resubscribe, re-announce, reload what they may have missed).
    await until(() => a.runtime.cluster!.connected && b.runtime.cluster!.connected, "the links to reconnect");
    await until(() => a.runtime.cluster!.has("tool:database/query"), "A to see B's executor again");
  });

  it("applies a key revocation made on A at once on B", async () => {
    const carol = await registerAgent(a, "carol");
    await until(() => b.runtime.registry.resolveKey(carol.key.kid, "carol") !== undefined, "B to know carol");
    const revoked = await call(a, "POST", `/v1/agents/carol/keys/${carol.key.kid}/revoke`, {
      headers: { authorization: `Bearer ${a.adminKey}` },
      body: { reason: "test" },
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    // The change travels through Redis: within moments B refuses carol's key too (polled, bounded).
    let code: string | undefined;
    for (let attempt = 0; attempt < 50 && code !== "KEY_REVOKED"; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const request = signEnvelope(
        { type: "invoke", from: "carol", to: "tool:database/query", body: {} },
        carol.key,
      );
      const refused = await call(b, "POST", "/v1/envelopes", { headers: carol.headers, body: request.wire });
      code = refused.body.error?.code as string | undefined;
    }
    expect(code).toBe("KEY_REVOKED");
  });

  it("shares rate limits: the sender's budget is spent across both instances", async () => {
    // 8 a minute per sender, and alice has used 2 (one counted at each instance's first call above).
    const codes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const fx = i % 2 === 0 ? a : b;
      const response = await call(fx, "POST", "/v1/envelopes", {
        headers: alice.headers,
        body: invoke(`q${i}`).wire,
      });
      codes.push(response.status === 200 ? "ok" : (response.body.error?.code as string));
    }
    expect(codes.filter((code) => code === "RATE_LIMITED").length).toBeGreaterThanOrEqual(4);
    expect(codes.filter((code) => code === "ok").length).toBeLessThanOrEqual(6);
  });

  it("keeps one audit log that verifies, with entries from both instances", async () => {
    await a.runtime.audit.flush();
    await b.runtime.audit.flush();
    const report = await b.runtime.audit.verify();
    expect(report, JSON.stringify(report.problem)).toMatchObject({ ok: true });
    expect(report.tree_size).toBeGreaterThan(10);
  });
});
