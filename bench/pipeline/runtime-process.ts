// A Signet runtime in a process of its own, so its CPU and memory can be read apart from the load.
// Usage (forked by the pipeline bench): node --import tsx bench/pipeline/runtime-process.ts DATA_DIR
// Prints `listening URL`, announces `ready` over IPC, and answers `stats`, `status`, `profileStart`,
// `profileStop` and `stop`. Its log (level from signet.yaml) goes to stdout as always; warnings and
// errors are also counted by message, for `status`.
import { writeFileSync } from "node:fs";
import type { Profiler } from "node:inspector";
import { Session } from "node:inspector/promises";
import { type SourceMap, findSourceMap } from "node:module";
import { Writable } from "node:stream";
import { createLogger, createRuntime, loadConfig } from "@signet/runtime";
import { announce, ownStats, serveCommands, withTimeout } from "./ipc.js";

/** What `status` reports: where the runtime stands on its backends, and what went wrong so far. */
export interface RuntimeStatus {
  /** Targets served by executors connected to this instance. */
  readonly localTargets: readonly string[];
  readonly limiter: { readonly backend: "memory" | "redis"; readonly shared: boolean };
  /** The cluster link, when Redis is configured: whether it is up, and each live peer's targets. */
  readonly cluster?: { readonly connected: boolean; readonly peers: Record<string, readonly string[]> };
  /** Log lines at warn level or above, counted by message. */
  readonly warnings: Record<string, number>;
}

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: runtime-process.ts DATA_DIR");

const warnings: Record<string, number> = {};
/** pino writes one JSON line per call: pass it on to stdout, counting those at warn (40) or above. */
const destination = new Writable({
  write(chunk: Buffer, _encoding, done) {
    const text = chunk.toString("utf8");
    for (const line of text.split("\n")) {
      if (line === "") continue;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string };
        if ((entry.level ?? 0) >= 40) warnings[entry.msg ?? "?"] = (warnings[entry.msg ?? "?"] ?? 0) + 1;
      } catch {
        // Not a log line: pass it on all the same.
      }
    }
    process.stdout.write(chunk, () => done());
  },
});

const config = loadConfig({ dataDir, env: {} });
const runtime = await createRuntime(config, {
  logger: createLogger({ level: config.logging.level, redaction: config.redaction, destination }),
});
const url = await runtime.start();

let profiler: Session | undefined;

/**
 * Maps each profile frame from the code tsx generated (whitespace-minified, so everything sits on a
 * few long lines) back to the TypeScript source, so `file:line` names the real function.
 */
function mapToSources(profile: Profiler.Profile): Profiler.Profile {
  const maps = new Map<string, SourceMap | undefined>();
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    if (!frame.url.startsWith("file:") || frame.lineNumber < 0) continue;
    if (!maps.has(frame.url)) maps.set(frame.url, findSourceMap(frame.url));
    const entry = maps.get(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (entry !== undefined && "originalLine" in entry) {
      frame.lineNumber = entry.originalLine;
      frame.columnNumber = entry.originalColumn;
      // Line ticks are positions in the generated code: meaningless once frames name the source.
      delete node.positionTicks;
    }
  }
  return profile;
}

serveCommands({
  stats: () => ownStats(),
  status: (): RuntimeStatus => ({
    localTargets: runtime.router.localTargets(),
    limiter: runtime.limiter.status(),
    ...(runtime.cluster === undefined
      ? {}
      : {
          cluster: {
            connected: runtime.cluster.connected,
            peers: Object.fromEntries(runtime.cluster.peers()),
          },
        }),
    warnings: { ...warnings },
  }),
  /** Starts V8's sampling CPU profiler in this process (the same one `--cpu-prof` uses). */
  async profileStart(args: { intervalUs: number }) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.setSamplingInterval", { interval: args.intervalUs });
    await profiler.post("Profiler.start");
    return true;
  },
  /** Stops profiling and writes a .cpuprofile whose frames point at the TypeScript sources. */
  async profileStop(args: { path: string }) {
    if (profiler === undefined) throw new Error("profileStart first");
    const { profile } = await profiler.post("Profiler.stop");
    profiler.disconnect();
    profiler = undefined;
    writeFileSync(args.path, JSON.stringify(mapToSources(profile)));
    return args.path;
  },
  async stop() {
    await withTimeout(runtime.stop(), 5_000, "runtime stop timed out").catch(() => undefined);
    setImmediate(() => process.exit(0));
    return true;
  },
});
console.log(`listening ${url}`);
announce("ready", { url, pid: process.pid });
