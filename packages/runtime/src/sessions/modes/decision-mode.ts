// The decision mode: participants propose, evaluate, object and vote; the initiator commits one
// proposal once enough participants approve it, and a critical objection or a BLOCK stops it all.
import type { ModeContext, ModeMachine, ModeMessage, ModeStep } from "../types.js";
import { defineMode } from "./define-mode.js";
import { FieldReader } from "./fields.js";
import { ruleViolation } from "./mode-errors.js";

export const DECISION_VOTES = ["APPROVE", "REJECT", "ABSTAIN"] as const;
export type DecisionVote = (typeof DECISION_VOTES)[number];
export const DECISION_RECOMMENDATIONS = ["APPROVE", "REVIEW", "BLOCK", "REJECT"] as const;
export type DecisionRecommendation = (typeof DECISION_RECOMMENDATIONS)[number];
export const OBJECTION_SEVERITIES = ["low", "medium", "high", "critical"] as const;
export type ObjectionSeverity = (typeof OBJECTION_SEVERITIES)[number];

export type DecisionEvaluation = {
  by: string;
  recommendation: DecisionRecommendation;
  confidence: number;
  rationale: string | null;
};
export type DecisionObjection = { by: string; severity: ObjectionSeverity; reason: string };
export type DecisionBallot = { by: string; vote: DecisionVote };

export type DecisionProposal = {
  proposal_id: string;
  proposer: string;
  title: string | null;
  detail: string | null;
  /** One per evaluator: a later evaluation replaces the earlier one. */
  evaluations: DecisionEvaluation[];
  /** Every objection raised, in order. */
  objections: DecisionObjection[];
  /** One per voter, in the order they first voted: a later vote replaces the earlier one. */
  votes: DecisionBallot[];
};

export type DecisionState = {
  phase: "open" | "committed" | "stopped";
  /** APPROVE votes a proposal needs before the initiator may commit it. */
  min_approvals: number;
  proposals: DecisionProposal[];
};

/** A strict majority of the participants: 2 of 3, 3 of 4. */
export function majorityOf(participants: number): number {
  return Math.floor(participants / 2) + 1;
}

function initDecision(context: ModeContext): DecisionState {
  const config = FieldReader.config("decision", context.config, ["min_approvals"]);
  const minApprovals = config.has("min_approvals")
    ? config.integer("min_approvals", 1, context.participants.length)
    : majorityOf(context.participants.length);
  return { phase: "open", min_approvals: minApprovals, proposals: [] };
}

function findProposal(state: DecisionState, proposalId: string): DecisionProposal {
  const proposal = state.proposals.find((candidate) => candidate.proposal_id === proposalId);
  if (proposal === undefined) {
    throw ruleViolation("unknown_proposal", `No proposal ${proposalId} in this decision`);
  }
  return proposal;
}

function withProposal(state: DecisionState, next: DecisionProposal): DecisionState {
  return {
    ...state,
    proposals: state.proposals.map((proposal) =>
      proposal.proposal_id === next.proposal_id ? next : proposal,
    ),
  };
}

/** Replaces the sender's entry, keeping its place, or appends a first one. */
function upsertBy<T extends { by: string }>(entries: readonly T[], entry: T): T[] {
  return entries.some((existing) => existing.by === entry.by)
    ? entries.map((existing) => (existing.by === entry.by ? entry : existing))
    : [...entries, entry];
}

function tally(proposal: DecisionProposal): Record<DecisionVote, number> {
  const counts: Record<DecisionVote, number> = { APPROVE: 0, REJECT: 0, ABSTAIN: 0 };
  for (const ballot of proposal.votes) counts[ballot.vote] += 1;
  return counts;
}

function propose(state: DecisionState, message: ModeMessage): ModeStep<DecisionState> {
  const body = FieldReader.body("propose", message.body, ["proposal_id", "title", "detail"]);
  const proposalId = body.id("proposal_id");
  const title = body.optionalText("title");
  const detail = body.optionalText("detail");
  if (state.proposals.some((proposal) => proposal.proposal_id === proposalId)) {
    throw ruleViolation("duplicate_proposal", `Proposal ${proposalId} already exists`);
  }
  const proposal: DecisionProposal = {
    proposal_id: proposalId,
    proposer: message.sender,
    title,
    detail,
    evaluations: [],
    objections: [],
    votes: [],
  };
  return { state: { ...state, proposals: [...state.proposals, proposal] } };
}

