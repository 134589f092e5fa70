// A recognizer for text that already is RFC 8785 canonical JSON: the strict parser's fast path.
//
// Every Signet sender writes canonical JSON, so the verifier's common case is a canonical document.
// For such a document JSON.parse (native) builds exactly the value the strict parser would, and
// this scan proves what JSON.parse does not check: no whitespace, canonical numbers and string
// escapes, keys in strictly ascending order (hence no duplicates), no forbidden keys, bounded depth.
// It builds nothing but the top-level member spans. It is sound, not complete: whenever it cannot
// vouch for the text (whatever the reason, including invalid JSON) it answers undefined and the
// strict parser decides, with its own errors. It runs on any text but is only right about valid
// JSON, which is why its answer is used only when JSON.parse accepts the same text.
import type { MemberSpan } from "./strict-json.js";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;

/** The scan recurses; deeper documents are left to the strict parser. */
const SCAN_MAX_DEPTH = 512;

/** True when the key text [start, end) is `__proto__`, `constructor` or `prototype`. */
function isForbiddenKey(text: string, start: number, end: number): boolean {
  const length = end - start;
  if (length === 9) return text.startsWith("__proto__", start) || text.startsWith("prototype", start);
  return length === 11 && text.startsWith("constructor", start);
}

/** True when [aStart, aEnd) sorts strictly before [bStart, bEnd) by UTF-16 code units. */
function sortsBefore(text: string, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const common = aLength < bLength ? aLength : bLength;
  for (let k = 0; k < common; k++) {
    const diff = text.charCodeAt(aStart + k) - text.charCodeAt(bStart + k);
    if (diff !== 0) return diff < 0;
  }
  return aLength < bLength;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1; // upper-case hex is valid JSON but not canonical
}

class CanonicalScanner {
  readonly members: MemberSpan[] = [];
  /**
   * Offset of the first backslash at or after some earlier position (text.length when none): one
   * search serves every string up to it, so strings without escapes cost a single indexOf.
   */
  private nextEscape = -1;

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  /** The offset just past the canonical value at `pos`, or -1. */
  value(pos: number, depth: number): number {
    const text = this.text;
    const c = text.charCodeAt(pos);
    switch (c) {
      case QUOTE:
        return this.string(pos);
      case 0x7b: // {
        return this.object(pos, depth + 1);
      case 0x5b: // [
        return this.array(pos, depth + 1);
      case 0x74: // t
        return text.startsWith("true", pos) ? pos + 4 : -1;
      case 0x66: // f
        return text.startsWith("false", pos) ? pos + 5 : -1;
      case 0x6e: // n
        return text.startsWith("null", pos) ? pos + 4 : -1;
      default:
        return c === 0x2d || isDigit(c) ? this.number(pos) : -1;
    }
  }

  /** Offset of the first backslash at or after `from`, or text.length. */
  escapeFrom(from: number): number {
    if (this.nextEscape < from) {
      const found = this.text.indexOf("\\", from);
      this.nextEscape = found < 0 ? this.text.length : found;
    }
    return this.nextEscape;
  }

  string(pos: number): number {
    const text = this.text;
    let from = pos + 1;
    for (;;) {
      const close = text.indexOf('"', from);
      if (close < 0) return -1;
      const escape = this.escapeFrom(from);
      if (escape > close) return close + 1;
      // JSON.stringify writes \" \\ \b \f \n \r \t, and \u00xx (lower-case hex) for the other
      // controls; any other escape means the text is not canonical.
      const e = text.charCodeAt(escape + 1);
      if (
        e === QUOTE ||
        e === BACKSLASH ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        from = escape + 2;
      } else if (
        e === 0x75 &&
        text.charCodeAt(escape + 2) === 0x30 &&
        text.charCodeAt(escape + 3) === 0x30 &&
        (text.charCodeAt(escape + 4) === 0x30 || text.charCodeAt(escape + 4) === 0x31)
      ) {
        const low = hexValue(text.charCodeAt(escape + 5));
        if (low < 0) return -1;
        const unit = (text.charCodeAt(escape + 4) - 0x30) * 16 + low;
        if (unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d) return -1;
        from = escape + 6;
      } else {
        return -1;
      }
    }
  }

