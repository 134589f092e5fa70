// `signet sessions list | get | messages | cancel | watch` against a real runtime over TLS, set up the way
// a user does it (`signet init`), with sessions run by SDK agents. Commands run in process from source;
// `watch` (which runs until SIGINT) and one refusal run as the built bin in a child process.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Ed25519PrivateKey } from "@signet/protocol";
import { type Runtime, createApiKey, createLogger, createRuntime, loadConfig } from "@signet/runtime";
import { AuthConfig, DecisionSession, SignetClient } from "@signet/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type CliRun, runSignet } from "./helpers/run-in-process.js";
import { initDataDir } from "../src/commands/init.js";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../bin/signet.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "signet-cli-sessions-"));
const dataDir = join(dir, "data");
/** How long a child may take to print what the test waits for, or to exit after SIGINT. */
const CHILD_WAIT_MS = 15_000;
const EXIT_WAIT_MS = 5_000;

let runtime: Runtime;
let url = "";
let adminKey = "";
const agentKeys: Record<string, string> = {};
const clients: SignetClient[] = [];
/** A decision alice and bob committed: four messages (propose, two votes, commit). */
let resolvedId = "";
/** A decision still open, with one proposal. */
let openId = "";

function clientFor(agent: string, key: Ed25519PrivateKey, ca: string): SignetClient {
  const client = new SignetClient({
    target: url,
    rootCertificates: ca,
    auth: AuthConfig.forApiKey(agentKeys[agent]!, { expectedSender: agent }),
    agentId: agent,
    signingKey: key,
    runtimePublicKey: runtime.signingKey.publicKey.toBase64Url(),
  });
  clients.push(client);
  return client;
}

let alice: SignetClient;
let bob: SignetClient;

/** Starts a decision of alice's with bob and proposes p1; resolves to its id. */
async function openDecision(): Promise<string> {
  const decision = new DecisionSession(alice);
  await decision.start({ participants: ["bob"], ttlMs: 600_000 });
  await decision.propose("p1", { title: "ship it" });
  return decision.id;
}

beforeAll(async () => {
  ({ adminKey } = await initDataDir(dataDir, { force: false }));
  runtime = await createRuntime(loadConfig({ dataDir, env: {}, overrides: { port: 0 } }), {
    logger: createLogger({ level: "silent" }),
  });
  url = await runtime.start();
  const ca = readFileSync(join(dataDir, "certs", "ca.crt"), "utf8");
  const ctx = { actor: "sessions-test" };
  // The development policy `init` wrote lets alice and bob start and speak in sessions.
  const keys = { alice: Ed25519PrivateKey.generate(), bob: Ed25519PrivateKey.generate() };
  for (const [name, key] of Object.entries(keys)) {
    await runtime.registry.deploy(
      `---\nname: ${name}\nserves: []\n---\nTest agent ${name}.\n`,
      [key.publicKey.toBase64Url()],
      ctx,
    );
    agentKeys[name] = (
      await createApiKey(
        runtime.stores.apiKeys,
        { name, principal: name, kind: "agent", permissions: [] },
        ctx,
      )
    ).key;
  }
  alice = clientFor("alice", keys.alice, ca);
  bob = clientFor("bob", keys.bob, ca);

  const decision = new DecisionSession(alice);
  await decision.start({ participants: ["bob"], ttlMs: 600_000 });
  await decision.propose("p1", { title: "ship it" });
  await decision.vote("p1", "approve");
  await new DecisionSession(bob, { id: decision.id }).vote("p1", "approve");
  const { session } = await decision.commit("p1");
  expect(session.status).toBe("RESOLVED");
  resolvedId = decision.id;
  openId = await openDecision();
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await runtime?.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
  process.exitCode = undefined;
});

/** Runs `signet ARGS --data-dir DATA_DIR` in process with `apiKey`; resolves to its output and exit code. */
async function signet(args: string[], apiKey = adminKey): Promise<CliRun> {
  return runSignet(args, { url, apiKey, dataDir });
}

/** The environment of a child `signet`: the runtime's URL and `apiKey`, no other SIGNET_* variables. */
function childEnv(apiKey: string): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("SIGNET_"))),
    SIGNET_URL: url,
    SIGNET_API_KEY: apiKey,
  };
}

/** A `signet sessions watch` child process, SIGKILLed when disposed if it is still running. */
interface WatchProcess extends AsyncDisposable {
  /** Resolves to stdout once `pattern` matches it; rejects after CHILD_WAIT_MS or if the child exits. */
  waitFor(pattern: RegExp): Promise<string>;
  /** Sends SIGINT and resolves to how the child exited; rejects if it is still running after EXIT_WAIT_MS. */
  interrupt(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWatch(args: string[]): WatchProcess {
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, "sessions", "watch", ...args, "--data-dir", dataDir],
    { stdio: ["ignore", "pipe", "pipe"], env: childEnv(adminKey) },
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const bounded = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} within ${ms} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
        ms,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };
  return {
    waitFor(pattern) {
      const seen = new Promise<string>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(stdout)) {
            child.stdout!.off("data", check);
            resolve(stdout);
          }
        };
        child.stdout!.on("data", check);
        void exited.then(({ code, signal }) =>
          reject(new Error(`watch exited (${code ?? signal}) before ${pattern}\n${stdout}\n${stderr}`)),
        );
        check();
      });
      return bounded(seen, CHILD_WAIT_MS, `watch did not print ${pattern}`);
    },
    async interrupt() {
      child.kill("SIGINT");
      return bounded(exited, EXIT_WAIT_MS, "watch did not exit after SIGINT");
    },
    async [Symbol.asyncDispose]() {
      if (running()) child.kill("SIGKILL");
      await exited;
    },
  };
}

