// RBAC for the admin API, end to end over TLS: roles grant access at once, unassigning takes it away at
// once, roles.yaml customises the roles, a bad roles.yaml stops the runtime from starting.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/auth/api-keys.js";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";
import { createRuntime } from "../../src/runtime.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { Stores } from "../../src/store/types.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe("role assignments over TLS", () => {
  let fx: RuntimeFixture;
  const admin = () => bearer(fx.adminKey);

  beforeAll(async () => {
    fx = await startRuntime({ clientIds: ["deployer"] });
  });
  afterAll(async () => fx?.close());

  const createKey = async (principal: string, permissions: string[], as = admin()) => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: as,
      body: { name: principal, principal, kind: "user", permissions },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return created.body.key as string;
  };
  const assign = (principal: string, role: string, as = admin()) =>
    call(fx, "POST", "/v1/auth/roles", { headers: as, body: { principal, role } });
  const unassign = (principal: string, role: string, as = admin()) =>
    call(fx, "POST", "/v1/auth/roles/revoke", { headers: as, body: { principal, role } });
  const roleEvents = async () =>
    (await fx.runtime.audit.query({ eventType: "admin_action", limit: 10_000 })).filter(
      (event) => typeof event.metadata?.action === "string" && event.metadata.action.startsWith("role_"),
    );

  it("grants a role's permissions on the next request and takes them away on the next after unassign", async () => {
    const alice = bearer(await createKey("alice", []));
    expect((await call(fx, "GET", "/v1/agents", { headers: alice })).status).toBe(403);

    const assigned = await assign("alice", "viewer");
    expect(assigned.status).toBe(201);
    expect(assigned.body).toEqual({ principal: "alice", role: "viewer", changed: true, roles: ["viewer"] });
    // The runtime caches assignments for 5 s, yet the change applies to the very next request.
    expect((await call(fx, "GET", "/v1/agents", { headers: alice })).status).toBe(200);
    expect((await call(fx, "GET", "/metrics", { headers: alice })).status).toBe(200);
    const me = await call(fx, "GET", "/v1/auth/whoami", { headers: alice });
    expect(me.body).toMatchObject({ id: "alice", roles: ["viewer"] });
    expect(me.body.permissions).toEqual(expect.arrayContaining(["agent:read", "metrics:read"]));
    // Only what the role grants: a viewer deploys nothing and manages no keys.
    expect((await call(fx, "POST", "/v1/agents", { headers: alice, body: { definition: "x" } })).status).toBe(
      403,
    );
    expect((await call(fx, "GET", "/v1/auth/keys", { headers: alice })).status).toBe(403);

    expect((await assign("alice", "viewer")).body).toMatchObject({ changed: false, roles: ["viewer"] });
    const listed = await call(fx, "GET", "/v1/auth/roles?principal=alice", { headers: admin() });
    expect(listed.body.assignments).toEqual([
      { principal: "alice", role: "viewer", assigned_at: expect.any(String), assigned_by: "admin" },
    ]);

    const removed = await unassign("alice", "viewer");
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ changed: true, roles: [] });
    expect((await call(fx, "GET", "/v1/agents", { headers: alice })).status).toBe(403);
    expect((await call(fx, "GET", "/v1/auth/whoami", { headers: alice })).body.roles).toEqual([]);
    expect((await unassign("alice", "viewer")).body.changed).toBe(false);

    const events = (await roleEvents()).filter((event) => event.target === "principal:alice");
    expect(
      events.map((event) => [event.actor, event.outcome, event.metadata?.action, event.metadata?.changed]),
    ).toEqual([
      ["admin", "success", "role_assign", true],
      ["admin", "success", "role_assign", false],
      ["admin", "success", "role_unassign", true],
      ["admin", "success", "role_unassign", false],
    ]);
  });

  it("adds role permissions to a client certificate's too", async () => {
    const cert = fx.client({ cert: fx.certs.clients.deployer!.cert, key: fx.certs.clients.deployer!.key });
    expect((await call(fx, "GET", "/v1/agents", { dispatcher: cert })).status).toBe(403);
    await assign("deployer", "developer");
    const me = await call(fx, "GET", "/v1/auth/whoami", {
      dispatcher: fx.client({ ...fx.certs.clients.deployer! }),
    });
    expect(me.body).toMatchObject({ id: "deployer", method: "mtls", roles: ["developer"] });
    // The certificate's own permission stays beside the role's.
    expect(me.body.permissions).toEqual(expect.arrayContaining(["envelope:send", "agent:deploy"]));
    expect((await call(fx, "GET", "/v1/agents", { dispatcher: cert })).status).toBe(200);
  });

  it("checks what a principal may do, and says through which roles and credentials", async () => {
    const key = await createKey("bob", ["metrics:read"]);
    await assign("bob", "developer");
    const check = async (permission: string) =>
      (
        await call(fx, "GET", `/v1/auth/check?principal=bob&permission=${encodeURIComponent(permission)}`, {
          headers: admin(),
        })
      ).body;

    expect(await check("agent:deploy")).toMatchObject({
      principal: "bob",
      permission: "agent:deploy",
      allowed: true,
      roles: ["developer"],
      by_roles: true,
      granted_by_roles: ["developer"],
    });
    const keys = await check("keys:create");
    expect(keys).toMatchObject({ allowed: false, by_roles: false, granted_by_roles: [] });
    expect(keys.credentials).toEqual(
      expect.arrayContaining([
        { type: "api_key", id: key.slice(4, 20), name: "bob", allowed: false },
        { type: "certificate", allowed: false },
      ]),
    );
    expect((await check("agent:*")).allowed).toBe(true);
    expect((await check("*")).allowed).toBe(false);

    const unknown = await call(fx, "GET", "/v1/auth/check?principal=bob&permission=agent:deplyo", {
      headers: admin(),
    });
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: "INVALID_REQUEST" } } });
    // Checking someone else needs auth:read; a developer lacks it.
    expect(
      (
        await call(fx, "GET", "/v1/auth/check?principal=alice&permission=agent:read", {
          headers: bearer(key),
        })
      ).status,
    ).toBe(403);
  });

  it("refuses to assign or unassign a role beyond the caller's own permissions, and records it", async () => {
    const lead = bearer(await createKey("lead", ["auth:roles"]));
    const refused = await assign("lead", "operator", lead);
    expect(refused).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });
    expect((await assign("mallory", "viewer", lead)).status).toBe(403);

    // An operator may hand out the operator role: it holds everything the role grants.
    await assign("ops", "operator");
    const ops = bearer(await createKey("ops", []));
    expect((await assign("carol", "developer", ops)).status).toBe(201);
    expect((await unassign("carol", "developer", ops)).status).toBe(200);

    expect((await assign("carol", "root")).body.error).toMatchObject({ code: "INVALID_REQUEST" });
    expect(
      (
        await call(fx, "POST", "/v1/auth/roles", {
          headers: admin(),
          body: { principal: "Carol", role: "viewer" },
        })
      ).status,
    ).toBe(400);

    const denied = (await roleEvents()).filter((event) => event.actor === "lead");
    expect(denied).toHaveLength(2);
    expect(denied[0]).toMatchObject({
      outcome: "deny",
      code: "FORBIDDEN",
      target: "principal:lead",
      metadata: { action: "role_assign", role: "operator", reason: "role_exceeds_caller" },
    });
  });

  it("keeps keys created with the older permissions working, and mints no key beyond its creator", async () => {
    const legacy = bearer(await createKey("key-admin", ["auth:keys"]));
    const made = await call(fx, "POST", "/v1/auth/keys", {
      headers: legacy,
      body: { name: "minted", principal: "minted", permissions: [] },
    });
    expect(made.status).toBe(201);
    expect((await call(fx, "GET", "/v1/auth/keys", { headers: legacy })).status).toBe(200);
    expect((await call(fx, "POST", `/v1/auth/keys/${made.body.id}/revoke`, { headers: legacy })).status).toBe(
      200,
    );

    const escalate = await call(fx, "POST", "/v1/auth/keys", {
      headers: legacy,
      body: { name: "root", principal: "key-admin", permissions: ["*"] },
    });
    expect(escalate).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });
    // keys:* is within auth:keys, so a key may carry it.
    expect(
      (
        await call(fx, "POST", "/v1/auth/keys", {
          headers: legacy,
          body: { name: "deputy", principal: "deputy", permissions: ["keys:*"] },
        })
      ).status,
    ).toBe(201);
  });

  it("lists the role definitions in effect to config:read", async () => {
    const definitions = await call(fx, "GET", "/v1/auth/roles/definitions", { headers: admin() });
    expect(definitions.body.roles.map((role: { name: string }) => role.name)).toEqual([
      "viewer",
      "developer",
      "operator",
    ]);
    expect(definitions.body.roles[2]).toMatchObject({
      name: "operator",
      source: "default",
      effective_permissions: expect.arrayContaining(["keys:create", "auth:roles", "audit:export"]),
    });
  });

  it("keeps assignments across a restart", async () => {
    const key = await createKey("dana", []);
    await assign("dana", "developer");
    await fx.runtime.stop();
    const again = await createRuntime(loadConfig({ dataDir: fx.dir, env: {} }), {
      logger: pino({ level: "silent" }),
    });
    try {
      const reply = await again.app.inject({ method: "GET", url: "/v1/agents", headers: bearer(key) });
      expect(reply.statusCode).toBe(200);
    } finally {
      await again.stop();
    }
  });
});

