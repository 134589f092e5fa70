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
  AUDIT_GENESIS_HASH,
  type AuditAnchor,
  AuditChain,
  type AuditChainState,
  type AuditEntryDraft,
  AuditLogVerifier,
  type AuditProblem,
  type AuditVerifyReport,
  type Checkpoint,
  type ConsistencyProofDocument,
  type ContentHash,
  type Ed25519PrivateKey,
  type InclusionProofDocument,
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
  sha256HashBytes,
  signCheckpoint,
  signRuntimeKeyRecord,
} from "@signet/protocol";
import Database from "better-sqlite3";
import { type SqliteMigration, migrateSqlite } from "../store/migrations/sqlite.js";
import { createPrivateFile } from "../store/sqlite.js";
import type { AuditLog, AuditPruneResult, AuditQuery, AuditRecord } from "./audit-log.js";
import {
  type AuditRow,
  auditQuerySql,
  columnMismatch,
  withColumnProblem,
  defaultNowMicros,
  positiveInteger,
  unavailable,
} from "./log-common.js";
import { SubtreeHasher, TILE_SIZE, type TileSource } from "./tiles.js";

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
        id      TEXT NOT NULL,
        ts      INTEGER NOT NULL,
        type    TEXT NOT NULL,
        actor   TEXT,
        target  TEXT,
        outcome TEXT NOT NULL,
        code    TEXT
      ) STRICT;
      CREATE INDEX audit_entries_by_id ON audit_entries (id);
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

      -- The Merkle root of every complete tile of 1024 entries, for proofs (see tiles.ts). A cache
      -- of what the entries determine: a wrong tile gives proofs that do not verify, never a false one.
      CREATE TABLE audit_tiles (
        tile INTEGER PRIMARY KEY,
        hash BLOB NOT NULL
      ) STRICT;

      -- The chain head (AuditChainState as JSON under 'chain'), written in every append transaction,
      -- and the anchor (AuditAnchor as JSON under 'anchor') once retention has pruned the log.
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
  /**
   * Open for reading and verifying only (`signet audit verify --db`): nothing is written, no key is
   * recorded, and a log whose saved head disagrees with its rows opens anyway so that `verify()` can
   * name what is wrong. Appends are refused.
   */
  readonly readOnly?: boolean;
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

type FullRow = AuditRow;

/** Rows per INSERT statement: 10 parameters each, well under SQLite's variable limit. */
const INSERT_CHUNK = 128;
const COLUMNS = 10;
const EXPORT_PAGE = 1024;
const VERIFY_PAGE = 4096;

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
export class SqliteAuditLog implements AuditLog {
  readonly #db: Database.Database;
  readonly #key: Ed25519PrivateKey;
  readonly #nowMicros: () => number;
  readonly #checkpointEvery: number;
  readonly #maxBatchSize: number;
  readonly #inserts = new Map<number, Database.Statement>();
  readonly #saveHead: Database.Statement<[string]>;
  readonly #insertCheckpoint: Database.Statement<[number, string]>;
  readonly #insertTile: Database.Statement<[number, Buffer]>;
  #chain: AuditChain;
  #anchor: AuditAnchor | undefined;
  #lastCheckpoint: Checkpoint | undefined;
  #queue: Waiting[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #readOnly: boolean;

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
      readOnly = false,
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

