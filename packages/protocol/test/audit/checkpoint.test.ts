// Signed checkpoints, the runtime key chain and proofs checked against checkpoints, with real keys.
import { createHash, verify as nodeVerify } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CHECKPOINT_DOMAIN,
  type Checkpoint,
  RUNTIME_KEY_DOMAIN,
  checkpointHash,
  parseCheckpoint,
  signCheckpoint,
  signRuntimeKeyRecord,
  verifyCheckpointSignature,
  verifyRuntimeKeyChain,
} from "../../src/audit/checkpoint.js";
import { canonicalize } from "../../src/json/canonical-json.js";
import {
  createConsistencyProof,
  createInclusionProof,
  verifyCheckpointConsistency,
  verifyInclusionInCheckpoint,
} from "../../src/audit/proofs.js";
import { SignetError } from "../../src/errors/signet-error.js";
import { KEY_1, KEY_2, OTHER_KEY, buildLog, timeOf } from "./log-fixture.js";

const fields = {
  tree_size: 1000,
  root_hash: `sha256:${"ab".repeat(32)}`,
  time: "2026-11-22T10:00:01.000000Z",
} as const;

function codeAndReason(fn: () => unknown): [string, string | undefined] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SignetError);
    return [(error as SignetError).code, (error as SignetError).details.reason];
  }
  throw new Error("expected a SignetError");
}

describe("checkpoints", () => {
  const checkpoint = signCheckpoint(fields, KEY_1);

  it("are Ed25519 signatures over the domain line and the canonical checkpoint without sig", () => {
    const { sig, ...unsigned } = checkpoint;
    expect(unsigned.kid).toBe(KEY_1.kid);
    const input = Buffer.from(`signet/1 ${CHECKPOINT_DOMAIN}\n${canonicalize(unsigned)}`);
    expect(nodeVerify(null, input, KEY_1.publicKey.keyObject, Buffer.from(sig, "base64url"))).toBe(true);
    expect(checkpointHash(checkpoint)).toBe(`sha256:${createHash("sha256").update(input).digest("hex")}`);
    expect(() => verifyCheckpointSignature(checkpoint, KEY_1.publicKey)).not.toThrow();
  });

  it("fail with another key, or with any member changed", () => {
    expect(codeAndReason(() => verifyCheckpointSignature(checkpoint, KEY_2.publicKey))).toEqual([
      "SIGNATURE_INVALID",
      "runtime_sig",
    ]);
    for (const change of [
      { tree_size: 1001 },
      { root_hash: `sha256:${"cd".repeat(32)}` },
      { time: timeOf(5) },
      { prev: `sha256:${"00".repeat(32)}` },
    ]) {
      expect(() =>
        verifyCheckpointSignature({ ...checkpoint, ...change } as Checkpoint, KEY_1.publicKey),
      ).toThrow(SignetError);
    }
  });

  it("link to the previous checkpoint by its hash", () => {
    const next = signCheckpoint({ ...fields, tree_size: 2000, prev: checkpointHash(checkpoint) }, KEY_1);
    expect(next.prev).toBe(checkpointHash(checkpoint));
    expect(checkpointHash(next)).not.toBe(checkpointHash(checkpoint));
  });

  it("are parsed strictly", () => {
    expect(parseCheckpoint(JSON.parse(JSON.stringify(checkpoint)))).toEqual(checkpoint);
    for (const bad of [
      { ...checkpoint, extra: 1 },
      { ...checkpoint, tree_size: -1 },
      { ...checkpoint, root_hash: "sha256:zz" },
      { ...checkpoint, time: "yesterday" },
      { ...checkpoint, kid: "short" },
      { ...checkpoint, sig: undefined },
      null,
      [],
    ]) {
      expect(codeAndReason(() => parseCheckpoint(bad))).toEqual(["INVALID_REQUEST", "checkpoint"]);
    }
    expect(codeAndReason(() => signCheckpoint({ ...fields, tree_size: 1.5 }, KEY_1))).toEqual([
      "INVALID_REQUEST",
      "checkpoint",
    ]);
  });
});

