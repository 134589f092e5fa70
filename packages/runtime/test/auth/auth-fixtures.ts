// Shared fixtures for the auth tests: real keys, real signed tokens, a real JWKS server, tiny store fakes.
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  type JWK,
  type JWTPayload,
  SignJWT,
  exportJWK,
  exportSPKI,
  generateKeyPair,
} from "jose";
import type { ApiKeyRecord, ApiKeyStore } from "../../src/store/types.js";

export const ISSUER = "https://idp.test";
export const AUDIENCE = "signet";
/** A fixed clock (ms) so token times are exact. */
export const NOW = 1_800_000_000_000;
export const NOW_SEC = NOW / 1000;

export type SigningAlg = "RS256" | "ES256" | "EdDSA";

export interface SigningKey {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public JWK, with `kid` and `alg`. */
  readonly jwk: JWK;
  /** The public key as SPKI PEM. */
  readonly pem: string;
}

/** Generates a real key pair for `alg`. */
export async function signingKey(alg: SigningAlg, kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg === "EdDSA" ? "Ed25519" : alg, {
    extractable: true,
  });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg };
  return { alg, kid, privateKey, jwk, pem: await exportSPKI(publicKey) };
}

export interface TokenOptions {
  readonly sub?: string | null;
  readonly iss?: string;
  readonly aud?: string | string[];
  /** Seconds relative to NOW; null leaves the claim out. */
  readonly exp?: number | null;
  readonly nbf?: number;
  readonly kid?: string | null;
  readonly claims?: JWTPayload;
}

/** Signs a JWT with `key`; defaults give a valid token for ISSUER/AUDIENCE, subject `alice`. */
export async function signToken(key: SigningKey, options: TokenOptions = {}): Promise<string> {
  const kid = options.kid === undefined ? key.kid : options.kid;
  const jwt = new SignJWT({ permissions: ["agent:read"], ...options.claims })
    .setProtectedHeader(kid === null ? { alg: key.alg } : { alg: key.alg, kid })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt(NOW_SEC);
  const sub = options.sub === undefined ? "alice" : options.sub;
  if (sub !== null) jwt.setSubject(sub);
  const exp = options.exp === undefined ? 300 : options.exp;
  if (exp !== null) jwt.setExpirationTime(NOW_SEC + exp);
  if (options.nbf !== undefined) jwt.setNotBefore(NOW_SEC + options.nbf);
  return jwt.sign(key.privateKey);
}

/** base64url of a JSON value, for hand-crafted tokens. */
export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** A JWKS served by a real node:http server on 127.0.0.1, with a request counter. */
export interface JwksServer {
  readonly url: string;
  /** A path that always answers 500. */
  readonly brokenUrl: string;
  /** How many times the JWKS path was fetched. */
  readonly fetches: () => number;
  setKeys(keys: readonly JWK[]): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly JWK[]): Promise<JwksServer> {
  let current = [...keys];
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === "/jwks.json") {
      fetches += 1;
      res.writeHead(200, { "content-type": "application/jwk-set+json" });
      res.end(JSON.stringify({ keys: current }));
    } else {
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    brokenUrl: `http://127.0.0.1:${port}/broken`,
    fetches: () => fetches,
    setKeys(next) {
      current = [...next];
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** An ApiKeyStore that returns exactly the records it was given (no checks), for corrupt-record cases. */
export function recordStore(records: readonly ApiKeyRecord[]): ApiKeyStore {
  const byId = new Map(records.map((record) => [record.id, record]));
  return {
    putApiKey: () => Promise.reject(new Error("read-only fake")),
    getApiKey: (id) => Promise.resolve(byId.get(id)),
    listApiKeys: () => Promise.resolve([...byId.values()]),
    revokeApiKey: () => Promise.resolve(undefined),
  };
}

/** An ApiKeyStore whose database is down. */
export function unreachableStore(): ApiKeyStore {
  const down = (): Promise<never> => Promise.reject(new Error("connection refused"));
  return { putApiKey: down, getApiKey: down, listApiKeys: down, revokeApiKey: down };
}
