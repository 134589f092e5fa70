// The handoff mode: the holder (the initiator) offers its work, with the context it needs, to one
// participant at a time; an accept transfers it and resolves the session, a decline lets the holder
// offer again.
import type { JsonObject, ModeContext, ModeMachine, ModeMessage, ModeStep } from "../types.js";
import { defineMode } from "./define-mode.js";
import { FieldReader } from "./fields.js";
import { ruleViolation } from "./mode-errors.js";

export type HandoffOffer = { to: string; context: JsonObject };
export type HandoffDecline = { to: string; reason: string | null };

export type HandoffState = {
  phase: "holding" | "offered" | "accepted";
  holder: string;
  /** The pending offer while `offered`, the accepted one once `accepted`. */
  offer: HandoffOffer | null;
  declines: HandoffDecline[];
};

function initHandoff(context: ModeContext): HandoffState {
  FieldReader.config("handoff", context.config, []);
  return { phase: "holding", holder: context.initiator, offer: null, declines: [] };
}

function pendingOfferTo(state: HandoffState, sender: string): HandoffOffer {
  if (state.offer === null) throw ruleViolation("no_offer", "There is no pending offer");
  if (state.offer.to !== sender)
    throw ruleViolation("not_recipient", "Only the offer's recipient may answer it");
  return state.offer;
}

function offer(state: HandoffState, message: ModeMessage, context: ModeContext): ModeStep<HandoffState> {
  const body = FieldReader.body("offer", message.body, ["to", "context"]);
  const next: HandoffOffer = { to: body.agent("to"), context: body.object("context") };
  if (message.sender !== state.holder) throw ruleViolation("not_holder", "Only the current holder may offer");
  if (state.phase === "offered") throw ruleViolation("offer_pending", "The pending offer awaits an answer");
  if (next.to === state.holder) throw ruleViolation("self_handoff", "The holder cannot hand off to itself");
  if (!context.participants.includes(next.to)) {
    throw ruleViolation("recipient_not_participant", `${next.to} is not a participant`);
  }
  return { state: { ...state, phase: "offered", offer: next } };
}

function accept(state: HandoffState, message: ModeMessage): ModeStep<HandoffState> {
  FieldReader.body("accept", message.body, []);
  const pending = pendingOfferTo(state, message.sender);
  return {
    state: { ...state, phase: "accepted" },
    outcome: {
      result: "handed_off",
      from: state.holder,
      to: pending.to,
      context: structuredClone(pending.context),
    },
  };
}

function decline(state: HandoffState, message: ModeMessage): ModeStep<HandoffState> {
  const body = FieldReader.body("decline", message.body, ["reason"]);
  const reason = body.optionalText("reason");
  const pending = pendingOfferTo(state, message.sender);
  return {
    state: {
      ...state,
      phase: "holding",
      offer: null,
      declines: [...state.declines, { to: pending.to, reason }],
    },
  };
}

/**
 * The handoff mode's machine (docs/sessions.md#handoff).
 *
 * Example: `handoffMode.apply(state, { sender: "alice", kind: "offer", body: { to: "bob",
 * context: { ticket: "INC-42" } }, at }, context)`.
 */
export const handoffMode: ModeMachine<HandoffState> = defineMode<HandoffState>({
  mode: "handoff",
  init: initHandoff,
  isOpen: (state) => state.phase !== "accepted",
  handlers: { offer, accept, decline },
});
