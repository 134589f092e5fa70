// Session commitments: the history hash against a straightforward re-implementation, and the
// verifier refusing a forged signature, another key, and any change to the committed history.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ContentHash,
  Ed25519PrivateKey,
  SESSION_COMMITMENT_DOMAIN,
  SESSION_RECEIPT_DOMAIN,
  isSignetError,
  sessionHistoryHash,
  signRuntimeDocument,
  verifySessionCommitment,
  verifySessionReceipt,
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

  it("receipts verify with the runtime key and bind the envelope and session", () => {
    const key = Ed25519PrivateKey.generate();
    const request: ContentHash = `sha256:${"d".repeat(64)}`;
    const receipt = signRuntimeDocument(
      SESSION_RECEIPT_DOMAIN,
      {
        session: "s-0123456789abcdefghijkl",
        type: "session.vote",
        message_id: "m1",
        from: "bob",
        request,
        seq: 3,
        status: "OPEN",
        message_count: 4,
        history_hash: `sha256:${"e".repeat(64)}`,
        at: "2026-11-22T10:00:00.000Z",
      },
      key,
    );
    expect(
      codeOf(() => verifySessionReceipt(receipt, key.publicKey, { request, session: receipt.session })),
    ).toBeUndefined();
    expect(codeOf(() => verifySessionReceipt({ ...receipt, seq: 2 }, key.publicKey))).toBe(
      "SIGNATURE_INVALID",
    );
    expect(codeOf(() => verifySessionReceipt(receipt, Ed25519PrivateKey.generate().publicKey))).toBe(
      "SIGNATURE_INVALID",
    );
    expect(
      codeOf(() => verifySessionReceipt(receipt, key.publicKey, { request: `sha256:${"0".repeat(64)}` })),
    ).toBe("SIGNATURE_INVALID");
    // The commitment domain is not the receipt domain: one cannot stand in for the other.
    const { sig: _sig, kid: _kid, ...fields } = receipt;
    const asCommitment = signRuntimeDocument(SESSION_COMMITMENT_DOMAIN, fields, key);
    expect(codeOf(() => verifySessionReceipt(asCommitment, key.publicKey))).toBe("SIGNATURE_INVALID");
  });
});
