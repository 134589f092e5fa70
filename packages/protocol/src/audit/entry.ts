// Audit entries: the typed record, the canonical bytes that are stored and hashed, and the entry hash.
//
// An entry is stored as the RFC 8785 canonical JSON of its fields (everything but `hash`). Those bytes
// are what the runtime keeps, exports and hashes, so a verifier hashes bytes and never canonicalizes
// again. The entry hash is the RFC 9162 leaf hash of the entry, with a domain line in the leaf data:
//
//   hash = SHA-256(0x00 ‖ "signet/1 audit-entry\n" ‖ bytes)
//
// One SHA-256 per entry then serves both the hash chain (`prev_hash`) and the Merkle tree, and the
// domain line keeps an entry hash from ever being taken for an envelope hash or any other Signet hash.
//
// The serializer below writes the fixed members directly in their (known) canonical order and calls
// the generic canonicalizer only for the free-form ones (params, metadata, an envelope header); a
// property test holds its output to `canonicalize` byte for byte.
import { hash } from "node:crypto";
import type { ContentHash } from "../crypto/content-hash.js";
import { KEY_ID_PATTERN, SIGNATURE_PATTERN } from "../envelope/fields.js";
import { SignetError } from "../errors/signet-error.js";
import { type JsonValue, canonicalize, needsEscaping } from "../json/canonical-json.js";
import { type Digest, digestToContentHash } from "./digest.js";

/** The domain line that starts every entry's leaf data. */
export const AUDIT_ENTRY_DOMAIN = "signet/1 audit-entry\n";

/** What an entry says happened. */
export const AUDIT_OUTCOMES = ["allow", "deny", "success", "failure", "error"] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * The event types the runtime records. Other types matching {@link AUDIT_EVENT_TYPE_PATTERN} are
 * accepted, so a new kind of event needs no format change.
 */
