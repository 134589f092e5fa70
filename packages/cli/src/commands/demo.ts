// `signet demo`: an embedded runtime, two agents and a tool server, a coordination session, and every
// check shown step by step
// with its wire code. Exits non-zero if any step ends otherwise than expected.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { Ed25519PrivateKey, type JsonValue, canonicalize, signEnvelope } from "@signet/protocol";
import { type Runtime, createApiKey, createLogger, createRuntime, loadConfig } from "@signet/runtime";
import {
  Agent,
  AuthConfig,
  DecisionSession,
  PermissionDeniedError,
  SessionNotOpenError,
  SignetClient,
} from "@signet/sdk";
import { Agent as HttpsAgent, request } from "undici";
import { initDataDir } from "./init.js";

/** The demo's per-sender limit: its agents make a handful of calls each (docs/operations.md "Rate limits"). */
const DEMO_MESSAGES_PER_MINUTE = 10;

interface Step {
  readonly title: string;
  readonly expected: string;
  readonly run: () => Promise<string>;
}

/** Options for {@link runDemo}. */
export interface DemoOptions {
  /** Keep state here for inspection; a temporary folder (removed afterwards) when absent. */
  readonly dataDir?: string;
  readonly write: (line: string) => void;
}

/** Runs the demo; resolves to true when every step ended as expected. */
export async function runDemo(options: DemoOptions): Promise<boolean> {
  const { write } = options;
  const temporary = options.dataDir === undefined;
  const dataDir = resolve(options.dataDir ?? join(mkdtempSync(join(tmpdir(), "signet-demo-")), "data"));
  let runtime: Runtime | undefined;
  let tool: Agent | undefined;
  let alice: SignetClient | undefined;
  let dbBotClient: SignetClient | undefined;
  let dispatcher: HttpsAgent | undefined;
  try {
    write(`Signet demo — data in ${dataDir}${temporary ? " (temporary)" : ""}`);
    await initDataDir(dataDir, { force: false });
    const loaded = loadConfig({ dataDir, env: {}, overrides: { host: "127.0.0.1", port: 0 } });
    // Each demo sender makes a handful of calls: a small per-sender limit is plenty, and shows itself.
    const config = {
      ...loaded,
      rateLimits: { ...loaded.rateLimits, messagesPerMinute: DEMO_MESSAGES_PER_MINUTE },
    };
    runtime = await createRuntime(config, { logger: createLogger({ level: "silent" }) });
    const url = await runtime.start();
    const ca = readFileSync(join(dataDir, "certs", "ca.crt"), "utf8");
    const runtimePublicKey = runtime.signingKey.publicKey.toBase64Url();
    write(
      `runtime listening on ${url} (TLS 1.3, SQLite in the data dir); runtime key ${runtime.signingKey.kid}`,
    );

    // Three agents: alice and bob call tools; db-bot serves database/query.
    const ctx = { actor: "signet-demo" };
    const keys = {
      alice: Ed25519PrivateKey.generate(),
      bob: Ed25519PrivateKey.generate(),
      "db-bot": Ed25519PrivateKey.generate(),
    };
    const apiKeys: Record<string, string> = {};
    for (const [name, key] of Object.entries(keys)) {
      const serves = name === "db-bot" ? "[database/query]" : "[]";
      await runtime.registry.deploy(
        `---\nname: ${name}\nserves: ${serves}\n---\nDemo agent ${name}.\n`,
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
    write("registered alice, bob and db-bot, each with an Ed25519 key and an API key");

    let runs = 0;
    tool = new Agent({
      target: url,
      rootCertificates: ca,
      auth: AuthConfig.forApiKey(apiKeys["db-bot"]!, { expectedSender: "db-bot" }),
      agentId: "db-bot",
      signingKey: keys["db-bot"],
      runtimePublicKey,
    });
    tool.serve("database/query", (body) => {
      runs++;
      return { rows: [[42]], query: (body as { query?: string }).query ?? null };
    });
    await tool.connect();
    write("db-bot connected over /v1/connect and serves database/query (it verifies every call itself)");

    alice = new SignetClient({
      target: url,
      rootCertificates: ca,
      auth: AuthConfig.forApiKey(apiKeys.alice!, { expectedSender: "alice" }),
      agentId: "alice",
      signingKey: keys.alice,
      runtimePublicKey,
      resultTrust: "receipt",
    });
    const client = alice;
    // db-bot also takes part in a coordination session, as a caller of its own.
    dbBotClient = new SignetClient({
      target: url,
      rootCertificates: ca,
      auth: AuthConfig.forApiKey(apiKeys["db-bot"]!, { expectedSender: "db-bot" }),
      agentId: "db-bot",
      signingKey: keys["db-bot"],
      runtimePublicKey,
    });
    const dbBotCaller = dbBotClient;
    const decision = new DecisionSession(client);
    dispatcher = new HttpsAgent({ connect: { ca } });
    const httpsAgent = dispatcher;

    /** Submits raw bytes as `as`, the way an attacker would; returns the wire code or OK. */
    const submit = async (wire: string, as: string): Promise<string> => {
      const response = await request(`${url}/v1/envelopes`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKeys[as]!}` },
        body: wire,
        dispatcher: httpsAgent,
      });
      const body = (await response.body.json()) as { error?: { code: string } };
      return body.error?.code ?? "OK";
    };
    const draft = (overrides: Partial<Parameters<typeof signEnvelope>[0]> = {}) =>
      signEnvelope(
        {
          type: "invoke",
          from: "alice",
          to: "tool:database/query",
          body: { query: "select 42" },
          ...overrides,
        },
        keys.alice,
      );

    const details: string[] = [];
    const steps: Step[] = [
      {
        title: "alice invokes tool:database/query with a signed envelope; the signed result verifies",
        expected: "OK",
        run: async () => {
          const answer = await client.invoke("tool:database/query", { query: "select 42" });
          details.push(
            `   result from ${answer.result.from}: ${canonicalize(answer.body)}`,
            `   receipt signed by the runtime (${answer.receipt.kid}); decision recorded as ${answer.receipt.audit.request}`,
          );
          return answer.status === "ok" ? "OK" : "TOOL_FAILED";
        },
      },
      {
        title:
          "alice retries the identical envelope: the original result, marked duplicate; the tool ran once",
        expected: "DUPLICATE (tool ran once)",
        run: async () => {
          const signed = await client.sign("tool:database/query", { query: "select 1" });
          const before = runs;
          await client.send(signed.wire);
          const retry = await client.send(signed.wire);
          return retry.duplicate && runs === before + 1
            ? "DUPLICATE (tool ran once)"
            : `ran ${runs - before} times`;
        },
      },
      {
        title: "alice asks for 500 rows; the policy allows at most 100 and names its rule",
        expected: "POLICY_DENIED (demo-database-query)",
        run: async () => {
          try {
            await client.invoke("tool:database/query", { query: "select * from orders", limit: 500 });
            return "OK";
          } catch (error) {
            if (!(error instanceof PermissionDeniedError)) throw error;
            details.push(`   reason: ${error.reason ?? ""}`);
            return `${error.code} (${error.rule ?? "?"})`;
          }
        },
      },
      {
        title: "bob submits an envelope signed as alice (spoofed sender)",
        expected: "IDENTITY_MISMATCH",
        run: () => submit(draft().wire, "bob"),
      },
      {
        title: "the body is changed in transit",
        expected: "HASH_MISMATCH",
        run: () => {
          const envelope = JSON.parse(draft().wire) as Record<string, JsonValue>;
          envelope.body = { query: "drop table orders" };
          return submit(canonicalize(envelope), "alice");
        },
      },
      {
        title: "a captured nonce is replayed under a new message id",
        expected: "REPLAY_DETECTED",
        run: async () => {
          const original = draft();
          await submit(original.wire, "alice");
          return submit(draft({ nonce: original.envelope.nonce }).wire, "alice");
        },
      },
      {
        title: "an envelope signed two minutes ago",
        expected: "STALE_MESSAGE",
        run: () => submit(draft({ ts: Date.now() - 120_000 }).wire, "alice"),
      },
      {
        title:
          "alice, db-bot and bob decide in a session: a proposal, two approvals, alice commits; the runtime signs the outcome over the whole history",
        expected: "COMMITTED (commitment verified)",
        run: async () => {
          await decision.start({ participants: ["db-bot", "bob"], ttlMs: 60_000 });
          await decision.propose("p1", { title: "archive last year's orders" });
          await decision.vote("p1", "approve");
          await new DecisionSession(dbBotCaller, { id: decision.id }).vote("p1", "approve");
          // The SDK verifies the commitment against the pinned runtime key before returning it.
          const { session, commitment } = await decision.commit("p1");
          if (commitment === undefined) return `no commitment (${session.status})`;
          details.push(
            `   session ${session.id}: ${session.message_count} messages, history ${commitment.history_hash.slice(0, 23)}…`,
            `   commitment signed by the runtime (${commitment.kid}) and recorded in the audit log`,
          );
          return session.outcome !== null &&
            typeof session.outcome === "object" &&
            (session.outcome as { result?: string }).result === "committed"
            ? "COMMITTED (commitment verified)"
            : `status ${session.status}`;
        },
      },
      {
        title: "db-bot votes again after the decision was committed",
        expected: "SESSION_NOT_OPEN",
        run: async () => {
          try {
            await new DecisionSession(dbBotCaller, { id: decision.id }).vote("p1", "reject");
            return "OK";
          } catch (error) {
            if (!(error instanceof SessionNotOpenError)) throw error;
            return error.code;
          }
        },
      },
      {
        title: `bob sends ${DEMO_MESSAGES_PER_MINUTE + 1} queries in a row; the demo allows ${DEMO_MESSAGES_PER_MINUTE} per sender per minute`,
        expected: "RATE_LIMITED",
        run: async () => {
          const bobQuery = (i: number) =>
            signEnvelope(
              { type: "invoke", from: "bob", to: "tool:database/query", body: { query: `select ${i}` } },
              keys.bob,
            ).wire;
          let passed = 0;
          for (let i = 0; i < DEMO_MESSAGES_PER_MINUTE; i++) {
            if ((await submit(bobQuery(i), "bob")) === "OK") passed++;
          }
          const response = await request(`${url}/v1/envelopes`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${apiKeys.bob!}` },
            body: bobQuery(DEMO_MESSAGES_PER_MINUTE),
            dispatcher: httpsAgent,
          });
          const body = (await response.body.json()) as { error?: { code: string } };
          details.push(
            `   ${passed} passed; the next: HTTP ${response.statusCode}, retry-after ${String(response.headers["retry-after"])} s`,
          );
          return passed === DEMO_MESSAGES_PER_MINUTE ? (body.error?.code ?? "OK") : `${passed} passed`;
        },
      },
      {
        title: "alice's key is revoked; she signs again",
        expected: "KEY_REVOKED",
        run: async () => {
          await runtime!.registry.revokeKey("alice", keys.alice.kid, "demo: key compromised", ctx);
          return submit(draft().wire, "alice");
        },
      },
      {
        title: "the audit log is verified: hash chain, Merkle roots and signed checkpoints",
        expected: "VERIFIED",
        run: async () => {
          const audit = runtime!.audit;
          await audit.flush();
          await audit.checkpoint(); // anchor every entry so far under a signed root
          const report = await audit.verify();
          if (!report.ok) {
            const problem = report.problem!;
            details.push(`   audit log: ${problem.message}`);
            return `${problem.kind.toUpperCase()}${problem.seq === undefined ? "" : ` (seq ${problem.seq})`}`;
          }
          details.push(
            `   audit log: ${report.entries} entries, chain and ${report.checkpoints} signed checkpoint(s) verify` +
              (report.unanchored > 0 ? ` (${report.unanchored} not yet anchored by a checkpoint)` : ""),
          );
          return "VERIFIED";
        },
      },
    ];

    let allAsExpected = true;
    for (const [index, step] of steps.entries()) {
      details.length = 0;
      let got: string;
      try {
        got = await step.run();
      } catch (error) {
        got = (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
      }
      const ok = got === step.expected;
      allAsExpected &&= ok;
      write(`${index + 1}. ${step.title}: ${got}${ok ? "" : `  (expected ${step.expected})`}`);
      for (const line of details) write(line);
    }
    await runtime.audit.flush();
    const refusals = (await runtime.audit.query({ outcome: "deny", limit: 10_000 })).length;
    write(`${refusals} refusals were recorded, each with its code`);
    write(allAsExpected ? "every step ended as expected" : "SOME STEPS DID NOT END AS EXPECTED");
    return allAsExpected;
  } finally {
    await tool?.close().catch(() => undefined);
    await alice?.close().catch(() => undefined);
    await dbBotClient?.close().catch(() => undefined);
    await dispatcher?.close().catch(() => undefined);
    await runtime?.stop();
    write("runtime stopped");
    if (temporary) rmSync(join(dataDir, ".."), { recursive: true, force: true });
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "Run an embedded runtime with two agents and a tool server, and show every check with its wire code",
    )
    .option(
      "--data-dir <dir>",
      "keep the demo's state here (default: a temporary folder, removed afterwards)",
    )
    .action(async (options: { dataDir?: string }) => {
      const timer = setTimeout(() => {
        process.stderr.write("signet demo: did not finish within 60 s\n");
        process.exit(1);
      }, 60_000);
      timer.unref();
      const ok = await runDemo({
        ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
        write: (line) => process.stdout.write(`${line}\n`),
      });
      clearTimeout(timer);
      if (!ok) process.exitCode = 1;
    });
}
