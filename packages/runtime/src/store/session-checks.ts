// What every adapter checks on a session call, and how it refuses one, so memory, SQLite and PostgreSQL
// answer the same calls with the same codes. The SQL schemas repeat these rules as CHECK constraints,
// a backstop for other writers; a call that passes here never trips one.
import { SignetError } from "@signet/protocol";
import {
  type SessionEventRecord,
  type SessionRecord,
  type SessionStatus,
  isSessionMode,
} from "../sessions/types.js";

/** An event as the caller hands it in: the store assigns its id. */
export type NewSessionEvent = Omit<SessionEventRecord, "id">;

const STATUSES: readonly SessionStatus[] = ["OPEN", "RESOLVED", "EXPIRED", "CANCELLED"];
const EVENT_TYPES: readonly SessionEventRecord["type"][] = [
  "CREATED",
  "MESSAGE_ACCEPTED",
  "RESOLVED",
  "EXPIRED",
  "CANCELLED",
];

function invalid(message: string): never {
  throw new SignetError("INVALID_REQUEST", message);
}

function isObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The JSON text a value is stored as; refuses what JSON cannot hold (`undefined`, a function).
 *
 * Example: `jsonText({ threshold: 2 }, "config") === '{"threshold":2}'`.
 */
export function jsonText(value: unknown, what: string): string {
  // JSON.stringify is typed as returning string, but gives undefined for undefined and functions.
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) invalid(`The session's ${what} must be a JSON value`);
  return json;
}

function checkTime(value: unknown, what: string): void {
  if (!Number.isSafeInteger(value)) invalid(`The session's ${what} must be integer milliseconds`);
}

function checkSession(session: SessionRecord): void {
  if (typeof session.id !== "string" || session.id === "") invalid("A session needs an id");
  if (!isSessionMode(session.mode)) invalid(`Unknown session mode ${String(session.mode)}`);
  if (!STATUSES.includes(session.status)) invalid(`Unknown session status ${String(session.status)}`);
  if (!Array.isArray(session.participants) || !session.participants.every((p) => typeof p === "string")) {
    invalid("A session's participants must be a list of agent ids");
  }
  if (!isObject(session.config)) invalid("A session's config must be a JSON object");
  if (session.modeState === undefined) invalid("A session's mode state must be a JSON value");
  if (typeof session.historyHash !== "string") invalid("A session's history hash must be a string");
  if (typeof session.startHash !== "string") invalid("A session's start hash must be a string");
  checkTime(session.createdAt, "creation time");
  checkTime(session.expiresAt, "expiry");
  if (!Number.isSafeInteger(session.messageCount) || session.messageCount < 0) {
    invalid("A session's message count must be a non-negative integer");
  }
  // closedAt records when the session left OPEN: present exactly when it has.
  if ((session.status === "OPEN") !== (session.closedAt === undefined)) {
    invalid("A session has a closing time exactly when it is no longer OPEN");
  }
  if (session.closedAt !== undefined) checkTime(session.closedAt, "closing time");
}

function checkEvents(sessionId: string, events: readonly NewSessionEvent[]): void {
  for (const event of events) {
    if (event.sessionId !== sessionId) {
      invalid(`An event of session ${event.sessionId} cannot be stored with session ${sessionId}`);
    }
    if (!EVENT_TYPES.includes(event.type)) invalid(`Unknown session event type ${String(event.type)}`);
    checkTime(event.at, "event time");
    if (!isObject(event.data)) invalid("A session event's data must be a JSON object");
  }
}

/**
 * Checks `create`'s input: a new session is OPEN with no messages, and its event is its own.
 *
 * Example: `checkCreate(session, event)` before the transaction starts.
 */
export function checkCreate(session: SessionRecord, event: NewSessionEvent): void {
  checkSession(session);
  if (session.status !== "OPEN" || session.messageCount !== 0) {
    invalid("A new session is OPEN and has no messages yet");
  }
  checkEvents(session.id, [event]);
}

