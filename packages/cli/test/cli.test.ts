// The built `signet` bin, run as a user would: demo outcomes and key files.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { Ed25519PrivateKey, Ed25519PublicKey } from "@signet/protocol";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../bin/signet.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "signet-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("signet CLI", () => {
  it("demo runs an embedded runtime and shows each step with its code, then exits 0", async () => {
    const { stdout } = await run(process.execPath, [bin, "demo"]);
    for (const line of [
      "the signed result verifies: OK",
      "the tool ran once: DUPLICATE (tool ran once)",
      "names its rule: POLICY_DENIED (demo-database-query)",
      "(spoofed sender): IDENTITY_MISMATCH",
      "changed in transit: HASH_MISMATCH",
      "new message id: REPLAY_DETECTED",
      "two minutes ago: STALE_MESSAGE",
      "over the whole history: COMMITTED (commitment verified)",
      "after the decision was committed: SESSION_NOT_OPEN",
      "she signs again: KEY_REVOKED",
      "every step ended as expected",
      "runtime stopped",
    ]) {
      expect(stdout).toContain(line);
    }
  });

  it("keys generate writes a 0600 private key and its public key, and refuses to overwrite", async () => {
    const out = join(dir, "agent.key");
    const { stdout } = await run(process.execPath, [bin, "keys", "generate", "--out", out, "--json"]);
    const printed = JSON.parse(stdout) as { kid: string; public_key: string };
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const key = Ed25519PrivateKey.fromPem(readFileSync(out, "utf8"));
    expect(key.kid).toBe(printed.kid);
    expect(Ed25519PublicKey.fromPem(readFileSync(`${out}.pub`, "utf8")).kid).toBe(printed.kid);
    expect(stdout).not.toContain(key.exportSeed().toString("base64url"));
    await expect(run(process.execPath, [bin, "keys", "generate", "--out", out])).rejects.toMatchObject({
      code: 1,
    });
    expect(Ed25519PrivateKey.fromPem(readFileSync(out, "utf8")).kid).toBe(printed.kid);
  });

  it("every command has --help", async () => {
    for (const args of [["--help"], ["demo", "--help"], ["keys", "generate", "--help"]]) {
      const { stdout } = await run(process.execPath, [bin, ...args]);
      expect(stdout).toContain("Usage:");
    }
  });
});
