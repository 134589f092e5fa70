// The five coordination modes' verbs (docs/sessions.md): each checks and builds its body, in the exact
// wire form the runtime requires, then sends it as a signed `session.<verb>` message.
import type { JsonValue } from "@signet/protocol";
import {
  CoordinationSession,
  type SessionCallOptions,
  type SessionResponse,
  type SessionStartOptions,
} from "./coordination-session.js";
import {
  type AnyCase,
  DECISION_RECOMMENDATIONS,
  DECISION_VOTES,
  type DecisionRecommendation,
  type DecisionVote,
  OBJECTION_SEVERITIES,
  type ObjectionSeverity,
  agentValue,
  badValue,
  enumValue,
  idValue,
  numberValue,
  objectValue,
  optional,
  textValue,
} from "./session-values.js";
import type { JsonObject } from "./session-wire.js";

/** `start` options of a decision: `minApprovals` APPROVE votes let the initiator commit (default a majority). */
export interface DecisionStartOptions extends SessionStartOptions {
  readonly minApprovals?: number;
}

/** An evaluation of a proposal. `recommendation` in any case; `BLOCK` stops the decision. */
export interface DecisionEvaluation {
  readonly recommendation: AnyCase<DecisionRecommendation>;
  /** From 0 to 1. */
  readonly confidence: number;
  readonly rationale?: string;
}

/** An objection to a proposal. `severity` in any case; `critical` stops the decision. */
export interface DecisionObjection {
  readonly severity: AnyCase<ObjectionSeverity>;
  readonly reason: string;
}

/**
 * A decision: participants propose, evaluate, object and vote; the initiator commits a proposal once it
 * has enough APPROVE votes. Votes, recommendations and severities are taken in any case and sent as the
 * runtime requires (`"approve"` → `"APPROVE"`); anything else throws `SdkError` (reason `session_body`)
 * before anything is sent.
 *
 * Example:
 * ```ts
 * const auth = AuthConfig.forBearer("tok-alice", { expectedSender: "alice" });
 * const session = new DecisionSession(client, { auth });
 * await session.start({ participants: ["bob", "carol"] });
 * await session.propose("p1", { title: "Ship v2" });
 * await session.vote("p1", "approve"); // sent by alice as "APPROVE"
 * // session.vote("p1", "approve", { sender: "mallory" }) rejects with IdentityMismatchError; nothing is sent
 * const { commitment } = await session.commit("p1"); // once enough participants approve
 * ```
 */
export class DecisionSession extends CoordinationSession {
  readonly mode = "decision" as const;

  /** Opens the decision (the sender becomes its initiator). */
  async start(start: DecisionStartOptions, options: SessionCallOptions = {}): Promise<SessionResponse> {
    const minApprovals = start?.minApprovals;
    if (minApprovals !== undefined && !(Number.isSafeInteger(minApprovals) && minApprovals >= 1)) {
      return badValue("minApprovals", "a positive integer");
    }
    return this.startSession(
      start,
      minApprovals === undefined ? undefined : { min_approvals: minApprovals },
      options,
    );
  }

  /** Puts a proposal forward under a new id. */
  async propose(
    proposalId: string,
    proposal: { readonly title?: string; readonly detail?: string } = {},
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "propose",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        ...optional("title", proposal.title, (value) => textValue(value, "title")),
        ...optional("detail", proposal.detail, (value) => textValue(value, "detail")),
      },
      options,
    );
  }

  /** Evaluates a proposal (a later evaluation by the same participant replaces the earlier one). */
  async evaluate(
    proposalId: string,
    evaluation: DecisionEvaluation,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "evaluate",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        recommendation: enumValue(evaluation?.recommendation, DECISION_RECOMMENDATIONS, "recommendation"),
        confidence: numberValue(evaluation.confidence, "confidence", 0, 1),
        ...optional("rationale", evaluation.rationale, (value) => textValue(value, "rationale")),
      },
      options,
    );
  }

  /** Objects to a proposal; objections accumulate. */
  async object(
    proposalId: string,
    objection: DecisionObjection,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "object",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        severity: enumValue(objection?.severity, OBJECTION_SEVERITIES, "severity"),
        reason: textValue(objection.reason, "reason"),
      },
      options,
    );
  }

  /** Votes on a proposal: `approve`, `reject` or `abstain`, in any case (a later vote replaces the earlier one). */
  async vote(
    proposalId: string,
    vote: AnyCase<DecisionVote>,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "vote",
      { proposal_id: idValue(proposalId, "proposal_id"), vote: enumValue(vote, DECISION_VOTES, "vote") },
      options,
    );
  }

  /** Commits a proposal (the initiator only, once it has `min_approvals` approvals): resolves the session. */
  async commit(proposalId: string, options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send("commit", { proposal_id: idValue(proposalId, "proposal_id") }, options);
  }
}

