// The authenticator: method order, no fall-through, dev identity rules, and what a failure reveals.
import { beforeAll, describe, expect, it } from "vitest";
import { SignetError, isSignetError } from "@signet/protocol";
import { createApiKey, generateApiKey, revokeApiKey } from "../../src/auth/api-keys.js";
import type { AuthFailureHints, AuthFailureMethod, AuthFailureReason } from "../../src/auth/auth-failure.js";
import {
  type AuthRequest,
  type AuthenticatorConfig,
  createAuthenticator,
} from "../../src/auth/authenticator.js";
import { createJwtVerifier } from "../../src/auth/jwt.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { ApiKeyStore } from "../../src/store/types.js";
import {
  AUDIENCE,
  ISSUER,
  NOW,
  type SigningKey,
  signToken,
  signingKey,
  unreachableStore,
} from "./auth-fixtures.js";

interface Recorded {
  reason: AuthFailureReason;
  method: AuthFailureMethod;
  hints: AuthFailureHints;
}

let rsa: SigningKey;
let store: ApiKeyStore;
let apiKey: string;
let apiKeyId: string;
let revokedKey: string;
let expiredKey: string;
let jwt: string;

const peer = { id: "billing-bot", source: "cn" as const };

beforeAll(async () => {
  rsa = await signingKey("RS256", "rsa-1");
  store = createMemoryStores().apiKeys;
  const ctx = { actor: "admin" };
  const make = (name: string, expiresInMs?: number) =>
    createApiKey(
      store,
      {
        name,
        principal: "ci-deployer",
        kind: "service",
        permissions: ["agent:deploy"],
        expiresInMs,
        now: NOW - 10_000,
      },
      ctx,
    );
  ({
    key: apiKey,
    record: { id: apiKeyId },
  } = await make("ci"));
  const revoked = await make("old");
  revokedKey = revoked.key;
  await revokeApiKey(store, revoked.record.id, ctx, NOW - 1);
  expiredKey = (await make("short", 1_000)).key;
  jwt = await signToken(rsa);
});

function setup(overrides: Partial<AuthenticatorConfig> = {}) {
  const recorded: Recorded[] = [];
  const authenticator = createAuthenticator({
    apiKeys: store,
    jwt: createJwtVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ["RS256"],
      staticKeys: [rsa.pem],
    }),
    mtlsPrincipals: { admin: { kind: "user", permissions: ["*"] } },
    onFailure: (reason, method, hints) => {
      recorded.push({ reason, method, hints });
    },
    now: () => NOW,
    ...overrides,
  });
  return { authenticate: (request: AuthRequest) => authenticator.authenticate(request), recorded };
}

/** The SignetError a call rejects with (fails the test if it resolves). */
async function refusal(promise: Promise<unknown>): Promise<SignetError> {
  const error = await promise.then(
    () => expect.fail("expected a refusal"),
    (caught: unknown) => caught,
  );
  expect(isSignetError(error)).toBe(true);
  return error as SignetError;
}

const request = (headers: AuthRequest["headers"], extra: Partial<AuthRequest> = {}): AuthRequest => ({
  headers,
  insecure: false,
  ...extra,
});

