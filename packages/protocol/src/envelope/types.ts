// The v1 envelope: what every signed message on the wire carries (docs/protocol.md is the normative text).
import type { ContentHash } from "../crypto/content-hash.js";
import type { JsonValue } from "../json/canonical-json.js";

/** The version tag of this protocol. */
export const PROTOCOL_VERSION = "signet/1";

/** `invoke`, `result`, `signal`, or a session message such as `session.start`. */
export type EnvelopeType = "invoke" | "result" | "signal" | `session.${string}`;

/** What the caller says it is doing, and the permissions it claims to need for it. */
export interface Intent {
  readonly purpose?: string;
  readonly permissions?: readonly string[];
}

/** Where a message comes from: its parent message, inputs it was derived from, consent and policy. */
export interface Provenance {
  readonly parent?: string;
  readonly inputs?: readonly ContentHash[];
  readonly consent_ref?: string;
  readonly policy_ref?: string;
}

/** The request a result answers: its id and its envelope hash. */
export interface RequestRef {
  readonly id: string;
  readonly hash: ContentHash;
}

/** The runtime's decision on the request a result answers, as it was delivered to the executor. */
export interface DecisionRef {
  readonly audit_id: string;
  readonly rules: readonly string[];
}

/** Every signed field: the envelope minus `body` and `sig`. */
export interface EnvelopeHeader {
  readonly v: typeof PROTOCOL_VERSION;
  readonly id: string;
  readonly type: EnvelopeType;
  readonly from: string;
  readonly to: string;
  readonly ts: number;
  readonly nonce: string;
  readonly kid: string;
  readonly body_hash: ContentHash;
  readonly session?: string;
  readonly intent?: Intent;
  readonly body_type?: string;
  readonly provenance?: Provenance;
  /** Results only: the request answered. */
  readonly re?: RequestRef;
  /** Results only: `ok` or `error`. */
  readonly status?: "ok" | "error";
  /** Results only: the runtime's decision the executor acted on. */
  readonly decision?: DecisionRef;
}

/** A complete signed envelope. */
export interface Envelope<B extends JsonValue = JsonValue> extends EnvelopeHeader {
  readonly body: B;
  /** Ed25519 signature over the signing input, unpadded base64url (86 characters). */
  readonly sig: string;
}

/** Every top-level field in RFC 8785 order (UTF-16 code-unit order), which is also the wire order. */
export const ENVELOPE_FIELDS = [
  "body",
  "body_hash",
  "body_type",
  "decision",
  "from",
  "id",
  "intent",
  "kid",
  "nonce",
  "provenance",
  "re",
  "session",
  "sig",
  "status",
  "to",
  "ts",
  "type",
  "v",
] as const;

export type EnvelopeField = (typeof ENVELOPE_FIELDS)[number];

/** The signed fields, in canonical order. */
export const HEADER_FIELDS = ENVELOPE_FIELDS.filter(
  (field): field is Exclude<EnvelopeField, "body" | "sig"> => field !== "body" && field !== "sig",
);
