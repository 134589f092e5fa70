// The JSONPath subset redaction plans select with: parsed once at compile time, then matched step by step during a walk.
//
// The syntax is RFC 9535's, cut down to what redaction needs: `$`, `.name`, `['name']`, `[0]`, `[-1]`,
// `.*`, `[*]` and `..` before any of them. Filters, slices and unions are refused rather than
// half-supported, so a path either means what RFC 9535 says or fails to compile.
import { SignetError } from "../errors/signet-error.js";

/** What one segment selects among a node's children. */
export type PathSelector =
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "index"; readonly index: number }
  | { readonly kind: "wildcard" };

/** One segment of a parsed path: `descendant` is true for `..`, which applies the selector at any depth below. */
export interface PathSegment {
  readonly descendant: boolean;
  readonly selector: PathSelector;
}

/** A step on the way down from the root: a member name or an array index. */
export type PathStep = string | number;

const WILDCARD: PathSelector = Object.freeze({ kind: "wildcard" });

function isDigit(unit: number): boolean {
  return unit >= 0x30 && unit <= 0x39;
}

// RFC 9535 member-name-shorthand: ALPHA / "_" / non-ASCII first, then digits too. A dash is not allowed,
// so `$.x-api-key` must be written `$['x-api-key']`; failing loudly beats silently selecting nothing.
function isNameFirst(unit: number): boolean {
  return (unit >= 0x41 && unit <= 0x5a) || (unit >= 0x61 && unit <= 0x7a) || unit === 0x5f || unit >= 0x80;
}

function isNameChar(unit: number): boolean {
  return isNameFirst(unit) || isDigit(unit);
}

const ESCAPES: Readonly<Record<string, string>> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  "/": "/",
  "\\": "\\",
};
const INDEX = /-?(?:0|[1-9][0-9]*)/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

class PathParser {
  private pos = 1;

  constructor(private readonly path: string) {}

  fail(why: string): never {
    throw new SignetError("INVALID_REQUEST", `Invalid redaction path ${JSON.stringify(this.path)}: ${why}`, {
      reason: "redaction_path",
    });
  }

  parse(): PathSegment[] {
    if (this.path.charCodeAt(0) !== 0x24 /* $ */) this.fail("must start with $");
    const segments: PathSegment[] = [];
    while (this.pos < this.path.length) {
      const char = this.path[this.pos];
      if (char === "." && this.path[this.pos + 1] === ".") {
        this.pos += 2;
        const selector = this.path[this.pos] === "[" ? this.bracketSelector() : this.dotSelector();
        segments.push({ descendant: true, selector });
      } else if (char === ".") {
        this.pos += 1;
        segments.push({ descendant: false, selector: this.dotSelector() });
      } else if (char === "[") {
        segments.push({ descendant: false, selector: this.bracketSelector() });
      } else {
        this.fail(`unexpected character at offset ${this.pos}`);
      }
    }
    return segments;
  }

  private dotSelector(): PathSelector {
    const path = this.path;
    if (path[this.pos] === "*") {
      this.pos += 1;
      return WILDCARD;
    }
    const start = this.pos;
    if (!isNameFirst(path.charCodeAt(start))) this.fail(`expected a member name at offset ${start}`);
    let end = start + 1;
    while (end < path.length && isNameChar(path.charCodeAt(end))) end++;
    this.pos = end;
    return { kind: "name", name: path.slice(start, end) };
  }

  private bracketSelector(): PathSelector {
    this.pos += 1; // "["
    const char = this.path[this.pos];
    let selector: PathSelector;
    if (char === "*") {
      this.pos += 1;
      selector = WILDCARD;
    } else if (char === "'" || char === '"') {
      selector = { kind: "name", name: this.quotedName(char) };
    } else {
      selector = { kind: "index", index: this.index() };
    }
    if (this.path[this.pos] !== "]") this.fail(`expected ] at offset ${this.pos}`);
    this.pos += 1;
    return selector;
  }

  private index(): number {
    INDEX.lastIndex = this.pos;
    const match = INDEX.exec(this.path);
    if (match === null) this.fail(`expected a quoted name, an index or * at offset ${this.pos}`);
    const text = match[0];
    const index = Number(text);
    if (text === "-0" || !Number.isSafeInteger(index)) this.fail(`index out of range at offset ${this.pos}`);
    this.pos += text.length;
    return index;
  }

