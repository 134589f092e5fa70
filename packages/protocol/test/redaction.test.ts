// Tests for redaction plans: path selection, detectors, sensitive keys, purity, bounds and the report.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSignetError } from "../src/errors/signet-error.js";
import type { JsonValue } from "../src/json/canonical-json.js";
import { DETECTOR_NAMES, type DetectorName } from "../src/redaction/detectors.js";
import { formatPathLocation, parseRedactionPath } from "../src/redaction/json-path.js";
import {
  DEFAULT_REDACTION_MASK,
  DEFAULT_SENSITIVE_KEYS,
  MAX_REDACTION_DEPTH,
  type RedactionSpec,
  compileRedactionPlan,
  redact,
} from "../src/redaction/redaction-plan.js";

// Path tests switch detectors and key rules off so only the path under test can change anything.
const PATHS_ONLY: RedactionSpec = { detectors: "none", sensitiveKeys: "none" };

function redactPaths(value: JsonValue, ...paths: string[]): JsonValue {
  return redact(value, { ...PATHS_ONLY, paths }).value;
}

function scan(text: string, detector: DetectorName): string {
  return redact(text, { detectors: [detector], sensitiveKeys: "none" }).value as string;
}

function expectRefused(action: () => unknown, code: string, reason: string): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(isSignetError(thrown)).toBe(true);
  expect(thrown).toMatchObject({ code, details: { reason } });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (typeof value === "object" && value !== null) {
    for (const [key, member] of Object.entries(value)) {
      out.push(key);
      strings(member, out);
    }
  }
  return out;
}

