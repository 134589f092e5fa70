// Audit suite: the durable audit log, its offline verification and its proofs, side by side in the same
// run with the Agent Governance Toolkit's AuditLogger (an in-memory SHA-256 hash chain).
//
//   audit_durable_appends_per_s      SqliteAuditLog (synchronous=FULL, WAL, a fresh file per round):
//                                    256 concurrent writers, each an async loop awaiting
//                                    append([draft]) for one realistic entry; _1_writer, _16_writers
//                                    beside it. Each measurement stops at DURABLE_ROUND_MS or
//                                    DURABLE_MAX_ENTRIES, whichever comes first
//   audit_chain_appends_per_s        AuditChain.append alone: encode, hash, link, frontier (no storage)
//   audit_verify_entries_per_s       verifyAuditNdjson over the log's NDJSON export of VERIFY_ENTRIES
//                                    entries (checkpoints every 1,000), with only the public key
//   audit_log_verify_entries_per_s   the live log's verify(): SQLite rows, the chain, and every row's
//                                    query columns checked against its parsed bytes
//   audit_inclusion_proofs_per_s     createInclusionProof from a MerkleTree of VERIFY_ENTRIES leaves
//   agt_*                            AuditLogger.log / AuditLogger.verify on the same entries (agentId =
//                                    actor, action = type + target, decision = outcome)
//   *_vs_agt                         medians over rounds of the per-round ratios
//
// AGT hashes five short fields of an in-memory object per entry (about 200 bytes of JSON); Signet hashes
// the entry's whole stored bytes (756 with the domain line: params, rules and the request reference
// included), checks seq and links, a Merkle root and an Ed25519 checkpoint signature every 1,000
// entries. audit_appends_vs_agt compares a durable, fsynced append with an in-memory one.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { AuditLogger } from "@microsoft/agent-governance-sdk";
import {
  AuditChain,
  type AuditEntryDraft,
  Ed25519PrivateKey,
  MerkleTree,
  createInclusionProof,
  formatAuditTime,
  newMessageId,
  sha256HashBytes,
  signEnvelope,
  verifyAuditNdjson,
} from "@signet/protocol";
import { SqliteAuditLog } from "../../packages/runtime/src/audit/sqlite-audit-log.js";
import { type Metric, interleaved, median, medianRatio, opsPerSecond, report } from "../harness.js";

const WRITERS = [1, 16, 256] as const;
const HEADLINE_WRITERS = 256;
const DURABLE_ROUNDS = 5;
const DURABLE_ROUND_MS = 1000;
const DURABLE_MAX_ENTRIES = 200_000;
const DURABLE_WARMUP_MS = 400;
const VERIFY_ENTRIES = 100_000;
const VERIFY_ROUNDS = 7;
const LOG_VERIFY_ROUNDS = 3;
const CHAIN = { rounds: 9, iterations: 20_000 };
const PROOF_ROUNDS = 7;
const PROOF_ITERATIONS = 50_000;
/** Distinct drafts the writers cycle through (ids and times repeat only across different files). */
const DRAFT_POOL = 50_000;
const BASE_MICROS = 1_795_000_000_000_000;

/** Realistic invocation drafts: a signed request reference, rules, redacted params, metadata. */
function makeDrafts(key: Ed25519PrivateKey, count: number): AuditEntryDraft[] {
  const requests = Array.from({ length: 64 }, (_, i) => {
    const signed = signEnvelope(
      { type: "invoke", from: `agent-${i % 8}`, to: "tool:database/query", body: { q: i } },
      key,
    );
    return { hash: signed.hash, id: signed.envelope.id, kid: signed.envelope.kid, sig: signed.envelope.sig };
  });
  return Array.from({ length: count }, (_, i) => ({
    id: newMessageId(),
    time: formatAuditTime(BASE_MICROS + i * 37),
    type: "invocation",
    actor: `agent-${i % 8}`,
    target: "tool:database/query",
    outcome: "allow",
    rules: ["team/analysts-read", "global/business-hours"],
    request: requests[i % requests.length]!,
    params: { limit: 10 + (i % 50), query: "[REDACTED]", table: "orders" },
    metadata: { layer: "policy", latency_us: 200 + (i % 300), session: randomBytes(6).toString("hex") },
  }));
}

