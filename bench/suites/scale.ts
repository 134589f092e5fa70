// Scale suite, part 1: rate-limit decisions per second (pipeline step 8), in process and through a real
// redis-server on loopback, side by side in one run.
//
//   ratelimit_memory_per_s         SignetRateLimiter.check() on the memory backend (rate-limiter-flexible's
//                                  RateLimiterMemory): WORKERS async loops, each awaiting one check at a
//                                  time, cycling over SENDERS senders; the sender's own limit only (the
//                                  common case). Limits are set high so that every call is allowed.
//   ratelimit_memory_rule_per_s    the same with one policy rule limit on the decision as well (two
//                                  counters per call, per rule, sender and tool)
//   rlflex_memory_consume_per_s    RateLimiterMemory.consume() alone, awaited the same way: the floor
//                                  under the two above (what Signet adds is the difference)
//   ratelimit_redis_per_s          check() on the Redis backend (RateLimiterRedis, one Lua call per
//                                  check over ioredis with auto-pipelining): REDIS_WORKERS calls in
//                                  flight, to a redis-server started for the suite (127.0.0.1; append-
//                                  only file fsynced every second, as the test helper starts it)
//
// Each round runs for ROUND_MS (or ROUND_MAX_CALLS calls, whichever comes first); the figure is the
// median over ROUNDS rounds, the variants interleaved round by round.
import type { Envelope } from "@signet/protocol";
import { pino } from "pino";
import { RateLimiterMemory } from "rate-limiter-flexible";
import type { InvocationContext, PolicyDecision } from "../../packages/runtime/src/pipeline/hooks.js";
import { DEFAULT_RATE_LIMITS } from "../../packages/runtime/src/ratelimit/defaults.js";
import {
  type SignetRateLimiter,
  createRateLimiter,
} from "../../packages/runtime/src/ratelimit/signet-rate-limiter.js";
import { startRedisServer } from "../../packages/runtime/test/helpers/redis-server.js";
import { type Metric, median, report } from "../harness.js";

const ROUNDS = 7;
const ROUND_MS = 500;
const ROUND_MAX_CALLS = 5_000_000;
const WARMUP_MS = 300;
const SENDERS = 1000;
const WORKERS = 64;
const REDIS_WORKERS = 512;
/** High enough that nothing is refused in a round: the suite measures decisions, not refusals. */
const UNLIMITED = 100_000_000;

const logger = pino({ level: "warn" });

function contexts(): InvocationContext[] {
  return Array.from({ length: SENDERS }, (_, i) => {
    const sender = `agent-${i}`;
    return {
      principal: { id: sender, kind: "agent", permissions: [], method: "api_key" },
      envelope: { type: "invoke", from: sender, to: "tool:database/query" } as unknown as Envelope,
      tool: "database/query",
      now: Date.now(),
    };
  });
}

const RULE_DECISION: PolicyDecision = {
  effect: "allow",
  rules: ["db-reads"],
  reason: "allowed by db-reads",
  rateLimits: [{ rule: "db-reads", limit: UNLIMITED, windowMs: 60_000, spec: `${UNLIMITED}/minute` }],
};

/** Calls per second with `workers` async loops awaiting `call(i)` until `ms` pass or `limit` calls. */
async function throughput(
  call: (index: number) => Promise<unknown>,
  workers: number,
  ms: number,
  limit: number,
): Promise<number> {
  let issued = 0;
  let done = 0;
  const start = performance.now();
  const deadline = start + ms;
  const worker = async (): Promise<void> => {
    // Checking the clock every call would cost more than a memory decision: every 256 calls.
    while (issued < limit) {
      if ((issued & 255) === 0 && performance.now() >= deadline) break;
      await call(issued++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return done / ((performance.now() - start) / 1000);
}

async function rounds(
  variants: Readonly<Record<string, { call: (i: number) => Promise<unknown>; workers: number }>>,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((n) => [n, []]));
  for (const { call, workers } of Object.values(variants)) {
    await throughput(call, workers, WARMUP_MS, ROUND_MAX_CALLS);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, { call, workers }] of Object.entries(variants)) {
      samples[name]!.push(await throughput(call, workers, ROUND_MS, ROUND_MAX_CALLS));
    }
  }
  return samples;
}

export async function run(): Promise<boolean> {
  const metrics: Metric[] = [];
  const ctx = contexts();
  const limits = { ...DEFAULT_RATE_LIMITS, messagesPerMinute: UNLIMITED };
  console.log(`scale suite — rate limits: ${SENDERS} senders, ${ROUNDS} rounds of ${ROUND_MS} ms`);

  // In process.
  const memory = await createRateLimiter({ limits, logger });
  const floor = new RateLimiterMemory({ keyPrefix: "floor", points: UNLIMITED, duration: 60 });
  const keys = ctx.map((c) => c.principal.id);
  let memorySamples: Record<string, number[]>;
  try {
    memorySamples = await rounds({
      ratelimit_memory_per_s: { call: (i) => memory.check(ctx[i % SENDERS]!), workers: WORKERS },
      ratelimit_memory_rule_per_s: {
        call: (i) => memory.check(ctx[i % SENDERS]!, RULE_DECISION),
        workers: WORKERS,
      },
      rlflex_memory_consume_per_s: { call: (i) => floor.consume(keys[i % SENDERS]!), workers: WORKERS },
    });
  } finally {
    await memory.close();
  }
  metrics.push(
    {
      name: "ratelimit_memory_per_s",
      value: median(memorySamples.ratelimit_memory_per_s!),
      unit: "ops/s",
      target: ">= 1000000",
      baseline: `check(), sender limit only, ${WORKERS} async loops`,
    },
    {
      name: "ratelimit_memory_rule_per_s",
      value: median(memorySamples.ratelimit_memory_rule_per_s!),
      unit: "ops/s",
    },
    {
      name: "rlflex_memory_consume_per_s",
      value: median(memorySamples.rlflex_memory_consume_per_s!),
      unit: "ops/s",
      baseline: "RateLimiterMemory.consume() alone",
    },
  );

  // Through Redis.
  const server = await startRedisServer();
  let shared: SignetRateLimiter | undefined;
  try {
    shared = await createRateLimiter({
      limits,
      redis: { url: server.url, keyPrefix: "bench", commandTimeoutMs: 5000, connectTimeoutMs: 5000 },
      logger,
    });
    const limiter = shared;
    const redisSamples = await rounds({
      ratelimit_redis_per_s: { call: (i) => limiter.check(ctx[i % SENDERS]!), workers: REDIS_WORKERS },
    });
    if (!limiter.status().shared) throw new Error("the Redis limiter fell back to memory during the bench");
    metrics.push({
      name: "ratelimit_redis_per_s",
      value: median(redisSamples.ratelimit_redis_per_s!),
      unit: "ops/s",
      target: ">= 40000",
      baseline: `check(), ${REDIS_WORKERS} calls in flight, one local redis-server`,
    });
  } finally {
    await shared?.close();
    await server.stop();
  }
  return report("scale", metrics);
}
