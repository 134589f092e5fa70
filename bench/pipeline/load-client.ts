// The bench's callers: sign an invocation per request and POST it to /v1/envelopes over keep-alive
// HTTPS (undici), `concurrency` at a time. Forked by the pipeline bench; `init` once, then `run`.
// With `urls`, the workers are split across several runtime instances (worker i sends to urls[i % n]).
import { readFileSync } from "node:fs";
import { Ed25519PrivateKey, type JsonValue, fromBase64Url, signEnvelope } from "@signet/protocol";
import { Agent, request } from "undici";
import { announce, ownStats, serveCommands } from "./ipc.js";

export interface LoadClientInit {
  readonly url: string;
  /** Instances of one deployment to split the workers across; default `[url]`. */
  readonly urls?: readonly string[];
  readonly caPath: string;
  readonly agentId: string;
  readonly apiKey: string;
  readonly seed: string;
  readonly tool: string;
  readonly concurrency: number;
}

export interface LoadRunResult {
  readonly count: number;
  readonly failures: number;
  readonly firstFailure?: string;
  readonly wallMs: number;
  /** Client-observed latency of every request, ms (request start to last byte of the answer). */
  readonly latenciesMs: number[];
}

/** A realistic tool call: a query with parameters and options (about 300 bytes of canonical JSON). */
function body(sequence: number): JsonValue {
  return {
    query: "SELECT id, total, status FROM orders WHERE customer_id = $1 AND created_at > $2 LIMIT $3",
    params: ["cus_8f2a91", "2026-11-01T00:00:00Z", 50],
    options: { timeout_ms: 2500, read_only: true, consistency: "strong" },
    trace: { sequence, span: "bench-load" },
  };
}

let state:
  | {
      init: LoadClientInit;
      key: Ed25519PrivateKey;
      dispatcher: Agent;
      endpoints: readonly string[];
      sequence: number;
    }
  | undefined;

async function run(args: { count: number }): Promise<LoadRunResult> {
  if (state === undefined) throw new Error("init first");
  const s = state;
  const headers = { authorization: `Bearer ${s.init.apiKey}`, "content-type": "application/json" };
  const latenciesMs: number[] = [];
  let issued = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const worker = async (_: unknown, index: number) => {
    const endpoint = s.endpoints[index % s.endpoints.length]!;
    while (issued < args.count) {
      issued++;
      const wire = signEnvelope(
        { type: "invoke", from: s.init.agentId, to: `tool:${s.init.tool}`, body: body(s.sequence++) },
        s.key,
      ).wire;
      const start = performance.now();
      try {
        const response = await request(endpoint, {
          method: "POST",
          headers,
          body: wire,
          dispatcher: s.dispatcher,
        });
        const text = await response.body.text();
        latenciesMs.push(performance.now() - start);
        if (response.statusCode !== 200) {
          failures++;
          firstFailure ??= `${response.statusCode} ${text.slice(0, 300)}`;
        }
      } catch (error) {
        failures++;
        firstFailure ??= String(error);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: s.init.concurrency }, worker));
  const wallMs = performance.now() - started;
  return {
    count: args.count,
    failures,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    wallMs,
    latenciesMs,
  };
}

serveCommands({
  init(init: LoadClientInit) {
    state = {
      init,
      key: Ed25519PrivateKey.fromSeed(fromBase64Url(init.seed)!),
      dispatcher: new Agent({
        connect: { ca: readFileSync(init.caPath, "utf8") },
        connections: init.concurrency,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      }),
      endpoints: (init.urls ?? [init.url]).map((url) => `${url}/v1/envelopes`),
      sequence: 0,
    };
    return true;
  },
  run: (args: { count: number }) => run(args),
  stats: () => ownStats(),
  async close() {
    await state?.dispatcher.close();
    return true;
  },
});
announce("ready");
