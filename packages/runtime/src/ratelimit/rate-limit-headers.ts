// The rate-limit response headers, from a limit's status: what a client needs to pace itself.
import type { RateLimitStatus } from "../pipeline/hooks.js";

/**
 * `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds until the binding
 * limit's window resets). A refusal's `retry-after` comes from its `retry_after_ms` (http/errors.ts).
 *
 * Example: `reply.headers(rateLimitHeaders({ limit: 600, remaining: 599, resetMs: 60_000 }))`.
 */
export function rateLimitHeaders(status: RateLimitStatus): Record<string, number> {
  return {
    "x-ratelimit-limit": status.limit,
    "x-ratelimit-remaining": status.remaining,
    "x-ratelimit-reset": Math.max(1, Math.ceil(status.resetMs / 1000)),
  };
}
