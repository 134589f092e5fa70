// Records security events (authentication failures, registry and key changes, admin actions).
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
  /** Records an event durably before returning; resolves to the event id. */
  record(event: EventInput): Promise<string>;
}

/** An EventRecorder over an EventStore. Example: `await recorder.record({ type: "key_revoked", ... })`. */
export function createEventRecorder(store: EventStore, now: () => number = Date.now): EventRecorder {
  return {
    async record(event) {
      const id = newMessageId();
      await store.appendEvent({ ...event, id, ts: now(), details: event.details ?? {} });
      return id;
    },
  };
}
