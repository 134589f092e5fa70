// A durable, group-committed, tamper-evident audit log in its own SQLite database file.
//
// The pure work (numbering, linking, hashing, the Merkle frontier, checkpoint signatures, verification)
// is `@signet/protocol`'s; this class stores what it produces. Appends made in one turn of the event
// loop go into one IMMEDIATE transaction of multi-row inserts, together with the chain's saved head
// (so a reopened log continues exactly where the last commit left it) and, every N entries, a signed
// checkpoint. Each row holds the entry's stored canonical bytes (BLOB), its hash, its seq, and query
// columns copied from the same draft that was encoded; `verify()` checks those columns against the
// hashed bytes, so an index column cannot disagree with the entry unnoticed.
//
// The file is separate from `signet.db` so the log's durability (`synchronous=FULL` by default) does
// not slow down the other stores, and so it can be copied, exported or handed over on its own.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  AuditChain,
  type AuditChainState,
  type AuditEntryDraft,
  AuditLogVerifier,
  type AuditProblem,
  type AuditVerifyReport,
  type Checkpoint,
  type ContentHash,
  type Ed25519PrivateKey,
  type RuntimeKeyRecord,
  type SealedAuditEntry,
  SignetError,
  auditExportEntryLine,
  auditExportRecordLine,
  canonicalize,
  checkpointHash,
  formatAuditTime,
  parseAuditEntry,
  parseAuditTime,
  signCheckpoint,
  signRuntimeKeyRecord,
} from "@signet/protocol";
import Database from "better-sqlite3";
import { type SqliteMigration, migrateSqlite } from "../store/migrations/sqlite.js";

/** The audit database's schema, oldest first (its own `schema_migrations` table tracks it). */
export const AUDIT_SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: "audit entries, checkpoints, runtime keys and the chain head",
    sql: `
      -- One row per entry. bytes are the stored canonical JSON that was hashed; hash is what the
      -- store recorded beside them; the other columns are for queries and are checked by verify().
      -- ts is microseconds since the Unix epoch (the entry's time).
      CREATE TABLE audit_entries (
        seq     INTEGER PRIMARY KEY,
        hash    TEXT NOT NULL,
        bytes   BLOB NOT NULL,
        ts      INTEGER NOT NULL,
        type    TEXT NOT NULL,
        actor   TEXT,
        target  TEXT,
        outcome TEXT NOT NULL,
        code    TEXT
      ) STRICT;
      CREATE INDEX audit_entries_by_ts ON audit_entries (ts);
      CREATE INDEX audit_entries_by_type ON audit_entries (type, seq);
      CREATE INDEX audit_entries_by_actor ON audit_entries (actor, seq);
      CREATE INDEX audit_entries_by_target ON audit_entries (target, seq);

      -- Signed checkpoints, one per tree size, as their canonical JSON.
      CREATE TABLE audit_checkpoints (
        tree_size  INTEGER PRIMARY KEY,
        checkpoint TEXT NOT NULL CHECK (json_valid(checkpoint))
      ) STRICT;

      -- The runtime key chain, oldest first (rowid order).
      CREATE TABLE audit_keys (
        key_id    TEXT NOT NULL UNIQUE,
        tree_size INTEGER NOT NULL,
        record    TEXT NOT NULL CHECK (json_valid(record))
      ) STRICT;

      -- The chain head (AuditChainState as JSON under 'chain'), written in every append transaction.
      CREATE TABLE audit_meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
];

export interface SqliteAuditLogOptions {
  /** The database file, e.g. `audit.db` next to `signet.db`. Its directory is created if missing. */
  readonly path: string;
  /** The runtime's key: signs key records and checkpoints. */
  readonly key: Ed25519PrivateKey;
  /**
   * The key the log was last signed with, when `key` replaces it: endorses the new key (and signs a
   * last checkpoint of its period). Required when the log's current key is not `key`.
   */
  readonly previousKey?: Ed25519PrivateKey;
  /**
   * `FULL` (default): every commit is synced, so it survives power loss. `NORMAL`: with WAL a commit
   * survives the process being killed, but the last commits before a power loss may roll back.
   */
  readonly synchronous?: "FULL" | "NORMAL";
  /**
   * Sign a checkpoint, in the same transaction, at the end of a batch that leaves at least this many
   * entries not yet anchored (so a checkpoint's size is always a batch boundary). Default 1000.
   */
  readonly checkpointEvery?: number;
  /** Sign a checkpoint this often (ms) when entries are not yet anchored; 0 turns it off. Default 1000. */
  readonly checkpointIntervalMs?: number;
  /** The most entries one transaction holds. Default 4096. */
  readonly maxBatchSize?: number;
  /** How long a write waits for another connection's lock. Default 5000. */
  readonly busyTimeoutMs?: number;
  /** Microseconds since the Unix epoch, for checkpoint and key record times. */
  readonly nowMicros?: () => number;
}

/** One stored entry. */
export interface StoredAuditEntry {
  readonly seq: number;
  readonly hash: ContentHash;
  readonly bytes: Buffer;
}

export interface AuditLogVerifyOptions {
  /** Also check each row's query columns against its hashed bytes (parses every entry). Default true. */
  readonly columns?: boolean;
}

interface Waiting {
  readonly drafts: readonly AuditEntryDraft[];
  readonly resolve: (sealed: SealedAuditEntry[]) => void;
  readonly reject: (error: unknown) => void;
}

interface EntryRow {
  seq: number;
  hash: string;
  bytes: Buffer;
}

interface FullRow extends EntryRow {
  ts: number;
  type: string;
  actor: string | null;
  target: string | null;
  outcome: string;
  code: string | null;
}

/** Rows per INSERT statement: 9 parameters each, well under SQLite's variable limit. */
const INSERT_CHUNK = 128;
const COLUMNS = 9;
const EXPORT_PAGE = 1024;

function defaultNowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer`);
  return value;
}

