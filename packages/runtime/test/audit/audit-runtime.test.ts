// The audit log in a running runtime: what the pipeline records (redacted), the /v1/audit API with its
// guards, proofs an auditor checks with only the public key, and failing closed when the log cannot
// be written.
import { join } from "node:path";
import {
  type Checkpoint,
  type RuntimeKeyRecord,
  parseAuditExportNdjson,
  signEnvelope,
  verifyAuditExport,
  verifyAuditNdjson,
  verifyCheckpointConsistency,
  verifyInclusionInCheckpoint,
  verifyRuntimeKeyChain,
} from "@signet/protocol";
import Database from "better-sqlite3";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type TestAgent, registerAgent } from "../helpers/agents.js";
import { RawExecutor } from "../helpers/raw-executor.js";
import { type RuntimeFixture, call, startRuntime } from "../helpers/runtime-fixture.js";

let fx: RuntimeFixture;
let alice: TestAgent;
let dbBot: TestAgent;
let auditor: string;
let reader: string;
const executors: RawExecutor[] = [];

beforeAll(async () => {
  fx = await startRuntime({
    // A short lock wait, so the fail-closed test does not hold the loop for the default 5 s.
    yaml: "audit:\n  busy_timeout_ms: 50\n  checkpoint_every: 5\n  checkpoint_interval_ms: 0\nredaction:\n  paths: ['$.customer.ssn']\n",
  });
  alice = await registerAgent(fx, "alice");
  dbBot = await registerAgent(fx, "db-bot", ["database/query"]);
  const admin = { authorization: `Bearer ${fx.adminKey}` };
  const key = async (name: string, permissions: string[]): Promise<string> => {
    const created = await call(fx, "POST", "/v1/auth/keys", {
      headers: admin,
      body: { name, principal: name, kind: "user", permissions },
    });
    return created.body.key as string;
  };
  auditor = await key("auditor", ["audit:read", "audit:export"]);
  reader = await key("reader", ["agent:read"]);
});
afterEach(async () => {
  await Promise.all(executors.splice(0).map((executor) => executor.close()));
});
afterAll(async () => fx?.close());

async function executor(): Promise<RawExecutor> {
  const started = new RawExecutor({
    url: fx.url,
    caPath: fx.certs.caCert,
    apiKey: dbBot.apiKey,
    agentId: "db-bot",
    key: dbBot.key,
    serves: ["database/query"],
  });
  executors.push(started);
  await started.connect();
  return started;
}

function invoke(body: unknown) {
  return signEnvelope(
    { type: "invoke", from: "alice", to: "tool:database/query", body: body as never },
    alice.key,
  );
}

const asAuditor = () => ({ authorization: `Bearer ${auditor}` });

describe("what the pipeline records", () => {
  it("keeps the signed request header and redacts secrets from parameters before they are written", async () => {
    await executor();
    const envelope = invoke({
      q: "select 1",
      password: "hunter2",
      customer: { ssn: "123-45-6789", note: "token sk_live_abcdefghijklmnop1234" },
      auth: "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl",
    });
    const response = await call(fx, "POST", "/v1/envelopes", { headers: alice.headers, body: envelope.wire });
    expect(response.status).toBe(200);
    const [decision] = await fx.runtime.audit.query({ id: response.body.receipt.audit.request });
    expect(decision).toMatchObject({
      type: "invocation",
      outcome: "allow",
      actor: "alice",
      target: "tool:database/query",
      rules: ["test-allow-all"],
      request: {
        hash: envelope.hash,
        id: envelope.envelope.id,
        kid: alice.key.kid,
        sig: envelope.envelope.sig,
      },
    });
    expect(decision!.request!.header).toMatchObject({
      from: "alice",
      body_hash: envelope.envelope.body_hash,
    });
    expect(decision!.request!.header).not.toHaveProperty("body");
    const params = JSON.stringify(decision!.params);
    expect(params).toContain("select 1");
    for (const secret of ["hunter2", "123-45-6789", "sk_live_abcdefghijklmnop1234", "eyJhbGciOiJFZERTQSJ9"]) {
      expect(params).not.toContain(secret);
    }
    // And nothing of it reached the stored bytes under another name.
    const db = new Database(join(fx.dir, "audit.db"), { readonly: true });
    try {
      const bytes = db.prepare<[], Buffer>("SELECT bytes FROM audit_entries").pluck().all();
      expect(Buffer.concat(bytes).toString()).not.toContain("hunter2");
    } finally {
      db.close();
    }
  });

  it("records a refusal with its code before answering, and names it in the error", async () => {
    const forged = invoke({ q: "x" });
    // The body no longer matches its signed hash: refused, and the refusal recorded first.
    const tampered = forged.wire.replace('"q":"x"', '"q":"y"');
    expect(tampered).not.toBe(forged.wire);
    const response = await call(fx, "POST", "/v1/envelopes", { headers: alice.headers, body: tampered });
    expect(response.body.error.code).toBe("HASH_MISMATCH");
    const [refusal] = await fx.runtime.audit.query({ id: response.body.error.audit_id });
    expect(refusal).toMatchObject({ outcome: "deny", code: "HASH_MISMATCH", actor: "alice" });
  });
});

