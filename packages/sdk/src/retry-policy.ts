// RetryPolicy: which failures may be retried with the identical envelope, and how long to wait first.
import { ERROR_CODES, type ErrorCode, isErrorCode } from "@signet/protocol";
import { SdkError, isProtocolError } from "./errors.js";

/** Options for {@link RetryPolicy}. Every field has the MACP default when omitted. */
export interface RetryPolicyOptions {
  /** Retries after the first attempt. Default 3; 0 disables retries. */
  readonly maxRetries?: number;
  /** The first backoff, in ms; it doubles per retry. Default 100. */
  readonly backoffBaseMs?: number;
  /** The largest backoff, in ms. Default 2000. */
  readonly backoffMaxMs?: number;
  /**
   * The fraction (0 to 1) of each backoff that may be removed at random, so that many clients failing
   * together do not retry together. Default 0: exactly `min(base·2^n, max)`, as MACP specifies. Fleets
   * of callers should set it (0.2 to 0.5). It never shortens a runtime's `retry_after_ms`.
   */
  readonly jitter?: number;
  /**
   * The wire codes to retry. Default: every code the registry marks retryable. Only those codes may be
   * listed — a permanent code (`FORBIDDEN`, `POLICY_DENIED`, `SIGNATURE_INVALID`, ...) gets the same
   * answer every time, so retrying it is refused when the policy is built.
   */
  readonly retryableCodes?: Iterable<ErrorCode>;
  /**
   * The longest `retry_after_ms` worth waiting for, in ms. Default 30 000. A runtime asking for more is
   * not waited on: its `RateLimitedError` is thrown so the caller can decide (queue the work, give up).
   */
  readonly maxRetryAfterMs?: number;
  /** Whether local failures marked retryable (network errors, a request timing out) are retried. Default true. */
  readonly retryNetworkErrors?: boolean;
  /** The random source for jitter, in [0, 1). Default `Math.random`; tests pass a fixed one. */
  readonly random?: () => number;
}

/** The codes the registry marks retryable, in registry order. */
export const REGISTRY_RETRYABLE_CODES: readonly ErrorCode[] = (
  Object.keys(ERROR_CODES) as ErrorCode[]
).filter((code) => ERROR_CODES[code].retryable);

function checkInteger(value: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SdkError(`${name} must be an integer from ${min} to ${max}`, { reason: "retry_policy" });
  }
  return value;
}

/**
 * When and how to retry. A retry always re-sends the identical signed envelope (same id, nonce, time
 * and signature), which the runtime recognizes and never executes twice: a retry of a call that did run
 * gets the original result, marked `duplicate`. The policy itself holds no state and can be shared.
 *
 * Example:
 * ```ts
 * const client = new SignetClient({ ..., retryPolicy: new RetryPolicy({ maxRetries: 5, jitter: 0.3 }) });
 * new RetryPolicy().backoffMs(0); // 100, then 200, 400, 800, 1600, 2000, 2000, ...
 * ```
 */
export class RetryPolicy {
  /** The MACP defaults: 3 retries, `min(100·2^n, 2000)` ms, the registry's retryable codes. */
  static readonly DEFAULT = new RetryPolicy();
  /** A policy that never retries. */
  static readonly NONE = new RetryPolicy({ maxRetries: 0 });

  readonly maxRetries: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly jitter: number;
  readonly maxRetryAfterMs: number;
  readonly retryNetworkErrors: boolean;
  readonly retryableCodes: ReadonlySet<ErrorCode>;
  readonly #random: () => number;

  constructor(options: RetryPolicyOptions = {}) {
    this.maxRetries = checkInteger(options.maxRetries ?? 3, "maxRetries", 0, 100);
    this.backoffBaseMs = checkInteger(options.backoffBaseMs ?? 100, "backoffBaseMs", 0, 3_600_000);
    this.backoffMaxMs = checkInteger(options.backoffMaxMs ?? 2000, "backoffMaxMs", 0, 3_600_000);
    if (this.backoffMaxMs < this.backoffBaseMs) {
      throw new SdkError("backoffMaxMs must be at least backoffBaseMs", { reason: "retry_policy" });
    }
    const jitter = options.jitter ?? 0;
    if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
      throw new SdkError("jitter must be a number from 0 to 1", { reason: "retry_policy" });
    }
    this.jitter = jitter;
    this.maxRetryAfterMs = checkInteger(options.maxRetryAfterMs ?? 30_000, "maxRetryAfterMs", 0, 3_600_000);
    this.retryNetworkErrors = options.retryNetworkErrors ?? true;
    const codes = new Set<ErrorCode>();
    for (const code of options.retryableCodes ?? REGISTRY_RETRYABLE_CODES) {
      if (!isErrorCode(code)) {
        throw new SdkError(`${String(code)} is not a registry code`, { reason: "retry_policy" });
      }
      if (!ERROR_CODES[code].retryable) {
        throw new SdkError(`${code} is permanent: retrying it gets the same answer`, {
          reason: "retry_policy",
        });
      }
      codes.add(code);
    }
    this.retryableCodes = codes;
    this.#random = options.random ?? Math.random;
  }

  /**
   * The backoff before retry number `retry` (0 for the first retry): `min(base·2^retry, max)`, less up to
   * `jitter` of it at random.
   *
   * Example: `new RetryPolicy().backoffMs(2)` → 400.
   */
  backoffMs(retry: number): number {
    const exponential = Math.min(this.backoffBaseMs * 2 ** Math.min(retry, 52), this.backoffMaxMs);
    if (this.jitter === 0) return exponential;
    return Math.round(exponential * (1 - this.jitter * this.#random()));
  }

  /** Whether an error may be retried at all under this policy (ignoring how many retries are left). */
  isRetryable(error: unknown): boolean {
    if (isProtocolError(error)) return this.retryableCodes.has(error.code);
    return error instanceof SdkError && error.retryable && this.retryNetworkErrors;
  }

  /**
   * How long to wait before retry number `retry` after `error`, or undefined when it must not be
   * retried: a permanent code, no retries left, or a `retry_after_ms` beyond `maxRetryAfterMs`. The
   * wait is the backoff, or the runtime's `retry_after_ms` when that is longer.
   *
   * Example: `policy.delayBeforeRetry(0, new RateLimitedError(undefined, { retry_after_ms: 750 }))` → 750.
   */
  delayBeforeRetry(retry: number, error: unknown): number | undefined {
    if (retry >= this.maxRetries || !this.isRetryable(error)) return undefined;
    const backoff = this.backoffMs(retry);
    // RATE_LIMITED carries it by contract; any other code that names one is honoured too.
    const retryAfter = isProtocolError(error) ? error.details.retry_after_ms : undefined;
    if (retryAfter === undefined) return backoff;
    if (retryAfter > this.maxRetryAfterMs) return undefined;
    return Math.max(backoff, Math.ceil(retryAfter));
  }
}
