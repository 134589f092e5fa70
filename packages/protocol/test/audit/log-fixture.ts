// Builds signed audit logs for the tests: entries, checkpoints every few entries, key records.
import { AuditChain } from "../../src/audit/chain.js";
import {
  type Checkpoint,
  type RuntimeKeyRecord,
  checkpointHash,
  signCheckpoint,
  signRuntimeKeyRecord,
} from "../../src/audit/checkpoint.js";
import {
  type AuditEntryFields,
  encodeAuditEntry,
  formatAuditTime,
  parseAuditEntry,
} from "../../src/audit/entry.js";
import { MerkleTree, sha256HashBytes } from "../../src/audit/merkle.js";
import type { AuditExport, AuditExportEntry } from "../../src/audit/verify.js";
import type { ContentHash } from "../../src/crypto/content-hash.js";
import { Ed25519PrivateKey } from "../../src/crypto/ed25519.js";

// Fixed seeds, so a failure replays exactly.
export const KEY_1 = Ed25519PrivateKey.fromSeed(Buffer.alloc(32, 1));
export const KEY_2 = Ed25519PrivateKey.fromSeed(Buffer.alloc(32, 2));
export const OTHER_KEY = Ed25519PrivateKey.fromSeed(Buffer.alloc(32, 9));

export const timeOf = (i: number): string => formatAuditTime(1_795_000_000_000_000 + i * 1000);

export interface Log {
  readonly entries: { bytes: Buffer; hash: ContentHash }[];
  readonly checkpoints: Checkpoint[];
  readonly keys: RuntimeKeyRecord[];
  readonly tree: MerkleTree;
}

/**
 * `size` entries with a checkpoint after every `every` entries, signed by KEY_1, or by KEY_2 from
 * tree size `rotateAt` on (with the rotation recorded).
 */
export function buildLog(size: number, options: { every?: number; rotateAt?: number } = {}): Log {
  const { every = 10, rotateAt } = options;
  const chain = new AuditChain();
  const tree = new MerkleTree();
  const entries: Log["entries"] = [];
  const checkpoints: Checkpoint[] = [];
  const keys = [signRuntimeKeyRecord({ key: KEY_1, tree_size: 0, time: timeOf(0) })];
  let key = KEY_1;
  for (let i = 0; i < size; i++) {
    if (rotateAt !== undefined && i === rotateAt) {
      keys.push(signRuntimeKeyRecord({ key: KEY_2, endorser: KEY_1, tree_size: i, time: timeOf(i) }));
      key = KEY_2;
    }
    const sealed = chain.append({
      id: `entry-${i}`,
      time: timeOf(i),
      type: i % 3 === 0 ? "invocation" : "invocation_result",
      actor: i % 2 === 0 ? "alice" : "inventory-bot",
      target: "tool:inventory/lookup",
      outcome: i % 5 === 0 ? "deny" : "allow",
      ...(i % 5 === 0 ? { code: "POLICY_DENIED" } : {}),
      rules: [`rule-${i % 4}`],
      params: { sku: `SKU-${i}`, note: 'quotes " and \\ and {"seq":1}' },
    });
    entries.push({ bytes: sealed.bytes, hash: sealed.hash });
    tree.append(sha256HashBytes(sealed.hash));
    if ((i + 1) % every === 0) {
      const previous = checkpoints.at(-1);
      checkpoints.push(
        signCheckpoint(
          {
            tree_size: chain.size,
            root_hash: chain.rootHash(),
            time: timeOf(i),
            ...(previous === undefined ? {} : { prev: checkpointHash(previous) }),
          },
          key,
        ),
      );
    }
  }
  return { entries, checkpoints, keys, tree };
}

/** The log as an export (copies, so a test can tamper with it freely). */
export function exportOf(log: Log): {
  keys: RuntimeKeyRecord[];
  checkpoints: Checkpoint[];
  entries: AuditExportEntry[];
} & AuditExport {
  return {
    keys: [...log.keys],
    checkpoints: [...log.checkpoints],
    entries: log.entries.map((entry) => ({ bytes: Buffer.from(entry.bytes), hash: entry.hash })),
  };
}

/** Entry `seq` re-encoded with a change, keeping its seq and prev_hash unless the change sets them. */
export function reencode(
  entry: AuditExportEntry,
  change: Partial<AuditEntryFields>,
): { bytes: Buffer; hash: ContentHash } {
  const { hash: _hash, ...fields } = parseAuditEntry(entry.bytes);
  return encodeAuditEntry({ ...fields, ...change });
}
