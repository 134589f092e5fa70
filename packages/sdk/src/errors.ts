// Typed SDK errors: SdkError for local refusals (never sent) and one class per wire error code.
import {
  ERROR_CODES,
  type ErrorCode,
  type ErrorDetails,
  type WireError,
  isErrorCode,
} from "@signet/protocol";

/** Options every SDK error takes: the standard `cause`, plus an opaque `reason` tag. */
export interface SdkErrorOptions extends ErrorOptions {
  /** A short opaque tag for diagnostics (`insecure_transport`, `signing_key`, ...). Never a secret. */
  readonly reason?: string;
  /**
   * Whether sending the identical envelope again is safe and may succeed (a network failure or a
   * local timeout: the runtime never executes one message twice). Default false.
   */
  readonly retryable?: boolean;
}

/**
 * A local error: the SDK refused something before (or instead of) talking to the runtime, for
 * example an insecure setting or a missing key file. It never crosses the wire and has no registry
 * code; match on `reason`, not `message`.
 *
 * Example:
 * ```ts
 * try { new SignetClient({ target: "http://localhost:8080", ... }) }
 * catch (error) { if (error instanceof SdkError) console.log(error.reason); } // "insecure_transport"
 * ```
 */
export class SdkError extends Error {
  override name = "SdkError";
  readonly reason: string | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: SdkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = options.reason;
    this.retryable = options.retryable ?? false;
  }
}

// Brand shared by every class that carries a registry code, so `instanceof SignetProtocolError` also
// recognizes IdentityMismatchError, which must extend SdkError (JavaScript has single inheritance).
const PROTOCOL_ERROR = Symbol.for("@signet/sdk.protocol-error");

/** What every error with a registry code carries. */
export interface ProtocolErrorFields {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetails;
  toWire(): WireError;
}

function toWire(error: ProtocolErrorFields & Error): WireError {
  return {
    error: { code: error.code, message: error.message, retryable: error.retryable, ...error.details },
  };
}

/**
 * The base of every error that carries a registry code: the runtime refused the request (or the SDK
 * refused a peer's answer for the same reason the runtime would). `retryable` says whether the
 * identical envelope may be sent again. `instanceof SignetProtocolError` is also true for
 * {@link IdentityMismatchError}.
 *
 * Example:
 * ```ts
 * catch (error) { if (error instanceof SignetProtocolError && error.retryable) await retry(); }
 * ```
 */
export abstract class SignetProtocolError extends Error implements ProtocolErrorFields {
  abstract readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(message: string | undefined, details: ErrorDetails = {}, options?: ErrorOptions) {
    super(message ?? "", options);
    this.details = { ...details };
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  /** The opaque reason tag the runtime gave, if any (`sig`, `unbound`, `window`, ...). */
  get reason(): string | undefined {
    return this.details.reason;
  }

  toWire(): WireError {
    return toWire(this);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // Only the base class widens instanceof to the brand; subclasses keep the ordinary prototype check.
    if (this === SignetProtocolError) {
      return typeof value === "object" && value !== null && PROTOCOL_ERROR in value;
    }
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/** Constructor signature shared by every coded error class (used by {@link errorFromWire}). */
export type ProtocolErrorClass = new (
  message?: string,
  details?: ErrorDetails,
  options?: ErrorOptions,
) => AnyProtocolError;

/** Any error carrying a registry code: a {@link SignetProtocolError} or an {@link IdentityMismatchError}. */
export type AnyProtocolError = SignetProtocolError | IdentityMismatchError;

// Every subclass sets its message default from the registry, so `new RateLimitedError()` reads well.
function defaultMessage(code: ErrorCode, message: string | undefined): string {
  return message ?? ERROR_CODES[code].message;
}

/** Options for {@link IdentityMismatchError}. */
export interface IdentityMismatchOptions extends ErrorOptions {
  /** The identity the credential is expected to prove (`expectedSender`). */
  readonly expected?: string;
  /** The sender the envelope names. */
  readonly actual?: string;
}

/**
 * The envelope's sender is not the identity the credential proves. The SDK throws it locally, before
 * anything is sent, when `expectedSender` differs from the sender; it also maps the runtime's
 * `IDENTITY_MISMATCH` refusal. It is an {@link SdkError} and carries the registry code too.
 *
 * Example:
 * ```ts
 * catch (error) { if (error instanceof IdentityMismatchError) log(error.expected, error.actual); }
 * ```
 */
export class IdentityMismatchError extends SdkError implements ProtocolErrorFields {
  override name = "IdentityMismatchError";
  readonly code = "IDENTITY_MISMATCH" as const;
  readonly details: ErrorDetails;
  readonly expected: string | undefined;
  readonly actual: string | undefined;

  constructor(message?: string, details: ErrorDetails = {}, options: IdentityMismatchOptions = {}) {
    super(
      message ??
        (options.expected !== undefined && options.actual !== undefined
          ? `The sender "${options.actual}" is not the expected sender "${options.expected}"`
          : ERROR_CODES.IDENTITY_MISMATCH.message),
      {
        reason: details.reason ?? "sender",
        retryable: ERROR_CODES.IDENTITY_MISMATCH.retryable,
        ...(options.cause === undefined ? {} : { cause: options.cause }),
      },
    );
    this.details = { ...details };
    this.expected = options.expected;
    this.actual = options.actual;
  }

  get status(): number {
    return ERROR_CODES.IDENTITY_MISMATCH.status;
  }

  toWire(): WireError {
    return toWire(this);
  }
}

/** UNAUTHENTICATED: the transport credential is missing or invalid (the wire never says which part). */
export class UnauthenticatedError extends SignetProtocolError {
  override name = "UnauthenticatedError";
  readonly code = "UNAUTHENTICATED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("UNAUTHENTICATED", message), details, options);
  }
}

/** FORBIDDEN: authenticated, but without the permission or role for this operation. */
export class ForbiddenError extends SignetProtocolError {
  override name = "ForbiddenError";
  readonly code = "FORBIDDEN" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("FORBIDDEN", message), details, options);
  }
}

