// RFC 8785 canonical JSON: the published vectors, agreement with the reference package, refusals.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import canonicalizePkg from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ENVELOPE_DOMAIN,
  Ed25519PrivateKey,
  type EnvelopeDraft,
  type JsonValue,
  MAX_CANONICAL_DEPTH,
  SignetError,
  canonicalBytes,
  canonicalHeader,
  canonicalize,
  envelopeHash,
  hashJson,
  newMessageId,
  serializeEnvelope,
  signEnvelope,
  verifyEnvelope,
} from "@signet/protocol";

const VECTORS =
  process.env.SIGNET_VECTORS_DIR ?? fileURLToPath(new URL("../../../../shared/vectors", import.meta.url));
const JCS = join(VECTORS, "json-canonicalization", "testdata");

/** The `reason` of the SignetError `fn` throws; fails the test when it throws anything else. */
function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SignetError);
    expect((error as SignetError).code).toBe("INVALID_ENVELOPE");
    return (error as SignetError).details.reason;
  }
  throw new Error("expected INVALID_ENVELOPE");
}

/** A deterministic shuffle (mulberry32), so a failing case replays from fast-check's seed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The same value with every object's members inserted in a different order. */
function reordered(value: JsonValue, seed: number): JsonValue {
  if (Array.isArray(value)) return value.map((item, i) => reordered(item, seed + i + 1));
  if (typeof value !== "object" || value === null) return value;
  const out: { [key: string]: JsonValue } = {};
  for (const key of shuffled(Object.keys(value), seed)) {
    Object.defineProperty(out, key, {
      value: reordered(value[key]!, seed * 31 + key.length),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Plain data with every object's keys reversed, so the sorting path runs too. */
function reversed(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(reversed);
  if (typeof value !== "object" || value === null) return value;
  const out: { [key: string]: JsonValue } = {};
  for (const key of Object.keys(value).reverse()) {
    Object.defineProperty(out, key, { value: reversed(value[key]!), enumerable: true, writable: true });
  }
  return out;
}

const SURROGATE_PAIRS = ["😀", "😂", "𝄞", "\u{10ffff}", "\u{10000}", "🏳️‍🌈"];
const trickyKey = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({
    unit: fc.constantFrom(...SURROGATE_PAIRS, "a", "é", "€", "\u0000", "\n", '"', "\\", "\u2028"),
  }),
  fc.constantFrom("", "1", "10", "2", "a", "A", "\u0080", "\uffff", "\ud83d\ude02", "\ufb33", "</script>"),
);
const trickyNumber = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    -0,
    0,
    1e21,
    1e-7,
    1e-6,
    5e-324,
    -5e-324,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    2 ** 53,
    2 ** 53 - 1,
    2 ** 53 + 2,
    -(2 ** 53),
    0.1,
    0.30000000000000004,
    333333333.3333333,
  ),
  fc.integer({ min: -16, max: 16 }).map((delta) => 2 ** 53 + delta * 2),
  fc.integer(),
);
const trickyObject = fc.dictionary(trickyKey, fc.oneof(trickyNumber, trickyKey, fc.constant(null)), {
  maxKeys: 8,
});

describe("canonicalize: RFC 8785 vectors", () => {
  const names = readdirSync(join(JCS, "input")).filter((name) => name.endsWith(".json"));

  it("finds the published vectors", () => {
    expect(names.length).toBeGreaterThanOrEqual(6);
  });

  for (const name of names) {
    it(`matches output/${name} byte for byte`, () => {
      const input = JSON.parse(readFileSync(join(JCS, "input", name), "utf8")) as unknown;
      const expected = readFileSync(join(JCS, "output", name));
      expect(canonicalBytes(input).equals(expected)).toBe(true);
      expect(canonicalize(input)).toBe(expected.toString("utf8"));
      // outhex holds the same bytes as space-separated hex.
      const hex = readFileSync(join(JCS, "outhex", name.replace(/\.json$/, ".txt")), "utf8");
      expect(canonicalBytes(input).toString("hex")).toBe(hex.trim().split(/\s+/).join(""));
    });
  }
});

describe("canonicalize: agreement with the canonicalize package", () => {
  it("agrees on any JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalize(value)).toBe(canonicalizePkg(value));
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees on any JSON value with full Unicode strings", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: "binary" }), (value) => {
        expect(canonicalize(value)).toBe(canonicalizePkg(value));
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees on unicode and surrogate-pair keys and tricky numbers", () => {
    fc.assert(
      fc.property(trickyObject, fc.array(trickyObject, { maxLength: 3 }), (object, list) => {
        const value = { ...object, nested: list };
        expect(canonicalize(value)).toBe(canonicalizePkg(value));
        expect(canonicalize(list)).toBe(canonicalizePkg(list));
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees when keys arrive out of order", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalize(reversed(value as JsonValue))).toBe(canonicalizePkg(value));
      }),
      { numRuns: 500 },
    );
  });

  it("formats numbers as ECMAScript does", () => {
    fc.assert(
      fc.property(trickyNumber, (n) => {
        expect(canonicalize(n)).toBe(canonicalizePkg(n));
        expect(canonicalize([n])).toBe(`[${canonicalizePkg(n)}]`);
      }),
      { numRuns: 1000 },
    );
    expect(canonicalize(-0)).toBe("0");
    expect(canonicalize(1e21)).toBe("1e+21");
    expect(canonicalize(5e-324)).toBe("5e-324");
    expect(canonicalize(2 ** 53 + 2)).toBe("9007199254740994");
  });
});

