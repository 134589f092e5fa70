// Verifies an audit log export with only the runtime's public key, and names the first bad entry.
//
// What is checked: the runtime key chain (anchored on the auditor's key), every checkpoint's signature,
// period and link to the one before, the anchor of a pruned log, each entry's hash (against the hash
// recorded beside it), its seq, its link to the entry before, and the Merkle root at every checkpoint.
// Entries are hashed as stored bytes and scanned for `seq` and `prev_hash` only, so a verifier runs
// at hashing speed; `parseEntries` adds the full parse.
//
// The chain tells where a change is; the signed roots tell that nothing was changed and then re-linked.
// A change that re-links every later entry is only caught by the next checkpoint's root, which can
// name the range it happened in, not the entry: that is what checkpoint frequency buys.
import type { ContentHash } from "../crypto/content-hash.js";
import type { Ed25519PublicKey } from "../crypto/ed25519.js";
import { SignetError, isSignetError } from "../errors/signet-error.js";
import {
  type Checkpoint,
  type RuntimeKeyChain,
  type RuntimeKeyRecord,
  checkpointHash,
  parseCheckpoint,
  verifyRuntimeKeyChain,
} from "./checkpoint.js";
import { type Digest, contentHashEqualsDigest, contentHashToDigest, hexBytesEqualDigest } from "./digest.js";
import { type EntryFrame, scanEntryFrame } from "./entry-scan.js";
import { AUDIT_GENESIS_HASH, entryDigest, parseAuditEntry } from "./entry.js";
import {
  MerkleFrontier,
  type MerkleTree,
  frontierDigests,
  sha256ContentHash,
  verifyInclusionDigests,
} from "./merkle.js";

/**
 * What stands in for the entries before an export's first one (pruned by retention, or left out by
 * `--from`): enough to link the first entry and to recompute every later root.
 */
export interface AuditAnchor {
  /** The seq of the first entry present: entries 0 .. tree_size - 1 are absent. */
  readonly tree_size: number;
  /** The hash of entry tree_size - 1: the first present entry's `prev_hash`. */
  readonly prev_hash: ContentHash;
  /** The Merkle compact range [0, tree_size), largest subtree first. */
  readonly frontier: readonly ContentHash[];
  /** Inclusion proof of `prev_hash` as leaf tree_size - 1 under the frontier's root. */
  readonly proof: readonly ContentHash[];
}

/** One exported entry: its stored bytes, and the hash the store recorded beside them (if any). */
export interface AuditExportEntry {
  readonly bytes: Uint8Array;
  readonly hash?: string;
}

/** A log export: key records, checkpoints, the anchor of a partial log, and entries in seq order. */
export interface AuditExport {
  readonly keys: readonly RuntimeKeyRecord[];
  readonly checkpoints: readonly Checkpoint[];
  readonly anchor?: AuditAnchor;
  readonly entries: readonly (Uint8Array | AuditExportEntry)[];
}

export interface AuditVerifyOptions {
  /** The runtime public key the auditor trusts: any key of the export's key chain. */
  readonly key: Ed25519PublicKey;
  /** Also parse every entry fully (members, forms, canonical text). Several times slower. */
  readonly parseEntries?: boolean;
  /**
   * Checkpoints the auditor holds from elsewhere (an earlier audit, a receipt): the export must
   * extend each of them. Without one, a log cut short together with its latest checkpoints cannot be
   * told from a shorter log.
   */
  readonly pinned?: readonly Checkpoint[];
}

/**
 * What is wrong. Entry kinds carry the seq of the first bad entry:
 * - `edited`: its bytes are not what was hashed and linked (recorded hash, next entry, checkpoint);
 * - `deleted`: entries missing from the sequence (the first missing seq);
 * - `reordered`: an entry out of its place;
 * - `inserted`: two entries claim one seq, one of them forged;
 * - `truncated`: a signed checkpoint covers entries the export lacks (the first missing seq);
 * - `rewritten`: entries link up but do not match a signed root (the first entry of the range);
 * - `malformed`: bytes that are not an entry.
 * Others concern the signed material: `key_record`, `checkpoint`, `fork` (two signed roots for one
 * tree size), `anchor`.
 */
export type AuditProblemKind =
  | "edited"
  | "deleted"
  | "reordered"
  | "inserted"
  | "truncated"
  | "rewritten"
  | "malformed"
  | "key_record"
  | "checkpoint"
  | "fork"
  | "anchor";

