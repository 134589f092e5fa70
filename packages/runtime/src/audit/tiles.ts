// Subtree hashes for proofs without holding the whole Merkle tree.
//
// A log store keeps, beside each entry's hash, the root of every complete tile of TILE_SIZE entries
// (tile t covers seq [t·TILE_SIZE, (t+1)·TILE_SIZE)). RFC 9162's proof recursion only asks for
// dyadic ranges, so any range of TILE_SIZE or more aligned entries is a combination of tile roots,
// and only the tiles at the edges of a proof need their leaf hashes read: an inclusion or consistency
// proof in a log of n entries costs about n / TILE_SIZE node hashes and at most three tiles of leaf
// reads, instead of n hashes over every leaf.
//
// After retention prunes the entries below an anchor (a checkpoint's tree size), the anchor's
// frontier stands in for them: every range a proof about a later entry asks for that lies below the
// anchor is one of the frontier's nodes or a tile (docs/audit.md, "Retention").
import {
  type AuditAnchor,
  type ContentHash,
  SignetError,
  consistencyProofFromSubtrees,
  inclusionProofFromSubtrees,
  merkleNodeHash,
  sha256ContentHash,
  sha256HashBytes,
} from "@signet/protocol";

/** Entries per tile: a power of two. */
export const TILE_SIZE = 1024;

/** What a store answers to compute subtree hashes. */
export interface TileSource {
  /** The root of complete tile `index`, when stored. */
  tile(index: number): Buffer | undefined;
  /** The leaf hashes of seq [start, end), in order; entries pruned away are simply absent. */
  leaves(start: number, end: number): Map<number, Buffer>;
  /** The anchor the log was pruned to, if any. */
  readonly anchor: AuditAnchor | undefined;
}

function missing(start: number, end: number): SignetError {
  return new SignetError(
    "NOT_FOUND",
    `The audit log no longer holds what proves range ${start}..${end - 1} (pruned by retention)`,
    { reason: "audit_pruned" },
  );
}

/**
 * Builds proofs against a TileSource. One instance serves one proof: it caches the leaves it read.
 *
 * Example: `new SubtreeHasher(source).inclusionProof(seq, treeSize)`.
 */
export class SubtreeHasher {
  readonly #source: TileSource;
  readonly #leafTiles = new Map<number, Map<number, Buffer>>();
  readonly #anchorNodes = new Map<string, Buffer>();

  constructor(source: TileSource) {
    this.#source = source;
    const anchor = source.anchor;
    if (anchor !== undefined) {
      // The frontier's nodes are the perfect subtrees of [0, tree_size), largest first.
      let start = 0;
      let remaining = anchor.tree_size;
      for (const node of anchor.frontier) {
        let size = 1;
        while (size * 2 <= remaining) size *= 2;
        this.#anchorNodes.set(`${start}:${start + size}`, sha256HashBytes(node));
        start += size;
        remaining -= size;
      }
    }
  }

  inclusionProof(seq: number, treeSize: number): ContentHash[] {
    return inclusionProofFromSubtrees(seq, treeSize, (start, end) => this.subtree(start, end)).map(
      sha256ContentHash,
    );
  }

  consistencyProof(first: number, second: number): ContentHash[] {
    return consistencyProofFromSubtrees(first, second, (start, end) => this.subtree(start, end)).map(
      sha256ContentHash,
    );
  }

  /** The anchor standing in for entries [0, size): the frontier and the proof of entry size - 1. */
  anchorAt(size: number, prevHash: ContentHash): AuditAnchor {
    const frontier: ContentHash[] = [];
    let start = 0;
    let remaining = size;
    while (remaining > 0) {
      let width = 1;
      while (width * 2 <= remaining) width *= 2;
      frontier.push(sha256ContentHash(this.subtree(start, start + width)));
      start += width;
      remaining -= width;
    }
    return {
      tree_size: size,
      prev_hash: prevHash,
      frontier,
      proof: size === 0 ? [] : this.inclusionProof(size - 1, size),
    };
  }

  /** MTH(D[start:end]). */
  subtree(start: number, end: number): Buffer {
    const known = this.#anchorNodes.get(`${start}:${end}`);
    if (known !== undefined) return known;
    const width = end - start;
    if (width === 1) return this.#leaf(start);
    if (width === TILE_SIZE && start % TILE_SIZE === 0) {
      const tile = this.#source.tile(start / TILE_SIZE);
      if (tile !== undefined) return tile;
    }
    let k = 1;
    while (k * 2 < width) k *= 2;
    return merkleNodeHash(this.subtree(start, start + k), this.subtree(start + k, end));
  }

  #leaf(seq: number): Buffer {
    const index = Math.floor(seq / TILE_SIZE);
    let leaves = this.#leafTiles.get(index);
    if (leaves === undefined) {
      leaves = this.#source.leaves(index * TILE_SIZE, (index + 1) * TILE_SIZE);
      this.#leafTiles.set(index, leaves);
    }
    const leaf = leaves.get(seq);
    if (leaf === undefined) throw missing(seq, seq + 1);
    return leaf;
  }
}
