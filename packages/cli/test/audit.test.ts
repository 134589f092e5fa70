// `signet audit query | export | verify | proof | checkpoints` against a real runtime over TLS, set up the
// way a user does it (`signet init`), with real invocations and refusals recorded; commands run in
// process from source.
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AuditEntry, Ed25519PrivateKey, verifyAuditNdjson } from "@signet/protocol";
import { type Runtime, createApiKey, createLogger, createRuntime, loadConfig } from "@signet/runtime";
import { Agent, AuthConfig, PermissionDeniedError, SignetClient } from "@signet/sdk";
import { Agent as HttpsAgent, request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type CliRun, runSignet } from "./helpers/run-in-process.js";
import { runDemo } from "../src/commands/demo.js";
import { initDataDir } from "../src/commands/init.js";

const dir = mkdtempSync(join(tmpdir(), "signet-cli-audit-"));
const dataDir = join(dir, "data");
let runtime: Runtime;
let url = "";
let adminKey = "";
let tool: Agent | undefined;
let alice: SignetClient | undefined;
/** The tree size of the checkpoint signed after the first round of activity. */
let firstCheckpoint = 0;

async function invokeAsAlice(limit: number): Promise<string> {
  try {
    await alice!.invoke("tool:database/query", { query: "select 42", limit });
    return "OK";
  } catch (error) {
    if (error instanceof PermissionDeniedError) return error.code;
    throw error;
  }
}

beforeAll(async () => {
  ({ adminKey } = await initDataDir(dataDir, { force: false }));
  // Checkpoints only when the test signs them, so their number is known.
  appendFileSync(join(dataDir, "signet.yaml"), "\naudit:\n  checkpoint_interval_ms: 0\n");
  runtime = await createRuntime(loadConfig({ dataDir, env: {}, overrides: { port: 0 } }), {
    logger: createLogger({ level: "silent" }),
  });
  url = await runtime.start();
  const ca = readFileSync(join(dataDir, "certs", "ca.crt"), "utf8");
  const ctx = { actor: "audit-test" };
  const keys = { alice: Ed25519PrivateKey.generate(), "db-bot": Ed25519PrivateKey.generate() };
  const apiKeys: Record<string, string> = {};
  for (const [name, key] of Object.entries(keys)) {
    const serves = name === "db-bot" ? "[database/query]" : "[]";
    await runtime.registry.deploy(
      `---\nname: ${name}\nserves: ${serves}\n---\nTest agent ${name}.\n`,
      [key.publicKey.toBase64Url()],
      ctx,
    );
    apiKeys[name] = (
      await createApiKey(
        runtime.stores.apiKeys,
        { name, principal: name, kind: "agent", permissions: [] },
        ctx,
      )
    ).key;
  }
  const runtimePublicKey = runtime.signingKey.publicKey.toBase64Url();
  tool = new Agent({
    target: url,
    rootCertificates: ca,
    auth: AuthConfig.forApiKey(apiKeys["db-bot"]!, { expectedSender: "db-bot" }),
    agentId: "db-bot",
    signingKey: keys["db-bot"],
    runtimePublicKey,
  });
  tool.serve("database/query", () => ({ rows: [[42]] }));
  await tool.connect();
  alice = new SignetClient({
    target: url,
    rootCertificates: ca,
    auth: AuthConfig.forApiKey(apiKeys.alice!, { expectedSender: "alice" }),
    agentId: "alice",
    signingKey: keys.alice,
    runtimePublicKey,
  });
  expect(await invokeAsAlice(10)).toBe("OK");
  expect(await invokeAsAlice(500)).toBe("POLICY_DENIED");
  // An unauthenticated request: an auth_failure entry.
  const dispatcher = new HttpsAgent({ connect: { ca } });
  const refused = await request(`${url}/v1/agents`, {
    headers: { authorization: "Bearer sgk_not-a-key" },
    dispatcher,
  });
  await refused.body.dump();
  await dispatcher.close();
  expect(refused.statusCode).toBe(401);
  await runtime.audit.flush();
  firstCheckpoint = (await runtime.audit.checkpoint())!.tree_size;
  // More activity after that checkpoint, then a second one.
  expect(await invokeAsAlice(20)).toBe("OK");
  await runtime.audit.flush();
  await runtime.audit.checkpoint();
}, 60_000);

