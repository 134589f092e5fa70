// Two `signet serve` child processes of one deployment on a real PostgreSQL and redis-server, with no
// fault injected: a call arriving at either reaches the executor connected to A, a replay sent to
// the other instance is refused, and the sender's rate limit is one budget across both.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Receipt, type SignedEnvelope, signEnvelope } from "@signet/protocol";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../../../runtime/test/helpers/agents.js";
import { type PostgresServer, startPostgres } from "../../../runtime/test/helpers/postgres-server.js";
import { RawExecutor } from "../../../runtime/test/helpers/raw-executor.js";
import { type RedisServer, startRedisServer } from "../../../runtime/test/helpers/redis-server.js";
import { type RuntimeFixture, call } from "../../../runtime/test/helpers/runtime-fixture.js";
import {
  type Deployment,
  type ServeProcess,
  createDeployment,
  startServe,
} from "../helpers/serve-cluster.js";

/** The sender's budget per minute, shared by both instances through Redis. */
const LIMIT = 30;

const dir = mkdtempSync(join(tmpdir(), "signet-two-serves-"));
let postgres: PostgresServer | undefined;
let redis: RedisServer | undefined;
let deployment: Deployment;
const instances: ServeProcess[] = [];
let dispatcher: Agent | undefined;
let executor: RawExecutor | undefined;
let alice: TestAgent;
/** How many times the executor ran each request, by envelope hash. */
const executions = new Map<string, number>();

function fixture(index: number): RuntimeFixture {
  return {
    url: instances[index]!.url,
    adminKey: deployment.adminKey,
    client: () => dispatcher!,
  } as unknown as RuntimeFixture;
}

function invoke(q: string, id?: string): SignedEnvelope {
  return signEnvelope(
    {
      type: "invoke",
      from: "alice",
      to: "tool:database/query",
      body: { q },
      ...(id === undefined ? {} : { id }),
    },
    alice.key,
  );
}

function submit(index: number, signed: SignedEnvelope) {
  return call(fixture(index), "POST", "/v1/envelopes", { headers: alice.headers, body: signed.wire });
}

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres({ database: "two_serves" }), startRedisServer()]);
  deployment = await createDeployment(dir, 2, {
    databaseUrl: postgres.url,
    redisUrl: redis.url,
    messagesPerMinute: LIMIT,
    callTimeoutMs: 3000,
  });
  instances.push(...(await Promise.all(deployment.dataDirs.map((dataDir) => startServe(dataDir)))));
  dispatcher = new Agent({ connect: { ca: readFileSync(deployment.caPath) } });
  alice = await registerAgent(fixture(0), "alice");
  const tool = await registerAgent(fixture(0), "db-bot", ["database/query"]);
  executor = new RawExecutor({
    url: instances[0]!.url,
    caPath: deployment.caPath,
    apiKey: tool.apiKey,
    agentId: "db-bot",
    key: tool.key,
    serves: ["database/query"],
    handler: (body, delivery) => {
      executions.set(delivery.envelope_hash, (executions.get(delivery.envelope_hash) ?? 0) + 1);
      return body;
    },
  });
  await executor.connect();
}, 90_000);

afterAll(async () => {
  await executor?.close().catch(() => undefined);
  await Promise.all(instances.map((instance) => instance.kill()));
  await dispatcher?.close().catch(() => undefined);
  await Promise.all([postgres?.stop(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("two signet serve instances on shared PostgreSQL and Redis", () => {
  it("routes across instances, refuses a replay at the other instance, and shares the rate limit", async () => {
    // B learns of A's executor from A's announcements (bounded wait: at most 5 s).
    let routed;
    for (let attempt = 0; attempt < 100 && routed?.status !== 200; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      routed = await submit(1, invoke("routed"));
    }
    expect(routed?.status, JSON.stringify(routed?.body)).toBe(200);
    if (routed === undefined) throw new Error("no answer from instance B");
    const receipt = (routed.body as { receipt: Receipt }).receipt;
    expect(receipt.result).toMatchObject({ from: "db-bot", status: "ok" });

    // A replay at the other instance: the identical envelope gets the stored outcome without running
    // again, and another message under the same id is refused.
    const original = invoke("once");
    expect((await submit(0, original)).status).toBe(200);
    const retried = await submit(1, original);
    expect((retried.body as { receipt: Receipt }).receipt.duplicate).toBe(true);
    const forged = await submit(1, invoke("twice", original.envelope.id));
    expect(forged.body.error?.code).toBe("DUPLICATE_MESSAGE");
    expect(executions.get(original.hash)).toBe(1);

    // One budget of LIMIT a minute across both instances: alternating, the calls beyond it are refused
    // wherever they arrive.
    const statuses: (number | string)[] = [];
    for (let i = 0; i < LIMIT + 4; i++) {
      const response = await submit(i % 2, invoke(`budget-${i}`));
      statuses.push(response.status === 200 ? 200 : (response.body.error?.code as string));
    }
    const allowed = statuses.filter((status) => status === 200).length;
    // Counted so far: every call above that reached step 8 (the routing attempts included), so fewer
    // than LIMIT are left; with two separate budgets there would be LIMIT + 4 successes here.
    expect(allowed).toBeLessThan(LIMIT);
    expect(statuses.slice(allowed)).toEqual(Array(LIMIT + 4 - allowed).fill("RATE_LIMITED"));
    expect(statuses.slice(0, allowed)).toEqual(Array(allowed).fill(200));
  }, 60_000);
});
