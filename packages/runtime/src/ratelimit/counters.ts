// Fixed-window counters behind one small interface, and the in-process backend (rate-limiter-flexible's
// RateLimiterMemory). The Redis backend (redis-counters.ts) has the same shape.
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";

/** One call counted: how many calls the key has in its current window, and when that window ends. */
export interface CountResult {
  readonly consumedPoints: number;
  /** Milliseconds until the key's window resets. */
  readonly msBeforeNext: number;
}

/** Counts calls per key against `limit` per `windowMs`. The window starts at a key's first call. */
export interface Counter {
  readonly limit: number;
  readonly windowMs: number;
  /** Counts one call. Resolves with the count whether or not it is over the limit. */
  consume(key: string): Promise<CountResult>;
}

/** Where counters live. `scope` names what is counted (`msg`, `rule`, ...) and keeps key spaces apart. */
export interface CounterBackend {
  readonly kind: "memory" | "redis";
  counter(scope: string, limit: number, windowMs: number): Counter;
  /** Whether counts are currently shared across instances (Redis reachable). */
  shared(): boolean;
  close(): Promise<void>;
}

/** rate-limiter-flexible rejects an over-limit call with its RateLimiterRes: that is a count, not an error. */
export function countOf(outcome: unknown): CountResult {
  if (outcome instanceof RateLimiterRes) return outcome;
  throw outcome;
}

/** rate-limiter-flexible counts in whole seconds; parsed windows always are. */
export function windowSeconds(windowMs: number): number {
  return Math.max(1, Math.ceil(windowMs / 1000));
}

class MemoryCounter implements Counter {
  private readonly limiter: RateLimiterMemory;

  constructor(
    keyPrefix: string,
    readonly limit: number,
    readonly windowMs: number,
  ) {
    this.limiter = new RateLimiterMemory({ keyPrefix, points: limit, duration: windowSeconds(windowMs) });
  }

  consume(key: string): Promise<CountResult> {
    return this.limiter.consume(key).catch(countOf);
  }
}

/**
 * Counters in this process: the embedded default. Each (scope, limit, window) gets one limiter, made on
 * first use and kept (there are as many as distinct limits in config and policy).
 *
 * Example: `new MemoryCounters().counter("msg", 600, 60_000).consume("alice")`.
 */
export class MemoryCounters implements CounterBackend {
  readonly kind = "memory";
  private readonly counters = new Map<string, Counter>();

  counter(scope: string, limit: number, windowMs: number): Counter {
    const id = `${scope}:${windowSeconds(windowMs)}s:${limit}`;
    let counter = this.counters.get(id);
    if (counter === undefined) {
      counter = new MemoryCounter(`${scope}:${windowSeconds(windowMs)}s`, limit, windowMs);
      this.counters.set(id, counter);
    }
    return counter;
  }

  shared(): boolean {
    return false;
  }

  async close(): Promise<void> {
    this.counters.clear();
  }
}
