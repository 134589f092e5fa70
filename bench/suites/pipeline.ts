// Pipeline suite: the whole guarded invocation path over real TLS, loopback, with the runtime, the
// executor and the callers in separate processes; beside it, the same path as a plain echo relay.
//
//   pipeline_throughput / p50 / p99   callers sign and POST /v1/envelopes; a WebSocket executor answers
//   pipeline_efficiency               CPU of the 2 Ed25519 verifications an invocation needs, over the
//                                     runtime process's whole CPU per invocation (target >= 0.5)
//   echo_*                            the same transport with every check off (bench/pipeline/echo-relay.ts)
//   rss_mb_1000_agents                the runtime's RSS with 1000 agents connected, beside its idle RSS
//
// SIGNET_BENCH_PROFILE=1 adds a separate short run of the runtime under V8's CPU profiler and prints where
// its CPU goes (the measured runs are never profiled); SIGNET_BENCH_PROFILE=DIR also keeps the
// .cpuprofile there. SIGNET_BENCH_VERBOSE=1 prints each round's CPU per process.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Metric, median, medianRatio, percentile, report } from "../harness.js";
import { type BenchDataDir, makeTempDir, prepareDataDir } from "../pipeline/data-dir.js";
import type { ExecutorConnectArgs } from "../pipeline/executor-process.js";
import type { FloodArgs, FloodResult } from "../pipeline/connect-flood.js";
import { type Child, ProcessGroup, type ProcessStats, withTimeout } from "../pipeline/ipc.js";
import type { LoadClientInit, LoadRunResult } from "../pipeline/load-client.js";
import { printProfileSummary, summarizeProfile } from "../pipeline/profile-summary.js";

/** The whole suite's budget; DESIGN.md allows 3 minutes on 2 cores. */
const SUITE_TIMEOUT_MS = 170_000;
const CONCURRENCY = 32;
const WARMUP = 2000;
/** Measured requests per round; rounds alternate pipeline and echo. */
const ROUND_REQUESTS = 1000;
const ROUNDS = 5;
const FLEET = 1000;
const PROFILED_REQUESTS = 3000;
const PROFILE_INTERVAL_US = 250;
const FLOOD_CONCURRENCY = 50;
const VERIFY = { rounds: 5, iterations: 2000 };
const START_TIMEOUT_MS = 30_000;
const MB = 1024 * 1024;
/** SIGNET_BENCH_VERBOSE=1 prints each round's CPU per process and how busy the machine was. */
const VERBOSE = process.env.SIGNET_BENCH_VERBOSE === "1";

/** Busy and total CPU time of the whole machine so far (all cores), in ms. */
function machineCpuMs(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const { user, nice, sys, irq, idle } = cpu.times;
    busy += user + nice + sys + irq;
    total += user + nice + sys + irq + idle;
  }
  return { busy, total };
}

/** Every child this run started, so that all of them die in `finally` whatever happened. */
interface Server {
  readonly child: Child;
  readonly url: string;
}

async function startServer(
  processes: ProcessGroup,
  name: string,
  script: string,
  data: BenchDataDir,
): Promise<Server> {
  const child = processes.start(name, script, { args: [data.dir] });
  const ready = await child.waitFor<{ type: "ready"; url: string }>("ready", START_TIMEOUT_MS);
  return { child, url: ready.url };
}

async function stopServer(server: Server): Promise<void> {
  await server.child.call("stop", undefined, 10_000).catch(() => undefined);
  await withTimeout(server.child.exited, 10_000, `${server.child.name} did not exit`).catch(() =>
    server.child.kill(),
  );
}

const cpuUs = (stats: ProcessStats): number => stats.userUs + stats.systemUs;

/** One caller process and one executor process connected to a server. */
interface Stack {
  readonly name: string;
  readonly server: Server;
  readonly executor: Child;
  readonly client: Child;
}

async function startStack(
  processes: ProcessGroup,
  name: string,
  server: Server,
  data: BenchDataDir,
  mode: ExecutorConnectArgs["mode"],
): Promise<Stack> {
  const executor = processes.start(`${name} executor`, "executor-process.ts");
  const client = processes.start(`${name} client`, "load-client.ts");
  await Promise.all([executor.waitFor("ready", START_TIMEOUT_MS), client.waitFor("ready", START_TIMEOUT_MS)]);
  await executor.call("connect", {
    mode,
    url: server.url,
    caPath: data.certs.caCert,
    agentId: data.executor.id,
    apiKey: data.executor.apiKey,
    seed: data.executor.seed,
    tool: data.tool,
    maxInFlight: 64,
  } satisfies ExecutorConnectArgs);
  await client.call("init", {
    url: server.url,
    caPath: data.certs.caCert,
    agentId: data.caller.id,
    apiKey: data.caller.apiKey,
    seed: data.caller.seed,
    tool: data.tool,
    concurrency: CONCURRENCY,
  } satisfies LoadClientInit);
  return { name, server, executor, client };
}

