// Coordination sessions: start, accept messages in one total order per session, cancel, expire, and
// commit the outcome (docs/sessions.md). The pipeline authenticates, verifies, admits, authorizes,
// rate limits and audits each session envelope before it reaches this service; the service applies
// the session's own rules: who may speak, the mode's state machine, and the session's lifecycle.
import {
  type ContentHash,
  type Ed25519PrivateKey,
  type JsonValue,
  SESSION_COMMITMENT_DOMAIN,
  SESSION_HISTORY_ORIGIN,
  SESSION_ID_PATTERN,
  SignetError,
  type VerifiedEnvelope,
  chainSessionHistory,
  isAgentId,
  isSignetError,
  signRuntimeDocument,
} from "@signet/protocol";
import type { EventRecorder } from "../audit/audit-recorder.js";
import { envelopeRef } from "../audit/audit-recorder.js";
import { modeMachine } from "./modes/index.js";
import {
  type JsonObject,
  type ModeContext,
  type SessionEventRecord,
  type SessionMessageRecord,
  type SessionQuery,
  type SessionRecord,
  type SessionStore,
  isSessionMode,
} from "./types.js";

/** The domain of a session commitment's runtime signature. */
export const COMMITMENT_DOMAIN = SESSION_COMMITMENT_DOMAIN;

export interface SessionSettings {
  /** TTL when `session.start` names none. Default one hour. */
  readonly defaultTtlMs: number;
  /** Longest TTL a session may ask for. Default one day. */
  readonly maxTtlMs: number;
  /** Most participants, the initiator included. Default 64. */
  readonly maxParticipants: number;
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = {
  defaultTtlMs: 3_600_000,
  maxTtlMs: 86_400_000,
  maxParticipants: 64,
};

export interface SessionServiceDependencies {
  readonly store: SessionStore;
  readonly events: EventRecorder;
  readonly runtimeKey: Ed25519PrivateKey;
  /** True when `id` is a registered agent. */
  readonly isAgent: (id: string) => boolean;
  readonly settings?: Partial<SessionSettings>;
  readonly now?: () => number;
  /** Told of failures that do not fail a caller (an expiry's audit record in the sweeper). */
  readonly onError?: (error: unknown, what: string) => void;
}

/** A session as the API shows it. */
export interface SessionView {
  readonly id: string;
  readonly mode: string;
  readonly initiator: string;
  readonly participants: readonly string[];
  readonly status: string;
  readonly created_at: string;
  readonly expires_at: string;
  readonly closed_at?: string;
  readonly message_count: number;
  readonly start_hash: ContentHash;
  readonly history_hash: ContentHash;
  readonly policy_ref?: string;
  readonly config: JsonObject;
  readonly state: JsonValue;
  readonly outcome?: JsonValue;
}

/** What accepting a session envelope answers (and what an identical retry gets again). */
export interface SessionResponse {
  readonly session: SessionView;
  /** The accepted message's position (absent for start and cancel). */
  readonly seq?: number;
  /** The runtime-signed commitment, when this message resolved the session. */
  readonly commitment?: JsonObject;
  /**
   * The runtime's signed receipt for the accepted envelope (`session-receipt`): the pipeline adds it,
   * and an identical retry gets the same one.
   */
  readonly receipt?: JsonObject;
}

const MAX_CONFLICT_RETRIES = 16;

/** What a `session.start` body may hold. */
const START_MEMBERS = new Set(["mode", "participants", "ttl_ms", "config", "policy_ref"]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function invalid(message: string, reason: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason });
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function sessionView(session: SessionRecord): SessionView {
  return {
    id: session.id,
    mode: session.mode,
    initiator: session.initiator,
    participants: session.participants,
    status: session.status,
    created_at: iso(session.createdAt),
    expires_at: iso(session.expiresAt),
    ...(session.closedAt === undefined ? {} : { closed_at: iso(session.closedAt) }),
    message_count: session.messageCount,
    start_hash: session.startHash,
    history_hash: session.historyHash,
    ...(session.policyRef === undefined ? {} : { policy_ref: session.policyRef }),
    config: session.config,
    state: session.modeState,
    ...(session.outcome === undefined ? {} : { outcome: session.outcome }),
  };
}

/** True when `principal` takes part in the session. */
export function isParticipant(session: SessionRecord, principal: string): boolean {
  return session.participants.includes(principal);
}

type Listener = (events: readonly SessionEventRecord[]) => void;

export class SessionService {
  readonly #deps: SessionServiceDependencies;
  readonly #settings: SessionSettings;
  readonly #now: () => number;
  readonly #listeners = new Set<Listener>();
  /** Per session, the end of the queue of messages this instance is applying to it. */
  readonly #turns = new Map<string, Promise<void>>();

