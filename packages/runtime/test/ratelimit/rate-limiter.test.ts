// The rate limiter on its own (memory backend): defaults, overrides by config, policy and agent
// definitions, the strictest limit winning, keys that never collide, retry-after, session starts and
// unauthenticated requests per client address.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Envelope, isSignetError } from "@signet/protocol";
import fc from "fast-check";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Principal } from "../../src/auth/principal.js";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";
import type { InvocationContext, PolicyDecision, RateLimitStatus } from "../../src/pipeline/hooks.js";
import { compilePolicy } from "../../src/policy/compile.js";
import { createPipelinePolicy } from "../../src/policy/pipeline-policy.js";
import type { PolicySource } from "../../src/policy/types.js";
import { DEFAULT_RATE_LIMITS, type RateLimitSettings } from "../../src/ratelimit/defaults.js";
import { keyPart, ruleKey } from "../../src/ratelimit/limit-keys.js";
import { rateLimitHeaders } from "../../src/ratelimit/rate-limit-headers.js";
import { type SignetRateLimiter, createRateLimiter } from "../../src/ratelimit/signet-rate-limiter.js";
import { agentPolicySources } from "../../src/registry/agent-policy.js";
import type { AgentRecord } from "../../src/store/types.js";

const logger = pino({ level: "silent" });
const limiters: SignetRateLimiter[] = [];
const dirs: string[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function limiter(limits: Partial<RateLimitSettings> = {}): Promise<SignetRateLimiter> {
  const created = await createRateLimiter({ limits: { ...DEFAULT_RATE_LIMITS, ...limits }, logger });
  limiters.push(created);
  return created;
}

function principal(id: string): Principal {
  return { id, kind: "agent", permissions: [], method: "api_key" };
}

function context(sender: string, to = "tool:database/query", onRateLimit?: (s: RateLimitStatus) => void) {
  const envelope = { type: "invoke", from: sender, to, body: {} } as unknown as Envelope;
  return {
    principal: principal(sender),
    envelope,
    tool: to.slice(to.indexOf(":") + 1),
    now: Date.now(),
    ...(onRateLimit === undefined ? {} : { onRateLimit }),
  } satisfies InvocationContext;
}

/** Calls check `times` times and returns the codes (`OK` for an allowed call). */
async function run(
  rl: SignetRateLimiter,
  times: number,
  make: () => InvocationContext,
  decide?: (c: InvocationContext) => PolicyDecision,
): Promise<string[]> {
  const codes: string[] = [];
  for (let i = 0; i < times; i++) {
    const c = make();
    const refusal = await rl.check(c, decide?.(c));
    codes.push(refusal?.code ?? "OK");
  }
  return codes;
}

const ok = (n: number) => Array.from({ length: n }, () => "OK");

function policyOf(...sources: PolicySource[]) {
  const engine = createPipelinePolicy(compilePolicy(sources));
  return (c: InvocationContext) => engine.decide(c);
}

describe("defaults", () => {
  it("are MACP's: 600 messages and 60 session starts per sender per minute", async () => {
    expect(DEFAULT_RATE_LIMITS).toEqual({
      messagesPerMinute: 600,
      sessionStartsPerMinute: 60,
      unauthenticatedPerMinute: 60,
    });
    const rl = await limiter();
    expect(await run(rl, 601, () => context("alice"))).toEqual([...ok(600), "RATE_LIMITED"]);
    // Another sender has its own count.
    expect(await run(rl, 1, () => context("bob"))).toEqual(["OK"]);
  });

  it("refuse with a retryable RATE_LIMITED carrying a sane retry_after_ms and the limit that refused", async () => {
    const rl = await limiter({ messagesPerMinute: 2 });
    await run(rl, 2, () => context("alice"));
    const refusal = await rl.check(context("alice"));
    expect(isSignetError(refusal)).toBe(true);
    expect(refusal).toMatchObject({ code: "RATE_LIMITED", status: 429, retryable: true });
    expect(refusal!.details.reason).toBe("sender_limit");
    const wait = refusal!.details.retry_after_ms!;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60_000);
    expect(refusal!.toWire().error).toMatchObject({ code: "RATE_LIMITED", retry_after_ms: wait });
  });

  it("count in fixed windows: retry_after_ms is what is left of the window, and then calls pass again", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    const rl = await limiter({ messagesPerMinute: 3 });
    await run(rl, 3, () => context("alice"));
    vi.advanceTimersByTime(20_000);
    const refusal = await rl.check(context("alice"));
    expect(refusal!.details.retry_after_ms).toBe(40_000);
    vi.advanceTimersByTime(39_999);
    expect((await rl.check(context("alice")))?.details.retry_after_ms).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await run(rl, 4, () => context("alice"))).toEqual([...ok(3), "RATE_LIMITED"]);
  });

  it("reports the binding limit's state for the response headers, on allowed and refused calls", async () => {
    const rl = await limiter({ messagesPerMinute: 2 });
    const seen: RateLimitStatus[] = [];
    for (let i = 0; i < 3; i++) await rl.check(context("alice", undefined, (s) => seen.push(s)));
    expect(seen.map(({ limit, remaining }) => ({ limit, remaining }))).toEqual([
      { limit: 2, remaining: 1 },
      { limit: 2, remaining: 0 },
      { limit: 2, remaining: 0 },
    ]);
    expect(seen.every((s) => s.resetMs > 0 && s.resetMs <= 60_000)).toBe(true);
    expect(rateLimitHeaders({ limit: 2, remaining: 0, resetMs: 1500 })).toEqual({
      "x-ratelimit-limit": 2,
      "x-ratelimit-remaining": 0,
      "x-ratelimit-reset": 2,
    });
  });
});