/**
 * Checks `append`'s input: the message is the session's next one (seq `expectedCount`) and `next`
 * counts it; every event belongs to the session.
 */
export function checkAppend(
  message: { readonly sessionId: string; readonly seq: number; readonly acceptedAt: number },
  next: SessionRecord,
  expectedCount: number,
  events: readonly NewSessionEvent[],
): void {
  checkSession(next);
  if (!Number.isSafeInteger(expectedCount) || expectedCount < 0) {
    invalid("The expected message count must be a non-negative integer");
  }
  if (message.sessionId !== next.id) {
    invalid(`A message of session ${message.sessionId} cannot be appended to session ${next.id}`);
  }
  if (message.seq !== expectedCount || next.messageCount !== expectedCount + 1) {
    invalid("An appended message takes seq expectedCount, and the session after it counts one more");
  }
  checkTime(message.acceptedAt, "message time");
  checkEvents(next.id, events);
}

/** Checks `close`'s input: the session leaves OPEN, and the event is its own. */
export function checkClose(next: SessionRecord, event: NewSessionEvent): void {
  checkSession(next);
  if (next.status === "OPEN") invalid("Closing a session takes it out of OPEN");
  checkEvents(next.id, [event]);
}

/**
 * Checks a page size (`undefined` means no limit) and an event cursor.
 *
 * Example: `checkLimit(query.limit)`; `checkLimit(100, afterId)`.
 */
export function checkLimit(limit: number | undefined, afterId = 0): void {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    invalid("A limit must be a non-negative integer");
  }
  if (!Number.isSafeInteger(afterId) || afterId < 0)
    invalid("An event cursor must be a non-negative integer");
}

/** Checks the clock `expired` is asked about. */
export function checkNow(now: number): void {
  checkTime(now, "clock");
}

/** The refusal of an append whose session was missing, not OPEN, or no longer at `expectedCount`. */
/** The refusal of a paging cursor naming no session. */
export function unknownCursor(): SignetError {
  return new SignetError("INVALID_REQUEST", "after: no such session to list after", { reason: "after" });
}

export function appendRefusal(
  sessionId: string,
  stored: { readonly status: SessionStatus; readonly messageCount: number } | undefined,
  expectedCount: number,
): SignetError {
  if (stored === undefined) return new SignetError("SESSION_NOT_FOUND", `No session ${sessionId}`);
  if (stored.status !== "OPEN") {
    return new SignetError("SESSION_NOT_OPEN", `Session ${sessionId} is ${stored.status}`, {
      reason: stored.status.toLowerCase(),
    });
  }
  return new SignetError(
    "UNAVAILABLE",
    `Session ${sessionId} has ${stored.messageCount} messages, not the ${expectedCount} expected: ` +
      "another message was accepted first",
    { reason: "session_conflict" },
  );
}

export function sessionExists(sessionId: string, cause?: unknown): SignetError {
  return new SignetError(
    "SESSION_ALREADY_EXISTS",
    `A session with id ${sessionId} already exists`,
    {},
    { cause },
  );
}

export function duplicateMessage(sessionId: string, messageId: string, cause?: unknown): SignetError {
  return new SignetError(
    "DUPLICATE_MESSAGE",
    `Message ${messageId} was already used in session ${sessionId}`,
    {},
    { cause },
  );
}

/**
 * The fields `append` writes; the rest (id, mode, initiator, participants, createdAt, policyRef,
 * config) are fixed when the session is created, and `close` writes only status, closedAt, outcome
 * and cancelledBy, so a close computed from a stale read can never undo an accepted message.
 */
export type AppendedFields = Pick<
  SessionRecord,
  | "status"
  | "expiresAt"
  | "closedAt"
  | "modeState"
  | "messageCount"
  | "historyHash"
  | "outcome"
  | "cancelledBy"
>;
export type ClosedFields = Pick<SessionRecord, "status" | "closedAt" | "outcome" | "cancelledBy">;
