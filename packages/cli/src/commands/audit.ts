// `signet audit ...`: query, export, verify (live or an export offline), proofs and checkpoints of the
// tamper-evident audit log (docs/audit.md). Proofs and exports are checked here, with the runtime's
// public key, not taken on the runtime's word.
import { createReadStream, existsSync, readFileSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { type Command, Option } from "commander";
import {
  AUDIT_OUTCOMES,
  type AuditAnchor,
  type AuditEntry,
  AuditLogVerifier,
  type AuditVerifyReport,
  type Checkpoint,
  type ConsistencyProofDocument,
  Ed25519PublicKey,
  type InclusionProofDocument,
  type RuntimeKeyChain,
  type RuntimeKeyRecord,
  auditEntryHash,
  auditEntryText,
  auditExportFromJson,
  verifyAuditExport,
  verifyCheckpointConsistency,
  verifyInclusionInCheckpoint,
  verifyRuntimeKeyChain,
} from "@signet/protocol";
import {
  type RemoteOptions,
  nonNegativeInteger,
  positiveInteger,
  print,
  withAdminClient,
  withRemoteOptions,
} from "./remote.js";

// ---------------------------------------------------------------------------------------------------
// Keys

/** The default runtime public key: what `signet init` wrote. */
export function defaultRuntimeKeyPath(dataDir: string): string {
  return join(resolve(dataDir), "keys", "runtime.pub");
}

/** Reads a runtime public key file: SPKI PEM, an OKP JWK, or base64url of the 32 raw bytes. */
export function readRuntimePublicKey(file: string): Ed25519PublicKey {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (error) {
    throw new Error(`Cannot read the runtime public key ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    if (text.startsWith("-----BEGIN")) return Ed25519PublicKey.fromPem(text);
    if (text.startsWith("{")) return Ed25519PublicKey.fromJwk(JSON.parse(text));
    return Ed25519PublicKey.fromBase64Url(text);
  } catch {
    throw new Error(`${file} is not an Ed25519 public key (PEM, JWK or base64url)`);
  }
}

function runtimeKey(options: { readonly key?: string; readonly dataDir: string }): Ed25519PublicKey {
  const file = options.key ?? defaultRuntimeKeyPath(options.dataDir);
  if (options.key === undefined && !existsSync(file)) {
    throw new Error(
      `No --key given and ${file} does not exist: pass the runtime's public key with --key FILE`,
    );
  }
  return readRuntimePublicKey(file);
}

// ---------------------------------------------------------------------------------------------------
// Verify reports

function reportText(report: AuditVerifyReport, what: string): string {
  if (!report.ok) {
    const problem = report.problem!;
    const where =
      problem.seq !== undefined
        ? ` at seq ${problem.seq}`
        : problem.tree_size !== undefined
          ? ` at tree size ${problem.tree_size}`
          : "";
    const before =
      report.tree_size > report.first_seq
        ? `seq ${report.first_seq}..${report.tree_size - 1} linked up before it`
        : "none linked up before it";
    return [
      `FAILED: ${what}: ${problem.kind}${where}: ${problem.message}`,
      `  ${report.entries} entries read, ${before}; ${report.checkpoints} signed checkpoint(s) verified`,
    ].join("\n");
  }
  const range =
    report.tree_size > report.first_seq ? ` (seq ${report.first_seq}..${report.tree_size - 1})` : "";
  const latest = report.latest_checkpoint;
  const lines = [
    `ok: ${what}: ${report.entries} entries${range}; hash chain, Merkle roots and ${report.checkpoints} signed checkpoint(s) verify`,
    `  ${report.anchored_size - report.first_seq} entries anchored by signed checkpoints${latest === undefined ? "" : ` (latest: tree size ${latest.tree_size}, ${latest.time}, key ${latest.kid})`}`,
  ];
  if (report.unanchored > 0) {
    lines.push(
      `  ${report.unanchored} entries not yet anchored by a checkpoint (not tampering: the next checkpoint anchors them)`,
    );
  }
  return lines.join("\n");
}

function printReport(options: { readonly json: boolean }, report: AuditVerifyReport, what: string): void {
  print(options, report, () => reportText(report, what));
  if (!report.ok) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------------
// Offline verification of an export file

const ENTRY_PREFIX = Buffer.from('{"entry":');
const HASH_INFIX = Buffer.from(',"hash":"sha256:');
// `,"hash":"sha256:` + 64 hex digits + `"}`
const HASH_SUFFIX_LENGTH = HASH_INFIX.length + 64 + 2;
const NEWLINE = 0x0a;

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Splits a byte stream into lines (without their `\n` or `\r\n`), keeping the bytes exactly. */
class LineSplitter {
  #pending: Buffer[] = [];

  constructor(private readonly onLine: (line: Buffer) => void) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const end = chunk.indexOf(NEWLINE, pos);
      if (end < 0) {
        this.#pending.push(chunk.subarray(pos));
        return;
      }
      let line = chunk.subarray(pos, end);
      if (this.#pending.length > 0) {
        line = Buffer.concat([...this.#pending, line]);
        this.#pending = [];
      }
      this.#emit(line);
      pos = end + 1;
    }
  }

  end(): void {
    if (this.#pending.length > 0) this.#emit(Buffer.concat(this.#pending));
    this.#pending = [];
  }

  #emit(line: Buffer): void {
    const trimmed = line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
    if (trimmed.length > 0) this.onLine(trimmed);
  }
}

/**
 * Verifies an NDJSON export as it streams from disk, entry by entry, through {@link AuditLogVerifier}:
 * memory stays flat whatever the export's size. Lines are read as `verifyAuditNdjson` reads them:
 * record lines (export, key, anchor, checkpoint) first, then entry lines sliced in place; after the
 * first entry, a line that does not look like one is a damaged entry, named by its seq.
 */
export async function verifyNdjsonFile(file: string, key: Ed25519PublicKey): Promise<AuditVerifyReport> {
  const signed: { keys: RuntimeKeyRecord[]; checkpoints: Checkpoint[]; anchor?: AuditAnchor } = {
    keys: [],
    checkpoints: [],
  };
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let verifier: AuditLogVerifier | undefined;
  let lineNumber = 0;
  const bad = (why: string): never => {
    throw new Error(`${file} line ${lineNumber}: ${why}`);
  };
  const record = (line: Buffer): void => {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(line));
    } catch {
      bad("not JSON");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) bad("not an object");
    const members = Object.keys(value as object);
    if (members.length !== 1) bad("a record line has exactly one member");
    const kind = members[0]!;
    const content = (value as Record<string, unknown>)[kind];
    if (kind === "key") signed.keys.push(content as RuntimeKeyRecord);
    else if (kind === "checkpoint") signed.checkpoints.push(content as Checkpoint);
    else if (kind === "anchor") {
      if (signed.anchor !== undefined) bad("a second anchor");
      signed.anchor = content as AuditAnchor;
    } else if (kind !== "export") bad(`unknown record ${JSON.stringify(kind)}`);
  };
  const entry = (into: AuditLogVerifier, line: Buffer): void => {
    if (!startsWith(line, ENTRY_PREFIX)) return into.addEntryRange(line, 0, line.length);
    const start = ENTRY_PREFIX.length;
    const suffix = line.length - HASH_SUFFIX_LENGTH;
    if (
      suffix > start &&
      line.compare(HASH_INFIX, 0, HASH_INFIX.length, suffix, suffix + HASH_INFIX.length) === 0 &&
      line[line.length - 2] === 0x22 &&
      line[line.length - 1] === 0x7d
    ) {
      into.addEntryRange(line, start, suffix, suffix + HASH_INFIX.length);
    } else {
      into.addEntryRange(line, start, line.length - 1); // `{"entry":<bytes>}`: no recorded hash
    }
  };
  const splitter = new LineSplitter((line) => {
    lineNumber++;
    if (verifier === undefined && !startsWith(line, ENTRY_PREFIX)) return record(line);
    verifier ??= new AuditLogVerifier(signed, { key });
    if (!verifier.settled) entry(verifier, line);
  });
  for await (const chunk of createReadStream(file)) {
    splitter.push(chunk as Buffer);
    if (verifier?.settled === true) break; // the first problem is final
  }
  if (verifier?.settled !== true) splitter.end();
  return (verifier ?? new AuditLogVerifier(signed, { key })).finish();
}