afterAll(async () => {
  await tool?.close().catch(() => undefined);
  await alice?.close().catch(() => undefined);
  await runtime?.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
  process.exitCode = undefined;
});

/** Runs `signet ARGS --data-dir DATA_DIR` in process as the admin; resolves to its output and exit code. */
async function signet(args: string[]): Promise<CliRun> {
  return runSignet(args, { url, apiKey: adminKey, dataDir });
}

async function query(args: string[]): Promise<AuditEntry[]> {
  return JSON.parse((await signet(["audit", "query", ...args, "--json"])).stdout) as AuditEntry[];
}

function entryLines(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.startsWith('{"entry":'));
}

describe("signet audit query", () => {
  it("filters by type, outcome, code, actor, target and id, and --json parses", async () => {
    const denied = await query(["--event-type", "policy_denied"]);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({
      type: "policy_denied",
      outcome: "deny",
      code: "POLICY_DENIED",
      actor: "alice",
      target: "tool:database/query",
    });

    const failures = await query(["--outcome", "deny", "--code", "UNAUTHENTICATED"]);
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const entry of failures) expect(entry).toMatchObject({ type: "auth_failure", outcome: "deny" });

    const byAlice = await query(["--actor", "alice", "--target", "tool:database/query", "--order", "asc"]);
    expect(byAlice.length).toBeGreaterThanOrEqual(3); // two allowed invocations and the denial
    expect(byAlice.every((e) => e.actor === "alice" && e.target === "tool:database/query")).toBe(true);
    expect(byAlice.map((e) => e.seq)).toEqual([...byAlice.map((e) => e.seq)].sort((a, b) => a - b));

    const [byId] = await query(["--id", denied[0]!.id]);
    expect(byId).toEqual(denied[0]);

    expect(await query(["--limit", "2"])).toHaveLength(2);
    expect((await query(["--last", "1h", "--event-type", "policy_denied"])).map((e) => e.seq)).toEqual([
      denied[0]!.seq,
    ]);
    expect(await query(["--since", "2999-01-01T00:00:00Z"])).toEqual([]);
    // Filter values are query parameters, not text pasted into a URL.
    expect(await query(["--actor", "alice&outcome=deny"])).toEqual([]);
  });

  it("prints one line per entry: seq, time, type, outcome, actor → target, code", async () => {
    const { stdout } = await signet(["audit", "query", "--event-type", "policy_denied"]);
    expect(stdout.trim()).toMatch(
      /^\d+ {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}policy_denied +deny {5}alice → tool:database\/query {2}POLICY_DENIED$/,
    );
    expect((await signet(["audit", "query", "--since", "2999-01-01T00:00:00Z"])).stdout).toBe(
      "no entries match\n",
    );
  });

  it("reports a refusal by the runtime with its code", async () => {
    await expect(signet(["audit", "query", "--since", "yesterday"])).rejects.toThrow(
      /^INVALID_REQUEST: since/,
    );
  });
});

