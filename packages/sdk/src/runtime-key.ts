// The runtime's public key as a client pins it: a key object, base64url of its 32 bytes, or SPKI PEM.
import { Ed25519PublicKey } from "@signet/protocol";
import { SdkError } from "./errors.js";

/** A runtime public key in any accepted form (`keys/runtime.pub` may hold PEM or base64url). */
export type RuntimeKeyInput = Ed25519PublicKey | string;

/**
 * Reads a pinned runtime key; throws `SdkError` (reason `runtime_key`) for anything that is not a
 * valid Ed25519 public key, so a typo fails at construction rather than as a signature error later.
 *
 * Example: `parseRuntimeKey(readFileSync(".signet/keys/runtime.pub", "utf8"))`.
 */
export function parseRuntimeKey(value: RuntimeKeyInput | undefined): Ed25519PublicKey | undefined {
  if (value === undefined || value instanceof Ed25519PublicKey) return value;
  try {
    return value.trimStart().startsWith("-----BEGIN")
      ? Ed25519PublicKey.fromPem(value)
      : Ed25519PublicKey.fromBase64Url(value.trim());
  } catch (cause) {
    throw new SdkError("runtimePublicKey is not a valid Ed25519 public key", {
      reason: "runtime_key",
      cause,
    });
  }
}
