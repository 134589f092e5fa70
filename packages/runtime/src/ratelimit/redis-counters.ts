// Counters shared by every runtime instance through Redis, failing open to in-process counters (the
// `insuranceLimiter` of rate-limiter-flexible) while Redis is unreachable, and back by themselves.
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";
import { type Counter, type CounterBackend, type CountResult, countOf, windowSeconds } from "./counters.js";

export interface RedisCounterOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://...`. Never logged. */
  readonly url: string;
  /** Prefix of every key (`signet:rl` → `signet:rl:msg:60s:alice`). */
  readonly keyPrefix: string;
  /** A command that takes longer fails, and the call is counted in memory instead. */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
}

/** The message logged once when an outage starts; operators and tests match on it. */
export const REDIS_UNAVAILABLE_MESSAGE = "Redis unavailable, using in-memory rate limiter";
/** The message logged once when Redis answers again. */
export const REDIS_RESTORED_MESSAGE = "Redis available again, using shared rate limits";

/**
 * Passed as rate-limiter-flexible's per-call `options`: the library hands the very same object to the
 * insurance limiter when Redis fails, which is how a call learns where it was counted.
 */
type CallMarker = { signetFellBack: boolean };

/** The in-memory insurance: counts the calls Redis could not, and marks them. */
class InsuranceLimiter extends RateLimiterMemory {
  override consume(
    key: string | number,
    pointsToConsume?: number,
    options?: Record<string, unknown>,
  ): ReturnType<RateLimiterMemory["consume"]> {
    if (options !== undefined && typeof options.signetFellBack === "boolean") options.signetFellBack = true;
    return super.consume(key, pointsToConsume, options);
  }
}

class RedisCounter implements Counter {
  constructor(
    private readonly owner: RedisCounters,
    private readonly limiter: RateLimiterRedis,
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  async consume(key: string): Promise<CountResult> {
    const marker: CallMarker = { signetFellBack: false };
    const call = this.owner.callStarted();
    const count = await this.limiter.consume(key, 1, marker).catch(countOf);
    this.owner.callEnded(call, marker.signetFellBack);
    return count;
  }
}

/**
 * Redis-backed counters (rate-limiter-flexible's RateLimiterRedis over ioredis). Commands fail fast
 * while Redis is down: no offline queue, no per-request retries, a command timeout, and
 * `rejectIfRedisNotReady`; each such call is counted by an in-memory insurance limiter instead (fail
 * open, per instance). The outage is logged once when it starts and once when it ends; ioredis
 * reconnects by itself, and the first call that reaches Redis again ends the outage.
 *
 * Example: `await RedisCounters.connect({ url, keyPrefix: "signet:rl", ..., logger })`.
 */
export class RedisCounters implements CounterBackend {
  readonly kind = "redis";
  private readonly counters = new Map<string, Counter>();
  private degraded = false;
  /** Calls are numbered; only a call that started after the last switch may switch again. */
  private calls = 0;
  private switchedAt = 0;

  private constructor(
    private readonly client: Redis,
    private readonly options: RedisCounterOptions,
  ) {
    // ioredis reports every failed (re)connection here; the outage itself is logged once, by the calls.
    client.on("error", (error: Error) => options.logger.debug({ reason: error.message }, "redis error"));
  }

  /** Opens the connection and waits for it at most `connectTimeoutMs`; a down Redis starts degraded. */
  static async connect(options: RedisCounterOptions): Promise<RedisCounters> {
    const client = new Redis(options.url, {
      enableOfflineQueue: false,
      // 0: commands in flight when the connection drops fail at once instead of waiting for a reconnect.
      maxRetriesPerRequest: 0,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
      // Concurrent calls share socket writes: the throughput comes from many calls in flight.
      enableAutoPipelining: true,
      lazyConnect: true,
    });
    const counters = new RedisCounters(client, options);
    const ready = await client.connect().then(
      () => true,
      () => false,
    );
    if (!ready) counters.enterOutage();
    return counters;
  }

  counter(scope: string, limit: number, windowMs: number): Counter {
    const seconds = windowSeconds(windowMs);
    const id = `${scope}:${seconds}s:${limit}`;
    let counter = this.counters.get(id);
    if (counter === undefined) {
      const keyPrefix = `${this.options.keyPrefix}:${scope}:${seconds}s`;
      const limiter = new RateLimiterRedis({
        storeClient: this.client,
        keyPrefix,
        points: limit,
        duration: seconds,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new InsuranceLimiter({ keyPrefix, points: limit, duration: seconds }),
      });
      counter = new RedisCounter(this, limiter, limit, windowMs);
      this.counters.set(id, counter);
    }
    return counter;
  }

  shared(): boolean {
    return !this.degraded;
  }

  /** @internal Numbers a call before it goes out. */
  callStarted(): number {
    return ++this.calls;
  }

  /** @internal Switches state when a call that started after the last switch saw the other side. */
  callEnded(call: number, fellBack: boolean): void {
    if (fellBack === this.degraded || call <= this.switchedAt) return;
    if (fellBack) this.enterOutage();
    else {
      this.degraded = false;
      this.switchedAt = this.calls;
      this.options.logger.info(REDIS_RESTORED_MESSAGE);
    }
  }

  private enterOutage(): void {
    this.degraded = true;
    this.switchedAt = this.calls;
    this.options.logger.warn(REDIS_UNAVAILABLE_MESSAGE);
  }

  async close(): Promise<void> {
    this.counters.clear();
    // QUIT when connected; a down connection is just dropped (no reconnecting afterwards either way).
    if (this.client.status === "ready") await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}