function nested(levels: number): JsonValue {
  let value: JsonValue = "leaf";
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

/** Appends the Luhn check digit to `digits`, giving a valid card number of any length. */
function withCheckDigit(digits: string): string {
  for (let check = 0; check <= 9; check++) {
    const candidate = `${digits}${check}`;
    let sum = 0;
    for (let i = 0; i < candidate.length; i++) {
      let digit = Number(candidate[candidate.length - 1 - i]);
      if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
      sum += digit;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error("unreachable");
}

// Built by concatenation so secret scanners do not flag this file; none of these is a real credential.
const API_KEYS: Record<string, string> = {
  "sk-": "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5q",
  sk_live_: "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc",
  sk_test_: "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc",
  pk_live_: "pk_" + "live_" + "TYooMQauvdEDq54NiTphI7jx",
  ghp_: "ghp_" + "a".repeat(12) + "B".repeat(12) + "0123456789ab",
  gho_: "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a",
  github_pat_: "github_" + "pat_" + "11ABCDEFG0123456789_abcdefghijklmnop",
  "xoxb-": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKl",
  "xoxp-": "xoxp-" + "123456789012-1234567890123-AbCdEfGhIjKl",
  AKIA: "AKIA" + "IOSFODNN7EXAMPLE",
  AIza: "AIza" + "SyA-1234567890abcdefghijklmnopqrs",
  sgk_: "sgk_" + "0123456789abcdefGHIJ",
};

const PEM_BODY =
  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dV\n";

describe("redaction paths", () => {
  it("masks a member path and leaves everything else identical", () => {
    const input = { user: { email: "bob@example.com", name: "Bob" }, other: { keep: [1, 2] } };
    const { value, redactions } = redact(input, { ...PATHS_ONLY, paths: ["$.user.email"] });
    expect(value).toEqual({ user: { email: DEFAULT_REDACTION_MASK, name: "Bob" }, other: { keep: [1, 2] } });
    expect((value as typeof input).other).toBe(input.other);
    expect(redactions).toEqual([{ path: "$.user.email", kind: "path" }]);
  });

  it("uses the plan's mask", () => {
    expect(redact({ a: 1 }, { ...PATHS_ONLY, paths: ["$.a"], mask: "***" }).value).toEqual({ a: "***" });
  });

  it("masks values of any type whole, including containers", () => {
    expect(redactPaths({ a: { b: [1, { c: 2 }] }, d: null }, "$.a", "$.d")).toEqual({
      a: DEFAULT_REDACTION_MASK,
      d: DEFAULT_REDACTION_MASK,
    });
  });

  it("masks the root for $", () => {
    expect(redactPaths({ a: 1 }, "$")).toBe(DEFAULT_REDACTION_MASK);
  });

  it("selects array items by index, counting negative indices from the end", () => {
    const input = { items: [{ secret: "a" }, { secret: "b" }, { secret: "c" }] };
    expect(redactPaths(input, "$.items[0].secret", "$.items[-1].secret")).toEqual({
      items: [{ secret: DEFAULT_REDACTION_MASK }, { secret: "b" }, { secret: DEFAULT_REDACTION_MASK }],
    });
    expect(redactPaths(input, "$.items[3].secret")).toBe(input);
  });

  it("selects bracket-quoted names with either quote and escapes", () => {
    const input = { "odd key": 1, 'say "hi"': 2, "it's": 3, "tab\there": 4, é: 5, keep: 6 };
    expect(
      redactPaths(input, "$['odd key']", '$["say \\"hi\\""]', "$['it\\'s']", "$['tab\\u0009here']", "$.é"),
    ).toEqual({
      "odd key": DEFAULT_REDACTION_MASK,
      'say "hi"': DEFAULT_REDACTION_MASK,
      "it's": DEFAULT_REDACTION_MASK,
      "tab\there": DEFAULT_REDACTION_MASK,
      é: DEFAULT_REDACTION_MASK,
      keep: 6,
    });
  });

  it("wildcards select every array item", () => {
    const input = {
      cards: [
        { number: "1", name: "a" },
        { number: "2", name: "b" },
      ],
    };
    const expected = {
      cards: [
        { number: DEFAULT_REDACTION_MASK, name: "a" },
        { number: DEFAULT_REDACTION_MASK, name: "b" },
      ],
    };
    expect(redactPaths(input, "$.cards[*].number")).toEqual(expected);
    expect(redactPaths(input, "$.cards.*.number")).toEqual(expected);
  });

  it("wildcards select every object member", () => {
    const input = { headers: { a: "1", b: "2" }, body: "x" };
    const expected = { headers: { a: DEFAULT_REDACTION_MASK, b: DEFAULT_REDACTION_MASK }, body: "x" };
    expect(redactPaths(input, "$.headers.*")).toEqual(expected);
    expect(redactPaths(input, "$.headers[*]")).toEqual(expected);
  });

  it("recursive descent finds a member name at any depth, in objects and arrays", () => {
    const input = {
      password: "top",
      nested: { deeper: { password: "deep", keep: 1 } },
      list: [{ password: "in-array" }, [{ x: { password: "very deep" } }]],
      passwords: "not the same name",
    };
    const { value, redactions } = redact(input, { ...PATHS_ONLY, paths: ["$..password"] });
    expect(value).toEqual({
      password: DEFAULT_REDACTION_MASK,
      nested: { deeper: { password: DEFAULT_REDACTION_MASK, keep: 1 } },
      list: [{ password: DEFAULT_REDACTION_MASK }, [{ x: { password: DEFAULT_REDACTION_MASK } }]],
      passwords: "not the same name",
    });
    expect(redactions.map((r) => r.path)).toEqual([
      "$.password",
      "$.nested.deeper.password",
      "$.list[0].password",
      "$.list[1][0].x.password",
    ]);
  });

  it("recursive descent composes with later segments, brackets and wildcards", () => {
    const input = { a: { user: { email: "x", name: "n" } }, b: [{ user: { email: "y" } }], c: [[1, 2], [3]] };
    expect(redactPaths(input, "$..user.email")).toEqual({
      a: { user: { email: DEFAULT_REDACTION_MASK, name: "n" } },
      b: [{ user: { email: DEFAULT_REDACTION_MASK } }],
      c: [[1, 2], [3]],
    });
    expect(redactPaths({ c: [[1, 2], [3]] }, "$..[0]")).toEqual({
      c: [DEFAULT_REDACTION_MASK, [DEFAULT_REDACTION_MASK]],
    });
    expect(redactPaths({ a: { b: 1 }, c: 2 }, "$..*")).toEqual({
      a: DEFAULT_REDACTION_MASK,
      c: DEFAULT_REDACTION_MASK,
    });
    expect(redactPaths({ a: { "odd key": 1 } }, "$..['odd key']")).toEqual({
      a: { "odd key": DEFAULT_REDACTION_MASK },
    });
  });

  it("names select only object members and indices only array items", () => {
    const input = { list: ["a", "b"], map: { "0": "a" } };
    expect(redactPaths(input, "$.list['0']", "$.map[0]")).toBe(input);
  });

  it.each([
    "",
    "user.email",
    "$.",
    "$..",
    "$.user.",
    "$[",
    "$[]",
    "$['unterminated",
    "$['a'",
    "$[01]",
    "$[-0]",
    "$[1.5]",
    "$[9007199254740993]",
    "$.a b",
    "$.x-api-key",
    "$.9lives",
    "$[?(@.a)]",
    "$[0:2]",
    "$['a','b']",
    "$['bad\\q']",
    "$['\u0001']",
    "$ .a",
    "$...a",
  ])("refuses the invalid path %j", (path) => {
    expectRefused(() => compileRedactionPlan({ paths: [path] }), "INVALID_REQUEST", "redaction_path");
  });

  it("refuses a path that is not a string", () => {
    expectRefused(
      () => compileRedactionPlan({ paths: [42 as unknown as string] }),
      "INVALID_REQUEST",
      "redaction_path",
    );
  });

  it("parses each path form into segments", () => {
    expect(parseRedactionPath("$.cards[*].number")).toEqual([
      { descendant: false, selector: { kind: "name", name: "cards" } },
      { descendant: false, selector: { kind: "wildcard" } },
      { descendant: false, selector: { kind: "name", name: "number" } },
    ]);
    expect(parseRedactionPath("$..password[0]['odd key']")).toEqual([
      { descendant: true, selector: { kind: "name", name: "password" } },
      { descendant: false, selector: { kind: "index", index: 0 } },
      { descendant: false, selector: { kind: "name", name: "odd key" } },
    ]);
  });

  it("formatted locations parse back to a path selecting that member (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.nat(5), (name, index) => {
        const path = formatPathLocation(["outer", index, name]);
        const items: JsonValue[] = Array.from({ length: index + 1 }, () => ({ [name]: "v", other: 1 }));
        const value = redactPaths({ outer: items }, path) as { outer: Record<string, JsonValue>[] };
        expect(value.outer[index]![name]).toBe(DEFAULT_REDACTION_MASK);
        if (name !== "other") expect(value.outer[index]!.other).toBe(1);
      }),
    );
  });
});

