// Several `signet serve` child processes of one deployment, sharing PostgreSQL (stores and audit log)
// and Redis (rate limits and the cluster link), for fault tests.
//
// - Data dirs: each made by `signet init --data-dir D --json`, then given the first one's runtime key
//   and dev certificates (one deployment: one signing key, one CA), a signet.yaml pointing at the
//   shared PostgreSQL and Redis, and an allow-all policy in place of the development one.
// - Admin key: `init` stores its admin key in D/signet.db, which a PostgreSQL deployment never reads,
//   so an admin API key is created in PostgreSQL (the stores open and migrate the schema).
// - Children: `node bin/signet.js serve --port 0`; the URL is read from the "listening" log line, and
//   stdout and stderr are kept for assertions. Every child still running when the test process exits
//   is SIGKILLed, however it exits.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createApiKey, openStores } from "@signet/runtime";
import { TEST_POLICY } from "../../../runtime/test/helpers/runtime-fixture.js";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../bin/signet.js", import.meta.url));
const START_TIMEOUT_MS = 20_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

export interface DeploymentOptions {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** Per sender per minute, in every instance (and in each one's in-memory fallback). */
  readonly messagesPerMinute: number;
  /** How long an executor has to answer (`routing.call_timeout_ms`). */
  readonly callTimeoutMs: number;
}

export interface Deployment {
  readonly dataDirs: readonly string[];
  /** The dev CA every instance's server certificate chains to. */
  readonly caPath: string;
  /** An admin API key (permissions `*`) stored in PostgreSQL. */
  readonly adminKey: string;
}

/** The signet.yaml `init` wrote, with the shared storage, Redis, limits and call timeout. */
function deploymentYaml(initial: string, options: DeploymentOptions): string {
  const storage = /^storage:\n {2}sqlite_path:.*$/m;
  const limit = /^ {2}messages_per_minute: \d+/m;
  if (!storage.test(initial) || !limit.test(initial) || /^(redis|routing):/m.test(initial)) {
    throw new Error("signet init wrote a signet.yaml this helper does not know how to edit");
  }
  return [
    initial
      .replace(storage, `storage:\n  database_url: ${options.databaseUrl}`)
      .replace(limit, `  messages_per_minute: ${options.messagesPerMinute}`),
    "redis:",
    `  url: ${options.redisUrl}`,
    "routing:",
    `  call_timeout_ms: ${options.callTimeoutMs}`,
    "",
  ].join("\n");
}

/** Makes `count` data dirs under `root` for one deployment, and an admin API key in PostgreSQL. */
export async function createDeployment(
  root: string,
  count: number,
  options: DeploymentOptions,
): Promise<Deployment> {
  const dataDirs = Array.from({ length: count }, (_, index) => join(root, `instance-${index}`));
  await Promise.all(dataDirs.map((dir) => run(process.execPath, [bin, "init", "--data-dir", dir, "--json"])));
  const [first] = dataDirs;
  for (const dir of dataDirs) {
    if (dir !== first) {
      copyFileSync(join(first!, "keys", "runtime.key"), join(dir, "keys", "runtime.key"));
      copyFileSync(join(first!, "keys", "runtime.pub"), join(dir, "keys", "runtime.pub"));
      for (const file of readdirSync(join(first!, "certs"))) {
        copyFileSync(join(first!, "certs", file), join(dir, "certs", file));
      }
    }
    const yamlPath = join(dir, "signet.yaml");
    writeFileSync(yamlPath, deploymentYaml(readFileSync(yamlPath, "utf8"), options));
    writeFileSync(join(dir, "policies", "development.yaml"), TEST_POLICY);
  }
  const stores = await openStores({ kind: "postgres", url: options.databaseUrl });
  try {
    const admin = await createApiKey(
      stores.apiKeys,
      { name: "admin", principal: "admin", kind: "user", permissions: ["*"] },
      { actor: "test" },
    );
    return { dataDirs, caPath: join(first!, "certs", "ca.crt"), adminKey: admin.key };
  } finally {
    await stores.close();
  }
}

/** A running `signet serve` child. */
export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far. */
  readonly logs: () => string;
  /** SIGKILLs the child (if it is still running) and resolves once it has exited. */
  kill(): Promise<void>;
}

/** The environment without SIGNET_* variables, so only the data dir configures the child. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("SIGNET_")));
}

/** Starts `signet serve --data-dir DIR --port 0` and resolves once it listens. */
export async function startServe(dataDir: string): Promise<ServeProcess> {
  installExitHook();
  const child = spawn(process.execPath, [bin, "serve", "--data-dir", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: childEnv(),
  });
  live.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      resolve();
    }),
  );
  let logs = "";
  child.stderr.on("data", (chunk: Buffer) => (logs += chunk.toString()));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`serve did not start within ${START_TIMEOUT_MS} ms:\n${logs}`)),
        START_TIMEOUT_MS,
      );
      child.stdout.on("data", (chunk: Buffer) => {
        logs += chunk.toString();
        const match = /"url":"(https:\/\/[^"]+)".*signet runtime listening/.exec(logs);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${child.exitCode ?? child.signalCode}:\n${logs}`));
      });
    });
    return { url, child, logs: () => logs, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}
