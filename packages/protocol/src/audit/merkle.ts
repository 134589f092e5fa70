// RFC 9162 Merkle trees: tree hashes, inclusion and consistency proofs, and their verification.
//
// Hashes follow RFC 9162 section 2.1.1: a leaf is SHA-256(0x00 ‖ leaf data), an interior node is
// SHA-256(0x01 ‖ left ‖ right), and the hash of an empty tree is SHA-256 of nothing. Everything here
// takes leaf *hashes*; for the audit log a leaf hash is the entry hash (see entry.ts), so nothing is
// hashed twice. Three ways to hold a tree:
//
// - an array of leaf hashes: the plain functions below (proof generation costs O(n) hashes);
// - MerkleFrontier: O(log n) state (the compact range [0, n)) for appending and computing roots;
// - MerkleTree: every level kept (64 bytes per leaf), for O(log n) proofs of any entry.
import type { ContentHash } from "../crypto/content-hash.js";
import { SignetError } from "../errors/signet-error.js";
import {
  type Digest,
  EMPTY_DIGEST,
  bytesToDigest,
  contentHashToDigest,
  digestToBytes,
  digestToContentHash,
  nodeDigest,
  sha256Digest,
} from "./digest.js";

function refuse(message: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason: "merkle" });
}

function toDigest(hash: Uint8Array, what = "hash"): Digest {
  return bytesToDigest(hash) ?? refuse(`A Merkle ${what} must be 32 bytes`);
}

function checkSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) refuse(`${what} must be a non-negative integer`);
}

/** The largest power of two strictly below `n` (n >= 2), RFC 9162's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A source of subtree hashes MTH(D[start:end]) for proof generation. */
type SubtreeHash = (start: number, end: number) => Digest;

/** PATH(m, D[start:end]) of RFC 9162 section 2.1.3.1, appended to `out` (leaf level first). */
function path(m: number, start: number, end: number, subtree: SubtreeHash, out: Digest[]): void {
  const n = end - start;
  if (n <= 1) return;
  const k = splitPoint(n);
  if (m < k) {
    path(m, start, start + k, subtree, out);
    out.push(subtree(start + k, end));
  } else {
    path(m - k, start + k, end, subtree, out);
    out.push(subtree(start, start + k));
  }
}

/** SUBPROOF(m, D[start:end], b) of RFC 9162 section 2.1.4.1, appended to `out`. */
function subproof(
  m: number,
  start: number,
  end: number,
  complete: boolean,
  subtree: SubtreeHash,
  out: Digest[],
): void {
  const n = end - start;
  if (m === n) {
    if (!complete) out.push(subtree(start, end));
    return;
  }
  const k = splitPoint(n);
  if (m <= k) {
    subproof(m, start, start + k, complete, subtree, out);
    out.push(subtree(start + k, end));
  } else {
    subproof(m - k, start + k, end, false, subtree, out);
    out.push(subtree(start, start + k));
  }
}

/**
 * PATH(index, D[0:size]) with each node as `subtree` gives it. The recursion only pushes what
 * `subtree` returns, so a caller that wants `sha256:<hex>` nodes passes a `subtree` that writes them.
 */
function inclusionNodes(index: number, size: number, subtree: SubtreeHash): string[] {
  checkSize(index, "The leaf index");
  checkSize(size, "The tree size");
  if (index >= size) refuse("The leaf index must be below the tree size");
  const out: string[] = [];
  path(index, 0, size, subtree, out);
  return out;
}

/** PROOF(first, D[0:second]) with each node as `subtree` gives it (see {@link inclusionNodes}). */
function consistencyNodes(first: number, second: number, subtree: SubtreeHash): string[] {
  checkSize(first, "The first tree size");
  checkSize(second, "The second tree size");
  if (first > second) refuse("The first tree size must not exceed the second");
  // An empty tree and an unchanged tree are consistent with nothing to prove (as in Sigsum).
  if (first === 0 || first === second) return [];
  const out: string[] = [];
  subproof(first, 0, second, true, subtree, out);
  return out;
}

function inclusionPath(index: number, size: number, subtree: SubtreeHash): Buffer[] {
  return inclusionNodes(index, size, subtree).map(digestToBytes);
}

function consistencyPath(first: number, second: number, subtree: SubtreeHash): Buffer[] {
  return consistencyNodes(first, second, subtree).map(digestToBytes);
}

