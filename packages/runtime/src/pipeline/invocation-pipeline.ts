// The guarded invocation path, top to bottom in DESIGN.md's order. Every refusal is audited with its
// code; nothing is dispatched unless the decision to dispatch it was durably recorded first.
import {
  type AuditOutcome,
  type Envelope,
  type Receipt,
  SESSION_RECEIPT_DOMAIN,
  SignetError,
  assertResultAnswers,
  isSignetError,
  parseTarget,
  signDelivery,
  signReceipt,
  signRuntimeDocument,
  verifyEnvelope,
  type Ed25519PrivateKey,
  type VerifiedEnvelope,
  type WireError,
} from "@signet/protocol";
import { type AuditEventInput, type EventRecorder, envelopeRef } from "../audit/audit-recorder.js";
import { type SessionResponse, SessionService, sessionView } from "../sessions/session-service.js";
import type { JsonObject } from "../sessions/types.js";
import type { Principal } from "../auth/principal.js";
import type { AgentRegistry } from "../registry/agent-registry.js";
import type { CallResult, Router } from "../routing/router.js";
import type { ReplayStore } from "../store/types.js";
import type { RuntimeMetrics } from "../telemetry/metrics.js";
import {
  ACCEPT_ANY_PAYLOAD,
  DENY_ALL,
  type InvocationContext,
  NO_RATE_LIMIT,
  type PayloadValidator,
  type PolicyDecision,
  type PolicyEngine,
  type RateLimitStatus,
  type RateLimiter,
} from "./hooks.js";

/** What the caller gets for an invocation. */
export interface InvocationResponse {
  readonly receipt: Receipt;
  readonly result: Envelope;
}

/** The stored outcome of a message, replayed to identical retries. */
type StoredOutcome =
  | { readonly kind: "response"; readonly response: InvocationResponse }
  | {
      // A session answer, kept small: what identifies the acceptance (the signed receipt, the seq,
      // the commitment); a retry is answered with them and the session as it is then.
      readonly kind: "session";
      readonly session: string;
      readonly seq?: number;
      readonly receipt: JsonObject;
      readonly commitment?: JsonObject;
    }
  | { readonly kind: "error"; readonly error: WireError["error"] };

export interface PipelineSettings {
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly freshnessWindowMs: number;
  /** How long message outcomes are kept for identical retries. */
  readonly idempotencyRetentionMs: number;
  /** How long an executor has to answer. */
  readonly callTimeoutMs: number;
}

export interface PipelineDependencies {
  readonly registry: AgentRegistry;
  readonly replay: ReplayStore;
  readonly events: EventRecorder;
  readonly router: Router;
  readonly runtimeKey: Ed25519PrivateKey;
  readonly metrics: RuntimeMetrics;
  readonly settings: PipelineSettings;
  readonly payload?: PayloadValidator;
  readonly policy?: PolicyEngine;
  readonly limits?: RateLimiter;
  /** Coordination sessions (`session.*` envelopes through {@link InvocationPipeline.submitSession}). */
  readonly sessions?: SessionService;
  readonly now?: () => number;
}

/** What the transport knows about the submission. */
export interface SubmissionContext {
  readonly principal: Principal;
  readonly sourceIp?: string;
  /** Step 8: told where the binding rate limit stands (POST /v1/envelopes sends it as headers). */
  readonly onRateLimit?: (status: RateLimitStatus) => void;
}

const key = (sender: string, id: string): string => `${sender}\u0000${id}`;

export class InvocationPipeline {
  private readonly payload: PayloadValidator;
  private readonly policy: PolicyEngine;
  private readonly limits: RateLimiter;
  private readonly now: () => number;
  /** Submissions being processed in this process, so an identical retry waits for the first. */
  private readonly inflight = new Map<string, Promise<InvocationResponse>>();
  private readonly sessionsInflight = new Map<string, Promise<SessionResponse>>();

  constructor(private readonly deps: PipelineDependencies) {
    this.payload = deps.payload ?? ACCEPT_ANY_PAYLOAD;
    this.policy = deps.policy ?? DENY_ALL;
    this.limits = deps.limits ?? NO_RATE_LIMIT;
    this.now = deps.now ?? Date.now;
  }

