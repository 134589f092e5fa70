// Audit entries: the dedicated serializer equals RFC 8785 byte for byte, the hash is the documented
// leaf hash, parsing is exact, and the verifier's scan finds the right members in any entry.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AuditChain } from "../../src/audit/chain.js";
import { type EntryFrame, scanEntryFrame } from "../../src/audit/entry-scan.js";
import {
  AUDIT_ENTRY_DOMAIN,
  AUDIT_GENESIS_HASH,
  type AuditEntryFields,
  auditEntryHash,
  auditEntryText,
  encodeAuditEntry,
  formatAuditTime,
  parseAuditEntry,
  parseAuditTime,
} from "../../src/audit/entry.js";
import {
  MerkleFrontier,
  merkleLeafHash,
  merkleRoot,
  sha256ContentHash,
  sha256HashBytes,
} from "../../src/audit/merkle.js";
import { SignetError } from "../../src/errors/signet-error.js";
import { canonicalize } from "../../src/json/canonical-json.js";
import { entryFields, freeText } from "./arbitraries.js";

const base: AuditEntryFields = {
  seq: 0,
  id: "0193f5b2-1c3d-7a4b-8c5d-6e7f8a9b0c1d",
  time: "2026-11-22T10:00:00.123456Z",
  type: "invocation",
  actor: "alice",
  target: "tool:database/query",
  outcome: "allow",
  rules: ["global/allow-db"],
  prev_hash: AUDIT_GENESIS_HASH,
};

/** The `reason` of the SignetError `fn` throws. */
function refusal(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SignetError);
    expect((error as SignetError).code).toBe("INVALID_REQUEST");
    return (error as SignetError).details.reason;
  }
  throw new Error("expected a refusal");
}

describe("entry bytes", () => {
  it("are the RFC 8785 canonical JSON of the fields, byte for byte, for any entry", () => {
    fc.assert(
      fc.property(entryFields, (fields) => {
        const { bytes } = encodeAuditEntry(fields);
        expect(bytes.toString("utf8")).toBe(canonicalize(fields));
        expect(auditEntryText(fields)).toBe(canonicalize(fields));
      }),
      { numRuns: 500 },
    );
  });

  it("hash as SHA-256(0x00 ‖ domain ‖ bytes): the RFC 9162 leaf hash of the domain-prefixed entry", () => {
    fc.assert(
      fc.property(entryFields, (fields) => {
        const { bytes, hash } = encodeAuditEntry(fields);
        const expected = createHash("sha256")
          .update(Buffer.of(0x00))
          .update(AUDIT_ENTRY_DOMAIN)
          .update(bytes)
          .digest("hex");
        expect(hash).toBe(`sha256:${expected}`);
        expect(auditEntryHash(bytes)).toBe(hash);
        expect(
          sha256ContentHash(merkleLeafHash(Buffer.concat([Buffer.from(AUDIT_ENTRY_DOMAIN), bytes]))),
        ).toBe(hash);
      }),
      { numRuns: 200 },
    );
  });

  it("parse back to the same entry, which encodes to the same bytes", () => {
    fc.assert(
      fc.property(entryFields, (fields) => {
        const { bytes, hash } = encodeAuditEntry(fields);
        const parsed = parseAuditEntry(bytes);
        expect(parsed.hash).toBe(hash);
        expect(encodeAuditEntry(parsed).bytes.equals(bytes)).toBe(true);
        expect(parsed.seq).toBe(fields.seq);
        expect(parsed.prev_hash).toBe(fields.prev_hash);
        expect(parsed.actor).toBe(fields.actor);
        expect(parsed.rules).toEqual(fields.rules);
      }),
      { numRuns: 300 },
    );
  });

  it("of a minimal entry are exactly as documented", () => {
    const { bytes } = encodeAuditEntry({
      seq: 7,
      id: "e7",
      time: base.time,
      type: "admin_action",
      outcome: "success",
      prev_hash: AUDIT_GENESIS_HASH,
    });
    expect(bytes.toString()).toBe(
      `{"id":"e7","outcome":"success","prev_hash":"${AUDIT_GENESIS_HASH}","seq":7,"time":"2026-11-22T10:00:00.123456Z","type":"admin_action"}`,
    );
  });
});

