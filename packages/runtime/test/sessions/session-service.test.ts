// SessionService alone, on the in-memory store with a scripted audit recorder: a commitment whose
// audit record fails is recorded, and answered, when the resolving message is sent again; the
// commitment is the same document whenever it is made.
import { randomUUID } from "node:crypto";
import {
  Ed25519PrivateKey,
  type JsonValue,
  SignetError,
  isSignetError,
  signEnvelope,
  verifyEnvelope,
  verifySessionCommitment,
} from "@signet/protocol";
import { describe, expect, it } from "vitest";
import type { AuditEventInput, EventRecorder } from "../../src/audit/audit-recorder.js";
import { SessionService } from "../../src/sessions/session-service.js";
import { createMemoryStores } from "../../src/store/memory.js";

const keys = { alice: Ed25519PrivateKey.generate(), bob: Ed25519PrivateKey.generate() };
const runtimeKey = Ed25519PrivateKey.generate();

/** Records into a list; fails the next `failNext` records of the given type with AUDIT_UNAVAILABLE. */
class ScriptedRecorder implements EventRecorder {
  readonly recorded: AuditEventInput[] = [];
  failing = new Map<string, number>();

  record(event: AuditEventInput): Promise<string> {
    const left = this.failing.get(event.type) ?? 0;
    if (left > 0) {
      this.failing.set(event.type, left - 1);
      return Promise.reject(new SignetError("AUDIT_UNAVAILABLE"));
    }
    this.recorded.push(event);
    return Promise.resolve(randomUUID());
  }
}

function verified(from: "alice" | "bob", session: string, verb: string, body: Record<string, JsonValue>) {
  const signed = signEnvelope(
    { type: `session.${verb}`, from, to: `session:${session}`, session, body },
    keys[from],
  );
  return verifyEnvelope(signed.wire, {
    resolveKey: (kid) =>
      kid === keys.alice.kid
        ? { key: keys.alice.publicKey, owner: "alice" }
        : kid === keys.bob.kid
          ? { key: keys.bob.publicKey, owner: "bob" }
          : undefined,
  });
}

async function codeOf(work: Promise<unknown>): Promise<string | undefined> {
  try {
    await work;
    return undefined;
  } catch (error) {
    return isSignetError(error) ? error.code : String(error);
  }
}

describe("SessionService", () => {
  it("records a commitment whose audit write failed when the resolving message is sent again", async () => {
    const stores = createMemoryStores();
    const events = new ScriptedRecorder();
    const service = new SessionService({
      store: stores.sessions,
      events,
      runtimeKey,
      isAgent: (id) => id === "alice" || id === "bob",
    });
    const id = randomUUID();
    await service.start(
      verified("alice", id, "start", { mode: "quorum", participants: ["bob"], config: { k: 1 } }),
    );

    const approve = verified("bob", id, "approve", {});
    events.failing.set("session_committed", 1);
    expect(await codeOf(service.accept(approve))).toBe("AUDIT_UNAVAILABLE");
    // The session did resolve; the audit log has no commitment yet.
    expect((await service.get(id))?.status).toBe("RESOLVED");
    expect(events.recorded.filter((event) => event.type === "session_committed")).toHaveLength(0);

    // The identical message again: answered as the first time, and the commitment recorded.
    const again = await service.accept(approve);
    expect(again.seq).toBe(0);
    expect(again.session.status).toBe("RESOLVED");
    const committed = events.recorded.filter((event) => event.type === "session_committed");
    expect(committed).toHaveLength(1);
    expect(committed[0]!.metadata?.commitment).toEqual(again.commitment);
    verifySessionCommitment(again.commitment!, runtimeKey.publicKey, {
      startHash: (await service.get(id))!.startHash,
      envelopeHashes: [approve.hash],
    });
    // Made again from the stored session, it is the same document.
    expect(service.commitmentOf((await service.get(id))!)).toEqual(again.commitment);

    // Another message (even one identical in content) is refused: the session is closed.
    expect(await codeOf(service.accept(verified("bob", id, "approve", {})))).toBe("SESSION_NOT_OPEN");
    expect(await codeOf(service.accept(verified("alice", id, "approve", {})))).toBe("SESSION_NOT_OPEN");
  });

  it("prunes closed sessions past retention, audits it, and never touches an open one", async () => {
    const stores = createMemoryStores();
    const events = new ScriptedRecorder();
    let now = Date.now();
    const service = new SessionService({
      store: stores.sessions,
      events,
      runtimeKey,
      isAgent: (id) => id === "alice" || id === "bob",
      now: () => now,
    });
    const closed = randomUUID();
    const open = randomUUID();
    await service.start(verified("alice", closed, "start", { mode: "task", participants: ["bob"] }));
    await service.start(
      verified("alice", open, "start", { mode: "task", participants: ["bob"], ttl_ms: 86_400_000 }),
    );
    await service.cancel(closed, "alice", { operator: false });
    const retention = 3_600_000; // an hour: the open session (a day of TTL) is still open
    now += retention - 1;
    expect(await service.prune(retention)).toBe(0);
    now += 2;
    expect(await service.prune(retention)).toBe(1);
    expect(await service.get(closed)).toBeUndefined();
    expect((await service.get(open))?.status).toBe("OPEN");
    const pruned = events.recorded.filter((event) => event.type === "sessions_pruned");
    expect(pruned).toHaveLength(1);
    expect(pruned[0]!.metadata).toMatchObject({ count: 1, retention_ms: retention });
  });
});
