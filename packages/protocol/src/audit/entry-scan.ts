// Finds `seq` and `prev_hash` in stored entry bytes without parsing them: the verifier's hot path.
//
// Verifying a chain needs two members of each entry. JSON.parse would cost more than hashing the
// entry; searching for `"prev_hash":` would be fooled by the same key nested in params or metadata.
// This scan walks the top-level members, reads the two it needs, and skips every other value by
// tracking strings and nesting only. It proves nothing about the rest of the entry: the hash covers
// the bytes, and parseAuditEntry is the full check when one is wanted.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const PREV_HASH_KEY = Buffer.from("prev_hash");
const SEQ_KEY = Buffer.from("seq");
const SHA256_PREFIX = Buffer.from('"sha256:');
/** How far keyEndQuote looks byte by byte before it calls indexOf. */
const KEY_LOOP_BYTES = 16;

/** What the scan found; reused between calls so the hot loop allocates nothing. */
export interface EntryFrame {
  /** The entry's `seq`. */
  seq: number;
  /** Offset (into the scanned array) of the 64 hex digits of `prev_hash`. */
  prevHashOffset: number;
}

function keyIs(bytes: Uint8Array, start: number, end: number, key: Buffer): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[start + i] !== key[i]) return false;
  return true;
}

/**
 * The next quote at or after `from`, or -1: what `bytes.indexOf(QUOTE, from)` returns. Member names
 * are a few bytes long, and a loop finds their end sooner than a call into indexOf does.
 */
function keyEndQuote(bytes: Uint8Array, from: number): number {
  const limit = Math.min(bytes.length, from + KEY_LOOP_BYTES);
  for (let i = from; i < limit; i++) if (bytes[i] === QUOTE) return i;
  return limit < bytes.length ? bytes.indexOf(QUOTE, limit) : -1;
}

/** Offset just past the string whose opening quote is at `pos`, or -1. */
function skipString(bytes: Uint8Array, pos: number, end: number): number {
  let i = pos + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, i);
    if (quote < 0 || quote >= end) return -1;
    // The quote is escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    while (quote - 1 - backslashes > pos && bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/** Offset just past the value starting at `pos`, or -1. */
function skipValue(bytes: Uint8Array, pos: number, end: number): number {
  const first = bytes[pos];
  if (first === QUOTE) return skipString(bytes, pos, end);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    let i = pos;
    while (i < end) {
      const c = bytes[i]!;
      if (c === QUOTE) {
        i = skipString(bytes, i, end);
        if (i < 0) return -1;
        continue;
      }
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // A number, true, false or null: runs to the next delimiter.
  let i = pos;
  while (i < end) {
    const c = bytes[i]!;
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET) break;
    i++;
  }
  return i > pos ? i : -1;
}

/**
 * Reads `seq` and the position of `prev_hash` from the entry bytes in [start, end) into `frame`.
 * Returns false when the bytes are not a JSON object with exactly one canonical `seq` (a safe
 * non-negative integer) and exactly one `prev_hash` of the form `"sha256:<64 hex digits>"`.
 */
export function scanEntryFrame(bytes: Uint8Array, start: number, end: number, frame: EntryFrame): boolean {
  if (end - start < 2 || bytes[start] !== OPEN_BRACE || bytes[end - 1] !== CLOSE_BRACE) return false;
  let seq = -1;
  let prevHashOffset = -1;
  let pos = start + 1;
  for (;;) {
    if (bytes[pos] !== QUOTE) return false;
    const keyEnd = keyEndQuote(bytes, pos + 1);
    if (keyEnd < 0 || keyEnd >= end || bytes[keyEnd + 1] !== COLON) return false;
    const keyStart = pos + 1;
    pos = keyEnd + 2;
    if (keyIs(bytes, keyStart, keyEnd, PREV_HASH_KEY)) {
      if (prevHashOffset >= 0 || !keyIs(bytes, pos, pos + 8, SHA256_PREFIX)) return false;
      if (bytes[pos + 72] !== QUOTE) return false;
      prevHashOffset = pos + 8;
      pos += 73;
    } else if (keyIs(bytes, keyStart, keyEnd, SEQ_KEY)) {
      if (seq >= 0) return false;
      let value = 0;
      let digits = 0;
      for (;;) {
        const c = bytes[pos]!;
        if (c < 0x30 || c > 0x39) break;
        if (digits === 1 && value === 0) return false; // a leading zero
        value = value * 10 + (c - 0x30);
        digits++;
        pos++;
      }
      if (digits === 0 || !Number.isSafeInteger(value)) return false;
      seq = value;
    } else {
      pos = skipValue(bytes, pos, end - 1);
      if (pos < 0) return false;
    }
    const next = bytes[pos];
    if (next === COMMA) {
      pos++;
      continue;
    }
    if (next !== CLOSE_BRACE || pos !== end - 1) return false;
    break;
  }
  if (seq < 0 || prevHashOffset < 0) return false;
  frame.seq = seq;
  frame.prevHashOffset = prevHashOffset;
  return true;
}
