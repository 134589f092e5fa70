// The agent's signing key: accepted as a key object or a PEM file path, loaded lazily and once.
import { KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Ed25519PrivateKey } from "@signet/protocol";
import { SdkError } from "./errors.js";

/**
 * An Ed25519 signing key: an `Ed25519PrivateKey`, a node:crypto private `KeyObject`, or the path of a
 * PKCS#8 PEM file (as `signet keys generate` writes it).
 */
export type SigningKeyInput = Ed25519PrivateKey | KeyObject | string;

/**
 * Loads a signing key the first time it is needed, so constructing a client touches no file. A failed
 * load is not cached: a key file that appears later is picked up by the next call.
 *
 * Example: `await new SigningKeySource("./keys/alice.key").get()`.
 */
export class SigningKeySource {
  #pending: Promise<Ed25519PrivateKey> | undefined;

  constructor(private readonly input: SigningKeyInput | undefined) {}

  /** True when a key was configured (it may still fail to load). */
  get configured(): boolean {
    return this.input !== undefined;
  }

  get(): Promise<Ed25519PrivateKey> {
    if (this.#pending === undefined) {
      const pending = loadSigningKey(this.input);
      this.#pending = pending;
      pending.catch(() => {
        if (this.#pending === pending) this.#pending = undefined;
      });
    }
    return this.#pending;
  }
}

/** Turns any accepted key form into an `Ed25519PrivateKey`; throws `SdkError` (reason `signing_key`). */
export async function loadSigningKey(input: SigningKeyInput | undefined): Promise<Ed25519PrivateKey> {
  if (input === undefined) throw new SdkError("No signing key is configured", { reason: "signing_key" });
  if (input instanceof Ed25519PrivateKey) return input;
  if (input instanceof KeyObject) {
    try {
      return Ed25519PrivateKey.fromKeyObject(input);
    } catch (cause) {
      throw new SdkError("The signing key must be an Ed25519 private key", { reason: "signing_key", cause });
    }
  }
  if (typeof input !== "string") {
    throw new SdkError("The signing key must be a key object or a PEM file path", { reason: "signing_key" });
  }
  let pem: string;
  try {
    pem = await readFile(input, "utf8");
  } catch (cause) {
    // The path is not a secret; the file's content would be, so it never appears in an error.
    throw new SdkError(`Cannot read the signing key file ${JSON.stringify(input)}`, {
      reason: "signing_key",
      cause,
    });
  }
  try {
    return Ed25519PrivateKey.fromPem(pem);
  } catch {
    throw new SdkError(`The file ${JSON.stringify(input)} is not a PKCS#8 Ed25519 private key`, {
      reason: "signing_key",
    });
  }
}
