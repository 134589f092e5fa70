// A strict JSON parser for untrusted envelopes: one document, one meaning, bounded work.
//
// JSON.parse keeps the last of duplicate keys and turns "__proto__" into a prototype change, so a
// signer and a verifier could disagree about what was signed. This parser refuses both, bounds size
// and depth, and, as it goes, notes whether the text already is RFC 8785 canonical JSON so a verifier
// can hash the wire bytes instead of canonicalizing again.
import { SignetError } from "../errors/signet-error.js";
import type { JsonValue } from "./canonical-json.js";
import { scanCanonicalJson } from "./canonical-scan.js";

/** Limits for {@link parseStrictJson}. */
export interface StrictJsonLimits {
  /** Largest accepted input in UTF-8 bytes. Default 1 MiB. */
  readonly maxBytes?: number;
  /** Deepest accepted nesting of objects and arrays. Default 64. */
  readonly maxDepth?: number;
}

/** Where one member of the top-level object sits in the text (UTF-16 offsets). */
export interface MemberSpan {
  readonly key: string;
  /** Offset of the key's opening quote. */
  readonly start: number;
  /** Offset of the first character of the value. */
  readonly valueStart: number;
  /** Offset just past the value. */
  readonly end: number;
}

/** The result of {@link parseStrictJsonDocument}. */
export interface StrictJsonDocument {
  readonly value: JsonValue;
  /** True when the text is byte for byte the RFC 8785 canonical form of `value`. */
  readonly canonical: boolean;
  /** The top-level object's members in text order; empty unless the top level is an object. */
  readonly members: readonly MemberSpan[];
  /** The decoded text that was parsed (member spans index into it). */
  readonly text: string;
}

export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 64;

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
// Characters that need the slow path inside a string: escapes, raw controls (illegal), surrogates.
// eslint-disable-next-line no-control-regex -- matching raw control characters is the point
const STRING_SPECIAL = /[\\\u0000-\u001f\uD800-\uDFFF]/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

class StrictParser {
  pos = 0;
  canonical = true;
  readonly members: MemberSpan[] = [];

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  fail(reason: string): never {
    throw new SignetError("INVALID_ENVELOPE", `Invalid JSON: ${reason} at offset ${this.pos}`, {
      reason,
    });
  }

  skipWhitespace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
    if (pos !== this.pos) {
      this.canonical = false;
      this.pos = pos;
    }
  }

  parseDocument(): JsonValue {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail("trailing data");
    return value;
  }

  parseValue(depth: number): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth + 1);
      case 0x5b: // [
        return this.parseArray(depth + 1);
      case 0x22: // "
        return this.parseString();
      case 0x74: // t
        return this.parseLiteral("true", true);
      case 0x66: // f
        return this.parseLiteral("false", false);
      case 0x6e: // n
        return this.parseLiteral("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        return this.fail(Number.isNaN(c) ? "unexpected end" : "unexpected character");
    }
  }

  parseLiteral<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("unexpected character");
    this.pos += word.length;
    return value;
  }

  parseNumber(): number {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail("invalid number");
    const literal = match[0];
    const value = Number(literal);
    if (!Number.isFinite(value)) this.fail("number out of range");
    if (this.canonical && JSON.stringify(value) !== literal) this.canonical = false;
    this.pos += literal.length;
    return value;
  }

  parseString(): string {
    const text = this.text;
    const start = this.pos + 1;
    const close = text.indexOf('"', start);
    if (close < 0) this.fail("unterminated string");
    const raw = text.slice(start, close);
    if (!STRING_SPECIAL.test(raw)) {
      this.pos = close + 1;
      return raw;
    }
    return this.parseStringSlow(start);
  }

  /** Handles escapes and validates surrogates, one code unit at a time. */
  parseStringSlow(start: number): string {
    const text = this.text;
    let out = "";
    let runStart = start;
    let pos = start;
    for (;;) {
      if (pos >= text.length) {
        this.pos = pos;
        this.fail("unterminated string");
      }
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(runStart, pos);
        this.pos = pos + 1;
        return this.checkSurrogates(out, start);
      }
      if (c < 0x20) {
        this.pos = pos;
        this.fail("control character in string");
      }
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(runStart, pos);
      const e = text.charCodeAt(pos + 1);
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += "\\";
          break;
        case 0x2f:
          out += "/";
          this.canonical = false;
          break;
        case 0x62:
          out += "\b";
          break;
        case 0x66:
          out += "\f";
          break;
        case 0x6e:
          out += "\n";
          break;
        case 0x72:
          out += "\r";
          break;
        case 0x74:
          out += "\t";
          break;
        case 0x75: {
          const hex = text.slice(pos + 2, pos + 6);
          if (!HEX4.test(hex)) {
            this.pos = pos;
            this.fail("invalid unicode escape");
          }
          const unit = parseInt(hex, 16);
          out += String.fromCharCode(unit);
          // RFC 8785 writes \u00xx (lower case) only for controls without a short escape.
          const short = unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d;
          if (unit >= 0x20 || short || hex !== hex.toLowerCase()) this.canonical = false;
          pos += 6;
          runStart = pos;
          continue;
        }
        default:
          this.pos = pos;
          this.fail("invalid escape");
      }
      pos += 2;
      runStart = pos;
    }
  }

  checkSurrogates(value: string, start: number): string {
    for (let i = 0; i < value.length; i++) {
      const unit = value.charCodeAt(i);
      if (unit < 0xd800 || unit > 0xdfff) continue;
      const next = value.charCodeAt(i + 1);
      if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      this.pos = start;
      this.fail("lone surrogate in string");
    }
    return value;
  }

  parseArray(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail("nesting too deep");
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.parseValue(depth));
      this.skipWhitespace();
      const c = this.text.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      if (c === 0x5d) return out;
      this.pos--;
      this.fail("expected , or ]");
    }
  }

  parseObject(depth: number): { [key: string]: JsonValue } {
    if (depth > this.maxDepth) this.fail("nesting too deep");
    const text = this.text;
    const recordSpans = depth === 1;
    this.pos++;
    const out: { [key: string]: JsonValue } = {};
    this.skipWhitespace();
    if (text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    let previous: string | undefined;
    for (;;) {
      this.skipWhitespace();
      if (text.charCodeAt(this.pos) !== 0x22) this.fail("expected a key");
      const keyStart = this.pos;
      const key = this.parseString();
      if (FORBIDDEN_KEYS.has(key)) {
        this.pos = keyStart;
        this.fail("forbidden key");
      }
      if (Object.hasOwn(out, key)) {
        this.pos = keyStart;
        this.fail("duplicate key");
      }
      if (previous !== undefined && !(previous < key)) this.canonical = false;
      previous = key;
      this.skipWhitespace();
      if (text.charCodeAt(this.pos) !== 0x3a) this.fail("expected :");
      this.pos++;
      this.skipWhitespace();
      const valueStart = this.pos;
      out[key] = this.parseValue(depth);
      if (recordSpans) this.members.push({ key, start: keyStart, valueStart, end: this.pos });
      this.skipWhitespace();
      const c = text.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x2c) continue;
      if (c === 0x7d) return out;
      this.pos--;
      this.fail("expected , or }");
    }
  }
}

