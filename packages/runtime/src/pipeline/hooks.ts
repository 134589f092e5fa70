// The pipeline's pluggable steps 6–8 (payload schema, policy, rate limits). Until their own work
// lands, the defaults pass everything through and say so in the decision they return.
import type { Envelope, SignetError } from "@signet/protocol";
import type { Principal } from "../auth/principal.js";
import type { RuleRateLimit } from "../policy/types.js";

/** Everything a step may look at. */
export interface InvocationContext {
  readonly principal: Principal;
  readonly envelope: Envelope;
  /** The tool named by the target. */
  readonly tool: string;
  readonly sourceIp?: string;
  readonly now: number;
  /** Told the binding rate limit's state when step 8 ran (the transport turns it into headers). */
  readonly onRateLimit?: (status: RateLimitStatus) => void;
}

/** Where the binding (most constrained) rate limit stands after a call was counted. */
export interface RateLimitStatus {
  /** Calls the binding limit allows per window. */
  readonly limit: number;
  /** Calls left in the current window; 0 when refused. */
  readonly remaining: number;
  /** Milliseconds until the binding limit's window resets. */
  readonly resetMs: number;
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
  /** Rate limits of the allowing rules (policy `rate_limit`, agent definitions' `rate_limits`), for step 8. */
  readonly rateLimits?: readonly RuleRateLimit[];
}

/** Step 7: decides; a `deny` becomes `POLICY_DENIED` naming the rule and reason. */
export interface PolicyEngine {
  decide(context: InvocationContext): PolicyDecision;
}

/**
 * Step 8: counts the call against every limit that applies to it (the sender's, and those the allowing
 * rules carry) and returns a `RATE_LIMITED` / `QUOTA_EXCEEDED` error to refuse, or undefined to allow.
 */
export interface RateLimiter {
  check(context: InvocationContext, decision?: PolicyDecision): Promise<SignetError | undefined>;
  /** Session starts per sender (`session.start`); undefined to allow. */
  checkSessionStart?(
    sender: string,
    report?: (status: RateLimitStatus) => void,
  ): Promise<SignetError | undefined>;
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
