// The strict JSON parser: agreement with JSON.parse, exact refusals, the canonical flag and member spans.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_DEPTH,
  type JsonValue,
  SignetError,
  type StrictJsonDocument,
  canonicalize,
  parseStrictJson,
  parseStrictJsonDocument,
} from "@signet/protocol";

/** The `reason` of the INVALID_ENVELOPE error `fn` throws; fails the test on anything else. */
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

const reasonFor = (input: string | Uint8Array, limits?: { maxBytes?: number; maxDepth?: number }) =>
  refusal(() => parseStrictJsonDocument(input, limits));

const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);

/** True when any object in `value` has a key the parser refuses. */
function hasForbiddenKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasForbiddenKey);
  if (typeof value !== "object" || value === null) return false;
  return Object.keys(value).some(
    (key) => FORBIDDEN.has(key) || hasForbiddenKey((value as Record<string, unknown>)[key]),
  );
}

function depthOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const children: unknown[] = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce((deepest: number, child) => Math.max(deepest, depthOf(child)), 0);
}

/**
 * Spelling choices for {@link render}: whitespace, escapes, number forms and key order vary, the
 * value stays the same. Each list is cycled through as the renderer makes choices.
 */
interface Spelling {
  readonly space: readonly number[];
  readonly escape: readonly number[];
  readonly number: readonly number[];
  readonly order: readonly number[];
}

const spellingArb: fc.Arbitrary<Spelling> = fc.record({
  space: fc.array(fc.nat(15), { minLength: 1, maxLength: 6 }),
  escape: fc.array(fc.nat(15), { minLength: 1, maxLength: 6 }),
  number: fc.array(fc.nat(15), { minLength: 1, maxLength: 6 }),
  order: fc.array(fc.nat(2), { minLength: 1, maxLength: 3 }),
});

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  8: "\\b",
  9: "\\t",
  10: "\\n",
  12: "\\f",
  13: "\\r",
};

/** Writes `value` as JSON text, spelled as `spelling` says (canonical when every choice is 0). */
function render(value: JsonValue, spelling: Spelling): string {
  const turns = { space: 0, escape: 0, number: 0, order: 0 };
  const choose = (kind: keyof Spelling): number => spelling[kind][turns[kind]++ % spelling[kind].length]!;
  const space = (): string => ["", "", "", "", " ", "\n", "\t", "\r\n  "][choose("space") % 8]!;
  const hex4 = (unit: number, upper: boolean): string => {
    const hex = unit.toString(16).padStart(4, "0");
    return `\\u${upper ? hex.toUpperCase() : hex}`;
  };
  const string = (text: string): string => {
    let out = '"';
    for (const char of text) {
      const choice = choose("escape");
      const unit = char.charCodeAt(0);
      if (choice === 15) {
        for (let i = 0; i < char.length; i++) out += hex4(char.charCodeAt(i), false);
      } else if (char === '"' || char === "\\") {
        out += choice === 14 ? hex4(unit, true) : `\\${char}`;
      } else if (unit < 0x20) {
        out +=
          choice < 12 && SHORT_ESCAPES[unit] !== undefined ? SHORT_ESCAPES[unit] : hex4(unit, choice === 13);
      } else if (char === "/" && choice === 14) {
        out += "\\/";
      } else {
        out += char;
      }
    }
    return `${out}"`;
  };
  const number = (n: number): string => {
    const choice = choose("number");
    if (choice === 13) return n.toExponential();
    if (choice === 14) return n.toExponential().toUpperCase().replace("E+", "E");
    if (choice === 15 && Number.isInteger(n) && Math.abs(n) < 1e15) return n.toFixed(1);
    return JSON.stringify(n);
  };
  const write = (item: JsonValue): string => {
    if (item === null || typeof item === "boolean") return String(item);
    if (typeof item === "number") return number(item);
    if (typeof item === "string") return string(item);
    if (Array.isArray(item)) return `[${space()}${item.map((x) => write(x) + space()).join(`,${space()}`)}]`;
    const keys = Object.keys(item).sort();
    const order = choose("order");
    if (order === 1) keys.reverse();
    if (order === 2) keys.push(...keys.splice(0, 1));
    const members = keys.map((key) => `${string(key)}${space()}:${space()}${write(item[key]!)}${space()}`);
    return `{${space()}${members.join(`,${space()}`)}}`;
  };
  return space() + write(value) + space();
}

