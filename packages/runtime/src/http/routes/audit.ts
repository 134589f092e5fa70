// The audit log over HTTP: query, entries, checkpoints, proofs, export and verify (docs/audit.md).
//
//   GET  /v1/audit                          query (audit:read): filters are bound parameters, never SQL
//   GET  /v1/audit/entries/:seq             one entry with its stored canonical text and hash
//   GET  /v1/audit/checkpoints              signed checkpoints and the runtime key chain
//   GET  /v1/audit/proofs/inclusion         ?seq=&tree_size= (default: the latest checkpoint)
//   GET  /v1/audit/proofs/consistency       ?first=&second=
//   GET  /v1/audit/export                   ?format=ndjson|json&from= streamed (audit:export)
//   POST /v1/audit/verify                   verifies the live log (audit:read)
import { Readable } from "node:stream";
import { AUDIT_OUTCOMES, SignetError, parseAuditTime } from "@signet/protocol";
import type { FastifyInstance } from "fastify";
import type { AuditLog, AuditQuery } from "../../audit/audit-log.js";
import type { EventRecorder } from "../../audit/audit-recorder.js";
import { principalOf } from "../server.js";

function invalid(message: string): never {
  throw new SignetError("INVALID_REQUEST", message, { reason: "query" });
}

type Query = Record<string, string | undefined>;

function text(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "" || value.length > 1024)
    invalid(`${name}: 1..1024 characters`);
  return value;
}

function integer(query: Query, name: string): number | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^[0-9]{1,15}$/.test(value)) invalid(`${name}: a non-negative integer`);
  return Number(value);
}

const UNIT_MICROS: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86_400e6 };

/** `24h`, `15m`, `7d`, `30s` in microseconds. */
export function parseDurationMicros(value: string): number | undefined {
  const match = /^([0-9]{1,6})([smhd])$/.exec(value);
  return match === null ? undefined : Number(match[1]) * UNIT_MICROS[match[2]!]!;
}

/** RFC 3339 (any precision, `Z` or an offset) in microseconds since the epoch. */
function time(query: Query, name: string): number | undefined {
  const value = text(query, name);
  if (value === undefined) return undefined;
  const exact = parseAuditTime(value);
  if (exact !== undefined) return exact;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    invalid(`${name}: an RFC 3339 time, e.g. 2026-11-22T10:00:00Z`);
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) invalid(`${name}: an RFC 3339 time, e.g. 2026-11-22T10:00:00Z`);
  return ms * 1000;
}

/** The query string of GET /v1/audit as an AuditQuery, refusing anything malformed. */
export function auditQueryFrom(query: Query, nowMicros: number): AuditQuery {
  const outcome = text(query, "outcome");
  if (outcome !== undefined && !(AUDIT_OUTCOMES as readonly string[]).includes(outcome)) {
    invalid(`outcome: one of ${AUDIT_OUTCOMES.join(", ")}`);
  }
  const order = text(query, "order") ?? "desc";
  if (order !== "asc" && order !== "desc") invalid("order: asc or desc");
  const last = text(query, "last");
  const lastMicros = last === undefined ? undefined : parseDurationMicros(last);
  if (last !== undefined && lastMicros === undefined) invalid("last: a duration such as 30s, 15m, 24h or 7d");
  const since = time(query, "since");
  if (since !== undefined && lastMicros !== undefined) invalid("since and last: give one of them");
  const limit = integer(query, "limit");
  if (limit !== undefined && (limit < 1 || limit > 10_000)) invalid("limit: 1..10000");
  const result: Record<string, unknown> = {
    eventType: text(query, "event_type"),
    actor: text(query, "actor"),
    target: text(query, "target"),
    outcome: outcome,
    code: text(query, "code"),
    id: text(query, "id"),
    sinceMicros: since ?? (lastMicros === undefined ? undefined : nowMicros - lastMicros),
    untilMicros: time(query, "until"),
    afterSeq: integer(query, "after_seq"),
    beforeSeq: integer(query, "before_seq"),
    newestFirst: order === "desc",
    limit: limit ?? 100,
  };
  for (const key of Object.keys(result)) if (result[key] === undefined) delete result[key];
  return result;
}

/**
 * The JSON export, streamed: the NDJSON records gathered into one document whose entries embed the
 * stored bytes verbatim (`{"export":…,"keys":[…],"anchor":…,"checkpoints":[…],"entries":[…]}`).
 */
