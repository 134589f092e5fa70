// The wire error: the one error type whose code, message and details may be sent to a peer.
import { ERROR_CODES, type ErrorCode, isErrorCode } from "./registry.js";

/** Extra fields a wire error may carry. Never put secrets, tokens or payloads here. */
export interface ErrorDetails {
  /** The policy rule that decided a denial. */
  readonly rule?: string;
  /** A one-line reason (policy denials, verification failures with an opaque tag). */
  readonly reason?: string;
  /** For RATE_LIMITED: how long to wait before retrying the identical envelope. */
  readonly retry_after_ms?: number;
  /** Correlates the refusal with its audit entry. */
  readonly audit_id?: string;
}

/** The wire shape of an error: `{ "error": { "code", "message", ... } }`. */
export interface WireError {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly retryable: boolean;
  } & ErrorDetails;
}

/**
 * An error with a stable code from the registry. Tests and clients match on `code`, never on `message`.
 *
 * Example: `throw new SignetError("HASH_MISMATCH")`.
 */
export class SignetError extends Error {
  override readonly name = "SignetError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}, options?: ErrorOptions) {
    const info = ERROR_CODES[code];
    super(message ?? info.message, options);
    this.code = code;
    this.status = info.status;
    this.retryable = info.retryable;
    this.details = details;
  }

  /** The wire shape of this error. */
  toWire(): WireError {
    return { error: { code: this.code, message: this.message, retryable: this.retryable, ...this.details } };
  }
}

/** Returns true when `value` is a SignetError, even one from another copy of this package. */
export function isSignetError(value: unknown): value is SignetError {
  return (
    value instanceof SignetError ||
    (value instanceof Error &&
      value.name === "SignetError" &&
      isErrorCode((value as { code?: unknown }).code))
  );
}

/** Reads a wire error back into a SignetError; unknown or malformed shapes become INTERNAL_ERROR. */
export function fromWireError(value: unknown): SignetError {
  if (typeof value === "object" && value !== null && "error" in value) {
    const inner = value.error;
    if (typeof inner === "object" && inner !== null) {
      const { code, message, rule, reason, retry_after_ms, audit_id } = inner as Record<string, unknown>;
      if (isErrorCode(code)) {
        const details: {
          rule?: string;
          reason?: string;
          retry_after_ms?: number;
          audit_id?: string;
        } = {};
        if (typeof rule === "string") details.rule = rule;
        if (typeof reason === "string") details.reason = reason;
        if (typeof retry_after_ms === "number" && Number.isFinite(retry_after_ms) && retry_after_ms >= 0) {
          details.retry_after_ms = retry_after_ms;
        }
        if (typeof audit_id === "string") details.audit_id = audit_id;
        return new SignetError(code, typeof message === "string" ? message : undefined, details);
      }
    }
  }
  return new SignetError("INTERNAL_ERROR", "Malformed error response");
}