/** An offer's terms, with an optional one-line summary. */
export interface ProposalOffer {
  readonly terms: JsonObject;
  readonly summary?: string;
}

/** A counter-offer: the offer it answers (`counters`) and its own terms. */
export interface ProposalCounter extends ProposalOffer {
  readonly counters: string;
}

/**
 * A negotiation: offers and counter-offers until one is accepted, or every open offer is rejected.
 *
 * Example:
 * ```ts
 * const session = new ProposalSession(client);
 * await session.start({ participants: ["bob"] });
 * await session.propose("o1", { terms: { price: 100 } });
 * // bob: await new ProposalSession(bobClient, { id: session.id }).counter("o2", { counters: "o1", terms: { price: 90 } });
 * const { session: view } = await session.accept("o2"); // view.outcome.result === "accepted"
 * ```
 */
export class ProposalSession extends CoordinationSession {
  readonly mode = "proposal" as const;

  /** Opens the negotiation. */
  async start(start: SessionStartOptions, options: SessionCallOptions = {}): Promise<SessionResponse> {
    return this.startSession(start, undefined, options);
  }

  /** Makes an offer under a new id. */
  async propose(
    proposalId: string,
    offer: ProposalOffer,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "propose",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        terms: objectValue(offer?.terms, "terms"),
        ...optional("summary", offer.summary, (value) => textValue(value, "summary")),
      },
      options,
    );
  }

  /** Answers an open offer (not one's own) with a new offer under `proposalId`; the answered one closes. */
  async counter(
    proposalId: string,
    counter: ProposalCounter,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "counter",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        counters: idValue(counter?.counters, "counters"),
        terms: objectValue(counter.terms, "terms"),
        ...optional("summary", counter.summary, (value) => textValue(value, "summary")),
      },
      options,
    );
  }

  /** Accepts an open offer (not one's own): resolves the session. */
  async accept(proposalId: string, options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send("accept", { proposal_id: idValue(proposalId, "proposal_id") }, options);
  }

  /** Rejects an open offer (not one's own); when no offer is left open, the session resolves rejected. */
  async reject(
    proposalId: string,
    rejection: { readonly reason?: string } = {},
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "reject",
      {
        proposal_id: idValue(proposalId, "proposal_id"),
        ...optional("reason", rejection.reason, (value) => textValue(value, "reason")),
      },
      options,
    );
  }
}

/** A task assignment. */
export interface TaskAssignment {
  /** A participant (the initiator may assign itself). */
  readonly assignee: string;
  readonly description: string;
}

/** A progress report. */
export interface TaskProgress {
  /** From 0 to 100; informational (100 does not complete the task). */
  readonly percent: number;
  readonly note: string;
}

/**
 * One task: the initiator assigns it; the assignee accepts, reports progress, and completes or fails it.
 *
 * Example:
 * ```ts
 * const session = new TaskSession(client);
 * await session.start({ participants: ["worker"] });
 * await session.assign("t1", { assignee: "worker", description: "Reindex the catalog" });
 * // the worker, with its own client: const task = new TaskSession(workerClient, { id: session.id });
 * await task.accept(); await task.progress({ percent: 50, note: "half way" }); await task.complete({ rows: 42 });
 * ```
 */
export class TaskSession extends CoordinationSession {
  readonly mode = "task" as const;

  /** Opens the session. */
  async start(start: SessionStartOptions, options: SessionCallOptions = {}): Promise<SessionResponse> {
    return this.startSession(start, undefined, options);
  }