/** The same entry as AGT's logger takes it. */
function agtEntry(draft: AuditEntryDraft): { agentId: string; action: string; decision: "allow" } {
  return { agentId: draft.actor ?? "", action: `${draft.type}:${draft.target ?? ""}`, decision: "allow" };
}

/**
 * Durable appends per second with `writers` async loops on a fresh log file: each awaits
 * append([draft]) and goes again, until `ms` have passed or `limit` entries were issued.
 */
async function durableAppends(
  dir: string,
  key: Ed25519PrivateKey,
  drafts: readonly AuditEntryDraft[],
  writers: number,
  ms: number,
  limit: number,
): Promise<number> {
  const path = join(dir, `audit-${writers}-${Date.now()}-${Math.random().toString(36).slice(2)}.db`);
  const log = new SqliteAuditLog({ path, key });
  try {
    let issued = 0;
    let done = 0;
    const start = performance.now();
    const deadline = start + ms;
    const writer = async (): Promise<void> => {
      while (issued < limit && performance.now() < deadline) {
        const draft = drafts[issued++ % drafts.length]!;
        await log.append([draft]);
        done++;
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const seconds = (performance.now() - start) / 1000;
    return done / seconds;
  } finally {
    await log.close();
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
  }
}

/** A log of `count` entries, written by 256 writers, and its NDJSON export. */
async function buildLog(
  path: string,
  key: Ed25519PrivateKey,
  drafts: readonly AuditEntryDraft[],
  count: number,
): Promise<{ log: SqliteAuditLog; ndjson: Buffer }> {
  const log = new SqliteAuditLog({ path, key });
  let issued = 0;
  const writer = async (): Promise<void> => {
    while (issued < count) await log.append([drafts[issued++ % drafts.length]!]);
  };
  await Promise.all(Array.from({ length: HEADLINE_WRITERS }, writer));
  await log.checkpoint();
  const lines: Buffer[] = [];
  for await (const line of log.exportNdjson()) lines.push(line);
  return { log, ndjson: Buffer.concat(lines) };
}

/** Runs `fn` once and returns `count` per second of it. */
function timedRate(fn: () => unknown, count: number): number {
  const start = process.hrtime.bigint();
  fn();
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Awaits `fn` once and returns `count` per second of it. */
async function timedRateAsync(fn: () => Promise<unknown>, count: number): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

export async function run(): Promise<boolean> {
  const key = Ed25519PrivateKey.generate();
  const drafts = makeDrafts(key, DRAFT_POOL);
  const dir = mkdtempSync(join(tmpdir(), "signet-audit-bench-"));
  const metrics: Metric[] = [];
  try {
    const sample = new AuditChain().append(drafts[0]!);
    console.log(
      `audit suite — ${sample.bytes.length}-byte entries, writers ${WRITERS.join(", ")}, ${VERIFY_ENTRIES} entries verified`,
    );
    metrics.push({ name: "audit_entry_bytes", value: sample.bytes.length, unit: "bytes" });

    // Durable appends, interleaved by writer count, each round followed by AGT's in-memory append.
    await durableAppends(dir, key, drafts, HEADLINE_WRITERS, DURABLE_WARMUP_MS, DURABLE_MAX_ENTRIES);
    const durable: Record<number, number[]> = Object.fromEntries(WRITERS.map((w) => [w, []]));
    const agtAppends: number[] = [];
    for (let round = 0; round < DURABLE_ROUNDS; round++) {
      for (const writers of WRITERS) {
        durable[writers]!.push(
          await durableAppends(dir, key, drafts, writers, DURABLE_ROUND_MS, DURABLE_MAX_ENTRIES),
        );
      }
      const agt = new AuditLogger({ maxEntries: DRAFT_POOL });
      let i = 0;
      agtAppends.push(opsPerSecond(() => agt.log(agtEntry(drafts[i++]!)), DRAFT_POOL));
    }
    const headline = durable[HEADLINE_WRITERS]!;
    metrics.push({
      name: "audit_durable_appends_per_s",
      value: median(headline),
      unit: "ops/s",
      target: ">= 100000",
      baseline: `${HEADLINE_WRITERS} concurrent writers, synchronous=FULL`,
    });
    for (const writers of WRITERS.filter((w) => w !== HEADLINE_WRITERS)) {
      metrics.push({
        name: `audit_durable_appends_per_s_${writers}_writer${writers === 1 ? "" : "s"}`,
        value: median(durable[writers]!),
        unit: "ops/s",
      });
    }
    metrics.push(
      { name: "agt_appends_per_s", value: median(agtAppends), unit: "ops/s" },
      { name: "audit_appends_vs_agt", value: medianRatio(headline, agtAppends), unit: "ratio" },
    );

    // The pure append path against AGT's, interleaved.
    let chain = new AuditChain();
    let chainIndex = 0;
    const agtLogger = new AuditLogger({ maxEntries: 10_000_000 });
    let agtIndex = 0;
    const appendSamples = interleaved(
      {
        chain: () => {
          if (chain.size >= DRAFT_POOL) chain = new AuditChain();
          chain.append(drafts[chainIndex++ % DRAFT_POOL]!);
        },
        agt: () => agtLogger.log(agtEntry(drafts[agtIndex++ % DRAFT_POOL]!)),
      },
      CHAIN,
    );
    metrics.push(
      { name: "audit_chain_appends_per_s", value: median(appendSamples.chain!), unit: "ops/s" },
      {
        name: "audit_chain_appends_vs_agt",
        value: medianRatio(appendSamples.chain!, appendSamples.agt!),
        unit: "ratio",
      },
    );

    // Verification: the NDJSON export with only the public key, against AGT's verify() of as many.
    const { log, ndjson } = await buildLog(join(dir, "verify.db"), key, drafts, VERIFY_ENTRIES);
    try {
      const publicKey = key.publicKey;
      const agt = new AuditLogger({ maxEntries: VERIFY_ENTRIES });
      for (let i = 0; i < VERIFY_ENTRIES; i++) agt.log(agtEntry(drafts[i % DRAFT_POOL]!));
      const check = verifyAuditNdjson(ndjson, { key: publicKey });
      if (!check.ok || check.tree_size !== VERIFY_ENTRIES || check.unanchored !== 0 || !agt.verify()) {
        throw new Error(`The logs to verify do not verify: ${JSON.stringify(check.problem ?? check)}`);
      }
      const signetVerify: number[] = [];
      const agtVerify: number[] = [];
      for (let round = 0; round < VERIFY_ROUNDS; round++) {
        signetVerify.push(timedRate(() => verifyAuditNdjson(ndjson, { key: publicKey }), VERIFY_ENTRIES));
        agtVerify.push(timedRate(() => agt.verify(), VERIFY_ENTRIES));
      }
      const logVerify: number[] = [];
      for (let round = 0; round < LOG_VERIFY_ROUNDS; round++) {
        logVerify.push(
          await timedRateAsync(async () => {
            const report = await log.verify();
            if (!report.ok)
              throw new Error(`The live log does not verify: ${JSON.stringify(report.problem)}`);
          }, VERIFY_ENTRIES),
        );
      }
      metrics.push(
        {
          name: "audit_verify_entries_per_s",
          value: median(signetVerify),
          unit: "ops/s",
          target: ">= 200000",
          baseline: "verifyAuditNdjson of the export, public key only",
        },
        { name: "agt_verify_entries_per_s", value: median(agtVerify), unit: "ops/s" },
        {
          name: "audit_verify_vs_agt",
          value: medianRatio(signetVerify, agtVerify),
          unit: "ratio",
          target: ">= 1.0",
        },
        { name: "audit_log_verify_entries_per_s", value: median(logVerify), unit: "ops/s" },
        { name: "audit_export_mb", value: ndjson.length / (1024 * 1024), unit: "MB" },
      );

      // Inclusion proofs of pseudo-random entries in the tree of every entry.
      const hashes = log.entries(0, VERIFY_ENTRIES).map((entry) => sha256HashBytes(entry.hash));
      const buildStart = performance.now();
      const tree = MerkleTree.from(hashes);
      metrics.push({ name: "audit_merkle_tree_build_ms", value: performance.now() - buildStart, unit: "ms" });
      let seq = 0;
      const proof = (): unknown => {
        seq = (seq + 7919) % VERIFY_ENTRIES;
        return createInclusionProof(tree, seq);
      };
      const proofSamples = interleaved(
        { proof },
        { rounds: PROOF_ROUNDS, iterations: PROOF_ITERATIONS, warmup: 5000 },
      );
      metrics.push({
        name: "audit_inclusion_proofs_per_s",
        value: median(proofSamples.proof!),
        unit: "ops/s",
      });
    } finally {
      await log.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return report("audit", metrics);
}