export interface AuditProblem {
  readonly kind: AuditProblemKind;
  /** The first bad entry's seq (entry kinds). */
  readonly seq?: number;
  /** The checkpoint concerned (`checkpoint`, `fork`, `rewritten`, `truncated`). */
  readonly tree_size?: number;
  readonly message: string;
}

export interface AuditVerifyReport {
  /** True when nothing was found wrong. Entries not yet anchored do not make it false. */
  readonly ok: boolean;
  readonly problem?: AuditProblem;
  /** Entries read. */
  readonly entries: number;
  /** The seq of the first entry the export holds (the anchor's size, else 0). */
  readonly first_seq: number;
  /** One past the last entry verified in sequence. */
  readonly tree_size: number;
  /** Entries [first_seq, anchored_size) are covered by a signed checkpoint whose root matched. */
  readonly anchored_size: number;
  /** Entries after the last matching checkpoint: not yet anchored, which is not tampering. */
  readonly unanchored: number;
  /** Checkpoints whose signature, key period and link verified. */
  readonly checkpoints: number;
  /** The latest checkpoint whose root matched the entries. */
  readonly latest_checkpoint?: Checkpoint;
}

/** A root the entries must reproduce. */
interface Target {
  readonly tree_size: number;
  readonly root: Digest;
  readonly checkpoint: Checkpoint;
}

/** A finding that the next entries may sharpen. */
type Pending =
  | { readonly kind: "gap"; readonly missing: number; readonly found: number; seen: number }
  | { readonly kind: "link"; readonly seq: number; readonly digest: Digest }
  | { readonly kind: "root"; readonly target: Target; readonly last: Digest };

function describeMissing(first: number, next: number): string {
  return next - first === 1 ? `Entry ${first} is missing` : `Entries ${first}..${next - 1} are missing`;
}

/**
 * A streaming verifier: give it the signed material first, then the entries in order, then call
 * `finish()`. {@link verifyAuditExport} and `verifyAuditNdjson` drive it; a CLI streaming a large
 * export can drive it directly (and show progress from `entriesRead`).
 *
 * Example:
 * ```ts
 * const verifier = new AuditLogVerifier({ keys, checkpoints, anchor }, { key: runtimePublicKey });
 * for await (const entry of entries) verifier.addEntry(entry.bytes, entry.hash);
 * const report = verifier.finish();
 * ```
 */
export class AuditLogVerifier {
  #problem: AuditProblem | undefined;
  #pending: Pending | undefined;
  readonly #firstSeq: number;
  #expected: number;
  #prev: Digest;
  #frontier: MerkleFrontier;
  readonly #targets: Target[] = [];
  #targetIndex = 0;
  #anchoredSize: number;
  #latest: Checkpoint | undefined;
  #checkpoints = 0;
  #entries = 0;
  readonly #parseEntries: boolean;
  readonly #frame: EntryFrame = { seq: 0, prevHashOffset: 0 };

  constructor(signed: Pick<AuditExport, "keys" | "checkpoints" | "anchor">, options: AuditVerifyOptions) {
    this.#parseEntries = options.parseEntries === true;
    const anchor = signed.anchor;
    const start = anchor === undefined ? 0 : anchor.tree_size;
    this.#firstSeq = start;
    this.#expected = start;
    this.#anchoredSize = start;
    this.#prev = contentHashToDigest(AUDIT_GENESIS_HASH)!;
    this.#frontier = new MerkleFrontier();
    if (Number.isSafeInteger(start) && start >= 0) this.#checkSigned(signed, options);
    else this.#fail({ kind: "anchor", message: "The anchor's tree_size is not a tree size" });
  }

  /** Entries given so far. */
  get entriesRead(): number {
    return this.#entries;
  }

  /** True once the verdict cannot change (a problem is final); the caller may stop feeding entries. */
  get settled(): boolean {
    return this.#problem !== undefined;
  }