describe("canonicalize: properties", () => {
  it("is idempotent through JSON.parse", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ stringUnit: "binary" }), trickyObject), (value) => {
        const text = canonicalize(value);
        expect(canonicalize(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it("does not depend on key insertion order", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), trickyObject), fc.integer(), (value, seed) => {
        expect(canonicalize(reordered(value as JsonValue, seed))).toBe(canonicalize(value));
      }),
      { numRuns: 1000 },
    );
  });

  it("sorts keys by UTF-16 code units, not code points or locale", () => {
    expect(canonicalize({ "\uffff": 1, "😀": 2, "\ue000": 3 })).toBe('{"😀":2,"\ue000":3,"\uffff":1}');
    expect(canonicalize({ b: 1, a: 2, 10: 3, 2: 4 })).toBe('{"10":3,"2":4,"a":2,"b":1}');
    expect(canonicalize({ peach: 1, péché: 2, pêche: 3, sin: 4 })).toBe(
      '{"peach":1,"péché":2,"pêche":3,"sin":4}',
    );
  });

  it("accepts null-prototype objects and shared (acyclic) references", () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: [true] });
    expect(canonicalize(bare)).toBe('{"a":[true],"b":1}');
    const shared = { x: 1 };
    expect(canonicalize({ p: shared, q: [shared, shared] })).toBe('{"p":{"x":1},"q":[{"x":1},{"x":1}]}');
  });

  it("ignores a toJSON on the prototypes, as the reference serializer does", () => {
    const value = { b: [1, { c: "x" }], a: "y" };
    const before = canonicalize(value);
    for (const proto of [Object.prototype, Array.prototype]) {
      Object.defineProperty(proto, "toJSON", { value: () => "hijacked", configurable: true, writable: true });
      try {
        expect(canonicalize(value)).toBe(before);
        expect(canonicalize({ a: [1], b: { c: 2 } })).toBe('{"a":[1],"b":{"c":2}}');
      } finally {
        delete (proto as { toJSON?: unknown }).toJSON;
      }
    }
  });

  it("writes a string containing a backslash before 'ud' normally", () => {
    expect(canonicalize({ path: "C:\\udata" })).toBe('{"path":"C:\\\\udata"}');
    expect(canonicalize("\\ud800")).toBe('"\\\\ud800"');
  });

  it("accepts nesting up to MAX_CANONICAL_DEPTH", () => {
    let value: unknown = 1;
    for (let i = 0; i <= MAX_CANONICAL_DEPTH; i++) value = [value];
    expect(canonicalize(value)).toBe(
      `${"[".repeat(MAX_CANONICAL_DEPTH + 1)}1${"]".repeat(MAX_CANONICAL_DEPTH + 1)}`,
    );
  });
});