export async function* jsonExport(lines: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  const head: Record<string, unknown> & { keys: unknown[]; checkpoints: unknown[] } = {
    keys: [],
    checkpoints: [],
  };
  let started = false;
  let first = true;
  for await (const line of lines) {
    if (!started && line.subarray(0, 9).toString("latin1") !== '{"entry":') {
      const record = JSON.parse(line.toString("utf8")) as Record<string, unknown>;
      if ("key" in record) head.keys.push(record.key);
      else if ("checkpoint" in record) head.checkpoints.push(record.checkpoint);
      else Object.assign(head, record);
      continue;
    }
    if (!started) {
      started = true;
      yield Buffer.from(`${JSON.stringify(head).slice(0, -1)},"entries":[`);
    }
    yield Buffer.concat([first ? Buffer.alloc(0) : Buffer.from(","), line.subarray(0, line.length - 1)]);
    first = false;
  }
  if (!started) yield Buffer.from(`${JSON.stringify(head).slice(0, -1)},"entries":[`);
  yield Buffer.from("]}\n");
}

export function registerAuditRoutes(
  app: FastifyInstance,
  deps: { log: AuditLog; events: EventRecorder; nowMicros?: () => number },
): void {
  const nowMicros = deps.nowMicros ?? (() => Date.now() * 1000);
  const read = { config: { guard: { permission: "audit:read" } } } as const;

  app.get<{ Querystring: Query }>("/v1/audit", read, async (request) => {
    const query = auditQueryFrom(request.query, nowMicros());
    const entries = await deps.log.query(query);
    const limit = query.limit ?? 100;
    const last = entries.at(-1);
    return {
      entries,
      // A cursor for the next page in the same order, when this page was full.
      ...(entries.length === limit && last !== undefined
        ? { next: query.newestFirst === true ? { before_seq: last.seq } : { after_seq: last.seq } }
        : {}),
      tree_size: deps.log.size,
    };
  });

  app.get<{ Params: { seq: string } }>("/v1/audit/entries/:seq", read, async (request) => {
    const seq = integer({ seq: request.params.seq }, "seq")!;
    const [entry] = await deps.log.query({ afterSeq: seq - 1, beforeSeq: seq + 1, limit: 1 });
    if (entry === undefined) throw new SignetError("NOT_FOUND", `No audit entry ${seq}`);
    return { entry };
  });

  app.get<{ Querystring: Query }>("/v1/audit/checkpoints", read, async (request) => {
    const from = integer(request.query, "from_size") ?? 0;
    return {
      keys: await deps.log.keys(),
      checkpoints: await deps.log.checkpoints(from),
      tree_size: deps.log.size,
      first_seq: deps.log.firstSeq,
    };
  });

  app.get<{ Querystring: Query }>("/v1/audit/proofs/inclusion", read, async (request) => {
    const seq = integer(request.query, "seq");
    if (seq === undefined) invalid("seq: required");
    const treeSize = integer(request.query, "tree_size");
    const [entry] = await deps.log.query({ afterSeq: seq - 1, beforeSeq: seq + 1, limit: 1 });
    if (entry === undefined) throw new SignetError("NOT_FOUND", `No audit entry ${seq}`);
    const proof = await deps.log.inclusionProof(seq, treeSize);
    const [checkpoint] = await deps.log.checkpoints(proof.tree_size);
    return {
      entry_hash: entry.hash,
      proof,
      ...(checkpoint?.tree_size === proof.tree_size ? { checkpoint } : {}),
    };
  });

  app.get<{ Querystring: Query }>("/v1/audit/proofs/consistency", read, async (request) => {
    const first = integer(request.query, "first");
    const second = integer(request.query, "second");
    if (first === undefined || second === undefined) invalid("first and second: required");
    return { proof: await deps.log.consistencyProof(first, second) };
  });

  app.get<{ Querystring: Query }>(
    "/v1/audit/export",
    { config: { guard: { permission: "audit:export" } } },
    async (request, reply) => {
      const format = text(request.query, "format") ?? "ndjson";
      if (format !== "ndjson" && format !== "json") invalid("format: ndjson or json");
      const from = integer(request.query, "from");
      const caller = principalOf(request).id;
      await deps.events.record({
        type: "admin_action",
        actor: caller,
        target: "audit",
        outcome: "success",
        metadata: { action: "audit_export", format, ...(from === undefined ? {} : { from }) },
      });
      const lines = deps.log.exportNdjson(from === undefined ? {} : { fromSeq: from });
      // Fail before the first byte when the export cannot start (a bad `from`).
      const firstLine = await lines.next();
      async function* all(): AsyncGenerator<Buffer, void, undefined> {
        if (firstLine.done !== true) yield firstLine.value;
        yield* lines;
      }
      reply
        .header("content-type", format === "ndjson" ? "application/x-ndjson" : "application/json")
        .header("x-audit-tree-size", String(deps.log.size));
      return reply.send(Readable.from(format === "ndjson" ? all() : jsonExport(all())));
    },
  );

  app.post("/v1/audit/verify", read, async (request) => {
    const report = await deps.log.verify();
    await deps.events.record({
      type: "admin_action",
      actor: principalOf(request).id,
      target: "audit",
      outcome: "success",
      metadata: { action: "audit_verify", ok: report.ok, tree_size: report.tree_size },
    });
    return { report };
  });
}
