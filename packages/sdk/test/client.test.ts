// SignetClient: refusals before any I/O, and verification of the runtime's answers (fake runtime).
import { mkdtempSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ed25519PrivateKey, signEnvelope } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthConfig,
  IdentityMismatchError,
  PermissionDeniedError,
  RateLimitedError,
  RetryPolicy,
  SdkError,
  SignatureInvalidError,
  SignetClient,
  type SignetClientOptions,
} from "@signet/sdk";
import { FakeHttpRuntime } from "./helpers/fake-http-runtime.js";

const API_KEY = "sgk_test_secret";
const MISSING_KEY_FILE = join(tmpdir(), "signet-sdk-test-no-such-dir", "alice.key");

function sdkReason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SdkError);
    return (error as SdkError).reason;
  }
  throw new Error("expected an SdkError");
}

/** A TCP listener that only counts who connects: proof that nothing was sent. */
async function recordingServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

describe("SignetClient construction", () => {
  const auth = AuthConfig.forApiKey(API_KEY, { expectedSender: "alice" });

  it("refuses plaintext without allowInsecure", () => {
    expect(sdkReason(() => new SignetClient({ target: "http://127.0.0.1:1", auth, agentId: "alice" }))).toBe(
      "insecure_transport",
    );
    expect(
      sdkReason(() => new SignetClient({ target: "127.0.0.1:1", secure: false, auth, agentId: "alice" })),
    ).toBe("insecure_transport");
    expect(
      sdkReason(
        () =>
          new SignetClient({ target: "http://127.0.0.1:1", allowInsecure: false, auth, agentId: "alice" }),
      ),
    ).toBe("insecure_transport");
  });

  it("uses TLS by default and accepts plaintext only when allowed", () => {
    expect(() => new SignetClient({ target: "127.0.0.1:8443", auth, agentId: "alice" })).not.toThrow();
    expect(
      () =>
        new SignetClient({ target: "http://127.0.0.1:8080", allowInsecure: true, auth, agentId: "alice" }),
    ).not.toThrow();
  });

  it("refuses contradictory or unsafe targets", () => {
    expect(
      sdkReason(() => new SignetClient({ target: "https://h:1", secure: false, auth, agentId: "alice" })),
    ).toBe("target");
    expect(sdkReason(() => new SignetClient({ target: "https://u:p@h:1", auth, agentId: "alice" }))).toBe(
      "target",
    );
    expect(sdkReason(() => new SignetClient({ target: "ftp://h:1", auth, agentId: "alice" }))).toBe("target");
  });

  it("refuses the dev identity without allowInsecure", () => {
    expect(
      sdkReason(
        () =>
          new SignetClient({
            target: "https://127.0.0.1:8443",
            auth: AuthConfig.forDevAgent("alice"),
            agentId: "alice",
          }),
      ),
    ).toBe("dev_identity");
    expect(
      () =>
        new SignetClient({
          target: "http://127.0.0.1:8080",
          allowInsecure: true,
          auth: AuthConfig.forDevAgent("alice"),
          agentId: "alice",
        }),
    ).not.toThrow();
  });

  it("needs no key and opens no connection", async () => {
    const recorder = await recordingServer();
    try {
      const client = new SignetClient({
        target: `http://127.0.0.1:${recorder.port}`,
        allowInsecure: true,
        auth,
        agentId: "alice",
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(recorder.connections()).toBe(0);
      await client.close();
    } finally {
      recorder.server.close();
    }
  });

  it("never shows credentials when inspected", () => {
    const bearer = AuthConfig.forBearer("eyJ.secret.token", { expectedSender: "alice" });
    expect(JSON.stringify(bearer)).not.toContain("secret");
    expect(String(bearer)).not.toContain("secret");
    expect(JSON.stringify(auth)).not.toContain(API_KEY);
  });
});

describe("expectedSender is enforced before key loading and before any I/O", () => {
  let recorder: Awaited<ReturnType<typeof recordingServer>>;
  beforeEach(async () => {
    recorder = await recordingServer();
  });
  afterEach(async () => {
    await new Promise((resolve) => recorder.server.close(resolve));
  });

  function client(overrides: Partial<SignetClientOptions> = {}): SignetClient {
    return new SignetClient({
      target: `http://127.0.0.1:${recorder.port}`,
      allowInsecure: true,
      auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "bob" }),
      agentId: "alice",
      signingKey: MISSING_KEY_FILE, // would fail to load: the identity error must come first
      ...overrides,
    });
  }

  it("throws IdentityMismatchError from invoke, sending nothing", async () => {
    const c = client();
    const error = await c.invoke("tool:echo", { x: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentityMismatchError);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as IdentityMismatchError).expected).toBe("bob");
    expect((error as IdentityMismatchError).actual).toBe("alice");
    expect(recorder.connections()).toBe(0);
    await c.close();
  });

  it("also over TLS, and for a per-call credential", async () => {
    const c = client({
      target: `127.0.0.1:${recorder.port}`,
      allowInsecure: false,
      auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "alice" }),
    });
    const override = AuthConfig.forBearer("token", { expectedSender: "mallory" });
    await expect(c.invoke("tool:echo", null, { auth: override })).rejects.toBeInstanceOf(
      IdentityMismatchError,
    );
    await expect(c.sign("tool:echo", null, { auth: override })).rejects.toBeInstanceOf(IdentityMismatchError);
    expect(recorder.connections()).toBe(0);
    await c.close();
  });

  it("checks the sender of a pre-signed envelope in send()", async () => {
    const key = Ed25519PrivateKey.generate();
    const { wire } = signEnvelope({ type: "invoke", from: "alice", to: "tool:echo", body: 1 }, key);
    const c = client();
    await expect(c.send(wire)).rejects.toBeInstanceOf(IdentityMismatchError);
    expect(recorder.connections()).toBe(0);
    await c.close();
  });

  it("with a matching identity, a missing key file fails locally, still before any I/O", async () => {
    const c = client({ auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "alice" }) });
    const error = await c.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("signing_key");
    expect(recorder.connections()).toBe(0);
    await c.close();
  });
});

