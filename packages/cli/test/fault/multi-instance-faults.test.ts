// Faults of a two-instance deployment, for real: two `signet serve` child processes share one
// PostgreSQL (stores and the audit log) and one redis-server (rate limits, cluster link); an executor
// is connected to instance A only, so calls arriving at B are forwarded to it through Redis. Callers
// send signed invocations to both while Redis is killed, PostgreSQL is stopped, and B is SIGKILLed.
// Whatever happens, a call answered with success ran exactly once and has its decision and result
// entries in the shared log, a refused call ran nowhere and says why with a stable code, and the log
// verifies afterwards. Every load is bounded in calls and time and stops by itself.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Ed25519PublicKey,
  type Receipt,
  type SignedEnvelope,
  parseAuditEntry,
  signEnvelope,
  verifyReceipt,
} from "@signet/protocol";
import pg from "pg";
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

const REDIS_DOWN = "Redis unavailable, using in-memory rate limiter";
const REDIS_BACK = "Redis available again, using shared rate limits";
const CALLERS = 6;
/** Each caller's pause between calls: keeps a phase's calls spread over the fault, not a pacing assertion. */
const PACE_MS = 15;
const PHASE_MAX_CALLS = 150;
const PHASE_MAX_MS = 10_000;
const CALL_TIMEOUT_MS = 3_000;

type Site = "a" | "b";

/** One submission and what its caller saw. */
interface Outcome {
  readonly site: Site;
  readonly signed: SignedEnvelope;
  /** The load phase when the call was sent, and when its answer (or failure) came back. */
  readonly phase: string;
  readonly endPhase: string;
  /** The HTTP status; 0 when the connection failed (no answer at all). */
  readonly status: number;
  readonly code?: string;
  readonly reason?: string;
  readonly retryable?: boolean;
  readonly receipt?: Receipt;
}

const dir = mkdtempSync(join(tmpdir(), "signet-faults-"));
let postgres: PostgresServer | undefined;
let redis: RedisServer | undefined;
let deployment: Deployment;
const instances: Partial<Record<Site, ServeProcess>> = {};
let dispatcher: Agent | undefined;
let executor: RawExecutor | undefined;
let alice: TestAgent;
let runtimePublicKey: Ed25519PublicKey;
/** How many times the executor ran each request, by envelope hash. */
const executions = new Map<string, number>();
let sequence = 0;

function fixture(site: Site): RuntimeFixture {
  // The helpers only need the URL, the admin key and a client trusting the CA.
  return {
    url: instances[site]!.url,
    adminKey: deployment.adminKey,
    client: () => dispatcher!,
  } as unknown as RuntimeFixture;
}

function invoke(): SignedEnvelope {
  sequence += 1;
  return signEnvelope(
    { type: "invoke", from: "alice", to: "tool:database/query", body: { q: `select ${sequence}` } },
    alice.key,
  );
}

/** Sends `signed` to `site` as alice and records what came back. */
async function submit(site: Site, signed: SignedEnvelope, currentPhase: () => string): Promise<Outcome> {
  const phase = currentPhase();
  try {
    const response = await call(fixture(site), "POST", "/v1/envelopes", {
      headers: alice.headers,
      body: signed.wire,
    });
    const error = response.body?.error as { code?: string; reason?: string; retryable?: boolean } | undefined;
    return {
      site,
      signed,
      phase,
      endPhase: currentPhase(),
      status: response.status,
      ...(error?.code === undefined ? {} : { code: error.code }),
      ...(error?.reason === undefined ? {} : { reason: error.reason }),
      ...(error?.retryable === undefined ? {} : { retryable: error.retryable }),
      ...(response.status === 200 ? { receipt: (response.body as { receipt: Receipt }).receipt } : {}),
    };
  } catch {
    // The connection failed: the caller got no answer (the instance is gone).
    return { site, signed, phase, endPhase: currentPhase(), status: 0, code: "NO_ANSWER" };
  }
}

/**
 * Callers sending invocations round-robin to the live sites until stopped. Each phase may send at
 * most PHASE_MAX_CALLS calls within PHASE_MAX_MS; past either, the callers wait for the next phase.
 */
