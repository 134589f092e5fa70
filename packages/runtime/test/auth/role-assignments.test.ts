// Role assignments in the runtime: the cache, its invalidation, the effective principal, and failures.
import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/auth/principal.js";
import { createRoleAssignments } from "../../src/auth/role-assignments.js";
import { DEFAULT_ROLES, roleCatalogue } from "../../src/auth/roles.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { RoleStore } from "../../src/store/types.js";

const ctx = { actor: "admin" };
const catalogue = roleCatalogue(DEFAULT_ROLES);
const alice: Principal = { id: "alice", kind: "user", permissions: ["agent:read"], method: "api_key" };

/** A RoleStore that counts reads and can be told to fail or to pause a read. */
function countingStore() {
  const inner = createMemoryStores().roles;
  let reads = 0;
  let failing = false;
  let gate: Promise<void> | undefined;
  const store: RoleStore = {
    assignRole: (assignment, context) => inner.assignRole(assignment, context),
    unassignRole: (principal, role, context) => inner.unassignRole(principal, role, context),
    async listRoleAssignments(query) {
      reads += 1;
      if (failing) throw new Error("database is gone");
      const result = await inner.listRoleAssignments(query);
      await gate;
      return result;
    },
  };
  return {
    store,
    inner,
    reads: () => reads,
    fail: (value: boolean): void => {
      failing = value;
    },
    pause: (until: Promise<void> | undefined): void => {
      gate = until;
    },
  };
}

describe("createRoleAssignments", () => {
  it("widens a principal's permissions by its roles' and never narrows them", async () => {
    const { store } = countingStore();
    const roles = createRoleAssignments(store, catalogue, { ttlMs: 5_000, maxEntries: 8 });
    expect(await roles.resolve(alice)).toEqual({ ...alice, roles: [] });

    await roles.assign("alice", "developer", ctx);
    const resolved = await roles.resolve(alice);
    expect(resolved.roles).toEqual(["developer"]);
    expect(resolved.permissions).toEqual(
      expect.arrayContaining(["agent:read", "agent:deploy", "audit:read"]),
    );
    expect(resolved.permissions.filter((p) => p === "agent:read")).toHaveLength(1);
    expect(alice.permissions).toEqual(["agent:read"]);
  });

  it("answers from the cache within the TTL, including for principals without roles", async () => {
    let now = 0;
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, {
      ttlMs: 1_000,
      maxEntries: 8,
      clock: () => now,
    });
    await roles.rolesOf("alice");
    await roles.rolesOf("alice");
    expect(counting.reads()).toBe(1);
    now = 1_000;
    await roles.rolesOf("alice");
    expect(counting.reads()).toBe(2);
  });

  it("applies a change made through it to the very next lookup", async () => {
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, { ttlMs: 60_000, maxEntries: 8 });
    expect(await roles.rolesOf("alice")).toEqual([]);
    expect(await roles.assign("alice", "operator", ctx)).toEqual({
      principal: "alice",
      role: "operator",
      changed: true,
      roles: ["operator"],
    });
    expect(await roles.rolesOf("alice")).toEqual(["operator"]);
    expect((await roles.assign("alice", "operator", ctx)).changed).toBe(false);
    expect(await roles.unassign("alice", "operator", ctx)).toMatchObject({ changed: true, roles: [] });
    expect(await roles.rolesOf("alice")).toEqual([]);
    expect((await roles.resolve(alice)).permissions).toEqual(["agent:read"]);
  });

  it("sees a change made elsewhere (another instance) only after the TTL, unless the TTL is 0", async () => {
    let now = 0;
    const counting = countingStore();
    const cached = createRoleAssignments(counting.store, catalogue, {
      ttlMs: 5_000,
      maxEntries: 8,
      clock: () => now,
    });
    const uncached = createRoleAssignments(counting.store, catalogue, { ttlMs: 0, maxEntries: 8 });
    expect(await cached.rolesOf("alice")).toEqual([]);
    await counting.inner.assignRole(
      { principal: "alice", role: "viewer", assignedAt: 1, assignedBy: "other-instance" },
      ctx,
    );
    expect(await cached.rolesOf("alice")).toEqual([]);
    expect(await uncached.rolesOf("alice")).toEqual(["viewer"]);
    now = 5_000;
    expect(await cached.rolesOf("alice")).toEqual(["viewer"]);
  });

  it("does not cache a read that was running when a change happened", async () => {
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, { ttlMs: 60_000, maxEntries: 8 });
    let release!: () => void;
    counting.pause(new Promise<void>((resolve) => (release = resolve)));
    const stale = roles.rolesOf("alice");
    counting.pause(undefined);
    await roles.assign("alice", "viewer", ctx);
    release();
    expect(await stale).toEqual([]);
    expect(await roles.rolesOf("alice")).toEqual(["viewer"]);
  });

  it("evicts the least recently used principal beyond maxEntries", async () => {
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, { ttlMs: 60_000, maxEntries: 2 });
    await roles.rolesOf("a");
    await roles.rolesOf("b");
    await roles.rolesOf("a");
    await roles.rolesOf("c");
    const before = counting.reads();
    await roles.rolesOf("a");
    expect(counting.reads()).toBe(before);
    await roles.rolesOf("b");
    expect(counting.reads()).toBe(before + 1);
  });

  it("refuses roles that are not defined, and lets a stale assignment be removed", async () => {
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, { ttlMs: 60_000, maxEntries: 8 });
    await expect(roles.assign("alice", "root", ctx)).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    await counting.inner.assignRole(
      { principal: "alice", role: "retired", assignedAt: 1, assignedBy: "x" },
      ctx,
    );
    // A role no longer defined is listed but grants nothing.
    const resolved = await roles.resolve(alice);
    expect(resolved.roles).toEqual(["retired"]);
    expect(resolved.permissions).toEqual(["agent:read"]);
    expect((await roles.unassign("alice", "retired", ctx)).changed).toBe(true);
  });

  it("fails closed with UNAVAILABLE when the store cannot be read", async () => {
    const counting = countingStore();
    const roles = createRoleAssignments(counting.store, catalogue, { ttlMs: 0, maxEntries: 8 });
    counting.fail(true);
    await expect(roles.resolve(alice)).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });

  it("refuses nonsense cache settings", () => {
    const { store } = countingStore();
    expect(() => createRoleAssignments(store, catalogue, { ttlMs: -1, maxEntries: 8 })).toThrow(TypeError);
    expect(() => createRoleAssignments(store, catalogue, { ttlMs: 0, maxEntries: 0 })).toThrow(TypeError);
  });
});
