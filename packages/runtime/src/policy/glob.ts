// Glob patterns for principals, actions and resources, compiled once into plain string matchers.
//
// Resources are `KIND:NAME`, the name split into segments by `/`. In a pattern the kind is literal or
// `*`; in the name `*` matches within one segment and a segment that is exactly `**` matches zero or
// more whole segments. `*` or `**` alone matches every resource. Matching walks the segments (no
// regular expressions), so a pattern costs at worst the product of the two lengths, never more.

/** A compiled pattern. */
export interface Matcher {
  readonly pattern: string;
  /** True when the pattern has no wildcard. */
  readonly exact: boolean;
  test(value: string): boolean;
}

const ANY: Matcher = { pattern: "*", exact: false, test: () => true };

/** Matches `text` against a segment pattern whose only wildcard is `*` (any run of characters). */
export function matchStar(pattern: string, text: string): boolean {
  // The classic greedy match with one backtrack point: linear in practice, O(n·m) at worst.
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern.charCodeAt(p) !== 42 && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern.charCodeAt(p) === 42) {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}

/** Matches a list of name segments against pattern segments (`*` within one, `**` across). */
function matchSegments(
  pattern: readonly string[],
  p: number,
  segments: readonly string[],
  s: number,
): boolean {
  while (p < pattern.length) {
    const part = pattern[p]!;
    if (part === "**") {
      if (p === pattern.length - 1) return true;
      for (let skip = s; skip <= segments.length; skip++) {
        if (matchSegments(pattern, p + 1, segments, skip)) return true;
      }
      return false;
    }
    if (s >= segments.length) return false;
    const segment = segments[s]!;
    if (part.includes("*") ? !matchStar(part, segment) : part !== segment) return false;
    p++;
    s++;
  }
  return s === segments.length;
}

/** Why a pattern is refused, or undefined when it is well formed. */
export function resourcePatternProblem(pattern: string): string | undefined {
  if (pattern === "*" || pattern === "**") return undefined;
  const colon = pattern.indexOf(":");
  if (colon <= 0) return 'must be KIND:NAME (such as "tool:database/query"), or "*" for every resource';
  const kind = pattern.slice(0, colon);
  if (kind !== "*" && !/^[a-z][a-z0-9_-]*$/.test(kind)) {
    return 'its kind (before ":") must be a lower-case word or "*"';
  }
  const name = pattern.slice(colon + 1);
  if (name.length === 0) return "its name (after the kind) is empty";
  for (const segment of name.split("/")) {
    if (segment.length === 0) return 'it has an empty segment ("//" or a "/" at an end)';
    if (segment.includes("**") && segment !== "**") return '"**" must be a whole segment';
    if (/[\s?[\]{}\\]/.test(segment)) return "it may hold only names, * and **";
  }
  return undefined;
}

/**
 * Compiles a resource pattern. Call `resourcePatternProblem` first; this assumes a valid pattern.
 *
 * Example: `compileResourcePattern("tool:database/**").test("tool:database/query") === true`.
 */
export function compileResourcePattern(pattern: string): Matcher {
  if (pattern === "*" || pattern === "**") return ANY;
  if (!pattern.includes("*")) return { pattern, exact: true, test: (value) => value === pattern };
  const colon = pattern.indexOf(":");
  const kind = pattern.slice(0, colon);
  const name = pattern.slice(colon + 1);
  const parts = name.split("/");
  // `tool:database/**`: a literal prefix then "anything below", the commonest glob, is a string test.
  const tail = parts.length >= 2 && parts[parts.length - 1] === "**" ? parts.slice(0, -1) : undefined;
  if (kind !== "*" && tail !== undefined && !tail.some((part) => part.includes("*"))) {
    const base = `${kind}:${tail.join("/")}`;
    const below = `${base}/`;
    return { pattern, exact: false, test: (value) => value === base || value.startsWith(below) };
  }
  const kindPrefix = `${kind}:`;
  return {
    pattern,
    exact: false,
    test: (value) => {
      let nameStart: number;
      if (kind === "*") {
        nameStart = value.indexOf(":") + 1;
        if (nameStart === 0) return false;
      } else {
        if (!value.startsWith(kindPrefix)) return false;
        nameStart = kindPrefix.length;
      }
      return matchSegments(parts, 0, value.slice(nameStart).split("/"), 0);
    },
  };
}

/**
 * The index key of a resource pattern: its literal text up to the last separator (`:` or `/`) before
 * the first wildcard; "" when it has none, and the pattern itself when it is exact. A resource the
 * pattern matches always has this key among `resourceKeys(resource)`.
 */
export function resourcePatternKey(pattern: string): string {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern;
  const literal = pattern.slice(0, star);
  return literal.slice(0, Math.max(0, Math.max(literal.lastIndexOf(":"), literal.lastIndexOf("/"))));
}

/** Why a principal pattern is refused, or undefined when it is well formed. */
export function principalPatternProblem(pattern: string): string | undefined {
  const colon = pattern.indexOf(":");
  const kind = colon < 0 ? undefined : pattern.slice(0, colon);
  const id = colon < 0 ? pattern : pattern.slice(colon + 1);
  if (kind !== undefined && !["agent", "user", "service", "*"].includes(kind)) {
    return 'its kind (before ":") must be agent, user, service or *';
  }
  if (!/^[a-z0-9*][a-z0-9._*-]{0,127}$/.test(id)) {
    return "it must be a bare id (lower-case letters, digits, . _ -) with * wildcards";
  }
  return undefined;
}

/** A compiled principal pattern: `alice`, `agent:customer-*`, `user:*`, `*`. */
export interface PrincipalMatcher {
  readonly pattern: string;
  /** The kind the principal must be, when the pattern names one. */
  readonly kind?: string;
  /** The exact id, when the id part has no wildcard. */
  readonly id?: string;
  test(id: string, kind: string | undefined): boolean;
}

/**
 * Compiles a principal pattern. A bare pattern matches ids of every kind; `KIND:` restricts the kind.
 *
 * Example: `compilePrincipalPattern("agent:customer-*").test("customer-eu", "agent") === true`.
 */
export function compilePrincipalPattern(pattern: string): PrincipalMatcher {
  const colon = pattern.indexOf(":");
  const rawKind = colon < 0 ? "*" : pattern.slice(0, colon);
  const kind = rawKind === "*" ? undefined : rawKind;
  const idPattern = colon < 0 ? pattern : pattern.slice(colon + 1);
  const wildcard = idPattern.includes("*");
  const anyId = /^\*+$/.test(idPattern);
  const testId = anyId
    ? () => true
    : wildcard
      ? (id: string) => matchStar(idPattern, id)
      : (id: string) => id === idPattern;
  return {
    pattern,
    ...(kind === undefined ? {} : { kind }),
    ...(wildcard ? {} : { id: idPattern }),
    test:
      kind === undefined ? (id) => testId(id) : (id, principalKind) => principalKind === kind && testId(id),
  };
}

/** Why an action pattern is refused, or undefined when it is well formed. */
export function actionPatternProblem(pattern: string): string | undefined {
  return /^[a-z*][a-z0-9._:*-]{0,127}$/.test(pattern)
    ? undefined
    : "it must be an action name (lower-case letters, digits, . _ : -) with * wildcards";
}

/** Compiles an action pattern: `*` matches any run of characters (`memory.*`). */
export function compileActionPattern(pattern: string): Matcher {
  if (/^\*+$/.test(pattern)) return ANY;
  if (!pattern.includes("*")) return { pattern, exact: true, test: (value) => value === pattern };
  return { pattern, exact: false, test: (value) => matchStar(pattern, value) };
}
