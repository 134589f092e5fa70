// The SQLite adapter: every store in one embedded database file, over better-sqlite3.
//
// better-sqlite3 is synchronous; each method does its work in one call and hands back a settled
// promise, which keeps the interface the same as the networked adapters'.
import { closeSync, openSync } from "node:fs";
import { SignetError } from "@signet/protocol";
import Database from "better-sqlite3";
import { WriteBatch } from "./sqlite-write-batch.js";
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
import { migrateSqlite } from "./migrations/sqlite.js";
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

/** How the SQLite adapter trades durability for speed. */
export interface SqliteStoreOptions {
  /**
   * `NORMAL` (default): with WAL, a commit survives the process crashing or being killed, but the
   * last commits before a power loss or OS crash may be rolled back (never corrupted). `FULL` syncs
   * the WAL on every commit, so commits survive power loss too, at a cost in write throughput.
   */
  readonly synchronous?: "NORMAL" | "FULL";
  /** How long a write waits for another connection's lock before failing with SQLITE_BUSY. Default 5000. */
  readonly busyTimeoutMs?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/** True when `error` is SQLite refusing a row for one of the given constraint kinds. */
function violates(error: unknown, ...codes: string[]): boolean {
  return error instanceof Database.SqliteError && codes.includes(error.code);
}

/** Runs `work` now and turns a throw into a rejection, so callers see one failure path. */
function run<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => resolve(work()));
}

/**
 * Creates the database file readable by its owner only when it does not exist yet: it holds the
 * agent registry and API key hashes. SQLite gives its -wal and -shm files the same mode. An existing
 * file keeps the mode its owner chose.
 */
export function createPrivateFile(path: string): void {
  if (path === "" || path === ":memory:") return;
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

function configure(db: Database.Database, options: SqliteStoreOptions): void {
  const synchronous = options.synchronous ?? "NORMAL";
  if (synchronous !== "NORMAL" && synchronous !== "FULL") {
    throw new TypeError(`synchronous must be "NORMAL" or "FULL", not ${String(synchronous)}`);
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError("busyTimeoutMs must be a non-negative integer");
  }

  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!db.memory) {
    // WAL lets readers run alongside the writer and makes NORMAL sync safe against process crashes.
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") {
      // Some network filesystems cannot do WAL; the durability promised above would not hold.
      throw new Error(`SQLite could not switch ${db.name} to WAL mode (got ${String(mode)})`);
    }
  }
  db.pragma(`synchronous = ${synchronous}`);
  // Off by default in SQLite, per connection: without it, agent_keys.agent_id would go unchecked.
  db.pragma("foreign_keys = ON");
}

/**
 * Opens (creating if needed) the SQLite database at `path`, migrates it to the current schema and
 * returns its stores. `":memory:"` gives a private in-memory database, for tests. Throws
 * `SchemaVersionError` when the file was written by a newer Signet.
 *
 * Example: `const stores = openSqliteStores(join(dataDir, "signet.db"), { synchronous: "FULL" });`.
 */