function evaluate(state: DecisionState, message: ModeMessage): ModeStep<DecisionState> {
  const body = FieldReader.body("evaluate", message.body, [
    "proposal_id",
    "recommendation",
    "confidence",
    "rationale",
  ]);
  const proposalId = body.id("proposal_id");
  const recommendation = body.oneOf("recommendation", DECISION_RECOMMENDATIONS);
  const confidence = body.number("confidence", 0, 1);
  const rationale = body.optionalText("rationale");
  const proposal = findProposal(state, proposalId);
  const evaluation: DecisionEvaluation = { by: message.sender, recommendation, confidence, rationale };
  const next = withProposal(state, {
    ...proposal,
    evaluations: upsertBy(proposal.evaluations, evaluation),
  });
  if (recommendation !== "BLOCK") return { state: next };
  return {
    state: { ...next, phase: "stopped" },
    outcome: {
      result: "stopped",
      proposal_id: proposalId,
      stopped_by: message.sender,
      cause: "block_evaluation",
      reason: rationale,
    },
  };
}

function object(state: DecisionState, message: ModeMessage): ModeStep<DecisionState> {
  const body = FieldReader.body("object", message.body, ["proposal_id", "severity", "reason"]);
  const proposalId = body.id("proposal_id");
  const severity = body.oneOf("severity", OBJECTION_SEVERITIES);
  const reason = body.text("reason");
  const proposal = findProposal(state, proposalId);
  const next = withProposal(state, {
    ...proposal,
    objections: [...proposal.objections, { by: message.sender, severity, reason }],
  });
  if (severity !== "critical") return { state: next };
  return {
    state: { ...next, phase: "stopped" },
    outcome: {
      result: "stopped",
      proposal_id: proposalId,
      stopped_by: message.sender,
      cause: "critical_objection",
      reason,
    },
  };
}

function vote(state: DecisionState, message: ModeMessage): ModeStep<DecisionState> {
  const body = FieldReader.body("vote", message.body, ["proposal_id", "vote"]);
  const proposalId = body.id("proposal_id");
  const choice = body.oneOf("vote", DECISION_VOTES);
  const proposal = findProposal(state, proposalId);
  const votes = upsertBy(proposal.votes, { by: message.sender, vote: choice });
  return { state: withProposal(state, { ...proposal, votes }) };
}

function commit(state: DecisionState, message: ModeMessage, context: ModeContext): ModeStep<DecisionState> {
  const body = FieldReader.body("commit", message.body, ["proposal_id"]);
  const proposalId = body.id("proposal_id");
  if (message.sender !== context.initiator) {
    throw ruleViolation("not_initiator", "Only the initiator may commit a decision");
  }
  const proposal = findProposal(state, proposalId);
  const votes = tally(proposal);
  if (votes.APPROVE < state.min_approvals) {
    throw ruleViolation(
      "threshold_not_met",
      `Proposal ${proposalId} has ${votes.APPROVE} of the ${state.min_approvals} approvals it needs`,
    );
  }
  return {
    state: { ...state, phase: "committed" },
    outcome: {
      result: "committed",
      proposal_id: proposalId,
      proposer: proposal.proposer,
      title: proposal.title,
      votes,
      approvals: proposal.votes.filter((ballot) => ballot.vote === "APPROVE").map((ballot) => ballot.by),
      min_approvals: state.min_approvals,
    },
  };
}

/**
 * The decision mode's machine (docs/sessions.md#decision).
 *
 * Example: `decisionMode.apply(state, { sender: "bob", kind: "vote", body: { proposal_id: "p1",
 * vote: "APPROVE" }, at }, context)`.
 */
export const decisionMode: ModeMachine<DecisionState> = defineMode<DecisionState>({
  mode: "decision",
  init: initDecision,
  isOpen: (state) => state.phase === "open",
  handlers: { propose, evaluate, object, vote, commit },
});
