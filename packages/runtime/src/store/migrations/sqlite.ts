// The SQLite schema as an ordered list of migrations, and the runner that brings a database up to date.
//
// A migration, once released, never changes: a new column or index is a new entry at the end. The
// runner records each applied version in `schema_migrations`, so it knows what a database holds.
import type { Database } from "better-sqlite3";
import { SchemaVersionError } from "../schema-version-error.js";

/** One step of the schema. `version` is a positive integer, strictly increasing through the list. */
export interface SqliteMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Every SQLite migration, oldest first.
 *
 * Tables are STRICT so a wrongly typed value fails loudly instead of being stored as text; arrays and
 * objects are JSON text (checked with `json_valid`), timestamps are integer milliseconds.
 *
 * Kept on purpose, after measuring them on the hot path (CPU per event, file-backed WAL database):
 * - `events.seq` AUTOINCREMENT. Plain INTEGER PRIMARY KEY would hand out max(rowid) + 1, reusing a seq
 *   whenever the newest rows are deleted; events are deleted only from the oldest end (retention), so
 *   reuse could not happen today, but AUTOINCREMENT makes "never reused" a property of the schema
 *   rather than of every future deleter. Its cost is one sqlite_sequence update per commit: about
 *   3 µs per event when each event commits alone, 0.7 µs in batches of 8. (Version 4 dropped the
 *   table: the audit log in audit.db records the events now.)
 * - The `json_valid` CHECKs. The adapter writes only JSON.stringify output, so they guard against other
 *   writers (an operator's sqlite3 shell, a future adapter bug), and the audit export and verifier need
 *   every row to parse. They cost about 1 µs for a 400-byte event (0.6 µs in batches) and 1 µs for a
 *   1.6 KB replay outcome; dropping one would also mean rebuilding its table.
 * - Replay outcomes as JSON text. JSON.stringify and JSON.parse were the cheapest encoding measured
 *   (3.0 and 2.5 µs for a typical outcome, against 5.0 and 6.2 µs for v8.serialize and deserialize).
 */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: "registry, api keys and events",
    sql: `
      CREATE TABLE agents (
        id          TEXT PRIMARY KEY,
        version     TEXT,
        description TEXT NOT NULL,
        definition  TEXT NOT NULL CHECK (json_valid(definition)),
        serves      TEXT NOT NULL CHECK (json_valid(serves)),
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        deployed_by TEXT NOT NULL
      ) STRICT;

      -- A kid is an RFC 7638 thumbprint, so it is unique across all agents, not only within one.
      CREATE TABLE agent_keys (
        kid            TEXT PRIMARY KEY,
        agent_id       TEXT NOT NULL REFERENCES agents (id),
        public_key     TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        not_after      INTEGER,
        revoked_at     INTEGER,
        revoked_reason TEXT
      ) STRICT;
      -- listKeys(agentId): one agent's keys, oldest first (rowid, implied in the index, breaks ties).
      CREATE INDEX agent_keys_by_agent ON agent_keys (agent_id, created_at);

      CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        principal   TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('agent', 'user', 'service')),
        permissions TEXT NOT NULL CHECK (json_valid(permissions)),
        hash        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        expires_at  INTEGER,
        revoked_at  INTEGER
      ) STRICT;

      -- AUTOINCREMENT: a seq is never reused, even after old events are pruned, so an afterSeq
      -- cursor held by a reader can never skip a new event.
      CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL UNIQUE,
        ts      INTEGER NOT NULL,
        type    TEXT NOT NULL,
        actor   TEXT,
        target  TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'deny', 'success', 'failure', 'error')),
        code    TEXT,
        details TEXT NOT NULL CHECK (json_valid(details))
      ) STRICT;
      -- listEvents({ type, afterSeq }): one type's events in seq order.
      CREATE INDEX events_by_type ON events (type, seq);
    `,
  },
  {
    version: 2,
    name: "replay protection: messages and nonces",
    sql: `
      -- One row per admitted message: what an identical retry is answered with. A pending row has no
      -- outcome yet; a done row always has one (JSON text, which may be the JSON value null). It keeps
      -- its rowid: an outcome (receipt and result) can be large, which WITHOUT ROWID tables store badly.
      CREATE TABLE replay_messages (
        sender     TEXT NOT NULL,
        id         TEXT NOT NULL,
        hash       TEXT NOT NULL,
        nonce      TEXT NOT NULL,
        ts         INTEGER NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        outcome    TEXT CHECK (json_valid(outcome)),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (sender, id),
        CHECK ((state = 'done') = (outcome IS NOT NULL))
      ) STRICT;
      -- prune(now): the expired rows.
      CREATE INDEX replay_messages_by_expiry ON replay_messages (expires_at);

      -- Nonces are per sender, and outlive a released message so its nonce stays bound to its id.
      -- WITHOUT ROWID: small rows looked up by their key only, so the key is the table.
      CREATE TABLE replay_nonces (
        sender     TEXT NOT NULL,
        nonce      TEXT NOT NULL,
        message_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (sender, nonce)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX replay_nonces_by_expiry ON replay_nonces (expires_at);
    `,
  },
  {
    version: 3,
    name: "role assignments",
    sql: `
      -- Which principal holds which role (RBAC for the admin API). Roles are defined in roles.yaml,
      -- not here: an assignment of a role the file no longer defines stays, and grants nothing.
      -- WITHOUT ROWID: small rows read by principal, which is the key's first column.
      CREATE TABLE role_assignments (
        principal   TEXT NOT NULL,
        role        TEXT NOT NULL,
        assigned_at INTEGER NOT NULL,
        assigned_by TEXT NOT NULL,
        PRIMARY KEY (principal, role)
      ) STRICT, WITHOUT ROWID;
      -- listRoleAssignments({ role }): who holds a role.
      CREATE INDEX role_assignments_by_role ON role_assignments (role, principal);
    `,
  },
  {
    version: 4,
    name: "drop events",
    sql: `
      -- The audit log in audit.db replaced it: security events are recorded there, hash-chained and
      -- checkpointed, and nothing reads or writes this table any more.
      DROP INDEX IF EXISTS events_by_type;
      DROP TABLE IF EXISTS events;
    `,
  },
  {
    version: 5,
    name: "coordination sessions",
    sql: `
      -- One row per session. Fields fixed at creation (mode, initiator, participants, config) never
      -- change; the rest follow the accepted messages. closed_at is set exactly when it left OPEN.
      -- It keeps its rowid, which breaks created_at ties in insertion order when listing.
      CREATE TABLE sessions (
        id            TEXT PRIMARY KEY,
        mode          TEXT NOT NULL CHECK (mode IN ('decision', 'proposal', 'task', 'handoff', 'quorum')),
        initiator     TEXT NOT NULL,
        participants  TEXT NOT NULL CHECK (json_valid(participants) AND json_type(participants) = 'array'),
        status        TEXT NOT NULL CHECK (status IN ('OPEN', 'RESOLVED', 'EXPIRED', 'CANCELLED')),
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        closed_at     INTEGER,
        policy_ref    TEXT,
        config        TEXT NOT NULL CHECK (json_valid(config) AND json_type(config) = 'object'),
        mode_state    TEXT NOT NULL CHECK (json_valid(mode_state)),
        message_count INTEGER NOT NULL CHECK (message_count >= 0),
        history_hash  TEXT NOT NULL,
        outcome       TEXT CHECK (json_valid(outcome)),
        cancelled_by  TEXT,
        start_hash    TEXT NOT NULL,
        CHECK ((status = 'OPEN') = (closed_at IS NULL))
      ) STRICT;
      -- list(): all sessions, or one status's, or one mode's, oldest first (rowid is in every index).
      CREATE INDEX sessions_by_creation ON sessions (created_at);
      CREATE INDEX sessions_by_status ON sessions (status, created_at);
      CREATE INDEX sessions_by_mode ON sessions (mode, created_at);
      -- expired(now): the OPEN sessions soonest due; closed ones leave the index.
      CREATE INDEX sessions_open_by_expiry ON sessions (expires_at) WHERE status = 'OPEN';
      -- prune(closedBefore): the closed sessions that closed longest ago.
      CREATE INDEX sessions_closed_by_time ON sessions (closed_at) WHERE status <> 'OPEN';

      -- list({ participant }): which sessions an agent is in. WITHOUT ROWID: the key is the table.
      CREATE TABLE session_participants (
        agent_id   TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        PRIMARY KEY (agent_id, session_id)
      ) STRICT, WITHOUT ROWID;

      -- The accepted messages in each session's total order. A message id is used once per session.
      -- It keeps its rowid: a body can be large, which WITHOUT ROWID tables store badly.
      CREATE TABLE session_messages (
        session_id    TEXT NOT NULL REFERENCES sessions (id),
        seq           INTEGER NOT NULL CHECK (seq >= 0),
        message_id    TEXT NOT NULL,
        sender        TEXT NOT NULL,
        kind          TEXT NOT NULL,
        envelope_hash TEXT NOT NULL,
        body          TEXT NOT NULL CHECK (json_valid(body)),
        accepted_at   INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq),
        UNIQUE (session_id, message_id)
      ) STRICT;

      -- Lifecycle events for the watch stream, read as "every id after the cursor". AUTOINCREMENT: an
      -- id is never reused, even once old events are deleted. SQLite has one writer at a time and ids
      -- are drawn inside the write transaction, so they commit in id order and a reader's cursor can
      -- never pass an event that commits later.
      CREATE TABLE session_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        type       TEXT NOT NULL
                   CHECK (type IN ('CREATED', 'MESSAGE_ACCEPTED', 'RESOLVED', 'EXPIRED', 'CANCELLED')),
        at         INTEGER NOT NULL,
        data       TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object')
      ) STRICT;
      -- prune(): a pruned session's events.
      CREATE INDEX session_events_by_session ON session_events (session_id);
    `,
  },
];

