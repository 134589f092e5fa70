// The runtime over real TLS sockets: health, authentication by each method, agents, keys, metrics.
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ed25519PrivateKey } from "@signet/protocol";
import { SignJWT, exportSPKI } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load-config.js";
import { createRuntime } from "../../src/runtime.js";
import { createCertificateAuthority, issueCertificate } from "../../src/tls/dev-certs.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

const definition = (name: string, serves = "[invoices/create]") =>
  `---\nname: ${name}\nversion: "1.0.0"\nserves: ${serves}\n---\nAn agent.\n`;

describe("runtime over TLS", () => {
  let fx: RuntimeFixture;
  const jwtKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });

  beforeAll(async () => {
    // A JWT issuer with a static public key, so every method is live at once.
    const dir = (await import("node:os")).tmpdir();
    const keyPath = join(dir, `signet-jwt-${process.pid}.pem`);
    writeFileSync(keyPath, await exportSPKI(jwtKeys.publicKey));
    fx = await startRuntime({
      yaml: [
        "  jwt:",
        "    issuer: https://idp.test/",
        "    audience: signet",
        "    algorithms: [RS256]",
        `    static_keys: [${keyPath}]`,
        "    permissions_claim: permissions",
      ].join("\n"),
    });
  });
  afterAll(async () => fx?.close());

  const admin = () => ({ authorization: `Bearer ${fx.adminKey}` });

  it("serves /v1/health and /v1/ready without credentials over TLS 1.3", async () => {
    expect(fx.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await call(fx, "GET", "/v1/health");
    expect(health).toMatchObject({ status: 200, body: { status: "ok" } });
    expect((await call(fx, "GET", "/v1/ready")).status).toBe(200);
  });

  it("refuses requests without credentials with the wire shape and no detail", async () => {
    const response = await call(fx, "GET", "/v1/agents");
    expect(response.status).toBe(401);
    expect(response.body).toEqual({
      error: { code: "UNAUTHENTICATED", message: "Authentication failed", retryable: false },
    });
  });

  it("authenticates an API key in either header, and never echoes a bad one", async () => {
    expect((await call(fx, "GET", "/v1/auth/whoami", { headers: admin() })).body).toMatchObject({
      id: "admin",
      method: "api_key",
    });
    expect(
      (await call(fx, "GET", "/v1/auth/whoami", { headers: { "x-signet-api-key": fx.adminKey } })).body.id,
    ).toBe("admin");
    const forged = `${fx.adminKey.slice(0, -4)}AAAA`;
    const refused = await call(fx, "GET", "/v1/auth/whoami", {
      headers: { authorization: `Bearer ${forged}` },
    });
    expect(refused.status).toBe(401);
    expect(JSON.stringify(refused.body)).not.toContain(forged.slice(4, 20));
  });

  it("authenticates a client certificate from the dev CA (mTLS) and ignores one from another CA", async () => {
    const viaCert = await call(fx, "GET", "/v1/auth/whoami", {
      dispatcher: fx.client({ cert: fx.certs.clients.admin!.cert, key: fx.certs.clients.admin!.key }),
    });
    expect(viaCert.body).toMatchObject({ id: "admin", method: "mtls", permissions: ["*"] });

    const otherCa = createCertificateAuthority({ commonName: "Evil CA" });
    const forged = issueCertificate({
      issuer: otherCa,
      commonName: "admin",
      extendedKeyUsage: ["clientAuth"],
    });
    const certPath = join(fx.dir, "evil.crt");
    const keyPath = join(fx.dir, "evil.key");
    writeFileSync(certPath, forged.certPem);
    writeFileSync(keyPath, forged.keyPem);
    const refused = await call(fx, "GET", "/v1/auth/whoami", {
      dispatcher: fx.client({ cert: certPath, key: keyPath }),
    });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("UNAUTHENTICATED");
  });

  it("authenticates a JWT and refuses a forged one", async () => {
    const token = await new SignJWT({ permissions: ["agent:read"] })
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("ci-bot")
      .setIssuer("https://idp.test/")
      .setAudience("signet")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(jwtKeys.privateKey);
    const me = await call(fx, "GET", "/v1/auth/whoami", { headers: { authorization: `Bearer ${token}` } });
    expect(me.body).toMatchObject({ id: "ci-bot", method: "jwt", permissions: ["agent:read"] });
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const forged = await new SignJWT({ permissions: ["*"] })
      .setProtectedHeader({ alg: "RS256" })
      .setSubject("admin")
      .setIssuer("https://idp.test/")
      .setAudience("signet")
      .setExpirationTime("5m")
      .sign(other.privateKey);
    const refused = await call(fx, "GET", "/v1/agents", { headers: { authorization: `Bearer ${forged}` } });
    expect(refused.status).toBe(401);
  });

  it("records every authentication failure with its reason, never the credential", async () => {
    const before = (await fx.runtime.audit.query({ eventType: "auth_failure", limit: 10_000 })).length;
    const bogus = "sgk_AAAAAAAAAAAAAAAA_" + "B".repeat(43);
    await call(fx, "GET", "/v1/agents", { headers: { authorization: `Bearer ${bogus}` } });
    const events = await fx.runtime.audit.query({ eventType: "auth_failure", limit: 10_000 });
    expect(events.length).toBe(before + 1);
    const last = events.at(-1)!;
    expect(last.outcome).toBe("deny");
    expect(typeof last.metadata?.reason).toBe("string");
    expect(JSON.stringify(last)).not.toContain("B".repeat(43));
  });

  it("deploys, lists, rotates and revokes agents; each change is recorded", async () => {
    const key1 = Ed25519PrivateKey.generate();
    const key2 = Ed25519PrivateKey.generate();
    const deployed = await call(fx, "POST", "/v1/agents", {
      headers: admin(),
      body: { definition: definition("billing-bot"), public_keys: [key1.publicKey.toPem()] },
    });
    expect(deployed.status).toBe(201);
    expect(deployed.body).toMatchObject({ id: "billing-bot", serves: ["invoices/create"] });
    expect(deployed.body.keys[0]).toMatchObject({ kid: key1.kid, state: "active" });

    const list = await call(fx, "GET", "/v1/agents", { headers: admin() });
    expect(list.body.agents.map((a: { id: string }) => a.id)).toContain("billing-bot");

    const rotated = await call(fx, "POST", "/v1/agents/billing-bot/keys", {
      headers: admin(),
      body: { public_key: key2.publicKey.toBase64Url(), grace_period_ms: 60_000 },
    });
    expect(rotated.status).toBe(201);
    const states = Object.fromEntries(
      rotated.body.keys.map((k: { kid: string; state: string }) => [k.kid, k.state]),
    );
    expect(states).toEqual({ [key1.kid]: "retiring", [key2.kid]: "active" });
    expect(fx.runtime.registry.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(false);

    const revoked = await call(fx, "POST", `/v1/agents/billing-bot/keys/${key1.kid}/revoke`, {
      headers: admin(),
      body: { reason: "compromised" },
    });
    expect(revoked.body.state).toBe("revoked");
    expect(fx.runtime.registry.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(true);

    const got = await call(fx, "GET", "/v1/agents/billing-bot", { headers: admin() });
    expect(got.body.keys).toHaveLength(2);
    expect((await call(fx, "GET", "/v1/agents/nobody", { headers: admin() })).body.error.code).toBe(
      "NOT_FOUND",
    );

    const types = (await fx.runtime.audit.query({ limit: 10_000 })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["agent_deployed", "key_rotated", "key_revoked"]));
  });

  it("refuses bad definitions, bad keys and malformed JSON with INVALID_REQUEST", async () => {
    const bad = await call(fx, "POST", "/v1/agents", {
      headers: admin(),
      body: {
        definition: "no frontmatter",
        public_keys: [Ed25519PrivateKey.generate().publicKey.toBase64Url()],
      },
    });
    expect(bad.body.error.code).toBe("INVALID_REQUEST");
    const smallOrder = Buffer.alloc(32);
    smallOrder[0] = 1;
    const weakKey = await call(fx, "POST", "/v1/agents", {
      headers: admin(),
      body: { definition: definition("weak-bot"), public_keys: [smallOrder.toString("base64url")] },
    });
    expect(weakKey.body.error.code).toBe("INVALID_REQUEST");
    const duplicate = await call(fx, "POST", "/v1/agents", {
      headers: admin(),
      body: '{"definition":"x","definition":"y"}',
    });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body.error.code).toBe("INVALID_REQUEST");
  });

  it("enforces permissions: a key without agent:deploy gets FORBIDDEN, and that is recorded", async () => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name: "reader", principal: "reader", kind: "service", permissions: ["agent:read"] },
    });
    expect(created.status).toBe(201);
    const reader = { authorization: `Bearer ${created.body.key}` };
    expect((await call(fx, "GET", "/v1/agents", { headers: reader })).status).toBe(200);
    const denied = await call(fx, "POST", "/v1/agents", {
      headers: reader,
      body: {
        definition: definition("sneaky-bot"),
        public_keys: [Ed25519PrivateKey.generate().publicKey.toBase64Url()],
      },
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("FORBIDDEN");
    expect((await call(fx, "GET", "/metrics", { headers: reader })).status).toBe(403);
    const deny = (await fx.runtime.audit.query({ eventType: "admin_action", limit: 10_000 })).find(
      (e) => e.actor === "reader" && e.outcome === "deny",
    );
    expect(deny?.code).toBe("FORBIDDEN");
  });

  it("creates, lists and revokes API keys; the key is shown once and a revoked key stops working", async () => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name: "temp", principal: "temp-bot", permissions: [] },
    });
    const temp = { authorization: `Bearer ${created.body.key}` };
    expect((await call(fx, "GET", "/v1/auth/whoami", { headers: temp })).body.id).toBe("temp-bot");
    const listed = await call(fx, "GET", "/v1/auth/keys", { headers: admin() });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    await call(fx, "POST", `/v1/auth/keys/${created.body.id}/revoke`, { headers: admin() });
    expect((await call(fx, "GET", "/v1/auth/whoami", { headers: temp })).status).toBe(401);
  });

  it("refuses an expired API key", async () => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name: "short", principal: "short-bot", permissions: [], expires_in_ms: 1 },
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const response = await call(fx, "GET", "/v1/auth/whoami", {
      headers: { authorization: `Bearer ${created.body.key}` },
    });
    expect(response.status).toBe(401);
  });

  it("serves Prometheus metrics to metrics:read, counting requests and refusals", async () => {
    const metrics = await call(fx, "GET", "/metrics", { headers: admin() });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain("signet_http_requests_total");
    expect(metrics.body).toMatch(/signet_refusals_total\{code="UNAUTHENTICATED"\} [1-9]/);
    expect(metrics.body).toContain("signet_http_request_duration_seconds_bucket");
  });

  it("answers unknown routes with NOT_FOUND in the wire shape", async () => {
    const response = await call(fx, "GET", "/v1/nope", { headers: admin() });
    expect(response).toMatchObject({ status: 404, body: { error: { code: "NOT_FOUND" } } });
  });
});

