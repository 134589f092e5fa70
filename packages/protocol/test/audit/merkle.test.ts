// RFC 9162 Merkle trees: every proof for trees of 1..64 leaves against a reference written straight
// from the RFC's definitions, the Certificate Transparency vectors, and properties of the frontier.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MerkleFrontier,
  MerkleTree,
  emptyMerkleRoot,
  merkleConsistencyProof,
  merkleInclusionProof,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  sha256ContentHash,
  sha256HashBytes,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
} from "../../src/audit/merkle.js";

// --- The reference: RFC 9162 section 2.1, transcribed as literally as possible. -------------------

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/** The largest power of two smaller than n. */
const largestPowerOfTwoBelow = (n: number): number => 2 ** Math.ceil(Math.log2(n) - 1);

/** MTH(D[n]) over leaf *data*. */
function mth(d: readonly Buffer[]): Buffer {
  const n = d.length;
  if (n === 0) return sha256();
  if (n === 1) return sha256(Buffer.of(0x00), d[0]!);
  const k = largestPowerOfTwoBelow(n);
  return sha256(Buffer.of(0x01), mth(d.slice(0, k)), mth(d.slice(k, n)));
}

/** PATH(m, D[n]), section 2.1.3.1. */
function refPath(m: number, d: readonly Buffer[]): Buffer[] {
  const n = d.length;
  if (n === 1) return [];
  const k = largestPowerOfTwoBelow(n);
  if (m < k) return [...refPath(m, d.slice(0, k)), mth(d.slice(k, n))];
  return [...refPath(m - k, d.slice(k, n)), mth(d.slice(0, k))];
}

/** SUBPROOF(m, D[n], b), section 2.1.4.1. */
function refSubproof(m: number, d: readonly Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) return [...refSubproof(m, d.slice(0, k), b), mth(d.slice(k, n))];
  return [...refSubproof(m - k, d.slice(k, n), false), mth(d.slice(0, k))];
}

/** PROOF(m, D[n]) for 0 < m < n. */
const refProof = (m: number, d: readonly Buffer[]): Buffer[] => refSubproof(m, d, true);

// --- Data. ----------------------------------------------------------------------------------------

const data = Array.from({ length: 64 }, (_, i) => Buffer.from(`leaf ${i} ${"x".repeat(i % 7)}`));
const leaves = data.map((d) => sha256(Buffer.of(0x00), d));
const roots = Array.from({ length: 65 }, (_, n) => mth(data.slice(0, n)));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// RFC 6962 / 9162 reference vectors (transparency-dev/merkle testonly), as data.
const CT_DATA = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
].map((h) => Buffer.from(h, "hex"));
const CT_ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

