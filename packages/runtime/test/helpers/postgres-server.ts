// Starts a real, throwaway PostgreSQL server for a test file, and removes every trace of it after.
//
// How it works:
// - Binaries: the newest `/usr/lib/postgresql/<version>/bin/` holding initdb, pg_ctl and postgres (the
//   Debian layout), else the first PATH folder holding all three. `scripts/ensure-test-services.sh`
//   installs them when missing.
// - Users: initdb and postgres refuse to run as root, so under root every server command runs as the
//   `postgres` user (`runuser -u postgres -- ...`), and the temp folder is handed to that user first.
//   Under any other user they run as that user.
// - Cluster: `initdb -A trust` in a fresh temp folder (mkdtemp, so parallel workers never share one).
//   Trust is safe here because the server listens on 127.0.0.1 only, plus a unix socket inside the
//   temp folder (mode 0700, owned by the server's user). fsync stays on; only initdb skips its sync.
// - Port: a free one, found by binding port 0 on 127.0.0.1 and closing it. Another process may take it
//   in the gap, so a start that fails to bind tries again on a new port (three attempts).
// - Start: `pg_ctl start -w` waits until the server accepts connections (bounded at 20 s), then
//   `pg_isready` confirms it answers over TCP; the server log is in the error when either fails.
// - Each vitest worker that imports this starts its own server on its own port and folder, so test
//   files run in parallel without sharing state. `stop()` shuts the server down (fast, then
//   immediate) and deletes the folder; a process exit hook does the same if a test file never got
//   to its afterAll.
// - A worker killed outright (a cancelled run) runs neither, so each folder records its owner's pid,
//   and every start first sweeps folders whose owner is gone: it stops their server and deletes them.
//
// Example:
//   let pg: PostgresServer;
//   beforeAll(async () => { pg = await startPostgres(); });
//   afterAll(() => pg.stop());
import { execFile, execFileSync } from "node:child_process";
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  existsSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/** How long the server may take to start or stop before the helper gives up. */
const READY_TIMEOUT_S = 20;
const START_ATTEMPTS = 3;
const FOLDER_PREFIX = "signet-pg-";
/** The process that started a folder's server; the sweep reclaims folders whose owner is gone. */
const OWNER_FILE = "owner.pid";
/** A folder without an owner file is another worker's mid-setup, unless it is older than this. */
const ORPHAN_AGE_MS = 10 * 60_000;
/** The superuser initdb creates; trust authentication, so it needs no password. */
const SUPERUSER = "postgres";

/** A running throwaway server. */
export interface PostgresServer {
  /** A connection URL for the database created for this server's suite. */
  readonly url: string;
  /** The loopback TCP port the server listens on. */
  readonly port: number;
  /** Creates another empty database (a lower-case identifier) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** A connection URL for an existing database on this server. */
  urlFor(database: string): string;
  /**
   * Stops the server (fast shutdown: open connections are cut), runs `whileDown` if given, and
   * starts it again on the same port and data folder.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Shuts the server down and deletes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** The database created for the suite, which `url` names. Default `signet_test`. */
  readonly database?: string;
}

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
  readonly pgIsReady?: string;
}

const SERVER_PROGRAMS = ["initdb", "pg_ctl", "postgres"] as const;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function binariesIn(dir: string): Binaries | undefined {
  if (!SERVER_PROGRAMS.every((program) => isExecutable(join(dir, program)))) return undefined;
  const pgIsReady = join(dir, "pg_isready");
  return {
    initdb: join(dir, "initdb"),
    pgCtl: join(dir, "pg_ctl"),
    ...(isExecutable(pgIsReady) && { pgIsReady }),
  };
}

