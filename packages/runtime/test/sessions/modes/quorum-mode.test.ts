// The quorum mode: k of n approvals resolve it approved; it resolves rejected as soon as k can no
// longer be reached; every vote is final.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type QuorumState, quorumMode } from "../../../src/sessions/modes/quorum-mode.js";
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

const FIVE = ["alice", "bob", "carol", "dave", "erin"];
const context = modeContext({ k: 2 });

function stateAfter(messages = [msg("bob", "approve")]): QuorumState {
  return play(quorumMode, context, messages).state;
}

describe("quorum mode: config", () => {
  it("takes k from 1 to the number of participants", () => {
    expect(start(quorumMode, context)).toStrictEqual({ phase: "open", k: 2, n: 3, votes: [] });
    expect(start(quorumMode, modeContext({ k: 1 })).k).toBe(1);
    expect(start(quorumMode, modeContext({ k: 3 })).k).toBe(3);
  });

  it.each([
    ["no k", {}],
    ["k = 0", { k: 0 }],
    ["k above n", { k: 4 }],
    ["a fractional k", { k: 1.5 }],
    ["a string k", { k: "2" }],
    ["an unknown member", { k: 2, n: 3 }],
  ])("refuses %s", (_name, config) => {
    expectInvalidConfig(() => quorumMode.init(modeContext(config)));
  });
});

describe("quorum mode: happy path", () => {
  it("resolves approved at the k-th approval", () => {
    const { state, outcome } = play(quorumMode, context, [
      msg("carol", "reject", { reason: "Too early" }),
      msg("bob", "approve"),
      msg("alice", "approve", { reason: "Canary is green" }),
    ]);
    expect(outcome).toStrictEqual({
      result: "approved",
      k: 2,
      n: 3,
      approvals: ["bob", "alice"],
      rejections: ["carol"],
    });
    expect(state.votes).toStrictEqual([
      { by: "carol", vote: "reject", reason: "Too early" },
      { by: "bob", vote: "approve", reason: null },
      { by: "alice", vote: "approve", reason: "Canary is green" },
    ]);
  });

  it("resolves rejected once more than n − k reject", () => {
    const five = modeContext({ k: 3 }, FIVE);
    const open = play(quorumMode, five, [
      msg("alice", "reject"),
      msg("bob", "approve"),
      msg("carol", "reject"),
    ]);
    expect(open.state.phase).toBe("open");
    const { outcome } = step(quorumMode, open.state, msg("dave", "reject"), five);
    expect(outcome).toStrictEqual({
      result: "rejected",
      k: 3,
      n: 5,
      approvals: ["bob"],
      rejections: ["alice", "carol", "dave"],
    });
  });

  it("with k = n, one reject settles it; with k = 1, one approve does", () => {
    expect(play(quorumMode, modeContext({ k: 3 }), [msg("bob", "reject")]).outcome).toMatchObject({
      result: "rejected",
    });
    expect(play(quorumMode, modeContext({ k: 1 }), [msg("carol", "approve")]).outcome).toMatchObject({
      result: "approved",
    });
  });
});

describe("quorum mode: refusals", () => {
  it("refuses an unknown verb", () => {
    expectRule(
      () => step(quorumMode, stateAfter(), msg("bob", "vote", { vote: "approve" }), context),
      "unknown_verb",
    );
  });

  it("refuses a second vote, same or different", () => {
    expectRule(() => step(quorumMode, stateAfter(), msg("bob", "approve"), context), "already_voted");
    expectRule(() => step(quorumMode, stateAfter(), msg("bob", "reject"), context), "already_voted");
  });

  it("refuses every message once resolved", () => {
    const { state } = play(quorumMode, context, [msg("bob", "approve"), msg("alice", "approve")]);
    expectRule(() => step(quorumMode, state, msg("carol", "reject"), context), "session_resolved");
  });

  it.each([
    ["approve", { reason: "" }],
    ["approve", { reason: 1 }],
    ["reject", { reason: null }],
    ["approve", { vote: "approve" }],
  ])("refuses a malformed %s body %j", (kind, body) => {
    expectInvalidBody(() => step(quorumMode, stateAfter(), msg("carol", kind, body), context));
  });

  it("refuses bodies that are not objects", () => {
    for (const body of MALFORMED_BODIES) {
      expectInvalidBody(() =>
        step(quorumMode, stateAfter(), msg("carol", "approve", body as never), context),
      );
    }
  });
});

describe("quorum mode: properties", () => {
  const bodies = {
    approve: fc.record({ reason: fc.constant("Looks right") }, { requiredKeys: [] }),
    reject: fc.record({ reason: fc.constant("Not yet") }, { requiredKeys: [] }),
  };

  it("random runs agree with counting: approved iff k approvals, rejected iff k became unreachable", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: FIVE.length }), (k) => {
        const ctx = modeContext({ k }, FIVE);
        const messages = messageArbitrary(FIVE, bodies, ["reason", "vote"]);
        assertRandomRuns(
          quorumMode,
          ctx,
          messages,
          ["unknown_verb", "session_resolved", "already_voted"],
          (outcome, state, history) => {
            const voters = history.map((message) => message.sender);
            expect(new Set(voters).size).toBe(voters.length);
            const approvals = history
              .filter((message) => message.kind === "approve")
              .map((message) => message.sender);
            const rejections = history
              .filter((message) => message.kind === "reject")
              .map((message) => message.sender);
            expect(outcome).toStrictEqual({ result: state.phase, k, n: FIVE.length, approvals, rejections });
            if (outcome.result === "approved") expect(approvals).toHaveLength(k);
            else expect(rejections).toHaveLength(FIVE.length - k + 1);
          },
          40,
        );
      }),
      { numRuns: 10 },
    );
  });
});