describe("signet sessions list", () => {
  it("shows the sessions in a table, and --json parses", async () => {
    const { stdout, exitCode } = await signet(["sessions", "list"]);
    expect(exitCode).toBe(0);
    const [header, ...rows] = stdout.trimEnd().split("\n");
    expect(header).toMatch(
      /^ID +MODE +STATUS +INITIATOR +PARTICIPANTS +MESSAGES +CREATED +EXPIRES \/ CLOSED$/,
    );
    expect(rows.find((row) => row.startsWith(resolvedId))).toMatch(
      new RegExp(
        `^${resolvedId} +decision +RESOLVED +alice +2 +4 +\\d{4}-[\\d-]+T[\\d:.]+Z +closed \\d{4}-[\\d-]+T[\\d:.]+Z$`,
      ),
    );
    expect(rows.find((row) => row.startsWith(openId))).toMatch(/ OPEN +alice +2 +1 +\S+ +expires \S+$/);

    const listed = JSON.parse((await signet(["sessions", "list", "--json"])).stdout) as {
      id: string;
      status: string;
      participants: string[];
    }[];
    expect(listed.find((s) => s.id === resolvedId)).toMatchObject({
      status: "RESOLVED",
      participants: ["alice", "bob"],
    });
    expect(listed.map((s) => s.id)).toContain(openId);
  });

  it("filters by status, mode, participant and limit", async () => {
    const resolved = JSON.parse(
      (await signet(["sessions", "list", "--status", "RESOLVED", "--mode", "decision", "--json"])).stdout,
    ) as { id: string; status: string }[];
    expect(resolved.map((s) => s.id)).toEqual([resolvedId]);
    const byBob = JSON.parse(
      (await signet(["sessions", "list", "--participant", "bob", "--json"])).stdout,
    ) as unknown[];
    expect(byBob.length).toBeGreaterThanOrEqual(2);
    const limited = await signet(["sessions", "list", "--limit", "1"]);
    expect(limited.stdout.trimEnd().split("\n")).toHaveLength(2);
    const first = (/--after (\S+)\)/.exec(limited.stderr) ?? [])[1];
    expect(first).toBeDefined();
    // The next page starts after it.
    const second = JSON.parse(
      (await signet(["sessions", "list", "--limit", "1", "--after", first!, "--json"])).stdout,
    ) as { id: string }[];
    expect(second).toHaveLength(1);
    expect(second[0]!.id).not.toBe(first);
    expect((await signet(["sessions", "list", "--mode", "quorum"])).stdout).toBe("no sessions match\n");
  });
});

