// Coordination sessions: the records the store keeps and the contract every mode's state machine
// follows (docs/sessions.md).
import type { ContentHash, JsonValue } from "@signet/protocol";

/** The five MACP modes. */
export const SESSION_MODES = ["decision", "proposal", "task", "handoff", "quorum"] as const;
export type SessionMode = (typeof SESSION_MODES)[number];

export function isSessionMode(value: unknown): value is SessionMode {
  return typeof value === "string" && (SESSION_MODES as readonly string[]).includes(value);
}

/** OPEN → RESOLVED | EXPIRED | CANCELLED; the last three are final. */
export type SessionStatus = "OPEN" | "RESOLVED" | "EXPIRED" | "CANCELLED";

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** One session as stored. */
export interface SessionRecord {
  /** Chosen by the initiator: a UUID (v4/v7) or base64url of at least 22 characters. */
  readonly id: string;
  readonly mode: SessionMode;
  readonly initiator: string;
  /** Agent ids allowed to send in the session; the initiator is always one of them. */
  readonly participants: readonly string[];
  readonly status: SessionStatus;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly expiresAt: number;
  /** When it left OPEN (resolved, expired or cancelled). */
  readonly closedAt?: number;
  /** The policy the initiator named, if any (`policy_ref`). */
  readonly policyRef?: string;
  /** The mode's settings from `session.start` (e.g. a decision's threshold). */
  readonly config: JsonObject;
  /** The mode machine's state after the last accepted message (plain JSON). */
  readonly modeState: JsonValue;
  /** The hash of the `session.start` envelope: where the history hash begins. */
  readonly startHash: ContentHash;
  /** Messages accepted so far; the next message's seq. */
  readonly messageCount: number;
  /**
   * Running hash over the accepted history: h(0) = SHA-256("sha256:" + 64 zeros ‖ "\n" ‖ start hash),
   * then h(n+1) = SHA-256(h(n) ‖ "\n" ‖ envelope hash of message n), each written `sha256:<hex>`.
   * The commitment record carries it.
   */
  readonly historyHash: ContentHash;
  /** The mode's outcome once RESOLVED (or why it stopped). */
  readonly outcome?: JsonValue;
  /** Who cancelled, for CANCELLED. */
  readonly cancelledBy?: string;
}

/** One accepted message, in the session's total order. */
export interface SessionMessageRecord {
  readonly sessionId: string;
  /** 0, 1, 2, … within the session. */
  readonly seq: number;
  /** The envelope's message id: unique within the session (a second use is DUPLICATE_MESSAGE). */
  readonly messageId: string;
  readonly sender: string;
  /** The mode verb (`propose`, `vote`, …). */
  readonly kind: string;
  readonly envelopeHash: ContentHash;
  readonly body: JsonValue;
  readonly acceptedAt: number;
}

export type SessionEventType = "CREATED" | "MESSAGE_ACCEPTED" | "RESOLVED" | "EXPIRED" | "CANCELLED";

/** A lifecycle event, for the watch stream. `id` orders every event of every session. */
export interface SessionEventRecord {
  /** Assigned by the store, strictly increasing: the SSE event id (`Last-Event-ID`). */
  readonly id: number;
  readonly sessionId: string;
  readonly type: SessionEventType;
  readonly at: number;
  readonly data: JsonObject;
}

/** A message as the mode machine sees it. */
export interface ModeMessage {
  readonly sender: string;
  /** The verb: the envelope type without its `session.` prefix. */
  readonly kind: string;
  readonly body: JsonObject;
  /** Epoch ms. */
  readonly at: number;
}

/** What a mode machine knows of its session. */
export interface ModeContext {
  readonly initiator: string;
  readonly participants: readonly string[];
  readonly config: JsonObject;
}

/** What applying a message gives. */
export interface ModeStep<S> {
  readonly state: S;
  /** Set when this message resolves the session: the committed outcome (or why it stopped). */
  readonly outcome?: JsonObject;
}

