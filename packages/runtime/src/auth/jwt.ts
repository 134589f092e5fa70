// JWT bearer tokens: verified with jose against a JWKS URL or static public keys, under an algorithm allowlist.
import { type JsonWebKey, type KeyObject, createPublicKey } from "node:crypto";
import {
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
} from "jose";
import { isAgentId } from "@signet/protocol";
import { ConfigError } from "../config/load-config.js";
import type { PrincipalKind } from "../store/types.js";
import {
  type AuthFailure,
  type AuthFailureHints,
  type AuthFailureReason,
  authFailure,
} from "./auth-failure.js";
import { isPrincipalKind, permissionTokens } from "./principal-checks.js";
import type { Principal } from "./principal.js";

/** What a JWT verifier checks. The allowlist of algorithms, issuer and audience have no defaults. */
export interface JwtVerifierConfig {
  /** The exact `iss` tokens must carry. */
  readonly issuer: string;
  /** The `aud` (or one of them) tokens must carry. */
  readonly audience: string | readonly string[];
  /**
   * The signature algorithms accepted, for instance `["RS256"]` or `["ES256", "EdDSA"]`. Asymmetric
   * only: `none` and HS* are refused at construction (see the module's notes).
   */
  readonly algorithms: readonly string[];
  /** Where the identity provider publishes its keys; https (or http on a loopback address). */
  readonly jwksUrl?: string;
  /**
   * Public keys instead of a JWKS URL: JWK objects, JWK or JWKS JSON text, or PEM (SPKI or X.509
   * certificate). A key without a `kid` verifies tokens whatever their `kid` header says.
   */
  readonly staticKeys?: readonly (JWK | string)[];
  /** Allowed clock skew for `exp`/`nbf`, in seconds, 0 to 300. Defaults to 0 (no skew). */
  readonly clockToleranceSec?: number;
  /** The kind of every principal this issuer vouches for. Defaults to `agent`. */
  readonly principalKind?: PrincipalKind;
  /**
   * The claim holding the principal's permissions: a list of strings (`permissions`) or an OAuth
   * space-separated string (`scope`). Omitted means JWT principals carry no permissions.
   */
  readonly permissionsClaim?: string;
  /** How long one JWKS fetch may take (ms). Defaults to 5000. */
  readonly jwksTimeoutMs?: number;
  /** The least time (ms) between two refetches triggered by an unknown `kid`. Defaults to 30000. */
  readonly jwksCooldownMs?: number;
  /** How long (ms) fetched keys are used before they are fetched again. Defaults to 600000. */
  readonly jwksCacheMaxAgeMs?: number;
}

/** Verifies one bearer token at time `now` (ms). */
export interface JwtVerifier {
  verify(token: string, now: number): Promise<Principal | AuthFailure>;
}

// Only asymmetric algorithms. With a shared secret (HS*) anyone able to verify tokens can also mint them
// for any subject, and an HS* entry next to public keys is the classic RS/HS confusion: the attacker
// signs with the public key's bytes as the HMAC secret. jose already refuses to use a public key as an
// HMAC secret; refusing HS* in the configuration removes the question entirely.
const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
]);

/** The key types (and curves) each algorithm verifies with. */
function algorithmFitsKey(alg: string, jwk: JWK): boolean {
  if (alg.startsWith("RS") || alg.startsWith("PS")) return jwk.kty === "RSA";
  if (alg === "ES256") return jwk.kty === "EC" && jwk.crv === "P-256";
  if (alg === "ES384") return jwk.kty === "EC" && jwk.crv === "P-384";
  if (alg === "ES512") return jwk.kty === "EC" && jwk.crv === "P-521";
  return jwk.kty === "OKP" && jwk.crv === "Ed25519";
}