/** Throws unless versions are positive integers in strictly increasing order: a build-time mistake. */
function assertOrdered(migrations: readonly SqliteMigration[]): void {
  let previous = 0;
  for (const { version, name } of migrations) {
    if (!Number.isSafeInteger(version) || version <= previous) {
      throw new Error(`Migration "${name}" has version ${version}; versions must increase from 1`);
    }
    previous = version;
  }
}

/**
 * Applies every migration newer than the database's schema, all in one IMMEDIATE transaction, and
 * returns the versions applied. Refuses a database whose schema is newer than `migrations` knows.
 *
 * Example: `migrateSqlite(db)` right after opening, before preparing any statement.
 */
export function migrateSqlite(
  db: Database,
  migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS,
): number[] {
  assertOrdered(migrations);
  const supported = migrations.at(-1)?.version ?? 0;

  const migrate = db.transaction((): number[] => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      ) STRICT
    `);
    // Read inside the transaction: a second process opening the same file waits, then sees our work.
    const current =
      db.prepare<[], number | null>("SELECT max(version) FROM schema_migrations").pluck().get() ?? 0;
    if (current > supported) throw new SchemaVersionError(current, supported, db.name);

    const record = db.prepare<[number, string, number]>(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
    );
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
      applied.push(migration.version);
    }
    return applied;
  });

  // IMMEDIATE takes the write lock up front, so two processes can't both decide to apply version N.
  return migrate.immediate();
}
