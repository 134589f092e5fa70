// Ed25519 keys over node:crypto, with the strict checks RFC 8032 leaves to the implementation.
//
// node:crypto (OpenSSL) signs and verifies; on top of it we refuse non-canonical signatures
// (S >= L, which would make signatures malleable) and public keys that are non-canonical encodings or
// points of small order (which let one signature verify for many messages). Key ids are RFC 7638 JWK
// thumbprints, so any JOSE library computes the same id.
import {
  type KeyObject,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import { SignetError } from "../errors/signet-error.js";
import { fromBase64Url, toBase64Url } from "./encoding.js";

/** An Ed25519 public key as a JWK (RFC 8037). */
export interface Ed25519PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid?: string;
}

/** An Ed25519 private key as a JWK (RFC 8037). */
export interface Ed25519PrivateJwk extends Ed25519PublicJwk {
  d: string;
}

const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

// The group order L, little-endian, as it appears in the S half of a signature.
const GROUP_ORDER_LE = Buffer.from("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010", "hex");

// y-coordinates (sign bit cleared) of the points of order 1, 2, 4 and 8 (libsodium's list). Together
// with the y < p check below, this refuses every small-order point in any encoding.
const SMALL_ORDER_Y = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((hex) => Buffer.from(hex, "hex"));

// p = 2^255 - 19, little-endian.
const FIELD_PRIME_LE = Buffer.from("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex");

/** Compares two 32-byte little-endian integers: negative, zero or positive like a comparator. */
function compareLittleEndian(a: Uint8Array, b: Uint8Array, offsetA = 0): number {
  for (let i = 31; i >= 0; i--) {
    const diff = a[offsetA + i]! - b[i]!;
    if (diff !== 0) return diff;
  }
  return 0;
}

/** True when the signature's S half is below the group order (RFC 8032 section 5.1.7 step 1). */
export function hasCanonicalScalar(signature: Uint8Array): boolean {
  return signature.length === 64 && compareLittleEndian(signature, GROUP_ORDER_LE, 32) < 0;
}

/** Why a public key encoding is refused, or undefined when it is acceptable. */
export function publicKeyDefect(raw: Uint8Array): "length" | "non_canonical" | "small_order" | undefined {
  if (raw.length !== 32) return "length";
  const y = Buffer.from(raw);
  y[31] = y[31]! & 0x7f;
  if (compareLittleEndian(y, FIELD_PRIME_LE) >= 0) return "non_canonical";
  for (const small of SMALL_ORDER_Y) if (y.equals(small)) return "small_order";
  return undefined;
}

