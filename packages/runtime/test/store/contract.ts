// The one contract every storage adapter passes: same calls, same answers, same refusals.
import { isSignetError } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  AdmitRequest,
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  MessageRecord,
  RoleAssignmentRecord,
  StoreContext,
  Stores,
} from "../../src/store/types.js";

const ctx: StoreContext = { actor: "admin", requestId: "req-1" };

function agent(overrides: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id: "alice",
    version: "1.0.0",
    description: "# Alice\n\nAnswers questions.",
    definition: { name: "alice", serves: ["search"], limits: { rpm: 60 }, tags: ["a", "b"] },
    serves: ["search"],
    createdAt: 1_000,
    updatedAt: 1_000,
    deployedBy: "admin",
    ...overrides,
  };
}

function agentKey(overrides: Partial<AgentKeyRecord> = {}): AgentKeyRecord {
  return {
    kid: "kid-1",
    agentId: "alice",
    publicKey: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    createdAt: 1_000,
    ...overrides,
  };
}

function apiKey(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: "k1",
    name: "ci deployer",
    principal: "ci-deployer",
    kind: "service",
    permissions: ["agent:deploy", "agent:read"],
    hash: "a".repeat(64),
    createdAt: 1_000,
    createdBy: "admin",
    ...overrides,
  };
}

function assignment(overrides: Partial<RoleAssignmentRecord> = {}): RoleAssignmentRecord {
  return { principal: "alice", role: "developer", assignedAt: 1_000, assignedBy: "admin", ...overrides };
}

// Replay requests: a 1 s window and 5 s retention, judged at t = 100 s unless a test says otherwise.
const NOW = 100_000;
const WINDOW_MS = 1_000;
const RETENTION_MS = 5_000;

function admitRequest(overrides: Partial<AdmitRequest> = {}): AdmitRequest {
  return {
    sender: "alice",
    id: "msg-1",
    hash: "hash-1",
    nonce: "nonce-1",
    ts: NOW,
    now: NOW,
    windowMs: WINDOW_MS,
    retentionMs: RETENTION_MS,
    ...overrides,
  };
}

/** The pending record `admitRequest(overrides)` leaves behind. */
function pendingRecord(overrides: Partial<AdmitRequest> = {}): MessageRecord {
  const { sender, id, hash, nonce, ts, now, windowMs, retentionMs } = admitRequest(overrides);
  return {
    sender,
    id,
    hash,
    nonce,
    ts,
    state: "pending",
    createdAt: now,
    expiresAt: now + Math.max(retentionMs, 2 * windowMs),
  };
}

const outcome = {
  receipt: { status: "ok", sig: "c2ln", at: 100_001 },
  result: [1, "two", null, true, { nested: { deep: [] } }],
};

/**
 * Changes everything reachable from `value` in place: every array grows, every scalar field is
 * overwritten. Records are readonly by type only, which is exactly what this checks.
 */
export function scribble(value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) scribble(item);
    value.push("scribbled");
  } else if (typeof value === "object" && value !== null) {
    const fields = value as Record<string, unknown>;
    for (const [field, inner] of Object.entries(fields)) {
      if (typeof inner === "object" && inner !== null) scribble(inner);
      else fields[field] = "scribbled";
    }
  }
}

/** Asserts that `promise` rejects with a SignetError carrying `code`. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(isSignetError(error), `expected a SignetError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

/**
 * Registers the contract suite for one adapter. `open` must return fresh, empty stores each call.
 *
 * Example: `runStoreContract("memory", () => Promise.resolve(createMemoryStores()));`.
 */
