// A real, throwaway redis-server for tests: loopback, a free port, a temp dir, bounded waits, and no
// process left behind (even when the test process exits without cleaning up).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The server's working dir (its append-only file lives here). */
  readonly dir: string;
  /** Shuts the server down (SIGTERM, then SIGKILL) and removes its dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash would; the dir stays for `restart()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and dir (after `kill()`, or shutting it down first). */
  restart(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface RedisServerOptions {
  /** Path of the binary; default `redis-server` on PATH. */
  readonly binary?: string;
  /** How long to wait for the server to answer PING; default 10 s. */
  readonly readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every server still running when the test process exits, however it exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket: true when the server answers +PONG within `ms`. */
function ping(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => done(false), ms);
    let reply = "";
    function done(ok: boolean): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Sends `signal`, waits at most `ms` for the exit, then SIGKILLs and waits for that. */
async function terminate(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const timedOut = await Promise.race([
    exited(child).then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), ms).unref()),
  ]);
  if (timedOut) {
    child.kill("SIGKILL");
    await exited(child);
  }
}

/**
 * Starts `redis-server` on 127.0.0.1 and a free port, with a temp dir, no RDB snapshots and an
 * append-only file fsynced every second (so a restart after `stop()` keeps the data, and one after
 * `kill()` keeps all but the last second). Resolves once it answers PING.
 *
 * Example: `await using redis = await startRedisServer(); new Redis(redis.url)`.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "signet-redis-"));
  const binary = options.binary ?? "redis-server";
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let port = 0;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const started = spawn(
      binary,
      [
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--logfile",
        "",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    started.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let spawnError: Error | undefined;
    started.once("error", (error) => (spawnError = error));
    live.add(started);
    started.once("exit", () => live.delete(started));
    child = started;
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError !== undefined) throw new Error(`cannot start ${binary}: ${spawnError.message}`);
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`${binary} exited at start (port ${port}): ${stderr.trim()}`);
      }
      if (await ping(port, 500)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await terminate(started, "SIGKILL", 1000);
    throw new Error(`${binary} did not answer PING on port ${port} within ${readyTimeoutMs} ms`);
  };

  try {
    // Another process may take the free port between the probe and the bind: try a few ports.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child !== undefined) await terminate(child, "SIGTERM", 5000);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    async kill() {
      if (child !== undefined) await terminate(child, "SIGKILL", 5000);
    },
    async restart() {
      if (stopped) throw new Error("this redis-server was stopped; start a new one");
      if (child !== undefined) await terminate(child, "SIGTERM", 5000);
      await launch();
    },
    [Symbol.asyncDispose]: stop,
  };
}