function invalidKey(reason: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid Ed25519 key: ${reason}`, { reason });
}

/** RFC 7638 thumbprint of an Ed25519 public key, base64url: the protocol's key id. */
export function keyIdFromRaw(raw: Uint8Array): string {
  const members = `{"crv":"Ed25519","kty":"OKP","x":"${toBase64Url(raw)}"}`;
  return createHash("sha256").update(members).digest("base64url");
}

/**
 * A validated Ed25519 public key with its cached KeyObject and key id.
 *
 * Example: `Ed25519PublicKey.fromBase64Url(x).verify(message, signature)`.
 */
export class Ed25519PublicKey {
  /** RFC 7638 thumbprint (base64url, 43 characters). */
  readonly kid: string;

  private constructor(
    readonly raw: Buffer,
    readonly keyObject: KeyObject,
  ) {
    this.kid = keyIdFromRaw(raw);
  }

  /** Imports 32 raw bytes, refusing non-canonical and small-order encodings. */
  static fromRaw(raw: Uint8Array): Ed25519PublicKey {
    const defect = publicKeyDefect(raw);
    if (defect !== undefined) invalidKey(defect);
    const copy = Buffer.from(raw);
    const keyObject = createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, copy]),
      format: "der",
      type: "spki",
    });
    return new Ed25519PublicKey(copy, keyObject);
  }

  /** Imports the unpadded base64url of the 32 raw bytes. */
  static fromBase64Url(text: string): Ed25519PublicKey {
    const raw = fromBase64Url(text);
    if (raw === undefined) invalidKey("encoding");
    return Ed25519PublicKey.fromRaw(raw);
  }

  /** Imports an SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  static fromPem(pem: string): Ed25519PublicKey {
    let keyObject: KeyObject;
    try {
      keyObject = createPublicKey({ key: pem, format: "pem" });
    } catch {
      return invalidKey("pem");
    }
    return Ed25519PublicKey.fromKeyObject(keyObject);
  }

  /** Imports an OKP/Ed25519 JWK. */
  static fromJwk(jwk: unknown): Ed25519PublicKey {
    const candidate = jwk as Partial<Ed25519PublicJwk> | null;
    if (
      typeof candidate !== "object" ||
      candidate === null ||
      candidate.kty !== "OKP" ||
      candidate.crv !== "Ed25519" ||
      typeof candidate.x !== "string"
    ) {
      return invalidKey("jwk");
    }
    return Ed25519PublicKey.fromBase64Url(candidate.x);
  }

  /** Imports a node:crypto public (or private, whose public half is taken) Ed25519 KeyObject. */
  static fromKeyObject(keyObject: KeyObject): Ed25519PublicKey {
    if (keyObject.asymmetricKeyType !== "ed25519") invalidKey("not_ed25519");
    const publicObject = keyObject.type === "private" ? createPublicKey(keyObject) : keyObject;
    const der = publicObject.export({ format: "der", type: "spki" });
    return Ed25519PublicKey.fromRaw(der.subarray(SPKI_PREFIX.length));
  }

  toBase64Url(): string {
    return toBase64Url(this.raw);
  }

  toPem(): string {
    return this.keyObject.export({ format: "pem", type: "spki" }).toString();
  }

  toJwk(): Ed25519PublicJwk {
    return { kty: "OKP", crv: "Ed25519", x: this.toBase64Url(), kid: this.kid };
  }

  /**
   * Verifies an Ed25519 signature strictly: wrong length and S >= L are refused before the curve
   * arithmetic. Returns false for any invalid signature; never throws for bad input.
   */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (!hasCanonicalScalar(signature)) return false;
    try {
      return nodeVerify(null, message, this.keyObject, signature);
    } catch {
      return false;
    }
  }
}

/**
 * An Ed25519 private key with its public half. The seed never appears in `toString`, `toJSON` or
 * `util.inspect` output.
 */
export class Ed25519PrivateKey {
  private constructor(
    readonly keyObject: KeyObject,
    readonly publicKey: Ed25519PublicKey,
  ) {}

  /** The key id of the public half. */
  get kid(): string {
    return this.publicKey.kid;
  }

  /** A fresh key pair from the operating system's CSPRNG. */
  static generate(): Ed25519PrivateKey {
    const { privateKey } = generateKeyPairSync("ed25519");
    return Ed25519PrivateKey.fromKeyObject(privateKey);
  }

  /** Imports the 32-byte seed (RFC 8032 "private key"). */
  static fromSeed(seed: Uint8Array): Ed25519PrivateKey {
    if (seed.length !== 32) invalidKey("length");
    const keyObject = createPrivateKey({
      key: Buffer.concat([PKCS8_PREFIX, seed]),
      format: "der",
      type: "pkcs8",
    });
    return Ed25519PrivateKey.fromKeyObject(keyObject);
  }

  /** Imports the unpadded base64url of the 32-byte seed. */
  static fromBase64Url(text: string): Ed25519PrivateKey {
    const seed = fromBase64Url(text);
    if (seed === undefined) invalidKey("encoding");
    return Ed25519PrivateKey.fromSeed(seed);
  }

  /** Imports a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  static fromPem(pem: string): Ed25519PrivateKey {
    let keyObject: KeyObject;
    try {
      keyObject = createPrivateKey({ key: pem, format: "pem" });
    } catch {
      return invalidKey("pem");
    }
    return Ed25519PrivateKey.fromKeyObject(keyObject);
  }

  /** Imports an OKP/Ed25519 private JWK. */
  static fromJwk(jwk: unknown): Ed25519PrivateKey {
    const candidate = jwk as Partial<Ed25519PrivateJwk> | null;
    if (typeof candidate !== "object" || candidate === null || typeof candidate.d !== "string") {
      return invalidKey("jwk");
    }
    const publicKey = Ed25519PublicKey.fromJwk(candidate);
    const key = Ed25519PrivateKey.fromBase64Url(candidate.d);
    if (!key.publicKey.raw.equals(publicKey.raw)) invalidKey("jwk_mismatch");
    return key;
  }

  /** Wraps a node:crypto Ed25519 private KeyObject. */
  static fromKeyObject(keyObject: KeyObject): Ed25519PrivateKey {
    if (keyObject.type !== "private" || keyObject.asymmetricKeyType !== "ed25519") invalidKey("not_ed25519");
    return new Ed25519PrivateKey(keyObject, Ed25519PublicKey.fromKeyObject(keyObject));
  }

  /** Signs `message` (pure Ed25519, RFC 8032). */
  sign(message: Uint8Array): Buffer {
    return nodeSign(null, message, this.keyObject);
  }

  /** The 32-byte seed. Handle with care: this is the secret. */
  exportSeed(): Buffer {
    const der = this.keyObject.export({ format: "der", type: "pkcs8" });
    return Buffer.from(der.subarray(PKCS8_PREFIX.length));
  }

  /** PKCS#8 PEM of the private key. Handle with care: this is the secret. */
  toPem(): string {
    return this.keyObject.export({ format: "pem", type: "pkcs8" }).toString();
  }

  /** Private JWK. Handle with care: this is the secret. */
  toJwk(): Ed25519PrivateJwk {
    return { ...this.publicKey.toJwk(), d: toBase64Url(this.exportSeed()) };
  }

  toString(): string {
    return `Ed25519PrivateKey(${this.kid})`;
  }

  toJSON(): { kid: string } {
    return { kid: this.kid };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/**
 * A bounded cache of imported public keys, keyed by their base64url form, so a verifier imports
 * each key once. Example: `cache.get(x)` returns the same `Ed25519PublicKey` every time.
 */
export class PublicKeyCache {
  private readonly keys = new Map<string, Ed25519PublicKey>();

  constructor(private readonly capacity = 10_000) {}

  get(base64url: string): Ed25519PublicKey {
    const hit = this.keys.get(base64url);
    if (hit !== undefined) {
      // Refresh recency: Map iterates in insertion order, so the oldest entry is evicted first.
      this.keys.delete(base64url);
      this.keys.set(base64url, hit);
      return hit;
    }
    const key = Ed25519PublicKey.fromBase64Url(base64url);
    this.keys.set(base64url, key);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.keys().next();
      if (oldest.done !== true) this.keys.delete(oldest.value);
    }
    return key;
  }
}
