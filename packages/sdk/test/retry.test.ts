// RetryPolicy and retrySend: MACP defaults, retry_after_ms honoured, permanent codes never retried,
// the identical bytes every time, and a dropped connection that never executes a call twice.
import { Ed25519PrivateKey, type ErrorCode, SignetError } from "@signet/protocol";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  Agent,
  AuthConfig,
  ERROR_CLASSES,
  RateLimitedError,
  REGISTRY_RETRYABLE_CODES,
  type RetryEvent,
  RetryPolicy,
  SdkError,
  SignetClient,
  type SignetClientOptions,
  TargetUnavailableError,
  protocolError,
  retrySend,
} from "@signet/sdk";
import { FakeHttpRuntime } from "./helpers/fake-http-runtime.js";
import { InterceptingProxy } from "./helpers/intercepting-proxy.js";
import { type RealRuntime, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup } from "./helpers/wait.js";

const wire = (code: ErrorCode, details: Record<string, unknown> = {}) => {
  const error = new SignetError(code, undefined, details);
  return { status: error.status, body: error.toWire() };
};

describe("RetryPolicy", () => {
  it("defaults to MACP: 3 retries, min(100·2^n, 2000) ms, the registry's retryable codes", () => {
    const policy = new RetryPolicy();
    expect(policy.maxRetries).toBe(3);
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => policy.backoffMs(n))).toEqual([
      100, 200, 400, 800, 1600, 2000, 2000,
    ]);
    expect([...policy.retryableCodes].sort()).toEqual(
      [
        "AUDIT_UNAVAILABLE",
        "INTERNAL_ERROR",
        "RATE_LIMITED",
        "TARGET_UNAVAILABLE",
        "TIMEOUT",
        "UNAVAILABLE",
      ].sort(),
    );
    expect([...policy.retryableCodes].sort()).toEqual([...REGISTRY_RETRYABLE_CODES].sort());
    expect(RetryPolicy.DEFAULT.maxRetries).toBe(3);
    expect(RetryPolicy.NONE.maxRetries).toBe(0);
  });

  it.each([
    "FORBIDDEN",
    "POLICY_DENIED",
    "INVALID_ENVELOPE",
    "SIGNATURE_INVALID",
    "DUPLICATE_MESSAGE",
  ] as const)("refuses to be told to retry the permanent code %s", (code) => {
    let error: unknown;
    try {
      new RetryPolicy({ retryableCodes: ["TIMEOUT", code] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("retry_policy");
  });

  it("decides each failure: permanent never, retryable with backoff, retry_after_ms when longer", () => {
    const policy = new RetryPolicy({ maxRetryAfterMs: 5000 });
    expect(policy.delayBeforeRetry(0, protocolError("POLICY_DENIED"))).toBeUndefined();
    expect(policy.delayBeforeRetry(0, protocolError("SIGNATURE_INVALID"))).toBeUndefined();
    expect(policy.delayBeforeRetry(1, protocolError("TARGET_UNAVAILABLE"))).toBe(200);
    expect(policy.delayBeforeRetry(3, protocolError("TARGET_UNAVAILABLE"))).toBeUndefined();
    expect(policy.delayBeforeRetry(0, new RateLimitedError(undefined, { retry_after_ms: 750 }))).toBe(750);
    expect(policy.delayBeforeRetry(2, new RateLimitedError(undefined, { retry_after_ms: 50 }))).toBe(400);
    expect(
      policy.delayBeforeRetry(0, new RateLimitedError(undefined, { retry_after_ms: 9000 })),
    ).toBeUndefined();
    // Local failures: a network error may be retried, an untrusted certificate may not.
    expect(policy.delayBeforeRetry(0, new SdkError("x", { reason: "network", retryable: true }))).toBe(100);
    expect(policy.delayBeforeRetry(0, new SdkError("x", { reason: "tls" }))).toBeUndefined();
    expect(
      new RetryPolicy({ retryNetworkErrors: false }).delayBeforeRetry(
        0,
        new SdkError("x", { reason: "network", retryable: true }),
      ),
    ).toBeUndefined();
    expect(new RetryPolicy({ retryableCodes: ["TIMEOUT"] }).isRetryable(protocolError("RATE_LIMITED"))).toBe(
      false,
    );
  });

  it("takes jitter off the backoff, never off retry_after_ms", () => {
    const policy = new RetryPolicy({ jitter: 0.5, random: () => 0.5 });
    expect(policy.backoffMs(0)).toBe(75);
    expect(policy.backoffMs(10)).toBe(1500);
    expect(policy.delayBeforeRetry(0, new RateLimitedError(undefined, { retry_after_ms: 300 }))).toBe(300);
  });

  it("validates its settings", () => {
    for (const options of [
      { maxRetries: -1 },
      { maxRetries: 1.5 },
      { backoffBaseMs: 500, backoffMaxMs: 100 },
      { jitter: 2 },
      { retryableCodes: ["NOPE" as ErrorCode] },
    ]) {
      expect(() => new RetryPolicy(options)).toThrow(SdkError);
    }
  });
});

describe("retries against a fake runtime (429s and 503s on demand)", () => {
  const aliceKey = Ed25519PrivateKey.generate();
  const runtimeKey = Ed25519PrivateKey.generate();
  let fake: FakeHttpRuntime;
  let url: string;
  const clients: SignetClient[] = [];

  function makeClient(options: Partial<SignetClientOptions> = {}): SignetClient {
    const client = new SignetClient({
      target: url,
      allowInsecure: true,
      auth: AuthConfig.forApiKey("sgk_test", { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: aliceKey,
      runtimePublicKey: runtimeKey.publicKey,
      ...options,
    });
    clients.push(client);
    return client;
  }

  beforeEach(async () => {
    fake = new FakeHttpRuntime({
      runtimeKey,
      executorId: "echo-bot",
      executorKey: Ed25519PrivateKey.generate(),
      callers: new Map([["alice", aliceKey.publicKey]]),
    });
    url = await fake.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await fake.stop();
  });

  /** Gaps between arrivals at the runtime, in ms. */
  const gaps = () => fake.arrivals.slice(1).map((at, i) => at - fake.arrivals[i]!);

  it("waits out retry_after_ms between identical attempts, and the call runs once", async () => {
    fake.script = [
      wire("RATE_LIMITED", { retry_after_ms: 300 }),
      wire("RATE_LIMITED", { retry_after_ms: 300 }),
    ];
    const retries: RetryEvent[] = [];
    const client = makeClient({ retryPolicy: new RetryPolicy({ backoffBaseMs: 10 }) });
    const answer = await client.invokeTool("echo", { n: 1 }, { onRetry: (event) => retries.push(event) });
    expect(answer.body).toEqual({ echo: { n: 1 } });
    expect(answer.attempts).toBe(3);
    expect(retries.map((r) => [r.retry, r.delayMs])).toEqual([
      [1, 300],
      [2, 300],
    ]);
    expect(retries.every((r) => r.error instanceof RateLimitedError)).toBe(true);
    // Timers may round down by a millisecond; they are never early by more.
    for (const gap of gaps()) expect(gap).toBeGreaterThanOrEqual(299);
    expect(new Set(fake.bodies).size).toBe(1);
    expect(fake.executions).toBe(1);
  });

  it("backs off 100, 200, 400 ms without retry_after_ms, then throws the last error", async () => {
    fake.script = [1, 2, 3, 4].map(() => wire("TARGET_UNAVAILABLE"));
    const retries: RetryEvent[] = [];
    const error = await makeClient()
      .invokeTool("echo", 1, { onRetry: (event) => retries.push(event) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TargetUnavailableError);
    expect(retries.map((r) => r.delayMs)).toEqual([100, 200, 400]);
    expect(fake.bodies).toHaveLength(4);
    expect(new Set(fake.bodies).size).toBe(1);
    gaps().forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual([100, 200, 400][i]! - 1));
  });

  it.each(["POLICY_DENIED", "FORBIDDEN", "SIGNATURE_INVALID", "INVALID_ENVELOPE", "QUOTA_EXCEEDED"] as const)(
    "never retries the permanent code %s",
    async (code) => {
      fake.script = [wire(code)];
      const retries: RetryEvent[] = [];
      const error = await makeClient()
        .invokeTool("echo", 1, { onRetry: (event) => retries.push(event) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ERROR_CLASSES[code]);
      expect(retries).toEqual([]);
      expect(fake.bodies).toHaveLength(1);
    },
  );

  it("does not wait for a retry_after_ms beyond maxRetryAfterMs", async () => {
    fake.script = [wire("RATE_LIMITED", { retry_after_ms: 120_000 })];
    const error = await makeClient()
      .invokeTool("echo", 1)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(120_000);
    expect(fake.bodies).toHaveLength(1);
  });

  it("gives up at once when the next wait would pass the call's timeoutMs", async () => {
    fake.script = [wire("RATE_LIMITED", { retry_after_ms: 5000 })];
    const started = Date.now();
    const error = await makeClient()
      .invokeTool("echo", 1, { timeoutMs: 1000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(fake.bodies).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("stops waiting when the call's signal aborts", async () => {
    fake.script = [wire("RATE_LIMITED", { retry_after_ms: 10_000 })];
    const controller = new AbortController();
    const error = await makeClient()
      .invokeTool("echo", 1, { signal: controller.signal, onRetry: () => controller.abort() })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("aborted");
    expect(fake.bodies).toHaveLength(1);
  });

  it("retrySend re-sends the identical signed bytes under the given policy", async () => {
    const client = makeClient({ retryPolicy: RetryPolicy.NONE });
    const envelope = await client.buildEnvelope("tool:echo", { order: 42 });
    fake.script = [wire("UNAVAILABLE"), wire("INTERNAL_ERROR")];
    const answer = await retrySend(client, envelope, { policy: new RetryPolicy({ backoffBaseMs: 1 }) });
    expect(answer.attempts).toBe(3);
    expect(fake.bodies).toEqual([envelope.wire, envelope.wire, envelope.wire]);
    expect(answer.result?.body).toEqual({ echo: { order: 42 } });
    // Sent again later (after a crash, say): the original answer, marked duplicate, and no second run.
    const again = await retrySend(client, envelope.wire);
    expect(again.duplicate).toBe(true);
    expect(again.result).toEqual(answer.result);
    expect(fake.executions).toBe(1);
  });

  it("sends signals with send(target, body), retried like calls; send(wire) still submits once", async () => {
    const client = makeClient({ retryPolicy: new RetryPolicy({ backoffBaseMs: 1 }) });
    fake.script = [wire("UNAVAILABLE")];
    const delivered = await client.send("agent:bob", { event: "invoice.paid", invoice: 42 });
    expect(delivered.attempts).toBe(2);
    expect(delivered.result).toBeUndefined();
    expect(delivered.auditId).toBe("audit-signal");
    expect(fake.signals).toBe(1);
    expect(JSON.parse(fake.bodies[0]!)).toMatchObject({ type: "signal", to: "agent:bob", from: "alice" });

    const signed = await client.sign("tool:echo", 7);
    fake.script = [wire("UNAVAILABLE")];
    const error = await client.send(signed.wire).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ERROR_CLASSES.UNAVAILABLE);
    expect((await client.send(signed.wire)).result?.body).toEqual({ echo: 7 });
  });
});

describe("a dropped connection against a real runtime", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let proxy: InterceptingProxy;
  let executions = 0;
  let client: SignetClient;

  beforeAll(async () => {
    fx = await startRealRuntime();
    cleanup.add(() => fx.close());
    const alice = await fx.registerAgent("alice");
    const bot = await fx.registerAgent("pay-bot", { serves: ["payments/charge"] });
    const agent = new Agent({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: bot.auth,
      agentId: "pay-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => agent.close());
    agent.tool("payments/charge", (args) => {
      executions += 1;
      return { charged: args };
    });
    await agent.connect();
    proxy = new InterceptingProxy(fx.url, fx.ca);
    await proxy.start();
    cleanup.add(() => proxy.stop());
    client = new SignetClient({
      target: proxy.url,
      rootCertificates: proxy.ca,
      auth: alice.auth,
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => client.close());
  });
  afterAll(() => cleanup.run());

  it("retries after the answer is lost, gets the original result, and the tool ran once", async () => {
    let dropped = 0;
    proxy.onResponse = (request) => {
      // The runtime ran the call and answered; the answer dies on the way back, once.
      if (request.url === "/v1/envelopes" && dropped === 0) {
        dropped += 1;
        return "drop";
      }
      return undefined;
    };
    const retries: RetryEvent[] = [];
    const answer = await client.invokeTool(
      "payments/charge",
      { cents: 500 },
      { onRetry: (event) => retries.push(event) },
    );
    expect(executions).toBe(1);
    expect(answer.status).toBe("ok");
    expect(answer.body).toEqual({ charged: { cents: 500 } });
    expect(answer.duplicate).toBe(true);
    expect(answer.attempts).toBe(2);
    expect(retries).toHaveLength(1);
    expect((retries[0]!.error as SdkError).reason).toBe("network");
    const posts = proxy.requests.filter((r) => r.url === "/v1/envelopes");
    expect(posts).toHaveLength(2);
    expect(posts[0]!.body.equals(posts[1]!.body)).toBe(true);
  });
});