describe("the runtime key chain", () => {
  const genesis = signRuntimeKeyRecord({ key: KEY_1, tree_size: 0, time: timeOf(0) });
  const rotation = signRuntimeKeyRecord({ key: KEY_2, endorser: KEY_1, tree_size: 5000, time: timeOf(5000) });

  it("records each key endorsed by the one before, and by itself", () => {
    expect(genesis).toMatchObject({ key_id: KEY_1.kid, kid: KEY_1.kid, tree_size: 0 });
    expect(genesis.prev_key_id).toBeUndefined();
    expect(rotation).toMatchObject({
      key_id: KEY_2.kid,
      prev_key_id: KEY_1.kid,
      kid: KEY_1.kid,
      public_key: KEY_2.publicKey.toBase64Url(),
    });
    const { sig, key_sig, ...unsigned } = rotation;
    const input = Buffer.from(`signet/1 ${RUNTIME_KEY_DOMAIN}\n${canonicalize(unsigned)}`);
    expect(KEY_1.publicKey.verify(input, Buffer.from(sig, "base64url"))).toBe(true);
    expect(KEY_2.publicKey.verify(input, Buffer.from(key_sig, "base64url"))).toBe(true);
  });

  it("is trusted from any one of its keys and gives each key its period", () => {
    for (const trusted of [KEY_1, KEY_2]) {
      const chain = verifyRuntimeKeyChain([genesis, rotation], trusted.publicKey);
      expect(chain.periods.map(({ kid, from, until }) => ({ kid, from, until }))).toEqual([
        { kid: KEY_1.kid, from: 0, until: 5000 },
        { kid: KEY_2.kid, from: 5000, until: undefined },
      ]);
    }
    const chain = verifyRuntimeKeyChain([genesis, rotation], KEY_2.publicKey);
    const at = (size: number, key = KEY_1): Checkpoint => signCheckpoint({ ...fields, tree_size: size }, key);
    expect(() => chain.verifyCheckpoint(at(5000))).not.toThrow(); // the old key's last size
    expect(() => chain.verifyCheckpoint(at(5000, KEY_2))).not.toThrow();
    expect(codeAndReason(() => chain.verifyCheckpoint(at(5001)))).toEqual([
      "SIGNATURE_INVALID",
      "key_period",
    ]);
    expect(codeAndReason(() => chain.verifyCheckpoint(at(4999, KEY_2)))).toEqual([
      "SIGNATURE_INVALID",
      "key_period",
    ]);
    expect(codeAndReason(() => chain.verifyCheckpoint(at(10, OTHER_KEY)))).toEqual([
      "SIGNATURE_INVALID",
      "runtime_sig",
    ]);
  });

  it("an empty chain is the trusted key alone", () => {
    const chain = verifyRuntimeKeyChain([], KEY_1.publicKey);
    expect(() => chain.verifyCheckpoint(signCheckpoint(fields, KEY_1))).not.toThrow();
  });

  it("refuses a key the auditor does not trust, and chains an attacker could build", () => {
    const refused = (records: unknown[], trusted = KEY_1): [string, string | undefined] =>
      codeAndReason(() => verifyRuntimeKeyChain(records, trusted.publicKey));
    expect(refused([genesis, rotation], OTHER_KEY)).toEqual(["SIGNATURE_INVALID", "key_chain"]);
    // An attacker's own key endorsing the real one cannot produce the real key's own signature.
    const fakeGenesis = signRuntimeKeyRecord({ key: OTHER_KEY, tree_size: 0, time: timeOf(0) });
    const fakeEndorsement = signRuntimeKeyRecord({
      key: KEY_2,
      endorser: OTHER_KEY,
      tree_size: 0,
      time: timeOf(0),
    });
    expect(refused([fakeGenesis, { ...fakeEndorsement, key_sig: fakeGenesis.key_sig }], KEY_2)).toEqual([
      "SIGNATURE_INVALID",
      "key_chain",
    ]);
    expect(refused([rotation])).toEqual(["SIGNATURE_INVALID", "key_chain"]); // the first must endorse itself
    expect(refused([genesis, { ...rotation, tree_size: 1 }])).toEqual(["SIGNATURE_INVALID", "key_chain"]);
    expect(refused([genesis, { ...rotation, key_sig: rotation.sig }])).toEqual([
      "SIGNATURE_INVALID",
      "key_chain",
    ]);
    expect(refused([genesis, { ...rotation, key_id: KEY_1.kid }])).toEqual([
      "SIGNATURE_INVALID",
      "key_chain",
    ]);
    expect(refused([genesis, genesis])).toEqual(["SIGNATURE_INVALID", "key_chain"]);
    expect(refused([genesis, { ...rotation, extra: true }])).toEqual(["SIGNATURE_INVALID", "key_chain"]);
    const backwards = signRuntimeKeyRecord({ key: KEY_2, endorser: KEY_1, tree_size: 5, time: timeOf(5) });
    const late = signRuntimeKeyRecord({ key: KEY_1, tree_size: 10, time: timeOf(0) });
    expect(refused([late, backwards])).toEqual(["SIGNATURE_INVALID", "key_chain"]);
  });
});