describe("method order", () => {
  it("API key header wins over everything after it", async () => {
    const { authenticate } = setup();
    const principal = await authenticate(request({ "x-signet-api-key": apiKey }, { peer }));
    expect(principal).toMatchObject({ id: "ci-deployer", method: "api_key", credentialId: apiKeyId });
  });

  it("a Bearer sgk_ token is an API key, any other Bearer token a JWT", async () => {
    const { authenticate } = setup();
    expect(await authenticate(request({ authorization: `Bearer ${apiKey}` }, { peer }))).toMatchObject({
      method: "api_key",
    });
    expect(await authenticate(request({ Authorization: `bearer ${jwt}` }, { peer }))).toMatchObject({
      id: "alice",
      method: "jwt",
    });
  });

  it("without a header credential, the verified client certificate decides", async () => {
    const { authenticate } = setup();
    expect(await authenticate(request({}, { peer }))).toEqual({
      id: "billing-bot",
      kind: "agent",
      permissions: ["envelope:send"],
      method: "mtls",
    });
    expect(await authenticate(request({}, { peer: { id: "admin", source: "spiffe" } }))).toMatchObject({
      kind: "user",
      permissions: ["*"],
    });
  });

  it("the dev identity comes last, and only in insecure mode", async () => {
    const { authenticate } = setup();
    const dev = { "x-signet-dev-identity": "alice" };
    expect(await authenticate(request(dev, { insecure: true }))).toMatchObject({
      id: "alice",
      method: "dev",
    });
    expect(await authenticate(request(dev, { insecure: true, peer }))).toMatchObject({ method: "mtls" });
    expect(
      await authenticate(request({ ...dev, "x-signet-api-key": apiKey }, { insecure: true })),
    ).toMatchObject({
      method: "api_key",
    });
  });

  it("ignores a certificate when mTLS is not enabled", async () => {
    const { authenticate, recorded } = setup({ mtlsPrincipals: undefined });
    expect((await refusal(authenticate(request({}, { peer })))).code).toBe("UNAUTHENTICATED");
    expect(recorded).toEqual([{ reason: "no_credentials", method: "none", hints: {} }]);
  });
});

describe("no fall-through", () => {
  it("an invalid API key fails even with a valid client certificate", async () => {
    const { authenticate, recorded } = setup();
    const wrong = generateApiKey().key;
    const error = await refusal(authenticate(request({ "x-signet-api-key": wrong }, { peer })));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(recorded.map((r) => [r.reason, r.method])).toEqual([["unknown_key", "api_key"]]);
  });

  it("an invalid JWT fails even with a valid certificate and an insecure dev identity", async () => {
    const { authenticate, recorded } = setup();
    const expired = await signToken(rsa, { exp: -5 });
    const headers = { authorization: `Bearer ${expired}`, "x-signet-dev-identity": "alice" };
    const error = await refusal(authenticate(request(headers, { peer, insecure: true })));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(recorded.map((r) => [r.reason, r.method])).toEqual([["expired", "jwt"]]);
  });

  it("a credential of a disabled kind fails rather than being skipped", async () => {
    const noJwt = setup({ jwt: undefined });
    await refusal(noJwt.authenticate(request({ authorization: `Bearer ${jwt}` }, { peer })));
    expect(noJwt.recorded.map((r) => r.reason)).toEqual(["method_not_enabled"]);
    const noKeys = setup({ apiKeys: undefined });
    await refusal(noKeys.authenticate(request({ "x-signet-api-key": apiKey }, { peer })));
    expect(noKeys.recorded.map((r) => r.reason)).toEqual(["method_not_enabled"]);
  });
});