describe("canonicalize: refusals", () => {
  it("refuses NaN and infinities", () => {
    expect(refusal(() => canonicalize(Number.NaN))).toBe("NaN");
    expect(refusal(() => canonicalize({ a: [Number.NaN] }))).toBe("NaN");
    expect(refusal(() => canonicalize(Infinity))).toBe("Infinity");
    expect(refusal(() => canonicalize({ a: -Infinity }))).toBe("Infinity");
    expect(refusal(() => canonicalize([1, Infinity]))).toBe("Infinity");
  });

  it("refuses lone surrogates in values and keys", () => {
    for (const lone of ["\ud800", "\udbff", "\udc00", "\udfff", "a\ud83d", "\ude02b", "\ude02\ud83d"]) {
      expect(refusal(() => canonicalize(lone))).toBe("lone surrogate");
      expect(refusal(() => canonicalize({ a: lone }))).toBe("lone surrogate");
      expect(refusal(() => canonicalize({ [lone]: 1 }))).toBe("lone surrogate");
      expect(refusal(() => canonicalize([[lone]]))).toBe("lone surrogate");
      expect(refusal(() => canonicalize({ z: { [lone]: 1 }, a: 1 }))).toBe("lone surrogate");
    }
  });

  it("refuses lone surrogates anywhere in a generated value", () => {
    const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit));
    fc.assert(
      fc.property(fc.jsonValue(), lone, fc.boolean(), (value, half, asKey) => {
        const poisoned = asKey ? { [`k${half}`]: value } : { k: [value, `x${half}`] };
        expect(refusal(() => canonicalize(poisoned))).toBe("lone surrogate");
      }),
      { numRuns: 300 },
    );
  });

  it("refuses undefined members and other non-JSON values", () => {
    expect(refusal(() => canonicalize({ a: undefined }))).toBe("undefined member");
    expect(refusal(() => canonicalize({ a: { b: undefined } }))).toBe("undefined member");
    expect(refusal(() => canonicalize(undefined))).toBe("undefined is not JSON");
    expect(refusal(() => canonicalize([undefined]))).toBe("undefined is not JSON");
    // A hole reads as undefined.
    expect(refusal(() => canonicalize(new Array(2)))).toBe("undefined is not JSON");
    expect(refusal(() => canonicalize(() => 1))).toBe("function is not JSON");
    expect(refusal(() => canonicalize({ toJSON: () => 1 }))).toBe("function is not JSON");
    expect(refusal(() => canonicalize({ a: Symbol("s") }))).toBe("symbol is not JSON");
    expect(refusal(() => canonicalize([10n]))).toBe("bigint is not JSON");
  });

  it("refuses objects that are not plain", () => {
    class Point {
      constructor(readonly x: number) {}
    }
    for (const value of [
      new Date(0),
      new Map([["a", 1]]),
      new Set([1]),
      new Point(1),
      new String("s"),
      /re/,
    ]) {
      expect(refusal(() => canonicalize(value))).toBe("not a plain object");
      expect(refusal(() => canonicalize({ a: [value] }))).toBe("not a plain object");
    }
    expect(refusal(() => canonicalize(Buffer.from("x")))).toBe("not a plain object");
  });

  it("refuses cycles", () => {
    const object: Record<string, unknown> = { a: 1 };
    object.self = object;
    expect(refusal(() => canonicalize(object))).toBe("cycle");
    const array: unknown[] = [1];
    array.push({ back: array });
    expect(refusal(() => canonicalize(array))).toBe("cycle");
    // Two references down every level: refused quickly, not after exploring every path.
    const wide: Record<string, unknown> = { big: Array.from({ length: 200 }, (_, i) => ({ i })) };
    wide.x = wide;
    wide.y = wide;
    expect(refusal(() => canonicalize(wide))).toBe("cycle");
  });

  it("refuses nesting deeper than MAX_CANONICAL_DEPTH", () => {
    let value: unknown = 1;
    for (let i = 0; i <= MAX_CANONICAL_DEPTH + 1; i++) value = { a: value };
    expect(refusal(() => canonicalize(value))).toBe("nesting too deep");
  });

  it("reports the first problem in canonical key order", () => {
    expect(refusal(() => canonicalize({ b: Number.NaN, a: undefined }))).toBe("undefined member");
    expect(refusal(() => canonicalize({ b: undefined, a: [Number.NaN] }))).toBe("NaN");
    expect(refusal(() => canonicalize({ b: () => 1, a: "\ud800" }))).toBe("lone surrogate");
    expect(refusal(() => canonicalize([new Date(0), Infinity]))).toBe("not a plain object");
  });

  it("never throws anything but INVALID_ENVELOPE", () => {
    const bad = fc.constantFrom<unknown>(
      Number.NaN,
      Infinity,
      undefined,
      "\udc00",
      () => 0,
      Symbol("x"),
      1n,
      new Date(0),
    );
    fc.assert(
      fc.property(fc.jsonValue(), bad, fc.string(), (value, poison, key) => {
        const reason = refusal(() => canonicalize({ value, [key]: [poison] }));
        expect(typeof reason).toBe("string");
      }),
      { numRuns: 300 },
    );
  });
});

