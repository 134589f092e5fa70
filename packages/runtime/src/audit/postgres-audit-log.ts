// The audit log in PostgreSQL, shared by several runtime instances as one total order.
//
// One chain, many writers: every append transaction takes the transaction-scoped advisory lock
// AUDIT_LOCK, reads the chain head (`audit_meta.chain`), numbers, links and hashes its entries from
// that head, inserts them (one multi-row INSERT over unnest arrays), the completed tile roots, the new
// head and any checkpoint due, and commits — which releases the lock. Writers on different instances
// therefore take turns, each continuing exactly where the last commit left the log, and the seq order
// is the commit order. Within one instance, appends made in one turn of the event loop share one such
// transaction (group commit), so the lock is taken once per batch, not once per entry. Tile roots come
// from the chain itself as its appends complete them.
//
// PostgreSQL's default `synchronous_commit = on` makes a commit durable (WAL flushed) before the
// append resolves. Any failure — the server down, the lock wait past `statement_timeout`, a constraint —
// rolls the transaction back and rejects every append in it with AUDIT_UNAVAILABLE.
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
  type Ed25519PublicKey,
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
import pg from "pg";
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

/** The advisory lock every writer of the audit log holds for its transaction ("signet-audit"). */
export const AUDIT_LOCK = 0x5167_a0d1;
const EXPORT_PAGE = 1024;
const VERIFY_PAGE = 4096;
const DUMMY_HASH = Buffer.alloc(32, 0xaa);

/** The audit schema, oldest first; `audit_schema_migrations` records what was applied. */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE audit_entries (
        seq     bigint PRIMARY KEY CHECK (seq >= 0),
        hash    text NOT NULL,
        bytes   bytea NOT NULL,
        id      text NOT NULL,
        ts      bigint NOT NULL,
        type    text NOT NULL,
        actor   text,
        target  text,
        outcome text NOT NULL,
        code    text
      );
      CREATE INDEX audit_entries_by_id ON audit_entries (id);
      CREATE INDEX audit_entries_by_ts ON audit_entries (ts);
      CREATE INDEX audit_entries_by_type ON audit_entries (type, seq);
      CREATE INDEX audit_entries_by_actor ON audit_entries (actor, seq);
      CREATE INDEX audit_entries_by_target ON audit_entries (target, seq);
      CREATE TABLE audit_checkpoints (tree_size bigint PRIMARY KEY, checkpoint text NOT NULL);
      CREATE TABLE audit_keys (
        position  bigserial PRIMARY KEY,
        key_id    text NOT NULL UNIQUE,
        tree_size bigint NOT NULL,
        record    text NOT NULL
      );
      CREATE TABLE audit_tiles (tile bigint PRIMARY KEY, hash bytea NOT NULL);
      CREATE TABLE audit_meta (name text PRIMARY KEY, value text NOT NULL);
    `,
  },
];

export interface PostgresAuditLogOptions {
  /** `postgres://…`; a pool of `poolSize` connections is opened and closed with the log. */
  readonly url: string;
  readonly poolSize?: number;
  readonly key: Ed25519PrivateKey;
  /** The key the log was last signed with, when `key` replaces it (see SqliteAuditLog). */
  readonly previousKey?: Ed25519PrivateKey;
  readonly checkpointEvery?: number;
  readonly checkpointIntervalMs?: number;
  readonly maxBatchSize?: number;
  /** Longest a statement (including the wait for the writers' lock) may take. Default 5000. */
  readonly statementTimeoutMs?: number;
  readonly nowMicros?: () => number;
}

interface Waiting {
  readonly drafts: readonly AuditEntryDraft[];
  readonly resolve: (sealed: SealedAuditEntry[]) => void;
  readonly reject: (error: unknown) => void;
}

// bigint columns as numbers: seq, tree sizes and microsecond times all stay below 2^53.
const parseInt8 = (value: string): number => Number(value);
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): unknown =>
    oid === 20 ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function failure(error: unknown): SignetError {
  if (error instanceof SignetError) return error;
  return unavailable(
    `The audit log could not be written: ${error instanceof Error ? error.message : String(error)}`,
    "audit_write",
  );
}

/**
 * The audit log over PostgreSQL. Open it with {@link PostgresAuditLog.open}.
 *
 * Example:
 * ```ts
 * const log = await PostgresAuditLog.open({ url: "postgres://signet@db/signet", key: runtimeKey });
 * await log.append([draft]);
 * await log.close();
 * ```
 */