export const AUDIT_EVENT_TYPES = [
  "invocation",
  "invocation_result",
  "auth_failure",
  "policy_denied",
  "rate_limited",
  "key_rotated",
  "key_revoked",
  "agent_deployed",
  "policy_reloaded",
  "admin_action",
  "audit_pruned",
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** Event types: lower-case words joined by `_` or `.`, at most 64 characters. */
export const AUDIT_EVENT_TYPE_PATTERN = /^[a-z][a-z0-9_.]{0,63}$/;
/** Entry ids: UUIDv7 in practice; any 1..128 characters of this alphabet. */
export const AUDIT_ENTRY_ID_PATTERN = /^[0-9A-Za-z][0-9A-Za-z._:-]{0,127}$/;
/** Error codes as the registry spells them. */
export const AUDIT_ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;
/** RFC 3339 UTC with exactly six fractional digits: `2026-11-22T10:00:00.123456Z`. */
export const AUDIT_TIME_PATTERN =
  /^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z$/;

/** The `prev_hash` of the first entry of a log: 32 zero bytes. */
export const AUDIT_GENESIS_HASH: ContentHash = `sha256:${"0".repeat(64)}`;

/** Longest actor, target or rule name, in UTF-16 code units. */
const MAX_NAME_LENGTH = 1024;
/** Most rules one entry names. */
const MAX_RULES = 1024;
const SHA256_HASH = /^sha256:[0-9a-f]{64}$/;

/**
 * A signed envelope as the audit keeps it: enough to check non-repudiation later without the body.
 * With `header` (the envelope minus `body` and `sig`), anyone can recompute the signing input, check
 * `hash` and verify `sig` against the sender's key; `header.body_hash` then binds the absent body.
 */
export interface AuditEnvelopeRef {
  /** The envelope hash (SHA-256 of its signing input). */
  readonly hash: ContentHash;
  /** The signed header, when the runtime keeps it. */
  readonly header?: { readonly [key: string]: JsonValue };
  /** The envelope's message id. */
  readonly id: string;
  /** The signer's key id. */
  readonly kid: string;
  /** The envelope's signature (base64url). */
  readonly sig: string;
}

/** The hashed members of an entry: everything but `hash`. Absent optional members are omitted. */
export interface AuditEntryFields {
  /** Position in the log, from 0; also the entry's Merkle leaf index. */
  readonly seq: number;
  readonly id: string;
  /** RFC 3339 UTC with microseconds (see {@link formatAuditTime}). */
  readonly time: string;
  readonly type: string;
  /** Who acted: an agent id, an operator, or what an unauthenticated caller claimed. */
  readonly actor?: string;
  /** What was acted on: `tool:NAME`, `agent:ID`, `capability:NAME`, or an admin resource. */
  readonly target?: string;
  readonly outcome: AuditOutcome;
  /** The error code of a refusal or failure. */
  readonly code?: string;
  /** The policy rules that decided. */
  readonly rules?: readonly string[];
  readonly request?: AuditEnvelopeRef;
  readonly result?: AuditEnvelopeRef;
  /** Parameters after redaction. */
  readonly params?: JsonValue;
  readonly metadata?: { readonly [key: string]: JsonValue };
  /** The previous entry's hash ({@link AUDIT_GENESIS_HASH} for seq 0). */
  readonly prev_hash: ContentHash;
}

/** An entry with its hash. */
export interface AuditEntry extends AuditEntryFields {
  readonly hash: ContentHash;
}

/** An entry ready to store: its canonical bytes and their hash. */
export interface EncodedAuditEntry {
  /** The canonical JSON of the fields, UTF-8: stored and exported exactly as is. */
  readonly bytes: Buffer;
  /** SHA-256(0x00 ‖ domain ‖ bytes): the chain link and the Merkle leaf hash. */
  readonly hash: ContentHash;
}

/**
 * The content members without `seq` and `prev_hash`, which the chain supplies: passing them apart
 * spares the appender an object spread per entry (which costs more than the rest of the checks).
 */
type AuditEntryContent = Omit<AuditEntryFields, "seq" | "prev_hash">;

function invalid(field: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid audit entry: ${field}`, { reason: "audit_entry" });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkName(value: unknown, field: string): void {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_NAME_LENGTH) invalid(field);
}

function checkEnvelopeRef(value: unknown, field: string): void {
  if (!isPlainObject(value)) return invalid(field);
  if (typeof value.hash !== "string" || !SHA256_HASH.test(value.hash)) invalid(`${field}.hash`);
  if (typeof value.id !== "string" || !AUDIT_ENTRY_ID_PATTERN.test(value.id)) invalid(`${field}.id`);
  if (typeof value.kid !== "string" || !KEY_ID_PATTERN.test(value.kid)) invalid(`${field}.kid`);
  if (typeof value.sig !== "string" || !SIGNATURE_PATTERN.test(value.sig)) invalid(`${field}.sig`);
  if (value.header !== undefined && !isPlainObject(value.header)) invalid(`${field}.header`);
}

/**
 * Checks every member's type and form. The serializer writes pattern-checked strings without
 * escaping, so this check is what makes that safe; encoding and parsing share it, so whatever
 * encodes also parses back.
 */
function checkFields(fields: AuditEntryContent, seq: unknown): void {
  const f = fields as unknown as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) invalid("seq");
  if (typeof f.id !== "string" || !AUDIT_ENTRY_ID_PATTERN.test(f.id)) invalid("id");
  if (typeof f.time !== "string" || !AUDIT_TIME_PATTERN.test(f.time)) invalid("time");
  if (typeof f.type !== "string" || !AUDIT_EVENT_TYPE_PATTERN.test(f.type)) invalid("type");
  if (f.actor !== undefined) checkName(f.actor, "actor");
  if (f.target !== undefined) checkName(f.target, "target");
  if (!(AUDIT_OUTCOMES as readonly unknown[]).includes(f.outcome)) invalid("outcome");
  if (f.code !== undefined && (typeof f.code !== "string" || !AUDIT_ERROR_CODE_PATTERN.test(f.code))) {
    invalid("code");
  }
  if (f.rules !== undefined) {
    if (!Array.isArray(f.rules) || f.rules.length > MAX_RULES) invalid("rules");
    for (const rule of f.rules as unknown[]) checkName(rule, "rules");
  }
  if (f.request !== undefined) checkEnvelopeRef(f.request, "request");
  if (f.result !== undefined) checkEnvelopeRef(f.result, "result");
  if (f.metadata !== undefined && !isPlainObject(f.metadata)) invalid("metadata");
}

/** `prev_hash` is checked last, after every other member, as the members are. */
function checkPrevHash(prevHash: unknown): void {
  if (typeof prevHash !== "string" || !SHA256_HASH.test(prevHash)) invalid("prev_hash");
}

/** A free-form value as canonical JSON; its refusal names the member it came from. */
function freeForm(value: unknown, field: string): string {
  try {
    return canonicalize(value);
  } catch (error) {
    throw new SignetError(
      "INVALID_REQUEST",
      `Invalid audit entry: ${field} has no canonical JSON form`,
      { reason: "audit_entry" },
      { cause: error },
    );
  }
}

/** A free-form string as canonical JSON: quoted as is unless it needs escapes (or may hold a lone surrogate). */
function quote(value: string, field: string): string {
  return needsEscaping(value) ? freeForm(value, field) : `"${value}"`;
}

function envelopeRefText(ref: AuditEnvelopeRef, field: string): string {
  const header = ref.header === undefined ? "" : `"header":${freeForm(ref.header, `${field}.header`)},`;
  return `{"hash":"${ref.hash}",${header}"id":"${ref.id}","kid":"${ref.kid}","sig":"${ref.sig}"}`;
}

/**
 * The canonical JSON text of an entry's fields, the same text `canonicalize` would produce for them.
 * Members are written in RFC 8785 key order, which for this fixed set is known in advance:
 * actor, code, id, metadata, outcome, params, prev_hash, request, result, rules, seq, target, time, type.
 * Throws `INVALID_REQUEST` (reason `audit_entry`) naming the first bad member.
 */
export function auditEntryText(fields: AuditEntryFields): string {
  return entryText(fields, fields.seq, fields.prev_hash, false);
}

/**
 * `prevHashChecked` is true only for the chain's own head hash, which it made (or restored after
 * checking it): its form needs no second look on every append.
 */
function entryText(
  fields: AuditEntryContent,
  seq: number,
  prevHash: string,
  prevHashChecked: boolean,
): string {
  checkFields(fields, seq);
  if (!prevHashChecked) checkPrevHash(prevHash);
  let out = "{";
  if (fields.actor !== undefined) out += `"actor":${quote(fields.actor, "actor")},`;
  if (fields.code !== undefined) out += `"code":"${fields.code}",`;
  out += `"id":"${fields.id}",`;
  if (fields.metadata !== undefined) out += `"metadata":${freeForm(fields.metadata, "metadata")},`;
  out += `"outcome":"${fields.outcome}",`;
  if (fields.params !== undefined) out += `"params":${freeForm(fields.params, "params")},`;
  out += `"prev_hash":"${prevHash}",`;
  if (fields.request !== undefined) out += `"request":${envelopeRefText(fields.request, "request")},`;
  if (fields.result !== undefined) out += `"result":${envelopeRefText(fields.result, "result")},`;
  if (fields.rules !== undefined) {
    out += '"rules":[';
    for (let i = 0; i < fields.rules.length; i++) {
      if (i > 0) out += ",";
      out += quote(fields.rules[i]!, "rules");
    }
    out += "],";
  }
  out += `"seq":${seq},`;
  if (fields.target !== undefined) out += `"target":${quote(fields.target, "target")},`;
  return `${out}"time":"${fields.time}","type":"${fields.type}"}`;
}

// The leaf-hash input is built in one reused buffer: 0x00, the domain line, then the entry bytes.
const LEAF_PREFIX = Buffer.from(`\u0000${AUDIT_ENTRY_DOMAIN}`, "latin1");
const PREFIX_LENGTH = LEAF_PREFIX.length;
let leafInput = new Uint8Array(8192);
leafInput.set(LEAF_PREFIX);
// Views of leafInput by length, made once each: hashing a fresh subarray per entry costs an allocation
// that the verifier's loop notices. Entry lengths cluster, so few are ever made.
let leafViews: (Uint8Array | undefined)[] = [];

/** Makes room for `length` bytes after the prefix. */
function reserve(length: number): Uint8Array {
  if (PREFIX_LENGTH + length > leafInput.length) {
    let size = leafInput.length;
    while (size < PREFIX_LENGTH + length) size *= 2;
    leafInput = new Uint8Array(size);
    leafInput.set(LEAF_PREFIX);
    leafViews = [];
  }
  return leafInput;
}

/** The hash of the first `length` bytes of the leaf input. */
function leafDigest(length: number): Digest {
  let view = leafViews[length];
  if (view === undefined) {
    view = leafInput.subarray(0, length);
    leafViews[length] = view;
  }
  return hash("sha256", view, "binary");
}

/** The entry hash of stored bytes, as a latin1 digest (the verifier's hot path). */
export function entryDigest(bytes: Uint8Array, start = 0, end = bytes.length): Digest {
  const input = reserve(end - start);
  // A plain Uint8Array view and TypedArray#set: Buffer#copy and Buffer#subarray add argument handling
  // and a Buffer allocation per call.
  input.set(
    start === 0 && end === bytes.length
      ? bytes
      : new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start),
    PREFIX_LENGTH,
  );
  return leafDigest(PREFIX_LENGTH + end - start);
}

// Entries are encoded into a shared slab, each right after its own copy of the leaf prefix, so the
// leaf hash reads the bytes where they were written and `bytes` is a view of them: no copy, and one
// allocation per slab instead of one per entry (Node's Buffer pool does the same for small strings,
// with a slab too small to hold many entries). A full slab is left to the entries that view it.
const SLAB_SIZE = 64 * 1024;
let slab = Buffer.alloc(SLAB_SIZE);
let slabOffset = 0;

/**
 * Encodes an entry to its bytes and digest in one pass (the appender's hot path). `prevHashChecked`
 * as for {@link entryText}.
 */
export function encodeEntryDigest(
  fields: AuditEntryContent,
  seq: number,
  prevHash: string,
  prevHashChecked = false,
): { bytes: Buffer; digest: Digest } {
  const text = entryText(fields, seq, prevHash, prevHashChecked);
  // A UTF-16 code unit takes at most three UTF-8 bytes.
  const room = PREFIX_LENGTH + text.length * 3;
  if (slabOffset + room > slab.length) {
    slab = Buffer.alloc(Math.max(SLAB_SIZE, room));
    slabOffset = 0;
  }
  const leafStart = slabOffset;
  const start = leafStart + PREFIX_LENGTH;
  slab.set(LEAF_PREFIX, leafStart);
  const end = start + slab.write(text, start, "utf8");
  slabOffset = end;
  const digest = hash("sha256", slab.subarray(leafStart, end), "binary");
  return { bytes: slab.subarray(start, end), digest };
}

/**
 * Encodes an entry: its canonical bytes (store them as they are) and its hash.
 *
 * Example:
 * ```ts
 * const { bytes, hash } = encodeAuditEntry({
 *   seq: 0, id: newMessageId(), time: formatAuditTime(nowMicros), type: "invocation",
 *   actor: "alice", target: "tool:echo", outcome: "allow", rules: ["global/allow-echo"],
 *   prev_hash: AUDIT_GENESIS_HASH,
 * });
 * ```
 */
export function encodeAuditEntry(fields: AuditEntryFields): EncodedAuditEntry {
  const { bytes, digest } = encodeEntryDigest(fields, fields.seq, fields.prev_hash);
  return { bytes, hash: digestToContentHash(digest) };
}

/** The hash of an entry's stored bytes: SHA-256(0x00 ‖ "signet/1 audit-entry\n" ‖ bytes). */
export function auditEntryHash(bytes: Uint8Array): ContentHash {
  return digestToContentHash(entryDigest(bytes));
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

const ENTRY_KEYS = new Set([
  "actor",
  "code",
  "id",
  "metadata",
  "outcome",
  "params",
  "prev_hash",
  "request",
  "result",
  "rules",
  "seq",
  "target",
  "time",
  "type",
]);
const REF_KEYS = new Set(["hash", "header", "id", "kid", "sig"]);

function notEntry(reason: string): never {
  throw new SignetError("INVALID_REQUEST", `Not an audit entry: ${reason}`, { reason: "audit_entry" });
}

/** Copies the known members of a parsed object, refusing any other. */
function pick(
  value: Record<string, unknown>,
  keys: ReadonlySet<string>,
  where: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!keys.has(key)) notEntry(`unknown member ${where}${key}`);
    out[key] = value[key];
  }
  return out;
}

/**
 * Parses stored entry bytes into the typed entry, with its hash computed from the bytes. Refuses
 * (`INVALID_REQUEST`, reason `audit_entry`) bytes that are not exactly what {@link encodeAuditEntry}
 * writes for some entry: invalid UTF-8 or JSON, unknown or ill-formed members, and any text that is
 * not the canonical form (other key order, whitespace, duplicate keys, other escapes). So the typed
 * entry is a faithful reading of what was hashed, and a checker can compare indexed columns to it.
 */
export function parseAuditEntry(bytes: Uint8Array): AuditEntry {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return notEntry("invalid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return notEntry("invalid JSON");
  }
  if (!isPlainObject(value)) return notEntry("not an object");
  const fields = pick(value, ENTRY_KEYS, "");
  for (const ref of ["request", "result"] as const) {
    const member = fields[ref];
    if (isPlainObject(member)) fields[ref] = pick(member, REF_KEYS, `${ref}.`);
  }
  const typed = fields as unknown as AuditEntryFields;
  if (auditEntryText(typed) !== text) notEntry("not in canonical form");
  return { ...typed, hash: auditEntryHash(bytes) };
}

/**
 * Formats microseconds since the Unix epoch as an entry time, RFC 3339 UTC with six fractional
 * digits. Example: `formatAuditTime(1763805600123456) === "2025-11-22T10:00:00.123456Z"`.
 */
export function formatAuditTime(epochMicros: number): string {
  if (!Number.isSafeInteger(epochMicros) || epochMicros < 0) {
    throw new SignetError("INVALID_REQUEST", "Audit time must be a non-negative integer of microseconds", {
      reason: "audit_time",
    });
  }
  const millis = Math.floor(epochMicros / 1000);
  const micros = epochMicros - millis * 1000;
  // toISOString is `YYYY-MM-DDTHH:MM:SS.mmmZ` for every year a safe integer of microseconds reaches.
  return `${new Date(millis).toISOString().slice(0, 23)}${String(micros).padStart(3, "0")}Z`;
}

/** The value of `count` decimal digits of `text` from `start` (the pattern has checked they are digits). */
function decimal(text: string, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) value = value * 10 + text.charCodeAt(i) - 0x30;
  return value;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Microseconds since the Unix epoch of an entry time; undefined when it is not one (the form is
 * wrong, or the date does not exist, as 2026-02-30). Computed from the digits: a store calls it for
 * every entry it writes, and a round trip through Date costs several times as much.
 */
export function parseAuditTime(time: string): number | undefined {
  if (!AUDIT_TIME_PATTERN.test(time)) return undefined;
  const year = decimal(time, 0, 4);
  const month = decimal(time, 5, 2);
  const day = decimal(time, 8, 2);
  if (day > daysInMonth(year, month)) return undefined;
  const seconds =
    daysFromCivil(year, month, day) * 86_400 +
    decimal(time, 11, 2) * 3600 +
    decimal(time, 14, 2) * 60 +
    decimal(time, 17, 2);
  // Milliseconds first, then microseconds: the same arithmetic (and, past 2^53, the same rounding) as
  // the Date-based definition this replaces.
  const millis = seconds * 1000 + decimal(time, 20, 3);
  return millis * 1000 + decimal(time, 23, 3);
}
