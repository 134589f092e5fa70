// Ed25519 keys: import/export round trips, key ids, strict public-key and signature checks.
import { readFileSync } from "node:fs";
import { createPublicKey, generateKeyPairSync, sign as nodeSign } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  PublicKeyCache,
  SignetError,
  hasCanonicalScalar,
  keyIdFromRaw,
  publicKeyDefect,
} from "@signet/protocol";

// RFC 8032 section 7.1 TEST 1.
const TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const TEST1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SignetError);
    expect((error as SignetError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe("Ed25519 keys", () => {
  it("derives the RFC 8032 public key from the seed", () => {
    const key = Ed25519PrivateKey.fromSeed(Buffer.from(TEST1_SEED, "hex"));
    expect(key.publicKey.raw.toString("hex")).toBe(TEST1_PUBLIC);
  });

  it("computes the RFC 7638 thumbprint as the key id", () => {
    // RFC 8037 appendix A.3: the thumbprint of the RFC 8032 TEST 1 public key.
    expect(keyIdFromRaw(Buffer.from(TEST1_PUBLIC, "hex"))).toBe(
      "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
    );
  });

  it("round-trips private and public keys through raw, PEM and JWK", () => {
    const key = Ed25519PrivateKey.generate();
    const pub = key.publicKey;
    expect(Ed25519PublicKey.fromBase64Url(pub.toBase64Url()).raw.equals(pub.raw)).toBe(true);
    expect(Ed25519PublicKey.fromPem(pub.toPem()).kid).toBe(pub.kid);
    expect(Ed25519PublicKey.fromJwk(pub.toJwk()).kid).toBe(pub.kid);
    expect(Ed25519PrivateKey.fromPem(key.toPem()).kid).toBe(key.kid);
    expect(Ed25519PrivateKey.fromJwk(key.toJwk()).kid).toBe(key.kid);
    expect(Ed25519PrivateKey.fromSeed(key.exportSeed()).kid).toBe(key.kid);
    expect(Ed25519PublicKey.fromKeyObject(key.keyObject).kid).toBe(key.kid);
  });

  it("interoperates with node:crypto key objects and JWK export", () => {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const jwk = publicKey.export({ format: "jwk" });
    const imported = Ed25519PublicKey.fromJwk(jwk);
    const message = Buffer.from("hello");
    expect(imported.verify(message, nodeSign(null, message, privateKey))).toBe(true);
    expect(createPublicKey(imported.toPem()).export({ format: "jwk" }).x).toBe(jwk.x);
  });

  it("never shows the private seed in string, JSON or inspect output", async () => {
    const key = Ed25519PrivateKey.generate();
    const seed = key.exportSeed().toString("base64url");
    const { inspect } = await import("node:util");
    for (const shown of [String(key), JSON.stringify(key), inspect(key), inspect({ key })]) {
      expect(shown).not.toContain(seed);
      expect(shown).toContain(key.kid);
    }
  });

  it("refuses a private JWK whose public half does not match", () => {
    const a = Ed25519PrivateKey.generate().toJwk();
    const b = Ed25519PrivateKey.generate().toJwk();
    expectCode(() => Ed25519PrivateKey.fromJwk({ ...a, x: b.x }), "INVALID_REQUEST");
  });

  it("refuses malformed encodings", () => {
    expectCode(() => Ed25519PublicKey.fromBase64Url("not base64!"), "INVALID_REQUEST");
    expectCode(() => Ed25519PublicKey.fromRaw(Buffer.alloc(31, 1)), "INVALID_REQUEST");
    expectCode(
      () => Ed25519PublicKey.fromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
      "INVALID_REQUEST",
    );
    expectCode(() => Ed25519PublicKey.fromJwk({ kty: "EC", crv: "P-256", x: "a" }), "INVALID_REQUEST");
    expectCode(() => Ed25519PrivateKey.fromSeed(Buffer.alloc(16)), "INVALID_REQUEST");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    expectCode(() => Ed25519PublicKey.fromKeyObject(rsa), "INVALID_REQUEST");
  });

  it("refuses small-order and non-canonical public key encodings", () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    expect(publicKeyDefect(identity)).toBe("small_order");
    expect(publicKeyDefect(Buffer.alloc(32))).toBe("small_order");
    const order8 = Buffer.from("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "hex");
    expect(publicKeyDefect(order8)).toBe("small_order");
    const order8Signed = Buffer.from(order8);
    order8Signed[31] = order8Signed[31]! | 0x80;
    expect(publicKeyDefect(order8Signed)).toBe("small_order");
    // p and p + 1 encode 0 and 1 non-canonically.
    const p = Buffer.from("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex");
    expect(publicKeyDefect(p)).toBe("non_canonical");
    const pPlus1 = Buffer.from("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex");
    expect(publicKeyDefect(pPlus1)).toBe("non_canonical");
    expectCode(() => Ed25519PublicKey.fromRaw(identity), "INVALID_REQUEST");
    expect(publicKeyDefect(Buffer.from(TEST1_PUBLIC, "hex"))).toBeUndefined();
  });

  it("refuses signatures whose S is not below the group order", () => {
    const key = Ed25519PrivateKey.generate();
    const message = Buffer.from("m");
    const signature = key.sign(message);
    expect(hasCanonicalScalar(signature)).toBe(true);
    // S + L verifies in lax implementations; it must not here.
    const order = 2n ** 252n + 27742317777372353535851937790883648493n;
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString("hex")}`) + order;
    const sBytes = Buffer.from(s.toString(16).padStart(64, "0"), "hex").reverse();
    const malleated = Buffer.concat([signature.subarray(0, 32), sBytes]);
    expect(hasCanonicalScalar(malleated)).toBe(false);
    expect(key.publicKey.verify(message, malleated)).toBe(false);
    expect(key.publicKey.verify(message, signature)).toBe(true);
  });

  it("verifies what it signs and nothing else (property)", () => {
    const key = Ed25519PrivateKey.generate();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.nat(255 * 8), (message, bit) => {
        const signature = key.sign(message);
        expect(key.publicKey.verify(message, signature)).toBe(true);
        const flipped = Buffer.from(signature);
        const index = bit % (64 * 8);
        flipped[index >> 3] = flipped[index >> 3]! ^ (1 << (index & 7));
        expect(key.publicKey.verify(message, flipped)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it("passes the RFC 8032 section 7.1 vectors", () => {
    const cases = JSON.parse(
      readFileSync(
        new URL("../../../../shared/vectors/rfc8032/ed25519_rfc8032_section7_1.json", import.meta.url),
        "utf8",
      ),
    ) as unknown;
    const list = (Array.isArray(cases) ? cases : (cases as { cases: unknown[] }).cases) as {
      secretKey: string;
      publicKey: string;
      message: string;
      signature: string;
    }[];
    expect(list.length).toBeGreaterThan(0);
    for (const c of list) {
      const key = Ed25519PrivateKey.fromSeed(Buffer.from(c.secretKey, "hex"));
      expect(key.publicKey.raw.toString("hex")).toBe(c.publicKey);
      expect(key.sign(Buffer.from(c.message, "hex")).toString("hex")).toBe(c.signature);
    }
  });

  it("caches imported keys", () => {
    const cache = new PublicKeyCache(2);
    const keys = [0, 1, 2].map(() => Ed25519PrivateKey.generate().publicKey.toBase64Url());
    const first = cache.get(keys[0]!);
    expect(cache.get(keys[0]!)).toBe(first);
    cache.get(keys[1]!);
    cache.get(keys[2]!);
    expect(cache.get(keys[0]!)).not.toBe(first);
  });
});
