// The task mode: the initiator assigns one task to a participant, who accepts it, reports progress
// and ends it by completing or failing it.
import type { JsonValue } from "@signet/protocol";
import type { ModeContext, ModeMachine, ModeMessage, ModeStep } from "../types.js";
import { defineMode } from "./define-mode.js";
import { FieldReader } from "./fields.js";
import { ruleViolation } from "./mode-errors.js";

export type TaskAssignment = { task_id: string; assignee: string; description: string };
export type TaskProgress = { percent: number; note: string; at: number };

export type TaskState = {
  phase: "unassigned" | "assigned" | "accepted" | "completed" | "failed";
  task: TaskAssignment | null;
  /** The latest progress report. */
  progress: TaskProgress | null;
};

function initTask(context: ModeContext): TaskState {
  FieldReader.config("task", context.config, []);
  return { phase: "unassigned", task: null, progress: null };
}

/** The assignment, when the sender is its assignee. */
function assignedTo(state: TaskState, sender: string): TaskAssignment {
  if (state.task === null) throw ruleViolation("not_assigned", "No task has been assigned yet");
  if (state.task.assignee !== sender) throw ruleViolation("not_assignee", "Only the assignee may do this");
  return state.task;
}

function requireAccepted(state: TaskState): void {
  if (state.phase !== "accepted")
    throw ruleViolation("not_accepted", "The assignee has not accepted the task");
}

function assign(state: TaskState, message: ModeMessage, context: ModeContext): ModeStep<TaskState> {
  const body = FieldReader.body("assign", message.body, ["task_id", "assignee", "description"]);
  const task: TaskAssignment = {
    task_id: body.id("task_id"),
    assignee: body.agent("assignee"),
    description: body.text("description"),
  };
  if (message.sender !== context.initiator)
    throw ruleViolation("not_initiator", "Only the initiator assigns");
  if (state.phase !== "unassigned") throw ruleViolation("already_assigned", "The task is already assigned");
  if (!context.participants.includes(task.assignee)) {
    throw ruleViolation("assignee_not_participant", `${task.assignee} is not a participant`);
  }
  return { state: { ...state, phase: "assigned", task } };
}

function accept(state: TaskState, message: ModeMessage): ModeStep<TaskState> {
  FieldReader.body("accept", message.body, []);
  assignedTo(state, message.sender);
  if (state.phase !== "assigned") throw ruleViolation("already_accepted", "The task is already accepted");
  return { state: { ...state, phase: "accepted" } };
}

function progress(state: TaskState, message: ModeMessage): ModeStep<TaskState> {
  const body = FieldReader.body("progress", message.body, ["percent", "note"]);
  const report: TaskProgress = {
    percent: body.number("percent", 0, 100),
    note: body.text("note"),
    at: message.at,
  };
  assignedTo(state, message.sender);
  requireAccepted(state);
  return { state: { ...state, progress: report } };
}

function complete(state: TaskState, message: ModeMessage): ModeStep<TaskState> {
  const body = FieldReader.body("complete", message.body, ["result"]);
  const output: JsonValue = body.json("result");
  const task = assignedTo(state, message.sender);
  requireAccepted(state);
  return {
    state: { ...state, phase: "completed" },
    outcome: { result: "completed", task_id: task.task_id, assignee: task.assignee, output },
  };
}

function fail(state: TaskState, message: ModeMessage): ModeStep<TaskState> {
  const body = FieldReader.body("fail", message.body, ["reason"]);
  const reason = body.text("reason");
  // Failing before accepting is allowed: it is how an assignee turns a task down.
  const task = assignedTo(state, message.sender);
  return {
    state: { ...state, phase: "failed" },
    outcome: { result: "failed", task_id: task.task_id, assignee: task.assignee, reason },
  };
}

/**
 * The task mode's machine (docs/sessions.md#task).
 *
 * Example: `taskMode.apply(state, { sender: "alice", kind: "assign", body: { task_id: "t1",
 * assignee: "bob", description: "Reconcile March invoices" }, at }, context)`.
 */
export const taskMode: ModeMachine<TaskState> = defineMode<TaskState>({
  mode: "task",
  init: initTask,
  isOpen: (state) => state.phase !== "completed" && state.phase !== "failed",
  handlers: { assign, accept, progress, complete, fail },
});
