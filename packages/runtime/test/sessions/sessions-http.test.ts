// Coordination sessions through the real runtime over TLS: every message a signed envelope through
// the pipeline, the session's rules applied after it, the commitment signed and audited, the watch
// stream resumable, and sessions surviving a restart.
import { randomUUID } from "node:crypto";
import {
  type EnvelopeDraft,
  type JsonValue,
  sessionHistoryHash,
  signEnvelope,
  verifyRuntimeDocument,
  verifySessionCommitment,
  verifySessionReceipt,
} from "@signet/protocol";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMITMENT_DOMAIN } from "../../src/sessions/session-service.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let fx: RuntimeFixture;
let alice: TestAgent;
let bob: TestAgent;
let carol: TestAgent;
let mallory: TestAgent;

beforeAll(async () => {
  fx = await startRuntime({
    yaml: "sessions:\n  sweep_interval_ms: 200\n  watch_poll_ms: 50\n  watch_heartbeat_ms: 200\n",
  });
  alice = await registerAgent(fx, "alice");
  bob = await registerAgent(fx, "bob");
  carol = await registerAgent(fx, "carol");
  mallory = await registerAgent(fx, "mallory");
});

afterAll(async () => {
  await fx.close();
});

const admin = (): Record<string, string> => ({ authorization: `Bearer ${fx.adminKey}` });

function envelope(
  agent: TestAgent,
  session: string,
  verb: string,
  body: Record<string, JsonValue>,
  overrides: Partial<EnvelopeDraft<JsonValue>> = {},
) {
  return signEnvelope(
    { type: `session.${verb}`, from: agent.id, to: `session:${session}`, session, body, ...overrides },
    agent.key,
  );
}

async function send(
  agent: TestAgent,
  session: string,
  verb: string,
  body: Record<string, JsonValue> = {},
  options: { headers?: Record<string, string>; overrides?: Partial<EnvelopeDraft<JsonValue>> } = {},
) {
  const signed = envelope(agent, session, verb, body, options.overrides);
  const response = await call(fx, "POST", "/v1/sessions/messages", {
    headers: options.headers ?? agent.headers,
    body: signed.wire,
  });
  return { ...response, signed };
}

async function startDecision(config: Record<string, JsonValue> = {}, ttl_ms = 60_000): Promise<string> {
  const id = randomUUID();
  const started = await send(alice, id, "start", {
    mode: "decision",
    participants: ["bob", "carol"],
    ttl_ms,
    config,
  });
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  return id;
}

async function auditOf(target: string, eventType: string) {
  const response = await call(
    fx,
    "GET",
    `/v1/audit?target=${encodeURIComponent(target)}&event_type=${eventType}&limit=100`,
    { headers: admin() },
  );
  expect(response.status).toBe(200);
  return response.body.entries as { outcome: string; code?: string; metadata?: Record<string, unknown> }[];
}

