// Holds docs/protocol.md's worked example to the implementation, byte for byte.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  type ResolvedKey,
  canonicalHeader,
  canonicalize,
  signEnvelope,
  signingInput,
  verifyEnvelope,
} from "@signet/protocol";

const doc = readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8");

function example(name: string): string {
  const match = new RegExp(`<!-- example:${name} -->\\s*\`\`\`[a-z]*\\n([^\\n]*)\\n\`\`\``).exec(doc);
  if (!match) throw new Error(`docs/protocol.md has no example block "${name}"`);
  return match[1]!;
}

describe("docs/protocol.md worked example", () => {
  const key = Ed25519PrivateKey.fromSeed(Buffer.from(example("seed"), "hex"));
  const body = JSON.parse(example("body")) as { limit: number; query: string };
  const signed = signEnvelope(
    {
      type: "invoke",
      from: "alice",
      to: "tool:database/query",
      id: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
      ts: 1763769600000,
      nonce: Buffer.from([...Array(16).keys()]).toString("base64url"),
      intent: { purpose: "nightly report", permissions: ["database:read"] },
      body,
    },
    key,
  );

  it("has the documented key and key id", () => {
    expect(key.publicKey.toBase64Url()).toBe(example("public-key"));
    expect(key.kid).toBe(example("kid"));
  });

  it("produces the documented body, header, signing input, signature, hash and wire bytes", () => {
    expect(canonicalize(body)).toBe(example("body"));
    expect(canonicalHeader(signed.envelope)).toBe(example("header"));
    expect(signingInput(signed.envelope).toString("hex")).toBe(example("signing-input-hex"));
    expect(signed.envelope.sig).toBe(example("sig"));
    expect(signed.hash).toBe(example("envelope-hash"));
    expect(signed.wire).toBe(example("wire"));
  });

  it("verifies the documented wire bytes with only the documented public key", () => {
    const publicKey = Ed25519PublicKey.fromBase64Url(example("public-key"));
    const resolved: ResolvedKey = { key: publicKey, owner: "alice" };
    const verified = verifyEnvelope(example("wire"), {
      resolveKey: (kid) => (kid === publicKey.kid ? resolved : undefined),
    });
    expect(verified.hash).toBe(example("envelope-hash"));
  });
});
