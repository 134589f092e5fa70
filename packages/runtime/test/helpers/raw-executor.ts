// A hand-driven executor for tests: a real WebSocket client of /v1/connect that can also misbehave.
import { readFileSync } from "node:fs";
import {
  type Delivery,
  Ed25519PublicKey,
  type Ed25519PrivateKey,
  type ErrorCode,
  type JsonValue,
  type ServerFrame,
  type WelcomeFrame,
  parseServerFrame,
  signEnvelope,
  verifyDelivery,
  verifyEnvelope,
} from "@signet/protocol";
import WebSocket from "ws";

export interface RawExecutorOptions {
  /** The runtime's https:// (or http://) base URL. */
  readonly url: string;
  readonly caPath?: string;
  readonly apiKey?: string;
  readonly headers?: Record<string, string>;
  readonly agentId: string;
  readonly key: Ed25519PrivateKey;
  readonly serves: readonly string[];
  /** Capabilities to declare in hello (`capability:NAME` targets). */
  readonly capabilities?: readonly string[];
  readonly maxInFlight?: number;
  /** The tool's work. Defaults to echoing the body. */
  readonly handler?: (body: JsonValue, delivery: Delivery) => JsonValue | Promise<JsonValue>;
  /** Replaces the honest result wire text (to forge or mis-bind results). */
  readonly forgeResult?: (honest: string, delivery: Delivery) => string;
  /** Answer nothing (to test timeouts). */
  readonly silent?: boolean;
  /** Refuse every call with this error frame instead of running it. */
  readonly refuse?: { readonly code: ErrorCode; readonly message: string };
}

/** A connected test executor; `calls` counts handler runs, `frames` keeps every frame received. */
export class RawExecutor {
  calls = 0;
  readonly frames: ServerFrame[] = [];
  welcome: WelcomeFrame | undefined;
  private socket: WebSocket | undefined;
  closed: Promise<{ code: number; reason: string }> = Promise.resolve({ code: 0, reason: "" });

  constructor(private readonly options: RawExecutorOptions) {}

  /** Opens the socket and says hello; resolves with the welcome or rejects with the error frame / close. */
  connect(): Promise<WelcomeFrame> {
    const { options } = this;
    const wsUrl = `${options.url.replace(/^http/, "ws")}/v1/connect`;
    const socket = new WebSocket(wsUrl, {
      ...(options.caPath === undefined ? {} : { ca: readFileSync(options.caPath) }),
      headers: {
        ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
        ...options.headers,
      },
    });
    this.socket = socket;
    this.closed = new Promise((resolve) =>
      socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    return new Promise<WelcomeFrame>((resolve, reject) => {
      socket.once("unexpected-response", (request, response) => {
        request.destroy();
        reject(new Error(`upgrade refused: ${response.statusCode ?? 0}`));
      });
      socket.once("error", reject);
      socket.once("open", () => {
        socket.send(
          JSON.stringify({
            type: "hello",
            agent: options.agentId,
            serves: options.serves,
            ...(options.capabilities === undefined ? {} : { capabilities: options.capabilities }),
            ...(options.maxInFlight === undefined ? {} : { max_in_flight: options.maxInFlight }),
          }),
        );
      });
      socket.on("message", (data) => {
        const frame = parseServerFrame(data as Buffer);
        this.frames.push(frame);
        if (frame.type === "welcome") {
          this.welcome = frame;
          resolve(frame);
        } else if (frame.type === "error" && this.welcome === undefined) {
          reject(Object.assign(new Error(frame.error.message), { code: frame.error.code }));
        } else if (frame.type === "invoke") {
          void this.handle(frame.envelope, frame.delivery);
        } else if (frame.type === "ping") {
          socket.send(JSON.stringify({ type: "pong", ts: frame.ts }));
        }
      });
      socket.once("close", () => reject(new Error("closed before welcome")));
    });
  }

  /** Sends any text on the socket (to inject frames). */
  sendRaw(text: string): void {
    this.socket?.send(text);
  }

  private async handle(envelope: string, delivery: Delivery): Promise<void> {
    const { options } = this;
    // Verify like a zero-trust executor would: the runtime's delivery, then the caller's envelope.
    verifyDelivery(delivery, Ed25519PublicKey.fromBase64Url(this.welcome!.runtime_public_key));
    const senderKey = Ed25519PublicKey.fromBase64Url(delivery.sender_key.public_key);
    const request = verifyEnvelope(envelope, {
      resolveKey: (kid, sender) => (kid === senderKey.kid ? { key: senderKey, owner: sender } : undefined),
    });
    if (request.hash !== delivery.envelope_hash) throw new Error("the delivery names another envelope");
    if (options.silent === true) return;
    if (options.refuse !== undefined) {
      this.socket?.send(JSON.stringify({ type: "error", call_id: delivery.call_id, error: options.refuse }));
      return;
    }
    this.calls++;
    const body =
      options.handler === undefined
        ? request.envelope.body
        : await options.handler(request.envelope.body, delivery);
    const honest = signEnvelope(
      {
        type: "result",
        from: options.agentId,
        to: `agent:${request.envelope.from}`,
        body,
        re: { id: request.envelope.id, hash: request.hash },
        status: "ok",
        decision: { audit_id: delivery.decision.audit_id, rules: delivery.decision.rules },
      },
      options.key,
    ).wire;
    const wire = options.forgeResult === undefined ? honest : options.forgeResult(honest, delivery);
    this.socket?.send(JSON.stringify({ type: "result", call_id: delivery.call_id, envelope: wire }));
  }

  async close(): Promise<void> {
    if (this.socket !== undefined && this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close();
      await this.closed;
    }
  }
}
