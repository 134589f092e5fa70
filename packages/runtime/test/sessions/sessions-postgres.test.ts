// Sessions on a real PostgreSQL shared by two runtime instances (and Redis for registry changes):
// messages to one session through both instances at once are accepted in one total order, a watcher
// on one instance sees what the other accepted with no gap or duplicate, and sessions survive an
// instance's restart.
import { randomUUID } from "node:crypto";
import { Ed25519PrivateKey, type JsonValue, signEnvelope } from "@signet/protocol";
import { pino } from "pino";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load-config.js";
import { createRuntime } from "../../src/runtime.js";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { type PostgresServer, startPostgres } from "../helpers/postgres-server.js";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";
import { until } from "../helpers/until.js";

let postgres: PostgresServer;
let redis: RedisServer;
let a: RuntimeFixture;
let b: RuntimeFixture;
const agents: Record<string, TestAgent> = {};

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres({ database: "sessions" }), startRedisServer()]);
  const runtimeKeyPem = Ed25519PrivateKey.generate().toPem();
  const yaml = `redis:\n  url: ${redis.url}\nsessions:\n  watch_poll_ms: 50\n`;
  a = await startRuntime({ databaseUrl: postgres.url, runtimeKeyPem, yaml });
  b = await startRuntime({ databaseUrl: postgres.url, runtimeKeyPem, yaml });
  for (const id of ["alice", "bob", "carol"]) agents[id] = await registerAgent(a, id);
  await until(
    () => ["alice", "bob", "carol"].every((id) => b.runtime.registry.hasAgent(id)),
    "B to learn the agents",
  );
}, 90_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await Promise.all([postgres?.stop(), redis?.stop()]);
});

function post(
  fx: RuntimeFixture,
  from: string,
  session: string,
  verb: string,
  body: Record<string, JsonValue>,
) {
  const agent = agents[from]!;
  const signed = signEnvelope(
    { type: `session.${verb}`, from, to: `session:${session}`, session, body },
    agent.key,
  );
  return call(fx, "POST", "/v1/sessions/messages", { headers: agent.headers, body: signed.wire });
}

const admin = (fx: RuntimeFixture): Record<string, string> => ({ authorization: `Bearer ${fx.adminKey}` });

describe("sessions on PostgreSQL with two instances", () => {
  it("accepts concurrent messages to one session through both instances in one total order", async () => {
    const id = randomUUID();
    const started = await post(a, "alice", id, "start", { mode: "decision", participants: ["bob", "carol"] });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect((await post(b, "alice", id, "propose", { proposal_id: "p1" })).status).toBe(200);

    // 24 evaluations at once, alternating instances and senders.
    const sent = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        post(i % 2 === 0 ? a : b, i % 3 === 0 ? "carol" : "bob", id, "evaluate", {
          proposal_id: "p1",
          recommendation: "REVIEW",
          confidence: i / 24,
        }),
      ),
    );
    for (const response of sent) expect(response.status, JSON.stringify(response.body)).toBe(200);
    const seqs = sent.map((response) => response.body.seq as number).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));

    for (const fx of [a, b]) {
      const messages = await call(fx, "GET", `/v1/sessions/${id}/messages`, { headers: admin(fx) });
      expect((messages.body.messages as { seq: number }[]).map((m) => m.seq)).toEqual(
        Array.from({ length: 25 }, (_, i) => i),
      );
      const view = await call(fx, "GET", `/v1/sessions/${id}`, { headers: admin(fx) });
      expect(view.body.session.message_count).toBe(25);
    }
  });

  it("shows a watcher on B what A accepted, in order, without gaps or duplicates", async () => {
    const controller = new AbortController();
    const response = await request(`${b.url}/v1/sessions/watch`, {
      headers: admin(b),
      dispatcher: b.client(),
      signal: controller.signal,
    });
    expect(response.statusCode).toBe(200);
    const seen: { id: number; session_id: string; type: string }[] = [];
    const reading = (async () => {
      let buffer = "";
      try {
        for await (const chunk of response.body) {
          buffer += (chunk as Buffer).toString("utf8");
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const data = buffer
              .slice(0, end)
              .split("\n")
              .find((line) => line.startsWith("data: "));
            buffer = buffer.slice(end + 2);
            if (data !== undefined) seen.push(JSON.parse(data.slice(6)));
          }
        }
      } catch {
        // Aborted.
      }
    })();

    const ids: string[] = Array.from({ length: 6 }, () => randomUUID());
    await Promise.all(
      ids.map(async (id, i) => {
        const fx = i % 2 === 0 ? a : b;
        expect(
          (
            await post(fx, "alice", id, "start", {
              mode: "quorum",
              participants: ["bob", "carol"],
              config: { k: 2 },
            })
          ).status,
        ).toBe(200);
        expect((await post(a, "bob", id, "approve", {})).status).toBe(200);
        expect((await post(b, "carol", id, "approve", {})).status).toBe(200);
      }),
    );
    // Per session: CREATED, two MESSAGE_ACCEPTED, RESOLVED.
    await until(
      () => seen.filter((event) => ids.includes(event.session_id)).length >= 24,
      "24 events on B",
      10_000,
    );
    controller.abort();
    await reading;
    const eventIds = seen.map((event) => event.id);
    expect(new Set(eventIds).size).toBe(eventIds.length);
    expect([...eventIds].sort((x, y) => x - y)).toEqual(eventIds);
    // Nothing the log holds after the stream's start is missing from it.
    const logged = await b.runtime.stores.sessions.events(eventIds[0]! - 1, 1000);
    expect(logged.map((event) => event.id).filter((id) => id <= eventIds.at(-1)!)).toEqual(eventIds);
    for (const id of ids) {
      expect(seen.filter((event) => event.session_id === id).map((event) => event.type)).toEqual([
        "CREATED",
        "MESSAGE_ACCEPTED",
        "MESSAGE_ACCEPTED",
        "RESOLVED",
      ]);
    }
  });

  it("keeps an open session across a restart of the instance that started it", async () => {
    const id = randomUUID();
    expect((await post(a, "alice", id, "start", { mode: "task", participants: ["bob"] })).status).toBe(200);
    expect(
      (
        await post(a, "alice", id, "assign", {
          task_id: "t1",
          assignee: "bob",
          description: "index the docs",
        })
      ).status,
    ).toBe(200);
    await a.runtime.stop();
    const restarted = await createRuntime(loadConfig({ dataDir: a.dir, env: {} }), {
      logger: pino({ level: "silent" }),
    });
    try {
      const url = await restarted.start();
      const bob = agents.bob!;
      const accept = signEnvelope(
        { type: "session.accept", from: "bob", to: `session:${id}`, session: id, body: {} },
        bob.key,
      );
      const accepted = await request(`${url}/v1/sessions/messages`, {
        method: "POST",
        headers: { ...bob.headers, "content-type": "application/json" },
        body: accept.wire,
        dispatcher: a.client(),
      });
      expect(accepted.statusCode).toBe(200);
      expect(((await accepted.body.json()) as { seq: number }).seq).toBe(1);
      const view = await call(b, "GET", `/v1/sessions/${id}`, { headers: admin(b) });
      expect(view.body.session).toMatchObject({
        status: "OPEN",
        message_count: 2,
        state: { phase: "accepted" },
      });
    } finally {
      await restarted.stop();
    }
  });
});
