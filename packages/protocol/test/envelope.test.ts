// Envelopes: sign/verify round trips, every refusal with its code, bit flips, result binding.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Ed25519PrivateKey,
  type JsonValue,
  type KeyResolver,
  SignetError,
  assertEnvelopeShape,
  assertFresh,
  assertResultAnswers,
  canonicalize,
  envelopeHash,
  hashJson,
  serializeEnvelope,
  signEnvelope,
  verifyEnvelope,
} from "@signet/protocol";

const alice = Ed25519PrivateKey.generate();
const bob = Ed25519PrivateKey.generate();
const revoked = new Set<string>();
const resolveKey: KeyResolver = (kid) => {
  if (kid === alice.kid) return { key: alice.publicKey, owner: "alice", revoked: revoked.has(kid) };
  if (kid === bob.kid) return { key: bob.publicKey, owner: "bob" };
  return undefined;
};

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof SignetError) return error.code;
    throw error;
  }
  return "OK";
}

function verify(wire: string | Uint8Array): string {
  return codeOf(() => verifyEnvelope(wire, { resolveKey }));
}

const invoke = (body: JsonValue = { q: "select 1", n: [1, 2.5, "x"] }) =>
  signEnvelope({ type: "invoke", from: "alice", to: "tool:database/query", body }, alice);

/** Re-serializes an envelope after changing one field, keeping everything else as signed. */
function tamper(wire: string, change: (envelope: Record<string, unknown>) => void): string {
  const envelope = JSON.parse(wire) as Record<string, unknown>;
  change(envelope);
  return canonicalize(envelope);
}

describe("signEnvelope / verifyEnvelope", () => {
  it("round-trips and returns the typed envelope, its hash and body", () => {
    const signed = invoke();
    const verified = verifyEnvelope(signed.wire, { resolveKey });
    expect(verified.envelope).toEqual(signed.envelope);
    expect(verified.hash).toBe(signed.hash);
    expect(verified.hash).toBe(envelopeHash(signed.envelope));
    expect(verified.canonicalBody).toBe(canonicalize(signed.envelope.body));
    expect(signed.envelope.body_hash).toBe(hashJson(signed.envelope.body));
    expect(signed.wire).toBe(serializeEnvelope(signed.envelope));
    expect(signed.wire).toBe(canonicalize(signed.envelope));
  });

  it("verifies from bytes and from non-canonical (pretty-printed, reordered) text alike", () => {
    const signed = invoke();
    expect(verify(Buffer.from(signed.wire))).toBe("OK");
    const pretty = JSON.stringify(
      Object.fromEntries(Object.entries(JSON.parse(signed.wire) as object).reverse()),
      null,
      2,
    );
    expect(verifyEnvelope(pretty, { resolveKey }).hash).toBe(signed.hash);
  });

  it("signs and verifies random bodies (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (body) => {
        const signed = invoke(body as JsonValue);
        if (/"(?:__proto__|constructor|prototype)":/.test(signed.wire)) {
          // Members the strict parser refuses at any depth (docs/protocol.md 1.2): never accepted.
          expect(verify(signed.wire)).toBe("INVALID_ENVELOPE");
          return;
        }
        const verified = verifyEnvelope(signed.wire, { resolveKey });
        expect(canonicalize(verified.envelope.body)).toBe(canonicalize(body));
        expect(JSON.parse(serializeEnvelope(verified.envelope))).toEqual(JSON.parse(signed.wire));
      }),
      { numRuns: 200 },
    );
  });

  it("carries every optional field through signing", () => {
    const signed = signEnvelope(
      {
        type: "invoke",
        from: "alice",
        to: "capability:refunds",
        body: {},
        session: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
        intent: { purpose: "refund order 42", permissions: ["refunds:create"] },
        body_type: "org.acme.Refund.v1",
        provenance: { consent_ref: "consent-7", inputs: [hashJson({ a: 1 })] },
      },
      alice,
    );
    expect(verifyEnvelope(signed.wire, { resolveKey }).envelope.intent?.permissions).toEqual([
      "refunds:create",
    ]);
  });
});

