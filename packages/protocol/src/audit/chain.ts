// The head of an audit log: numbers, links and hashes new entries, and keeps the Merkle root current.
//
// Pure state, O(log n) of it: the next seq, the last entry's hash and the Merkle frontier. The
// runtime appends a batch here, writes the returned bytes in one transaction, and restores the
// state it saved before the batch (`clone`) when the write fails, so no entry is ever numbered or
// linked twice. The verifier walks a log with exactly these rules.
import type { ContentHash } from "../crypto/content-hash.js";
import { SignetError } from "../errors/signet-error.js";
import { contentHashToDigest, digestToBytes, digestToContentHash } from "./digest.js";
import { AUDIT_GENESIS_HASH, type AuditEntryFields, encodeEntryDigest } from "./entry.js";
import { MerkleFrontier, frontierDigests } from "./merkle.js";

/** What an entry says; the chain fills in `seq` and `prev_hash`. */
export type AuditEntryDraft = Omit<AuditEntryFields, "seq" | "prev_hash">;

/** An entry as appended: its seq, stored bytes and hash. */
export interface SealedAuditEntry {
  readonly seq: number;
  /** A view that may share its ArrayBuffer with other entries, as small `Buffer.from` results do. */
  readonly bytes: Buffer;
  readonly hash: ContentHash;
}

/** The saved head of a log (persist it, or rebuild it from the stored hashes at startup). */
export interface AuditChainState {
  /** The number of entries: the next entry's seq. */
  readonly size: number;
  /** The last entry's hash, or the genesis hash for an empty log. */
  readonly last_hash: ContentHash;
  /** The Merkle compact range [0, size), largest subtree first. */
  readonly frontier: readonly ContentHash[];
}

/**
 * Appends entries to a log's head.
 *
 * Example:
 * ```ts
 * const chain = AuditChain.restore(saved); // or new AuditChain() for a new log
 * const before = chain.clone();
 * const sealed = drafts.map((draft) => chain.append(draft));
 * // write sealed[i].bytes with seq and hash in one transaction; on failure: chain = before
 * const checkpoint = signCheckpoint({ tree_size: chain.size, root_hash: chain.rootHash(), time }, key);
 * ```
 */
export class AuditChain {
  #lastHash: ContentHash = AUDIT_GENESIS_HASH;
  #frontier = new MerkleFrontier();

  /** Restores a head saved with {@link state}. */
  static restore(state: AuditChainState): AuditChain {
    if (contentHashToDigest(state.last_hash) === undefined) {
      throw new SignetError("INVALID_REQUEST", "Invalid audit chain state: last_hash", {
        reason: "audit_chain",
      });
    }
    if (state.size === 0 && state.last_hash !== AUDIT_GENESIS_HASH) {
      throw new SignetError("INVALID_REQUEST", "Invalid audit chain state: an empty log links to genesis", {
        reason: "audit_chain",
      });
    }
    const chain = new AuditChain();
    chain.#frontier = MerkleFrontier.fromContentHashes(state.size, state.frontier);
    chain.#lastHash = state.last_hash;
    return chain;
  }

  /** The number of entries appended: the next seq. */
  get size(): number {
    return this.#frontier.size;
  }

  /** The last entry's hash (the next entry's `prev_hash`). */
  get lastHash(): ContentHash {
    return this.#lastHash;
  }

  /** Numbers, links, encodes and hashes an entry, and adds it to the tree. */
  append(draft: AuditEntryDraft): SealedAuditEntry {
    const seq = this.#frontier.size;
    // The head hash is always well formed: genesis, a digest this chain wrote, or a checked restore.
    const { bytes, digest } = encodeEntryDigest(draft, seq, this.#lastHash, true);
    const hash = digestToContentHash(digest);
    frontierDigests.append(this.#frontier, digest);
    this.#lastHash = hash;
    return { seq, bytes, hash };
  }

  /**
   * The Merkle root of the last `leaves` entries (a power of two), when the last append completed an
   * aligned run of that many: with 1024, the root of entries [size − 1024, size) right after the
   * append that made size a multiple of 1024. The append hashed it on its way to the frontier, so this
   * costs no hash; a store that keeps subtree roots (tiles) for proofs takes them from here. Undefined
   * otherwise, and after {@link restore} until the next append.
   *
   * Example: `if (chain.size % 1024 === 0) tiles.set(chain.size / 1024 - 1, chain.lastSubtreeRoot(1024)!)`.
   */
  lastSubtreeRoot(leaves: number): Buffer | undefined {
    if (!Number.isSafeInteger(leaves) || leaves < 1 || leaves > 2 ** 30 || (leaves & (leaves - 1)) !== 0) {
      throw new SignetError("INVALID_REQUEST", "A subtree holds a power of two of entries, at most 2^30", {
        reason: "merkle",
      });
    }
    const digest = frontierDigests.lastSubtree(this.#frontier, 31 - Math.clz32(leaves));
    return digest === undefined ? undefined : digestToBytes(digest);
  }

  /** MTH of every entry appended, `sha256:<hex>`. */
  rootHash(): ContentHash {
    return this.#frontier.rootHash();
  }

  /** The head as plain data. */
  state(): AuditChainState {
    return {
      size: this.#frontier.size,
      last_hash: this.#lastHash,
      frontier: frontierDigests.nodes(this.#frontier).map(digestToContentHash),
    };
  }

  /** An independent copy. */
  clone(): AuditChain {
    const copy = new AuditChain();
    copy.#frontier = this.#frontier.clone();
    copy.#lastHash = this.#lastHash;
    return copy;
  }
}
