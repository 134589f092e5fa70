// The event recorder's group commit: batching, durability before resolve, failures, order and shutdown.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { type EventInput, createEventRecorder } from "../../src/audit/event-recorder.js";
import { createMemoryStores } from "../../src/store/memory.js";
import { openSqliteStores } from "../../src/store/sqlite.js";
import type { EventRecord, EventStore } from "../../src/store/types.js";

const input = (n: number): EventInput => ({ type: "test", outcome: "success", details: { n } });

/** Lets a macrotask pass: whatever the recorder scheduled with setImmediate has run by then. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Gate {
  readonly opened: Promise<void>;
  open(): void;
  fail(error: unknown): void;
}

function gate(): Gate {
  let open!: () => void;
  let fail!: (error: unknown) => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { opened, open, fail };
}

/**
 * An EventStore over the in-memory adapter that records every appendEvents call, can hold a call until
 * its gate opens (or fail it), and counts how many calls are in flight at once.
 */
class SpyStore implements EventStore {
  readonly inner = createMemoryStores().events;
  readonly batches: EventRecord[][] = [];
  /** Event ids the inner store has committed, in commit order, updated the moment each commit lands. */
  readonly committed: string[] = [];
  readonly gates: Gate[] = [];
  holdCalls = false;
  inFlight = 0;
  maxInFlight = 0;

  appendEvent(event: EventRecord): Promise<number> {
    return this.inner.appendEvent(event);
  }

  async appendEvents(events: readonly EventRecord[]): Promise<number[]> {
    this.batches.push([...events]);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.holdCalls) {
        const held = gate();
        this.gates.push(held);
        await held.opened;
      }
      const seqs = await this.inner.appendEvents(events);
      this.committed.push(...events.map((event) => event.id));
      return seqs;
    } finally {
      this.inFlight -= 1;
    }
  }

  listEvents(): Promise<EventRecord[]> {
    return this.inner.listEvents();
  }
}

describe("createEventRecorder: group commit", () => {
  it("writes events recorded in the same turn in one appendEvents call", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store);
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => recorder.record(input(i))));

    expect(store.batches).toHaveLength(1);
    expect(store.batches[0]!.map((event) => event.id)).toEqual(ids);
    expect(new Set(ids).size).toBe(10);
    expect((await store.listEvents()).map((event) => event.details.n)).toEqual([...Array(10).keys()]);
  });

  it("fills in id, time and empty details", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store, () => 1_234);
    const id = await recorder.record({ type: "key_revoked", actor: "admin", outcome: "success" });
    expect(await store.listEvents()).toEqual([
      { seq: 1, id, ts: 1_234, type: "key_revoked", actor: "admin", outcome: "success", details: {} },
    ]);
  });

  it("waits for the next macrotask, not for more events, before writing", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store);
    const recorded = recorder.record(input(0));
    await Promise.resolve();
    expect(store.batches).toHaveLength(0);
    await nextTurn();
    expect(store.batches).toHaveLength(1);
    await recorded;
  });

  it("writes at once, without waiting for the next turn, when the queue reaches maxBatchSize", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store, Date.now, { maxBatchSize: 3 });
    const recorded = [recorder.record(input(0)), recorder.record(input(1))];
    await Promise.resolve();
    expect(store.batches).toHaveLength(0);
    recorded.push(recorder.record(input(2)));
    await Promise.resolve();
    expect(store.batches.map((batch) => batch.length)).toEqual([3]);
    await Promise.all(recorded);
  });

  it("resolves a record only after the batch holding it is committed", async () => {
    const store = new SpyStore();
    store.holdCalls = true;
    const recorder = createEventRecorder(store);
    const settled: string[] = [];
    const recorded = [0, 1].map((n) =>
      recorder.record(input(n)).then((id) => {
        // Durable before resolve: by the time the caller hears of its id, the store holds it.
        expect(store.committed).toContain(id);
        settled.push(id);
        return id;
      }),
    );
    await nextTurn();
    expect(store.gates).toHaveLength(1);
    await nextTurn();
    expect(settled).toEqual([]);

    store.gates[0]!.open();
    expect(await Promise.all(recorded)).toEqual(settled);
    expect(settled).toHaveLength(2);
  });

  it("queues events recorded while a batch is being written for the next batch, one batch at a time", async () => {
    const store = new SpyStore();
    store.holdCalls = true;
    const recorder = createEventRecorder(store);
    const first = recorder.record(input(0));
    await nextTurn();
    const later = [1, 2, 3].map((n) => recorder.record(input(n)));
    await nextTurn();
    // The first batch is still being written: nothing else has started.
    expect(store.batches.map((batch) => batch.length)).toEqual([1]);

    store.gates[0]!.open();
    await first;
    await nextTurn();
    expect(store.batches.map((batch) => batch.length)).toEqual([1, 3]);
    store.gates[1]!.open();
    await Promise.all(later);
    expect(store.maxInFlight).toBe(1);
  });

  it("rejects every record of a failed batch with the store's error, and nothing else", async () => {
    const store = new SpyStore();
    store.holdCalls = true;
    const recorder = createEventRecorder(store);
    const doomed = [0, 1, 2].map((n) => recorder.record(input(n)));
    const outcomes = Promise.allSettled(doomed);
    await nextTurn();
    const later = recorder.record(input(3));
    const failure = new Error("disk full");
    store.gates[0]!.fail(failure);

    for (const outcome of await outcomes) expect(outcome).toEqual({ status: "rejected", reason: failure });
    await nextTurn();
    store.gates[1]!.open();
    // The failed batch does not stall the queue, and stored nothing.
    const id = await later;
    expect((await store.listEvents()).map((event) => event.id)).toEqual([id]);
  });

  it("rejects every record when the store answers with the wrong number of seq numbers", async () => {
    const inner = createMemoryStores().events;
    const broken: EventStore = {
      ...inner,
      appendEvents: async (events) => (await inner.appendEvents(events)).slice(1),
    };
    const recorder = createEventRecorder(broken);
    const results = await Promise.allSettled([recorder.record(input(0)), recorder.record(input(1))]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  });

  it("keeps recording order in seq order across many batches", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store, Date.now, { maxBatchSize: 64 });
    const ids: Promise<string>[] = [];
    for (let n = 0; n < 300; n += 1) {
      ids.push(recorder.record(input(n)));
      // Spread over several turns, so batches form from both the size limit and the next macrotask.
      if (n % 70 === 0) await nextTurn();
    }
    const recorded = await Promise.all(ids);
    const stored = await store.listEvents();
    expect(stored.map((event) => event.id)).toEqual(recorded);
    expect(stored.map((event) => event.details.n)).toEqual([...Array(300).keys()]);
    expect(Math.max(...store.batches.map((batch) => batch.length))).toBeLessThanOrEqual(64);
    expect(store.batches.length).toBeGreaterThan(4);
    expect(store.maxInFlight).toBe(1);
  });

  it("writes an event recorded from the continuation of another's record", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store);
    // Recorded in the microtasks right after the first batch commits, when its drain is just ending.
    const chained = recorder.record(input(0)).then(() => recorder.record(input(1)));
    const second = await chained;
    expect(store.committed.at(-1)).toBe(second);
    expect(store.batches).toHaveLength(2);
  });

  it("refuses a maxBatchSize that is not a positive integer", () => {
    const store = new SpyStore();
    for (const maxBatchSize of [0, -1, 1.5, Number.NaN]) {
      expect(() => createEventRecorder(store, Date.now, { maxBatchSize })).toThrow(TypeError);
    }
  });

  it("turns a failing clock into a rejection", async () => {
    const recorder = createEventRecorder(new SpyStore(), () => {
      throw new Error("no clock");
    });
    await expect(recorder.record(input(0))).rejects.toThrow("no clock");
  });
});