  /**
   * Runs one submitted envelope through the pipeline. Resolves with the receipt and the verified
   * result, or rejects with a SignetError that has already been audited.
   */
  async submit(wire: string | Uint8Array, context: SubmissionContext): Promise<InvocationResponse> {
    const receivedAt = this.now();
    const { settings, registry } = this.deps;

    // Steps 2–4: shape and limits, sender binding, body hash, key and signature — in one pass
    // that checks the cheap things first.
    let verified: VerifiedEnvelope;
    try {
      verified = verifyEnvelope(wire, {
        resolveKey: registry.resolveKey,
        expectedSender: context.principal.id,
        maxBytes: settings.maxBytes,
        maxDepth: settings.maxDepth,
      });
    } catch (error) {
      throw await this.refuse(error, context, undefined);
    }
    const envelope = verified.envelope;
    const tool = this.routableTool(envelope);
    if (isSignetError(tool)) throw await this.refuse(tool, context, verified);

    // Step 5: idempotency, freshness, replay — in DESIGN's order, atomically in the store.
    const admit = await this.admit(verified, context, receivedAt);
    if (admit !== undefined) return this.answerDuplicate(verified, admit, context);

    const run = this.runAdmitted(verified, tool, context, receivedAt);
    const id = key(envelope.from, envelope.id);
    this.inflight.set(id, run);
    try {
      return await run;
    } finally {
      this.inflight.delete(id);
    }
  }

  /**
   * Only `invoke` envelopes to `tool:NAME` or `capability:NAME` are dispatched through this path.
   * Returns the tool or capability name.
   */
  private routableTool(envelope: Envelope): string | SignetError {
    if (envelope.type !== "invoke") {
      return new SignetError("INVALID_ENVELOPE", "Only invoke envelopes can be submitted here", {
        reason: "type:not_submittable",
      });
    }
    const target = parseTarget(envelope.to);
    if (target?.kind === "capability") {
      if (!this.deps.registry.isProvidedCapability(target.name)) {
        return new SignetError("UNKNOWN_TOOL", "No registered agent provides this capability", {
          reason: "capability",
        });
      }
      return target.name;
    }
    if (target?.kind !== "tool") {
      return new SignetError("INVALID_ENVELOPE", "Invocations must target tool:NAME or capability:NAME", {
        reason: "to:not_routable",
      });
    }
    if (!this.deps.registry.isServedTool(target.name)) return new SignetError("UNKNOWN_TOOL");
    return target.name;
  }