/** Which form an export file is in: `--format`, else its extension, else its first line. */
async function exportFormat(file: string, given?: "ndjson" | "json"): Promise<"ndjson" | "json"> {
  if (given !== undefined) return given;
  const extension = extname(file).toLowerCase();
  if (extension === ".ndjson" || extension === ".jsonl") return "ndjson";
  if (extension === ".json") return "json";
  // NDJSON starts with a one-member record line; the JSON form is one object with several members.
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const newline = head.subarray(0, bytesRead).indexOf(NEWLINE);
    if (newline < 0) return "json";
    try {
      const first = JSON.parse(head.subarray(0, newline).toString("utf8")) as unknown;
      return typeof first === "object" && first !== null && Object.keys(first).length === 1
        ? "ndjson"
        : "json";
    } catch {
      return "json";
    }
  } finally {
    await handle.close();
  }
}

async function verifyJsonFile(file: string, key: Ed25519PublicKey): Promise<AuditVerifyReport> {
  let document: unknown;
  try {
    document = JSON.parse(await readFile(file, "utf8"));
  } catch {
    throw new Error(`${file} is not JSON (for an NDJSON export, pass --format ndjson)`);
  }
  return verifyAuditExport(auditExportFromJson(document), { key });
}

// ---------------------------------------------------------------------------------------------------
// Export progress

