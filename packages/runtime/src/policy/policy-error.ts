// The local error raised when policy cannot be loaded: every problem names its file, line and rule.

/** One thing wrong with a policy, located as precisely as its source allows. */
export interface PolicyProblem {
  readonly file: string;
  /** 1-based; absent when the source has no lines (rules built in code). */
  readonly line?: number;
  readonly column?: number;
  /** The rule's id, or `rules[3]` when the rule has no usable id. */
  readonly rule?: string;
  readonly message: string;
}

/** `policies/dev.yaml:12:7: rule "db-query": params.limit.max: must be a number`. */
export function formatProblem(problem: PolicyProblem): string {
  const where =
    problem.line === undefined
      ? problem.file
      : `${problem.file}:${problem.line}${problem.column === undefined ? "" : `:${problem.column}`}`;
  return `${where}: ${problem.rule === undefined ? "" : `rule "${problem.rule}": `}${problem.message}`;
}

/**
 * Raised when policy does not load. Never sent on the wire: the runtime refuses to start, or keeps
 * the policy it had and reports this.
 *
 * Example: `if (error instanceof PolicyLoadError) for (const p of error.problems) console.error(formatProblem(p))`.
 */
export class PolicyLoadError extends Error {
  override readonly name = "PolicyLoadError";
  readonly code = "POLICY_INVALID";

  constructor(readonly problems: readonly PolicyProblem[]) {
    super(
      problems.length === 1
        ? `Invalid policy: ${formatProblem(problems[0]!)}`
        : `Invalid policy (${problems.length} problems):\n  - ${problems.map(formatProblem).join("\n  - ")}`,
    );
  }
}
