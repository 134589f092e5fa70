// Inclusion and consistency proofs as JSON documents, checked against signed checkpoints.
//
// What `/v1/audit/proofs/...` serves and what an auditor checks offline: an entry is in the log a
// checkpoint signed, and a later checkpoint extends an earlier one. Hashes travel as `sha256:<hex>`.
import type { ContentHash } from "../crypto/content-hash.js";
import { type Checkpoint, type RuntimeKeyChain } from "./checkpoint.js";
import { type Digest, contentHashToDigest } from "./digest.js";
import {
  type MerkleTree,
  treeContentHashes,
  verifyConsistencyDigests,
  verifyInclusionDigests,
} from "./merkle.js";

/** RFC 9162 inclusion proof of one entry in the tree of `tree_size` entries. */
export interface InclusionProofDocument {
  /** The entry's seq. */
  readonly leaf_index: number;
  readonly tree_size: number;
  /** Sibling hashes, leaf level first. */
  readonly path: readonly ContentHash[];
}

/** RFC 9162 consistency proof between the trees of `first` and `second` entries. */
export interface ConsistencyProofDocument {
  readonly first: number;
  readonly second: number;
  readonly path: readonly ContentHash[];
}

/** The inclusion proof of entry `seq` in the tree of the first `treeSize` entries. */
export function createInclusionProof(
  tree: MerkleTree,
  seq: number,
  treeSize = tree.size,
): InclusionProofDocument {
  return {
    leaf_index: seq,
    tree_size: treeSize,
    path: treeContentHashes.inclusion(tree, seq, treeSize),
  };
}

/** The consistency proof between the trees of the first `first` and `second` entries. */
export function createConsistencyProof(
  tree: MerkleTree,
  first: number,
  second = tree.size,
): ConsistencyProofDocument {
  return { first, second, path: treeContentHashes.consistency(tree, first, second) };
}

function digests(path: readonly unknown[]): Digest[] | undefined {
  if (!Array.isArray(path)) return undefined;
  const out: Digest[] = [];
  for (const node of path) {
    const digest = contentHashToDigest(node);
    if (digest === undefined) return undefined;
    out.push(digest);
  }
  return out;
}

function signedBy(checkpoint: Checkpoint, keys: RuntimeKeyChain): boolean {
  try {
    keys.verifyCheckpoint(checkpoint);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `checkpoint` verifies under the key chain and `proof` shows the entry with hash
 * `entryHash` at position `proof.leaf_index` of the tree the checkpoint signed. Never throws.
 *
 * Example:
 * ```ts
 * const keys = verifyRuntimeKeyChain(keyRecords, runtimePublicKey);
 * verifyInclusionInCheckpoint(auditEntryHash(bytes), proof, checkpoint, keys); // true
 * ```
 */
export function verifyInclusionInCheckpoint(
  entryHash: string,
  proof: InclusionProofDocument,
  checkpoint: Checkpoint,
  keys: RuntimeKeyChain,
): boolean {
  const leaf = contentHashToDigest(entryHash);
  const root = contentHashToDigest(checkpoint.root_hash);
  const path = digests(proof.path);
  if (leaf === undefined || root === undefined || path === undefined) return false;
  if (proof.tree_size !== checkpoint.tree_size || !signedBy(checkpoint, keys)) return false;
  return verifyInclusionDigests(leaf, proof.leaf_index, proof.tree_size, path, root);
}

/**
 * True when both checkpoints verify under the key chain and `proof` shows the newer tree extends the
 * older one (RFC 9162 section 2.1.4.2). Never throws.
 */
export function verifyCheckpointConsistency(
  older: Checkpoint,
  newer: Checkpoint,
  proof: ConsistencyProofDocument,
  keys: RuntimeKeyChain,
): boolean {
  const first = contentHashToDigest(older.root_hash);
  const second = contentHashToDigest(newer.root_hash);
  const path = digests(proof.path);
  if (first === undefined || second === undefined || path === undefined) return false;
  if (proof.first !== older.tree_size || proof.second !== newer.tree_size) return false;
  if (!signedBy(older, keys) || !signedBy(newer, keys)) return false;
  return verifyConsistencyDigests(older.tree_size, newer.tree_size, first, second, path);
}
