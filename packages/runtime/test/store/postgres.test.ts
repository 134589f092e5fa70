// The store contract against a real PostgreSQL server, and what only the PostgreSQL adapter promises:
// migrations applied once however many instances start together, exactly-once admission across
// instances, durability across a server restart, and the error codes its failures map to.
import { isSignetError } from "@signet/protocol";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { POSTGRES_MIGRATIONS, migratePostgres } from "../../src/store/migrations/postgres.js";
import { openStores } from "../../src/store/open.js";
import { type PostgresStoreOptions, openPostgresStores } from "../../src/store/postgres.js";
import { SchemaVersionError } from "../../src/store/schema-version-error.js";
import type { AdmitRequest, Stores } from "../../src/store/types.js";
import { type PostgresServer, startPostgres } from "../helpers/postgres-server.js";
import { runStoreContract } from "./contract.js";
import { runSessionStoreContract } from "./sessions-contract.js";

const ctx = { actor: "admin" };

// One server for this file; each contract test and each test below gets a database of its own.
let server: PostgresServer | undefined;
let databases = 0;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

const freshDatabase = (): Promise<string> => server!.createDatabase(`store_${++databases}`);

runStoreContract("postgres", async () => openPostgresStores({ url: await freshDatabase() }));
runSessionStoreContract("postgres", async () => openPostgresStores({ url: await freshDatabase() }), {
  durable: async () => {
    const url = await freshDatabase();
    return () => openPostgresStores({ url });
  },
});

