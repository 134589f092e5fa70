// A stand-in for the runtime's session routes over plain HTTP on loopback: records every request and
// connection, and answers POST /v1/sessions/messages with a plausible session (or a scripted answer).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Envelope } from "@signet/protocol";

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
}

export interface ScriptedAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** A session view as the runtime would show it after `envelope`. */
export function sessionViewFor(envelope: Envelope, count: number): Record<string, unknown> {
  const body = envelope.body as Record<string, unknown>;
  const now = Date.now();
  return {
    id: envelope.session,
    mode: envelope.type === "session.start" ? body.mode : "decision",
    initiator: "alice",
    participants: ["alice", "bob", "carol"],
    status: "OPEN",
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + 3_600_000).toISOString(),
    message_count: count,
    history_hash: `sha256:${"1".repeat(64)}`,
    start_hash: `sha256:${"2".repeat(64)}`,
    config: {},
    state: {},
  };
}

export class FakeSessionsRuntime {
  readonly server: Server;
  readonly requests: RecordedRequest[] = [];
  /** TCP connections accepted so far: zero proves nothing left the process. */
  connections = 0;
  /** Answers the next requests with these, one each, before answering normally. */
  readonly script: ScriptedAnswer[] = [];
  /** Computes the answer to a POST instead of the default one (after the script). */
  answer: ((envelope: Envelope, request: RecordedRequest) => ScriptedAnswer) | undefined;

  constructor() {
    this.server = createServer((request, response) => void this.#handle(request, response));
    this.server.on("connection", () => {
      this.connections += 1;
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

  /** The envelopes POSTed to /v1/sessions/messages, parsed. */
  get envelopes(): Envelope[] {
    return this.requests
      .filter((request) => request.method === "POST" && request.url === "/v1/sessions/messages")
      .map((request) => JSON.parse(request.body) as Envelope);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const recorded: RecordedRequest = {
      method: request.method ?? "",
      url: request.url ?? "",
      headers: request.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    };
    this.requests.push(recorded);
    const send = ({ status, body }: ScriptedAnswer): void => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    const scripted = this.script.shift();
    if (scripted !== undefined) return send(scripted);
    if (recorded.method === "POST" && recorded.url === "/v1/sessions/messages") {
      const envelope = JSON.parse(recorded.body) as Envelope;
      if (this.answer !== undefined) return send(this.answer(envelope, recorded));
      // Every message of the session so far, this one included; the start is not counted.
      const messages = this.envelopes.filter(
        (sent) => sent.session === envelope.session && sent.type !== "session.start",
      ).length;
      const counted = envelope.type !== "session.start" && envelope.type !== "session.cancel";
      return send({
        status: 200,
        body: { session: sessionViewFor(envelope, messages), ...(counted ? { seq: messages - 1 } : {}) },
      });
    }
    send({ status: 404, body: { error: { code: "NOT_FOUND", message: "Not found", retryable: false } } });
  }
}
