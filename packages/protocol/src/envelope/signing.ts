// Signing input, envelope hash, building and signing: the exact bytes every signature covers.
import { hash } from "node:crypto";
import type { ContentHash } from "../crypto/content-hash.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { newMessageId, newNonce } from "../ids.js";
import { type JsonValue, canonicalize, needsEscaping } from "../json/canonical-json.js";
import { assertEnvelopeShape } from "./fields.js";
import {
  type DecisionRef,
  ENVELOPE_FIELDS,
  type Envelope,
  type EnvelopeHeader,
  type EnvelopeType,
  HEADER_FIELDS,
  type Intent,
  PROTOCOL_VERSION,
  type Provenance,
  type RequestRef,
} from "./types.js";

/**
 * Domain separation: the signing input starts with this line, so an envelope signature can never be
 * taken for a receipt, a checkpoint or anything else the same key signs.
 */
export const ENVELOPE_DOMAIN = "signet/1 envelope\n";

/**
 * The canonical JSON of one field value. Nearly every envelope field is a short pattern-checked
 * string or a safe integer, so those skip the general serializer; the result is the same text.
 */
function canonicalField(value: unknown): string {
  if (typeof value === "string") return needsEscaping(value) ? canonicalize(value) : `"${value}"`;
  if (Number.isSafeInteger(value)) return `${value as number}`;
  return canonicalize(value);
}

/** Appends `"name":value` to a comma-separated member list; an undefined value adds nothing. */
function member(list: string, name: string, value: unknown): string {
  if (value === undefined) return list;
  const text = `"${name}":${canonicalField(value)}`;
  return list === "" ? text : `${list},${text}`;
}

/** Serializes the given fields of `source` as one canonical JSON object, in canonical key order. */
function canonicalObject(source: Readonly<Record<string, unknown>>, fields: readonly string[]): string {
  let out = "{";
  for (const field of fields) {
    const value = source[field];
    if (value === undefined) continue;
    if (out.length > 1) out += ",";
    out += `"${field}":`;
    out += canonicalField(value);
  }
  return `${out}}`;
}

/** The canonical JSON of the signed fields (the envelope minus `body` and `sig`). */
export function canonicalHeader(header: EnvelopeHeader): string {
  return canonicalObject(header as unknown as Record<string, unknown>, HEADER_FIELDS);
}

/** The exact bytes an envelope signature covers: the domain line, then the canonical header. */
export function signingInput(header: EnvelopeHeader): Buffer {
  return Buffer.from(ENVELOPE_DOMAIN + canonicalHeader(header), "utf8");
}

/** Builds the signing input from an already canonical header text. */
export function signingInputFromCanonicalHeader(canonicalHeaderText: string): Buffer {
  return Buffer.from(ENVELOPE_DOMAIN + canonicalHeaderText, "utf8");
}

/**
 * The envelope hash: SHA-256 over the signing input. A result names its request by this hash, and it
 * covers every signed field including `body_hash`.
 */
export function envelopeHashOfSigningInput(input: Uint8Array): ContentHash {
  // One-shot hash(): about half the cost of createHash().update().digest() for inputs this small.
  return `sha256:${hash("sha256", input, "hex")}`;
}

/** The envelope hash of a header (see {@link envelopeHashOfSigningInput}). */
export function envelopeHash(header: EnvelopeHeader): ContentHash {
  return envelopeHashOfSigningInput(signingInput(header));
}

/** Serializes a complete envelope to its canonical wire text. */
export function serializeEnvelope(envelope: Envelope): string {
  return canonicalObject(envelope as unknown as Record<string, unknown>, ENVELOPE_FIELDS);
}

/** What a sender fills in; everything else (version, id, time, nonce, hashes, key id) is computed. */
export interface EnvelopeDraft<B extends JsonValue = JsonValue> {
  readonly type: EnvelopeType;
  readonly from: string;
  readonly to: string;
  readonly body: B;
  readonly id?: string;
  readonly ts?: number;
  readonly nonce?: string;
  readonly session?: string;
  readonly intent?: Intent;
  readonly body_type?: string;
  readonly provenance?: Provenance;
  readonly re?: RequestRef;
  readonly status?: "ok" | "error";
  readonly decision?: DecisionRef;
}