describe("session starts", () => {
  it("have their own per-sender limit, apart from messages", async () => {
    const rl = await limiter({ sessionStartsPerMinute: 3, messagesPerMinute: 2 });
    const starts: string[] = [];
    for (let i = 0; i < 4; i++) starts.push((await rl.checkSessionStart("alice"))?.code ?? "OK");
    expect(starts).toEqual([...ok(3), "RATE_LIMITED"]);
    expect((await rl.checkSessionStart("alice"))?.details.reason).toBe("session_start_limit");
    expect(await rl.checkSessionStart("bob")).toBeUndefined();
    // Session starts did not use up alice's messages.
    expect(await run(rl, 3, () => context("alice"))).toEqual([...ok(2), "RATE_LIMITED"]);
  });

  it("default to 60 per minute", async () => {
    const rl = await limiter();
    const codes: string[] = [];
    for (let i = 0; i < 61; i++) codes.push((await rl.checkSessionStart("alice"))?.code ?? "OK");
    expect(codes).toEqual([...ok(60), "RATE_LIMITED"]);
  });
});

describe("overrides", () => {
  function configDir(yaml: string): string {
    const dir = mkdtempSync(join(tmpdir(), "signet-ratelimit-config-"));
    dirs.push(dir);
    writeFileSync(join(dir, "signet.yaml"), yaml);
    return dir;
  }

  it("config's rate_limits section replaces the defaults; redis.url / SIGNET_REDIS_URL select Redis", async () => {
    const defaults = loadConfig({ dataDir: configDir(""), env: {} });
    expect(defaults.rateLimits).toEqual({ backend: "memory", ...DEFAULT_RATE_LIMITS });
    expect(defaults.redis).toBeUndefined();

    const dir = configDir(
      "rate_limits:\n  messages_per_minute: 3\n  session_starts_per_minute: 2\n  unauthenticated_per_minute: 5\n",
    );
    const config = loadConfig({ dataDir: dir, env: {} });
    expect(config.rateLimits).toEqual({
      backend: "memory",
      messagesPerMinute: 3,
      sessionStartsPerMinute: 2,
      unauthenticatedPerMinute: 5,
    });
    const rl = await limiter(config.rateLimits);
    expect(await run(rl, 4, () => context("alice"))).toEqual([...ok(3), "RATE_LIMITED"]);

    const viaEnv = loadConfig({ dataDir: dir, env: { SIGNET_REDIS_URL: "redis://:secret@10.0.0.5:6379/2" } });
    expect(viaEnv.rateLimits.backend).toBe("redis");
    expect(viaEnv.redis).toEqual({
      url: "redis://:secret@10.0.0.5:6379/2",
      keyPrefix: "signet",
      commandTimeoutMs: 500,
      connectTimeoutMs: 2000,
    });
    const pinned = configDir("rate_limits:\n  backend: memory\nredis:\n  url: redis://127.0.0.1:6379\n");
    expect(loadConfig({ dataDir: pinned, env: {} }).rateLimits.backend).toBe("memory");
  });

  it("docs/operations.md's example loads as it says", () => {
    const page = readFileSync(
      fileURLToPath(new URL("../../../../docs/operations.md", import.meta.url)),
      "utf8",
    );
    const example = /```yaml\n(rate_limits:[\s\S]*?)```/.exec(page)?.[1];
    expect(example).toBeDefined();
    const config = loadConfig({
      dataDir: configDir(example!),
      env: { SIGNET_REDIS_URL: "rediss://cache.internal:6380" },
    });
    expect(config.rateLimits).toEqual({ backend: "redis", ...DEFAULT_RATE_LIMITS });
    expect(config.redis).toEqual({
      url: "rediss://cache.internal:6380",
      keyPrefix: "signet",
      commandTimeoutMs: 500,
      connectTimeoutMs: 2000,
    });
  });

  it("config problems name the key", () => {
    const problems = (yaml: string): readonly string[] => {
      try {
        loadConfig({ dataDir: configDir(yaml), env: {} });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).problems;
      }
      throw new Error("expected a ConfigError");
    };
    expect(problems("rate_limits:\n  backend: redis\n").join("\n")).toMatch(
      /rate_limits\.backend: redis needs redis\.url/,
    );
    expect(problems("rate_limits:\n  messages_per_minute: 0\n").join("\n")).toMatch(
      /rate_limits\.messages_per_minute/,
    );
    expect(problems("rate_limits:\n  messages_per_hour: 5\n").join("\n")).toMatch(
      /rate_limits\.messages_per_hour: unknown key/,
    );
    expect(problems("redis:\n  url: http://example.com\n").join("\n")).toMatch(/redis\.url/);
  });

  it("a policy rule's rate_limit applies to the calls it allows, per sender and per tool", async () => {
    const rl = await limiter();
    const decide = policyOf({
      name: "limits.yaml",
      layer: "global",
      rules: [
        {
          id: "db-reads",
          effect: "allow",
          principals: ["alice", "bob"],
          actions: ["invoke"],
          resources: ["tool:database/*"],
          rateLimit: "2/minute",
        },
        { id: "mail", effect: "allow", principals: ["*"], actions: ["invoke"], resources: ["tool:mail/*"] },
      ],
    });
    const query = () => context("alice", "tool:database/query");
    expect(await run(rl, 3, query, decide)).toEqual([...ok(2), "RATE_LIMITED"]);
    const refusal = await rl.check(query(), decide(query()));
    expect(refusal?.details).toMatchObject({ reason: "rule_limit", rule: "db-reads" });
    // Another tool under the same rule, and another sender, are counted apart.
    expect(await run(rl, 2, () => context("alice", "tool:database/insert"), decide)).toEqual(ok(2));
    expect(await run(rl, 2, () => context("bob", "tool:database/query"), decide)).toEqual(ok(2));
    // A call no limited rule allows has only the sender's limit.
    expect(await run(rl, 5, () => context("alice", "tool:mail/send"), decide)).toEqual(ok(5));
  });

  it("an agent definition's rate_limits apply to requests for its capability", async () => {
    const record: AgentRecord = {
      id: "order-processor",
      description: "",
      definition: {
        name: "order-processor",
        capabilities: ["order-processing", "inventory-check"],
        capability_access: {
          "order-processing": { allowed_requesters: ["customer-*"] },
          "inventory-check": { allowed_requesters: ["*"] },
        },
        rate_limits: { "order-processing": "2/minute" },
      },
      serves: [],
      createdAt: 0,
      updatedAt: 0,
      deployedBy: "test",
    };
    const decide = policyOf(...agentPolicySources([record]));
    const rl = await limiter();
    const order = () => context("customer-web", "capability:order-processing");
    expect(await run(rl, 3, order, decide)).toEqual([...ok(2), "RATE_LIMITED"]);
    expect((await rl.check(order(), decide(order())))?.details.rule).toBe(
      "agent:order-processor:capability:order-processing",
    );
    expect(await run(rl, 3, () => context("customer-web", "capability:inventory-check"), decide)).toEqual(
      ok(3),
    );
    expect(await run(rl, 2, () => context("customer-app", "capability:order-processing"), decide)).toEqual(
      ok(2),
    );
  });

  it("the strictest applicable limit wins: rules only tighten, never loosen, the sender's limit", async () => {
    const rl = await limiter({ messagesPerMinute: 4 });
    const sources: PolicySource[] = [
      {
        name: "org.yaml",
        layer: "global",
        rules: [
          {
            id: "loose",
            effect: "allow",
            principals: ["*"],
            actions: ["invoke"],
            resources: ["tool:**"],
            rateLimit: "1000/minute",
          },
        ],
      },
      {
        name: "team.yaml",
        layer: "team",
        scope: "analytics",
        rules: [
          {
            id: "strict",
            effect: "allow",
            principals: ["*"],
            actions: ["invoke"],
            resources: ["tool:database/query"],
            rateLimit: "2/minute",
          },
        ],
      },
    ];
    const compiled = compilePolicy(sources);
    const outsider = createPipelinePolicy(compiled);
    const member = createPipelinePolicy(compiled, { attributesOf: () => ({ team: "analytics" }) });

    // alice is in no team: only `loose` (1000/minute) applies, and the sender's 4/minute binds.
    const seen: RateLimitStatus[] = [];
    const alice = () => context("alice", "tool:database/query", (s) => seen.push(s));
    expect(await run(rl, 5, alice, (c) => outsider.decide(c))).toEqual([...ok(4), "RATE_LIMITED"]);
    expect(seen[0]).toMatchObject({ limit: 4, remaining: 3 });

    // For a team member both rules allow: 2/minute is the strictest and refuses the third call.
    const bobSeen: RateLimitStatus[] = [];
    const bob = () => context("bob", "tool:database/query", (s) => bobSeen.push(s));
    expect(member.decide(bob()).rateLimits?.map((limit) => limit.rule)).toEqual(["loose", "strict"]);
    expect(await run(rl, 3, bob, (c) => member.decide(c))).toEqual([...ok(2), "RATE_LIMITED"]);
    expect(bobSeen.map(({ limit, remaining }) => ({ limit, remaining }))).toEqual([
      { limit: 2, remaining: 1 },
      { limit: 2, remaining: 0 },
      { limit: 2, remaining: 0 },
    ]);
  });
});

