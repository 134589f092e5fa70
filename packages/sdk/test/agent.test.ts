// Agent: every delivery is verified by the executor itself before its handler runs (fake ws runtime).
import {
  type ClientFrame,
  Ed25519PrivateKey,
  type JsonValue,
  assertResultAnswers,
  signDelivery,
  signEnvelope,
  verifyEnvelope,
} from "@signet/protocol";
import { afterEach, describe, expect, it } from "vitest";
import {
  Agent,
  type AgentOptions,
  AuthConfig,
  ForbiddenError,
  IdentityMismatchError,
  KeyRevokedError,
  SdkError,
  SignatureInvalidError,
  ToolError,
  UnauthenticatedError,
} from "@signet/sdk";
import { FakeConnectRuntime, type FakeConnectOptions } from "./helpers/fake-connect-runtime.js";

const API_KEY = "sgk_agent_secret";
const runtimeKey = Ed25519PrivateKey.generate();
const agentKey = Ed25519PrivateKey.generate();
const callerKey = Ed25519PrivateKey.generate();
const callerSenderKey = { kid: callerKey.kid, public_key: callerKey.publicKey.toBase64Url() };

let runtime: FakeConnectRuntime | undefined;
let agent: Agent | undefined;

afterEach(async () => {
  await agent?.close();
  await runtime?.stop();
  agent = undefined;
  runtime = undefined;
});

interface Setup {
  runtime: FakeConnectRuntime;
  agent: Agent;
  calls: JsonValue[];
  errors: { error: Error; phase: string }[];
}

async function setup(
  options: {
    runtime?: Partial<FakeConnectOptions>;
    agent?: Partial<AgentOptions>;
    handler?: (body: JsonValue) => JsonValue | Promise<JsonValue>;
    connect?: boolean;
  } = {},
): Promise<Setup> {
  runtime = new FakeConnectRuntime({ runtimeKey, ...options.runtime });
  const url = await runtime.start();
  const calls: JsonValue[] = [];
  const errors: { error: Error; phase: string }[] = [];
  agent = new Agent({
    target: url,
    allowInsecure: true,
    auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "echo-bot" }),
    agentId: "echo-bot",
    signingKey: agentKey,
    // These tests exercise the delivery checks; the registry cross-check has its own tests.
    callerKeys: "delivery",
    onError: (error, info) => errors.push({ error, phase: info.phase }),
    ...options.agent,
  });
  agent.serve("echo", async (body) => {
    calls.push(body);
    return options.handler === undefined ? { echo: body } : options.handler(body);
  });
  if (options.connect !== false) await agent.connect();
  return { runtime, agent, calls, errors };
}

function invocation(overrides: { to?: string; ts?: number; body?: JsonValue } = {}, key = callerKey) {
  return signEnvelope(
    {
      type: "invoke",
      from: "alice",
      to: overrides.to ?? "tool:echo",
      body: overrides.body ?? { text: "hi" },
      ...(overrides.ts === undefined ? {} : { ts: overrides.ts }),
    },
    key,
  );
}

function expectError(frame: ClientFrame, code: string): void {
  expect(frame.type).toBe("error");
  expect(frame.type === "error" && frame.error.code).toBe(code);
}

