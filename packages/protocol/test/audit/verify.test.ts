// The export verifier: an intact log verifies with only the public key, and each kind of tampering
// is reported at the sequence number of the first bad entry.
import { describe, expect, it } from "vitest";
import { type Checkpoint, checkpointHash, signCheckpoint } from "../../src/audit/checkpoint.js";
import { AUDIT_GENESIS_HASH, auditEntryHash, encodeAuditEntry } from "../../src/audit/entry.js";
import {
  auditExportEntryLine,
  auditExportFromJson,
  auditExportRecordLine,
  parseAuditExportNdjson,
  verifyAuditNdjson,
} from "../../src/audit/export-format.js";
import {
  type AuditExport,
  type AuditExportEntry,
  type AuditVerifyReport,
  createAuditAnchor,
  verifyAuditExport,
} from "../../src/audit/verify.js";
import { SignetError } from "../../src/errors/signet-error.js";
import { KEY_1, KEY_2, OTHER_KEY, buildLog, exportOf, reencode, timeOf } from "./log-fixture.js";

const LOG = buildLog(55); // checkpoints at 10, 20, 30, 40, 50; entries 50..54 not yet anchored
const verify = (exported: AuditExport, pinned?: Checkpoint[]): AuditVerifyReport =>
  verifyAuditExport(exported, { key: KEY_1.publicKey, ...(pinned ? { pinned } : {}) });

/** The NDJSON form of an export. */
function ndjson(exported: AuditExport): Buffer {
  const records = [
    auditExportRecordLine({ export: { format: "signet-audit", note: "test" } }),
    ...exported.keys.map((key) => auditExportRecordLine({ key })),
    ...(exported.anchor === undefined ? [] : [auditExportRecordLine({ anchor: exported.anchor })]),
    ...exported.checkpoints.map((checkpoint) => auditExportRecordLine({ checkpoint })),
  ].join("");
  const lines = exported.entries.map((item) => {
    const entry = item instanceof Uint8Array ? { bytes: item } : item;
    return entry.hash === undefined
      ? Buffer.concat([Buffer.from('{"entry":'), entry.bytes, Buffer.from("}\n")])
      : auditExportEntryLine(entry.bytes, entry.hash as `sha256:${string}`);
  });
  return Buffer.concat([Buffer.from(records), ...lines]);
}

/** Verifies both as a structured export and as NDJSON, expects the same report, and returns it. */
function check(exported: AuditExport, pinned?: Checkpoint[]): AuditVerifyReport {
  const report = verify(exported, pinned);
  const options = { key: KEY_1.publicKey, ...(pinned ? { pinned } : {}) };
  const fromLines = verifyAuditNdjson(ndjson(exported), options);
  expect(fromLines).toEqual(report);
  expect(verifyAuditExport(parseAuditExportNdjson(ndjson(exported)), options)).toEqual(report);
  return report;
}

function expectProblem(report: AuditVerifyReport, kind: string, seq: number | undefined): void {
  expect(report.ok, report.problem?.message).toBe(false);
  expect(report.problem?.kind, report.problem?.message).toBe(kind);
  expect(report.problem?.seq, report.problem?.message).toBe(seq);
}

/** Flips one letter inside entry `seq`'s params, keeping the bytes valid JSON. */
function editByte(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  const at = out.indexOf("SKU-");
  out[at] = "T".charCodeAt(0);
  return out;
}

describe("an intact log", () => {
  it("verifies with only the runtime's public key; the tail after the last checkpoint is not yet anchored", () => {
    const report = check(exportOf(LOG));
    expect(report).toMatchObject({
      ok: true,
      entries: 55,
      first_seq: 0,
      tree_size: 55,
      anchored_size: 50,
      unanchored: 5,
      checkpoints: 5,
    });
    expect(report.latest_checkpoint?.tree_size).toBe(50);
    expect(report.problem).toBeUndefined();
  });

  it("verifies without recorded hashes, and with the full parse", () => {
    const exported = exportOf(LOG);
    expect(check({ ...exported, entries: exported.entries.map((entry) => entry.bytes) }).ok).toBe(true);
    expect(verifyAuditExport(exported, { key: KEY_1.publicKey, parseEntries: true }).ok).toBe(true);
  });

  it("an empty log with no checkpoints is fine", () => {
    expect(check({ keys: LOG.keys, checkpoints: [], entries: [] })).toMatchObject({
      ok: true,
      tree_size: 0,
      unanchored: 0,
    });
  });
});

