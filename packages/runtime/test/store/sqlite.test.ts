// What only the SQLite adapter promises: the file, its schema history, WAL and durability settings.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SQLITE_MIGRATIONS, migrateSqlite } from "../../src/store/migrations/sqlite.js";
import { openStores } from "../../src/store/open.js";
import { SchemaVersionError } from "../../src/store/schema-version-error.js";
import { openSqliteStores } from "../../src/store/sqlite.js";
import type { Stores } from "../../src/store/types.js";

const ctx = { actor: "admin" };

describe("SQLite store", () => {
  let dir: string;
  let path: string;
  // Every handle a test opens, closed after it even when an assertion fails midway.
  const opened: { close(): unknown }[] = [];

  const open = (options?: Parameters<typeof openSqliteStores>[1]): Stores => {
    const stores = openSqliteStores(path, options);
    opened.push(stores);
    return stores;
  };
  const raw = (): Database.Database => {
    const db = new Database(path);
    opened.push(db);
    return db;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "signet-sqlite-"));
    path = join(dir, "signet.db");
  });

  afterEach(async () => {
    for (const handle of opened.splice(0)) await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps every record across close and reopen", async () => {
    const first = open();
    await first.agents.putAgent(
      {
        id: "alice",
        description: "d",
        definition: { name: "alice", nested: { list: [1, "two", null, true] } },
        serves: ["search"],
        createdAt: 1,
        updatedAt: 2,
        deployedBy: "admin",
      },
      [{ kid: "kid-1", agentId: "alice", publicKey: "pk", createdAt: 1 }],
      ctx,
    );
    await first.agents.updateKey("kid-1", { revokedAt: 3, revokedReason: "rotated" }, ctx);
    await first.apiKeys.putApiKey(
      {
        id: "k1",
        name: "admin",
        principal: "admin",
        kind: "user",
        permissions: ["*"],
        hash: "f".repeat(64),
        createdAt: 1,
        createdBy: "system",
        expiresAt: 10,
      },
      ctx,
    );
    await first.close();

    const second = open();
    expect(await second.agents.getAgent("alice")).toEqual({
      id: "alice",
      description: "d",
      definition: { name: "alice", nested: { list: [1, "two", null, true] } },
      serves: ["search"],
      createdAt: 1,
      updatedAt: 2,
      deployedBy: "admin",
    });
    expect(await second.agents.getKey("kid-1")).toEqual({
      kid: "kid-1",
      agentId: "alice",
      publicKey: "pk",
      createdAt: 1,
      revokedAt: 3,
      revokedReason: "rotated",
    });
    expect((await second.apiKeys.getApiKey("k1"))?.expiresAt).toBe(10);
  });

  describe("role assignments", () => {
    const assignment = { principal: "alice", role: "operator", assignedAt: 5, assignedBy: "admin" };

    it("keeps assignments across close and reopen, and shares them with another instance", async () => {
      const first = open();
      const other = open();
      expect(await first.roles.assignRole(assignment, ctx)).toBe(true);
      expect(await other.roles.listRoleAssignments({ principal: "alice" })).toEqual([assignment]);
      await first.close();
      const second = open();
      expect(await second.roles.listRoleAssignments()).toEqual([assignment]);
      expect(await second.roles.assignRole(assignment, ctx)).toBe(false);
    });

    it("upgrades a database written before role assignments existed, keeping what it held", async () => {
      const db = raw();
      migrateSqlite(
        db,
        SQLITE_MIGRATIONS.filter((migration) => migration.version < 3),
      );
      db.prepare(
        "INSERT INTO api_keys (id, name, principal, kind, permissions, hash, created_at, created_by) VALUES ('k1', 'n', 'alice', 'user', '[\"auth:keys\"]', ?, 1, 'x')",
      ).run("f".repeat(64));
      db.close();

      const upgraded = open();
      expect((await upgraded.apiKeys.getApiKey("k1"))?.permissions).toEqual(["auth:keys"]);
      expect(await upgraded.roles.assignRole(assignment, ctx)).toBe(true);
      expect(await upgraded.roles.listRoleAssignments({ role: "operator" })).toEqual([assignment]);
    });
  });

  describe("replay across restarts and instances", () => {
    const request = (id: string, nonce: string) => ({
      sender: "alice",
      id,
      hash: `hash-${id}`,
      nonce,
      ts: 100_000,
      now: 100_000,
      windowMs: 1_000,
      retentionMs: 5_000,
    });
    const outcome = { receipt: { status: "ok" }, result: [1, null, { deep: true }] };

    it("forgets nothing within the window when the runtime restarts", async () => {
      const first = open();
      expect(await first.replay.admit(request("pending", "n-1"))).toEqual({ kind: "admitted" });
      await first.replay.admit(request("done", "n-2"));
      await first.replay.complete("alice", "done", outcome);
      const pending = await first.replay.getMessage("alice", "pending");
      await first.close();

      const second = open();
      expect(await second.replay.getMessage("alice", "pending")).toEqual(pending);
      expect(await second.replay.admit(request("pending", "n-1"))).toEqual({
        kind: "duplicate",
        record: pending,
      });
      const done = await second.replay.admit(request("done", "n-2"));
      expect(done.kind === "duplicate" && done.record.outcome).toEqual(outcome);
      // The nonces are still bound: another id with either one is a replay.
      expect(await second.replay.admit(request("other", "n-1"))).toEqual({ kind: "replay" });
      expect(await second.replay.admit(request("other", "n-2"))).toEqual({ kind: "replay" });
    });

    it("shares what it admitted with another instance on the same file", async () => {
      const one = open();
      const two = open();
      expect(await one.replay.admit(request("m", "n"))).toEqual({ kind: "admitted" });
      expect((await two.replay.admit(request("m", "n"))).kind).toBe("duplicate");
      expect(await two.replay.admit(request("m2", "n"))).toEqual({ kind: "replay" });
      await two.replay.complete("alice", "m", outcome);
      expect((await one.replay.getMessage("alice", "m"))?.outcome).toEqual(outcome);
    });

    it("refuses, in the schema, a done message without an outcome or a pending one with one", () => {
      const db = raw();
      migrateSqlite(db);
      const insert = db.prepare("INSERT INTO replay_messages VALUES ('a', 'm', 'h', 'n', 1, ?, ?, 1, 2)");
      expect(() => insert.run("done", null)).toThrow(/CHECK/);
      expect(() => insert.run("pending", "{}")).toThrow(/CHECK/);
      expect(() => insert.run("done", "not json")).toThrow(/CHECK/);
      expect(() => insert.run("done", "null")).not.toThrow();
    });
  });

  describe("migrations", () => {
    const recorded = (db: Database.Database) =>
      db.prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").all() as {
        version: number;
        name: string;
        applied_at: number;
      }[];

    it("applies each migration once and records its version", async () => {
      await open().close();
      const before = recorded(raw());
      expect(before.map((row) => row.version)).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
      expect(before.map((row) => row.name)).toEqual(SQLITE_MIGRATIONS.map((m) => m.name));

      await open().close();
      await open().close();
      expect(recorded(raw())).toEqual(before);
    });

    it("applies only the migrations a database lacks", () => {
      const db = raw();
      expect(migrateSqlite(db)).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
      expect(migrateSqlite(db)).toEqual([]);

      const next = SQLITE_MIGRATIONS.at(-1)!.version + 1;
      const extended = [
        ...SQLITE_MIGRATIONS,
        { version: next, name: "test column", sql: "ALTER TABLE agents ADD COLUMN note TEXT" },
      ];
      expect(migrateSqlite(db, extended)).toEqual([next]);
      expect(recorded(db).at(-1)?.version).toBe(next);
      expect(migrateSqlite(db, extended)).toEqual([]);
    });

    it("rolls back every migration of a run when one fails", () => {
      const db = raw();
      const broken = [...SQLITE_MIGRATIONS, { version: 999, name: "broken", sql: "THIS IS NOT SQL" }];
      expect(() => migrateSqlite(db, broken)).toThrow();
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      expect(tables).not.toContain("agents");
      expect(tables).not.toContain("schema_migrations");
    });

    it("drops the events table and its index, which the audit log replaced, keeping everything else", async () => {
      const db = raw();
      migrateSqlite(
        db,
        SQLITE_MIGRATIONS.filter((migration) => migration.version < 4),
      );
      db.prepare(
        "INSERT INTO events (id, ts, type, outcome, details) VALUES ('ev-1', 1, 'agent.deploy', 'success', '{}')",
      ).run();
      db.prepare(
        "INSERT INTO api_keys (id, name, principal, kind, permissions, hash, created_at, created_by) VALUES ('k1', 'n', 'alice', 'user', '[\"*\"]', ?, 1, 'x')",
      ).run("f".repeat(64));
      db.close();

      const upgraded = open();
      expect((await upgraded.apiKeys.getApiKey("k1"))?.permissions).toEqual(["*"]);
      await upgraded.close();
      const after = raw();
      expect(recorded(after).find((row) => row.version === 4)).toMatchObject({ name: "drop events" });
      const names = after
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
        .pluck()
        .all();
      expect(names).not.toContain("events");
      expect(names).not.toContain("events_by_type");
      expect(names).toContain("api_keys");
      expect(names).toContain("role_assignments");
    });

    it("refuses a migration list out of order", () => {
      const db = raw();
      const unordered = [
        { version: 2, name: "b", sql: "" },
        { version: 1, name: "a", sql: "" },
      ];
      expect(() => migrateSqlite(db, unordered)).toThrow(/versions must increase/);
    });

    it("refuses a database from a newer schema version, and leaves it untouched", async () => {
      await open().close();
      const future = SQLITE_MIGRATIONS.at(-1)!.version + 1;
      const db = raw();
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        future,
        "from the future",
        Date.now(),
      );
      db.close();

      let error: unknown;
      try {
        open();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(SchemaVersionError);
      expect((error as SchemaVersionError).code).toBe("SCHEMA_TOO_NEW");
      expect((error as SchemaVersionError).found).toBe(future);
      expect((error as SchemaVersionError).supported).toBe(future - 1);
      await expect(openStores({ kind: "sqlite", path })).rejects.toBeInstanceOf(SchemaVersionError);

      expect(recorded(raw()).at(-1)?.version).toBe(future);
    });
  });

  describe("file and connection settings", () => {
    it("turns WAL on, and it stays on in the file", async () => {
      await open().close();
      expect(raw().pragma("journal_mode", { simple: true })).toBe("wal");
    });

    it("creates a new database file, and its WAL, readable by the owner only", async () => {
      const stores = open();
      await stores.roles.assignRole({ principal: "alice", role: "r", assignedAt: 1, assignedBy: "a" }, ctx);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    });

    it("leaves an existing file's mode as its owner set it", async () => {
      writeFileSync(path, "", { mode: 0o640 });
      await open().close();
      expect(statSync(path).mode & 0o777).toBe(0o640);
    });

    it("refuses an unknown synchronous level or a bad busy timeout", () => {
      expect(() => open({ synchronous: "OFF" as "FULL" })).toThrow(/synchronous/);
      expect(() => open({ busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs/);
    });

    it("enforces foreign keys on every connection it opens", async () => {
      const stores = open();
      await expect(
        stores.agents.addKey({ kid: "k", agentId: "ghost", publicKey: "pk", createdAt: 1 }, ctx),
      ).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    });

    it("lets an unexpected database error through unchanged", async () => {
      const stores = open();
      // STRICT tables refuse a fractional timestamp: a caller bug, not a client's bad request.
      await expect(
        stores.roles.assignRole({ principal: "alice", role: "r", assignedAt: 1.5, assignedBy: "a" }, ctx),
      ).rejects.toBeInstanceOf(Database.SqliteError);
    });
  });
});
