// Connection settings shared by SignetClient and Agent: where the runtime is, and how to reach it safely.
import type { ConnectionOptions as TlsConnectionOptions } from "node:tls";
import type { AuthConfig, ClientCertificate } from "./auth-config.js";
import { SdkError } from "./errors.js";

/** How to reach the runtime. Every security-relevant choice is explicit; the default is TLS. */
export interface ConnectionOptions {
  /** The runtime: a URL (`https://signet.internal:8443`) or `host:port` (scheme from `secure`). */
  readonly target: string;
  /** TLS (the default) or plaintext. Plaintext also needs `allowInsecure: true`. */
  readonly secure?: boolean;
  /**
   * Permits plaintext and the dev identity, for local development only. It never turns off
   * certificate verification on a TLS connection.
   */
  readonly allowInsecure?: boolean;
  /** PEM CA certificate(s) to trust for the runtime's certificate, instead of the system roots. */
  readonly rootCertificates?: string | Buffer | readonly (string | Buffer)[];
  /** A TLS client certificate for the connection (an mTLS credential in `auth` takes precedence). */
  readonly clientCertificate?: ClientCertificate;
  /** The transport credential. Required: every call but health checks needs a principal. */
  readonly auth: AuthConfig;
  /** How long one request (or the WebSocket handshake) may take, in ms. Default 30 000. */
  readonly timeoutMs?: number;
}

/** Connection settings after validation. */
export interface ResolvedConnection {
  /** The base URL, always ending in `/` (a target may carry a path prefix behind a proxy). */
  readonly baseUrl: URL;
  readonly secure: boolean;
  readonly allowInsecure: boolean;
  readonly rootCertificates: readonly (string | Buffer)[] | undefined;
  readonly clientCertificate: ClientCertificate | undefined;
  readonly timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

function refuse(message: string, reason: string): never {
  throw new SdkError(message, { reason });
}

function parseTargetUrl(target: string, secure: boolean | undefined): URL {
  let url: URL;
  try {
    url = new URL(SCHEME.test(target) ? target : `${secure === false ? "http" : "https"}://${target}`);
  } catch {
    return refuse("target must be a URL or host:port", "target");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    refuse("target must be an https:// (or, insecurely, http://) URL", "target");
  }
  // Credentials in a URL end up in logs and process listings; the query and fragment mean nothing here.
  if (url.username !== "" || url.password !== "") refuse("target must not carry credentials", "target");
  if (url.search !== "" || url.hash !== "") refuse("target must not carry a query or fragment", "target");
  if (!SCHEME.test(target) && url.pathname !== "/")
    refuse("target host:port must not carry a path", "target");
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

/**
 * Validates connection options: TLS unless plaintext is both asked for and explicitly allowed, the dev
 * identity only with `allowInsecure`, mTLS only over TLS. Throws `SdkError`; opens nothing.
 *
 * Example: `resolveConnection({ target: "signet.internal:8443", auth })` → `https://signet.internal:8443/`.
 */
export function resolveConnection(options: ConnectionOptions): ResolvedConnection {
  if (typeof options?.target !== "string" || options.target.length === 0) {
    refuse("target is required", "target");
  }
  const url = parseTargetUrl(options.target, options.secure);
  const secure = url.protocol === "https:";
  if (options.secure === false && secure) refuse("target is https:// but secure is false", "target");
  if (options.secure === true && !secure) refuse("target is http:// but secure is true", "target");
  const allowInsecure = options.allowInsecure === true;
  if (!secure && !allowInsecure) {
    refuse("Plaintext connections need allowInsecure: true (local development only)", "insecure_transport");
  }
  if (options.auth === undefined || options.auth === null) refuse("auth is required", "auth");
  checkAuth(options.auth, { secure, allowInsecure });
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0)
    refuse("timeoutMs must be a positive integer", "timeout");
  const roots = options.rootCertificates;
  return {
    baseUrl: url,
    secure,
    allowInsecure,
    rootCertificates:
      roots === undefined
        ? undefined
        : typeof roots === "string" || Buffer.isBuffer(roots)
          ? [roots]
          : [...roots],
    clientCertificate: options.clientCertificate,
    timeoutMs,
  };
}

/** Checks that a credential may be used over this connection (also for per-call overrides). */
export function checkAuth(auth: AuthConfig, connection: { secure: boolean; allowInsecure: boolean }): void {
  // The runtime honours a dev identity only in its plaintext development mode, and treats one that
  // arrives over TLS as a probe: refusing it here keeps a dev shortcut from reaching a real deployment.
  if (auth.kind === "dev" && (!connection.allowInsecure || connection.secure)) {
    refuse(
      "The dev identity is only for local development: it needs a plaintext target and allowInsecure: true",
      "dev_identity",
    );
  }
  if (auth.kind === "mtls" && !connection.secure) refuse("mTLS needs a TLS connection", "mtls_needs_tls");
}

/** The URL of an API path under the base URL. Example: `endpointUrl(base, "v1/envelopes")`. */
export function endpointUrl(connection: ResolvedConnection, path: string, webSocket = false): URL {
  const url = new URL(path, connection.baseUrl);
  if (webSocket) url.protocol = connection.secure ? "wss:" : "ws:";
  return url;
}

/**
 * TLS options for a connection: TLS 1.2 at least, certificate verification always on, the configured
 * roots and the client certificate (the credential's own, else the connection's).
 */
export function tlsOptions(connection: ResolvedConnection, auth: AuthConfig): TlsConnectionOptions {
  const certificate = auth.clientCertificate ?? connection.clientCertificate;
  return {
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
    ...(connection.rootCertificates === undefined ? {} : { ca: [...connection.rootCertificates] }),
    ...(certificate === undefined ? {} : { cert: certificate.cert, key: certificate.key }),
  };
}

/**
 * True when a connection failed because the runtime's certificate (or the handshake) did not verify.
 * Such failures are permanent: retrying against a possible impostor achieves nothing.
 */
export function isTlsFailure(error: unknown): boolean {
  const code =
    (error as { code?: unknown } | undefined)?.code ??
    (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return (
    typeof code === "string" &&
    (code.startsWith("ERR_TLS") ||
      code.startsWith("ERR_SSL") ||
      code.includes("CERT") ||
      code.startsWith("UNABLE_TO_") ||
      code.includes("SELF_SIGNED"))
  );
}
