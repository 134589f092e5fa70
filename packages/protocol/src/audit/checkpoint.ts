// Signed checkpoints of the audit log's Merkle tree, and the chain of the runtime's signing keys.
//
// A checkpoint is the runtime's signed statement "the log's first tree_size entries have this Merkle
// root", linked to the checkpoint before it. Key records let the runtime's key change without
// orphaning old checkpoints: each new key is endorsed by the one before it and accepts the succession
// with its own signature, so an auditor who trusts any one key of the chain can check them all, and
// each key only vouches for the tree sizes of its own period.
import { createHash } from "node:crypto";
import type { ContentHash } from "../crypto/content-hash.js";
import { type Ed25519PrivateKey, Ed25519PublicKey } from "../crypto/ed25519.js";
import { fromBase64Url } from "../crypto/encoding.js";
import { KEY_ID_PATTERN, SIGNATURE_PATTERN } from "../envelope/fields.js";
import {
  runtimeSigningInput,
  signRuntimeDocument,
  verifyRuntimeDocument,
} from "../envelope/runtime-signed.js";
import { SignetError } from "../errors/signet-error.js";
import type { JsonValue } from "../json/canonical-json.js";
import { AUDIT_TIME_PATTERN } from "./entry.js";

/** Checkpoints are signed over `"signet/1 checkpoint\n" ‖ JCS(checkpoint without sig)`. */
export const CHECKPOINT_DOMAIN = "checkpoint";
/** Key records are signed over `"signet/1 runtime-key\n" ‖ JCS(record without sig and key_sig)`. */
export const RUNTIME_KEY_DOMAIN = "runtime-key";

const SHA256_HASH = /^sha256:[0-9a-f]{64}$/;
const PUBLIC_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** What a checkpoint states, before it is signed. */
export interface CheckpointFields {
  /** How many entries the tree covers: entries with seq 0 .. tree_size - 1. */
  readonly tree_size: number;
  /** MTH of those entries' hashes (RFC 9162), `sha256:<hex>`. */
  readonly root_hash: ContentHash;
  /** When it was signed, RFC 3339 UTC with microseconds. */
  readonly time: string;
  /** {@link checkpointHash} of the previous checkpoint; absent on the log's first. */
  readonly prev?: ContentHash;
}

/** A checkpoint signed by the runtime's key. */
export interface Checkpoint extends CheckpointFields {
  readonly kid: string;
  readonly sig: string;
}