  /** Steps 6–11 for a message the replay store admitted. */
  private async runAdmitted(
    verified: VerifiedEnvelope,
    tool: string,
    context: SubmissionContext,
    receivedAt: number,
  ): Promise<InvocationResponse> {
    const { envelope } = verified;
    const { replay, events, router, runtimeKey, settings } = this.deps;
    const isCapability = envelope.to.startsWith("capability:");
    const invocation: InvocationContext = {
      principal: context.principal,
      envelope,
      tool,
      ...(context.sourceIp === undefined ? {} : { sourceIp: context.sourceIp }),
      now: receivedAt,
      ...(context.onRateLimit === undefined ? {} : { onRateLimit: context.onRateLimit }), // step 8
    };

    // Steps 6–8. A permanent refusal is stored as the message's outcome; a retryable one releases
    // the message so the identical envelope may be retried.
    let rules: readonly string[];
    let decision: PolicyDecision | undefined;
    try {
      this.payload.validate(invocation);
      decision = this.policy.decide(invocation);
      if (decision.effect === "deny") {
        throw new SignetError("POLICY_DENIED", undefined, {
          rule: decision.rules[0] ?? "default-deny",
          reason: decision.reason,
        });
      }
      rules = decision.rules;
      // A capability is asked of the agents that provide it; their definitions say who may ask.
      const requester = { id: context.principal.id, kind: context.principal.kind };
      if (isCapability && !this.deps.registry.capabilityAllows(tool, requester)) {
        throw new SignetError("POLICY_DENIED", undefined, {
          rule: "capability_access",
          reason: `no provider of capability:${tool} accepts requests from ${requester.id}`,
        });
      }
      // Step 8: the sender's limits and those the allowing rules carry (policy and agent definitions).
      const limited = await this.limits.check(invocation, decision);
      if (limited !== undefined) throw limited;
    } catch (error) {
      // The audit entry names every rule that decided, and the layer, not only the first.
      const policyDetails =
        decision === undefined
          ? {}
          : { rules: decision.rules, ...(decision.layer === undefined ? {} : { layer: decision.layer }) };
      throw await this.refuseAdmitted(error, context, verified, undefined, policyDetails);
    }

    // Step 9: the decision is durable before anything is dispatched.
    let auditId: string;
    try {
      auditId = await events.record({
        type: "invocation",
        actor: envelope.from,
        target: envelope.to,
        outcome: "allow",
        rules,
        request: envelopeRef(verified),
        ...(envelope.body === undefined ? {} : { params: envelope.body }),
      });
    } catch (error) {
      await replay.release(envelope.from, envelope.id).catch(() => undefined);
      this.deps.metrics.refusals.inc({ code: "AUDIT_UNAVAILABLE" });
      throw new SignetError("AUDIT_UNAVAILABLE", undefined, {}, { cause: error });
    }

    // Step 10: dispatch.
    const deadline = receivedAt + settings.callTimeoutMs;
    const senderKey = this.deps.registry.resolveKey(envelope.kid, envelope.from)!;
    let call;
    try {
      const requester = { id: context.principal.id, kind: context.principal.kind };
      call = router.dispatch(
        `${isCapability ? "capability" : "tool"}:${tool}`,
        deadline,
        verified.wire,
        (callId) =>
          signDelivery(
            {
              call_id: callId,
              envelope_hash: verified.hash,
              sender_key: { kid: envelope.kid, public_key: senderKey.key.toBase64Url() },
              decision: { audit_id: auditId, rules },
              deadline,
            },
            runtimeKey,
          ),
        // For a capability: only providers whose capability_access admits this requester.
        isCapability ? { allowedAgents: this.deps.registry.capabilityProvidersFor(tool, requester) } : {},
      );
    } catch (error) {
      // Nothing was sent: the identical envelope may be retried.
      throw await this.refuseAdmitted(error, context, verified, auditId);
    }

    const finish = ({ wire, executor }: CallResult) =>
      this.acceptResult(wire, verified, executor, { auditId, rules, receivedAt });
    const timeout = new Promise<never>((_, reject) => {
      const timer = setTimeout(
        () => reject(new SignetError("TIMEOUT", undefined, { reason: "deadline" })),
        Math.max(0, deadline - this.now()),
      );
      timer.unref();
      void call.result.finally(() => clearTimeout(timer)).catch(() => undefined);
    });
    try {
      return await Promise.race([call.result.then(finish), timeout]);
    } catch (error) {
      const signetError = isSignetError(error)
        ? error
        : new SignetError("INTERNAL_ERROR", undefined, {}, { cause: error });
      if (signetError.code === "TIMEOUT" && signetError.details.reason === "deadline") {
        // The executor may still answer: keep the message pending and store a late result, so a retry
        // gets it instead of running the tool a second time.
        void call.result.then(finish).catch(() => undefined);
      }
      if (signetError.details.audit_id !== undefined) throw signetError; // Already recorded.
      // Refused by the executor before running, or never delivered to one (a peer instance could not
      // place it): either way the outcome is known and nothing ran.
      const refusedByExecutor =
        signetError.details.reason === "executor" || signetError.details.reason === "not_delivered";
      const eventId = await this.audit(
        "invocation_result",
        envelope,
        "error",
        signetError.code,
        context,
        { decision_audit_id: auditId, reason: signetError.details.reason ?? null },
        { request: envelopeRef(verified) },
      );
      if (refusedByExecutor) {
        // The executor refused the call before running it: the outcome is known. A retryable refusal
        // (it was full, or draining) frees the id for the identical retry; a permanent one is stored.
        if (signetError.retryable) await replay.release(envelope.from, envelope.id).catch(() => undefined);
        else await this.store(envelope, { kind: "error", error: signetError.toWire().error });
      }
      throw eventId === undefined
        ? signetError
        : new SignetError(signetError.code, signetError.message, {
            ...signetError.details,
            audit_id: eventId,
          });
    }
  }

