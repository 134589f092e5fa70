// The PostgreSQL adapter: every store in one PostgreSQL database, shared by any number of runtime instances.
//
// Each call borrows a connection from a pg.Pool. Statements are parameterized, always; a call that
// must read and write together runs in one READ COMMITTED transaction and relies on row locks taken
// by INSERT ... ON CONFLICT and SELECT ... FOR UPDATE, so instances sharing the database never need
// to know about each other.
import { SignetError } from "@signet/protocol";
import pg from "pg";
import type {
  SessionEventRecord,
  SessionMessageRecord,
  SessionQuery,
  SessionRecord,
  SessionStatus,
  SessionStore,
} from "../sessions/types.js";
import { admitExpiresAt, assertKeysBelongTo, outcomeJson } from "./input-checks.js";
import {
  type AgentKeyRow,
  type AgentRow,
  type ApiKeyRow,
  type ReplayMessageRow,
  type RoleAssignmentRow,
  toAgent,
  toAgentKey,
  toApiKey,
  toMessage,
  toRoleAssignment,
} from "./rows.js";
import { SESSION_EVENTS_LOCK_KEY, migratePostgres } from "./migrations/postgres.js";
import {
  type NewSessionEvent,
  appendRefusal,
  checkAppend,
  checkClose,
  checkCreate,
  checkLimit,
  checkNow,
  duplicateMessage,
  jsonText,
  sessionExists,
  unknownCursor,
} from "./session-checks.js";
import {
  SESSION_COLUMNS,
  SESSION_EVENT_COLUMNS,
  SESSION_MESSAGE_COLUMNS,
  type SessionEventRow,
  type SessionMessageRow,
  type SessionRow,
  sessionEventRow,
  sessionMessageRow,
  sessionRow,
  toSession,
  toSessionEvent,
  toSessionMessage,
} from "./session-rows.js";
import type {
  AdmitOutcome,
  AdmitRequest,
  AgentKeyPatch,
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  RoleAssignmentQuery,
  RoleAssignmentRecord,
  StoreContext,
  Stores,
} from "./types.js";

/** Where the database is, and how the pool of connections to it behaves. */
export interface PostgresStoreOptions {
  /**
   * A connection URL, `postgresql://user:password@host:5432/signet`. TLS is chosen here too
   * (`?sslmode=verify-full`), as the pg driver reads it.
   */
  readonly url: string;
  /** The most connections the pool holds open. Default 10. */
  readonly poolSize?: number;
  /** How long opening a connection may take before the call fails as UNAVAILABLE. Default 5000. */
  readonly connectionTimeoutMs?: number;
  /** How long an unused connection stays open. Default 30000. */
  readonly idleTimeoutMs?: number;
  /**
   * The server-side limit on one statement, lock waits included (`statement_timeout`). A statement
   * cut off by it fails as UNAVAILABLE. Default 5000.
   */
  readonly statementTimeoutMs?: number;
  /** How long migrating at open may take, another instance's migration waited for included. Default 60000. */
  readonly migrationTimeoutMs?: number;
  /** Shown in `pg_stat_activity`. Default `signet-runtime`. */
  readonly applicationName?: string;
  /**
   * Told about a connection that failed while idle in the pool (the server restarted, the network
   * dropped it). The pool discards it and opens another when one is needed; without a listener the
   * failure would crash the process.
   */
  readonly onIdleError?: (error: Error) => void;
}

const DEFAULTS = {
  poolSize: 10,
  connectionTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  statementTimeoutMs: 5_000,
  migrationTimeoutMs: 60_000,
} as const;

/**
 * A session idle inside a transaction holds its locks until this ends it. The adapter never waits on
 * anything but the database between two statements of a transaction, so this only ever ends a
 * session whose process died mid-transaction behind a half-open connection.
 */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000;
/** The client gives up on a statement this long after the server should have cancelled it. */
const CLIENT_TIMEOUT_MARGIN_MS = 5_000;
/** An admit retries its claim when the row it collided with vanished before it could lock it. */
const CLAIM_ATTEMPTS = 5;

// Named columns, never `*`: the `seq` columns are ordering, not data.
const AGENT_COLUMNS = "id, version, description, definition, serves, created_at, updated_at, deployed_by";
const AGENT_KEY_COLUMNS = "kid, agent_id, public_key, created_at, not_after, revoked_at, revoked_reason";
const API_KEY_COLUMNS =
  "id, name, principal, kind, permissions, hash, created_at, created_by, expires_at, revoked_at";
