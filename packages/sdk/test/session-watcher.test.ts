// SessionLifecycleWatcher against a local SSE server that drops connections mid-stream: it resumes
// with the right Last-Event-ID and yields every event exactly once, in order.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Ed25519PrivateKey } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthConfig,
  DecisionSession,
  ForbiddenError,
  InvalidSessionIdError,
  SdkError,
  type SessionEvent,
  SessionLifecycleWatcher,
  type SessionWatchOptions,
  SignetClient,
} from "@signet/sdk";
import { waitFor } from "./helpers/wait.js";

const SESSION = "0d6f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";

/** One SSE frame as the runtime writes it. */
function frame(id: number, type = "MESSAGE_ACCEPTED", newline = "\n"): string {
  const data = JSON.stringify({
    id,
    session_id: SESSION,
    type,
    at: new Date(1_700_000_000_000 + id).toISOString(),
    data: { seq: id },
  });
  return [`id: ${id}`, `event: ${type}`, `data: ${data}`, "", ""].join(newline);
}

interface Connection {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** Resolves when the client has gone away. */
  readonly closed: Promise<void>;
}

/** An SSE server whose test decides, connection by connection, what each one gets. */
class ScriptedSseServer {
  readonly server: Server;
  readonly connections: Connection[] = [];
  /** Called for connection number `index` (0 first); the default keeps it open and silent. */
  handler: (connection: Connection, index: number) => void = () => undefined;

  constructor() {
    this.server = createServer((request, response) => {
      const closed = new Promise<void>((resolve) => response.on("close", () => resolve()));
      const connection = { request, response, closed };
      this.connections.push(connection);
      this.handler(connection, this.connections.length - 1);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  lastEventIds(): (string | undefined)[] {
    return this.connections.map(({ request }) => request.headers["last-event-id"] as string | undefined);
  }
}

function openStream(response: ServerResponse, preamble = ": watching after 0\nretry: 1000\n\n"): void {
  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
  });
  response.write(preamble);
}

async function collect(watcher: SessionLifecycleWatcher, count: number): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of watcher) {
    events.push(event);
    if (events.length === count) break;
  }
  return events;
}