  /** Step 11: verify the executor's result, audit it, sign the receipt, store the outcome. */
  private async acceptResult(
    resultWire: string,
    request: VerifiedEnvelope,
    executor: string,
    decision: { auditId: string; rules: readonly string[]; receivedAt: number },
  ): Promise<InvocationResponse> {
    const { envelope } = request;
    let result: VerifiedEnvelope;
    try {
      result = verifyEnvelope(resultWire, {
        resolveKey: this.deps.registry.resolveKey,
        expectedSender: executor,
        maxBytes: this.deps.settings.maxBytes,
        maxDepth: this.deps.settings.maxDepth,
      });
      assertResultAnswers(result.envelope, { id: envelope.id, hash: request.hash });
      if (
        result.envelope.to !== `agent:${envelope.from}` ||
        result.envelope.decision?.audit_id !== decision.auditId
      ) {
        throw new SignetError("SIGNATURE_INVALID", "The result is not addressed to this call", {
          reason: "unbound",
        });
      }
    } catch (error) {
      // A forged or unbound result is never returned as data.
      const refusal =
        isSignetError(error) && error.code === "SIGNATURE_INVALID"
          ? error
          : new SignetError("SIGNATURE_INVALID", "The executor's result does not verify", {
              reason: isSignetError(error) ? error.code.toLowerCase() : "result",
            });
      this.deps.metrics.refusals.inc({ code: refusal.code });
      const eventId = await this.audit(
        "invocation_result",
        envelope,
        "failure",
        refusal.code,
        { principal: undefined },
        { decision_audit_id: decision.auditId, executor, reason: refusal.details.reason ?? null },
        { request: envelopeRef(request) },
      );
      const audited = new SignetError(refusal.code, refusal.message, {
        ...refusal.details,
        ...(eventId === undefined ? {} : { audit_id: eventId }),
      });
      await this.store(envelope, { kind: "error", error: audited.toWire().error });
      throw audited;
    }
    const resultAuditId = await this.deps.events.record({
      type: "invocation_result",
      actor: executor,
      target: `agent:${envelope.from}`,
      outcome: result.envelope.status === "ok" ? "success" : "failure",
      request: envelopeRef(request, false),
      result: envelopeRef(result),
      metadata: { decision_audit_id: decision.auditId },
    });
    const receipt = signReceipt(
      {
        request: { from: envelope.from, id: envelope.id, hash: request.hash },
        result: {
          from: executor,
          id: result.envelope.id,
          hash: result.hash,
          status: result.envelope.status ?? "ok",
        },
        audit: { request: decision.auditId, result: resultAuditId },
        rules: decision.rules,
        received_at: decision.receivedAt,
        completed_at: this.now(),
        duplicate: false,
      },
      this.deps.runtimeKey,
    );
    const response: InvocationResponse = { receipt, result: result.envelope };
    await this.store(envelope, { kind: "response", response });
    return response;
  }

  /**
   * Step 5 for any envelope: admits it (undefined), or answers what an identical retry finds (the
   * stored outcome, possibly undefined while the first is running: `{ stored }`), or throws the refusal.
   */
  private async admit(
    verified: VerifiedEnvelope,
    context: SubmissionContext,
    receivedAt: number,
  ): Promise<{ stored: unknown } | undefined> {
    const { envelope } = verified;
    const { settings } = this.deps;
    const admit = await this.deps.replay
      .admit({
        sender: envelope.from,
        id: envelope.id,
        hash: verified.hash,
        nonce: envelope.nonce,
        ts: envelope.ts,
        now: receivedAt,
        windowMs: settings.freshnessWindowMs,
        retentionMs: settings.idempotencyRetentionMs,
      })
      .catch((error: unknown) => {
        // Replay protection never fails open.
        throw new SignetError(
          "UNAVAILABLE",
          "The replay store is unavailable",
          { reason: "replay_store" },
          { cause: error },
        );
      });
    switch (admit.kind) {
      case "duplicate":
        return { stored: admit.record.outcome };
      case "conflict":
        throw await this.refuse(new SignetError("DUPLICATE_MESSAGE"), context, verified);
      case "stale":
        throw await this.refuse(
          new SignetError("STALE_MESSAGE", undefined, { reason: "window" }),
          context,
          verified,
        );
      case "replay":
        throw await this.refuse(new SignetError("REPLAY_DETECTED"), context, verified);
      case "admitted":
        return undefined;
    }
  }

