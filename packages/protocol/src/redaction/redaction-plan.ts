// Redaction plans: compiled, pure rewrites that mask secrets in a JSON value before it is logged, audited or shared.
import { SignetError } from "../errors/signet-error.js";
import type { JsonValue } from "../json/canonical-json.js";
import { DETECTOR_NAMES, type DetectorName, isDetectorName, redactText } from "./detectors.js";
import {
  type PathStates,
  type PathStep,
  PathMatcher,
  formatPathLocation,
  parseRedactionPath,
} from "./json-path.js";

/** What replaces a value selected by a path or a sensitive key, unless the spec says otherwise. */
export const DEFAULT_REDACTION_MASK = "[REDACTED]";

/** Deeper values than this are refused rather than risking the stack; the same bound as `canonicalize`. */
export const MAX_REDACTION_DEPTH = 1000;

/**
 * Member names masked whole by default. Names are compared ignoring case, `_` and `-`, so `api_key`
 * also covers `apiKey`, `API-KEY` and `ApiKey`.
 */
export const DEFAULT_SENSITIVE_KEYS: readonly string[] = Object.freeze([
  "password",
  "passwd",
  "passphrase",
  "secret",
  "client_secret",
  "secret_key",
  "token",
  "access_token",
  "refresh_token",
  "id_token",
  "auth_token",
  "session_token",
  "authorization",
  "proxy_authorization",
  "cookie",
  "set_cookie",
  "api_key",
  "x_api_key",
  "private_key",
  "cvv",
  "cvc",
]);

/** What to redact. Every member is optional; the defaults are the safer choice (everything on). */
export interface RedactionSpec {
  /** JSONPath-subset paths whose values are masked whole, e.g. `$.user.email`, `$..password`. */
  readonly paths?: readonly string[];
  /** Detectors run over every string that no path or key rule masked. Default `"all"`. */
  readonly detectors?: readonly DetectorName[] | "all" | "none";
  /** Member names whose values are masked whole (see {@link DEFAULT_SENSITIVE_KEYS}). Default `"default"`; a list replaces the defaults. */
  readonly sensitiveKeys?: readonly string[] | "default" | "none";
  /** Replaces values selected by a path or a sensitive key. Default {@link DEFAULT_REDACTION_MASK}. */
  readonly mask?: string;
}

/** Why a value was masked: a path, a sensitive member name, or a detector. */
export type RedactionKind = "path" | "key" | DetectorName;

/** One masked value or substring. Never carries the secret itself, only where it was and why. */
export interface Redaction {
  /** Where, as a path that parses back to the node, e.g. `$.cards[0].number`. */
  readonly path: string;
  readonly kind: RedactionKind;
}

/** The result of applying a plan. */
export interface RedactionResult {
  /** The redacted value. Shares every unchanged subtree with the input (see {@link RedactionPlan.apply}). */
  readonly value: JsonValue;
  /** One entry per masked value or substring: in document order, then detector order within one string. */
  readonly redactions: readonly Redaction[];
}

/** A compiled redaction spec: paths parsed and detectors chosen once, applied to many values. */
export interface RedactionPlan {
  /**
   * Returns a redacted copy of `value` and a report of what was masked. Never mutates `value`. The
   * output is structurally shared: containers on the way to a change are new, every unchanged subtree
   * is the input's own object, and an input with nothing to mask comes back as the same reference.
   * Treat both as read-only. Refuses values nested deeper than {@link MAX_REDACTION_DEPTH} (which also
   * catches cycles) and objects that are not plain (Date, Map, class instances) with `INVALID_REQUEST`.
   */
  apply(value: JsonValue): RedactionResult;
}

