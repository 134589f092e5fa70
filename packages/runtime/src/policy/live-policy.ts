// The policy in force, swapped whole: a decision reads one compiled policy from start to finish.
import type { CompiledPolicy } from "./engine.js";
import type { Decision, PolicyRequest } from "./types.js";

/**
 * Holds the current policy. `replace` is a single reference swap, so a reload never shows a decision
 * half of one policy and half of another.
 *
 * Example: `const live = new LivePolicy(loadPolicyDirectory(dir)); live.decide(request)`.
 */
export class LivePolicy {
  private policy: CompiledPolicy;
  private version = 1;

  constructor(initial: CompiledPolicy) {
    this.policy = initial;
  }

  get current(): CompiledPolicy {
    return this.policy;
  }

  /** Increments on every swap, for logs and metrics. */
  get generation(): number {
    return this.version;
  }

  replace(next: CompiledPolicy): void {
    this.policy = next;
    this.version++;
  }

  decide(request: PolicyRequest): Decision {
    return this.policy.decide(request);
  }
}
