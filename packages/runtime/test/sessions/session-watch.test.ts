// WatchHub on the in-memory session store: watchers that join at any moment — from the head, or
// resuming from an older id while events keep arriving — each get every event after their cursor
// exactly once, in order; visibility and session filters apply; a slow consumer is dropped.
import { describe, expect, it } from "vitest";
import { WatchHub } from "../../src/sessions/session-watch.js";
import type { SessionEventRecord, SessionRecord } from "../../src/sessions/types.js";
import { createMemoryStores } from "../../src/store/memory.js";

const hash = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}` as const;

function session(id: string, participants: string[]): SessionRecord {
  return {
    id,
    mode: "decision",
    initiator: participants[0]!,
    participants,
    status: "OPEN",
    createdAt: 1_000,
    expiresAt: 10_000_000,
    config: {},
    modeState: {},
    startHash: hash(1),
    messageCount: 0,
    historyHash: hash(2),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(condition()).toBe(true);
}

describe("WatchHub", () => {
  it("gives every watcher every event after its cursor exactly once, whenever it joins", async () => {
    const { sessions: store } = createMemoryStores();
    const hub = new WatchHub({ store, pollMs: 5, batchSize: 7 });
    const ids = Array.from({ length: 5 }, (_, i) => `s-${i}-0123456789abcdefghijk`);
    const watchers: { after: number; got: number[] }[] = [];
    const join = (after: number) => {
      const watcher = { after, got: [] as number[] };
      watchers.push(watcher);
      hub.watch({
        after,
        visible: () => true,
        deliver: (events) => {
          watcher.got.push(...events.map((event) => event.id));
          return true;
        },
        onClose: () => undefined,
      });
    };
    let stored = 0;
    for (let round = 0; round < 60; round++) {
      const id = ids[round % ids.length]!;
      if (round < ids.length) {
        await store.create(session(id, ["alice", "bob"]), {
          sessionId: id,
          type: "CREATED",
          at: round,
          data: {},
        });
      } else {
        const current = (await store.get(id))!;
        await store.append(
          {
            sessionId: id,
            seq: current.messageCount,
            messageId: `m-${round}`,
            sender: "alice",
            kind: "vote",
            envelopeHash: hash(100 + round),
            body: {},
            acceptedAt: round,
          },
          { ...current, messageCount: current.messageCount + 1 },
          current.messageCount,
          [{ sessionId: id, type: "MESSAGE_ACCEPTED", at: round, data: { seq: current.messageCount } }],
        );
      }
      stored++;
      if (round % 3 === 0) hub.poke();
      // Join at varied moments: from the head, from the start, from somewhere in between.
      if (round % 7 === 0) join(await hub.head());
      if (round % 11 === 0) join(0);
      if (round % 13 === 5) join(Math.floor(stored / 2));
      if (round % 2 === 0) await tick();
    }
    hub.poke();
    const all = (await store.events(0, 10_000)).map((event) => event.id);
    for (const watcher of watchers) {
      const expected = all.filter((id) => id > watcher.after);
      await until(() => watcher.got.length >= expected.length);
      expect(watcher.got).toEqual(expected);
    }
    hub.close();
  });

  it("filters by visibility and session, and drops a consumer that cannot keep up", async () => {
    const { sessions: store } = createMemoryStores();
    const hub = new WatchHub({ store, pollMs: 5 });
    const seen: SessionEventRecord[] = [];
    const onlyOne: SessionEventRecord[] = [];
    const closed: string[] = [];
    hub.watch({
      after: 0,
      visible: ({ participants }) => participants.includes("carol"),
      deliver: (events) => (seen.push(...events), true),
      onClose: () => undefined,
    });
    hub.watch({
      after: 0,
      sessionId: "b-0123456789abcdefghijkl",
      visible: () => true,
      deliver: (events) => (onlyOne.push(...events), true),
      onClose: () => undefined,
    });
    hub.watch({ after: 0, visible: () => true, deliver: () => false, onClose: (why) => closed.push(why) });
    for (const [id, participants] of [
      ["a-0123456789abcdefghijkl", ["alice", "bob"]],
      ["b-0123456789abcdefghijkl", ["alice", "carol"]],
    ] as const) {
      await store.create(session(id, [...participants]), { sessionId: id, type: "CREATED", at: 1, data: {} });
    }
    hub.poke();
    await until(() => seen.length === 1 && onlyOne.length === 1 && closed.length === 1);
    expect(seen.map((event) => event.sessionId)).toEqual(["b-0123456789abcdefghijkl"]);
    expect(onlyOne.map((event) => event.sessionId)).toEqual(["b-0123456789abcdefghijkl"]);
    expect(closed).toEqual(["slow_consumer"]);
    expect(hub.size).toBe(2);
    hub.close();
    expect(hub.size).toBe(0);
  });
});