/** MTH of digests[start:end], computed by appending them to a scratch frontier: end - start - 1 hashes. */
function rangeRoot(digests: readonly Digest[], start: number, end: number): Digest {
  if (end === start) return EMPTY_DIGEST;
  const frontier = new MerkleFrontier();
  for (let i = start; i < end; i++) frontierDigests.append(frontier, digests[i]!);
  return frontierDigests.root(frontier);
}

function digestsOf(leafHashes: readonly Uint8Array[], size: number): Digest[] {
  checkSize(size, "The tree size");
  if (size > leafHashes.length) refuse("The tree size exceeds the number of leaves");
  const out = new Array<Digest>(size);
  for (let i = 0; i < size; i++) out[i] = toDigest(leafHashes[i]!, "leaf hash");
  return out;
}

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ data). */
export function merkleLeafHash(data: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(data.length + 1);
  input[0] = 0x00;
  input.set(data, 1);
  return digestToBytes(sha256Digest(input));
}

/** RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return digestToBytes(nodeDigest(toDigest(left), toDigest(right)));
}

/** The hash of the empty tree, SHA-256 of nothing. */
export function emptyMerkleRoot(): Buffer {
  return digestToBytes(EMPTY_DIGEST);
}

/**
 * MTH of the first `size` leaves (all of them by default), given their leaf hashes.
 * Example: `merkleRoot([merkleLeafHash(a), merkleLeafHash(b)])`.
 */
export function merkleRoot(leafHashes: readonly Uint8Array[], size = leafHashes.length): Buffer {
  return digestToBytes(rangeRoot(digestsOf(leafHashes, size), 0, size));
}

/**
 * The inclusion proof (RFC 9162 section 2.1.3.1, PATH) of leaf `index` in the tree of the first
 * `size` leaves. Costs O(size) hashes; see {@link MerkleTree} for O(log n).
 */
export function merkleInclusionProof(
  leafHashes: readonly Uint8Array[],
  index: number,
  size = leafHashes.length,
): Buffer[] {
  const digests = digestsOf(leafHashes, size);
  return inclusionPath(index, size, (start, end) => rangeRoot(digests, start, end));
}

/**
 * The consistency proof (RFC 9162 section 2.1.4.1, PROOF) between the trees of the first `first`
 * and the first `second` leaves. Empty when `first` is 0 or equals `second`.
 */
export function merkleConsistencyProof(
  leafHashes: readonly Uint8Array[],
  first: number,
  second = leafHashes.length,
): Buffer[] {
  const digests = digestsOf(leafHashes, second);
  return consistencyPath(first, second, (start, end) => rangeRoot(digests, start, end));
}

function proofDigests(proof: readonly Uint8Array[]): Digest[] | undefined {
  const out: Digest[] = [];
  for (const hash of proof) {
    const digest = bytesToDigest(hash);
    if (digest === undefined) return undefined;
    out.push(digest);
  }
  return out;
}

