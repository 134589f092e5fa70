// The NDJSON export of an audit log: one record per line, each entry line carrying the stored bytes.
//
// Lines (every one a JSON object with one record member; records before entries):
//   {"export":{...}}                         free-form description (ignored by the verifier)
//   {"key":RuntimeKeyRecord}                 the runtime key chain, oldest first
//   {"anchor":AuditAnchor}                   when the export starts after seq 0
//   {"checkpoint":Checkpoint}                signed checkpoints, oldest first
//   {"entry":<stored bytes>,"hash":"sha256:<hex>"}   entries in seq order
// An entry line embeds the entry's stored canonical bytes verbatim, so the line is itself canonical
// JSON (a SIEM reads it as JSON) and a verifier slices the bytes out of the line without parsing.
import type { ContentHash } from "../crypto/content-hash.js";
import { SignetError } from "../errors/signet-error.js";
import { canonicalBytes, canonicalize } from "../json/canonical-json.js";
import type { Checkpoint, RuntimeKeyRecord } from "./checkpoint.js";
import {
  type AuditAnchor,
  type AuditExport,
  type AuditExportEntry,
  AuditLogVerifier,
  type AuditVerifyOptions,
  type AuditVerifyReport,
} from "./verify.js";

const ENTRY_PREFIX = Buffer.from('{"entry":');
const HASH_INFIX = Buffer.from(',"hash":"sha256:');
const LINE_END = Buffer.from('"}\n');
// `,"hash":"sha256:` + 64 hex digits + `"}`
const HASH_SUFFIX_LENGTH = HASH_INFIX.length + 64 + 2;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** One non-entry line of an export. */
export type AuditExportRecord =
  | { readonly export: { readonly [key: string]: unknown } }
  | { readonly key: RuntimeKeyRecord }
  | { readonly anchor: AuditAnchor }
  | { readonly checkpoint: Checkpoint };

/** The line of one entry (with its newline): `{"entry":<bytes>,"hash":"<hash>"}`. */
export function auditExportEntryLine(bytes: Uint8Array, hash: ContentHash): Buffer {
  const out = Buffer.allocUnsafe(
    ENTRY_PREFIX.length + bytes.length + HASH_INFIX.length + 64 + LINE_END.length,
  );
  let offset = ENTRY_PREFIX.copy(out, 0);
  out.set(bytes, offset);
  offset += bytes.length;
  offset += HASH_INFIX.copy(out, offset);
  offset += out.write(hash.slice(7), offset, 64, "latin1");
  LINE_END.copy(out, offset);
  return out;
}

/** The line of a key record, the anchor, a checkpoint or the description (with its newline). */
export function auditExportRecordLine(record: AuditExportRecord): string {
  return `${canonicalize(record)}\n`;
}

function badLine(line: number, why: string): never {
  throw new SignetError("INVALID_REQUEST", `Audit export line ${line}: ${why}`, { reason: "audit_export" });
}

function startsWith(bytes: Uint8Array, offset: number, prefix: Buffer): boolean {
  if (offset + prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[offset + i] !== prefix[i]) return false;
  return true;
}

/** Where an entry line's bytes and recorded hash sit. */
interface EntrySpan {
  start: number;
  end: number;
  /** Offset of the recorded hash's 64 hex digits, or -1 when the line records none. */
  hash: number;
}

/** Splits an entry line [start, end) into its entry bytes and recorded hash (see the line format). */
function entrySpan(bytes: Uint8Array, start: number, end: number, span: EntrySpan): void {
  span.start = start + ENTRY_PREFIX.length;
  const suffix = end - HASH_SUFFIX_LENGTH;
  if (
    suffix > span.start &&
    startsWith(bytes, suffix, HASH_INFIX) &&
    bytes[end - 2] === 0x22 &&
    bytes[end - 1] === 0x7d
  ) {
    span.end = suffix;
    span.hash = suffix + HASH_INFIX.length;
  } else {
    span.end = end - 1; // `{"entry":<bytes>}`; whatever else is there fails as an entry
    span.hash = -1;
  }
}

/**
 * Walks the lines of an export: `onRecord` for the record lines before the first entry (parsed),
 * `onEntry` for every line from the first entry on (read in place; returning false stops the walk).
 * After the first entry only entries follow, so a line there that does not look like one is a
 * damaged entry, left to the verifier to name by its seq. Throws `INVALID_REQUEST` (reason
 * `audit_export`) for a record line that cannot be read.
 */
function readLines(
  data: Uint8Array,
  onRecord: (record: Record<string, unknown>, line: number) => void,
  onEntry: (span: EntrySpan) => boolean | void,
): void {
  const span: EntrySpan = { start: 0, end: 0, hash: -1 };
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 0;
  let pos = 0;
  let inEntries = false;
  while (pos < data.length) {
    line++;
    let end = data.indexOf(NEWLINE, pos);
    if (end < 0) end = data.length;
    const next = end + 1;
    if (end > pos && data[end - 1] === CARRIAGE_RETURN) end--;
    if (end > pos) {
      if (startsWith(data, pos, ENTRY_PREFIX)) {
        inEntries = true;
        entrySpan(data, pos, end, span);
        if (onEntry(span) === false) return;
      } else if (inEntries) {
        span.start = pos;
        span.end = end;
        span.hash = -1;
        if (onEntry(span) === false) return;
      } else {
        let value: unknown;
        try {
          value = JSON.parse(decoder.decode(data.subarray(pos, end)));
        } catch {
          badLine(line, "not JSON");
        }
        if (typeof value !== "object" || value === null || Array.isArray(value))
          badLine(line, "not an object");
        onRecord(value as Record<string, unknown>, line);
      }
    }
    pos = next;
  }
}