/** A freshly signed envelope with its wire text and envelope hash. */
export interface SignedEnvelope<B extends JsonValue = JsonValue> {
  readonly envelope: Envelope<B>;
  /** The canonical wire text, ready to send. */
  readonly wire: string;
  /** The envelope hash (what a result's `re.hash` names). */
  readonly hash: ContentHash;
}

// A well-formed stand-in for the signature while the envelope's shape is checked before signing: every
// Ed25519 signature is 64 bytes, 86 base64url characters, so the real one passes wherever this does.
const SIGNATURE_PLACEHOLDER = "A".repeat(86);

/**
 * Builds, hashes, signs and serializes an envelope.
 *
 * Example:
 * ```ts
 * const { wire } = signEnvelope({ type: "invoke", from: "alice", to: "tool:echo", body: { x: 1 } }, key);
 * ```
 */
export function signEnvelope<B extends JsonValue>(
  draft: EnvelopeDraft<B>,
  key: Ed25519PrivateKey,
): SignedEnvelope<B> {
  const bodyText = canonicalize(draft.body);
  // Built field by field (conditional spreads cost a temporary object each) and in canonical order,
  // the order a verifier's JSON.parse gives the same envelope: code that handles both (the shape
  // check, for one) then sees a single object layout, which measurably speeds it up.
  const envelope: Record<string, unknown> = {};
  envelope.body = draft.body;
  envelope.body_hash = `sha256:${hash("sha256", bodyText, "hex")}`;
  if (draft.body_type !== undefined) envelope.body_type = draft.body_type;
  if (draft.decision !== undefined) envelope.decision = draft.decision;
  envelope.from = draft.from;
  envelope.id = draft.id ?? newMessageId();
  if (draft.intent !== undefined) envelope.intent = draft.intent;
  envelope.kid = key.kid;
  envelope.nonce = draft.nonce ?? newNonce();
  if (draft.provenance !== undefined) envelope.provenance = draft.provenance;
  if (draft.re !== undefined) envelope.re = draft.re;
  if (draft.session !== undefined) envelope.session = draft.session;
  envelope.sig = SIGNATURE_PLACEHOLDER;
  if (draft.status !== undefined) envelope.status = draft.status;
  envelope.to = draft.to;
  envelope.ts = draft.ts ?? Date.now();
  envelope.type = draft.type;
  envelope.v = PROTOCOL_VERSION;

  // The signed members, written once for both the header and the wire, in canonical order (that of
  // HEADER_FIELDS; keep the two in step) and split where "sig" falls. Named reads cost measurably
  // less than a loop over HEADER_FIELDS. A missing field is skipped, as canonicalHeader skips it;
  // the shape check below then refuses the envelope.
  let before = member("", "body_hash", envelope.body_hash);
  before = member(before, "body_type", envelope.body_type);
  before = member(before, "decision", envelope.decision);
  before = member(before, "from", envelope.from);
  before = member(before, "id", envelope.id);
  before = member(before, "intent", envelope.intent);
  before = member(before, "kid", envelope.kid);
  before = member(before, "nonce", envelope.nonce);
  before = member(before, "provenance", envelope.provenance);
  before = member(before, "re", envelope.re);
  before = member(before, "session", envelope.session);
  let after = member("", "status", envelope.status);
  after = member(after, "to", envelope.to);
  after = member(after, "ts", envelope.ts);
  after = member(after, "type", envelope.type);
  after = member(after, "v", envelope.v);
  // Check the envelope against the same rules a verifier applies, so a sender learns of a bad field
  // here rather than from the peer's refusal (and before paying for a signature). It runs after the
  // header is serialized, as it always has, so a value with no canonical form is reported as such.
  assertEnvelopeShape(envelope as JsonValue);
  const input = signingInputFromCanonicalHeader(`{${before},${after}}`);
  const sig = key.sign(input).toString("base64url");
  envelope.sig = sig;
  const wire = `{"body":${bodyText},${before},"sig":"${sig}",${after}}`;
  return { envelope: envelope as unknown as Envelope<B>, wire, hash: envelopeHashOfSigningInput(input) };
}