describe("signet sessions get and messages", () => {
  it("get shows a resolved session and its commitment, verified over the message history", async () => {
    const { stdout, exitCode } = await signet(["sessions", "get", resolvedId]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain(`session ${resolvedId}\n  mode         decision\n  status       RESOLVED\n`);
    expect(stdout).toContain("  participants alice, bob\n");
    expect(stdout).toMatch(/ {2}outcome {6}\{"result":"committed","proposal_id":"p1",/);
    expect(stdout).toContain(
      `commitment: verified with the runtime key ${runtime.signingKey.kid} over the 4 messages\n`,
    );

    const json = JSON.parse((await signet(["sessions", "get", resolvedId, "--json"])).stdout) as {
      session: { id: string; status: string; history_hash: string };
      commitment: { session: string; history_hash: string };
      verification: { status: string; kid: string; message_count: number };
    };
    expect(json.session).toMatchObject({ id: resolvedId, status: "RESOLVED" });
    expect(json.commitment).toMatchObject({ session: resolvedId, history_hash: json.session.history_hash });
    expect(json.verification).toEqual({
      status: "verified",
      kid: runtime.signingKey.kid,
      message_count: 4,
    });
  });

  it("get fails (exit 1) with another runtime's key", async () => {
    const other = join(dir, "other.pub");
    writeFileSync(other, Ed25519PrivateKey.generate().publicKey.toPem());
    const { stdout, exitCode } = await signet(["sessions", "get", resolvedId, "--key", other]);
    expect(exitCode).toBe(1);
    expect(stdout).toContain("commitment: FAILED: SIGNATURE_INVALID: ");
  });

  it("get shows an open session without a commitment, and an unknown one is SESSION_NOT_FOUND", async () => {
    const { stdout } = await signet(["sessions", "get", openId]);
    expect(stdout).toContain(`session ${openId}\n  mode         decision\n  status       OPEN\n`);
    expect(stdout).not.toContain("commitment");
    expect(stdout).not.toContain("closed");
    await expect(signet(["sessions", "get", "x".repeat(22)])).rejects.toThrow(/^SESSION_NOT_FOUND: /);
  });

  it("messages lists the accepted messages in order, and --json parses", async () => {
    const { stdout } = await signet(["sessions", "messages", resolvedId]);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(
      new RegExp(`^session ${resolvedId}: 4 message\\(s\\); history sha256:[0-9a-f]{64}$`),
    );
    expect(lines[1]).toMatch(/^SEQ +ACCEPTED +SENDER +KIND +BODY$/);
    expect(lines.slice(2).map((line) => line.trim().split(/ +/).slice(0, 4))).toEqual([
      ["0", expect.any(String), "alice", "propose"],
      ["1", expect.any(String), "alice", "vote"],
      ["2", expect.any(String), "bob", "vote"],
      ["3", expect.any(String), "alice", "commit"],
    ]);
    expect(lines[2]).toMatch(/ {2}\{"proposal_id":"p1","title":"ship it"\}$/);

    const json = JSON.parse((await signet(["sessions", "messages", resolvedId, "--json"])).stdout) as {
      session_id: string;
      messages: { seq: number; kind: string; envelope_hash: string }[];
    };
    expect(json.session_id).toBe(resolvedId);
    expect(json.messages.map((m) => m.kind)).toEqual(["propose", "vote", "vote", "commit"]);
  });
});

describe("signet sessions cancel", () => {
  it("is refused FORBIDDEN with an agent key lacking session:cancel, exiting non-zero", async () => {
    await expect(signet(["sessions", "cancel", openId], agentKeys.alice)).rejects.toThrow(/^FORBIDDEN: /);
    // The built bin reports the refusal with its code and exits 1.
    const refused = await run(process.execPath, [bin, "sessions", "cancel", openId, "--data-dir", dataDir], {
      env: childEnv(agentKeys.alice!),
    }).then(
      () => ({ code: 0, stderr: "" }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^signet: FORBIDDEN: /);
    expect(JSON.parse((await signet(["sessions", "get", openId, "--json"])).stdout)).toMatchObject({
      session: { status: "OPEN" },
    });
  });

  it("cancels an open session with the admin key; a second cancel is SESSION_NOT_OPEN", async () => {
    const id = await openDecision();
    const { stdout } = await signet(["sessions", "cancel", id, "--reason", "superseded"]);
    expect(stdout).toBe(`cancelled ${id} (decision, 1 message(s))\n`);
    const { session } = JSON.parse((await signet(["sessions", "get", id, "--json"])).stdout) as {
      session: { status: string; closed_at?: string };
    };
    expect(session.status).toBe("CANCELLED");
    expect(session.closed_at).toEqual(expect.any(String));
    await expect(signet(["sessions", "cancel", id])).rejects.toThrow(/^SESSION_NOT_OPEN: /);
  });
});

describe("signet sessions watch", () => {
  it("prints CREATED and MESSAGE_ACCEPTED for a session started while it runs, and exits 0 on SIGINT", async () => {
    await using watch = startWatch(["--from", "0"]);
    // Replayed history first: the stream is open once the first session's start is printed.
    await watch.waitFor(new RegExp(`CREATED +${resolvedId} `));
    const id = await openDecision();
    const stdout = await watch.waitFor(new RegExp(`MESSAGE_ACCEPTED +${id} `));
    expect(stdout).toMatch(
      new RegExp(
        `\\n +\\d+ {2}\\d{4}-[\\d-]+T[\\d:.]+Z {2}CREATED {11}${id} {2}decision by alice; participants alice, bob\\n`,
      ),
    );
    expect(stdout).toMatch(
      new RegExp(`MESSAGE_ACCEPTED {2}${id} {2}#0 propose from alice \\(message [0-9a-f-]{36}\\)\\n`),
    );
    expect(stdout).toMatch(new RegExp(`RESOLVED +${resolvedId} {2}outcome \\{"result":"committed"`));
    expect(await watch.interrupt()).toEqual({ code: 0, signal: null });
  });

  it("--session --json prints one session's events, one JSON object a line", async () => {
    await using watch = startWatch(["--session", resolvedId, "--from", "0", "--json"]);
    const stdout = await watch.waitFor(/"type":"RESOLVED"/);
    const events = stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as { id: number; session_id: string; type: string });
    expect(events.map((event) => event.type)).toEqual([
      "CREATED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "MESSAGE_ACCEPTED",
      "RESOLVED",
    ]);
    expect(events.every((event) => event.session_id === resolvedId)).toBe(true);
    expect(events.map((event) => event.id)).toEqual(
      [...events.map((event) => event.id)].sort((a, b) => a - b),
    );
    expect(await watch.interrupt()).toEqual({ code: 0, signal: null });
  });

  it("reports a refusal with its code", async () => {
    await expect(signet(["sessions", "watch", "--session", "x".repeat(22)])).rejects.toThrow(
      /^SESSION_NOT_FOUND: /,
    );
  });
});
