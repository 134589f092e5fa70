// Opens many authenticated TLS WebSocket connections to /v1/connect, each one agent serving its tool:
// upgrade with the agent's API key, `hello`, wait for `welcome`. Forked by the pipeline bench.
import { readFileSync } from "node:fs";
import { parseServerFrame } from "@signet/protocol";
import WebSocket from "ws";
import type { AgentCredentials } from "./data-dir.js";
import { announce, serveCommands } from "./ipc.js";

export interface FloodArgs {
  readonly url: string;
  readonly caPath: string;
  readonly agents: readonly AgentCredentials[];
  /** Connections being opened at once. */
  readonly concurrency: number;
}

export interface FloodResult {
  readonly opened: number;
  readonly failed: number;
  readonly firstFailure?: string;
  readonly ms: number;
}

const sockets: WebSocket[] = [];

function openOne(url: string, ca: Buffer, agent: AgentCredentials) {
  return new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/v1/connect`, {
      ca,
      headers: { authorization: `Bearer ${agent.apiKey}` },
      perMessageDeflate: false,
    });
    sockets.push(ws);
    ws.once("unexpected-response", (request, response) => {
      request.destroy();
      reject(new Error(`upgrade refused: ${response.statusCode ?? 0}`));
    });
    ws.once("error", reject);
    ws.once("close", (code) => reject(new Error(`closed before welcome (${code})`)));
    ws.on("message", (data: Buffer) => {
      const frame = parseServerFrame(data);
      if (frame.type === "welcome") resolve();
      else if (frame.type === "ping") ws.send(JSON.stringify({ type: "pong", ts: frame.ts }));
      else if (frame.type === "error") reject(new Error(`${frame.error.code}: ${frame.error.message}`));
    });
    ws.once("open", () => {
      ws.send(JSON.stringify({ type: "hello", agent: agent.id, serves: agent.serves, max_in_flight: 1 }));
    });
  });
}

async function open(args: FloodArgs): Promise<FloodResult> {
  const ca = readFileSync(args.caPath);
  const started = performance.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const worker = async () => {
    while (next < args.agents.length) {
      const agent = args.agents[next++]!;
      try {
        await openOne(args.url, ca, agent);
        opened++;
      } catch (error) {
        failed++;
        firstFailure ??= `${agent.id}: ${String(error)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  return {
    opened,
    failed,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    ms: performance.now() - started,
  };
}

serveCommands({
  open: (args: FloodArgs) => open(args),
  async close() {
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once("close", () => resolve());
            ws.close();
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, 2_000).unref();
          }),
      ),
    );
    return sockets.length;
  },
});
announce("ready");
