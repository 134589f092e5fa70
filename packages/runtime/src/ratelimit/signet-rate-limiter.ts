// Pipeline step 8 and the transport's per-address limit: which limits apply to a call, counted where.
import { SignetError } from "@signet/protocol";
import type { Logger } from "pino";
import type { InvocationContext, PolicyDecision, RateLimitStatus, RateLimiter } from "../pipeline/hooks.js";
import type { RuleRateLimit } from "../policy/types.js";
import { type Counter, type CounterBackend, type CountResult, MemoryCounters } from "./counters.js";
import type { RateLimitSettings } from "./defaults.js";
import { clientKey, ruleKey, senderKey } from "./limit-keys.js";
import { RedisCounters } from "./redis-counters.js";

export interface RedisLimitSettings {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

const MINUTE_MS = 60_000;
/** Addresses remembered as over their limit at once; beyond it they are still counted, just not remembered. */
const MAX_BLOCKED_CLIENTS = 100_000;

/** What the transport needs to limit unauthenticated requests per client address. */
export interface ClientRateLimiter {
  /** Sync: the refusal for an address still over its limit, before its credentials are looked at. */
  refuseBlockedClient(ip: string): SignetError | undefined;
  /** Counts a failed authentication from `ip`; the refusal when that put the address over its limit. */
  countUnauthenticated(ip: string): Promise<SignetError | undefined>;
  readonly limits: { readonly unauthenticatedPerMinute: number };
}

/** A count against its limit: the binding one has the fewest calls left. */
interface Tally {
  readonly counter: Counter;
  readonly count: CountResult;
  readonly reason: string;
  readonly rule?: string;
}

function retryAfterMs(count: CountResult): number {
  return Math.max(1, Math.ceil(count.msBeforeNext));
}

function describeWindow(windowMs: number): string {
  if (windowMs === MINUTE_MS) return "minute";
  if (windowMs % 3_600_000 === 0) return windowMs === 3_600_000 ? "hour" : `${windowMs / 3_600_000} hours`;
  if (windowMs % MINUTE_MS === 0) return `${windowMs / MINUTE_MS} minutes`;
  return windowMs === 1000 ? "second" : `${windowMs / 1000} seconds`;
}

/**
 * The runtime's rate limiter. Every call that reaches step 8 is counted against each limit that applies
 * to it, and must fit all of them, so the strictest applicable limit decides:
 * - the sender's `messagesPerMinute` (key: sender);
 * - each allowing rule's `rate_limit` (policy files, and agent definitions' `rate_limits`, which compile
 *   into rules), counted per rule, sender and target tool or capability.
 * Session starts and unauthenticated requests per client address have limits of their own.
 *
 * Example: `const limiter = await createRateLimiter({ limits: DEFAULT_RATE_LIMITS, logger });`
 */
export class SignetRateLimiter implements RateLimiter, ClientRateLimiter {
  private readonly messages: Counter;
  private readonly sessions: Counter;
  private readonly unauthenticated: Counter;
  private readonly ruleCounters = new WeakMap<RuleRateLimit, Counter>();
  /** Addresses over their unauthenticated limit → when their window ends (ms since the epoch). */
  private readonly blockedClients = new Map<string, number>();

  constructor(
    private readonly backend: CounterBackend,
    readonly limits: RateLimitSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.messages = backend.counter("msg", limits.messagesPerMinute, MINUTE_MS);
    this.sessions = backend.counter("session", limits.sessionStartsPerMinute, MINUTE_MS);
    this.unauthenticated = backend.counter("unauth", limits.unauthenticatedPerMinute, MINUTE_MS);
  }

  /** Step 8: counts the call; `RATE_LIMITED` (with `retry_after_ms`) when any applicable limit is used up. */
  async check(context: InvocationContext, decision?: PolicyDecision): Promise<SignetError | undefined> {
    const sender = context.principal.id;
    const ruleLimits = decision?.rateLimits;
    let tallies: Tally[];
    if (ruleLimits === undefined || ruleLimits.length === 0) {
      // The common case: only the sender's own limit.
      const count = await this.messages.consume(senderKey(sender));
      tallies = [{ counter: this.messages, count, reason: "sender_limit" }];
    } else {
      const target = context.envelope.to;
      const pending: Promise<Tally>[] = [
        this.messages
          .consume(senderKey(sender))
          .then((count) => ({ counter: this.messages, count, reason: "sender_limit" })),
      ];
      for (const limit of ruleLimits) {
        const counter = this.ruleCounter(limit);
        pending.push(
          counter
            .consume(ruleKey(limit.rule, sender, target))
            .then((count) => ({ counter, count, reason: "rule_limit", rule: limit.rule })),
        );
      }
      tallies = await Promise.all(pending);
    }
    return this.settle(tallies, context.onRateLimit);
  }

