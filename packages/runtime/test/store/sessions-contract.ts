// The session store contract every storage adapter passes: same calls, same answers, same refusals,
// the same atomicity under concurrent appends, and an event stream a reader can resume without ever
// missing or repeating an event.
import { setImmediate as yieldToIo } from "node:timers/promises";
import { type ContentHash, isSignetError } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type {
  SessionEventRecord,
  SessionMessageRecord,
  SessionRecord,
  SessionStore,
} from "../../src/sessions/types.js";
import type { Stores } from "../../src/store/types.js";
import { expectCode, scribble } from "./contract.js";

type NewEvent = Omit<SessionEventRecord, "id">;

/** A session id as initiators choose them: base64url of at least 22 characters. */
const sid = (name: string): string => `${name}-0123456789abcdefghijk`;
const SID = sid("s1");

function hash(n: number): ContentHash {
  return `sha256:${n.toString(16).padStart(64, "0")}`;
}

function session(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: SID,
    mode: "decision",
    initiator: "alice",
    participants: ["alice", "bob", "carol"],
    status: "OPEN",
    createdAt: 1_000,
    expiresAt: 61_000,
    config: { min_approvals: 2, options: ["yes", "no"], nested: { deep: [null, true, 1.5] } },
    modeState: { phase: "proposing", votes: {} },
    messageCount: 0,
    historyHash: hash(0),
    startHash: hash(999),
    ...overrides,
  };
}

function created(record: SessionRecord = session()): NewEvent {
  return {
    sessionId: record.id,
    type: "CREATED",
    at: record.createdAt,
    data: { mode: record.mode, initiator: record.initiator },
  };
}

function message(sessionId: string, seq: number, overrides: Partial<SessionMessageRecord> = {}) {
  return {
    sessionId,
    seq,
    messageId: `msg-${seq}`,
    sender: "bob",
    kind: "vote",
    envelopeHash: hash(1_000 + seq),
    body: { option: "yes", seq, note: null, tags: ["a", "b"] },
    acceptedAt: 2_000 + seq,
    ...overrides,
  } satisfies SessionMessageRecord;
}

/** The session after `accepted`, as a mode machine would compute it from `before`. */
function after(
  before: SessionRecord,
  accepted: SessionMessageRecord,
  overrides: Partial<SessionRecord> = {},
) {
  return {
    ...before,
    modeState: { phase: "voting", votes: accepted.seq + 1 },
    messageCount: accepted.seq + 1,
    historyHash: hash(100 + accepted.seq),
    ...overrides,
  } satisfies SessionRecord;
}

function acceptedEvent(accepted: SessionMessageRecord): NewEvent {
  return {
    sessionId: accepted.sessionId,
    type: "MESSAGE_ACCEPTED",
    at: accepted.acceptedAt,
    data: { seq: accepted.seq, message_id: accepted.messageId, sender: accepted.sender },
  };
}

/** Resolves to what `promise` rejected with, failing when it resolved. */
async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected the call to be refused"),
    (error: unknown) => error,
  );
}

async function expectConflict(promise: Promise<unknown>): Promise<void> {
  const error = await refusal(promise);
  expect(isSignetError(error), `expected a SignetError, got ${String(error)}`).toBe(true);
  expect(error).toMatchObject({
    code: "UNAVAILABLE",
    retryable: true,
    details: { reason: "session_conflict" },
  });
}

export interface SessionContractOptions {
  /**
   * For adapters that keep their data: makes a fresh, empty location (a file, a database) and returns
   * a function opening stores on it, callable again to reopen it or to open a second instance.
   */
  readonly durable?: () => Promise<() => Promise<Stores>>;
}

/**
 * Registers the session store contract for one adapter. `open` must return fresh, empty stores each call.
 *
 * Example: `runSessionStoreContract("memory", () => Promise.resolve(createMemoryStores()));`.
 */