describe("signet audit export and verify --file", () => {
  it("exports NDJSON that verifies offline with the runtime public key, and refuses to overwrite", async () => {
    const file = join(dir, "audit.ndjson");
    const exported = await signet(["audit", "export", "--output", file]);
    const lines = entryLines(file);
    expect(lines.length).toBeGreaterThan(firstCheckpoint);
    expect(exported.stdout).toBe(`exported ${lines.length} entries to ${file}\n`);
    expect(exported.stderr).toBe(""); // no progress bar when stderr is not a TTY

    // --key defaults to DATA_DIR/keys/runtime.pub, which `signet init` wrote.
    const verified = await signet(["audit", "verify", "--file", file]);
    expect(verified.exitCode).toBe(0);
    expect(verified.stdout).toMatch(
      /^ok: .*: \d+ entries \(seq 0\.\.\d+\); hash chain, Merkle roots and 2 signed/,
    );
    const report = JSON.parse(
      (
        await signet([
          "audit",
          "verify",
          "--file",
          file,
          "--key",
          join(dataDir, "keys", "runtime.pub"),
          "--json",
        ])
      ).stdout,
    ) as { ok: boolean; entries: number; checkpoints: number };
    expect(report).toMatchObject({ ok: true, entries: lines.length, checkpoints: 2 });

    const before = readFileSync(file);
    await expect(signet(["audit", "export", "--output", file])).rejects.toThrow(
      /exists: refusing to overwrite/,
    );
    expect(readFileSync(file)).toEqual(before);
    const forced = await signet(["audit", "export", "--output", file, "--force", "--json"]);
    expect(JSON.parse(forced.stdout)).toMatchObject({
      file,
      format: "ndjson",
      entries: entryLines(file).length,
    });
  });

  it("names the seq of an entry with one byte flipped, kind edited, and exits 1", async () => {
    const file = join(dir, "tampered.ndjson");
    await signet(["audit", "export", "--output", file]);
    const data = readFileSync(file);
    const lines = entryLines(file);
    const target = lines[3]!;
    const seq = (JSON.parse(target) as { entry: { seq: number } }).entry.seq;
    // Flip one byte of the entry's id (a hex digit stays a hex digit, so the line still reads).
    const lineStart = data.indexOf(target);
    const idAt = data.indexOf('"id":"', lineStart) + '"id":"'.length + 4;
    data[idAt] = data[idAt] === 0x61 ? 0x62 : 0x61;
    writeFileSync(file, data);

    const human = await signet(["audit", "verify", "--file", file]);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toContain(`FAILED: ${file} (key ${runtime.signingKey.kid}): edited at seq ${seq}:`);
    const json = await signet(["audit", "verify", "--file", file, "--json"]);
    expect(json.exitCode).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; problem: { kind: string; seq: number } };
    expect(report).toMatchObject({ ok: false, problem: { kind: "edited", seq } });
    // The streaming reader agrees with the in-memory one.
    expect(report).toEqual(
      JSON.parse(
        JSON.stringify(verifyAuditNdjson(readFileSync(file), { key: runtime.signingKey.publicKey })),
      ),
    );
  });

  it("exports JSON that verifies too, and tells the format of a file without an extension", async () => {
    const file = join(dir, "audit.json");
    const exported = await signet(["audit", "export", "--format", "json", "--output", file]);
    const document = JSON.parse(readFileSync(file, "utf8")) as { entries: unknown[]; keys: unknown[] };
    expect(exported.stdout).toBe(`exported ${document.entries.length} entries to ${file}\n`);
    expect(document.keys).toHaveLength(1);
    const verified = await signet(["audit", "verify", "--file", file]);
    expect(verified).toMatchObject({ exitCode: 0 });
    expect(verified.stdout).toMatch(/^ok: /);

    const plain = join(dir, "audit-export");
    copyFileSync(file, plain);
    expect((await signet(["audit", "verify", "--file", plain])).exitCode).toBe(0);
    const ndjson = join(dir, "audit-ndjson");
    await signet(["audit", "export", "--output", ndjson, "--from", "2"]);
    const fromTwo = JSON.parse((await signet(["audit", "verify", "--file", ndjson, "--json"])).stdout) as {
      ok: boolean;
      first_seq: number;
    };
    expect(fromTwo).toMatchObject({ ok: true, first_seq: 2 });
  });

  it("fails with another runtime's key", async () => {
    const file = join(dir, "audit.ndjson");
    const other = join(dir, "other.pub");
    writeFileSync(other, Ed25519PrivateKey.generate().publicKey.toBase64Url());
    const result = await signet(["audit", "verify", "--file", file, "--key", other, "--json"]);
    expect(result.exitCode).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, problem: { kind: "key_record" } });
  });
});

