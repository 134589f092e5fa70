// The SQLite audit log: durability across reopen, group commit, offline export verification, and
// tampering with rows directly in the database.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuditEntryDraft,
  Ed25519PrivateKey,
  MerkleFrontier,
  MerkleTree,
  createAuditAnchor,
  merkleConsistencyProof,
  merkleInclusionProof,
  sha256ContentHash,
  sha256HashBytes,
  verifyMerkleConsistency,
  verifyMerkleInclusion,
  formatAuditTime,
  newMessageId,
  parseAuditExportNdjson,
  verifyAuditExport,
  verifyAuditNdjson,
} from "@signet/protocol";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SqliteAuditLog, type SqliteAuditLogOptions } from "../../src/audit/sqlite-audit-log.js";

const key = Ed25519PrivateKey.generate();
const BASE_MICROS = 1_795_000_000_000_000;

function draft(n: number): AuditEntryDraft {
  return {
    id: newMessageId(),
    time: formatAuditTime(BASE_MICROS + n * 1000),
    type: n % 3 === 0 ? "auth_failure" : "invocation",
    actor: `agent-${n % 5}`,
    target: "tool:database/query",
    outcome: n % 3 === 0 ? "deny" : "allow",
    ...(n % 3 === 0 ? { code: "UNAUTHENTICATED" } : {}),
    params: { n, query: "[REDACTED]" },
  };
}

let dir: string;
let path: string;
const open: SqliteAuditLog[] = [];

function openLog(options: Partial<SqliteAuditLogOptions> = {}): SqliteAuditLog {
  const log = new SqliteAuditLog({ path, key, checkpointIntervalMs: 0, ...options });
  open.push(log);
  return log;
}

async function exportBytes(log: SqliteAuditLog): Promise<Buffer> {
  const lines: Buffer[] = [];
  for await (const line of log.exportNdjson()) lines.push(line);
  return Buffer.concat(lines);
}

/** Writes `count` entries (one per call, all in one tick) and closes the log. */
async function seed(count: number, options: Partial<SqliteAuditLogOptions> = {}): Promise<void> {
  const log = openLog(options);
  await Promise.all(Array.from({ length: count }, (_, n) => log.append([draft(n)])));
  await log.close();
}

function raw(run: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    run(db);
  } finally {
    db.close();
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "signet-audit-log-"));
  path = join(dir, "data", "audit.db");
});

