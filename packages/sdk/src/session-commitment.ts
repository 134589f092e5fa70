// Checking a session commitment: the runtime's signature over a resolved session's outcome and history.
import {
  type ContentHash,
  isSignetError,
  verifySessionCommitment as verifyCommitmentDocument,
  verifySessionReceipt as verifyReceiptDocument,
} from "@signet/protocol";
import { SdkError, protocolError } from "./errors.js";
import { type RuntimeKeyInput, parseRuntimeKey } from "./runtime-key.js";
import type { SessionCommitment, SessionReceipt } from "./session-wire.js";

/** What a commitment is expected to name, when the caller knows it. */
export interface CommitmentExpectation {
  /** The session id. */
  readonly session?: string;
  /** The history hash the session showed when it resolved. */
  readonly historyHash?: string;
  /**
   * The history itself: the start envelope's hash (`start_hash` of the session) and the accepted
   * messages' envelope hashes in order (`messages()`); the commitment must cover exactly these.
   */
  readonly history?: {
    readonly startHash: ContentHash;
    readonly envelopeHashes: readonly ContentHash[];
  };
}

/**
 * Verifies a session commitment against the runtime's pinned public key, and that it names the session
 * (and history) expected. Throws `SignatureInvalidError` (reason `runtime_sig`, or `commitment_binding`
 * when it is validly signed but for another session or history hash) or `HashMismatchError` (reason
 * `history`, when it does not cover the given messages). A client with `runtimePublicKey` checks every
 * commitment it receives itself; this is for commitments passed on by others, and for recomputing the
 * history from the messages.
 *
 * Example:
 * ```ts
 * const view = await session.get();
 * const messages = await session.messages();
 * verifySessionCommitment(commitment, readFileSync(".signet/keys/runtime.pub", "utf8"), {
 *   session: session.id,
 *   history: { startHash: view.start_hash!, envelopeHashes: messages.map((m) => m.envelope_hash) },
 * });
 * ```
 */
export function verifySessionCommitment(
  commitment: SessionCommitment,
  runtimePublicKey: RuntimeKeyInput,
  expected: CommitmentExpectation = {},
): void {
  const key = parseRuntimeKey(runtimePublicKey);
  if (key === undefined) throw new SdkError("runtimePublicKey is required", { reason: "runtime_key" });
  try {
    verifyCommitmentDocument(commitment, key, expected.history);
  } catch (error) {
    if (isSignetError(error)) throw protocolError(error.code, error.message, error.details, { cause: error });
    throw error;
  }
  if (
    (expected.session !== undefined && commitment.session !== expected.session) ||
    (expected.historyHash !== undefined && commitment.history_hash !== expected.historyHash)
  ) {
    throw protocolError("SIGNATURE_INVALID", "The commitment is for another session or history", {
      reason: "commitment_binding",
    });
  }
}

/**
 * Verifies the runtime's receipt for an accepted session envelope against its pinned public key, and
 * that it is for the envelope (`request`, its envelope hash) and session expected. Throws
 * `SignatureInvalidError` (reason `runtime_sig`, or `receipt_binding` when validly signed for another
 * envelope or session). A client with `runtimePublicKey` checks every receipt it receives itself.
 *
 * Example: `verifySessionReceipt(answer.receipt!, runtimeKey, { request: answer.envelopeHash, session: id })`.
 */
export function verifySessionReceipt(
  receipt: SessionReceipt,
  runtimePublicKey: RuntimeKeyInput,
  expected: { readonly request?: ContentHash; readonly session?: string } = {},
): void {
  const key = parseRuntimeKey(runtimePublicKey);
  if (key === undefined) throw new SdkError("runtimePublicKey is required", { reason: "runtime_key" });
  try {
    verifyReceiptDocument(receipt as unknown as Record<string, unknown>, key, expected);
  } catch (error) {
    if (isSignetError(error)) throw protocolError(error.code, error.message, error.details, { cause: error });
    throw error;
  }
}
