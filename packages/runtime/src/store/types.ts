// The storage interfaces: small, async, adapter-neutral. Every adapter passes one contract suite.
//
// Records are plain data. Adapters return copies, so a caller can never change stored state by
// mutating what it was handed (the in-memory adapter clones like the SQL ones do by construction).
import type { SessionStore } from "../sessions/types.js";

/** Who is changing state, for the records that note it. */
export interface StoreContext {
  /** The principal id performing the change (`admin`, `ci-deployer`, `system`). */
  readonly actor: string;
  /** Correlates the change with the request that made it. */
  readonly requestId?: string;
}

/** A registered agent (the `name` of its definition is its id). */
export interface AgentRecord {
  readonly id: string;
  readonly version?: string;
  /** The Markdown body of the definition. */
  readonly description: string;
  /** The definition's YAML frontmatter, as validated at deploy. */
  readonly definition: Readonly<Record<string, unknown>>;
  /** Tool names this agent may serve. */
  readonly serves: readonly string[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly deployedBy: string;
}

/** One signing key of an agent. */
export interface AgentKeyRecord {
  /** RFC 7638 thumbprint of the public key. */
  readonly kid: string;
  readonly agentId: string;
  /** base64url of the 32 raw public key bytes. */
  readonly publicKey: string;
  readonly createdAt: number;
  /** After this time (ms) the key no longer verifies: set when a rotation starts its grace period. */
  readonly notAfter?: number;
  /** When set, the key is revoked: it never verifies again. */
  readonly revokedAt?: number;
  readonly revokedReason?: string;
}

/** The fields of a key that may change after it is added. */
export interface AgentKeyPatch {
  readonly notAfter?: number;
  readonly revokedAt?: number;
  readonly revokedReason?: string;
}

export type PrincipalKind = "agent" | "user" | "service";

/** An API key, stored by the SHA-256 of its secret only. */
export interface ApiKeyRecord {
  /** The public identifier embedded in the key (`sgk_<id>_<secret>`). */
  readonly id: string;
  readonly name: string;
  readonly principal: string;
  readonly kind: PrincipalKind;
  readonly permissions: readonly string[];
  /** Lower-case hex SHA-256 of the whole key string. */
  readonly hash: string;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly expiresAt?: number;
  readonly revokedAt?: number;
}

/** A role held by a principal (RBAC for the admin API). One row per (principal, role). */
export interface RoleAssignmentRecord {
  /** The bare id of the principal holding the role. */
  readonly principal: string;
  readonly role: string;
  readonly assignedAt: number;
  readonly assignedBy: string;
}

/** Which assignments to list; both fields narrow, neither means every assignment. */
export interface RoleAssignmentQuery {
  readonly principal?: string;
  readonly role?: string;
}

export interface AgentStore {
  /** Creates or replaces an agent and adds `keys` in one transaction. Existing keys stay. */
  putAgent(agent: AgentRecord, keys: readonly AgentKeyRecord[], ctx: StoreContext): Promise<void>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  listAgents(): Promise<AgentRecord[]>;
  /** Adds a key; fails with a SignetError INVALID_REQUEST if the kid is already registered. */
  addKey(key: AgentKeyRecord, ctx: StoreContext): Promise<void>;
  /** Changes a key's validity; returns the updated key, or undefined when there is none. */
  updateKey(kid: string, patch: AgentKeyPatch, ctx: StoreContext): Promise<AgentKeyRecord | undefined>;
  getKey(kid: string): Promise<AgentKeyRecord | undefined>;
  /** Every key, or one agent's keys, oldest first. */
  listKeys(agentId?: string): Promise<AgentKeyRecord[]>;
}

export interface ApiKeyStore {
  /** Adds a key; fails with INVALID_REQUEST if the id exists. */
  putApiKey(key: ApiKeyRecord, ctx: StoreContext): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked; returns the updated key, or undefined when there is none. */
  revokeApiKey(id: string, at: number, ctx: StoreContext): Promise<ApiKeyRecord | undefined>;
}

export interface RoleStore {
  /**
   * Assigns a role. Resolves to true when the principal did not hold it; false when it did, in which
   * case the stored assignment (its time and who made it) stays as it was.
   */
  assignRole(assignment: RoleAssignmentRecord, ctx: StoreContext): Promise<boolean>;
  /** Removes one assignment. Resolves to true when there was one to remove. */
  unassignRole(principal: string, role: string, ctx: StoreContext): Promise<boolean>;
  /**
   * Assignments matching the query, ordered by principal, then role.
   *
   * Example: `(await stores.roles.listRoleAssignments({ principal: "alice" })).map((a) => a.role)`.
   */
  listRoleAssignments(query?: RoleAssignmentQuery): Promise<RoleAssignmentRecord[]>;
}

/** Every store the runtime uses, behind one handle that opens and closes them together. */
export interface Stores {
  readonly agents: AgentStore;
  readonly apiKeys: ApiKeyStore;
  readonly replay: ReplayStore;
  readonly roles: RoleStore;
  /** Coordination sessions, their accepted messages and the lifecycle events the watch stream reads. */
  readonly sessions: SessionStore;
  /** True when the backing database answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** What the replay store remembers of an admitted message (by sender and message id). */
export interface MessageRecord {
  readonly sender: string;
  readonly id: string;
  /** The envelope hash: identical content means an identical retry. */
  readonly hash: string;
  readonly nonce: string;
  readonly ts: number;
  /** `pending` until the outcome is stored; `done` after. */
  readonly state: "pending" | "done";
  /** The stored outcome (receipt and result, or a permanent error), replayed to identical retries. */
  readonly outcome?: unknown;
  readonly createdAt: number;
  /** After this time the record may be pruned. */
  readonly expiresAt: number;
}

/** What to admit: the verified envelope's identity, and the clock and windows to judge it by. */
export interface AdmitRequest {
  readonly sender: string;
  readonly id: string;
  readonly hash: string;
  readonly nonce: string;
  readonly ts: number;
  readonly now: number;
  /** Freshness window (ms): `|now - ts|` beyond it is stale. */
  readonly windowMs: number;
  /** How long the message record (and its outcome) is kept, at least the window. */
  readonly retentionMs: number;
}

/**
 * The result of {@link ReplayStore.admit}, in DESIGN's order: an identical retry (`duplicate`), the
 * same id with other content (`conflict` → DUPLICATE_MESSAGE), a stale timestamp (`stale` →
 * STALE_MESSAGE), a nonce already used by another id (`replay` → REPLAY_DETECTED), else `admitted`.
 */
export type AdmitOutcome =
  | { readonly kind: "admitted" }
  | { readonly kind: "duplicate"; readonly record: MessageRecord }
  | { readonly kind: "conflict" }
  | { readonly kind: "stale" }
  | { readonly kind: "replay" };

export interface ReplayStore {
  /**
   * Atomically checks a message and, when it is new, records it as pending together with its nonce
   * (nonces are per sender and kept for at least twice the window, so a replay can never be both
   * fresh and forgotten). Concurrent admits of the same (sender, id) admit exactly one.
   */
  admit(request: AdmitRequest): Promise<AdmitOutcome>;
  /** Stores the outcome of an admitted message and marks it done. */
  complete(sender: string, id: string, outcome: unknown): Promise<void>;
  /**
   * Forgets an admitted message that was never dispatched (a retryable refusal), so the identical
   * envelope may be retried; its nonce stays bound to its id.
   */
  release(sender: string, id: string): Promise<void>;
  getMessage(sender: string, id: string): Promise<MessageRecord | undefined>;
  /** Deletes expired messages and nonces; returns how many rows went. */
  prune(now: number): Promise<number>;
}
