// Envelope verification from wire bytes: cheap checks first, the signature last.
import { createHash } from "node:crypto";
import type { ContentHash } from "../crypto/content-hash.js";
import type { Ed25519PublicKey } from "../crypto/ed25519.js";
import { fromBase64Url } from "../crypto/encoding.js";
import { SignetError } from "../errors/signet-error.js";
import { canonicalize } from "../json/canonical-json.js";
import { type StrictJsonLimits, parseStrictJsonDocument } from "../json/strict-json.js";
import { assertEnvelopeShape } from "./fields.js";
import { canonicalHeader, envelopeHashOfSigningInput, signingInputFromCanonicalHeader } from "./signing.js";
import type { Envelope, RequestRef } from "./types.js";

/** What a key resolver returns for a key id. */
export interface ResolvedKey {
  readonly key: Ed25519PublicKey;
  /** The agent the key is registered to. */
  readonly owner: string;
  /** True once the key is revoked: verification then fails with `KEY_REVOKED`. */
  readonly revoked?: boolean;
}

/**
 * Looks a key id up in the caller's prepared registry view. It must not do I/O on the hot path:
 * hand it a map lookup. Return undefined for an unknown key.
 */
export type KeyResolver = (kid: string, sender: string) => ResolvedKey | undefined;

/** Options for {@link verifyEnvelope}. */
export interface VerifyOptions extends StrictJsonLimits {
  readonly resolveKey: KeyResolver;
}

/** An envelope whose structure, body hash, key and signature all checked out. */
export interface VerifiedEnvelope {
  readonly envelope: Envelope;
  /** The envelope hash (SHA-256 of the signing input). */
  readonly hash: ContentHash;
  /** The exact bytes the signature covers. */
  readonly signingInput: Buffer;
  /** The canonical JSON of the body, as hashed. */
  readonly canonicalBody: string;
  /** The key that verified the signature. */
  readonly key: ResolvedKey;
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * Verifies an envelope from its wire bytes and returns it typed, or throws a `SignetError`:
 * `INVALID_ENVELOPE` (size, depth, duplicate or forbidden keys, shape), `UNSUPPORTED_PROTOCOL_VERSION`,
 * `HASH_MISMATCH`, `UNKNOWN_AGENT`, `KEY_REVOKED`, or `SIGNATURE_INVALID`.
 *
 * When the wire text is already canonical (as every Signet sender writes it), the body and header
 * bytes are taken from the wire as they are instead of being canonicalized again.
 *
 * Freshness, replay and authorization are the runtime's later steps, not this function's.
 *
 * Example: `verifyEnvelope(bytes, { resolveKey: (kid) => registry.get(kid) })`.
 */
export function verifyEnvelope(wire: string | Uint8Array, options: VerifyOptions): VerifiedEnvelope {
  const document = parseStrictJsonDocument(wire, options);
  const value = document.value;
  assertEnvelopeShape(value);
  const envelope = value as Envelope;

  let canonicalBody: string;
  let headerText: string;
  if (document.canonical) {
    const source = document.text;
    let header = "{";
    canonicalBody = "";
    for (const member of document.members) {
      if (member.key === "body") {
        canonicalBody = source.slice(member.valueStart, member.end);
      } else if (member.key !== "sig") {
        if (header.length > 1) header += ",";
        header += source.slice(member.start, member.end);
      }
    }
    headerText = `${header}}`;
  } else {
    canonicalBody = canonicalize(envelope.body);
    headerText = canonicalHeader(envelope);
  }

  if (`sha256:${sha256Hex(canonicalBody)}` !== envelope.body_hash) {
    throw new SignetError("HASH_MISMATCH", undefined, { reason: "body" });
  }

  const key = options.resolveKey(envelope.kid, envelope.from);
  if (key === undefined) throw new SignetError("UNKNOWN_AGENT", undefined, { reason: "key" });
  if (key.owner !== envelope.from)
    throw new SignetError("SIGNATURE_INVALID", undefined, { reason: "key_owner" });
  if (key.revoked === true) throw new SignetError("KEY_REVOKED");

  const input = signingInputFromCanonicalHeader(headerText);
  const signature = fromBase64Url(envelope.sig);
  if (signature === undefined || !key.key.verify(input, signature))
    throw new SignetError("SIGNATURE_INVALID", undefined, { reason: "sig" });

  return { envelope, hash: envelopeHashOfSigningInput(input), signingInput: input, canonicalBody, key };
}

/**
 * Checks that a verified result answers `request` (same id and envelope hash). An unbound result is
 * `SIGNATURE_INVALID` with reason `unbound`: its signature is good but not for this request.
 */
export function assertResultAnswers(result: Envelope, request: RequestRef): void {
  if (result.type !== "result" || result.re?.id !== request.id || result.re.hash !== request.hash) {
    throw new SignetError("SIGNATURE_INVALID", "The result does not answer this request", {
      reason: "unbound",
    });
  }
}

/**
 * Checks an envelope timestamp against the freshness window (default ±60 s): `STALE_MESSAGE` outside.
 */
export function assertFresh(ts: number, now: number = Date.now(), windowMs = 60_000): void {
  if (Math.abs(now - ts) > windowMs) throw new SignetError("STALE_MESSAGE", undefined, { reason: "window" });
}