/**
 * POLICY_DENIED: policy refused the call; `rule` and `reason` say which rule and why.
 *
 * Example: `catch (e) { if (e instanceof PermissionDeniedError) console.log(e.rule); }`
 */
export class PermissionDeniedError extends SignetProtocolError {
  override name = "PermissionDeniedError";
  readonly code = "POLICY_DENIED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("POLICY_DENIED", message), details, options);
  }

  /** The id of the rule that decided the denial. */
  get rule(): string | undefined {
    return this.details.rule;
  }
}

/** INVALID_REQUEST: an API request (not an envelope) or a frame is malformed. */
export class InvalidRequestError extends SignetProtocolError {
  override name = "InvalidRequestError";
  readonly code = "INVALID_REQUEST" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("INVALID_REQUEST", message), details, options);
  }
}

/** INVALID_ENVELOPE: the envelope is malformed. */
export class InvalidEnvelopeError extends SignetProtocolError {
  override name = "InvalidEnvelopeError";
  readonly code = "INVALID_ENVELOPE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("INVALID_ENVELOPE", message), details, options);
  }
}

/** UNSUPPORTED_PROTOCOL_VERSION: the envelope's `v` is a version the peer does not speak. */
export class UnsupportedProtocolVersionError extends SignetProtocolError {
  override name = "UnsupportedProtocolVersionError";
  readonly code = "UNSUPPORTED_PROTOCOL_VERSION" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("UNSUPPORTED_PROTOCOL_VERSION", message), details, options);
  }
}

/** PAYLOAD_TOO_LARGE: the request body exceeds the configured limit. */
export class PayloadTooLargeError extends SignetProtocolError {
  override name = "PayloadTooLargeError";
  readonly code = "PAYLOAD_TOO_LARGE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("PAYLOAD_TOO_LARGE", message), details, options);
  }
}

/** HASH_MISMATCH: the body does not hash to `body_hash`. */
export class HashMismatchError extends SignetProtocolError {
  override name = "HashMismatchError";
  readonly code = "HASH_MISMATCH" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("HASH_MISMATCH", message), details, options);
  }
}

/**
 * SIGNATURE_INVALID: a signature does not verify, or a result does not answer its request
 * (`reason: "unbound"`). The SDK also throws it for a result it cannot trust; such a result is never
 * returned as data.
 */
export class SignatureInvalidError extends SignetProtocolError {
  override name = "SignatureInvalidError";
  readonly code = "SIGNATURE_INVALID" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("SIGNATURE_INVALID", message), details, options);
  }
}

/** KEY_REVOKED: the signing key was revoked. */
export class KeyRevokedError extends SignetProtocolError {
  override name = "KeyRevokedError";
  readonly code = "KEY_REVOKED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("KEY_REVOKED", message), details, options);
  }
}

