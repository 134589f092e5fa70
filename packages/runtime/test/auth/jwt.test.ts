// JWT bearer tokens: real keys, real signatures, a real JWKS server; every refusal by its reason.
import { createHmac, generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthFailure, isAuthFailure } from "../../src/auth/auth-failure.js";
import { type JwtVerifierConfig, createJwtVerifier } from "../../src/auth/jwt.js";
import type { Principal } from "../../src/auth/principal.js";
import { ConfigError } from "../../src/config/load-config.js";
import {
  AUDIENCE,
  ISSUER,
  NOW,
  NOW_SEC,
  type JwksServer,
  type SigningKey,
  b64json,
  signToken,
  signingKey,
  startJwksServer,
} from "./auth-fixtures.js";

function reasonOf(result: Principal | AuthFailure): string {
  return isAuthFailure(result) ? result.reason : "ok";
}

/** The problems a configuration is refused with, or [] when it is accepted. */
function configProblems(config: Partial<JwtVerifierConfig>): string[] {
  try {
    createJwtVerifier(config as JwtVerifierConfig);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
}

let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([
    signingKey("RS256", "rsa-1"),
    signingKey("ES256", "ec-1"),
    signingKey("EdDSA", "ed-1"),
  ]);
});

describe("createJwtVerifier with static keys", () => {
  const rsaOnly = (extra: Partial<JwtVerifierConfig> = {}) =>
    createJwtVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ["RS256"],
      staticKeys: [rsa.pem],
      permissionsClaim: "permissions",
      ...extra,
    });

  it("accepts a valid token and returns the subject as a jwt principal", async () => {
    const result = await rsaOnly().verify(await signToken(rsa), NOW);
    expect(result).toEqual({ id: "alice", kind: "agent", permissions: ["agent:read"], method: "jwt" });
  });

  it("verifies ES256 and EdDSA tokens against JWK keys, picked by kid", async () => {
    const verifier = createJwtVerifier({
      issuer: ISSUER,
      audience: [AUDIENCE, "other"],
      algorithms: ["ES256", "EdDSA"],
      staticKeys: [ec.jwk, JSON.stringify({ keys: [ed.jwk] })],
      principalKind: "service",
    });
    expect(await verifier.verify(await signToken(ec), NOW)).toEqual({
      id: "alice",
      kind: "service",
      permissions: [],
      method: "jwt",
    });
    expect(reasonOf(await verifier.verify(await signToken(ed, { sub: "bob" }), NOW))).toBe("ok");
  });

  it("lets a key without kid (PEM) verify a token that names a kid", async () => {
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { kid: "whatever" }), NOW))).toBe("ok");
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { kid: null }), NOW))).toBe("ok");
  });

  it("refuses an unsigned `alg: none` token", async () => {
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: "alice", exp: NOW_SEC + 300 };
    for (const alg of ["none", "None", "NONE"]) {
      const token = `${b64json({ alg, typ: "JWT" })}.${b64json(claims)}.`;
      expect(reasonOf(await rsaOnly().verify(token, NOW))).toBe("alg_not_allowed");
    }
  });

  it("refuses HS256 signed with the RSA public key's PEM as the HMAC secret (RS/HS confusion)", async () => {
    const header = b64json({ alg: "HS256", typ: "JWT" });
    const payload = b64json({ iss: ISSUER, aud: AUDIENCE, sub: "alice", exp: NOW_SEC + 300 });
    const signature = createHmac("sha256", rsa.pem).update(`${header}.${payload}`).digest("base64url");
    const result = await rsaOnly().verify(`${header}.${payload}.${signature}`, NOW);
    expect(result).toMatchObject({
      ok: false,
      reason: "alg_not_allowed",
      method: "jwt",
      hints: { alg: "HS256" },
    });
  });

  it("refuses an algorithm outside the allowlist (ES256 token, RS256 allowed)", async () => {
    expect(reasonOf(await rsaOnly().verify(await signToken(ec), NOW))).toBe("alg_not_allowed");
  });

  it("refuses a token signed by another key, or altered after signing", async () => {
    const stranger = await signingKey("RS256", "rsa-1");
    expect(reasonOf(await rsaOnly().verify(await signToken(stranger), NOW))).toBe("bad_signature");
    const [header, , signature] = (await signToken(rsa)).split(".");
    const forged = b64json({ iss: ISSUER, aud: AUDIENCE, sub: "admin", exp: NOW_SEC + 300 });
    expect(reasonOf(await rsaOnly().verify(`${header}.${forged}.${signature}`, NOW))).toBe("bad_signature");
  });

  it("refuses a wrong audience and a wrong issuer", async () => {
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { aud: "someone-else" }), NOW))).toBe(
      "wrong_audience",
    );
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { iss: "https://evil.test" }), NOW))).toBe(
      "wrong_issuer",
    );
  });

  it("refuses an expired token, and one without exp", async () => {
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { exp: -1 }), NOW))).toBe("expired");
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { exp: null }), NOW))).toBe("bad_claims");
  });

  it("applies the clock tolerance to nbf and exp, and no further", async () => {
    const strict = rsaOnly();
    const tolerant = rsaOnly({ clockToleranceSec: 30 });
    const soon = await signToken(rsa, { nbf: 20 });
    expect(reasonOf(await strict.verify(soon, NOW))).toBe("not_yet_valid");
    expect(reasonOf(await tolerant.verify(soon, NOW))).toBe("ok");
    expect(reasonOf(await tolerant.verify(await signToken(rsa, { nbf: 120 }), NOW))).toBe("not_yet_valid");
    const justExpired = await signToken(rsa, { exp: -10 });
    expect(reasonOf(await strict.verify(justExpired, NOW))).toBe("expired");
    expect(reasonOf(await tolerant.verify(justExpired, NOW))).toBe("ok");
    expect(reasonOf(await tolerant.verify(await signToken(rsa, { exp: -60 }), NOW))).toBe("expired");
  });

  it("refuses a subject that is not a bare id, or none at all", async () => {
    for (const sub of ["Alice", "alice@example.com", "agent:alice", "", "a".repeat(129)]) {
      expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { sub }), NOW)), sub).toBe("bad_subject");
    }
    expect(reasonOf(await rsaOnly().verify(await signToken(rsa, { sub: null }), NOW))).toBe("bad_subject");
  });

  it("reads permissions from a list claim or a space-separated scope, and refuses other shapes", async () => {
    const scoped = rsaOnly({ permissionsClaim: "scope" });
    const token = await signToken(rsa, { claims: { scope: "openid agent:read  audit:read" } });
    expect(await scoped.verify(token, NOW)).toMatchObject({
      permissions: ["openid", "agent:read", "audit:read"],
    });
    expect(
      await rsaOnly().verify(await signToken(rsa, { claims: { permissions: undefined } }), NOW),
    ).toMatchObject({
      permissions: [],
    });
    for (const permissions of [42, [1], ["a b"], { admin: true }]) {
      const bad = await signToken(rsa, { claims: { permissions } });
      expect(reasonOf(await rsaOnly().verify(bad, NOW))).toBe("bad_claims");
    }
  });

  it("refuses malformed and oversized tokens before verifying", async () => {
    for (const token of ["", "abc", "a.b", "a.b.c.d", "a.b.c d", `${"a".repeat(9000)}.b.c`]) {
      expect(reasonOf(await rsaOnly().verify(token, NOW))).toBe("malformed");
    }
  });
});