describe("tampering is reported at the first bad entry", () => {
  it.each([0, 7, 9, 10, 33, 49, 50, 54])(
    "a byte edited in entry %i (recorded hash left as it was)",
    (seq) => {
      const exported = exportOf(LOG);
      exported.entries[seq] = { ...exported.entries[seq]!, bytes: editByte(exported.entries[seq]!.bytes) };
      const report = check(exported);
      expectProblem(report, "edited", seq);
      expect(report.problem?.message).toMatch(/recorded hash/);
    },
  );

  it.each([0, 5, 9, 19, 33, 48])(
    "entry %i edited with its hash recomputed (caught by the next link)",
    (seq) => {
      const exported = exportOf(LOG);
      exported.entries[seq] = reencode(exported.entries[seq]!, { actor: "mallory" });
      expectProblem(check(exported), "edited", seq);
    },
  );

  it.each([9, 29, 49])("entry %i, the last under a checkpoint, edited with its hash recomputed", (seq) => {
    const exported = exportOf(LOG);
    exported.entries[seq] = reencode(exported.entries[seq]!, { actor: "mallory" });
    expectProblem(check(exported), "edited", seq);
  });

  it("an edited last entry beyond every checkpoint cannot be told apart: it is not yet anchored", () => {
    const exported = exportOf(LOG);
    exported.entries[54] = reencode(exported.entries[54]!, { actor: "mallory" });
    expect(check(exported)).toMatchObject({ ok: true, unanchored: 5 });
  });

  it.each([3, 20, 41])("entry %i's prev_hash changed, with its hash recomputed", (seq) => {
    const exported = exportOf(LOG);
    exported.entries[seq] = reencode(exported.entries[seq]!, {
      prev_hash: AUDIT_GENESIS_HASH.replace(/0$/, "1") as `sha256:${string}`,
    });
    expectProblem(check(exported), "edited", seq);
  });

  it.each([0, 1, 10, 25, 49, 53])("entry %i deleted", (seq) => {
    const exported = exportOf(LOG);
    exported.entries.splice(seq, 1);
    const report = check(exported);
    expectProblem(report, "deleted", seq);
    expect(report.problem?.message).toBe(`Entry ${seq} is missing`);
  });

  it("a run of entries deleted", () => {
    const exported = exportOf(LOG);
    exported.entries.splice(12, 3);
    const report = check(exported);
    expectProblem(report, "deleted", 12);
    expect(report.problem?.message).toBe("Entries 12..14 are missing");
  });

  it.each([0, 8, 9, 30, 53])("entries %i and the next swapped", (seq) => {
    const exported = exportOf(LOG);
    const entries = exported.entries;
    [entries[seq], entries[seq + 1]] = [entries[seq + 1]!, entries[seq]!];
    expectProblem(check(exported), "reordered", seq);
  });

  it("an entry moved far down the log", () => {
    const exported = exportOf(LOG);
    const [moved] = exported.entries.splice(4, 1);
    exported.entries.splice(40, 0, moved!);
    expectProblem(check(exported), "reordered", 4);
  });

  it.each([1, 10, 22, 50, 54])(
    "a forged entry inserted before entry %i, linked to the entry before",
    (seq) => {
      const exported = exportOf(LOG);
      const forged = encodeAuditEntry({
        seq,
        id: "forged",
        time: timeOf(seq),
        type: "invocation",
        actor: "mallory",
        outcome: "allow",
        prev_hash: exported.entries[seq - 1]!.hash as `sha256:${string}`,
      });
      exported.entries.splice(seq, 0, forged);
      expectProblem(check(exported), "inserted", seq);
    },
  );

  it("a forged entry inserted after the entry whose seq it copies", () => {
    const exported = exportOf(LOG);
    const forged = reencode(exported.entries[15]!, { actor: "mallory" });
    exported.entries.splice(16, 0, forged);
    expectProblem(check(exported), "inserted", 15);
  });

  it("an entry with its seq changed", () => {
    const exported = exportOf(LOG);
    exported.entries[17] = reencode(exported.entries[17]!, { seq: 18 });
    expectProblem(check(exported), "edited", 17);
  });

  it.each([0, 5, 31, 49])("the log truncated to %i entries, below a signed checkpoint", (size) => {
    const exported = exportOf(LOG);
    exported.entries.length = size;
    const report = check(exported);
    expectProblem(report, "truncated", size);
    expect(report.problem?.tree_size).toBe(Math.floor(size / 10) * 10 + 10);
  });

  it("truncated above the last checkpoint is only fewer unanchored entries", () => {
    const exported = exportOf(LOG);
    exported.entries.length = 52;
    expect(check(exported)).toMatchObject({ ok: true, unanchored: 2 });
  });

  it("the log rewritten and re-linked from entry 23 is caught by the checkpoint at 30", () => {
    const exported = exportOf(LOG);
    let prev = exported.entries[22]!.hash;
    for (let seq = 23; seq < 55; seq++) {
      const rewritten = reencode(exported.entries[seq]!, {
        prev_hash: prev as `sha256:${string}`,
        ...(seq === 23 ? { actor: "mallory" } : {}),
      });
      exported.entries[seq] = rewritten;
      prev = rewritten.hash;
    }
    const report = check(exported);
    expectProblem(report, "rewritten", 20);
    expect(report.problem?.tree_size).toBe(30);
    expect(report.problem?.message).toMatch(/20\.\.29/);
  });

  it("bytes that are not an entry", () => {
    const exported = exportOf(LOG);
    exported.entries[12] = { bytes: Buffer.from("{not json") };
    expectProblem(check(exported), "malformed", 12);
  });

  it("an entry linked and anchored but not in canonical form is caught by the full parse", () => {
    // A runtime bug rather than tampering: the bytes hash and link, so only parsing can tell.
    const log = buildLog(0);
    const text = `{"id":"\\u006fdd","outcome":"allow","prev_hash":"${AUDIT_GENESIS_HASH}","seq":0,"time":"${timeOf(0)}","type":"invocation"}`;
    const bytes = Buffer.from(text);
    const exported = { keys: log.keys, checkpoints: [], entries: [{ bytes, hash: auditEntryHash(bytes) }] };
    expect(verifyAuditExport(exported, { key: KEY_1.publicKey }).ok).toBe(true);
    const strict = verifyAuditExport(exported, { key: KEY_1.publicKey, parseEntries: true });
    expectProblem(strict, "malformed", 0);
  });
});