describe("Agent connection", () => {
  it("says hello with its tools and credential, and learns the runtime key from welcome", async () => {
    const { runtime: fake, agent: a } = await setup({ agent: { maxInFlight: 4 } });
    expect(fake.hello).toEqual({ type: "hello", agent: "echo-bot", serves: ["echo"], max_in_flight: 4 });
    expect(fake.upgradeHeaders?.["x-signet-api-key"]).toBe(API_KEY);
    expect(a.session).toMatchObject({ connectionId: "conn-1", serves: ["echo"], runtimeKid: runtimeKey.kid });
  });

  it("refuses a mismatched expectedSender before opening anything", async () => {
    const { runtime: fake, agent: a } = await setup({
      connect: false,
      agent: { auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "someone-else" }) },
    });
    await expect(a.connect()).rejects.toBeInstanceOf(IdentityMismatchError);
    expect(fake.connections).toBe(0);
  });

  it("rejects connect() on an error frame", async () => {
    const { agent: a } = await setup({
      connect: false,
      runtime: { helloAnswer: { type: "error", error: { code: "FORBIDDEN", message: "not yours" } } },
    });
    await expect(a.connect()).rejects.toBeInstanceOf(ForbiddenError);
  });

  it("rejects connect() when the upgrade is refused", async () => {
    const { agent: a } = await setup({ connect: false, runtime: { refuseUpgrade: 401 } });
    await expect(a.connect()).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it("refuses a runtime whose welcome key is not the pinned key", async () => {
    const { agent: a } = await setup({
      connect: false,
      agent: { runtimePublicKey: Ed25519PrivateKey.generate().publicKey },
    });
    const error = await a.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
  });

  it("refuses plaintext without allowInsecure", () => {
    expect(
      () =>
        new Agent({
          target: "http://127.0.0.1:1",
          auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "echo-bot" }),
          agentId: "echo-bot",
          signingKey: agentKey,
        }),
    ).toThrow(SdkError);
  });

  it("answers ping with pong", async () => {
    const { runtime: fake } = await setup();
    fake.send({ type: "ping", ts: 12345 });
    expect(await fake.next((frame) => frame.type === "pong")).toEqual({ type: "pong", ts: 12345 });
  });

  it("stops serving when its own key is revoked", async () => {
    let closed!: (code: number) => void;
    const gone = new Promise<number>((resolve) => {
      closed = resolve;
    });
    const { runtime: fake, errors } = await setup({ agent: { onClose: ({ code }) => closed(code) } });
    fake.send({ type: "key_revoked", agent: "echo-bot", kid: agentKey.kid });
    expect(await gone).toBe(1000);
    expect(agent!.session).toBeUndefined();
    expect(errors.some(({ error }) => error instanceof KeyRevokedError)).toBe(true);
  });
});

