// A TLS-terminating proxy in front of a real runtime: it relays HTTP and /v1/connect, counts what it
// sees, and lets a test play the attacker on the path (tamper, drop, inject) or a flaky network.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type Server, createServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createCertificateAuthority, issueCertificate } from "@signet/runtime";
import { Agent as Dispatcher, request } from "undici";
import WebSocket, { WebSocketServer } from "ws";

/** What a hook may do with an upstream response: pass it (undefined), replace its body, or drop the connection. */
export type ResponseAction = undefined | { readonly body: Buffer } | "drop";

export interface ProxiedRequest {
  readonly method: string;
  readonly url: string;
  readonly body: Buffer;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
]);

function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(name) || value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** A WebSocket message as text (frames are JSON text). */
function text(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString("utf8");
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  return Buffer.from(data).toString("utf8");
}

/** One relayed /v1/connect connection: the agent's side and the runtime's side. */
interface Pair {
  readonly agent: WebSocket;
  readonly upstream: WebSocket;
}

export class InterceptingProxy {
  /** The proxy's own CA: clients behind the proxy trust it instead of the runtime's. */
  readonly ca: string;
  /** TLS connections accepted. */
  connections = 0;
  /** HTTP requests relayed (WebSocket upgrades included). */
  readonly requests: ProxiedRequest[] = [];
  /** Frames the agent sent towards the runtime, as text. */
  readonly agentFrames: string[] = [];
  /** Frames the runtime sent towards the agent, as text. */
  readonly runtimeFrames: string[] = [];
  /** Decides what happens to each upstream HTTP response. */
  onResponse: ((request: ProxiedRequest, status: number, body: Buffer) => ResponseAction) | undefined;
  readonly #server: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #upstream: Dispatcher;
  readonly #pairs = new Set<Pair>();
  readonly #sockets = new Set<Socket>();
  #url = "";

  constructor(
    private readonly upstreamUrl: string,
    private readonly upstreamCa: string,
  ) {
    const authority = createCertificateAuthority({ commonName: "Intercepting proxy CA" });
    const leaf = issueCertificate({
      issuer: authority,
      commonName: "127.0.0.1",
      extendedKeyUsage: ["serverAuth"],
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
    });
    this.ca = authority.certPem;
    this.#upstream = new Dispatcher({ connect: { ca: upstreamCa } });
    this.#server = createServer(
      { key: leaf.keyPem, cert: leaf.certPem, minVersion: "TLSv1.2" },
      (req, res) => {
        void this.#relay(req, res);
      },
    );
    this.#server.on("secureConnection", (socket: Socket) => {
      this.connections += 1;
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    this.#server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#upgrade(req, socket, head);
    });
  }

  get url(): string {
    return this.#url;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.#url = `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.#url;
  }

  async stop(): Promise<void> {
    this.dropWebSockets();
    for (const socket of this.#sockets) socket.destroy();
    this.#wss.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#upstream.close().catch(() => undefined);
  }

  /** Sends a frame to every connected agent, as if the runtime had sent it. */
  injectToAgent(frame: unknown): void {
    const text = typeof frame === "string" ? frame : JSON.stringify(frame);
    for (const pair of this.#pairs) if (pair.agent.readyState === WebSocket.OPEN) pair.agent.send(text);
  }

  /** Cuts every relayed /v1/connect connection at once, both sides, without a close handshake. */
  dropWebSockets(): void {
    for (const pair of this.#pairs) {
      pair.agent.terminate();
      pair.upstream.terminate();
    }
    this.#pairs.clear();
  }

  /** How many /v1/connect connections are relayed right now. */
  get webSocketCount(): number {
    return this.#pairs.size;
  }

  async #relay(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const seen: ProxiedRequest = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      body: Buffer.concat(chunks),
    };
    this.requests.push(seen);
    try {
      const upstream = await request(`${this.upstreamUrl}${seen.url}`, {
        method: seen.method as "GET" | "POST",
        headers: forwardable(req.headers),
        ...(seen.body.length === 0 ? {} : { body: seen.body }),
        dispatcher: this.#upstream,
      });
      const body = Buffer.from(await upstream.body.arrayBuffer());
      const action = this.onResponse?.(seen, upstream.statusCode, body);
      if (action === "drop") {
        // The runtime answered, but the answer never reaches the client.
        req.socket.destroy();
        return;
      }
      const out = action?.body ?? body;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (!HOP_BY_HOP.has(name) && value !== undefined) {
          headers[name] = Array.isArray(value) ? value.join(", ") : value;
        }
      }
      headers["content-length"] = String(out.length);
      res.writeHead(upstream.statusCode, headers);
      res.end(out);
    } catch {
      req.socket.destroy();
    }
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.requests.push({ method: "GET", url: req.url ?? "/", body: Buffer.alloc(0) });
    const upstreamUrl = `${this.upstreamUrl.replace(/^http/, "ws")}${req.url ?? "/"}`;
    const upstream = new WebSocket(upstreamUrl, {
      ca: this.upstreamCa,
      headers: forwardable(req.headers),
      perMessageDeflate: false,
    });
    const early: WebSocket.RawData[] = [];
    const collectEarly = (data: WebSocket.RawData) => early.push(data);
    upstream.on("message", collectEarly);
    upstream.once("unexpected-response", (_request, response: IncomingMessage) => {
      // The runtime refused the upgrade: hand its answer to the agent as it is.
      const parts: Buffer[] = [];
      response.on("data", (chunk: Buffer) => parts.push(chunk));
      response.on("end", () => {
        const body = Buffer.concat(parts);
        socket.end(
          `HTTP/1.1 ${response.statusCode ?? 502} Refused\r\ncontent-type: application/json\r\n` +
            `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body.toString("utf8")}`,
        );
      });
    });
    upstream.once("error", () => socket.destroy());
    upstream.once("open", () => {
      this.#wss.handleUpgrade(req, socket, head, (agent) => {
        const pair = { agent, upstream };
        this.#pairs.add(pair);
        upstream.off("message", collectEarly);
        const toAgent = (data: WebSocket.RawData) => {
          const frame = text(data);
          this.runtimeFrames.push(frame);
          if (agent.readyState === WebSocket.OPEN) agent.send(frame);
        };
        for (const data of early) toAgent(data);
        upstream.on("message", toAgent);
        agent.on("message", (data) => {
          const frame = text(data);
          this.agentFrames.push(frame);
          if (upstream.readyState === WebSocket.OPEN) upstream.send(frame);
        });
        const closeBoth = () => {
          this.#pairs.delete(pair);
          agent.terminate();
          upstream.terminate();
        };
        agent.once("close", closeBoth);
        upstream.once("close", closeBoth);
        agent.on("error", closeBoth);
        upstream.on("error", closeBoth);
      });
    });
  }
}
