// A decision end to end against a real runtime over TLS: three agents start, propose, vote and commit
// through the SDK; the commitment verifies against the pinned runtime key and covers exactly the
// messages sent, and the watcher sees the whole lifecycle through RESOLVED.
import { type Socket, connect, createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DecisionSession,
  ForbiddenError,
  IdentityMismatchError,
  SessionAlreadyExistsError,
  SessionNotFoundError,
  SessionNotOpenError,
  SessionLifecycleWatcher,
  SessionRuleViolationError,
  type SessionEvent,
  SignetClient,
  verifySessionCommitment,
} from "@signet/sdk";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup } from "./helpers/wait.js";

// Only what sessions need: session messages on session targets. Nothing else is allowed.
const SESSION_POLICY = [
  "version: 1",
  "rules:",
  "  - id: sessions-allow",
  "    effect: allow",
  '    principals: ["*"]',
  '    actions: ["session.*"]',
  '    resources: ["session:*"]',
  "",
].join("\n");

describe("a decision session through the SDK, against a real runtime", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  const clients = new Map<string, SignetClient>();

  beforeAll(async () => {
    fx = await startRealRuntime({
      policy: SESSION_POLICY,
      yaml: "sessions:\n  watch_poll_ms: 50\n  watch_heartbeat_ms: 1000\n",
    });
    cleanup.add(() => fx.close());
    for (const id of ["alice", "bob", "carol", "mallory"]) {
      const agent: RegisteredAgent = await fx.registerAgent(id, { permissions: ["session:watch"] });
      const client = new SignetClient({
        target: fx.url,
        rootCertificates: fx.ca,
        auth: agent.auth,
        agentId: id,
        signingKey: agent.key,
        runtimePublicKey: fx.runtimePublicKey,
      });
      cleanup.add(() => client.close());
      clients.set(id, client);
    }
  });
  afterAll(() => cleanup.run());

  const client = (id: string): SignetClient => clients.get(id)!;

  it("runs start, propose, votes and commit, with a verified commitment and the RESOLVED event", async () => {
    const session = new DecisionSession(client("alice"));
    const started = await session.start({ participants: ["bob", "carol"], ttlMs: 60_000 });
    expect(started.session).toMatchObject({
      id: session.id,
      mode: "decision",
      initiator: "alice",
      participants: ["alice", "bob", "carol"],
      status: "OPEN",
    });

    // From the session's first event: CREATED was stored before the watcher connected.
    const watcher = session.watch({ lastEventId: 0, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    cleanup.add(() => watcher.close());
    const events: SessionEvent[] = [];
    const watching = (async () => {
      for await (const event of watcher) {
        events.push(event);
        if (event.type === "RESOLVED") break;
      }
    })();

    const bob = new DecisionSession(client("bob"), { id: session.id });
    const carol = new DecisionSession(client("carol"), { id: session.id });
    const sent = [await session.propose("p1", { title: "Ship v2" })];

    const early = await session.commit("p1").catch((error: unknown) => error);
    expect(early).toBeInstanceOf(SessionRuleViolationError);
    expect((early as SessionRuleViolationError).reason).toBe("threshold_not_met");

    sent.push(await bob.vote("p1", "approve"));
    const impersonation = await bob
      .vote("p1", "approve", { sender: "carol" })
      .catch((error: unknown) => error);
    expect(impersonation).toBeInstanceOf(IdentityMismatchError);
    sent.push(await carol.vote("p1", "Approve"));
    expect(sent.map((answer) => answer.seq)).toEqual([0, 1, 2]);

    const committed = await session.commit("p1");
    sent.push(committed);
    expect(committed.session.status).toBe("RESOLVED");
    expect(committed.session.outcome).toMatchObject({
      result: "committed",
      proposal_id: "p1",
      proposer: "alice",
      title: "Ship v2",
      votes: { APPROVE: 2, REJECT: 0, ABSTAIN: 0 },
      approvals: ["bob", "carol"],
      min_approvals: 2,
    });
    // The client verified it already (runtimePublicKey is pinned); check it covers exactly our messages.
    const commitment = committed.commitment!;
    expect(commitment).toMatchObject({ session: session.id, status: "RESOLVED" });
    const view = await bob.get();
    const messages = await carol.messages();
    expect(messages.map((message) => message.envelope_hash)).toEqual(
      sent.map((answer) => answer.envelopeHash),
    );
    expect(messages.map((message) => [message.sender, message.kind])).toEqual([
      ["alice", "propose"],
      ["bob", "vote"],
      ["carol", "vote"],
      ["alice", "commit"],
    ]);
    verifySessionCommitment(commitment, fx.runtimePublicKey, {
      session: session.id,
      historyHash: view.history_hash,
      history: {
        startHash: view.start_hash!,
        envelopeHashes: messages.map((message) => message.envelope_hash),
      },
    });

    await watching;
    expect(events.map((event) => event.type)).toEqual([
      "CREATED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "RESOLVED",
    ]);
    expect(events.every((event) => event.session_id === session.id)).toBe(true);
    expect(events.map((event) => event.data.message_id).filter(Boolean)).toEqual(
      sent.map((answer) => answer.messageId),
    );
    expect(events.at(-1)!.data.outcome).toEqual(committed.session.outcome);
    const ids = events.map((event) => event.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(watcher.lastEventId).toBe(ids.at(-1));

    // Anyone in the session can fetch the commitment later; it is the very document the commit got.
    expect(await carol.commitment()).toEqual(commitment);
    expect(
      await new DecisionSession(client("mallory"), { id: session.id }).commitment().catch((e: unknown) => e),
    ).toBeInstanceOf(SessionNotFoundError);

    // Resolved: nothing more is accepted.
    expect(await bob.vote("p1", "reject").catch((error: unknown) => error)).toBeInstanceOf(
      SessionNotOpenError,
    );
  });

  it("a watcher whose connection is cut mid-stream resumes by itself, with no gap and no duplicate", async () => {
    // A TCP proxy in front of the runtime (TLS passes through it end to end) that can cut every
    // connection, as a load balancer restart or a network drop would.
    const upstream = new URL(fx.url);
    const sockets = new Set<Socket>();
    let connections = 0;
    const proxy = createServer((downstream) => {
      connections++;
      const up = connect(Number(upstream.port), upstream.hostname);
      for (const socket of [downstream, up]) {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
        socket.on("error", () => undefined);
      }
      downstream.pipe(up).pipe(downstream);
      downstream.on("close", () => up.destroy());
      up.on("close", () => downstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    cleanup.add(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const address = proxy.address() as { port: number };
    const watcherAgent = await fx.registerAgent("watcher", {
      permissions: ["session:watch", "session:read"],
    });
    const viaProxy = new SignetClient({
      target: `https://127.0.0.1:${address.port}`,
      rootCertificates: fx.ca,
      auth: watcherAgent.auth,
      agentId: "watcher",
      signingKey: watcherAgent.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => viaProxy.close());

    const session = new DecisionSession(client("alice"));
    const watcher = new SessionLifecycleWatcher(viaProxy, {
      sessionId: session.id,
      lastEventId: 0,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    cleanup.add(() => watcher.close());
    const events: SessionEvent[] = [];
    const watching = (async () => {
      for await (const event of watcher) {
        events.push(event);
        if (event.type === "RESOLVED") break;
      }
    })();
    const until = async (condition: () => boolean) => {
      for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
      expect(condition()).toBe(true);
    };

    await session.start({ participants: ["bob", "carol"] });
    await session.propose("p1");
    await until(() => events.length >= 2);
    // Cut the stream, and let things happen while the watcher is away.
    for (const socket of sockets) socket.destroy();
    await new DecisionSession(client("bob"), { id: session.id }).vote("p1", "approve");
    await new DecisionSession(client("carol"), { id: session.id }).vote("p1", "approve");
    await session.commit("p1");
    await watching;

    expect(connections).toBeGreaterThanOrEqual(2);
    expect(events.map((event) => event.type)).toEqual([
      "CREATED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "RESOLVED",
    ]);
    const ids = events.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it("keeps outsiders out and ids unique, as typed errors", async () => {
    const session = new DecisionSession(client("alice"));
    await session.start({ participants: ["bob"] });
    const outsider = new DecisionSession(client("mallory"), { id: session.id });
    expect(await outsider.get().catch((error: unknown) => error)).toBeInstanceOf(SessionNotFoundError);
    expect(await outsider.propose("m1").catch((error: unknown) => error)).toBeInstanceOf(ForbiddenError);
    const again = await new DecisionSession(client("bob"), { id: session.id })
      .start({ participants: ["alice"] })
      .catch((error: unknown) => error);
    expect(again).toBeInstanceOf(SessionAlreadyExistsError);
    expect(await session.commitment()).toBeUndefined();
    const cancelled = await session.cancel("not needed");
    expect(cancelled.session.status).toBe("CANCELLED");
    expect(await session.commitment()).toBeUndefined();
  });
});