describe("encoding refuses", () => {
  const cases: [string, Partial<Record<keyof AuditEntryFields, unknown>>][] = [
    ["a negative seq", { seq: -1 }],
    ["a fractional seq", { seq: 1.5 }],
    ["an unsafe seq", { seq: 2 ** 53 }],
    ["an id with a quote", { id: 'a"b' }],
    ["a time without microseconds", { time: "2026-11-22T10:00:00.123Z" }],
    ["a time with an offset", { time: "2026-11-22T10:00:00.123456+01:00" }],
    ["month 13", { time: "2026-13-22T10:00:00.123456Z" }],
    ["an upper-case type", { type: "Invocation" }],
    ["an unknown outcome", { outcome: "maybe" }],
    ["a lower-case code", { code: "denied" }],
    ["an empty actor", { actor: "" }],
    ["an actor that is not a string", { actor: 42 }],
    ["a lone surrogate", { target: "tool:\ud800" }],
    ["rules that are not strings", { rules: [1] }],
    [
      "a request without a signature",
      { request: { hash: AUDIT_GENESIS_HASH, id: "x", kid: "k".repeat(43) } },
    ],
    [
      "a request with a malformed hash",
      { request: { hash: "sha256:00", id: "x", kid: "k".repeat(43), sig: "s".repeat(86) } },
    ],
    ["metadata that is an array", { metadata: [] }],
    ["params with no JSON form", { params: { x: Number.NaN } }],
    ["an upper-case prev_hash", { prev_hash: AUDIT_GENESIS_HASH.toUpperCase() }],
  ];
  it.each(cases)("%s", (_name, change) => {
    expect(refusal(() => encodeAuditEntry({ ...base, ...change } as AuditEntryFields))).toBe("audit_entry");
  });
});

describe("parsing refuses what encoding would never write", () => {
  const good = encodeAuditEntry({ ...base, params: { q: "x" } }).bytes.toString();
  const cases: [string, string | Uint8Array][] = [
    ["whitespace", good.replace('"id":', '"id": ')],
    ["another key order", good.replace(/^\{"actor":"alice",("id":"[^"]*"),/, '{$1,"actor":"alice",')],
    ["a duplicate key", good.replace('"outcome":"allow"', '"outcome":"deny","outcome":"allow"')],
    ["an unknown member", good.replace('"outcome":', '"extra":1,"outcome":')],
    [
      "an unknown member in a request",
      encodeAuditEntry({
        ...base,
        request: { hash: AUDIT_GENESIS_HASH, id: "r", kid: "k".repeat(43), sig: "s".repeat(86) },
      })
        .bytes.toString()
        .replace('"kid":', '"x":1,"kid":'),
    ],
    ["a non-canonical escape", good.replace('"alice"', '"\\u0061lice"')],
    ["a non-canonical number", good.replace('"seq":0', '"seq":0.0')],
    ["a missing member", good.replace(/"outcome":"allow",/, "")],
    ["a lone surrogate escape", good.replace('"alice"', '"\\ud800"')],
    ["not JSON", good.slice(0, -1)],
    ["an array", "[]"],
    [
      "invalid UTF-8",
      Buffer.concat([Buffer.from(good.slice(0, 10)), Buffer.of(0xff), Buffer.from(good.slice(10))]),
    ],
    ["a byte-order mark", `\ufeff${good}`],
  ];
  it.each(cases)("%s", (_name, text) => {
    expect(parseAuditEntry(Buffer.from(good)).seq).toBe(0);
    const bytes = typeof text === "string" ? Buffer.from(text) : text;
    expect(refusal(() => parseAuditEntry(bytes))).toBe("audit_entry");
  });
});

describe("entry times", () => {
  it("format microseconds as RFC 3339 UTC with six digits, and parse back", () => {
    expect(formatAuditTime(1763805600123456)).toBe("2025-11-22T10:00:00.123456Z");
    expect(formatAuditTime(0)).toBe("1970-01-01T00:00:00.000000Z");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (micros) => {
        expect(parseAuditTime(formatAuditTime(micros))).toBe(micros);
      }),
    );
  });

  it("parse any four-digit year exactly as Date reads the same text, refusing days that do not exist", () => {
    const two = (n: number): string => String(n).padStart(2, "0");
    const byDate = (time: string): number | undefined => {
      const millis = Date.parse(`${time.slice(0, 23)}Z`);
      if (Number.isNaN(millis) || new Date(millis).toISOString().slice(0, 23) !== time.slice(0, 23)) {
        return undefined;
      }
      return millis * 1000 + Number(time.slice(23, 26));
    };
    fc.assert(
      fc.property(
        fc.record({
          year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1600, 1900, 2000, 2100, 2400)),
          month: fc.integer({ min: 1, max: 12 }),
          day: fc.integer({ min: 1, max: 31 }),
          hour: fc.integer({ min: 0, max: 23 }),
          minute: fc.integer({ min: 0, max: 59 }),
          second: fc.integer({ min: 0, max: 59 }),
          micros: fc.integer({ min: 0, max: 999_999 }),
        }),
        ({ year, month, day, hour, minute, second, micros }) => {
          const time = `${String(year).padStart(4, "0")}-${two(month)}-${two(day)}T${two(hour)}:${two(minute)}:${two(second)}.${String(micros).padStart(6, "0")}Z`;
          expect(parseAuditTime(time)).toBe(byDate(time));
        },
      ),
      { numRuns: 2000 },
    );
    expect(parseAuditTime("2024-02-29T00:00:00.000000Z")).toBe(Date.UTC(2024, 1, 29) * 1000);
    expect(parseAuditTime("2100-02-29T00:00:00.000000Z")).toBeUndefined();
  });

  it("refuse what is not a real instant", () => {
    expect(parseAuditTime("2026-02-30T10:00:00.000000Z")).toBeUndefined();
    expect(parseAuditTime("2026-11-22T10:00:00Z")).toBeUndefined();
    expect(refusal(() => formatAuditTime(-1))).toBe("audit_time");
    expect(refusal(() => formatAuditTime(1.5))).toBe("audit_time");
  });
});