describe("keys", () => {
  it("never collide between senders, rules and targets (escaping is one-to-one)", () => {
    expect(keyPart("a:b")).toBe("a%3Ab");
    expect(keyPart("100%")).toBe("100%25");
    expect(keyPart("plain")).toBe("plain");
    expect(ruleKey("r", "a:b", "c")).not.toBe(ruleKey("r:a", "b", "c"));
    fc.assert(
      fc.property(
        fc.tuple(fc.string(), fc.string(), fc.string()),
        fc.tuple(fc.string(), fc.string(), fc.string()),
        (x, y) => {
          fc.pre(x.join("\u0000") !== y.join("\u0000"));
          return ruleKey(...x) !== ruleKey(...y);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("a sender whose id looks like another's key prefix has a count of its own", async () => {
    const rl = await limiter({ messagesPerMinute: 2 });
    await run(rl, 3, () => context("team:alice"));
    expect(await run(rl, 2, () => context("team"))).toEqual(ok(2));
    expect(await run(rl, 2, () => context("team%3Aalice"))).toEqual(ok(2));
  });
});

describe("unauthenticated requests per client address", () => {
  it("refuse an address after its limit, before its credentials are looked at, until the window ends", async () => {
    vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
    const rl = await limiter({ unauthenticatedPerMinute: 2 });
    expect(rl.refuseBlockedClient("192.0.2.1")).toBeUndefined();
    expect(await rl.countUnauthenticated("192.0.2.1")).toBeUndefined();
    expect(await rl.countUnauthenticated("192.0.2.1")).toBeUndefined();
    const over = await rl.countUnauthenticated("192.0.2.1");
    expect(over).toMatchObject({ code: "RATE_LIMITED", details: { reason: "unauthenticated_limit" } });
    expect(over!.details.retry_after_ms).toBe(60_000);
    vi.advanceTimersByTime(15_000);
    expect(rl.refuseBlockedClient("192.0.2.1")?.details.retry_after_ms).toBe(45_000);
    expect(rl.refuseBlockedClient("192.0.2.2")).toBeUndefined();
    vi.advanceTimersByTime(45_000);
    expect(rl.refuseBlockedClient("192.0.2.1")).toBeUndefined();
    expect(await rl.countUnauthenticated("192.0.2.1")).toBeUndefined();
  });
});
