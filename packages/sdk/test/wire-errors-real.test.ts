// Every wire code the runtime produces today, provoked for real over TLS, surfacing as its typed class
// with the registry's status and retry flag and its fields. Codes the runtime cannot produce yet
// (policy, limits, payload types, sessions) go through a fake runtime in the runtime's own wire shape.
import {
  ERROR_CODES,
  Ed25519PrivateKey,
  type ErrorCode,
  SignetError,
  newMessageId,
  newNonce,
  signEnvelope,
} from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Agent,
  AuthConfig,
  DuplicateMessageError,
  ERROR_CLASSES,
  ForbiddenError,
  HashMismatchError,
  IdentityMismatchError,
  InvalidEnvelopeError,
  InvalidPayloadError,
  KeyRevokedError,
  PayloadTooLargeError,
  PermissionDeniedError,
  QuotaExceededError,
  type RateLimitedError,
  ReplayDetectedError,
  RetryPolicy,
  SignatureInvalidError,
  SignetClient,
  type SignetClientOptions,
  StaleMessageError,
  TargetUnavailableError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
  UnknownAgentError,
  UnknownToolError,
  UnsupportedProtocolVersionError,
  isProtocolError,
} from "@signet/sdk";
import { FakeHttpRuntime } from "./helpers/fake-http-runtime.js";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup, gate } from "./helpers/wait.js";

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (error: unknown) => error,
  );
}

/** The error is its code's class and carries the registry's status and retry flag. */
function expectCode(error: unknown, code: ErrorCode): void {
  expect(isProtocolError(error)).toBe(true);
  expect(error).toBeInstanceOf(ERROR_CLASSES[code]);
  const coded = error as { code: string; status: number; retryable: boolean };
  expect(coded.code).toBe(code);
  expect(coded.status).toBe(ERROR_CODES[code].status);
  expect(coded.retryable).toBe(ERROR_CODES[code].retryable);
}

/** Refusals the pipeline records name their audit entry. */
function expectAudited(error: unknown): void {
  expect(typeof (error as { details: { audit_id?: unknown } }).details.audit_id).toBe("string");
}

