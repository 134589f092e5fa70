// What the runtime signs about a coordination session (docs/sessions.md): a receipt for each accepted
// session envelope, and the commitment of the outcome, carrying the hash of the whole message history.
import { createHash } from "node:crypto";
import type { Ed25519PublicKey } from "../crypto/ed25519.js";
import { SignetError } from "../errors/signet-error.js";
import type { ContentHash } from "../crypto/content-hash.js";
import { verifyRuntimeDocument } from "./runtime-signed.js";

/** The domain of a session commitment's runtime signature. */
export const SESSION_COMMITMENT_DOMAIN = "session-commitment";

/** Where every session's history hash begins, before the start envelope is folded in. */
export const SESSION_HISTORY_ORIGIN: ContentHash = `sha256:${"0".repeat(64)}`;

/** One step of the history hash: `sha256:` + hex SHA-256 of `previous ‖ "\n" ‖ envelopeHash`. */
export function chainSessionHistory(previous: ContentHash, envelopeHash: ContentHash): ContentHash {
  return `sha256:${createHash("sha256").update(previous).update("\n").update(envelopeHash).digest("hex")}`;
}

/**
 * The history hash of a session: the origin, then the start envelope's hash, then each accepted
 * message's envelope hash in order.
 *
 * Example: `sessionHistoryHash(session.start_hash, messages.map((m) => m.envelope_hash))`.
 */
export function sessionHistoryHash(
  startHash: ContentHash,
  envelopeHashes: readonly ContentHash[],
): ContentHash {
  let history = chainSessionHistory(SESSION_HISTORY_ORIGIN, startHash);
  for (const hash of envelopeHashes) history = chainSessionHistory(history, hash);
  return history;
}

/**
 * Checks a session commitment with only the runtime's public key: its signature, and, when the
 * accepted messages' envelope hashes are given, that the history it commits is exactly theirs.
 * Throws `SIGNATURE_INVALID` (reason `runtime_sig`) or `HASH_MISMATCH` (reason `history`).
 */
export function verifySessionCommitment(
  commitment: Readonly<Record<string, unknown>>,
  runtimeKey: Ed25519PublicKey,
  history?: { readonly startHash: ContentHash; readonly envelopeHashes: readonly ContentHash[] },
): void {
  verifyRuntimeDocument(SESSION_COMMITMENT_DOMAIN, commitment, runtimeKey);
  if (history === undefined) return;
  const expected = sessionHistoryHash(history.startHash, history.envelopeHashes);
  if (
    commitment.start_hash !== history.startHash ||
    commitment.history_hash !== expected ||
    commitment.message_count !== history.envelopeHashes.length
  ) {
    throw new SignetError("HASH_MISMATCH", "The commitment does not cover this message history", {
      reason: "history",
    });
  }
}

/** The domain of the runtime's receipt for an accepted session envelope. */
export const SESSION_RECEIPT_DOMAIN = "session-receipt";

/**
 * What the runtime signs when it accepts a session envelope (a start, a message or a cancel): which
 * envelope (`request`, its envelope hash), where it stands in the session (`seq` for a message), and
 * the session after it.
 */
export interface SessionReceiptFields {
  readonly session: string;
  /** The envelope's type, e.g. `session.vote`. */
  readonly type: string;
  readonly message_id: string;
  readonly from: string;
  readonly request: ContentHash;
  readonly seq?: number;
  readonly status: string;
  readonly message_count: number;
  readonly history_hash: ContentHash;
  /** When the runtime accepted it (RFC 3339). */
  readonly at: string;
}

/**
 * Checks a session receipt with only the runtime's public key, and, when given, that it is for the
 * envelope and session expected. Throws `SIGNATURE_INVALID` (reason `runtime_sig`, or
 * `receipt_binding` when it is validly signed but for another envelope or session).
 *
 * Example: `verifySessionReceipt(answer.receipt, runtimeKey, { request: signed.hash, session: id })`.
 */
export function verifySessionReceipt(
  receipt: Readonly<Record<string, unknown>>,
  runtimeKey: Ed25519PublicKey,
  expected: { readonly request?: ContentHash; readonly session?: string } = {},
): void {
  verifyRuntimeDocument(SESSION_RECEIPT_DOMAIN, receipt, runtimeKey);
  if (
    (expected.request !== undefined && receipt.request !== expected.request) ||
    (expected.session !== undefined && receipt.session !== expected.session)
  ) {
    throw new SignetError("SIGNATURE_INVALID", "The receipt is for another envelope or session", {
      reason: "receipt_binding",
    });
  }
}