interface Round {
  readonly throughput: number;
  readonly cpuUsPerInvocation: number;
  readonly latenciesMs: readonly number[];
}

/** Runs `count` invocations through a stack, reading the server's CPU right before and after. */
async function runRound(stack: Stack, count: number): Promise<Round> {
  const others = [stack.executor, stack.client];
  const othersBefore = VERBOSE ? await Promise.all(others.map((c) => c.call<ProcessStats>("stats"))) : [];
  const machineBefore = machineCpuMs();
  const before = await stack.server.child.call<ProcessStats>("stats");
  const result = await stack.client.call<LoadRunResult>("run", { count }, 120_000);
  const after = await stack.server.child.call<ProcessStats>("stats");
  if (VERBOSE) {
    const machine = machineCpuMs();
    const othersAfter = await Promise.all(others.map((c) => c.call<ProcessStats>("stats")));
    const perCall = (a: ProcessStats, b: ProcessStats) => ((cpuUs(b) - cpuUs(a)) / count).toFixed(0);
    console.log(
      `${stack.name}: ${((count * 1000) / result.wallMs).toFixed(0)} inv/s; CPU µs/inv server ${perCall(before, after)} ` +
        `(${((after.systemUs - before.systemUs) / count).toFixed(0)} system), ` +
        `executor ${perCall(othersBefore[0]!, othersAfter[0]!)}, client ${perCall(othersBefore[1]!, othersAfter[1]!)}; ` +
        `machine busy ${((100 * (machine.busy - machineBefore.busy)) / (machine.total - machineBefore.total)).toFixed(0)}%`,
    );
  }
  if (result.failures > 0) {
    throw new Error(
      `${stack.name}: ${result.failures}/${count} invocations failed; first: ${result.firstFailure ?? "?"}`,
    );
  }
  return {
    throughput: (count * 1000) / result.wallMs,
    cpuUsPerInvocation: (cpuUs(after) - cpuUs(before)) / count,
    latenciesMs: result.latenciesMs,
  };
}

async function measureVerify(
  processes: ProcessGroup,
): Promise<{ usPerVerify: number[]; inputBytes: number[] }> {
  const child = processes.start("verify", "verify-process.ts");
  await child.waitFor("ready", START_TIMEOUT_MS);
  try {
    return await child.call("measure", VERIFY, 60_000);
  } finally {
    child.kill();
  }
}

/** The runtime's RSS idle and with FLEET agents connected, each over its own authenticated WebSocket. */
async function measureMemory(
  processes: ProcessGroup,
  data: BenchDataDir,
): Promise<{ idle: number; connected: number }> {
  const server = await startServer(processes, "runtime (memory)", "runtime-process.ts", data);
  const flood = processes.start("connect flood", "connect-flood.ts");
  try {
    await flood.waitFor("ready", START_TIMEOUT_MS);
    await sleep(1000);
    const idle = await server.child.call<ProcessStats>("stats");
    const opened = await flood.call<FloodResult>(
      "open",
      {
        url: server.url,
        caPath: data.certs.caCert,
        agents: data.fleet,
        concurrency: FLOOD_CONCURRENCY,
      } satisfies FloodArgs,
      90_000,
    );
    if (opened.failed > 0 || opened.opened !== data.fleet.length) {
      throw new Error(
        `connect flood: ${opened.opened} opened, ${opened.failed} failed; first: ${opened.firstFailure ?? "?"}`,
      );
    }
    await sleep(1000);
    const connected = await server.child.call<ProcessStats>("stats");
    await flood.call("close", undefined, 20_000);
    return { idle: idle.rss / MB, connected: connected.rss / MB };
  } finally {
    flood.kill();
    await stopServer(server);
  }
}

/**
 * A separate short run with V8's sampling profiler on in the runtime (as `--cpu-prof` would, but over
 * the loaded phase only, and with frames mapped back to the TypeScript sources), summarized.
 */
