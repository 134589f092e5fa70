// The PostgreSQL schema as an ordered list of migrations, and the runner that brings a database up to date.
//
// A migration, once released, never changes: a new column or index is a new entry at the end. The
// runner records each applied version in `schema_migrations`, so it knows what a database holds.
import type { ClientBase } from "pg";
import { SchemaVersionError } from "../schema-version-error.js";

/** One step of the schema. `version` is a positive integer, strictly increasing through the list. */
export interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Every PostgreSQL migration, oldest first: the same tables as SQLite's current schema (which no longer
 * has the events table), in PostgreSQL types.
 *
 * - Timestamps are `bigint` milliseconds, read back as JS numbers (the adapter refuses any value
 *   beyond Number.MAX_SAFE_INTEGER rather than round it).
 * - JSON is `json`, not `jsonb`: the adapter stores whole documents and never queries inside them, and
 *   `json` keeps the exact text it was given, so a replayed outcome is the same bytes that were
 *   stored, keys in their order. `jsonb` would reorder keys and refuse `\u0000` in strings, which
 *   JSON.stringify writes and SQLite keeps.
 * - Keys that lists are ordered by use the "C" collation: byte order, the same under every database
 *   locale, and the order SQLite's BINARY collation gives.
 * - `seq` identity columns break `created_at` ties in insertion order, as SQLite's rowid does.
 */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: "registry and api keys",
    sql: `
      CREATE TABLE agents (
        id          text COLLATE "C" PRIMARY KEY,
        version     text,
        description text NOT NULL,
        definition  json NOT NULL CHECK (json_typeof(definition) = 'object'),
        serves      json NOT NULL CHECK (json_typeof(serves) = 'array'),
        created_at  bigint NOT NULL,
        updated_at  bigint NOT NULL,
        deployed_by text NOT NULL
      );

      -- A kid is an RFC 7638 thumbprint, so it is unique across all agents, not only within one.
      CREATE TABLE agent_keys (
        kid            text PRIMARY KEY,
        agent_id       text COLLATE "C" NOT NULL REFERENCES agents (id),
        public_key     text NOT NULL,
        created_at     bigint NOT NULL,
        not_after      bigint,
        revoked_at     bigint,
        revoked_reason text,
        seq            bigint GENERATED ALWAYS AS IDENTITY
      );
      -- listKeys(agentId): one agent's keys, oldest first.
      CREATE INDEX agent_keys_by_agent ON agent_keys (agent_id, created_at, seq);

      CREATE TABLE api_keys (
        id          text PRIMARY KEY,
        name        text NOT NULL,
        principal   text NOT NULL,
        kind        text NOT NULL CHECK (kind IN ('agent', 'user', 'service')),
        permissions json NOT NULL CHECK (json_typeof(permissions) = 'array'),
        hash        text NOT NULL,
        created_at  bigint NOT NULL,
        created_by  text NOT NULL,
        expires_at  bigint,
        revoked_at  bigint,
        seq         bigint GENERATED ALWAYS AS IDENTITY
      );
    `,
  },
  {
    version: 2,
    name: "replay protection: messages and nonces",
    sql: `
      -- One row per admitted message: what an identical retry is answered with. A pending row has no
      -- outcome yet; a done row always has one (which may be the JSON value null, not SQL NULL).
      CREATE TABLE replay_messages (
        sender     text NOT NULL,
        id         text NOT NULL,
        hash       text NOT NULL,
        nonce      text NOT NULL,
        ts         bigint NOT NULL,
        state      text NOT NULL CHECK (state IN ('pending', 'done')),
        outcome    json,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (sender, id),
        CHECK ((state = 'done') = (outcome IS NOT NULL))
      );
      -- prune(now): the expired rows.
      CREATE INDEX replay_messages_by_expiry ON replay_messages (expires_at);

      -- Nonces are per sender, and outlive a released message so its nonce stays bound to its id.
      CREATE TABLE replay_nonces (
        sender     text NOT NULL,
        nonce      text NOT NULL,
        message_id text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (sender, nonce)
      );
      CREATE INDEX replay_nonces_by_expiry ON replay_nonces (expires_at);
    `,
  },
  {
    version: 3,
    name: "role assignments",
    sql: `
      -- Which principal holds which role (RBAC for the admin API). Roles are defined in roles.yaml,
      -- not here: an assignment of a role the file no longer defines stays, and grants nothing.
      CREATE TABLE role_assignments (
        principal   text COLLATE "C" NOT NULL,
        role        text COLLATE "C" NOT NULL,
        assigned_at bigint NOT NULL,
        assigned_by text NOT NULL,
        PRIMARY KEY (principal, role)
      );
      -- listRoleAssignments({ role }): who holds a role.
      CREATE INDEX role_assignments_by_role ON role_assignments (role, principal);
    `,
  },
  {
    version: 4,
    name: "coordination sessions",
    sql: `
      -- One row per session. Fields fixed at creation (mode, initiator, participants, config) never
      -- change; the rest follow the accepted messages. closed_at is set exactly when it left OPEN.
      CREATE TABLE sessions (
        id            text COLLATE "C" PRIMARY KEY,
        mode          text NOT NULL CHECK (mode IN ('decision', 'proposal', 'task', 'handoff', 'quorum')),
        initiator     text NOT NULL,
        participants  json NOT NULL CHECK (json_typeof(participants) = 'array'),
        status        text NOT NULL CHECK (status IN ('OPEN', 'RESOLVED', 'EXPIRED', 'CANCELLED')),
        created_at    bigint NOT NULL,
        expires_at    bigint NOT NULL,
        closed_at     bigint,
        policy_ref    text,
        config        json NOT NULL CHECK (json_typeof(config) = 'object'),
        mode_state    json NOT NULL,
        message_count integer NOT NULL CHECK (message_count >= 0),
        history_hash  text NOT NULL,
        outcome       json,
        cancelled_by  text,
        start_hash    text NOT NULL,
        seq           bigint GENERATED ALWAYS AS IDENTITY,
        CHECK ((status = 'OPEN') = (closed_at IS NULL))
      );
      -- list(): all sessions, or one status's, or one mode's, oldest first.
      CREATE INDEX sessions_by_creation ON sessions (created_at, seq);
      CREATE INDEX sessions_by_status ON sessions (status, created_at, seq);
      CREATE INDEX sessions_by_mode ON sessions (mode, created_at, seq);
      -- expired(now): the OPEN sessions soonest due; closed ones leave the index.
      CREATE INDEX sessions_open_by_expiry ON sessions (expires_at, seq) WHERE status = 'OPEN';
      -- prune(closedBefore): the closed sessions that closed longest ago.
      CREATE INDEX sessions_closed_by_time ON sessions (closed_at, seq) WHERE status <> 'OPEN';

      -- list({ participant }): which sessions an agent is in.
      CREATE TABLE session_participants (
        agent_id   text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL REFERENCES sessions (id),
        PRIMARY KEY (agent_id, session_id)
      );

      -- The accepted messages in each session's total order. A message id is used once per session.
      CREATE TABLE session_messages (
        session_id    text COLLATE "C" NOT NULL REFERENCES sessions (id),
        seq           integer NOT NULL CHECK (seq >= 0),
        message_id    text NOT NULL,
        sender        text NOT NULL,
        kind          text NOT NULL,
        envelope_hash text NOT NULL,
        body          json NOT NULL,
        accepted_at   bigint NOT NULL,
        PRIMARY KEY (session_id, seq),
        CONSTRAINT session_messages_message_id_key UNIQUE (session_id, message_id)
      );

      -- Lifecycle events for the watch stream, read as "every id after the cursor". Identity values
      -- are drawn when a row is inserted, not when it commits, so two transactions could commit ids
      -- out of order; the adapter makes them commit in order (see appendEvents in postgres.ts).
      CREATE TABLE session_events (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id text COLLATE "C" NOT NULL REFERENCES sessions (id),
        type       text NOT NULL
                   CHECK (type IN ('CREATED', 'MESSAGE_ACCEPTED', 'RESOLVED', 'EXPIRED', 'CANCELLED')),
        at         bigint NOT NULL,
        data       json NOT NULL CHECK (json_typeof(data) = 'object')
      );
      -- prune(): a pruned session's events.
      CREATE INDEX session_events_by_session ON session_events (session_id);
    `,
  },
];