describe("redaction detectors", () => {
  it("masks only the email inside a sentence", () => {
    expect(scan("contact bob@example.com now", "email")).toBe("contact [REDACTED:email] now");
  });

  it.each(["bob@example.com", "first.last+tag@mail.example.co.uk", "a_b-c%d@x-y.io", "UPPER@EXAMPLE.ORG"])(
    "masks the email %s",
    (email) => {
      expect(scan(`<${email}>`, "email")).toBe("<[REDACTED:email]>");
    },
  );

  it.each(["a@b", "user@localhost", "@example.com", "no at sign here", "x@.com", "name@domain.c"])(
    "leaves %j alone",
    (text) => {
      expect(scan(text, "email")).toBe(text);
    },
  );

  it("masks emails that touch each other or an earlier match", () => {
    expect(scan("alice@x.com_bob@y.com", "email")).toBe("[REDACTED:email][REDACTED:email]");
    expect(scan("a@b.com@c.org", "email")).toBe("[REDACTED:email][REDACTED:email]");
  });

  it.each([
    ["Visa", "4111 1111 1111 1111"],
    ["Visa with dashes", "4111-1111-1111-1111"],
    ["Visa without separators", "4111111111111111"],
    ["Mastercard", "5555 5555 5555 4444"],
    ["Amex", "3782 822463 10005"],
    ["13 digits", "4222222222222"],
    ["19 digits", withCheckDigit("650000000000000000")],
  ])("masks a Luhn-valid card number (%s)", (_label, card) => {
    expect(scan(`pay with ${card}.`, "card")).toBe("pay with [REDACTED:card].");
  });

  it.each([
    ["fails Luhn", "4111 1111 1111 1112"],
    ["fails Luhn without separators", "4111111111111112"],
    ["12 digits", "411111111111"],
    ["20 digits in one group", `${withCheckDigit("411111111111111")}1111`],
    ["double separators", "4111  1111  1111  1111"],
  ])("leaves digits that are not a card alone (%s)", (_label, digits) => {
    expect(scan(`ref ${digits}`, "card")).toBe(`ref ${digits}`);
  });

  it("finds a card followed by more digit groups", () => {
    expect(scan("4111 1111 1111 1111 123", "card")).toBe("[REDACTED:card] 123");
    expect(scan("id 12 4111-1111-1111-1111", "card")).toBe("id 12 [REDACTED:card]");
  });

  it.each([
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
  ])("masks a PEM %s block and keeps the text around it", (label) => {
    const pem = `-----BEGIN ${label}-----\n${PEM_BODY}-----END ${label}-----`;
    expect(scan(`key:\n${pem}\ndone`, "private_key")).toBe("key:\n[REDACTED:private_key]\ndone");
  });

  it("masks encrypted legacy PEM keys whose headers contain dashes", () => {
    const pem = `-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123\n\n${PEM_BODY}-----END RSA PRIVATE KEY-----`;
    expect(scan(pem, "private_key")).toBe("[REDACTED:private_key]");
  });

  it("masks a truncated PEM key up to the end of its body", () => {
    expect(scan(`-----BEGIN PRIVATE KEY-----\n${PEM_BODY}`, "private_key")).toBe("[REDACTED:private_key]");
  });

  it("leaves certificates and public keys alone", () => {
    const text = `-----BEGIN CERTIFICATE-----\n${PEM_BODY}-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\n${PEM_BODY}-----END PUBLIC KEY-----`;
    expect(scan(text, "private_key")).toBe(text);
  });

  it.each([
    "Bearer abc.def-ghi_jkl",
    "bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln",
    "BEARER dGVzdHRva2Vu==",
  ])("masks the bearer token in %j", (token) => {
    expect(scan(`Authorization: ${token}`, "bearer")).toBe("Authorization: [REDACTED:bearer]");
  });

  it.each(["the bearer of bad news", "Bearer short", "forbearer abcdefghijkl"])("leaves %j alone", (text) => {
    expect(scan(text, "bearer")).toBe(text);
  });

  it.each(Object.entries(API_KEYS))("masks an API key with the %s prefix", (_prefix, key) => {
    expect(scan(`key=${key};`, "api_key")).toBe("key=[REDACTED:api_key];");
  });

  it.each([
    "sk-short",
    "task-manager-service-account-identifier",
    "ghp_tooShort",
    "AKIA1234",
    "AIzaShort",
    "sgk_short",
    "skeleton_live_key_words",
  ])("leaves %j alone", (text) => {
    expect(scan(text, "api_key")).toBe(text);
  });

  it("runs every detector by default and each can be turned off by name", () => {
    const text = `mail bob@example.com card 4111111111111111 key ${API_KEYS.sgk_} auth Bearer abcdefgh12345678`;
    expect(redact(text).value).toBe(
      "mail [REDACTED:email] card [REDACTED:card] key [REDACTED:api_key] auth [REDACTED:bearer]",
    );
    expect(redact(text, { detectors: ["card", "bearer"] }).value).toBe(
      `mail bob@example.com card [REDACTED:card] key ${API_KEYS.sgk_} auth [REDACTED:bearer]`,
    );
    expect(redact(text, { detectors: "none" }).value).toBe(text);
    expect(redact(text, { detectors: "all" }).value).toBe(redact(text).value);
    expect(redact(text, { detectors: [...DETECTOR_NAMES].reverse() }).value).toBe(redact(text).value);
  });

  it("reports a bearer API key once, as a bearer token", () => {
    const { value, redactions } = redact(`Bearer ${API_KEYS["sk-"]}`);
    expect(value).toBe("[REDACTED:bearer]");
    expect(redactions).toEqual([{ path: "$", kind: "bearer" }]);
  });

  it("masks a PEM key whole even though its body looks like other secrets", () => {
    const pem = `-----BEGIN PRIVATE KEY-----\n${API_KEYS.AKIA}\n4111111111111111\n-----END PRIVATE KEY-----`;
    expect(redact(pem).redactions.map((r) => r.kind)).toEqual(["private_key"]);
  });

  it("refuses unknown detector names", () => {
    expectRefused(
      () => compileRedactionPlan({ detectors: ["email", "ssn"] as unknown as DetectorName[] }),
      "INVALID_REQUEST",
      "redaction_spec",
    );
  });

  it("finishes on 100 KB adversarial strings (patterns are linear by construction; no time asserted)", () => {
    const size = 100_000;
    const inputs = [
      "a".repeat(size),
      "a.".repeat(size / 2) + "@",
      "@" + "a.".repeat(size / 2),
      "x@a".repeat(size / 3),
      "a@" + "a-".repeat(size / 2),
      "_@a.".repeat(size / 4),
      "-----BEGIN PRIVATE KEY-----".repeat(size / 27),
      "-----BEGIN " + "A ".repeat(size / 2),
      "-----BEGIN PRIVATE KEY-----" + "-".repeat(size),
      "Bearer" + " ".repeat(size),
      "bearer ".repeat(size / 7),
      "sk_live_".repeat(size / 8),
      "sk-".repeat(size / 3),
      "1 ".repeat(size / 2),
      "1-".repeat(size / 2),
      "1".repeat(size),
    ];
    for (const input of inputs) expect(typeof redact(input).value).toBe("string");
  });
});