describe("insecure mode", () => {
  it("serves plaintext on loopback and accepts the dev identity header only there", async () => {
    const fx = await startRuntime({ insecure: true });
    try {
      expect(fx.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
      const me = await call(fx, "GET", "/v1/auth/whoami", { headers: { "x-signet-dev-identity": "alice" } });
      expect(me.body).toMatchObject({ id: "alice", method: "dev" });
    } finally {
      await fx.close();
    }
    const secure = await startRuntime();
    try {
      const refused = await call(secure, "GET", "/v1/auth/whoami", {
        headers: { "x-signet-dev-identity": "admin" },
      });
      expect(refused.status).toBe(401);
    } finally {
      await secure.close();
    }
  });
});

describe("restart", () => {
  it("keeps agents, key states and API keys across a restart of the runtime", async () => {
    const fx = await startRuntime();
    try {
      const key = Ed25519PrivateKey.generate();
      const admin = { authorization: `Bearer ${fx.adminKey}` };
      await call(fx, "POST", "/v1/agents", {
        headers: admin,
        body: { definition: definition("keeper-bot"), public_keys: [key.publicKey.toBase64Url()] },
      });
      await call(fx, "POST", `/v1/agents/keeper-bot/keys/${key.kid}/revoke`, { headers: admin, body: {} });
      await fx.runtime.stop();
      const again = await createRuntime(loadConfig({ dataDir: fx.dir, env: {} }), {
        logger: pino({ level: "silent" }),
      });
      try {
        expect((await again.registry.getAgent("keeper-bot"))?.serves).toEqual(["invoices/create"]);
        expect(again.registry.resolveKey(key.kid, "keeper-bot")?.revoked).toBe(true);
        const reply = await again.app.inject({ method: "GET", url: "/v1/auth/whoami", headers: admin });
        expect(reply.json()).toMatchObject({ id: "admin" });
      } finally {
        await again.stop();
      }
    } finally {
      await fx.close();
    }
  });
});