/**
 * The advisory lock every Signet instance takes while migrating ("Signet" in ASCII). Advisory locks
 * are per database, so instances using other databases on the same server never wait on it.
 */
export const MIGRATION_LOCK_KEY = "91712171959668";

/**
 * The advisory lock a transaction holds from drawing session event ids until it commits, so event ids
 * commit in increasing order (the migration key plus one).
 */
export const SESSION_EVENTS_LOCK_KEY = "91712171959669";

/** How long migrating may take, waiting for another instance's migration included. */
const DEFAULT_MIGRATION_TIMEOUT_MS = 60_000;

export interface MigratePostgresOptions {
  /** The statement timeout inside the migration transaction, lock wait included. Default 60000. */
  readonly timeoutMs?: number;
}

/** Throws unless versions are positive integers in strictly increasing order: a build-time mistake. */
function assertOrdered(migrations: readonly PostgresMigration[]): void {
  let previous = 0;
  for (const { version, name } of migrations) {
    if (!Number.isSafeInteger(version) || version <= previous) {
      throw new Error(`Migration "${name}" has version ${version}; versions must increase from 1`);
    }
    previous = version;
  }
}

/**
 * Applies every migration newer than the database's schema, all in one transaction holding the
 * migration advisory lock, and returns the versions applied. Instances starting together queue on the
 * lock, so each version is applied once; the ones that wait find it recorded. Refuses a database whose
 * schema is newer than `migrations` knows, with SQLite's `SchemaVersionError`. `client` must be a
 * connection of its own (a pool client, not the pool), since the transaction spans several queries.
 *
 * Example: `await migratePostgres(await pool.connect())` before serving anything.
 */
export async function migratePostgres(
  client: ClientBase,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
  options: MigratePostgresOptions = {},
): Promise<number[]> {
  assertOrdered(migrations);
  const timeoutMs = options.timeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError("The migration timeout must be a positive integer");
  }
  const supported = migrations.at(-1)?.version ?? 0;

  await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
  try {
    // Local to this transaction: the pool's own statement timeout is too short to wait out a migration.
    await client.query("SELECT set_config('statement_timeout', $1, true)", [String(timeoutMs)]);
    // Taken before anything else, the table creation included: two concurrent CREATE TABLE IF NOT
    // EXISTS can otherwise both try to create it, and one fails.
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at bigint NOT NULL
      )
    `);
    // Read after the lock: an instance that waited sees what the one before it applied.
    const { rows } = await client.query<{ current: number | null; database: string }>(
      "SELECT max(version) AS current, current_database() AS database FROM schema_migrations",
    );
    const current = rows[0]?.current ?? 0;
    if (current > supported) throw new SchemaVersionError(current, supported, rows[0]?.database ?? "");

    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      // No parameters, so the simple protocol runs the migration's several statements in one call.
      await client.query(migration.sql);
      await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      applied.push(migration.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (error) {
    // A failed migration leaves nothing behind; a failed rollback means the connection is gone anyway.
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