describe("createJwtVerifier configuration", () => {
  const base: Partial<JwtVerifierConfig> = { issuer: ISSUER, audience: AUDIENCE, algorithms: ["RS256"] };
  const named = (problems: string[], setting: string) =>
    problems.some((problem) => problem.startsWith(setting));

  it("accepts a complete configuration", () => {
    expect(configProblems({ ...base, staticKeys: [rsa.pem] })).toEqual([]);
    expect(configProblems({ ...base, jwksUrl: "https://idp.test/jwks.json" })).toEqual([]);
  });

  it("requires a non-empty algorithm allowlist", () => {
    expect(
      named(configProblems({ ...base, algorithms: undefined, staticKeys: [rsa.pem] }), "jwt.algorithms"),
    ).toBe(true);
    expect(named(configProblems({ ...base, algorithms: [], staticKeys: [rsa.pem] }), "jwt.algorithms")).toBe(
      true,
    );
  });

  it("refuses `none` in the allowlist, in any case", () => {
    for (const none of ["none", "NONE"]) {
      const problems = configProblems({ ...base, algorithms: ["RS256", none], staticKeys: [rsa.pem] });
      expect(named(problems, "jwt.algorithms"), none).toBe(true);
    }
  });

  it("refuses HS* with a JWKS and with static keys, and unknown algorithms", () => {
    expect(
      named(
        configProblems({ ...base, algorithms: ["HS256"], jwksUrl: "https://idp.test/j" }),
        "jwt.algorithms",
      ),
    ).toBe(true);
    expect(
      named(
        configProblems({ ...base, algorithms: ["RS256", "HS512"], staticKeys: [rsa.pem] }),
        "jwt.algorithms",
      ),
    ).toBe(true);
    expect(
      named(configProblems({ ...base, algorithms: ["RS1"], staticKeys: [rsa.pem] }), "jwt.algorithms"),
    ).toBe(true);
  });

  it("refuses symmetric, private, small and mismatched static keys", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
      type: "spki",
      format: "pem",
    });
    const cases: Partial<JwtVerifierConfig>[] = [
      { ...base, staticKeys: [{ kty: "oct", k: "c2VjcmV0" }] },
      { ...base, algorithms: ["EdDSA"], staticKeys: [privatePem] },
      { ...base, staticKeys: [small.toString()] },
      { ...base, staticKeys: ["not a key"] },
      { ...base, staticKeys: [ec.jwk] },
    ];
    for (const config of cases) expect(named(configProblems(config), "jwt.staticKeys")).toBe(true);
  });

  it("requires exactly one key source, and https for a remote one", () => {
    expect(named(configProblems(base), "jwt.jwksUrl / jwt.staticKeys")).toBe(true);
    expect(
      named(configProblems({ ...base, jwksUrl: "https://idp.test/j", staticKeys: [rsa.pem] }), "jwt.jwksUrl"),
    ).toBe(true);
    expect(named(configProblems({ ...base, jwksUrl: "http://idp.test/jwks.json" }), "jwt.jwksUrl")).toBe(
      true,
    );
    expect(named(configProblems({ ...base, jwksUrl: "not a url" }), "jwt.jwksUrl")).toBe(true);
    expect(configProblems({ ...base, jwksUrl: "http://127.0.0.1:9/jwks.json" })).toEqual([]);
  });

  it("requires issuer and audience and bounds the clock tolerance", () => {
    expect(named(configProblems({ ...base, issuer: "", staticKeys: [rsa.pem] }), "jwt.issuer")).toBe(true);
    expect(named(configProblems({ ...base, audience: [], staticKeys: [rsa.pem] }), "jwt.audience")).toBe(
      true,
    );
    expect(
      named(
        configProblems({ ...base, clockToleranceSec: 3600, staticKeys: [rsa.pem] }),
        "jwt.clockToleranceSec",
      ),
    ).toBe(true);
  });
});