async function profileRuntime(processes: ProcessGroup, data: BenchDataDir, keepIn?: string): Promise<void> {
  const profileDir = keepIn ?? mkdtempSync(join(tmpdir(), "signet-bench-profile-"));
  const path = join(profileDir, `runtime-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`);
  try {
    const server = await startServer(processes, "runtime (profiled)", "runtime-process.ts", data);
    const stack = await startStack(processes, "profiled", server, data, "signet");
    await stack.client.call("run", { count: WARMUP }, 60_000);
    await server.child.call("profileStart", { intervalUs: PROFILE_INTERVAL_US });
    await runRound(stack, PROFILED_REQUESTS);
    await server.child.call("profileStop", { path }, 60_000);
    await stack.client.call("close");
    stack.executor.kill();
    await stopServer(server);
    printProfileSummary(
      `runtime CPU profile, ${PROFILED_REQUESTS} invocations after warm-up`,
      summarizeProfile(path),
    );
    if (keepIn !== undefined) console.log(`profile kept: ${path}`);
  } finally {
    if (keepIn === undefined) rmSync(profileDir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(processes: ProcessGroup, data: BenchDataDir): Promise<Metric[]> {
  const verifyBefore = await measureVerify(processes);
  const memory = await measureMemory(processes, data);

  const [runtime, relay] = await Promise.all([
    startServer(processes, "runtime", "runtime-process.ts", data),
    startServer(processes, "echo relay", "echo-relay.ts", data),
  ]);
  const pipeline = await startStack(processes, "pipeline", runtime, data, "signet");
  const echo = await startStack(processes, "echo", relay, data, "echo");
  for (const stack of [pipeline, echo]) await stack.client.call("run", { count: WARMUP }, 60_000);
  const rounds: Record<"pipeline" | "echo", Round[]> = { pipeline: [], echo: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so a drift in the machine lands on both alike.
    const order = round % 2 === 0 ? [pipeline, echo] : [echo, pipeline];
    for (const stack of order)
      rounds[stack.name as "pipeline" | "echo"].push(await runRound(stack, ROUND_REQUESTS));
  }
  await Promise.all([pipeline.client.call("close"), echo.client.call("close")]);
  await Promise.all([stopServer(runtime), stopServer(relay)]);

  const verifyAfter = await measureVerify(processes);
  const verifyUs = median([...verifyBefore.usPerVerify, ...verifyAfter.usPerVerify]);

  const summary = (list: Round[]) => {
    const latencies = list.flatMap((r) => r.latenciesMs);
    return {
      throughput: median(list.map((r) => r.throughput)),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      cpuUs: median(list.map((r) => r.cpuUsPerInvocation)),
    };
  };
  const p = summary(rounds.pipeline);
  const e = summary(rounds.echo);
  return [
    { name: "pipeline_throughput", value: p.throughput, unit: "inv/s" },
    { name: "pipeline_p50_ms", value: p.p50, unit: "ms" },
    { name: "pipeline_p99_ms", value: p.p99, unit: "ms" },
    {
      name: "pipeline_efficiency",
      value: (2 * verifyUs) / p.cpuUs,
      unit: "ratio",
      target: ">= 0.5",
      baseline: "2 × verify_cpu_us ÷ runtime_cpu_us_per_invocation",
    },
    { name: "runtime_cpu_us_per_invocation", value: p.cpuUs, unit: "µs" },
    {
      name: "verify_cpu_us",
      value: verifyUs,
      unit: "µs",
      baseline: `crypto.verify, prepared KeyObject, ${verifyBefore.inputBytes.join("/")}-byte signing inputs`,
    },
    { name: "echo_throughput", value: e.throughput, unit: "inv/s" },
    { name: "echo_p50_ms", value: e.p50, unit: "ms" },
    { name: "echo_p99_ms", value: e.p99, unit: "ms" },
    { name: "echo_cpu_us_per_invocation", value: e.cpuUs, unit: "µs" },
    {
      name: "pipeline_vs_echo_throughput",
      value: medianRatio(
        rounds.pipeline.map((r) => r.throughput),
        rounds.echo.map((r) => r.throughput),
      ),
      unit: "ratio",
    },
    { name: "rss_mb_idle", value: memory.idle, unit: "MB" },
    {
      name: "rss_mb_1000_agents",
      value: memory.connected,
      unit: "MB",
      target: "<= 200",
      baseline: "rss_mb_idle",
    },
  ];
}

export async function run(): Promise<boolean> {
  const processes = new ProcessGroup();
  const profile = process.env.SIGNET_BENCH_PROFILE;
  const dir = makeTempDir();
  const work = async () => {
    const data = await prepareDataDir(dir, FLEET);
    const holds = report("pipeline", await measure(processes, data));
    if (profile !== undefined && profile !== "" && profile !== "0") {
      const keepIn = profile === "1" ? undefined : resolve(profile);
      if (keepIn !== undefined) mkdirSync(keepIn, { recursive: true });
      await profileRuntime(processes, data, keepIn);
    }
    return holds;
  };
  try {
    return await withTimeout(
      work(),
      SUITE_TIMEOUT_MS,
      `pipeline suite exceeded ${SUITE_TIMEOUT_MS / 1000} s`,
    );
  } finally {
    await processes.killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
