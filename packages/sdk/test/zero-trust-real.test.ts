// Nobody on the path is trusted: a result tampered in transit is refused by the client, and
// invocations forged or replayed straight into an agent's connection are refused by the agent itself —
// including a caller key revoked a moment ago, whatever the agent had cached.
import {
  type ClientFrame,
  Ed25519PrivateKey,
  type EnvelopeHeader,
  envelopeHash,
  parseClientFrame,
  parseStrictJson,
  signDelivery,
  signEnvelope,
} from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Agent,
  type AgentErrorInfo,
  KeyRevokedError,
  SignatureInvalidError,
  SignetClient,
  UnknownAgentError,
} from "@signet/sdk";
import { InterceptingProxy } from "./helpers/intercepting-proxy.js";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup, waitFor } from "./helpers/wait.js";

describe("zero trust on the path, against a real runtime", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let proxy: InterceptingProxy;
  let alice: RegisteredAgent;
  let carol: RegisteredAgent;
  let agent: Agent;
  const runs: { tool: string; caller: string }[] = [];
  const refusals: { error: Error; info: AgentErrorInfo }[] = [];
  let injected = 0;

  beforeAll(async () => {
    fx = await startRealRuntime();
    cleanup.add(() => fx.close());
    alice = await fx.registerAgent("alice");
    carol = await fx.registerAgent("carol");
    // agent:read lets the agent check callers' keys against the registry itself.
    const bot = await fx.registerAgent("notes-bot", { serves: ["notes/add"], permissions: ["agent:read"] });
    proxy = new InterceptingProxy(fx.url, fx.ca);
    await proxy.start();
    cleanup.add(() => proxy.stop());
    // The agent reaches the runtime through the proxy, which can write into its connection.
    agent = new Agent({
      target: proxy.url,
      rootCertificates: proxy.ca,
      auth: bot.auth,
      agentId: "notes-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
      callerKeys: "registry",
      callerKeyTtlMs: 3_600_000, // an hour: a revocation must not wait for this
      onError: (error, info) => refusals.push({ error, info }),
    });
    cleanup.add(() => agent.close());
    agent.tool("notes/add", (args, call) => {
      runs.push({ tool: call.tool, caller: call.caller });
      return { saved: args };
    });
    await agent.connect();
  });
  afterAll(() => cleanup.run());

  function client(caller: RegisteredAgent, viaProxy = false): SignetClient {
    const c = new SignetClient({
      target: viaProxy ? proxy.url : fx.url,
      rootCertificates: viaProxy ? proxy.ca : fx.ca,
      auth: caller.auth,
      agentId: caller.id,
      signingKey: caller.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => c.close());
    return c;
  }

  /** Writes an invoke frame into the agent's connection and returns the agent's answer to it. */
  async function inject(
    envelope: string,
    senderKey: Ed25519PrivateKey,
    deliverySigner: Ed25519PrivateKey,
  ): Promise<ClientFrame> {
    injected += 1;
    const callId = `injected-${injected}`;
    const delivery = signDelivery(
      {
        call_id: callId,
        envelope_hash: envelopeHash(parseStrictJson(envelope) as unknown as EnvelopeHeader),
        sender_key: { kid: senderKey.kid, public_key: senderKey.publicKey.toBase64Url() },
        decision: { audit_id: "forged-audit", rules: ["allow-everything"] },
        deadline: Date.now() + 10_000,
      },
      deliverySigner,
    );
    proxy.injectToAgent({ type: "invoke", envelope, delivery });
    let answer: ClientFrame | undefined;
    await waitFor(() => {
      answer = proxy.agentFrames
        .map((text) => parseClientFrame(text))
        .find((frame) => (frame.type === "error" || frame.type === "result") && frame.call_id === callId);
      return answer;
    }, `the agent's answer to ${callId}`);
    return answer!;
  }

  const invocation = (from: string, key: Ed25519PrivateKey, body: unknown = { note: "hi" }) =>
    signEnvelope({ type: "invoke", from, to: "tool:notes/add", body: body as never }, key).wire;

  it("refuses a result whose bytes were changed in transit, and never returns it", async () => {
    proxy.onResponse = (request, status, body) =>
      request.url === "/v1/envelopes" && status === 200
        ? { body: Buffer.from(body.toString("utf8").replace('"note":"launch"', '"note":"lunch!"')) }
        : undefined;
    try {
      const before = runs.length;
      const error = await client(alice, true)
        .invokeTool("notes/add", { note: "launch" })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SignatureInvalidError);
      expect((error as SignatureInvalidError).reason).toBe("result_body");
      // Refused, not retried: the tool ran once and the runtime was asked once.
      expect(runs.length).toBe(before + 1);
      expect(proxy.requests.filter((r) => r.url === "/v1/envelopes")).toHaveLength(1);

      // A flipped receipt flag breaks the runtime's signature on the receipt.
      proxy.onResponse = (request, status, body) =>
        request.url === "/v1/envelopes" && status === 200
          ? { body: Buffer.from(body.toString("utf8").replace('"duplicate":false', '"duplicate":true')) }
          : undefined;
      const flipped = await client(alice, true)
        .invokeTool("notes/add", { note: "x" })
        .catch((e: unknown) => e);
      expect(flipped).toBeInstanceOf(SignatureInvalidError);
      expect((flipped as SignatureInvalidError).reason).toBe("receipt_sig");
    } finally {
      proxy.onResponse = undefined;
    }
  });

  it("refuses an invocation injected into its connection with a delivery the runtime did not sign", async () => {
    const attacker = Ed25519PrivateKey.generate();
    const before = runs.length;
    const answer = await inject(invocation("alice", attacker), attacker, attacker);
    expect(answer.type).toBe("error");
    expect(answer.type === "error" && answer.error.code).toBe("SIGNATURE_INVALID");
    expect(runs.length).toBe(before);
    expect(
      refusals.some(({ error, info }) => error instanceof SignatureInvalidError && info.phase === "verify"),
    ).toBe(true);
  });

  it("refuses a genuine invocation replayed into its connection", async () => {
    await client(alice).invokeTool("notes/add", { note: "once" });
    const genuine = proxy.runtimeFrames.find(
      (text) => text.includes('"type":"invoke"') && text.includes("once"),
    );
    expect(genuine).toBeDefined();
    const before = runs.length;
    const callId = (JSON.parse(genuine!) as { delivery: { call_id: string } }).delivery.call_id;
    const seen = proxy.agentFrames.length;
    proxy.injectToAgent(genuine);
    let answer: ClientFrame | undefined;
    await waitFor(() => {
      answer = proxy.agentFrames
        .slice(seen)
        .map((text) => parseClientFrame(text))
        .find((frame) => frame.type === "error" && frame.call_id === callId);
      return answer;
    }, "the refusal of the replay");
    expect(answer!.type === "error" && answer!.error.code).toBe("REPLAY_DETECTED");
    expect(runs.length).toBe(before);
  });

  it("refuses an envelope signed with a key the registry does not list, even under a runtime-signed delivery", async () => {
    // As if the runtime itself were compromised: its real key signs a delivery vouching for a key that
    // is not alice's. The agent asks the registry, which does not list it.
    const attacker = Ed25519PrivateKey.generate();
    const before = runs.length;
    const answer = await inject(invocation("alice", attacker), attacker, fx.runtime.signingKey);
    expect(answer.type === "error" && answer.error.code).toBe("UNKNOWN_AGENT");
    expect(runs.length).toBe(before);
    expect(refusals.some(({ error }) => error instanceof UnknownAgentError)).toBe(true);
  });

  it("refuses a revoked caller key at once, without waiting for its cache to expire", async () => {
    const carolClient = client(carol);
    await carolClient.invokeTool("notes/add", { note: "before" }); // the agent now caches carol's key
    // Control: a delivery the runtime signed for carol's key is accepted while the key is valid.
    const accepted = await inject(invocation("carol", carol.key), carol.key, fx.runtime.signingKey);
    expect(accepted.type).toBe("result");

    await fx.revokeKey("carol", carol.key.kid);
    await waitFor(
      () =>
        proxy.runtimeFrames.some((text) => text.includes('"key_revoked"') && text.includes(carol.key.kid)),
      "the revocation notice",
    );
    const before = runs.length;
    // The notice came first on the same connection, so the agent has applied it by now.
    const refused = await inject(invocation("carol", carol.key), carol.key, fx.runtime.signingKey);
    expect(refused.type === "error" && refused.error.code).toBe("KEY_REVOKED");
    expect(runs.length).toBe(before);
    expect(refusals.some(({ error }) => error instanceof KeyRevokedError)).toBe(true);
    // The runtime refuses carol too, of course.
    await expect(carolClient.invokeTool("notes/add", { note: "after" })).rejects.toBeInstanceOf(
      KeyRevokedError,
    );
  });
});
