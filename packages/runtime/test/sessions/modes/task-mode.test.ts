// The task mode: the initiator assigns, the assignee accepts, reports progress, and completes or
// fails the task; every step out of order or by the wrong participant is refused.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type TaskState, taskMode } from "../../../src/sessions/modes/task-mode.js";
import {
  AT,
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
const assigned = [
  msg("alice", "assign", { task_id: "t1", assignee: "bob", description: "Reconcile March invoices" }),
];
const accepted = [...assigned, msg("bob", "accept")];

function stateAfter(messages = accepted): TaskState {
  return play(taskMode, context, messages).state;
}

describe("task mode: config", () => {
  it("starts unassigned and takes no settings", () => {
    expect(start(taskMode, context)).toStrictEqual({ phase: "unassigned", task: null, progress: null });
    expectInvalidConfig(() => taskMode.init(modeContext({ assignee: "bob" })));
    expectInvalidConfig(() => taskMode.init({ ...context, config: null as never }));
  });
});

describe("task mode: happy path", () => {
  it("assign → accept → progress → complete resolves with the result", () => {
    const { state, outcome } = play(taskMode, context, [
      ...accepted,
      msg("bob", "progress", { percent: 40, note: "Matched 412 of 1030 lines" }, AT + 1000),
      msg("bob", "progress", { percent: 90, note: "Two mismatches left" }, AT + 2000),
      msg("bob", "complete", { result: { matched: 1030, mismatches: [] } }),
    ]);
    expect(outcome).toStrictEqual({
      result: "completed",
      task_id: "t1",
      assignee: "bob",
      output: { matched: 1030, mismatches: [] },
    });
    expect(state).toStrictEqual({
      phase: "completed",
      task: { task_id: "t1", assignee: "bob", description: "Reconcile March invoices" },
      progress: { percent: 90, note: "Two mismatches left", at: AT + 2000 },
    });
  });

  it("fail resolves with the reason, after accept or instead of it", () => {
    const failed = { result: "failed", task_id: "t1", assignee: "bob", reason: "Ledger unavailable" };
    expect(
      play(taskMode, context, [...accepted, msg("bob", "fail", { reason: "Ledger unavailable" })]).outcome,
    ).toStrictEqual(failed);
    expect(
      play(taskMode, context, [...assigned, msg("bob", "fail", { reason: "Ledger unavailable" })]).outcome,
    ).toStrictEqual(failed);
  });

  it("takes any JSON result but null", () => {
    expect(
      play(taskMode, context, [...accepted, msg("bob", "complete", { result: "done" })]).outcome,
    ).toMatchObject({ output: "done" });
    expect(
      play(taskMode, context, [...accepted, msg("bob", "complete", { result: 0 })]).outcome,
    ).toMatchObject({ output: 0 });
    expectInvalidBody(() => step(taskMode, stateAfter(), msg("bob", "complete", { result: null }), context));
  });

  it("lets the initiator assign the task to itself", () => {
    const { outcome } = play(taskMode, context, [
      msg("alice", "assign", { task_id: "t1", assignee: "alice", description: "Self" }),
      msg("alice", "accept"),
      msg("alice", "complete", { result: true }),
    ]);
    expect(outcome).toMatchObject({ result: "completed", assignee: "alice" });
  });
});

describe("task mode: refusals", () => {
  it("refuses an unknown verb", () => {
    expectRule(() => step(taskMode, stateAfter(), msg("bob", "decline"), context), "unknown_verb");
  });

  it("refuses every assignee verb before assign", () => {
    const state = start(taskMode, context);
    for (const [kind, body] of [
      ["accept", {}],
      ["progress", { percent: 1, note: "x" }],
      ["complete", { result: 1 }],
      ["fail", { reason: "x" }],
    ] as const) {
      expectRule(() => step(taskMode, state, msg("bob", kind, body), context), "not_assigned");
    }
  });

  it("refuses progress and complete before accept", () => {
    const state = stateAfter(assigned);
    expectRule(
      () => step(taskMode, state, msg("bob", "progress", { percent: 1, note: "x" }), context),
      "not_accepted",
    );
    expectRule(() => step(taskMode, state, msg("bob", "complete", { result: 1 }), context), "not_accepted");
  });

  it("lets only the initiator assign, once, to a participant", () => {
    const state = start(taskMode, context);
    const body = { task_id: "t1", assignee: "carol", description: "Review" };
    expectRule(() => step(taskMode, state, msg("bob", "assign", body), context), "not_initiator");
    expectRule(
      () => step(taskMode, stateAfter(assigned), msg("alice", "assign", body), context),
      "already_assigned",
    );
    expectRule(
      () => step(taskMode, state, msg("alice", "assign", { ...body, assignee: "mallory" }), context),
      "assignee_not_participant",
    );
  });

  it("lets only the assignee accept, report, complete or fail", () => {
    expectRule(() => step(taskMode, stateAfter(assigned), msg("carol", "accept"), context), "not_assignee");
    expectRule(
      () => step(taskMode, stateAfter(assigned), msg("alice", "fail", { reason: "x" }), context),
      "not_assignee",
    );
    const state = stateAfter();
    expectRule(
      () => step(taskMode, state, msg("alice", "progress", { percent: 5, note: "x" }), context),
      "not_assignee",
    );
    expectRule(() => step(taskMode, state, msg("carol", "complete", { result: 1 }), context), "not_assignee");
  });

  it("refuses a second accept, and every message once resolved", () => {
    expectRule(() => step(taskMode, stateAfter(), msg("bob", "accept"), context), "already_accepted");
    const { state } = play(taskMode, context, [...accepted, msg("bob", "complete", { result: 1 })]);
    expectRule(
      () => step(taskMode, state, msg("bob", "progress", { percent: 100, note: "x" }), context),
      "session_resolved",
    );
  });

  it.each([
    ["assign", { task_id: "t2", assignee: "carol" }],
    ["assign", { task_id: "t2", assignee: "Carol", description: "x" }],
    ["assign", { task_id: "t 2", assignee: "carol", description: "x" }],
    ["assign", { task_id: "t2", assignee: "carol", description: "x", due: 1 }],
    ["accept", { task_id: "t1" }],
    ["progress", { percent: 101, note: "x" }],
    ["progress", { percent: -1, note: "x" }],
    ["progress", { percent: "50", note: "x" }],
    ["progress", { percent: 50 }],
    ["progress", { percent: 50, note: "" }],
    ["complete", {}],
    ["fail", {}],
    ["fail", { reason: "x", retry: true }],
  ])("refuses a malformed %s body %j", (kind, body) => {
    expectInvalidBody(() =>
      step(taskMode, stateAfter(), msg(kind === "assign" ? "alice" : "bob", kind, body), context),
    );
  });

  it("refuses bodies that are not objects", () => {
    for (const body of MALFORMED_BODIES) {
      expectInvalidBody(() => step(taskMode, stateAfter(), msg("bob", "complete", body as never), context));
    }
  });
});

describe("task mode: properties", () => {
  const bodies = {
    assign: fc.record({
      task_id: fc.constantFrom("t1", "t2"),
      assignee: fc.constantFrom("alice", "bob", "carol", "mallory"),
      description: fc.constant("Reconcile invoices"),
    }),
    accept: fc.constant({}),
    progress: fc.record({
      percent: fc.double({ min: 0, max: 100, noNaN: true }),
      note: fc.constant("Working"),
    }),
    complete: fc.record({ result: wireJson({ maxDepth: 2 }) }),
    fail: fc.record({ reason: fc.constant("Blocked") }),
  };
  const reasons = [
    "unknown_verb",
    "session_resolved",
    "not_initiator",
    "already_assigned",
    "assignee_not_participant",
    "not_assigned",
    "not_assignee",
    "already_accepted",
    "not_accepted",
  ];

  it("random runs refuse only with documented codes; only the assignee ends the task", () => {
    const messages = messageArbitrary(context.participants, bodies, ["task_id", "percent", "result"], {
      assign: 2,
      accept: 2,
      progress: 2,
      complete: 2,
    });
    const seen = new Set<unknown>();
    assertRandomRuns(taskMode, context, messages, reasons, (outcome, state, history) => {
      seen.add(outcome.result);
      expect(history.at(-1)!.sender).toBe(state.task!.assignee);
      expect(history.filter((message) => message.kind === "assign")).toHaveLength(1);
      expect(history.find((message) => message.kind === "assign")!.sender).toBe("alice");
      if (outcome.result === "completed") {
        expect(history.some((message) => message.kind === "accept")).toBe(true);
      }
    });
    expect([...seen].sort()).toStrictEqual(["completed", "failed"]);
  });
});