const ROLE_COLUMNS = "principal, role, assigned_at, assigned_by";
const MESSAGE_COLUMNS = "sender, id, hash, nonce, ts, state, outcome, created_at, expires_at";

/** An identical retry gets the stored record; the same id with other content is a conflict. */
function judgeExisting(row: ReplayMessageRow, hash: string): AdmitOutcome {
  return row.hash === hash ? { kind: "duplicate", record: toMessage(row) } : { kind: "conflict" };
}

/** bigint arrives as text; every one this adapter stores is a safe integer, and any other is refused. */
function parseSafeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`Stored integer ${text} is beyond a safe integer`);
  return value;
}

/**
 * The pool's own parsers, so the driver's global defaults (shared with any other pg user in the
 * process) are never changed. JSON stays text: each read parses a fresh copy only when it needs one.
 */
function typeParsers(): pg.TypeOverrides {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, parseSafeInteger);
  types.setTypeParser(pg.types.builtins.JSON, (text: string) => text);
  return types;
}

/** SQLSTATEs that mean "not now" rather than "not this": the same statement may succeed later. */
function isUnavailableState(code: string): boolean {
  return (
    code.startsWith("08") || // connection exception
    code.startsWith("53") || // insufficient resources: disk full, out of memory, too many connections
    code.startsWith("58") || // system error: I/O
    code === "57P01" || // admin shutdown
    code === "57P02" || // crash shutdown
    code === "57P03" || // cannot connect now: starting up or shutting down
    code === "57014" || // query cancelled: statement_timeout
    code === "25006" // read-only transaction: a standby, mid-failover
  );
}

/**
 * True when the driver got no answer from the server: the connection was refused, reset, timed out
 * or closed. The driver raises those as plain Errors (Node's system errors included), while the
 * server's refusals are DatabaseErrors and a value that would not parse is a RangeError or TypeError.
 */
function isTransportFailure(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof pg.DatabaseError) return false;
  return error.constructor === Error || error instanceof AggregateError;
}

function unavailable(message: string, cause?: unknown): SignetError {
  return new SignetError("UNAVAILABLE", message, { reason: "database" }, { cause });
}

/**
 * Turns a database that cannot answer into a retryable SignetError UNAVAILABLE; lets every other
 * error through unchanged, as the SQLite adapter does, since it is a bug rather than a client's fault.
 */
function toStoreError(error: unknown): unknown {
  if (error instanceof pg.DatabaseError && isUnavailableState(error.code ?? "")) {
    return unavailable("The database is unavailable", error);
  }
  return isTransportFailure(error) ? unavailable("The database is unavailable", error) : error;
}

function isViolation(error: unknown, code: "23505" | "23503"): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError && error.code === code;
}

