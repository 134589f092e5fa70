// A stand-in for the runtime's /v1/connect: a real ws server on loopback that signs deliveries.
import type { IncomingMessage } from "node:http";
import { type Server as HttpsServer, type ServerOptions as HttpsOptions, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  type ClientFrame,
  type ContentHash,
  type Delivery,
  type Ed25519PrivateKey,
  type EnvelopeHeader,
  type ServerFrame,
  envelopeHash,
  parseClientFrame,
  parseStrictJson,
  serializeFrame,
  signDelivery,
} from "@signet/protocol";
import { type WebSocket, WebSocketServer } from "ws";

export interface FakeConnectOptions {
  readonly runtimeKey: Ed25519PrivateKey;
  /** The key announced in `welcome` (default: the runtime key's public half). */
  readonly announcedKey?: Ed25519PrivateKey;
  /** Refuse the upgrade with this status. */
  readonly refuseUpgrade?: number;
  /** Answer hello with this instead of welcome. */
  readonly helloAnswer?: ServerFrame;
  /** Serve wss:// with these options instead of plain ws://. */
  readonly tls?: HttpsOptions;
}

/** A fake runtime: accepts one agent, welcomes it, and lets a test deliver calls and read answers. */
export class FakeConnectRuntime {
  readonly server: WebSocketServer;
  socket: WebSocket | undefined;
  upgradeHeaders: IncomingMessage["headers"] | undefined;
  /** The verified client certificate's CN on the upgrade, over TLS. */
  upgradePeer: string | undefined;
  readonly #https: HttpsServer | undefined;
  hello: ClientFrame | undefined;
  readonly frames: ClientFrame[] = [];
  #waiters: { test: (frame: ClientFrame) => boolean; resolve: (frame: ClientFrame) => void }[] = [];
  #callCounter = 0;
  connections = 0;

  constructor(readonly options: FakeConnectOptions) {
    this.#https = options.tls === undefined ? undefined : createServer(options.tls);
    this.server = new WebSocketServer({
      ...(this.#https === undefined ? { host: "127.0.0.1", port: 0 } : { server: this.#https }),
      verifyClient: (info, done) => {
        this.upgradeHeaders = info.req.headers;
        const socket = info.req.socket as Partial<TLSSocket>;
        if (socket.authorized === true) {
          this.upgradePeer = socket.getPeerCertificate?.().subject?.CN as string | undefined;
        }
        if (options.refuseUpgrade !== undefined) done(false, options.refuseUpgrade);
        else done(true);
      },
    });
    this.server.on("connection", (socket) => {
      this.connections += 1;
      this.socket = socket;
      socket.on("message", (data) => {
        const frame = parseClientFrame(data as Buffer);
        if (frame.type === "hello") {
          this.hello = frame;
          const announced = (options.announcedKey ?? options.runtimeKey).publicKey;
          socket.send(
            serializeFrame(
              options.helloAnswer ?? {
                type: "welcome",
                connection_id: "conn-1",
                serves: frame.serves,
                max_in_flight: frame.max_in_flight ?? 16,
                runtime_kid: announced.kid,
                runtime_public_key: announced.toBase64Url(),
                heartbeat_ms: 15_000,
              },
            ),
          );
          return;
        }
        this.frames.push(frame);
        this.#waiters = this.#waiters.filter((waiter) => {
          if (!waiter.test(frame)) return true;
          waiter.resolve(frame);
          return false;
        });
      });
    });
  }

  async start(): Promise<string> {
    const https = this.#https;
    if (https !== undefined) {
      await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
      return `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    }
    await new Promise<void>((resolve) => {
      if (this.server.address() !== null) resolve();
      else this.server.once("listening", resolve);
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    const https = this.#https;
    if (https !== undefined) {
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    }
  }

  /** Waits for the next frame that matches. */
  next(test: (frame: ClientFrame) => boolean): Promise<ClientFrame> {
    const seen = this.frames.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  /** The answer (result or error frame) to one call. */
  answer(callId: string): Promise<ClientFrame> {
    return this.next(
      (frame) => (frame.type === "result" || frame.type === "error") && frame.call_id === callId,
    );
  }

  /** Signs and sends a delivery; `fields` overrides any member, `signer` the runtime key. */
  deliver(
    input: Partial<Omit<Delivery, "kid" | "sig">> & Pick<Delivery, "sender_key"> & { envelope: string },
    signer: Ed25519PrivateKey = this.options.runtimeKey,
  ): string {
    this.#callCounter += 1;
    const { envelope, ...fields } = input;
    const callId = fields.call_id ?? `call-${this.#callCounter}`;
    const delivery = signDelivery(
      {
        call_id: callId,
        envelope_hash: envelopeHashOf(envelope),
        decision: { audit_id: `audit-${this.#callCounter}`, rules: ["allow-echo"] },
        deadline: Date.now() + 10_000,
        ...fields,
      },
      signer,
    );
    this.send({ type: "invoke", envelope, delivery });
    return callId;
  }

  send(frame: ServerFrame): void {
    this.socket!.send(serializeFrame(frame));
  }
}

/** The envelope hash a runtime would name in its delivery; a placeholder for text that is not an envelope. */
export function envelopeHashOf(wire: string): ContentHash {
  try {
    return envelopeHash(parseStrictJson(wire) as unknown as EnvelopeHeader);
  } catch {
    return `sha256:${"0".repeat(64)}`;
  }
}