describe("sensitive keys", () => {
  it("masks default sensitive members whole, ignoring case, dashes and underscores", () => {
    const input = {
      PASSWORD: "hunter2",
      apiKey: "abc",
      "X-Api-Key": "abc",
      Authorization: { scheme: "Basic", value: "dXNlcjpwYXNz" },
      private_key: ["x"],
      max_tokens: 100,
      tokens: 5,
      passwordless: true,
    };
    const { value, redactions } = redact(input, { detectors: "none" });
    expect(value).toEqual({
      PASSWORD: DEFAULT_REDACTION_MASK,
      apiKey: DEFAULT_REDACTION_MASK,
      "X-Api-Key": DEFAULT_REDACTION_MASK,
      Authorization: DEFAULT_REDACTION_MASK,
      private_key: DEFAULT_REDACTION_MASK,
      max_tokens: 100,
      tokens: 5,
      passwordless: true,
    });
    expect(redactions.every((r) => r.kind === "key")).toBe(true);
    expect(redactions.map((r) => r.path)).toEqual([
      "$.PASSWORD",
      "$.apiKey",
      "$['X-Api-Key']",
      "$.Authorization",
      "$.private_key",
    ]);
  });

  it("applies at any depth and inside arrays", () => {
    expect(redact({ a: [{ b: { Secret: 1 } }] }, { detectors: "none" }).value).toEqual({
      a: [{ b: { Secret: DEFAULT_REDACTION_MASK } }],
    });
  });

  it("a custom list replaces the defaults, and none turns key rules off", () => {
    const input = { ssn: "123-45-6789", password: "p" };
    expect(redact(input, { detectors: "none", sensitiveKeys: ["SSN"] }).value).toEqual({
      ssn: DEFAULT_REDACTION_MASK,
      password: "p",
    });
    expect(redact(input, { detectors: "none", sensitiveKeys: "none" }).value).toBe(input);
    expect(
      redact(input, { detectors: "none", sensitiveKeys: [...DEFAULT_SENSITIVE_KEYS, "ssn"] }).value,
    ).toEqual({
      ssn: DEFAULT_REDACTION_MASK,
      password: DEFAULT_REDACTION_MASK,
    });
  });

  it("a path match is reported as a path even when the key is also sensitive", () => {
    expect(redact({ password: "p" }, { paths: ["$.password"] }).redactions).toEqual([
      { path: "$.password", kind: "path" },
    ]);
  });

  it.each([[[""]], [["-_"]], [[7]], ["some"]])("refuses the key list %j", (keys) => {
    expectRefused(
      () => compileRedactionPlan({ sensitiveKeys: keys as string[] }),
      "INVALID_REQUEST",
      "redaction_spec",
    );
  });
});

