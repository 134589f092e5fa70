// Builds a ModeMachine from a table of verb handlers, so every mode refuses unknown verbs and
// messages after resolution the same way and in the same order.
import type { JsonValue } from "@signet/protocol";
import type { ModeContext, ModeMachine, ModeMessage, ModeStep, SessionMode } from "../types.js";
import { alreadyResolved, unknownVerb } from "./mode-errors.js";

/** Applies one verb: reads the body (INVALID_REQUEST), then checks the rules (SESSION_RULE_VIOLATION). */
export type VerbHandler<S> = (state: S, message: ModeMessage, context: ModeContext) => ModeStep<S>;

export interface ModeDefinition<S extends JsonValue> {
  readonly mode: SessionMode;
  readonly init: (context: ModeContext) => S;
  /** False once the state is final; `apply` then refuses every verb. */
  readonly isOpen: (state: S) => boolean;
  readonly handlers: Readonly<Record<string, VerbHandler<S>>>;
}

/**
 * The machine for a mode: an unknown verb is refused first (`unknown_verb`), then any message to a
 * resolved state (`session_resolved`), then the verb's handler runs.
 *
 * Example: `defineMode({ mode: "quorum", init, isOpen: (s) => s.phase === "open", handlers: { approve, reject } })`.
 */
export function defineMode<S extends JsonValue>(definition: ModeDefinition<S>): ModeMachine<S> {
  const { mode, init, isOpen, handlers } = definition;
  return {
    mode,
    verbs: Object.freeze(Object.keys(handlers)),
    init,
    apply(state, message, context) {
      // Object.hasOwn, so a verb such as `constructor` never reaches Object.prototype.
      const handler = Object.hasOwn(handlers, message.kind) ? handlers[message.kind] : undefined;
      if (handler === undefined) throw unknownVerb(mode, message.kind);
      if (!isOpen(state)) throw alreadyResolved(mode);
      return handler(state, message, context);
    },
  };
}