const MAX_CLOCK_TOLERANCE_SEC = 300;
const MAX_JWKS_TIMEOUT_MS = 60_000;
const MIN_RSA_BITS = 2048;
// Tokens longer than this are refused before parsing; real access tokens are well under 4 KiB.
const MAX_TOKEN_CHARS = 8192;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// Header values copied into failure hints must be short plain tokens: they are attacker-chosen.
const HINT_VALUE = /^[A-Za-z0-9._-]{1,64}$/;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["127.0.0.1", "[::1]"]);

function checkAlgorithms(algorithms: unknown, problems: string[]): string[] {
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    problems.push('jwt.algorithms: required, a non-empty allowlist such as ["RS256"]');
    return [];
  }
  const accepted: string[] = [];
  for (const alg of algorithms as unknown[]) {
    if (typeof alg !== "string") {
      problems.push("jwt.algorithms: every entry must be a string");
    } else if (alg.toLowerCase() === "none") {
      problems.push('jwt.algorithms: "none" (unsigned tokens) is never allowed');
    } else if (/^hs\d+$/i.test(alg)) {
      problems.push(
        `jwt.algorithms: "${alg}" is a shared-secret algorithm; only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA)`,
      );
    } else if (!ASYMMETRIC_ALGORITHMS.has(alg)) {
      problems.push(`jwt.algorithms: "${alg}" is not a supported algorithm`);
    } else if (!accepted.includes(alg)) {
      accepted.push(alg);
    }
  }
  return accepted;
}

function checkDuration(
  value: unknown,
  setting: string,
  fallback: number,
  max: number,
  problems: string[],
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    problems.push(`jwt.${setting}: must be an integer from 0 to ${max}`);
    return fallback;
  }
  return value;
}

function checkJwksUrl(value: string, problems: string[]): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push("jwt.jwksUrl: not a URL");
    return undefined;
  }
  // Keys fetched over plaintext could be swapped in transit, which hands out the right to mint tokens.
  // A loopback address never leaves the machine (an identity-provider sidecar), so it may use http.
  const loopback = url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== "https:" && !loopback) {
    problems.push("jwt.jwksUrl: must be https (http only on 127.0.0.1 or [::1])");
    return undefined;
  }
  return url;
}

/** Reads one configured key into public JWKs, reporting problems by position. */
function staticJwks(entry: unknown, index: number, problems: string[]): JWK[] {
  const setting = `jwt.staticKeys[${index}]`;
  if (typeof entry === "string") {
    const text = entry.trim();
    if (text.startsWith("{")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        problems.push(`${setting}: not valid JSON`);
        return [];
      }
      const keys = (parsed as { keys?: unknown }).keys;
      const list: unknown[] = Array.isArray(keys) ? keys : [parsed];
      return list.flatMap((jwk) => publicJwk(jwk, setting, problems) ?? []);
    }
    if (/PRIVATE KEY/.test(text)) {
      problems.push(`${setting}: is a private key; give the verifier the public key only`);
      return [];
    }
    let key: KeyObject;
    try {
      key = createPublicKey(text);
    } catch {
      problems.push(`${setting}: not a PEM public key or certificate`);
      return [];
    }
    return [...(publicJwk(key.export({ format: "jwk" }), setting, problems) ?? [])];
  }
  return [...(publicJwk(entry, setting, problems) ?? [])];
}

function publicJwk(value: unknown, setting: string, problems: string[]): JWK[] | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`${setting}: not a JWK`);
    return undefined;
  }
  const jwk = value as JWK;
  if (jwk.kty === "oct" || "k" in jwk) {
    problems.push(`${setting}: symmetric keys are not accepted; use an asymmetric public key`);
    return undefined;
  }
  if ("d" in jwk) {
    problems.push(`${setting}: is a private key; give the verifier the public key only`);
    return undefined;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  } catch {
    problems.push(`${setting}: not a valid public JWK`);
    return undefined;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (jwk.kty === "RSA" && (bits === undefined || bits < MIN_RSA_BITS)) {
    problems.push(`${setting}: RSA keys must have at least ${MIN_RSA_BITS} bits`);
    return undefined;
  }
  return [jwk];
}