export class PostgresAuditLog implements AuditLog {
  readonly #pool: pg.Pool;
  readonly #key: Ed25519PrivateKey;
  readonly #nowMicros: () => number;
  readonly #checkpointEvery: number;
  readonly #maxBatchSize: number;
  #queue: Waiting[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #draining: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The head this instance last read or wrote. */
  #head: AuditChainState = { size: 0, last_hash: AUDIT_GENESIS_HASH, frontier: [] };
  #firstSeq = 0;

  private constructor(pool: pg.Pool, options: PostgresAuditLogOptions) {
    this.#pool = pool;
    this.#key = options.key;
    this.#nowMicros = options.nowMicros ?? defaultNowMicros;
    this.#checkpointEvery = positiveInteger(options.checkpointEvery ?? 1000, "checkpointEvery");
    this.#maxBatchSize = positiveInteger(options.maxBatchSize ?? 4096, "maxBatchSize");
  }

  /** Connects, applies migrations (once, whoever runs them), records the key, and starts the timer. */
  static async open(options: PostgresAuditLogOptions): Promise<PostgresAuditLog> {
    const checkpointIntervalMs = options.checkpointIntervalMs ?? 1000;
    if (!Number.isSafeInteger(checkpointIntervalMs) || checkpointIntervalMs < 0) {
      throw new TypeError("checkpointIntervalMs must be a non-negative integer");
    }
    const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 4,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: Math.max(1000, statementTimeoutMs),
      statement_timeout: statementTimeoutMs,
      types: TYPES,
    });
    // An idle client's error (the server restarting) must not crash the process; the next query fails.
    pool.on("error", () => undefined);
    // So must a checked-out client's (it emits on itself, not on the pool): its transaction fails.
    pool.on("connect", (client) => client.on("error", () => undefined));
    const log = new PostgresAuditLog(pool, options);
    try {
      await log.#migrate();
      await log.#transaction(async (client) => {
        await log.#readHead(client);
        await log.#ensureKey(client, options.previousKey);
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    if (checkpointIntervalMs > 0) {
      log.#timer = setInterval(() => void log.checkpoint().catch(() => undefined), checkpointIntervalMs);
      log.#timer.unref();
    }
    return log;
  }

  /** Entries in the log as this instance last saw it (other instances may have appended since). */
  get size(): number {
    return this.#head.size;
  }

  get firstSeq(): number {
    return this.#firstSeq;
  }

  get publicKey(): Ed25519PublicKey {
    return this.#key.publicKey;
  }

  append(drafts: readonly AuditEntryDraft[]): Promise<SealedAuditEntry[]> {
    if (this.#closed) return Promise.reject(unavailable("The audit log is closed", "audit_closed"));
    if (drafts.length === 0) return Promise.resolve([]);
    const appended = new Promise<SealedAuditEntry[]>((resolve, reject) => {
      this.#queue.push({ drafts, resolve, reject });
    });
    if (this.#draining === undefined) this.#scheduled ??= setImmediate(() => void this.flush());
    return appended;
  }

  /** Writes what is queued, batch after batch; resolves when the queue is empty. Never rejects. */
  flush(): Promise<void> {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (this.#draining === undefined && this.#queue.length > 0) {
      this.#draining = (async () => {
        try {
          while (this.#queue.length > 0) await this.#commit(this.#takeBatch());
        } finally {
          this.#draining = undefined;
        }
      })();
    }
    return this.#draining ?? Promise.resolve();
  }

  async checkpoint(): Promise<Checkpoint | undefined> {
    return this.#transaction(async (client) => {
      const chain = await this.#readHead(client);
      const last = await this.#lastCheckpoint(client);
      if (chain.size <= (last?.tree_size ?? 0)) return last;
      const signed = this.#sign(chain, this.#key, last);
      await client.query("INSERT INTO audit_checkpoints (tree_size, checkpoint) VALUES ($1, $2)", [
        signed.tree_size,
        canonicalize(signed),
      ]);
      return signed;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    try {
      await this.flush();
      await this.checkpoint().catch(() => undefined);
    } finally {
      await this.#pool.end();
    }
  }

  async query(query: AuditQuery): Promise<AuditRecord[]> {
    const { where, order, limit, params } = auditQuerySql(query, (index) => `$${index}`);
    const { rows } = await this.#pool.query<{ hash: string; bytes: Buffer }>(
      `SELECT hash, bytes FROM audit_entries${where} ORDER BY seq ${order} LIMIT ${limit}`,
      params,
    );
    return rows.map((row) => ({ ...parseAuditEntry(row.bytes), hash: row.hash as ContentHash }));
  }

  async checkpoints(minTreeSize = 0): Promise<Checkpoint[]> {
    const { rows } = await this.#pool.query<{ checkpoint: string }>(
      "SELECT checkpoint FROM audit_checkpoints WHERE tree_size >= $1 ORDER BY tree_size",
      [minTreeSize],
    );
    return rows.map((row) => JSON.parse(row.checkpoint) as Checkpoint);
  }

  async keys(): Promise<RuntimeKeyRecord[]> {
    const { rows } = await this.#pool.query<{ record: string }>(
      "SELECT record FROM audit_keys ORDER BY position",
    );
    return rows.map((row) => JSON.parse(row.record) as RuntimeKeyRecord);
  }

  async inclusionProof(seq: number, treeSize?: number): Promise<InclusionProofDocument> {
    const { size, anchor } = await this.#snapshot(this.#pool);
    const last = await this.#lastCheckpoint(this.#pool);
    const tree = treeSize ?? last?.tree_size ?? size;
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(tree) || seq < 0 || seq >= tree || tree > size) {
      throw new SignetError(
        "INVALID_REQUEST",
        `No entry ${seq} in a tree of ${tree} entries (the log holds ${size})`,
        {
          reason: "audit_proof",
        },
      );
    }
    if (seq < (anchor?.tree_size ?? 0)) {
      throw new SignetError("NOT_FOUND", `Entry ${seq} was pruned by retention`, { reason: "audit_pruned" });
    }
    const hasher = await this.#hasher(this.#pool, size, anchor, (dry) => dry.inclusionProof(seq, tree));
    return { leaf_index: seq, tree_size: tree, path: hasher.inclusionProof(seq, tree) };
  }

  async consistencyProof(first: number, second: number): Promise<ConsistencyProofDocument> {
    const { size, anchor } = await this.#snapshot(this.#pool);
    if (
      !Number.isSafeInteger(first) ||
      !Number.isSafeInteger(second) ||
      first < 0 ||
      first > second ||
      second > size
    ) {
      throw new SignetError(
        "INVALID_REQUEST",
        `No consistency proof between tree sizes ${first} and ${second} (the log holds ${size})`,
        { reason: "audit_proof" },
      );
    }
    if (first !== 0 && first < (anchor?.tree_size ?? 0)) {
      throw new SignetError("NOT_FOUND", `Tree size ${first} is below what retention kept`, {
        reason: "audit_pruned",
      });
    }
    const hasher = await this.#hasher(this.#pool, size, anchor, (dry) => dry.consistencyProof(first, second));
    return { first, second, path: hasher.consistencyProof(first, second) };
  }

  async *exportNdjson(options: { readonly fromSeq?: number } = {}): AsyncGenerator<Buffer, void, undefined> {
    const { size, anchor: stored } = await this.#snapshot(this.#pool);
    const firstSeq = stored?.tree_size ?? 0;
    const from = Math.max(firstSeq, options.fromSeq ?? 0);
    if (!Number.isSafeInteger(from) || from > size) {
      throw new SignetError("INVALID_REQUEST", `The log has no entry ${from}`, { reason: "audit_export" });
    }
    const anchor = from === firstSeq ? stored : await this.#anchorAt(this.#pool, size, stored, from);
    const keys = await this.keys();
    const checkpoints = await this.checkpoints(from);
    yield Buffer.from(
      auditExportRecordLine({
        export: { format: "signet-audit/1", tree_size: size, time: formatAuditTime(this.#nowMicros()) },
      }),
    );
    for (const key of keys) yield Buffer.from(auditExportRecordLine({ key }));
    if (anchor !== undefined) yield Buffer.from(auditExportRecordLine({ anchor }));
    for (const checkpoint of checkpoints) {
      if (checkpoint.tree_size <= size) yield Buffer.from(auditExportRecordLine({ checkpoint }));
    }
    let next = from;
    while (next < size) {
      const { rows } = await this.#pool.query<{ seq: number; hash: string; bytes: Buffer }>(
        "SELECT seq, hash, bytes FROM audit_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT $3",
        [next, size, EXPORT_PAGE],
      );
      if (rows.length === 0) break;
      for (const row of rows) yield auditExportEntryLine(row.bytes, row.hash as ContentHash);
      next = rows.at(-1)!.seq + 1;
    }
  }

  async verify(): Promise<AuditVerifyReport> {
    const { anchor } = await this.#snapshot(this.#pool);
    const verifier = new AuditLogVerifier(
      {
        keys: await this.keys(),
        checkpoints: await this.checkpoints(),
        ...(anchor === undefined ? {} : { anchor }),
      },
      { key: this.#key.publicKey },
    );
    let mismatch: AuditProblem | undefined;
    let after = -1;
    while (!verifier.settled) {
      const { rows } = await this.#pool.query<AuditRow>(
        "SELECT seq, hash, bytes, id, ts, type, actor, target, outcome, code FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
        [after, VERIFY_PAGE],
      );
      for (const row of rows) {
        if (verifier.settled) break;
        verifier.addEntry(row.bytes, row.hash);
        mismatch ??= columnMismatch(row);
      }
      if (rows.length < VERIFY_PAGE) break;
      after = rows.at(-1)!.seq;
    }
    return withColumnProblem(verifier.finish(), mismatch);
  }

  async prune(beforeMicros: number): Promise<AuditPruneResult | undefined> {
    return this.#transaction(async (client) => {
      await this.#readHead(client);
      const { size, anchor: current } = await this.#snapshot(client);
      const firstSeq = current?.tree_size ?? 0;
      const kept = await client.query<{ seq: number | null }>(
        "SELECT min(seq) AS seq FROM audit_entries WHERE ts >= $1 AND seq >= $2",
        [beforeMicros, firstSeq],
      );
      const limit = kept.rows[0]?.seq ?? size;
      const found = await client.query<{ size: number | null }>(
        "SELECT max(tree_size) AS size FROM audit_checkpoints WHERE tree_size <= $1 AND tree_size > $2",
        [limit, firstSeq],
      );
      const target = found.rows[0]?.size ?? null;
      if (target === null) return undefined;
      const anchor = await this.#anchorAt(client, size, current, target);
      const removed = await client.query("DELETE FROM audit_entries WHERE seq < $1", [target]);
      const checkpoints = await client.query("DELETE FROM audit_checkpoints WHERE tree_size < $1", [target]);
      await client.query(
        "INSERT INTO audit_meta (name, value) VALUES ('anchor', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        [JSON.stringify(anchor)],
      );
      this.#firstSeq = target;
      return {
        anchorSize: target,
        removed: removed.rowCount ?? 0,
        checkpointsRemoved: checkpoints.rowCount ?? 0,
      };
    });
  }

  #takeBatch(): Waiting[] {
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
    return batch;
  }

  async #commit(batch: readonly Waiting[]): Promise<void> {
    let accepted: { waiting: Waiting; sealed: SealedAuditEntry[] }[] = [];
    const refused = new Set<Waiting>();
    let outcome: { head: AuditChainState } | undefined;
    try {
      outcome = await this.#transaction(async (client) => {
        let chain = await this.#readHead(client);
        const last = await this.#lastCheckpoint(client);
        accepted = [];
        const tiles: [number, Buffer][] = [];
        for (const waiting of batch) {
          const mark = chain.clone();
          const completed: [number, Buffer][] = [];
          try {
            const sealed = waiting.drafts.map((draft) => {
              const entry = chain.append(draft);
              // The chain hashed the tile's root on its way to the frontier: taking it costs nothing.
              if (chain.size % TILE_SIZE === 0) {
                completed.push([chain.size / TILE_SIZE - 1, chain.lastSubtreeRoot(TILE_SIZE)!]);
              }
              return entry;
            });
            accepted.push({ waiting, sealed });
            tiles.push(...completed);
          } catch (error) {
            chain = mark;
            refused.add(waiting);
            waiting.reject(error);
          }
        }
        if (accepted.length === 0) return undefined;
        const columns: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
        for (const { waiting, sealed } of accepted) {
          sealed.forEach((entry, index) => {
            const draft = waiting.drafts[index]!;
            const values = [
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
            ];
            values.forEach((value, column) => columns[column]!.push(value));
          });
        }
        await client.query(
          `INSERT INTO audit_entries (seq, hash, bytes, id, ts, type, actor, target, outcome, code)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::text[],
                                $7::text[], $8::text[], $9::text[], $10::text[])`,
          columns,
        );
        if (tiles.length > 0) {
          await client.query(
            "INSERT INTO audit_tiles (tile, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])",
            [tiles.map(([index]) => index), tiles.map(([, root]) => root)],
          );
        }
        const head = chain.state();
        await client.query(
          "INSERT INTO audit_meta (name, value) VALUES ('chain', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
          [JSON.stringify(head)],
        );
        if (chain.size - (last?.tree_size ?? 0) >= this.#checkpointEvery) {
          const signed = this.#sign(chain, this.#key, last);
          await client.query("INSERT INTO audit_checkpoints (tree_size, checkpoint) VALUES ($1, $2)", [
            signed.tree_size,
            canonicalize(signed),
          ]);
        }
        return { head };
      });
    } catch (error) {
      // Everything in the batch that was not refused on its own fails with the transaction, whether
      // it failed before the drafts were numbered (no connection, no lock) or after.
      const rejected = failure(error);
      for (const waiting of batch) if (!refused.has(waiting)) waiting.reject(rejected);
      return;
    }
    if (outcome === undefined) return;
    this.#head = outcome.head;
    for (const { waiting, sealed } of accepted) waiting.resolve(sealed);
  }

  /** Runs `work` in a transaction holding the writers' lock. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw unavailable(
        `The audit database is unreachable: ${error instanceof Error ? error.message : String(error)}`,
        "audit_connect",
      );
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_LOCK]);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** The chain at the head stored now (under the lock: nobody else moves it until we commit). */
  async #readHead(client: pg.PoolClient): Promise<AuditChain> {
    const { rows } = await client.query<{ name: string; value: string }>(
      "SELECT name, value FROM audit_meta WHERE name IN ('chain', 'anchor')",
    );
    const saved = rows.find((row) => row.name === "chain");
    const anchor = rows.find((row) => row.name === "anchor");
    this.#firstSeq = anchor === undefined ? 0 : (JSON.parse(anchor.value) as AuditAnchor).tree_size;
    const chain =
      saved === undefined ? new AuditChain() : AuditChain.restore(JSON.parse(saved.value) as AuditChainState);
    if (chain.size !== this.#head.size || chain.lastHash !== this.#head.last_hash) this.#head = chain.state();
    return chain;
  }

  async #lastCheckpoint(client: pg.PoolClient | pg.Pool): Promise<Checkpoint | undefined> {
    const { rows } = await client.query<{ checkpoint: string }>(
      "SELECT checkpoint FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1",
    );
    return rows[0] === undefined ? undefined : (JSON.parse(rows[0].checkpoint) as Checkpoint);
  }

  #sign(chain: AuditChain, key: Ed25519PrivateKey, last: Checkpoint | undefined): Checkpoint {
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

  /** The head's size and the anchor, read together. */
  async #snapshot(
    client: pg.PoolClient | pg.Pool,
  ): Promise<{ size: number; anchor: AuditAnchor | undefined }> {
    const { rows } = await client.query<{ name: string; value: string }>(
      "SELECT name, value FROM audit_meta WHERE name IN ('chain', 'anchor')",
    );
    const chain = rows.find((row) => row.name === "chain");
    const anchor = rows.find((row) => row.name === "anchor");
    return {
      size: chain === undefined ? 0 : (JSON.parse(chain.value) as AuditChainState).size,
      anchor: anchor === undefined ? undefined : (JSON.parse(anchor.value) as AuditAnchor),
    };
  }

  /**
   * A SubtreeHasher with exactly the tiles and leaves `use` needs: a first pass over stand-in hashes
   * records what the recursion asks for (its shape does not depend on the hash values), then those
   * rows are read and the real pass runs synchronously.
   */
  async #hasher(
    client: pg.PoolClient | pg.Pool,
    size: number,
    anchor: AuditAnchor | undefined,
    use: (hasher: SubtreeHasher) => unknown,
  ): Promise<SubtreeHasher> {
    const firstSeq = anchor?.tree_size ?? 0;
    const tilesWanted = new Set<number>();
    const leafRanges: [number, number][] = [];
    use(
      new SubtreeHasher({
        anchor,
        tile: (index) => {
          if ((index + 1) * TILE_SIZE > size) return undefined;
          tilesWanted.add(index);
          return DUMMY_HASH;
        },
        leaves: (start, end) => {
          leafRanges.push([start, Math.min(end, size)]);
          const out = new Map<number, Buffer>();
          for (let seq = Math.max(start, firstSeq); seq < Math.min(end, size); seq++)
            out.set(seq, DUMMY_HASH);
          return out;
        },
      }),
    );
    const tiles = new Map<number, Buffer>();
    if (tilesWanted.size > 0) {
      const { rows } = await client.query<{ tile: number; hash: Buffer }>(
        "SELECT tile, hash FROM audit_tiles WHERE tile = ANY($1::bigint[])",
        [[...tilesWanted]],
      );
      for (const row of rows) tiles.set(row.tile, row.hash);
    }
    const leaves = new Map<number, Buffer>();
    for (const [start, end] of leafRanges) {
      const { rows } = await client.query<{ seq: number; hash: string }>(
        "SELECT seq, hash FROM audit_entries WHERE seq >= $1 AND seq < $2",
        [start, end],
      );
      for (const row of rows) leaves.set(row.seq, sha256HashBytes(row.hash));
    }
    const source: TileSource = {
      anchor,
      tile: (index) => tiles.get(index),
      leaves: (start, end) => {
        const out = new Map<number, Buffer>();
        for (let seq = start; seq < end; seq++) {
          const leaf = leaves.get(seq);
          if (leaf !== undefined) out.set(seq, leaf);
        }
        return out;
      },
    };
    return new SubtreeHasher(source);
  }

  async #anchorAt(
    client: pg.PoolClient | pg.Pool,
    size: number,
    current: AuditAnchor | undefined,
    at: number,
  ): Promise<AuditAnchor> {
    let prev: ContentHash = AUDIT_GENESIS_HASH;
    if (at > 0) {
      const { rows } = await client.query<{ hash: string }>("SELECT hash FROM audit_entries WHERE seq = $1", [
        at - 1,
      ]);
      if (rows[0] === undefined) {
        throw new SignetError("NOT_FOUND", `Entry ${at - 1} was pruned by retention`, {
          reason: "audit_pruned",
        });
      }
      prev = rows[0].hash as ContentHash;
    }
    const hasher = await this.#hasher(client, size, current, (dry) => dry.anchorAt(at, prev));
    return hasher.anchorAt(at, prev);
  }

  async #migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_LOCK]);
      await client.query(
        "CREATE TABLE IF NOT EXISTS audit_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const { rows } = await client.query<{ version: number | null }>(
        "SELECT max(version) AS version FROM audit_schema_migrations",
      );
      const current = rows[0]?.version ?? 0;
      const latest = MIGRATIONS.at(-1)!.version;
      if (current > latest) {
        throw new SignetError(
          "AUDIT_UNAVAILABLE",
          `The audit schema is at version ${current}, newer than this Signet knows (${latest}); upgrade Signet`,
          { reason: "audit_schema" },
        );
      }
      for (const migration of MIGRATIONS) {
        if (migration.version <= current) continue;
        await client.query(migration.sql);
        await client.query("INSERT INTO audit_schema_migrations (version) VALUES ($1)", [migration.version]);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Records the key's first record, or its rotation from `previousKey` (see SqliteAuditLog). */
  async #ensureKey(client: pg.PoolClient, previousKey: Ed25519PrivateKey | undefined): Promise<void> {
    const { rows } = await client.query<{ key_id: string }>(
      "SELECT key_id FROM audit_keys ORDER BY position DESC LIMIT 1",
    );
    const current = rows[0]?.key_id;
    if (current === this.#key.kid) return;
    const chain = AuditChain.restore(this.#head);
    const time = formatAuditTime(this.#nowMicros());
    const insert = (record: RuntimeKeyRecord) =>
      client.query("INSERT INTO audit_keys (key_id, tree_size, record) VALUES ($1, $2, $3)", [
        record.key_id,
        record.tree_size,
        canonicalize(record),
      ]);
    if (current === undefined) {
      await insert(signRuntimeKeyRecord({ key: this.#key, tree_size: chain.size, time }));
      return;
    }
    if (previousKey?.kid !== current) {
      throw unavailable(
        `The audit log is signed with key ${current}; pass it as previousKey to rotate to ${this.#key.kid}`,
        "audit_key",
      );
    }
    const last = await this.#lastCheckpoint(client);
    if (chain.size > (last?.tree_size ?? 0)) {
      const signed = this.#sign(chain, previousKey, last);
      await client.query("INSERT INTO audit_checkpoints (tree_size, checkpoint) VALUES ($1, $2)", [
        signed.tree_size,
        canonicalize(signed),
      ]);
    }
    await insert(
      signRuntimeKeyRecord({ key: this.#key, endorser: previousKey, tree_size: chain.size, time }),
    );
  }
}