  /**
   * Runs one `session.*` envelope through the pipeline — authentication binding, signature, replay,
   * policy (action `session.<verb>`, resource `session:<id>`), rate limits (and session starts),
   * the audited decision — and then the session's own rules (sessions/session-service.ts). An
   * identical retry gets the first answer; a refusal is audited and, unless retryable, stored.
   */
  async submitSession(wire: string | Uint8Array, context: SubmissionContext): Promise<SessionResponse> {
    const receivedAt = this.now();
    const { settings, registry } = this.deps;
    const sessions = this.deps.sessions;
    let verified: VerifiedEnvelope;
    try {
      verified = verifyEnvelope(wire, {
        resolveKey: registry.resolveKey,
        expectedSender: context.principal.id,
        maxBytes: settings.maxBytes,
        maxDepth: settings.maxDepth,
      });
      if (!verified.envelope.type.startsWith("session.")) {
        throw new SignetError("INVALID_ENVELOPE", "Only session.* envelopes can be submitted here", {
          reason: "type:not_session",
        });
      }
      if (sessions === undefined) throw new SignetError("UNAVAILABLE", "Sessions are not enabled", {});
    } catch (error) {
      throw await this.refuse(error, context, undefined, undefined, {}, "session_message");
    }
    const { envelope } = verified;
    let sessionId: string;
    try {
      sessionId = SessionService.sessionIdOf(verified);
    } catch (error) {
      throw await this.refuse(error, context, verified);
    }

    const duplicate = await this.admit(verified, context, receivedAt);
    if (duplicate !== undefined) {
      const outcome = duplicate.stored as StoredOutcome | undefined;
      if (outcome?.kind === "session") return this.sessionAnswer(sessions, outcome);
      if (outcome?.kind === "error") {
        const { code, message, retryable: _retryable, ...details } = outcome.error;
        throw new SignetError(code, message, details);
      }
      // The first submission is still running: on this instance, its answer is this one's too.
      const running = this.sessionsInflight.get(key(envelope.from, envelope.id));
      if (running !== undefined) return running;
      throw await this.refuse(
        new SignetError("UNAVAILABLE", "This message is still being processed", { reason: "in_progress" }),
        context,
        verified,
      );
    }

    const id = key(envelope.from, envelope.id);
    const run = this.runSession(verified, sessionId, sessions, context, receivedAt);
    this.sessionsInflight.set(id, run);
    try {
      return await run;
    } finally {
      this.sessionsInflight.delete(id);
    }
  }