class Load {
  readonly outcomes: Outcome[] = [];
  #phase = { name: "", sent: 0, deadline: 0 };
  #stopped = false;
  #turn = 0;
  readonly #done: Promise<void>;

  constructor(
    phase: string,
    private readonly sites: () => readonly Site[],
  ) {
    this.phase(phase);
    this.#done = Promise.all(Array.from({ length: CALLERS }, () => this.#caller())).then(() => undefined);
  }

  get current(): string {
    return this.#phase.name;
  }

  phase(name: string): void {
    this.#phase = { name, sent: 0, deadline: Date.now() + PHASE_MAX_MS };
  }

  /** Answered calls matching the filter. */
  count(filter: (outcome: Outcome) => boolean): number {
    return this.outcomes.filter(filter).length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  async #caller(): Promise<void> {
    while (!this.#stopped) {
      const phase = this.#phase;
      const sites = this.sites();
      if (phase.sent >= PHASE_MAX_CALLS || Date.now() >= phase.deadline || sites.length === 0) {
        await pause(10);
        continue;
      }
      phase.sent += 1;
      const site = sites[this.#turn++ % sites.length]!;
      this.outcomes.push(await submit(site, invoke(), () => this.current));
      await pause(PACE_MS);
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 20 ms; fails with `what` after `timeoutMs`. */
async function until(condition: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(`Timed out waiting for ${what()}\n${instanceStates()}`);
    }
    await pause(20);
  }
}

/** Whether each instance still runs, and the end of its output: for failure messages. */
function instanceStates(): string {
  return (["a", "b"] as const)
    .map((site) => {
      const { child, logs } = instances[site]!;
      const state = child.exitCode ?? child.signalCode ?? "running";
      return `--- ${site} (${state}):\n${logs().slice(-3000)}`;
    })
    .join("\n");
}

function summary(outcomes: readonly Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = `${o.site}/${o.phase}->${o.endPhase}/${o.status === 200 ? "ok" : `${o.code}:${o.reason}`}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return JSON.stringify(Object.fromEntries([...counts].sort()));
}

const ran = (outcome: Outcome): number => executions.get(outcome.signed.hash) ?? 0;

/** The audit entries with these ids, read straight from PostgreSQL. */
async function auditEntries(
  ids: readonly string[],
): Promise<Map<string, ReturnType<typeof parseAuditEntry>>> {
  const client = new pg.Client({ connectionString: postgres!.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: Buffer }>(
      "SELECT bytes FROM audit_entries WHERE id = ANY($1::text[])",
      [ids],
    );
    const entries = rows.map((row) => parseAuditEntry(row.bytes));
    return new Map(entries.map((entry) => [entry.id, entry]));
  } finally {
    await client.end();
  }
}

/**
 * Every call answered with success: a receipt signed by the deployment's key, exactly one run at the
 * executor, and its decision and result entries in the shared log, bound to its request and result.
 */
async function expectSucceededOnce(succeeded: readonly Outcome[]): Promise<void> {
  const entries = await auditEntries(
    succeeded.flatMap((o) => [o.receipt!.audit.request, o.receipt!.audit.result!]),
  );
  for (const outcome of succeeded) {
    const receipt = outcome.receipt!;
    const what = `${outcome.site} ${outcome.signed.envelope.id}`;
    verifyReceipt(receipt, runtimePublicKey);
    expect(receipt.request.hash, what).toBe(outcome.signed.hash);
    expect(ran(outcome), `executions of ${what}`).toBe(1);
    expect(entries.get(receipt.audit.request), `decision entry of ${what}`).toMatchObject({
      type: "invocation",
      outcome: "allow",
      actor: "alice",
      request: { id: outcome.signed.envelope.id, hash: outcome.signed.hash },
    });
    expect(entries.get(receipt.audit.result!), `result entry of ${what}`).toMatchObject({
      type: "invocation_result",
      outcome: "success",
      result: { hash: receipt.result!.hash },
    });
  }
}

/** POST /v1/audit/verify on `site`: the shared log verifies end to end. */
async function expectLogVerifies(site: Site): Promise<void> {
  const response = await call(fixture(site), "POST", "/v1/audit/verify", {
    headers: { authorization: `Bearer ${deployment.adminKey}` },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  expect(response.body.report, JSON.stringify(response.body.report)).toMatchObject({ ok: true });
  expect(response.body.report.tree_size).toBeGreaterThan(0);
}

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres({ database: "faults" }), startRedisServer()]);
  deployment = await createDeployment(dir, 2, {
    databaseUrl: postgres.url,
    redisUrl: redis.url,
    messagesPerMinute: 100_000,
    callTimeoutMs: CALL_TIMEOUT_MS,
  });
  runtimePublicKey = Ed25519PublicKey.fromPem(
    readFileSync(join(deployment.dataDirs[0]!, "keys", "runtime.pub"), "utf8"),
  );
  [instances.a, instances.b] = await Promise.all(deployment.dataDirs.map((dataDir) => startServe(dataDir)));
  // Every call is answered within CALL_TIMEOUT_MS; the client's own limits keep a hung one bounded too.
  dispatcher = new Agent({
    connect: { ca: readFileSync(deployment.caPath) },
    connections: CALLERS * 2,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  alice = await registerAgent(fixture("a"), "alice");
  const tool = await registerAgent(fixture("a"), "db-bot", ["database/query"]);
  executor = new RawExecutor({
    url: instances.a!.url,
    caPath: deployment.caPath,
    apiKey: tool.apiKey,
    agentId: "db-bot",
    key: tool.key,
    serves: ["database/query"],
    maxInFlight: CALLERS * 4,
    handler: async (body, delivery) => {
      executions.set(delivery.envelope_hash, (executions.get(delivery.envelope_hash) ?? 0) + 1);
      await pause(2);
      return body;
    },
  });
  await executor.connect();
  // B learns of alice and db-bot through the registry channel, and of A's executor from A's heartbeats.
  let last: Outcome | undefined;
  for (let attempt = 0; attempt < 150 && last?.status !== 200; attempt++) {
    if (attempt > 0) await pause(50);
    last = await submit("b", invoke(), () => "setup");
  }
  expect(last?.status, JSON.stringify(last)).toBe(200);
}, 90_000);

afterAll(async () => {
  await executor?.close().catch(() => undefined);
  await Promise.all(Object.values(instances).map((instance) => instance.kill()));
  await dispatcher?.close().catch(() => undefined);
  await Promise.all([postgres?.stop(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("two signet serve instances on shared PostgreSQL and Redis, under faults", () => {
  it("Redis killed mid-load: limits fail open, forwarding is refused retryably, and both recover", async () => {
    const load = new Load("before", () => ["a", "b"]);
    const done = (site: Site, phase: string) =>
      load.count((o) => o.site === site && o.phase === phase && o.endPhase === phase);
    const succeeded = (site: Site, phase: string) =>
      load.count((o) => o.site === site && o.phase === phase && o.status === 200);
    try {
      await until(
        () => succeeded("a", "before") >= 15 && succeeded("b", "before") >= 15,
        () => `successes before the fault: ${summary(load.outcomes)}`,
      );
      await redis!.kill();
      load.phase("outage");
      await until(
        () => done("a", "outage") >= 15 && done("b", "outage") >= 15,
        () => `calls answered during the outage: ${summary(load.outcomes)}`,
      );
      load.phase("restarting");
      await redis!.restart();
      load.phase("after");
      // Forwarding through B works again, and both rate limiters are back on Redis.
      await until(
        () =>
          succeeded("b", "after") >= 10 &&
          instances.a!.logs().includes(REDIS_BACK) &&
          instances.b!.logs().includes(REDIS_BACK),
        () => `recovery after Redis returned: ${summary(load.outcomes)}`,
        15_000,
      );
    } finally {
      await load.stop();
    }
    const outcomes = load.outcomes;
    for (const instance of [instances.a!, instances.b!]) expect(instance.logs()).toContain(REDIS_DOWN);

    // Fully inside the outage: A (its executor is local) kept answering, its limits counted in memory;
    // B could not forward, and refused every call with TARGET_UNAVAILABLE, retryable, having run nothing.
    const duringOutage = outcomes.filter((o) => o.phase === "outage" && o.endPhase === "outage");
    for (const outcome of duringOutage.filter((o) => o.site === "a")) {
      expect(outcome.status, summary([outcome])).toBe(200);
    }
    for (const outcome of duringOutage.filter((o) => o.site === "b")) {
      expect(outcome, summary([outcome])).toMatchObject({
        status: 503,
        code: "TARGET_UNAVAILABLE",
        retryable: true,
      });
    }
    // Anywhere in the run: success, TARGET_UNAVAILABLE (nothing ran), or, for a forwarded call whose
    // reply was in flight when Redis died, TIMEOUT (the outcome is unknown). Never a rate limit.
    expect(
      outcomes.every((o) => o.status !== 0),
      summary(outcomes),
    ).toBe(true);
    for (const outcome of outcomes.filter((o) => o.status !== 200)) {
      expect(["TARGET_UNAVAILABLE", "TIMEOUT"], summary([outcome])).toContain(outcome.code);
      if (outcome.code === "TARGET_UNAVAILABLE") expect(ran(outcome), summary([outcome])).toBe(0);
      else expect(ran(outcome), summary([outcome])).toBeLessThanOrEqual(1);
    }
    await expectSucceededOnce(outcomes.filter((o) => o.status === 200));

    // The refused calls, retried identically now that Redis is back, run exactly once each.
    const refused = outcomes.filter((o) => o.code === "TARGET_UNAVAILABLE");
    expect(refused.length).toBeGreaterThanOrEqual(15);
    const retried = await Promise.all(refused.map((o) => submit(o.site, o.signed, () => "retry")));
    for (const outcome of retried) expect(outcome.status, summary([outcome])).toBe(200);
    expect(retried.every((o) => o.receipt!.duplicate === false)).toBe(true);
    await expectSucceededOnce(retried);
    // A call whose outcome was unknown is never run a second time by its retry.
    const unknown = outcomes.filter((o) => o.code === "TIMEOUT");
    const again = await Promise.all(unknown.map((o) => submit(o.site, o.signed, () => "retry")));
    for (const outcome of again) expect(ran(outcome), summary([outcome])).toBeLessThanOrEqual(1);
    expect([...executions.values()].every((count) => count === 1)).toBe(true);
  }, 60_000);

  it("PostgreSQL stopped mid-load: calls are refused with UNAVAILABLE, none runs, service resumes, the log verifies", async () => {
    const load = new Load("before", () => ["a", "b"]);
    const succeeded = (site: Site, phase: string) =>
      load.count((o) => o.site === site && o.phase === phase && o.status === 200);
    const whileDown = (site: Site) =>
      load.count((o) => o.site === site && o.phase === "down" && o.endPhase === "down");
    const executionsBefore = new Map(executions);
    try {
      await until(
        () => succeeded("a", "before") >= 15 && succeeded("b", "before") >= 15,
        () => `successes before the fault: ${summary(load.outcomes)}`,
      );
      // Stopped (fast shutdown: connections cut); the server starts again once whileDown returns.
      await postgres!.restart(async () => {
        load.phase("down");
        await until(
          () => whileDown("a") >= 10 && whileDown("b") >= 10,
          () => `calls answered while PostgreSQL was down: ${summary(load.outcomes)}`,
        );
        load.phase("starting");
      });
      load.phase("after");
      await until(
        () => succeeded("a", "after") >= 10 && succeeded("b", "after") >= 10,
        () => `service to resume after PostgreSQL returned: ${summary(load.outcomes)}`,
        20_000,
      );
    } finally {
      await load.stop();
    }
    const outcomes = load.outcomes;

    // While it was down: the replay store (pipeline step 5, before the decision is recorded at step 9)
    // is the first thing to need it, so every call was refused UNAVAILABLE (reason replay_store),
    // retryable, and ran nowhere. When the 5 s cache of alice's API key or roles lapsed meanwhile,
    // authentication needed it first: UNAVAILABLE too, without a reason.
    const down = outcomes.filter((o) => o.phase === "down" && o.endPhase === "down");
    for (const outcome of down) {
      expect(outcome, summary([outcome])).toMatchObject({
        status: 503,
        code: "UNAVAILABLE",
        retryable: true,
      });
      expect([undefined, "replay_store"], summary([outcome])).toContain(outcome.reason);
      expect(ran(outcome), summary([outcome])).toBe(0);
    }
    // (The caches lapse at most once per 5 s, so refusals by the replay store are seen in any case.)
    expect(outcomes.filter((o) => o.reason === "replay_store").length, summary(outcomes)).toBeGreaterThan(0);
    // Calls in flight as it stopped failed with a code too (the decision or the result could not be
    // recorded: AUDIT_UNAVAILABLE); none ran twice, and none was lost without an answer.
    expect(
      outcomes.every((o) => o.status !== 0),
      summary(outcomes),
    ).toBe(true);
    for (const outcome of outcomes.filter((o) => o.status !== 200)) {
      expect(["UNAVAILABLE", "AUDIT_UNAVAILABLE"], summary([outcome])).toContain(outcome.code);
      expect(ran(outcome), summary([outcome])).toBeLessThanOrEqual(1);
    }
    await expectSucceededOnce(outcomes.filter((o) => o.status === 200));
    // Nothing that ran before this test ran again during it.
    for (const [hash, count] of executionsBefore) expect(executions.get(hash)).toBe(count);

    // What was refused while it was down left nothing behind: the identical retry runs once.
    const retried = await Promise.all(down.map((o) => submit(o.site, o.signed, () => "retry")));
    for (const outcome of retried) expect(outcome.status, summary([outcome])).toBe(200);
    await expectSucceededOnce(retried);

    await expectLogVerifies("a");
    await expectLogVerifies("b");
  }, 60_000);

  it("B SIGKILLed mid-load: every call it answered with success is in the shared log, which verifies", async () => {
    let bAlive = true;
    const load = new Load("before", () => (bAlive ? ["a", "b"] : ["a"]));
    const succeeded = (site: Site, phase: string) =>
      load.count((o) => o.site === site && o.phase === phase && o.status === 200);
    try {
      await until(
        () => succeeded("a", "before") >= 15 && succeeded("b", "before") >= 40,
        () => `successes before the kill: ${summary(load.outcomes)}`,
      );
      await instances.b!.kill();
      bAlive = false;
      load.phase("after");
      // The survivor keeps serving.
      await until(
        () => succeeded("a", "after") >= 20,
        () => `A to keep serving: ${summary(load.outcomes)}`,
      );
    } finally {
      await load.stop();
    }
    expect(instances.b!.child.signalCode).toBe("SIGKILL");
    const outcomes = load.outcomes;
    for (const outcome of outcomes.filter((o) => o.site === "a")) {
      expect(outcome.status, summary([outcome])).toBe(200);
    }
    // At B: answered with success, or no answer at all (cut by the kill); a call B forwarded just
    // before dying may have run at A, but never twice.
    for (const outcome of outcomes.filter((o) => o.site === "b" && o.status !== 200)) {
      expect(outcome.code, summary([outcome])).toBe("NO_ANSWER");
      expect(ran(outcome), summary([outcome])).toBeLessThanOrEqual(1);
    }
    const succeededAtB = outcomes.filter((o) => o.site === "b" && o.status === 200);
    expect(succeededAtB.length).toBeGreaterThanOrEqual(40);
    await expectSucceededOnce(outcomes.filter((o) => o.status === 200));

    // The survivor serves the log: it finds B's last acknowledged entries and verifies the whole log.
    const lastAtB = succeededAtB.at(-1)!.receipt!;
    for (const id of [lastAtB.audit.request, lastAtB.audit.result!]) {
      const found = await call(fixture("a"), "GET", `/v1/audit?id=${encodeURIComponent(id)}`, {
        headers: { authorization: `Bearer ${deployment.adminKey}` },
      });
      expect(found.status, JSON.stringify(found.body)).toBe(200);
      expect(JSON.stringify(found.body)).toContain(id);
    }
    await expectLogVerifies("a");
    expect([...executions.values()].every((count) => count <= 1)).toBe(true);
  }, 60_000);
});