  #fail(problem: AuditProblem): void {
    this.#problem ??= problem;
  }

  #checkSigned(
    signed: Pick<AuditExport, "keys" | "checkpoints" | "anchor">,
    options: AuditVerifyOptions,
  ): void {
    let chain: RuntimeKeyChain;
    try {
      chain = verifyRuntimeKeyChain(signed.keys, options.key);
    } catch (error) {
      return this.#fail({
        kind: "key_record",
        message: isSignetError(error) ? error.message : "Bad key records",
      });
    }

    const verified: Checkpoint[] = [];
    let previous: Checkpoint | undefined;
    for (const value of signed.checkpoints) {
      const checkpoint = this.#verifiedCheckpoint(value, chain, "Checkpoint");
      if (checkpoint === undefined) return;
      if (previous !== undefined) {
        if (checkpoint.tree_size < previous.tree_size) {
          return this.#fail({
            kind: "checkpoint",
            tree_size: checkpoint.tree_size,
            message: `Checkpoint at tree size ${checkpoint.tree_size} comes after one at ${previous.tree_size}`,
          });
        }
        if (checkpoint.prev !== checkpointHash(previous)) {
          return this.#fail({
            kind: "checkpoint",
            tree_size: checkpoint.tree_size,
            message: `Checkpoint at tree size ${checkpoint.tree_size} does not link to the one before it (at ${previous.tree_size}): a checkpoint between them was removed or changed`,
          });
        }
      }
      previous = checkpoint;
      verified.push(checkpoint);
      this.#checkpoints++;
    }
    for (const value of options.pinned ?? []) {
      const checkpoint = this.#verifiedCheckpoint(value, chain, "Pinned checkpoint");
      if (checkpoint === undefined) return;
      verified.push(checkpoint);
    }

    // Every signed root, by tree size; two different roots for one size are a fork.
    const bySize = new Map<number, Target>();
    for (const checkpoint of verified) {
      const root = contentHashToDigest(checkpoint.root_hash)!;
      const seen = bySize.get(checkpoint.tree_size);
      if (seen !== undefined && seen.root !== root) {
        return this.#fail({
          kind: "fork",
          tree_size: checkpoint.tree_size,
          message: `Two signed checkpoints give different roots for tree size ${checkpoint.tree_size}`,
        });
      }
      if (seen === undefined) {
        bySize.set(checkpoint.tree_size, { tree_size: checkpoint.tree_size, root, checkpoint });
      }
    }

    if (signed.anchor !== undefined && !this.#useAnchor(signed.anchor)) return;
    const startRoot = frontierDigests.root(this.#frontier);
    for (const target of [...bySize.values()].sort((a, b) => a.tree_size - b.tree_size)) {
      if (target.tree_size > this.#firstSeq) this.#targets.push(target);
      else if (target.tree_size === this.#firstSeq && target.root !== startRoot) {
        return this.#fail({
          kind: "anchor",
          tree_size: target.tree_size,
          message: `The anchor's frontier does not match the signed checkpoint at tree size ${target.tree_size}`,
        });
      } else if (target.tree_size === this.#firstSeq) {
        this.#latest = target.checkpoint;
      }
    }
  }

  /** The checkpoint if its form, key period and signature hold; otherwise records the problem. */
  #verifiedCheckpoint(value: unknown, chain: RuntimeKeyChain, what: string): Checkpoint | undefined {
    const size = (value as { tree_size?: unknown } | null)?.tree_size;
    const where = typeof size === "number" ? size : undefined;
    try {
      const checkpoint = parseCheckpoint(value);
      chain.verifyCheckpoint(checkpoint);
      return checkpoint;
    } catch (error) {
      const why = isSignetError(error) ? error.message : "it does not verify";
      this.#fail({
        kind: "checkpoint",
        ...(where === undefined ? {} : { tree_size: where }),
        message: `${where === undefined ? what : `${what} at tree size ${where}`}: ${why}`,
      });
      return undefined;
    }
  }

  #useAnchor(anchor: AuditAnchor): boolean {
    try {
      return this.#checkAnchor(anchor);
    } catch {
      // An export read from JSON can hold anything where the anchor's arrays should be.
      this.#fail({ kind: "anchor", message: "The anchor is malformed" });
      return false;
    }
  }

  #checkAnchor(anchor: AuditAnchor): boolean {
    const bad = (why: string): boolean => {
      this.#fail({ kind: "anchor", message: `The anchor ${why}` });
      return false;
    };
    const prev = contentHashToDigest(anchor.prev_hash);
    if (prev === undefined) return bad("has no valid prev_hash");
    let frontier: MerkleFrontier;
    try {
      frontier = MerkleFrontier.fromContentHashes(anchor.tree_size, anchor.frontier);
    } catch {
      return bad("frontier does not fit its tree size");
    }
    if (anchor.tree_size === 0) {
      if (anchor.prev_hash !== AUDIT_GENESIS_HASH) return bad("of an empty log must link to genesis");
    } else {
      const proof = anchor.proof.map(contentHashToDigest);
      if (
        proof.some((node) => node === undefined) ||
        !verifyInclusionDigests(
          prev,
          anchor.tree_size - 1,
          anchor.tree_size,
          proof as Digest[],
          frontierDigests.root(frontier),
        )
      ) {
        return bad("prev_hash is not the last leaf under its frontier");
      }
    }
    this.#frontier = frontier;
    this.#prev = prev;
    return true;
  }

  /** Adds the next entry: its stored bytes and, when the store recorded one, its hash. */
  addEntry(bytes: Uint8Array, hash?: string): void {
    this.addEntryRange(bytes, 0, bytes.length, hash);
  }

  /**
   * Adds the entry stored in bytes[start, end). `hash` is the recorded hash as a string, or the
   * offset in `bytes` of its 64 hex digits (an export line read in place), or undefined.
   */
  addEntryRange(bytes: Uint8Array, start: number, end: number, hash?: string | number): void {
    this.#entries++;
    if (this.#problem !== undefined) return;
    const frame = this.#frame;
    const framed = scanEntryFrame(bytes, start, end, frame);
    if (this.#pending !== undefined) return this.#sharpen(framed ? frame : undefined, bytes);
    const seq = this.#expected;
    if (!framed) {
      return this.#fail({ kind: "malformed", seq, message: `Entry ${seq} is not a well-formed audit entry` });
    }
    const digest = entryDigest(bytes, start, end);
    if (hash !== undefined && !this.#recordedMatches(bytes, hash, digest)) {
      return this.#fail({
        kind: "edited",
        seq,
        message: `Entry ${seq} was changed: its bytes do not match its recorded hash`,
      });
    }
    if (frame.seq !== seq) {
      if (frame.seq > seq) this.#pending = { kind: "gap", missing: seq, found: frame.seq, seen: 0 };
      else {
        this.#fail({
          kind: "inserted",
          seq: frame.seq,
          message: `A second entry claims seq ${frame.seq}: one of the two was inserted`,
        });
      }
      return;
    }
    if (!hexBytesEqualDigest(bytes, frame.prevHashOffset, this.#prev)) {
      this.#pending = { kind: "link", seq, digest };
      return;
    }
    if (this.#parseEntries) {
      try {
        parseAuditEntry(bytes.subarray(start, end));
      } catch (error) {
        const why = error instanceof SignetError ? `: ${error.message}` : "";
        return this.#fail({
          kind: "malformed",
          seq,
          message: `Entry ${seq} is not a valid audit entry${why}`,
        });
      }
    }
    frontierDigests.append(this.#frontier, digest);
    this.#prev = digest;
    this.#expected = seq + 1;
    let target = this.#targets[this.#targetIndex];
    while (target !== undefined && target.tree_size === this.#expected) {
      if (frontierDigests.root(this.#frontier) !== target.root) {
        this.#pending = { kind: "root", target, last: digest };
        return;
      }
      this.#anchoredSize = target.tree_size;
      this.#latest = target.checkpoint;
      target = this.#targets[++this.#targetIndex];
    }
  }

  #recordedMatches(bytes: Uint8Array, hash: string | number, digest: Digest): boolean {
    if (typeof hash === "number") return hexBytesEqualDigest(bytes, hash, digest);
    return contentHashEqualsDigest(hash, digest);
  }

  /** Refines a pending finding with the next entry (undefined when that one is not well formed). */
  #sharpen(next: EntryFrame | undefined, bytes: Uint8Array): void {
    const pending = this.#pending!;
    switch (pending.kind) {
      case "gap": {
        pending.seen++;
        if (next === undefined) return;
        if (next.seq === pending.missing) {
          return this.#fail({
            kind: "reordered",
            seq: pending.missing,
            message: `Entry ${pending.missing} is out of order`,
          });
        }
        if (pending.seen === 1 && next.seq === pending.found) {
          return this.#fail({
            kind: "edited",
            seq: pending.missing,
            message: `Entry ${pending.missing} was changed: it claims seq ${pending.found}`,
          });
        }
        return;
      }
      case "link": {
        if (next !== undefined && next.seq === pending.seq) {
          return this.#fail({
            kind: "inserted",
            seq: pending.seq,
            message: `A second entry claims seq ${pending.seq}: one of the two was inserted`,
          });
        }
        const linksBack =
          next !== undefined && hexBytesEqualDigest(bytes, next.prevHashOffset, pending.digest);
        return this.#settleLink(pending.seq, linksBack);
      }
      case "root": {
        const linksBack = next !== undefined && hexBytesEqualDigest(bytes, next.prevHashOffset, pending.last);
        if (!linksBack) {
          const seq = pending.target.tree_size - 1;
          return this.#fail({
            kind: "edited",
            seq,
            message: `Entry ${seq} was changed: neither the checkpoint at tree size ${pending.target.tree_size} nor entry ${seq + 1} agrees with it`,
          });
        }
        return this.#settleRoot(pending.target);
      }
    }
  }

  /**
   * Entry `seq` does not link to the entry before it. When the next entry still links to it, the
   * entry before changed (unless a matching checkpoint vouches for that one); when not, `seq` itself
   * changed.
   */
  #settleLink(seq: number, nextLinksBack: boolean): void {
    const before = seq - 1;
    if (nextLinksBack && before >= this.#anchoredSize && before >= this.#firstSeq) {
      return this.#fail({
        kind: "edited",
        seq: before,
        message: `Entry ${before} was changed: its hash no longer matches the prev_hash of entry ${seq}`,
      });
    }
    const what = seq === this.#firstSeq ? "the anchor or genesis" : `entry ${before}`;
    this.#fail({ kind: "edited", seq, message: `Entry ${seq} was changed: it does not link to ${what}` });
  }

  #settleRoot(target: Target): void {
    this.#fail({
      kind: "rewritten",
      seq: this.#anchoredSize,
      tree_size: target.tree_size,
      message: `Entries ${this.#anchoredSize}..${target.tree_size - 1} do not match the signed checkpoint at tree size ${target.tree_size}, though each links to the one before: the log was rewritten from somewhere in this range`,
    });
  }

  /** The verdict. Call once, after the last entry. */
  finish(): AuditVerifyReport {
    const pending = this.#pending;
    if (this.#problem === undefined && pending !== undefined) {
      if (pending.kind === "gap") {
        this.#fail({
          kind: "deleted",
          seq: pending.missing,
          message: describeMissing(pending.missing, pending.found),
        });
      } else if (pending.kind === "link") this.#settleLink(pending.seq, true);
      else this.#settleRoot(pending.target);
    }
    const next = this.#targets[this.#targetIndex];
    if (this.#problem === undefined && next !== undefined) {
      this.#fail({
        kind: "truncated",
        seq: this.#expected,
        tree_size: next.tree_size,
        message: `The log ends before entry ${this.#expected}, but the signed checkpoint at tree size ${next.tree_size} covers entries up to ${next.tree_size - 1}: entries from ${this.#expected} were removed`,
      });
    }
    const problem = this.#problem;
    return {
      ok: problem === undefined,
      ...(problem === undefined ? {} : { problem }),
      entries: this.#entries,
      first_seq: this.#firstSeq,
      tree_size: this.#expected,
      anchored_size: this.#anchoredSize,
      unanchored: this.#expected - this.#anchoredSize,
      checkpoints: this.#checkpoints,
      ...(this.#latest === undefined ? {} : { latest_checkpoint: this.#latest }),
    };
  }
}