// fast-check's JsonValue has readonly arrays; the values are plain JSON all the same.
const jsonValueArb: fc.Arbitrary<JsonValue> = fc
  .oneof(
    fc.jsonValue({ maxDepth: 5 }),
    fc.jsonValue({ maxDepth: 3, stringUnit: "binary" }),
    fc.jsonValue({
      maxDepth: 3,
      stringUnit: fc.constantFrom("a", "é", "😀", "\u2028", '"', "\\", "/", "\n", "\u0001", "\u007f"),
    }),
  )
  .map((value) => value as JsonValue);

/** Checks a document's spans against its text: each slices back to its member's key and value. */
function expectSpans(doc: StrictJsonDocument): void {
  const value = doc.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    expect(doc.members).toEqual([]);
    return;
  }
  expect(doc.members.map((member) => member.key).sort()).toEqual(Object.keys(value).sort());
  let previousEnd = 0;
  for (const member of doc.members) {
    expect(member.start).toBeGreaterThan(previousEnd - 1);
    expect(doc.text[member.start]).toBe('"');
    const keyText = doc.text.slice(member.start, member.valueStart).replace(/[ \t\r\n]*:[ \t\r\n]*$/, "");
    expect(JSON.parse(keyText)).toBe(member.key);
    expect(JSON.parse(doc.text.slice(member.valueStart, member.end))).toStrictEqual(value[member.key]);
    expect(doc.text.slice(member.end).trimStart()[0]).toMatch(/[,}]/);
    previousEnd = member.end;
  }
}

