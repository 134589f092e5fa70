// The SQLite audit log: durability across reopen, group commit, offline export verification, and
// tampering with rows directly in the database.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuditEntryDraft,
  Ed25519PrivateKey,
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
    expect(again.checkpoints().map((checkpoint) => checkpoint.tree_size)).toEqual([10, 12]);
    const report = again.verify();
    expect(report).toMatchObject({ ok: true, tree_size: 12, anchored_size: 12, unanchored: 0 });
  });

  it("puts appends made in one tick in one transaction", async () => {
    const log = openLog();
    const calls = Array.from({ length: 50 }, (_, n) => log.append([draft(2 * n), draft(2 * n + 1)]));
    const results = await Promise.all(calls);
    expect(results.flat().map((entry) => entry.seq)).toEqual(Array.from({ length: 100 }, (_, n) => n));
    expect(log.size).toBe(100);
    const later = await log.append([draft(100)]);
    expect(later[0]!.seq).toBe(100);
    expect(log.verify().ok).toBe(true);
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
    expect(log.verify().ok).toBe(true);
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
    expect(log.verify().ok).toBe(true);
  });

  it("signs a checkpoint every T ms when entries are waiting", async () => {
    const log = openLog({ checkpointIntervalMs: 20 });
    await log.append([draft(0), draft(1)]);
    expect(log.checkpoints()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(log.checkpoints().map((checkpoint) => checkpoint.tree_size)).toEqual([2]);
    expect(log.verify()).toMatchObject({ ok: true, anchored_size: 2 });
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
    expect(log.verify()).toMatchObject({ ok: true, anchored_size: 5, unanchored: 2 });
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

    it("an edited entry", async () => {
      raw((db) => {
        db.prepare(
          "UPDATE audit_entries SET bytes = CAST(replace(CAST(bytes AS TEXT), 'agent-', 'mallory-') AS BLOB) WHERE seq = 5",
        ).run();
      });
      const report = verifyFromDisk();
      expect(report.problem).toMatchObject({ kind: "edited", seq: 5 });
      const offline = verifyAuditNdjson(await exportBytes(openLog()), { key: key.publicKey });
      expect(offline.problem).toMatchObject({ kind: "edited", seq: 5 });
    });

    it("an edited query column", () => {
      raw((db) => db.prepare("UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 11").run());
      expect(verifyFromDisk().problem).toMatchObject({ kind: "edited", seq: 11 });
    });

    it("a deleted entry", async () => {
      raw((db) => db.prepare("DELETE FROM audit_entries WHERE seq = 9").run());
      expect(verifyFromDisk().problem).toMatchObject({ kind: "deleted", seq: 9 });
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
      expect(verifyFromDisk().problem).toMatchObject({ kind: "reordered", seq: 3 });
      const offline = verifyAuditNdjson(await exportBytes(openLog()), { key: key.publicKey });
      expect(offline.problem).toMatchObject({ kind: "reordered", seq: 3 });
    });

    it("a truncated log is refused on open (its saved head no longer matches)", () => {
      raw((db) => db.prepare("DELETE FROM audit_entries WHERE seq >= 18").run());
      expect(() => openLog()).toThrow(/saved chain head/);
    });
  });
});
