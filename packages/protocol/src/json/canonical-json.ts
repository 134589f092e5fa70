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

/**
 * The reference serializer: sorts every object's keys and refuses, in key order, the first value that
 * has no canonical form. The fast path below defers to it for every value it is not sure about, so
 * this function alone decides which error a bad value gets.
 */
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

// The fast path. JSON.stringify (native, several times faster than any serializer written in
// JavaScript) produces exactly the canonical text of a value whose objects are plain, whose numbers
// are finite, whose strings hold no lone surrogates, and whose objects' Object.keys order is already
// sorted: it writes members in Object.keys order and formats strings and numbers as RFC 8785 does. A
// first walk checks all of that without building anything and marks the objects whose keys are out of
// order; the serializer then hands every unmarked subtree to JSON.stringify whole and sorts only the
// marked objects itself. Anything the walk cannot vouch for (a value that would be refused, a cycle,
// great depth) goes to the reference serializer, so errors and their order stay exactly its own.

/** What the walk found in a subtree. */
const EXACT = 0; // JSON.stringify writes it canonically
const UNSORTED = 1; // canonical once the marked objects are sorted
const UNSURE = 2; // leave it to the reference serializer

/**
 * Deeper values take the reference serializer. The walk keeps no set of visited objects: a cycle
 * runs it down to this depth, and UNSURE then unwinds at once, so a cycle costs at most this many
 * passes over what hangs beside it.
 */
const FAST_DEPTH = 64;

function inspect(value: unknown, depth: number, unsorted: Set<object>): number {
  switch (typeof value) {
    case "string":
    case "boolean":
      return EXACT;
    case "number":
      return Number.isFinite(value) ? EXACT : UNSURE;
    case "object": {
      if (value === null) return EXACT;
      if (depth >= FAST_DEPTH) return UNSURE;
      let result = EXACT;
      if (Array.isArray(value)) {
        // An array with another prototype could inherit a toJSON that JSON.stringify would call.
        if (Object.getPrototypeOf(value) !== Array.prototype) return UNSURE;
        for (let i = 0; i < value.length; i++) {
          const item = inspect(value[i], depth + 1, unsorted);
          if (item === UNSURE) return UNSURE;
          result |= item;
        }
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) return UNSURE;
        // for-in is about twice as fast as Object.keys here. It lists own keys in Object.keys order
        // and then any enumerable inherited ones, which can only make the walk more cautious: an
        // inherited key can turn a sorted object into a marked one, never the other way round.
        let previous = "";
        let first = true;
        for (const key in value) {
          if (!first && !(previous < key)) result = UNSORTED;
          first = false;
          previous = key;
          const member = inspect((value as Record<string, unknown>)[key], depth + 1, unsorted);
          if (member === UNSURE) return UNSURE;
          result |= member;
        }
      }
      if (result === UNSORTED) unsorted.add(value);
      return result;
    }
    default:
      // undefined, functions, symbols and bigints are refused by the reference serializer.
      return UNSURE;
  }
}

/**
 * True when `value` holds a character JSON.stringify escapes (", \\, controls) or any surrogate half,
 * so that `"${value}"` would not be its canonical form. A loop rather than a regex: short strings are
 * the common case, and in the sign benchmark a regex test costs several times what it costs alone.
 */
export function needsEscaping(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return true;
  }
  return false;
}

/**
 * Object.keys in RFC 8785 order. Array.prototype.sort allocates about a kilobyte of work space even
 * for three keys, and allocation is what this path saves, so short lists are insertion-sorted in place.
 */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/**
 * Serializes a value the walk vouched for, sorting the objects it marked. Small leaves are written
 * directly: a JSON.stringify call costs more than the few characters it would produce.
 */
function emit(value: unknown, unsorted: Set<object>): string {
  switch (typeof value) {
    case "string":
      return needsEscaping(value) ? JSON.stringify(value) : `"${value}"`;
    case "number":
      // The walk saw only finite numbers; String() and JSON.stringify() agree on those (-0 is "0").
      return `${value}`;
    case "boolean":
      return value ? "true" : "false";
    default:
      break;
  }
  if (value === null) return "null";
  if (!unsorted.has(value as object)) return JSON.stringify(value);
  let out: string;
  if (Array.isArray(value)) {
    out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      out += emit(value[i], unsorted);
    }
    return `${out}]`;
  }
  const keys = sortedKeys(value as object);
  out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ",";
    out += needsEscaping(key) ? JSON.stringify(key) : `"${key}"`;
    out += ":";
    out += emit((value as Record<string, unknown>)[key], unsorted);
  }
  return `${out}}`;
}

// Allocating a Set per call shows up in the sign benchmark; one idle set is kept instead.
let spareMarks: Set<object> | undefined = new Set();

// The reference serializer never touches `seen` for a primitive.
const EMPTY_SEEN: Set<object> = new Set();

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
  if (typeof value !== "object" || value === null) return serialize(value, 0, EMPTY_SEEN);
  // JSON.stringify would call an inherited toJSON; the reference serializer never does.
  if ("toJSON" in Object.prototype || "toJSON" in Array.prototype) return serialize(value, 0, new Set());
  // The mark set is reused between calls (a getter could call back in, which then gets its own).
  const unsorted = spareMarks ?? new Set<object>();
  spareMarks = undefined;
  let out: string;
  try {
    const found = inspect(value, 0, unsorted);
    if (found === UNSURE) return serialize(value, 0, new Set());
    out = found === EXACT ? JSON.stringify(value) : emit(value, unsorted);
  } finally {
    if (unsorted.size > 0) unsorted.clear();
    spareMarks = unsorted;
  }
  // JSON.stringify escapes a lone surrogate as \udxxx where it must be refused. Any such escape
  // contains `\ud`; so does a literal backslash before "ud" (rare), which merely costs the slow path.
  if (out.includes("\\ud")) return serialize(value, 0, new Set());
  return out;
}

/** The canonical JSON of `value` as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), "utf8");
}