describe("Agent delivery verification", () => {
  it("runs a good delivery once and signs a result that answers it", async () => {
    const { runtime: fake, calls } = await setup({ agent: { runtimePublicKey: runtimeKey.publicKey } });
    const request = invocation({ body: { text: "hello" } });
    const callId = fake.deliver({ envelope: request.wire, sender_key: callerSenderKey });
    const frame = await fake.answer(callId);
    expect(frame.type).toBe("result");
    expect(calls).toEqual([{ text: "hello" }]);

    const verified = verifyEnvelope((frame as { envelope: string }).envelope, {
      resolveKey: (kid, sender) =>
        kid === agentKey.kid && sender === "echo-bot"
          ? { key: agentKey.publicKey, owner: "echo-bot" }
          : undefined,
    });
    const result = verified.envelope;
    assertResultAnswers(result, { id: request.envelope.id, hash: request.hash });
    expect(result).toMatchObject({
      type: "result",
      from: "echo-bot",
      to: "agent:alice",
      status: "ok",
      body: { echo: { text: "hello" } },
      decision: { audit_id: "audit-1", rules: ["allow-echo"] },
    });
  });

  it("answers capability targets with the capability's handler, declared in hello", async () => {
    const { runtime: fake, agent: a, calls } = await setup({ connect: false });
    const asked: JsonValue[] = [];
    a.capability("order-processing", (body, call) => {
      asked.push({ body, caller: call.caller });
      return { accepted: true };
    });
    await a.connect();
    expect(fake.hello).toMatchObject({ serves: ["echo"], capabilities: ["order-processing"] });
    const request = invocation({ to: "capability:order-processing", body: { sku: "A-1" } });
    const frame = await fake.answer(fake.deliver({ envelope: request.wire, sender_key: callerSenderKey }));
    expect(frame.type).toBe("result");
    expect(asked).toEqual([{ body: { sku: "A-1" }, caller: "alice" }]);
    expect(calls).toEqual([]);
    const unknown = invocation({ to: "capability:shipping" });
    expectError(
      await fake.answer(fake.deliver({ envelope: unknown.wire, sender_key: callerSenderKey })),
      "UNKNOWN_TOOL",
    );
  });

  async function refused(
    deliver: (fake: FakeConnectRuntime) => string,
    code: string,
  ): Promise<{ calls: JsonValue[] }> {
    const { runtime: fake, calls } = await setup();
    const frame = await fake.answer(deliver(fake));
    expectError(frame, code);
    expect(calls).toEqual([]);
    return { calls };
  }

  it("refuses a delivery the runtime did not sign", async () => {
    await refused(
      (fake) =>
        fake.deliver(
          { envelope: invocation().wire, sender_key: callerSenderKey },
          Ed25519PrivateKey.generate(),
        ),
      "SIGNATURE_INVALID",
    );
  });

  it("refuses a delivery whose signed fields were altered", async () => {
    await refused((fake) => {
      const callId = "call-altered";
      const good = invocation();
      // Sign over one decision, then swap in another: the runtime's signature no longer covers it.
      const delivery = signDelivery(
        {
          call_id: callId,
          envelope_hash: good.hash,
          sender_key: callerSenderKey,
          decision: { audit_id: "a", rules: ["allow-echo"] },
          deadline: Date.now() + 10_000,
        },
        runtimeKey,
      );
      fake.send({
        type: "invoke",
        envelope: good.wire,
        delivery: { ...delivery, decision: { audit_id: "a", rules: ["allow-all"] } },
      });
      return callId;
    }, "SIGNATURE_INVALID");
  });

  it("refuses a caller envelope whose body was tampered with", async () => {
    await refused((fake) => {
      const wire = invocation({ body: { amount: 1 } }).wire.replace('"amount":1', '"amount":1000');
      return fake.deliver({ envelope: wire, sender_key: callerSenderKey });
    }, "HASH_MISMATCH");
  });

  it("refuses a validly signed envelope that is not the one the runtime's delivery names", async () => {
    await refused((fake) => {
      const approved = invocation({ body: { amount: 1 } });
      const swapped = invocation({ body: { amount: 1000 } });
      return fake.deliver({
        envelope: swapped.wire,
        envelope_hash: approved.hash,
        sender_key: callerSenderKey,
      });
    }, "SIGNATURE_INVALID");
  });

  it("refuses a caller envelope whose signed header was tampered with", async () => {
    await refused((fake) => {
      const wire = invocation().wire.replace('"from":"alice"', '"from":"admin"');
      return fake.deliver({ envelope: wire, sender_key: callerSenderKey });
    }, "SIGNATURE_INVALID");
  });

  it("refuses a caller envelope whose kid does not match sender_key", async () => {
    const other = Ed25519PrivateKey.generate();
    await refused(
      (fake) =>
        fake.deliver({
          envelope: invocation().wire,
          sender_key: { kid: other.kid, public_key: other.publicKey.toBase64Url() },
        }),
      "SIGNATURE_INVALID",
    );
  });

  it("refuses a sender_key whose kid is not its key's thumbprint", async () => {
    const other = Ed25519PrivateKey.generate();
    await refused(
      (fake) =>
        fake.deliver({
          envelope: invocation().wire,
          sender_key: { kid: callerKey.kid, public_key: other.publicKey.toBase64Url() },
        }),
      "SIGNATURE_INVALID",
    );
  });

  it("refuses a tool it does not serve", async () => {
    await refused(
      (fake) =>
        fake.deliver({
          envelope: invocation({ to: "tool:delete-everything" }).wire,
          sender_key: callerSenderKey,
        }),
      "UNKNOWN_TOOL",
    );
  });

  it("refuses a stale envelope", async () => {
    await refused(
      (fake) =>
        fake.deliver({
          envelope: invocation({ ts: Date.now() - 5 * 60_000 }).wire,
          sender_key: callerSenderKey,
        }),
      "STALE_MESSAGE",
    );
  });

  it("refuses a delivery past its deadline", async () => {
    await refused(
      (fake) =>
        fake.deliver({ envelope: invocation().wire, sender_key: callerSenderKey, deadline: Date.now() - 1 }),
      "TIMEOUT",
    );
  });

  it("refuses to run the same envelope twice", async () => {
    const { runtime: fake, calls } = await setup();
    const request = invocation();
    const first = await fake.answer(fake.deliver({ envelope: request.wire, sender_key: callerSenderKey }));
    expect(first.type).toBe("result");
    const second = await fake.answer(fake.deliver({ envelope: request.wire, sender_key: callerSenderKey }));
    expectError(second, "REPLAY_DETECTED");
    expect(calls).toHaveLength(1);
  });

  it("refuses a reused nonce under another id", async () => {
    const { runtime: fake, calls } = await setup();
    const first = invocation();
    await fake.answer(fake.deliver({ envelope: first.wire, sender_key: callerSenderKey }));
    const reuse = signEnvelope(
      { type: "invoke", from: "alice", to: "tool:echo", body: 2, nonce: first.envelope.nonce },
      callerKey,
    );
    expectError(
      await fake.answer(fake.deliver({ envelope: reuse.wire, sender_key: callerSenderKey })),
      "REPLAY_DETECTED",
    );
    expect(calls).toHaveLength(1);
  });

  it("refuses deliveries from a caller key the runtime announced as revoked", async () => {
    const { runtime: fake, calls } = await setup();
    fake.send({ type: "key_revoked", agent: "alice", kid: callerKey.kid });
    expectError(
      await fake.answer(fake.deliver({ envelope: invocation().wire, sender_key: callerSenderKey })),
      "KEY_REVOKED",
    );
    expect(calls).toEqual([]);
  });
});