describe("createJwtVerifier with a JWKS URL", () => {
  let server: JwksServer;
  let first: SigningKey;
  let second: SigningKey;
  let third: SigningKey;

  beforeAll(async () => {
    [first, second, third] = await Promise.all([
      signingKey("ES256", "2026-01"),
      signingKey("ES256", "2026-02"),
      signingKey("RS256", "2026-03"),
    ]);
    server = await startJwksServer([first.jwk]);
  });

  afterAll(async () => {
    await server.close();
  });

  const remote = (extra: Partial<JwtVerifierConfig> = {}) =>
    createJwtVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ["ES256", "RS256"],
      jwksUrl: server.url,
      ...extra,
    });

  it("fetches the set once, then refetches when a token names an unknown kid (after rotation)", async () => {
    server.setKeys([first.jwk]);
    const verifier = remote({ jwksCooldownMs: 0 });
    const before = server.fetches();
    expect(reasonOf(await verifier.verify(await signToken(first), NOW))).toBe("ok");
    expect(reasonOf(await verifier.verify(await signToken(first), NOW))).toBe("ok");
    expect(server.fetches() - before).toBe(1);

    server.setKeys([second.jwk]);
    expect(await verifier.verify(await signToken(second, { sub: "bob" }), NOW)).toMatchObject({ id: "bob" });
    expect(server.fetches() - before).toBe(2);
  });

  it("does not refetch for unknown kids within the cooldown", async () => {
    server.setKeys([first.jwk]);
    const verifier = remote({ jwksCooldownMs: 60_000 });
    const before = server.fetches();
    expect(reasonOf(await verifier.verify(await signToken(first), NOW))).toBe("ok");
    server.setKeys([first.jwk, third.jwk]);
    const result = await verifier.verify(await signToken(third), NOW);
    expect(result).toMatchObject({ ok: false, reason: "unknown_kid", hints: { kid: "2026-03" } });
    expect(server.fetches() - before).toBe(1);
  });

  it("reports jwks_unavailable when the key set cannot be fetched", async () => {
    const broken = remote({ jwksUrl: server.brokenUrl });
    expect(reasonOf(await broken.verify(await signToken(first), NOW))).toBe("jwks_unavailable");
    const refused = remote({ jwksUrl: "http://127.0.0.1:1/jwks.json", jwksTimeoutMs: 2_000 });
    expect(reasonOf(await refused.verify(await signToken(first), NOW))).toBe("jwks_unavailable");
  });
});
