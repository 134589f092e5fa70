// Coordination sessions in the SDK against a recording stand-in runtime: the sender guard before any
// I/O, the exact envelopes each verb sends, enumerations in any case, and wire errors as typed errors.
import {
  Ed25519PrivateKey,
  type Envelope,
  type JsonValue,
  SignetError,
  signRuntimeDocument,
  verifyEnvelope,
} from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthConfig,
  type CoordinationSession,
  DecisionSession,
  HandoffSession,
  IdentityMismatchError,
  InvalidRequestError,
  InvalidSessionIdError,
  PermissionDeniedError,
  ProposalSession,
  QuorumSession,
  RetryPolicy,
  SdkError,
  type SessionCommitment,
  SessionAlreadyExistsError,
  SessionNotFoundError,
  SessionNotOpenError,
  SessionRuleViolationError,
  SignatureInvalidError,
  SignetClient,
  type SignetClientOptions,
  TaskSession,
  verifySessionCommitment,
} from "@signet/sdk";
import { FakeSessionsRuntime, sessionViewFor } from "./helpers/fake-sessions-runtime.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const aliceKey = Ed25519PrivateKey.generate();
const bobKey = Ed25519PrivateKey.generate();
const runtimeKey = Ed25519PrivateKey.generate();
const keys = new Map([
  ["alice", aliceKey.publicKey],
  ["bob", bobKey.publicKey],
]);