describe("checkpoints and keys", () => {
  it("a checkpoint whose root was changed fails its signature", () => {
    const exported = exportOf(LOG);
    exported.checkpoints[2] = { ...exported.checkpoints[2]!, root_hash: exported.checkpoints[1]!.root_hash };
    const report = check(exported);
    expect(report.problem).toMatchObject({ kind: "checkpoint", tree_size: 30 });
  });

  it("a checkpoint removed from the middle breaks the checkpoint chain", () => {
    const exported = exportOf(LOG);
    exported.checkpoints.splice(1, 1);
    expect(check(exported).problem).toMatchObject({ kind: "checkpoint", tree_size: 30 });
  });

  it("a checkpoint signed by a key outside the chain is refused", () => {
    const exported = exportOf(LOG);
    const { kid: _kid, sig: _sig, ...fields } = exported.checkpoints[4]!;
    exported.checkpoints[4] = signCheckpoint(fields, OTHER_KEY);
    expect(check(exported).problem).toMatchObject({ kind: "checkpoint", tree_size: 50 });
  });

  it("two signed roots for one tree size are a fork", () => {
    const exported = exportOf(LOG);
    const last = exported.checkpoints.at(-1)!;
    const conflicting = signCheckpoint(
      {
        tree_size: 50,
        root_hash: exported.checkpoints[0]!.root_hash,
        time: timeOf(60),
        prev: checkpointHash(last),
      },
      KEY_1,
    );
    expect(check(exported, [conflicting]).problem).toMatchObject({ kind: "fork", tree_size: 50 });
  });

  it("an auditor's pinned checkpoint catches a log cut short together with its checkpoints", () => {
    const exported = exportOf(LOG);
    const pinned = exported.checkpoints.at(-1)!;
    exported.entries.length = 30;
    exported.checkpoints.length = 3;
    expect(check(exported).ok).toBe(true);
    expectProblem(check(exported, [pinned]), "truncated", 30);
  });

  it("an untrusted key verifies nothing", () => {
    const report = verifyAuditExport(exportOf(LOG), { key: OTHER_KEY.publicKey });
    expect(report.problem?.kind).toBe("key_record");
  });

  describe("after a key rotation at tree size 25", () => {
    const rotated = buildLog(55, { rotateAt: 25 });

    it("verifies trusting either key", () => {
      for (const key of [KEY_1, KEY_2]) {
        const report = verifyAuditExport(exportOf(rotated), { key: key.publicKey });
        expect(report, key.kid).toMatchObject({ ok: true, checkpoints: 5, anchored_size: 50 });
      }
      expect(rotated.checkpoints.map((checkpoint) => checkpoint.kid)).toEqual([
        KEY_1.kid,
        KEY_1.kid,
        KEY_2.kid,
        KEY_2.kid,
        KEY_2.kid,
      ]);
    });

    it("refuses the old key signing after its period", () => {
      const exported = exportOf(rotated);
      const { kid: _kid, sig: _sig, ...fields } = exported.checkpoints[3]!;
      exported.checkpoints[3] = signCheckpoint(fields, KEY_1);
      const report = verifyAuditExport(exported, { key: KEY_2.publicKey });
      expect(report.problem).toMatchObject({ kind: "checkpoint", tree_size: 40 });
      expect(report.problem?.message).toMatch(/outside its period/);
    });

    it("refuses a rotation record that was tampered with or dropped", () => {
      const tampered = exportOf(rotated);
      tampered.keys[1] = { ...tampered.keys[1]!, tree_size: 0 };
      expect(verifyAuditExport(tampered, { key: KEY_1.publicKey }).problem?.kind).toBe("key_record");
      const dropped = exportOf(rotated);
      dropped.keys.length = 1;
      expect(verifyAuditExport(dropped, { key: KEY_1.publicKey }).problem).toMatchObject({
        kind: "checkpoint",
        tree_size: 30,
      });
    });
  });
});

