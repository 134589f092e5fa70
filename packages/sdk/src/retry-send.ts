// The retry loop: the identical signed envelope again, after the policy's wait, within the call's budget.
import type { SignedEnvelope } from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import type { SignetClient, SubmitResponse } from "./client.js";
import { SdkError } from "./errors.js";
import { abortedError } from "./http-transport.js";
import type { RetryPolicy } from "./retry-policy.js";

/** What {@link RetrySendOptions.onRetry} is told before each wait. */
export interface RetryEvent {
  /** Which retry is about to happen (1 for the first). */
  readonly retry: number;
  /** How long the SDK waits before it, in ms. */
  readonly delayMs: number;
  /** The failure that caused it. */
  readonly error: Error;
}

/** The budget of a call that may span several attempts. */
export interface CallBudget {
  /** Cancels the call, including any wait between attempts (`SdkError`, reason `aborted`). */
  readonly signal?: AbortSignal;
  /** The whole call's time limit in ms, attempts and waits included (`SdkError`, reason `timeout`). */
  readonly timeoutMs?: number;
}

/** Options of {@link retrySend}. */
export interface RetrySendOptions extends CallBudget {
  /** Default: the client's `retryPolicy`. */
  readonly policy?: RetryPolicy;
  /** A credential for these sends only; its `expectedSender` must be the envelope's sender. */
  readonly auth?: AuthConfig;
  /** Told about every retry before its wait (for logs and metrics). */
  readonly onRetry?: (event: RetryEvent) => void;
}

/** One attempt's share of the budget: the caller's signal and what is left of the time limit. */
export interface AttemptBudget {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** Waits `ms`, or rejects with `SdkError` (reason `aborted`) as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(abortedError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, the policy says stop, the budget runs out or the signal aborts, and
 * returns its value with the number of attempts made. The error thrown is the last attempt's.
 *
 * Example: `const { value, attempts } = await runWithRetries((b) => client.submit(wire, b), { policy })`.
 */
export async function runWithRetries<T>(
  attempt: (budget: AttemptBudget) => Promise<T>,
  options: CallBudget & { readonly policy: RetryPolicy; readonly onRetry?: (event: RetryEvent) => void },
): Promise<{ value: T; attempts: number }> {
  const { policy, signal } = options;
  if (
    options.timeoutMs !== undefined &&
    !(Number.isSafeInteger(options.timeoutMs) && options.timeoutMs > 0)
  ) {
    throw new SdkError("timeoutMs must be a positive integer", { reason: "timeout" });
  }
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  for (let retry = 0; ; retry += 1) {
    const remaining = deadline === undefined ? undefined : deadline - Date.now();
    if (remaining !== undefined && remaining <= 0) {
      throw new SdkError("The call's time limit passed", { reason: "timeout", retryable: true });
    }
    try {
      const value = await attempt({
        ...(signal === undefined ? {} : { signal }),
        ...(remaining === undefined ? {} : { timeoutMs: remaining }),
      });
      return { value, attempts: retry + 1 };
    } catch (error) {
      if (signal?.aborted === true) throw error instanceof SdkError ? error : abortedError(signal, error);
      const delayMs = policy.delayBeforeRetry(retry, error);
      if (delayMs === undefined) throw error;
      // A wait that would end past the deadline cannot lead to an answer in time.
      if (deadline !== undefined && Date.now() + delayMs >= deadline) throw error;
      options.onRetry?.({ retry: retry + 1, delayMs, error: error as Error });
      await sleep(delayMs, signal);
    }
  }
}

/**
 * Sends a signed envelope and retries it under a policy — always the identical bytes, so the runtime's
 * idempotency guarantees the call runs at most once however many attempts it takes. Retries only the
 * codes the policy allows (never a permanent one) and waits at least the runtime's `retry_after_ms`.
 * The answer is verified as in `client.submit`; `attempts` says how many sends it took.
 *
 * Example:
 * ```ts
 * const envelope = await client.buildEnvelope("tool:payments/refund", { order: 42 });
 * await saveForLater(envelope.wire); // survive a crash: the same bytes can be sent again after it
 * const { result, duplicate } = await retrySend(client, envelope, { policy: new RetryPolicy({ maxRetries: 5 }) });
 * ```
 */
export async function retrySend(
  client: SignetClient,
  envelope: SignedEnvelope | string,
  options: RetrySendOptions = {},
): Promise<SubmitResponse> {
  const wire = typeof envelope === "string" ? envelope : envelope.wire;
  const { value, attempts } = await runWithRetries(
    (budget) =>
      client.submit(wire, { ...(options.auth === undefined ? {} : { auth: options.auth }), ...budget }),
    {
      policy: options.policy ?? client.retryPolicy,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
    },
  );
  return { ...value, attempts };
}