function unavailable(message: string, reason: string): SignetError {
  return new SignetError("AUDIT_UNAVAILABLE", message, { reason });
}

/**
 * The audit log over better-sqlite3, in its own file.
 *
 * Example:
 * ```ts
 * const log = new SqliteAuditLog({ path: join(dataDir, "audit.db"), key: runtimeKey });
 * const [sealed] = await log.append([{ id, time: formatAuditTime(micros), type: "invocation", outcome: "allow" }]);
 * const report = log.verify();
 * await log.close(); // drains, signs a last checkpoint, closes the file
 * ```
 */
export class SqliteAuditLog {
  readonly #db: Database.Database;
  readonly #key: Ed25519PrivateKey;
  readonly #nowMicros: () => number;
  readonly #checkpointEvery: number;
  readonly #maxBatchSize: number;
  readonly #inserts = new Map<number, Database.Statement>();
  readonly #saveHead: Database.Statement<[string]>;
  readonly #insertCheckpoint: Database.Statement<[number, string]>;
  #chain: AuditChain;
  #lastCheckpoint: Checkpoint | undefined;
  #queue: Waiting[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SqliteAuditLogOptions) {
    const {
      path,
      key,
      previousKey,
      synchronous = "FULL",
      checkpointEvery = 1000,
      checkpointIntervalMs = 1000,
      maxBatchSize = 4096,
      busyTimeoutMs = 5000,
      nowMicros = defaultNowMicros,
    } = options;
    if (synchronous !== "FULL" && synchronous !== "NORMAL")
      throw new TypeError("synchronous must be FULL or NORMAL");
    this.#checkpointEvery = positiveInteger(checkpointEvery, "checkpointEvery");
    this.#maxBatchSize = positiveInteger(maxBatchSize, "maxBatchSize");
    if (!Number.isSafeInteger(checkpointIntervalMs) || checkpointIntervalMs < 0) {
      throw new TypeError("checkpointIntervalMs must be a non-negative integer");
    }
    this.#key = key;
    this.#nowMicros = nowMicros;

    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    this.#db = db;
    try {
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      migrateSqlite(db, AUDIT_SQLITE_MIGRATIONS);
      this.#saveHead = db.prepare("INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('chain', ?)");
      this.#insertCheckpoint = db.prepare(
        "INSERT INTO audit_checkpoints (tree_size, checkpoint) VALUES (?, ?)",
      );
      this.#chain = this.#restoreChain();
      const last = db
        .prepare<[], string>("SELECT checkpoint FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
        .pluck()
        .get();
      this.#lastCheckpoint = last === undefined ? undefined : (JSON.parse(last) as Checkpoint);
      this.#ensureKey(previousKey);
    } catch (error) {
      db.close();
      throw error;
    }
    if (checkpointIntervalMs > 0) {
      this.#timer = setInterval(() => this.#timedCheckpoint(), checkpointIntervalMs);
      this.#timer.unref();
    }
  }

  /** The number of entries committed: the next seq. */
  get size(): number {
    return this.#chain.size;
  }

  /** The public key entries are verified with. */
  get publicKey(): Ed25519PrivateKey["publicKey"] {
    return this.#key.publicKey;
  }

  /**
   * Appends entries; resolves with their seq, bytes and hash once they are committed (durably, with
   * `synchronous=FULL`). Every call made in one turn of the event loop shares one transaction. Rejects
   * with the draft's own error when a draft is not a valid entry (nothing of that call is written),
   * and with `AUDIT_UNAVAILABLE` when the batch could not be written.
   */
  append(drafts: readonly AuditEntryDraft[]): Promise<SealedAuditEntry[]> {
    if (this.#closed) return Promise.reject(unavailable("The audit log is closed", "audit_closed"));
    if (drafts.length === 0) return Promise.resolve([]);
    const appended = new Promise<SealedAuditEntry[]>((resolve, reject) => {
      this.#queue.push({ drafts, resolve, reject });
    });
    this.#scheduled ??= setImmediate(() => this.#drain());
    return appended;
  }

  /** Writes whatever is queued now. */
  flush(): Promise<void> {
    this.#drain();
    return Promise.resolve();
  }

  /** Signs a checkpoint of the entries not yet anchored (none when there are none); returns the latest. */
  checkpoint(): Checkpoint | undefined {
    if (this.#chain.size > (this.#lastCheckpoint?.tree_size ?? 0)) {
      const signed = this.#signCheckpoint(this.#chain, this.#key);
      this.#db.transaction(() => this.#storeCheckpoint(signed)).immediate();
      this.#lastCheckpoint = signed;
    }
    return this.#lastCheckpoint;
  }

  /** Drains the queue, signs a last checkpoint and closes the database. Safe to call twice. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    try {
      this.#drain();
      this.checkpoint();
    } finally {
      this.#db.close();
    }
    return Promise.resolve();
  }

  /** Up to `limit` entries from `fromSeq` on, in seq order. */
  entries(fromSeq = 0, limit = 1000): StoredAuditEntry[] {
    return this.#db
      .prepare<[number, number], EntryRow>(
        "SELECT seq, hash, bytes FROM audit_entries WHERE seq >= ? ORDER BY seq LIMIT ?",
      )
      .all(fromSeq, limit) as StoredAuditEntry[];
  }

  /** The signed checkpoints, oldest first. */
  checkpoints(): Checkpoint[] {
    return this.#db
      .prepare<[], string>("SELECT checkpoint FROM audit_checkpoints ORDER BY tree_size")
      .pluck()
      .all()
      .map((text) => JSON.parse(text) as Checkpoint);
  }

  /** The runtime key records, oldest first. */
  keys(): RuntimeKeyRecord[] {
    return this.#db
      .prepare<[], string>("SELECT record FROM audit_keys ORDER BY rowid")
      .pluck()
      .all()
      .map((text) => JSON.parse(text) as RuntimeKeyRecord);
  }

  /**
   * The whole log as NDJSON lines (each a Buffer ending in a newline): a description, the key
   * records, the checkpoints, then the entries committed when the export started, in seq order.
   * Verify it offline with `verifyAuditNdjson` and the runtime's public key.
   */
  async *exportNdjson(): AsyncGenerator<Buffer, void, undefined> {
    const size = this.#chain.size;
    const keys = this.keys();
    const checkpoints = this.checkpoints();
    yield Buffer.from(
      auditExportRecordLine({
        export: { format: "signet-audit/1", tree_size: size, time: formatAuditTime(this.#nowMicros()) },
      }),
    );
    for (const key of keys) yield Buffer.from(auditExportRecordLine({ key }));
    for (const checkpoint of checkpoints) yield Buffer.from(auditExportRecordLine({ checkpoint }));
    let next = 0;
    while (next < size) {
      const page = this.entries(next, Math.min(EXPORT_PAGE, size - next));
      if (page.length === 0) break;
      for (const entry of page) yield auditExportEntryLine(entry.bytes, entry.hash);
      next = page.at(-1)!.seq + 1;
      // Let appends and other work run between pages.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Verifies the stored log as an auditor would an export (key chain, checkpoint signatures, every
   * entry's hash, seq, link and the roots), and checks each row's query columns against its bytes.
   */
  verify(options: AuditLogVerifyOptions = {}): AuditVerifyReport {
    const { columns = true } = options;
    const verifier = new AuditLogVerifier(
      { keys: this.keys(), checkpoints: this.checkpoints() },
      { key: this.#key.publicKey },
    );
    let mismatch: AuditProblem | undefined;
    const rows = this.#db
      .prepare<[], FullRow>(
        "SELECT seq, hash, bytes, ts, type, actor, target, outcome, code FROM audit_entries ORDER BY seq",
      )
      .iterate();
    for (const row of rows) {
      if (verifier.settled) break;
      verifier.addEntry(row.bytes, row.hash);
      if (columns && mismatch === undefined) mismatch = columnMismatch(row);
    }
    const report = verifier.finish();
    if (!report.ok || mismatch === undefined) return report;
    return { ...report, ok: false, problem: mismatch };
  }

  #restoreChain(): AuditChain {
    const saved = this.#db
      .prepare<[], string>("SELECT value FROM audit_meta WHERE name = 'chain'")
      .pluck()
      .get();
    const last = this.#db
      .prepare<[], { seq: number; hash: string }>(
        "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
      )
      .get();
    if (saved === undefined) {
      if (last !== undefined)
        throw unavailable("The audit log has entries but no saved chain head", "audit_state");
      return new AuditChain();
    }
    const chain = AuditChain.restore(JSON.parse(saved) as AuditChainState);
    const size = last === undefined ? 0 : last.seq + 1;
    if (size !== chain.size || (last !== undefined && last.hash !== chain.lastHash)) {
      throw unavailable(
        `The audit log's last entry (size ${size}) does not match its saved chain head (size ${chain.size})`,
        "audit_state",
      );
    }
    return chain;
  }

  /** Records the key's first record, or its rotation from `previousKey`. */
  #ensureKey(previousKey: Ed25519PrivateKey | undefined): void {
    const current = this.#db
      .prepare<[], string>("SELECT key_id FROM audit_keys ORDER BY rowid DESC LIMIT 1")
      .pluck()
      .get();
    if (current === this.#key.kid) return;
    const insert = this.#db.prepare<[string, number, string]>(
      "INSERT INTO audit_keys (key_id, tree_size, record) VALUES (?, ?, ?)",
    );
    const time = formatAuditTime(this.#nowMicros());
    if (current === undefined) {
      const record = signRuntimeKeyRecord({ key: this.#key, tree_size: this.#chain.size, time });
      insert.run(record.key_id, record.tree_size, canonicalize(record));
      return;
    }
    if (previousKey?.kid !== current) {
      throw unavailable(
        `The audit log is signed with key ${current}; pass it as previousKey to rotate to ${this.#key.kid}`,
        "audit_key",
      );
    }
    this.#db
      .transaction(() => {
        // The outgoing key anchors what it covers, then endorses its successor from this size on.
        if (this.#chain.size > (this.#lastCheckpoint?.tree_size ?? 0)) {
          const signed = this.#signCheckpoint(this.#chain, previousKey);
          this.#storeCheckpoint(signed);
          this.#lastCheckpoint = signed;
        }
        const record = signRuntimeKeyRecord({
          key: this.#key,
          endorser: previousKey,
          tree_size: this.#chain.size,
          time,
        });
        insert.run(record.key_id, record.tree_size, canonicalize(record));
      })
      .immediate();
  }

  #signCheckpoint(chain: AuditChain, key: Ed25519PrivateKey): Checkpoint {
    const last = this.#lastCheckpoint;
    return signCheckpoint(
      {
        tree_size: chain.size,
        root_hash: chain.rootHash(),
        time: formatAuditTime(this.#nowMicros()),
        ...(last === undefined ? {} : { prev: checkpointHash(last) }),
      },
      key,
    );
  }

  #storeCheckpoint(checkpoint: Checkpoint): void {
    this.#insertCheckpoint.run(checkpoint.tree_size, canonicalize(checkpoint));
  }

  #timedCheckpoint(): void {
    if (this.#closed) return;
    try {
      this.checkpoint();
    } catch {
      // The next tick, the next N entries or close() tries again; appends report their own failures.
    }
  }

  #insertStatement(rows: number): Database.Statement {
    let statement = this.#inserts.get(rows);
    if (statement === undefined) {
      const tuple = `(${new Array<string>(COLUMNS).fill("?").join(", ")})`;
      statement = this.#db.prepare(
        `INSERT INTO audit_entries (seq, hash, bytes, ts, type, actor, target, outcome, code) VALUES ${new Array<string>(rows).fill(tuple).join(", ")}`,
      );
      this.#inserts.set(rows, statement);
    }
    return statement;
  }

  /** Writes the queue, batch by batch, synchronously. */
  #drain(): void {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    while (this.#queue.length > 0) {
      const batch: Waiting[] = [];
      let count = 0;
      while (
        this.#queue.length > 0 &&
        (batch.length === 0 || count + this.#queue[0]!.drafts.length <= this.#maxBatchSize)
      ) {
        const waiting = this.#queue.shift()!;
        batch.push(waiting);
        count += waiting.drafts.length;
      }
      this.#commit(batch);
    }
  }

  #commit(batch: readonly Waiting[]): void {
    const before = this.#chain.clone();
    const accepted: { waiting: Waiting; sealed: SealedAuditEntry[] }[] = [];
    const values: unknown[] = [];
    for (const waiting of batch) {
      const mark = this.#chain.clone();
      const rows: unknown[] = [];
      try {
        const sealed = waiting.drafts.map((draft) => {
          const entry = this.#chain.append(draft);
          rows.push(
            entry.seq,
            entry.hash,
            entry.bytes,
            parseAuditTime(draft.time),
            draft.type,
            draft.actor ?? null,
            draft.target ?? null,
            draft.outcome,
            draft.code ?? null,
          );
          return entry;
        });
        accepted.push({ waiting, sealed });
        for (const value of rows) values.push(value);
      } catch (error) {
        this.#chain = mark;
        waiting.reject(error);
      }
    }
    if (accepted.length === 0) return;

    const chain = this.#chain;
    const due = chain.size - (this.#lastCheckpoint?.tree_size ?? 0) >= this.#checkpointEvery;
    let checkpoint: Checkpoint | undefined;
    try {
      checkpoint = due ? this.#signCheckpoint(chain, this.#key) : undefined;
      this.#db
        .transaction(() => {
          const total = values.length / COLUMNS;
          for (let row = 0; row < total; row += INSERT_CHUNK) {
            const rows = Math.min(INSERT_CHUNK, total - row);
            this.#insertStatement(rows).run(values.slice(row * COLUMNS, (row + rows) * COLUMNS));
          }
          this.#saveHead.run(JSON.stringify(chain.state()));
          if (checkpoint !== undefined) this.#storeCheckpoint(checkpoint);
        })
        .immediate();
    } catch (error) {
      this.#chain = before;
      const failure = unavailable(
        `The audit log could not be written: ${error instanceof Error ? error.message : String(error)}`,
        "audit_write",
      );
      for (const { waiting } of accepted) waiting.reject(failure);
      return;
    }
    if (checkpoint !== undefined) this.#lastCheckpoint = checkpoint;
    for (const { waiting, sealed } of accepted) waiting.resolve(sealed);
  }
}

/** The first query column of a row that disagrees with its hashed bytes, as a problem. */
function columnMismatch(row: FullRow): AuditProblem | undefined {
  let entry;
  try {
    entry = parseAuditEntry(row.bytes);
  } catch {
    return undefined; // the chain check reports bytes that are not an entry
  }
  const expected: Record<string, unknown> = {
    seq: entry.seq,
    ts: parseAuditTime(entry.time),
    type: entry.type,
    actor: entry.actor ?? null,
    target: entry.target ?? null,
    outcome: entry.outcome,
    code: entry.code ?? null,
  };
  for (const [column, value] of Object.entries(expected)) {
    if ((row as unknown as Record<string, unknown>)[column] !== value) {
      return {
        kind: "edited",
        seq: row.seq,
        message: `Entry ${row.seq} was changed: its ${column} column disagrees with its hashed bytes`,
      };
    }
  }
  return undefined;
}
