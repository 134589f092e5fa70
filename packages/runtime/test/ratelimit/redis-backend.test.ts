// The Redis backend against a real, throwaway redis-server: two limiters (two "runtimes") share one
// count; when Redis dies they fail open to in-memory counting (logged once) and come back by themselves.
import { existsSync } from "node:fs";
import { type Envelope, SignetError, signEnvelope } from "@signet/protocol";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { InvocationContext } from "../../src/pipeline/hooks.js";
import { DEFAULT_RATE_LIMITS, type RateLimitSettings } from "../../src/ratelimit/defaults.js";
import { REDIS_RESTORED_MESSAGE, REDIS_UNAVAILABLE_MESSAGE } from "../../src/ratelimit/redis-counters.js";
import { type SignetRateLimiter, createRateLimiter } from "../../src/ratelimit/signet-rate-limiter.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => redis?.stop());

const limiters: SignetRateLimiter[] = [];
afterEach(async () => {
  await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
});

/** Log lines (parsed pino JSON) of one limiter. */
type Lines = { level: number; msg: string }[];

let prefixes = 0;
/** A limiter on the test server; each test gets its own key prefix unless it shares one on purpose. */
async function limiter(
  limits: Partial<RateLimitSettings>,
  keyPrefix: string,
  lines: Lines = [],
): Promise<SignetRateLimiter> {
  const logger = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Lines[number]) },
  );
  const created = await createRateLimiter({
    limits: { ...DEFAULT_RATE_LIMITS, ...limits },
    redis: { url: redis.url, keyPrefix, commandTimeoutMs: 500, connectTimeoutMs: 2000 },
    logger,
  });
  limiters.push(created);
  return created;
}

const freshPrefix = () => `test${++prefixes}:${Date.now()}`;

function context(sender: string): InvocationContext {
  const envelope = { type: "invoke", from: sender, to: "tool:database/query" } as unknown as Envelope;
  return {
    principal: { id: sender, kind: "agent", permissions: [], method: "api_key" },
    envelope,
    tool: "database/query",
    now: Date.now(),
  };
}

async function codes(rl: SignetRateLimiter, sender: string, times: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < times; i++) out.push((await rl.check(context(sender)))?.code ?? "OK");
  return out;
}

const ok = (n: number) => Array.from({ length: n }, () => "OK");

/** Calls until the limiter counts in Redis again (bounded: 200 tries, 25 ms apart). */
async function untilShared(rl: SignetRateLimiter): Promise<void> {
  for (let i = 0; i < 200 && !rl.status().shared; i++) {
    await rl.checkSessionStart(`probe-${i}`);
    if (!rl.status().shared) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(rl.status()).toEqual({ backend: "redis", shared: true });
}

describe("the Redis backend", () => {
  it("shares one count between two limiters, per sender", async () => {
    const prefix = freshPrefix();
    const a = await limiter({ messagesPerMinute: 10 }, prefix);
    const b = await limiter({ messagesPerMinute: 10 }, prefix);
    expect(a.status()).toEqual({ backend: "redis", shared: true });
    expect(await codes(a, "alice", 6)).toEqual(ok(6));
    expect(await codes(b, "alice", 5)).toEqual([...ok(4), "RATE_LIMITED"]);
    expect(await codes(a, "alice", 1)).toEqual(["RATE_LIMITED"]);
    expect(await codes(b, "bob", 1)).toEqual(["OK"]);
    const refusal = await a.check(context("alice"));
    expect(refusal).toBeInstanceOf(SignetError);
    expect(refusal!.details.retry_after_ms).toBeGreaterThan(0);
    expect(refusal!.details.retry_after_ms).toBeLessThanOrEqual(60_000);

    // Session starts and unauthenticated addresses are shared too.
    for (let i = 0; i < 3; i++) expect(await (i % 2 ? a : b).checkSessionStart("alice")).toBeUndefined();
    const c = await limiter({ sessionStartsPerMinute: 3, unauthenticatedPerMinute: 1 }, prefix);
    expect((await c.checkSessionStart("alice"))?.code).toBe("RATE_LIMITED");
    expect(await a.countUnauthenticated("192.0.2.7")).toBeUndefined();
    expect((await c.countUnauthenticated("192.0.2.7"))?.code).toBe("RATE_LIMITED");
  });

  it("keeps its keys under the prefix, one per sender, expiring with the window", async () => {
    const prefix = freshPrefix();
    const rl = await limiter({ messagesPerMinute: 10 }, prefix);
    await codes(rl, "team:alice", 2);
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys(`${prefix}:*`);
      expect(keys).toEqual([`${prefix}:msg:60s:team%3Aalice`]);
      expect(await client.get(keys[0]!)).toBe("2");
      const ttl = await client.pttl(keys[0]!);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      client.disconnect();
    }
  });

  it("fails open to in-memory counting while Redis is down (logged once) and comes back by itself", async () => {
    const prefix = freshPrefix();
    const aLines: Lines = [];
    const a = await limiter({ messagesPerMinute: 5 }, prefix, aLines);
    const b = await limiter({ messagesPerMinute: 5 }, prefix);
    expect(await codes(a, "alice", 3)).toEqual(ok(3));

    await redis.kill();
    // Still limited, now per instance in memory: a fresh count of 5 in a, and calls do not hang.
    expect(await codes(a, "alice", 7)).toEqual([...ok(5), "RATE_LIMITED", "RATE_LIMITED"]);
    expect(a.status()).toEqual({ backend: "redis", shared: false });
    expect(await codes(a, "carol", 2)).toEqual(ok(2));
    const outages = aLines.filter((line) => line.msg === REDIS_UNAVAILABLE_MESSAGE);
    expect(outages).toHaveLength(1);
    expect(outages[0]!.level).toBe(40); // warn
    expect(REDIS_UNAVAILABLE_MESSAGE).toBe("Redis unavailable, using in-memory rate limiter");

    await redis.restart();
    await untilShared(a);
    await untilShared(b);
    expect(aLines.filter((line) => line.msg === REDIS_RESTORED_MESSAGE)).toHaveLength(1);
    expect(aLines.filter((line) => line.msg === REDIS_UNAVAILABLE_MESSAGE)).toHaveLength(1);

    // Shared counting again: what a counts, b sees.
    expect(await codes(a, "dave", 3)).toEqual(ok(3));
    expect(await codes(b, "dave", 3)).toEqual([...ok(2), "RATE_LIMITED"]);
  });

  it("starts degraded when Redis is down at start, says so once, and joins Redis when it comes up", async () => {
    const late = await startRedisServer();
    try {
      await late.kill();
      const lines: Lines = [];
      const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const down = await createRateLimiter({
        limits: { ...DEFAULT_RATE_LIMITS, messagesPerMinute: 2 },
        redis: { url: late.url, keyPrefix: freshPrefix(), commandTimeoutMs: 200, connectTimeoutMs: 500 },
        logger,
      });
      limiters.push(down);
      expect(down.status()).toEqual({ backend: "redis", shared: false });
      expect(await codes(down, "alice", 3)).toEqual([...ok(2), "RATE_LIMITED"]);
      expect(lines.filter((line) => line.msg === REDIS_UNAVAILABLE_MESSAGE)).toHaveLength(1);

      await late.restart();
      await untilShared(down);
      expect(lines.filter((line) => line.msg === REDIS_RESTORED_MESSAGE)).toHaveLength(1);
      // Counted in Redis now: a fresh window there.
      expect(await codes(down, "alice", 3)).toEqual([...ok(2), "RATE_LIMITED"]);
    } finally {
      await late.stop();
    }
  });
});