describe("when role assignments cannot be read", () => {
  it("refuses every authenticated request with UNAVAILABLE rather than run without its roles", async () => {
    const fx = await startRuntime({ listen: false });
    try {
      await fx.runtime.stop();
      const memory = createMemoryStores();
      const stores: Stores = {
        ...memory,
        roles: {
          ...memory.roles,
          listRoleAssignments: () => Promise.reject(new Error("database is gone")),
        },
      };
      const { key } = await createApiKey(
        stores.apiKeys,
        { name: "admin", principal: "admin", kind: "user", permissions: ["*"] },
        { actor: "test" },
      );
      const broken = await createRuntime(loadConfig({ dataDir: fx.dir, env: {} }), {
        logger: pino({ level: "silent" }),
        stores,
      });
      try {
        const reply = await broken.app.inject({
          method: "GET",
          url: "/v1/auth/whoami",
          headers: bearer(key),
        });
        expect(reply.statusCode).toBe(503);
        expect(reply.json()).toMatchObject({ error: { code: "UNAVAILABLE", retryable: true } });
        expect((await broken.app.inject({ method: "GET", url: "/v1/health" })).statusCode).toBe(200);
      } finally {
        await broken.stop();
      }
    } finally {
      await fx.close();
    }
  });
});

describe("roles.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), "signet-rbac-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("customises roles: a narrower viewer and a new auditor", async () => {
    const rolesFile = join(dir, "custom-roles.yaml");
    writeFileSync(
      rolesFile,
      [
        "version: 1",
        "roles:",
        "  viewer:",
        "    description: Dashboards only",
        "    permissions: [metrics:read]",
        "  auditor:",
        "    description: Reads and exports the audit log",
        "    permissions: [audit:*, metrics:read]",
      ].join("\n"),
    );
    const fx = await startRuntime({ yaml: `rbac:\n  roles_file: ${rolesFile}\n` });
    try {
      const admin = bearer(fx.adminKey);
      const created = await call(fx, "POST", "/v1/auth/keys", {
        headers: admin,
        body: { name: "eve", principal: "eve", kind: "user", permissions: [] },
      });
      const eve = bearer(created.body.key);
      await call(fx, "POST", "/v1/auth/roles", {
        headers: admin,
        body: { principal: "eve", role: "viewer" },
      });
      expect((await call(fx, "GET", "/metrics", { headers: eve })).status).toBe(200);
      expect((await call(fx, "GET", "/v1/agents", { headers: eve })).status).toBe(403);

      const auditor = await call(fx, "POST", "/v1/auth/roles", {
        headers: admin,
        body: { principal: "eve", role: "auditor" },
      });
      expect(auditor.body.roles).toEqual(["auditor", "viewer"]);
      const check = await call(fx, "GET", "/v1/auth/check?principal=eve&permission=audit:export", {
        headers: admin,
      });
      expect(check.body).toMatchObject({ allowed: true, granted_by_roles: ["auditor"] });

      const definitions = await call(fx, "GET", "/v1/auth/roles/definitions", { headers: admin });
      expect(definitions.body.roles.find((role: { name: string }) => role.name === "auditor")).toMatchObject({
        source: rolesFile,
        permissions: ["audit:*", "metrics:read"],
        effective_permissions: ["audit:export", "audit:read", "metrics:read"],
      });
    } finally {
      await fx.close();
    }
  });

  it("refuses to start with a bad roles file, naming its line and key", async () => {
    const rolesFile = join(dir, "bad-roles.yaml");
    writeFileSync(
      rolesFile,
      "roles:\n  auditor:\n    permissions:\n      - audit:read\n      - audit:everything\n",
    );
    const started = startRuntime({ yaml: `rbac:\n  roles_file: ${rolesFile}\n` });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(
      `${rolesFile}:5:9: roles.auditor.permissions[1]: unknown permission "audit:everything"`,
    );
  });

  it("reads DATA_DIR/roles.yaml by default and refuses a bad one there too", async () => {
    const fx = await startRuntime({ listen: false });
    try {
      await fx.runtime.stop();
      writeFileSync(join(fx.dir, "roles.yaml"), "roles:\n  auditor:\n    permissions: [audit:read]\n");
      const good = await createRuntime(loadConfig({ dataDir: fx.dir, env: {} }), {
        logger: pino({ level: "silent" }),
      });
      expect(good.roles.definition("auditor")?.source).toBe(join(fx.dir, "roles.yaml"));
      await good.stop();

      writeFileSync(join(fx.dir, "roles.yaml"), "roles:\n  auditor:\n    permisions: [audit:read]\n");
      await expect(
        createRuntime(loadConfig({ dataDir: fx.dir, env: {} }), { logger: pino({ level: "silent" }) }),
      ).rejects.toThrow(`${join(fx.dir, "roles.yaml")}:3:5: roles.auditor.permisions: unknown key`);
    } finally {
      await fx.close();
    }
  });
});