describe("GET /v1/audit and friends", () => {
  it("needs audit:read, and an export needs audit:export", async () => {
    const asReader = { authorization: `Bearer ${reader}` };
    expect((await call(fx, "GET", "/v1/audit", { headers: asReader })).body.error.code).toBe("FORBIDDEN");
    expect((await call(fx, "GET", "/v1/audit/export", { headers: asReader })).body.error.code).toBe(
      "FORBIDDEN",
    );
    expect((await call(fx, "GET", "/v1/audit")).status).toBe(401);
  });

  it("filters with parameters, newest first by default, and pages with a cursor", async () => {
    const all = await call(fx, "GET", "/v1/audit?limit=3", { headers: asAuditor() });
    expect(all.status).toBe(200);
    const seqs = (all.body.entries as { seq: number }[]).map((entry) => entry.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(all.body.next).toEqual({ before_seq: seqs[2] });
    const next = await call(fx, "GET", `/v1/audit?limit=3&before_seq=${seqs[2]}`, { headers: asAuditor() });
    expect((next.body.entries as { seq: number }[])[0]!.seq).toBeLessThan(seqs[2]!);

    const deployed = await call(fx, "GET", "/v1/audit?event_type=agent_deployed&order=asc&last=1h", {
      headers: asAuditor(),
    });
    expect((deployed.body.entries as { target: string }[]).map((entry) => entry.target)).toEqual(
      expect.arrayContaining(["agent:alice", "agent:db-bot"]),
    );
    const injected = await call(fx, "GET", `/v1/audit?actor=${encodeURIComponent("x' OR 1=1 --")}`, {
      headers: asAuditor(),
    });
    expect(injected.body.entries).toEqual([]);
    for (const bad of ["outcome=maybe", "limit=0", "last=forever", "since=yesterday", "order=sideways"]) {
      const refused = await call(fx, "GET", `/v1/audit?${bad}`, { headers: asAuditor() });
      expect(refused.body.error?.code, bad).toBe("INVALID_REQUEST");
    }
  });

  it("serves inclusion and consistency proofs that verify with only the runtime's public key", async () => {
    await fx.runtime.audit.checkpoint();
    const signed = await call(fx, "GET", "/v1/audit/checkpoints", { headers: asAuditor() });
    const keys = verifyRuntimeKeyChain(
      signed.body.keys as RuntimeKeyRecord[],
      fx.runtime.signingKey.publicKey,
    );
    const checkpoints = signed.body.checkpoints as Checkpoint[];
    expect(checkpoints.length).toBeGreaterThanOrEqual(2);
    const latest = checkpoints.at(-1)!;
    for (const seq of [0, 1, latest.tree_size - 1]) {
      const response = await call(fx, "GET", `/v1/audit/proofs/inclusion?seq=${seq}`, {
        headers: asAuditor(),
      });
      expect(response.body.proof.tree_size).toBe(latest.tree_size);
      expect(response.body.checkpoint).toEqual(latest);
      expect(verifyInclusionInCheckpoint(response.body.entry_hash, response.body.proof, latest, keys)).toBe(
        true,
      );
      // The proof is for that entry only.
      const other = await call(fx, "GET", `/v1/audit/entries/${seq === 0 ? 1 : 0}`, { headers: asAuditor() });
      expect(verifyInclusionInCheckpoint(other.body.entry.hash, response.body.proof, latest, keys)).toBe(
        false,
      );
    }
    const first = checkpoints[0]!;
    const consistency = await call(
      fx,
      "GET",
      `/v1/audit/proofs/consistency?first=${first.tree_size}&second=${latest.tree_size}`,
      { headers: asAuditor() },
    );
    expect(verifyCheckpointConsistency(first, latest, consistency.body.proof, keys)).toBe(true);
    const missing = await call(fx, "GET", "/v1/audit/proofs/inclusion?seq=999999", { headers: asAuditor() });
    expect(missing.body.error.code).toBe("NOT_FOUND");
  });

  it("exports NDJSON and JSON that verify offline, and verifies the live log (each an audited action)", async () => {
    const get = async (format: string) => {
      const response = await request(`${fx.url}/v1/audit/export?format=${format}`, {
        headers: asAuditor(),
        dispatcher: fx.client(),
      });
      expect(response.statusCode).toBe(200);
      return Buffer.from(await response.body.arrayBuffer());
    };
    const key = fx.runtime.signingKey.publicKey;
    const ndjson = await get("ndjson");
    expect(verifyAuditNdjson(ndjson, { key })).toMatchObject({ ok: true });
    expect(verifyAuditExport(parseAuditExportNdjson(ndjson), { key }).ok).toBe(true);
    const { auditExportFromJson } = await import("@signet/protocol");
    const json = JSON.parse((await get("json")).toString()) as unknown;
    expect(verifyAuditExport(auditExportFromJson(json), { key })).toMatchObject({ ok: true });

    const verified = await call(fx, "POST", "/v1/audit/verify", { headers: asAuditor() });
    expect(verified.body.report).toMatchObject({ ok: true });
    const actions = await fx.runtime.audit.query({ eventType: "admin_action", actor: "auditor", limit: 100 });
    expect(actions.map((entry) => entry.metadata?.action)).toEqual(
      expect.arrayContaining(["audit_export", "audit_verify"]),
    );
  });
});

describe("fail closed", () => {
  it("refuses with AUDIT_UNAVAILABLE and dispatches nothing while the log cannot be written, then recovers", async () => {
    const tool = await executor();
    const before = tool.calls;
    const blocker = new Database(join(fx.dir, "audit.db"));
    try {
      // Another writer holds the database: every append waits 50 ms for the lock, then fails.
      blocker.exec("BEGIN IMMEDIATE");
      const envelope = invoke({ q: "while locked" });
      const refused = await call(fx, "POST", "/v1/envelopes", {
        headers: alice.headers,
        body: envelope.wire,
      });
      expect(refused.body.error.code).toBe("AUDIT_UNAVAILABLE");
      expect(refused.body.error.retryable).toBe(true);
      expect(tool.calls).toBe(before);
      blocker.exec("ROLLBACK");
      // The identical envelope may be retried once the log is back: it was released, not burnt.
      const retried = await call(fx, "POST", "/v1/envelopes", {
        headers: alice.headers,
        body: envelope.wire,
      });
      expect(retried.status).toBe(200);
      expect(tool.calls).toBe(before + 1);
    } finally {
      blocker.close();
    }
    expect((await fx.runtime.audit.verify()).ok).toBe(true);
  });
});

describe("policy reloads", () => {
  it("records a deploy's policy recompilation as policy_reloaded", async () => {
    await registerAgent(fx, "carol");
    const reloads = await fx.runtime.audit.query({
      eventType: "policy_reloaded",
      newestFirst: true,
      limit: 1,
    });
    expect(reloads[0]).toMatchObject({ outcome: "success", actor: "signet:agent_deployed" });
  });
});

describe("retention", () => {
  it("prunes below a checkpoint, records the prune, and the rest still verifies and exports", async () => {
    const { pruneAudit } = await import("../../src/audit/retention.js");
    await fx.runtime.audit.checkpoint();
    const size = fx.runtime.audit.size;
    // Everything is older than a cutoff in the future: pruned down to the latest checkpoint.
    const result = await pruneAudit(fx.runtime.audit, fx.runtime.events, Date.now() * 1000 + 1e9, "test");
    expect(result?.anchorSize).toBe(size);
    expect(fx.runtime.audit.firstSeq).toBe(size);
    const [recorded] = await fx.runtime.audit.query({
      eventType: "audit_pruned",
      newestFirst: true,
      limit: 1,
    });
    expect(recorded).toMatchObject({ actor: "test", outcome: "success", metadata: { anchor_size: size } });
    expect(await fx.runtime.audit.query({ beforeSeq: size })).toEqual([]);
    expect(await fx.runtime.audit.verify()).toMatchObject({ ok: true, first_seq: size });
    const response = await request(`${fx.url}/v1/audit/export`, {
      headers: asAuditor(),
      dispatcher: fx.client(),
    });
    const ndjson = Buffer.from(await response.body.arrayBuffer());
    expect(verifyAuditNdjson(ndjson, { key: fx.runtime.signingKey.publicKey })).toMatchObject({
      ok: true,
      first_seq: size,
    });
    const pruned = await call(fx, "GET", "/v1/audit/proofs/inclusion?seq=0", { headers: asAuditor() });
    expect(pruned.body.error.code).toBe("NOT_FOUND");
  });
});