/** RFC 9162 section 2.1.3.2 over digests. */
export function verifyInclusionDigests(
  leaf: Digest,
  index: number,
  size: number,
  proof: readonly Digest[],
  root: Digest,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeDigest(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = fn / 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeDigest(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}

/** RFC 9162 section 2.1.4.2 over digests, with the two trivial cases made explicit. */
export function verifyConsistencyDigests(
  first: number,
  second: number,
  firstRoot: Digest,
  secondRoot: Digest,
  proof: readonly Digest[],
): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) {
    return false;
  }
  if (first === second) return proof.length === 0 && firstRoot === secondRoot;
  if (first === 0) return proof.length === 0 && firstRoot === EMPTY_DIGEST;
  if (proof.length === 0) return false;
  // Step 2: when first is a power of two, its root is the first node of the path.
  const nodes = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr = nodes[0]!;
  let sr = nodes[0]!;
  for (let i = 1; i < nodes.length; i++) {
    const c = nodes[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeDigest(c, fr);
      sr = nodeDigest(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = fn / 2;
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeDigest(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr === firstRoot && sr === secondRoot && sn === 0;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * Verifies an inclusion proof (RFC 9162 section 2.1.3.2): that `leafHash` is leaf `index` of the tree
 * of `size` leaves whose root is `root`. Never throws; malformed input is simply false.
 */
export function verifyMerkleInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  const leaf = bytesToDigest(leafHash);
  const rootDigest = bytesToDigest(root);
  const path = proofDigests(proof);
  if (leaf === undefined || rootDigest === undefined || path === undefined) return false;
  return verifyInclusionDigests(leaf, index, size, path, rootDigest);
}

/**
 * Verifies a consistency proof (RFC 9162 section 2.1.4.2): that the tree of `first` leaves with
 * root `firstRoot` is a prefix of the tree of `second` leaves with root `secondRoot`. A tree is
 * consistent with itself and the empty tree with every tree, each with an empty proof. Never throws.
 */
export function verifyMerkleConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  const a = bytesToDigest(firstRoot);
  const b = bytesToDigest(secondRoot);
  const path = proofDigests(proof);
  if (a === undefined || b === undefined || path === undefined) return false;
  return verifyConsistencyDigests(first, second, a, b, path);
}

/** Digest-level access to frontiers, for the chain and the verifier; not part of the package's API. */
interface FrontierDigests {
  create(size: number, nodes: readonly Digest[]): MerkleFrontier;
  append(frontier: MerkleFrontier, leaf: Digest): void;
  root(frontier: MerkleFrontier): Digest;
  nodes(frontier: MerkleFrontier): readonly Digest[];
  /** The root of the aligned 2^level leaves ending at the last leaf, if the last append made it. */
  lastSubtree(frontier: MerkleFrontier, level: number): Digest | undefined;
}

/** Set by MerkleFrontier's static block, which alone can reach its private members. */
export let frontierDigests: FrontierDigests;

/**
 * The compact range [0, n) of a tree: the roots of its perfect subtrees, largest first, one per set
 * bit of n. O(log n) state that appends a leaf with one node hash on average and yields the root of
 * the whole tree, so the runtime can keep the root current as it appends and persist this instead of
 * the tree.
 *
 * Example:
 * ```ts
 * const frontier = new MerkleFrontier();
 * frontier.append(leafHash);
 * const root = frontier.root();
 * const saved = { size: frontier.size, nodes: frontier.nodes() }; // MerkleFrontier.from(saved.size, saved.nodes)
 * ```
 */
export class MerkleFrontier {
  #size = 0;
  #nodes: Digest[] = [];
  // #completed[j]: the root of the aligned 2^j leaves ending at the last leaf, for j up to the number
  // of merges the last append made. The append computes them anyway; a store keeps some (tiles).
  #completed: Digest[] = [];
  #completedLevels = 0;

  /** The number of leaves appended. */
  get size(): number {
    return this.#size;
  }

  /** Restores a frontier from its size and {@link nodes}. */
  static from(size: number, nodes: readonly Uint8Array[]): MerkleFrontier {
    return MerkleFrontier.#fromDigests(
      size,
      nodes.map((node) => toDigest(node, "frontier node")),
    );
  }

  /** Restores a frontier from `sha256:<hex>` nodes (as an export's anchor carries them). */
  static fromContentHashes(size: number, nodes: readonly string[]): MerkleFrontier {
    return MerkleFrontier.#fromDigests(
      size,
      nodes.map((node) => contentHashToDigest(node) ?? refuse("A frontier node must be a sha256 hash")),
    );
  }

  static #fromDigests(size: number, nodes: readonly Digest[]): MerkleFrontier {
    checkSize(size, "The tree size");
    let bits = 0;
    for (let s = size; s > 0; s = Math.floor(s / 2)) bits += s % 2;
    if (nodes.length !== bits) refuse("A frontier holds one node per set bit of its size");
    const frontier = new MerkleFrontier();
    frontier.#size = size;
    frontier.#nodes = [...nodes];
    return frontier;
  }

  /** Appends one leaf hash. */
  append(leafHash: Uint8Array): void {
    this.#append(toDigest(leafHash, "leaf hash"));
  }

  #append(leaf: Digest): void {
    const completed = this.#completed;
    let node = leaf;
    let level = 0;
    completed[0] = leaf;
    // Each trailing 1 bit of the size is a perfect subtree the new leaf completes.
    for (let s = this.#size; s % 2 === 1; s = (s - 1) / 2) {
      node = nodeDigest(this.#nodes.pop()!, node);
      completed[++level] = node;
    }
    this.#completedLevels = level + 1;
    this.#nodes.push(node);
    this.#size++;
  }

  #root(): Digest {
    const nodes = this.#nodes;
    if (nodes.length === 0) return EMPTY_DIGEST;
    let root = nodes[nodes.length - 1]!;
    for (let i = nodes.length - 2; i >= 0; i--) root = nodeDigest(nodes[i]!, root);
    return root;
  }

  /** MTH of the leaves appended so far. */
  root(): Buffer {
    return digestToBytes(this.#root());
  }

  /** The root as `sha256:<hex>`. */
  rootHash(): ContentHash {
    return digestToContentHash(this.#root());
  }

  /** The compact range: perfect subtree roots, largest (leftmost) first. */
  nodes(): Buffer[] {
    return this.#nodes.map(digestToBytes);
  }

  /** An independent copy (to roll back a batch that failed to commit). */
  clone(): MerkleFrontier {
    // This frontier's own state is valid by construction: no need for #fromDigests' checks.
    const copy = new MerkleFrontier();
    copy.#size = this.#size;
    copy.#nodes = this.#nodes.slice();
    copy.#completed = this.#completed.slice(0, this.#completedLevels);
    copy.#completedLevels = this.#completedLevels;
    return copy;
  }

  static {
    frontierDigests = {
      create: (size, nodes) => MerkleFrontier.#fromDigests(size, nodes),
      append: (frontier, leaf) => frontier.#append(leaf),
      root: (frontier) => frontier.#root(),
      nodes: (frontier) => frontier.#nodes,
      lastSubtree: (frontier, level) =>
        level < frontier.#completedLevels ? frontier.#completed[level] : undefined,
    };
  }
}

/** A growable array of 32-byte nodes in one buffer. */
class NodeLevel {
  buffer = Buffer.allocUnsafe(32 * 64);
  count = 0;

  push(digest: Digest): void {
    if ((this.count + 1) * 32 > this.buffer.length) {
      const grown = Buffer.allocUnsafe(this.buffer.length * 2);
      this.buffer.copy(grown, 0, 0, this.count * 32);
      this.buffer = grown;
    }
    this.buffer.write(digest, this.count * 32, 32, "latin1");
    this.count++;
  }

  get(index: number): Digest {
    return this.buffer.toString("latin1", index * 32, index * 32 + 32);
  }
}

/** Proofs with `sha256:<hex>` nodes, for proofs.ts; not part of the package's API. */
interface TreeContentHashes {
  inclusion(tree: MerkleTree, index: number, size: number): ContentHash[];
  consistency(tree: MerkleTree, first: number, second: number): ContentHash[];
}

/** Set by MerkleTree's static block, which alone can reach its private members. */
export let treeContentHashes: TreeContentHashes;

/**
 * An append-only tree that keeps every level (about 64 bytes per leaf), so the root of any earlier
 * size and the inclusion and consistency proofs for any entry cost O(log n) hashes.
 *
 * Example: `const tree = MerkleTree.from(leafHashes); tree.inclusionProof(5, 1000)`.
 */
export class MerkleTree {
  // levels[j] holds the roots of the aligned perfect subtrees of 2^j leaves, left to right.
  readonly #levels: NodeLevel[] = [new NodeLevel()];
  // The proof recursion asks for ranges that are aligned perfect subtrees (read from #levels) or that
  // end at the tree size it works on, [start, size): those are hashed once per size and kept here,
  // so proofs of many entries in one tree size share them. Appending never changes them.
  #edgeSize = -1;
  readonly #edge = new Map<number, Digest>();

  /** A tree of the given leaf hashes. */
  static from(leafHashes: Iterable<Uint8Array>): MerkleTree {
    const tree = new MerkleTree();
    for (const leaf of leafHashes) tree.append(leaf);
    return tree;
  }

  get size(): number {
    return this.#levels[0]!.count;
  }

  append(leafHash: Uint8Array): void {
    this.#append(toDigest(leafHash, "leaf hash"));
  }

  #append(leaf: Digest): void {
    let level = 0;
    let node = leaf;
    for (;;) {
      const nodes = this.#levels[level]!;
      nodes.push(node);
      if (nodes.count % 2 === 1) return;
      node = nodeDigest(nodes.get(nodes.count - 2), node);
      level++;
      if (this.#levels.length === level) this.#levels.push(new NodeLevel());
    }
  }

  /** The leaf hash at `index`. */
  leafHash(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) refuse("No such leaf");
    return digestToBytes(this.#levels[0]!.get(index));
  }

  /** The level of the aligned perfect subtree [start, end), or -1 when it is not one. */
  static #perfectLevel(start: number, end: number): number {
    const n = end - start;
    if (!isPowerOfTwo(n) || start % n !== 0) return -1;
    let level = 0;
    for (let m = n; m > 1; m /= 2) level++;
    return level;
  }

  readonly #subtree = (start: number, end: number): Digest => {
    if (end === start) return EMPTY_DIGEST;
    const level = MerkleTree.#perfectLevel(start, end);
    if (level >= 0) return this.#levels[level]!.get(start / (end - start));
    if (end !== this.#edgeSize) {
      this.#edge.clear();
      this.#edgeSize = end;
    }
    let digest = this.#edge.get(start);
    if (digest === undefined) {
      const k = splitPoint(end - start);
      digest = nodeDigest(this.#subtree(start, start + k), this.#subtree(start + k, end));
      // The left half is an aligned perfect subtree whenever start is aligned, as in every range the
      // proofs ask for; should a caller ever pass another, the cache it reset is not this size's.
      if (this.#edgeSize === end) this.#edge.set(start, digest);
    }
    return digest;
  };

  /** As #subtree, as `sha256:<hex>`: a stored node goes straight from its bytes to hex. */
  readonly #subtreeHash = (start: number, end: number): ContentHash => {
    const level = end === start ? -1 : MerkleTree.#perfectLevel(start, end);
    if (level < 0) return digestToContentHash(this.#subtree(start, end));
    const offset = (start / (end - start)) * 32;
    return `sha256:${this.#levels[level]!.buffer.toString("hex", offset, offset + 32)}`;
  };

  #checkSize(size: number): void {
    checkSize(size, "The tree size");
    if (size > this.size) refuse("The tree size exceeds the number of leaves");
  }

  /** MTH of the first `size` leaves. */
  root(size = this.size): Buffer {
    this.#checkSize(size);
    return digestToBytes(this.#subtree(0, size));
  }

  /** The compact range of the first `size` leaves, as a frontier that can go on appending. */
  frontier(size = this.size): MerkleFrontier {
    this.#checkSize(size);
    const nodes: Digest[] = [];
    let start = 0;
    let subtree = 1;
    while (subtree * 2 <= size) subtree *= 2;
    for (; subtree >= 1; subtree /= 2) {
      if (size - start >= subtree) {
        nodes.push(this.#subtree(start, start + subtree));
        start += subtree;
      }
    }
    return frontierDigests.create(size, nodes);
  }

  /** The inclusion proof of leaf `index` in the tree of the first `size` leaves. */
  inclusionProof(index: number, size = this.size): Buffer[] {
    this.#checkSize(size);
    return inclusionPath(index, size, this.#subtree);
  }

  /** The consistency proof between the trees of the first `first` and `second` leaves. */
  consistencyProof(first: number, second = this.size): Buffer[] {
    this.#checkSize(second);
    return consistencyPath(first, second, this.#subtree);
  }

  static {
    treeContentHashes = {
      inclusion: (tree, index, size) => {
        tree.#checkSize(size);
        return inclusionNodes(index, size, tree.#subtreeHash) as ContentHash[];
      },
      consistency: (tree, first, second) => {
        tree.#checkSize(second);
        return consistencyNodes(first, second, tree.#subtreeHash) as ContentHash[];
      },
    };
  }
}

/** `sha256:<hex>` as its 32 bytes; throws `INVALID_REQUEST` for anything else. */
export function sha256HashBytes(hash: string): Buffer {
  const digest = contentHashToDigest(hash);
  if (digest === undefined) refuse("Expected a sha256:<64 lower-case hex digits> hash");
  return digestToBytes(digest);
}

/** 32 bytes as `sha256:<hex>`. */
export function sha256ContentHash(bytes: Uint8Array): ContentHash {
  return digestToContentHash(toDigest(bytes));
}

/**
 * Proof generation for a store that keeps subtree hashes rather than every leaf (tile roots, the
 * frontier of a pruned prefix): `subtree(start, end)` returns MTH(D[start:end]) for the dyadic ranges
 * RFC 9162's recursion asks for, and throws when it cannot.
 *
 * Example: `inclusionProofFromSubtrees(5, 12, (start, end) => store.subtreeHash(start, end))`.
 */
export function inclusionProofFromSubtrees(
  index: number,
  size: number,
  subtree: (start: number, end: number) => Uint8Array,
): Buffer[] {
  return inclusionPath(index, size, (start, end) => toDigest(subtree(start, end), "subtree hash"));
}

/** {@link inclusionProofFromSubtrees} for the consistency proof between `first` and `second`. */
export function consistencyProofFromSubtrees(
  first: number,
  second: number,
  subtree: (start: number, end: number) => Uint8Array,
): Buffer[] {
  return consistencyPath(first, second, (start, end) => toDigest(subtree(start, end), "subtree hash"));
}
