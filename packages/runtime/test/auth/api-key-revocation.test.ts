// A running runtime caches verified API keys, yet a key revoked through its API is refused at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

describe("API key revocation through a runtime that caches keys", () => {
  let fx: RuntimeFixture;

  beforeAll(async () => {
    fx = await startRuntime();
  });
  afterAll(async () => fx?.close());

  const admin = () => ({ authorization: `Bearer ${fx.adminKey}` });
  const whoami = (key: string) =>
    call(fx, "GET", "/v1/auth/whoami", { headers: { authorization: `Bearer ${key}` } });
  const createKey = async (name: string): Promise<{ key: string; id: string }> => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name, principal: "temp-bot", permissions: [] },
    });
    expect(created.status).toBe(201);
    return { key: created.body.key as string, id: created.body.id as string };
  };

  it("refuses a revoked key on the very next request, though it was just verified many times", async () => {
    const revoked = await createKey("revoked");
    const kept = await createKey("kept");
    for (let i = 0; i < 5; i += 1) {
      expect((await whoami(revoked.key)).status).toBe(200);
      expect((await whoami(kept.key)).status).toBe(200);
    }

    const response = await call(fx, "POST", `/v1/auth/keys/${revoked.id}/revoke`, { headers: admin() });
    expect(response.status).toBe(200);
    expect(response.body.state).toBe("revoked");

    const refused = await whoami(revoked.key);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("UNAUTHENTICATED");
    // Only that key: another key of the same principal still works, from the cache or not.
    expect((await whoami(kept.key)).status).toBe(200);
  });

  it("records the refusal of a revoked key as an auth failure with its reason", async () => {
    const { key, id } = await createKey("audited");
    expect((await whoami(key)).status).toBe(200);
    await call(fx, "POST", `/v1/auth/keys/${id}/revoke`, { headers: admin() });
    expect((await whoami(key)).status).toBe(401);
    const failures = await fx.runtime.audit.query({
      eventType: "auth_failure",
      newestFirst: true,
      limit: 10_000,
    });
    expect(failures[0]?.metadata).toMatchObject({ reason: "revoked", method: "api_key", credentialId: id });
  });
});
