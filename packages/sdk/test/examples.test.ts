// End to end: the examples in examples/ run as separate processes, configured the way the README says,
// against a real runtime over TLS whose data directory is laid out like `signet init` leaves it.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ed25519PrivateKey } from "@signet/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("examples against a real runtime", () => {
  const cleanup = new Cleanup();
  let fx: RealRuntime;
  let toolServer: Run;
  let shopperKey: string;

  beforeAll(async () => {
    fx = await startRealRuntime();
    cleanup.add(() => fx.close());
    // What the README has the reader do with `signet keys generate`, `agent deploy` and `auth create-key`.
    const apiKeys: Record<string, string> = {};
    for (const agent of ["inventory-bot", "shopper"]) {
      const key = Ed25519PrivateKey.generate();
      writeFileSync(join(fx.dir, "keys", `${agent}.key`), key.toPem(), { mode: 0o600 });
      await fx.admin("POST", "/v1/agents", {
        definition: readFileSync(join(examples, "agents", `${agent}.md`), "utf8"),
        public_keys: [key.publicKey.toPem()],
      });
      apiKeys[agent] = (
        await fx.admin<{ key: string }>("POST", "/v1/auth/keys", {
          name: agent,
          principal: agent,
          kind: "agent",
          permissions: [],
        })
      ).key;
    }
    shopperKey = apiKeys.shopper!;
    toolServer = runExample("inventory-agent.ts", ["--url", fx.url, "--data-dir", fx.dir], {
      SIGNET_API_KEY: apiKeys["inventory-bot"]!,
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
    const run = runExample("shopper.ts", ["--url", fx.url, "--data-dir", fx.dir, ...args], {
      SIGNET_API_KEY: shopperKey,
    });
    cleanup.add(async () => {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      await run.exited;
    });
    const code = await run.exited;
    return { code, stdout: run.stdout, stderr: run.stderr };
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
