// The audit log on a real PostgreSQL server: one total order under several writing instances, proofs
// from tiles, retention, exports that verify offline, tampering caught, and failing closed while the
// server is down.
import {
  type AuditEntryDraft,
  Ed25519PrivateKey,
  MerkleTree,
  createAuditAnchor,
  formatAuditTime,
  merkleConsistencyProof,
  merkleInclusionProof,
  newMessageId,
  parseAuditExportNdjson,
  sha256ContentHash,
  sha256HashBytes,
  verifyAuditExport,
  verifyAuditNdjson,
} from "@signet/protocol";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PostgresAuditLog, type PostgresAuditLogOptions } from "../../src/audit/postgres-audit-log.js";
import { type PostgresServer, startPostgres } from "../helpers/postgres-server.js";

const key = Ed25519PrivateKey.generate();
const BASE_MICROS = 1_795_000_000_000_000;
let server: PostgresServer;
let databases = 0;
const open: PostgresAuditLog[] = [];

beforeAll(async () => {
  server = await startPostgres({ database: "audit_test" });
}, 60_000);
afterAll(async () => server?.stop());
afterEach(async () => {
  for (const log of open.splice(0)) await log.close().catch(() => undefined);
});

function draft(n: number, actor = `agent-${n % 5}`): AuditEntryDraft {
  return {
    id: newMessageId(),
    time: formatAuditTime(BASE_MICROS + n * 1000),
    type: n % 3 === 0 ? "auth_failure" : "invocation",
    actor,
    target: "tool:database/query",
    outcome: n % 3 === 0 ? "deny" : "allow",
    ...(n % 3 === 0 ? { code: "UNAUTHENTICATED" } : {}),
    params: { n },
  };
}

async function freshUrl(): Promise<string> {
  return server.createDatabase(`audit_${++databases}`);
}

async function openLog(
  url: string,
  options: Partial<PostgresAuditLogOptions> = {},
): Promise<PostgresAuditLog> {
  const log = await PostgresAuditLog.open({ url, key, checkpointIntervalMs: 0, ...options });
  open.push(log);
  return log;
}

async function exportBytes(log: PostgresAuditLog, fromSeq?: number): Promise<Buffer> {
  const lines: Buffer[] = [];
  for await (const line of log.exportNdjson(fromSeq === undefined ? {} : { fromSeq })) lines.push(line);
  return Buffer.concat(lines);
}

async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