  /** Assigns the task (the initiator only, once). */
  async assign(
    taskId: string,
    assignment: TaskAssignment,
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "assign",
      {
        task_id: idValue(taskId, "task_id"),
        assignee: agentValue(assignment?.assignee, "assignee"),
        description: textValue(assignment.description, "description"),
      },
      options,
    );
  }

  /** Accepts the task (the assignee). */
  async accept(options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send("accept", {}, options);
  }

  /** Reports progress (the assignee, after accepting). */
  async progress(progress: TaskProgress, options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send(
      "progress",
      {
        percent: numberValue(progress?.percent, "percent", 0, 100),
        note: textValue(progress.note, "note"),
      },
      options,
    );
  }

  /** Completes the task with its result (any JSON value but null): resolves the session. */
  async complete(result: JsonValue, options?: SessionCallOptions): Promise<SessionResponse> {
    if (result === null || result === undefined) return badValue("result", "a JSON value other than null");
    return this.send("complete", { result }, options);
  }

  /** Fails the task (also how an assignee turns it down before accepting): resolves the session. */
  async fail(reason: string, options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send("fail", { reason: textValue(reason, "reason") }, options);
  }
}

/**
 * A handoff: the initiator (the holder) offers its work and context to one participant at a time; an
 * accept transfers it, a decline hands the turn back.
 *
 * Example:
 * ```ts
 * const session = new HandoffSession(client);
 * await session.start({ participants: ["night-shift"] });
 * await session.offer("night-shift", { ticket: 42, notes: "customer prefers email" });
 * // night-shift: await new HandoffSession(nightClient, { id: session.id }).accept();
 * ```
 */
export class HandoffSession extends CoordinationSession {
  readonly mode = "handoff" as const;

  /** Opens the session; the sender is the holder. */
  async start(start: SessionStartOptions, options: SessionCallOptions = {}): Promise<SessionResponse> {
    return this.startSession(start, undefined, options);
  }

  /** Offers the work to one participant (the holder, one pending offer at a time). */
  async offer(to: string, context: JsonObject, options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send(
      "offer",
      { to: agentValue(to, "to"), context: objectValue(context, "context") },
      options,
    );
  }

  /** Accepts the pending offer (its recipient): resolves the session with the context in its outcome. */
  async accept(options?: SessionCallOptions): Promise<SessionResponse> {
    return this.send("accept", {}, options);
  }

  /** Declines the pending offer (its recipient); the holder may offer again. */
  async decline(
    decline: { readonly reason?: string } = {},
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "decline",
      optional("reason", decline.reason, (value) => textValue(value, "reason")),
      options,
    );
  }
}

/** `start` options of a quorum: `k` approvals of the n participants decide it (required: no default). */
export interface QuorumStartOptions extends SessionStartOptions {
  readonly k: number;
}

/**
 * A quorum: k of the n participants must approve; each votes once, for good.
 *
 * Example:
 * ```ts
 * const session = new QuorumSession(client);
 * await session.start({ participants: ["bob", "carol"], k: 2 });
 * await session.approve({ reason: "tests pass" });
 * ```
 */
export class QuorumSession extends CoordinationSession {
  readonly mode = "quorum" as const;

  /** Opens the quorum with its `k`. */
  async start(start: QuorumStartOptions, options: SessionCallOptions = {}): Promise<SessionResponse> {
    const k = start?.k;
    if (!(Number.isSafeInteger(k) && k >= 1)) return badValue("k", "a positive integer");
    return this.startSession(start, { k }, options);
  }

  /** Approves (once per participant). */
  async approve(
    approval: { readonly reason?: string } = {},
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "approve",
      optional("reason", approval.reason, (value) => textValue(value, "reason")),
      options,
    );
  }

  /** Rejects (once per participant). */
  async reject(
    rejection: { readonly reason?: string } = {},
    options?: SessionCallOptions,
  ): Promise<SessionResponse> {
    return this.send(
      "reject",
      optional("reason", rejection.reason, (value) => textValue(value, "reason")),
      options,
    );
  }
}