function checkedSettings(options: PostgresStoreOptions) {
  if (typeof options.url !== "string" || options.url === "") {
    throw new TypeError("The PostgreSQL url must be a non-empty string");
  }
  const positive = (name: keyof typeof DEFAULTS): number => {
    const value = options[name] ?? DEFAULTS[name];
    if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer`);
    return value;
  };
  return {
    poolSize: positive("poolSize"),
    connectionTimeoutMs: positive("connectionTimeoutMs"),
    idleTimeoutMs: positive("idleTimeoutMs"),
    statementTimeoutMs: positive("statementTimeoutMs"),
    migrationTimeoutMs: positive("migrationTimeoutMs"),
  };
}

/**
 * Connects to the PostgreSQL database at `url`, migrates it to the current schema (once, however many
 * instances start together) and returns its stores. Rejects with `SchemaVersionError` when the
 * database was written by a newer Signet, and with SignetError UNAVAILABLE when it cannot be reached.
 *
 * Example: `const stores = await openPostgresStores({ url: databaseUrl, poolSize: 20 });`.
 */
export async function openPostgresStores(options: PostgresStoreOptions): Promise<Stores> {
  const settings = checkedSettings(options);
  const connection = {
    connectionString: options.url,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAlive: true,
    application_name: options.applicationName ?? "signet-runtime",
    types: typeParsers(),
  } satisfies pg.ClientConfig;

  // Migrating on a connection of its own, outside the pool, gives it its own, longer, timeouts.
  const migrator = new pg.Client({
    ...connection,
    statement_timeout: settings.migrationTimeoutMs,
    query_timeout: settings.migrationTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
  });
  // An error after connecting (the server going away mid-migration) also fails the pending query.
  migrator.on("error", () => undefined);
  try {
    await migrator.connect();
    await migratePostgres(migrator, undefined, { timeoutMs: settings.migrationTimeoutMs });
  } catch (error) {
    throw toStoreError(error);
  } finally {
    await migrator.end().catch(() => undefined);
  }

  const pool = new pg.Pool({
    ...connection,
    max: settings.poolSize,
    idleTimeoutMillis: settings.idleTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    // A connection that silently stopped answering (no reset ever arrives) fails the call, not hangs it.
    query_timeout: settings.statementTimeoutMs + CLIENT_TIMEOUT_MARGIN_MS,
  });
  // Required: an idle client's error is emitted on the pool, and an unheard 'error' ends the process.
  const onIdleError = options.onIdleError;
  pool.on("error", (error) => onIdleError?.(error));
  // A checked-out client whose connection dies (the server stopping mid-call) emits 'error' on itself,
  // not on the pool: unheard, it would end the process. Its pending query fails, and it is not reused.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return createStores(pool);
}

/** `$from, $from+1, …` for `count` parameters. */
function placeholders(count: number, from = 1): string {
  return Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ");
}

/** The connection helpers of one pool that the session store runs its statements with. */
interface SessionDatabase {
  exec<R extends pg.QueryResultRow>(
    this: void,
    client: pg.PoolClient,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  queryRows<R extends pg.QueryResultRow>(this: void, text: string, values?: unknown[]): Promise<R[]>;
  transaction<T>(
    this: void,
    work: (client: pg.PoolClient) => Promise<T>,
    keep?: (result: T) => boolean,
  ): Promise<T>;
}

/**
 * Sessions in PostgreSQL. Every change is one READ COMMITTED transaction. An append's UPDATE names the
 * state it expects (OPEN, `expectedCount` messages): of several instances appending to one session at
 * once, the first locks the row and the rest wait for it to commit, then find the count moved on and
 * match nothing, which is the conflict the caller retries.
 */
function createSessionStore({ exec, queryRows, transaction }: SessionDatabase): SessionStore {
  const sessionColumns = (alias: string): string =>
    SESSION_COLUMNS.split(", ")
      .map((column) => `${alias}.${column}`)
      .join(", ");

  /**
   * Stores events and returns them with their ids, in the order given.
   *
   * The watch stream reads "every event after the last id I saw", so an event must never become
   * visible after one with a higher id: a reader would already have moved past it. Identity values
   * are drawn at INSERT but become visible at COMMIT, and two transactions can commit in the other
   * order. So every event-writing transaction takes one transaction-scoped advisory lock right before
   * drawing its ids and keeps it until it commits or rolls back: the next writer draws its ids only
   * once the previous one is committed, and PostgreSQL marks a transaction committed (visible to new
   * snapshots) before it releases its locks. The identity's default CACHE 1 matters too: cached
   * values would let sessions draw ids out of order. The price is that event-writing commits queue
   * on the lock for their last statement and the commit itself; they already hold their session row,
   * and take the lock last, so the lock can never be part of a deadlock. A counter row updated in the
   * same transaction would serialize the same way, with a row version per event; readers holding
   * back to a snapshot horizon would avoid the queue but make every reader more complicated.
   */
  const insertEvents = async (
    client: pg.PoolClient,
    events: readonly NewSessionEvent[],
  ): Promise<SessionEventRecord[]> => {
    if (events.length === 0) return [];
    const rows = events.map(sessionEventRow);
    await exec(client, "SELECT pg_advisory_xact_lock($1::bigint)", [SESSION_EVENTS_LOCK_KEY]);
    // VALUES rows are inserted, and draw their ids, in the order listed.
    const inserted = await exec<{ id: number }>(
      client,
      `INSERT INTO session_events (session_id, type, at, data)
       VALUES ${rows.map((_, i) => `(${placeholders(4, 4 * i + 1)})`).join(", ")}
       RETURNING id`,
      rows.flatMap((row) => [row.session_id, row.type, row.at, row.data]),
    );
    const ids = inserted.rows.map((row) => row.id).sort((a, b) => a - b);
    return rows.map((row, i) => toSessionEvent({ id: ids[i]!, ...row }));
  };

  const listRows = (query: SessionQuery): Promise<SessionRow[]> => {
    const { status, mode, participant } = query;
    const where: string[] = [];
    const params: unknown[] = [];
    let from = "sessions s";
    if (participant !== undefined) {
      from = "session_participants p JOIN sessions s ON s.id = p.session_id";
      params.push(participant);
      where.push(`p.agent_id = $${params.length}`);
    }
    if (status !== undefined) {
      params.push(status);
      where.push(`s.status = $${params.length}`);
    }
    if (mode !== undefined) {
      params.push(mode);
      where.push(`s.mode = $${params.length}`);
    }
    if (query.after !== undefined) {
      params.push(query.after);
      where.push(
        `(s.created_at, s.seq) > (SELECT created_at, seq FROM sessions WHERE id = $${params.length})`,
      );
    }
    // LIMIT NULL is no limit.
    params.push(query.limit ?? null);
    return queryRows<SessionRow>(
      `SELECT ${sessionColumns("s")} FROM ${from}` +
        (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
        ` ORDER BY s.created_at, s.seq LIMIT $${params.length}`,
      params,
    );
  };

  return {
    create: async (session: SessionRecord, event: NewSessionEvent) => {
      checkCreate(session, event);
      const row = sessionRow(session);
      return transaction(async (client) => {
        // Waits for another transaction inserting the same id, then finds it taken (or free again).
        const inserted = await exec(
          client,
          `INSERT INTO sessions (${SESSION_COLUMNS}) VALUES (${placeholders(16)}) ON CONFLICT (id) DO NOTHING`,
          [
            row.id,
            row.mode,
            row.initiator,
            row.participants,
            row.status,
            row.created_at,
            row.expires_at,
            row.closed_at,
            row.policy_ref,
            row.config,
            row.mode_state,
            row.message_count,
            row.history_hash,
            row.outcome,
            row.cancelled_by,
            row.start_hash,
          ],
        );
        if (inserted.rowCount !== 1) throw sessionExists(session.id);
        // A participant named twice is one row.
        await exec(
          client,
          `INSERT INTO session_participants (agent_id, session_id)
           SELECT unnest($1::text[]), $2::text ON CONFLICT DO NOTHING`,
          [session.participants, session.id],
        );
        const [created] = await insertEvents(client, [event]);
        return created!;
      });
    },
    get: async (id: string) => {
      const [row] = await queryRows<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = $1`, [
        id,
      ]);
      return row && toSession(row);
    },
    list: async (query: SessionQuery = {}) => {
      checkLimit(query.limit);
      if (query.after !== undefined) {
        const found = await queryRows("SELECT 1 FROM sessions WHERE id = $1", [query.after]);
        if (found.length === 0) throw unknownCursor();
      }
      return (await listRows(query)).map(toSession);
    },
    append: async (
      message: SessionMessageRecord,
      next: SessionRecord,
      expectedCount: number,
      events: readonly NewSessionEvent[],
    ) => {
      checkAppend(message, next, expectedCount, events);
      const messageRow = sessionMessageRow(message);
      return transaction(async (client) => {
        // Only what a message can change, and only while the session is OPEN at the expected count.
        const updated = await exec(
          client,
          `UPDATE sessions SET
             status = $3, expires_at = $4, closed_at = $5, mode_state = $6, message_count = $7,
             history_hash = $8, outcome = $9, cancelled_by = $10
           WHERE id = $1 AND status = 'OPEN' AND message_count = $2`,
          [
            next.id,
            expectedCount,
            next.status,
            next.expiresAt,
            next.closedAt ?? null,
            jsonText(next.modeState, "mode state"),
            next.messageCount,
            next.historyHash,
            next.outcome === undefined ? null : jsonText(next.outcome, "outcome"),
            next.cancelledBy ?? null,
          ],
        );
        if (updated.rowCount !== 1) {
          const { rows } = await exec<{ status: SessionStatus; message_count: number }>(
            client,
            "SELECT status, message_count FROM sessions WHERE id = $1",
            [next.id],
          );
          const state = rows[0];
          throw appendRefusal(
            next.id,
            state && { status: state.status, messageCount: state.message_count },
            expectedCount,
          );
        }
        try {
          await exec(
            client,
            `INSERT INTO session_messages (${SESSION_MESSAGE_COLUMNS}) VALUES (${placeholders(8)})`,
            [
              messageRow.session_id,
              messageRow.seq,
              messageRow.message_id,
              messageRow.sender,
              messageRow.kind,
              messageRow.envelope_hash,
              messageRow.body,
              messageRow.accepted_at,
            ],
          );
        } catch (error) {
          // The (session_id, seq) key cannot collide here: the row lock above serializes appends.
          if (isViolation(error, "23505") && error.constraint === "session_messages_message_id_key") {
            throw duplicateMessage(next.id, message.messageId, error);
          }
          throw error;
        }
        return insertEvents(client, events);
      });
    },
    close: async (next: SessionRecord, event: NewSessionEvent) => {
      checkClose(next, event);
      return transaction(
        async (client) => {
          // Never the message history: the closing record may predate the last append.
          const closed = await exec(
            client,
            `UPDATE sessions SET status = $2, closed_at = $3, outcome = $4, cancelled_by = $5
             WHERE id = $1 AND status = 'OPEN'`,
            [
              next.id,
              next.status,
              next.closedAt ?? null,
              next.outcome === undefined ? null : jsonText(next.outcome, "outcome"),
              next.cancelledBy ?? null,
            ],
          );
          if (closed.rowCount !== 1) return undefined;
          const [stored] = await insertEvents(client, [event]);
          return stored;
        },
        (stored) => stored !== undefined,
      );
    },
    messages: async (sessionId: string) =>
      (
        await queryRows<SessionMessageRow>(
          `SELECT ${SESSION_MESSAGE_COLUMNS} FROM session_messages WHERE session_id = $1 ORDER BY seq`,
          [sessionId],
        )
      ).map(toSessionMessage),
    prune: async (closedBefore: number, limit: number) => {
      checkNow(closedBefore);
      checkLimit(limit);
      return transaction(async (client) => {
        // Locks the rows it will delete; a session closed by then never reopens.
        const { rows } = await exec<{ id: string; participants: string }>(
          client,
          `SELECT id, participants FROM sessions WHERE status <> 'OPEN' AND closed_at < $1
           ORDER BY closed_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [closedBefore, limit],
        );
        if (rows.length === 0) return 0;
        const ids = rows.map((row) => row.id);
        // JSON columns come back as their text (the pool's type parser).
        const pairs = rows.flatMap((row) =>
          (JSON.parse(row.participants) as string[]).map((agent) => [agent, row.id] as const),
        );
        await exec(client, "DELETE FROM session_events WHERE session_id = ANY($1::text[])", [ids]);
        await exec(client, "DELETE FROM session_messages WHERE session_id = ANY($1::text[])", [ids]);
        await exec(
          client,
          `DELETE FROM session_participants
           WHERE (agent_id, session_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
          [pairs.map(([agent]) => agent), pairs.map(([, id]) => id)],
        );
        await exec(client, "DELETE FROM sessions WHERE id = ANY($1::text[])", [ids]);
        return rows.length;
      });
    },
    expired: async (now: number, limit: number) => {
      checkNow(now);
      checkLimit(limit);
      // The literal 'OPEN' lets the query use the partial expiry index.
      return (
        await queryRows<SessionRow>(
          `SELECT ${SESSION_COLUMNS} FROM sessions WHERE status = 'OPEN' AND expires_at <= $1
           ORDER BY expires_at, seq LIMIT $2`,
          [now, limit],
        )
      ).map(toSession);
    },
    lastEventId: async () => {
      const [row] = await queryRows<{ id: string | null }>("SELECT max(id)::text AS id FROM session_events");
      return row?.id == null ? 0 : Number(row.id);
    },
    events: async (afterId: number, limit: number) => {
      checkLimit(limit, afterId);
      return (
        await queryRows<SessionEventRow>(
          `SELECT ${SESSION_EVENT_COLUMNS} FROM session_events WHERE id > $1 ORDER BY id LIMIT $2`,
          [afterId, limit],
        )
      ).map(toSessionEvent);
    },
  };
}