/** UNKNOWN_AGENT: the sender or its key id is not registered. */
export class UnknownAgentError extends SignetProtocolError {
  override name = "UnknownAgentError";
  readonly code = "UNKNOWN_AGENT" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("UNKNOWN_AGENT", message), details, options);
  }
}

/** DUPLICATE_MESSAGE: a different envelope was already sent under this sender and id. */
export class DuplicateMessageError extends SignetProtocolError {
  override name = "DuplicateMessageError";
  readonly code = "DUPLICATE_MESSAGE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("DUPLICATE_MESSAGE", message), details, options);
  }
}

/** STALE_MESSAGE: the timestamp is outside the freshness window. */
export class StaleMessageError extends SignetProtocolError {
  override name = "StaleMessageError";
  readonly code = "STALE_MESSAGE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("STALE_MESSAGE", message), details, options);
  }
}

/** REPLAY_DETECTED: the nonce (or, at an executor, the whole envelope) was seen before. */
export class ReplayDetectedError extends SignetProtocolError {
  override name = "ReplayDetectedError";
  readonly code = "REPLAY_DETECTED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("REPLAY_DETECTED", message), details, options);
  }
}

/** INVALID_PAYLOAD: the body does not validate against its declared `body_type`. */
export class InvalidPayloadError extends SignetProtocolError {
  override name = "InvalidPayloadError";
  readonly code = "INVALID_PAYLOAD" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("INVALID_PAYLOAD", message), details, options);
  }
}

/**
 * RATE_LIMITED: retry the identical envelope after `retryAfterMs`.
 *
 * Example: `catch (e) { if (e instanceof RateLimitedError) await sleep(e.retryAfterMs ?? 1000); }`
 */
export class RateLimitedError extends SignetProtocolError {
  override name = "RateLimitedError";
  readonly code = "RATE_LIMITED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("RATE_LIMITED", message), details, options);
  }

  /** How long to wait before retrying, when the runtime said. */
  get retryAfterMs(): number | undefined {
    return this.details.retry_after_ms;
  }
}

/** QUOTA_EXCEEDED: a quota is used up; retrying does not help until it resets. */
export class QuotaExceededError extends SignetProtocolError {
  override name = "QuotaExceededError";
  readonly code = "QUOTA_EXCEEDED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("QUOTA_EXCEEDED", message), details, options);
  }
}

/** NOT_FOUND: the addressed resource does not exist. */
export class NotFoundError extends SignetProtocolError {
  override name = "NotFoundError";
  readonly code = "NOT_FOUND" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("NOT_FOUND", message), details, options);
  }
}

/** UNKNOWN_TOOL: the target names a tool nobody may serve (or, at an executor, one it does not serve). */
export class UnknownToolError extends SignetProtocolError {
  override name = "UnknownToolError";
  readonly code = "UNKNOWN_TOOL" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("UNKNOWN_TOOL", message), details, options);
  }
}

/** TARGET_UNAVAILABLE: no executor is connected right now; nothing was dispatched (retryable). */
export class TargetUnavailableError extends SignetProtocolError {
  override name = "TargetUnavailableError";
  readonly code = "TARGET_UNAVAILABLE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("TARGET_UNAVAILABLE", message), details, options);
  }
}

/** TIMEOUT: the executor did not answer in time (retryable: a retry never runs the call twice). */
export class TimeoutError extends SignetProtocolError {
  override name = "TimeoutError";
  readonly code = "TIMEOUT" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("TIMEOUT", message), details, options);
  }
}

/** SESSION_NOT_FOUND: no such coordination session. */
export class SessionNotFoundError extends SignetProtocolError {
  override name = "SessionNotFoundError";
  readonly code = "SESSION_NOT_FOUND" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("SESSION_NOT_FOUND", message), details, options);
  }
}

/** SESSION_NOT_OPEN: the session is resolved, expired or cancelled. */
export class SessionNotOpenError extends SignetProtocolError {
  override name = "SessionNotOpenError";
  readonly code = "SESSION_NOT_OPEN" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("SESSION_NOT_OPEN", message), details, options);
  }
}

/** SESSION_ALREADY_EXISTS: a session with this id already exists. */
export class SessionAlreadyExistsError extends SignetProtocolError {
  override name = "SessionAlreadyExistsError";
  readonly code = "SESSION_ALREADY_EXISTS" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("SESSION_ALREADY_EXISTS", message), details, options);
  }
}