describe("RFC 9162 vectors", () => {
  const ctLeaves = CT_DATA.map(merkleLeafHash);

  it("gives the published root for every size 0..8", () => {
    expect(hex(emptyMerkleRoot())).toBe(CT_ROOTS[0]);
    for (let n = 0; n <= 8; n++) expect(hex(merkleRoot(ctLeaves, n)), `size ${n}`).toBe(CT_ROOTS[n]);
  });

  it("gives the published inclusion and consistency proofs", () => {
    expect(merkleInclusionProof(ctLeaves, 0, 8).map(hex)).toEqual([
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
    expect(merkleInclusionProof(ctLeaves, 5, 8).map(hex)).toEqual([
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    expect(merkleConsistencyProof(ctLeaves, 2, 8).map(hex)).toEqual([
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
  });

  it("hashes leaves and nodes with the 0x00 and 0x01 prefixes", () => {
    expect(merkleLeafHash(Buffer.from("a"))).toEqual(sha256(Buffer.of(0), Buffer.from("a")));
    const [a, b] = [leaves[0]!, leaves[1]!];
    expect(merkleNodeHash(a, b)).toEqual(sha256(Buffer.of(1), a, b));
  });
});

describe("every proof of trees of 1..64 leaves against the reference", () => {
  const tree = MerkleTree.from(leaves);

  it("roots agree for every size 0..64 (array, frontier and full tree)", () => {
    const frontier = new MerkleFrontier();
    for (let n = 0; n <= 64; n++) {
      expect(merkleRoot(leaves, n)).toEqual(roots[n]);
      expect(tree.root(n)).toEqual(roots[n]);
      expect(frontier.root()).toEqual(roots[n]);
      expect(tree.frontier(n).root()).toEqual(roots[n]);
      if (n < 64) frontier.append(leaves[n]!);
    }
  });

  it("every inclusion proof equals PATH and verifies; wrong leaf, index, size or root does not", () => {
    let checked = 0;
    for (let n = 1; n <= 64; n++) {
      for (let m = 0; m < n; m++) {
        const expected = refPath(m, data.slice(0, n));
        const proof = merkleInclusionProof(leaves, m, n);
        expect(proof, `PATH(${m}, D[${n}])`).toEqual(expected);
        expect(tree.inclusionProof(m, n)).toEqual(expected);
        expect(verifyMerkleInclusion(leaves[m]!, m, n, proof, roots[n]!)).toBe(true);
        expect(verifyMerkleInclusion(leaves[(m + 1) % 64]!, m, n, proof, roots[n]!)).toBe(false);
        if (n > 1) expect(verifyMerkleInclusion(leaves[m]!, (m + 1) % n, n, proof, roots[n]!)).toBe(false);
        // A path can have the same shape in a tree one larger; the size is bound by the root.
        if (n < 64) expect(verifyMerkleInclusion(leaves[m]!, m, n + 1, proof, roots[n + 1]!)).toBe(false);
        expect(verifyMerkleInclusion(leaves[m]!, m, n, proof, roots[n - 1]!)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe((64 * 65) / 2);
  });

  it("every consistency proof equals PROOF and verifies; other roots and sizes do not", () => {
    let checked = 0;
    for (let n = 1; n <= 64; n++) {
      for (let m = 1; m < n; m++) {
        const expected = refProof(m, data.slice(0, n));
        const proof = merkleConsistencyProof(leaves, m, n);
        expect(proof, `PROOF(${m}, D[${n}])`).toEqual(expected);
        expect(tree.consistencyProof(m, n)).toEqual(expected);
        expect(verifyMerkleConsistency(m, n, roots[m]!, roots[n]!, proof)).toBe(true);
        expect(verifyMerkleConsistency(m, n, roots[m - 1]!, roots[n]!, proof)).toBe(false);
        expect(verifyMerkleConsistency(m, n, roots[m]!, roots[n - 1]!, proof)).toBe(false);
        if (n < 64) expect(verifyMerkleConsistency(m, n + 1, roots[m]!, roots[n + 1]!, proof)).toBe(false);
        if (m > 1) expect(verifyMerkleConsistency(m - 1, n, roots[m]!, roots[n]!, proof)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe((63 * 64) / 2);
  });

  it("mangled proofs fail: a flipped bit, a dropped or an extra node, two nodes swapped", () => {
    for (let n = 2; n <= 64; n++) {
      for (let m = 0; m < n; m++) {
        const proof = merkleInclusionProof(leaves, m, n);
        const flipped = proof.map((node) => Buffer.from(node));
        flipped[flipped.length - 1]![5]! ^= 0x10;
        expect(verifyMerkleInclusion(leaves[m]!, m, n, flipped, roots[n]!)).toBe(false);
        expect(verifyMerkleInclusion(leaves[m]!, m, n, proof.slice(0, -1), roots[n]!)).toBe(false);
        expect(verifyMerkleInclusion(leaves[m]!, m, n, [...proof, leaves[0]!], roots[n]!)).toBe(false);
        if (proof.length >= 2) {
          const swapped = [proof[1]!, proof[0]!, ...proof.slice(2)];
          expect(verifyMerkleInclusion(leaves[m]!, m, n, swapped, roots[n]!)).toBe(false);
        }
        if (m === 0) continue;
        const consistency = merkleConsistencyProof(leaves, m, n);
        const bad = consistency.map((node) => Buffer.from(node));
        bad[0]![0]! ^= 0x01;
        expect(verifyMerkleConsistency(m, n, roots[m]!, roots[n]!, bad)).toBe(false);
        expect(verifyMerkleConsistency(m, n, roots[m]!, roots[n]!, consistency.slice(0, -1))).toBe(false);
        expect(verifyMerkleConsistency(m, n, roots[m]!, roots[n]!, [...consistency, leaves[0]!])).toBe(false);
      }
    }
  });

  it("handles the trivial consistency cases explicitly", () => {
    expect(merkleConsistencyProof(leaves, 5, 5)).toEqual([]);
    expect(merkleConsistencyProof(leaves, 0, 9)).toEqual([]);
    expect(verifyMerkleConsistency(5, 5, roots[5]!, roots[5]!, [])).toBe(true);
    expect(verifyMerkleConsistency(5, 5, roots[5]!, roots[6]!, [])).toBe(false);
    expect(verifyMerkleConsistency(5, 5, roots[5]!, roots[5]!, [leaves[0]!])).toBe(false);
    expect(verifyMerkleConsistency(0, 9, roots[0]!, roots[9]!, [])).toBe(true);
    expect(verifyMerkleConsistency(0, 9, roots[1]!, roots[9]!, [])).toBe(false);
    expect(verifyMerkleConsistency(6, 4, roots[6]!, roots[4]!, merkleConsistencyProof(leaves, 4, 6))).toBe(
      false,
    );
    expect(verifyMerkleConsistency(4, 6, roots[4]!, roots[6]!, [])).toBe(false);
  });

  it("verifiers answer false for malformed input and generators refuse it", () => {
    const proof = merkleInclusionProof(leaves, 3, 10);
    expect(verifyMerkleInclusion(Buffer.alloc(31), 3, 10, proof, roots[10]!)).toBe(false);
    expect(verifyMerkleInclusion(leaves[3]!, 3, 10, proof, Buffer.alloc(33))).toBe(false);
    expect(verifyMerkleInclusion(leaves[3]!, 3, 10, [Buffer.alloc(31), ...proof.slice(1)], roots[10]!)).toBe(
      false,
    );
    expect(verifyMerkleInclusion(leaves[3]!, -1, 10, proof, roots[10]!)).toBe(false);
    expect(verifyMerkleInclusion(leaves[3]!, 10, 10, proof, roots[10]!)).toBe(false);
    expect(verifyMerkleInclusion(leaves[3]!, 3.5, 10, proof, roots[10]!)).toBe(false);
    expect(() => merkleInclusionProof(leaves, 10, 10)).toThrow(/below the tree size/);
    expect(() => merkleInclusionProof(leaves, 0, 65)).toThrow(/exceeds/);
    expect(() => merkleConsistencyProof(leaves, 6, 5)).toThrow(/must not exceed/);
    expect(() => merkleRoot([Buffer.alloc(31)])).toThrow(/32 bytes/);
    expect(() => tree.inclusionProof(0, 65)).toThrow(/exceeds/);
  });
});

describe("properties", () => {
  const leafHashes = (count: number): Buffer[] =>
    Array.from({ length: count }, (_, i) => sha256(Buffer.of(0), Buffer.from(`p${i}`)));

  it("proofs from the full tree equal proofs from the array, and verify, for any size and index", () => {
    const all = leafHashes(600);
    const tree = MerkleTree.from(all);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.nat(), fc.nat(), (size, a, b) => {
        const index = a % size;
        const first = 1 + (b % size);
        const root = tree.root(size);
        expect(root).toEqual(merkleRoot(all, size));
        const inclusion = tree.inclusionProof(index, size);
        expect(inclusion).toEqual(merkleInclusionProof(all, index, size));
        expect(verifyMerkleInclusion(all[index]!, index, size, inclusion, root)).toBe(true);
        const consistency = tree.consistencyProof(first, size);
        expect(consistency).toEqual(merkleConsistencyProof(all, first, size));
        expect(verifyMerkleConsistency(first, size, tree.root(first), root, consistency)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("a frontier saved and restored at any point goes on to the same roots", () => {
    const all = leafHashes(300);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 }), (cut, end) => {
        const whole = new MerkleFrontier();
        for (const leaf of all.slice(0, Math.max(cut, end))) whole.append(leaf);
        const first = new MerkleFrontier();
        for (const leaf of all.slice(0, cut)) first.append(leaf);
        expect(first.nodes()).toHaveLength([...cut.toString(2)].filter((bit) => bit === "1").length);
        const restored = MerkleFrontier.from(first.size, first.nodes());
        const copy = restored.clone();
        for (const leaf of all.slice(cut, Math.max(cut, end))) restored.append(leaf);
        expect(restored.root()).toEqual(whole.root());
        expect(copy.root()).toEqual(first.root());
        expect(MerkleTree.from(all).frontier(cut).nodes()).toEqual(first.nodes());
      }),
      { numRuns: 200 },
    );
    expect(() => MerkleFrontier.from(3, [all[0]!])).toThrow(/one node per set bit/);
  });

  it("a proof for one leaf never verifies another leaf of the same tree", () => {
    const all = leafHashes(100);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 100 }), fc.nat(), fc.nat(), (size, a, b) => {
        const index = a % size;
        const other = b % size;
        fc.pre(index !== other);
        const proof = merkleInclusionProof(all, index, size);
        const root = merkleRoot(all, size);
        expect(verifyMerkleInclusion(all[other]!, index, size, proof, root)).toBe(false);
        expect(verifyMerkleInclusion(all[index]!, other, size, proof, root)).toBe(false);
      }),
    );
  });

  it("content hashes round-trip", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(sha256HashBytes(sha256ContentHash(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
    expect(() => sha256HashBytes("sha256:ABC")).toThrow();
  });
});
