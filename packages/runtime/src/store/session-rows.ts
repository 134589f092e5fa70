// The session tables' rows, as both SQL adapters read and write them (the column names are the same in
// SQLite and PostgreSQL), and their mapping to and from the records.
import type { ContentHash, JsonValue } from "@signet/protocol";
import type {
  JsonObject,
  SessionEventRecord,
  SessionEventType,
  SessionMessageRecord,
  SessionMode,
  SessionRecord,
  SessionStatus,
} from "../sessions/types.js";
import { present } from "./rows.js";
import { type NewSessionEvent, jsonText } from "./session-checks.js";

export interface SessionRow {
  id: string;
  mode: SessionMode;
  initiator: string;
  participants: string;
  status: SessionStatus;
  created_at: number;
  expires_at: number;
  closed_at: number | null;
  policy_ref: string | null;
  config: string;
  mode_state: string;
  message_count: number;
  history_hash: string;
  start_hash: string;
  outcome: string | null;
  cancelled_by: string | null;
}

export interface SessionMessageRow {
  session_id: string;
  seq: number;
  message_id: string;
  sender: string;
  kind: string;
  envelope_hash: string;
  body: string;
  accepted_at: number;
}

export interface SessionEventRow {
  id: number;
  session_id: string;
  type: SessionEventType;
  at: number;
  data: string;
}

/** Named columns, in table order: PostgreSQL's `sessions` also has a `seq` that is ordering, not data. */
export const SESSION_COLUMNS =
  "id, mode, initiator, participants, status, created_at, expires_at, closed_at, policy_ref, config, " +
  "mode_state, message_count, history_hash, outcome, cancelled_by, start_hash";
export const SESSION_MESSAGE_COLUMNS =
  "session_id, seq, message_id, sender, kind, envelope_hash, body, accepted_at";
export const SESSION_EVENT_COLUMNS = "id, session_id, type, at, data";

/** The row a session is stored as; JSON fields as text. */
export function sessionRow(session: SessionRecord): SessionRow {
  return {
    id: session.id,
    mode: session.mode,
    initiator: session.initiator,
    participants: jsonText(session.participants, "participants"),
    status: session.status,
    created_at: session.createdAt,
    expires_at: session.expiresAt,
    closed_at: session.closedAt ?? null,
    policy_ref: session.policyRef ?? null,
    config: jsonText(session.config, "config"),
    mode_state: jsonText(session.modeState, "mode state"),
    message_count: session.messageCount,
    history_hash: session.historyHash,
    start_hash: session.startHash,
    outcome: session.outcome === undefined ? null : jsonText(session.outcome, "outcome"),
    cancelled_by: session.cancelledBy ?? null,
  };
}

export function toSession(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    mode: row.mode,
    initiator: row.initiator,
    participants: JSON.parse(row.participants) as string[],
    status: row.status,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...present("closedAt", row.closed_at),
    ...present("policyRef", row.policy_ref),
    config: JSON.parse(row.config) as JsonObject,
    modeState: JSON.parse(row.mode_state) as JsonValue,
    messageCount: row.message_count,
    historyHash: row.history_hash as ContentHash,
    startHash: row.start_hash as ContentHash,
    // JSON null is the text "null", never SQL NULL, so it comes back as an outcome of null.
    ...(row.outcome !== null && { outcome: JSON.parse(row.outcome) as JsonValue }),
    ...present("cancelledBy", row.cancelled_by),
  };
}

export function sessionMessageRow(message: SessionMessageRecord): SessionMessageRow {
  return {
    session_id: message.sessionId,
    seq: message.seq,
    message_id: message.messageId,
    sender: message.sender,
    kind: message.kind,
    envelope_hash: message.envelopeHash,
    body: jsonText(message.body, "message body"),
    accepted_at: message.acceptedAt,
  };
}

export function toSessionMessage(row: SessionMessageRow): SessionMessageRecord {
  return {
    sessionId: row.session_id,
    seq: row.seq,
    messageId: row.message_id,
    sender: row.sender,
    kind: row.kind,
    envelopeHash: row.envelope_hash as ContentHash,
    body: JSON.parse(row.body) as JsonValue,
    acceptedAt: row.accepted_at,
  };
}

/** An event's row before the store gives it an id. */
export function sessionEventRow(event: NewSessionEvent): Omit<SessionEventRow, "id"> {
  return {
    session_id: event.sessionId,
    type: event.type,
    at: event.at,
    data: jsonText(event.data, "event data"),
  };
}

export function toSessionEvent(row: SessionEventRow): SessionEventRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    type: row.type,
    at: row.at,
    data: JSON.parse(row.data) as JsonObject,
  };
}
