// Attacks on the invocation path, each done for real over TLS: the refusal's wire code, that the
// tool never ran, and that the refusal was recorded.
import { Ed25519PrivateKey, type JsonValue, canonicalize, hashJson, signEnvelope } from "@signet/protocol";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { loadConfig } from "../../src/config/load-config.js";
import { createRuntime } from "../../src/runtime.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor, type RawExecutorOptions } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let fx: RuntimeFixture;
let alice: TestAgent;
let bob: TestAgent;
let dbBot: TestAgent;
let tool: RawExecutor;
const extra: RawExecutor[] = [];

async function connectExecutor(options: Partial<RawExecutorOptions> = {}): Promise<RawExecutor> {
  const executor = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: dbBot.apiKey,
    agentId: "db-bot",
    key: dbBot.key,
    serves: ["database/query"],
    ...options,
  });
  await executor.connect();
  return executor;
}

beforeAll(async () => {
  fx = await startRuntime();
  alice = await registerAgent(fx, "alice");
  bob = await registerAgent(fx, "bob");
  dbBot = await registerAgent(fx, "db-bot", ["database/query"]);
  await registerAgent(fx, "mallory-bot", ["weather/today"]);
  tool = await connectExecutor();
});
afterEach(async () => {
  await Promise.all(extra.splice(0).map((executor) => executor.close()));
});
afterAll(async () => {
  await tool?.close();
  await fx?.close();
});

type Draft = Parameters<typeof signEnvelope>[0];
const invoke = (overrides: Partial<Draft> = {}, key = alice.key) =>
  signEnvelope(
    { type: "invoke", from: "alice", to: "tool:database/query", body: { q: "select 1" }, ...overrides },
    key,
  );

const submit = (wire: string, headers = alice.headers) =>
  call(fx, "POST", "/v1/envelopes", { headers, body: wire });

/** Submits, and asserts the wire code, that the tool did not run, and that the refusal was recorded. */
async function expectRefused(wire: string, code: string, headers = alice.headers): Promise<void> {
  const callsBefore = tool.calls;
  // The seq the next entry gets (seqs start at 0): everything recorded from here on has at least it.
  const eventsBefore = fx.runtime.audit.size;
  const response = await submit(wire, headers);
  expect(response.body.error?.code, JSON.stringify(response.body)).toBe(code);
  expect(tool.calls).toBe(callsBefore);
  const recorded = await fx.runtime.audit.query({ afterSeq: eventsBefore - 1, limit: 10_000 });
  const refusal = recorded.find((event) => event.code === code && event.outcome === "deny");
  expect(refusal, `a recorded ${code} refusal`).toBeDefined();
  expect(response.body.error.audit_id).toBe(refusal!.id);
}

function tamper(wire: string, change: (envelope: Record<string, JsonValue>) => void): string {
  const envelope = JSON.parse(wire) as Record<string, JsonValue>;
  change(envelope);
  return canonicalize(envelope);
}