describe("Agent results", () => {
  function resultOf(frame: ClientFrame) {
    expect(frame.type).toBe("result");
    return verifyEnvelope((frame as { envelope: string }).envelope, {
      resolveKey: () => ({ key: agentKey.publicKey, owner: "echo-bot" }),
    }).envelope;
  }

  it("turns a throwing handler into a status error result without leaking its message", async () => {
    const { runtime: fake, errors } = await setup({
      handler: () => {
        throw new Error("db password is hunter2");
      },
    });
    const result = resultOf(
      await fake.answer(fake.deliver({ envelope: invocation().wire, sender_key: callerSenderKey })),
    );
    expect(result.status).toBe("error");
    expect(result.body).toEqual({ error: { code: "INTERNAL_ERROR", message: "The tool failed" } });
    expect(JSON.stringify(result)).not.toContain("hunter2");
    expect(errors.some((e) => e.phase === "handler" && e.error.message.includes("hunter2"))).toBe(true);
  });

  it("passes a ToolError's code and message to the caller", async () => {
    const { runtime: fake } = await setup({
      handler: () => {
        throw new ToolError("out_of_stock", "Item 42 is out of stock");
      },
    });
    const result = resultOf(
      await fake.answer(fake.deliver({ envelope: invocation().wire, sender_key: callerSenderKey })),
    );
    expect(result.status).toBe("error");
    expect(result.body).toEqual({ error: { code: "out_of_stock", message: "Item 42 is out of stock" } });
  });

  it("handles several calls at once", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    const { runtime: fake, calls } = await setup({
      handler: async (body) => {
        started += 1;
        if (started === 3) release();
        await gate; // every call waits until all three are running at the same time
        return body;
      },
    });
    const ids = [1, 2, 3].map((n) =>
      fake.deliver({ envelope: invocation({ body: n }).wire, sender_key: callerSenderKey }),
    );
    const frames = await Promise.all(ids.map((id) => fake.answer(id)));
    expect(frames.map((frame) => resultOf(frame).body).sort()).toEqual([1, 2, 3]);
    expect(calls).toHaveLength(3);
  });
});
