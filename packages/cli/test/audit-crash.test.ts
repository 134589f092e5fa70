// Crash safety of the audit log, for real: `signet serve` in a child process answers invocations under
// load and is killed with SIGKILL mid-load. Afterwards the log opens (its saved head matches its rows),
// verifies, and holds both entries of every call the runtime answered with success.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Ed25519PrivateKey, type Receipt, signEnvelope } from "@signet/protocol";
import { Agent } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteAuditLog } from "../../runtime/src/audit/sqlite-audit-log.js";
import { registerAgent } from "../../runtime/test/helpers/agents.js";
import { RawExecutor } from "../../runtime/test/helpers/raw-executor.js";
import { type RuntimeFixture, TEST_POLICY, call } from "../../runtime/test/helpers/runtime-fixture.js";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../bin/signet.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "signet-crash-"));
const dataDir = join(dir, "data");
const CALLERS = 16;
const MAX_CALLS = 600;
const KILL_AFTER_SUCCESSES = 150;
const KILL_AFTER_MS = 8_000;

let server: ChildProcess | undefined;

afterAll(() => {
  server?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function startServe(): Promise<string> {
  let logs = "";
  server = spawn(process.execPath, [bin, "serve", "--data-dir", dataDir, "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise<string>((resolve, reject) => {
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
}

describe("the audit log survives SIGKILL of the runtime under load", () => {
  it("verifies afterwards, and every call answered with success has its decision and result entries", async () => {
    const init = await run(process.execPath, [bin, "init", "--data-dir", dataDir, "--json"]);
    const adminKey = (JSON.parse(init.stdout) as { admin_api_key: string }).admin_api_key;
    writeFileSync(join(dataDir, "policies", "development.yaml"), TEST_POLICY);
    const url = await startServe();
    const caPath = join(dataDir, "certs", "ca.crt");
    const dispatcher = new Agent({ connect: { ca: readFileSync(caPath) }, connections: CALLERS });
    // The helpers only need the URL, the admin key and a client trusting the CA.
    const fx = { url, adminKey, client: () => dispatcher } as unknown as RuntimeFixture;
    const alice = await registerAgent(fx, "alice");
    const tool = await registerAgent(fx, "db-bot", ["database/query"]);
    const executor = new RawExecutor({
      url,
      caPath,
      apiKey: tool.apiKey,
      agentId: "db-bot",
      key: tool.key,
      serves: ["database/query"],
      maxInFlight: CALLERS,
    });
    await executor.connect();

    const answered: Receipt[] = [];
    let sent = 0;
    let killed = false;
    const started = Date.now();
    const kill = (): void => {
      if (killed) return;
      killed = true;
      server!.kill("SIGKILL");
    };
    const caller = async (): Promise<void> => {
      while (!killed && sent < MAX_CALLS) {
        sent++;
        const envelope = signEnvelope(
          { type: "invoke", from: "alice", to: "tool:database/query", body: { q: `select ${sent}` } },
          alice.key,
        );
        try {
          const response = await call(fx, "POST", "/v1/envelopes", {
            headers: alice.headers,
            body: envelope.wire,
          });
          if (response.status === 200) answered.push((response.body as { receipt: Receipt }).receipt);
        } catch {
          // The connection died with the runtime: this call was never answered.
        }
        if (answered.length >= KILL_AFTER_SUCCESSES || Date.now() - started > KILL_AFTER_MS) kill();
      }
    };
    await Promise.all(Array.from({ length: CALLERS }, caller));
    kill();
    await new Promise<void>((resolve) => {
      if (server!.exitCode !== null || server!.signalCode !== null) resolve();
      else server!.once("exit", () => resolve());
    });
    expect(server!.signalCode).toBe("SIGKILL");
    await executor.close().catch(() => undefined);
    await dispatcher.close();
    expect(answered.length).toBeGreaterThanOrEqual(KILL_AFTER_SUCCESSES);

    // The log opens as the restarted runtime would (its saved head must match its rows) and verifies.
    const key = Ed25519PrivateKey.fromPem(readFileSync(join(dataDir, "keys", "runtime.key"), "utf8"));
    const log = new SqliteAuditLog({ path: join(dataDir, "audit.db"), key, checkpointIntervalMs: 0 });
    try {
      const report = await log.verify();
      expect(report.problem).toBeUndefined();
      expect(report.ok).toBe(true);
      expect(report.tree_size).toBe(log.size);
      for (const receipt of answered) {
        const [decision] = await log.query({ id: receipt.audit.request });
        expect(decision, `decision entry of ${receipt.request.id}`).toMatchObject({
          type: "invocation",
          outcome: "allow",
          actor: "alice",
          request: { hash: receipt.request.hash },
        });
        const [result] = await log.query({ id: receipt.audit.result! });
        expect(result, `result entry of ${receipt.request.id}`).toMatchObject({
          type: "invocation_result",
          outcome: "success",
          result: { hash: receipt.result!.hash },
        });
      }
    } finally {
      await log.close();
    }
  }, 60_000);
});
