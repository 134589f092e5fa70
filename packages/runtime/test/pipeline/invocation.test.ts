// The guarded invocation path end to end over real TLS: a signed invoke reaches a connected executor
// and the verified, signed result comes back in a runtime-signed receipt.
import {
  type Envelope,
  type Receipt,
  assertResultAnswers,
  signEnvelope,
  verifyEnvelope,
  verifyReceipt,
} from "@signet/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor, type RawExecutorOptions } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let fx: RuntimeFixture;
let alice: TestAgent;
let dbBot: TestAgent;
const executors: RawExecutor[] = [];

beforeAll(async () => {
  fx = await startRuntime({ yaml: "routing:\n  call_timeout_ms: 1500\n  heartbeat_ms: 5000\n" });
  alice = await registerAgent(fx, "alice");
  dbBot = await registerAgent(fx, "db-bot", ["database/query", "database/slow"]);
});
afterEach(async () => {
  await Promise.all(executors.splice(0).map((executor) => executor.close()));
});
afterAll(async () => fx?.close());

async function executor(options: Partial<RawExecutorOptions> = {}): Promise<RawExecutor> {
  const started = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: dbBot.apiKey,
    agentId: "db-bot",
    key: dbBot.key,
    serves: ["database/query"],
    ...options,
  });
  executors.push(started);
  await started.connect();
  return started;
}

function invoke(body: unknown = { q: "select 1" }, to = "tool:database/query") {
  return signEnvelope({ type: "invoke", from: "alice", to, body: body as never }, alice.key);
}

async function submit(wire: string, headers = alice.headers) {
  return call(fx, "POST", "/v1/envelopes", { headers, body: wire });
}