/** Parses the configured permissions claim into a list; undefined when it has the wrong shape. */
function permissionsFrom(payload: JWTPayload, claim: string | undefined): string[] | undefined {
  if (claim === undefined) return [];
  const value = payload[claim];
  if (value === undefined) return [];
  if (typeof value === "string") return permissionTokens(value.split(" ").filter((part) => part !== ""));
  return permissionTokens(value);
}

function joseReason(error: unknown, remote: boolean): AuthFailureReason {
  if (!(error instanceof errors.JOSEError)) {
    // Outside jose's own errors, a remote key set fails by its fetch (refused connection, DNS, abort).
    return remote ? "jwks_unavailable" : "malformed";
  }
  switch (error.code) {
    case errors.JWTExpired.code:
      return "expired";
    case errors.JWTClaimValidationFailed.code: {
      const claim = (error as errors.JWTClaimValidationFailed).claim;
      if (claim === "aud") return "wrong_audience";
      if (claim === "iss") return "wrong_issuer";
      if (claim === "nbf") return "not_yet_valid";
      if (claim === "sub") return "bad_subject";
      return "bad_claims";
    }
    case errors.JOSEAlgNotAllowed.code:
      return "alg_not_allowed";
    case errors.JWSSignatureVerificationFailed.code:
    case errors.JWKSMultipleMatchingKeys.code:
      return "bad_signature";
    case errors.JWKSNoMatchingKey.code:
      return "unknown_kid";
    case errors.JWKSTimeout.code:
    case errors.JWKSInvalid.code:
      return remote ? "jwks_unavailable" : "malformed";
    case errors.JOSEError.code:
      // The generic code comes from a JWKS response that was not 200 or not JSON.
      return remote ? "jwks_unavailable" : "malformed";
    default:
      return "malformed";
  }
}

function headerHints(token: string): AuthFailureHints {
  try {
    const { alg, kid } = decodeProtectedHeader(token);
    return {
      ...(typeof alg === "string" && HINT_VALUE.test(alg) ? { alg } : {}),
      ...(typeof kid === "string" && HINT_VALUE.test(kid) ? { kid } : {}),
    };
  } catch {
    return {};
  }
}

/** Static keys as a jose key resolver. */
function staticKeyResolver(keys: JWK[]): JWTVerifyGetKey {
  const all = createLocalJWKSet({ keys });
  const withoutKid = keys.filter((jwk) => jwk.kid === undefined);
  const anyKid = withoutKid.length > 0 ? createLocalJWKSet({ keys: withoutKid }) : undefined;
  return async (header, token) => {
    try {
      return await all(header, token);
    } catch (error) {
      // A key configured without a kid (a PEM file) is tried whatever kid the token names: the kid only
      // picks a key, the signature still has to verify with it.
      if (error instanceof errors.JWKSNoMatchingKey && header.kid !== undefined && anyKid !== undefined) {
        return anyKid({ ...header, kid: undefined }, token);
      }
      throw error;
    }
  };
}

/**
 * Builds a verifier for one issuer's bearer tokens. Configuration mistakes throw a ConfigError naming
 * the setting (`jwt.algorithms`, `jwt.jwksUrl`, ...). `sub` must be a bare id; `exp` is required.
 *
 * Example:
 * `const jwt = createJwtVerifier({ issuer: "https://idp.example", audience: "signet",
 *   algorithms: ["RS256"], jwksUrl: "https://idp.example/.well-known/jwks.json",
 *   permissionsClaim: "permissions" });
 *  const result = await jwt.verify(token, Date.now());`
 */