describe("the verifier's scan", () => {
  const frame: EntryFrame = { seq: -1, prevHashOffset: -1 };

  it("finds seq and prev_hash in any entry, whatever params and metadata hold", () => {
    fc.assert(
      fc.property(entryFields, (fields) => {
        const { bytes } = encodeAuditEntry(fields);
        expect(scanEntryFrame(bytes, 0, bytes.length, frame)).toBe(true);
        expect(frame.seq).toBe(fields.seq);
        expect(`sha256:${bytes.toString("latin1", frame.prevHashOffset, frame.prevHashOffset + 64)}`).toBe(
          fields.prev_hash,
        );
      }),
      { numRuns: 300 },
    );
  });

  it("is not fooled by the same keys nested in params, metadata or strings", () => {
    const decoy = `sha256:${"f".repeat(64)}`;
    const fields: AuditEntryFields = {
      ...base,
      seq: 42,
      actor: '"prev_hash":"x","seq":1,\\',
      params: { prev_hash: decoy, seq: 1, nested: [{ prev_hash: decoy }, '"seq":2}'] },
      metadata: { seq: 3, prev_hash: decoy },
      prev_hash: `sha256:${"a".repeat(64)}`,
    };
    const { bytes } = encodeAuditEntry(fields);
    expect(scanEntryFrame(bytes, 0, bytes.length, frame)).toBe(true);
    expect(frame.seq).toBe(42);
    expect(bytes.toString("latin1", frame.prevHashOffset, frame.prevHashOffset + 64)).toBe("a".repeat(64));
  });

  it("reads an entry inside a larger buffer and refuses what is not one", () => {
    const { bytes } = encodeAuditEntry({ ...base, seq: 9 });
    const line = Buffer.concat([Buffer.from('{"entry":'), bytes, Buffer.from("}")]);
    expect(scanEntryFrame(line, 9, 9 + bytes.length, frame)).toBe(true);
    expect(frame.seq).toBe(9);
    const text = bytes.toString();
    for (const bad of [
      "{}",
      text.replace('"seq":9', '"seq":09'),
      text.replace('"seq":9', '"seq":-9'),
      text.replace('"seq":9', '"seq":9,"seq":9'),
      text.replace('"seq":9', '"seq":"9"'),
      text.replace(`"prev_hash":"${AUDIT_GENESIS_HASH}"`, '"prev_hash":"sha256:00"'),
      text.replace(/,"prev_hash":"[^"]*"/, ""),
      `${text} `,
      text.slice(0, -1),
    ]) {
      const buffer = Buffer.from(bad);
      expect(scanEntryFrame(buffer, 0, buffer.length, frame), bad).toBe(false);
    }
  });

  it("never throws or reads past the range on mangled bytes", () => {
    fc.assert(
      fc.property(entryFields, fc.nat(), fc.integer({ min: 0, max: 255 }), (fields, at, byte) => {
        const { bytes } = encodeAuditEntry(fields);
        const mangled = Buffer.from(bytes);
        mangled[at % mangled.length] = byte;
        const padded = Buffer.concat([mangled, Buffer.from('"}]')]);
        expect(() => scanEntryFrame(padded, 0, mangled.length, frame)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it("strings with every escape keep the scan on track", () => {
    fc.assert(
      fc.property(freeText(), fc.maxSafeNat(), (text, seq) => {
        const { bytes } = encodeAuditEntry({
          ...base,
          seq,
          actor: text,
          target: text,
          params: [text, { [text]: text }],
        });
        expect(scanEntryFrame(bytes, 0, bytes.length, frame)).toBe(true);
        expect(frame.seq).toBe(seq);
      }),
    );
  });
});

describe("the chain", () => {
  const draft = { id: "e", time: base.time, type: "invocation", outcome: "allow" as const };

  it("numbers from 0, links each entry to the one before, and keeps the Merkle root", () => {
    const chain = new AuditChain();
    const frontier = new MerkleFrontier();
    let prev = AUDIT_GENESIS_HASH;
    for (let i = 0; i < 20; i++) {
      const sealed = chain.append({ ...draft, id: `e${i}` });
      const entry = parseAuditEntry(sealed.bytes);
      expect(sealed.seq).toBe(i);
      expect(entry.seq).toBe(i);
      expect(entry.prev_hash).toBe(prev);
      expect(entry.hash).toBe(sealed.hash);
      prev = sealed.hash;
      frontier.append(Buffer.from(sealed.hash.slice(7), "hex"));
      expect(chain.rootHash()).toBe(frontier.rootHash());
    }
    expect(chain.lastHash).toBe(prev);
  });

  it("restores from its saved state and rolls back by cloning", () => {
    const chain = new AuditChain();
    for (let i = 0; i < 13; i++) chain.append({ ...draft, id: `e${i}` });
    const saved = chain.state();
    const restored = AuditChain.restore(JSON.parse(JSON.stringify(saved)));
    const before = chain.clone();
    const a = chain.append({ ...draft, id: "next" });
    const b = restored.append({ ...draft, id: "next" });
    expect(b).toEqual(a);
    expect(restored.rootHash()).toBe(chain.rootHash());
    expect(before.size).toBe(13);
    expect(before.append({ ...draft, id: "next" })).toEqual(a);
    expect(() => AuditChain.restore({ ...saved, size: 12 })).toThrow(/one node per set bit/);
    expect(() => AuditChain.restore({ size: 0, last_hash: saved.last_hash, frontier: [] })).toThrow(
      /genesis/,
    );
  });

  it("gives the root of the last power-of-two run of entries the append completed, at no hash", () => {
    const chain = new AuditChain();
    const leaves: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 21) {
        const restored = AuditChain.restore(chain.state());
        expect(restored.lastSubtreeRoot(1)).toBeUndefined();
      }
      const sealed = chain.append({ ...draft, id: `e${i}` });
      leaves.push(sha256HashBytes(sealed.hash));
      const copy = chain.clone();
      for (const run of [1, 2, 4, 8, 16, 32]) {
        const expected = chain.size % run === 0 ? merkleRoot(leaves.slice(-run)) : undefined;
        expect(chain.lastSubtreeRoot(run)).toEqual(expected);
        expect(copy.lastSubtreeRoot(run)).toEqual(expected);
      }
    }
    for (const bad of [0, 3, 12, 2 ** 31, 1.5]) {
      expect(() => chain.lastSubtreeRoot(bad)).toThrow(SignetError);
    }
  });

  it("refuses a bad entry without advancing", () => {
    const chain = new AuditChain();
    expect(() => chain.append({ ...draft, outcome: "nope" as never })).toThrow(SignetError);
    expect(chain.size).toBe(0);
    expect(chain.lastHash).toBe(AUDIT_GENESIS_HASH);
  });
});