/** Counts newline-terminated entry lines of an NDJSON export as it streams. */
class NdjsonEntryCounter {
  entries = 0;
  readonly #head = Buffer.alloc(ENTRY_PREFIX.length);
  #headLength = 0;

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, pos);
      const end = newline < 0 ? chunk.length : newline;
      if (this.#headLength < this.#head.length) {
        const take = Math.min(this.#head.length - this.#headLength, end - pos);
        chunk.copy(this.#head, this.#headLength, pos, pos + take);
        this.#headLength += take;
      }
      if (newline < 0) return;
      if (this.#headLength === this.#head.length && this.#head.equals(ENTRY_PREFIX)) this.entries++;
      this.#headLength = 0;
      pos = newline + 1;
    }
  }
}

/**
 * Counts the entries of the JSON form as it streams: the objects that close inside the document's
 * last top-level array (`entries`, which the runtime writes last), outside strings.
 */
class JsonEntryCounter {
  entries = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;

  push(chunk: Buffer): void {
    for (const byte of chunk) {
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (byte === 0x5c) this.#escaped = true;
        else if (byte === 0x22) this.#inString = false;
      } else if (byte === 0x22) this.#inString = true;
      else if (byte === 0x7b || byte === 0x5b) {
        if (byte === 0x5b && this.#depth === 1) this.entries = 0; // a new top-level array
        this.#depth++;
      } else if (byte === 0x7d || byte === 0x5d) {
        this.#depth--;
        if (byte === 0x7d && this.#depth === 2) this.entries++;
      }
    }
  }
}

/** A one-line progress bar on stderr, redrawn at most ten times a second; silent unless stderr is a TTY. */
class ProgressBar {
  readonly #enabled = process.stderr.isTTY === true;
  #last = 0;
  #drawn = false;

  constructor(private readonly total: number | undefined) {}

