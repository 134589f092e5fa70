// The handoff mode: the holder offers its context to one participant at a time; accept transfers
// it (the context travels in the outcome), decline hands the turn back to the holder.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type HandoffState, handoffMode } from "../../../src/sessions/modes/handoff-mode.js";
import {
  MALFORMED_BODIES,
  assertRandomRuns,
  expectInvalidBody,
  expectInvalidConfig,
  expectRule,
  messageArbitrary,
  modeContext,
  msg,
  play,
  start,
  step,
  wireJson,
} from "./mode-harness.js";

const context = modeContext();
const ticket = { ticket: "INC-4211", customer: "acme", notes: ["refund approved", "awaiting carrier"] };
const offered = [msg("alice", "offer", { to: "bob", context: ticket })];

function stateAfter(messages = offered): HandoffState {
  return play(handoffMode, context, messages).state;
}

describe("handoff mode: config", () => {
  it("starts with the initiator holding and takes no settings", () => {
    expect(start(handoffMode, context)).toStrictEqual({
      phase: "holding",
      holder: "alice",
      offer: null,
      declines: [],
    });
    expectInvalidConfig(() => handoffMode.init(modeContext({ to: "bob" })));
  });
});

describe("handoff mode: happy path", () => {
  it("offer → accept resolves with from, to and the context", () => {
    const { state, outcome } = play(handoffMode, context, [...offered, msg("bob", "accept")]);
    expect(outcome).toStrictEqual({ result: "handed_off", from: "alice", to: "bob", context: ticket });
    expect(state).toMatchObject({ phase: "accepted", offer: { to: "bob", context: ticket } });
  });

  it("after a decline the holder may offer again, to the same or another participant", () => {
    const { state, outcome } = play(handoffMode, context, [
      ...offered,
      msg("bob", "decline", { reason: "On call for another incident" }),
      msg("alice", "offer", { to: "bob", context: ticket }),
      msg("bob", "decline"),
      msg("alice", "offer", { to: "carol", context: { ...ticket, priority: "high" } }),
      msg("carol", "accept"),
    ]);
    expect(outcome).toStrictEqual({
      result: "handed_off",
      from: "alice",
      to: "carol",
      context: { ...ticket, priority: "high" },
    });
    expect(state.declines).toStrictEqual([
      { to: "bob", reason: "On call for another incident" },
      { to: "bob", reason: null },
    ]);
  });

  it("takes an empty context", () => {
    const { outcome } = play(handoffMode, context, [
      msg("alice", "offer", { to: "carol", context: {} }),
      msg("carol", "accept"),
    ]);
    expect(outcome).toMatchObject({ context: {} });
  });
});

describe("handoff mode: refusals", () => {
  it("refuses an unknown verb", () => {
    expectRule(() => step(handoffMode, stateAfter(), msg("bob", "withdraw"), context), "unknown_verb");
  });

  it("refuses accept and decline with no pending offer", () => {
    const state = start(handoffMode, context);
    expectRule(() => step(handoffMode, state, msg("bob", "accept"), context), "no_offer");
    expectRule(() => step(handoffMode, state, msg("bob", "decline"), context), "no_offer");
    const declined = stateAfter([...offered, msg("bob", "decline")]);
    expectRule(() => step(handoffMode, declined, msg("bob", "accept"), context), "no_offer");
  });

  it("lets only the holder offer, one offer at a time, to another participant", () => {
    const state = start(handoffMode, context);
    expectRule(
      () => step(handoffMode, state, msg("bob", "offer", { to: "carol", context: {} }), context),
      "not_holder",
    );
    expectRule(
      () => step(handoffMode, stateAfter(), msg("alice", "offer", { to: "carol", context: {} }), context),
      "offer_pending",
    );
    expectRule(
      () => step(handoffMode, state, msg("alice", "offer", { to: "alice", context: {} }), context),
      "self_handoff",
    );
    expectRule(
      () => step(handoffMode, state, msg("alice", "offer", { to: "mallory", context: {} }), context),
      "recipient_not_participant",
    );
  });

  it("lets only the recipient accept or decline", () => {
    expectRule(() => step(handoffMode, stateAfter(), msg("carol", "accept"), context), "not_recipient");
    expectRule(() => step(handoffMode, stateAfter(), msg("alice", "decline"), context), "not_recipient");
  });

  it("refuses every message once resolved", () => {
    const { state } = play(handoffMode, context, [...offered, msg("bob", "accept")]);
    expectRule(
      () => step(handoffMode, state, msg("alice", "offer", { to: "carol", context: {} }), context),
      "session_resolved",
    );
  });

  it.each([
    ["offer", { to: "bob" }],
    ["offer", { context: {} }],
    ["offer", { to: "bob", context: [] }],
    ["offer", { to: "bob", context: "ticket" }],
    ["offer", { to: "Bob!", context: {} }],
    ["offer", { to: "bob", context: {}, deadline: 5 }],
    ["accept", { ok: true }],
    ["decline", { reason: "" }],
    ["decline", { reason: null }],
  ])("refuses a malformed %s body %j", (kind, body) => {
    const state = kind === "offer" ? start(handoffMode, context) : stateAfter();
    expectInvalidBody(() =>
      step(handoffMode, state, msg(kind === "offer" ? "alice" : "bob", kind, body), context),
    );
  });

  it("refuses bodies that are not objects", () => {
    for (const body of MALFORMED_BODIES) {
      expectInvalidBody(() => step(handoffMode, stateAfter(), msg("bob", "accept", body as never), context));
    }
  });
});

describe("handoff mode: properties", () => {
  const bodies = {
    offer: fc.record({
      to: fc.constantFrom("alice", "bob", "carol", "mallory"),
      context: fc.dictionary(fc.constantFrom("ticket", "notes"), wireJson({ maxDepth: 2 }), {
        maxKeys: 2,
        noNullPrototype: true,
      }),
    }),
    accept: fc.constant({}),
    decline: fc.record({ reason: fc.constant("Busy") }, { requiredKeys: [] }),
  };
  const reasons = [
    "unknown_verb",
    "session_resolved",
    "not_holder",
    "offer_pending",
    "self_handoff",
    "recipient_not_participant",
    "no_offer",
    "not_recipient",
  ];

  it("random runs refuse only with documented codes; the context reaches the one who accepted", () => {
    const messages = messageArbitrary(context.participants, bodies, ["to", "context"], { offer: 2 });
    let handedOff = 0;
    assertRandomRuns(handoffMode, context, messages, reasons, (outcome, _state, history) => {
      handedOff += 1;
      const lastOffer = history.filter((message) => message.kind === "offer").at(-1)!;
      // Compared as stored JSON: -0 in a generated context is 0 once written (as on the wire).
      expect(JSON.parse(JSON.stringify(outcome))).toStrictEqual({
        result: "handed_off",
        from: "alice",
        to: lastOffer.body.to,
        context: JSON.parse(JSON.stringify(lastOffer.body.context)),
      });
      expect(history.at(-1)!.sender).toBe(lastOffer.body.to);
    });
    expect(handedOff).toBeGreaterThan(0);
  });
});