describe("SessionLifecycleWatcher", () => {
  let sse: ScriptedSseServer;
  let client: SignetClient;

  beforeEach(async () => {
    sse = new ScriptedSseServer();
    const url = await sse.start();
    client = new SignetClient({
      target: url,
      allowInsecure: true,
      auth: AuthConfig.forBearer("tok-alice", { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: Ed25519PrivateKey.generate(),
    });
  });
  afterEach(async () => {
    await client.close();
    await sse.stop();
  });

  function watcher(options: SessionWatchOptions = {}): SessionLifecycleWatcher {
    return new SessionLifecycleWatcher(client, {
      sessionId: SESSION,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20, jitter: 0 },
      ...options,
    });
  }

  it("resumes after a dropped connection from the last event yielded, with no duplicate and no gap", async () => {
    sse.handler = ({ request, response }, index) => {
      if (index === 0) {
        openStream(response);
        response.write(frame(1));
        response.write(frame(2, "MESSAGE_ACCEPTED", "\r\n").slice(0, 17)); // cut inside an event...
        response.write(frame(2, "MESSAGE_ACCEPTED", "\r\n").slice(17) + ": ping\n\n" + frame(3));
        response.write(frame(4).slice(0, 40)); // ...and a half-sent event when the connection drops
        setTimeout(() => request.socket.destroy(), 20);
      } else if (index === 1) {
        openStream(response);
        // A runtime resending what the client already has is ignored, not yielded again.
        response.end(frame(2) + frame(3) + frame(4) + frame(5));
      } else {
        openStream(response);
        response.write(frame(6, "RESOLVED"));
      }
    };
    const watch = watcher();
    const events = await collect(watch, 6);
    expect(events.map((event) => event.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.at(-1)).toMatchObject({ id: 6, session_id: SESSION, type: "RESOLVED", data: { seq: 6 } });
    expect(sse.lastEventIds()).toEqual([undefined, "3", "5"]);
    expect(sse.connections.map(({ request }) => request.url)).toEqual(
      Array(3).fill(`/v1/sessions/watch?session=${SESSION}`),
    );
    const headers = sse.connections[0]!.request.headers;
    expect(headers.accept).toBe("text/event-stream");
    expect(headers.authorization).toBe("Bearer tok-alice");
    expect(watch.lastEventId).toBe(6);
    // Leaving the loop closes the watcher and its connection.
    expect(watch.closed).toBe(true);
    await sse.connections[2]!.closed;
  });

  it("starts from the caller's cursor and adopts a resume point the runtime names with a bare id", async () => {
    sse.handler = ({ request, response }, index) => {
      openStream(response, index === 0 ? "id: 41\n\n" : ": hi\n\n");
      if (index === 0) setTimeout(() => request.socket.destroy(), 20);
      else response.write(frame(42));
    };
    const watch = watcher({ lastEventId: 7 });
    const [event] = await collect(watch, 1);
    expect(event!.id).toBe(42);
    expect(sse.lastEventIds()).toEqual(["7", "41"]);
  });

  it("reopens a connection that goes silent past the idle timeout", async () => {
    sse.handler = ({ response }, index) => {
      openStream(response);
      response.write(frame(index + 1)); // then nothing, not even a heartbeat
    };
    const events = await collect(watcher({ idleTimeoutMs: 150 }), 2);
    expect(events.map((event) => event.id)).toEqual([1, 2]);
    expect(sse.lastEventIds()).toEqual([undefined, "1"]);
  });

  it("waits out retryable refusals and keeps reconnecting", async () => {
    sse.handler = ({ response }, index) => {
      if (index < 3) {
        const code = index === 1 ? "RATE_LIMITED" : "UNAVAILABLE";
        response.writeHead(index === 1 ? 429 : 503, { "content-type": "application/json" });
        response.end(
          JSON.stringify({ error: { code, message: "later", retryable: true, retry_after_ms: 10 } }),
        );
        return;
      }
      openStream(response);
      response.write(frame(9));
    };
    const [event] = await collect(watcher({ lastEventId: 8 }), 1);
    expect(event!.id).toBe(9);
    expect(sse.connections).toHaveLength(4);
    expect(sse.lastEventIds()).toEqual(["8", "8", "8", "8"]);
  });

  it("ends with the typed error on a permanent refusal, without retrying", async () => {
    sse.handler = ({ response }) => {
      response.writeHead(403, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ error: { code: "FORBIDDEN", message: "needs session:watch", retryable: false } }),
      );
    };
    const watch = watcher();
    await expect(collect(watch, 1)).rejects.toBeInstanceOf(ForbiddenError);
    expect(sse.connections).toHaveLength(1);
    expect(watch.closed).toBe(true);
  });

  it("refuses an answer that is not an event stream, and a malformed event", async () => {
    sse.handler = ({ response }) => {
      response.writeHead(200, { "content-type": "text/html" });
      response.end("<html>captive portal</html>");
    };
    const notStream = await collect(watcher(), 1).catch((error: unknown) => error);
    expect((notStream as SdkError).reason).toBe("bad_response");

    sse.handler = ({ response }) => {
      openStream(response);
      response.write("id: 5\ndata: {not json\n\n");
    };
    const malformed = await collect(watcher(), 1).catch((error: unknown) => error);
    expect((malformed as SdkError).reason).toBe("bad_event");

    sse.handler = ({ response }) => {
      openStream(response);
      response.write(frame(6).replace("id: 6", "id: 60")); // the stream's id and the event's disagree
    };
    const mismatched = await collect(watcher(), 1).catch((error: unknown) => error);
    expect((mismatched as SdkError).reason).toBe("bad_event");
  });

  it("ends quietly on close(), even while waiting for the network", async () => {
    sse.handler = ({ response }) => openStream(response);
    const watch = watcher();
    const pending = collect(watch, 1);
    await waitFor(() => sse.connections.length === 1, "the connection");
    watch.close();
    expect(await pending).toEqual([]);
    await sse.connections[0]!.closed;
    expect(watch.closed).toBe(true);
  });

  it("throws aborted when the caller's signal aborts", async () => {
    sse.handler = ({ response }) => openStream(response);
    const controller = new AbortController();
    const pending = collect(watcher({ signal: controller.signal }), 1).catch((error: unknown) => error);
    await waitFor(() => sse.connections.length === 1, "the connection");
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("aborted");
  });

  it("ends with reason closed when its client is closed, without holding the close up", async () => {
    sse.handler = ({ response }) => openStream(response);
    const pending = collect(watcher(), 1).catch((error: unknown) => error);
    await waitFor(() => sse.connections.length === 1, "the connection");
    await client.close();
    const error = await pending;
    expect(error).toBeInstanceOf(SdkError);
    expect((error as SdkError).reason).toBe("closed");
    await sse.connections[0]!.closed;
  });

  it("has one consumer, and validates its options", () => {
    const watch = watcher();
    watch[Symbol.asyncIterator]();
    expect(() => watch[Symbol.asyncIterator]()).toThrow(SdkError);
    watch.close();
    const bad: SessionWatchOptions[] = [
      { lastEventId: -1 },
      { lastEventId: 1.5 },
      { reconnect: { initialDelayMs: 0 } },
      { reconnect: { initialDelayMs: 100, maxDelayMs: 50 } },
      { reconnect: { jitter: 2 } },
      { idleTimeoutMs: 0 },
    ];
    for (const options of bad) expect(() => watcher(options)).toThrow(SdkError);
    expect(() => watcher({ sessionId: "nope" })).toThrow(InvalidSessionIdError);
  });

  it("is what a session's watch() returns, for that session", async () => {
    sse.handler = ({ response }) => {
      openStream(response);
      response.write(frame(1, "CREATED"));
    };
    const session = new DecisionSession(client, { id: SESSION });
    const [event] = await collect(session.watch({ lastEventId: 0 }), 1);
    expect(event!.type).toBe("CREATED");
    expect(sse.connections[0]!.request.url).toBe(`/v1/sessions/watch?session=${SESSION}`);
    expect(sse.lastEventIds()).toEqual(["0"]);
  });
});