describe("createEventRecorder: flush and close", () => {
  it("flush writes the queue now and resolves once it is committed", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store);
    const recorded = [recorder.record(input(0)), recorder.record(input(1))];
    await recorder.flush();
    expect(store.committed).toHaveLength(2);
    await Promise.all(recorded);
    await expect(recorder.flush()).resolves.toBeUndefined();
  });

  it("flush waits for a batch already being written, and never rejects", async () => {
    const store = new SpyStore();
    store.holdCalls = true;
    const recorder = createEventRecorder(store);
    const recorded = recorder.record(input(0)).catch((error: unknown) => error);
    await nextTurn();
    let flushed = false;
    const flush = recorder.flush().then(() => {
      flushed = true;
    });
    await nextTurn();
    expect(flushed).toBe(false);
    store.gates[0]!.fail(new Error("gone"));
    await flush;
    expect(await recorded).toEqual(new Error("gone"));
  });

  it("close drains the queue, then refuses new events; closing twice is harmless", async () => {
    const store = new SpyStore();
    const recorder = createEventRecorder(store);
    const recorded = recorder.record(input(0));
    await recorder.close();
    expect(store.committed).toEqual([await recorded]);
    await expect(recorder.record(input(1))).rejects.toThrow(/closed/);
    await expect(recorder.close()).resolves.toBeUndefined();
    expect(store.batches).toHaveLength(1);
  });
});

describe("createEventRecorder over SQLite", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("has every event committed, and visible to another connection, when its record resolves", async () => {
    dir = mkdtempSync(join(tmpdir(), "signet-recorder-"));
    const path = join(dir, "signet.db");
    const stores = openSqliteStores(path);
    const other = new Database(path, { readonly: true });
    try {
      const recorder = createEventRecorder(stores.events);
      const count = () => other.prepare("SELECT count(*) FROM events").pluck().get();
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => recorder.record(input(i))));
      expect(count()).toBe(20);
      const seqs = other.prepare("SELECT id FROM events ORDER BY seq").pluck().all();
      expect(seqs).toEqual(ids);
      await recorder.close();
    } finally {
      other.close();
      await stores.close();
    }
  });

  it("rejects every record of a batch SQLite refuses, and stores none of it", async () => {
    const stores = openSqliteStores(":memory:");
    try {
      // STRICT refuses a fractional timestamp: the whole batch rolls back.
      let tick = 0;
      const recorder = createEventRecorder(stores.events, () => (++tick === 2 ? 2.5 : tick));
      const results = await Promise.allSettled([0, 1, 2].map((n) => recorder.record(input(n))));
      expect(results.map((result) => result.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(await stores.events.listEvents()).toEqual([]);
      await recorder.record(input(3));
      expect(await stores.events.listEvents()).toHaveLength(1);
    } finally {
      await stores.close();
    }
  });
});