describe("two runtimes sharing one Redis", () => {
  it("count a sender's envelopes together, over TLS", async () => {
    const yaml = `rate_limits:\n  messages_per_minute: 3\nredis:\n  key_prefix: ${freshPrefix()}\n`;
    const env = { SIGNET_REDIS_URL: redis.url };
    const first = await startRuntime({ yaml, env });
    const second = await startRuntime({ yaml, env }).catch(async (error: unknown) => {
      await first.close();
      throw error;
    });
    const executors: RawExecutor[] = [];
    try {
      expect(first.runtime.limiter.status()).toEqual({ backend: "redis", shared: true });
      const submit = async (fx: RuntimeFixture, alice: TestAgent) => {
        const wire = signEnvelope(
          { type: "invoke", from: "alice", to: "tool:echo", body: {} },
          alice.key,
        ).wire;
        const response = await call(fx, "POST", "/v1/envelopes", { headers: alice.headers, body: wire });
        return response.body.error?.code ?? String(response.status);
      };
      const setUp = async (fx: RuntimeFixture) => {
        const alice = await registerAgent(fx, "alice");
        const echo = await registerAgent(fx, "echo-bot", ["echo"]);
        const executor = new RawExecutor({
          url: fx.url,
          caPath: fx.certs.caCert,
          apiKey: echo.apiKey,
          agentId: echo.id,
          key: echo.key,
          serves: ["echo"],
        });
        executors.push(executor);
        await executor.connect();
        return alice;
      };
      const aliceOnFirst = await setUp(first);
      const aliceOnSecond = await setUp(second);
      expect(await submit(first, aliceOnFirst)).toBe("200");
      expect(await submit(second, aliceOnSecond)).toBe("200");
      expect(await submit(first, aliceOnFirst)).toBe("200");
      expect(await submit(second, aliceOnSecond)).toBe("RATE_LIMITED");
      expect(await submit(first, aliceOnFirst)).toBe("RATE_LIMITED");
    } finally {
      await Promise.all(executors.map((executor) => executor.close()));
      await Promise.all([first.close(), second.close()]);
    }
  });
});

describe("the redis-server test helper", () => {
  it("restarts on the same port and dir, keeping what the append-only file holds", async () => {
    const server = await startRedisServer();
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.set("kept", "yes");
      const { port, dir } = server;
      await server.restart(); // SIGTERM flushes the append-only file
      expect(server.port).toBe(port);
      expect(server.dir).toBe(dir);
      const again = new Redis(server.url, { maxRetriesPerRequest: 0 });
      try {
        expect(await again.get("kept")).toBe("yes");
      } finally {
        again.disconnect();
      }
    } finally {
      client.disconnect();
      await server.stop();
    }
    // Stopped: nothing answers on the port, and the dir is gone.
    const probe = new Redis(server.url, {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    probe.on("error", () => undefined);
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
    expect(existsSync(server.dir)).toBe(false);
  });
});
