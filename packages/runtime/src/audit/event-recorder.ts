// Records security events (authentication failures, registry and key changes, admin actions, invocations).
//
// Appends are group-committed: events recorded close together are written in one store transaction,
// so an invocation's events share a commit with other requests' instead of paying for one each. Each
// `record()` still resolves only once its own event is durable, and rejects when its batch fails, so a
// caller that waits for the audit (the pipeline, before it dispatches) keeps failing closed.
//
// For now events go to a plain append-only table; the audit-log work makes the same calls
// tamper-evident (hash chain, Merkle checkpoints) without changing the callers.
import { newMessageId } from "@signet/protocol";
import type { EventRecord, EventStore } from "../store/types.js";

/** What a caller says about an event; id and time are filled in. */
export type EventInput = Omit<EventRecord, "id" | "ts" | "seq" | "details"> & {
  readonly details?: Readonly<Record<string, unknown>>;
};

export interface EventRecorder {
  /** Records an event durably before resolving; resolves to the event id. */
  record(event: EventInput): Promise<string>;
}

/** An EventRecorder that batches appends, and can be drained and closed at shutdown. */
export interface BatchingEventRecorder extends EventRecorder {
  /**
   * Writes what is queued now, without waiting for the next turn of the event loop, and resolves once
   * the queue is empty: every event recorded before the call is committed, or its `record()` rejected.
   * Never rejects; failures reach the callers of `record()`.
   */
  flush(): Promise<void>;
  /** Refuses new events, then flushes. Safe to call twice. */
  close(): Promise<void>;
}

export interface EventRecorderOptions {
  /**
   * The most events one transaction holds; a queue this long is written at once rather than on the
   * next turn of the event loop. Default 256.
   */
  readonly maxBatchSize?: number;
}

/** The largest batch by default: big enough to amortize a commit, small enough to keep one short. */
export const DEFAULT_MAX_EVENT_BATCH = 256;

interface Waiting {
  readonly event: EventRecord;
  readonly resolve: (id: string) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * An EventRecorder over an EventStore that group-commits: `record()` queues the event; the queue is
 * written with `appendEvents` on the next macrotask (setImmediate), or at once when it holds
 * `maxBatchSize` events. One batch is written at a time, in the order events were recorded; events
 * recorded while a batch is being written go into the next one. A failed batch rejects every
 * `record()` in it, and nothing else.
 *
 * Example:
 * ```ts
 * const recorder = createEventRecorder(stores.events, Date.now, { maxBatchSize: 256 });
 * const id = await recorder.record({ type: "key_revoked", outcome: "success", actor: "admin" });
 * await recorder.close(); // at shutdown, before the store closes
 * ```
 */
export function createEventRecorder(
  store: EventStore,
  now: () => number = Date.now,
  options: EventRecorderOptions = {},
): BatchingEventRecorder {
  const { maxBatchSize = DEFAULT_MAX_EVENT_BATCH } = options;
  if (!Number.isSafeInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new TypeError("maxBatchSize must be a positive integer");
  }

  const queue: Waiting[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let draining: Promise<void> | undefined;
  let closed = false;

  async function commit(batch: readonly Waiting[]): Promise<void> {
    let seqs: number[];
    try {
      seqs = await store.appendEvents(batch.map((waiting) => waiting.event));
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    if (seqs.length !== batch.length) {
      // An adapter bug; the events may or may not be stored, so no caller may treat its own as recorded.
      const error = new Error(
        `The event store returned ${seqs.length} seq numbers for ${batch.length} events`,
      );
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    for (const waiting of batch) waiting.resolve(waiting.event.id);
  }

  // Writes batches back to back until the queue is empty: whatever queued during one commit is the next
  // batch, so under load batches grow by themselves and no event waits longer than one commit. `draining`
  // is cleared in the same synchronous step that finds the queue empty, so an event recorded at any
  // later moment sees no drain running and schedules one.
  async function drainQueue(): Promise<void> {
    try {
      while (queue.length > 0) await commit(queue.splice(0, maxBatchSize));
    } finally {
      draining = undefined;
    }
  }

  /** Starts draining unless a drain is running (it will reach everything queued); returns the drain. */
  function drain(): Promise<void> {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    // Only with something queued: the drain then awaits at least once, so it cannot finish (and clear
    // `draining`) before it is assigned.
    if (draining === undefined && queue.length > 0) draining = drainQueue();
    return draining ?? Promise.resolve();
  }

  return {
    // Async so that anything thrown (a closed recorder, a failing clock) arrives as a rejection.
    async record(input) {
      if (closed) throw new Error("The event recorder is closed");
      const event: EventRecord = { ...input, id: newMessageId(), ts: now(), details: input.details ?? {} };
      const recorded = new Promise<string>((resolve, reject) => {
        queue.push({ event, resolve, reject });
      });
      if (draining === undefined) {
        if (queue.length >= maxBatchSize) void drain();
        else scheduled ??= setImmediate(() => void drain());
      }
      return recorded;
    },
    flush: drain,
    close() {
      closed = true;
      return drain();
    },
  };
}
