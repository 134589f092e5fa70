// A stand-in for the runtime's POST /v1/envelopes and GET /v1/agents/:id, over plain HTTP on loopback.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { type ServerOptions as HttpsOptions, createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import {
  type Ed25519PrivateKey,
  type Ed25519PublicKey,
  type Receipt,
  SignetError,
  isSignetError,
  signEnvelope,
  signReceipt,
  verifyEnvelope,
} from "@signet/protocol";

export interface Answer {
  receipt: Receipt;
  result: Record<string, unknown>;
}

export interface FakeHttpRuntimeOptions {
  readonly runtimeKey: Ed25519PrivateKey;
  readonly executorId: string;
  readonly executorKey: Ed25519PrivateKey;
  readonly callers: ReadonlyMap<string, Ed25519PublicKey>;
  /** Serve HTTPS with these options instead of plain HTTP. */
  readonly tls?: HttpsOptions;
}

/** A fake runtime that verifies requests, "executes" an echo tool and answers with signed documents. */
export class FakeHttpRuntime {
  readonly server: Server;
  /** TCP connections accepted so far. */
  connections = 0;
  readonly requests: {
    method: string;
    url: string;
    headers: IncomingMessage["headers"];
    /** The verified client certificate's CN, over TLS. */
    peer?: string;
  }[] = [];
  /** How GET /v1/agents/:id answers. */
  registry: "open" | "forbidden" = "open";
  /** Keys the registry lists for the executor (defaults to the executor's real key, active). */
  registryKeys: { kid: string; public_key: string; state: string; not_after: string | null }[];
  /** Rewrites the honest answer before it is sent (to tamper, mis-bind or re-sign). */
  tamper: ((answer: Answer) => unknown) | undefined;
  /** Answers every POST with this error instead. */
  refuse: { status: number; body: unknown } | undefined;
  /** Answers the next POSTs with these, one each, before answering normally. */
  script: { status: number; body: unknown }[] = [];
  /** The raw bodies of POST /v1/envelopes, in order, and when each arrived (performance.now()). */
  readonly bodies: string[] = [];
  readonly arrivals: number[] = [];
  executions = 0;
  signals = 0;
  readonly #answers = new Map<string, { hash: string; answer: Answer }>();

  constructor(readonly options: FakeHttpRuntimeOptions) {
    this.registryKeys = [
      {
        kid: options.executorKey.kid,
        public_key: options.executorKey.publicKey.toBase64Url(),
        state: "active",
        not_after: null,
      },
    ];
    const handle = (request: IncomingMessage, response: ServerResponse) => {
      void this.#handle(request, response);
    };
    this.server = options.tls === undefined ? createServer(handle) : createHttpsServer(options.tls, handle);
    this.server.on("connection", () => {
      this.connections += 1;
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const scheme = this.options.tls === undefined ? "http" : "https";
    return `${scheme}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Signs a receipt with any key (to forge one). */
  receiptFor(answer: Answer, key: Ed25519PrivateKey): Receipt {
    const { v: _v, type: _type, kid: _kid, sig: _sig, ...fields } = answer.receipt;
    return signReceipt(fields, key);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const socket = request.socket as Partial<TLSSocket>;
    const peer =
      socket.authorized === true
        ? (socket.getPeerCertificate?.().subject?.CN as string | undefined)
        : undefined;
    this.requests.push({
      method: request.method ?? "",
      url: request.url ?? "",
      headers: request.headers,
      ...(peer === undefined ? {} : { peer }),
    });
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    const agentMatch = /^\/v1\/agents\/([a-z0-9._-]+)$/.exec(request.url ?? "");
    if (request.method === "GET" && agentMatch !== null) {
      if (this.registry === "forbidden") {
        return send(403, new SignetError("FORBIDDEN").toWire());
      }
      if (agentMatch[1] !== this.options.executorId) return send(404, new SignetError("NOT_FOUND").toWire());
      return send(200, { id: this.options.executorId, keys: this.registryKeys });
    }
    if (request.method !== "POST" || request.url !== "/v1/envelopes") {
      return send(404, new SignetError("NOT_FOUND").toWire());
    }
    this.bodies.push(text);
    this.arrivals.push(performance.now());
    const scripted = this.script.shift();
    if (scripted !== undefined) return send(scripted.status, scripted.body);
    if (this.refuse !== undefined) return send(this.refuse.status, this.refuse.body);
    try {
      const verified = verifyEnvelope(text, {
        resolveKey: (kid, sender) => {
          const key = this.options.callers.get(sender);
          return key !== undefined && key.kid === kid ? { key, owner: sender } : undefined;
        },
      });
      const request = verified.envelope;
      const stored = this.#answers.get(`${request.from}\n${request.id}`);
      let answer: Answer;
      if (stored !== undefined) {
        if (stored.hash !== verified.hash) throw new SignetError("DUPLICATE_MESSAGE");
        answer = {
          ...stored.answer,
          receipt: signReceipt(
            {
              ...this.receiptFields(stored.answer.receipt),
              duplicate: true,
            },
            this.options.runtimeKey,
          ),
        };
      } else if (request.type === "signal") {
        // A signal is delivered, not executed: the answer is a receipt alone.
        this.signals += 1;
        const now = Date.now();
        answer = {
          receipt: signReceipt(
            {
              request: { from: request.from, id: request.id, hash: verified.hash },
              audit: { request: "audit-signal" },
              rules: ["allow-signal"],
              received_at: now,
              completed_at: now,
              duplicate: false,
            },
            this.options.runtimeKey,
          ),
        } as unknown as Answer;
        this.#answers.set(`${request.from}\n${request.id}`, { hash: verified.hash, answer });
      } else {
        this.executions += 1;
        const result = signEnvelope(
          {
            type: "result",
            from: this.options.executorId,
            to: `agent:${request.from}`,
            re: { id: request.id, hash: verified.hash },
            status: "ok",
            decision: { audit_id: "audit-1", rules: ["allow-echo"] },
            body: { echo: request.body },
          },
          this.options.executorKey,
        );
        const now = Date.now();
        const receipt = signReceipt(
          {
            request: { from: request.from, id: request.id, hash: verified.hash },
            result: {
              from: this.options.executorId,
              id: result.envelope.id,
              hash: result.hash,
              status: "ok",
            },
            audit: { request: "audit-1", result: "audit-2" },
            rules: ["allow-echo"],
            received_at: now,
            completed_at: now,
            duplicate: false,
          },
          this.options.runtimeKey,
        );
        answer = { receipt, result: JSON.parse(result.wire) as Record<string, unknown> };
        this.#answers.set(`${request.from}\n${request.id}`, { hash: verified.hash, answer });
      }
      const out = this.tamper === undefined ? answer : this.tamper(structuredClone(answer));
      return send(200, out);
    } catch (error) {
      const signetError = isSignetError(error) ? error : new SignetError("INTERNAL_ERROR");
      return send(signetError.status, signetError.toWire());
    }
  }

  receiptFields(receipt: Receipt): Omit<Receipt, "v" | "type" | "kid" | "sig"> {
    const { v: _v, type: _type, kid: _kid, sig: _sig, ...fields } = receipt;
    return fields;
  }
}