  constructor(deps: SessionServiceDependencies) {
    this.#deps = deps;
    this.#settings = { ...DEFAULT_SESSION_SETTINGS, ...deps.settings };
    this.#now = deps.now ?? Date.now;
  }

  /** Told of every event this instance stored (watch streams fan out from here). */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The session an envelope names, with its id checked (`INVALID_SESSION_ID`). */
  static sessionIdOf(verified: VerifiedEnvelope): string {
    const { envelope } = verified;
    const id = envelope.session;
    if (id === undefined || !SESSION_ID_PATTERN.test(id)) {
      throw new SignetError(
        "INVALID_SESSION_ID",
        "A session id is a UUID or 22 to 128 base64url characters",
        { reason: id === undefined ? "missing" : "format" },
      );
    }
    if (envelope.to !== `session:${id}`) {
      throw new SignetError(
        "INVALID_ENVELOPE",
        "A session message is addressed to session:<its session id>",
        {
          reason: "to",
        },
      );
    }
    return id;
  }

  /** `session.start`: creates the session; the sender is its initiator. */
  async start(verified: VerifiedEnvelope): Promise<SessionResponse> {
    const { envelope } = verified;
    const id = SessionService.sessionIdOf(verified);
    const body = envelope.body;
    if (!isObject(body)) invalid("session.start's body is an object", "body");
    const unknown = Object.keys(body).filter((member) => !START_MEMBERS.has(member));
    if (unknown.length > 0) {
      invalid(`session.start's body has no member ${JSON.stringify(unknown[0]!.slice(0, 64))}`, "body");
    }
    if (!isSessionMode(body.mode)) {
      throw new SignetError("MODE_NOT_SUPPORTED", undefined, {
        reason: typeof body.mode === "string" ? body.mode.slice(0, 64) : "missing",
      });
    }
    const participants = this.#participants(envelope.from, body.participants);
    const ttl = body.ttl_ms === undefined ? this.#settings.defaultTtlMs : body.ttl_ms;
    if (
      typeof ttl !== "number" ||
      !Number.isSafeInteger(ttl) ||
      ttl < 1000 ||
      ttl > this.#settings.maxTtlMs
    ) {
      invalid(`ttl_ms: 1000..${this.#settings.maxTtlMs}`, "ttl_ms");
    }
    if (body.config !== undefined && !isObject(body.config)) invalid("config: an object", "config");
    const policyRef = body.policy_ref;
    if (
      policyRef !== undefined &&
      (typeof policyRef !== "string" || policyRef.length === 0 || policyRef.length > 256)
    ) {
      invalid("policy_ref: 1..256 characters", "policy_ref");
    }
    const config = body.config ?? {};
    const machine = modeMachine(body.mode);
    const context: ModeContext = { initiator: envelope.from, participants, config };
    const modeState = machine.init(context);
    const now = this.#now();
    const session: SessionRecord = {
      id,
      mode: body.mode,
      initiator: envelope.from,
      participants,
      status: "OPEN",
      createdAt: now,
      expiresAt: now + ttl,
      ...(policyRef === undefined ? {} : { policyRef }),
      config,
      modeState,
      messageCount: 0,
      startHash: verified.hash,
      historyHash: chainSessionHistory(SESSION_HISTORY_ORIGIN, verified.hash),
    };
    const event = await this.#deps.store.create(session, {
      sessionId: id,
      type: "CREATED",
      at: now,
      data: { mode: session.mode, initiator: session.initiator, participants: [...participants] },
    });
    this.#emit([event]);
    return { session: sessionView(session) };
  }

  /** `session.<verb>`: one message, applied by the mode's machine, in the session's total order. */
  async accept(verified: VerifiedEnvelope): Promise<SessionResponse> {
    const id = SessionService.sessionIdOf(verified);
    return this.#inTurn(id, () => this.#accept(verified, id));
  }

  /**
   * Runs `work` when this instance's earlier changes to the session are done: messages (and a cancel)
   * to one session through one instance would only conflict with each other. Other instances'
   * messages still race, and a conflict is retried with backoff.
   */
  async #inTurn<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#turns.get(id) ?? Promise.resolve();
    let release!: () => void;
    const turn = new Promise<void>((resolve) => (release = resolve));
    const queued = previous.then(() => turn);
    this.#turns.set(id, queued);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.#turns.get(id) === queued) this.#turns.delete(id);
    }
  }

  async #accept(verified: VerifiedEnvelope, id: string): Promise<SessionResponse> {
    const { envelope } = verified;
    const kind = envelope.type.slice("session.".length);
    if (!isObject(envelope.body)) invalid("A session message's body is an object", "body");
    const body = envelope.body;
    for (let attempt = 0; ; attempt++) {
      let session: SessionRecord;
      try {
        session = await this.#open(id, envelope.from, "send");
      } catch (error) {
        // The identical message that resolved the session, sent again because its answer was lost
        // (the commitment's audit record could not be written, say): finish the job and answer it.
        const again = await this.#resolvedBy(id, verified, error);
        if (again !== undefined) return again;
        throw error;
      }
      const machine = modeMachine(session.mode);
      const context: ModeContext = {
        initiator: session.initiator,
        participants: session.participants,
        config: session.config,
      };
      const now = this.#now();
      // Read just before its expiry, accepted just after: still too late (the sweeper closes it).
      if (now >= session.expiresAt) {
        throw new SignetError("SESSION_NOT_OPEN", "The session is expired", { reason: "expired" });
      }
      const step = machine.apply(session.modeState, { sender: envelope.from, kind, body, at: now }, context);
      const seq = session.messageCount;
      const resolved = step.outcome !== undefined;
      const historyHash = chainSessionHistory(session.historyHash, verified.hash);
      const next: SessionRecord = {
        ...session,
        modeState: step.state,
        messageCount: seq + 1,
        historyHash,
        ...(resolved ? { status: "RESOLVED" as const, closedAt: now, outcome: step.outcome } : {}),
      };
      const events: Omit<SessionEventRecord, "id">[] = [
        {
          sessionId: id,
          type: "MESSAGE_ACCEPTED",
          at: now,
          data: { seq, kind, sender: envelope.from, message_id: envelope.id },
        },
        ...(resolved
          ? [{ sessionId: id, type: "RESOLVED" as const, at: now, data: { outcome: step.outcome } }]
          : []),
      ];
      let stored: SessionEventRecord[];
      try {
        stored = await this.#deps.store.append(
          {
            sessionId: id,
            seq,
            messageId: envelope.id,
            sender: envelope.from,
            kind,
            envelopeHash: verified.hash,
            body,
            acceptedAt: now,
          },
          next,
          seq,
          events,
        );
      } catch (error) {
        // Another message was accepted since this one read the session: apply it to the new state.
        if (
          isSignetError(error) &&
          error.details.reason === "session_conflict" &&
          attempt < MAX_CONFLICT_RETRIES
        ) {
          // Randomized, growing backoff, so instances racing for one session do not collide again.
          await sleep(Math.random() * Math.min(50, 2 ** attempt));
          continue;
        }
        throw error;
      }
      this.#emit(stored);
      const commitment = resolved ? await this.#commit(next, verified) : undefined;
      return { session: sessionView(next), seq, ...(commitment === undefined ? {} : { commitment }) };
    }
  }

  /** `session.cancel` by the initiator, or an operator's cancel (`operator` names them). */
  cancel(id: string, by: string, options: { operator: boolean; reason?: string }): Promise<SessionResponse> {
    if (options.reason !== undefined && options.reason.length > 1024) {
      invalid("reason: text up to 1024 characters", "reason");
    }
    return this.#inTurn(id, () => this.#cancel(id, by, options));
  }

  async #cancel(
    id: string,
    by: string,
    options: { operator: boolean; reason?: string },
  ): Promise<SessionResponse> {
    const read = await this.#open(id, by, options.operator ? "operator-cancel" : "cancel");
    const now = this.#now();
    const next: SessionRecord = { ...read, status: "CANCELLED", closedAt: now, cancelledBy: by };
    const event = await this.#deps.store.close(next, {
      sessionId: id,
      type: "CANCELLED",
      at: now,
      data: { by, ...(options.reason === undefined ? {} : { reason: options.reason }) },
    });
    if (event === undefined) {
      // Closed by another instance between the read and the close: say how it ended.
      const now = await this.#deps.store.get(id);
      throw new SignetError("SESSION_NOT_OPEN", undefined, {
        reason: now === undefined ? "closed" : now.status.toLowerCase(),
      });
    }
    this.#emit([event]);
    // Read back: another instance may have accepted a message between the read and the close.
    const session = (await this.#deps.store.get(id)) ?? next;
    await this.#deps.events.record({
      type: "session_cancelled",
      actor: by,
      target: `session:${id}`,
      outcome: "success",
      metadata: {
        mode: session.mode,
        history_hash: session.historyHash,
        message_count: session.messageCount,
        ...(options.reason === undefined ? {} : { reason: options.reason }),
      },
    });
    return { session: sessionView(session) };
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const session = await this.#deps.store.get(id);
    if (session?.status === "OPEN" && session.expiresAt <= this.#now()) return this.#expire(session);
    return session;
  }

  list(query: SessionQuery = {}): Promise<SessionRecord[]> {
    return this.#deps.store.list(query);
  }

  /** The accepted messages of a session, in order. */
  messages(id: string): Promise<SessionMessageRecord[]> {
    return this.#deps.store.messages(id);
  }

  events(afterId: number, limit: number): Promise<SessionEventRecord[]> {
    return this.#deps.store.events(afterId, limit);
  }

  /**
   * Retention: deletes closed sessions that closed more than `retentionMs` ago (up to `limit` per
   * call), with their messages and events, and records how many in the audit log (`sessions_pruned`).
   */
  async prune(retentionMs: number, limit = 500): Promise<number> {
    const closedBefore = this.#now() - retentionMs;
    const count = await this.#deps.store.prune(closedBefore, limit);
    if (count > 0) {
      await this.#deps.events.record({
        type: "sessions_pruned",
        actor: "signet",
        target: "sessions",
        outcome: "success",
        metadata: { count, closed_before: iso(closedBefore), retention_ms: retentionMs },
      });
    }
    return count;
  }

  /** The sweeper: expires every OPEN session past its TTL. Returns how many it expired. */
  async sweep(): Promise<number> {
    const due = await this.#deps.store.expired(this.#now(), 100);
    let expired = 0;
    for (const session of due) if ((await this.#expire(session)).status === "EXPIRED") expired++;
    return expired;
  }

  /**
   * The session, OPEN, when `sender` may act in it: SESSION_NOT_FOUND, then FORBIDDEN for a sender
   * outside it (checked before its state, so an outsider learns nothing of how the session stands),
   * then SESSION_NOT_OPEN. Cancelling also needs the initiator, unless an operator cancels.
   */
  async #open(
    id: string,
    sender: string,
    action: "send" | "cancel" | "operator-cancel",
  ): Promise<SessionRecord> {
    const session = await this.get(id);
    if (session === undefined) throw new SignetError("SESSION_NOT_FOUND");
    if (action !== "operator-cancel") {
      if (!isParticipant(session, sender)) {
        throw new SignetError("FORBIDDEN", "Only the session's participants may send in it", {
          reason: "not_participant",
        });
      }
      if (action === "cancel" && sender !== session.initiator) {
        throw new SignetError("FORBIDDEN", "Only the initiator or an operator may cancel a session", {
          reason: "not_initiator",
        });
      }
    }
    if (session.status !== "OPEN") {
      throw new SignetError("SESSION_NOT_OPEN", `The session is ${session.status.toLowerCase()}`, {
        reason: session.status.toLowerCase(),
      });
    }
    return session;
  }

  async #expire(session: SessionRecord): Promise<SessionRecord> {
    const next: SessionRecord = { ...session, status: "EXPIRED", closedAt: session.expiresAt };
    const event = await this.#deps.store.close(next, {
      sessionId: session.id,
      type: "EXPIRED",
      at: this.#now(),
      data: { expires_at: iso(session.expiresAt) },
    });
    if (event === undefined) return (await this.#deps.store.get(session.id)) ?? next;
    this.#emit([event]);
    await this.#deps.events
      .record({
        type: "session_expired",
        actor: "signet",
        target: `session:${session.id}`,
        outcome: "success",
        metadata: {
          mode: session.mode,
          history_hash: session.historyHash,
          message_count: session.messageCount,
        },
      })
      .catch((error: unknown) => this.#deps.onError?.(error, "session_expired audit record"));
    return next;
  }

  /** The commitment: signed by the runtime, carrying the hash of the whole history, in the audit log. */
  /**
   * When `refusal` is SESSION_NOT_OPEN because `verified` itself resolved the session (it is the last
   * accepted message, same id and same envelope hash), records the commitment and answers as the
   * first time; undefined otherwise. A message reaches here again only when its first answer was a
   * retryable refusal (the replay store keeps every other answer for identical retries).
   */
  async #resolvedBy(
    id: string,
    verified: VerifiedEnvelope,
    refusal: unknown,
  ): Promise<SessionResponse | undefined> {
    if (!isSignetError(refusal) || refusal.code !== "SESSION_NOT_OPEN") return undefined;
    const session = await this.#deps.store.get(id);
    if (session?.status !== "RESOLVED" || session.messageCount === 0) return undefined;
    const last = (await this.#deps.store.messages(id)).at(-1);
    if (last?.messageId !== verified.envelope.id || last.envelopeHash !== verified.hash) return undefined;
    const commitment = await this.#commit(session, verified);
    return { session: sessionView(session), seq: last.seq, commitment };
  }

  /**
   * The commitment of a RESOLVED session. It is a function of the stored session alone (Ed25519
   * signatures are deterministic, and `resolved_at` is the stored `closedAt`), so it is the same
   * document whenever it is made: it need not be stored to be served again.
   */
  commitmentOf(session: SessionRecord): JsonObject {
    return signRuntimeDocument(
      COMMITMENT_DOMAIN,
      {
        session: session.id,
        mode: session.mode,
        initiator: session.initiator,
        participants: [...session.participants],
        status: session.status,
        outcome: session.outcome ?? null,
        message_count: session.messageCount,
        start_hash: session.startHash,
        history_hash: session.historyHash,
        ...(session.policyRef === undefined ? {} : { policy_ref: session.policyRef }),
        resolved_at: iso(session.closedAt ?? session.createdAt),
      },
      this.#deps.runtimeKey,
    );
  }

  /** Signs the commitment and records it in the audit log (the `session_committed` entry). */
  async #commit(session: SessionRecord, last: VerifiedEnvelope): Promise<JsonObject> {
    const commitment = this.commitmentOf(session);
    await this.#deps.events.record({
      type: "session_committed",
      actor: last.envelope.from,
      target: `session:${session.id}`,
      outcome: "success",
      result: envelopeRef(last),
      metadata: { commitment },
    });
    return commitment;
  }

  #participants(initiator: string, value: unknown): string[] {
    if (!Array.isArray(value)) invalid("participants: a list of agent ids", "participants");
    const participants = [initiator];
    for (const participant of value) {
      if (!isAgentId(participant)) invalid("participants: agent ids", "participants");
      if (!participants.includes(participant)) participants.push(participant);
    }
    if (participants.length < 2) invalid("participants: at least one besides the initiator", "participants");
    if (participants.length > this.#settings.maxParticipants) {
      invalid(`participants: at most ${this.#settings.maxParticipants}`, "participants");
    }
    const unknown = participants.filter((participant) => !this.#deps.isAgent(participant));
    if (unknown.length > 0) invalid(`participants: not registered: ${unknown.join(", ")}`, "participants");
    return participants;
  }

  #emit(events: readonly SessionEventRecord[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch {
        // A watcher's failure never affects the session.
      }
    }
  }
}
