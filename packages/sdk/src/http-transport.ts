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
      throw transportError(error, timeout);
    }
  }

  /** Closes pooled connections. Requests after this fail with `SdkError` (reason `closed`). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.closeConnections();
  }

  /** Closes pooled connections but stays usable: the next request opens a new one. */
  async closeConnections(): Promise<void> {
    const dispatchers = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(dispatchers.map((dispatcher) => dispatcher.close()));
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
function transportError(error: unknown, signal: AbortSignal): Error {
  if (error instanceof SdkError) return error;
  if (
    signal.aborted ||
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
