// A user's first run, for real: `signet init`, `signet serve`, then the admin commands against it.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../bin/signet.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "signet-serve-"));
const dataDir = join(dir, "data");

let server: ChildProcess | undefined;
let url = "";
let adminKey = "";
let logs = "";

function signet(args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [bin, ...args], {
    env: { ...process.env, SIGNET_API_KEY: adminKey, SIGNET_URL: url, ...env },
  });
}

beforeAll(async () => {
  const init = await run(process.execPath, [bin, "init", "--data-dir", dataDir, "--json"]);
  adminKey = (JSON.parse(init.stdout) as { admin_api_key: string }).admin_api_key;
  server = spawn(process.execPath, [bin, "serve", "--data-dir", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${logs}`)), 20_000);
    server!.stdout!.on("data", (chunk: Buffer) => {
      logs += chunk.toString();
      const match = /"url":"(https:\/\/[^"]+)".*signet runtime listening/.exec(logs);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server!.stderr!.on("data", (chunk: Buffer) => (logs += chunk.toString()));
    server!.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${logs}`)));
  });
}, 60_000);

afterAll(() => {
  server?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("signet init + serve", () => {
  it("init wrote config, certificates and keys with private files at 0600, and printed the admin key once", () => {
    for (const file of [
      "signet.yaml",
      "certs/ca.key",
      "certs/server.key",
      "keys/runtime.key",
      "signet.db",
      "audit.db",
    ]) {
      expect(statSync(join(dataDir, file)).mode & 0o077, file).toBe(0);
    }
    expect(adminKey).toMatch(/^sgk_/);
    expect(readFileSync(join(dataDir, "signet.yaml"), "utf8")).not.toContain(adminKey);
  });

  it("refuses to initialize the same data dir twice", async () => {
    await expect(run(process.execPath, [bin, "init", "--data-dir", dataDir])).rejects.toMatchObject({
      code: 1,
    });
  });

  it("serves HTTPS, and the admin commands work against it", async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const me = await signet(["auth", "check", "--data-dir", dataDir, "--json"]);
    expect(JSON.parse(me.stdout)).toMatchObject({ id: "admin", method: "api_key" });

    await signet(["keys", "generate", "--out", join(dir, "bot.key")]);
    await signet(["keys", "generate", "--out", join(dir, "bot2.key")]);
    writeFileSync(
      join(dir, "bot.md"),
      "---\nname: report-bot\nserves: [reports/build]\n---\nBuilds reports.\n",
    );
    const deployed = JSON.parse(
      (
        await signet([
          "agent",
          "deploy",
          join(dir, "bot.md"),
          "--public-key",
          join(dir, "bot.key.pub"),
          "--data-dir",
          dataDir,
          "--json",
        ])
      ).stdout,
    ) as { id: string; keys: { kid: string; state: string }[] };
    expect(deployed.id).toBe("report-bot");
    const firstKid = deployed.keys[0]!.kid;

    const listed = await signet(["agent", "list", "--data-dir", dataDir]);
    expect(listed.stdout).toContain("report-bot");

    const rotated = JSON.parse(
      (
        await signet([
          "agent",
          "rotate-key",
          "report-bot",
          "--public-key",
          join(dir, "bot2.key.pub"),
          "--grace",
          "1h",
          "--data-dir",
          dataDir,
          "--json",
        ])
      ).stdout,
    ) as { kid: string; state: string }[];
    expect(rotated.find((k) => k.kid === firstKid)?.state).toBe("retiring");

    const revoked = JSON.parse(
      (await signet(["agent", "revoke-key", "report-bot", firstKid, "--data-dir", dataDir, "--json"])).stdout,
    ) as { state: string };
    expect(revoked.state).toBe("revoked");

    const created = JSON.parse(
      (
        await signet([
          "auth",
          "create-key",
          "--name",
          "ci",
          "--principal",
          "ci-bot",
          "--permissions",
          "agent:read",
          "--expires-in",
          "1h",
          "--data-dir",
          dataDir,
          "--json",
        ])
      ).stdout,
    ) as { key: string; id: string };
    const asCi = await signet(["agent", "list", "--data-dir", dataDir, "--json"], {
      SIGNET_API_KEY: created.key,
    });
    expect(asCi.stdout).toContain("report-bot");
    await signet(["auth", "revoke-key", created.id, "--data-dir", dataDir]);
    await expect(
      signet(["agent", "list", "--data-dir", dataDir], { SIGNET_API_KEY: created.key }),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining("UNAUTHENTICATED"),
    });
  });

  it("policy check validates the development policy init wrote, and names file and line of a bad one", async () => {
    const ok = await signet(["policy", "check", join(dataDir, "policies", "development.yaml")]);
    expect(ok.stdout).toContain("ok: 1 file(s)");
    const bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      "version: 1\nrules:\n  - id: broken\n    effect: maybe\n    actions: [invoke]\n    resources: ['*']\n    principals: ['*']\n",
    );
    await expect(signet(["policy", "check", bad])).rejects.toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/bad\.yaml:4:\d+: rule "broken"/),
    });
  });

  it("policy explain asks the running runtime and shows the deciding rule", async () => {
    const allowed = await signet([
      "policy",
      "explain",
      "--principal",
      "alice",
      "--action",
      "invoke",
      "--resource",
      "tool:database/query",
      "--params",
      '{"query":"select 1","limit":10}',
      "--data-dir",
      dataDir,
      "--json",
    ]);
    expect(JSON.parse(allowed.stdout).decision).toMatchObject({
      effect: "allow",
      rules: ["demo-database-query"],
    });
    const denied = await signet([
      "policy",
      "explain",
      "--principal",
      "alice",
      "--action",
      "invoke",
      "--resource",
      "tool:database/drop",
      "--data-dir",
      dataDir,
    ]);
    expect(denied.stdout).toContain("no-table-drops");
  });

  it("shuts down gracefully on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => server!.once("exit", (code) => resolve(code)));
    server!.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(logs).toContain("shutting down");
    expect(logs).toContain('"msg":"stopped"');
  });
});