describe("a decision among three agents", () => {
  it("runs start → propose → votes → commit, and the commitment is runtime-signed over the history", async () => {
    const id = await startDecision();
    expect((await send(alice, id, "propose", { proposal_id: "p1", title: "ship it" })).status).toBe(200);
    const hashes: string[] = [];
    const evaluate = await send(bob, id, "evaluate", {
      proposal_id: "p1",
      recommendation: "APPROVE",
      confidence: 0.9,
    });
    expect(evaluate.status).toBe(200);
    expect(evaluate.body.seq).toBe(1);
    for (const agent of [bob, carol]) {
      const vote = await send(agent, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
      expect(vote.status, JSON.stringify(vote.body)).toBe(200);
      hashes.push(vote.signed.hash);
    }
    const commit = await send(alice, id, "commit", { proposal_id: "p1" });
    expect(commit.status, JSON.stringify(commit.body)).toBe(200);
    expect(commit.body.session.status).toBe("RESOLVED");
    expect(commit.body.session.outcome).toMatchObject({ result: "committed", proposal_id: "p1" });
    const commitment = commit.body.commitment as Record<string, unknown>;
    verifyRuntimeDocument(COMMITMENT_DOMAIN, commitment, fx.runtime.signingKey.publicKey);
    expect(commitment).toMatchObject({ session: id, status: "RESOLVED", message_count: 5 });

    // The history hash is recomputable from the start hash and the messages' envelope hashes.
    const messages = await call(fx, "GET", `/v1/sessions/${id}/messages`, { headers: alice.headers });
    expect(messages.status).toBe(200);
    const list = messages.body.messages as { seq: number; envelope_hash: string; kind: string }[];
    expect(list.map((m) => m.kind)).toEqual(["propose", "evaluate", "vote", "vote", "commit"]);
    const startHash = commitment.start_hash as `sha256:${string}`;
    const envelopeHashes = list.map((m) => m.envelope_hash as `sha256:${string}`);
    verifySessionCommitment(commitment, fx.runtime.signingKey.publicKey, { startHash, envelopeHashes });
    expect(sessionHistoryHash(startHash, envelopeHashes)).toBe(commitment.history_hash);
    // A history with one message left out is not the one committed.
    expect(() =>
      verifySessionCommitment(commitment, fx.runtime.signingKey.publicKey, {
        startHash,
        envelopeHashes: envelopeHashes.slice(1),
      }),
    ).toThrow(/does not cover/);
    expect(list[2]!.envelope_hash).toBe(hashes[0]);

    // A tampered commitment does not verify.
    expect(() =>
      verifyRuntimeDocument(
        COMMITMENT_DOMAIN,
        { ...commitment, history_hash: `sha256:${"1".repeat(64)}` },
        fx.runtime.signingKey.publicKey,
      ),
    ).toThrow();

    // The commitment is in the audit log, and the log verifies.
    const committed = await auditOf(`session:${id}`, "session_committed");
    expect(committed).toHaveLength(1);
    expect(committed[0]!.metadata?.commitment).toEqual(commitment);
    const verify = await call(fx, "POST", "/v1/audit/verify", { headers: admin(), body: {} });
    expect(verify.body.report.ok).toBe(true);
  });

  it("stops at once on a critical objection", async () => {
    const id = await startDecision();
    await send(alice, id, "propose", { proposal_id: "p1" });
    const stop = await send(carol, id, "object", {
      proposal_id: "p1",
      severity: "critical",
      reason: "unsafe",
    });
    expect(stop.status).toBe(200);
    expect(stop.body.session.outcome).toMatchObject({ result: "stopped", cause: "critical_objection" });
    expect(stop.body.commitment).toBeDefined();
  });
});

describe("every mode through the pipeline", () => {
  async function start(mode: string, participants: string[], config: Record<string, JsonValue> = {}) {
    const id = randomUUID();
    const started = await send(alice, id, "start", { mode, participants, config });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    return id;
  }
  async function ok(agent: TestAgent, id: string, verb: string, body: Record<string, JsonValue> = {}) {
    const response = await send(agent, id, verb, body);
    expect(response.status, `${verb}: ${JSON.stringify(response.body)}`).toBe(200);
    return response.body as { session: { status: string; outcome?: unknown }; commitment?: object };
  }

  it("proposal: propose, counter, accept", async () => {
    const id = await start("proposal", ["bob"]);
    await ok(alice, id, "propose", { proposal_id: "o1", terms: { price: 100 } });
    await ok(bob, id, "counter", { proposal_id: "o2", counters: "o1", terms: { price: 90 } });
    const accepted = await ok(alice, id, "accept", { proposal_id: "o2" });
    expect(accepted.session.status).toBe("RESOLVED");
    expect(accepted.session.outcome).toMatchObject({
      result: "accepted",
      proposal_id: "o2",
      terms: { price: 90 },
    });
    expect(accepted.commitment).toBeDefined();
  });

  it("task: assign, accept, progress, complete", async () => {
    const id = await start("task", ["bob"]);
    await ok(alice, id, "assign", { task_id: "t1", assignee: "bob", description: "reindex" });
    await ok(bob, id, "accept");
    await ok(bob, id, "progress", { percent: 50, note: "halfway" });
    const done = await ok(bob, id, "complete", { result: { indexed: 42 } });
    expect(done.session.outcome).toMatchObject({
      result: "completed",
      assignee: "bob",
      output: { indexed: 42 },
    });
  });

  it("handoff: offer, decline, offer again, accept with the context", async () => {
    const id = await start("handoff", ["bob", "carol"]);
    await ok(alice, id, "offer", { to: "bob", context: { ticket: 7 } });
    await ok(bob, id, "decline", { reason: "busy" });
    await ok(alice, id, "offer", { to: "carol", context: { ticket: 7, notes: "see thread" } });
    const taken = await ok(carol, id, "accept");
    expect(taken.session.outcome).toEqual({
      result: "handed_off",
      from: "alice",
      to: "carol",
      context: { ticket: 7, notes: "see thread" },
    });
  });

  it("quorum: k of n approvals", async () => {
    const id = await start("quorum", ["bob", "carol"], { k: 2 });
    await ok(bob, id, "approve");
    await ok(carol, id, "reject", { reason: "not yet" });
    const approved = await ok(alice, id, "approve");
    expect(approved.session.outcome).toMatchObject({ result: "approved", k: 2, n: 3 });
  });

  it("refuses a start body with unknown members or a null TTL", async () => {
    const extra = await send(alice, randomUUID(), "start", {
      mode: "task",
      participants: ["bob"],
      quorum: 3,
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error).toMatchObject({ code: "INVALID_REQUEST", reason: "body" });
    const nullTtl = await send(alice, randomUUID(), "start", {
      mode: "task",
      participants: ["bob"],
      ttl_ms: null,
    });
    expect(nullTtl.body.error).toMatchObject({ code: "INVALID_REQUEST", reason: "ttl_ms" });
  });
});

describe("refusals", () => {
  it("refuses a non-participant with FORBIDDEN, audited", async () => {
    const id = await startDecision();
    const refused = await send(mallory, id, "propose", { proposal_id: "evil" });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: "FORBIDDEN", reason: "not_participant" });
    const denied = (await auditOf(`session:${id}`, "session_message")).filter((e) => e.code === "FORBIDDEN");
    expect(denied.length).toBeGreaterThan(0);
  });

  it("refuses a spoofed sender: bob's credential with an envelope from alice signed by bob's key", async () => {
    const id = await startDecision();
    const forged = await send(bob, id, "propose", { proposal_id: "p" }, { headers: mallory.headers });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe("IDENTITY_MISMATCH");
    // Alice's id signed with mallory's key, sent on alice's own credential: the signature fails.
    const wrongKey = signEnvelope(
      {
        type: "session.propose",
        from: "alice",
        to: `session:${id}`,
        session: id,
        body: { proposal_id: "q" },
      },
      mallory.key,
    );
    const badSig = await call(fx, "POST", "/v1/sessions/messages", {
      headers: alice.headers,
      body: wrongKey.wire,
    });
    expect(badSig.status).toBe(401);
    expect(badSig.body.error.code).toBe("SIGNATURE_INVALID");
  });

  it("refuses flipped bits with INVALID_SIGNATURE and replayed bytes with the stored answer, not a second message", async () => {
    const id = await startDecision();
    const first = await send(alice, id, "propose", { proposal_id: "p1" });
    expect(first.status).toBe(200);
    const tampered = first.signed.wire.replace('"p1"', '"p2"');
    const flipped = await call(fx, "POST", "/v1/sessions/messages", {
      headers: alice.headers,
      body: tampered,
    });
    expect(flipped.status).toBe(400);
    expect(flipped.body.error.code).toBe("HASH_MISMATCH");
    // One bit flipped in the signed header (the nonce's last character): the signature fails.
    const nonce = first.signed.envelope.nonce;
    const flippedNonce = nonce.slice(0, -1) + (nonce.endsWith("A") ? "B" : "A");
    const headerFlip = first.signed.wire.replace(nonce, flippedNonce);
    const badHeader = await call(fx, "POST", "/v1/sessions/messages", {
      headers: alice.headers,
      body: headerFlip,
    });
    expect(badHeader.status).toBe(401);
    expect(badHeader.body.error.code).toBe("SIGNATURE_INVALID");
    const replay = await call(fx, "POST", "/v1/sessions/messages", {
      headers: alice.headers,
      body: first.signed.wire,
    });
    expect(replay.status).toBe(200);
    expect(replay.body.seq).toBe(0);
    // The same answer, receipt included: signed once, for this very envelope.
    expect(replay.body.receipt).toEqual(first.body.receipt);
    verifySessionReceipt(first.body.receipt, fx.runtime.signingKey.publicKey, {
      request: first.signed.hash,
      session: id,
    });
    expect(first.body.receipt).toMatchObject({
      type: "session.propose",
      from: "alice",
      seq: 0,
      message_count: 1,
    });
    expect(() =>
      verifySessionReceipt(first.body.receipt, fx.runtime.signingKey.publicKey, {
        request: flippedNonce as `sha256:${string}`,
      }),
    ).toThrow(/another envelope/);
    const session = await call(fx, "GET", `/v1/sessions/${id}`, { headers: alice.headers });
    expect(session.body.session.message_count).toBe(1);
    // The same message id with other content: DUPLICATE_MESSAGE.
    const reused = await send(
      alice,
      id,
      "propose",
      { proposal_id: "p9" },
      { overrides: { id: first.signed.envelope.id } },
    );
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe("DUPLICATE_MESSAGE");
  });

  it("answers identical messages sent at once with one answer, accepting the message once", async () => {
    const id = await startDecision();
    const signed = envelope(alice, id, "propose", { proposal_id: "p1" });
    const answers = await Promise.all(
      [0, 1, 2].map(() =>
        call(fx, "POST", "/v1/sessions/messages", { headers: alice.headers, body: signed.wire }),
      ),
    );
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.seq).toBe(0);
    }
    const session = await call(fx, "GET", `/v1/sessions/${id}`, { headers: alice.headers });
    expect(session.body.session.message_count).toBe(1);
  });

  it("refuses a vote after resolution with SESSION_NOT_OPEN, and a second start under the same id", async () => {
    const id = await startDecision({ min_approvals: 1 });
    await send(alice, id, "propose", { proposal_id: "p1" });
    await send(bob, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
    expect((await send(alice, id, "commit", { proposal_id: "p1" })).status).toBe(200);
    const late = await send(carol, id, "vote", { proposal_id: "p1", vote: "REJECT" });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({ code: "SESSION_NOT_OPEN", reason: "resolved" });
    // An outsider learns nothing of the session's state: FORBIDDEN, as while it was open.
    const outsider = await send(mallory, id, "vote", { proposal_id: "p1", vote: "REJECT" });
    expect(outsider.status).toBe(403);
    expect(outsider.body.error).toMatchObject({ code: "FORBIDDEN", reason: "not_participant" });
    const again = await send(alice, id, "start", { mode: "decision", participants: ["bob"] });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("SESSION_ALREADY_EXISTS");
  });

  it("refuses out-of-order messages with SESSION_RULE_VIOLATION, and a commit below the threshold", async () => {
    const id = await startDecision();
    const early = await send(bob, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
    expect(early.status).toBe(409);
    expect(early.body.error).toMatchObject({ code: "SESSION_RULE_VIOLATION", reason: "unknown_proposal" });
    await send(alice, id, "propose", { proposal_id: "p1" });
    await send(bob, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
    const short = await send(alice, id, "commit", { proposal_id: "p1" });
    expect(short.body.error).toMatchObject({ code: "SESSION_RULE_VIOLATION", reason: "threshold_not_met" });
    const notInitiator = await send(bob, id, "commit", { proposal_id: "p1" });
    expect(notInitiator.body.error).toMatchObject({
      code: "SESSION_RULE_VIOLATION",
      reason: "not_initiator",
    });
  });

  it("refuses a double vote in quorum mode, where votes are final", async () => {
    const id = randomUUID();
    const started = await send(alice, id, "start", {
      mode: "quorum",
      participants: ["bob", "carol"],
      config: { k: 3 },
    });
    expect(started.status).toBe(200);
    expect((await send(bob, id, "approve")).status).toBe(200);
    const twice = await send(bob, id, "reject");
    expect(twice.body.error).toMatchObject({ code: "SESSION_RULE_VIOLATION", reason: "already_voted" });
  });

  it("answers bad ids, unknown modes and unknown sessions with their codes", async () => {
    const badId = await send(alice, "short", "start", { mode: "decision", participants: ["bob"] });
    expect(badId.status).toBe(400);
    expect(badId.body.error.code).toBe("INVALID_SESSION_ID");
    const mode = await send(alice, randomUUID(), "start", { mode: "auction", participants: ["bob"] });
    expect(mode.status).toBe(400);
    expect(mode.body.error.code).toBe("MODE_NOT_SUPPORTED");
    const unknown = await send(alice, randomUUID(), "propose", { proposal_id: "p1" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("SESSION_NOT_FOUND");
    const wrongTarget = await send(
      alice,
      randomUUID(),
      "start",
      { mode: "decision", participants: ["bob"] },
      {
        overrides: { to: "session:someone-elses-session-0000000" },
      },
    );
    expect(wrongTarget.status).toBe(400);
    expect(wrongTarget.body.error.code).toBe("INVALID_ENVELOPE");
  });

  it("expires a session past its TTL (sweeper and lazy read) and refuses what comes after", async () => {
    const id = await startDecision({}, 1000);
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const late = await send(bob, id, "propose", { proposal_id: "p1" });
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({ code: "SESSION_NOT_OPEN", reason: "expired" });
    const view = await call(fx, "GET", `/v1/sessions/${id}`, { headers: bob.headers });
    expect(view.body.session.status).toBe("EXPIRED");
  });

  it("lets the initiator cancel, not another participant; operators cancel through the admin route", async () => {
    const id = await startDecision();
    const byBob = await send(bob, id, "cancel", { reason: "no" });
    expect(byBob.status).toBe(403);
    expect(byBob.body.error).toMatchObject({ code: "FORBIDDEN", reason: "not_initiator" });
    const byAlice = await send(alice, id, "cancel", { reason: "changed plans" });
    expect(byAlice.status).toBe(200);
    expect(byAlice.body.session.status).toBe("CANCELLED");

    const other = await startDecision();
    const agentTries = await call(fx, "POST", `/v1/sessions/${other}/cancel`, {
      headers: bob.headers,
      body: {},
    });
    expect(agentTries.status).toBe(403);
    const operator = await call(fx, "POST", `/v1/sessions/${other}/cancel`, {
      headers: admin(),
      body: { reason: "incident 42" },
    });
    expect(operator.status).toBe(200);
    expect(operator.body.session.status).toBe("CANCELLED");
    const cancelled = await auditOf(`session:${other}`, "session_cancelled");
    expect(cancelled).toHaveLength(1);
  });
});

describe("reading sessions", () => {
  it("shows a session to its participants and session:read holders only; lists are scoped", async () => {
    const id = await startDecision();
    expect((await call(fx, "GET", `/v1/sessions/${id}`, { headers: carol.headers })).status).toBe(200);
    const outsider = await call(fx, "GET", `/v1/sessions/${id}`, { headers: mallory.headers });
    expect(outsider.status).toBe(404);
    expect(outsider.body.error.code).toBe("SESSION_NOT_FOUND");
    expect((await call(fx, "GET", `/v1/sessions/${id}`, { headers: admin() })).status).toBe(200);

    const mine = await call(fx, "GET", "/v1/sessions?status=OPEN", { headers: mallory.headers });
    expect(mine.status).toBe(200);
    expect(mine.body.sessions).toEqual([]);
    const others = await call(fx, "GET", "/v1/sessions?participant=alice", { headers: mallory.headers });
    expect(others.status).toBe(403);
    const all = await call(fx, "GET", "/v1/sessions?participant=alice&limit=1000", { headers: admin() });
    expect((all.body.sessions as { id: string }[]).some((s) => s.id === id)).toBe(true);
    const bad = await call(fx, "GET", "/v1/sessions?status=open", { headers: admin() });
    expect(bad.status).toBe(400);

    // Paging: `next` names the last session of a full page; following it walks the whole list.
    const everything = (await call(fx, "GET", "/v1/sessions?limit=1000", { headers: admin() })).body
      .sessions as { id: string }[];
    const walked: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const response = await call(
        fx,
        "GET",
        `/v1/sessions?limit=3${cursor === undefined ? "" : `&after=${cursor}`}`,
        {
          headers: admin(),
        },
      );
      expect(response.status).toBe(200);
      walked.push(...(response.body.sessions as { id: string }[]).map((s) => s.id));
      cursor = response.body.next as string | undefined;
      if (cursor === undefined) break;
    }
    expect(walked).toEqual(everything.map((s) => s.id));
    const unknown = await call(fx, "GET", `/v1/sessions?after=${randomUUID()}`, { headers: admin() });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: "INVALID_REQUEST", reason: "after" });
  });
});

