// Session commitments: the history hash against a straightforward re-implementation, and the
// verifier refusing a forged signature, another key, and any change to the committed history.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ContentHash,
  Ed25519PrivateKey,
  SESSION_COMMITMENT_DOMAIN,
  isSignetError,
  sessionHistoryHash,
  signRuntimeDocument,
  verifySessionCommitment,
} from "../src/index.js";

const hashArbitrary = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((bytes): ContentHash => `sha256:${Buffer.from(bytes).toString("hex")}`);

/** The construction as docs/sessions.md states it, written out plainly. */
function reference(start: string, hashes: readonly string[]): string {
  let h = `sha256:${"0".repeat(64)}`;
  for (const next of [start, ...hashes]) {
    h = "sha256:" + createHash("sha256").update(`${h}\n${next}`, "utf8").digest("hex");
  }
  return h;
}

function codeOf(work: () => void): string | undefined {
  try {
    work();
    return undefined;
  } catch (error) {
    return isSignetError(error) ? error.code : "not-a-signet-error";
  }
}

describe("session commitments", () => {
  it("hash the history as documented", () => {
    fc.assert(
      fc.property(hashArbitrary, fc.array(hashArbitrary, { maxLength: 20 }), (start, hashes) => {
        expect(sessionHistoryHash(start, hashes)).toBe(reference(start, hashes));
      }),
    );
  });

  it("verify with the runtime key and refuse forgeries and other histories", () => {
    const key = Ed25519PrivateKey.generate();
    const start: ContentHash = `sha256:${"a".repeat(64)}`;
    const hashes: ContentHash[] = [`sha256:${"b".repeat(64)}`, `sha256:${"c".repeat(64)}`];
    const commitment = signRuntimeDocument(
      SESSION_COMMITMENT_DOMAIN,
      {
        session: "s-0123456789abcdefghijkl",
        status: "RESOLVED",
        message_count: 2,
        start_hash: start,
        history_hash: sessionHistoryHash(start, hashes),
      },
      key,
    );
    expect(
      codeOf(() =>
        verifySessionCommitment(commitment, key.publicKey, { startHash: start, envelopeHashes: hashes }),
      ),
    ).toBeUndefined();
    const other = Ed25519PrivateKey.generate();
    expect(codeOf(() => verifySessionCommitment(commitment, other.publicKey))).toBe("SIGNATURE_INVALID");
    expect(codeOf(() => verifySessionCommitment({ ...commitment, status: "CANCELLED" }, key.publicKey))).toBe(
      "SIGNATURE_INVALID",
    );
    expect(
      codeOf(() =>
        verifySessionCommitment(commitment, key.publicKey, {
          startHash: start,
          envelopeHashes: [...hashes].reverse(),
        }),
      ),
    ).toBe("HASH_MISMATCH");
    expect(
      codeOf(() =>
        verifySessionCommitment(commitment, key.publicKey, {
          startHash: start,
          envelopeHashes: hashes.slice(1),
        }),
      ),
    ).toBe("HASH_MISMATCH");
  });
});
