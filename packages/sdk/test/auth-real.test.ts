// Every AuthConfig method authenticating for real against a runtime over TLS (and the dev identity
// against a plaintext development runtime), and the transport guardrails in the constructor.
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, AuthConfig, RetryPolicy, SdkError, SignetClient, UnauthenticatedError } from "@signet/sdk";
import { type RealRuntime, type RegisteredAgent, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup } from "./helpers/wait.js";

const jwtKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });
const otherJwtKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });

/** An RS256 JWT from the test identity provider (or from `key`, to forge one). */
function jwtFor(subject: string, key = jwtKeys.privateKey): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "RS256", typ: "JWT" })}.${part({
    sub: subject,
    iss: "https://idp.test/",
    aud: "signet",
    iat: now,
    exp: now + 300,
  })}`;
  return `${unsigned}.${sign("sha256", Buffer.from(unsigned), key).toString("base64url")}`;
}

describe("AuthConfig against a real runtime over TLS", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let alice: RegisteredAgent;
  let bot: RegisteredAgent;

  beforeAll(async () => {
    const jwtDir = mkdtempSync(join(tmpdir(), "signet-sdk-jwt-"));
    cleanup.add(() => rmSync(jwtDir, { recursive: true, force: true }));
    const jwtKeyPath = join(jwtDir, "idp.pem");
    writeFileSync(jwtKeyPath, jwtKeys.publicKey.export({ type: "spki", format: "pem" }));
    fx = await startRealRuntime({
      clientIds: ["alice", "echo-bot"],
      yaml: [
        "  jwt:",
        "    issuer: https://idp.test/",
        "    audience: signet",
        "    algorithms: [RS256]",
        `    static_keys: [${jwtKeyPath}]`,
      ].join("\n"),
    });
    cleanup.add(() => fx.close());
    alice = await fx.registerAgent("alice");
    bot = await fx.registerAgent("echo-bot", { serves: ["echo"] });
    // The tool server authenticates with its client certificate.
    const agent = new Agent({
      target: fx.url,
      rootCertificates: fx.ca,
      auth: AuthConfig.forMtls({
        cert: readFileSync(fx.certs.clients["echo-bot"]!.cert),
        key: readFileSync(fx.certs.clients["echo-bot"]!.key),
        expectedSender: "echo-bot",
      }),
      agentId: "echo-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => agent.close());
    agent.tool("echo", (args, call) => ({ args, caller: call.caller }));
    await agent.connect();
  });
  afterAll(() => cleanup.run());

  function client(auth: AuthConfig): SignetClient {
    const c = new SignetClient({
      target: fx.url,
      rootCertificates: fx.ca,
      auth,
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
      retryPolicy: RetryPolicy.NONE,
    });
    cleanup.add(() => c.close());
    return c;
  }

  const methods: [string, () => AuthConfig][] = [
    ["an API key (X-Signet-Api-Key)", () => alice.auth],
    ["an API key as a bearer token", () => AuthConfig.forBearer(alice.apiKey, { expectedSender: "alice" })],
    ["a JWT bearer token", () => AuthConfig.forBearer(jwtFor("alice"), { expectedSender: "alice" })],
    [
      "a client certificate (mTLS)",
      () =>
        AuthConfig.forMtls({
          cert: readFileSync(fx.certs.clients.alice!.cert),
          key: readFileSync(fx.certs.clients.alice!.key),
          expectedSender: "alice",
        }),
    ],
  ];

  it.each(methods)("authenticates with %s and gets a verified result", async (_name, auth) => {
    const answer = await client(auth()).invokeTool("echo", { n: 1 });
    expect(answer.status).toBe("ok");
    expect(answer.body).toEqual({ args: { n: 1 }, caller: "alice" });
    expect(answer.executor).toBe("echo-bot");
    expect(answer.auditId).toBe(answer.receipt.audit.request);
    expect(answer.duplicate).toBe(false);
  });

  it("refuses a credential the runtime does not accept as UNAUTHENTICATED", async () => {
    const bogus = AuthConfig.forApiKey(`sgk_${"A".repeat(16)}_${"B".repeat(43)}`, {
      expectedSender: "alice",
    });
    const forged = AuthConfig.forBearer(jwtFor("alice", otherJwtKeys.privateKey), {
      expectedSender: "alice",
    });
    for (const auth of [bogus, forged]) {
      const error = await client(auth)
        .invokeTool("echo", 1)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnauthenticatedError);
      expect((error as UnauthenticatedError).code).toBe("UNAUTHENTICATED");
      expect((error as UnauthenticatedError).status).toBe(401);
    }
  });

  it("refuses forDevAgent on a TLS client, in the constructor", () => {
    for (const allowInsecure of [false, true]) {
      const error = (() => {
        try {
          return new SignetClient({
            target: fx.url,
            allowInsecure,
            rootCertificates: fx.ca,
            auth: AuthConfig.forDevAgent("alice"),
            agentId: "alice",
          });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).reason).toBe("dev_identity");
    }
  });

  it("refuses plaintext without allowInsecure, in the constructor", () => {
    const plaintext = fx.url.replace("https://", "http://");
    for (const options of [
      { target: plaintext },
      { target: fx.url.slice("https://".length), secure: false },
    ]) {
      let error: unknown;
      try {
        new SignetClient({ ...options, auth: alice.auth, agentId: "alice" });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SdkError);
      expect((error as SdkError).reason).toBe("insecure_transport");
    }
  });
});

describe("forDevAgent against a plaintext development runtime", () => {
  const cleanup = new Cleanup();
  afterAll(() => cleanup.run());

  it("authenticates the dev identity for real, with allowInsecure", async () => {
    const fx = await startRealRuntime({ insecure: true });
    cleanup.add(() => fx.close());
    expect(fx.url).toMatch(/^http:\/\//);
    const alice = await fx.registerAgent("alice");
    const bot = await fx.registerAgent("echo-bot", { serves: ["echo"] });
    const agent = new Agent({
      target: fx.url,
      allowInsecure: true,
      auth: AuthConfig.forDevAgent("echo-bot"),
      agentId: "echo-bot",
      signingKey: bot.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => agent.close());
    agent.tool("echo", (args, call) => ({ args, caller: call.caller }));
    await agent.connect();
    const client = new SignetClient({
      target: fx.url,
      allowInsecure: true,
      auth: AuthConfig.forDevAgent("alice"),
      agentId: "alice",
      signingKey: alice.key,
      runtimePublicKey: fx.runtimePublicKey,
    });
    cleanup.add(() => client.close());
    const answer = await client.invokeTool("echo", "hi");
    expect(answer.body).toEqual({ args: "hi", caller: "alice" });
  });
});