describe("signet audit verify, proof and checkpoints against the runtime", () => {
  it("verify asks the runtime to verify its log", async () => {
    const { stdout, exitCode } = await signet(["audit", "verify"]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/^ok: the runtime's audit log: \d+ entries/);
  });

  it("proof --seq checks the inclusion proof and the checkpoint's signature locally", async () => {
    const [denied] = await query(["--event-type", "policy_denied"]);
    const { stdout, exitCode } = await signet(["audit", "proof", "--seq", String(denied!.seq)]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(
      new RegExp(
        `^entry ${denied!.seq} is included in the checkpoint of tree size \\d+ \\(signed by ${runtime.signingKey.kid}\\)\n`,
      ),
    );
    const pinned = JSON.parse(
      (
        await signet([
          "audit",
          "proof",
          "--seq",
          String(denied!.seq),
          "--tree-size",
          String(firstCheckpoint),
          "--json",
        ])
      ).stdout,
    ) as { ok: boolean; tree_size: number; entry_hash: string };
    expect(pinned).toMatchObject({ ok: true, tree_size: firstCheckpoint, entry_hash: denied!.hash });
  });

  it("proof fails with a wrong --key", async () => {
    const wrong = join(dir, "wrong.pub");
    writeFileSync(wrong, Ed25519PrivateKey.generate().publicKey.toPem());
    const { stdout, exitCode } = await signet(["audit", "proof", "--seq", "1", "--key", wrong]);
    expect(exitCode).toBe(1);
    expect(stdout).toMatch(/^FAILED: the runtime's key records do not verify with the trusted key/);
  });

  it("proof --first --second checks that a later checkpoint extends an earlier one", async () => {
    const { checkpoints } = JSON.parse((await signet(["audit", "checkpoints", "--json"])).stdout) as {
      checkpoints: { tree_size: number; kid: string }[];
    };
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    const [older, newer] = [checkpoints[0]!.tree_size, checkpoints.at(-1)!.tree_size];
    const { stdout, exitCode } = await signet([
      "audit",
      "proof",
      "--first",
      String(older),
      "--second",
      String(newer),
    ]);
    expect(exitCode).toBe(0);
    expect(stdout).toContain(
      `the checkpoint of tree size ${newer} (signed by ${runtime.signingKey.kid}) extends`,
    );
    await expect(signet(["audit", "proof", "--seq", "1", "--first", "1"])).rejects.toThrow(/Give --seq/);
  });

  it("checkpoints lists tree size, time, root and key id", async () => {
    const { stdout } = await signet(["audit", "checkpoints"]);
    expect(stdout).toMatch(/^tree size \d+ \(entries from seq 0\); \d+ checkpoint\(s\); runtime key\(s\): /);
    expect(stdout).toMatch(
      new RegExp(
        `\\n +${firstCheckpoint} {2}\\d{4}-[\\d-]+T[\\d:.]+Z +sha256:[0-9a-f]{64} {2}${runtime.signingKey.kid}`,
      ),
    );
  });
});

describe("signet demo", () => {
  it("ends by verifying its audit log", async () => {
    const lines: string[] = [];
    expect(await runDemo({ write: (line) => lines.push(line) })).toBe(true);
    const output = lines.join("\n");
    expect(output).toMatch(/audit log is verified.*: VERIFIED/);
    expect(output).toMatch(/audit log: \d+ entries, chain and \d+ signed checkpoint\(s\) verify/);
    expect(output).toMatch(/[1-9]\d* refusals were recorded/);
  });
});