/** A raw SSE reader over undici: frames as they arrive, and a way to drop the connection. */
async function watch(path: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const response = await request(`${fx.url}${path}`, {
    headers,
    dispatcher: fx.client(),
    signal: controller.signal,
  });
  const events: { id: number; type: string; session_id: string; data: Record<string, unknown> }[] = [];
  let buffer = "";
  let raw = "";
  const done = (async () => {
    try {
      for await (const chunk of response.body) {
        raw += (chunk as Buffer).toString("utf8");
        buffer += (chunk as Buffer).toString("utf8");
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").find((line) => line.startsWith("data: "));
          if (data !== undefined) events.push(JSON.parse(data.slice(6)));
        }
      }
    } catch {
      // Aborted.
    }
  })();
  return {
    status: response.statusCode,
    events,
    ended: done,
    text: () => raw,
    async until(predicate: () => boolean) {
      for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
      expect(predicate()).toBe(true);
    },
    async close() {
      controller.abort();
      await done;
    },
  };
}

describe("the watch stream", () => {
  it("needs session:watch", async () => {
    const refused = await call(fx, "GET", "/v1/sessions/watch", { headers: bob.headers });
    expect(refused.status).toBe(403);
  });

  it("resumes after a disconnect with Last-Event-ID: no gap, no duplicate", async () => {
    const first = await watch("/v1/sessions/watch", admin());
    expect(first.status).toBe(200);
    const id = await startDecision();
    await send(alice, id, "propose", { proposal_id: "p1" });
    await first.until(() => first.events.filter((e) => e.session_id === id).length >= 2);
    await first.close();
    const last = first.events.at(-1)!.id;

    // While nobody watches, more happens.
    await send(bob, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
    await send(carol, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
    const second = await watch("/v1/sessions/watch", { ...admin(), "last-event-id": String(last) });
    await send(alice, id, "commit", { proposal_id: "p1" });
    await second.until(() => second.events.some((e) => e.type === "RESOLVED" && e.session_id === id));
    await second.close();

    const all = [...first.events, ...second.events].filter((e) => e.session_id === id);
    expect(all.map((e) => e.type)).toEqual([
      "CREATED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "RESOLVED",
    ]);
    const ids = [...first.events, ...second.events].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it("ends a stream once its API key is revoked (checked at every heartbeat)", async () => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name: "bob-watch", principal: "bob", kind: "agent", permissions: ["session:watch"] },
    });
    expect(created.status).toBe(201);
    const stream = await watch("/v1/sessions/watch", { authorization: `Bearer ${created.body.key}` });
    expect(stream.status).toBe(200);
    const revoked = await call(fx, "POST", `/v1/auth/keys/${created.body.id as string}/revoke`, {
      headers: admin(),
      body: {},
    });
    expect(revoked.status).toBe(200);
    // The server ends the stream by itself: the reader's loop finishes without an abort.
    await Promise.race([
      stream.ended,
      new Promise((_, reject) => setTimeout(() => reject(new Error("stream still open after 5 s")), 5000)),
    ]);
    expect(stream.text()).toContain(": closed: credential no longer allows session:watch");
  });

  it("shows an agent with session:watch only the sessions it takes part in", async () => {
    const watcherKey = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin(),
      body: { name: "carol-watch", principal: "carol", kind: "agent", permissions: ["session:watch"] },
    });
    expect(watcherKey.status).toBe(201);
    const stream = await watch("/v1/sessions/watch", { authorization: `Bearer ${watcherKey.body.key}` });
    expect(stream.status).toBe(200);
    const hidden = randomUUID();
    expect((await send(alice, hidden, "start", { mode: "task", participants: ["bob"] })).status).toBe(200);
    const seen = await startDecision();
    await stream.until(() => stream.events.some((e) => e.session_id === seen));
    await stream.close();
    expect(stream.events.some((e) => e.session_id === hidden)).toBe(false);
    const other = await call(fx, "GET", `/v1/sessions/watch?session=${hidden}`, {
      headers: { authorization: `Bearer ${watcherKey.body.key}` },
    });
    expect(other.status).toBe(404);
  });
});