function createStores(pool: pg.Pool): Stores {
  let closed = false;
  let ending: Promise<void> | undefined;
  // Clients whose connection failed mid-call: destroyed on release, never handed out again.
  const broken = new WeakSet<pg.PoolClient>();

  const connect = async (): Promise<pg.PoolClient> => {
    if (closed) throw unavailable("The store is closed");
    try {
      return await pool.connect();
    } catch (error) {
      throw toStoreError(error);
    }
  };

  const exec = async <R extends pg.QueryResultRow>(
    client: pg.PoolClient,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> => {
    try {
      return await client.query<R>(text, values);
    } catch (error) {
      if (isTransportFailure(error)) broken.add(client);
      throw toStoreError(error);
    }
  };

  const release = (client: pg.PoolClient): void => client.release(broken.has(client));

  /** One statement on a borrowed connection. */
  const queryRows = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> => {
    const client = await connect();
    try {
      return (await exec<R>(client, text, values)).rows;
    } finally {
      release(client);
    }
  };

  /** Changes rows with one statement and answers how many it changed. */
  const change = async (text: string, values: unknown[]): Promise<number> => {
    const client = await connect();
    try {
      return (await exec(client, text, values)).rowCount ?? 0;
    } finally {
      release(client);
    }
  };

  /**
   * Runs `work` in one transaction, committed when `keep` approves the result and rolled back
   * otherwise, or when anything throws. READ COMMITTED is named rather than inherited: the admit
   * below relies on each statement seeing what committed before it, whatever the server's default.
   */
  const transaction = async <T>(
    work: (client: pg.PoolClient) => Promise<T>,
    keep: (result: T) => boolean = () => true,
  ): Promise<T> => {
    const client = await connect();
    try {
      await exec(client, "BEGIN ISOLATION LEVEL READ COMMITTED");
      let result: T;
      try {
        result = await work(client);
      } catch (error) {
        await exec(client, "ROLLBACK").catch(() => {
          broken.add(client);
        });
        throw error;
      }
      await exec(client, keep(result) ? "COMMIT" : "ROLLBACK");
      return result;
    } finally {
      release(client);
    }
  };

  const insertKey = async (client: pg.PoolClient, key: AgentKeyRecord): Promise<void> => {
    try {
      await exec(
        client,
        `INSERT INTO agent_keys (kid, agent_id, public_key, created_at, not_after, revoked_at, revoked_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          key.kid,
          key.agentId,
          key.publicKey,
          key.createdAt,
          key.notAfter ?? null,
          key.revokedAt ?? null,
          key.revokedReason ?? null,
        ],
      );
    } catch (error) {
      if (isViolation(error, "23505")) {
        throw new SignetError(
          "INVALID_REQUEST",
          `Key ${key.kid} is already registered`,
          {},
          { cause: error },
        );
      }
      if (isViolation(error, "23503")) {
        throw new SignetError(
          "INVALID_REQUEST",
          `No agent ${key.agentId} to add key ${key.kid} to`,
          {},
          { cause: error },
        );
      }
      throw error;
    }
  };

  const selectLiveMessage = async (sender: string, id: string, now: number) =>
    (
      await queryRows<ReplayMessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM replay_messages WHERE sender = $1 AND id = $2 AND expires_at >= $3`,
        [sender, id, now],
      )
    )[0];

  /**
   * Takes (sender, id) for this transaction: inserts the pending row, or, when one exists, locks it
   * and returns it. The insert waits for any other transaction inserting the same key, so of many
   * instances admitting one message at once, exactly one inserts and the rest find its row.
   */
  const claimMessage = async (
    client: pg.PoolClient,
    request: AdmitRequest,
    expiresAt: number,
  ): Promise<ReplayMessageRow | undefined> => {
    const { sender, id, hash, nonce, ts, now } = request;
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt += 1) {
      const inserted = await exec(
        client,
        `INSERT INTO replay_messages (sender, id, hash, nonce, ts, state, outcome, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', NULL, $6, $7)
         ON CONFLICT (sender, id) DO NOTHING`,
        [sender, id, hash, nonce, ts, now, expiresAt],
      );
      if (inserted.rowCount === 1) return undefined;
      const existing = await exec<ReplayMessageRow>(
        client,
        `SELECT ${MESSAGE_COLUMNS} FROM replay_messages WHERE sender = $1 AND id = $2 FOR UPDATE`,
        [sender, id],
      );
      const row = existing.rows[0];
      if (row !== undefined) return row;
      // Released or pruned between the two statements: the key is free again, so claim it anew.
    }
    throw unavailable("The replay store is too contended to admit this message");
  };

  /**
   * DESIGN's order: identical retry, same id with other content, stale, nonce reused, else admit.
   * Writes happen only on the admitted path; every refusal rolls back, leaving no trace.
   */
  const admit = async (request: AdmitRequest): Promise<AdmitOutcome> => {
    const expiresAt = admitExpiresAt(request);
    const { sender, id, hash, nonce, ts, now, windowMs } = request;
    if (Math.abs(now - ts) > windowMs) {
      // Only a live record can answer a stale message otherwise, and answering it writes nothing.
      const row = await selectLiveMessage(sender, id, now);
      return row === undefined ? { kind: "stale" } : judgeExisting(row, hash);
    }
    return transaction(
      async (client): Promise<AdmitOutcome> => {
        const existing = await claimMessage(client, request, expiresAt);
        if (existing !== undefined && existing.expires_at >= now) return judgeExisting(existing, hash);
        // Binds the nonce unless it is live and bound to another id; the upsert waits for any other
        // transaction binding it, so two ids racing for one nonce cannot both win.
        const bound = await exec(
          client,
          `INSERT INTO replay_nonces AS bound (sender, nonce, message_id, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (sender, nonce) DO UPDATE SET
             message_id = excluded.message_id,
             expires_at = CASE WHEN bound.message_id = excluded.message_id
               THEN greatest(bound.expires_at, excluded.expires_at) ELSE excluded.expires_at END
           WHERE bound.message_id = excluded.message_id OR bound.expires_at < $5::bigint`,
          [sender, nonce, id, expiresAt, now],
        );
        if (bound.rowCount !== 1) return { kind: "replay" };
        if (existing !== undefined) {
          // An expired record, locked above: replaced, as if pruned first.
          await exec(
            client,
            `UPDATE replay_messages SET hash = $3, nonce = $4, ts = $5, state = 'pending', outcome = NULL,
               created_at = $6, expires_at = $7
             WHERE sender = $1 AND id = $2`,
            [sender, id, hash, nonce, ts, now, expiresAt],
          );
        }
        return { kind: "admitted" };
      },
      (outcome) => outcome.kind === "admitted",
    );
  };

  const listRoleAssignmentRows = (query: RoleAssignmentQuery): Promise<RoleAssignmentRow[]> => {
    const { principal, role } = query;
    // One fixed statement per filter, each able to use the primary key or role_assignments_by_role.
    if (principal !== undefined && role !== undefined) {
      return queryRows(`SELECT ${ROLE_COLUMNS} FROM role_assignments WHERE principal = $1 AND role = $2`, [
        principal,
        role,
      ]);
    }
    if (principal !== undefined) {
      return queryRows(`SELECT ${ROLE_COLUMNS} FROM role_assignments WHERE principal = $1 ORDER BY role`, [
        principal,
      ]);
    }
    if (role !== undefined) {
      return queryRows(`SELECT ${ROLE_COLUMNS} FROM role_assignments WHERE role = $1 ORDER BY principal`, [
        role,
      ]);
    }
    return queryRows(`SELECT ${ROLE_COLUMNS} FROM role_assignments ORDER BY principal, role`);
  };

  return {
    agents: {
      putAgent: async (agent: AgentRecord, keys: readonly AgentKeyRecord[], _ctx: StoreContext) => {
        assertKeysBelongTo(agent, keys);
        // A refused key rolls back the agent row too: putAgent stores all or nothing.
        await transaction(async (client) => {
          await exec(
            client,
            `INSERT INTO agents (${AGENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
               version = excluded.version,
               description = excluded.description,
               definition = excluded.definition,
               serves = excluded.serves,
               created_at = excluded.created_at,
               updated_at = excluded.updated_at,
               deployed_by = excluded.deployed_by`,
            [
              agent.id,
              agent.version ?? null,
              agent.description,
              JSON.stringify(agent.definition),
              JSON.stringify(agent.serves),
              agent.createdAt,
              agent.updatedAt,
              agent.deployedBy,
            ],
          );
          for (const key of keys) await insertKey(client, key);
        });
      },
      getAgent: async (id: string) => {
        const [row] = await queryRows<AgentRow>(`SELECT ${AGENT_COLUMNS} FROM agents WHERE id = $1`, [id]);
        return row && toAgent(row);
      },
      listAgents: async () =>
        (await queryRows<AgentRow>(`SELECT ${AGENT_COLUMNS} FROM agents ORDER BY id`)).map(toAgent),
      addKey: async (key: AgentKeyRecord, _ctx: StoreContext) => {
        const client = await connect();
        try {
          await insertKey(client, key);
        } finally {
          release(client);
        }
      },
      // A patch field left out (NULL) keeps the stored value.
      updateKey: async (kid: string, patch: AgentKeyPatch, _ctx: StoreContext) => {
        const [row] = await queryRows<AgentKeyRow>(
          `UPDATE agent_keys SET
             not_after = coalesce($1::bigint, not_after),
             revoked_at = coalesce($2::bigint, revoked_at),
             revoked_reason = coalesce($3::text, revoked_reason)
           WHERE kid = $4
           RETURNING ${AGENT_KEY_COLUMNS}`,
          [patch.notAfter ?? null, patch.revokedAt ?? null, patch.revokedReason ?? null, kid],
        );
        return row && toAgentKey(row);
      },
      getKey: async (kid: string) => {
        const [row] = await queryRows<AgentKeyRow>(
          `SELECT ${AGENT_KEY_COLUMNS} FROM agent_keys WHERE kid = $1`,
          [kid],
        );
        return row && toAgentKey(row);
      },
      listKeys: async (agentId?: string) =>
        (agentId === undefined
          ? await queryRows<AgentKeyRow>(
              `SELECT ${AGENT_KEY_COLUMNS} FROM agent_keys ORDER BY created_at, seq`,
            )
          : await queryRows<AgentKeyRow>(
              `SELECT ${AGENT_KEY_COLUMNS} FROM agent_keys WHERE agent_id = $1 ORDER BY created_at, seq`,
              [agentId],
            )
        ).map(toAgentKey),
    },

    apiKeys: {
      putApiKey: async (key: ApiKeyRecord, _ctx: StoreContext) => {
        try {
          await change(
            `INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [
              key.id,
              key.name,
              key.principal,
              key.kind,
              JSON.stringify(key.permissions),
              key.hash,
              key.createdAt,
              key.createdBy,
              key.expiresAt ?? null,
              key.revokedAt ?? null,
            ],
          );
        } catch (error) {
          if (isViolation(error, "23505")) {
            throw new SignetError(
              "INVALID_REQUEST",
              `API key ${key.id} already exists`,
              {},
              { cause: error },
            );
          }
          throw error;
        }
      },
      getApiKey: async (id: string) => {
        const [row] = await queryRows<ApiKeyRow>(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = $1`, [
          id,
        ]);
        return row && toApiKey(row);
      },
      listApiKeys: async () =>
        (await queryRows<ApiKeyRow>(`SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, seq`)).map(
          toApiKey,
        ),
      // The first revocation time stands: a later call must not make the key look valid for longer.
      revokeApiKey: async (id: string, at: number, _ctx: StoreContext) => {
        const [row] = await queryRows<ApiKeyRow>(
          `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1::bigint) WHERE id = $2
           RETURNING ${API_KEY_COLUMNS}`,
          [at, id],
        );
        return row && toApiKey(row);
      },
    },

    replay: {
      admit,
      // The first outcome stands: a retry already answered with it must never see another. Unknown or
      // already done: nothing to store, and nothing the caller could do about it.
      complete: async (sender: string, id: string, outcome: unknown) => {
        const json = outcomeJson(outcome);
        await change(
          `UPDATE replay_messages SET state = 'done', outcome = $1
           WHERE sender = $2 AND id = $3 AND state = 'pending'`,
          [json, sender, id],
        );
      },
      // A done message has run; forgetting it would let the identical envelope run again.
      release: async (sender: string, id: string) => {
        await change("DELETE FROM replay_messages WHERE sender = $1 AND id = $2 AND state = 'pending'", [
          sender,
          id,
        ]);
      },
      getMessage: async (sender: string, id: string) => {
        const [row] = await queryRows<ReplayMessageRow>(
          `SELECT ${MESSAGE_COLUMNS} FROM replay_messages WHERE sender = $1 AND id = $2`,
          [sender, id],
        );
        return row && toMessage(row);
      },
      // A row an admit is replacing is locked; the delete waits, then sees it live and leaves it.
      prune: (now: number) =>
        transaction(async (client) => {
          const messages = await exec(client, "DELETE FROM replay_messages WHERE expires_at < $1", [now]);
          const nonces = await exec(client, "DELETE FROM replay_nonces WHERE expires_at < $1", [now]);
          return (messages.rowCount ?? 0) + (nonces.rowCount ?? 0);
        }),
    },

    roles: {
      // The first assignment stands: assigning again changes neither its time nor its author.
      assignRole: async (assignment: RoleAssignmentRecord, _ctx: StoreContext) =>
        (await change(
          `INSERT INTO role_assignments (${ROLE_COLUMNS}) VALUES ($1, $2, $3, $4)
           ON CONFLICT (principal, role) DO NOTHING`,
          [assignment.principal, assignment.role, assignment.assignedAt, assignment.assignedBy],
        )) === 1,
      unassignRole: async (principal: string, role: string, _ctx: StoreContext) =>
        (await change("DELETE FROM role_assignments WHERE principal = $1 AND role = $2", [
          principal,
          role,
        ])) === 1,
      listRoleAssignments: async (query: RoleAssignmentQuery = {}) =>
        (await listRoleAssignmentRows(query)).map(toRoleAssignment),
    },

    sessions: createSessionStore({ exec, queryRows, transaction }),

    ping: async () => {
      if (closed) return false;
      try {
        const [row] = await queryRows<{ one: number }>("SELECT 1 AS one");
        return row?.one === 1;
      } catch {
        return false;
      }
    },
    // Closing twice is harmless; calls in flight finish before the pool's connections end.
    close: () => {
      closed = true;
      ending ??= pool.end();
      return ending;
    },
  };
}