describe("SignetClient against a fake runtime", () => {
  const aliceKey = Ed25519PrivateKey.generate();
  const runtimeKey = Ed25519PrivateKey.generate();
  const executorKey = Ed25519PrivateKey.generate();
  let runtime: FakeHttpRuntime;
  let url: string;
  let client: SignetClient;

  function makeClient(overrides: Partial<SignetClientOptions> = {}): SignetClient {
    return new SignetClient({
      target: url,
      allowInsecure: true,
      auth: AuthConfig.forApiKey(API_KEY, { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: aliceKey,
      runtimePublicKey: runtimeKey.publicKey.toBase64Url(),
      ...overrides,
    });
  }

  beforeEach(async () => {
    runtime = new FakeHttpRuntime({
      runtimeKey,
      executorId: "echo-bot",
      executorKey,
      callers: new Map([["alice", aliceKey.publicKey]]),
    });
    url = await runtime.start();
    client = makeClient();
  });
  afterEach(async () => {
    await client.close();
    await runtime.stop();
  });

  it("returns a verified result and sends the credential", async () => {
    const answer = await client.invoke("tool:echo", { text: "hi" }, { intent: { purpose: "test" } });
    expect(answer.body).toEqual({ echo: { text: "hi" } });
    expect(answer.status).toBe("ok");
    expect(answer.duplicate).toBe(false);
    expect(answer.result.from).toBe("echo-bot");
    expect(answer.receipt.request.hash).toBe(answer.requestHash);
    const post = runtime.requests.find((r) => r.method === "POST")!;
    expect(post.headers["x-signet-api-key"]).toBe(API_KEY);
    expect(post.headers["content-type"]).toBe("application/json");
    // The executor's key was fetched from the registry.
    expect(runtime.requests.some((r) => r.url === "/v1/agents/echo-bot")).toBe(true);
  });

  it("invokeTool takes a tool name with or without its prefix, and refuses a bad one locally", async () => {
    expect((await client.invokeTool("echo", 1)).body).toEqual({ echo: 1 });
    expect((await client.invokeTool("tool:echo", 2)).executor).toBe("echo-bot");
    const posts = runtime.bodies.length;
    for (const name of ["", "Echo!", "a//b", "agent:bob"]) {
      const error = await client.invokeTool(name, 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).reason).toBe("tool_name");
    }
    expect(runtime.bodies.length).toBe(posts);
  });

  it("buildEnvelope signs invokes and signals without sending; submit takes the object or its text", async () => {
    const signal = await client.buildEnvelope(
      "agent:bob",
      { hi: 1 },
      { type: "signal", intent: { purpose: "t" } },
    );
    expect(signal.envelope).toMatchObject({
      type: "signal",
      from: "alice",
      to: "agent:bob",
      intent: { purpose: "t" },
    });
    const invoke = await client.buildEnvelope("tool:echo", 3);
    expect(runtime.bodies).toEqual([]);
    const first = await client.submit(invoke);
    const second = await client.submit(invoke.wire);
    expect(first.attempts).toBe(1);
    expect(second.duplicate).toBe(true);
    expect(runtime.bodies).toEqual([invoke.wire, invoke.wire]);
  });

  it("loads the signing key from a PEM file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "signet-sdk-"));
    const path = join(dir, "alice.key");
    writeFileSync(path, aliceKey.toPem(), { mode: 0o600 });
    const fromFile = makeClient({ signingKey: path });
    try {
      expect((await fromFile.invoke("tool:echo", 1)).body).toEqual({ echo: 1 });
    } finally {
      await fromFile.close();
    }
  });

  it("sends identical bytes again with send(): the answer is the original, marked duplicate", async () => {
    const signed = await client.sign("tool:echo", { n: 1 });
    const first = await client.send(signed.wire);
    const second = await client.send(signed.wire);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.result).toEqual(first.result);
    expect(runtime.executions).toBe(1);
  });

  it("refuses a result whose body was changed", async () => {
    runtime.tamper = (answer) => ({ ...answer, result: { ...answer.result, body: { echo: "forged" } } });
    await expect(client.invoke("tool:echo", 1)).rejects.toBeInstanceOf(SignatureInvalidError);
  });

  it("refuses a result re-signed by a key the registry does not list for the executor", async () => {
    const forger = Ed25519PrivateKey.generate();
    runtime.tamper = (answer) => {
      const r = answer.result as { re: { id: string; hash: `sha256:${string}` }; to: string };
      const forged = signEnvelope(
        { type: "result", from: "echo-bot", to: r.to, re: r.re, status: "ok", body: { echo: "forged" } },
        forger,
      );
      const receipt = runtime.receiptFor(
        {
          ...answer,
          receipt: {
            ...answer.receipt,
            result: { from: "echo-bot", id: forged.envelope.id, hash: forged.hash, status: "ok" },
          },
        },
        runtimeKey,
      );
      return { receipt, result: JSON.parse(forged.wire) };
    };
    const error = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect((error as SignatureInvalidError).reason).toBe("result_key");
  });

  it("refuses a genuine result that answers another request", async () => {
    const other = await client.invoke("tool:echo", "other");
    runtime.tamper = (answer) => ({ ...answer, result: other.result });
    const error = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect((error as SignatureInvalidError).reason).toBe("unbound");
  });

  it("refuses a receipt not signed by the pinned runtime key", async () => {
    runtime.tamper = (answer) => ({
      ...answer,
      receipt: runtime.receiptFor(answer, Ed25519PrivateKey.generate()),
    });
    const error = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect((error as SignatureInvalidError).reason).toBe("receipt_sig");
  });

  it("refuses a receipt that names another request", async () => {
    runtime.tamper = (answer) => ({
      ...answer,
      receipt: runtime.receiptFor(
        {
          ...answer,
          receipt: { ...answer.receipt, request: { ...answer.receipt.request, id: crypto.randomUUID() } },
        },
        runtimeKey,
      ),
    });
    const error = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect((error as SignatureInvalidError).reason).toBe("receipt_unbound");
  });

  it("falls back to the pinned runtime's receipt when the registry is closed to the caller", async () => {
    runtime.registry = "forbidden";
    expect((await client.invoke("tool:echo", 2)).body).toEqual({ echo: 2 });
  });

  it("refuses to return an unverifiable result (no registry access, no pinned runtime key)", async () => {
    runtime.registry = "forbidden";
    const unpinned = makeClient({ runtimePublicKey: undefined });
    try {
      const error = await unpinned.invoke("tool:echo", 3).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).reason).toBe("result_unverifiable");
    } finally {
      await unpinned.close();
    }
  });

  it("with resultTrust executor_key, a closed registry is a refusal even with a pinned key", async () => {
    runtime.registry = "forbidden";
    const strict = makeClient({ resultTrust: "executor_key" });
    try {
      await expect(strict.invoke("tool:echo", 4)).rejects.toBeInstanceOf(SdkError);
    } finally {
      await strict.close();
    }
  });

  it("refuses a result signed with a revoked key", async () => {
    runtime.registryKeys = runtime.registryKeys.map((key) => ({ ...key, state: "revoked" }));
    const error = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expect((error as SignatureInvalidError).reason).toBe("result_key_revoked");
  });

  it("turns wire refusals into typed errors", async () => {
    runtime.refuse = {
      status: 429,
      body: { error: { code: "RATE_LIMITED", message: "slow down", retryable: true, retry_after_ms: 1500 } },
    };
    // Without retries: RATE_LIMITED is retryable, and this test is about the error's shape.
    const limited = await client
      .invoke("tool:echo", 1, { retryPolicy: RetryPolicy.NONE })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterMs).toBe(1500);

    runtime.refuse = {
      status: 403,
      body: { error: { code: "POLICY_DENIED", message: "no", retryable: false, rule: "deny-all" } },
    };
    const denied = await client.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect((denied as PermissionDeniedError).rule).toBe("deny-all");
  });

  it("reports an unreachable runtime as a retryable local error", async () => {
    await runtime.stop();
    const error = await client
      .invoke("tool:echo", 1, { retryPolicy: RetryPolicy.NONE })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("network");
    expect((error as SdkError).retryable).toBe(true);
    runtime = new FakeHttpRuntime({
      runtimeKey,
      executorId: "echo-bot",
      executorKey,
      callers: new Map([["alice", aliceKey.publicKey]]),
    });
    await runtime.start();
  });
});
