// The bench's executor: one WebSocket connection serving one tool, answering every call with its body.
// Forked by the pipeline bench; `connect` opens the connection, `stats` reports, `close` closes.
//
// Against the runtime ("signet" mode) it does what a zero-trust executor does: hello, then for each
// delivery verify the runtime's signature and the caller's envelope, and answer with a signed result
// echoing the body. Against the echo relay ("echo" mode) the same socket echoes every frame as it is.
import { readFileSync } from "node:fs";
import {
  type Delivery,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  type ServerFrame,
  fromBase64Url,
  parseServerFrame,
  signEnvelope,
  verifyDelivery,
  verifyEnvelope,
} from "@signet/protocol";
import WebSocket from "ws";
import { announce, ownStats, serveCommands } from "./ipc.js";

export interface ExecutorConnectArgs {
  readonly mode: "signet" | "echo";
  readonly url: string;
  readonly caPath: string;
  readonly agentId: string;
  readonly apiKey: string;
  readonly seed: string;
  readonly tool: string;
  readonly maxInFlight: number;
}

let socket: WebSocket | undefined;
let answered = 0;

function connect(args: ExecutorConnectArgs): Promise<{ connected: true }> {
  const key = Ed25519PrivateKey.fromSeed(fromBase64Url(args.seed)!);
  const senderKeys = new Map<string, Ed25519PublicKey>();
  let runtimeKey: Ed25519PublicKey | undefined;
  const ws = new WebSocket(`${args.url.replace(/^http/, "ws")}/v1/connect`, {
    ca: readFileSync(args.caPath),
    headers: { authorization: `Bearer ${args.apiKey}` },
    perMessageDeflate: false,
  });
  socket = ws;

  const answer = (envelope: string, delivery: Delivery) => {
    verifyDelivery(delivery, runtimeKey!);
    let senderKey = senderKeys.get(delivery.sender_key.public_key);
    if (senderKey === undefined) {
      senderKey = Ed25519PublicKey.fromBase64Url(delivery.sender_key.public_key);
      senderKeys.set(delivery.sender_key.public_key, senderKey);
    }
    const known = senderKey;
    const request = verifyEnvelope(envelope, {
      resolveKey: (kid, sender) => (kid === known.kid ? { key: known, owner: sender } : undefined),
    });
    if (request.hash !== delivery.envelope_hash) throw new Error("the delivery names another envelope");
    const result = signEnvelope(
      {
        type: "result",
        from: args.agentId,
        to: `agent:${request.envelope.from}`,
        body: request.envelope.body,
        re: { id: request.envelope.id, hash: request.hash },
        status: "ok",
        decision: { audit_id: delivery.decision.audit_id, rules: delivery.decision.rules },
      },
      key,
    );
    ws.send(JSON.stringify({ type: "result", call_id: delivery.call_id, envelope: result.wire }));
    answered++;
  };

  return new Promise((resolve, reject) => {
    ws.once("unexpected-response", (request, response) => {
      request.destroy();
      reject(new Error(`upgrade refused: ${response.statusCode ?? 0}`));
    });
    ws.once("error", reject);
    ws.once("close", (code, reason) => reject(new Error(`closed (${code} ${reason.toString()})`)));
    ws.once("open", () => {
      if (args.mode === "echo") {
        ws.on("message", (data: Buffer) => {
          ws.send(data, { binary: false });
          answered++;
        });
        resolve({ connected: true });
        return;
      }
      ws.on("message", (data: Buffer) => {
        const frame: ServerFrame = parseServerFrame(data);
        switch (frame.type) {
          case "welcome":
            runtimeKey = Ed25519PublicKey.fromBase64Url(frame.runtime_public_key);
            resolve({ connected: true });
            return;
          case "invoke":
            answer(frame.envelope, frame.delivery);
            return;
          case "ping":
            ws.send(JSON.stringify({ type: "pong", ts: frame.ts }));
            return;
          case "error":
            reject(new Error(`runtime error frame: ${frame.error.code} ${frame.error.message}`));
            return;
          default:
            return;
        }
      });
      ws.send(
        JSON.stringify({
          type: "hello",
          agent: args.agentId,
          serves: [args.tool],
          max_in_flight: args.maxInFlight,
        }),
      );
    });
  });
}

serveCommands({
  connect: (args: ExecutorConnectArgs) => connect(args),
  stats: () => ({ ...ownStats(), answered }),
  close() {
    socket?.close();
    return true;
  },
});
announce("ready");
