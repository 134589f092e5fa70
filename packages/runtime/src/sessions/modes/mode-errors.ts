// The two ways a mode refuses a message: its rules forbid it now, or its body or config is malformed.
import { SignetError } from "@signet/protocol";

/** `details.reason` of every INVALID_REQUEST a mode raises for a message body. */
export const BODY_REASON = "session_body";
/** `details.reason` of every INVALID_REQUEST a mode raises for a start config. */
export const CONFIG_REASON = "session_config";

/**
 * The mode's rules refuse the message: `reason` is a stable snake_case tag (docs/sessions.md lists
 * them per mode), the message is for people.
 *
 * Example: `throw ruleViolation("not_initiator", "Only the initiator may commit")`.
 */
export function ruleViolation(reason: string, message: string): SignetError {
  return new SignetError("SESSION_RULE_VIOLATION", message, { reason });
}

/** A verb the mode does not know: a rule violation, since the envelope itself was well formed. */
export function unknownVerb(mode: string, kind: string): SignetError {
  return ruleViolation("unknown_verb", `The ${mode} mode has no verb ${JSON.stringify(kind)}`);
}

/**
 * The state says the session is already resolved. The caller refuses messages to a closed session
 * (SESSION_NOT_OPEN) before `apply`, so this only guards a machine driven on its own.
 */
export function alreadyResolved(mode: string): SignetError {
  return ruleViolation("session_resolved", `The ${mode} session is already resolved`);
}
