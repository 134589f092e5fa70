// HTTP to the runtime over undici: pinned TLS settings, credentials per call, bounded responses.
import { Agent as Dispatcher, errors as undiciErrors, request } from "undici";
import type { AuthConfig } from "./auth-config.js";
import { type ResolvedConnection, endpointUrl, isTlsFailure, tlsOptions } from "./connection.js";
import { SdkError } from "./errors.js";

/** A response read in full (status and UTF-8 text). */
export interface HttpResponse {
  readonly status: number;
  readonly text: string;
}

/** One request: method, path under the base URL, the credential, and an optional JSON body. */
export interface HttpRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly auth: AuthConfig;
  readonly body?: string;
  /** The largest response accepted; a bigger one is refused unread. */
  readonly maxResponseBytes: number;
  /** Cancels the request (the caller gave up): `SdkError` with reason `aborted`. */
  readonly signal?: AbortSignal;
  /** A deadline shorter than the connection's `timeoutMs`, in ms (the rest of a call's budget). */
  readonly timeoutMs?: number;
}

/** A streaming GET: the credential, what to accept, extra headers, and how long silence may last. */
export interface StreamRequest {
  /** The path under the base URL, query included. */
  readonly path: string;
  readonly auth: AuthConfig;
  /** The `accept` header (`text/event-stream`). */
  readonly accept: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Ends the request, including the body being read (`SdkError`, reason `aborted`). */
  readonly signal: AbortSignal;
  /** The longest silence between two chunks before the connection counts as dead, in ms. */
  readonly idleTimeoutMs: number;
}

/** A response whose body is still arriving. */
export interface StreamResponse {
  readonly status: number;
  /** The `content-type` header, or `""`. */
  readonly contentType: string;
  /** The body's chunks as they arrive; read it once. Errors are mapped as for a request. */
  readonly body: AsyncIterable<Buffer>;
  /** Reads the body (an error answer) as text, at most `maxBytes` of it, and releases the connection. */
  text(maxBytes: number): Promise<string>;
  /** Releases the connection without reading further. */
  destroy(): void;
}

// One dispatcher per client certificate: the certificate is part of the TLS session, so calls with a
// different mTLS credential must not share pooled connections.
const DEFAULT_IDENTITY = Symbol("connection certificate");

/**
 * Sends requests to the runtime. Redirects are never followed (a credential must not be replayed to
 * another origin), TLS is at least 1.2 with verification on, and each request has a deadline.
 *
 * Example: `await transport.request({ method: "GET", path: "v1/health", auth, maxResponseBytes: 4096 })`.
 */
export class HttpTransport {
  readonly #dispatchers = new Map<AuthConfig | typeof DEFAULT_IDENTITY, Dispatcher>();
  /** Streams still open: a dispatcher waits for its requests to finish, and a stream never does. */
  readonly #streams = new Set<AbortController>();
  #closed = false;

  constructor(private readonly connection: ResolvedConnection) {}