describe("attacks on POST /v1/envelopes", () => {
  it("the same bytes re-sent: answered as a duplicate, the tool ran once", async () => {
    const request = invoke();
    const first = await submit(request.wire);
    const callsAfterFirst = tool.calls;
    const again = await submit(request.wire);
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body.receipt.duplicate).toBe(true);
    expect(again.body.result).toEqual(first.body.result);
    expect(tool.calls).toBe(callsAfterFirst);
    // Re-encoding the same signed content (other key order, whitespace) is the same message too.
    const pretty = JSON.stringify(JSON.parse(request.wire), null, 2);
    expect((await submit(pretty)).body.receipt.duplicate).toBe(true);
    expect(tool.calls).toBe(callsAfterFirst);
  });

  it("the same id with other content: DUPLICATE_MESSAGE", async () => {
    const request = invoke();
    await submit(request.wire);
    const other = invoke({ id: request.envelope.id, body: { q: "drop table" } });
    await expectRefused(other.wire, "DUPLICATE_MESSAGE");
  });

  it("the same nonce under a new id: REPLAY_DETECTED", async () => {
    const request = invoke();
    await submit(request.wire);
    await expectRefused(invoke({ nonce: request.envelope.nonce }).wire, "REPLAY_DETECTED");
  });

  it("a stale timestamp, past or future: STALE_MESSAGE", async () => {
    await expectRefused(invoke({ ts: Date.now() - 61_000 }).wire, "STALE_MESSAGE");
    await expectRefused(invoke({ ts: Date.now() + 61_000 }).wire, "STALE_MESSAGE");
  });

  it("a spoofed sender (alice's credential, bob's signed envelope): IDENTITY_MISMATCH", async () => {
    const asBob = signEnvelope({ type: "invoke", from: "bob", to: "tool:database/query", body: {} }, bob.key);
    await expectRefused(asBob.wire, "IDENTITY_MISMATCH");
  });

  it("a signature by another registered agent's key: SIGNATURE_INVALID", async () => {
    await expectRefused(invoke({}, bob.key).wire, "SIGNATURE_INVALID");
    const withAlicesKid = tamper(invoke({}, bob.key).wire, (e) => (e.kid = alice.key.kid));
    await expectRefused(withAlicesKid, "SIGNATURE_INVALID");
  });

  it("an unregistered key: UNKNOWN_AGENT", async () => {
    await expectRefused(invoke({}, Ed25519PrivateKey.generate()).wire, "UNKNOWN_AGENT");
  });

  it("bit flips in every signed field and in the body are refused with the right code", async () => {
    const request = invoke({ intent: { purpose: "report", permissions: ["database:read"] } });
    // Change the last character to another one of the field's own alphabet, so only the value changes.
    const flip = (text: string): string => text.slice(0, -1) + (text.endsWith("a") ? "b" : "a");
    const cases: [string, (e: Record<string, JsonValue>) => void, string][] = [
      ["body", (e) => (e.body = { q: "select 0" }), "HASH_MISMATCH"],
      ["body_hash", (e) => (e.body_hash = flip(e.body_hash as string)), "HASH_MISMATCH"],
      ["id", (e) => (e.id = flip(e.id as string)), "SIGNATURE_INVALID"],
      ["ts", (e) => (e.ts = (e.ts as number) ^ 1), "SIGNATURE_INVALID"],
      ["nonce", (e) => (e.nonce = flip(e.nonce as string)), "SIGNATURE_INVALID"],
      ["to", (e) => (e.to = "tool:database/querz"), "SIGNATURE_INVALID"],
      [
        "intent",
        (e) => (e.intent = { purpose: "reporu", permissions: ["database:read"] }),
        "SIGNATURE_INVALID",
      ],
      ["type", (e) => (e.type = "signal"), "SIGNATURE_INVALID"],
      ["kid", (e) => (e.kid = flip(e.kid as string)), "UNKNOWN_AGENT"],
      [
        "sig",
        (e) =>
          (e.sig = `${(e.sig as string).slice(0, 10)}${(e.sig as string)[10] === "A" ? "B" : "A"}${(e.sig as string).slice(11)}`),
        "SIGNATURE_INVALID",
      ],
      ["from", (e) => (e.from = "alicf"), "IDENTITY_MISMATCH"],
      ["v", (e) => (e.v = "signet/2"), "UNSUPPORTED_PROTOCOL_VERSION"],
    ];
    for (const [field, change, code] of cases) {
      const response = await submit(tamper(request.wire, change));
      expect(response.body.error?.code, field).toBe(code);
    }
    expect((await submit(request.wire)).status).toBe(200);
  });

  it("a revoked key: KEY_REVOKED, at once", async () => {
    const carol = await registerAgent(fx, "carol");
    const signed = signEnvelope(
      { type: "invoke", from: "carol", to: "tool:database/query", body: {} },
      carol.key,
    );
    const admin = { authorization: `Bearer ${fx.adminKey}` };
    await call(fx, "POST", `/v1/agents/carol/keys/${carol.key.kid}/revoke`, { headers: admin, body: {} });
    await expectRefused(signed.wire, "KEY_REVOKED", carol.headers);
    expect(tool.frames.some((f) => f.type === "key_revoked" && f.kid === carol.key.kid)).toBe(true);
  });

  it("an oversized body: refused before parsing; a deeply nested body: INVALID_ENVELOPE", async () => {
    const big = invoke({ body: { blob: "x".repeat(1_200_000) } });
    const response = await submit(big.wire);
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    const justOver = invoke({ body: { blob: "x".repeat(1_048_400) } });
    await expectRefused(justOver.wire, "INVALID_ENVELOPE");
    const deep = invoke({ body: JSON.parse(`${"[".repeat(80)}${"]".repeat(80)}`) as JsonValue });
    await expectRefused(deep.wire, "INVALID_ENVELOPE");
  });

  it("duplicate JSON keys and __proto__ keys: INVALID_ENVELOPE", async () => {
    const request = invoke();
    await expectRefused(
      request.wire.replace('"from":"alice"', '"from":"alice","from":"alice"'),
      "INVALID_ENVELOPE",
    );
    await expectRefused(
      request.wire.replace('"body":{', '"body":{"__proto__":{"admin":true},'),
      "INVALID_ENVELOPE",
    );
    await expectRefused(
      request.wire.replace('"body":{', '"body":{"constructor":{"prototype":{}},'),
      "INVALID_ENVELOPE",
    );
  });

  it("a result envelope submitted as a request: INVALID_ENVELOPE", async () => {
    const result = signEnvelope(
      {
        type: "result",
        from: "alice",
        to: "agent:bob",
        body: {},
        re: { id: invoke().envelope.id, hash: hashJson({}) },
        status: "ok",
      },
      alice.key,
    );
    await expectRefused(result.wire, "INVALID_ENVELOPE");
  });
});

