// TLS wiring: the client and the agent verify the runtime's certificate and present mTLS certificates.
import { Ed25519PrivateKey, signEnvelope } from "@signet/protocol";
import { createCertificateAuthority, issueCertificate } from "@signet/runtime";
import { afterEach, describe, expect, it } from "vitest";
import { Agent, AuthConfig, SdkError, SignetClient } from "@signet/sdk";
import { FakeConnectRuntime } from "./helpers/fake-connect-runtime.js";
import { FakeHttpRuntime } from "./helpers/fake-http-runtime.js";

const ca = createCertificateAuthority({ commonName: "SDK test CA" });
const server = issueCertificate({
  issuer: ca,
  commonName: "localhost",
  extendedKeyUsage: ["serverAuth"],
  dnsNames: ["localhost"],
  ipAddresses: ["127.0.0.1"],
});
const aliceCert = issueCertificate({ issuer: ca, commonName: "alice", extendedKeyUsage: ["clientAuth"] });
const botCert = issueCertificate({ issuer: ca, commonName: "echo-bot", extendedKeyUsage: ["clientAuth"] });
const serverTls = {
  key: server.keyPem,
  cert: server.certPem,
  ca: ca.certPem,
  requestCert: true,
  rejectUnauthorized: false, // "optional" client auth: an unverified certificate just does not count
  minVersion: "TLSv1.2" as const,
};

const aliceKey = Ed25519PrivateKey.generate();
const runtimeKey = Ed25519PrivateKey.generate();
const executorKey = Ed25519PrivateKey.generate();

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function httpsRuntime(): Promise<{ runtime: FakeHttpRuntime; url: string }> {
  const runtime = new FakeHttpRuntime({
    runtimeKey,
    executorId: "echo-bot",
    executorKey,
    callers: new Map([["alice", aliceKey.publicKey]]),
    tls: serverTls,
  });
  const url = await runtime.start();
  cleanup.push(() => runtime.stop());
  return { runtime, url };
}

function client(
  url: string,
  options: Partial<ConstructorParameters<typeof SignetClient>[0]> = {},
): SignetClient {
  const c = new SignetClient({
    target: url,
    rootCertificates: ca.certPem,
    auth: AuthConfig.forApiKey("sgk_k", { expectedSender: "alice" }),
    agentId: "alice",
    signingKey: aliceKey,
    runtimePublicKey: runtimeKey.publicKey,
    ...options,
  });
  cleanup.push(() => c.close());
  return c;
}

describe("SignetClient over TLS", () => {
  it("verifies the runtime against the configured CA", async () => {
    const { url } = await httpsRuntime();
    expect((await client(url).invoke("tool:echo", 1)).body).toEqual({ echo: 1 });
  });

  it("refuses a runtime certificate it cannot verify, as a permanent local error", async () => {
    const { url, runtime } = await httpsRuntime();
    const untrusting = client(url, { rootCertificates: createCertificateAuthority().certPem });
    const error = await untrusting.invoke("tool:echo", 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("tls");
    expect((error as SdkError).retryable).toBe(false);
    expect(runtime.requests).toEqual([]);
  });

  it("presents the mTLS certificate, also as a per-call credential", async () => {
    const { url, runtime } = await httpsRuntime();
    const mtls = AuthConfig.forMtls({
      cert: aliceCert.certPem,
      key: aliceCert.keyPem,
      expectedSender: "alice",
    });
    await client(url, { auth: mtls }).invoke("tool:echo", 1);
    const apiKeyClient = client(url);
    await apiKeyClient.invoke("tool:echo", 2);
    await apiKeyClient.invoke("tool:echo", 3, { auth: mtls });
    const posts = runtime.requests.filter((r) => r.method === "POST");
    expect(posts.map((r) => r.peer)).toEqual(["alice", undefined, "alice"]);
    expect(posts[0]!.headers["x-signet-api-key"]).toBeUndefined();
  });
});

describe("Agent over TLS", () => {
  it("connects over wss with the CA and an mTLS certificate, and serves a call", async () => {
    const runtime = new FakeConnectRuntime({ runtimeKey, tls: serverTls });
    const url = await runtime.start();
    cleanup.push(() => runtime.stop());
    const agent = new Agent({
      target: url,
      rootCertificates: [ca.certPem],
      auth: AuthConfig.forMtls({ cert: botCert.certPem, key: botCert.keyPem, expectedSender: "echo-bot" }),
      agentId: "echo-bot",
      signingKey: executorKey,
      runtimePublicKey: runtimeKey.publicKey.toBase64Url(),
      callerKeys: "delivery",
    });
    cleanup.push(() => agent.close());
    agent.serve("echo", (body) => body);
    await agent.connect();
    expect(runtime.upgradePeer).toBe("echo-bot");
    const request = signEnvelope({ type: "invoke", from: "alice", to: "tool:echo", body: 7 }, aliceKey);
    const callId = runtime.deliver({
      envelope: request.wire,
      sender_key: { kid: aliceKey.kid, public_key: aliceKey.publicKey.toBase64Url() },
    });
    expect((await runtime.answer(callId)).type).toBe("result");
  });

  it("refuses a runtime certificate it cannot verify", async () => {
    const runtime = new FakeConnectRuntime({ runtimeKey, tls: serverTls });
    const url = await runtime.start();
    cleanup.push(() => runtime.stop());
    const agent = new Agent({
      target: url,
      auth: AuthConfig.forApiKey("sgk_k", { expectedSender: "echo-bot" }),
      agentId: "echo-bot",
      signingKey: executorKey,
    });
    cleanup.push(() => agent.close());
    agent.serve("echo", (body) => body);
    const error = await agent.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("tls");
    expect(runtime.connections).toBe(0);
  });
});