describe("wire errors from a real runtime", () => {
  const cleanup = new Cleanup();
  const slowGate = gate();
  let fx: RealRuntime;
  let alice: RegisteredAgent;
  let bob: RegisteredAgent;
  let bot: RegisteredAgent;
  let client: SignetClient;

  function makeClient(options: Partial<SignetClientOptions> = {}): SignetClient {
    const c = new SignetClient({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: alice.auth,
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
      retryPolicy: RetryPolicy.NONE, // retryable codes surface at once
      ...options,
    });
    cleanup.add(() => c.close());
    return c;
  }

  beforeAll(async () => {
    fx = await startRealRuntime({
      server: { body_limit_bytes: 16_384 },
      yaml: ["envelopes:", "  max_bytes: 4096", "routing:", "  call_timeout_ms: 1500"].join("\n"),
    });
    cleanup.add(() => fx.close());
    alice = await fx.registerAgent("alice");
    bob = await fx.registerAgent("bob");
    bot = await fx.registerAgent("echo-bot", { serves: ["echo", "slow"] });
    await fx.registerAgent("idle-bot", { serves: ["idle"] }); // registered, never connected
    const agent = new Agent({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: bot.auth,
      agentId: "echo-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => agent.close({ drainTimeoutMs: 0 }));
    cleanup.add(() => slowGate.open());
    agent.tool("echo", (args) => args);
    // Ignores its deadline on purpose, so the runtime's TIMEOUT is deterministic.
    agent.tool("slow", async () => {
      await slowGate.promise;
      return "late";
    });
    await agent.connect();
    client = makeClient();
  });
  afterAll(() => cleanup.run());

  it("UNAUTHENTICATED: a credential the runtime does not know", async () => {
    const stranger = makeClient({
      auth: AuthConfig.forApiKey(`sgk_${"A".repeat(16)}_${"B".repeat(43)}`, { expectedSender: "alice" }),
    });
    const error = await failure(stranger.invokeTool("echo", 1));
    expectCode(error, "UNAUTHENTICATED");
    expect(error).toBeInstanceOf(UnauthenticatedError);
  });

  it("FORBIDDEN: an agent offering a tool its registration does not allow", async () => {
    const rogue = new Agent({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: bot.auth,
      agentId: "echo-bot",
      signingKey: bot.key,
      reconnect: false,
    });
    cleanup.add(() => rogue.close());
    rogue.tool("admin/delete-everything", () => null);
    const error = await failure(rogue.connect());
    expectCode(error, "FORBIDDEN");
    expect(error).toBeInstanceOf(ForbiddenError);
  });

  it("IDENTITY_MISMATCH: a credential that proves someone else than the envelope's sender", async () => {
    // alice's API key, mislabelled as bob's: the local guard cannot know, the runtime's binding does.
    const confused = makeClient({
      agentId: "bob",
      signingKey: bob.key,
      auth: AuthConfig.forApiKey(alice.apiKey, { expectedSender: "bob" }),
    });
    const error = await failure(confused.invokeTool("echo", 1));
    expectCode(error, "IDENTITY_MISMATCH");
    expect(error).toBeInstanceOf(IdentityMismatchError);
    expectAudited(error);
  });

  it("INVALID_ENVELOPE: an envelope over the runtime's size limit", async () => {
    const error = await failure(client.invokeTool("echo", "x".repeat(6000)));
    expectCode(error, "INVALID_ENVELOPE");
    expect(error).toBeInstanceOf(InvalidEnvelopeError);
  });

  it("PAYLOAD_TOO_LARGE: a request body over the server's limit", async () => {
    const error = await failure(client.invokeTool("echo", "x".repeat(20_000)));
    expectCode(error, "PAYLOAD_TOO_LARGE");
    expect(error).toBeInstanceOf(PayloadTooLargeError);
  });

  it("HASH_MISMATCH: a body changed after signing", async () => {
    const signed = await client.buildEnvelope("tool:echo", { amount: 1 });
    const error = await failure(client.submit(signed.wire.replace('"amount":1', '"amount":1000')));
    expectCode(error, "HASH_MISMATCH");
    expect(error).toBeInstanceOf(HashMismatchError);
    expectAudited(error);
  });

  it("SIGNATURE_INVALID: a signature that belongs to another envelope", async () => {
    const signed = await client.buildEnvelope("tool:echo", 1);
    const other = await client.buildEnvelope("tool:echo", 2);
    const forged = JSON.stringify({ ...JSON.parse(signed.wire), sig: other.envelope.sig });
    const error = await failure(client.submit(forged));
    expectCode(error, "SIGNATURE_INVALID");
    expect(error).toBeInstanceOf(SignatureInvalidError);
    expectAudited(error);
  });

  it("KEY_REVOKED: a key the registry revoked", async () => {
    const mallory = await fx.registerAgent("mallory");
    await fx.revokeKey("mallory", mallory.key.kid);
    const revoked = makeClient({ agentId: "mallory", signingKey: mallory.key, auth: mallory.auth });
    const error = await failure(revoked.invokeTool("echo", 1));
    expectCode(error, "KEY_REVOKED");
    expect(error).toBeInstanceOf(KeyRevokedError);
    expectAudited(error);
  });

  it("UNKNOWN_AGENT: a key the registry has never seen", async () => {
    const unregistered = makeClient({ signingKey: Ed25519PrivateKey.generate() });
    const error = await failure(unregistered.invokeTool("echo", 1));
    expectCode(error, "UNKNOWN_AGENT");
    expect(error).toBeInstanceOf(UnknownAgentError);
    expectAudited(error);
  });

  it("DUPLICATE_MESSAGE: another envelope under a message id already used", async () => {
    const id = newMessageId();
    await client.submit(await client.buildEnvelope("tool:echo", 1, { id }));
    const error = await failure(client.submit(await client.buildEnvelope("tool:echo", 2, { id })));
    expectCode(error, "DUPLICATE_MESSAGE");
    expect(error).toBeInstanceOf(DuplicateMessageError);
    expectAudited(error);
  });

  it("STALE_MESSAGE: a timestamp outside the freshness window", async () => {
    const old = signEnvelope(
      { type: "invoke", from: "alice", to: "tool:echo", body: 1, ts: Date.now() - 10 * 60_000 },
      alice.key,
    );
    const error = await failure(client.submit(old));
    expectCode(error, "STALE_MESSAGE");
    expect(error).toBeInstanceOf(StaleMessageError);
    expect((error as StaleMessageError).reason).toBe("window");
  });

  it("REPLAY_DETECTED: a nonce reused under another message id", async () => {
    const nonce = newNonce();
    const first = signEnvelope({ type: "invoke", from: "alice", to: "tool:echo", body: 1, nonce }, alice.key);
    await client.submit(first);
    const again = signEnvelope({ type: "invoke", from: "alice", to: "tool:echo", body: 1, nonce }, alice.key);
    const error = await failure(client.submit(again));
    expectCode(error, "REPLAY_DETECTED");
    expect(error).toBeInstanceOf(ReplayDetectedError);
  });

  it("UNKNOWN_TOOL: a tool no agent may serve", async () => {
    const error = await failure(client.invokeTool("no-such/tool", 1));
    expectCode(error, "UNKNOWN_TOOL");
    expect(error).toBeInstanceOf(UnknownToolError);
  });

  it("TARGET_UNAVAILABLE: a tool whose agent is not connected (retryable)", async () => {
    const error = await failure(client.invokeTool("idle", 1));
    expectCode(error, "TARGET_UNAVAILABLE");
    expect(error).toBeInstanceOf(TargetUnavailableError);
  });

  it("TIMEOUT, then UNAVAILABLE for a retry while the outcome is still unknown", async () => {
    const slow = await client.buildEnvelope("tool:slow", 1);
    const timeout = await failure(client.submit(slow));
    expectCode(timeout, "TIMEOUT");
    expect(timeout).toBeInstanceOf(TimeoutError);
    // The executor may still answer, so the runtime will not run the message again: it says so.
    const retry = await failure(client.submit(slow));
    expectCode(retry, "UNAVAILABLE");
    expect(retry).toBeInstanceOf(UnavailableError);
    expect((retry as UnavailableError).reason).toBe("in_progress");
  });

  it("UNSUPPORTED_PROTOCOL_VERSION: refused by the SDK itself, with the runtime's code", async () => {
    const signed = await client.buildEnvelope("tool:echo", 1);
    const error = await failure(client.submit(signed.wire.replace('"v":"signet/1"', '"v":"signet/2"')));
    expectCode(error, "UNSUPPORTED_PROTOCOL_VERSION");
    expect(error).toBeInstanceOf(UnsupportedProtocolVersionError);
  });
});

describe("wire errors the runtime cannot produce yet, in its wire shape", () => {
  const aliceKey = Ed25519PrivateKey.generate();
  const runtimeKey = Ed25519PrivateKey.generate();
  let fake: FakeHttpRuntime;
  let client: SignetClient;

  beforeAll(async () => {
    fake = new FakeHttpRuntime({
      runtimeKey,
      executorId: "echo-bot",
      executorKey: Ed25519PrivateKey.generate(),
      callers: new Map([["alice", aliceKey.publicKey]]),
    });
    const url = await fake.start();
    client = new SignetClient({
      target: url,
      allowInsecure: true,
      auth: AuthConfig.forApiKey("sgk_test", { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: aliceKey,
      runtimePublicKey: runtimeKey.publicKey,
      retryPolicy: RetryPolicy.NONE,
    });
  });
  afterAll(async () => {
    await client?.close();
    await fake?.stop();
  });

  async function refusedWith(error: SignetError): Promise<unknown> {
    fake.refuse = { status: error.status, body: error.toWire() };
    return failure(client.invokeTool("echo", 1));
  }

  it("POLICY_DENIED → PermissionDeniedError with rule and reason", async () => {
    const error = await refusedWith(
      new SignetError("POLICY_DENIED", undefined, { rule: "deny-prod-writes", reason: "needs dba" }),
    );
    expectCode(error, "POLICY_DENIED");
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).rule).toBe("deny-prod-writes");
    expect((error as PermissionDeniedError).reason).toBe("needs dba");
  });

  it("RATE_LIMITED → RateLimitedError with retryAfterMs", async () => {
    const error = await refusedWith(new SignetError("RATE_LIMITED", undefined, { retry_after_ms: 1250 }));
    expectCode(error, "RATE_LIMITED");
    expect((error as RateLimitedError).retryAfterMs).toBe(1250);
  });

  it("QUOTA_EXCEEDED and INVALID_PAYLOAD → their classes", async () => {
    const quota = await refusedWith(new SignetError("QUOTA_EXCEEDED"));
    expectCode(quota, "QUOTA_EXCEEDED");
    expect(quota).toBeInstanceOf(QuotaExceededError);
    const payload = await refusedWith(new SignetError("INVALID_PAYLOAD", undefined, { reason: "schema" }));
    expectCode(payload, "INVALID_PAYLOAD");
    expect(payload).toBeInstanceOf(InvalidPayloadError);
  });
});