describe("attacks on executors and /v1/connect", () => {
  it("a tool served by an agent not allowed to serve it: the hello is refused and nothing is routed there", async () => {
    const mallory = await registerAgent(fx, "mallory");
    const impostor = new RawExecutor({
      url: fx.url,
      caPath: fx.certs.caCert,
      apiKey: mallory.apiKey,
      agentId: "mallory",
      key: mallory.key,
      serves: ["database/query"],
    });
    await expect(impostor.connect()).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect((await impostor.closed).code).toBe(1008);
    expect(impostor.calls).toBe(0);
    const refusals = await fx.runtime.audit.query({ eventType: "connect_refused", limit: 10_000 });
    expect(refusals.some((e) => e.actor === "mallory" && e.code === "FORBIDDEN")).toBe(true);
  });

  it("a hello that speaks for another agent is refused", async () => {
    const spoof = new RawExecutor({
      url: fx.url,
      caPath: fx.certs.caCert,
      apiKey: alice.apiKey,
      agentId: "db-bot",
      key: alice.key,
      serves: ["database/query"],
    });
    await expect(spoof.connect()).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("a forged result from the executor: SIGNATURE_INVALID to the caller, recorded, never returned", async () => {
    await tool.close();
    const forger = await connectExecutor({
      forgeResult: (honest) => tamper(honest, (e) => (e.body = { rows: [["forged"]] })),
    });
    extra.push(forger);
    const response = await submit(invoke().wire);
    expect(response.body.error?.code).toBe("SIGNATURE_INVALID");
    expect(JSON.stringify(response.body)).not.toContain("forged");
    const failures = await fx.runtime.audit.query({ eventType: "invocation_result", limit: 10_000 });
    expect(failures.at(-1)).toMatchObject({ outcome: "failure", code: "SIGNATURE_INVALID", actor: "alice" });
    await forger.close();

    // A correctly signed result that answers some other request is refused too.
    const misbinder = await connectExecutor({
      forgeResult: (honest) => {
        const original = JSON.parse(honest) as {
          body: JsonValue;
          decision: { audit_id: string; rules: string[] };
        };
        return signEnvelope(
          {
            type: "result",
            from: "db-bot",
            to: "agent:alice",
            body: original.body,
            re: { id: invoke().envelope.id, hash: hashJson({}) },
            status: "ok",
            decision: original.decision,
          },
          dbBot.key,
        ).wire;
      },
    });
    extra.push(misbinder);
    expect((await submit(invoke().wire)).body.error?.code).toBe("SIGNATURE_INVALID");
    await misbinder.close();
    tool = await connectExecutor();
  });

  it("a frame injected on /v1/connect without authenticating: the upgrade is refused with 401", async () => {
    const socket = new WebSocket(`${fx.url.replace("https", "wss")}/v1/connect`, {
      ca: (await import("node:fs")).readFileSync(fx.certs.caCert),
    });
    const status = await new Promise<number>((resolve, reject) => {
      socket.once("unexpected-response", (request, response) => {
        request.destroy();
        resolve(response.statusCode ?? 0);
      });
      socket.once("open", () => {
        socket.send(JSON.stringify({ type: "result", call_id: "x", envelope: "{}" }));
        reject(new Error("the upgrade was accepted"));
      });
      socket.once("error", reject);
    });
    expect(status).toBe(401);
    const failures = await fx.runtime.audit.query({ eventType: "auth_failure", limit: 10_000 });
    expect(failures.length).toBeGreaterThan(0);
  });

  it("frames before hello end the connection", async () => {
    const socket = new WebSocket(`${fx.url.replace("https", "wss")}/v1/connect`, {
      ca: (await import("node:fs")).readFileSync(fx.certs.caCert),
      headers: { authorization: `Bearer ${dbBot.apiKey}` },
    });
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.once("open", () =>
      socket.send(JSON.stringify({ type: "result", call_id: "abc", envelope: "{}" })),
    );
    expect(await closed).toBe(1008);
  });
});

describe("replay protection across a restart", () => {
  it("a nonce replayed after the runtime restarts is still REPLAY_DETECTED, and the identical envelope is still a duplicate", async () => {
    const first = await startRuntime();
    try {
      const carlos = await registerAgent(first, "carlos");
      const bot = await registerAgent(first, "echo-bot", ["echo"]);
      const echo = new RawExecutor({
        url: first.url,
        caPath: first.certs.caCert,
        apiKey: bot.apiKey,
        agentId: "echo-bot",
        key: bot.key,
        serves: ["echo"],
      });
      await echo.connect();
      const request = signEnvelope(
        { type: "invoke", from: "carlos", to: "tool:echo", body: { n: 1 } },
        carlos.key,
      );
      const ok = await call(first, "POST", "/v1/envelopes", { headers: carlos.headers, body: request.wire });
      expect(ok.status).toBe(200);
      await echo.close();
      await first.runtime.stop();

      const config = loadConfig({ dataDir: first.dir, env: {} });
      const second = await createRuntime(config, { logger: pino({ level: "silent" }) });
      try {
        const url = await second.start();
        const again = { ...first, url, runtime: second };
        const replay = signEnvelope(
          { type: "invoke", from: "carlos", to: "tool:echo", body: { n: 2 }, nonce: request.envelope.nonce },
          carlos.key,
        );
        const refused = await call(again, "POST", "/v1/envelopes", {
          headers: carlos.headers,
          body: replay.wire,
        });
        expect(refused.body.error.code).toBe("REPLAY_DETECTED");
        const duplicate = await call(again, "POST", "/v1/envelopes", {
          headers: carlos.headers,
          body: request.wire,
        });
        expect(duplicate.body.receipt.duplicate).toBe(true);
        expect(echo.calls).toBe(1);
      } finally {
        await second.stop();
      }
    } finally {
      await first.close();
    }
  });
});
