// Documents the runtime signs with its own key (receipts, deliveries): one domain-separated scheme.
import type { Ed25519PrivateKey, Ed25519PublicKey } from "../crypto/ed25519.js";
import { fromBase64Url } from "../crypto/encoding.js";
import { SignetError } from "../errors/signet-error.js";
import { type JsonValue, canonicalize } from "../json/canonical-json.js";

/** The signing input: `"signet/1 <domain>\n"` then the canonical JSON of the document without `sig`. */
export function runtimeSigningInput(domain: string, document: Readonly<Record<string, unknown>>): Buffer {
  const { sig: _sig, ...unsigned } = document;
  return Buffer.from(`signet/1 ${domain}\n${canonicalize(unsigned)}`, "utf8");
}

/** Signs a document: returns it with `kid` and `sig` set. */
export function signRuntimeDocument<T extends Record<string, JsonValue>>(
  domain: string,
  document: T,
  key: Ed25519PrivateKey,
): T & { kid: string; sig: string } {
  const withKid = { ...document, kid: key.kid };
  const sig = key.sign(runtimeSigningInput(domain, withKid)).toString("base64url");
  return { ...withKid, sig };
}

/**
 * Verifies a runtime-signed document against the runtime's public key; throws `SIGNATURE_INVALID`
 * (reason `runtime_sig`) when the key id or signature does not match.
 */
export function verifyRuntimeDocument(
  domain: string,
  document: Readonly<Record<string, unknown>>,
  key: Ed25519PublicKey,
): void {
  const sig = typeof document.sig === "string" ? fromBase64Url(document.sig) : undefined;
  if (
    document.kid !== key.kid ||
    sig === undefined ||
    !key.verify(runtimeSigningInput(domain, document), sig)
  ) {
    throw new SignetError("SIGNATURE_INVALID", "The runtime's signature does not verify", {
      reason: "runtime_sig",
    });
  }
}
