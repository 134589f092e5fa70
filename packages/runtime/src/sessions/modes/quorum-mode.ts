// The quorum mode: k of the n participants must approve. Each votes once, for good; the session
// resolves the moment k approvals arrive, or the moment k can no longer be reached.
import type { ModeContext, ModeMachine, ModeMessage, ModeStep } from "../types.js";
import { defineMode } from "./define-mode.js";
import { FieldReader } from "./fields.js";
import { ruleViolation } from "./mode-errors.js";

export type QuorumBallot = { by: string; vote: "approve" | "reject"; reason: string | null };

export type QuorumState = {
  phase: "open" | "approved" | "rejected";
  /** Approvals needed, 1 to the number of participants. */
  k: number;
  /** Participants when the session started: rejection is certain once more than n − k reject. */
  n: number;
  votes: QuorumBallot[];
};

function initQuorum(context: ModeContext): QuorumState {
  const config = FieldReader.config("quorum", context.config, ["k"]);
  const n = context.participants.length;
  return { phase: "open", k: config.integer("k", 1, n), n, votes: [] };
}

function cast(state: QuorumState, message: ModeMessage, vote: QuorumBallot["vote"]): ModeStep<QuorumState> {
  const body = FieldReader.body(vote, message.body, ["reason"]);
  const reason = body.optionalText("reason");
  if (state.votes.some((ballot) => ballot.by === message.sender)) {
    throw ruleViolation("already_voted", "Quorum votes are final: this participant has voted");
  }
  const votes = [...state.votes, { by: message.sender, vote, reason }];
  const approvals = votes.filter((ballot) => ballot.vote === "approve").map((ballot) => ballot.by);
  const rejections = votes.filter((ballot) => ballot.vote === "reject").map((ballot) => ballot.by);
  const phase =
    approvals.length >= state.k ? "approved" : rejections.length > state.n - state.k ? "rejected" : "open";
  const next: QuorumState = { ...state, phase, votes };
  if (phase === "open") return { state: next };
  return { state: next, outcome: { result: phase, k: state.k, n: state.n, approvals, rejections } };
}

/**
 * The quorum mode's machine (docs/sessions.md#quorum).
 *
 * Example: with `config: { k: 2 }` and participants alice, bob, carol, approvals from alice and bob
 * resolve the session with `{ result: "approved", k: 2, n: 3, approvals: ["alice", "bob"], rejections: [] }`.
 */
export const quorumMode: ModeMachine<QuorumState> = defineMode<QuorumState>({
  mode: "quorum",
  init: initQuorum,
  isOpen: (state) => state.phase === "open",
  handlers: {
    approve: (state, message) => cast(state, message, "approve"),
    reject: (state, message) => cast(state, message, "reject"),
  },
});