  async request(input: HttpRequest): Promise<HttpResponse> {
    if (this.#closed) throw new SdkError("The client is closed", { reason: "closed" });
    const url = endpointUrl(this.connection, input.path);
    const headers: Record<string, string> = { accept: "application/json", ...input.auth.headers() };
    if (input.body !== undefined) headers["content-type"] = "application/json";
    if (input.signal?.aborted === true) throw abortedError(input.signal);
    const timeoutMs = Math.max(1, Math.min(this.connection.timeoutMs, input.timeoutMs ?? Infinity));
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = input.signal === undefined ? timeout : AbortSignal.any([timeout, input.signal]);
    try {
      const response = await request(url, {
        method: input.method,
        headers,
        body: input.body,
        dispatcher: this.#dispatcher(input.auth),
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > input.maxResponseBytes) {
        response.body.destroy();
        throw new SdkError("The runtime's response is too large", { reason: "response_too_large" });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > input.maxResponseBytes) {
          response.body.destroy();
          throw new SdkError("The runtime's response is too large", { reason: "response_too_large" });
        }
        chunks.push(chunk);
      }
      return { status: response.statusCode, text: Buffer.concat(chunks).toString("utf8") };
    } catch (error) {
      // Read again after the await: the caller may have aborted while the request was on its way.
      if (isAborted(input.signal)) throw abortedError(input.signal!, error);
      throw transportError(error, timeout.aborted);
    }
  }

  /**
   * Opens a long-lived response (an event stream) and hands its body over as it arrives. There is no
   * overall deadline: the connection's `timeoutMs` bounds the wait for the headers, and `idleTimeoutMs`
   * the silence between two chunks. Failures while reading are mapped like {@link request}'s.
   *
   * Example: `const stream = await transport.stream({ path: "v1/sessions/watch", auth, accept: "text/event-stream", signal, idleTimeoutMs: 45_000 })`.
   */
  async stream(input: StreamRequest): Promise<StreamResponse> {
    if (this.#closed) throw new SdkError("The client is closed", { reason: "closed" });
    const url = endpointUrl(this.connection, input.path);
    const headers: Record<string, string> = {
      ...input.headers,
      accept: input.accept,
      ...input.auth.headers(),
    };
    if (input.signal.aborted) throw abortedError(input.signal);
    const local = new AbortController();
    const signal = AbortSignal.any([input.signal, local.signal]);
    const failure = (error: unknown): Error => {
      if (input.signal.aborted) return abortedError(input.signal, error);
      if (local.signal.aborted) return local.signal.reason as SdkError;
      return transportError(error, false);
    };
    const streams = this.#streams;
    streams.add(local);
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, {
        method: "GET",
        headers,
        dispatcher: this.#dispatcher(input.auth),
        signal,
        headersTimeout: this.connection.timeoutMs,
        bodyTimeout: input.idleTimeoutMs,
      });
    } catch (error) {
      streams.delete(local);
      throw failure(error);
    }
    const body = response.body;
    const contentType = response.headers["content-type"];
    body.once("close", () => streams.delete(local));
    async function* chunks(): AsyncGenerator<Buffer, void, undefined> {
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) yield chunk;
      } catch (error) {
        throw failure(error);
      } finally {
        body.destroy();
      }
    }
    return {
      status: response.statusCode,
      contentType: typeof contentType === "string" ? contentType : "",
      body: chunks(),
      async text(maxBytes: number): Promise<string> {
        const parts: Buffer[] = [];
        let size = 0;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > maxBytes) break;
            parts.push(chunk);
          }
        } catch {
          // An error answer cut short is still read as far as it went.
        } finally {
          body.destroy();
        }
        return Buffer.concat(parts).toString("utf8");
      },
      destroy(): void {
        body.destroy();
      },
    };
  }

  /** Closes pooled connections. Requests after this fail with `SdkError` (reason `closed`). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#endStreams(new SdkError("The client is closed", { reason: "closed" }));
    await this.closeConnections();
  }

  /** Closes pooled connections but stays usable: the next request opens a new one. */
  async closeConnections(): Promise<void> {
    // An open stream would hold its dispatcher open forever; its reader may reconnect (retryable).
    this.#endStreams(new SdkError("The connection was closed", { reason: "network", retryable: true }));
    const dispatchers = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.close()));
  }

  #endStreams(reason: SdkError): void {
    for (const stream of this.#streams) stream.abort(reason);
    this.#streams.clear();
  }

  #dispatcher(auth: AuthConfig): Dispatcher {
    const identity = auth.clientCertificate === undefined ? DEFAULT_IDENTITY : auth;
    let dispatcher = this.#dispatchers.get(identity);
    if (dispatcher === undefined) {
      dispatcher = new Dispatcher({
        connect: tlsOptions(this.connection, auth),
        connectTimeout: this.connection.timeoutMs,
        headersTimeout: this.connection.timeoutMs,
        bodyTimeout: this.connection.timeoutMs,
      });
      this.#dispatchers.set(identity, dispatcher);
    }
    return dispatcher;
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** The caller cancelled: not retryable, since the caller asked to stop. */
export function abortedError(signal: AbortSignal, cause: unknown = signal.reason): SdkError {
  return new SdkError("The call was aborted", { reason: "aborted", cause });
}

/**
 * Local failures to reach the runtime. They are retryable: re-sending the identical envelope is safe,
 * because the runtime never executes one message twice. Certificate failures are not: they will not
 * fix themselves, and retrying against a possible impostor achieves nothing.
 */
function transportError(error: unknown, timedOut: boolean): Error {
  if (error instanceof SdkError) return error;
  if (
    timedOut ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError
  ) {
    return new SdkError("The runtime did not answer in time", {
      reason: "timeout",
      retryable: true,
      cause: error,
    });
  }
  if (isTlsFailure(error)) {
    return new SdkError("The runtime's TLS certificate could not be verified", {
      reason: "tls",
      cause: error,
    });
  }
  return new SdkError("Could not reach the runtime", { reason: "network", retryable: true, cause: error });
}
