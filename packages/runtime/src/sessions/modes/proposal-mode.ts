// The proposal mode: a negotiation. Participants make offers and counter-offers; the first accept
// of an open offer by someone other than its author settles it, and rejecting the last open offer
// ends it without agreement.
import type { JsonObject, ModeContext, ModeMachine, ModeMessage, ModeStep } from "../types.js";
import { defineMode } from "./define-mode.js";
import { FieldReader } from "./fields.js";
import { ruleViolation } from "./mode-errors.js";

export type ProposalOffer = {
  proposal_id: string;
  author: string;
  /** The offer this one counters, or null for a fresh proposal. */
  counters: string | null;
  terms: JsonObject;
  summary: string | null;
  /** `countered` offers were answered with a counter-offer and can no longer be accepted. */
  status: "open" | "countered" | "accepted" | "rejected";
  /** Why it was rejected, when it was. */
  reason: string | null;
};

export type ProposalState = {
  phase: "open" | "accepted" | "rejected";
  offers: ProposalOffer[];
};

function initProposal(context: ModeContext): ProposalState {
  FieldReader.config("proposal", context.config, []);
  return { phase: "open", offers: [] };
}

/** The offer `proposalId`, which must still be open and not the sender's own. */
function openOfferFromOther(
  state: ProposalState,
  proposalId: string,
  sender: string,
  verb: string,
): ProposalOffer {
  const offer = state.offers.find((candidate) => candidate.proposal_id === proposalId);
  if (offer === undefined)
    throw ruleViolation("unknown_proposal", `No offer ${proposalId} in this negotiation`);
  if (offer.status !== "open") {
    throw ruleViolation(
      "offer_not_open",
      `Offer ${proposalId} is ${offer.status}, so it cannot be ${verb}ed`,
    );
  }
  if (offer.author === sender) throw ruleViolation("own_offer", `An author cannot ${verb} their own offer`);
  return offer;
}

function assertNewId(state: ProposalState, proposalId: string): void {
  if (state.offers.some((offer) => offer.proposal_id === proposalId)) {
    throw ruleViolation("duplicate_proposal", `Offer ${proposalId} already exists`);
  }
}

function withStatus(
  state: ProposalState,
  proposalId: string,
  status: ProposalOffer["status"],
  reason: string | null = null,
): ProposalOffer[] {
  return state.offers.map((offer) =>
    offer.proposal_id === proposalId ? { ...offer, status, reason } : offer,
  );
}

function propose(state: ProposalState, message: ModeMessage): ModeStep<ProposalState> {
  const body = FieldReader.body("propose", message.body, ["proposal_id", "terms", "summary"]);
  const proposalId = body.id("proposal_id");
  const terms = body.object("terms");
  const summary = body.optionalText("summary");
  assertNewId(state, proposalId);
  const offer: ProposalOffer = {
    proposal_id: proposalId,
    author: message.sender,
    counters: null,
    terms,
    summary,
    status: "open",
    reason: null,
  };
  return { state: { ...state, offers: [...state.offers, offer] } };
}

function counter(state: ProposalState, message: ModeMessage): ModeStep<ProposalState> {
  const body = FieldReader.body("counter", message.body, ["proposal_id", "counters", "terms", "summary"]);
  const proposalId = body.id("proposal_id");
  const countered = body.id("counters");
  const terms = body.object("terms");
  const summary = body.optionalText("summary");
  assertNewId(state, proposalId);
  openOfferFromOther(state, countered, message.sender, "counter");
  const offer: ProposalOffer = {
    proposal_id: proposalId,
    author: message.sender,
    counters: countered,
    terms,
    summary,
    status: "open",
    reason: null,
  };
  return { state: { ...state, offers: [...withStatus(state, countered, "countered"), offer] } };
}

function accept(state: ProposalState, message: ModeMessage): ModeStep<ProposalState> {
  const body = FieldReader.body("accept", message.body, ["proposal_id"]);
  const proposalId = body.id("proposal_id");
  const offer = openOfferFromOther(state, proposalId, message.sender, "accept");
  return {
    state: { phase: "accepted", offers: withStatus(state, proposalId, "accepted") },
    outcome: {
      result: "accepted",
      proposal_id: proposalId,
      proposed_by: offer.author,
      accepted_by: message.sender,
      counters: offer.counters,
      terms: structuredClone(offer.terms),
    },
  };
}

function reject(state: ProposalState, message: ModeMessage): ModeStep<ProposalState> {
  const body = FieldReader.body("reject", message.body, ["proposal_id", "reason"]);
  const proposalId = body.id("proposal_id");
  const reason = body.optionalText("reason");
  openOfferFromOther(state, proposalId, message.sender, "reject");
  const offers = withStatus(state, proposalId, "rejected", reason);
  if (offers.some((offer) => offer.status === "open")) return { state: { ...state, offers } };
  return {
    state: { phase: "rejected", offers },
    outcome: { result: "rejected", proposal_id: proposalId, rejected_by: message.sender, reason },
  };
}

/**
 * The proposal mode's machine (docs/sessions.md#proposal).
 *
 * Example: `proposalMode.apply(state, { sender: "bob", kind: "accept", body: { proposal_id: "p1" }, at },
 * context)` resolves with the terms of `p1`.
 */
export const proposalMode: ModeMachine<ProposalState> = defineMode<ProposalState>({
  mode: "proposal",
  init: initProposal,
  isOpen: (state) => state.phase === "open",
  handlers: { propose, counter, accept, reject },
});