describe("PostgresAuditLog", () => {
  it("continues the chain across close and reopen, and verifies", async () => {
    const url = await freshUrl();
    const first = await openLog(url, { checkpointEvery: 10 });
    await Promise.all(Array.from({ length: 25 }, (_, n) => first.append([draft(n)])));
    await first.close();
    const again = await openLog(url, { checkpointEvery: 10 });
    const [sealed] = await again.append([draft(25)]);
    expect(sealed!.seq).toBe(25);
    expect(await again.verify()).toMatchObject({ ok: true, tree_size: 26 });
  });

  it("keeps one total order with several instances appending at once", async () => {
    const url = await freshUrl();
    const instances = await Promise.all([1, 2, 3].map(() => openLog(url, { checkpointEvery: 50 })));
    const sealed = await Promise.all(
      instances.flatMap((log, i) =>
        Array.from({ length: 120 }, async (_, n) => {
          // Spread over several turns of the loop, so batches from the instances interleave.
          await new Promise((resolve) => setTimeout(resolve, n % 7));
          return (await log.append([draft(n, `instance-${i}`)]))[0]!;
        }),
      ),
    );
    const seqs = sealed.map((entry) => entry.seq).sort((a, b) => a - b);
    expect(seqs).toEqual([...Array(360).keys()]);
    const report = await instances[0]!.verify();
    expect(report).toMatchObject({ ok: true, tree_size: 360 });
    expect(verifyAuditNdjson(await exportBytes(instances[1]!), { key: key.publicKey }).ok).toBe(true);
  });

  it("serves the same proofs as a tree over every leaf, prunes behind an anchor, and exports from a seq", async () => {
    const url = await freshUrl();
    const log = await openLog(url, { checkpointEvery: 500 });
    const count = 2600;
    for (let from = 0; from < count; from += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([draft(from + i)])));
    }
    const { rows } = await sql(url, "SELECT hash FROM audit_entries ORDER BY seq");
    const leaves = rows.map((row: { hash: string }) => sha256HashBytes(row.hash));
    for (const [seq, size] of [
      [0, 1],
      [5, 1024],
      [1024, 2049],
      [2000, count],
      [count - 1, count],
    ] as const) {
      expect((await log.inclusionProof(seq, size)).path).toEqual(
        merkleInclusionProof(leaves, seq, size).map(sha256ContentHash),
      );
    }
    for (const [first, second] of [
      [1, 2],
      [500, 1024],
      [1024, 2048],
      [1500, count],
    ] as const) {
      expect((await log.consistencyProof(first, second)).path).toEqual(
        merkleConsistencyProof(leaves, first, second).map(sha256ContentHash),
      );
    }
    const partial = parseAuditExportNdjson(await exportBytes(log, 1700));
    expect(partial.anchor).toEqual(createAuditAnchor(MerkleTree.from(leaves), 1700));
    expect(verifyAuditExport(partial, { key: key.publicKey }).ok).toBe(true);

    expect(await log.prune(BASE_MICROS + 1800 * 1000)).toEqual({
      anchorSize: 1500,
      removed: 1500,
      checkpointsRemoved: 2,
    });
    expect(await log.verify()).toMatchObject({ ok: true, first_seq: 1500, tree_size: count });
    expect((await log.inclusionProof(2047, count)).path).toEqual(
      merkleInclusionProof(leaves, 2047, count).map(sha256ContentHash),
    );
    await expect(log.inclusionProof(10, count)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(verifyAuditNdjson(await exportBytes(log), { key: key.publicKey })).toMatchObject({
      ok: true,
      first_seq: 1500,
    });
  }, 60_000);

  it("names an entry edited, or a column changed, directly in the database", async () => {
    const url = await freshUrl();
    const log = await openLog(url, { checkpointEvery: 8 });
    await Promise.all(Array.from({ length: 20 }, (_, n) => log.append([draft(n)])));
    await sql(
      url,
      "UPDATE audit_entries SET bytes = convert_to(replace(convert_from(bytes, 'UTF8'), 'agent-', 'mallory-'), 'UTF8') WHERE seq = 5",
    );
    expect((await log.verify()).problem).toMatchObject({ kind: "edited", seq: 5 });
    const other = await freshUrl();
    const second = await openLog(other, { checkpointEvery: 8 });
    await Promise.all(Array.from({ length: 20 }, (_, n) => second.append([draft(n)])));
    await sql(other, "UPDATE audit_entries SET outcome = 'allow' WHERE seq = 3");
    expect((await second.verify()).problem).toMatchObject({ kind: "edited", seq: 3 });
    // With a deletion further on as well, the first bad entry is still the one named.
    await sql(other, "DELETE FROM audit_entries WHERE seq = 9");
    expect((await second.verify()).problem?.seq).toBe(3);
  });

  it("fails closed while the server is down and resumes by itself when it is back", async () => {
    const url = await freshUrl();
    const log = await openLog(url, { statementTimeoutMs: 2000 });
    await log.append([draft(0)]);
    await server.restart(async () => {
      await expect(log.append([draft(1)])).rejects.toMatchObject({ code: "AUDIT_UNAVAILABLE" });
    });
    // The pool drops its dead connections and reconnects; nothing was numbered twice.
    let sealed;
    for (let attempt = 0; attempt < 20 && sealed === undefined; attempt++) {
      sealed = await log.append([draft(2)]).catch(() => undefined);
      if (sealed === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(sealed?.[0]?.seq).toBe(1);
    expect(await log.verify()).toMatchObject({ ok: true, tree_size: 2 });
  }, 60_000);
});
