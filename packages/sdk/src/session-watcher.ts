// SessionLifecycleWatcher: the SSE watch stream as an async iterator that resumes by itself after a
// dropped connection, from the last event it yielded, yielding every event once and in order.
import { SESSION_ID_PATTERN } from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import { type ClientChannel, type SignetClient, clientChannel } from "./client.js";
import { checkAuth } from "./connection.js";
import { InvalidSessionIdError, SdkError, errorFromWire, isProtocolError } from "./errors.js";
import { type StreamResponse, abortedError } from "./http-transport.js";
import { SseParser } from "./sse-parser.js";
import { type SessionEvent, readSessionEvent } from "./session-wire.js";

/** How a watcher waits between connection attempts: `min(initialDelayMs·2^n, maxDelayMs)`, less jitter. */
export interface WatchReconnectOptions {
  /** The first wait after a failure, in ms. Default 500. */
  readonly initialDelayMs?: number;
  /** The longest wait, in ms. Default 30 000. */
  readonly maxDelayMs?: number;
  /**
   * The fraction (0 to 1) of each wait removed at random, so that watchers dropped together (a runtime
   * restart) do not all come back together. Default 0.2.
   */
  readonly jitter?: number;
}

/** Options for {@link SessionLifecycleWatcher}. */
export interface SessionWatchOptions {
  /** Only this session's events (the caller must be allowed to see it). Default: every visible session. */
  readonly sessionId?: string;
  /**
   * Resume after this event id (a cursor kept from {@link SessionLifecycleWatcher.lastEventId}); `0`
   * replays the whole history. Default: the events after the latest one when the stream opens.
   */
  readonly lastEventId?: number;
  /** Stops the watcher: the iteration throws `SdkError` (reason `aborted`). */
  readonly signal?: AbortSignal;
  readonly reconnect?: WatchReconnectOptions;
  /** The credential for the stream (needs `session:watch`). Default: the client's. */
  readonly auth?: AuthConfig;
  /**
   * The longest silence (not even a heartbeat) before the connection counts as dead and is reopened, in
   * ms. Default 45 000: three of the runtime's default 15 s heartbeats.
   */
  readonly idleTimeoutMs?: number;
}

const DEFAULT_INITIAL_DELAY_MS = 500;
const DEFAULT_MAX_DELAY_MS = 30_000;
const DEFAULT_JITTER = 0.2;
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
const MAX_DELAY_LIMIT_MS = 3_600_000;
// A connection that stayed up this long was healthy: the next failure starts the backoff afresh.
const HEALTHY_CONNECTION_MS = 5_000;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

function checkMs(value: number | undefined, fallback: number, name: string, min: number): number {
  const ms = value ?? fallback;
  if (!Number.isSafeInteger(ms) || ms < min || ms > MAX_DELAY_LIMIT_MS) {
    throw new SdkError(`${name} must be an integer from ${min} to ${MAX_DELAY_LIMIT_MS}`, {
      reason: "watch",
    });
  }
  return ms;
}

function isRetryable(error: unknown): boolean {
  if (isProtocolError(error)) return error.retryable;
  return error instanceof SdkError && error.retryable;
}

/**
 * Watches session lifecycle events (`CREATED`, `MESSAGE_ACCEPTED`, `RESOLVED`, `EXPIRED`, `CANCELLED`)
 * over `GET /v1/sessions/watch`. When the connection drops — a network failure, the runtime closing the
 * stream, a silence past `idleTimeoutMs`, a retryable refusal — it reconnects after a bounded backoff,
 * sending `Last-Event-ID` with the last event it yielded; it drops any event at or below that id, so an
 * event is never yielded twice, and never skips one (a half-received event is discarded and received
 * again). A permanent refusal (`ForbiddenError` without `session:watch`, `SessionNotFoundError`, ...)
 * ends the iteration with that error. One consumer per watcher; `close()` (or leaving the loop) ends it.
 *
 * Example:
 * ```ts
 * const watcher = new SessionLifecycleWatcher(client, { sessionId: session.id, lastEventId: 0 });
 * for await (const event of watcher) {
 *   if (event.type === "RESOLVED") { console.log(event.data.outcome); break; }
 * }
 * saveCursor(watcher.lastEventId); // resume from here later
 * ```
 */
export class SessionLifecycleWatcher implements AsyncIterable<SessionEvent> {
  readonly sessionId: string | undefined;
  readonly #client: ClientChannel;
  readonly #auth: AuthConfig;
  readonly #signal: AbortSignal | undefined;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #jitter: number;
  readonly #idleTimeoutMs: number;
  /** Aborted by close(): ends the connection and any wait. */
  readonly #stop = new AbortController();
  #cursor: number | undefined;
  #closed = false;
  #iterating = false;