afterEach(async () => {
  for (const log of open.splice(0)) await log.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("SqliteAuditLog", () => {
  it("keeps entries across close and reopen, and the chain continues", async () => {
    await seed(10, { checkpointEvery: 4 });
    const reopened = openLog({ checkpointEvery: 4 });
    expect(reopened.size).toBe(10);
    const sealed = await reopened.append([draft(10), draft(11)]);
    expect(sealed.map((entry) => entry.seq)).toEqual([10, 11]);
    const stored = reopened.entries(9, 10);
    expect(stored.map((entry) => entry.seq)).toEqual([9, 10, 11]);
    expect(JSON.parse(stored[1]!.bytes.toString("utf8")).prev_hash).toBe(stored[0]!.hash);
    await reopened.close();

    const again = openLog();
    expect(again.size).toBe(12);
    // At the end of a batch that leaves 4 or more entries unanchored (10), and on close (12).
    expect((await again.checkpoints()).map((checkpoint) => checkpoint.tree_size)).toEqual([10, 12]);
    const report = await again.verify();
    expect(report).toMatchObject({ ok: true, tree_size: 12, anchored_size: 12, unanchored: 0 });
  });

  it("creates its file readable by its owner only", async () => {
    const log = openLog();
    await log.append([draft(0)]);
    expect(statSync(path).mode & 0o077).toBe(0);
  });

  it("puts appends made in one tick in one transaction", async () => {
    const log = openLog();
    const calls = Array.from({ length: 50 }, (_, n) => log.append([draft(2 * n), draft(2 * n + 1)]));
    const results = await Promise.all(calls);
    expect(results.flat().map((entry) => entry.seq)).toEqual(Array.from({ length: 100 }, (_, n) => n));
    expect(log.size).toBe(100);
    const later = await log.append([draft(100)]);
    expect(later[0]!.seq).toBe(100);
    expect((await log.verify()).ok).toBe(true);
  });

  it("shares transactions between concurrent callers (counted with a commit hook)", async () => {
    const log = openLog();
    await log.append([draft(0)]);
    let commits = 0;
    raw((db) => {
      db.exec("CREATE TABLE IF NOT EXISTS commit_count (n INTEGER NOT NULL) STRICT");
      db.exec(
        "CREATE TRIGGER count_commits AFTER INSERT ON audit_meta BEGIN INSERT INTO commit_count VALUES (1); END",
      );
      db.exec(
        "CREATE TRIGGER count_commits_update AFTER UPDATE ON audit_meta BEGIN INSERT INTO commit_count VALUES (1); END",
      );
    });
    await Promise.all(Array.from({ length: 64 }, (_, n) => log.append([draft(n + 1)])));
    await Promise.all(Array.from({ length: 64 }, (_, n) => log.append([draft(n + 65)])));
    raw((db) => {
      commits = db.prepare<[], number>("SELECT count(*) FROM commit_count").pluck().get()!;
    });
    // The head is saved once per transaction: two ticks of 64 appends, two transactions.
    expect(commits).toBe(2);
  });

  it("rejects an invalid draft alone, and the rest of the batch commits", async () => {
    const log = openLog();
    const bad = log.append([{ ...draft(0), time: "yesterday" }]);
    const good = log.append([draft(1)]);
    await expect(bad).rejects.toThrow();
    expect((await good)[0]!.seq).toBe(0);
    expect((await log.verify()).ok).toBe(true);
  });

  it("fails closed when the database cannot be written, and numbers nothing twice", async () => {
    const log = openLog({ busyTimeoutMs: 0 });
    await log.append([draft(0)]);
    const blocker = new Database(path);
    try {
      blocker.exec("BEGIN IMMEDIATE");
      await expect(log.append([draft(1)])).rejects.toMatchObject({ code: "AUDIT_UNAVAILABLE" });
      blocker.exec("ROLLBACK");
    } finally {
      blocker.close();
    }
    expect(log.size).toBe(1);
    expect((await log.append([draft(2)]))[0]!.seq).toBe(1);
    expect((await log.verify()).ok).toBe(true);
  });

  it("signs a checkpoint every T ms when entries are waiting", async () => {
    const log = openLog({ checkpointIntervalMs: 20 });
    await log.append([draft(0), draft(1)]);
    expect(await log.checkpoints()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await log.checkpoints()).map((checkpoint) => checkpoint.tree_size)).toEqual([2]);
    expect(await log.verify()).toMatchObject({ ok: true, anchored_size: 2 });
  });

  it("exports NDJSON that verifies offline with only the public key", async () => {
    await seed(25, { checkpointEvery: 10 });
    const log = openLog();
    const data = await exportBytes(log);
    const publicKey = key.publicKey;
    const report = verifyAuditNdjson(data, { key: publicKey });
    expect(report).toMatchObject({ ok: true, entries: 25, tree_size: 25, anchored_size: 25 });
    expect(verifyAuditExport(parseAuditExportNdjson(data), { key: publicKey }).ok).toBe(true);
    const other = Ed25519PrivateKey.generate().publicKey;
    expect(verifyAuditNdjson(data, { key: other }).ok).toBe(false);
  });

  it("reports entries after the last checkpoint as not yet anchored", async () => {
    const log = openLog({ checkpointEvery: 5 });
    await Promise.all(Array.from({ length: 5 }, (_, n) => log.append([draft(n)])));
    await Promise.all([log.append([draft(5)]), log.append([draft(6)])]);
    expect(await log.verify()).toMatchObject({ ok: true, anchored_size: 5, unanchored: 2 });
  });

  it("rotates the runtime key, and old checkpoints keep verifying", async () => {
    await seed(6, { checkpointEvery: 4 });
    const next = Ed25519PrivateKey.generate();
    expect(() => openLog({ key: next })).toThrow(/previousKey/);
    const rotated = openLog({ key: next, previousKey: key });
    await rotated.append([draft(6)]);
    await rotated.close();
    const data = await exportBytes(openLog({ key: next }));
    expect(verifyAuditNdjson(data, { key: key.publicKey })).toMatchObject({ ok: true, anchored_size: 7 });
    expect(verifyAuditNdjson(data, { key: next.publicKey }).ok).toBe(true);
  });

  describe("detects tampering with the rows", () => {
    beforeEach(async () => {
      await seed(20, { checkpointEvery: 8 });
    });

    /** Reopens the tampered database and verifies it live. */
    const verifyFromDisk = () => openLog().verify();
    const verifyReadOnly = () => openLog({ readOnly: true }).verify();

    it("an edited entry", async () => {
      raw((db) => {
        db.prepare(
          "UPDATE audit_entries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'agent-', 'mallory-') AS BLOB) WHERE seq = 5",
        ).run();
      });
      const report = await verifyFromDisk();
      expect(report.problem).toMatchObject({ kind: "edited", seq: 5 });
      const offline = verifyAuditNdjson(await exportBytes(openLog()), { key: key.publicKey });
      expect(offline.problem).toMatchObject({ kind: "edited", seq: 5 });
    });

    it("an edited query column", async () => {
      raw((db) => db.prepare("UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 11").run());
      expect((await verifyFromDisk()).problem).toMatchObject({ kind: "edited", seq: 11 });
    });

    it("a deleted entry", async () => {
      raw((db) => db.prepare("DELETE FROM audit_entries WHERE seq = 9").run());
      expect((await verifyFromDisk()).problem).toMatchObject({ kind: "deleted", seq: 9 });
      const offline = verifyAuditNdjson(await exportBytes(openLog()), { key: key.publicKey });
      expect(offline.problem).toMatchObject({ kind: "deleted", seq: 9 });
    });

    it("two swapped entries", async () => {
      raw((db) => {
        db.exec(`
          UPDATE audit_entries SET seq = -1 WHERE seq = 3;
          UPDATE audit_entries SET seq = 3 WHERE seq = 12;
          UPDATE audit_entries SET seq = 12 WHERE seq = -1;
        `);
      });
      // The rows kept their bytes and hashes but moved: the entry read at position 3 claims seq 12.
      expect((await verifyFromDisk()).problem).toMatchObject({ kind: "reordered", seq: 3 });
      const offline = verifyAuditNdjson(await exportBytes(openLog()), { key: key.publicKey });
      expect(offline.problem).toMatchObject({ kind: "reordered", seq: 3 });
    });

    it("a truncated log is refused on open (its saved head no longer matches), and verify names the cut", async () => {
      raw((db) => db.prepare("DELETE FROM audit_entries WHERE seq >= 10").run());
      expect(() => openLog()).toThrow(/saved chain head/);
      // 0..15 are under the checkpoint at 16: the missing ones are named.
      expect((await verifyReadOnly()).problem).toMatchObject({ kind: "truncated", seq: 10 });
    });

    it("a log truncated below a signed checkpoint, with the saved head rewritten to match", async () => {
      raw((db) => {
        const kept = db
          .prepare<[], string>("SELECT hash FROM audit_entries WHERE seq < 10 ORDER BY seq")
          .pluck()
          .all();
        const frontier = new MerkleFrontier();
        for (const hash of kept) frontier.append(sha256HashBytes(hash));
        db.prepare("DELETE FROM audit_entries WHERE seq >= 10").run();
        db.prepare("UPDATE audit_meta SET value = ? WHERE name = 'chain'").run(
          JSON.stringify({
            size: 10,
            last_hash: kept.at(-1),
            frontier: frontier.nodes().map(sha256ContentHash),
          }),
        );
      });
      // The attacker's head is consistent, so the log opens; the checkpoint at 16 still names the cut.
      expect((await verifyFromDisk()).problem).toMatchObject({ kind: "truncated", seq: 10 });
    });

    it("an inserted entry (later rows shifted up to make room)", async () => {
      raw((db) => {
        const forged = Buffer.from(
          JSON.stringify({
            id: "forged",
            outcome: "allow",
            seq: 7,
            time: formatAuditTime(BASE_MICROS),
            type: "invocation",
          }),
        );
        db.exec("UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 7");
        db.exec("UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000");
        db.prepare(
          "INSERT INTO audit_entries (seq, hash, bytes, id, ts, type, outcome) VALUES (7, ?, ?, 'forged', ?, 'invocation', 'allow')",
        ).run(`sha256:${"ab".repeat(32)}`, forged, BASE_MICROS);
      });
      const report = await verifyReadOnly();
      expect(report.ok).toBe(false);
      expect(report.problem?.seq).toBe(7);
    });

    it("a read-only log refuses appends", async () => {
      const log = openLog({ readOnly: true });
      await expect(log.append([draft(99)])).rejects.toMatchObject({ code: "AUDIT_UNAVAILABLE" });
      expect((await log.verify()).ok).toBe(true);
    });
  });
});

describe("SqliteAuditLog: queries, proofs from tiles, retention and partial exports", () => {
  const COUNT = 2600; // two complete tiles of 1024 and a partial one

  async function seeded(options: Partial<SqliteAuditLogOptions> = {}): Promise<SqliteAuditLog> {
    const log = openLog({ checkpointEvery: 500, ...options });
    for (let from = 0; from < COUNT; from += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([draft(from + i)])));
    }
    return log;
  }

  function leafHashes(log: SqliteAuditLog): Buffer[] {
    return log.entries(0, COUNT).map((entry) => sha256HashBytes(entry.hash));
  }

  it("filters by type, actor, outcome, code, id and time, in either order, with a limit", async () => {
    const log = await seeded();
    const denied = await log.query({ eventType: "auth_failure", limit: 10_000 });
    expect(denied).toHaveLength(Math.ceil(COUNT / 3));
    expect(denied.every((entry) => entry.outcome === "deny" && entry.code === "UNAUTHENTICATED")).toBe(true);
    const byActor = await log.query({ actor: "agent-2", outcome: "allow", limit: 5, newestFirst: true });
    expect(byActor.map((entry) => entry.actor)).toEqual(Array(5).fill("agent-2"));
    expect(byActor[0]!.seq).toBeGreaterThan(byActor[4]!.seq);
    const window = await log.query({
      sinceMicros: BASE_MICROS + 10 * 1000,
      untilMicros: BASE_MICROS + 20 * 1000,
      limit: 100,
    });
    expect(window.map((entry) => entry.seq)).toEqual([...Array(10).keys()].map((i) => i + 10));
    const [one] = await log.query({ id: window[3]!.id });
    expect(one).toEqual(window[3]);
    // A filter value is data, never SQL.
    expect(await log.query({ actor: "agent-1' OR '1'='1" })).toEqual([]);
  });

  it("gives the same inclusion and consistency proofs as a tree over every leaf", async () => {
    const log = await seeded();
    const leaves = leafHashes(log);
    const sizes = [1, 2, 500, 1023, 1024, 1025, 2048, 2049, 2500, COUNT];
    for (const size of sizes) {
      for (const seq of new Set([0, size - 1, Math.floor(size / 2), Math.min(size - 1, 1024)])) {
        const proof = await log.inclusionProof(seq, size);
        const expected = merkleInclusionProof(leaves, seq, size).map(sha256ContentHash);
        expect(proof.path, `inclusion ${seq} in ${size}`).toEqual(expected);
      }
      for (const first of sizes.filter((first) => first <= size)) {
        const proof = await log.consistencyProof(first, size);
        expect(proof.path, `consistency ${first}..${size}`).toEqual(
          merkleConsistencyProof(leaves, first, size).map(sha256ContentHash),
        );
      }
    }
    await expect(log.inclusionProof(COUNT, COUNT)).rejects.toMatchObject({ code: "INVALID_REQUEST" });
  });

  it("prunes down to a checkpoint, keeps verifying, and still proves what it kept", async () => {
    const log = await seeded();
    const leaves = leafHashes(log);
    // Entries before seq 1800 are old; the newest checkpoint at or below 1800 is at 1500.
    const pruned = await log.prune(BASE_MICROS + 1800 * 1000);
    expect(pruned).toEqual({ anchorSize: 1500, removed: 1500, checkpointsRemoved: 2 });
    expect(log.firstSeq).toBe(1500);
    expect(await log.query({ beforeSeq: 1500 })).toEqual([]);
    expect(await log.verify()).toMatchObject({ ok: true, first_seq: 1500, tree_size: COUNT });
    await expect(log.inclusionProof(10, COUNT)).rejects.toMatchObject({ code: "NOT_FOUND" });
    for (const seq of [1500, 1501, 2047, 2048, COUNT - 1]) {
      const proof = await log.inclusionProof(seq, COUNT);
      expect(proof.path).toEqual(merkleInclusionProof(leaves, seq, COUNT).map(sha256ContentHash));
      expect(
        verifyMerkleInclusion(
          leaves[seq]!,
          seq,
          COUNT,
          proof.path.map(sha256HashBytes),
          MerkleTree.from(leaves).root(),
        ),
      ).toBe(true);
    }
    const consistency = await log.consistencyProof(2000, COUNT);
    expect(
      verifyMerkleConsistency(
        2000,
        COUNT,
        MerkleTree.from(leaves.slice(0, 2000)).root(),
        MerkleTree.from(leaves).root(),
        consistency.path.map(sha256HashBytes),
      ),
    ).toBe(true);
    // The export starts with the anchor and verifies offline; so does one reopened from disk.
    const report = verifyAuditNdjson(await exportBytes(log), { key: key.publicKey });
    expect(report).toMatchObject({ ok: true, first_seq: 1500, tree_size: COUNT });
    await log.close();
    const reopened = openLog();
    expect(reopened.firstSeq).toBe(1500);
    expect((await reopened.verify()).ok).toBe(true);
    // Nothing newer than the cutoff is ever pruned, and pruning again at the same cutoff does nothing.
    expect(await reopened.prune(BASE_MICROS + 1800 * 1000)).toBeUndefined();
  });

  it("exports from a seq with an anchor that verifies offline, equal to one built from every leaf", async () => {
    const log = await seeded();
    const leaves = leafHashes(log);
    const lines: Buffer[] = [];
    for await (const line of log.exportNdjson({ fromSeq: 1700 })) lines.push(line);
    const exported = parseAuditExportNdjson(Buffer.concat(lines));
    expect(exported.anchor).toEqual(createAuditAnchor(MerkleTree.from(leaves), 1700));
    expect(exported.entries).toHaveLength(COUNT - 1700);
    expect(verifyAuditExport(exported, { key: key.publicKey })).toMatchObject({ ok: true, first_seq: 1700 });
  });
});
