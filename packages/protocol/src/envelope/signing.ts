// Signing input, envelope hash, building and signing: the exact bytes every signature covers.
import { createHash } from "node:crypto";
import { type ContentHash, hashBytes } from "../crypto/content-hash.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { newMessageId, newNonce } from "../ids.js";
import { type JsonValue, canonicalize } from "../json/canonical-json.js";
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

/** Serializes the given fields of `source` as one canonical JSON object, in canonical key order. */
function canonicalObject(
  source: Readonly<Record<string, unknown>>,
  fields: readonly string[],
  prepared?: Readonly<Record<string, string>>,
): string {
  let out = "{";
  for (const field of fields) {
    const value = source[field];
    if (value === undefined) continue;
    if (out.length > 1) out += ",";
    out += `"${field}":`;
    out += prepared?.[field] ?? canonicalize(value);
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
  return `sha256:${createHash("sha256").update(input).digest("hex")}`;
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
  const header: EnvelopeHeader = {
    v: PROTOCOL_VERSION,
    id: draft.id ?? newMessageId(),
    type: draft.type,
    from: draft.from,
    to: draft.to,
    ts: draft.ts ?? Date.now(),
    nonce: draft.nonce ?? newNonce(),
    kid: key.kid,
    body_hash: hashBytes(bodyText),
    ...(draft.session === undefined ? {} : { session: draft.session }),
    ...(draft.intent === undefined ? {} : { intent: draft.intent }),
    ...(draft.body_type === undefined ? {} : { body_type: draft.body_type }),
    ...(draft.provenance === undefined ? {} : { provenance: draft.provenance }),
    ...(draft.re === undefined ? {} : { re: draft.re }),
    ...(draft.status === undefined ? {} : { status: draft.status }),
    ...(draft.decision === undefined ? {} : { decision: draft.decision }),
  };
  const headerText = canonicalHeader(header);
  const input = signingInputFromCanonicalHeader(headerText);
  const sig = key.sign(input).toString("base64url");
  const envelope = { ...header, body: draft.body, sig } as Envelope<B>;
  // Check the result against the same rules a verifier applies, so a sender learns of a bad field
  // here rather than from the peer's refusal.
  assertEnvelopeShape(envelope as unknown as JsonValue);
  const wire = canonicalObject(envelope as unknown as Record<string, unknown>, ENVELOPE_FIELDS, {
    body: bodyText,
    sig: `"${sig}"`,
  });
  return { envelope, wire, hash: envelopeHashOfSigningInput(input) };
}