  /** Steps 7 to 9 of an admitted session envelope, and the session's own rules. */
  private async runSession(
    verified: VerifiedEnvelope,
    sessionId: string,
    sessions: SessionService,
    context: SubmissionContext,
    receivedAt: number,
  ): Promise<SessionResponse> {
    const { envelope } = verified;
    // The headers report the binding limit: of the sender's messages and, for a start, its session
    // starts, the one with the least left (a refusal has none left).
    let binding: RateLimitStatus | undefined;
    const report = (status: RateLimitStatus): void => {
      if (
        binding === undefined ||
        status.remaining < binding.remaining ||
        (status.remaining === binding.remaining && status.limit < binding.limit)
      ) {
        binding = status;
      }
    };
    const invocation: InvocationContext = {
      principal: context.principal,
      envelope,
      tool: "",
      ...(context.sourceIp === undefined ? {} : { sourceIp: context.sourceIp }),
      now: receivedAt,
      onRateLimit: report,
    };
    let decision: PolicyDecision | undefined;
    try {
      decision = this.policy.decide(invocation);
      if (decision.effect === "deny") {
        throw new SignetError("POLICY_DENIED", undefined, {
          rule: decision.rules[0] ?? "default-deny",
          reason: decision.reason,
        });
      }
      const limited =
        (await this.limits.check(invocation, decision)) ??
        (envelope.type === "session.start"
          ? await this.limits.checkSessionStart?.(envelope.from, report)
          : undefined);
      if (binding !== undefined) context.onRateLimit?.(binding);
      if (limited !== undefined) throw limited;
    } catch (error) {
      const policyDetails = decision === undefined ? {} : { rules: decision.rules };
      throw await this.refuseAdmitted(error, context, verified, undefined, policyDetails);
    }

    // The decision is durable before the session changes.
    let auditId: string;
    try {
      auditId = await this.deps.events.record({
        type: "session_message",
        actor: envelope.from,
        target: `session:${sessionId}`,
        outcome: "allow",
        rules: decision.rules,
        request: envelopeRef(verified),
        ...(envelope.body === undefined ? {} : { params: envelope.body }),
      });
    } catch (error) {
      await this.deps.replay.release(envelope.from, envelope.id).catch(() => undefined);
      this.deps.metrics.refusals.inc({ code: "AUDIT_UNAVAILABLE" });
      throw new SignetError("AUDIT_UNAVAILABLE", undefined, {}, { cause: error });
    }

    let response: SessionResponse;
    try {
      response =
        envelope.type === "session.start"
          ? await sessions.start(verified)
          : envelope.type === "session.cancel"
            ? await sessions.cancel(sessionId, envelope.from, {
                operator: false,
                ...(typeof (envelope.body as { reason?: unknown } | undefined)?.reason === "string"
                  ? { reason: (envelope.body as { reason: string }).reason }
                  : {}),
              })
            : await sessions.accept(verified);
    } catch (error) {
      throw await this.refuseAdmitted(error, context, verified, auditId);
    }
    // The runtime's signed receipt: which envelope it accepted, and the session after it.
    const { session } = response;
    const receipt = signRuntimeDocument(
      SESSION_RECEIPT_DOMAIN,
      {
        session: session.id,
        type: envelope.type,
        message_id: envelope.id,
        from: envelope.from,
        request: verified.hash,
        ...(response.seq === undefined ? {} : { seq: response.seq }),
        status: session.status,
        message_count: session.message_count,
        history_hash: session.history_hash,
        at: new Date(this.now()).toISOString(),
      },
      this.deps.runtimeKey,
    );
    const receipted: SessionResponse = { ...response, receipt };
    await this.store(envelope, {
      kind: "session",
      session: session.id,
      ...(response.seq === undefined ? {} : { seq: response.seq }),
      receipt,
      ...(response.commitment === undefined ? {} : { commitment: response.commitment }),
    });
    return receipted;
  }

  /** The answer to an identical retry of an accepted session envelope: the same receipt, seq and commitment. */
  private async sessionAnswer(
    sessions: SessionService,
    stored: Extract<StoredOutcome, { kind: "session" }>,
  ): Promise<SessionResponse> {
    const session = await sessions.get(stored.session);
    if (session === undefined) throw new SignetError("SESSION_NOT_FOUND");
    return {
      session: sessionView(session),
      ...(stored.seq === undefined ? {} : { seq: stored.seq }),
      ...(stored.commitment === undefined ? {} : { commitment: stored.commitment }),
      receipt: stored.receipt,
    };
  }

  /** Answers an identical retry from the stored outcome, or waits for the first submission. */
  private async answerDuplicate(
    verified: VerifiedEnvelope,
    duplicate: { stored: unknown },
    context: SubmissionContext,
  ): Promise<InvocationResponse> {
    const { envelope } = verified;
    let outcome = duplicate.stored as StoredOutcome | undefined;
    if (outcome === undefined) {
      const running = this.inflight.get(key(envelope.from, envelope.id));
      if (running === undefined) {
        // Admitted elsewhere (another instance, or before a restart) and not finished: the outcome is
        // unknown, so this retry must not run it again.
        throw await this.refuse(
          new SignetError("UNAVAILABLE", "This message is still being processed", { reason: "in_progress" }),
          context,
          verified,
        );
      }
      // The first submission's refusal is this retry's refusal too (it was audited there).
      outcome = { kind: "response", response: await running };
    }
    await this.audit("invocation", envelope, "allow", undefined, context, {
      duplicate: true,
      hash: verified.hash,
    });
    if (outcome.kind === "error") {
      const { code, message, retryable: _retryable, ...details } = outcome.error;
      throw new SignetError(code, message, details);
    }
    if (outcome.kind === "session") {
      throw await this.refuse(
        new SignetError("DUPLICATE_MESSAGE", "This id was used for a session message", { reason: "kind" }),
        context,
        verified,
      );
    }
    const receipt = signReceipt(
      {
        request: outcome.response.receipt.request,
        ...(outcome.response.receipt.result === undefined ? {} : { result: outcome.response.receipt.result }),
        audit: outcome.response.receipt.audit,
        rules: outcome.response.receipt.rules,
        received_at: outcome.response.receipt.received_at,
        completed_at: outcome.response.receipt.completed_at,
        duplicate: true,
      },
      this.deps.runtimeKey,
    );
    return { receipt, result: outcome.response.result };
  }

