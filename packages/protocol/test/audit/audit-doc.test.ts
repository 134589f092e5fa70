// Holds docs/audit.md's worked example to the implementation, byte for byte.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AuditChain } from "../../src/audit/chain.js";
import {
  CHECKPOINT_DOMAIN,
  type Checkpoint,
  type RuntimeKeyRecord,
  signCheckpoint,
  signRuntimeKeyRecord,
  verifyRuntimeKeyChain,
} from "../../src/audit/checkpoint.js";
import { auditEntryHash, parseAuditEntry } from "../../src/audit/entry.js";
import { MerkleTree, sha256HashBytes } from "../../src/audit/merkle.js";
import { createInclusionProof, verifyInclusionInCheckpoint } from "../../src/audit/proofs.js";
import { verifyAuditExport } from "../../src/audit/verify.js";
import { Ed25519PrivateKey, Ed25519PublicKey } from "../../src/crypto/ed25519.js";
import { runtimeSigningInput } from "../../src/envelope/runtime-signed.js";
import { canonicalize } from "../../src/json/canonical-json.js";

const doc = readFileSync(new URL("../../../../docs/audit.md", import.meta.url), "utf8");

function example(name: string): string {
  const match = new RegExp(`<!-- example:${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\``).exec(doc);
  if (!match) throw new Error(`docs/audit.md has no example block "${name}"`);
  return match[1]!;
}

const key = Ed25519PrivateKey.fromSeed(
  Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex"),
);

describe("docs/audit.md worked example", () => {
  const chain = new AuditChain();
  const first = chain.append({
    id: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
    time: "2026-11-22T10:00:00.123456Z",
    type: "invocation",
    actor: "alice",
    target: "tool:database/query",
    outcome: "allow",
    rules: ["team/analysts-read"],
    params: { limit: 10, query: "[REDACTED]" },
    request: {
      hash: "sha256:6b0a3f1f1b2a8c6a0e5d9f5c1d8b3e2a4f6c7d8e9f0a1b2c3d4e5f60718293a4",
      id: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
      kid: key.kid,
      sig: "A".repeat(86),
    },
  });
  const second = chain.append({
    id: "0193f5b2-1c3e-7000-8000-000000000001",
    time: "2026-11-22T10:00:00.130001Z",
    type: "auth_failure",
    actor: "unknown",
    outcome: "deny",
    code: "UNAUTHENTICATED",
  });
  const checkpoint = signCheckpoint(
    { tree_size: 2, root_hash: chain.rootHash(), time: "2026-11-22T10:00:01.000000Z" },
    key,
  );
  const keyRecord = signRuntimeKeyRecord({ key, tree_size: 0, time: "2026-11-22T09:59:59.000000Z" });

  it("has the documented key", () => {
    expect(key.publicKey.toBase64Url()).toBe(example("public-key"));
    expect(key.kid).toBe(example("kid"));
  });

  it("produces the documented entry bytes, hashes and root", () => {
    expect(first.bytes.toString()).toBe(example("entry-0"));
    expect(first.hash).toBe(example("entry-0-hash"));
    expect(second.bytes.toString()).toBe(example("entry-1"));
    expect(second.hash).toBe(example("entry-1-hash"));
    expect(chain.rootHash()).toBe(example("root"));
  });

  it("produces the documented checkpoint, proof and key record", () => {
    expect(
      runtimeSigningInput(CHECKPOINT_DOMAIN, checkpoint as unknown as Record<string, unknown>).toString(),
    ).toBe(example("checkpoint-signing-input"));
    expect(canonicalize(checkpoint)).toBe(example("checkpoint"));
    const tree = MerkleTree.from([sha256HashBytes(first.hash), sha256HashBytes(second.hash)]);
    expect(canonicalize(createInclusionProof(tree, 0, 2))).toBe(example("inclusion-proof"));
    expect(canonicalize(keyRecord)).toBe(example("key-record"));
  });

  it("verifies the documented bytes with only the documented public key", () => {
    const publicKey = Ed25519PublicKey.fromBase64Url(example("public-key"));
    const keys = [JSON.parse(example("key-record")) as RuntimeKeyRecord];
    const checkpoints = [JSON.parse(example("checkpoint")) as Checkpoint];
    const entries = [Buffer.from(example("entry-0")), Buffer.from(example("entry-1"))];
    expect(entries.map(auditEntryHash)).toEqual([example("entry-0-hash"), example("entry-1-hash")]);
    expect(parseAuditEntry(entries[1]!).prev_hash).toBe(example("entry-0-hash"));
    const report = verifyAuditExport({ keys, checkpoints, entries }, { key: publicKey });
    expect(report).toMatchObject({ ok: true, anchored_size: 2, unanchored: 0, checkpoints: 1 });
    const chainOfKeys = verifyRuntimeKeyChain(keys, publicKey);
    const proof = JSON.parse(example("inclusion-proof")) as Parameters<typeof verifyInclusionInCheckpoint>[1];
    expect(verifyInclusionInCheckpoint(example("entry-0-hash"), proof, checkpoints[0]!, chainOfKeys)).toBe(
      true,
    );
  });
});