/** INVALID_SESSION_ID: a session id must be a UUID v4/v7 or at least 22 base64url characters. */
export class InvalidSessionIdError extends SignetProtocolError {
  override name = "InvalidSessionIdError";
  readonly code = "INVALID_SESSION_ID" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("INVALID_SESSION_ID", message), details, options);
  }
}

/** SESSION_RULE_VIOLATION: the session's mode does not allow this message from this sender now. */
export class SessionRuleViolationError extends SignetProtocolError {
  override name = "SessionRuleViolationError";
  readonly code = "SESSION_RULE_VIOLATION" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("SESSION_RULE_VIOLATION", message), details, options);
  }
}

/** MODE_NOT_SUPPORTED: the session mode is not one the runtime supports. */
export class ModeNotSupportedError extends SignetProtocolError {
  override name = "ModeNotSupportedError";
  readonly code = "MODE_NOT_SUPPORTED" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("MODE_NOT_SUPPORTED", message), details, options);
  }
}

/** AUDIT_UNAVAILABLE: the audit log could not be written; nothing was dispatched (retryable). */
export class AuditUnavailableError extends SignetProtocolError {
  override name = "AuditUnavailableError";
  readonly code = "AUDIT_UNAVAILABLE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("AUDIT_UNAVAILABLE", message), details, options);
  }
}

/** UNAVAILABLE: a dependency the runtime cannot do without is down (retryable). */
export class UnavailableError extends SignetProtocolError {
  override name = "UnavailableError";
  readonly code = "UNAVAILABLE" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("UNAVAILABLE", message), details, options);
  }
}

/** INTERNAL_ERROR: an unexpected failure (retryable: the identical envelope never runs twice). */
export class InternalError extends SignetProtocolError {
  override name = "InternalError";
  readonly code = "INTERNAL_ERROR" as const;
  constructor(message?: string, details?: ErrorDetails, options?: ErrorOptions) {
    super(defaultMessage("INTERNAL_ERROR", message), details, options);
  }
}

// The brand lives on the prototypes (not as an own field), so it stays out of logs and JSON.
Object.defineProperty(SignetProtocolError.prototype, PROTOCOL_ERROR, { value: true });
Object.defineProperty(IdentityMismatchError.prototype, PROTOCOL_ERROR, { value: true });

/**
 * The class for every registry code. Typed over `ErrorCode`, so a code added to the registry without
 * a class here fails to compile.
 */
export const ERROR_CLASSES: { readonly [C in ErrorCode]: ProtocolErrorClass } = {
  UNAUTHENTICATED: UnauthenticatedError,
  FORBIDDEN: ForbiddenError,
  IDENTITY_MISMATCH: IdentityMismatchError,
  POLICY_DENIED: PermissionDeniedError,
  INVALID_REQUEST: InvalidRequestError,
  INVALID_ENVELOPE: InvalidEnvelopeError,
  UNSUPPORTED_PROTOCOL_VERSION: UnsupportedProtocolVersionError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  HASH_MISMATCH: HashMismatchError,
  SIGNATURE_INVALID: SignatureInvalidError,
  KEY_REVOKED: KeyRevokedError,
  UNKNOWN_AGENT: UnknownAgentError,
  DUPLICATE_MESSAGE: DuplicateMessageError,
  STALE_MESSAGE: StaleMessageError,
  REPLAY_DETECTED: ReplayDetectedError,
  INVALID_PAYLOAD: InvalidPayloadError,
  RATE_LIMITED: RateLimitedError,
  QUOTA_EXCEEDED: QuotaExceededError,
  NOT_FOUND: NotFoundError,
  UNKNOWN_TOOL: UnknownToolError,
  TARGET_UNAVAILABLE: TargetUnavailableError,
  TIMEOUT: TimeoutError,
  SESSION_NOT_FOUND: SessionNotFoundError,
  SESSION_NOT_OPEN: SessionNotOpenError,
  SESSION_ALREADY_EXISTS: SessionAlreadyExistsError,
  INVALID_SESSION_ID: InvalidSessionIdError,
  MODE_NOT_SUPPORTED: ModeNotSupportedError,
  SESSION_RULE_VIOLATION: SessionRuleViolationError,
  AUDIT_UNAVAILABLE: AuditUnavailableError,
  UNAVAILABLE: UnavailableError,
  INTERNAL_ERROR: InternalError,
};