function collectRecord(
  record: Record<string, unknown>,
  line: number,
  into: { keys: RuntimeKeyRecord[]; checkpoints: Checkpoint[]; anchor?: AuditAnchor },
): void {
  const members = Object.keys(record);
  if (members.length !== 1) badLine(line, "a record line has exactly one member");
  const kind = members[0]!;
  const value = record[kind];
  switch (kind) {
    case "export":
      return;
    case "key":
      into.keys.push(value as RuntimeKeyRecord);
      return;
    case "checkpoint":
      into.checkpoints.push(value as Checkpoint);
      return;
    case "anchor":
      if (into.anchor !== undefined) badLine(line, "a second anchor");
      into.anchor = value as AuditAnchor;
      return;
    default:
      badLine(line, `unknown record ${JSON.stringify(kind)}`);
  }
}

/**
 * Reads an NDJSON export into an {@link AuditExport}. Entry bytes are views into `data`, not copies.
 * Record lines come first, in any order among themselves; entries follow in file order.
 */
export function parseAuditExportNdjson(data: Uint8Array): AuditExport {
  const signed: { keys: RuntimeKeyRecord[]; checkpoints: Checkpoint[]; anchor?: AuditAnchor } = {
    keys: [],
    checkpoints: [],
  };
  const entries: AuditExportEntry[] = [];
  readLines(
    data,
    (record, line) => collectRecord(record, line, signed),
    (span) => {
      const bytes = data.subarray(span.start, span.end);
      entries.push(
        span.hash < 0
          ? { bytes }
          : {
              bytes,
              hash: `sha256:${Buffer.from(data.buffer, data.byteOffset + span.hash, 64).toString("latin1")}`,
            },
      );
    },
  );
  return { ...signed, entries };
}

/**
 * Verifies an NDJSON export held in memory, reading entry lines in place: the fast path for
 * `signet audit verify --file`. Throws `INVALID_REQUEST` (reason `audit_export`) only for a record
 * line that cannot be read; everything wrong with entries is in the report.
 *
 * Example:
 * ```ts
 * const report = verifyAuditNdjson(readFileSync("audit.ndjson"), { key: runtimePublicKey });
 * ```
 */
export function verifyAuditNdjson(data: Uint8Array, options: AuditVerifyOptions): AuditVerifyReport {
  // One pass: records come before the first entry, so the verifier is built when the first entry line
  // arrives (every record line is read by then) and each entry is verified while its line is still in
  // the cache.
  const signed: { keys: RuntimeKeyRecord[]; checkpoints: Checkpoint[]; anchor?: AuditAnchor } = {
    keys: [],
    checkpoints: [],
  };
  let verifier: AuditLogVerifier | undefined;
  readLines(
    data,
    (record, line) => collectRecord(record, line, signed),
    (span) => {
      verifier ??= new AuditLogVerifier(signed, options);
      if (verifier.settled) return false;
      verifier.addEntryRange(data, span.start, span.end, span.hash < 0 ? undefined : span.hash);
      return true;
    },
  );
  verifier ??= new AuditLogVerifier(signed, options);
  return verifier.finish();
}

/**
 * Reads the JSON form of an export (`{ "keys": [...], "anchor"?: {...}, "checkpoints": [...],
 * "entries": [{ "entry": {...}, "hash": "..." }] }`, already parsed). Parsing lost the entries'
 * bytes, so each entry is canonicalized again; for entries the runtime wrote (canonical JSON) that
 * gives back exactly the stored bytes, so their hashes still verify. NDJSON is the faster form to
 * verify. Throws `INVALID_REQUEST` (reason `audit_export`) when the shape is wrong.
 */
export function auditExportFromJson(value: unknown): AuditExport {
  const document = value as Partial<Record<"keys" | "checkpoints" | "entries" | "anchor", unknown>> | null;
  if (
    typeof document !== "object" ||
    document === null ||
    !Array.isArray(document.keys) ||
    !Array.isArray(document.checkpoints) ||
    !Array.isArray(document.entries)
  ) {
    throw new SignetError("INVALID_REQUEST", "Not an audit export", { reason: "audit_export" });
  }
  const entries = document.entries.map((item: unknown, index): AuditExportEntry => {
    const record = item as { entry?: unknown; hash?: unknown } | null;
    let bytes: Buffer;
    try {
      bytes = canonicalBytes(record?.entry);
    } catch {
      // A value with no canonical form cannot be an entry; the verifier names it by its seq.
      bytes = Buffer.from(`entries[${index}]`);
    }
    return typeof record?.hash === "string" ? { bytes, hash: record.hash } : { bytes };
  });
  return {
    keys: document.keys as RuntimeKeyRecord[],
    checkpoints: document.checkpoints as Checkpoint[],
    ...(document.anchor === undefined ? {} : { anchor: document.anchor as AuditAnchor }),
    entries,
  };
}