/**
 * A mode's rules as a pure state machine over plain JSON state (stored between messages).
 *
 * `init` validates the start config and returns the first state (throws `INVALID_REQUEST` with a
 * `reason` for a bad config). `apply` returns the next state, and the outcome when the message
 * resolves the session; it throws `SESSION_RULE_VIOLATION` (with `reason`) when the mode's rules
 * refuse the message — an unknown verb, a message out of order, a sender the rule does not allow,
 * a second vote where votes are final — and `INVALID_REQUEST` when the body is malformed. It never
 * mutates its input state. Participation and the session's status are checked before `apply`.
 */
export interface ModeMachine<S extends JsonValue = JsonValue> {
  readonly mode: SessionMode;
  /** The verbs this mode accepts (`session.<verb>` envelope types). */
  readonly verbs: readonly string[];
  init(context: ModeContext): S;
  apply(state: S, message: ModeMessage, context: ModeContext): ModeStep<S>;
}

/** Filters for listing sessions. */
export interface SessionQuery {
  readonly status?: SessionStatus;
  readonly mode?: SessionMode;
  /** Only sessions this agent participates in. */
  readonly participant?: string;
  /**
   * Paging: only sessions listed after this one (its id) in the same order. A session that does not
   * exist (never did, or was pruned) is refused with INVALID_REQUEST, reason `after`.
   */
  readonly after?: string;
  readonly limit?: number;
}

/**
 * Where sessions live: memory, SQLite or PostgreSQL, one contract suite.
 *
 * Every change of a session is one transaction: `create` stores the session and its CREATED event;
 * `append` checks that the session is still at `expectedCount` messages and OPEN (else it fails with
 * SESSION_NOT_OPEN, or a conflict the caller retries), stores the message, the updated session and
 * its events. A message id used twice in one session fails with DUPLICATE_MESSAGE.
 */
export interface SessionStore {
  /** Fails with SESSION_ALREADY_EXISTS when the id is taken. */
  create(session: SessionRecord, event: Omit<SessionEventRecord, "id">): Promise<SessionEventRecord>;
  get(id: string): Promise<SessionRecord | undefined>;
  list(query?: SessionQuery): Promise<SessionRecord[]>;
  /**
   * Stores an accepted message and the session after it, with its events (MESSAGE_ACCEPTED, and
   * RESOLVED when the message resolved it), atomically. Fails with SESSION_NOT_OPEN when the session
   * is no longer OPEN, with DUPLICATE_MESSAGE when the message id was used in the session, and with
   * `UNAVAILABLE` (reason `session_conflict`, retryable) when another message was accepted since
   * `expectedCount` was read.
   */
  append(
    message: SessionMessageRecord,
    next: SessionRecord,
    expectedCount: number,
    events: readonly Omit<SessionEventRecord, "id">[],
  ): Promise<SessionEventRecord[]>;
  /** Closes an OPEN session (EXPIRED or CANCELLED) with its event; undefined when it was not OPEN. */
  close(next: SessionRecord, event: Omit<SessionEventRecord, "id">): Promise<SessionEventRecord | undefined>;
  messages(sessionId: string): Promise<SessionMessageRecord[]>;
  /** OPEN sessions whose expiry is at or before `now`. */
  expired(now: number, limit: number): Promise<SessionRecord[]>;
  /** Events with id greater than `afterId`, oldest first. */
  events(afterId: number, limit: number): Promise<SessionEventRecord[]>;
  /**
   * Retention: deletes up to `limit` closed sessions (RESOLVED, EXPIRED, CANCELLED) that closed before
   * `closedBefore`, oldest first, with their participants, messages and events, atomically; resolves
   * to how many were deleted. OPEN sessions are never deleted.
   */
  prune(closedBefore: number, limit: number): Promise<number>;
  /** The id of the latest event, or 0 when there is none: where a watch stream "from now" begins. */
  lastEventId(): Promise<number>;
}
