// End to end: the examples in examples/ run as separate processes, configured the way the README says,
// against a real runtime over TLS whose data directory is laid out like `signet init` leaves it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ed25519PrivateKey } from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The policy `signet init` writes, so the decision example runs under exactly what the README sets up.
import { DEVELOPMENT_POLICY_YAML } from "../../cli/src/commands/dev-policy.js";
import { type RealRuntime, startRealRuntime } from "./helpers/real-runtime.js";
import { Cleanup, waitFor } from "./helpers/wait.js";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const examples = join(repo, "examples");

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** Starts an example the way the README does (`tsx`, env for the secret, flags for the rest). */
function runExample(file: string, args: readonly string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, ["--import", "tsx", join(examples, file), ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    exited: new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code))),
  };
  child.stdout.on("data", (chunk: Buffer) => (run.stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (run.stderr += chunk.toString("utf8")));
  return run;
}

/** Runs an example to its end; `cleanup` kills it if the test gives up first. */
async function runToExit(
  cleanup: Cleanup,
  file: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runExample(file, args, env);
  cleanup.add(async () => {
    if (run.child.exitCode === null) run.child.kill("SIGKILL");
    await run.exited;
  });
  const code = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

/**
 * What the README has the reader do for each agent with `signet keys generate`, `agent deploy` and
 * `auth create-key`: a key in `keys/AGENT.key`, the definition from examples/agents, and an API key.
 */
async function deployExampleAgent(
  fx: RealRuntime,
  agent: string,
  permissions: readonly string[] = [],
): Promise<string> {
  const key = Ed25519PrivateKey.generate();
  writeFileSync(join(fx.dir, "keys", `${agent}.key`), key.toPem(), { mode: 0o600 });
  await fx.admin("POST", "/v1/agents", {
    definition: readFileSync(join(examples, "agents", `${agent}.md`), "utf8"),
    public_keys: [key.publicKey.toPem()],
  });
  const created = await fx.admin<{ key: string }>("POST", "/v1/auth/keys", {
    name: agent,
    principal: agent,
    kind: "agent",
    permissions,
  });
  return created.key;
}

describe("examples against a real runtime", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let toolServer: Run;
  let shopperKey: string;

  beforeAll(async () => {
    fx = await startRealRuntime();
    cleanup.add(() => fx.close());
    const botKey = await deployExampleAgent(fx, "inventory-bot");
    shopperKey = await deployExampleAgent(fx, "shopper");
    toolServer = runExample("inventory-agent.ts", ["--url", fx.url, "--data-dir", fx.dir], {
      SIGNET_API_KEY: botKey,
    });
    cleanup.add(async () => {
      if (toolServer.child.exitCode === null) toolServer.child.kill("SIGKILL");
      await toolServer.exited;
    });
    await waitFor(
      () => toolServer.stdout.includes("serving inventory/lookup") || toolServer.child.exitCode !== null,
      "the tool server to connect",
      { timeoutMs: 45_000 },
    );
    expect(toolServer.stdout, toolServer.stderr).toContain("serving inventory/lookup");
  });
  afterAll(() => cleanup.run());

  async function shopper(
    ...args: string[]
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runToExit(cleanup, "shopper.ts", ["--url", fx.url, "--data-dir", fx.dir, ...args], {
      SIGNET_API_KEY: shopperKey,
    });
  }

  it("the shopper gets a verified answer from the inventory agent", async () => {
    const { code, stdout, stderr } = await shopper("SKU-42");
    expect(code, stderr).toBe(0);
    const answer = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(answer).toMatchObject({
      status: "ok",
      body: { sku: "SKU-42", stock: 7 },
      executor: "inventory-bot",
      duplicate: false,
      attempts: 1,
    });
    expect(typeof answer.audit_id).toBe("string");
    await waitFor(
      () => toolServer.stdout.includes("lookup SKU-42 for shopper"),
      "the tool server's log line",
    );
  });

  it("a product the tool does not know comes back as a signed tool error", async () => {
    const { code, stdout } = await shopper("SKU-999");
    expect(code).toBe(1);
    expect(JSON.parse(stdout.trim())).toMatchObject({
      status: "error",
      body: { error: { code: "unknown_sku" } },
    });
  });

  it("arguments the tool's schema refuses never reach its handler", async () => {
    const { code, stdout } = await shopper("not-a-sku");
    expect(code).toBe(1);
    expect(JSON.parse(stdout.trim())).toMatchObject({
      status: "error",
      body: { error: { code: "INVALID_PAYLOAD" } },
    });
    expect(toolServer.stdout).not.toContain("not-a-sku");
  });

  it("a wrong API key is refused with its code", async () => {
    shopperKey = `sgk_${"A".repeat(16)}_${"B".repeat(43)}`;
    const { code, stderr } = await shopper("SKU-42");
    expect(code).toBe(1);
    expect(stderr).toContain("refused: UNAUTHENTICATED");
  });

  it("the tool server finishes and exits cleanly on SIGTERM", async () => {
    toolServer.child.kill("SIGTERM");
    expect(await toolServer.exited).toBe(0);
    expect(toolServer.stdout).toContain("inventory-bot closed");
  });
});