function wireError(
  code: ConstructorParameters<typeof SignetError>[0],
  details: Record<string, unknown> = {},
) {
  const error = new SignetError(code, undefined, details);
  return { status: error.status, body: error.toWire() };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("coordination sessions (recording runtime)", () => {
  let fake: FakeSessionsRuntime;
  let url: string;
  const clients: SignetClient[] = [];

  beforeEach(async () => {
    fake = new FakeSessionsRuntime();
    url = await fake.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await fake.stop();
  });

  function client(options: Partial<SignetClientOptions> = {}): SignetClient {
    const created = new SignetClient({
      target: url,
      allowInsecure: true,
      auth: AuthConfig.forApiKey("sgk_alice_secret", { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: aliceKey,
      retryPolicy: new RetryPolicy({ backoffBaseMs: 1, backoffMaxMs: 5 }),
      ...options,
    });
    clients.push(created);
    return created;
  }

  /** The one envelope sent, with its signature verified over the exact bytes received. */
  function lastSent(): Envelope {
    const request = fake.requests.at(-1)!;
    expect(request.method).toBe("POST");
    expect(request.url).toBe("/v1/sessions/messages");
    expect(request.headers["content-type"]).toBe("application/json");
    const verified = verifyEnvelope(request.body, {
      resolveKey: (kid, sender) => {
        const key = keys.get(sender);
        return key?.kid === kid ? { key, owner: sender } : undefined;
      },
    });
    return verified.envelope;
  }

  describe("the expectedSender guard (the seed example)", () => {
    it("sends as alice, and refuses mallory before anything is sent", async () => {
      const auth = AuthConfig.forBearer("tok-alice", { expectedSender: "alice" });
      const session = new DecisionSession(client(), { auth });

      await session.vote("p1", "approve");
      const sent = lastSent();
      expect(sent.from).toBe("alice");
      expect(sent.type).toBe("session.vote");
      expect(sent.body).toEqual({ proposal_id: "p1", vote: "APPROVE" });
      expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer tok-alice");

      const requests = fake.requests.length;
      const connections = fake.connections;
      const error = await rejection(session.vote("p1", "approve", { sender: "mallory" }));
      expect(error).toBeInstanceOf(IdentityMismatchError);
      expect((error as IdentityMismatchError).code).toBe("IDENTITY_MISMATCH");
      expect((error as IdentityMismatchError).expected).toBe("alice");
      expect((error as IdentityMismatchError).actual).toBe("mallory");
      expect(fake.requests.length).toBe(requests);
      expect(fake.connections).toBe(connections);
    });

    it("opens no connection at all for a refused sender", async () => {
      const auth = AuthConfig.forBearer("tok-alice", { expectedSender: "alice" });
      const session = new DecisionSession(client(), { auth });
      for (const call of [
        () => session.vote("p1", "approve", { sender: "mallory" }),
        () => session.start({ participants: ["bob"] }, { sender: "mallory" }),
        () => session.cancel("no", { sender: "mallory" }),
        () => session.commit("p1", { sender: "mallory" }),
      ]) {
        expect(await rejection(call())).toBeInstanceOf(IdentityMismatchError);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(fake.connections).toBe(0);
      expect(fake.requests).toEqual([]);
    });

    it("speaks for another participant only with that participant's credential and key", async () => {
      const bobAuth = AuthConfig.forApiKey("sgk_bob_secret", { expectedSender: "bob" });
      const signed = new DecisionSession(client(), { auth: bobAuth, signingKey: bobKey });
      await signed.vote("p1", "REJECT");
      expect(lastSent().from).toBe("bob");
      expect(fake.requests.at(-1)!.headers["x-signet-api-key"]).toBe("sgk_bob_secret");

      // Never signed with alice's key on bob's behalf.
      const unsigned = new DecisionSession(client(), { id: signed.id, auth: bobAuth });
      const error = await rejection(unsigned.vote("p1", "approve"));
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).reason).toBe("signing_key");
      expect(fake.requests.length).toBe(1);
    });
  });

  describe("envelopes", () => {
    it("addresses every message to session:<id> with the session member set", async () => {
      const session = new DecisionSession(client());
      await session.start({ participants: ["bob", "carol"] });
      const sent = lastSent();
      expect(sent.type).toBe("session.start");
      expect(sent.to).toBe(`session:${session.id}`);
      expect(sent.session).toBe(session.id);
      expect(sent.body).toEqual({ mode: "decision", participants: ["bob", "carol"] });
    });

    it("generates a UUID v4 session id, or takes the caller's", async () => {
      const first = new DecisionSession(client());
      const second = new DecisionSession(client());
      expect(first.id).toMatch(UUID_V4);
      expect(second.id).toMatch(UUID_V4);
      expect(first.id).not.toBe(second.id);
      const chosen = new TaskSession(client(), { id: "A1b2C3d4E5f6G7h8I9j0K1" });
      expect(chosen.id).toBe("A1b2C3d4E5f6G7h8I9j0K1");
      await chosen.accept();
      expect(lastSent().session).toBe("A1b2C3d4E5f6G7h8I9j0K1");
    });

    it("refuses a malformed session id locally", () => {
      for (const id of [
        "short",
        "has space in it 0123456789",
        "x".repeat(129),
        "session/../../admin-0123456",
      ]) {
        let error: unknown;
        try {
          new DecisionSession(client(), { id });
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(InvalidSessionIdError);
      }
    });

    it("uses the caller's message id, and answers with the id and hash sent", async () => {
      const session = new QuorumSession(client());
      const id = "0190f5b2-7c1e-4a3b-8c9d-0123456789ab";
      const answer = await session.approve({}, { id });
      expect(lastSent().id).toBe(id);
      expect(answer.messageId).toBe(id);
      expect(answer.envelopeHash).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(answer.attempts).toBe(1);
      expect(answer.session.id).toBe(session.id);
      expect(answer.seq).toBe(0);
    });

    it("sends each verb's body exactly as docs/sessions.md defines it", async () => {
      const c = client();
      const decision = new DecisionSession(c);
      const proposal = new ProposalSession(c);
      const task = new TaskSession(c);
      const handoff = new HandoffSession(c);
      const quorum = new QuorumSession(c);
      const cases: [() => Promise<unknown>, string, JsonValue][] = [
        [
          () =>
            decision.start({
              participants: ["bob", "carol"],
              ttlMs: 60_000,
              minApprovals: 2,
              policyRef: "p-7",
            }),
          "start",
          {
            mode: "decision",
            participants: ["bob", "carol"],
            ttl_ms: 60_000,
            config: { min_approvals: 2 },
            policy_ref: "p-7",
          },
        ],
        [() => decision.propose("p1"), "propose", { proposal_id: "p1" }],
        [
          () => decision.propose("p2", { title: "Ship", detail: "v2 on Monday" }),
          "propose",
          { proposal_id: "p2", title: "Ship", detail: "v2 on Monday" },
        ],
        [
          () => decision.evaluate("p1", { recommendation: "review", confidence: 0.75 }),
          "evaluate",
          { proposal_id: "p1", recommendation: "REVIEW", confidence: 0.75 },
        ],
        [
          () => decision.evaluate("p1", { recommendation: "Block", confidence: 1, rationale: "unsafe" }),
          "evaluate",
          { proposal_id: "p1", recommendation: "BLOCK", confidence: 1, rationale: "unsafe" },
        ],
        [
          () => decision.object("p1", { severity: "HIGH", reason: "cost" }),
          "object",
          { proposal_id: "p1", severity: "high", reason: "cost" },
        ],
        [() => decision.vote("p1", "abstain"), "vote", { proposal_id: "p1", vote: "ABSTAIN" }],
        [() => decision.commit("p1"), "commit", { proposal_id: "p1" }],
        [() => decision.cancel(), "cancel", {}],
        [() => decision.cancel("superseded"), "cancel", { reason: "superseded" }],
        [
          () => proposal.start({ participants: ["bob"] }),
          "start",
          { mode: "proposal", participants: ["bob"] },
        ],
        [
          () => proposal.propose("o1", { terms: { price: 100 } }),
          "propose",
          { proposal_id: "o1", terms: { price: 100 } },
        ],
        [
          () => proposal.counter("o2", { counters: "o1", terms: { price: 90 }, summary: "lower" }),
          "counter",
          { proposal_id: "o2", counters: "o1", terms: { price: 90 }, summary: "lower" },
        ],
        [() => proposal.accept("o2"), "accept", { proposal_id: "o2" }],
        [() => proposal.reject("o2"), "reject", { proposal_id: "o2" }],
        [
          () => proposal.reject("o2", { reason: "too high" }),
          "reject",
          { proposal_id: "o2", reason: "too high" },
        ],
        [() => task.start({ participants: ["bob"] }), "start", { mode: "task", participants: ["bob"] }],
        [
          () => task.assign("t1", { assignee: "bob", description: "reindex" }),
          "assign",
          { task_id: "t1", assignee: "bob", description: "reindex" },
        ],
        [() => task.accept(), "accept", {}],
        [() => task.progress({ percent: 50, note: "half" }), "progress", { percent: 50, note: "half" }],
        [() => task.complete({ rows: 3 }), "complete", { result: { rows: 3 } }],
        [() => task.complete(false), "complete", { result: false }],
        [() => task.fail("disk full"), "fail", { reason: "disk full" }],
        [() => handoff.start({ participants: ["bob"] }), "start", { mode: "handoff", participants: ["bob"] }],
        [() => handoff.offer("bob", { ticket: 42 }), "offer", { to: "bob", context: { ticket: 42 } }],
        [() => handoff.accept(), "accept", {}],
        [() => handoff.decline(), "decline", {}],
        [() => handoff.decline({ reason: "busy" }), "decline", { reason: "busy" }],
        [
          () => quorum.start({ participants: ["bob", "carol"], k: 2 }),
          "start",
          { mode: "quorum", participants: ["bob", "carol"], config: { k: 2 } },
        ],
        [() => quorum.approve(), "approve", {}],
        [() => quorum.reject({ reason: "no" }), "reject", { reason: "no" }],
      ];
      for (const [call, verb, body] of cases) {
        await call();
        const sent = lastSent();
        expect(sent.type, verb).toBe(`session.${verb}`);
        expect(sent.body, verb).toEqual(body);
        expect(sent.to).toBe(`session:${sent.session}`);
      }
    });
  });

  describe("values in any case, checked before sending", () => {
    it("sends votes, recommendations and severities in the runtime's case", async () => {
      const session = new DecisionSession(client());
      for (const [given, sent] of [
        ["approve", "APPROVE"],
        ["Approve", "APPROVE"],
        ["APPROVE", "APPROVE"],
        ["aPpRoVe", "APPROVE"],
        ["reject", "REJECT"],
        ["abstain", "ABSTAIN"],
      ]) {
        await session.vote("p1", given as "approve");
        expect((lastSent().body as { vote: string }).vote).toBe(sent);
      }
      await session.evaluate("p1", { recommendation: "block", confidence: 0.5 });
      expect((lastSent().body as { recommendation: string }).recommendation).toBe("BLOCK");
      await session.object("p1", { severity: "CRITICAL", reason: "breaks prod" });
      expect((lastSent().body as { severity: string }).severity).toBe("critical");
    });

    it("refuses anything else with a local error, and sends nothing", async () => {
      const session = new DecisionSession(client());
      const attempts: (() => Promise<unknown>)[] = [
        () => session.vote("p1", "yes" as "approve"),
        () => session.vote("p1", "approvе" as "approve"), // a Cyrillic "е"
        () => session.vote("p1", "" as "approve"),
        () => session.vote("p1", undefined as unknown as "approve"),
        () => session.evaluate("p1", { recommendation: "maybe" as "review", confidence: 0.5 }),
        () => session.evaluate("p1", { recommendation: "approve", confidence: 1.5 }),
        () => session.object("p1", { severity: "urgent" as "high", reason: "x" }),
        () => session.object("p1", { severity: "low", reason: "" }),
        () => session.propose("-bad id"),
        () => session.start({ participants: ["Bob"] }),
        () => session.start({ participants: ["bob"], minApprovals: 0 }),
        () => new QuorumSession(client()).start({ participants: ["bob"], k: 1.5 }),
        () => new TaskSession(client()).complete(null),
        () => new TaskSession(client()).progress({ percent: 101, note: "x" }),
        () => new HandoffSession(client()).offer("bob", [] as unknown as Record<string, never>),
      ];
      for (const attempt of attempts) {
        const error = await rejection(attempt());
        expect(error, String(attempt)).toBeInstanceOf(SdkError);
        expect((error as SdkError).reason).toBe("session_body");
      }
      const error = await rejection(session.vote("p1", "yes" as "approve"));
      expect(error.message).toContain("APPROVE, REJECT, ABSTAIN");
      expect(fake.requests).toEqual([]);
    });
  });

  describe("answers and errors", () => {
    it("maps each wire error to its typed error, keeping the reason", async () => {
      const session = new DecisionSession(client());
      const cases: [ReturnType<typeof wireError>, new (...args: never[]) => Error, string?][] = [
        [
          wireError("SESSION_RULE_VIOLATION", { reason: "threshold_not_met" }),
          SessionRuleViolationError,
          "threshold_not_met",
        ],
        [wireError("SESSION_NOT_FOUND"), SessionNotFoundError],
        [wireError("SESSION_NOT_OPEN", { reason: "resolved" }), SessionNotOpenError, "resolved"],
        [wireError("SESSION_ALREADY_EXISTS"), SessionAlreadyExistsError],
        [wireError("INVALID_SESSION_ID", { reason: "format" }), InvalidSessionIdError, "format"],
        [wireError("INVALID_REQUEST", { reason: "session_body" }), InvalidRequestError, "session_body"],
        [wireError("POLICY_DENIED", { rule: "no-votes", reason: "closed" }), PermissionDeniedError, "closed"],
      ];
      for (const [answer, type, reason] of cases) {
        fake.script.push(answer);
        const error = await rejection(session.commit("p1"));
        expect(error, type.name).toBeInstanceOf(type);
        if (reason !== undefined) expect((error as SessionRuleViolationError).reason).toBe(reason);
      }
      expect(fake.requests.length).toBe(cases.length); // permanent: none was retried
    });

    it("retries a retryable refusal with the identical bytes", async () => {
      const session = new DecisionSession(client());
      fake.script.push(wireError("UNAVAILABLE"), wireError("RATE_LIMITED", { retry_after_ms: 5 }));
      const answer = await session.vote("p1", "approve");
      expect(answer.attempts).toBe(3);
      const bodies = fake.requests.map((request) => request.body);
      expect(bodies).toHaveLength(3);
      expect(new Set(bodies).size).toBe(1);
    });

    it("refuses a malformed or mismatched answer", async () => {
      const session = new DecisionSession(client());
      fake.script.push({ status: 200, body: { session: { id: session.id } } });
      expect(((await rejection(session.commit("p1"))) as SdkError).reason).toBe("bad_response");
      fake.answer = (envelope) => ({
        status: 200,
        body: { session: sessionViewFor({ ...envelope, session: "B".repeat(22) }, 0) },
      });
      expect(((await rejection(session.commit("p1"))) as SdkError).reason).toBe("bad_response");
    });

    it("does not send when the signal is already aborted", async () => {
      const session = new DecisionSession(client());
      const controller = new AbortController();
      controller.abort();
      const error = await rejection(session.vote("p1", "approve", { signal: controller.signal }));
      expect((error as SdkError).reason).toBe("aborted");
      expect(fake.requests).toEqual([]);
    });
  });

  describe("commitments", () => {
    function commitmentFor(
      sessionId: string,
      key: Ed25519PrivateKey,
      historyHash = `sha256:${"1".repeat(64)}`,
    ) {
      return signRuntimeDocument(
        "session-commitment",
        {
          session: sessionId,
          mode: "decision",
          status: "RESOLVED",
          outcome: { result: "committed", proposal_id: "p1" },
          message_count: 3,
          history_hash: historyHash,
          resolved_at: new Date().toISOString(),
        },
        key,
      );
    }

    /** The runtime's receipt for the envelope received (signed with `key`, for `request` if given). */
    function receiptFor(envelope: Envelope, wire: string, key: Ed25519PrivateKey, request?: string) {
      const verified = verifyEnvelope(wire, {
        resolveKey: (kid, sender) => {
          const agentKey = keys.get(sender);
          return agentKey?.kid === kid ? { key: agentKey, owner: sender } : undefined;
        },
      });
      return signRuntimeDocument(
        "session-receipt",
        {
          session: envelope.session!,
          type: envelope.type,
          message_id: envelope.id,
          from: envelope.from,
          request: request ?? verified.hash,
          seq: 2,
          status: "RESOLVED",
          message_count: 3,
          history_hash: `sha256:${"1".repeat(64)}`,
          at: new Date().toISOString(),
        },
        key,
      );
    }

    function answerWith(
      commitment: (envelope: Envelope) => Record<string, JsonValue>,
      receipt: (envelope: Envelope, wire: string) => Record<string, JsonValue> | undefined = (
        envelope,
        wire,
      ) => receiptFor(envelope, wire, runtimeKey),
    ): void {
      fake.answer = (envelope, request) => {
        const signed = receipt(envelope, request.body);
        return {
          status: 200,
          body: {
            session: { ...sessionViewFor(envelope, 3), status: "RESOLVED" },
            seq: 2,
            commitment: commitment(envelope),
            ...(signed === undefined ? {} : { receipt: signed }),
          },
        };
      };
    }

    it("verifies the receipt against the pinned runtime key, and requires one", async () => {
      const pinned = client({ runtimePublicKey: runtimeKey.publicKey.toBase64Url() });
      const session = new DecisionSession(pinned);
      const commitment = (envelope: Envelope) => commitmentFor(envelope.session!, runtimeKey);
      answerWith(commitment);
      const { receipt, envelopeHash } = await session.commit("p1");
      expect(receipt?.request).toBe(envelopeHash);

      answerWith(commitment, (envelope, wire) => receiptFor(envelope, wire, Ed25519PrivateKey.generate()));
      const forged = await rejection(session.commit("p1"));
      expect(forged).toBeInstanceOf(SignatureInvalidError);
      expect((forged as SignatureInvalidError).reason).toBe("runtime_sig");

      answerWith(commitment, (envelope, wire) =>
        receiptFor(envelope, wire, runtimeKey, `sha256:${"7".repeat(64)}`),
      );
      const other = await rejection(session.commit("p1"));
      expect((other as SignatureInvalidError).reason).toBe("receipt_binding");

      answerWith(commitment, () => undefined);
      const unsigned = await rejection(session.commit("p1"));
      expect(unsigned).toBeInstanceOf(SdkError);
      expect((unsigned as SdkError).reason).toBe("bad_response");
    });

    it("verifies the commitment against the pinned runtime key", async () => {
      const pinned = client({ runtimePublicKey: runtimeKey.publicKey.toBase64Url() });
      const session = new DecisionSession(pinned);
      answerWith((envelope) => commitmentFor(envelope.session!, runtimeKey));
      const { commitment, session: view } = await session.commit("p1");
      expect(commitment?.session).toBe(session.id);
      expect(view.status).toBe("RESOLVED");
      verifySessionCommitment(commitment!, runtimeKey.publicKey, { session: session.id });

      answerWith((envelope) => commitmentFor(envelope.session!, Ed25519PrivateKey.generate()));
      const forged = await rejection(session.commit("p1"));
      expect(forged).toBeInstanceOf(SignatureInvalidError);
      expect((forged as SignatureInvalidError).reason).toBe("runtime_sig");

      answerWith(() => commitmentFor("C".repeat(22), runtimeKey));
      const elsewhere = await rejection(session.commit("p1"));
      expect(elsewhere).toBeInstanceOf(SignatureInvalidError);
      expect((elsewhere as SignatureInvalidError).reason).toBe("commitment_binding");

      answerWith((envelope) => commitmentFor(envelope.session!, runtimeKey, `sha256:${"9".repeat(64)}`));
      expect(((await rejection(session.commit("p1"))) as SignatureInvalidError).reason).toBe(
        "commitment_binding",
      );
    });

    it("passes a commitment through unverified when no runtime key is pinned", async () => {
      const session = new DecisionSession(client());
      answerWith((envelope) => commitmentFor(envelope.session!, Ed25519PrivateKey.generate()));
      const { commitment } = await session.commit("p1");
      expect(commitment).toBeDefined();
      expect(() => verifySessionCommitment(commitment as SessionCommitment, runtimeKey.publicKey)).toThrow(
        SignatureInvalidError,
      );
    });
  });

  describe("reading a session back", () => {
    it("GETs the session and its messages with the session's credential", async () => {
      const auth = AuthConfig.forBearer("tok-alice", { expectedSender: "alice" });
      const session: CoordinationSession = new DecisionSession(client(), { auth });
      const view = sessionViewFor(
        { session: session.id, type: "session.start", body: { mode: "decision" } } as unknown as Envelope,
        2,
      );
      fake.script.push({ status: 200, body: { session: view } });
      expect(await session.get()).toEqual(view);
      expect(fake.requests.at(-1)!.method).toBe("GET");
      expect(fake.requests.at(-1)!.url).toBe(`/v1/sessions/${session.id}`);
      expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer tok-alice");

      const message = {
        seq: 0,
        message_id: "0190f5b2-7c1e-7a3b-8c9d-0123456789ab",
        sender: "bob",
        kind: "vote",
        envelope_hash: `sha256:${"3".repeat(64)}`,
        body: { proposal_id: "p1", vote: "APPROVE" },
        accepted_at: new Date().toISOString(),
      };
      fake.script.push({ status: 200, body: { session_id: session.id, messages: [message] } });
      expect(await session.messages()).toEqual([message]);
      expect(fake.requests.at(-1)!.url).toBe(`/v1/sessions/${session.id}/messages`);

      fake.script.push(wireError("SESSION_NOT_FOUND"));
      expect(await rejection(session.get())).toBeInstanceOf(SessionNotFoundError);
    });
  });
});
