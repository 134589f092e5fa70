// The proposal mode: offers and counter-offers; the first accept of an open offer by a non-author
// resolves with its terms; rejecting the last open offer resolves as rejected.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ProposalState, proposalMode } from "../../../src/sessions/modes/proposal-mode.js";
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
} from "./mode-harness.js";

const context = modeContext();
const offerTerms = { price_eur: 1200, delivery_days: 10 };
const offered = [msg("alice", "propose", { proposal_id: "o1", terms: offerTerms, summary: "First offer" })];

function stateAfter(messages = offered): ProposalState {
  return play(proposalMode, context, messages).state;
}

describe("proposal mode: config", () => {
  it("starts with no offers and takes no settings", () => {
    expect(start(proposalMode, context)).toStrictEqual({ phase: "open", offers: [] });
    expectInvalidConfig(() => proposalMode.init(modeContext({ rounds: 3 })));
    expectInvalidConfig(() => proposalMode.init({ ...context, config: "x" as never }));
  });
});

describe("proposal mode: happy path", () => {
  it("resolves on accept with the accepted terms, who offered and who accepted", () => {
    const { state, outcome } = play(proposalMode, context, [
      ...offered,
      msg("bob", "accept", { proposal_id: "o1" }),
    ]);
    expect(outcome).toStrictEqual({
      result: "accepted",
      proposal_id: "o1",
      proposed_by: "alice",
      accepted_by: "bob",
      counters: null,
      terms: offerTerms,
    });
    expect(state.phase).toBe("accepted");
    expect(state.offers[0]!.status).toBe("accepted");
  });

  it("negotiates through counter-offers; a countered offer is closed", () => {
    const state = stateAfter([
      ...offered,
      msg("bob", "counter", {
        proposal_id: "o2",
        counters: "o1",
        terms: { price_eur: 900, delivery_days: 10 },
      }),
    ]);
    expect(state.offers.map((offer) => [offer.proposal_id, offer.status, offer.counters])).toStrictEqual([
      ["o1", "countered", null],
      ["o2", "open", "o1"],
    ]);
    expectRule(
      () => step(proposalMode, state, msg("carol", "accept", { proposal_id: "o1" }), context),
      "offer_not_open",
    );
    const { outcome } = play(proposalMode, context, [
      ...offered,
      msg("bob", "counter", { proposal_id: "o2", counters: "o1", terms: { price_eur: 900 } }),
      msg("alice", "counter", { proposal_id: "o3", counters: "o2", terms: { price_eur: 1000 } }),
      msg("bob", "accept", { proposal_id: "o3" }),
    ]);
    expect(outcome).toMatchObject({
      proposal_id: "o3",
      proposed_by: "alice",
      counters: "o2",
      terms: { price_eur: 1000 },
    });
  });

  it("resolves as rejected when the last open offer is rejected", () => {
    const { state, outcome } = play(proposalMode, context, [
      ...offered,
      msg("bob", "reject", { proposal_id: "o1", reason: "Over budget" }),
    ]);
    expect(outcome).toStrictEqual({
      result: "rejected",
      proposal_id: "o1",
      rejected_by: "bob",
      reason: "Over budget",
    });
    expect(state).toMatchObject({
      phase: "rejected",
      offers: [{ status: "rejected", reason: "Over budget" }],
    });
  });

  it("keeps negotiating after a reject while another offer is open", () => {
    const state = stateAfter([
      ...offered,
      msg("carol", "propose", { proposal_id: "o2", terms: { price_eur: 1100 } }),
      msg("bob", "reject", { proposal_id: "o1" }),
    ]);
    expect(state.phase).toBe("open");
    const { outcome } = step(proposalMode, state, msg("alice", "reject", { proposal_id: "o2" }), context);
    expect(outcome).toStrictEqual({
      result: "rejected",
      proposal_id: "o2",
      rejected_by: "alice",
      reason: null,
    });
  });

  it("copies the terms, so the state shares nothing with the message", () => {
    const terms = { price_eur: 1 };
    const state = step(
      proposalMode,
      start(proposalMode, context),
      msg("alice", "propose", { proposal_id: "o1", terms }),
      context,
    ).state;
    expect(state.offers[0]!.terms).toStrictEqual(terms);
    expect(state.offers[0]!.terms).not.toBe(terms);
  });
});

