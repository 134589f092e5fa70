// The one contract every storage adapter passes: same calls, same answers, same refusals.
import { isSignetError } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  EventRecord,
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

function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    id: "ev-1",
    ts: 1_000,
    type: "auth.failure",
    actor: "mallory",
    target: "alice",
    outcome: "deny",
    code: "UNAUTHENTICATED",
    details: { reason: "mac", attempts: [1, 2] },
    ...overrides,
  };
}

/**
 * Changes everything reachable from `value` in place: every array grows, every scalar field is
 * overwritten. Records are readonly by type only, which is exactly what this checks.
 */
function scribble(value: unknown): void {
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
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
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

    describe("events", () => {
      it("assigns strictly increasing seq numbers, ignoring any seq given", async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 20; i += 1) {
          seqs.push(await stores.events.appendEvent(event({ id: `ev-${i}`, seq: 7 })));
        }
        for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
        expect((await stores.events.listEvents()).map((e) => e.seq)).toEqual(seqs);
      });

      it("gives concurrent appends distinct seq numbers", async () => {
        const seqs = await Promise.all(
          Array.from({ length: 10 }, (_, i) => stores.events.appendEvent(event({ id: `ev-${i}` }))),
        );
        expect(new Set(seqs).size).toBe(10);
      });

      it("returns events as appended, with their seq", async () => {
        const minimal: EventRecord = {
          id: "ev-min",
          ts: 2_000,
          type: "admin.login",
          outcome: "success",
          details: {},
        };
        const first = await stores.events.appendEvent(event());
        const second = await stores.events.appendEvent(minimal);
        expect(await stores.events.listEvents()).toEqual([
          { ...event(), seq: first },
          { ...minimal, seq: second },
        ]);
      });

      it("refuses an event id recorded before", async () => {
        await stores.events.appendEvent(event());
        await expectCode(stores.events.appendEvent(event({ ts: 2_000 })), "INVALID_REQUEST");
        expect(await stores.events.listEvents()).toHaveLength(1);
      });

      describe("listEvents", () => {
        let seqs: number[];
        const types = ["auth.failure", "agent.deploy", "auth.failure", "key.revoke", "auth.failure"];

        beforeEach(async () => {
          seqs = [];
          for (const [i, type] of types.entries()) {
            seqs.push(await stores.events.appendEvent(event({ id: `ev-${i}`, type, ts: 1_000 + i })));
          }
        });

        const ids = (events: EventRecord[]): string[] => events.map((e) => e.id);

        it("lists every event oldest first by default", async () => {
          expect(ids(await stores.events.listEvents())).toEqual(["ev-0", "ev-1", "ev-2", "ev-3", "ev-4"]);
          expect(ids(await stores.events.listEvents({}))).toEqual(["ev-0", "ev-1", "ev-2", "ev-3", "ev-4"]);
        });

        it("filters by type", async () => {
          expect(ids(await stores.events.listEvents({ type: "auth.failure" }))).toEqual([
            "ev-0",
            "ev-2",
            "ev-4",
          ]);
          expect(await stores.events.listEvents({ type: "nothing.here" })).toEqual([]);
        });

        it("returns only events after afterSeq", async () => {
          expect(ids(await stores.events.listEvents({ afterSeq: seqs[1]! }))).toEqual([
            "ev-2",
            "ev-3",
            "ev-4",
          ]);
          expect(await stores.events.listEvents({ afterSeq: seqs[4]! })).toEqual([]);
        });

        it("limits the count, and a limit of 0 returns nothing", async () => {
          expect(ids(await stores.events.listEvents({ limit: 2 }))).toEqual(["ev-0", "ev-1"]);
          expect(await stores.events.listEvents({ limit: 0 })).toEqual([]);
          expect(await stores.events.listEvents({ limit: 50 })).toHaveLength(5);
        });

        it("lists newest first", async () => {
          expect(ids(await stores.events.listEvents({ newestFirst: true }))).toEqual([
            "ev-4",
            "ev-3",
            "ev-2",
            "ev-1",
            "ev-0",
          ]);
          expect(ids(await stores.events.listEvents({ newestFirst: false, limit: 1 }))).toEqual(["ev-0"]);
        });

        it("combines every filter", async () => {
          const query = { type: "auth.failure", afterSeq: seqs[0]!, limit: 1 };
          expect(ids(await stores.events.listEvents(query))).toEqual(["ev-2"]);
          expect(ids(await stores.events.listEvents({ ...query, newestFirst: true }))).toEqual(["ev-4"]);
        });

        it("pages forward with afterSeq", async () => {
          const seen: string[] = [];
          let cursor = 0;
          for (;;) {
            const page = await stores.events.listEvents({ afterSeq: cursor, limit: 2 });
            if (page.length === 0) break;
            seen.push(...ids(page));
            cursor = page.at(-1)!.seq!;
          }
          expect(seen).toEqual(["ev-0", "ev-1", "ev-2", "ev-3", "ev-4"]);
        });

        it("refuses a negative or fractional limit", async () => {
          await expectCode(stores.events.listEvents({ limit: -1 }), "INVALID_REQUEST");
          await expectCode(stores.events.listEvents({ limit: 1.5 }), "INVALID_REQUEST");
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

      it("events: changing a result or the input changes nothing stored", async () => {
        const input = event();
        const seq = await stores.events.appendEvent(input);
        scribble(input);
        scribble(await stores.events.listEvents());

        expect(await stores.events.listEvents()).toEqual([{ ...event(), seq }]);
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
        await expect(stores.events.appendEvent(event())).rejects.toThrow();
        await expect(stores.close()).resolves.toBeUndefined();
      });
    });
  });
}
