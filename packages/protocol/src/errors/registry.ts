// The error-code registry: every code the wire may carry, its HTTP status, and whether a client may retry it.

/**
 * One registry entry. `retryable` means a client may send the identical envelope again: the runtime
 * never executes it twice, so a retry is always safe.
 */
export interface ErrorCodeInfo {
  readonly status: number;
  readonly retryable: boolean;
  readonly message: string;
}

/** Every error code, in the order `docs/errors.md` lists them. */
export const ERROR_CODES = {
  UNAUTHENTICATED: { status: 401, retryable: false, message: "Authentication failed" },
  FORBIDDEN: { status: 403, retryable: false, message: "The principal is not allowed to do this" },
  IDENTITY_MISMATCH: {
    status: 403,
    retryable: false,
    message: "The envelope's sender is not the authenticated principal",
  },
  POLICY_DENIED: { status: 403, retryable: false, message: "Denied by policy" },
  INVALID_REQUEST: { status: 400, retryable: false, message: "The request is malformed" },
  INVALID_ENVELOPE: { status: 400, retryable: false, message: "The envelope is malformed" },
  UNSUPPORTED_PROTOCOL_VERSION: {
    status: 400,
    retryable: false,
    message: "The envelope's protocol version is not supported",
  },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: "The payload is too large" },
  HASH_MISMATCH: { status: 400, retryable: false, message: "The body does not match its hash" },
  SIGNATURE_INVALID: { status: 401, retryable: false, message: "The signature is invalid" },
  KEY_REVOKED: { status: 401, retryable: false, message: "The signing key has been revoked" },
  UNKNOWN_AGENT: { status: 403, retryable: false, message: "The agent or key is not registered" },
  DUPLICATE_MESSAGE: {
    status: 409,
    retryable: false,
    message: "A different message was already sent under this id",
  },
  STALE_MESSAGE: {
    status: 400,
    retryable: false,
    message: "The message timestamp is outside the accepted window",
  },
  REPLAY_DETECTED: { status: 409, retryable: false, message: "The nonce has already been used" },
  INVALID_PAYLOAD: {
    status: 422,
    retryable: false,
    message: "The body does not match its declared semantic type",
  },
  RATE_LIMITED: { status: 429, retryable: true, message: "Rate limit exceeded" },
  QUOTA_EXCEEDED: { status: 429, retryable: false, message: "Quota exceeded" },
  NOT_FOUND: { status: 404, retryable: false, message: "Not found" },
  UNKNOWN_TOOL: { status: 404, retryable: false, message: "No such tool" },
  TARGET_UNAVAILABLE: { status: 503, retryable: true, message: "No executor for the target is connected" },
  TIMEOUT: { status: 504, retryable: true, message: "The executor did not answer in time" },
  SESSION_NOT_FOUND: { status: 404, retryable: false, message: "No such session" },
  SESSION_NOT_OPEN: { status: 409, retryable: false, message: "The session is not open" },
  SESSION_ALREADY_EXISTS: { status: 409, retryable: false, message: "A session with this id already exists" },
  INVALID_SESSION_ID: { status: 400, retryable: false, message: "The session id is not valid" },
  MODE_NOT_SUPPORTED: { status: 400, retryable: false, message: "The session mode is not supported" },
  SESSION_RULE_VIOLATION: {
    status: 409,
    retryable: false,
    message: "The session's mode does not allow this message now",
  },
  AUDIT_UNAVAILABLE: { status: 503, retryable: true, message: "The audit log is unavailable" },
  UNAVAILABLE: { status: 503, retryable: true, message: "The service is unavailable" },
  INTERNAL_ERROR: { status: 500, retryable: true, message: "Internal error" },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A code from the registry. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Returns true when `value` is a registered code. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** The registry entry for `code`. Example: `errorInfo("RATE_LIMITED").status === 429`. */
export function errorInfo(code: ErrorCode): ErrorCodeInfo {
  return ERROR_CODES[code];
}
