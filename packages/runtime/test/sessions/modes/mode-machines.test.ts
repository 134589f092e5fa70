// The mode table: one machine per MACP mode, each verb and refusal reason documented in
// docs/sessions.md, and no input that makes any machine throw anything but a SignetError.
import { readFileSync } from "node:fs";
import { isSignetError } from "@signet/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MODE_MACHINES, modeMachine } from "../../../src/sessions/modes/index.js";
import { type ModeContext, SESSION_MODES, type SessionMode } from "../../../src/sessions/types.js";
import { deepFreeze, msg, refusal, wireJson } from "./mode-harness.js";

const VERBS: Record<SessionMode, readonly string[]> = {
  decision: ["propose", "evaluate", "object", "vote", "commit"],
  proposal: ["propose", "counter", "accept", "reject"],
  task: ["assign", "accept", "progress", "complete", "fail"],
  handoff: ["offer", "accept", "decline"],
  quorum: ["approve", "reject"],
};

const SHARED_REASONS = ["unknown_verb", "session_resolved"];
const REASONS: Record<SessionMode, readonly string[]> = {
  decision: ["unknown_proposal", "duplicate_proposal", "not_initiator", "threshold_not_met"],
  proposal: ["unknown_proposal", "duplicate_proposal", "offer_not_open", "own_offer"],
  task: [
    "not_initiator",
    "already_assigned",
    "assignee_not_participant",
    "not_assigned",
    "not_assignee",
    "already_accepted",
    "not_accepted",
  ],
  handoff: [
    "not_holder",
    "offer_pending",
    "self_handoff",
    "recipient_not_participant",
    "no_offer",
    "not_recipient",
  ],
  quorum: ["already_voted"],
};

const CONFIGS: Record<SessionMode, Record<string, number>> = {
  decision: {},
  proposal: {},
  task: {},
  handoff: {},
  quorum: { k: 2 },
};

function context(mode: SessionMode): ModeContext {
  return deepFreeze({ initiator: "alice", participants: ["alice", "bob", "carol"], config: CONFIGS[mode] });
}

/** The text of `### <mode>` in docs/sessions.md, up to the next heading of the same or higher level. */
function docSection(mode: string): string {
  const docs = readFileSync(new URL("../../../../../docs/sessions.md", import.meta.url), "utf8");
  const start = docs.indexOf(`\n### ${mode}\n`);
  expect(start, `docs/sessions.md has no "### ${mode}"`).toBeGreaterThanOrEqual(0);
  const rest = docs.slice(start + 1);
  const end = rest.slice(1).search(/\n#{1,3} /);
  return end === -1 ? rest : rest.slice(0, end + 1);
}

describe("MODE_MACHINES", () => {
  it("has one machine per session mode, under its own name, with the documented verbs", () => {
    expect(Object.keys(MODE_MACHINES).sort()).toStrictEqual([...SESSION_MODES].sort());
    for (const mode of SESSION_MODES) {
      expect(MODE_MACHINES[mode].mode).toBe(mode);
      expect(modeMachine(mode)).toBe(MODE_MACHINES[mode]);
      expect(MODE_MACHINES[mode].verbs).toStrictEqual(VERBS[mode]);
    }
  });

  it("refuses a mode it does not know with MODE_NOT_SUPPORTED", () => {
    for (const mode of ["vote", "constructor", "__proto__", ""]) {
      expect(refusal(() => modeMachine(mode as SessionMode)).code).toBe("MODE_NOT_SUPPORTED");
    }
  });

  it.each(SESSION_MODES)("docs/sessions.md documents every %s verb and refusal reason", (mode) => {
    const section = docSection(mode);
    for (const word of [...VERBS[mode], ...SHARED_REASONS, ...REASONS[mode]]) {
      expect(section, `${mode}: ${word}`).toContain(`\`${word}\``);
    }
  });

  it.each(SESSION_MODES)(
    "%s: arbitrary kinds and bodies never throw anything but a documented refusal",
    (mode) => {
      const machine = MODE_MACHINES[mode];
      const ctx = context(mode);
      const state = deepFreeze(machine.init(ctx));
      const kinds = fc.oneof(fc.constantFrom(...VERBS[mode]), fc.string({ maxLength: 12 }));
      fc.assert(
        fc.property(
          fc.constantFrom("alice", "bob", "carol"),
          kinds,
          wireJson({ maxDepth: 3 }),
          (sender, kind, body) => {
            try {
              machine.apply(state, deepFreeze(msg(sender, kind, body as Record<string, unknown>)), ctx);
            } catch (error) {
              if (!isSignetError(error)) throw error;
              if (error.code === "INVALID_REQUEST") expect(error.details.reason).toBe("session_body");
              else {
                expect(error.code).toBe("SESSION_RULE_VIOLATION");
                expect([...SHARED_REASONS, ...REASONS[mode]]).toContain(error.details.reason);
              }
            }
          },
        ),
        { numRuns: 500 },
      );
    },
  );

  it.each(SESSION_MODES)("%s: init refuses configs that are not objects or carry unknown members", (mode) => {
    for (const config of [null, [], "k", { k: 2, unknown: true }]) {
      const error = refusal(() => MODE_MACHINES[mode].init({ ...context(mode), config: config as never }));
      expect(error).toMatchObject({ code: "INVALID_REQUEST", details: { reason: "session_config" } });
    }
  });
});