export function createJwtVerifier(config: JwtVerifierConfig): JwtVerifier {
  const problems: string[] = [];
  const algorithms = checkAlgorithms(config.algorithms, problems);

  if (typeof config.issuer !== "string" || config.issuer === "") {
    problems.push("jwt.issuer: required, the exact `iss` of accepted tokens");
  }
  const audience: string[] =
    typeof config.audience === "string" ? [config.audience] : [...(config.audience ?? [])];
  if (audience.length === 0 || audience.some((aud) => typeof aud !== "string" || aud === "")) {
    problems.push("jwt.audience: required, one or more non-empty strings");
  }

  const clockTolerance = checkDuration(
    config.clockToleranceSec,
    "clockToleranceSec",
    0,
    MAX_CLOCK_TOLERANCE_SEC,
    problems,
  );
  const timeoutDuration = checkDuration(
    config.jwksTimeoutMs,
    "jwksTimeoutMs",
    5_000,
    MAX_JWKS_TIMEOUT_MS,
    problems,
  );
  const cooldownDuration = checkDuration(
    config.jwksCooldownMs,
    "jwksCooldownMs",
    30_000,
    86_400_000,
    problems,
  );
  const cacheMaxAge = checkDuration(
    config.jwksCacheMaxAgeMs,
    "jwksCacheMaxAgeMs",
    600_000,
    86_400_000,
    problems,
  );

  const principalKind = config.principalKind ?? "agent";
  if (!isPrincipalKind(principalKind)) problems.push("jwt.principalKind: must be agent, user or service");
  const permissionsClaim = config.permissionsClaim;
  if (permissionsClaim !== undefined && (typeof permissionsClaim !== "string" || permissionsClaim === "")) {
    problems.push("jwt.permissionsClaim: must be a claim name such as `permissions` or `scope`");
  }

  const hasUrl = config.jwksUrl !== undefined;
  const hasStatic = config.staticKeys !== undefined && config.staticKeys.length > 0;
  let getKey: JWTVerifyGetKey | undefined;
  if (hasUrl === hasStatic) {
    problems.push("jwt.jwksUrl / jwt.staticKeys: set exactly one of them");
  } else if (hasUrl) {
    const url = checkJwksUrl(String(config.jwksUrl), problems);
    if (url !== undefined) {
      // jose caches the set, refetches when a token names an unknown kid (at most once per cooldown, so
      // random kids cannot turn into a flood of requests), and gives up on a fetch after the timeout.
      getKey = createRemoteJWKSet(url, { timeoutDuration, cooldownDuration, cacheMaxAge });
    }
  } else {
    const keys = (config.staticKeys ?? []).flatMap((entry, index) => staticJwks(entry, index, problems));
    keys.forEach((jwk, index) => {
      if (!algorithms.some((alg) => algorithmFitsKey(alg, jwk))) {
        problems.push(
          `jwt.staticKeys: key ${index} (${String(jwk.kty)}${jwk.crv ? ` ${jwk.crv}` : ""}) fits none of jwt.algorithms`,
        );
      }
    });
    if (keys.length > 0) getKey = staticKeyResolver(keys);
  }

  if (problems.length > 0 || getKey === undefined) throw new ConfigError(problems);
  const keySource = getKey;
  const remote = hasUrl;

  return {
    async verify(token: string, now: number): Promise<Principal | AuthFailure> {
      if (typeof token !== "string" || token.length > MAX_TOKEN_CHARS || !COMPACT_JWS.test(token)) {
        return authFailure("malformed", "jwt");
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keySource, {
          algorithms,
          issuer: config.issuer,
          audience,
          clockTolerance,
          currentDate: new Date(now),
          // Without `exp` a leaked token would work forever; without `sub` there is nobody to be.
          requiredClaims: ["exp", "sub"],
        }));
      } catch (error) {
        const reason = joseReason(error, remote);
        const hints = headerHints(token);
        return authFailure(reason, "jwt", reason === "jwks_unavailable" ? { ...hints, error } : hints);
      }
      if (!isAgentId(payload.sub)) return authFailure("bad_subject", "jwt", headerHints(token));
      const permissions = permissionsFrom(payload, permissionsClaim);
      if (permissions === undefined) return authFailure("bad_claims", "jwt", headerHints(token));
      return { id: payload.sub, kind: principalKind, permissions, method: "jwt" };
    },
  };
}