function utf8Length(text: string, limit: number): number {
  // A string's UTF-8 length is between its length and three times its length: skip the count when we can.
  if (text.length > limit || text.length * 3 <= limit) return text.length;
  return Buffer.byteLength(text, "utf8");
}

/** Decodes UTF-8 strictly: invalid sequences are refused instead of silently replaced. */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Turns wire bytes or text into text, refusing invalid UTF-8 and oversized input. */
export function decodeJsonText(input: string | Uint8Array, maxBytes = DEFAULT_MAX_BYTES): string {
  if (typeof input === "string") {
    if (utf8Length(input, maxBytes) > maxBytes) {
      throw new SignetError("INVALID_ENVELOPE", `Document exceeds ${maxBytes} bytes`, {
        reason: "too_large",
      });
    }
    return input;
  }
  if (input.byteLength > maxBytes) {
    throw new SignetError("INVALID_ENVELOPE", `Document exceeds ${maxBytes} bytes`, { reason: "too_large" });
  }
  try {
    return STRICT_UTF8.decode(input);
  } catch {
    throw new SignetError("INVALID_ENVELOPE", "Document is not valid UTF-8", { reason: "utf8" });
  }
}

// String.prototype.isWellFormed (ES2024, in Node 20) is missing from this project's ES2023 typings.
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** JSON.parse, or undefined where it throws: the strict parser then finds the exact error. */
function parseNative(text: string): JsonValue | undefined {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return undefined;
  }
}

/**
 * Parses one JSON document strictly and reports whether it was canonical, with the spans of its
 * top-level members. Throws `INVALID_ENVELOPE` on duplicate keys, `__proto__`, `constructor` or
 * `prototype` keys, nesting past `maxDepth`, input past `maxBytes`, lone surrogates, invalid UTF-8
 * and anything JSON.parse would refuse.
 */
export function parseStrictJsonDocument(
  input: string | Uint8Array,
  limits: StrictJsonLimits = {},
): StrictJsonDocument {
  const text = decodeJsonText(input, limits.maxBytes ?? DEFAULT_MAX_BYTES);
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  // Fast path for canonical text (see canonical-scan.ts). Decoded bytes never hold a lone surrogate
  // (the decoder is fatal); a string might, and the scan does not look for them.
  if (typeof input !== "string" || isWellFormed(text)) {
    const members = scanCanonicalJson(text, maxDepth);
    if (members !== undefined) {
      const value = parseNative(text);
      if (value !== undefined) return { value, canonical: true, members, text };
    }
  }
  const parser = new StrictParser(text, maxDepth);
  const value = parser.parseDocument();
  return { value, canonical: parser.canonical, members: parser.members, text };
}

/**
 * Parses one JSON document strictly (see {@link parseStrictJsonDocument}).
 *
 * Example: `parseStrictJson('{"a":1,"a":2}')` throws `INVALID_ENVELOPE` (duplicate key).
 */
export function parseStrictJson(input: string | Uint8Array, limits: StrictJsonLimits = {}): JsonValue {
  return parseStrictJsonDocument(input, limits).value;
}
