// The policy model's vocabulary: requests, rules as written, decisions. No behaviour lives here.

/** Layers from the broadest to the most specific. Every layer that speaks to a request must allow it. */
export const POLICY_LAYERS = ["global", "org", "team", "app", "user"] as const;

export type PolicyLayer = (typeof POLICY_LAYERS)[number];

/** The kinds of principal the runtime authenticates (DESIGN "Identities"). */
export type PolicyPrincipalKind = "agent" | "user" | "service";

/** Who is asking. `id` is a bare id (`alice`); the layer attributes place it in an org, team, app, user. */
export interface PolicyPrincipal {
  readonly id: string;
  readonly kind?: PolicyPrincipalKind;
  readonly roles?: readonly string[];
  readonly org?: string;
  readonly team?: string;
  readonly app?: string;
  /** The person the principal acts for; a `user` principal is its own user. */
  readonly user?: string;
  /** Anything else a CEL condition may read as `principal.attributes`. */
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/** What the caller declared it is doing (the envelope's `intent`). */
export interface PolicyIntent {
  readonly purpose?: string;
  readonly permissions?: readonly string[];
}

/** Facts about the request that are not the request itself. */
export interface PolicyContext {
  /** Milliseconds since the epoch; defaults to the time of the decision. */
  readonly now?: number;
  readonly session?: string;
  readonly sourceIp?: string;
}

/** One authorization question: may `principal` do `action` on `resource` with these parameters? */
export interface PolicyRequest {
  readonly principal: PolicyPrincipal;
  /** `invoke`, `send`, `session.start`, `memory.read`, or an admin action such as `agent.deploy`. */
  readonly action: string;
  /** `tool:database/query`, `agent:alice`, `capability:refunds`, ... */
  readonly resource: string;
  /** Top-level parameters (an invocation's body when it is an object). */
  readonly params?: Readonly<Record<string, unknown>>;
  readonly intent?: PolicyIntent;
  readonly context?: PolicyContext;
}

/** Constraints on one parameter. Every given check must hold when the parameter is present. */
export interface ParamConstraint {
  /** The parameter must be present. */
  readonly required?: boolean;
  /** The value must equal one of these JSON scalars. */
  readonly values?: readonly (string | number | boolean | null)[];
  /** The value must be a finite number at least this. */
  readonly min?: number;
  /** The value must be a finite number at most this. */
  readonly max?: number;
  /** The value must be a string this RE2 pattern finds a match in (anchor with ^ and $). */
  readonly pattern?: string;
  /** A string's UTF-16 length or an array's length must be at most this. */
  readonly maxLength?: number;
}

/** What a rule asks of the caller's declared intent. */
export interface IntentRequirement {
  /**
   * Permissions the declared intent must list, exactly. Absent: the one permission `ACTION:RESOURCE`
   * (`invoke:tool:database/query`).
   */
  readonly permissions?: readonly string[];
  /** The intent must carry a non-empty purpose. */
  readonly purpose?: boolean;
}

export type PolicyEffect = "allow" | "deny";

/** A rule as written in a policy file or compiled from an agent definition. */
export interface RuleDefinition {
  /** Unique across everything loaded; named in decisions, denials and audit entries. */
  readonly id: string;
  readonly effect: PolicyEffect;
  /** Principal patterns (`alice`, `agent:customer-*`, `user:*`, `*`). At least one of these or `roles`. */
  readonly principals?: readonly string[];
  /** The principal must hold one of these roles. */
  readonly roles?: readonly string[];
  /** Action patterns (`invoke`, `memory.*`, `*`). */
  readonly actions: readonly string[];
  /** Resource patterns (`tool:database/query`, `tool:database/**`, `agent:*`, `*`). */
  readonly resources: readonly string[];
  readonly params?: Readonly<Record<string, ParamConstraint>>;
  /** Parameters that must not be present. */
  readonly deniedParams?: readonly string[];
  readonly intent?: IntentRequirement;
  /** A CEL expression over principal, action, resource, params, intent and context. */
  readonly when?: string;
  /** `100/minute`: enforced by the rate-limit step for requests this rule allows. */
  readonly rateLimit?: string;
  /** Said to the caller when this rule denies. */
  readonly reason?: string;
  readonly description?: string;
}

/** Where something was written, for messages that point at it. */
export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column?: number;
}

/** One set of rules that share a layer and scope: a policy file, or an agent definition's rules. */
export interface PolicySource {
  /** A file path, or a name such as `agent:order-processor`. */
  readonly name: string;
  readonly layer: PolicyLayer;
  /**
   * For a layer other than `global`: the org, team, app or user the rules govern. The layer then
   * speaks only to principals whose attribute equals it. Absent: the layer's rules govern everyone.
   */
  readonly scope?: string;
  readonly rules: readonly RuleDefinition[];
  /** Where each rule (by id) was written. */
  readonly locations?: Readonly<Record<string, SourceLocation>>;
}

/** A parsed `rate_limit`. */
export interface RateLimit {
  readonly limit: number;
  readonly windowMs: number;
  /** As written: `100/minute`. */
  readonly spec: string;
}

/** A rate limit that applies to an allowed request: the rate-limit step counts per rule and principal. */
export interface RuleRateLimit extends RateLimit {
  readonly rule: string;
}

/** A decision, structurally a pipeline `PolicyDecision` plus the layer and rate limits. */
export interface Decision {
  readonly effect: PolicyEffect;
  /**
   * The rules that decided, in load order: for an allow, the allowing rule(s) of every layer that
   * spoke; for a deny, the deny rules that fired, or the allow rules whose conditions failed, in the
   * first layer that refused. Empty when no rule spoke (default deny).
   */
  readonly rules: readonly string[];
  /** The refusing layer, or for an allow the most specific layer that allowed; absent for a default deny. */
  readonly layer?: PolicyLayer;
  /** One line, safe to return to the caller. */
  readonly reason: string;
  /** Rate limits of the allowing rules. */
  readonly rateLimits: readonly RuleRateLimit[];
}