    this.#readOnly = readOnly;
    if (path !== ":memory:" && !readOnly) {
      // It names principals and keeps redacted parameters: readable by its owner only.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      createPrivateFile(path);
    }
    const db = new Database(path, { readonly: readOnly, fileMustExist: readOnly });
    this.#db = db;
    try {
      if (!readOnly) {
        db.pragma("journal_mode = WAL");
        db.pragma(`synchronous = ${synchronous}`);
      }
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      if (!readOnly) migrateSqlite(db, AUDIT_SQLITE_MIGRATIONS);
      this.#saveHead = db.prepare("INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('chain', ?)");
      this.#insertCheckpoint = db.prepare(
        "INSERT INTO audit_checkpoints (tree_size, checkpoint) VALUES (?, ?)",
      );
      this.#insertTile = db.prepare("INSERT INTO audit_tiles (tile, hash) VALUES (?, ?)");
      this.#chain = this.#restoreChain(readOnly);
      const anchor = db
        .prepare<[], string>("SELECT value FROM audit_meta WHERE name = 'anchor'")
        .pluck()
        .get();
      this.#anchor = anchor === undefined ? undefined : (JSON.parse(anchor) as AuditAnchor);
      const last = db
        .prepare<[], string>("SELECT checkpoint FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1")
        .pluck()
        .get();
      this.#lastCheckpoint = last === undefined ? undefined : (JSON.parse(last) as Checkpoint);
      if (!readOnly) this.#ensureKey(previousKey);
    } catch (error) {
      db.close();
      throw error;
    }
    if (checkpointIntervalMs > 0 && !readOnly) {
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
    if (this.#readOnly)
      return Promise.reject(unavailable("The audit log is open read-only", "audit_read_only"));
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

  /** The seq of the oldest entry held: the anchor's size once retention has pruned the log. */
  get firstSeq(): number {
    return this.#anchor?.tree_size ?? 0;
  }

  /** Signs a checkpoint of the entries not yet anchored (none when there are none); returns the latest. */
  checkpoint(): Promise<Checkpoint | undefined> {
    return Promise.resolve(this.#checkpointNow());
  }

  /** Drains the queue, signs a last checkpoint and closes the database. Safe to call twice. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    try {
      this.#drain();
      if (!this.#readOnly) this.#checkpointNow();
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

  /** Entries matching every filter given, parsed from their stored bytes. */
  query(query: AuditQuery): Promise<AuditRecord[]> {
    const { where, order, limit, params } = auditQuerySql(query, () => "?");
    const rows = this.#db
      .prepare<(string | number)[], EntryRow>(
        `SELECT seq, hash, bytes FROM audit_entries${where} ORDER BY seq ${order} LIMIT ${limit}`,
      )
      .all(...params);
    return Promise.resolve(
      rows.map((row) => ({ ...parseAuditEntry(row.bytes), hash: row.hash as ContentHash })),
    );
  }

  /** The signed checkpoints, oldest first. */
  checkpoints(minTreeSize = 0): Promise<Checkpoint[]> {
    return Promise.resolve(this.#checkpointsSync(minTreeSize));
  }

  /** The runtime key records, oldest first. */
  keys(): Promise<RuntimeKeyRecord[]> {
    return Promise.resolve(this.#keysSync());
  }

  async inclusionProof(seq: number, treeSize?: number): Promise<InclusionProofDocument> {
    const size = treeSize ?? this.#lastCheckpoint?.tree_size ?? this.#chain.size;
    if (
      !Number.isSafeInteger(seq) ||
      !Number.isSafeInteger(size) ||
      seq < 0 ||
      seq >= size ||
      size > this.#chain.size
    ) {
      throw new SignetError(
        "INVALID_REQUEST",
        `No entry ${seq} in a tree of ${size} entries (the log holds ${this.#chain.size})`,
        {
          reason: "audit_proof",
        },
      );
    }
    if (seq < this.firstSeq) {
      throw new SignetError("NOT_FOUND", `Entry ${seq} was pruned by retention`, { reason: "audit_pruned" });
    }
    return {
      leaf_index: seq,
      tree_size: size,
      path: new SubtreeHasher(this.#tileSource()).inclusionProof(seq, size),
    };
  }

  async consistencyProof(first: number, second: number): Promise<ConsistencyProofDocument> {
    if (
      !Number.isSafeInteger(first) ||
      !Number.isSafeInteger(second) ||
      first < 0 ||
      first > second ||
      second > this.#chain.size
    ) {
      throw new SignetError(
        "INVALID_REQUEST",
        `No consistency proof between tree sizes ${first} and ${second} (the log holds ${this.#chain.size})`,
        { reason: "audit_proof" },
      );
    }
    if (first < this.firstSeq && first !== 0) {
      throw new SignetError("NOT_FOUND", `Tree size ${first} is below what retention kept`, {
        reason: "audit_pruned",
      });
    }
    return {
      first,
      second,
      path: new SubtreeHasher(this.#tileSource()).consistencyProof(first, second),
    };
  }

  /**
   * The log as NDJSON lines (each a Buffer ending in a newline): a description, the key records, the
   * anchor when it does not start at seq 0, the checkpoints, then the entries committed when the
   * export started, in seq order. Verify it offline with `verifyAuditNdjson` and the public key.
   */
  async *exportNdjson(options: { readonly fromSeq?: number } = {}): AsyncGenerator<Buffer, void, undefined> {
    const size = this.#chain.size;
    const from = Math.max(this.firstSeq, options.fromSeq ?? 0);
    if (!Number.isSafeInteger(from) || from > size) {
      throw new SignetError("INVALID_REQUEST", `The log has no entry ${from}`, { reason: "audit_export" });
    }
    const anchor = from === this.firstSeq ? this.#anchor : this.#anchorAt(from);
    const keys = this.#keysSync();
    const checkpoints = this.#checkpointsSync(from);
    yield Buffer.from(
      auditExportRecordLine({
        export: { format: "signet-audit/1", tree_size: size, time: formatAuditTime(this.#nowMicros()) },
      }),
    );
    for (const key of keys) yield Buffer.from(auditExportRecordLine({ key }));
    if (anchor !== undefined) yield Buffer.from(auditExportRecordLine({ anchor }));
    for (const checkpoint of checkpoints) yield Buffer.from(auditExportRecordLine({ checkpoint }));
    let next = from;
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
   * Verifies the stored log as an auditor would an export (key chain, checkpoint signatures, the
   * anchor, every entry's hash, seq, link and the roots), and checks each row's query columns against
   * its hashed bytes. Yields to other work between pages of entries.
   */
  async verify(options: AuditLogVerifyOptions = {}): Promise<AuditVerifyReport> {
    const { columns = true } = options;
    const verifier = new AuditLogVerifier(
      {
        keys: this.#keysSync(),
        checkpoints: this.#checkpointsSync(),
        ...(this.#anchor === undefined ? {} : { anchor: this.#anchor }),
      },
      { key: this.#key.publicKey },
    );
    const page = this.#db.prepare<[number, number], FullRow>(
      "SELECT seq, hash, bytes, id, ts, type, actor, target, outcome, code FROM audit_entries WHERE seq > ? ORDER BY seq LIMIT ?",
    );
    let mismatch: AuditProblem | undefined;
    let after = -1;
    while (!verifier.settled) {
      const rows = page.all(after, VERIFY_PAGE);
      for (const row of rows) {
        if (verifier.settled) break;
        verifier.addEntry(row.bytes, row.hash);
        if (columns && mismatch === undefined) mismatch = columnMismatch(row);
      }
      if (rows.length < VERIFY_PAGE) break;
      after = rows.at(-1)!.seq;
      // Let appends and requests run between pages of a long log.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return withColumnProblem(verifier.finish(), mismatch);
  }

  /**
   * Retention: removes the entries recorded before `beforeMicros`, down to the newest checkpoint at or
   * below the first entry to keep, and stores the anchor that stands in for them (docs/audit.md §8).
   * Checkpoints below the anchor go with them; key records and tiles stay. Entries after the last
   * checkpoint are never pruned, so the anchor is always checked against a signed root.
   */
  prune(beforeMicros: number): Promise<AuditPruneResult | undefined> {
    const firstKept = this.#db
      .prepare<[number, number], number | null>(
        "SELECT min(seq) FROM audit_entries WHERE ts >= ? AND seq >= ?",
      )
      .pluck()
      .get(beforeMicros, this.firstSeq);
    const limit = firstKept ?? this.#chain.size;
    const target = this.#db
      .prepare<[number, number], number | null>(
        "SELECT max(tree_size) FROM audit_checkpoints WHERE tree_size <= ? AND tree_size > ?",
      )
      .pluck()
      .get(limit, this.firstSeq);
    if (target === null || target === undefined) return Promise.resolve(undefined);
    const prev = this.#db
      .prepare<[number], string>("SELECT hash FROM audit_entries WHERE seq = ?")
      .pluck()
      .get(target - 1);
    if (prev === undefined) {
      throw unavailable(`The audit log lacks entry ${target - 1} to anchor a prune`, "audit_state");
    }
    const anchor = this.#anchorAt(target, prev as ContentHash);
    let removed = 0;
    let checkpointsRemoved = 0;
    this.#db
      .transaction(() => {
        removed = this.#db.prepare("DELETE FROM audit_entries WHERE seq < ?").run(target).changes;
        checkpointsRemoved = this.#db
          .prepare("DELETE FROM audit_checkpoints WHERE tree_size < ?")
          .run(target).changes;
        this.#db
          .prepare("INSERT OR REPLACE INTO audit_meta (name, value) VALUES ('anchor', ?)")
          .run(JSON.stringify(anchor));
      })
      .immediate();
    this.#anchor = anchor;
    return Promise.resolve({ anchorSize: target, removed, checkpointsRemoved });
  }

  #checkpointNow(): Checkpoint | undefined {
    if (this.#chain.size > (this.#lastCheckpoint?.tree_size ?? 0)) {
      const signed = this.#signCheckpoint(this.#chain, this.#key);
      this.#db.transaction(() => this.#storeCheckpoint(signed)).immediate();
      this.#lastCheckpoint = signed;
    }
    return this.#lastCheckpoint;
  }

  #checkpointsSync(minTreeSize = 0): Checkpoint[] {
    return this.#db
      .prepare<[number], string>(
        "SELECT checkpoint FROM audit_checkpoints WHERE tree_size >= ? ORDER BY tree_size",
      )
      .pluck()
      .all(minTreeSize)
      .map((text) => JSON.parse(text) as Checkpoint);
  }

  #keysSync(): RuntimeKeyRecord[] {
    return this.#db
      .prepare<[], string>("SELECT record FROM audit_keys ORDER BY rowid")
      .pluck()
      .all()
      .map((text) => JSON.parse(text) as RuntimeKeyRecord);
  }

  /** The anchor standing in for entries [0, size), from tiles, leaves and the current anchor. */
  #anchorAt(size: number, prevHash?: ContentHash): AuditAnchor {
    const prev =
      prevHash ??
      (size === 0
        ? AUDIT_GENESIS_HASH
        : (this.#db
            .prepare<[number], string>("SELECT hash FROM audit_entries WHERE seq = ?")
            .pluck()
            .get(size - 1) as ContentHash | undefined));
    if (prev === undefined) {
      throw new SignetError("NOT_FOUND", `Entry ${size - 1} was pruned by retention`, {
        reason: "audit_pruned",
      });
    }
    return new SubtreeHasher(this.#tileSource()).anchorAt(size, prev);
  }

  #tileSource(): TileSource {
    const tile = this.#db.prepare<[number], Buffer>("SELECT hash FROM audit_tiles WHERE tile = ?").pluck();
    const leaves = this.#db.prepare<[number, number], { seq: number; hash: string }>(
      "SELECT seq, hash FROM audit_entries WHERE seq >= ? AND seq < ?",
    );
    const size = this.#chain.size;
    return {
      anchor: this.#anchor,
      tile: (index) => ((index + 1) * TILE_SIZE <= size ? tile.get(index) : undefined),
      leaves: (start, end) =>
        new Map(leaves.all(start, Math.min(end, size)).map((row) => [row.seq, sha256HashBytes(row.hash)])),
    };
  }

  #restoreChain(lenient: boolean): AuditChain {
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
      if (last !== undefined && !lenient)
        throw unavailable("The audit log has entries but no saved chain head", "audit_state");
      return new AuditChain();
    }
    const chain = AuditChain.restore(JSON.parse(saved) as AuditChainState);
    const size = last === undefined ? 0 : last.seq + 1;
    if (!lenient && (size !== chain.size || (last !== undefined && last.hash !== chain.lastHash))) {
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
      this.#checkpointNow();
    } catch {
      // The next tick, the next N entries or close() tries again; appends report their own failures.
    }
  }

  #insertStatement(rows: number): Database.Statement {
    let statement = this.#inserts.get(rows);
    if (statement === undefined) {
      const tuple = `(${new Array<string>(COLUMNS).fill("?").join(", ")})`;
      statement = this.#db.prepare(
        `INSERT INTO audit_entries (seq, hash, bytes, id, ts, type, actor, target, outcome, code) VALUES ${new Array<string>(rows).fill(tuple).join(", ")}`,
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
    // Tiles completed by this batch go into the same transaction; the chain hashed their roots on
    // the way to its frontier, so taking them costs nothing.
    const tiles: [number, Buffer][] = [];
    for (const waiting of batch) {
      // A failed append changes nothing, so only a call of several drafts needs a mark to roll back to.
      const mark = waiting.drafts.length > 1 ? this.#chain.clone() : this.#chain;
      const rows: unknown[] = [];
      const completed: [number, Buffer][] = [];
      try {
        const sealed = waiting.drafts.map((draft) => {
          const entry = this.#chain.append(draft);
          if (this.#chain.size % TILE_SIZE === 0) {
            completed.push([this.#chain.size / TILE_SIZE - 1, this.#chain.lastSubtreeRoot(TILE_SIZE)!]);
          }
          rows.push(
            entry.seq,
            entry.hash,
            entry.bytes,
            draft.id,
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
        for (const tile of completed) tiles.push(tile);
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
          for (const [index, root] of tiles) this.#insertTile.run(index, root);
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