describe("proofs against signed checkpoints", () => {
  const log = buildLog(40, { every: 10, rotateAt: 15 });
  const keys = verifyRuntimeKeyChain(log.keys, KEY_1.publicKey);

  it("every entry's inclusion proof verifies against every checkpoint that covers it, with only public keys", () => {
    for (const checkpoint of log.checkpoints) {
      for (let seq = 0; seq < checkpoint.tree_size; seq++) {
        const proof = JSON.parse(JSON.stringify(createInclusionProof(log.tree, seq, checkpoint.tree_size)));
        expect(verifyInclusionInCheckpoint(log.entries[seq]!.hash, proof, checkpoint, keys)).toBe(true);
        expect(verifyInclusionInCheckpoint(log.entries[(seq + 1) % 40]!.hash, proof, checkpoint, keys)).toBe(
          false,
        );
      }
    }
  });

  it("refuses a proof for another tree size, a forged checkpoint or a malformed path", () => {
    const checkpoint = log.checkpoints[1]!;
    const proof = createInclusionProof(log.tree, 3, 20);
    expect(
      verifyInclusionInCheckpoint(log.entries[3]!.hash, { ...proof, tree_size: 30 }, checkpoint, keys),
    ).toBe(false);
    const forged = { ...checkpoint, root_hash: log.checkpoints[0]!.root_hash };
    expect(verifyInclusionInCheckpoint(log.entries[3]!.hash, proof, forged, keys)).toBe(false);
    expect(
      verifyInclusionInCheckpoint(log.entries[3]!.hash, { ...proof, path: ["sha256:00"] }, checkpoint, keys),
    ).toBe(false);
    expect(verifyInclusionInCheckpoint("nonsense", proof, checkpoint, keys)).toBe(false);
  });

  it("any two checkpoints are consistent, across the key rotation", () => {
    for (const older of log.checkpoints) {
      for (const newer of log.checkpoints) {
        if (newer.tree_size < older.tree_size) continue;
        const proof = createConsistencyProof(log.tree, older.tree_size, newer.tree_size);
        expect(verifyCheckpointConsistency(older, newer, proof, keys)).toBe(true);
        if (newer.tree_size > older.tree_size) {
          expect(verifyCheckpointConsistency(newer, older, proof, keys)).toBe(false);
        }
      }
    }
    const [a, b] = [log.checkpoints[0]!, log.checkpoints[3]!];
    const proof = createConsistencyProof(log.tree, a.tree_size, b.tree_size);
    const bad = { ...proof, path: [proof.path[1]!, proof.path[0]!, ...proof.path.slice(2)] };
    expect(verifyCheckpointConsistency(a, b, bad, keys)).toBe(false);
    expect(verifyCheckpointConsistency(a, b, { ...proof, first: 11 }, keys)).toBe(false);
  });
});