describe("parseStrictJson: agreement with JSON.parse", () => {
  it("agrees on generated JSON texts", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), (text) => {
        const expected = JSON.parse(text) as unknown;
        fc.pre(!hasForbiddenKey(expected) && depthOf(expected) <= DEFAULT_MAX_DEPTH);
        expect(parseStrictJson(text)).toStrictEqual(expected);
        expect(parseStrictJson(Buffer.from(text, "utf8"))).toStrictEqual(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it("agrees on pretty-printed texts", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), fc.constantFrom(1, 2, "\t", " \r\n"), (text, indent) => {
        const expected = JSON.parse(text) as unknown;
        fc.pre(!hasForbiddenKey(expected));
        const pretty = JSON.stringify(expected, null, indent);
        expect(parseStrictJson(pretty)).toStrictEqual(expected);
        expect(parseStrictJson(`\n ${pretty}\t\r\n`)).toStrictEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("agrees on texts with varied whitespace, escapes, number forms and key order", () => {
    fc.assert(
      fc.property(jsonValueArb, spellingArb, (value, spelling) => {
        fc.pre(!hasForbiddenKey(value));
        const text = render(value, spelling);
        const doc = parseStrictJsonDocument(text);
        expect(doc.value).toStrictEqual(JSON.parse(text));
        expect(doc.text).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it("reads surrogate pairs, whether literal or escaped", () => {
    expect(parseStrictJson('"😀"')).toBe("😀");
    expect(parseStrictJson('"\\ud83d\\ude00"')).toBe("😀");
    expect(parseStrictJson('{"\\uD83D\\uDE00":1}')).toStrictEqual({ "😀": 1 });
  });
});

describe("parseStrictJsonDocument: the canonical flag", () => {
  it("is true exactly when the text is the canonical form of its value", () => {
    fc.assert(
      fc.property(jsonValueArb, spellingArb, (value, spelling) => {
        fc.pre(!hasForbiddenKey(value));
        for (const text of [render(value, spelling), JSON.stringify(value), canonicalize(value)]) {
          const doc = parseStrictJsonDocument(text);
          expect(doc.canonical).toBe(text === canonicalize(doc.value));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("is true for canonical text, as string or bytes", () => {
    fc.assert(
      fc.property(jsonValueArb, (value) => {
        fc.pre(!hasForbiddenKey(value));
        const text = canonicalize(value);
        expect(parseStrictJsonDocument(text).canonical).toBe(true);
        expect(parseStrictJsonDocument(Buffer.from(text, "utf8")).canonical).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("is false for each way a text can miss canonical form", () => {
    const cases: [string, string][] = [
      ['{"a":1,"b":2}', '{"b":2,"a":1}'],
      ['{"a":1}', '{"a": 1}'],
      ['{"a":1}', ' {"a":1}'],
      ['{"a":1}', '{"a":1}\n'],
      ["[1,2]", "[1, 2]"],
      ['{"a":1}', '{"a":1.0}'],
      ['{"a":100}', '{"a":1e2}'],
      ['{"a":1e+21}', '{"a":1E21}'],
      ['{"a":0.5}', '{"a":5e-1}'],
      ['{"a":0}', '{"a":-0}'],
      ['{"a":1e-7}', '{"a":0.0000001}'],
      ['{"a":1.5}', '{"a":1.50}'],
      ['["a"]', '["\\u0061"]'],
      ['["/"]', '["\\/"]'],
      ['["\\u001f"]', '["\\u001F"]'],
      ['["\\n"]', '["\\u000a"]'],
      ['["\\""]', '["\\u0022"]'],
      ['{"a":1}', '{"\\u0061":1}'],
      ['["😀"]', '["\\ud83d\\ude00"]'],
      ['{"10":1,"2":2}', '{"2":2,"10":1}'],
      ['{"a":[{"b":1,"c":2}]}', '{"a":[{"c":2,"b":1}]}'],
    ];
    for (const [canonical, variant] of cases) {
      const good = parseStrictJsonDocument(canonical);
      const other = parseStrictJsonDocument(variant);
      expect(good.canonical).toBe(true);
      expect(other.canonical).toBe(false);
      expect(canonicalize(other.value)).toBe(canonical);
    }
  });
});

describe("parseStrictJsonDocument: number spellings", () => {
  it("calls a number canonical exactly when ECMAScript prints it that way", () => {
    const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 20 });
    fc.assert(
      fc.property(fc.double({ noNaN: true }), digits, digits, fc.nat(25), (d, whole, fraction, zeros) => {
        const spellings = [
          JSON.stringify(d),
          d.toExponential(),
          d.toPrecision(15),
          d.toPrecision(17),
          d.toFixed(Math.min(zeros, 20)),
          `${whole.replace(/^0+(?=.)/, "") || "0"}${fraction === "" ? "" : `.${fraction}`}`,
          `-0.${"0".repeat(zeros)}${fraction || "1"}`,
        ];
        for (const literal of spellings) {
          let value: unknown;
          try {
            value = JSON.parse(literal);
          } catch {
            continue; // "Infinity", "null" and the like are not number literals
          }
          if (!Number.isFinite(value)) continue;
          const doc = parseStrictJsonDocument(`[${literal}]`);
          expect(doc.canonical).toBe(JSON.stringify(value) === literal);
          expect(doc.value).toStrictEqual([value]);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("parseStrictJsonDocument: member spans", () => {
  it("slice back to each top-level member's key and value", () => {
    fc.assert(
      fc.property(jsonValueArb, spellingArb, (value, spelling) => {
        fc.pre(!hasForbiddenKey(value));
        for (const text of [render(value, spelling), canonicalize(value)])
          expectSpans(parseStrictJsonDocument(text));
      }),
      { numRuns: 1000 },
    );
  });

  it("cover the whole member in canonical text", () => {
    const text = '{"a":{"x":[1,"}"]},"b":"\\"","c":null}';
    const doc = parseStrictJsonDocument(text);
    expect(doc.canonical).toBe(true);
    expect(doc.members.map((m) => text.slice(m.start, m.end))).toEqual([
      '"a":{"x":[1,"}"]}',
      '"b":"\\""',
      '"c":null',
    ]);
    expect(doc.members.map((m) => text.slice(m.valueStart, m.end))).toEqual([
      '{"x":[1,"}"]}',
      '"\\""',
      "null",
    ]);
  });

  it("are in text order and index the decoded text", () => {
    const text = ' { "b" :\t1 ,"a": "é😀" } ';
    const doc = parseStrictJsonDocument(Buffer.from(text, "utf8"));
    expect(doc.text).toBe(text);
    expect(doc.members).toEqual([
      { key: "b", start: 3, valueStart: 9, end: 10 },
      { key: "a", start: 12, valueStart: 17, end: 22 },
    ]);
  });

  it("are empty unless the top level is an object", () => {
    expect(parseStrictJsonDocument('[{"a":1}]').members).toEqual([]);
    expect(parseStrictJsonDocument('"x"').members).toEqual([]);
    expect(parseStrictJsonDocument("{}").members).toEqual([]);
  });
});

describe("parseStrictJsonDocument: refusals", () => {
  it("refuses duplicate keys, also when spelled with escapes", () => {
    expect(reasonFor('{"a":1,"a":2}')).toBe("duplicate key");
    expect(reasonFor('{"a":1,"a":1}')).toBe("duplicate key");
    expect(reasonFor('{"a":1,"\\u0061":2}')).toBe("duplicate key");
    expect(reasonFor('{"\\u0061":1, "a":2}')).toBe("duplicate key");
    expect(reasonFor('{"😀":1,"\\ud83d\\ude00":2}')).toBe("duplicate key");
    expect(reasonFor('{"x":[{"b":1,"b":2}]}')).toBe("duplicate key");
    expect(reasonFor('{"a":1,"b":2,"a":3}')).toBe("duplicate key");
  });

  it("refuses duplicate keys anywhere in generated documents", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), fc.string(), (text, key) => {
        fc.pre(!hasForbiddenKey(JSON.parse(text)) && !FORBIDDEN.has(key));
        const literal = JSON.stringify(key);
        expect(reasonFor(`{${literal}:${text},${literal}:${text}}`)).toBe("duplicate key");
        expect(reasonFor(`[{${literal}:1,"~~":[${text}],${literal}:2}]`)).toBe("duplicate key");
      }),
      { numRuns: 300 },
    );
  });

  it("refuses __proto__, constructor and prototype keys at any depth", () => {
    for (const key of [
      "__proto__",
      "\\u005f_proto__",
      "__proto\\u005f_",
      "constructor",
      "prototype",
      "\\u0070rototype",
    ]) {
      expect(reasonFor(`{"${key}":1}`)).toBe("forbidden key");
      expect(reasonFor(`{"${key}":{}}`)).toBe("forbidden key");
      expect(reasonFor(`{"a":{"${key}":null}}`)).toBe("forbidden key");
      expect(reasonFor(`[[{"a":1,"${key}":[]}]]`)).toBe("forbidden key");
      expect(reasonFor(`{ "z" : [ { "${key}" : 1 } ] }`)).toBe("forbidden key");
    }
    // As values they are ordinary strings.
    expect(parseStrictJson('{"a":"__proto__","b":["constructor","prototype"]}')).toStrictEqual({
      a: "__proto__",
      b: ["constructor", "prototype"],
    });
    expect(parseStrictJson('{"__proto":1,"constructors":2,"xprototype":3}')).toStrictEqual({
      __proto: 1,
      constructors: 2,
      xprototype: 3,
    });
  });

  it("refuses nesting past the default depth of 64", () => {
    const arrays = (n: number): string => "[".repeat(n) + "]".repeat(n);
    const objects = (n: number): string => '{"a":'.repeat(n - 1) + "{}" + "}".repeat(n - 1);
    expect(DEFAULT_MAX_DEPTH).toBe(64);
    expect(parseStrictJsonDocument(arrays(64)).canonical).toBe(true);
    expect(parseStrictJsonDocument(objects(64)).canonical).toBe(true);
    expect(reasonFor(arrays(65))).toBe("nesting too deep");
    expect(reasonFor(objects(65))).toBe("nesting too deep");
    expect(reasonFor(`[${arrays(64)}, 1]`)).toBe("nesting too deep");
    expect(reasonFor(arrays(10_000))).toBe("nesting too deep");
  });

  it("refuses nesting past a custom maxDepth", () => {
    expect(parseStrictJson("[[[1]]]", { maxDepth: 3 })).toStrictEqual([[[1]]]);
    expect(reasonFor("[[[[1]]]]", { maxDepth: 3 })).toBe("nesting too deep");
    expect(reasonFor('{"a":{"b":{}}}', { maxDepth: 2 })).toBe("nesting too deep");
    expect(parseStrictJson("1", { maxDepth: 0 })).toBe(1);
    expect(reasonFor("[]", { maxDepth: 0 })).toBe("nesting too deep");
    const deep = "[".repeat(100) + "]".repeat(100);
    expect(parseStrictJson(deep, { maxDepth: 100 })).toBeDefined();
    expect(reasonFor(deep, { maxDepth: 99 })).toBe("nesting too deep");
  });

  it("refuses input over maxBytes, counting UTF-8 bytes", () => {
    const text = `"${"é".repeat(10)}"`; // 12 characters, 22 bytes
    expect(parseStrictJson(text, { maxBytes: 22 })).toBe("é".repeat(10));
    expect(reasonFor(text, { maxBytes: 21 })).toBe("too_large");
    expect(reasonFor(text, { maxBytes: 12 })).toBe("too_large");
    expect(parseStrictJson(Buffer.from(text, "utf8"), { maxBytes: 22 })).toBe("é".repeat(10));
    expect(reasonFor(Buffer.from(text, "utf8"), { maxBytes: 21 })).toBe("too_large");
    const emoji = `"${"😀".repeat(4)}"`; // 10 characters, 18 bytes
    expect(reasonFor(emoji, { maxBytes: 17 })).toBe("too_large");
    expect(parseStrictJson(emoji, { maxBytes: 18 })).toBe("😀".repeat(4));
  });

  it("refuses input over the default 1 MiB", () => {
    const exact = `"${"x".repeat(DEFAULT_MAX_BYTES - 2)}"`;
    expect(parseStrictJsonDocument(exact).canonical).toBe(true);
    expect(reasonFor(`${exact} `)).toBe("too_large");
    expect(reasonFor(Buffer.from(`${exact} `))).toBe("too_large");
  });

  it("refuses invalid UTF-8", () => {
    for (const bytes of [
      [0x22, 0xff, 0x22],
      [0x22, 0xc3, 0x22], // truncated sequence
      [0x22, 0x80, 0x22], // lone continuation byte
      [0x22, 0xc0, 0xaf, 0x22], // overlong "/"
      [0x22, 0xed, 0xa0, 0x80, 0x22], // an encoded surrogate
      [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], // past U+10FFFF
    ]) {
      expect(reasonFor(Uint8Array.from(bytes))).toBe("utf8");
    }
  });

  it("refuses lone surrogates", () => {
    for (const text of [
      '"\\ud800"',
      '"\\udc00"',
      '"a\\ud83d"',
      '"\\ude00\\ud83d"',
      '"\\ud800\\u0041"',
      '{"\\udfff":1}',
    ]) {
      expect(reasonFor(text)).toBe("lone surrogate in string");
    }
    // A string can carry a raw lone surrogate, which bytes cannot.
    expect(reasonFor('"\ud800"')).toBe("lone surrogate in string");
    expect(reasonFor('{"a":"x\udc00"}')).toBe("lone surrogate in string");
    expect(reasonFor('{"\ud83d":1}')).toBe("lone surrogate in string");
  });

  it("refuses trailing data and a leading byte order mark", () => {
    expect(reasonFor("{} {}")).toBe("trailing data");
    expect(reasonFor('{"a":1}x')).toBe("trailing data");
    expect(reasonFor("1 2")).toBe("trailing data");
    expect(reasonFor("[1]]")).toBe("trailing data");
    expect(reasonFor("\ufeff{}")).toBe("unexpected character");
    expect(reasonFor(Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]))).toBe("unexpected character");
    expect(parseStrictJsonDocument("{} \n").canonical).toBe(false);
  });

  it("refuses control characters in strings", () => {
    for (let unit = 0; unit < 0x20; unit++) {
      expect(reasonFor(`["a${String.fromCharCode(unit)}"]`)).toBe("control character in string");
      expect(reasonFor(`{"${String.fromCharCode(unit)}":1}`)).toBe("control character in string");
    }
    expect(parseStrictJson('"\u007f\u2028"')).toBe("\u007f\u2028");
  });

  it("refuses bad escapes", () => {
    expect(reasonFor('"\\x"')).toBe("invalid escape");
    expect(reasonFor('"\\U0041"')).toBe("invalid escape");
    expect(reasonFor('"\\\'"')).toBe("invalid escape");
    expect(reasonFor('"\\u12"')).toBe("invalid unicode escape");
    expect(reasonFor('"\\u12g4"')).toBe("invalid unicode escape");
    expect(reasonFor('"\\u-123"')).toBe("invalid unicode escape");
    expect(reasonFor('"abc')).toBe("unterminated string");
    expect(reasonFor('"abc\\"')).toBe("unterminated string");
  });

  it("refuses malformed numbers and numbers out of range", () => {
    expect(reasonFor("01")).toBe("trailing data");
    expect(reasonFor("[01]")).toBe("expected , or ]");
    expect(reasonFor("1.")).toBe("trailing data");
    expect(reasonFor("[1.]")).toBe("expected , or ]");
    expect(reasonFor(".5")).toBe("unexpected character");
    expect(reasonFor("+1")).toBe("unexpected character");
    expect(reasonFor("-")).toBe("invalid number");
    expect(reasonFor("[-]")).toBe("invalid number");
    expect(reasonFor("1e")).toBe("trailing data");
    expect(reasonFor("1e400")).toBe("number out of range");
    expect(reasonFor("[-1e400]")).toBe("number out of range");
    expect(reasonFor("NaN")).toBe("unexpected character");
    expect(parseStrictJson("[-0, 1E2, 1e-400, 0.1e1]")).toStrictEqual([-0, 100, 0, 1]);
  });

  it("refuses other malformed documents", () => {
    expect(reasonFor("")).toBe("unexpected end");
    expect(reasonFor("  ")).toBe("unexpected end");
    expect(reasonFor("[")).toBe("unexpected end");
    expect(reasonFor("[1,]")).toBe("unexpected character");
    expect(reasonFor('{"a":1,}')).toBe("expected a key");
    expect(reasonFor("{a:1}")).toBe("expected a key");
    expect(reasonFor('{"a" 1}')).toBe("expected :");
    expect(reasonFor('{"a":1')).toBe("expected , or }");
    expect(reasonFor('{"a":1 "b":2}')).toBe("expected , or }");
    expect(reasonFor("[1 2]")).toBe("expected , or ]");
    expect(reasonFor("nul")).toBe("unexpected character");
    expect(reasonFor("True")).toBe("unexpected character");
  });

  it("refuses every corrupted document JSON.parse refuses", () => {
    fc.assert(
      fc.property(
        fc.json({ maxDepth: 3 }),
        fc.nat(),
        fc.constantFrom(
          ",",
          "}",
          "]",
          "{",
          "[",
          ":",
          '"',
          "\\",
          "-",
          ".",
          "e",
          "0",
          " ",
          "\u0000",
          "\ufeff",
          "x",
        ),
        (text, at, insert) => {
          const position = at % (text.length + 1);
          const corrupted = text.slice(0, position) + insert + text.slice(position);
          let valid = true;
          try {
            JSON.parse(corrupted);
          } catch {
            valid = false;
          }
          if (!valid) expect(typeof reasonFor(corrupted)).toBe("string");
        },
      ),
      { numRuns: 1000 },
    );
  });
});
