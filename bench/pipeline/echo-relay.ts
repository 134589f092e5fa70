// The pipeline bench's baseline: the runtime's path with every check off, as a plain echo. The same
// Fastify HTTPS server (same certificates and TLS settings), a POST /v1/envelopes that forwards the
// raw body to a connected WebSocket executor and answers with its reply, over @fastify/websocket.
// No authentication, no parsing, no crypto, no storage.
// Usage (forked by the bench): node --import tsx bench/pipeline/echo-relay.ts DATA_DIR
import type { AddressInfo } from "node:net";
import websocket from "@fastify/websocket";
import { MAX_FRAME_BYTES } from "@signet/protocol";
import { buildTlsOptions, loadConfig } from "@signet/runtime";
import Fastify from "fastify";
import type { WebSocket } from "ws";
import { announce, ownStats, serveCommands } from "./ipc.js";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: echo-relay.ts DATA_DIR");
const config = loadConfig({ dataDir, env: {} });
const tls = config.tls!;
const https = await buildTlsOptions({
  certPath: tls.certPath,
  keyPath: tls.keyPath,
  clientAuth: tls.clientAuth,
  ...(tls.clientCaPath === undefined ? {} : { clientCa: tls.clientCaPath }),
});

const app = Fastify({
  https,
  logger: false,
  bodyLimit: config.server.bodyLimitBytes,
  forceCloseConnections: "idle",
});

/** The executor socket, and the requests waiting for it, by a sequence number prefixed to each frame. */
let executor: WebSocket | undefined;
const waiting = new Map<number, (reply: Buffer) => void>();
let sequence = 0;
const NEWLINE = 0x0a;

await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
await app.register(async (scope) => {
  scope.get("/v1/connect", { websocket: true }, (socket: WebSocket) => {
    executor = socket;
    socket.on("message", (data: Buffer) => {
      const split = data.indexOf(NEWLINE);
      const id = Number(data.toString("latin1", 0, split));
      const resolve = waiting.get(id);
      if (resolve === undefined) return;
      waiting.delete(id);
      resolve(data.subarray(split + 1));
    });
    socket.on("close", () => {
      if (executor === socket) executor = undefined;
    });
  });
});
await app.register(async (scope) => {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body: Buffer, done) =>
    done(null, body),
  );
  scope.post("/v1/envelopes", async (request, reply) => {
    const socket = executor;
    if (socket === undefined) return reply.code(503).send({ error: "no executor" });
    const id = ++sequence;
    const answer = await new Promise<Buffer>((resolve) => {
      waiting.set(id, resolve);
      socket.send(Buffer.concat([Buffer.from(`${id}\n`, "latin1"), request.body as Buffer]), {
        binary: false,
      });
    });
    return reply.type("application/json").send(answer);
  });
});

await app.listen({ host: config.server.host, port: 0 });
const address = app.server.address() as AddressInfo;
const url = `https://${address.address}:${address.port}`;

serveCommands({
  stats: () => ownStats(),
  async stop() {
    await app.close();
    setImmediate(() => process.exit(0));
    return true;
  },
});
console.log(`listening ${url}`);
announce("ready", { url, pid: process.pid });