describe("restart", () => {
  it("keeps sessions, their messages and their order across a restart (SQLite)", async () => {
    const local = await startRuntime();
    try {
      const agents = await Promise.all(["alice", "bob", "carol"].map((id) => registerAgent(local, id)));
      const [a, b] = agents as [TestAgent, TestAgent, TestAgent];
      const id = randomUUID();
      const post = (agent: TestAgent, verb: string, body: Record<string, JsonValue>) =>
        call(local, "POST", "/v1/sessions/messages", {
          headers: agent.headers,
          body: envelope(agent, id, verb, body).wire,
        });
      expect((await post(a, "start", { mode: "decision", participants: ["bob", "carol"] })).status).toBe(200);
      expect((await post(a, "propose", { proposal_id: "p1" })).status).toBe(200);
      expect((await post(b, "vote", { proposal_id: "p1", vote: "APPROVE" })).status).toBe(200);
      const before = await call(local, "GET", `/v1/sessions/${id}`, { headers: a.headers });

      await local.runtime.stop();
      const { loadConfig } = await import("../../src/config/load-config.js");
      const { createRuntime } = await import("../../src/runtime.js");
      const { pino } = await import("pino");
      const again = await createRuntime(loadConfig({ dataDir: local.dir, env: {} }), {
        logger: pino({ level: "silent" }),
      });
      try {
        const url = await again.start();
        const dispatcher = local.client();
        const get = await request(`${url}/v1/sessions/${id}`, { headers: a.headers, dispatcher });
        const view = (await get.body.json()) as { session: Record<string, unknown> };
        expect(view.session).toEqual(before.body.session);
        const next = envelope(agents[2]!, id, "vote", { proposal_id: "p1", vote: "APPROVE" });
        const voted = await request(`${url}/v1/sessions/messages`, {
          method: "POST",
          headers: { ...agents[2]!.headers, "content-type": "application/json" },
          body: next.wire,
          dispatcher,
        });
        const body = (await voted.body.json()) as { seq: number };
        expect(voted.statusCode).toBe(200);
        expect(body.seq).toBe(2);
      } finally {
        await again.stop();
      }
    } finally {
      await local.close().catch(() => undefined);
    }
  });
});
