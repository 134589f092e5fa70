// The expectedSender guardrail against a real runtime: a spoofed sender fails in the process, and the
// runtime (behind a counting proxy) sees no connection at all.
import { signEnvelope } from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, IdentityMismatchError, SdkError, SignetClient, retrySend } from "@signet/sdk";
import { InterceptingProxy } from "./helpers/intercepting-proxy.js";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup } from "./helpers/wait.js";

describe("a spoofed sender is stopped before any connection", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let proxy: InterceptingProxy;
  let alice: RegisteredAgent;
  let bob: RegisteredAgent;
  let client: SignetClient;

  beforeAll(async () => {
    fx = await startRealRuntime();
    cleanup.add(() => fx.close());
    alice = await fx.registerAgent("alice");
    bob = await fx.registerAgent("bob");
    const bot = await fx.registerAgent("echo-bot", { serves: ["echo"] });
    const agent = new Agent({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: bot.auth,
      agentId: "echo-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => agent.close());
    agent.tool("echo", (args) => args);
    await agent.connect();
    proxy = new InterceptingProxy(fx.url, fx.ca);
    await proxy.start();
    cleanup.add(() => proxy.stop());
  });
  afterAll(() => cleanup.run());

  function aliceClient(): SignetClient {
    const c = new SignetClient({
      target: proxy.url,
      rootCertificates: proxy.ca,
      auth: alice.auth,
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => c.close());
    return c;
  }

  async function expectMismatch(promise: Promise<unknown>, expected: string, actual: string): Promise<void> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(IdentityMismatchError);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as IdentityMismatchError).code).toBe("IDENTITY_MISMATCH");
    expect((error as IdentityMismatchError).expected).toBe(expected);
    expect((error as IdentityMismatchError).actual).toBe(actual);
  }

  it("refuses a per-call sender override that is not the credential's expectedSender", async () => {
    client = aliceClient();
    const before = proxy.connections;
    const requests = proxy.requests.length;
    // Even with bob's real key in hand: the credential proves alice, so bob's name may not be used.
    await expectMismatch(
      client.invokeTool("echo", 1, { sender: "bob", signingKey: bob.key }),
      "alice",
      "bob",
    );
    await expectMismatch(client.send("agent:echo-bot", { hi: 1 }, { sender: "bob" }), "alice", "bob");
    await expectMismatch(client.buildEnvelope("tool:echo", 1, { sender: "bob" }), "alice", "bob");
    expect(proxy.connections).toBe(before);
    expect(proxy.requests.length).toBe(requests);
  });

  it("refuses a per-call auth whose expectedSender differs from the sender", async () => {
    client = aliceClient();
    const before = proxy.connections;
    const requests = proxy.requests.length;
    await expectMismatch(client.invokeTool("echo", 1, { auth: bob.auth }), "bob", "alice");
    await expectMismatch(client.invoke("tool:echo", 1, { auth: bob.auth }), "bob", "alice");
    // A pre-signed envelope from someone else, sent with alice's credential.
    const bobs = signEnvelope({ type: "invoke", from: "bob", to: "tool:echo", body: 1 }, bob.key);
    await expectMismatch(client.submit(bobs.wire), "alice", "bob");
    await expectMismatch(retrySend(client, bobs), "alice", "bob");
    await expectMismatch(client.send(bobs.wire), "alice", "bob");
    expect(proxy.connections).toBe(before);
    expect(proxy.requests.length).toBe(requests);
  });

  it("lets a process act for several participants when sender, key and credential agree", async () => {
    client = aliceClient();
    const asBob = await client.invokeTool(
      "echo",
      { from: "bob" },
      { sender: "bob", signingKey: bob.key, auth: bob.auth },
    );
    expect(asBob.result.to).toBe("agent:bob");
    expect(asBob.body).toEqual({ from: "bob" });
    // The counting proxy does see legitimate traffic: its zero above means something.
    expect(proxy.requests.some((r) => r.method === "POST" && r.url === "/v1/envelopes")).toBe(true);
  });

  it("refuses a per-call sender without its own key, before any connection", async () => {
    const c = new SignetClient({
      target: proxy.url,
      rootCertificates: proxy.ca,
      auth: alice.auth,
      agentId: "alice",
      signingKey: alice.key,
    });
    cleanup.add(() => c.close());
    const before = proxy.connections;
    const error = await c.invokeTool("echo", 1, { sender: "bob", auth: bob.auth }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("signing_key");
    expect(proxy.connections).toBe(before);
  });
});
