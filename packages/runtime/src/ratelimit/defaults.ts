// The limits that apply when configuration says nothing: MACP's, plus one per client address.

/** The per-minute limits that apply to everyone; policy rules may only add stricter ones. */
export interface RateLimitSettings {
  /** Envelopes per sender per minute that reach step 8 (MACP: 600). */
  readonly messagesPerMinute: number;
  /** Session starts per sender per minute (MACP: 60). */
  readonly sessionStartsPerMinute: number;
  /** Requests per client address per minute that fail authentication. */
  readonly unauthenticatedPerMinute: number;
}

/**
 * MACP's defaults (600 messages and 60 session starts per sender per minute), and 60 failed
 * authentications per client address per minute, which an honest misconfigured client stays under.
 */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  messagesPerMinute: 600,
  sessionStartsPerMinute: 60,
  unauthenticatedPerMinute: 60,
};
