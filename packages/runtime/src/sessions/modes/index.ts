// The five MACP modes' state machines, by mode name (docs/sessions.md#modes).
import { SignetError } from "@signet/protocol";
import { type ModeMachine, type SessionMode, isSessionMode } from "../types.js";
import { decisionMode } from "./decision-mode.js";
import { handoffMode } from "./handoff-mode.js";
import { proposalMode } from "./proposal-mode.js";
import { quorumMode } from "./quorum-mode.js";
import { taskMode } from "./task-mode.js";

export { type DecisionState, decisionMode, majorityOf } from "./decision-mode.js";
export { type HandoffState, handoffMode } from "./handoff-mode.js";
export { type ProposalState, proposalMode } from "./proposal-mode.js";
export { type QuorumState, quorumMode } from "./quorum-mode.js";
export { type TaskState, taskMode } from "./task-mode.js";
export { BODY_REASON, CONFIG_REASON } from "./mode-errors.js";

/** Every mode's machine; typed loosely, since the state's shape depends on the mode. */
export const MODE_MACHINES: Readonly<Record<SessionMode, ModeMachine>> = Object.freeze({
  decision: decisionMode,
  proposal: proposalMode,
  task: taskMode,
  handoff: handoffMode,
  quorum: quorumMode,
});

/**
 * The machine for `mode`; MODE_NOT_SUPPORTED for anything else (a mode read back from storage is
 * checked again rather than trusted).
 *
 * Example: `const machine = modeMachine(session.mode); const step = machine.apply(session.modeState, message, context);`
 */
export function modeMachine(mode: SessionMode): ModeMachine {
  if (!isSessionMode(mode)) throw new SignetError("MODE_NOT_SUPPORTED");
  return MODE_MACHINES[mode];
}