  private quotedName(quote: string): string {
    const path = this.path;
    let name = "";
    let pos = this.pos + 1;
    for (;;) {
      if (pos >= path.length) this.fail("unterminated quoted name");
      const char = path[pos] as string;
      if (char === quote) break;
      if (path.charCodeAt(pos) < 0x20) this.fail(`control character at offset ${pos}`);
      if (char !== "\\") {
        name += char;
        pos += 1;
        continue;
      }
      const escaped = path[pos + 1] ?? "";
      if (escaped === quote) {
        name += quote;
        pos += 2;
      } else if (escaped === "u" && HEX4.test(path.slice(pos + 2, pos + 6))) {
        name += String.fromCharCode(parseInt(path.slice(pos + 2, pos + 6), 16));
        pos += 6;
      } else if (Object.hasOwn(ESCAPES, escaped)) {
        name += ESCAPES[escaped];
        pos += 2;
      } else {
        this.fail(`invalid escape at offset ${pos}`);
      }
    }
    this.pos = pos + 1;
    return name;
  }
}

/**
 * Parses one path of the supported JSONPath subset; refuses anything else with
 * `INVALID_REQUEST` and reason `redaction_path`.
 *
 * Example: `parseRedactionPath("$.cards[*].number")` gives three child segments: name, wildcard, name.
 */
export function parseRedactionPath(path: string): PathSegment[] {
  if (typeof path !== "string") {
    throw new SignetError("INVALID_REQUEST", "Invalid redaction path: not a string", {
      reason: "redaction_path",
    });
  }
  return new PathParser(path).parse();
}

function escapeQuoted(name: string): string {
  let out = "";
  for (const char of name) {
    const unit = char.charCodeAt(0);
    if (char === "'" || char === "\\") out += `\\${char}`;
    else if (unit < 0x20) out += `\\u${unit.toString(16).padStart(4, "0")}`;
    else out += char;
  }
  return out;
}

function isShorthandName(name: string): boolean {
  if (name.length === 0 || !isNameFirst(name.charCodeAt(0))) return false;
  for (let i = 1; i < name.length; i++) if (!isNameChar(name.charCodeAt(i))) return false;
  return true;
}

/**
 * Writes a location as a path this module parses back to the same node: dot notation where RFC 9535
 * allows it, single-quoted brackets otherwise. `renderName` lets the caller scrub member names first.
 *
 * Example: `formatPathLocation(["cards", 0, "odd key"])` is `$.cards[0]['odd key']`.
 */
export function formatPathLocation(
  location: readonly PathStep[],
  renderName: (name: string) => string = (name) => name,
): string {
  let out = "$";
  for (const step of location) {
    if (typeof step === "number") {
      out += `[${step}]`;
      continue;
    }
    const name = renderName(step);
    out += isShorthandName(name) ? `.${name}` : `['${escapeQuoted(name)}']`;
  }
  return out;
}

/** Active positions in a {@link PathMatcher}; empty when no path can match below the current node. */
export type PathStates = readonly number[];

const NO_STATES: PathStates = Object.freeze([]);

function selects(selector: PathSelector, step: PathStep, arrayLength: number): boolean {
  switch (selector.kind) {
    case "wildcard":
      return true;
    case "name":
      return selector.name === step;
    case "index":
      return (
        typeof step === "number" &&
        (selector.index >= 0 ? step === selector.index : step === arrayLength + selector.index)
      );
  }
}

/**
 * Matches many parsed paths at once while a value is walked top-down, like an NFA: each state is a
 * segment some path is waiting to match. A `..` state stays active for every descendant, so matching
 * costs at most (nodes x total segments) and never backtracks.
 */
export class PathMatcher {
  // Every path's segments laid end to end; `null` marks the end of a path (a full match).
  private readonly steps: (PathSegment | null)[] = [];
  private readonly starts: number[] = [];
  /** True when some path is plain `$`, selecting the root itself. */
  readonly matchesRoot: boolean;

  constructor(paths: readonly (readonly PathSegment[])[]) {
    let matchesRoot = false;
    for (const segments of paths) {
      if (segments.length === 0) matchesRoot = true;
      else this.starts.push(this.steps.length);
      this.steps.push(...segments, null);
    }
    this.matchesRoot = matchesRoot;
  }

  /** The states before any step is taken, at the root. */
  get initial(): PathStates {
    return this.starts.length === 0 ? NO_STATES : this.starts;
  }

  /**
   * Takes one step from a node to its child `step` (`arrayLength` is the parent's length when it is an
   * array). Returns `true` when some path selects that child, otherwise the states for the child.
   */
  advance(states: PathStates, step: PathStep, arrayLength: number): PathStates | true {
    if (states.length === 0) return NO_STATES;
    const next: number[] = [];
    for (const state of states) {
      const segment = this.steps[state];
      if (segment === null || segment === undefined) continue;
      // A `..` segment keeps waiting below this child too, whether or not the child matched it.
      if (segment.descendant && !next.includes(state)) next.push(state);
      if (selects(segment.selector, step, arrayLength)) {
        if (this.steps[state + 1] === null) return true;
        if (!next.includes(state + 1)) next.push(state + 1);
      }
    }
    return next.length === 0 ? NO_STATES : next;
  }
}
