// Agent against a real runtime: verified metadata for handlers, input schemas, reconnecting after a
// lost connection, stopping on a permanent refusal, and close() draining calls in flight.
import type { JsonValue } from "@signet/protocol";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Agent,
  type AgentErrorInfo,
  type AgentOptions,
  type Invocation,
  RetryPolicy,
  SdkError,
  SignetClient,
  TargetUnavailableError,
  TimeoutError,
  UnauthenticatedError,
} from "@signet/sdk";
import { InterceptingProxy } from "./helpers/intercepting-proxy.js";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup, gate, waitFor } from "./helpers/wait.js";

describe("Agent lifecycle against a real runtime", () => {
  const suite = new Cleanup();
  const each = new Cleanup();
  let fx: RealRuntime;
  let proxy: InterceptingProxy;
  let alice: RegisteredAgent;
  let client: SignetClient;

  beforeAll(async () => {
    fx = await startRealRuntime();
    suite.add(() => fx.close());
    alice = await fx.registerAgent("alice");
    proxy = new InterceptingProxy(fx.url, fx.ca);
    await proxy.start();
    suite.add(() => proxy.stop());
    client = new SignetClient({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: alice.auth,
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    suite.add(() => client.close());
  });
  afterEach(() => each.run());
  afterAll(() => suite.run());

  /** A fresh tool server (its own agent id) reaching the runtime through the proxy. */
  async function toolServer(
    id: string,
    tools: readonly string[],
    options: Partial<AgentOptions> = {},
  ): Promise<{
    agent: Agent;
    registered: RegisteredAgent;
    errors: { error: Error; info: AgentErrorInfo }[];
  }> {
    const registered = await fx.registerAgent(id, { serves: tools });
    const errors: { error: Error; info: AgentErrorInfo }[] = [];
    const agent = new Agent({
      target: proxy.url,
      rootCertificates: proxy.ca,
      auth: registered.auth,
      agentId: id,
      signingKey: registered.key,
      runtimePublicKey: fx.runtimePublicKey,
      reconnect: { backoffBaseMs: 20, backoffMaxMs: 200 },
      onError: (error, info) => errors.push({ error, info }),
      ...options,
    });
    each.add(() => agent.close({ drainTimeoutMs: 0 }));
    return { agent, registered, errors };
  }

  it("gives the handler invocation.caller and the verified metadata", async () => {
    const { agent } = await toolServer("meta-bot", ["meta/inspect"]);
    let seen: Invocation | undefined;
    agent.tool("meta/inspect", (_args, invocation) => {
      seen = invocation;
      return "ok";
    });
    await agent.connect();
    const answer = await client.invokeTool("meta/inspect", { q: 1 }, { intent: { purpose: "audit check" } });
    expect(seen).toBeDefined();
    expect(seen!.caller).toBe("alice");
    expect(seen!.tool).toBe("meta/inspect");
    expect(seen!.id).toBe(answer.result.re?.id);
    expect(seen!.intent).toEqual({ purpose: "audit check" });
    expect(seen!.auditId).toBe(answer.auditId);
    expect(seen!.rules).toEqual(answer.receipt.rules);
    expect(seen!.deadline).toBeGreaterThan(Date.now() - 60_000);
    expect(seen!.signal.aborted).toBe(false);
    expect(answer.executor).toBe("meta-bot");
  });

  it("checks arguments against the tool's inputSchema before the handler runs", async () => {
    const { agent, errors } = await toolServer("inventory-bot", ["inventory/lookup"]);
    const calls: JsonValue[] = [];
    agent.tool(
      "inventory/lookup",
      (args: { sku: string }) => {
        calls.push(args);
        return { sku: args.sku, stock: 3 };
      },
      {
        inputSchema: {
          type: "object",
          required: ["sku"],
          additionalProperties: false,
          properties: { sku: { type: "string", pattern: "^[A-Z0-9-]{1,32}$" } },
        },
      },
    );
    await agent.connect();
    const bad = await client.invokeTool("inventory/lookup", { sku: "drop table;" });
    expect(bad.status).toBe("error");
    expect((bad.body as { error: { code: string } }).error.code).toBe("INVALID_PAYLOAD");
    expect(JSON.stringify(bad.body)).not.toContain("drop table"); // the caller's data is not echoed
    expect(calls).toEqual([]);
    expect(errors.some(({ info }) => info.phase === "input")).toBe(true);
    const good = await client.invokeTool("inventory/lookup", { sku: "SKU-42" });
    expect(good.body).toEqual({ sku: "SKU-42", stock: 3 });
    expect(calls).toEqual([{ sku: "SKU-42" }]);
  });

  it("refuses an input schema Ajv cannot compile strictly, at registration", async () => {
    const { agent } = await toolServer("schema-bot", ["schema/x"]);
    expect(() =>
      agent.tool("schema/x", () => null, { inputSchema: { type: "object", requird: ["a"] } }),
    ).toThrow(SdkError);
  });

  it("loses its connection mid-call, reconnects with backoff and serves again", async () => {
    const connects: string[] = [];
    const { agent } = await toolServer("flaky-bot", ["flaky/work"], {
      onConnect: (session) => connects.push(session.connectionId),
    });
    let started = 0;
    let abortedMidCall = false;
    agent.tool("flaky/work", async (args, invocation) => {
      started += 1;
      if (args === "hang") {
        await new Promise<void>((resolve) => invocation.signal.addEventListener("abort", () => resolve()));
        abortedMidCall = invocation.signal.aborted;
        return "never delivered";
      }
      return { done: args };
    });
    await agent.connect();
    expect(agent.state).toBe("connected");

    const pending = client
      .invokeTool("flaky/work", "hang", { retryPolicy: RetryPolicy.NONE })
      .catch((e: unknown) => e);
    await waitFor(() => started === 1, "the call to start");
    proxy.dropWebSockets();

    // The runtime fails the call it can no longer finish; the handler is told to stop.
    const lost = await pending;
    expect(lost).toBeInstanceOf(TimeoutError);
    expect((lost as TimeoutError).reason).toBe("connection_lost");
    await waitFor(() => abortedMidCall, "the handler's signal to abort");

    await waitFor(() => connects.length === 2 && agent.state === "connected", "the agent to reconnect");
    expect(connects[1]).not.toBe(connects[0]);
    const again = await client.invokeTool("flaky/work", "after");
    expect(again.body).toEqual({ done: "after" });
  });

  it("stops reconnecting after a permanent refusal (its API key revoked while it was away)", async () => {
    const { agent, registered, errors } = await toolServer("doomed-bot", ["doomed/work"]);
    agent.tool("doomed/work", () => null);
    await agent.connect();
    await fx.revokeApiKey(registered.apiKeyId);
    proxy.dropWebSockets();
    await waitFor(
      () =>
        errors.some(({ error, info }) => info.phase === "reconnect" && error instanceof UnauthenticatedError),
      "the refused reconnection",
    );
    expect(agent.state).toBe("disconnected");
  });

  it("close() lets a call in flight finish and answer, refuses new ones, then disconnects", async () => {
    const { agent } = await toolServer("drain-bot", ["drain/work"]);
    const release = gate();
    let started = 0;
    agent.tool("drain/work", async (args) => {
      started += 1;
      if (args === "long") await release.promise;
      return { finished: args };
    });
    await agent.connect();

    const inFlight = client.invokeTool("drain/work", "long");
    await waitFor(() => started === 1, "the call to start");
    let closed = false;
    const closing = agent.close().then(() => {
      closed = true;
    });
    expect(agent.state).toBe("draining");

    // While draining, a new call is turned away (retryable), and the in-flight one keeps running.
    const turnedAway = await client
      .invokeTool("drain/work", "new", { retryPolicy: RetryPolicy.NONE })
      .catch((e: unknown) => e);
    expect(turnedAway).toBeInstanceOf(TargetUnavailableError);
    expect(started).toBe(1);
    expect(closed).toBe(false);

    release.open();
    const answer = await inFlight;
    expect(answer.status).toBe("ok");
    expect(answer.body).toEqual({ finished: "long" });
    await closing;
    expect(agent.state).toBe("disconnected");
    expect(agent.session).toBeUndefined();
  });
});