/** The newest Debian-layout installation, else the first PATH folder with every server program. */
function findBinaries(): Binaries {
  const debianRoot = "/usr/lib/postgresql";
  const versions = existsSync(debianRoot)
    ? readdirSync(debianRoot)
        .filter((name) => /^\d+(\.\d+)?$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const candidates = [
    ...versions.map((version) => join(debianRoot, version, "bin")),
    ...(process.env.PATH ?? "").split(delimiter).filter((dir) => dir !== ""),
  ];
  for (const dir of candidates) {
    const found = binariesIn(dir);
    if (found !== undefined) return found;
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found in /usr/lib/postgresql/*/bin " +
      "or on PATH. Run `bash scripts/ensure-test-services.sh`, or install them " +
      "(Debian: apt-get install postgresql).",
  );
}

/** Binds port 0 on loopback to learn a port nobody holds right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (typeof address === "object" && address !== null) resolve(address.port);
        else reject(new Error("Could not learn a free port"));
      });
    });
  });
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "(no server log)";
  }
}

/**
 * Starts a server and creates the suite's database. Call it in `beforeAll` and `stop()` in `afterAll`.
 *
 * Example: `const server = await startPostgres(); await openPostgresStores({ url: server.url });`.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binaries = findBinaries();
  const asRoot = process.getuid?.() === 0;
  await sweepAbandoned(binaries, asRoot);
  const dir = await mkdtemp(join(tmpdir(), FOLDER_PREFIX));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "server.log");

  // Runs a server program as the user it must run as; execFile, so no shell ever parses a path.
  const asServerUser = (program: string, args: readonly string[]) =>
    asRoot
      ? run("runuser", ["-u", SUPERUSER, "--", program, ...args], { timeout: (READY_TIMEOUT_S + 10) * 1000 })
      : run(program, [...args], { timeout: (READY_TIMEOUT_S + 10) * 1000 });
  // Synchronous, for the exit hook, which cannot wait for a promise.
  const stopNow = (): void => {
    const args = ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "10", "-s"];
    try {
      if (asRoot)
        execFileSync("runuser", ["-u", SUPERUSER, "--", binaries.pgCtl, ...args], { stdio: "ignore" });
      else execFileSync(binaries.pgCtl, args, { stdio: "ignore" });
    } catch {
      // Not running, or already gone: nothing left to stop.
    }
  };
  let running = false;
  const onExit = (): void => {
    if (running) stopNow();
    rmSyncQuiet(dir);
  };
  const removeFolder = () => rm(dir, { recursive: true, force: true, maxRetries: 3 });

  let port = 0;
  const startServer = async (): Promise<void> => {
    await asServerUser(binaries.pgCtl, [
      "start",
      "-D",
      dataDir,
      "-l",
      logFile,
      "-w",
      "-t",
      String(READY_TIMEOUT_S),
      "-s",
    ]);
    running = true;
    if (binaries.pgIsReady !== undefined) {
      await run(binaries.pgIsReady, [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-t",
        String(READY_TIMEOUT_S),
        "-q",
      ]);
    }
  };

  try {
    if (asRoot) {
      const uid = Number((await run("id", ["-u", SUPERUSER])).stdout.trim());
      const gid = Number((await run("id", ["-g", SUPERUSER])).stdout.trim());
      chownSync(dir, uid, gid);
    }
    process.once("exit", onExit);
    await asServerUser(binaries.initdb, [
      "-D",
      dataDir,
      "-U",
      SUPERUSER,
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
    ]);

    let lastError: unknown;
    for (let attempt = 1; attempt <= START_ATTEMPTS && !running; attempt += 1) {
      port = await freePort();
      // Appended lines win over earlier ones, so a retry simply names a new port. The file keeps its
      // owner: appending never changes it.
      appendFileSync(
        join(dataDir, "postgresql.conf"),
        [
          "",
          "# signet test server",
          "listen_addresses = '127.0.0.1'",
          `port = ${port}`,
          `unix_socket_directories = '${dir.replaceAll("'", "''")}'`,
          "shared_buffers = '32MB'",
          "max_connections = 100",
          "",
        ].join("\n"),
      );
      try {
        await startServer();
      } catch (error) {
        lastError = error;
        stopNow();
        running = false;
      }
    }
    if (!running) {
      throw new Error(`PostgreSQL did not start: ${String(lastError)}\n${readLog(logFile)}`, {
        cause: lastError,
      });
    }
  } catch (error) {
    process.removeListener("exit", onExit);
    stopNow();
    await removeFolder();
    throw error;
  }

  const urlFor = (database: string): string =>
    `postgresql://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(database)}`;

  const createDatabase = async (name: string): Promise<string> => {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`Not a simple database name: ${name}`);
    const client = new pg.Client({ connectionString: urlFor("postgres") });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await client.end();
    }
    return urlFor(name);
  };

  const stopServer = async (): Promise<void> => {
    if (!running) return;
    try {
      await asServerUser(binaries.pgCtl, [
        "stop",
        "-D",
        dataDir,
        "-m",
        "fast",
        "-w",
        "-t",
        String(READY_TIMEOUT_S),
        "-s",
      ]);
    } catch {
      stopNow();
    }
    running = false;
  };

  let stopped = false;
  const url = await createDatabase(options.database ?? "signet_test").catch(async (error: unknown) => {
    await stopServer();
    process.removeListener("exit", onExit);
    await removeFolder();
    throw error;
  });

  return {
    url,
    port,
    createDatabase,
    urlFor,
    restart: async (whileDown?: () => Promise<void>) => {
      if (stopped) throw new Error("The server was stopped");
      await stopServer();
      try {
        if (whileDown !== undefined) await whileDown();
      } finally {
        await startServer().catch((error: unknown) => {
          throw new Error(`PostgreSQL did not restart: ${String(error)}\n${readLog(logFile)}`, {
            cause: error,
          });
        });
      }
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopServer();
      process.removeListener("exit", onExit);
      await removeFolder();
    },
  };
}

/** When `dir` last changed; now when it is already gone, so a vanished folder counts as young. */
function modifiedAt(dir: string): number {
  try {
    return statSync(dir).mtimeMs;
  } catch {
    return Date.now();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Reclaims the folders (and servers) of workers that died without cleaning up: their owner pid is
 * no longer running. A folder of a live worker, or one too young to have its owner file yet, stays.
 */
async function sweepAbandoned(binaries: Binaries, asRoot: boolean): Promise<void> {
  const root = tmpdir();
  const now = Date.now();
  for (const name of readdirSync(root)) {
    if (!name.startsWith(FOLDER_PREFIX)) continue;
    const dir = join(root, name);
    try {
      const owner = Number(readFileSync(join(dir, OWNER_FILE), "utf8"));
      if (Number.isSafeInteger(owner) && owner > 0 && isAlive(owner)) continue;
    } catch {
      if (now - modifiedAt(dir) < ORPHAN_AGE_MS) continue;
    }
    if (existsSync(join(dir, "data", "postmaster.pid"))) {
      const args = ["stop", "-D", join(dir, "data"), "-m", "immediate", "-w", "-t", "10", "-s"];
      await (
        asRoot ? run("runuser", ["-u", SUPERUSER, "--", binaries.pgCtl, ...args]) : run(binaries.pgCtl, args)
      ).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}

function rmSyncQuiet(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Best effort at exit: the folder is in the system temp directory either way.
  }
}