export function openSqliteStores(path: string, options: SqliteStoreOptions = {}): Stores {
  createPrivateFile(path);
  const db = new Database(path);
  try {
    configure(db, options);
    migrateSqlite(db);
    return createStores(db);
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Sessions in SQLite. Every change runs through the write batch: inside an IMMEDIATE transaction (the
 * write lock is taken before its first read, so instances sharing the file queue, and an append's
 * check and its writes see the same state), on a savepoint of its own. Event ids come from
 * AUTOINCREMENT inside that transaction, so they commit in id order.
 */
function createSessionStore(db: Database.Database, batch: WriteBatch): SessionStore {
  const insertSession = db.prepare<SessionRow>(`
    INSERT INTO sessions (${SESSION_COLUMNS})
    VALUES (${SESSION_COLUMNS.split(", ")
      .map((column) => `@${column}`)
      .join(", ")})
    ON CONFLICT (id) DO NOTHING
  `);
  // A participant named twice is one row.
  const insertParticipant = db.prepare<[string, string]>(
    "INSERT INTO session_participants (agent_id, session_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
  );
  const insertEvent = db
    .prepare<Omit<SessionEventRow, "id">, number>(
      "INSERT INTO session_events (session_id, type, at, data) VALUES (@session_id, @type, @at, @data) RETURNING id",
    )
    .pluck();
  const insertMessage = db.prepare<SessionMessageRow>(`
    INSERT INTO session_messages (session_id, seq, message_id, sender, kind, envelope_hash, body, accepted_at)
    VALUES (@session_id, @seq, @message_id, @sender, @kind, @envelope_hash, @body, @accepted_at)
  `);
  // Only what a message can change, and only while the session is OPEN at the expected count.
  const updateAppended = db.prepare<
    [
      SessionStatus,
      number,
      number | null,
      string,
      number,
      string,
      string | null,
      string | null,
      string,
      number,
    ]
  >(`
    UPDATE sessions SET
      status = ?, expires_at = ?, closed_at = ?, mode_state = ?, message_count = ?, history_hash = ?,
      outcome = ?, cancelled_by = ?
    WHERE id = ? AND status = 'OPEN' AND message_count = ?
  `);
  // Never the message history: the closing record may predate the last append.
  const updateClosed = db.prepare<[SessionStatus, number | null, string | null, string | null, string]>(`
    UPDATE sessions SET status = ?, closed_at = ?, outcome = ?, cancelled_by = ?
    WHERE id = ? AND status = 'OPEN'
  `);
  const selectState = db.prepare<[string], { status: SessionStatus; message_count: number }>(
    "SELECT status, message_count FROM sessions WHERE id = ?",
  );
  const selectSession = db.prepare<[string], SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = ?`,
  );
  const selectMessages = db.prepare<[string], SessionMessageRow>(
    "SELECT * FROM session_messages WHERE session_id = ? ORDER BY seq",
  );
  // A LIMIT of -1 is no limit. The literal 'OPEN' lets the query use the partial expiry index.
  const selectPrunable = db.prepare<[number, number], { id: string; participants: string }>(`
    SELECT id, participants FROM sessions WHERE status <> 'OPEN' AND closed_at < ?
    ORDER BY closed_at LIMIT ?
  `);
  const deleteSessionEvents = db.prepare<[string]>("DELETE FROM session_events WHERE session_id = ?");
  const deleteSessionMessages = db.prepare<[string]>("DELETE FROM session_messages WHERE session_id = ?");
  const deleteParticipant = db.prepare<[string, string]>(
    "DELETE FROM session_participants WHERE agent_id = ? AND session_id = ?",
  );
  const deleteSession = db.prepare<[string]>("DELETE FROM sessions WHERE id = ?");
  const prune = (closedBefore: number, limit: number): number => {
    const due = selectPrunable.all(closedBefore, limit);
    for (const { id, participants } of due) {
      deleteSessionEvents.run(id);
      deleteSessionMessages.run(id);
      for (const agent of JSON.parse(participants) as string[]) deleteParticipant.run(agent, id);
      deleteSession.run(id);
    }
    return due.length;
  };
  const selectExpired = db.prepare<[number, number], SessionRow>(`
    SELECT ${SESSION_COLUMNS} FROM sessions WHERE status = 'OPEN' AND expires_at <= ?
    ORDER BY expires_at, rowid LIMIT ?
  `);
  const selectLastEventId = db.prepare<[], { id: number }>("SELECT max(id) AS id FROM session_events");
  const selectEvents = db.prepare<[number, number], SessionEventRow>(
    "SELECT * FROM session_events WHERE id > ? ORDER BY id LIMIT ?",
  );

  // One statement per combination of filters, prepared on first use: each can use its index.
  const listStatements = new Map<string, Database.Statement<unknown[], SessionRow>>();
  const listRows = (query: SessionQuery): SessionRow[] => {
    const { status, mode, participant } = query;
    const where: string[] = [];
    const params: unknown[] = [];
    let from = "sessions";
    if (participant !== undefined) {
      from = "session_participants AS p JOIN sessions ON sessions.id = p.session_id";
      where.push("p.agent_id = ?");
      params.push(participant);
    }
    if (status !== undefined) {
      where.push("sessions.status = ?");
      params.push(status);
    }
    if (mode !== undefined) {
      where.push("sessions.mode = ?");
      params.push(mode);
    }
    if (query.after !== undefined) {
      where.push(
        "(sessions.created_at, sessions.rowid) > (SELECT created_at, rowid FROM sessions WHERE id = ?)",
      );
      params.push(query.after);
    }
    const columns = SESSION_COLUMNS.split(", ")
      .map((column) => `sessions.${column}`)
      .join(", ");
    const sql =
      `SELECT ${columns} FROM ${from}` +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      " ORDER BY sessions.created_at, sessions.rowid LIMIT ?";
    let statement = listStatements.get(sql);
    if (statement === undefined) {
      statement = db.prepare<unknown[], SessionRow>(sql);
      listStatements.set(sql, statement);
    }
    return statement.all(...params, query.limit ?? -1);
  };

  const storeEvent = (event: NewSessionEvent): SessionEventRecord => {
    const row = sessionEventRow(event);
    return toSessionEvent({ id: insertEvent.get(row)!, ...row });
  };

  const create = (session: SessionRecord, event: NewSessionEvent): SessionEventRecord => {
    if (insertSession.run(sessionRow(session)).changes === 0) throw sessionExists(session.id);
    for (const participant of session.participants) insertParticipant.run(participant, session.id);
    return storeEvent(event);
  };

  const append = (
    message: SessionMessageRecord,
    next: SessionRecord,
    expectedCount: number,
    events: readonly NewSessionEvent[],
  ): SessionEventRecord[] => {
    const updated = updateAppended.run(
      next.status,
      next.expiresAt,
      next.closedAt ?? null,
      jsonText(next.modeState, "mode state"),
      next.messageCount,
      next.historyHash,
      next.outcome === undefined ? null : jsonText(next.outcome, "outcome"),
      next.cancelledBy ?? null,
      next.id,
      expectedCount,
    );
    if (updated.changes === 0) {
      const state = selectState.get(next.id);
      throw appendRefusal(
        next.id,
        state && { status: state.status, messageCount: state.message_count },
        expectedCount,
      );
    }
    try {
      insertMessage.run(sessionMessageRow(message));
    } catch (error) {
      // The (session_id, seq) key cannot collide here: the update above matched the expected count.
      if (violates(error, "SQLITE_CONSTRAINT_UNIQUE")) {
        throw duplicateMessage(next.id, message.messageId, error);
      }
      throw error;
    }
    return events.map(storeEvent);
  };

  const close = (next: SessionRecord, event: NewSessionEvent): SessionEventRecord | undefined => {
    const closed = updateClosed.run(
      next.status,
      next.closedAt ?? null,
      next.outcome === undefined ? null : jsonText(next.outcome, "outcome"),
      next.cancelledBy ?? null,
      next.id,
    );
    return closed.changes === 0 ? undefined : storeEvent(event);
  };

  return {
    create: (session: SessionRecord, event: NewSessionEvent) =>
      run(() => checkCreate(session, event)).then(() => batch.write(() => create(session, event))),
    get: (id: string) =>
      run(() => {
        const row = selectSession.get(id);
        return row && toSession(row);
      }),
    list: (query: SessionQuery = {}) =>
      run(() => {
        checkLimit(query.limit);
        if (query.after !== undefined && selectSession.get(query.after) === undefined) throw unknownCursor();
        return listRows(query).map(toSession);
      }),
    append: (
      message: SessionMessageRecord,
      next: SessionRecord,
      expectedCount: number,
      events: readonly NewSessionEvent[],
    ) =>
      run(() => checkAppend(message, next, expectedCount, events)).then(() =>
        batch.write(() => append(message, next, expectedCount, events)),
      ),
    close: (next: SessionRecord, event: NewSessionEvent) =>
      run(() => checkClose(next, event)).then(() => batch.write(() => close(next, event))),
    messages: (sessionId: string) => run(() => selectMessages.all(sessionId).map(toSessionMessage)),
    prune: (closedBefore: number, limit: number) =>
      run(() => {
        checkNow(closedBefore);
        checkLimit(limit);
      }).then(() => batch.write(() => prune(closedBefore, limit))),
    expired: (now: number, limit: number) =>
      run(() => {
        checkNow(now);
        checkLimit(limit);
        return selectExpired.all(now, limit).map(toSession);
      }),
    events: (afterId: number, limit: number) =>
      run(() => {
        checkLimit(limit, afterId);
        return selectEvents.all(afterId, limit).map(toSessionEvent);
      }),
    lastEventId: () => run(() => selectLastEventId.get()?.id ?? 0),
  };
}

function createStores(db: Database.Database): Stores {
  // Hot writes from one turn of the event loop share a transaction (sqlite-write-batch.ts).
  const batch = new WriteBatch(db);
  // Prepared once per connection; each call only binds and steps.
  const upsertAgent = db.prepare<AgentRow>(`
    INSERT INTO agents (id, version, description, definition, serves, created_at, updated_at, deployed_by)
    VALUES (@id, @version, @description, @definition, @serves, @created_at, @updated_at, @deployed_by)
    ON CONFLICT (id) DO UPDATE SET
      version = excluded.version,
      description = excluded.description,
      definition = excluded.definition,
      serves = excluded.serves,
      created_at = excluded.created_at,
      updated_at = excluded.updated_at,
      deployed_by = excluded.deployed_by
  `);
  const selectAgent = db.prepare<[string], AgentRow>("SELECT * FROM agents WHERE id = ?");
  const selectAgents = db.prepare<[], AgentRow>("SELECT * FROM agents ORDER BY id");
  const insertKey = db.prepare<AgentKeyRow>(`
    INSERT INTO agent_keys (kid, agent_id, public_key, created_at, not_after, revoked_at, revoked_reason)
    VALUES (@kid, @agent_id, @public_key, @created_at, @not_after, @revoked_at, @revoked_reason)
  `);
  // A patch field left out (NULL) keeps the stored value.
  const patchKey = db.prepare<[number | null, number | null, string | null, string], AgentKeyRow>(`
    UPDATE agent_keys SET
      not_after = coalesce(?, not_after),
      revoked_at = coalesce(?, revoked_at),
      revoked_reason = coalesce(?, revoked_reason)
    WHERE kid = ?
    RETURNING *
  `);
  const selectKey = db.prepare<[string], AgentKeyRow>("SELECT * FROM agent_keys WHERE kid = ?");
  const selectKeys = db.prepare<[], AgentKeyRow>("SELECT * FROM agent_keys ORDER BY created_at, rowid");
  const selectAgentKeys = db.prepare<[string], AgentKeyRow>(
    "SELECT * FROM agent_keys WHERE agent_id = ? ORDER BY created_at, rowid",
  );

  const insertApiKey = db.prepare<ApiKeyRow>(`
    INSERT INTO api_keys (id, name, principal, kind, permissions, hash, created_at, created_by, expires_at, revoked_at)
    VALUES (@id, @name, @principal, @kind, @permissions, @hash, @created_at, @created_by, @expires_at, @revoked_at)
  `);
  const selectApiKey = db.prepare<[string], ApiKeyRow>("SELECT * FROM api_keys WHERE id = ?");
  const selectApiKeys = db.prepare<[], ApiKeyRow>("SELECT * FROM api_keys ORDER BY created_at, rowid");
  // The first revocation time stands: a later call must not make the key look valid for longer.
  const revokeApiKeyRow = db.prepare<[number, string], ApiKeyRow>(
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING *",
  );

  const ping = db.prepare<[], number>("SELECT 1").pluck();

  // The first assignment stands: assigning again changes neither its time nor its author.
  const insertRoleAssignment = db.prepare<RoleAssignmentRow>(`
    INSERT INTO role_assignments (principal, role, assigned_at, assigned_by)
    VALUES (@principal, @role, @assigned_at, @assigned_by)
    ON CONFLICT (principal, role) DO NOTHING
  `);
  const deleteRoleAssignment = db.prepare<[string, string]>(
    "DELETE FROM role_assignments WHERE principal = ? AND role = ?",
  );
  // One fixed query per filter, each able to use the primary key or role_assignments_by_role.
  const selectRoleAssignments = {
    all: db.prepare<[], RoleAssignmentRow>("SELECT * FROM role_assignments ORDER BY principal, role"),
    byPrincipal: db.prepare<[string], RoleAssignmentRow>(
      "SELECT * FROM role_assignments WHERE principal = ? ORDER BY role",
    ),
    byRole: db.prepare<[string], RoleAssignmentRow>(
      "SELECT * FROM role_assignments WHERE role = ? ORDER BY principal",
    ),
    byBoth: db.prepare<[string, string], RoleAssignmentRow>(
      "SELECT * FROM role_assignments WHERE principal = ? AND role = ?",
    ),
  };
  const listRoleAssignmentRows = (query: RoleAssignmentQuery): RoleAssignmentRow[] => {
    const { principal, role } = query;
    if (principal !== undefined && role !== undefined)
      return selectRoleAssignments.byBoth.all(principal, role);
    if (principal !== undefined) return selectRoleAssignments.byPrincipal.all(principal);
    if (role !== undefined) return selectRoleAssignments.byRole.all(role);
    return selectRoleAssignments.all.all();
  };

  // Replay: an expired row counts as gone (`expires_at < now`) whether or not prune has run yet.
  const selectLiveMessage = db.prepare<[string, string, number], ReplayMessageRow>(
    "SELECT * FROM replay_messages WHERE sender = ? AND id = ? AND expires_at >= ?",
  );
  const selectLiveNonceOwner = db
    .prepare<[string, string, number], string>(
      "SELECT message_id FROM replay_nonces WHERE sender = ? AND nonce = ? AND expires_at >= ?",
    )
    .pluck();
  // Reached only when no live row holds (sender, id), so the update replaces an expired one.
  const upsertMessage = db.prepare<Omit<ReplayMessageRow, "state" | "outcome">>(`
    INSERT INTO replay_messages (sender, id, hash, nonce, ts, state, outcome, created_at, expires_at)
    VALUES (@sender, @id, @hash, @nonce, @ts, 'pending', NULL, @created_at, @expires_at)
    ON CONFLICT (sender, id) DO UPDATE SET
      hash = excluded.hash,
      nonce = excluded.nonce,
      ts = excluded.ts,
      state = excluded.state,
      outcome = excluded.outcome,
      created_at = excluded.created_at,
      expires_at = excluded.expires_at
  `);
  // Reached only when the nonce is free, expired, or bound to this same id (a released message
  // admitted again), which keeps it at least as long as before.
  const upsertNonce = db.prepare<[string, string, string, number]>(`
    INSERT INTO replay_nonces (sender, nonce, message_id, expires_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (sender, nonce) DO UPDATE SET
      message_id = excluded.message_id,
      expires_at = CASE WHEN message_id = excluded.message_id
        THEN max(expires_at, excluded.expires_at) ELSE excluded.expires_at END
  `);
  // The first outcome stands: a retry already answered with it must never see another.
  const completeMessage = db.prepare<[string, string, string]>(
    "UPDATE replay_messages SET state = 'done', outcome = ? WHERE sender = ? AND id = ? AND state = 'pending'",
  );
  // A done message has run; forgetting it would let the identical envelope run again.
  const releaseMessage = db.prepare<[string, string]>(
    "DELETE FROM replay_messages WHERE sender = ? AND id = ? AND state = 'pending'",
  );
  const selectMessage = db.prepare<[string, string], ReplayMessageRow>(
    "SELECT * FROM replay_messages WHERE sender = ? AND id = ?",
  );
  const pruneMessages = db.prepare<[number]>("DELETE FROM replay_messages WHERE expires_at < ?");
  const pruneNonces = db.prepare<[number]>("DELETE FROM replay_nonces WHERE expires_at < ?");

  const addKeyRow = (key: AgentKeyRecord): void => {
    try {
      insertKey.run({
        kid: key.kid,
        agent_id: key.agentId,
        public_key: key.publicKey,
        created_at: key.createdAt,
        not_after: key.notAfter ?? null,
        revoked_at: key.revokedAt ?? null,
        revoked_reason: key.revokedReason ?? null,
      });
    } catch (error) {
      if (violates(error, "SQLITE_CONSTRAINT_PRIMARYKEY")) {
        throw new SignetError(
          "INVALID_REQUEST",
          `Key ${key.kid} is already registered`,
          {},
          { cause: error },
        );
      }
      if (violates(error, "SQLITE_CONSTRAINT_FOREIGNKEY")) {
        throw new SignetError(
          "INVALID_REQUEST",
          `No agent ${key.agentId} to add key ${key.kid} to`,
          {},
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  };

  // A refused key rolls back the agent row too: putAgent stores all or nothing.
  const putAgentWithKeys = db.transaction((agent: AgentRecord, keys: readonly AgentKeyRecord[]) => {
    upsertAgent.run({
      id: agent.id,
      version: agent.version ?? null,
      description: agent.description,
      definition: JSON.stringify(agent.definition),
      serves: JSON.stringify(agent.serves),
      created_at: agent.createdAt,
      updated_at: agent.updatedAt,
      deployed_by: agent.deployedBy,
    });
    for (const key of keys) addKeyRow(key);
  });

  // DESIGN's order: identical retry, same id with other content, stale, nonce reused, else admit.
  const admitMessage = (request: AdmitRequest, expiresAt: number): AdmitOutcome => {
    const { sender, id, hash, nonce, ts, now } = request;
    const message = selectLiveMessage.get(sender, id, now);
    if (message !== undefined) {
      return message.hash === hash ? { kind: "duplicate", record: toMessage(message) } : { kind: "conflict" };
    }
    if (Math.abs(now - ts) > request.windowMs) return { kind: "stale" };
    const owner = selectLiveNonceOwner.get(sender, nonce, now);
    if (owner !== undefined && owner !== id) return { kind: "replay" };
    upsertMessage.run({ sender, id, hash, nonce, ts, created_at: now, expires_at: expiresAt });
    upsertNonce.run(sender, nonce, id, expiresAt);
    return { kind: "admitted" };
  };
  const pruneExpired = db.transaction(
    (now: number): number => pruneMessages.run(now).changes + pruneNonces.run(now).changes,
  );

  return {
    agents: {
      putAgent: (agent: AgentRecord, keys: readonly AgentKeyRecord[], _ctx: StoreContext) =>
        run(() => {
          assertKeysBelongTo(agent, keys);
          putAgentWithKeys(agent, keys);
        }),
      getAgent: (id: string) =>
        run(() => {
          const row = selectAgent.get(id);
          return row && toAgent(row);
        }),
      listAgents: () => run(() => selectAgents.all().map(toAgent)),
      addKey: (key: AgentKeyRecord, _ctx: StoreContext) => run(() => addKeyRow(key)),
      updateKey: (kid: string, patch: AgentKeyPatch, _ctx: StoreContext) =>
        run(() => {
          const row = patchKey.get(
            patch.notAfter ?? null,
            patch.revokedAt ?? null,
            patch.revokedReason ?? null,
            kid,
          );
          return row && toAgentKey(row);
        }),
      getKey: (kid: string) =>
        run(() => {
          const row = selectKey.get(kid);
          return row && toAgentKey(row);
        }),
      listKeys: (agentId?: string) =>
        run(() => (agentId === undefined ? selectKeys.all() : selectAgentKeys.all(agentId)).map(toAgentKey)),
    },

    apiKeys: {
      putApiKey: (key: ApiKeyRecord, _ctx: StoreContext) =>
        run(() => {
          try {
            insertApiKey.run({
              id: key.id,
              name: key.name,
              principal: key.principal,
              kind: key.kind,
              permissions: JSON.stringify(key.permissions),
              hash: key.hash,
              created_at: key.createdAt,
              created_by: key.createdBy,
              expires_at: key.expiresAt ?? null,
              revoked_at: key.revokedAt ?? null,
            });
          } catch (error) {
            if (violates(error, "SQLITE_CONSTRAINT_PRIMARYKEY")) {
              throw new SignetError(
                "INVALID_REQUEST",
                `API key ${key.id} already exists`,
                {},
                { cause: error },
              );
            }
            throw error;
          }
        }),
      getApiKey: (id: string) =>
        run(() => {
          const row = selectApiKey.get(id);
          return row && toApiKey(row);
        }),
      listApiKeys: () => run(() => selectApiKeys.all().map(toApiKey)),
      revokeApiKey: (id: string, at: number, _ctx: StoreContext) =>
        run(() => {
          const row = revokeApiKeyRow.get(at, id);
          return row && toApiKey(row);
        }),
    },

    replay: {
      // IMMEDIATE takes the write lock before the first read, so two connections to one file can't
      // both find (sender, id) free and both admit it.
      admit: (request: AdmitRequest) => batch.write(() => admitMessage(request, admitExpiresAt(request))),
      // Unknown or already done: nothing to store, and nothing the caller could do about it.
      complete: (sender: string, id: string, outcome: unknown) =>
        run(() => outcomeJson(outcome)).then((json) =>
          batch.write(() => {
            completeMessage.run(json, sender, id);
          }),
        ),
      release: (sender: string, id: string) =>
        batch.write(() => {
          releaseMessage.run(sender, id);
        }),
      getMessage: (sender: string, id: string) =>
        run(() => {
          const row = selectMessage.get(sender, id);
          return row && toMessage(row);
        }),
      prune: (now: number) => run(() => pruneExpired.immediate(now)),
    },

    roles: {
      assignRole: (assignment: RoleAssignmentRecord, _ctx: StoreContext) =>
        run(
          () =>
            insertRoleAssignment.run({
              principal: assignment.principal,
              role: assignment.role,
              assigned_at: assignment.assignedAt,
              assigned_by: assignment.assignedBy,
            }).changes === 1,
        ),
      unassignRole: (principal: string, role: string, _ctx: StoreContext) =>
        run(() => deleteRoleAssignment.run(principal, role).changes === 1),
      listRoleAssignments: (query: RoleAssignmentQuery = {}) =>
        run(() => listRoleAssignmentRows(query).map(toRoleAssignment)),
    },

    sessions: createSessionStore(db, batch),

    ping: () => {
      if (!db.open) return Promise.resolve(false);
      try {
        return Promise.resolve(ping.get() === 1);
      } catch {
        return Promise.resolve(false);
      }
    },
    close: () => {
      // Closing twice is harmless; closing checkpoints the WAL into the main file.
      if (db.open) {
        batch.flush();
        db.close();
      }
      return Promise.resolve();
    },
  };
}
