// What the runtime needs of an audit log store, whatever the database (SQLite now; PostgreSQL next).
import type {
  AuditEntry,
  AuditEntryDraft,
  AuditOutcome,
  AuditVerifyReport,
  Checkpoint,
  ConsistencyProofDocument,
  Ed25519PublicKey,
  InclusionProofDocument,
  RuntimeKeyRecord,
  SealedAuditEntry,
} from "@signet/protocol";

/** Filters for reading the log; all optional, combined with AND. Values are bound, never SQL text. */
export interface AuditQuery {
  readonly eventType?: string;
  readonly actor?: string;
  readonly target?: string;
  readonly outcome?: AuditOutcome;
  readonly code?: string;
  /** Entry id (the `audit_id` of receipts and error details). */
  readonly id?: string;
  /** Entries at or after this time, microseconds since the Unix epoch. */
  readonly sinceMicros?: number;
  /** Entries before this time, microseconds since the Unix epoch. */
  readonly untilMicros?: number;
  /** Only entries with a larger seq (for paging oldest first). */
  readonly afterSeq?: number;
  /** Only entries with a smaller seq (for paging newest first). */
  readonly beforeSeq?: number;
  /** Newest first when true (the default for the API); oldest first otherwise. */
  readonly newestFirst?: boolean;
  /** At most this many (default 100, at most 10,000). */
  readonly limit?: number;
}

/** An entry as read back: its members, parsed from the stored bytes, with its hash. */
export type AuditRecord = AuditEntry;

export interface AuditPruneResult {
  /** The new anchor: entries below this seq are gone. */
  readonly anchorSize: number;
  /** Entries removed by this prune. */
  readonly removed: number;
  /** Checkpoints below the anchor removed with them. */
  readonly checkpointsRemoved: number;
}

/**
 * A durable, group-committed, tamper-evident log. Appends made in one turn of the event loop share a
 * transaction; a rejected append (`AUDIT_UNAVAILABLE`) stored nothing of that call.
 */
export interface AuditLog {
  /** Entries appended so far: the next seq. */
  readonly size: number;
  /** The seq of the oldest entry still held (the anchor's size after retention). */
  readonly firstSeq: number;
  /** The key checkpoints are verified with. */
  readonly publicKey: Ed25519PublicKey;
  append(drafts: readonly AuditEntryDraft[]): Promise<SealedAuditEntry[]>;
  /** Writes what is queued now. */
  flush(): Promise<void>;
  /** Signs a checkpoint of the entries not yet anchored; returns the latest checkpoint. */
  checkpoint(): Promise<Checkpoint | undefined>;
  query(query: AuditQuery): Promise<AuditRecord[]>;
  /** The signed checkpoints, oldest first, optionally only those from `minTreeSize` on. */
  checkpoints(minTreeSize?: number): Promise<Checkpoint[]>;
  keys(): Promise<RuntimeKeyRecord[]>;
  /** Inclusion proof of entry `seq` in the tree of `treeSize` entries (default: the latest checkpoint). */
  inclusionProof(seq: number, treeSize?: number): Promise<InclusionProofDocument>;
  consistencyProof(first: number, second: number): Promise<ConsistencyProofDocument>;
  /** The export as NDJSON lines (docs/audit.md §6). */
  exportNdjson(options?: { readonly fromSeq?: number }): AsyncGenerator<Buffer, void, undefined>;
  /** Verifies the stored log as an auditor would, and each row's query columns. */
  verify(): Promise<AuditVerifyReport>;
  /**
   * Removes entries recorded before `beforeMicros`, down to the newest checkpoint they allow (an
   * anchor keeps the rest verifiable). Undefined when nothing could be pruned.
   */
  prune(beforeMicros: number): Promise<AuditPruneResult | undefined>;
  close(): Promise<void>;
}
