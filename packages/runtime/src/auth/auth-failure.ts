// Why an authentication attempt failed: an internal verdict for recording, never sent to the client.
import type { AuthMethod } from "./principal.js";

/**
 * The specific reason an attempt failed. Recorded through `onFailure` (the event store), never put on
 * the wire: the client only ever sees a generic `UNAUTHENTICATED` (or `UNAVAILABLE`).
 */
export type AuthFailureReason =
  /** No credential of any enabled kind was presented. */
  | "no_credentials"
  /** A credential was presented but does not have the expected shape. */
  | "malformed"
  /** Two credentials were presented where only one may be (for instance two API key headers). */
  | "ambiguous_credentials"
  /** An `Authorization` scheme other than `Bearer`. */
  | "unsupported_scheme"
  /** A credential of a kind this runtime does not accept (for instance a JWT with no JWT issuer set). */
  | "method_not_enabled"
  /** The dev identity header outside insecure mode. */
  | "dev_identity_not_allowed"
  // API keys
  | "unknown_key"
  | "bad_secret"
  | "revoked"
  | "expired"
  /** The stored key record is unusable (corrupt hash, invalid principal id). */
  | "invalid_record"
  // JWTs
  | "bad_signature"
  | "alg_not_allowed"
  | "unknown_kid"
  | "wrong_audience"
  | "wrong_issuer"
  | "not_yet_valid"
  | "bad_subject"
  | "bad_claims"
  // Infrastructure: the credential could not be checked at all. Fails closed, as UNAVAILABLE.
  | "store_unavailable"
  | "jwks_unavailable";

/** The method an attempt was made with; `none` when no credential was presented. */
export type AuthFailureMethod = AuthMethod | "none";

/**
 * What may be recorded about a failed attempt besides its reason. Only values that are public or that
 * passed a strict format check: never a secret, a token or an unverified free-form string.
 */
export interface AuthFailureHints {
  /** The public id of the API key presented (checked against the key format first). */
  readonly credentialId?: string;
  /** The JWT header's `alg`, when it is a short plain token (useful to spot `none` and HS* probes). */
  readonly alg?: string;
  /** The JWT header's `kid`, when it is a short plain token. */
  readonly kid?: string;
  /** The certificate principal's id and where it came from. */
  readonly peerId?: string;
  readonly peerSource?: "cn" | "spiffe";
  /** For infrastructure failures: the underlying error, for operators only. */
  readonly error?: unknown;
}

/** A failed verification: `{ ok: false, reason, method }`, plus hints for the record. */
export interface AuthFailure {
  readonly ok: false;
  readonly reason: AuthFailureReason;
  readonly method: AuthFailureMethod;
  readonly hints?: AuthFailureHints;
}

/** Builds an AuthFailure. Example: `authFailure("expired", "api_key", { credentialId })`. */
export function authFailure(
  reason: AuthFailureReason,
  method: AuthFailureMethod,
  hints?: AuthFailureHints,
): AuthFailure {
  return hints === undefined ? { ok: false, reason, method } : { ok: false, reason, method, hints };
}

/**
 * True when a verifier's answer is a failure rather than a Principal.
 *
 * Example: `const result = await verifyApiKey(key, store, Date.now()); if (isAuthFailure(result)) ...`
 */
export function isAuthFailure(value: unknown): value is AuthFailure {
  return typeof value === "object" && value !== null && (value as { ok?: unknown }).ok === false;
}

/** True for reasons that mean "could not check", not "checked and refused". */
export function isUnavailableReason(reason: AuthFailureReason): boolean {
  return reason === "store_unavailable" || reason === "jwks_unavailable";
}