function badCheckpoint(field: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid checkpoint: ${field}`, { reason: "checkpoint" });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkCheckpointFields(value: Record<string, unknown>): void {
  if (!Number.isSafeInteger(value.tree_size) || (value.tree_size as number) < 0) badCheckpoint("tree_size");
  if (typeof value.root_hash !== "string" || !SHA256_HASH.test(value.root_hash)) badCheckpoint("root_hash");
  if (typeof value.time !== "string" || !AUDIT_TIME_PATTERN.test(value.time)) badCheckpoint("time");
  if (value.prev !== undefined && (typeof value.prev !== "string" || !SHA256_HASH.test(value.prev))) {
    badCheckpoint("prev");
  }
}

const CHECKPOINT_KEYS = new Set(["tree_size", "root_hash", "time", "prev", "kid", "sig"]);

/**
 * Checks that `value` has exactly the shape of a checkpoint and returns it typed (the signature is
 * not checked here). Throws `INVALID_REQUEST` (reason `checkpoint`).
 */
export function parseCheckpoint(value: unknown): Checkpoint {
  if (!isPlainObject(value)) return badCheckpoint("not an object");
  for (const key of Object.keys(value)) if (!CHECKPOINT_KEYS.has(key)) badCheckpoint(`unknown member ${key}`);
  checkCheckpointFields(value);
  if (typeof value.kid !== "string" || !KEY_ID_PATTERN.test(value.kid)) badCheckpoint("kid");
  if (typeof value.sig !== "string" || !SIGNATURE_PATTERN.test(value.sig)) badCheckpoint("sig");
  return value as unknown as Checkpoint;
}

/**
 * Signs a checkpoint with the runtime's key.
 *
 * Example:
 * ```ts
 * const checkpoint = signCheckpoint(
 *   { tree_size: frontier.size, root_hash: frontier.rootHash(), time, prev: checkpointHash(last) },
 *   runtimeKey,
 * );
 * ```
 */
export function signCheckpoint(fields: CheckpointFields, key: Ed25519PrivateKey): Checkpoint {
  checkCheckpointFields(fields as unknown as Record<string, unknown>);
  const document: Record<string, JsonValue> = {
    tree_size: fields.tree_size,
    root_hash: fields.root_hash,
    time: fields.time,
  };
  if (fields.prev !== undefined) document.prev = fields.prev;
  return signRuntimeDocument(CHECKPOINT_DOMAIN, document, key) as unknown as Checkpoint;
}

/**
 * The hash that names a checkpoint (the next checkpoint's `prev`): SHA-256 of its signing input,
 * which covers every member but `sig`.
 */
export function checkpointHash(checkpoint: Checkpoint): ContentHash {
  const input = runtimeSigningInput(CHECKPOINT_DOMAIN, checkpoint as unknown as Record<string, unknown>);
  return `sha256:${createHash("sha256").update(input).digest("hex")}`;
}

/**
 * Verifies a checkpoint's signature with one public key; throws `SIGNATURE_INVALID` (reason
 * `runtime_sig`) when it does not hold. Use {@link RuntimeKeyChain.verifyCheckpoint} when the key may
 * have been rotated.
 */
export function verifyCheckpointSignature(checkpoint: Checkpoint, key: Ed25519PublicKey): void {
  verifyRuntimeDocument(CHECKPOINT_DOMAIN, checkpoint as unknown as Record<string, unknown>, key);
}

/** One runtime key, endorsed by the key before it. */
export interface RuntimeKeyRecord {
  /** The key: base64url of its 32 raw bytes. */
  readonly public_key: string;
  /** Its RFC 7638 thumbprint. */
  readonly key_id: string;
  /** The key it replaces; absent in the first record. */
  readonly prev_key_id?: string;
  /** The log size when the key took over: it signs checkpoints of this size and above. */
  readonly tree_size: number;
  readonly time: string;
  /** The endorsing key: `prev_key_id`, or `key_id` itself in the first record. */
  readonly kid: string;
  /** The endorsing key's signature. */
  readonly sig: string;
  /** The new key's own signature over the same input: it accepts the succession. */
  readonly key_sig: string;
}

const KEY_RECORD_KEYS = new Set([
  "public_key",
  "key_id",
  "prev_key_id",
  "tree_size",
  "time",
  "kid",
  "sig",
  "key_sig",
]);

function badKeyRecord(index: number, what: string): never {
  throw new SignetError("SIGNATURE_INVALID", `Runtime key record ${index}: ${what}`, { reason: "key_chain" });
}

function keyRecordInput(record: Readonly<Record<string, unknown>>): Buffer {
  const { key_sig: _keySig, ...rest } = record;
  return runtimeSigningInput(RUNTIME_KEY_DOMAIN, rest);
}

/**
 * Signs the record of a runtime key. The first record of a log has no `endorser` and endorses
 * itself; a rotation passes the previous key as `endorser`. Both keys sign, so trust runs both ways
 * along the chain.
 *
 * Example: `signRuntimeKeyRecord({ key: next, endorser: previous, tree_size: 5000, time })`.
 */
export function signRuntimeKeyRecord(options: {
  readonly key: Ed25519PrivateKey;
  readonly endorser?: Ed25519PrivateKey;
  readonly tree_size: number;
  readonly time: string;
}): RuntimeKeyRecord {
  const { key, endorser = key, tree_size, time } = options;
  if (!Number.isSafeInteger(tree_size) || tree_size < 0 || !AUDIT_TIME_PATTERN.test(time)) {
    throw new SignetError("INVALID_REQUEST", "Invalid runtime key record: tree_size or time", {
      reason: "key_record",
    });
  }
  const document: Record<string, unknown> = {
    public_key: key.publicKey.toBase64Url(),
    key_id: key.kid,
    tree_size,
    time,
    kid: endorser.kid,
  };
  if (endorser !== key) document.prev_key_id = endorser.kid;
  const input = runtimeSigningInput(RUNTIME_KEY_DOMAIN, document);
  return {
    ...document,
    sig: endorser.sign(input).toString("base64url"),
    key_sig: key.sign(input).toString("base64url"),
  } as unknown as RuntimeKeyRecord;
}

/** One key's period: the checkpoint tree sizes it may sign. */
export interface RuntimeKeyPeriod {
  readonly kid: string;
  readonly key: Ed25519PublicKey;
  /** The smallest tree size it signs. */
  readonly from: number;
  /** The largest tree size it signs (the next key's `tree_size`); open when it is the current key. */
  readonly until?: number;
}

/** A verified chain of runtime keys. */
export class RuntimeKeyChain {
  readonly #byKid: ReadonlyMap<string, RuntimeKeyPeriod>;

  constructor(readonly periods: readonly RuntimeKeyPeriod[]) {
    this.#byKid = new Map(periods.map((period) => [period.kid, period]));
  }

  /** The period of a key id, if the chain holds it. */
  period(kid: string): RuntimeKeyPeriod | undefined {
    return this.#byKid.get(kid);
  }

  /**
   * Verifies a checkpoint: its key is in the chain, the key's period covers its tree size, and the
   * signature holds. Throws `SIGNATURE_INVALID` (reason `runtime_sig` or `key_period`) otherwise.
   */
  verifyCheckpoint(checkpoint: Checkpoint): void {
    const period = this.#byKid.get(checkpoint.kid);
    if (period === undefined) {
      throw new SignetError("SIGNATURE_INVALID", "The checkpoint's key is not in the runtime key chain", {
        reason: "runtime_sig",
      });
    }
    if (
      checkpoint.tree_size < period.from ||
      (period.until !== undefined && checkpoint.tree_size > period.until)
    ) {
      throw new SignetError("SIGNATURE_INVALID", "The checkpoint was signed by a key outside its period", {
        reason: "key_period",
      });
    }
    verifyCheckpointSignature(checkpoint, period.key);
  }
}

/**
 * Verifies a chain of runtime key records, in order, anchored on one key the auditor trusts (any key
 * of the chain). Each record must name the previous record's key, be signed by it (the first by
 * itself) and by its own key, and not move the tree size backwards. An empty chain holds the trusted
 * key alone, for every tree size. Throws `SIGNATURE_INVALID` (reason `key_chain`) naming the record.
 *
 * Example: `const keys = verifyRuntimeKeyChain(exported.keys, Ed25519PublicKey.fromPem(pem));`.
 */
export function verifyRuntimeKeyChain(
  records: readonly unknown[],
  trusted: Ed25519PublicKey,
): RuntimeKeyChain {
  if (records.length === 0) return new RuntimeKeyChain([{ kid: trusted.kid, key: trusted, from: 0 }]);
  const keys: Ed25519PublicKey[] = [];
  const sizes: number[] = [];
  const seen = new Set<string>();
  records.forEach((value, index) => {
    if (!isPlainObject(value)) return badKeyRecord(index, "not an object");
    for (const member of Object.keys(value)) {
      if (!KEY_RECORD_KEYS.has(member)) badKeyRecord(index, `unknown member ${member}`);
    }
    if (typeof value.public_key !== "string" || !PUBLIC_KEY_PATTERN.test(value.public_key)) {
      badKeyRecord(index, "public_key");
    }
    let key: Ed25519PublicKey;
    try {
      key = Ed25519PublicKey.fromBase64Url(value.public_key);
    } catch {
      return badKeyRecord(index, "public_key");
    }
    if (value.key_id !== key.kid) badKeyRecord(index, "key_id does not match public_key");
    if (seen.has(key.kid)) badKeyRecord(index, "a key appears twice");
    if (!Number.isSafeInteger(value.tree_size) || (value.tree_size as number) < 0)
      badKeyRecord(index, "tree_size");
    if (typeof value.time !== "string" || !AUDIT_TIME_PATTERN.test(value.time)) badKeyRecord(index, "time");
    const previous = keys[index - 1];
    if (previous === undefined) {
      if (value.prev_key_id !== undefined || value.kid !== key.kid)
        badKeyRecord(index, "the first key must endorse itself");
    } else {
      if (value.prev_key_id !== previous.kid || value.kid !== previous.kid) {
        badKeyRecord(index, "not endorsed by the previous key");
      }
      if ((value.tree_size as number) < sizes[index - 1]!) badKeyRecord(index, "tree_size goes backwards");
    }
    const endorser = previous ?? key;
    const input = keyRecordInput(value);
    const sig =
      typeof value.sig === "string" && SIGNATURE_PATTERN.test(value.sig)
        ? fromBase64Url(value.sig)
        : undefined;
    const keySig =
      typeof value.key_sig === "string" && SIGNATURE_PATTERN.test(value.key_sig)
        ? fromBase64Url(value.key_sig)
        : undefined;
    if (sig === undefined || !endorser.verify(input, sig))
      badKeyRecord(index, "the endorsing signature does not verify");
    if (keySig === undefined || !key.verify(input, keySig))
      badKeyRecord(index, "the key's own signature does not verify");
    seen.add(key.kid);
    keys.push(key);
    sizes.push(value.tree_size as number);
  });
  if (!seen.has(trusted.kid)) {
    throw new SignetError("SIGNATURE_INVALID", "The trusted key is not in the runtime key chain", {
      reason: "key_chain",
    });
  }
  return new RuntimeKeyChain(
    keys.map((key, index) => ({
      kid: key.kid,
      key,
      from: sizes[index]!,
      ...(index + 1 < keys.length ? { until: sizes[index + 1]! } : {}),
    })),
  );
}