export function runSessionStoreContract(
  name: string,
  open: () => Promise<Stores>,
  options: SessionContractOptions = {},
): void {
  describe(`session store contract: ${name}`, () => {
    let stores: Stores;
    let sessions: SessionStore;

    beforeEach(async () => {
      stores = await open();
      sessions = stores.sessions;
    });

    afterEach(async () => {
      await stores.close();
    });

    /** Everything the store holds about one session, and every event. */
    const state = async (id = SID) => ({
      session: await sessions.get(id),
      messages: await sessions.messages(id),
      events: await sessions.events(0, 1_000),
    });

    /** Accepts the session's next message (seq = its message count), as the runtime would. */
    const acceptNext = async (
      id = SID,
      messageOverrides: Partial<SessionMessageRecord> = {},
      nextOverrides: Partial<SessionRecord> = {},
      extra: readonly NewEvent[] = [],
    ) => {
      const before = (await sessions.get(id))!;
      const accepted = message(id, before.messageCount, messageOverrides);
      const next = after(before, accepted, nextOverrides);
      const events = await sessions.append(accepted, next, before.messageCount, [
        acceptedEvent(accepted),
        ...extra,
      ]);
      return { accepted, next, events };
    };

    const resolution = (at: number): Partial<SessionRecord> => ({
      status: "RESOLVED",
      closedAt: at,
      outcome: { decision: "yes", votes: [1, 2] },
    });

    describe("create, get and list", () => {
      it("knows no session, message or event at first", async () => {
        expect(await sessions.get(SID)).toBeUndefined();
        expect(await sessions.list()).toEqual([]);
        expect(await sessions.messages(SID)).toEqual([]);
        expect(await sessions.expired(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
        expect(await sessions.events(0, 10)).toEqual([]);
        expect(await sessions.lastEventId()).toBe(0);
      });

      it("stores a session with its CREATED event, which gets an id", async () => {
        const event = await sessions.create(session(), created());
        expect(event).toEqual({ ...created(), id: expect.any(Number) as number });
        expect(event.id).toBeGreaterThan(0);
        expect(await sessions.get(SID)).toEqual(session());
        expect(await sessions.list()).toEqual([session()]);
        expect(await sessions.events(0, 10)).toEqual([event]);
        expect(await sessions.lastEventId()).toBe(event.id);
        const other = session({ id: sid("second") });
        const second = await sessions.create(other, created(other));
        expect(await sessions.lastEventId()).toBe(second.id);
      });

      it("leaves absent optional fields absent, and keeps a policy ref and any JSON mode state", async () => {
        await sessions.create(session(), created());
        const got = await sessions.get(SID);
        for (const field of ["closedAt", "policyRef", "outcome", "cancelledBy"]) {
          expect(got !== undefined && field in got, field).toBe(false);
        }

        for (const [i, modeState] of [null, 0, "text", [], [1, [2]], { a: { b: null } }].entries()) {
          const record = session({ id: sid(`json-${i}`), modeState, policyRef: "policies/decision.cedar" });
          await sessions.create(record, created(record));
          expect(await sessions.get(record.id)).toEqual(record);
        }
      });

      it("refuses a taken id with SESSION_ALREADY_EXISTS, and stores nothing of the call", async () => {
        await sessions.create(session(), created());
        const before = await state();
        const other = session({ initiator: "mallory", participants: ["mallory"], mode: "task" });
        await expectCode(sessions.create(other, created(other)), "SESSION_ALREADY_EXISTS");
        expect(await state()).toEqual(before);
        expect(await sessions.list({ participant: "mallory" })).toEqual([]);
      });

      it("lists oldest first, ties in creation order, filtered by status, mode and participant", async () => {
        const records = [
          session({ id: sid("late"), createdAt: 3_000, mode: "task", participants: ["alice", "dave"] }),
          session({ id: sid("early"), createdAt: 1_000 }),
          session({ id: sid("tie-b"), createdAt: 2_000, mode: "quorum", participants: ["bob", "dave"] }),
          session({ id: sid("tie-a"), createdAt: 2_000, initiator: "dave", participants: ["dave", "dave"] }),
        ];
        for (const record of records) await sessions.create(record, created(record));
        // tie-b resolves, late is cancelled: three statuses to filter on.
        await acceptNext(sid("tie-b"), {}, resolution(2_500));
        await sessions.close(
          { ...records[0]!, status: "CANCELLED", closedAt: 3_500, cancelledBy: "alice" },
          { sessionId: sid("late"), type: "CANCELLED", at: 3_500, data: {} },
        );

        const ids = async (query?: Parameters<SessionStore["list"]>[0]) =>
          (await sessions.list(query)).map((s) => s.id);
        expect(await ids()).toEqual([sid("early"), sid("tie-b"), sid("tie-a"), sid("late")]);
        expect(await ids({})).toEqual(await ids());
        expect(await ids({ status: "OPEN" })).toEqual([sid("early"), sid("tie-a")]);
        expect(await ids({ status: "RESOLVED" })).toEqual([sid("tie-b")]);
        expect(await ids({ status: "CANCELLED" })).toEqual([sid("late")]);
        expect(await ids({ status: "EXPIRED" })).toEqual([]);
        expect(await ids({ mode: "decision" })).toEqual([sid("early"), sid("tie-a")]);
        expect(await ids({ mode: "handoff" })).toEqual([]);
        // A participant named twice is listed once.
        expect(await ids({ participant: "dave" })).toEqual([sid("tie-b"), sid("tie-a"), sid("late")]);
        expect(await ids({ participant: "carol" })).toEqual([sid("early")]);
        expect(await ids({ participant: "nobody" })).toEqual([]);
        expect(await ids({ participant: "dave", status: "OPEN" })).toEqual([sid("tie-a")]);
        expect(await ids({ participant: "dave", mode: "task" })).toEqual([sid("late")]);
        expect(await ids({ participant: "dave", mode: "quorum", status: "RESOLVED" })).toEqual([
          sid("tie-b"),
        ]);
        expect(await ids({ status: "OPEN", mode: "decision" })).toEqual([sid("early"), sid("tie-a")]);
        expect(await ids({ limit: 2 })).toEqual([sid("early"), sid("tie-b")]);
        expect(await ids({ participant: "dave", limit: 1 })).toEqual([sid("tie-b")]);
        expect(await ids({ limit: 0 })).toEqual([]);
        // Paging: after a session's id, the rest in the same order, with the same filters.
        expect(await ids({ after: sid("early") })).toEqual([sid("tie-b"), sid("tie-a"), sid("late")]);
        expect(await ids({ after: sid("tie-b"), limit: 1 })).toEqual([sid("tie-a")]);
        expect(await ids({ after: sid("late") })).toEqual([]);
        expect(await ids({ after: sid("early"), participant: "dave" })).toEqual([
          sid("tie-b"),
          sid("tie-a"),
          sid("late"),
        ]);
        expect(await ids({ after: sid("tie-b"), status: "OPEN" })).toEqual([sid("tie-a")]);
        const pages: string[] = [];
        for (let cursor: string | undefined; ;) {
          const next = await ids({ limit: 1, ...(cursor === undefined ? {} : { after: cursor }) });
          if (next.length === 0) break;
          pages.push(...next);
          cursor = next[0];
        }
        expect(pages).toEqual(await ids());
        await expectCode(sessions.list({ after: sid("never") }), "INVALID_REQUEST");
        // The whole record, as stored after its changes.
        expect((await sessions.list({ status: "RESOLVED" }))[0]).toEqual(await sessions.get(sid("tie-b")));
      });
    });

    describe("append", () => {
      beforeEach(async () => {
        await sessions.create(session(), created());
      });

      it("stores the message and the session after it, and returns its events with ids", async () => {
        const [createdEvent] = await sessions.events(0, 10);
        const { accepted, next, events } = await acceptNext();
        expect(events).toEqual([{ ...acceptedEvent(accepted), id: expect.any(Number) as number }]);
        expect(events[0]!.id).toBeGreaterThan(createdEvent!.id);
        expect(await sessions.get(SID)).toEqual(next);
        expect(await sessions.messages(SID)).toEqual([accepted]);
        expect(await sessions.events(0, 10)).toEqual([createdEvent, ...events]);

        const second = await acceptNext(SID, { sender: "carol", body: [1, "two", null] });
        expect(await sessions.get(SID)).toEqual(second.next);
        expect(await sessions.messages(SID)).toEqual([accepted, second.accepted]);
        expect(second.events[0]!.id).toBeGreaterThan(events[0]!.id);
      });

      it("resolves the session with the message that decides it: MESSAGE_ACCEPTED then RESOLVED", async () => {
        const resolved: NewEvent = { sessionId: SID, type: "RESOLVED", at: 2_000, data: { decision: "yes" } };
        const { next, events } = await acceptNext(SID, {}, resolution(2_000), [resolved]);
        expect(events.map((e) => e.type)).toEqual(["MESSAGE_ACCEPTED", "RESOLVED"]);
        expect(events[1]).toEqual({ ...resolved, id: expect.any(Number) as number });
        expect(events[1]!.id).toBeGreaterThan(events[0]!.id);
        expect(await sessions.get(SID)).toEqual(next);
        expect(next).toMatchObject({ status: "RESOLVED", closedAt: 2_000 });
      });

      it("stores an outcome of JSON null as null, not as absent", async () => {
        await acceptNext(SID, {}, { status: "RESOLVED", closedAt: 2_000, outcome: null });
        const got = await sessions.get(SID);
        expect(got !== undefined && "outcome" in got && got.outcome === null).toBe(true);
      });

      it("keeps the fields fixed at creation, whatever the next record says", async () => {
        const { accepted } = await acceptNext(
          SID,
          {},
          {
            mode: "task",
            initiator: "mallory",
            participants: ["mallory"],
            createdAt: 9,
            config: { changed: true },
            policyRef: "other",
          },
        );
        expect(await sessions.get(SID)).toEqual(after(session(), accepted));
        expect(await sessions.list({ participant: "mallory" })).toEqual([]);
        expect(await sessions.list({ participant: "bob" })).toHaveLength(1);
      });

      it("refuses an unknown session with SESSION_NOT_FOUND", async () => {
        const stray = message(sid("ghost"), 0);
        await expectCode(
          sessions.append(stray, after(session({ id: sid("ghost") }), stray), 0, [acceptedEvent(stray)]),
          "SESSION_NOT_FOUND",
        );
        expect(await sessions.messages(sid("ghost"))).toEqual([]);
        expect(await sessions.events(0, 10)).toHaveLength(1);
      });

      it("refuses with SESSION_NOT_OPEN once the session is closed or resolved, storing nothing", async () => {
        await sessions.close(
          { ...session(), status: "CANCELLED", closedAt: 1_500, cancelledBy: "alice" },
          { sessionId: SID, type: "CANCELLED", at: 1_500, data: { by: "alice" } },
        );
        const before = await state();
        const late = message(SID, 0);
        await expectCode(
          sessions.append(late, after(session(), late), 0, [acceptedEvent(late)]),
          "SESSION_NOT_OPEN",
        );
        expect(await state()).toEqual(before);

        const other = session({ id: sid("s2") });
        await sessions.create(other, created(other));
        await acceptNext(other.id, {}, resolution(2_000));
        const resolved = await state(other.id);
        const extra = message(other.id, 1, { messageId: "msg-extra" });
        await expectCode(
          sessions.append(extra, after(resolved.session!, extra), 1, [acceptedEvent(extra)]),
          "SESSION_NOT_OPEN",
        );
        expect(await state(other.id)).toEqual(resolved);
      });

      it("refuses a stale expectedCount as a retryable session_conflict, storing nothing", async () => {
        const first = message(SID, 0);
        await sessions.append(first, after(session(), first), 0, [acceptedEvent(first)]);
        const before = await state();

        // Computed from the session as it was before `first`: another message got in.
        const rival = message(SID, 0, { messageId: "msg-rival", sender: "carol" });
        await expectConflict(sessions.append(rival, after(session(), rival), 0, [acceptedEvent(rival)]));
        // A count from the future is no better.
        const ahead = message(SID, 5, { messageId: "msg-ahead" });
        await expectConflict(
          sessions.append(ahead, after(before.session!, ahead), 5, [acceptedEvent(ahead)]),
        );
        expect(await state()).toEqual(before);
      });

      it("refuses a message id used before in the session with DUPLICATE_MESSAGE, storing nothing", async () => {
        await acceptNext();
        const before = await state();
        const again = message(SID, 1, { messageId: "msg-0", body: { other: true } });
        await expectCode(
          sessions.append(again, after(before.session!, again), 1, [acceptedEvent(again)]),
          "DUPLICATE_MESSAGE",
        );
        expect(await state()).toEqual(before);

        // Message ids are per session: another session may use the same one.
        const other = session({ id: sid("s2") });
        await sessions.create(other, created(other));
        await acceptNext(other.id, { messageId: "msg-0" });
        expect((await sessions.messages(other.id)).map((m) => m.messageId)).toEqual(["msg-0"]);
      });

      it("refuses an inconsistent call with INVALID_REQUEST, storing nothing", async () => {
        const before = await state();
        const good = message(SID, 0);
        const next = after(session(), good);
        const calls: [SessionMessageRecord, SessionRecord, number, NewEvent[]][] = [
          // seq must be the expected count, and the session after it count one more.
          [message(SID, 1), after(session(), message(SID, 0)), 0, [acceptedEvent(good)]],
          [good, { ...next, messageCount: 2 }, 0, [acceptedEvent(good)]],
          // The message and every event belong to the session being appended to.
          [message(sid("s2"), 0), next, 0, [acceptedEvent(good)]],
          [good, next, 0, [acceptedEvent(good), { ...acceptedEvent(good), sessionId: sid("s2") }]],
          [good, next, -1, [acceptedEvent(good)]],
          [good, next, 0.5, [acceptedEvent(good)]],
          // closedAt is present exactly when the session is no longer OPEN.
          [good, { ...next, status: "RESOLVED" }, 0, [acceptedEvent(good)]],
          [good, { ...next, closedAt: 5 }, 0, [acceptedEvent(good)]],
          [good, next, 0, [{ ...acceptedEvent(good), data: [] as unknown as NewEvent["data"] }]],
        ];
        for (const [accepted, nextRecord, expected, events] of calls) {
          await expectCode(sessions.append(accepted, nextRecord, expected, events), "INVALID_REQUEST");
        }
        expect(await state()).toEqual(before);
      });
    });

    describe("close", () => {
      beforeEach(async () => {
        await sessions.create(session(), created());
      });

      const cancel = (record: SessionRecord = session(), at = 1_500) =>
        sessions.close(
          { ...record, status: "CANCELLED", closedAt: at, cancelledBy: "alice" },
          { sessionId: record.id, type: "CANCELLED", at, data: { by: "alice" } },
        );

      it("closes an OPEN session once: its event, then undefined and no event", async () => {
        const event = await cancel();
        expect(event).toEqual({
          id: expect.any(Number) as number,
          sessionId: SID,
          type: "CANCELLED",
          at: 1_500,
          data: { by: "alice" },
        });
        expect(await sessions.get(SID)).toEqual({
          ...session(),
          status: "CANCELLED",
          closedAt: 1_500,
          cancelledBy: "alice",
        });
        const before = await state();
        expect(await cancel(session(), 1_600)).toBeUndefined();
        expect(
          await sessions.close(
            { ...session(), status: "EXPIRED", closedAt: 1_700 },
            { sessionId: SID, type: "EXPIRED", at: 1_700, data: {} },
          ),
        ).toBeUndefined();
        expect(await state()).toEqual(before);
      });

      it("does not close a resolved or unknown session", async () => {
        await acceptNext(SID, {}, resolution(2_000));
        const before = await state();
        expect(await cancel()).toBeUndefined();
        expect(await state()).toEqual(before);
        expect(await cancel(session({ id: sid("ghost") }))).toBeUndefined();
        expect(await sessions.get(sid("ghost"))).toBeUndefined();
        expect(await sessions.events(0, 10)).toEqual(before.events);
      });

      it("never undoes an accepted message, even when the closing record predates it", async () => {
        const { next } = await acceptNext();
        // Read before the append: message count 0, the old mode state and history hash.
        await cancel(session(), 3_000);
        expect(await sessions.get(SID)).toEqual({
          ...next,
          status: "CANCELLED",
          closedAt: 3_000,
          cancelledBy: "alice",
        });
      });

      it("stores an expiry's outcome", async () => {
        const event = await sessions.close(
          { ...session(), status: "EXPIRED", closedAt: 61_000, outcome: { reason: "deadline" } },
          { sessionId: SID, type: "EXPIRED", at: 61_000, data: { votes: 0 } },
        );
        expect(event?.type).toBe("EXPIRED");
        expect(await sessions.get(SID)).toMatchObject({
          status: "EXPIRED",
          closedAt: 61_000,
          outcome: { reason: "deadline" },
        });
      });

      it("refuses a close that leaves the session OPEN, or an event of another session", async () => {
        const before = await state();
        await expectCode(
          sessions.close(session(), { sessionId: SID, type: "CANCELLED", at: 1, data: {} }),
          "INVALID_REQUEST",
        );
        await expectCode(
          sessions.close(
            { ...session(), status: "CANCELLED", closedAt: 1 },
            { sessionId: sid("s2"), type: "CANCELLED", at: 1, data: {} },
          ),
          "INVALID_REQUEST",
        );
        expect(await state()).toEqual(before);
      });
    });

    describe("expired", () => {
      it("returns the OPEN sessions due at or before now, soonest first, ties in creation order", async () => {
        const records = [
          session({ id: sid("due-20"), expiresAt: 20_000 }),
          session({ id: sid("due-10b"), expiresAt: 10_000 }),
          session({ id: sid("due-5"), expiresAt: 5_000 }),
          session({ id: sid("due-10a"), expiresAt: 10_000, createdAt: 2_000 }),
          session({ id: sid("closed"), expiresAt: 1_000 }),
          session({ id: sid("resolved"), expiresAt: 1_000 }),
        ];
        for (const record of records) await sessions.create(record, created(record));
        await sessions.close(
          { ...records[4]!, status: "CANCELLED", closedAt: 1_000 },
          { sessionId: records[4]!.id, type: "CANCELLED", at: 1_000, data: {} },
        );
        await acceptNext(sid("resolved"), {}, resolution(1_000));

        const ids = async (now: number, limit = 100) => (await sessions.expired(now, limit)).map((s) => s.id);
        expect(await ids(4_999)).toEqual([]);
        expect(await ids(5_000)).toEqual([sid("due-5")]);
        expect(await ids(10_000)).toEqual([sid("due-5"), sid("due-10b"), sid("due-10a")]);
        expect(await ids(10_000, 2)).toEqual([sid("due-5"), sid("due-10b")]);
        expect(await ids(Number.MAX_SAFE_INTEGER)).toEqual([
          sid("due-5"),
          sid("due-10b"),
          sid("due-10a"),
          sid("due-20"),
        ]);
        expect(await sessions.expired(5_000, 1)).toEqual([records[2]]);
        expect(await ids(10_000, 0)).toEqual([]);
      });

      it("refuses a clock or limit that is not a non-negative integer", async () => {
        await expectCode(sessions.expired(Number.NaN, 10), "INVALID_REQUEST");
        await expectCode(sessions.expired(1.5, 10), "INVALID_REQUEST");
        await expectCode(sessions.expired(1_000, -1), "INVALID_REQUEST");
        await expectCode(sessions.list({ limit: 1.5 }), "INVALID_REQUEST");
        await expectCode(sessions.events(-1, 10), "INVALID_REQUEST");
        await expectCode(sessions.events(0, Number.NaN), "INVALID_REQUEST");
      });
    });

    describe("prune", () => {
      it("deletes closed sessions that closed before the cutoff, oldest first, with all they held", async () => {
        const open = session({ id: sid("open"), participants: ["alice", "bob"] });
        const old = session({ id: sid("old"), participants: ["alice", "bob"] });
        const older = session({ id: sid("older"), participants: ["alice", "carol"] });
        const recent = session({ id: sid("recent"), participants: ["alice", "bob"] });
        for (const record of [open, old, older, recent]) await sessions.create(record, created(record));
        await acceptNext(old.id);
        await acceptNext(old.id, {}, resolution(5_000));
        await sessions.close(
          { ...older, status: "EXPIRED", closedAt: 4_000 },
          { sessionId: older.id, type: "EXPIRED", at: 4_000, data: {} },
        );
        await sessions.close(
          { ...recent, status: "CANCELLED", closedAt: 9_000 },
          { sessionId: recent.id, type: "CANCELLED", at: 9_000, data: {} },
        );

        // One at a time: the one closed longest ago goes first.
        expect(await sessions.prune(6_000, 1)).toBe(1);
        expect(await sessions.get(older.id)).toBeUndefined();
        expect(await sessions.get(old.id)).toBeDefined();
        expect(await sessions.prune(6_000, 10)).toBe(1);
        expect(await sessions.prune(6_000, 10)).toBe(0);

        for (const gone of [old.id, older.id]) {
          expect(await sessions.get(gone)).toBeUndefined();
          expect(await sessions.messages(gone)).toEqual([]);
        }
        const left = await sessions.events(0, 1000);
        expect(new Set(left.map((event) => event.sessionId))).toEqual(new Set([open.id, recent.id]));
        expect((await sessions.list({ participant: "carol" })).map((s) => s.id)).toEqual([]);
        expect((await sessions.list({ participant: "bob" })).map((s) => s.id)).toEqual([open.id, recent.id]);
        // An OPEN session is never pruned, however old.
        expect(await sessions.prune(Number.MAX_SAFE_INTEGER, 10)).toBe(1);
        expect((await sessions.list()).map((s) => s.id)).toEqual([open.id]);
        // A pruned id is free again.
        await sessions.create(old, created(old));
        expect((await sessions.get(old.id))?.messageCount).toBe(0);
      });

      it("refuses a cutoff or limit that is not a non-negative integer", async () => {
        await expectCode(sessions.prune(Number.NaN, 10), "INVALID_REQUEST");
        await expectCode(sessions.prune(1_000, -1), "INVALID_REQUEST");
      });
    });

    describe("events", () => {
      /** Appends to three sessions in turn, so their events interleave. */
      const interleave = async (): Promise<SessionEventRecord[]> => {
        const ids = [sid("a"), sid("b"), sid("c")];
        for (const id of ids) {
          const record = session({ id });
          await sessions.create(record, created(record));
        }
        for (let round = 0; round < 3; round += 1) {
          for (const id of ids) await acceptNext(id);
        }
        await sessions.close(
          { ...(await sessions.get(sid("b")))!, status: "CANCELLED", closedAt: 9_000 },
          { sessionId: sid("b"), type: "CANCELLED", at: 9_000, data: {} },
        );
        return sessions.events(0, 1_000);
      };

      it("orders every event of every session by strictly increasing id", async () => {
        const all = await interleave();
        expect(all).toHaveLength(3 + 9 + 1);
        for (let i = 1; i < all.length; i += 1) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
        expect(all.slice(0, 6).map((e) => [e.sessionId, e.type])).toEqual([
          [sid("a"), "CREATED"],
          [sid("b"), "CREATED"],
          [sid("c"), "CREATED"],
          [sid("a"), "MESSAGE_ACCEPTED"],
          [sid("b"), "MESSAGE_ACCEPTED"],
          [sid("c"), "MESSAGE_ACCEPTED"],
        ]);
        expect(all.at(-1)).toMatchObject({ sessionId: sid("b"), type: "CANCELLED" });
      });

      it("resumes exactly after the cursor: pages join up with no gap and no repeat", async () => {
        const all = await interleave();
        for (const size of [1, 2, 5]) {
          const read: SessionEventRecord[] = [];
          let cursor = 0;
          for (;;) {
            const page = await sessions.events(cursor, size);
            if (page.length === 0) break;
            expect(page.length).toBeLessThanOrEqual(size);
            read.push(...page);
            cursor = page.at(-1)!.id;
          }
          expect(read).toEqual(all);
        }
        for (const [i, event] of all.entries()) {
          expect(await sessions.events(event.id, 1)).toEqual(all.slice(i + 1, i + 2));
        }
        expect(await sessions.events(all.at(-1)!.id, 10)).toEqual([]);
        expect(await sessions.events(all.at(-1)!.id + 1_000, 10)).toEqual([]);
        expect(await sessions.events(0, 0)).toEqual([]);
      });

      it("events returned by a change are the ones the stream gives", async () => {
        const record = session({ id: sid("x") });
        const first = await sessions.create(record, created(record));
        const { events } = await acceptNext(record.id);
        expect(await sessions.events(0, 10)).toEqual([first, ...events]);
      });
    });

    describe("concurrency", () => {
      beforeEach(async () => {
        await sessions.create(session(), created());
      });

      it("lets exactly one of many appends at the same count win; the rest conflict", async () => {
        const rivals = Array.from({ length: 10 }, (_, i) =>
          message(SID, 0, { messageId: `rival-${i}`, sender: `agent-${i}` }),
        );
        const results = await Promise.allSettled(
          rivals.map((rival) => sessions.append(rival, after(session(), rival), 0, [acceptedEvent(rival)])),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const result of results) {
          if (result.status === "rejected") {
            expect(result.reason).toMatchObject({
              code: "UNAVAILABLE",
              details: { reason: "session_conflict" },
            });
          }
        }
        const stored = await sessions.messages(SID);
        expect(stored).toHaveLength(1);
        expect((await sessions.get(SID))?.messageCount).toBe(1);
        expect((await sessions.events(0, 100)).map((e) => e.type)).toEqual(["CREATED", "MESSAGE_ACCEPTED"]);
        expect((await sessions.events(0, 100))[1]?.data).toMatchObject({ message_id: stored[0]!.messageId });
      });

      it("closes once however many close at the same time, and creates an id once", async () => {
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            sessions.close(
              { ...session(), status: "CANCELLED", closedAt: 1_500 + i, cancelledBy: `agent-${i}` },
              { sessionId: SID, type: "CANCELLED", at: 1_500 + i, data: {} },
            ),
          ),
        );
        expect(results.filter((r) => r !== undefined)).toHaveLength(1);
        expect(await sessions.events(0, 100)).toHaveLength(2);

        const record = session({ id: sid("new") });
        const creates = await Promise.allSettled(
          Array.from({ length: 5 }, () => sessions.create(record, created(record))),
        );
        expect(creates.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const result of creates) {
          if (result.status === "rejected")
            expect(result.reason).toMatchObject({ code: "SESSION_ALREADY_EXISTS" });
        }
      });

      it("a reader polling while several sessions append never misses or repeats an event", async () => {
        const ids = Array.from({ length: 6 }, (_, i) => sid(`w${i}`));
        for (const id of ids) {
          const record = session({ id });
          await sessions.create(record, created(record));
        }
        const seen = await pollWhile(sessions, async () => {
          await Promise.all(
            ids.map(async (id) => {
              for (let n = 0; n < 8; n += 1) await acceptNext(id);
            }),
          );
        });
        expect(seen).toEqual(await sessions.events(0, 10_000));
        expect(seen).toHaveLength(1 + 6 + 6 * 8);
      });
    });

    describe("returned records are copies", () => {
      it("changing an input or a result changes nothing stored", async () => {
        const input = session();
        const createdInput = created();
        scribble(await sessions.create(input, createdInput));
        scribble(input);
        scribble(createdInput);
        const accepted = message(SID, 0);
        const next = after(session(), accepted);
        const events = [acceptedEvent(accepted)];
        scribble(await sessions.append(accepted, next, 0, events));
        scribble(accepted);
        scribble(next);
        scribble(events);
        scribble(await sessions.get(SID));
        scribble(await sessions.list());
        scribble(await sessions.messages(SID));
        scribble(await sessions.events(0, 10));
        scribble(await sessions.expired(Number.MAX_SAFE_INTEGER, 10));

        expect(await sessions.get(SID)).toEqual(after(session(), message(SID, 0)));
        expect(await sessions.messages(SID)).toEqual([message(SID, 0)]);
        expect((await sessions.events(0, 10)).map(({ id: _id, ...event }) => event)).toEqual([
          created(),
          acceptedEvent(message(SID, 0)),
        ]);
      });
    });

    it("rejects every call once the stores are closed", async () => {
      await stores.close();
      await expect(sessions.create(session(), created())).rejects.toThrow();
      await expect(sessions.get(SID)).rejects.toThrow();
      await expect(sessions.list()).rejects.toThrow();
      await expect(sessions.events(0, 10)).rejects.toThrow();
      await expect(sessions.expired(0, 10)).rejects.toThrow();
    });

    const { durable } = options;
    if (durable !== undefined) {
      describe("durability", () => {
        const opened: Stores[] = [];
        afterEach(async () => {
          for (const handle of opened.splice(0)) await handle.close();
        });

        it("keeps sessions, messages and events across close and reopen, and goes on from there", async () => {
          const location = await durable();
          const first = await location();
          opened.push(first);
          const other = session({ id: sid("other") });
          await first.sessions.create(session(), created());
          await first.sessions.create(other, created(other));
          const accepted = message(SID, 0);
          await first.sessions.append(accepted, after(session(), accepted), 0, [acceptedEvent(accepted)]);
          await first.sessions.close(
            { ...other, status: "CANCELLED", closedAt: 1_500, cancelledBy: "alice" },
            { sessionId: other.id, type: "CANCELLED", at: 1_500, data: {} },
          );
          const before = {
            sessions: await first.sessions.list(),
            messages: await first.sessions.messages(SID),
            events: await first.sessions.events(0, 100),
          };
          await first.close();

          const second = await location();
          opened.push(second);
          expect({
            sessions: await second.sessions.list(),
            messages: await second.sessions.messages(SID),
            events: await second.sessions.events(0, 100),
          }).toEqual(before);
          expect(await second.sessions.expired(Number.MAX_SAFE_INTEGER, 10)).toEqual([
            after(session(), accepted),
          ]);

          // The count, the message ids and the event ids carry on where they were.
          const again = message(SID, 1, { messageId: "msg-0" });
          await expectCode(
            second.sessions.append(again, after(after(session(), accepted), again), 1, [
              acceptedEvent(again),
            ]),
            "DUPLICATE_MESSAGE",
          );
          const stale = message(SID, 0, { messageId: "msg-stale" });
          await expectConflict(
            second.sessions.append(stale, after(session(), stale), 0, [acceptedEvent(stale)]),
          );
          const following = message(SID, 1);
          const [event] = await second.sessions.append(
            following,
            after(after(session(), accepted), following),
            1,
            [acceptedEvent(following)],
          );
          expect(event!.id).toBeGreaterThan(before.events.at(-1)!.id);
          await expectCode(second.sessions.create(other, created(other)), "SESSION_ALREADY_EXISTS");
        });

        it("two instances on one location: one append wins, and a reader misses no event", async () => {
          const location = await durable();
          const one = await location();
          opened.push(one);
          const two = await location();
          opened.push(two);
          const instances = [one, two];

          await one.sessions.create(session(), created());
          const rivals = Array.from({ length: 10 }, (_, i) => message(SID, 0, { messageId: `rival-${i}` }));
          const results = await Promise.allSettled(
            rivals.map((rival, i) =>
              instances[i % 2]!.sessions.append(rival, after(session(), rival), 0, [acceptedEvent(rival)]),
            ),
          );
          expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
          expect(await two.sessions.messages(SID)).toHaveLength(1);

          const ids = Array.from({ length: 8 }, (_, i) => sid(`m${i}`));
          const seen = await pollWhile(one.sessions, async () => {
            await Promise.all(
              ids.map(async (id, i) => {
                const writer = instances[i % 2]!.sessions;
                const record = session({ id });
                await writer.create(record, created(record));
                let current = record;
                for (let n = 0; n < 10; n += 1) {
                  const accepted = message(id, n);
                  current = after(current, accepted);
                  await writer.append(accepted, current, n, [acceptedEvent(accepted)]);
                }
              }),
            );
          });
          const all = await two.sessions.events(0, 10_000);
          expect(all).toHaveLength(2 + 8 * 11);
          expect(seen).toEqual(all);
        });
      });
    }
  });
}

/**
 * Reads the event stream the way a watcher does (from the last id seen, a small page at a time) while
 * `write` runs, then drains it. Fails on an id that does not increase; returns every event it read.
 */
async function pollWhile(sessions: SessionStore, write: () => Promise<void>): Promise<SessionEventRecord[]> {
  const seen: SessionEventRecord[] = [];
  let cursor = 0;
  let writing = true;
  const read = async (): Promise<number> => {
    const page = await sessions.events(cursor, 7);
    for (const event of page) {
      expect(event.id).toBeGreaterThan(cursor);
      seen.push(event);
      cursor = event.id;
    }
    return page.length;
  };
  const reader = (async () => {
    while (writing) {
      if ((await read()) === 0) await yieldToIo();
    }
  })();
  try {
    await write();
  } finally {
    writing = false;
    await reader;
  }
  while ((await read()) > 0);
  return seen;
}