describe("proposal mode: refusals", () => {
  it("refuses an unknown verb", () => {
    expectRule(
      () => step(proposalMode, stateAfter(), msg("bob", "withdraw", { proposal_id: "o1" }), context),
      "unknown_verb",
    );
  });

  it("refuses accept, reject and counter before any offer", () => {
    const state = start(proposalMode, context);
    expectRule(
      () => step(proposalMode, state, msg("bob", "accept", { proposal_id: "o1" }), context),
      "unknown_proposal",
    );
    expectRule(
      () => step(proposalMode, state, msg("bob", "reject", { proposal_id: "o1" }), context),
      "unknown_proposal",
    );
    expectRule(
      () =>
        step(
          proposalMode,
          state,
          msg("bob", "counter", { proposal_id: "o2", counters: "o1", terms: {} }),
          context,
        ),
      "unknown_proposal",
    );
  });

  it("refuses an author accepting, rejecting or countering their own offer", () => {
    const state = stateAfter();
    expectRule(
      () => step(proposalMode, state, msg("alice", "accept", { proposal_id: "o1" }), context),
      "own_offer",
    );
    expectRule(
      () => step(proposalMode, state, msg("alice", "reject", { proposal_id: "o1" }), context),
      "own_offer",
    );
    expectRule(
      () =>
        step(
          proposalMode,
          state,
          msg("alice", "counter", { proposal_id: "o2", counters: "o1", terms: {} }),
          context,
        ),
      "own_offer",
    );
  });

  it("refuses a reused offer id, by propose or by counter", () => {
    const state = stateAfter();
    expectRule(
      () => step(proposalMode, state, msg("bob", "propose", { proposal_id: "o1", terms: {} }), context),
      "duplicate_proposal",
    );
    expectRule(
      () =>
        step(
          proposalMode,
          state,
          msg("bob", "counter", { proposal_id: "o1", counters: "o1", terms: {} }),
          context,
        ),
      "duplicate_proposal",
    );
  });

  it("refuses answering a rejected offer, and every message once resolved", () => {
    const open = stateAfter([
      ...offered,
      msg("carol", "propose", { proposal_id: "o2", terms: {} }),
      msg("bob", "reject", { proposal_id: "o1" }),
    ]);
    expectRule(
      () => step(proposalMode, open, msg("carol", "accept", { proposal_id: "o1" }), context),
      "offer_not_open",
    );
    const { state } = play(proposalMode, context, [...offered, msg("bob", "accept", { proposal_id: "o1" })]);
    expectRule(
      () => step(proposalMode, state, msg("carol", "propose", { proposal_id: "o9", terms: {} }), context),
      "session_resolved",
    );
  });

  it.each([
    ["propose", { proposal_id: "o2" }],
    ["propose", { proposal_id: "o2", terms: [1, 2] }],
    ["propose", { proposal_id: "o2", terms: "cheap" }],
    ["propose", { proposal_id: "o2", terms: {}, summary: "" }],
    ["propose", { proposal_id: "o2", terms: {}, expires: 5 }],
    ["counter", { proposal_id: "o2", terms: {} }],
    ["counter", { proposal_id: "o2", counters: "bad id", terms: {} }],
    ["accept", {}],
    ["accept", { proposal_id: "o1", terms: {} }],
    ["reject", { proposal_id: "o1", reason: 3 }],
  ])("refuses a malformed %s body %j", (kind, body) => {
    expectInvalidBody(() => step(proposalMode, stateAfter(), msg("bob", kind, body), context));
  });

  it("refuses bodies that are not objects", () => {
    for (const body of MALFORMED_BODIES) {
      expectInvalidBody(() => step(proposalMode, stateAfter(), msg("bob", "accept", body as never), context));
    }
  });
});

describe("proposal mode: properties", () => {
  const ids = fc.constantFrom("o1", "o2", "o3", "o4");
  const terms = fc.dictionary(
    fc.constantFrom("price_eur", "delivery_days"),
    fc.integer({ min: 0, max: 5000 }),
    {
      noNullPrototype: true,
    },
  );
  const bodies = {
    propose: fc.record(
      { proposal_id: ids, terms, summary: fc.constant("Offer") },
      { requiredKeys: ["proposal_id", "terms"] },
    ),
    counter: fc.record({ proposal_id: ids, counters: ids, terms }),
    accept: fc.record({ proposal_id: ids }),
    reject: fc.record({ proposal_id: ids, reason: fc.constant("No") }, { requiredKeys: ["proposal_id"] }),
  };
  const reasons = [
    "unknown_verb",
    "session_resolved",
    "unknown_proposal",
    "duplicate_proposal",
    "offer_not_open",
    "own_offer",
  ];

  it("random runs refuse only with documented codes; nobody settles their own offer", () => {
    const messages = messageArbitrary(context.participants, bodies, ["proposal_id", "terms", "counters"], {
      propose: 2,
      counter: 2,
    });
    const seen = new Set<unknown>();
    assertRandomRuns(proposalMode, context, messages, reasons, (outcome, state, history) => {
      seen.add(outcome.result);
      const settled = state.offers.find((offer) => offer.proposal_id === outcome.proposal_id)!;
      expect(settled.author).not.toBe(history.at(-1)!.sender);
      if (outcome.result === "accepted") {
        expect(settled.status).toBe("accepted");
        expect(outcome.terms).toStrictEqual(settled.terms);
      } else {
        expect(state.offers.every((offer) => offer.status !== "open")).toBe(true);
      }
    });
    expect([...seen].sort()).toStrictEqual(["accepted", "rejected"]);
  });
});
