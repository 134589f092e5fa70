// Globs and rate limits: the documented examples, and the index-key invariant the engine relies on.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileActionPattern,
  compilePrincipalPattern,
  compileResourcePattern,
  matchStar,
  resourcePatternKey,
} from "../../src/policy/glob.js";
import { parseRateLimit } from "../../src/policy/rate-limit.js";
import { principalKeys, principalPatternKey } from "../../src/policy/rule-index.js";

/** The keys a decision looks a resource up under (as the engine does). */
function resourceKeys(resource: string): string[] {
  const keys = [""];
  for (let i = 0; i < resource.length; i++)
    if (resource[i] === ":" || resource[i] === "/") keys.push(resource.slice(0, i));
  keys.push(resource);
  return keys;
}

describe("globs", () => {
  it.each([
    ["tool:database/query", "tool:database/query", true],
    ["tool:database/*", "tool:database/query", true],
    ["tool:database/*", "tool:database/a/b", false],
    ["tool:database/**", "tool:database/a/b", true],
    ["tool:database/**", "tool:database", true],
    ["tool:database/**", "tool:databases", false],
    ["tool:**/query", "tool:query", true],
    ["tool:**/query", "tool:a/b/query", true],
    ["tool:**", "tool:a/b", true],
    ["tool:*", "tool:a/b", false],
    ["agent:customer-*", "agent:customer-eu", true],
    ["agent:*", "tool:x", false],
    ["*:refunds", "capability:refunds", true],
    ["*", "anything:at/all", true],
    ["tool:a*b*c", "tool:aXbYc", true],
    ["tool:a*b*c", "tool:aXbY", false],
  ])("%s matches %s: %s", (pattern, resource, expected) => {
    expect(compileResourcePattern(pattern).test(resource)).toBe(expected);
  });

  it("principals: bare ids match every kind, KIND: restricts it", () => {
    expect(compilePrincipalPattern("alice").test("alice", "user")).toBe(true);
    expect(compilePrincipalPattern("agent:alice").test("alice", "user")).toBe(false);
    expect(compilePrincipalPattern("agent:customer-*").test("customer-1", "agent")).toBe(true);
    expect(compilePrincipalPattern("*:bob").test("bob", undefined)).toBe(true);
    expect(compilePrincipalPattern("agent:*").test("bob", undefined)).toBe(false);
  });

  it("actions: * matches any run", () => {
    expect(compileActionPattern("memory.*").test("memory.read")).toBe(true);
    expect(compileActionPattern("memory.*").test("memorize")).toBe(false);
    expect(compileActionPattern("*").test("agent.deploy")).toBe(true);
  });

  it("a matching pattern's index key is always among the resource's keys", () => {
    const segment = fc.constantFrom("a", "b", "ab", "*", "a*", "*b", "**");
    const name = fc
      .array(fc.constantFrom("a", "b", "ab", "ba"), { minLength: 1, maxLength: 4 })
      .map((s) => s.join("/"));
    fc.assert(
      fc.property(
        fc.constantFrom("tool", "agent", "*"),
        fc.array(segment, { minLength: 1, maxLength: 4 }),
        fc.constantFrom("tool", "agent"),
        name,
        (kind, parts, resourceKind, resourceName) => {
          const pattern = `${kind}:${parts.join("/")}`;
          const resource = `${resourceKind}:${resourceName}`;
          if (compileResourcePattern(pattern).test(resource)) {
            expect(resourceKeys(resource)).toContain(resourcePatternKey(pattern));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("a matching principal pattern's key, when it has one, is always among the id's keys", () => {
    const part = fc.constantFrom("a", "b", "team", "7", "-", ".", "_", "*");
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 6 }),
        fc.array(fc.constantFrom("a", "b", "team", "7", "-", ".", "_"), { minLength: 1, maxLength: 6 }),
        (patternParts, idParts) => {
          const pattern = patternParts.join("");
          const id = idParts.join("");
          const key = principalPatternKey(pattern);
          if (key !== undefined && compilePrincipalPattern(pattern).test(id, "agent")) {
            expect(principalKeys(id)).toContain(key);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(principalPatternKey("agent:team7-*")).toBe("team7");
    expect(principalPatternKey("alice")).toBe("alice");
    expect(principalPatternKey("c*")).toBeUndefined();
    expect(principalKeys("team7-a12")).toEqual(["team7", "team7-a12"]);
  });

  it("matchStar answers many-star patterns on long input (greedy, one backtrack point)", () => {
    // An exponential matcher would not finish this; the greedy one does about 16,000 steps.
    expect(matchStar("a*a*a*a*a*a*a*a*b", "a".repeat(2000))).toBe(false);
    expect(matchStar("a*a*a*a*a*a*a*a*b", `${"a".repeat(2000)}b`)).toBe(true);
  });
});

describe("rate limits", () => {
  it.each([
    ["100/minute", 100, 60_000],
    ["10/second", 10, 1_000],
    ["5/1h", 5, 3_600_000],
    ["1000/day", 1000, 86_400_000],
    ["50 / minutes", 50, 60_000],
    ["10/5m", 10, 300_000],
  ])("%s", (spec, limit, windowMs) => {
    expect(parseRateLimit(spec)).toEqual({ limit, windowMs, spec });
  });

  it.each(["", "0/minute", "-1/minute", "10/ms", "10/fortnight", "ten/minute", "10"])(
    "refuses %j",
    (spec) => {
      expect(parseRateLimit(spec)).toBeUndefined();
    },
  );
});
