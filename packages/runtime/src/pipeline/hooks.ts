// The pipeline's pluggable steps 6–8 (payload schema, policy, rate limits). Until their own work
// lands, the defaults pass everything through and say so in the decision they return.
import type { Envelope, SignetError } from "@signet/protocol";
import type { Principal } from "../auth/principal.js";

/** Everything a step may look at. */
export interface InvocationContext {
  readonly principal: Principal;
  readonly envelope: Envelope;
  /** The tool named by the target. */
  readonly tool: string;
  readonly sourceIp?: string;
  readonly now: number;
}

/** Step 6: validates the body against its declared semantic type; throws `INVALID_PAYLOAD`. */
export interface PayloadValidator {
  validate(context: InvocationContext): void;
}

/** Step 7's answer. */
export interface PolicyDecision {
  readonly effect: "allow" | "deny";
  /** Ids of the rules that decided. */
  readonly rules: readonly string[];
  readonly reason: string;
  /** The policy layer that decided, when a layered policy did. */
  readonly layer?: string;
}

/** Step 7: decides; a `deny` becomes `POLICY_DENIED` naming the rule and reason. */
export interface PolicyEngine {
  decide(context: InvocationContext): PolicyDecision;
}

/** Step 8: returns a `RATE_LIMITED` / `QUOTA_EXCEEDED` error to refuse, or undefined to allow. */
export interface RateLimiter {
  check(context: InvocationContext): Promise<SignetError | undefined>;
}

/** Until the payload-type registry exists, bodies are accepted as they are. */
export const ACCEPT_ANY_PAYLOAD: PayloadValidator = { validate: () => undefined };

/**
 * The default when no policy engine is given: deny everything. The runtime always passes its
 * compiled policy; this only keeps a pipeline built without one from failing open.
 */
export const DENY_ALL: PolicyEngine = {
  decide: () => ({ effect: "deny", rules: [], reason: "no policy engine configured" }),
};

/** Until rate limiting exists, nothing is limited. */
export const NO_RATE_LIMIT: RateLimiter = { check: async () => undefined };