  constructor(client: SignetClient, options: SessionWatchOptions = {}) {
    this.#client = clientChannel(client);
    const { sessionId, lastEventId } = options;
    if (sessionId !== undefined && (typeof sessionId !== "string" || !SESSION_ID_PATTERN.test(sessionId))) {
      throw new InvalidSessionIdError(undefined, { reason: "format" });
    }
    this.sessionId = sessionId;
    if (lastEventId !== undefined && !(Number.isSafeInteger(lastEventId) && lastEventId >= 0)) {
      throw new SdkError("lastEventId must be a non-negative integer", { reason: "watch" });
    }
    this.#cursor = lastEventId;
    if (options.auth !== undefined) checkAuth(options.auth, this.#client.connection);
    this.#auth = options.auth ?? this.#client.auth;
    this.#signal = options.signal;
    this.#initialDelayMs = checkMs(
      options.reconnect?.initialDelayMs,
      DEFAULT_INITIAL_DELAY_MS,
      "reconnect.initialDelayMs",
      1,
    );
    this.#maxDelayMs = checkMs(
      options.reconnect?.maxDelayMs,
      DEFAULT_MAX_DELAY_MS,
      "reconnect.maxDelayMs",
      1,
    );
    if (this.#maxDelayMs < this.#initialDelayMs) {
      throw new SdkError("reconnect.maxDelayMs must be at least initialDelayMs", { reason: "watch" });
    }
    const jitter = options.reconnect?.jitter ?? DEFAULT_JITTER;
    if (typeof jitter !== "number" || !(jitter >= 0 && jitter <= 1)) {
      throw new SdkError("reconnect.jitter must be a number from 0 to 1", { reason: "watch" });
    }
    this.#jitter = jitter;
    this.#idleTimeoutMs = checkMs(options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, "idleTimeoutMs", 1);
  }

  /**
   * The id of the last event yielded (or the resume point the runtime named), to resume from later with
   * `lastEventId`; undefined before the first.
   */
  get lastEventId(): number | undefined {
    return this.#cursor;
  }

  /** Whether the watcher has ended (closed, aborted, failed, or its loop was left). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Ends the watcher: the connection closes and a pending or later `next()` finishes the iteration
   * (`done`), without an error.
   *
   * Example: `setTimeout(() => watcher.close(), 60_000)`.
   */
  close(): void {
    this.#closed = true;
    this.#stop.abort(new SdkError("The watcher was closed", { reason: "closed" }));
  }

  [Symbol.asyncIterator](): AsyncIterator<SessionEvent> {
    if (this.#iterating) {
      throw new SdkError("A watcher has one consumer; create another to watch twice", { reason: "watch" });
    }
    this.#iterating = true;
    return this.#events();
  }

  async *#events(): AsyncGenerator<SessionEvent, void, undefined> {
    let failures = 0;
    try {
      while (!this.#closed) {
        this.#throwIfAborted();
        const connection = AbortSignal.any(
          this.#signal === undefined ? [this.#stop.signal] : [this.#stop.signal, this.#signal],
        );
        const openedAt = Date.now();
        let progressed = false;
        let retryAfterMs = 0;
        let stream: StreamResponse | undefined;
        try {
          stream = await this.#open(connection);
          const parser = new SseParser();
          for await (const chunk of stream.body) {
            for (const raw of parser.push(chunk)) {
              const event = readSessionEvent(raw.data, raw.lastEventId);
              if (this.#cursor !== undefined && event.id <= this.#cursor) continue; // already yielded
              this.#cursor = event.id;
              progressed = true;
              // The runtime filters by session; an event of another one is passed over, not trusted.
              if (this.sessionId !== undefined && event.session_id !== this.sessionId) continue;
              yield event;
              if (this.#closed) return;
            }
            // An `id:` with no data moves the resume point without an event: adopt it, once every
            // event before it in the stream has been yielded (they all have, at this point).
            const named = /^[0-9]{1,15}$/.test(parser.lastEventId) ? Number(parser.lastEventId) : undefined;
            if (named !== undefined && (this.#cursor === undefined || named > this.#cursor)) {
              this.#cursor = named;
            }
          }
          // The runtime ended the stream (a restart, a slow consumer): resume where it left off.
        } catch (error) {
          if (this.#closed) return;
          this.#throwIfAborted(error);
          if (!isRetryable(error)) throw error;
          if (isProtocolError(error)) retryAfterMs = error.details.retry_after_ms ?? 0;
        } finally {
          stream?.destroy();
        }
        if (progressed || Date.now() - openedAt >= HEALTHY_CONNECTION_MS) failures = 0;
        // Bounded: a runtime asking for a longer wait (retry_after_ms) is still retried at maxDelayMs.
        await this.#wait(
          Math.min(Math.max(this.#backoffMs(failures), Math.ceil(retryAfterMs)), this.#maxDelayMs),
        );
        failures += 1;
      }
    } finally {
      this.#closed = true;
      this.#stop.abort();
    }
  }

  async #open(signal: AbortSignal): Promise<StreamResponse> {
    const query = this.sessionId === undefined ? "" : `?session=${encodeURIComponent(this.sessionId)}`;
    const stream = await this.#client.transport.stream({
      path: `v1/sessions/watch${query}`,
      auth: this.#auth,
      accept: "text/event-stream",
      headers: {
        "cache-control": "no-cache",
        ...(this.#cursor === undefined ? {} : { "last-event-id": String(this.#cursor) }),
      },
      signal,
      idleTimeoutMs: this.#idleTimeoutMs,
    });
    if (stream.status !== 200) {
      throw errorFromWire(await stream.text(MAX_ERROR_BODY_BYTES), stream.status);
    }
    if (!/^text\/event-stream\s*(;|$)/i.test(stream.contentType)) {
      stream.destroy();
      throw new SdkError("The watch answer is not an event stream", { reason: "bad_response" });
    }
    return stream;
  }

  #backoffMs(failures: number): number {
    const exponential = Math.min(this.#initialDelayMs * 2 ** Math.min(failures, 32), this.#maxDelayMs);
    return Math.round(exponential * (1 - this.#jitter * Math.random()));
  }

  /** Waits `ms`; returns early when closed, and throws when the caller's signal aborts. */
  async #wait(ms: number): Promise<void> {
    const stop = this.#stop.signal;
    const signal = this.#signal;
    if (stop.aborted) return;
    this.#throwIfAborted();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        stop.removeEventListener("abort", done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.addEventListener("abort", done, { once: true });
      signal?.addEventListener("abort", done, { once: true });
    });
    this.#throwIfAborted();
  }

  #throwIfAborted(cause?: unknown): void {
    if (this.#signal?.aborted === true && !this.#closed) throw abortedError(this.#signal, cause);
  }
}