describe("signed envelopes are canonical JSON", () => {
  const key = Ed25519PrivateKey.generate();
  const resolveKey = () => ({ key: key.publicKey, owner: "alice" });
  const optional: Partial<EnvelopeDraft> = {
    session: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
    intent: { purpose: 'say "hi" \\ \u00e9', permissions: ["a:b"] },
    body_type: "org.acme.Thing.v1",
    provenance: { parent: newMessageId(), inputs: [hashJson({ a: 1 })], consent_ref: "c-7" },
  };
  const result: Partial<EnvelopeDraft> = {
    re: { id: newMessageId(), hash: hashJson({ b: 2 }) },
    status: "ok",
    decision: { audit_id: "audit-1", rules: ["rule-1"] },
  };

  it("writes the wire and the header as canonicalize would, whatever optional fields are set", () => {
    const names = Object.keys(optional) as (keyof EnvelopeDraft)[];
    for (let mask = 0; mask < 1 << names.length; mask++) {
      for (const type of ["invoke", "result"] as const) {
        const draft: Record<string, unknown> = {
          type,
          from: "alice",
          to: "tool:db/query",
          body: { z: [1, 0.5], a: "😀" },
        };
        names.forEach((name, bit) => {
          if ((mask & (1 << bit)) !== 0) draft[name] = optional[name];
        });
        if (type === "result") Object.assign(draft, result);
        const signed = signEnvelope(draft as unknown as EnvelopeDraft, key);
        expect(signed.wire).toBe(canonicalize(signed.envelope));
        expect(signed.wire).toBe(serializeEnvelope(signed.envelope));
        expect(signed.hash).toBe(envelopeHash(signed.envelope));
        const verified = verifyEnvelope(Buffer.from(signed.wire), { resolveKey });
        expect(verified.hash).toBe(signed.hash);
        expect(verified.signingInput.toString("utf8")).toBe(
          ENVELOPE_DOMAIN + canonicalHeader(signed.envelope),
        );
        expect(verified.canonicalBody).toBe('{"a":"😀","z":[1,0.5]}');
      }
    }
  });
});