describe("redaction purity and bounds", () => {
  it("never mutates a deep-frozen input", () => {
    const input = deepFreeze({
      user: { email: "bob@example.com", password: "hunter2", cards: [{ number: "4111 1111 1111 1111" }] },
      notes: ["Bearer abcdefgh12345678", { "odd key": "x" }],
    });
    const before = structuredClone(input);
    const { value } = redact(input, { paths: ["$['odd key']", "$..number", "$.notes[1]['odd key']"] });
    expect(input).toEqual(before);
    expect(value).toEqual({
      user: {
        email: "[REDACTED:email]",
        password: DEFAULT_REDACTION_MASK,
        cards: [{ number: DEFAULT_REDACTION_MASK }],
      },
      notes: ["[REDACTED:bearer]", { "odd key": DEFAULT_REDACTION_MASK }],
    });
  });

  it("shares unchanged subtrees and returns the input itself when nothing matches", () => {
    const input = { a: { deep: [1, 2, 3] }, b: { password: "p" } };
    const { value } = redact(input);
    expect((value as typeof input).a).toBe(input.a);
    expect(value).not.toBe(input);
    const clean = { a: { deep: [1, "text"] } };
    expect(redact(clean).value).toBe(clean);
  });

  it("keeps __proto__ an ordinary member when copying", () => {
    const input = JSON.parse('{"__proto__": {"x": 1}, "password": "p"}') as JsonValue;
    const value = redact(input).value as Record<string, JsonValue>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, "__proto__")).toBe(true);
    expect(value.password).toBe(DEFAULT_REDACTION_MASK);
  });

  it(`accepts ${MAX_REDACTION_DEPTH} levels below the root and refuses deeper values`, () => {
    expect(redact(nested(MAX_REDACTION_DEPTH + 1)).value).toEqual(nested(MAX_REDACTION_DEPTH + 1));
    expectRefused(() => redact(nested(MAX_REDACTION_DEPTH + 2)), "INVALID_REQUEST", "redaction_depth");
    expectRefused(() => redact(nested(100_000)), "INVALID_REQUEST", "redaction_depth");
  });

  it("refuses cycles and values that are not JSON", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expectRefused(() => redact(cyclic as JsonValue), "INVALID_REQUEST", "redaction_depth");
    expectRefused(
      () => redact({ when: new Date(0) } as unknown as JsonValue),
      "INVALID_REQUEST",
      "redaction_value",
    );
    expectRefused(() => redact([new Map()] as unknown as JsonValue), "INVALID_REQUEST", "redaction_value");
  });

  it("refuses malformed specs", () => {
    expectRefused(
      () => compileRedactionPlan(null as unknown as RedactionSpec),
      "INVALID_REQUEST",
      "redaction_spec",
    );
    expectRefused(
      () => compileRedactionPlan({ paths: "$.a" as unknown as string[] }),
      "INVALID_REQUEST",
      "redaction_spec",
    );
    expectRefused(
      () => compileRedactionPlan({ mask: 0 as unknown as string }),
      "INVALID_REQUEST",
      "redaction_spec",
    );
  });

  it("a plan with no paths, detectors or keys returns the same value (property)", () => {
    const plan = compileRedactionPlan({ paths: [], detectors: "none", sensitiveKeys: "none" });
    fc.assert(
      fc.property(fc.jsonValue(), (input) => {
        const { value, redactions } = plan.apply(input as JsonValue);
        expect(value).toBe(input);
        expect(value).toStrictEqual(input);
        expect(redactions).toEqual([]);
      }),
    );
  });

  it("the default plan never mutates its input and is idempotent (property)", () => {
    const plan = compileRedactionPlan({});
    fc.assert(
      fc.property(fc.jsonValue(), (input) => {
        const before = structuredClone(input);
        const once = plan.apply(deepFreeze(input as JsonValue)).value;
        expect(input).toStrictEqual(before);
        expect(plan.apply(once).value).toStrictEqual(once);
      }),
    );
  });
});