/**
 * Builds the typed error for a registry code.
 *
 * Example: `protocolError("RATE_LIMITED", undefined, { retry_after_ms: 500 })` → a RateLimitedError.
 */
export function protocolError(
  code: ErrorCode,
  message?: string,
  details?: ErrorDetails,
  options?: ErrorOptions,
): AnyProtocolError {
  return new ERROR_CLASSES[code](message, details, options);
}

/** True for any error carrying a registry code, including {@link IdentityMismatchError}. */
export function isProtocolError(value: unknown): value is AnyProtocolError {
  return typeof value === "object" && value !== null && PROTOCOL_ERROR in value;
}

// The code a response without a readable error body most likely means. The body is what counts; this
// only keeps a proxy's bare 502/503 retryable and a bare 401 an authentication failure.
function codeForStatus(status: number | undefined): ErrorCode {
  switch (status) {
    case 400:
      return "INVALID_REQUEST";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 413:
      return "PAYLOAD_TOO_LARGE";
    case 429:
      return "RATE_LIMITED";
    case 502:
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "TIMEOUT";
    default:
      return "INTERNAL_ERROR";
  }
}

function optionalString(value: unknown, maxLength: number): string | undefined {
  return typeof value === "string" && value.length <= maxLength ? value : undefined;
}

/**
 * Reads an error response (`{ "error": { "code", "message", ... } }`, parsed or as text) into its
 * typed class. The code in the body decides; a body without a registered code falls back to the
 * HTTP status (a proxy's bare 503 stays retryable) with reason `malformed_error`.
 *
 * Example:
 * ```ts
 * const error = errorFromWire({ error: { code: "RATE_LIMITED", message: "slow down", retry_after_ms: 250 } }, 429);
 * error instanceof RateLimitedError; // true, error.retryAfterMs === 250
 * ```
 */
export function errorFromWire(body: unknown, status?: number): AnyProtocolError {
  let value = body;
  if (typeof value === "string" || value instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof value === "string" ? value : Buffer.from(value).toString("utf8")) as unknown;
    } catch {
      value = undefined;
    }
  }
  const inner = typeof value === "object" && value !== null && "error" in value ? value.error : undefined;
  if (typeof inner === "object" && inner !== null && isErrorCode((inner as { code?: unknown }).code)) {
    const fields = inner as Record<string, unknown>;
    const details: { rule?: string; reason?: string; retry_after_ms?: number; audit_id?: string } = {};
    const rule = optionalString(fields.rule, 256);
    const reason = optionalString(fields.reason, 256);
    const auditId = optionalString(fields.audit_id, 256);
    const retryAfter = fields.retry_after_ms;
    if (rule !== undefined) details.rule = rule;
    if (reason !== undefined) details.reason = reason;
    if (auditId !== undefined) details.audit_id = auditId;
    if (typeof retryAfter === "number" && Number.isFinite(retryAfter) && retryAfter >= 0) {
      details.retry_after_ms = retryAfter;
    }
    // Bounded so a hostile peer cannot make the SDK carry (or log) megabytes of "message".
    const message = optionalString(fields.message, 1024);
    return protocolError(fields.code as ErrorCode, message, details);
  }
  return protocolError(codeForStatus(status), undefined, { reason: "malformed_error" });
}

/** The error body of a result with `status: "error"`. */
// A type alias, not an interface, so it is assignable to JsonValue.
export type ToolErrorBody = { readonly error: { readonly code: string; readonly message: string } };

// Application codes a tool may report: short, stable, machine-readable.
const TOOL_ERROR_CODE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Thrown by a tool handler to fail a call with a code and message the caller may see. Any other
 * exception becomes a bare `INTERNAL_ERROR` result, so internal messages (paths, queries, secrets)
 * never leak to callers.
 *
 * Example: `throw new ToolError("out_of_stock", "Item 42 is out of stock")`.
 */
export class ToolError extends Error {
  override name = "ToolError";

  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    if (!TOOL_ERROR_CODE.test(code))
      throw new SdkError("A tool error code must match [A-Za-z][A-Za-z0-9_.-]{0,63}", {
        reason: "tool_error",
      });
  }

  toBody(): ToolErrorBody {
    return { error: { code: this.code, message: this.message.slice(0, 1024) } };
  }
}