  update(done: number, force = false): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const width = 30;
    let bar: string;
    if (this.total !== undefined && this.total > 0) {
      const fraction = Math.min(1, done / this.total);
      const filled = Math.round(fraction * width);
      bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${this.total} entries (${Math.floor(fraction * 100)}%)`;
    } else {
      bar = `${done} entries`;
    }
    process.stderr.write(`\r\u001b[2Kexporting ${bar}`);
    this.#drawn = true;
  }

  done(): void {
    if (this.#enabled && this.#drawn) process.stderr.write("\r\u001b[2K");
  }
}

// ---------------------------------------------------------------------------------------------------
// Wire shapes

type WireQuery = {
  entries: AuditEntry[];
  next?: { before_seq?: number; after_seq?: number };
  tree_size: number;
};
type WireCheckpoints = {
  keys: RuntimeKeyRecord[];
  checkpoints: Checkpoint[];
  tree_size: number;
  first_seq: number;
};
type WireInclusion = { entry_hash: string; proof: InclusionProofDocument; checkpoint?: Checkpoint };

function entryLine(entry: AuditEntry): string {
  return [
    String(entry.seq).padStart(6),
    entry.time,
    entry.type.padEnd(17),
    entry.outcome.padEnd(7),
    `${entry.actor ?? "-"} → ${entry.target ?? "-"}`,
    entry.code ?? "",
  ]
    .join("  ")
    .trimEnd();
}

/** The key chain the runtime publishes, anchored on the key the user trusts; a message when it does not verify. */
function keyChain(keys: readonly RuntimeKeyRecord[], key: Ed25519PublicKey): RuntimeKeyChain | string {
  try {
    return verifyRuntimeKeyChain(keys, key);
  } catch (error) {
    return `the runtime's key records do not verify with the trusted key ${key.kid}: ${(error as Error).message}`;
  }
}

function signatureProblem(checkpoint: Checkpoint, chain: RuntimeKeyChain): string | undefined {
  try {
    chain.verifyCheckpoint(checkpoint);
    return undefined;
  } catch (error) {
    return `the checkpoint of tree size ${checkpoint.tree_size} is not validly signed: ${(error as Error).message}`;
  }
}

/** Prints a failed check (exit code 1) in the command's output form. */
function failed(
  options: { readonly json: boolean },
  message: string,
  extra: Record<string, unknown> = {},
): void {
  print(options, { ok: false, message, ...extra }, () => `FAILED: ${message}`);
  process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------------
// Commands

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .description("Query, export and verify the tamper-evident audit log, and check its proofs");

  withRemoteOptions(
    audit
      .command("query")
      .description("Show audit entries matching every filter given (newest first by default)")
      .option("--event-type <type>", "event type, e.g. invocation, policy_denied, auth_failure")
      .option("--actor <id>", "who acted (agent id, operator)")
      .option("--target <target>", "what was acted on, e.g. tool:database/query")
      .addOption(new Option("--outcome <outcome>", "the decision or result").choices(AUDIT_OUTCOMES))
      .option("--code <code>", "error code of a refusal or failure, e.g. POLICY_DENIED")
      .option("--id <id>", "entry id (the audit_id of a receipt or an error)")
      .addOption(new Option("--last <duration>", "only the last 30s, 15m, 24h, 7d, ...").conflicts("since"))
      .option("--since <time>", "only entries at or after this RFC 3339 time")
      .option("--until <time>", "only entries before this RFC 3339 time")
      .option("--limit <n>", "at most this many entries (1..10000, default 100)", positiveInteger)
      .addOption(new Option("--order <order>", "by seq").choices(["asc", "desc"]).default("desc")),
  ).action(
    async (
      options: RemoteOptions & {
        eventType?: string;
        actor?: string;
        target?: string;
        outcome?: string;
        code?: string;
        id?: string;
        last?: string;
        since?: string;
        until?: string;
        limit?: number;
        order: string;
      },
    ) => {
      const params = new URLSearchParams();
      const filters: [string, string | number | undefined][] = [
        ["event_type", options.eventType],
        ["actor", options.actor],
        ["target", options.target],
        ["outcome", options.outcome],
        ["code", options.code],
        ["id", options.id],
        ["last", options.last],
        ["since", options.since],
        ["until", options.until],
        ["limit", options.limit],
        ["order", options.order],
      ];
      for (const [name, value] of filters) if (value !== undefined) params.set(name, String(value));
      const page = await withAdminClient(options, (client) =>
        client.call<WireQuery>("GET", `/v1/audit?${params.toString()}`),
      );
      print(options, page.entries, () =>
        page.entries.length === 0 ? "no entries match" : page.entries.map(entryLine).join("\n"),
      );
      if (!options.json && page.next !== undefined) {
        process.stderr.write(
          `(${page.entries.length} shown; more match: raise --limit or narrow the filters)\n`,
        );
      }
    },
  );

  withRemoteOptions(
    audit
      .command("export")
      .description(
        "Stream the audit log, with its keys and signed checkpoints, into a file for offline audit",
      )
      .addOption(new Option("--format <format>", "file format").choices(["ndjson", "json"]).default("ndjson"))
      .requiredOption("--output <file>", "the file to write (refused if it exists, unless --force)")
      .option(
        "--from <seq>",
        "start at this seq (an anchor stands in for the entries before)",
        nonNegativeInteger,
      )
      .option("--force", "overwrite the output file", false),
  ).action(
    async (
      options: RemoteOptions & { format: "ndjson" | "json"; output: string; from?: number; force: boolean },
    ) => {
      const file = resolve(options.output);
      if (!options.force && existsSync(file)) {
        throw new Error(`${file} exists: refusing to overwrite it (use --force)`);
      }
      const params = new URLSearchParams({ format: options.format });
      if (options.from !== undefined) params.set("from", String(options.from));
      const counter = options.format === "ndjson" ? new NdjsonEntryCounter() : new JsonEntryCounter();
      let progress: ProgressBar | undefined;
      let treeSize: number | undefined;
      let bytes: number;
      try {
        ({ bytes } = await withAdminClient(options, (client) =>
          client.download(`/v1/audit/export?${params.toString()}`, file, {
            overwrite: options.force,
            onResponse: (headers) => {
              const header = headers["x-audit-tree-size"];
              const size = Number(Array.isArray(header) ? header[0] : header);
              treeSize = Number.isSafeInteger(size) && size >= 0 ? size : undefined;
              progress = new ProgressBar(
                treeSize === undefined ? undefined : Math.max(0, treeSize - (options.from ?? 0)),
              );
              return (chunk) => {
                counter.push(chunk);
                progress!.update(counter.entries);
              };
            },
          }),
        ));
      } finally {
        progress?.update(counter.entries, true);
        progress?.done();
      }
      print(
        options,
        { file, format: options.format, entries: counter.entries, bytes, tree_size: treeSize ?? null },
        () => `exported ${counter.entries} entries to ${file}`,
      );
    },
  );

  withRemoteOptions(
    audit
      .command("verify")
      .description(
        "Verify the runtime's audit log, or with --file an export offline with only the runtime public key (exits 1 when a problem is found)",
      )
      .option("--file <export>", "verify this export (NDJSON or JSON) offline, without a runtime")
      .option(
        "--key <file>",
        "with --file: the runtime public key, PEM, JWK or base64url (default DATA_DIR/keys/runtime.pub)",
      )
      .addOption(
        new Option(
          "--format <format>",
          "with --file: the export's format (default: from its name or content)",
        ).choices(["ndjson", "json"]),
      ),
  ).action(async (options: RemoteOptions & { file?: string; key?: string; format?: "ndjson" | "json" }) => {
    if (options.file === undefined) {
      if (options.key !== undefined || options.format !== undefined) {
        throw new Error(
          "--key and --format go with --file (the runtime verifies its own log with its own key)",
        );
      }
      const { report } = await withAdminClient(options, (client) =>
        client.call<{ report: AuditVerifyReport }>("POST", "/v1/audit/verify"),
      );
      printReport(options, report, "the runtime's audit log");
      return;
    }
    const file = resolve(options.file);
    const key = runtimeKey(options);
    const format = await exportFormat(file, options.format);
    const report = format === "ndjson" ? await verifyNdjsonFile(file, key) : await verifyJsonFile(file, key);
    printReport(options, report, `${file} (key ${key.kid})`);
  });

  withRemoteOptions(
    audit
      .command("proof")
      .description(
        "Fetch an inclusion proof (--seq) or a consistency proof (--first, --second) and check it locally against the signed checkpoints (exits 1 when it does not hold)",
      )
      .option("--seq <n>", "the entry to prove included", nonNegativeInteger)
      .option(
        "--tree-size <m>",
        "in the checkpoint of this tree size (default: the latest)",
        nonNegativeInteger,
      )
      .option("--first <a>", "the older checkpoint's tree size", nonNegativeInteger)
      .option("--second <b>", "the newer checkpoint's tree size", nonNegativeInteger)
      .option(
        "--key <file>",
        "the runtime public key, PEM, JWK or base64url (default DATA_DIR/keys/runtime.pub)",
      ),
  ).action(
    async (
      options: RemoteOptions & {
        seq?: number;
        treeSize?: number;
        first?: number;
        second?: number;
        key?: string;
      },
    ) => {
      const inclusion = options.seq !== undefined;
      const consistency = options.first !== undefined || options.second !== undefined;
      if (
        inclusion === consistency ||
        (consistency && (options.first === undefined || options.second === undefined))
      ) {
        throw new Error(
          "Give --seq N [--tree-size M] for an inclusion proof, or --first A --second B for a consistency proof",
        );
      }
      if (!inclusion && options.treeSize !== undefined) throw new Error("--tree-size goes with --seq");
      const key = runtimeKey(options);
      if (inclusion) await proveInclusion(options, options.seq!, key);
      else await proveConsistency(options, options.first!, options.second!, key);
    },
  );

  withRemoteOptions(
    audit
      .command("checkpoints")
      .description("List the signed checkpoints of the audit log and the runtime's keys"),
  ).action(async (options: RemoteOptions) => {
    const listed = await withAdminClient(options, (client) =>
      client.call<WireCheckpoints>("GET", "/v1/audit/checkpoints"),
    );
    print(options, listed, () => {
      const lines = [
        `tree size ${listed.tree_size} (entries from seq ${listed.first_seq}); ${listed.checkpoints.length} checkpoint(s); runtime key(s): ${listed.keys.map((k) => `${k.key_id} (from tree size ${k.tree_size})`).join(", ") || "none"}`,
      ];
      if (listed.checkpoints.length === 0) lines.push("no checkpoints yet");
      else {
        lines.push(`${"tree size".padStart(10)}  ${"time".padEnd(27)}  ${"root".padEnd(71)}  key id`);
        for (const c of listed.checkpoints) {
          lines.push(`${String(c.tree_size).padStart(10)}  ${c.time.padEnd(27)}  ${c.root_hash}  ${c.kid}`);
        }
      }
      return lines.join("\n");
    });
  });
}

async function proveInclusion(
  options: RemoteOptions & { treeSize?: number },
  seq: number,
  key: Ed25519PublicKey,
): Promise<void> {
  const params = new URLSearchParams({ seq: String(seq) });
  if (options.treeSize !== undefined) params.set("tree_size", String(options.treeSize));
  const { served, entry, keys } = await withAdminClient(options, async (client) => {
    const served = await client.call<WireInclusion>("GET", `/v1/audit/proofs/inclusion?${params.toString()}`);
    const { entry } = await client.call<{ entry: AuditEntry }>("GET", `/v1/audit/entries/${seq}`);
    const { keys } = await client.call<WireCheckpoints>(
      "GET",
      `/v1/audit/checkpoints?${new URLSearchParams({ from_size: String(served.proof.tree_size) }).toString()}`,
    );
    return { served, entry, keys };
  });
  const { proof, checkpoint, entry_hash: entryHash } = served;
  if (checkpoint === undefined) {
    throw new Error(
      `No signed checkpoint of tree size ${proof.tree_size} yet, so entry ${seq} cannot be checked against one: try again after the next checkpoint, or pass --tree-size of one (signet audit checkpoints)`,
    );
  }
  const details = { seq, tree_size: proof.tree_size, entry_hash: entryHash, checkpoint, proof };
  const chain = keyChain(keys, key);
  if (typeof chain === "string") return failed(options, chain, details);
  const unsigned = signatureProblem(checkpoint, chain);
  if (unsigned !== undefined) return failed(options, unsigned, details);
  if (proof.leaf_index !== seq) {
    return failed(options, `the runtime sent a proof for entry ${proof.leaf_index}, not ${seq}`, details);
  }
  // The entry the runtime shows must be the leaf proven: its canonical bytes hash to entry_hash.
  const { hash: _hash, ...fields } = entry;
  let computed: string;
  try {
    computed = auditEntryHash(Buffer.from(auditEntryText(fields), "utf8"));
  } catch (error) {
    return failed(
      options,
      `entry ${seq} as served is not a valid entry: ${(error as Error).message}`,
      details,
    );
  }
  if (entry.seq !== seq || computed !== entryHash) {
    return failed(options, `entry ${seq} as served does not hash to the proven leaf ${entryHash}`, details);
  }
  if (!verifyInclusionInCheckpoint(entryHash, proof, checkpoint, chain)) {
    return failed(
      options,
      `the inclusion proof of entry ${seq} does not lead to the signed root of tree size ${checkpoint.tree_size}`,
      details,
    );
  }
  print(
    options,
    { ok: true, ...details, kid: checkpoint.kid },
    () =>
      `entry ${seq} is included in the checkpoint of tree size ${checkpoint.tree_size} (signed by ${checkpoint.kid})\n` +
      `  entry: ${entryLine(entry).trimStart()}\n  leaf ${entryHash}\n  root ${checkpoint.root_hash} at ${checkpoint.time}`,
  );
}

async function proveConsistency(
  options: RemoteOptions,
  first: number,
  second: number,
  key: Ed25519PublicKey,
): Promise<void> {
  if (first > second) throw new Error("--first must not be larger than --second");
  const { listed, proof } = await withAdminClient(options, async (client) => {
    const listed = await client.call<WireCheckpoints>(
      "GET",
      `/v1/audit/checkpoints?${new URLSearchParams({ from_size: String(first) }).toString()}`,
    );
    const { proof } = await client.call<{ proof: ConsistencyProofDocument }>(
      "GET",
      `/v1/audit/proofs/consistency?${new URLSearchParams({ first: String(first), second: String(second) }).toString()}`,
    );
    return { listed, proof };
  });
  const older = listed.checkpoints.find((c) => c.tree_size === first);
  const newer = listed.checkpoints.find((c) => c.tree_size === second);
  for (const [size, found] of [
    [first, older],
    [second, newer],
  ] as const) {
    if (found === undefined) {
      throw new Error(
        `No signed checkpoint of tree size ${size}: pick sizes from \`signet audit checkpoints\``,
      );
    }
  }
  const details = { first, second, older, newer, proof };
  const chain = keyChain(listed.keys, key);
  if (typeof chain === "string") return failed(options, chain, details);
  const unsigned = signatureProblem(older!, chain) ?? signatureProblem(newer!, chain);
  if (unsigned !== undefined) return failed(options, unsigned, details);
  if (!verifyCheckpointConsistency(older!, newer!, proof, chain)) {
    return failed(
      options,
      `the consistency proof does not show that tree size ${second} extends tree size ${first}`,
      details,
    );
  }
  print(
    options,
    { ok: true, ...details },
    () =>
      `the checkpoint of tree size ${second} (signed by ${newer!.kid}) extends the checkpoint of tree size ${first} (signed by ${older!.kid}): nothing under the older one changed`,
  );
}