  /**
   * Counts a session start by `sender` against `sessionStartsPerMinute`.
   *
   * Example: `const refusal = await limiter.checkSessionStart("alice"); if (refusal) throw refusal;`
   */
  async checkSessionStart(
    sender: string,
    report?: (status: RateLimitStatus) => void,
  ): Promise<SignetError | undefined> {
    const count = await this.sessions.consume(senderKey(sender));
    return this.settle([{ counter: this.sessions, count, reason: "session_start_limit" }], report);
  }

  /**
   * `RATE_LIMITED` for a client address that went over its unauthenticated limit, until its window ends.
   * Such an address is refused before its credentials are looked at, so guessing stops paying off and a
   * flood costs neither verification nor audit entries. Across instances an address is blocked on each
   * one at its first failure there after the shared count went over.
   */
  refuseBlockedClient(ip: string): SignetError | undefined {
    if (this.blockedClients.size === 0) return undefined;
    const until = this.blockedClients.get(ip);
    if (until === undefined) return undefined;
    const left = until - this.now();
    if (left <= 0) {
      this.blockedClients.delete(ip);
      return undefined;
    }
    return this.refusal(this.unauthenticated, "unauthenticated_limit", Math.ceil(left));
  }

  /** Counts a request from `ip` that failed authentication; `RATE_LIMITED` when the address is over. */
  async countUnauthenticated(ip: string): Promise<SignetError | undefined> {
    const count = await this.unauthenticated.consume(clientKey(ip));
    const refusal = this.settle([{ counter: this.unauthenticated, count, reason: "unauthenticated_limit" }]);
    if (refusal !== undefined) this.rememberBlocked(ip, retryAfterMs(count));
    return refusal;
  }

  /** The limiter's backend and whether counts are currently shared (false while Redis is down). */
  status(): { readonly backend: "memory" | "redis"; readonly shared: boolean } {
    return { backend: this.backend.kind, shared: this.backend.shared() };
  }

  /** Closes the backend (the Redis connection). */
  close(): Promise<void> {
    return this.backend.close();
  }

  private ruleCounter(limit: RuleRateLimit): Counter {
    let counter = this.ruleCounters.get(limit);
    if (counter === undefined) {
      counter = this.backend.counter("rule", limit.limit, limit.windowMs);
      this.ruleCounters.set(limit, counter);
    }
    return counter;
  }

  /** The refusal when any count is over its limit; otherwise reports the binding limit and allows. */
  private settle(
    tallies: readonly Tally[],
    report?: (status: RateLimitStatus) => void,
  ): SignetError | undefined {
    let refused: Tally | undefined;
    let binding: Tally | undefined;
    let bindingLeft = Infinity;
    for (const tally of tallies) {
      const left = tally.counter.limit - tally.count.consumedPoints;
      if (left < 0) {
        // Every refusing limit must have reset before a retry can pass: wait for the latest.
        if (refused === undefined || tally.count.msBeforeNext > refused.count.msBeforeNext) refused = tally;
      } else if (
        left < bindingLeft ||
        (left === bindingLeft && tally.counter.limit < binding!.counter.limit)
      ) {
        binding = tally;
        bindingLeft = left;
      }
    }
    if (refused !== undefined) {
      const wait = retryAfterMs(refused.count);
      report?.({ limit: refused.counter.limit, remaining: 0, resetMs: wait });
      return this.refusal(refused.counter, refused.reason, wait, refused.rule);
    }
    if (binding !== undefined) {
      report?.({
        limit: binding.counter.limit,
        remaining: bindingLeft,
        resetMs: retryAfterMs(binding.count),
      });
    }
    return undefined;
  }

  private refusal(counter: Counter, reason: string, waitMs: number, rule?: string): SignetError {
    return new SignetError(
      "RATE_LIMITED",
      `Rate limit exceeded: ${counter.limit} per ${describeWindow(counter.windowMs)}`,
      { reason, ...(rule === undefined ? {} : { rule }), retry_after_ms: Math.max(1, waitMs) },
    );
  }

  private rememberBlocked(ip: string, forMs: number): void {
    if (this.blockedClients.size >= MAX_BLOCKED_CLIENTS) {
      const now = this.now();
      for (const [address, until] of this.blockedClients)
        if (until <= now) this.blockedClients.delete(address);
      if (this.blockedClients.size >= MAX_BLOCKED_CLIENTS) return;
    }
    this.blockedClients.set(ip, this.now() + forMs);
  }
}

/**
 * Builds the rate limiter: in-process counters, or counters shared through Redis when `redis` is given
 * (failing open to in-process counters while Redis is unreachable).
 *
 * Example: `await createRateLimiter({ limits, redis: { url, keyPrefix: "signet:rl", ... }, logger })`.
 */
export async function createRateLimiter(options: {
  readonly limits: RateLimitSettings;
  readonly redis?: RedisLimitSettings;
  readonly logger: Logger;
  readonly now?: () => number;
}): Promise<SignetRateLimiter> {
  const backend =
    options.redis === undefined
      ? new MemoryCounters()
      : await RedisCounters.connect({ ...options.redis, logger: options.logger });
  return new SignetRateLimiter(backend, options.limits, options.now);
}
