// The watch stream's fan-out: one reader of the session event log per instance, many watchers.
//
// The store gives every event an id that commits in increasing order (docs/sessions.md), so
// "every event after id N" is a complete, ordered answer at any moment. The hub reads the log once
// for all watchers, when this instance stored an event and on a short poll (for events other instances
// stored), and hands each batch to the watchers that are caught up. A watcher that is behind — it
// resumed from an older Last-Event-ID, or was connected while a batch went out — reads the log itself
// from its own cursor until it reaches the hub, and only then takes batches. So a watcher sees every
// event after its cursor exactly once, in order, with no gap between catching up and live.
import type { SessionEventRecord, SessionStore } from "./types.js";

/** An event with the participants of its session, for the visibility filter. */
export interface WatchedEvent {
  readonly event: SessionEventRecord;
  readonly participants: readonly string[];
}

export interface WatcherOptions {
  /** Deliver events after this id. */
  readonly after: number;
  /** Only this session's events. */
  readonly sessionId?: string;
  /** Whether the watcher may see an event (its session's participants are given). */
  readonly visible: (event: WatchedEvent) => boolean;
  /** Receives the visible events in order; returns false when the consumer cannot keep up. */
  readonly deliver: (events: readonly SessionEventRecord[]) => boolean;
  /** Called once when the watcher is dropped by the hub (slow consumer, or the hub closing). */
  readonly onClose: (reason: "slow_consumer" | "closing" | "error") => void;
}

export interface Watcher {
  /** Stops delivery. */
  close(): void;
}

export interface WatchHubOptions {
  readonly store: SessionStore;
  /** How often the log is read for events other instances stored. Default 250 ms. */
  readonly pollMs?: number;
  /** Events read per query. Default 500. */
  readonly batchSize?: number;
  readonly onError?: (error: unknown) => void;
}

interface WatcherState {
  cursor: number;
  live: boolean;
  closed: boolean;
  readonly options: WatcherOptions;
}

const MAX_PARTICIPANT_CACHE = 10_000;

export class WatchHub {
  readonly #store: SessionStore;
  readonly #batchSize: number;
  readonly #onError: (error: unknown) => void;
  readonly #watchers = new Set<WatcherState>();
  // Participants never change during a session, so this cache needs no invalidation.
  readonly #participants = new Map<string, readonly string[]>();
  readonly #timer: NodeJS.Timeout;
  #cursor = 0;
  #started: Promise<void>;
  #pulling: Promise<void> | undefined;
  #pullAgain = false;
  #closed = false;

  constructor(options: WatchHubOptions) {
    this.#store = options.store;
    this.#batchSize = options.batchSize ?? 500;
    this.#onError = options.onError ?? (() => undefined);
    this.#started = this.#store.lastEventId().then(
      (id) => {
        this.#cursor = Math.max(this.#cursor, id);
      },
      (error: unknown) => this.#onError(error),
    );
    this.#timer = setInterval(() => this.poke(), options.pollMs ?? 250);
    this.#timer.unref();
  }

  /** The id after which a watch "from now" begins. */
  async head(): Promise<number> {
    await this.#started;
    return Math.max(this.#cursor, await this.#store.lastEventId());
  }

  /** Something was stored: read the log now (coalesced with a read in progress). */
  poke(): void {
    if (this.#closed) return;
    if (this.#pulling !== undefined) {
      this.#pullAgain = true;
      return;
    }
    this.#pulling = this.#pull().finally(() => {
      this.#pulling = undefined;
      if (this.#pullAgain) {
        this.#pullAgain = false;
        this.poke();
      }
    });
  }

  /** Starts delivering to a watcher from `options.after`. */
  watch(options: WatcherOptions): Watcher {
    const state: WatcherState = { cursor: options.after, live: false, closed: false, options };
    this.#watchers.add(state);
    void this.#catchUp(state);
    return {
      close: () => {
        state.closed = true;
        this.#watchers.delete(state);
      },
    };
  }

  /** How many watchers are connected. */
  get size(): number {
    return this.#watchers.size;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const state of this.#watchers) this.#drop(state, "closing");
  }

  async #pull(): Promise<void> {
    await this.#started;
    try {
      for (;;) {
        const from = this.#cursor;
        const events = await this.#store.events(from, this.#batchSize);
        if (events.length === 0 || this.#closed) return;
        const watched = await this.#withParticipants(events);
        this.#cursor = events.at(-1)!.id;
        for (const state of this.#watchers) {
          // A watcher at or past `from` gets the whole batch; one still behind keeps catching up.
          if (state.live && state.cursor >= from) this.#send(state, watched);
        }
        if (events.length < this.#batchSize) return;
      }
    } catch (error) {
      this.#onError(error);
    }
  }

  async #catchUp(state: WatcherState): Promise<void> {
    try {
      await this.#started;
      let empty = 0;
      for (;;) {
        if (state.closed) return;
        // Caught up with the hub: from here every batch the hub reads covers this watcher's cursor.
        if (state.cursor >= this.#cursor) {
          state.live = true;
          return;
        }
        const events = await this.#store.events(state.cursor, this.#batchSize);
        if (state.closed) return;
        if (events.length === 0) {
          // The hub read events committed after this read: read again (they are in the log now).
          // Twice empty means the log holds nothing after the cursor (pruned): go live from here.
          if (++empty < 2) continue;
          state.live = true;
          return;
        }
        this.#send(state, await this.#withParticipants(events));
      }
    } catch (error) {
      this.#onError(error);
      this.#drop(state, "error");
    }
  }

  #send(state: WatcherState, batch: readonly WatchedEvent[]): void {
    if (state.closed) return;
    const { options } = state;
    const out: SessionEventRecord[] = [];
    for (const watched of batch) {
      const { event } = watched;
      if (event.id <= state.cursor) continue;
      state.cursor = event.id;
      if (options.sessionId !== undefined && event.sessionId !== options.sessionId) continue;
      if (options.visible(watched)) out.push(event);
    }
    if (out.length > 0 && !options.deliver(out)) this.#drop(state, "slow_consumer");
  }

  #drop(state: WatcherState, reason: "slow_consumer" | "closing" | "error"): void {
    if (state.closed) return;
    state.closed = true;
    this.#watchers.delete(state);
    state.options.onClose(reason);
  }

  async #withParticipants(events: readonly SessionEventRecord[]): Promise<WatchedEvent[]> {
    const out: WatchedEvent[] = [];
    for (const event of events) {
      let participants = this.#participants.get(event.sessionId);
      if (participants === undefined) {
        const fromEvent = event.type === "CREATED" ? event.data.participants : undefined;
        participants = Array.isArray(fromEvent)
          ? fromEvent.filter((p): p is string => typeof p === "string")
          : ((await this.#store.get(event.sessionId))?.participants ?? []);
        if (this.#participants.size >= MAX_PARTICIPANT_CACHE) this.#participants.clear();
        this.#participants.set(event.sessionId, participants);
      }
      out.push({ event, participants });
    }
    return out;
  }
}
