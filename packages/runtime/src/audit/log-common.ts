// What the SQLite and PostgreSQL audit logs share: row shapes, the column check, filters, errors.
import {
  type AuditProblem,
  type AuditVerifyReport,
  SignetError,
  parseAuditEntry,
  parseAuditTime,
} from "@signet/protocol";
import type { AuditQuery } from "./audit-log.js";

/** A stored row: the entry's bytes, its recorded hash, and the query columns copied from its draft. */
export interface AuditRow {
  seq: number;
  hash: string;
  bytes: Buffer;
  id: string;
  ts: number;
  type: string;
  actor: string | null;
  target: string | null;
  outcome: string;
  code: string | null;
}

/** The most entries one query returns. */
export const MAX_QUERY_LIMIT = 10_000;

export function defaultNowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer`);
  return value;
}

export function unavailable(message: string, reason: string): SignetError {
  return new SignetError("AUDIT_UNAVAILABLE", message, { reason });
}

/**
 * The WHERE clause, ORDER and LIMIT of a query, with placeholders from `placeholder(n)` (`?` for
 * SQLite, `$n` for PostgreSQL) and the values to bind: filters are always bound, never SQL text.
 */
export function auditQuerySql(
  query: AuditQuery,
  placeholder: (index: number) => string,
): { where: string; order: string; limit: number; params: (string | number)[] } {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  const filter = (column: string, operator: string, value: string | number | undefined): void => {
    if (value === undefined) return;
    params.push(value);
    clauses.push(`${column} ${operator} ${placeholder(params.length)}`);
  };
  filter("type", "=", query.eventType);
  filter("actor", "=", query.actor);
  filter("target", "=", query.target);
  filter("outcome", "=", query.outcome);
  filter("code", "=", query.code);
  filter("id", "=", query.id);
  filter("ts", ">=", query.sinceMicros);
  filter("ts", "<", query.untilMicros);
  filter("seq", ">", query.afterSeq);
  filter("seq", "<", query.beforeSeq);
  return {
    where: clauses.length === 0 ? "" : ` WHERE ${clauses.join(" AND ")}`,
    order: query.newestFirst === true ? "DESC" : "ASC",
    limit: Math.min(Math.max(1, Math.floor(query.limit ?? 100)), MAX_QUERY_LIMIT),
    params,
  };
}

/** The first query column of a row that disagrees with its hashed bytes, as a problem. */
export function columnMismatch(row: AuditRow): AuditProblem | undefined {
  let entry;
  try {
    entry = parseAuditEntry(row.bytes);
  } catch {
    return undefined; // the chain check reports bytes that are not an entry
  }
  const expected: Record<string, unknown> = {
    seq: entry.seq,
    id: entry.id,
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

/** The verifier's report, or the column problem instead when it concerns an earlier entry. */
export function withColumnProblem(
  report: AuditVerifyReport,
  mismatch: AuditProblem | undefined,
): AuditVerifyReport {
  if (mismatch === undefined) return report;
  const reported = report.problem?.seq;
  if (!report.ok && (reported === undefined || reported <= mismatch.seq!)) return report;
  return { ...report, ok: false, problem: mismatch };
}
