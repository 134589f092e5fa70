// A runtime on PostgreSQL instead of the embedded SQLite: the same guarded invocation path, with the
// registry, API keys, replay cache and the audit log all in the database.
import { type Receipt, signEnvelope } from "@signet/protocol";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { type PostgresServer, startPostgres } from "../helpers/postgres-server.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let server: PostgresServer;
let fx: RuntimeFixture;
let alice: TestAgent;
let executor: RawExecutor;

beforeAll(async () => {
  server = await startPostgres({ database: "runtime_pg" });
  fx = await startRuntime({ databaseUrl: server.url });
  alice = await registerAgent(fx, "alice");
  const tool = await registerAgent(fx, "db-bot", ["database/query"]);
  executor = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: tool.apiKey,
    agentId: "db-bot",
    key: tool.key,
    serves: ["database/query"],
  });
  await executor.connect();
}, 60_000);
afterAll(async () => {
  await executor?.close();
  await fx?.close();
  await server?.stop();
});

describe("a runtime on PostgreSQL", () => {
  it("invokes, refuses the replay, and keeps its audit log in the database, where it verifies", async () => {
    const request = signEnvelope(
      { type: "invoke", from: "alice", to: "tool:database/query", body: { q: "select 1" } },
      alice.key,
    );
    const response = await call(fx, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect(response.status).toBe(200);
    const receipt = (response.body as { receipt: Receipt }).receipt;

    // The identical retry gets the stored outcome; the tool does not run twice.
    const retried = await call(fx, "POST", "/v1/envelopes", { headers: alice.headers, body: request.wire });
    expect(retried.status).toBe(200);
    expect((retried.body as { receipt: Receipt }).receipt.duplicate).toBe(true);

    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ type: string; outcome: string }>(
        "SELECT type, outcome FROM audit_entries WHERE id = $1",
        [receipt.audit.request],
      );
      expect(rows).toEqual([{ type: "invocation", outcome: "allow" }]);
      const admitted = await client.query(
        "SELECT count(*)::int AS n FROM replay_messages WHERE sender = 'alice'",
      );
      expect((admitted.rows[0] as { n: number }).n).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
    expect(await fx.runtime.audit.verify()).toMatchObject({ ok: true });
    expect(executor.calls).toBe(1);
  });
});
