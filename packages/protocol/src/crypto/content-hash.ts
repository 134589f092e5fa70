// Algorithm-tagged content hashes (`sha256:<hex>`), so a stronger or faster algorithm can be added later.
import { createHash } from "node:crypto";
import { SignetError } from "../errors/signet-error.js";
import { canonicalize } from "../json/canonical-json.js";

/** The hash algorithms this version understands. */
export const HASH_ALGORITHMS = ["sha256"] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

/** A tagged hash such as `sha256:9f86d0...`. */
export type ContentHash = `${HashAlgorithm}:${string}`;

const SHA256_HASH = /^sha256:[0-9a-f]{64}$/;

/** Hashes bytes or a string (as UTF-8). Example: `hashBytes("abc")` → `sha256:ba7816bf...`. */
export function hashBytes(data: string | Uint8Array, algorithm: HashAlgorithm = "sha256"): ContentHash {
  const hash = createHash(algorithm);
  if (typeof data === "string") hash.update(data, "utf8");
  else hash.update(data);
  return `${algorithm}:${hash.digest("hex")}`;
}

/** Hashes the RFC 8785 canonical JSON of `value`. */
export function hashJson(value: unknown, algorithm: HashAlgorithm = "sha256"): ContentHash {
  return hashBytes(canonicalize(value), algorithm);
}

/**
 * Checks that `value` is a well-formed tagged hash of a known algorithm and returns its algorithm.
 * Unknown tags and malformed digests throw `INVALID_ENVELOPE`.
 */
export function parseContentHash(value: unknown): HashAlgorithm {
  if (typeof value === "string" && SHA256_HASH.test(value)) return "sha256";
  const tag = typeof value === "string" ? value.split(":", 1)[0] : undefined;
  const reason =
    tag !== undefined && value !== tag && tag !== "sha256" ? "unknown_hash_algorithm" : "bad_hash";
  throw new SignetError("INVALID_ENVELOPE", "Malformed or unsupported content hash", { reason });
}

/** True when `value` is a well-formed tagged hash of a known algorithm. */
export function isContentHash(value: unknown): value is ContentHash {
  return typeof value === "string" && SHA256_HASH.test(value);
}