describe("a pruned log or a partial export", () => {
  const fromCheckpoint = (size: number): AuditExport => {
    const exported = exportOf(LOG);
    return {
      keys: exported.keys,
      checkpoints: exported.checkpoints,
      anchor: createAuditAnchor(LOG.tree, size),
      entries: exported.entries.slice(size),
    };
  };

  it("verifies from an anchor at a checkpoint, and from one between checkpoints", () => {
    expect(check(fromCheckpoint(20))).toMatchObject({
      ok: true,
      first_seq: 20,
      anchored_size: 50,
      entries: 35,
    });
    expect(check(fromCheckpoint(27))).toMatchObject({
      ok: true,
      first_seq: 27,
      anchored_size: 50,
      entries: 28,
    });
    expect(check(fromCheckpoint(0))).toMatchObject({ ok: true, first_seq: 0 });
  });

  it("still names tampered entries by their seq", () => {
    const exported = fromCheckpoint(20);
    (exported.entries as AuditExportEntry[]).splice(3, 1);
    expectProblem(check(exported), "deleted", 23);
  });

  it("refuses an anchor whose prev_hash or frontier is not the log's", () => {
    const good = fromCheckpoint(20);
    const badPrev = { ...good, anchor: { ...good.anchor!, prev_hash: LOG.entries[3]!.hash } };
    expect(check(badPrev).problem?.kind).toBe("anchor");
    const frontier = [...good.anchor!.frontier];
    frontier[0] = LOG.entries[0]!.hash;
    const badFrontier = { ...good, anchor: { ...good.anchor!, frontier } };
    expect(check(badFrontier).problem?.kind).toBe("anchor");
    const odd = fromCheckpoint(27);
    const shifted = { ...odd, anchor: { ...odd.anchor!, frontier: odd.anchor!.frontier.slice(1) } };
    expect(check(shifted).problem?.kind).toBe("anchor");
  });

  it("an export that starts late without an anchor is missing its first entries", () => {
    const exported = exportOf(LOG);
    expectProblem(check({ ...exported, entries: exported.entries.slice(5) }), "deleted", 0);
  });
});