/** Resolves to what `promise` rejected with, failing when it resolved. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected the call to be refused"),
    (error: unknown) => error,
  );
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  const error = await rejection(promise);
  expect(isSignetError(error), `expected a SignetError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  return error;
}

describe("PostgreSQL store", () => {
  let url: string;
  // Every handle a test opens, closed after it even when an assertion fails midway.
  const opened: { close?: () => Promise<void>; end?: () => Promise<void> }[] = [];

  const open = async (options: Partial<PostgresStoreOptions> = {}): Promise<Stores> => {
    const stores = await openPostgresStores({ url, ...options });
    opened.push(stores);
    return stores;
  };
  const raw = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => undefined);
    await client.connect();
    opened.push(client);
    return client;
  };
  const recorded = async () =>
    (
      await (
        await raw()
      ).query<{ version: number; name: string }>(
        "SELECT version, name FROM schema_migrations ORDER BY version",
      )
    ).rows;

  beforeEach(async () => {
    url = await freshDatabase();
  });

  afterEach(async () => {
    for (const handle of opened.splice(0))
      await (handle.close ?? handle.end)?.call(handle).catch(() => undefined);
  });

  const request = (overrides: Partial<AdmitRequest> = {}): AdmitRequest => ({
    sender: "alice",
    id: "m",
    hash: "hash-m",
    nonce: "n",
    ts: 100_000,
    now: 100_000,
    windowMs: 1_000,
    retentionMs: 5_000,
    ...overrides,
  });
  const outcome = { receipt: { status: "ok" }, result: [1, null, { deep: true }] };

  it("keeps every record across close and reopen, and shares them with another instance", async () => {
    const first = await open();
    const other = await open();
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
    await first.roles.assignRole(
      { principal: "alice", role: "operator", assignedAt: 5, assignedBy: "a" },
      ctx,
    );
    expect((await other.agents.getKey("kid-1"))?.agentId).toBe("alice");
    await first.close();

    const second = await open();
    expect((await second.agents.getAgent("alice"))?.definition).toEqual({
      name: "alice",
      nested: { list: [1, "two", null, true] },
    });
    expect(await second.roles.listRoleAssignments()).toHaveLength(1);
  });

  it("opens through openStores", async () => {
    const stores = await openStores({ kind: "postgres", url, poolSize: 2 });
    opened.push(stores);
    expect(await stores.ping()).toBe(true);
  });

  describe("migrations", () => {
    it("applies each migration once when several instances open together", async () => {
      await Promise.all(Array.from({ length: 6 }, () => open()));
      expect(await recorded()).toEqual(POSTGRES_MIGRATIONS.map(({ version, name }) => ({ version, name })));

      // The runner itself: of several connections migrating at once, one applies everything.
      const fresh = await freshDatabase();
      const clients = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const client = new pg.Client({ connectionString: fresh });
          opened.push(client);
          await client.connect();
          return client;
        }),
      );
      const applied = await Promise.all(clients.map((client) => migratePostgres(client)));
      expect(applied.filter((versions) => versions.length > 0)).toEqual([
        POSTGRES_MIGRATIONS.map((m) => m.version),
      ]);
    });

    it("applies only the migrations a database lacks, and keeps what it held", async () => {
      const client = await raw();
      expect(await migratePostgres(client, POSTGRES_MIGRATIONS.slice(0, 2))).toEqual([1, 2]);
      await client.query(
        `INSERT INTO api_keys (id, name, principal, kind, permissions, hash, created_at, created_by)
         VALUES ('k1', 'n', 'alice', 'user', '["auth:keys"]', $1, 1, 'x')`,
        ["f".repeat(64)],
      );

      const upgraded = await open();
      expect((await upgraded.apiKeys.getApiKey("k1"))?.permissions).toEqual(["auth:keys"]);
      expect(
        await upgraded.roles.assignRole({ principal: "a", role: "r", assignedAt: 1, assignedBy: "x" }, ctx),
      ).toBe(true);
      expect(await migratePostgres(client)).toEqual([]);

      const next = POSTGRES_MIGRATIONS.at(-1)!.version + 1;
      const extended = [
        ...POSTGRES_MIGRATIONS,
        { version: next, name: "test column", sql: "ALTER TABLE agents ADD COLUMN note text" },
      ];
      expect(await migratePostgres(client, extended)).toEqual([next]);
      expect(await migratePostgres(client, extended)).toEqual([]);
    });

    it("rolls back every migration of a run when one fails", async () => {
      const client = await raw();
      const broken = [...POSTGRES_MIGRATIONS, { version: 999, name: "broken", sql: "THIS IS NOT SQL" }];
      await expect(migratePostgres(client, broken)).rejects.toMatchObject({ code: "42601" });
      const { rows } = await client.query<{ name: string }>(
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()",
      );
      expect(rows).toEqual([]);
    });

    it("refuses a migration list out of order", async () => {
      const unordered = [
        { version: 2, name: "b", sql: "" },
        { version: 1, name: "a", sql: "" },
      ];
      await expect(migratePostgres(await raw(), unordered)).rejects.toThrow(/versions must increase/);
    });

    it("refuses a database from a newer schema version, and leaves it untouched", async () => {
      await (await open()).close();
      const future = POSTGRES_MIGRATIONS.at(-1)!.version + 1;
      await (
        await raw()
      ).query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from the future', $2)",
        [future, Date.now()],
      );

      const error = await rejection(openPostgresStores({ url }));
      expect(error).toBeInstanceOf(SchemaVersionError);
      expect(error).toMatchObject({ code: "SCHEMA_TOO_NEW", found: future, supported: future - 1 });
      await expect(openStores({ kind: "postgres", url })).rejects.toBeInstanceOf(SchemaVersionError);
      expect((await recorded()).at(-1)).toEqual({ version: future, name: "from the future" });
    });
  });

  describe("replay across instances", () => {
    it("admits each message exactly once when two instances admit it at the same time", async () => {
      const instances = [await open(), await open()];
      const ids = Array.from({ length: 50 }, (_, i) => `m-${i}`);
      const outcomes = await Promise.all(
        ids.flatMap((id) =>
          instances.map(async (stores) => ({
            id,
            ...(await stores.replay.admit(request({ id, nonce: `n-${id}` }))),
          })),
        ),
      );
      for (const id of ids) {
        const kinds = outcomes.filter((o) => o.id === id).map((o) => o.kind);
        expect(kinds.sort(), id).toEqual(["admitted", "duplicate"]);
      }
    });

    it("binds a nonce to one message when two instances admit different ids with it at once", async () => {
      const instances = [await open(), await open()];
      const nonces = Array.from({ length: 50 }, (_, i) => `n-${i}`);
      const outcomes = await Promise.all(
        nonces.flatMap((nonce) =>
          instances.map(async (stores, instance) => ({
            nonce,
            ...(await stores.replay.admit(
              request({ id: `${nonce}-via-${instance}`, hash: `h-${instance}`, nonce }),
            )),
          })),
        ),
      );
      for (const nonce of nonces) {
        const kinds = outcomes.filter((o) => o.nonce === nonce).map((o) => o.kind);
        expect(kinds.sort(), nonce).toEqual(["admitted", "replay"]);
      }
    });

    it("replaces an expired record exactly once when two instances admit its id again", async () => {
      const instances = [await open(), await open()];
      await instances[0]!.replay.admit(request());
      const later = 100_000 + 10_000;
      const outcomes = await Promise.all(
        instances.map((stores) => stores.replay.admit(request({ hash: "hash-2", ts: later, now: later }))),
      );
      expect(outcomes.map((o) => o.kind).sort()).toEqual(["admitted", "duplicate"]);
      expect((await instances[1]!.replay.getMessage("alice", "m"))?.hash).toBe("hash-2");
    });

    it("keeps messages and nonces across a server restart, UNAVAILABLE while it is down", async () => {
      const stores = await open({ connectionTimeoutMs: 1_000 });
      expect(await stores.replay.admit(request())).toEqual({ kind: "admitted" });
      await stores.replay.complete("alice", "m", outcome);

      await server!.restart(async () => {
        expect(await stores.ping()).toBe(false);
        await expectCode(stores.replay.admit(request({ id: "m2", nonce: "n2" })), "UNAVAILABLE");
        await expectCode(stores.roles.listRoleAssignments(), "UNAVAILABLE");
      });

      expect(await stores.ping()).toBe(true);
      const again = await stores.replay.admit(request());
      expect(again.kind === "duplicate" && again.record.outcome).toEqual(outcome);
      expect(await stores.replay.admit(request({ id: "other" }))).toEqual({ kind: "replay" });
    });
  });

  describe("errors", () => {
    it("maps a unique violation to INVALID_REQUEST, with the database error as its cause", async () => {
      const stores = await open();
      await stores.agents.putAgent(
        {
          id: "alice",
          description: "d",
          definition: {},
          serves: [],
          createdAt: 1,
          updatedAt: 1,
          deployedBy: "admin",
        },
        [{ kid: "kid-1", agentId: "alice", publicKey: "pk", createdAt: 1 }],
        ctx,
      );
      const kid = await expectCode(
        stores.agents.addKey({ kid: "kid-1", agentId: "alice", publicKey: "pk2", createdAt: 2 }, ctx),
        "INVALID_REQUEST",
      );
      expect((kid as Error).cause).toBeInstanceOf(pg.DatabaseError);
      expect((kid as Error).cause).toMatchObject({ code: "23505" });

      const apiKey = {
        id: "k1",
        name: "n",
        principal: "p",
        kind: "user" as const,
        permissions: [],
        hash: "f".repeat(64),
        createdAt: 1,
        createdBy: "admin",
      };
      await stores.apiKeys.putApiKey(apiKey, ctx);
      const duplicate = await expectCode(stores.apiKeys.putApiKey(apiKey, ctx), "INVALID_REQUEST");
      expect((duplicate as Error).cause).toMatchObject({ code: "23505" });

      const orphan = await expectCode(
        stores.agents.addKey({ kid: "kid-2", agentId: "ghost", publicKey: "pk", createdAt: 1 }, ctx),
        "INVALID_REQUEST",
      );
      expect((orphan as Error).cause).toMatchObject({ code: "23503" });
      // The refused statements cost no connection: the store goes on answering.
      expect(await stores.ping()).toBe(true);
    });

    it("fails every call with UNAVAILABLE once closed", async () => {
      const stores = await open();
      await stores.close();
      expect(await stores.ping()).toBe(false);
      await expectCode(stores.agents.getAgent("alice"), "UNAVAILABLE");
      await expectCode(stores.apiKeys.listApiKeys(), "UNAVAILABLE");
      await expectCode(stores.replay.admit(request()), "UNAVAILABLE");
      await expectCode(stores.replay.prune(0), "UNAVAILABLE");
      await expectCode(
        stores.roles.assignRole({ principal: "a", role: "r", assignedAt: 1, assignedBy: "x" }, ctx),
        "UNAVAILABLE",
      );
      await expect(stores.close()).resolves.toBeUndefined();
    });

    it("fails to open with UNAVAILABLE when nothing listens at the address", async () => {
      const error = await expectCode(
        openPostgresStores({ url: "postgresql://postgres@127.0.0.1:1/signet", connectionTimeoutMs: 1_000 }),
        "UNAVAILABLE",
      );
      expect(error).toMatchObject({ retryable: true, details: { reason: "database" } });
    });

    it("maps a statement cut off by statement_timeout to UNAVAILABLE, and keeps the connection", async () => {
      const stores = await open({ statementTimeoutMs: 200, poolSize: 1 });
      const blocker = await raw();
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO role_assignments VALUES ('alice', 'r', 1, 'x')");
      const error = await expectCode(
        stores.roles.assignRole({ principal: "alice", role: "r", assignedAt: 2, assignedBy: "y" }, ctx),
        "UNAVAILABLE",
      );
      expect((error as Error).cause).toMatchObject({ code: "57014" });
      await blocker.query("ROLLBACK");
      expect(
        await stores.roles.assignRole({ principal: "alice", role: "r", assignedAt: 2, assignedBy: "y" }, ctx),
      ).toBe(true);
    });

    it("lets an unexpected database error through unchanged", async () => {
      const stores = await open();
      // bigint refuses a fractional timestamp: a caller bug, not a client's bad request.
      const error = await rejection(
        stores.roles.assignRole({ principal: "alice", role: "r", assignedAt: 1.5, assignedBy: "a" }, ctx),
      );
      expect(error).toBeInstanceOf(pg.DatabaseError);
      expect(isSignetError(error)).toBe(false);
    });

    it("refuses a stored integer beyond the safe range rather than round it", async () => {
      const stores = await open();
      await (await raw()).query("INSERT INTO role_assignments VALUES ('alice', 'r', 9007199254740993, 'x')");
      await expect(stores.roles.listRoleAssignments()).rejects.toBeInstanceOf(RangeError);
    });

    it("refuses a bad URL, pool size or timeout before connecting", async () => {
      await expect(openPostgresStores({ url: "" })).rejects.toThrow(TypeError);
      await expect(open({ poolSize: 0 })).rejects.toThrow(/poolSize/);
      await expect(open({ statementTimeoutMs: 1.5 })).rejects.toThrow(/statementTimeoutMs/);
      await expect(open({ connectionTimeoutMs: -1 })).rejects.toThrow(/connectionTimeoutMs/);
    });
  });

  describe("schema", () => {
    it("refuses, in the schema, a done message without an outcome or a pending one with one", async () => {
      await (await open()).close();
      const client = await raw();
      const insert = (state: string, outcomeText: string | null) =>
        client.query("INSERT INTO replay_messages VALUES ('a', 'm', 'h', 'n', 1, $1, $2, 1, 2)", [
          state,
          outcomeText,
        ]);
      await expect(insert("done", null)).rejects.toMatchObject({ code: "23514" });
      await expect(insert("pending", "{}")).rejects.toMatchObject({ code: "23514" });
      await expect(insert("done", "not json")).rejects.toMatchObject({ code: "22P02" });
      await expect(insert("done", "null")).resolves.toBeDefined();
    });

    it("stores an outcome's JSON text exactly: key order and \\u0000 included", async () => {
      const stores = await open();
      await stores.replay.admit(request());
      const exact = { zeta: 1, alpha: "nul \u0000 and a lone \ud800", nested: { b: [], a: null } };
      await stores.replay.complete("alice", "m", exact);

      const { rows } = await (
        await raw()
      ).query<{ text: string }>("SELECT outcome::text AS text FROM replay_messages WHERE id = 'm'");
      expect(rows[0]?.text).toBe(JSON.stringify(exact));
      const stored = (await stores.replay.getMessage("alice", "m"))?.outcome;
      expect(stored).toEqual(exact);
      expect(Object.keys(stored as object)).toEqual(["zeta", "alpha", "nested"]);
    });
  });
});
