// `signet auth assign-role | unassign-role | list-roles | check` against a runtime initialised the way a
// user does it (`signet init`), with the commands run in process from source.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Runtime, createLogger, createRuntime, loadConfig } from "@signet/runtime";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { initDataDir } from "../src/commands/init.js";
import { buildProgram } from "../src/program.js";

const dir = mkdtempSync(join(tmpdir(), "signet-cli-rbac-"));
const dataDir = join(dir, "data");
let runtime: Runtime;
let url = "";
let adminKey = "";

beforeAll(async () => {
  ({ adminKey } = await initDataDir(dataDir, { force: false }));
  runtime = await createRuntime(loadConfig({ dataDir, env: {}, overrides: { port: 0 } }), {
    logger: createLogger({ level: "silent" }),
  });
  url = await runtime.start();
});

afterAll(async () => {
  await runtime?.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
  process.exitCode = undefined;
});

/** Runs `signet ARGS` in process as the holder of `apiKey`; resolves to what it printed and its exit code. */
async function signet(args: string[], apiKey = adminKey): Promise<{ stdout: string; exitCode: number }> {
  vi.stubEnv("SIGNET_URL", url);
  vi.stubEnv("SIGNET_API_KEY", apiKey);
  let stdout = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  try {
    process.exitCode = undefined;
    await buildProgram()
      .exitOverride()
      .parseAsync([...args, "--data-dir", dataDir], { from: "user" });
    return { stdout, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    write.mockRestore();
    process.exitCode = undefined;
  }
}

async function createKey(principal: string, permissions: string): Promise<string> {
  const { stdout } = await signet([
    "auth",
    "create-key",
    "--name",
    principal,
    "--principal",
    principal,
    "--kind",
    "user",
    "--permissions",
    permissions,
    "--json",
  ]);
  return (JSON.parse(stdout) as { key: string }).key;
}

describe("signet auth roles", () => {
  it("assign-role grants a role; check answers for another principal and exits 1 when not allowed", async () => {
    const aliceKey = await createKey("alice", "");
    const denied = await signet(["auth", "check", "--principal", "alice", "--permission", "agent:deploy"]);
    expect(denied.exitCode).toBe(1);
    expect(denied.stdout).toContain("no: alice may not agent:deploy");

    const assigned = await signet(["auth", "assign-role", "--principal", "alice", "--role", "developer"]);
    expect(assigned.stdout).toContain("assigned developer to alice; roles: developer");

    const allowed = await signet(["auth", "check", "--principal", "alice", "--permission", "agent:deploy"]);
    expect(allowed.exitCode).toBe(0);
    expect(allowed.stdout).toContain("yes: alice may agent:deploy");
    expect(allowed.stdout).toContain("roles: developer (granted by developer)");

    const json = await signet(["auth", "check", "--principal", "alice", "--permission", "keys:*", "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ allowed: false, roles: ["developer"] });
    expect(json.exitCode).toBe(1);

    // The role applies to alice's own key at once.
    const self = await signet(["auth", "check", "--permission", "agent:deploy"], aliceKey);
    expect(self).toMatchObject({ exitCode: 0 });
    expect(self.stdout).toContain("yes: you may agent:deploy");

    const listed = await signet(["auth", "list-roles", "--principal", "alice", "--json"]);
    expect(JSON.parse(listed.stdout)).toEqual([
      { principal: "alice", role: "developer", assigned_at: expect.any(String), assigned_by: "admin" },
    ]);
    expect((await signet(["auth", "check", "--principal", "alice"])).stdout).toContain(
      "alice; roles: developer",
    );

    const removed = await signet(["auth", "unassign-role", "--principal", "alice", "--role", "developer"]);
    expect(removed.stdout).toContain("unassigned developer from alice; roles: none");
    expect((await signet(["auth", "check", "--permission", "agent:deploy"], aliceKey)).exitCode).toBe(1);
  });

  it("check without --principal keeps showing who you are", async () => {
    const { stdout } = await signet(["auth", "check", "--json"]);
    expect(JSON.parse(stdout)).toMatchObject({
      id: "admin",
      method: "api_key",
      permissions: ["*"],
      roles: [],
    });
    expect((await signet(["auth", "check"])).stdout).toMatch(
      /^admin \(user, via api_key\); roles: none; permissions: \*/,
    );
  });

  it("list-roles --definitions shows the built-in roles", async () => {
    const { stdout } = await signet(["auth", "list-roles", "--definitions", "--json"]);
    expect((JSON.parse(stdout) as { name: string }[]).map((role) => role.name)).toEqual([
      "viewer",
      "developer",
      "operator",
    ]);
  });

  it("reports a refusal with its code", async () => {
    const weakKey = await createKey("weak", "auth:roles");
    await expect(
      signet(["auth", "assign-role", "--principal", "weak", "--role", "operator"], weakKey),
    ).rejects.toThrow(/^FORBIDDEN: /);
  });
});