export function runStoreContract(name: string, open: () => Promise<Stores>): void {
  describe(`store contract: ${name}`, () => {
    let stores: Stores;

    beforeEach(async () => {
      stores = await open();
    });

    afterEach(async () => {
      await stores.close();
    });

    describe("agents", () => {
      it("returns undefined for an unknown agent and an empty list at first", async () => {
        expect(await stores.agents.getAgent("nobody")).toBeUndefined();
        expect(await stores.agents.listAgents()).toEqual([]);
      });

      it("stores an agent with its keys", async () => {
        await stores.agents.putAgent(agent(), [agentKey()], ctx);
        expect(await stores.agents.getAgent("alice")).toEqual(agent());
        expect(await stores.agents.getKey("kid-1")).toEqual(agentKey());
        expect(await stores.agents.listKeys("alice")).toEqual([agentKey()]);
      });

      it("leaves absent optional fields absent", async () => {
        const { version: _version, ...unversioned } = agent();
        await stores.agents.putAgent(unversioned, [], ctx);
        const got = await stores.agents.getAgent("alice");
        expect(got).toEqual(unversioned);
        expect(got !== undefined && "version" in got).toBe(false);
      });

      it("replaces an agent and keeps its existing keys", async () => {
        await stores.agents.putAgent(agent(), [agentKey()], ctx);
        const replaced = agent({
          version: "2.0.0",
          description: "v2",
          serves: ["search", "summarize"],
          definition: { name: "alice", serves: ["search", "summarize"] },
          updatedAt: 2_000,
          deployedBy: "ci-deployer",
        });
        await stores.agents.putAgent(replaced, [], ctx);
        expect(await stores.agents.getAgent("alice")).toEqual(replaced);
        expect((await stores.agents.getAgent("alice"))?.updatedAt).toBe(2_000);
        expect(await stores.agents.listKeys("alice")).toEqual([agentKey()]);

        await stores.agents.putAgent(replaced, [agentKey({ kid: "kid-2", createdAt: 2_000 })], ctx);
        expect((await stores.agents.listKeys("alice")).map((k) => k.kid)).toEqual(["kid-1", "kid-2"]);
        expect(await stores.agents.listAgents()).toHaveLength(1);
      });

      it("lists agents by id", async () => {
        for (const id of ["carol", "alice", "bob"]) await stores.agents.putAgent(agent({ id }), [], ctx);
        expect((await stores.agents.listAgents()).map((a) => a.id)).toEqual(["alice", "bob", "carol"]);
      });

      it("refuses a kid already registered, and stores nothing of the call", async () => {
        await stores.agents.putAgent(agent(), [agentKey()], ctx);
        await expectCode(
          stores.agents.putAgent(agent({ id: "bob" }), [agentKey({ kid: "kid-1", agentId: "bob" })], ctx),
          "INVALID_REQUEST",
        );
        expect(await stores.agents.getAgent("bob")).toBeUndefined();
        expect(await stores.agents.getKey("kid-1")).toEqual(agentKey());
      });

      it("rolls back the replacement when a key is refused", async () => {
        await stores.agents.putAgent(agent(), [agentKey()], ctx);
        await expectCode(
          stores.agents.putAgent(
            agent({ description: "v2", updatedAt: 2_000 }),
            [agentKey({ kid: "kid-2" }), agentKey({ kid: "kid-1" })],
            ctx,
          ),
          "INVALID_REQUEST",
        );
        expect(await stores.agents.getAgent("alice")).toEqual(agent());
        expect(await stores.agents.getKey("kid-2")).toBeUndefined();
      });

      it("refuses keys that belong to another agent or repeat a kid", async () => {
        await expectCode(
          stores.agents.putAgent(agent(), [agentKey({ agentId: "bob" })], ctx),
          "INVALID_REQUEST",
        );
        await expectCode(stores.agents.putAgent(agent(), [agentKey(), agentKey()], ctx), "INVALID_REQUEST");
        expect(await stores.agents.getAgent("alice")).toBeUndefined();
        expect(await stores.agents.listKeys()).toEqual([]);
      });
    });

    describe("agent keys", () => {
      beforeEach(async () => {
        await stores.agents.putAgent(agent(), [], ctx);
        await stores.agents.putAgent(agent({ id: "bob" }), [], ctx);
      });

      it("adds a key and returns undefined for an unknown kid", async () => {
        await stores.agents.addKey(agentKey(), ctx);
        expect(await stores.agents.getKey("kid-1")).toEqual(agentKey());
        expect(await stores.agents.getKey("kid-none")).toBeUndefined();
      });

      it("refuses a duplicate kid with INVALID_REQUEST, even for another agent", async () => {
        await stores.agents.addKey(agentKey(), ctx);
        await expectCode(stores.agents.addKey(agentKey({ publicKey: "other" }), ctx), "INVALID_REQUEST");
        await expectCode(stores.agents.addKey(agentKey({ agentId: "bob" }), ctx), "INVALID_REQUEST");
        expect(await stores.agents.getKey("kid-1")).toEqual(agentKey());
      });

      it("refuses a key for an unknown agent", async () => {
        await expectCode(stores.agents.addKey(agentKey({ agentId: "nobody" }), ctx), "INVALID_REQUEST");
        expect(await stores.agents.getKey("kid-1")).toBeUndefined();
      });

      it("updates notAfter, then revocation, and returns the updated key", async () => {
        await stores.agents.addKey(agentKey(), ctx);

        const graced = await stores.agents.updateKey("kid-1", { notAfter: 5_000 }, ctx);
        expect(graced).toEqual(agentKey({ notAfter: 5_000 }));
        expect(await stores.agents.getKey("kid-1")).toEqual(graced);

        const revoked = await stores.agents.updateKey(
          "kid-1",
          { revokedAt: 3_000, revokedReason: "compromised" },
          ctx,
        );
        // Fields the patch leaves out keep their value.
        expect(revoked).toEqual(
          agentKey({ notAfter: 5_000, revokedAt: 3_000, revokedReason: "compromised" }),
        );
        expect(await stores.agents.getKey("kid-1")).toEqual(revoked);
      });

      it("returns undefined when updating an unknown kid, and creates nothing", async () => {
        expect(await stores.agents.updateKey("kid-none", { revokedAt: 1 }, ctx)).toBeUndefined();
        expect(await stores.agents.getKey("kid-none")).toBeUndefined();
      });

      it("lists keys oldest first, ties in insertion order, filtered by agent", async () => {
        await stores.agents.addKey(agentKey({ kid: "k-late", createdAt: 3_000 }), ctx);
        await stores.agents.addKey(agentKey({ kid: "k-bob", agentId: "bob", createdAt: 2_000 }), ctx);
        await stores.agents.addKey(agentKey({ kid: "k-early", createdAt: 1_000 }), ctx);
        await stores.agents.addKey(agentKey({ kid: "k-tie-b", createdAt: 2_000 }), ctx);
        await stores.agents.addKey(agentKey({ kid: "k-tie-a", createdAt: 2_000 }), ctx);

        expect((await stores.agents.listKeys()).map((k) => k.kid)).toEqual([
          "k-early",
          "k-bob",
          "k-tie-b",
          "k-tie-a",
          "k-late",
        ]);
        expect((await stores.agents.listKeys("alice")).map((k) => k.kid)).toEqual([
          "k-early",
          "k-tie-b",
          "k-tie-a",
          "k-late",
        ]);
        expect(await stores.agents.listKeys("bob")).toEqual([
          agentKey({ kid: "k-bob", agentId: "bob", createdAt: 2_000 }),
        ]);
        expect(await stores.agents.listKeys("nobody")).toEqual([]);
      });
    });

    describe("API keys", () => {
      it("stores, gets and lists keys oldest first", async () => {
        expect(await stores.apiKeys.getApiKey("k1")).toBeUndefined();
        expect(await stores.apiKeys.listApiKeys()).toEqual([]);

        const later = apiKey({ id: "k2", createdAt: 2_000, expiresAt: 9_000, kind: "user" });
        await stores.apiKeys.putApiKey(later, ctx);
        await stores.apiKeys.putApiKey(apiKey(), ctx);
        expect(await stores.apiKeys.getApiKey("k1")).toEqual(apiKey());
        expect(await stores.apiKeys.getApiKey("k2")).toEqual(later);
        expect(await stores.apiKeys.listApiKeys()).toEqual([apiKey(), later]);
      });

      it("refuses a duplicate id with INVALID_REQUEST and keeps the first", async () => {
        await stores.apiKeys.putApiKey(apiKey(), ctx);
        await expectCode(
          stores.apiKeys.putApiKey(apiKey({ hash: "b".repeat(64), permissions: ["*"] }), ctx),
          "INVALID_REQUEST",
        );
        expect(await stores.apiKeys.getApiKey("k1")).toEqual(apiKey());
      });

      it("revokes a key, keeping the first revocation time", async () => {
        await stores.apiKeys.putApiKey(apiKey(), ctx);
        const revoked = await stores.apiKeys.revokeApiKey("k1", 5_000, ctx);
        expect(revoked).toEqual(apiKey({ revokedAt: 5_000 }));
        expect(await stores.apiKeys.getApiKey("k1")).toEqual(revoked);

        expect(await stores.apiKeys.revokeApiKey("k1", 9_000, ctx)).toEqual(apiKey({ revokedAt: 5_000 }));
      });

      it("returns undefined when revoking an unknown key, and creates nothing", async () => {
        expect(await stores.apiKeys.revokeApiKey("nope", 5_000, ctx)).toBeUndefined();
        expect(await stores.apiKeys.listApiKeys()).toEqual([]);
      });
    });

    describe("role assignments", () => {
      it("lists nothing at first", async () => {
        expect(await stores.roles.listRoleAssignments()).toEqual([]);
        expect(await stores.roles.listRoleAssignments({ principal: "alice" })).toEqual([]);
        expect(await stores.roles.listRoleAssignments({ role: "developer" })).toEqual([]);
      });

      it("assigns a role once: assigning again answers false and keeps the first assignment", async () => {
        expect(await stores.roles.assignRole(assignment(), ctx)).toBe(true);
        expect(
          await stores.roles.assignRole(assignment({ assignedAt: 9_000, assignedBy: "mallory" }), ctx),
        ).toBe(false);
        expect(await stores.roles.listRoleAssignments({ principal: "alice" })).toEqual([assignment()]);
      });

      it("lists by principal (by role name), by role (by principal), by both, and all", async () => {
        await stores.roles.assignRole(assignment({ principal: "carol", role: "viewer" }), ctx);
        await stores.roles.assignRole(assignment({ role: "viewer" }), ctx);
        await stores.roles.assignRole(assignment({ role: "operator", assignedAt: 2_000 }), ctx);
        await stores.roles.assignRole(assignment({ principal: "bob" }), ctx);
        await stores.roles.assignRole(assignment(), ctx);

        const pairs = (list: RoleAssignmentRecord[]) => list.map((a) => `${a.principal}/${a.role}`);
        expect(pairs(await stores.roles.listRoleAssignments())).toEqual([
          "alice/developer",
          "alice/operator",
          "alice/viewer",
          "bob/developer",
          "carol/viewer",
        ]);
        expect(pairs(await stores.roles.listRoleAssignments({ principal: "alice" }))).toEqual([
          "alice/developer",
          "alice/operator",
          "alice/viewer",
        ]);
        expect(pairs(await stores.roles.listRoleAssignments({ role: "viewer" }))).toEqual([
          "alice/viewer",
          "carol/viewer",
        ]);
        expect(await stores.roles.listRoleAssignments({ principal: "alice", role: "operator" })).toEqual([
          assignment({ role: "operator", assignedAt: 2_000 }),
        ]);
        expect(await stores.roles.listRoleAssignments({ principal: "bob", role: "viewer" })).toEqual([]);
        expect(await stores.roles.listRoleAssignments({ principal: "nobody" })).toEqual([]);
      });

      it("unassigns one assignment, answering whether there was one, and touches no other", async () => {
        await stores.roles.assignRole(assignment(), ctx);
        await stores.roles.assignRole(assignment({ role: "viewer" }), ctx);
        await stores.roles.assignRole(assignment({ principal: "bob" }), ctx);

        expect(await stores.roles.unassignRole("alice", "developer", ctx)).toBe(true);
        expect(await stores.roles.unassignRole("alice", "developer", ctx)).toBe(false);
        expect(await stores.roles.unassignRole("nobody", "developer", ctx)).toBe(false);
        expect(await stores.roles.listRoleAssignments()).toEqual([
          assignment({ role: "viewer" }),
          assignment({ principal: "bob" }),
        ]);

        // A role removed and given again is a new assignment, with its new time and author.
        expect(
          await stores.roles.assignRole(assignment({ assignedAt: 5_000, assignedBy: "root" }), ctx),
        ).toBe(true);
        expect(await stores.roles.listRoleAssignments({ principal: "alice", role: "developer" })).toEqual([
          assignment({ assignedAt: 5_000, assignedBy: "root" }),
        ]);
      });

      it("keeps principals apart even when one id is a prefix of another", async () => {
        await stores.roles.assignRole(assignment({ principal: "al" }), ctx);
        await stores.roles.assignRole(assignment({ principal: "alice", role: "viewer" }), ctx);
        expect(await stores.roles.listRoleAssignments({ principal: "al" })).toEqual([
          assignment({ principal: "al" }),
        ]);
        expect(await stores.roles.unassignRole("al", "viewer", ctx)).toBe(false);
      });
    });

    describe("replay", () => {
      const admit = (overrides: Partial<AdmitRequest> = {}) => stores.replay.admit(admitRequest(overrides));
      const message = (id = "msg-1", sender = "alice") => stores.replay.getMessage(sender, id);

      describe("admitted", () => {
        it("records a new message as pending, with no outcome", async () => {
          expect(await message()).toBeUndefined();
          expect(await admit()).toEqual({ kind: "admitted" });
          const record = await message();
          expect(record).toEqual(pendingRecord());
          expect(record !== undefined && "outcome" in record).toBe(false);
        });

        it("keeps the record for the retention, or twice the window when that is longer", async () => {
          await admit({ id: "long", nonce: "n-long" });
          await admit({ id: "short", nonce: "n-short", retentionMs: 500 });
          expect((await message("long"))?.expiresAt).toBe(NOW + RETENTION_MS);
          expect((await message("short"))?.expiresAt).toBe(NOW + 2 * WINDOW_MS);
        });

        it("admits a timestamp exactly at either edge of the window", async () => {
          expect(await admit({ id: "early", nonce: "n-early", ts: NOW - WINDOW_MS })).toEqual({
            kind: "admitted",
          });
          expect(await admit({ id: "late", nonce: "n-late", ts: NOW + WINDOW_MS })).toEqual({
            kind: "admitted",
          });
        });
      });

      describe("duplicate", () => {
        it("answers an identical retry with the pending record", async () => {
          await admit();
          expect(await admit()).toEqual({ kind: "duplicate", record: pendingRecord() });
        });

        it("wins over stale: an identical retry gets the original answer after the window", async () => {
          await admit();
          await stores.replay.complete("alice", "msg-1", outcome);
          const later = await admit({ now: NOW + 3 * WINDOW_MS });
          expect(later).toEqual({
            kind: "duplicate",
            record: { ...pendingRecord(), state: "done", outcome },
          });
        });

        it("answers a completed message with its outcome, a fresh copy each time", async () => {
          await admit();
          const input = structuredClone(outcome);
          await stores.replay.complete("alice", "msg-1", input);
          scribble(input);

          const first = await admit();
          expect(first).toEqual({
            kind: "duplicate",
            record: { ...pendingRecord(), state: "done", outcome },
          });
          scribble(first);
          const second = await admit();
          expect(second.kind === "duplicate" && second.record.outcome).toEqual(outcome);
          expect(await message()).toEqual({ ...pendingRecord(), state: "done", outcome });
        });
      });

      describe("conflict", () => {
        it("refuses the same id with other content, and keeps the first record", async () => {
          await admit();
          expect(await admit({ hash: "hash-2" })).toEqual({ kind: "conflict" });
          expect(await admit({ hash: "hash-2", nonce: "nonce-2", ts: NOW + 1 })).toEqual({
            kind: "conflict",
          });
          expect(await message()).toEqual(pendingRecord());
        });

        it("wins over stale", async () => {
          await admit();
          expect(await admit({ hash: "hash-2", ts: NOW - 10 * WINDOW_MS })).toEqual({ kind: "conflict" });
          expect(await admit({ hash: "hash-2", now: NOW + 3 * WINDOW_MS })).toEqual({ kind: "conflict" });
        });

        it("is per sender: another sender may use the same message id", async () => {
          await admit();
          expect(await admit({ sender: "bob", hash: "hash-2" })).toEqual({ kind: "admitted" });
          expect(await message("msg-1", "bob")).toEqual(pendingRecord({ sender: "bob", hash: "hash-2" }));
        });
      });

      describe("stale", () => {
        it("refuses a timestamp outside the window either way, and records nothing", async () => {
          expect(await admit({ ts: NOW - WINDOW_MS - 1 })).toEqual({ kind: "stale" });
          expect(await admit({ ts: NOW + WINDOW_MS + 1 })).toEqual({ kind: "stale" });
          expect(await message()).toBeUndefined();
        });

        it("binds no nonce, so the sender's fresh retry (new ts, so new hash) is admitted", async () => {
          expect(await admit({ ts: NOW - 2 * WINDOW_MS, hash: "hash-old" })).toEqual({ kind: "stale" });
          expect(await admit({ hash: "hash-new" })).toEqual({ kind: "admitted" });
          expect(await admit({ id: "msg-2", nonce: "nonce-2", ts: NOW + 5 * WINDOW_MS })).toEqual({
            kind: "stale",
          });
          expect(await admit({ id: "msg-3", nonce: "nonce-2" })).toEqual({ kind: "admitted" });
        });
      });

      describe("replay", () => {
        it("refuses a nonce already used by another message id, and records nothing", async () => {
          await admit();
          expect(await admit({ id: "msg-2", hash: "hash-2" })).toEqual({ kind: "replay" });
          expect(await message("msg-2")).toBeUndefined();
        });

        it("keeps the nonce bound after the first message completes or is released", async () => {
          await admit();
          await stores.replay.complete("alice", "msg-1", outcome);
          expect(await admit({ id: "msg-2" })).toEqual({ kind: "replay" });

          await admit({ id: "msg-3", nonce: "nonce-3" });
          await stores.replay.release("alice", "msg-3");
          expect(await admit({ id: "msg-4", nonce: "nonce-3" })).toEqual({ kind: "replay" });
        });

        it("is per sender: another sender may pick the same nonce", async () => {
          await admit();
          expect(await admit({ sender: "bob", id: "msg-2" })).toEqual({ kind: "admitted" });
          expect(await admit({ sender: "carol" })).toEqual({ kind: "admitted" });
        });

        it("is not a replay when the same id comes back after release", async () => {
          await admit();
          await stores.replay.release("alice", "msg-1");
          expect(await message()).toBeUndefined();
          expect(await admit({ now: NOW + 10 })).toEqual({ kind: "admitted" });
          expect(await message()).toEqual(pendingRecord({ now: NOW + 10 }));
        });
      });

      it("never shortens a nonce's life when its released message comes back", async () => {
        await admit();
        await stores.replay.release("alice", "msg-1");
        const later = NOW + 10;
        await admit({ now: later, ts: later, hash: "hash-2", retentionMs: 0 });
        // The message now expires at later + 2 s; the nonce keeps its first expiry, NOW + 5 s.
        expect(await stores.replay.prune(later + 2 * WINDOW_MS + 1)).toBe(1);
        const after = later + 2 * WINDOW_MS + 1;
        expect(await admit({ id: "msg-2", ts: after, now: after })).toEqual({ kind: "replay" });
      });

      describe("complete and release", () => {
        it("stores any JSON value as the outcome, null included", async () => {
          const values: unknown[] = [null, 0, -1.5, "text", false, [], {}, [{ a: [null] }]];
          for (const [i, value] of values.entries()) {
            await admit({ id: `msg-${i}`, nonce: `nonce-${i}` });
            await stores.replay.complete("alice", `msg-${i}`, value);
            expect(await message(`msg-${i}`)).toEqual({
              ...pendingRecord({ id: `msg-${i}`, nonce: `nonce-${i}` }),
              state: "done",
              outcome: value,
            });
          }
        });

        it("keeps the first outcome: completing again changes nothing", async () => {
          await admit();
          await stores.replay.complete("alice", "msg-1", outcome);
          await stores.replay.complete("alice", "msg-1", { other: true });
          expect((await message())?.outcome).toEqual(outcome);
        });

        it("completing an unknown message does nothing and creates nothing", async () => {
          await expect(stores.replay.complete("alice", "nope", outcome)).resolves.toBeUndefined();
          expect(await message("nope")).toBeUndefined();
          expect(await admit({ id: "nope" })).toEqual({ kind: "admitted" });
        });

        it("refuses an outcome JSON cannot hold, and the message stays pending", async () => {
          await admit();
          await expectCode(stores.replay.complete("alice", "msg-1", undefined), "INVALID_REQUEST");
          expect(await message()).toEqual(pendingRecord());
        });

        it("does not release a completed message: it has run, and must not run again", async () => {
          await admit();
          await stores.replay.complete("alice", "msg-1", outcome);
          await stores.replay.release("alice", "msg-1");
          expect((await admit()).kind).toBe("duplicate");
        });

        it("releasing an unknown message does nothing", async () => {
          await admit();
          await expect(stores.replay.release("alice", "nope")).resolves.toBeUndefined();
          await expect(stores.replay.release("bob", "msg-1")).resolves.toBeUndefined();
          expect(await message()).toEqual(pendingRecord());
        });
      });

      describe("concurrency", () => {
        it("admits exactly one of many concurrent identical admits; the rest are duplicates", async () => {
          const outcomes = await Promise.all(Array.from({ length: 10 }, () => admit()));
          expect(outcomes.filter((o) => o.kind === "admitted")).toHaveLength(1);
          expect(outcomes.filter((o) => o.kind === "duplicate")).toHaveLength(9);
        });

        it("admits exactly one of many concurrent ids sharing a nonce; the rest are replays", async () => {
          const outcomes = await Promise.all(
            Array.from({ length: 10 }, (_, i) => admit({ id: `msg-${i}`, hash: `hash-${i}` })),
          );
          expect(outcomes.filter((o) => o.kind === "admitted")).toHaveLength(1);
          expect(outcomes.filter((o) => o.kind === "replay")).toHaveLength(9);
        });
      });

      describe("expiry and prune", () => {
        // msg-1 expires at NOW + 5 s; msg-2, admitted 3 s later, at NOW + 8 s. Two rows each.
        beforeEach(async () => {
          await admit();
          await admit({ id: "msg-2", nonce: "nonce-2", ts: NOW + 3_000, now: NOW + 3_000 });
        });

        it("deletes only rows expired before `now`, and counts them", async () => {
          expect(await stores.replay.prune(NOW + RETENTION_MS)).toBe(0);
          expect(await message()).toBeDefined();

          expect(await stores.replay.prune(NOW + RETENTION_MS + 1)).toBe(2);
          expect(await message()).toBeUndefined();
          expect(await message("msg-2")).toEqual(
            pendingRecord({ id: "msg-2", nonce: "nonce-2", ts: NOW + 3_000, now: NOW + 3_000 }),
          );
          expect(await stores.replay.prune(NOW + RETENTION_MS + 1)).toBe(0);
        });

        it("prunes a released message's nonce on its own", async () => {
          await stores.replay.release("alice", "msg-2");
          expect(await stores.replay.prune(NOW + 8_001)).toBe(3);
          expect(await stores.replay.prune(NOW + 8_001)).toBe(0);
        });

        it("treats expired rows as gone before any prune, so answers never depend on when it ran", async () => {
          const after = NOW + RETENTION_MS + 1;
          // The id and the nonce are free again: the first admit reuses both, with a fresh timestamp.
          expect(await admit({ hash: "hash-2", ts: after, now: after })).toEqual({ kind: "admitted" });
          expect(await message()).toEqual(pendingRecord({ hash: "hash-2", ts: after, now: after }));
          expect(await admit({ id: "msg-3", ts: after, now: after })).toEqual({ kind: "replay" });
        });

        it("answers an identical retry after expiry as stale, never as new", async () => {
          expect(await admit({ now: NOW + RETENTION_MS + 1 })).toEqual({ kind: "stale" });
        });
      });

      describe("input checks", () => {
        it("refuses timestamps and windows that are not integers, or negative windows", async () => {
          const bad: Partial<AdmitRequest>[] = [
            { ts: Number.NaN },
            { ts: 1.5 },
            { now: Number.NaN },
            { now: Number.POSITIVE_INFINITY },
            { windowMs: -1 },
            { windowMs: Number.NaN },
            { retentionMs: -1 },
            { retentionMs: 0.5 },
            { now: Number.MAX_SAFE_INTEGER - 1, ts: Number.MAX_SAFE_INTEGER - 1 },
          ];
          for (const overrides of bad) await expectCode(admit(overrides), "INVALID_REQUEST");
          expect(await message()).toBeUndefined();
          expect(await admit()).toEqual({ kind: "admitted" });
        });
      });
    });

    describe("returned records are copies", () => {
      it("agents: changing a result or the input changes nothing stored", async () => {
        const input = agent();
        await stores.agents.putAgent(input, [agentKey()], ctx);
        scribble(input);
        scribble(await stores.agents.getAgent("alice"));
        scribble(await stores.agents.listAgents());

        expect(await stores.agents.getAgent("alice")).toEqual(agent());
      });

      it("agent keys: changing a result or the input changes nothing stored", async () => {
        const input = agentKey();
        await stores.agents.putAgent(agent(), [input], ctx);
        scribble(input);
        scribble(await stores.agents.getKey("kid-1"));
        scribble(await stores.agents.listKeys());
        scribble(await stores.agents.updateKey("kid-1", { notAfter: 9 }, ctx));

        expect(await stores.agents.getKey("kid-1")).toEqual(agentKey({ notAfter: 9 }));
      });

      it("API keys: changing a result or the input changes nothing stored", async () => {
        const input = apiKey();
        await stores.apiKeys.putApiKey(input, ctx);
        scribble(input);
        scribble(await stores.apiKeys.getApiKey("k1"));
        scribble(await stores.apiKeys.listApiKeys());
        scribble(await stores.apiKeys.revokeApiKey("k1", 5, ctx));

        expect(await stores.apiKeys.getApiKey("k1")).toEqual(apiKey({ revokedAt: 5 }));
      });

      it("replay messages: changing a result changes nothing stored", async () => {
        await stores.replay.admit(admitRequest());
        scribble(await stores.replay.getMessage("alice", "msg-1"));
        scribble(await stores.replay.admit(admitRequest()));
        await stores.replay.complete("alice", "msg-1", structuredClone(outcome));
        scribble(await stores.replay.getMessage("alice", "msg-1"));
        scribble(await stores.replay.admit(admitRequest()));

        expect(await stores.replay.getMessage("alice", "msg-1")).toEqual({
          ...pendingRecord(),
          state: "done",
          outcome,
        });
      });

      it("role assignments: changing a result or the input changes nothing stored", async () => {
        const input = assignment();
        await stores.roles.assignRole(input, ctx);
        scribble(input);
        scribble(await stores.roles.listRoleAssignments());
        scribble(await stores.roles.listRoleAssignments({ principal: "alice" }));

        expect(await stores.roles.listRoleAssignments()).toEqual([assignment()]);
      });
    });

    describe("lifecycle", () => {
      it("answers ping while open", async () => {
        expect(await stores.ping()).toBe(true);
      });

      it("closes: ping turns false, calls reject, and closing again is harmless", async () => {
        await stores.close();
        expect(await stores.ping()).toBe(false);
        await expect(stores.agents.getAgent("alice")).rejects.toThrow();
        await expect(stores.replay.admit(admitRequest())).rejects.toThrow();
        await expect(stores.replay.prune(NOW)).rejects.toThrow();
        await expect(stores.roles.assignRole(assignment(), ctx)).rejects.toThrow();
        await expect(stores.roles.listRoleAssignments()).rejects.toThrow();
        await expect(stores.close()).resolves.toBeUndefined();
      });
    });
  });
}