/**
 * Verifies an export with only the runtime's public key and reports the first problem.
 *
 * Example:
 * ```ts
 * const report = verifyAuditExport(exported, { key: Ed25519PublicKey.fromPem(runtimeKeyPem) });
 * if (!report.ok) console.error(`seq ${report.problem?.seq}: ${report.problem?.message}`);
 * ```
 */
export function verifyAuditExport(exported: AuditExport, options: AuditVerifyOptions): AuditVerifyReport {
  const verifier = new AuditLogVerifier(exported, options);
  for (const entry of exported.entries) {
    if (verifier.settled) break;
    if (entry instanceof Uint8Array) verifier.addEntry(entry);
    else verifier.addEntry(entry.bytes, entry.hash);
  }
  return verifier.finish();
}

/**
 * The anchor that stands in for the first `size` entries of a tree, for an export that starts at
 * seq `size` or a log pruned below it. Prune only at a checkpoint's tree size, so the anchor is
 * checked against that checkpoint as well as every later one.
 */
export function createAuditAnchor(tree: MerkleTree, size: number): AuditAnchor {
  if (!Number.isSafeInteger(size) || size < 0 || size > tree.size) {
    throw new SignetError("INVALID_REQUEST", "The anchor size must be within the tree", { reason: "merkle" });
  }
  return {
    tree_size: size,
    prev_hash: size === 0 ? AUDIT_GENESIS_HASH : sha256ContentHash(tree.leafHash(size - 1)),
    frontier: tree.frontier(size).nodes().map(sha256ContentHash),
    proof: size === 0 ? [] : tree.inclusionProof(size - 1, size).map(sha256ContentHash),
  };
}