  number(pos: number): number {
    const text = this.text;
    let i = pos;
    if (text.charCodeAt(i) === 0x2d) i++;
    const digits = i;
    while (isDigit(text.charCodeAt(i))) i++;
    const integerDigits = i - digits;
    let c = text.charCodeAt(i);
    if (c !== 0x2e && c !== 0x65 && c !== 0x45) {
      // A plain integer of up to 15 digits is exact in a double and prints as written, except -0
      // (printed 0). Leading zeros are not JSON, so JSON.parse refuses them later.
      if (integerDigits >= 1 && integerDigits <= 15) {
        return integerDigits === 1 && i - pos === 2 && text.charCodeAt(digits) === 0x30 ? -1 : i;
      }
    } else {
      if (c === 0x2e) {
        const fraction = ++i;
        while (isDigit(text.charCodeAt(i))) i++;
        c = text.charCodeAt(i);
        const fractionDigits = i - fraction;
        // A decimal fraction of at most 15 significant digits, without a trailing zero, is printed as
        // written when it lies in [1e-6, 1e21): no other decimal of that few digits names the same
        // double (DBL_DIG is 15), so it is the shortest round-trip form, and that range is where
        // ECMAScript prints plain decimals rather than exponents.
        if (c !== 0x65 && c !== 0x45 && fractionDigits > 0 && text.charCodeAt(i - 1) !== 0x30) {
          if (integerDigits === 1 && text.charCodeAt(digits) === 0x30) {
            let zeros = 0;
            while (text.charCodeAt(fraction + zeros) === 0x30) zeros++;
            if (zeros <= 5 && fractionDigits - zeros <= 15) return i;
          } else if (integerDigits >= 1 && integerDigits + fractionDigits <= 15) {
            return i;
          }
        }
      }
      if (c === 0x65 || c === 0x45) {
        i++;
        c = text.charCodeAt(i);
        if (c === 0x2b || c === 0x2d) i++;
        while (isDigit(text.charCodeAt(i))) i++;
      }
    }
    // Canonical exactly when ECMAScript prints the value back the same way (never for NaN or ±Infinity,
    // which print as "null").
    const literal = text.slice(pos, i);
    return JSON.stringify(Number(literal)) === literal ? i : -1;
  }

  array(pos: number, depth: number): number {
    if (depth > this.maxDepth) return -1;
    const text = this.text;
    let i = pos + 1;
    if (text.charCodeAt(i) === 0x5d) return i + 1;
    for (;;) {
      const end = this.value(i, depth);
      if (end < 0) return -1;
      const c = text.charCodeAt(end);
      if (c === COMMA) i = end + 1;
      else return c === 0x5d ? end + 1 : -1;
    }
  }

  object(pos: number, depth: number): number {
    if (depth > this.maxDepth) return -1;
    const text = this.text;
    const topLevel = depth === 1;
    let i = pos + 1;
    if (text.charCodeAt(i) === 0x7d) return i + 1;
    let previousStart = -1;
    let previousEnd = -1;
    for (;;) {
      if (text.charCodeAt(i) !== QUOTE) return -1;
      const keyStart = i + 1;
      const keyEnd = text.indexOf('"', keyStart);
      // Keys with escapes are rare; the strict parser decodes them.
      if (keyEnd < 0 || this.escapeFrom(keyStart) < keyEnd) return -1;
      if (previousStart >= 0 && !sortsBefore(text, previousStart, previousEnd, keyStart, keyEnd)) return -1;
      if (isForbiddenKey(text, keyStart, keyEnd)) return -1;
      if (text.charCodeAt(keyEnd + 1) !== COLON) return -1;
      const valueStart = keyEnd + 2;
      const end = this.value(valueStart, depth);
      if (end < 0) return -1;
      if (topLevel) this.members.push({ key: text.slice(keyStart, keyEnd), start: i, valueStart, end });
      previousStart = keyStart;
      previousEnd = keyEnd;
      const c = text.charCodeAt(end);
      if (c === COMMA) i = end + 1;
      else return c === 0x7d ? end + 1 : -1;
    }
  }
}

/**
 * The top-level member spans of `text` when it is canonical JSON within `maxDepth` and free of
 * forbidden keys, or undefined when the scan cannot tell. Only meaningful for text JSON.parse
 * accepts, whose lone surrogates (if any) have been ruled out by the caller.
 */
export function scanCanonicalJson(text: string, maxDepth: number): MemberSpan[] | undefined {
  const scanner = new CanonicalScanner(text, Math.min(maxDepth, SCAN_MAX_DEPTH));
  return scanner.value(0, 0) === text.length ? scanner.members : undefined;
}