describe("the NDJSON reader", () => {
  it("reads entry lines in place, with or without a recorded hash", () => {
    const exported = exportOf(LOG);
    const parsed = parseAuditExportNdjson(ndjson(exported));
    expect(parsed.entries).toHaveLength(55);
    expect(
      Buffer.from((parsed.entries[3] as AuditExportEntry).bytes).equals(exported.entries[3]!.bytes),
    ).toBe(true);
    expect((parsed.entries[3] as AuditExportEntry).hash).toBe(exported.entries[3]!.hash);
    expect(parsed.checkpoints).toEqual(exported.checkpoints);
    expect(parsed.keys).toEqual(exported.keys);
  });

  it("reports a tampered entry line like any other tampering", () => {
    const data = ndjson(exportOf(LOG));
    const at = data.indexOf('"entry-17"');
    data[at + 2] = "X".charCodeAt(0);
    const report = verifyAuditNdjson(data, { key: KEY_1.publicKey });
    expectProblem(report, "edited", 17);
  });

  it("refuses a record line it cannot read", () => {
    const data = Buffer.concat([Buffer.from('{"surprise":1}\n'), ndjson(exportOf(LOG))]);
    expect(() => verifyAuditNdjson(data, { key: KEY_1.publicKey })).toThrow(SignetError);
    expect(() => parseAuditExportNdjson(Buffer.from("not json\n"))).toThrow(/line 1/);
  });

  it("names a damaged entry line by its seq", () => {
    const data = ndjson(exportOf(LOG));
    const at = data.indexOf('{"entry":', data.indexOf('"entry-8"') + 1);
    data.write("[", at);
    expectProblem(verifyAuditNdjson(data, { key: KEY_1.publicKey }), "malformed", 9);
    const appended = Buffer.concat([ndjson(exportOf(LOG)), Buffer.from('{"surprise":1}\n')]);
    expectProblem(verifyAuditNdjson(appended, { key: KEY_1.publicKey }), "malformed", 55);
  });

  it("the JSON form verifies the same, entries canonicalized again", () => {
    const exported = exportOf(LOG);
    const json = JSON.stringify(
      {
        keys: exported.keys,
        checkpoints: exported.checkpoints,
        entries: exported.entries.map((entry) => ({
          entry: JSON.parse(entry.bytes.toString()),
          hash: entry.hash,
        })),
      },
      null,
      2,
    );
    expect(verifyAuditExport(auditExportFromJson(JSON.parse(json)), { key: KEY_1.publicKey })).toEqual(
      verify(exported),
    );
    const tampered = JSON.parse(json);
    tampered.entries[21].entry.actor = "mallory";
    expectProblem(verifyAuditExport(auditExportFromJson(tampered), { key: KEY_1.publicKey }), "edited", 21);
    tampered.entries[3].entry = { x: Number.NaN };
    expectProblem(verifyAuditExport(auditExportFromJson(tampered), { key: KEY_1.publicKey }), "malformed", 3);
    expect(() => auditExportFromJson({ entries: [] })).toThrow(SignetError);
  });

  it("accepts CRLF line ends and a missing final newline", () => {
    const text = ndjson(exportOf(LOG)).toString().replace(/\n/g, "\r\n").replace(/\r\n$/, "");
    expect(verifyAuditNdjson(Buffer.from(text), { key: KEY_1.publicKey }).ok).toBe(true);
  });
});