function refuseSpec(why: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid redaction spec: ${why}`, { reason: "redaction_spec" });
}

const KEY_SEPARATORS = /[-_]/g;

function normalizeKeyName(name: string): string {
  return name.toLowerCase().replace(KEY_SEPARATORS, "");
}

function compileDetectors(detectors: RedactionSpec["detectors"]): readonly DetectorName[] {
  if (detectors === undefined || detectors === "all") return DETECTOR_NAMES;
  if (detectors === "none") return [];
  if (!Array.isArray(detectors)) refuseSpec('detectors must be a list, "all" or "none"');
  for (const name of detectors as readonly unknown[]) {
    if (!isDetectorName(name)) refuseSpec(`unknown detector ${JSON.stringify(name)}`);
  }
  // Canonical order, whatever order the spec listed them in: the order is part of the behaviour.
  return DETECTOR_NAMES.filter((name) => detectors.includes(name));
}

function compileSensitiveKeys(keys: RedactionSpec["sensitiveKeys"]): ReadonlySet<string> {
  if (keys === "none") return new Set();
  const list = keys === undefined || keys === "default" ? DEFAULT_SENSITIVE_KEYS : keys;
  if (!Array.isArray(list)) refuseSpec('sensitiveKeys must be a list, "default" or "none"');
  const set = new Set<string>();
  for (const key of list as readonly unknown[]) {
    const normalized = typeof key === "string" ? normalizeKeyName(key) : "";
    if (normalized === "") refuseSpec("sensitiveKeys must be non-empty names");
    set.add(normalized);
  }
  return set;
}

interface CompiledSpec {
  readonly matcher: PathMatcher;
  readonly detectors: readonly DetectorName[];
  readonly sensitiveKeys: ReadonlySet<string>;
  readonly mask: string;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

// Assignment would treat "__proto__" as the prototype setter; defining it keeps it an ordinary member.
function setMember(target: Record<string, JsonValue>, key: string, value: JsonValue): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** One application of a plan: the walk's current location and the report so far. */
class PlanWalk {
  readonly redactions: Redaction[] = [];
  private readonly location: PathStep[] = [];

  constructor(private readonly spec: CompiledSpec) {}

  private record(kind: RedactionKind): void {
    // Member names are not rewritten (two could collide), but the report runs them through the same
    // detectors so that it never carries a secret found in a name.
    const path = formatPathLocation(this.location, (name) => redactText(name, this.spec.detectors, noop));
    this.redactions.push({ path, kind });
  }

  private masked(kind: RedactionKind): string {
    this.record(kind);
    return this.spec.mask;
  }

  // Recursion is bounded by MAX_REDACTION_DEPTH, so the stack stays around a thousand small frames.
  walk(value: JsonValue, states: PathStates, depth: number): JsonValue {
    if (typeof value === "string") {
      if (this.spec.detectors.length === 0) return value;
      const hits: DetectorName[] = [];
      const redacted = redactText(value, this.spec.detectors, (kind) => hits.push(kind));
      for (const kind of hits) this.record(kind);
      return redacted;
    }
    if (typeof value !== "object" || value === null) return value;
    if (depth > MAX_REDACTION_DEPTH) {
      throw new SignetError("INVALID_REQUEST", "Value is nested too deeply to redact", {
        reason: "redaction_depth",
      });
    }
    if (Array.isArray(value)) return this.walkArray(value, states, depth);
    if (!isPlainObject(value)) {
      throw new SignetError("INVALID_REQUEST", "Value is not JSON: only plain objects can be redacted", {
        reason: "redaction_value",
      });
    }
    return this.walkObject(value, states, depth);
  }

  private walkArray(value: readonly JsonValue[], states: PathStates, depth: number): JsonValue {
    let out: JsonValue[] | undefined;
    for (let index = 0; index < value.length; index++) {
      const child = value[index] as JsonValue;
      this.location.push(index);
      const next = this.spec.matcher.advance(states, index, value.length);
      const result = next === true ? this.masked("path") : this.walk(child, next, depth + 1);
      this.location.pop();
      // Copy on first change only, so untouched arrays are returned as they are.
      if (out !== undefined) out.push(result);
      else if (!Object.is(result, child)) (out = value.slice(0, index)).push(result);
    }
    return out ?? (value as JsonValue[]);
  }

  private walkObject(
    value: { readonly [key: string]: JsonValue },
    states: PathStates,
    depth: number,
  ): JsonValue {
    const keys = Object.keys(value);
    let out: Record<string, JsonValue> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const child = value[key] as JsonValue;
      this.location.push(key);
      const next = this.spec.matcher.advance(states, key, -1);
      let result: JsonValue;
      if (next === true) result = this.masked("path");
      else if (this.spec.sensitiveKeys.size > 0 && this.spec.sensitiveKeys.has(normalizeKeyName(key))) {
        result = this.masked("key");
      } else result = this.walk(child, next, depth + 1);
      this.location.pop();
      if (out === undefined && !Object.is(result, child)) {
        out = {};
        for (let j = 0; j < i; j++) {
          const earlier = keys[j] as string;
          setMember(out, earlier, value[earlier] as JsonValue);
        }
      }
      if (out !== undefined) setMember(out, key, result);
    }
    return out ?? value;
  }
}

function noop(): void {}

/**
 * Compiles a redaction spec once: parses its paths (refusing bad ones with `INVALID_REQUEST`, reason
 * `redaction_path`), checks detector names and key lists (reason `redaction_spec`), and returns a plan
 * to apply to any number of values.
 *
 * Example:
 * ```ts
 * const plan = compileRedactionPlan({ paths: ["$.user.ssn"], detectors: ["email"] });
 * plan.apply({ user: { ssn: "123-45-6789", note: "mail bob@example.com" } }).value;
 * // { user: { ssn: "[REDACTED]", note: "mail [REDACTED:email]" } }
 * ```
 */
export function compileRedactionPlan(spec: RedactionSpec): RedactionPlan {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) refuseSpec("not an object");
  const paths: unknown = spec.paths ?? [];
  if (!Array.isArray(paths)) refuseSpec("paths must be a list");
  const matcher = new PathMatcher((paths as readonly string[]).map(parseRedactionPath));
  const mask: unknown = spec.mask ?? DEFAULT_REDACTION_MASK;
  if (typeof mask !== "string") refuseSpec("mask must be a string");
  const compiled: CompiledSpec = {
    matcher,
    detectors: compileDetectors(spec.detectors),
    sensitiveKeys: compileSensitiveKeys(spec.sensitiveKeys),
    mask,
  };
  return Object.freeze({
    apply(value: JsonValue): RedactionResult {
      if (compiled.matcher.matchesRoot) {
        return { value: compiled.mask, redactions: [{ path: "$", kind: "path" }] };
      }
      const walk = new PlanWalk(compiled);
      const redacted = walk.walk(value, compiled.matcher.initial, 0);
      return { value: redacted, redactions: walk.redactions };
    },
  });
}

/**
 * Compiles `spec` and applies it to `value` in one call; compile once with {@link compileRedactionPlan}
 * when redacting many values. With no spec every detector and the default sensitive keys are on.
 *
 * Example: `redact({ password: "hunter2", note: "Bearer abcdefgh12345" }).value` is
 * `{ password: "[REDACTED]", note: "[REDACTED:bearer]" }`.
 */
export function redact(value: JsonValue, spec: RedactionSpec = {}): RedactionResult {
  return compileRedactionPlan(spec).apply(value);
}