// Written independently of the detector, without its linear-time tricks; fine for short test strings.
const EMAIL_LIKE = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;

const textAroundSecrets = (secret: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .array(
      fc.oneof(
        secret,
        fc.string({ maxLength: 8 }),
        fc.constantFrom("@", ".", "_", "+", "-", " ", "com", "a", "1", "[", "]"),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join(""));

describe("redaction report and detector properties", () => {
  it("after the email detector no output string contains an email (property)", () => {
    const plan = compileRedactionPlan({ detectors: ["email"], sensitiveKeys: "none" });
    const text = textAroundSecrets(fc.emailAddress());
    fc.assert(
      fc.property(
        fc.oneof(text, fc.array(text), fc.dictionary(fc.string({ maxLength: 4 }), text)),
        (input) => {
          const { value } = plan.apply(input);
          // Member names are at most 4 characters, too short to hold an email, so every string must be clean.
          expect(strings(value).filter((s) => EMAIL_LIKE.test(s))).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the report never contains the secrets it masked (property)", () => {
    // The detector knows the common local-part characters, not every one RFC 5322 allows.
    const email = fc
      .tuple(fc.stringMatching(/^[A-Za-z0-9._%+-]{1,20}$/), fc.domain())
      .map(([local, domain]) => `${local}@${domain}`);
    const secret = fc.oneof(
      email,
      fc.constantFrom(...Object.values(API_KEYS), "4111 1111 1111 1111", "Bearer abcdefgh12345678"),
    );
    fc.assert(
      fc.property(secret, fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), (s, before, after) => {
        const input = { note: `${before} ${s} ${after}`, [s]: { password: s }, list: [s] };
        const { value, redactions } = redact(input);
        const report = JSON.stringify(redactions);
        expect(report).not.toContain(s);
        expect(JSON.stringify((value as typeof input).list)).not.toContain(s);
        expect(redactions.length).toBeGreaterThanOrEqual(3);
      }),
    );
  });

  it("reports where and why, one entry per masked substring", () => {
    const input = { "bob@example.com": { text: "a@b.io and c@d.io", cards: ["x", "4111111111111111"] } };
    const { redactions } = redact(input);
    expect(redactions).toEqual([
      { path: "$['[REDACTED:email]'].text", kind: "email" },
      { path: "$['[REDACTED:email]'].text", kind: "email" },
      { path: "$['[REDACTED:email]'].cards[1]", kind: "card" },
    ]);
    expect(JSON.stringify(redactions)).not.toContain("bob@");
  });
});
