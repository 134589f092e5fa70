// The rows of the registry, key, API key, role and replay tables as both SQL adapters read them (the
// column names are the same in SQLite and PostgreSQL), and their mapping to the records.
import type {
  AgentKeyRecord,
  AgentRecord,
  ApiKeyRecord,
  MessageRecord,
  PrincipalKind,
  RoleAssignmentRecord,
} from "./types.js";

export interface AgentRow {
  id: string;
  version: string | null;
  description: string;
  definition: string;
  serves: string;
  created_at: number;
  updated_at: number;
  deployed_by: string;
}

export interface AgentKeyRow {
  kid: string;
  agent_id: string;
  public_key: string;
  created_at: number;
  not_after: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface ApiKeyRow {
  id: string;
  name: string;
  principal: string;
  kind: PrincipalKind;
  permissions: string;
  hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface RoleAssignmentRow {
  principal: string;
  role: string;
  assigned_at: number;
  assigned_by: string;
}

export interface ReplayMessageRow {
  sender: string;
  id: string;
  hash: string;
  nonce: string;
  ts: number;
  state: MessageRecord["state"];
  outcome: string | null;
  created_at: number;
  expires_at: number;
}

/** Maps SQL NULL to an absent field, the way the in-memory adapter omits `undefined`. */
export function present<K extends string, V>(field: K, value: V | null): { [P in K]?: V } {
  return value === null ? {} : ({ [field]: value } as { [P in K]: V });
}

export function toAgent(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    ...present("version", row.version),
    description: row.description,
    definition: JSON.parse(row.definition) as Record<string, unknown>,
    serves: JSON.parse(row.serves) as string[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deployedBy: row.deployed_by,
  };
}

export function toAgentKey(row: AgentKeyRow): AgentKeyRecord {
  return {
    kid: row.kid,
    agentId: row.agent_id,
    publicKey: row.public_key,
    createdAt: row.created_at,
    ...present("notAfter", row.not_after),
    ...present("revokedAt", row.revoked_at),
    ...present("revokedReason", row.revoked_reason),
  };
}

export function toApiKey(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    principal: row.principal,
    kind: row.kind,
    permissions: JSON.parse(row.permissions) as string[],
    hash: row.hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    ...present("expiresAt", row.expires_at),
    ...present("revokedAt", row.revoked_at),
  };
}

export function toRoleAssignment(row: RoleAssignmentRow): RoleAssignmentRecord {
  return {
    principal: row.principal,
    role: row.role,
    assignedAt: row.assigned_at,
    assignedBy: row.assigned_by,
  };
}

export function toMessage(row: ReplayMessageRow): MessageRecord {
  return {
    sender: row.sender,
    id: row.id,
    hash: row.hash,
    nonce: row.nonce,
    ts: row.ts,
    state: row.state,
    // Parsed only here, so an admit pays for it on a duplicate alone.
    ...(row.outcome !== null && { outcome: JSON.parse(row.outcome) as unknown }),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