describe("refusals", () => {
  it("passes the specific reason to onFailure and only UNAUTHENTICATED to the client", async () => {
    const { authenticate, recorded } = setup();
    const cases: [AuthRequest["headers"], AuthFailureReason][] = [
      [{ "x-signet-api-key": revokedKey }, "revoked"],
      [{ "x-signet-api-key": expiredKey }, "expired"],
      [{ "x-signet-api-key": `${apiKey.slice(0, -5)}AAAA${apiKey.slice(-1)}` }, "bad_secret"],
      [{ "x-signet-api-key": "sgk_nope" }, "malformed"],
      [{ authorization: `Bearer ${await signToken(rsa, { aud: "elsewhere" })}` }, "wrong_audience"],
      [{ authorization: "Basic YWxpY2U6cGFzcw==" }, "unsupported_scheme"],
      [{ authorization: "Bearer" }, "malformed"],
      [{ authorization: `Bearer  ${jwt} trailing` }, "malformed"],
      [{ "x-signet-api-key": apiKey, authorization: `Bearer ${jwt}` }, "ambiguous_credentials"],
      [{ "x-signet-api-key": [apiKey, apiKey] }, "ambiguous_credentials"],
      [{ "x-signet-api-key": apiKey, "X-Signet-Api-Key": apiKey }, "ambiguous_credentials"],
      [{}, "no_credentials"],
    ];
    for (const [headers, reason] of cases) {
      recorded.length = 0;
      const error = await refusal(authenticate(request(headers)));
      expect(error.code, reason).toBe("UNAUTHENTICATED");
      expect(error.details).toEqual({});
      expect(recorded.map((r) => r.reason)).toEqual([reason]);
    }
  });

  it("refuses the dev identity header outside insecure mode, even next to a valid credential", async () => {
    const { authenticate, recorded } = setup();
    const dev = { "x-signet-dev-identity": "alice" };
    expect((await refusal(authenticate(request(dev)))).code).toBe("UNAUTHENTICATED");
    expect(
      (await refusal(authenticate(request({ ...dev, "x-signet-api-key": apiKey }, { peer })))).code,
    ).toBe("UNAUTHENTICATED");
    expect(recorded.map((r) => [r.reason, r.method])).toEqual([
      ["dev_identity_not_allowed", "dev"],
      ["dev_identity_not_allowed", "dev"],
    ]);
  });

  it("refuses a dev identity that is not a bare id, even in insecure mode", async () => {
    const { authenticate, recorded } = setup();
    await refusal(authenticate(request({ "x-signet-dev-identity": "Admin" }, { insecure: true })));
    expect(recorded.map((r) => r.reason)).toEqual(["malformed"]);
  });

  it("never puts the token into the error's message, JSON, wire form or stack", async () => {
    const { authenticate, recorded } = setup();
    const forged = await signToken(rsa, { iss: "https://evil.test" });
    const wrongKey = `${apiKey.slice(0, -5)}AAAA${apiKey.slice(-1)}`;
    const attempts: [AuthRequest["headers"], string][] = [
      [{ authorization: `Bearer ${forged}` }, forged],
      [{ "x-signet-api-key": wrongKey }, wrongKey],
      [{ authorization: `Bearer ${wrongKey}` }, wrongKey],
    ];
    for (const [headers, secret] of attempts) {
      const error = await refusal(authenticate(request(headers)));
      const exposed = [
        error.message,
        JSON.stringify(error),
        JSON.stringify(error.toWire()),
        String(error.stack),
      ];
      for (const text of exposed) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(secret.slice(21, 40));
      }
      expect(error.cause).toBeUndefined();
      expect(error.toWire()).toEqual({
        error: {
          code: "UNAUTHENTICATED",
          message: new SignetError("UNAUTHENTICATED").message,
          retryable: false,
        },
      });
    }
    // The record gets the key's public id, never its secret.
    expect(JSON.stringify(recorded.map((r) => r.hints))).not.toContain(wrongKey.slice(21));
    expect(recorded[1]!.hints).toEqual({ credentialId: apiKeyId });
  });

  it("answers UNAVAILABLE (retryable) when the key store is down, and records why", async () => {
    const { authenticate, recorded } = setup({ apiKeys: unreachableStore() });
    const error = await refusal(authenticate(request({ "x-signet-api-key": apiKey })));
    expect(error.code).toBe("UNAVAILABLE");
    expect(error.retryable).toBe(true);
    expect(recorded[0]).toMatchObject({ reason: "store_unavailable", method: "api_key" });
    expect(recorded[0]!.hints.error).toBeInstanceOf(Error);
  });

  it("keeps the answer when onFailure throws or rejects", async () => {
    for (const onFailure of [
      () => {
        throw new Error("recorder down");
      },
      () => Promise.reject(new Error("recorder down")),
    ]) {
      const { authenticate } = setup({ onFailure });
      expect((await refusal(authenticate(request({ "x-signet-api-key": revokedKey })))).code).toBe(
        "UNAUTHENTICATED",
      );
    }
  });
});
