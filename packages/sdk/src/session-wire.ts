// What the runtime's session API answers (sessions, messages, commitments, watch events), and readers
// that check each answer's shape before the SDK hands it to a caller.
import { type ContentHash, type JsonValue, type SessionReceiptFields, isContentHash } from "@signet/protocol";
import { SdkError } from "./errors.js";

/** The five coordination modes (docs/sessions.md). */
export type SessionMode = "decision" | "proposal" | "task" | "handoff" | "quorum";

/** OPEN, then one of the final states. */
export type SessionStatus = "OPEN" | "RESOLVED" | "EXPIRED" | "CANCELLED";

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** A session as the runtime shows it (`GET /v1/sessions/:id`). Wire names, as sent. */
export interface SessionView {
  readonly id: string;
  readonly mode: SessionMode;
  readonly initiator: string;
  /** Every participant, the initiator first. */
  readonly participants: readonly string[];
  readonly status: SessionStatus;
  /** ISO 8601 times. */
  readonly created_at: string;
  readonly expires_at: string;
  readonly closed_at?: string;
  readonly message_count: number;
  /** The running hash over the accepted history (`sha256:...`); a commitment carries it. */
  readonly history_hash: ContentHash;
  /** The start envelope's hash, where the history begins (to recompute `history_hash`). */
  readonly start_hash?: ContentHash;
  readonly policy_ref?: string;
  readonly config: JsonObject;
  /** The mode's state (docs/sessions.md describes each mode's). */
  readonly state: JsonValue;
  /** How the session ended, once RESOLVED: an object whose `result` says how. */
  readonly outcome?: JsonValue;
}

/**
 * The runtime's signed record of a resolved session: what was decided, by whom, and the hash of the
 * whole history that led to it. `kid` and `sig` are the runtime's key id and signature.
 */
export interface SessionCommitment {
  readonly session: string;
  readonly mode: string;
  readonly status: string;
  readonly history_hash: ContentHash;
  readonly outcome: JsonValue;
  readonly kid: string;
  readonly sig: string;
  readonly [member: string]: JsonValue;
}

/**
 * The runtime's signed receipt for an accepted session envelope: which envelope (`request`, its
 * envelope hash), its place (`seq`, for a message) and the session after it.
 */
export type SessionReceipt = SessionReceiptFields & { readonly kid: string; readonly sig: string };

/** One accepted message (`GET /v1/sessions/:id/messages`), in the session's order. */
export interface SessionMessage {
  readonly seq: number;
  readonly message_id: string;
  readonly sender: string;
  /** The verb (`propose`, `vote`, ...). */
  readonly kind: string;
  readonly envelope_hash: ContentHash;
  readonly body: JsonValue;
  readonly accepted_at: string;
}

/** The lifecycle events of the watch stream. A newer runtime may add types. */
export type SessionEventType = "CREATED" | "MESSAGE_ACCEPTED" | "RESOLVED" | "EXPIRED" | "CANCELLED";

/** One lifecycle event from the watch stream. `id` orders every event of every session. */
export interface SessionEvent {
  readonly id: number;
  readonly session_id: string;
  // `string & {}` keeps the known names suggested while admitting types a newer runtime adds.
  readonly type: SessionEventType | (string & {});
  /** ISO 8601. */
  readonly at: string;
  /** `MESSAGE_ACCEPTED`: `{ seq, kind, sender, message_id }`; `RESOLVED`: `{ outcome }`; ... */
  readonly data: JsonObject;
}

const MODES: readonly string[] = ["decision", "proposal", "task", "handoff", "quorum"];
const STATUSES: readonly string[] = ["OPEN", "RESOLVED", "EXPIRED", "CANCELLED"];