describe("the decision example against a real runtime under the development policy", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    fx = await startRealRuntime({ policy: DEVELOPMENT_POLICY_YAML });
    cleanup.add(() => fx.close());
    // As the README says: only the planner's key may watch sessions.
    keys.SIGNET_PLANNER_KEY = await deployExampleAgent(fx, "planner", ["session:watch"]);
    keys.SIGNET_REVIEWER_KEY = await deployExampleAgent(fx, "reviewer");
    keys.SIGNET_SECURITY_KEY = await deployExampleAgent(fx, "security");
  });
  afterAll(() => cleanup.run());

  it("three agents reach a committed decision with a verified commitment; a spoofed vote is never sent", async () => {
    const { code, stdout, stderr } = await runToExit(
      cleanup,
      "decision.ts",
      ["--url", fx.url, "--data-dir", fx.dir],
      keys,
    );
    expect(code, `${stdout}\n${stderr}`).toBe(0);

    expect(stdout).toContain(
      'reviewer: vote as mallory refused locally: IdentityMismatchError IDENTITY_MISMATCH (expected "reviewer", actual "mallory"); nothing was sent, the session still has 3 messages',
    );

    const verified = /^commitment verified: (.+)$/m.exec(stdout);
    expect(verified, stdout).not.toBeNull();
    const commitment = JSON.parse(verified![1]!) as {
      session: string;
      outcome: unknown;
      history_hash: string;
    };
    expect(commitment.outcome).toEqual({
      result: "committed",
      proposal_id: "p1",
      proposer: "planner",
      title: "rotate the payments API key",
      votes: { APPROVE: 2, REJECT: 0, ABSTAIN: 0 },
      approvals: ["reviewer", "security"],
      min_approvals: 2,
    });
    expect(commitment.history_hash).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The watcher printed the whole lifecycle, in order, through RESOLVED.
    const events = [...stdout.matchAll(/^\[watch\] #(\d+) (\w+) /gm)];
    expect(events.map((event) => event[2])).toEqual([
      "CREATED",
      ...Array<string>(6).fill("MESSAGE_ACCEPTED"),
      "RESOLVED",
    ]);
    const ids = events.map((event) => Number(event[1]));
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);

    // What the runtime holds: the six messages of the three agents, values in the wire's case, and
    // nothing from mallory.
    const { messages } = await fx.admin<{ messages: { sender: string; kind: string; body: any }[] }>(
      "GET",
      `/v1/sessions/${commitment.session}/messages`,
    );
    expect(messages.map((message) => [message.sender, message.kind])).toEqual([
      ["planner", "propose"],
      ["reviewer", "evaluate"],
      ["security", "evaluate"],
      ["reviewer", "vote"],
      ["security", "vote"],
      ["planner", "commit"],
    ]);
    expect(messages[2]!.body.recommendation).toBe("APPROVE");
    expect(messages.slice(3, 5).map((message) => message.body.vote)).toEqual(["APPROVE", "APPROVE"]);
    const { session } = await fx.admin<{ session: { status: string; history_hash: string } }>(
      "GET",
      `/v1/sessions/${commitment.session}`,
    );
    expect(session).toMatchObject({ status: "RESOLVED", history_hash: commitment.history_hash });
    // The vote in mallory's name never reached the runtime, which audits every identity mismatch.
    const refusals = await fx.admin<{ entries: unknown[] }>("GET", "/v1/audit?code=IDENTITY_MISMATCH");
    expect(refusals.entries).toEqual([]);
  });

  it("without session:watch the decision still commits, and the watcher says what it lacks", async () => {
    const { key } = await fx.admin<{ key: string }>("POST", "/v1/auth/keys", {
      name: "planner-no-watch",
      principal: "planner",
      kind: "agent",
      permissions: [],
    });
    const { code, stdout, stderr } = await runToExit(
      cleanup,
      "decision.ts",
      ["--url", fx.url, "--data-dir", fx.dir],
      { ...keys, SIGNET_PLANNER_KEY: key },
    );
    expect(code, stderr).toBe(0);
    expect(stderr).toContain(
      "[watch] refused: FORBIDDEN (the planner's API key needs the session:watch permission)",
    );
    expect(stdout).not.toContain("[watch]");
    expect(stdout).toMatch(/^commitment verified: .*"result":"committed"/m);
  });

  it("names every API key variable that is missing, before it connects", async () => {
    const { code, stderr } = await runToExit(
      cleanup,
      "decision.ts",
      ["--url", fx.url, "--data-dir", fx.dir],
      {
        SIGNET_PLANNER_KEY: keys.SIGNET_PLANNER_KEY!,
        SIGNET_REVIEWER_KEY: "",
        SIGNET_SECURITY_KEY: "",
      },
    );
    expect(code).not.toBe(0);
    expect(stderr).toContain(
      "Set SIGNET_REVIEWER_KEY to reviewer's API key, SIGNET_SECURITY_KEY to security's API key",
    );
  });
});