  /** Audits a refusal after admission and stores or releases the message by retryability. */
  private async refuseAdmitted(
    error: unknown,
    context: SubmissionContext,
    verified: VerifiedEnvelope,
    auditId?: string,
    extraDetails: Record<string, unknown> = {},
  ): Promise<SignetError> {
    const refusal = await this.refuse(error, context, verified, auditId, extraDetails);
    const { envelope } = verified;
    if (refusal.retryable) await this.deps.replay.release(envelope.from, envelope.id).catch(() => undefined);
    else await this.store(envelope, { kind: "error", error: refusal.toWire().error });
    return refusal;
  }

  /** Records a refusal (never letting a recording failure hide it) and returns it as a SignetError. */
  private async refuse(
    error: unknown,
    context: SubmissionContext,
    verified: VerifiedEnvelope | undefined,
    auditId?: string,
    extraDetails: Record<string, unknown> = {},
    /** The event type of a refusal before the envelope verified (a session route's are sessions'). */
    unverifiedType: "invocation" | "session_message" = "invocation",
  ): Promise<SignetError> {
    const refusal = isSignetError(error)
      ? error
      : new SignetError("INTERNAL_ERROR", undefined, {}, { cause: error });
    this.deps.metrics.refusals.inc({ code: refusal.code });
    const eventId = await this.audit(
      refusal.code === "POLICY_DENIED"
        ? "policy_denied"
        : refusal.code === "RATE_LIMITED"
          ? "rate_limited"
          : verified === undefined
            ? unverifiedType
            : verified.envelope.type.startsWith("session.")
              ? "session_message"
              : "invocation",
      verified?.envelope,
      "deny",
      refusal.code,
      context,
      {
        reason: refusal.details.reason ?? null,
        ...(refusal.details.rule === undefined ? {} : { rule: refusal.details.rule }),
        ...(auditId === undefined ? {} : { decision_audit_id: auditId }),
        ...extraDetails,
      },
      verified === undefined ? {} : { request: envelopeRef(verified) },
    );
    return eventId === undefined || refusal.details.audit_id !== undefined
      ? refusal
      : new SignetError(
          refusal.code,
          refusal.message,
          { ...refusal.details, audit_id: eventId },
          { cause: refusal.cause },
        );
  }

  private async audit(
    type: string,
    envelope: Envelope | undefined,
    outcome: AuditOutcome,
    code: string | undefined,
    context: { principal: Principal | undefined },
    metadata: Record<string, unknown>,
    refs: Pick<AuditEventInput, "request" | "result" | "rules"> = {},
  ): Promise<string | undefined> {
    const { rules, ...rest } = metadata;
    try {
      return await this.deps.events.record({
        type,
        actor: envelope?.from ?? context.principal?.id ?? "unknown",
        ...(envelope === undefined ? {} : { target: envelope.to }),
        outcome,
        ...(code === undefined ? {} : { code }),
        ...(Array.isArray(rules) ? { rules: rules as string[] } : {}),
        ...refs,
        metadata: rest,
      });
    } catch {
      return undefined;
    }
  }

  private async store(envelope: Envelope, outcome: StoredOutcome): Promise<void> {
    await this.deps.replay.complete(envelope.from, envelope.id, outcome);
  }
}