function malformed(what: string): never {
  throw new SdkError(`The runtime's answer is malformed (${what})`, { reason: "bad_response" });
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isText(value: unknown, max = 1024): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= max;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Reads a SessionView, checking the members a caller relies on. */
export function readSessionView(value: unknown): SessionView {
  if (!isJsonObject(value)) malformed("session");
  if (!isText(value.id, 128)) malformed("session.id");
  if (typeof value.mode !== "string" || !MODES.includes(value.mode)) malformed("session.mode");
  if (!isText(value.initiator, 128)) malformed("session.initiator");
  const participants = value.participants;
  if (!Array.isArray(participants) || !participants.every((participant) => isText(participant, 128))) {
    malformed("session.participants");
  }
  if (typeof value.status !== "string" || !STATUSES.includes(value.status)) malformed("session.status");
  if (!isText(value.created_at) || !isText(value.expires_at)) malformed("session times");
  if (!isCount(value.message_count)) malformed("session.message_count");
  if (!isContentHash(value.history_hash)) malformed("session.history_hash");
  if (value.start_hash !== undefined && !isContentHash(value.start_hash)) malformed("session.start_hash");
  if (!isJsonObject(value.config)) malformed("session.config");
  if (!("state" in value)) malformed("session.state");
  return value as unknown as SessionView;
}

/** Reads the answer to a session message: `{ session, seq?, commitment? }`. */
export function readMessageAnswer(value: unknown): {
  session: SessionView;
  seq?: number;
  commitment?: SessionCommitment;
  receipt?: SessionReceipt;
} {
  if (!isJsonObject(value)) malformed("answer");
  const session = readSessionView(value.session);
  if (value.seq !== undefined && !isCount(value.seq)) malformed("seq");
  const commitment = value.commitment;
  if (commitment !== undefined) {
    if (
      !isJsonObject(commitment) ||
      !isText(commitment.session, 128) ||
      !isContentHash(commitment.history_hash) ||
      !isText(commitment.kid) ||
      !isText(commitment.sig)
    ) {
      malformed("commitment");
    }
  }
  const receipt = value.receipt;
  if (
    receipt !== undefined &&
    (!isJsonObject(receipt) ||
      !isText(receipt.session, 128) ||
      !isContentHash(receipt.request) ||
      !isText(receipt.kid) ||
      !isText(receipt.sig))
  ) {
    malformed("receipt");
  }
  return {
    session,
    ...(value.seq === undefined ? {} : { seq: value.seq }),
    ...(commitment === undefined ? {} : { commitment: commitment as unknown as SessionCommitment }),
    ...(receipt === undefined ? {} : { receipt: receipt as unknown as SessionReceipt }),
  };
}

/** Reads `{ messages: [...] }`. */
export function readMessages(value: unknown): SessionMessage[] {
  if (!isJsonObject(value) || !Array.isArray(value.messages)) malformed("messages");
  return value.messages.map((message) => {
    if (
      !isJsonObject(message) ||
      !isCount(message.seq) ||
      !isText(message.message_id, 128) ||
      !isText(message.sender, 128) ||
      !isText(message.kind, 64) ||
      !isContentHash(message.envelope_hash) ||
      !("body" in message)
    ) {
      malformed("message");
    }
    return message as unknown as SessionMessage;
  });
}

/**
 * Reads one watch event's `data:` text. `lastEventId`, the stream's `id:`, must name the same event
 * when present: the resume point is taken from it, so the two may not disagree.
 */
export function readSessionEvent(data: string, lastEventId: string): SessionEvent {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return badEvent("not JSON");
  }
  if (!isJsonObject(value)) return badEvent("not an object");
  const { id } = value;
  if (!isCount(id) || id === 0) return badEvent("id");
  if (lastEventId !== "" && lastEventId !== String(id)) return badEvent("id differs from the stream's");
  if (!isText(value.session_id, 128)) return badEvent("session_id");
  if (!isText(value.type, 64)) return badEvent("type");
  if (!isText(value.at, 64)) return badEvent("at");
  if (!isJsonObject(value.data)) return badEvent("data");
  return value as unknown as SessionEvent;
}

function badEvent(what: string): never {
  throw new SdkError(`The watch stream sent a malformed event (${what})`, { reason: "bad_event" });
}
