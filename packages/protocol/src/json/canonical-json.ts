// RFC 8785 (JCS) canonical JSON: one byte sequence per JSON value, so signer and verifier hash the same bytes.
import { SignetError } from "../errors/signet-error.js";

/** A JSON value as the protocol carries it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

// Lone surrogates have no UTF-8 form; control characters are fine (JSON.stringify escapes them as JCS wants).
const SURROGATE = /[\uD800-\uDFFF]/;

function refuse(reason: string): never {
  throw new SignetError("INVALID_ENVELOPE", `Value has no canonical JSON form: ${reason}`, { reason });
}

/** Throws unless every surrogate in `value` is half of a well-formed pair. */
function checkSurrogates(value: string): void {
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      refuse("lone surrogate");
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      refuse("lone surrogate");
    }
  }
}

/**
 * JSON.stringify already escapes strings exactly as RFC 8785 section 3.2.2.2 asks (short escapes for
 * \b \t \n \f \r " \\, \u00xx in lower case for other controls, everything else literal); only lone
 * surrogates, which it would escape, must be refused instead.
 */
function serializeString(value: string): string {
  if (SURROGATE.test(value)) checkSurrogates(value);
  return JSON.stringify(value);
}

/** ECMAScript Number-to-string is RFC 8785's number format; JSON.stringify applies it and maps -0 to 0. */
function serializeNumber(value: number): string {
  if (!Number.isFinite(value)) refuse(Number.isNaN(value) ? "NaN" : "Infinity");
  return JSON.stringify(value);
}

function serialize(value: unknown, depth: number, seen: Set<object>): string {
  switch (typeof value) {
    case "string":
      return serializeString(value);
    case "number":
      return serializeNumber(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (value === null) return "null";
      if (depth > MAX_CANONICAL_DEPTH) refuse("nesting too deep");
      if (seen.has(value)) refuse("cycle");
      seen.add(value);
      let out: string;
      if (Array.isArray(value)) {
        out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          out += serialize(value[i], depth + 1, seen);
        }
        out += "]";
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) refuse("not a plain object");
        // Default sort compares UTF-16 code units, which is exactly RFC 8785's key order.
        const keys = Object.keys(value).sort();
        out = "{";
        let first = true;
        for (const key of keys) {
          const member = (value as Record<string, unknown>)[key];
          if (member === undefined) refuse("undefined member");
          if (!first) out += ",";
          first = false;
          out += serializeString(key);
          out += ":";
          out += serialize(member, depth + 1, seen);
        }
        out += "}";
      }
      seen.delete(value);
      return out;
    }
    default:
      return refuse(`${typeof value} is not JSON`);
  }
}

/** Deeper values than this are refused rather than risking the stack. */
export const MAX_CANONICAL_DEPTH = 1000;

/**
 * Serializes `value` to its RFC 8785 canonical JSON text.
 * Refuses NaN, Infinity, lone surrogates, undefined, functions, symbols, bigints, cycles and
 * non-plain objects with `INVALID_ENVELOPE`.
 *
 * Example: `canonicalize({ b: 1, a: "x" }) === '{"a":"x","b":1}'`.
 */
export function canonicalize(value: unknown): string {
  return serialize(value, 0, new Set());
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), "utf8");
}