describe("POST /v1/envelopes", () => {
  it("dispatches a signed invoke and returns the executor's signed result in a runtime-signed receipt", async () => {
    const tool = await executor({ handler: (body) => ({ rows: [[1]], echo: body }) });
    const request = invoke({ q: "select 1" });
    const response = await submit(request.wire);
    expect(response.status).toBe(200);
    const { receipt, result } = response.body as { receipt: Receipt; result: Envelope };

    // The result verifies against the executor's registered key and answers this very request.
    const verified = verifyEnvelope(JSON.stringify(result), {
      resolveKey: (kid) =>
        kid === dbBot.key.kid ? { key: dbBot.key.publicKey, owner: "db-bot" } : undefined,
    });
    assertResultAnswers(verified.envelope, { id: request.envelope.id, hash: request.hash });
    expect(verified.envelope.body).toEqual({ rows: [[1]], echo: { q: "select 1" } });

    // The receipt is signed by the runtime and names both envelopes by hash.
    verifyReceipt(receipt, fx.runtime.signingKey.publicKey);
    expect(receipt.request).toEqual({ from: "alice", id: request.envelope.id, hash: request.hash });
    expect(receipt.result).toMatchObject({ from: "db-bot", hash: verified.hash, status: "ok" });
    expect(receipt.duplicate).toBe(false);
    expect(receipt.rules).toEqual(["test-allow-all"]);
    expect(tool.calls).toBe(1);

    // The decision and the result are both in the record, with both agents' signatures.
    const events = await fx.runtime.audit.query({ limit: 10_000 });
    const decision = events.find((e) => e.id === receipt.audit.request)!;
    expect(decision).toMatchObject({ type: "invocation", outcome: "allow", actor: "alice" });
    expect(decision.request).toMatchObject({ hash: request.hash, sig: request.envelope.sig });
    const resultEvent = events.find((e) => e.id === receipt.audit.result)!;
    expect(resultEvent).toMatchObject({ type: "invocation_result", outcome: "success", actor: "db-bot" });
    expect(resultEvent.result).toMatchObject({ sig: result.sig });
    expect(resultEvent.request).toMatchObject({ hash: request.hash });
  });

  it("delivers the runtime's decision and audit id with every invocation", async () => {
    const tool = await executor();
    const response = await submit(invoke().wire);
    const invokeFrame = tool.frames.find((frame) => frame.type === "invoke");
    expect(invokeFrame?.type === "invoke" && invokeFrame.delivery.decision.audit_id).toBe(
      (response.body as { receipt: Receipt }).receipt.audit.request,
    );
  });

  it("spreads calls round-robin over the connections serving a tool", async () => {
    const first = await executor();
    const second = await executor();
    for (let i = 0; i < 6; i++) expect((await submit(invoke({ i }).wire)).status).toBe(200);
    expect(first.calls).toBe(3);
    expect(second.calls).toBe(3);
  });

  it("answers TARGET_UNAVAILABLE when no executor is connected, and the envelope may then be retried", async () => {
    const request = invoke();
    const refused = await submit(request.wire);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: "TARGET_UNAVAILABLE", retryable: true });
    const tool = await executor();
    const retried = await submit(request.wire);
    expect(retried.status).toBe(200);
    expect(retried.body.receipt.duplicate).toBe(false);
    expect(tool.calls).toBe(1);
  });

  it("answers UNKNOWN_TOOL for a tool no agent may serve", async () => {
    const refused = await submit(invoke({}, "tool:nobody/serves-this").wire);
    expect(refused.body.error.code).toBe("UNKNOWN_TOOL");
  });

  it("times out a silent executor with TIMEOUT and stores its late result for the retry", async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tool = await executor({
      handler: async (body) => {
        await gate;
        return body;
      },
    });
    const request = invoke({ slow: true });
    const timedOut = await submit(request.wire);
    expect(timedOut.body.error).toMatchObject({ code: "TIMEOUT", retryable: true });
    release!();
    // The late result arrives and is stored; the retry gets it without a second run.
    let retried = await submit(request.wire);
    for (let i = 0; i < 100 && retried.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      retried = await submit(request.wire);
    }
    expect(retried.status).toBe(200);
    expect(retried.body.receipt.duplicate).toBe(true);
    expect(tool.calls).toBe(1);
  });

  it("applies backpressure: a full executor makes further calls TARGET_UNAVAILABLE (busy)", async () => {
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const busy = await executor({
      maxInFlight: 1,
      handler: async (body) => {
        await gate;
        return body;
      },
    });
    const first = submit(invoke({ n: 1 }).wire);
    // Wait until the first call is really in flight on the executor.
    for (let i = 0; i < 200 && !busy.frames.some((frame) => frame.type === "invoke"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const second = await submit(invoke({ n: 2 }).wire);
    expect(second.body.error).toMatchObject({ code: "TARGET_UNAVAILABLE" });
    release!();
    expect((await first).status).toBe(200);
  });

  it("an executor's retryable refusal frees the id; a permanent one is the message's outcome", async () => {
    const full = await executor({ refuse: { code: "TARGET_UNAVAILABLE", message: "draining" } });
    const request = invoke({ n: "retry-me" });
    expect((await submit(request.wire)).body.error.code).toBe("TARGET_UNAVAILABLE");
    await full.close();
    const healthy = await executor();
    const retried = await submit(request.wire);
    expect(retried.status).toBe(200);
    expect(retried.body.receipt.duplicate).toBe(false);
    expect(healthy.calls).toBe(1);
    await healthy.close();

    const strict = await executor({ refuse: { code: "UNKNOWN_TOOL", message: "not here" } });
    const refusedRequest = invoke({ n: "refuse-me" });
    expect((await submit(refusedRequest.wire)).body.error.code).toBe("UNKNOWN_TOOL");
    await strict.close();
    const other = await executor();
    expect((await submit(refusedRequest.wire)).body.error.code).toBe("UNKNOWN_TOOL");
    expect(other.calls).toBe(0);
  });

  it("returns errors in the registry's wire shape and HTTP status", async () => {
    const response = await submit("{not json");
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: expect.objectContaining({ code: "INVALID_ENVELOPE", retryable: false }),
    });
  });
});