describe("refusals", () => {
  it("a changed body is HASH_MISMATCH", () => {
    const signed = invoke({ amount: 10 });
    expect(verify(tamper(signed.wire, (e) => (e.body = { amount: 1000 })))).toBe("HASH_MISMATCH");
  });

  it("a body hash re-computed for a changed body is SIGNATURE_INVALID", () => {
    const signed = invoke({ amount: 10 });
    const forged = tamper(signed.wire, (e) => {
      e.body = { amount: 1000 };
      e.body_hash = hashJson(e.body);
    });
    expect(verify(forged)).toBe("SIGNATURE_INVALID");
  });

  it("a spoofed sender is SIGNATURE_INVALID (the key belongs to someone else)", () => {
    const signed = invoke();
    expect(verify(tamper(signed.wire, (e) => (e.from = "bob")))).toBe("SIGNATURE_INVALID");
  });

  it("a signature by another registered agent's key is refused", () => {
    // Mallory (bob) signs as alice with his own key: the kid is bob's, the owner check fails.
    const forged = signEnvelope({ type: "invoke", from: "alice", to: "tool:x", body: {} }, bob);
    expect(verify(forged.wire)).toBe("SIGNATURE_INVALID");
    // ...and claiming alice's kid does not help: the signature does not verify under her key.
    expect(verify(tamper(forged.wire, (e) => (e.kid = alice.kid)))).toBe("SIGNATURE_INVALID");
  });

  it("an unknown key is UNKNOWN_AGENT, a revoked one KEY_REVOKED", () => {
    const stranger = Ed25519PrivateKey.generate();
    expect(
      verify(signEnvelope({ type: "invoke", from: "alice", to: "tool:x", body: {} }, stranger).wire),
    ).toBe("UNKNOWN_AGENT");
    const signed = invoke();
    revoked.add(alice.kid);
    try {
      expect(verify(signed.wire)).toBe("KEY_REVOKED");
    } finally {
      revoked.delete(alice.kid);
    }
  });

  it("an unknown version is UNSUPPORTED_PROTOCOL_VERSION, a garbage one INVALID_ENVELOPE", () => {
    const signed = invoke();
    expect(verify(tamper(signed.wire, (e) => (e.v = "signet/2")))).toBe("UNSUPPORTED_PROTOCOL_VERSION");
    expect(verify(tamper(signed.wire, (e) => (e.v = 1)))).toBe("INVALID_ENVELOPE");
    expect(verify(tamper(signed.wire, (e) => delete e.v))).toBe("INVALID_ENVELOPE");
  });

  it("an unknown hash algorithm, unknown field or malformed field is INVALID_ENVELOPE", () => {
    const signed = invoke();
    const cases: ((e: Record<string, unknown>) => void)[] = [
      (e) => (e.body_hash = `b2:${"0".repeat(64)}`),
      (e) => (e.body_hash = "sha256:XYZ"),
      (e) => (e.extra = 1),
      (e) => (e.id = "not-a-uuid"),
      (e) => (e.from = "Alice"),
      (e) => (e.to = "database"),
      (e) => (e.ts = 1.5),
      (e) => (e.ts = "1"),
      (e) => (e.nonce = "short"),
      (e) => (e.sig = "x"),
      (e) => (e.kid = 5),
      (e) => delete e.body,
      (e) => (e.type = "execute"),
      (e) => (e.intent = { purpose: "x", admin: true }),
      (e) => (e.status = "ok"),
      (e) => (e.session = "bad session id"),
    ];
    for (const change of cases)
      expect(verify(tamper(signed.wire, change)), change.toString()).toBe("INVALID_ENVELOPE");
  });

  it("a non-canonical base64url signature encoding is refused", () => {
    const signed = invoke();
    const sig = signed.envelope.sig;
    // The last character of 86 carries 2 padding bits; setting one gives the same bytes, another text.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(sig.at(-1)!);
    const variant = sig.slice(0, -1) + alphabet[last ^ 1]!;
    expect(Buffer.from(variant, "base64url").equals(Buffer.from(sig, "base64url"))).toBe(true);
    expect(verify(tamper(signed.wire, (e) => (e.sig = variant)))).toBe("SIGNATURE_INVALID");
  });

  it("duplicate keys, __proto__ keys, deep nesting and oversize input are INVALID_ENVELOPE", () => {
    const signed = invoke();
    const dup = signed.wire.replace('"from":"alice"', '"from":"alice","from":"alice"');
    expect(verify(dup)).toBe("INVALID_ENVELOPE");
    const proto = signed.wire.replace('"body":{', '"body":{"__proto__":{"admin":true},');
    expect(verify(proto)).toBe("INVALID_ENVELOPE");
    const deep = signEnvelope(
      {
        type: "invoke",
        from: "alice",
        to: "tool:x",
        body: JSON.parse("[".repeat(70) + "]".repeat(70)) as JsonValue,
      },
      alice,
    );
    expect(verify(deep.wire)).toBe("INVALID_ENVELOPE");
    const big = invoke({ blob: "x".repeat(2 * 1024 * 1024) });
    expect(verify(big.wire)).toBe("INVALID_ENVELOPE");
    expect(codeOf(() => verifyEnvelope(big.wire, { resolveKey, maxBytes: 4 * 1024 * 1024 }))).toBe("OK");
  });

  it("flipping any bit of a signed field's value, the body, the signature or the key id fails with the right code (property)", () => {
    const signed = signEnvelope(
      {
        type: "invoke",
        from: "alice",
        to: "tool:database/query",
        body: { q: "select 1", limit: 10 },
        intent: { purpose: "report" },
      },
      alice,
    );
    const original = JSON.parse(signed.wire) as Record<string, unknown>;
    const fields = Object.keys(original);
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat(), (field, bitSeed) => {
        const mutated = structuredClone(original);
        if (field === "sig") {
          const bytes = Buffer.from(mutated.sig as string, "base64url");
          const bit = bitSeed % (bytes.length * 8);
          bytes[bit >> 3] = bytes[bit >> 3]! ^ (1 << (bit & 7));
          mutated.sig = bytes.toString("base64url");
        } else {
          const text = canonicalize(mutated[field]);
          const bytes = Buffer.from(text, "utf8");
          const bit = bitSeed % (bytes.length * 8);
          bytes[bit >> 3] = bytes[bit >> 3]! ^ (1 << (bit & 7));
          let value: unknown;
          try {
            value = JSON.parse(bytes.toString("utf8"));
          } catch {
            return; // The flip broke the JSON itself; the raw-wire property below covers that.
          }
          if (canonicalize(value) === text) return; // Same value, e.g. a flipped escape case.
          mutated[field] = value;
        }
        const code = verify(canonicalize(mutated));
        let shapeOk = true;
        try {
          assertEnvelopeShape(mutated as JsonValue);
        } catch {
          shapeOk = false;
        }
        if (field === "body" || field === "body_hash") {
          expect(code).toBe(shapeOk ? "HASH_MISMATCH" : "INVALID_ENVELOPE");
        } else if (field === "kid") {
          expect(code).toBe(shapeOk ? "UNKNOWN_AGENT" : "INVALID_ENVELOPE");
        } else if (field === "v") {
          expect(["INVALID_ENVELOPE", "UNSUPPORTED_PROTOCOL_VERSION"]).toContain(code);
        } else {
          expect(code).toBe(shapeOk ? "SIGNATURE_INVALID" : "INVALID_ENVELOPE");
        }
      }),
      { numRuns: 500 },
    );
  });

  it("flipping any bit of the wire bytes is refused or leaves the signed content unchanged (property)", () => {
    const signed = invoke({ note: "line\nbreak \u0001 ü", n: 1 });
    const bytes = Buffer.from(signed.wire, "utf8");
    fc.assert(
      fc.property(fc.nat(bytes.length * 8 - 1), (bit) => {
        const flipped = Buffer.from(bytes);
        flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
        let result;
        try {
          result = verifyEnvelope(flipped, { resolveKey });
        } catch (error) {
          expect(error).toBeInstanceOf(SignetError);
          return;
        }
        expect(result.hash).toBe(signed.hash);
        expect(result.canonicalBody).toBe(canonicalize(signed.envelope.body));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("results and freshness", () => {
  it("binds a result to the request it answers", () => {
    const request = invoke();
    const result = signEnvelope(
      {
        type: "result",
        from: "bob",
        to: "agent:alice",
        body: { rows: [] },
        re: { id: request.envelope.id, hash: request.hash },
        status: "ok",
        decision: { audit_id: "a-1", rules: ["allow-all"] },
      },
      bob,
    );
    const verified = verifyEnvelope(result.wire, { resolveKey }).envelope;
    expect(() =>
      assertResultAnswers(verified, { id: request.envelope.id, hash: request.hash }),
    ).not.toThrow();
    const other = invoke();
    expect(codeOf(() => assertResultAnswers(verified, { id: other.envelope.id, hash: other.hash }))).toBe(
      "SIGNATURE_INVALID",
    );
    expect(codeOf(() => assertResultAnswers(verified, { id: request.envelope.id, hash: other.hash }))).toBe(
      "SIGNATURE_INVALID",
    );
    expect(
      codeOf(() => assertResultAnswers(request.envelope, { id: request.envelope.id, hash: request.hash })),
    ).toBe("SIGNATURE_INVALID");
  });

  it("requires re and status on results and refuses them elsewhere", () => {
    expect(
      codeOf(() => signEnvelope({ type: "result", from: "bob", to: "agent:alice", body: {} }, bob)),
    ).toBe("INVALID_ENVELOPE");
  });

  it("refuses timestamps outside the window", () => {
    const now = 1_700_000_000_000;
    expect(codeOf(() => assertFresh(now - 60_000, now))).toBe("OK");
    expect(codeOf(() => assertFresh(now - 60_001, now))).toBe("STALE_MESSAGE");
    expect(codeOf(() => assertFresh(now + 60_001, now))).toBe("STALE_MESSAGE");
    expect(codeOf(() => assertFresh(now + 5_000, now, 1_000))).toBe("STALE_MESSAGE");
  });
});
