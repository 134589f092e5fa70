// A runtime data directory the way `signet init` makes one, with the bench's agents registered
// straight through the stores before the runtime starts (no HTTP round trips during setup).
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ed25519PrivateKey, toBase64Url } from "@signet/protocol";
import {
  AgentRegistry,
  type DevCertificatePaths,
  createApiKey,
  SqliteAuditLog,
  createAuditRecorder,
  createDevCertificates,
  openStores,
} from "@signet/runtime";
import type { AuditLog } from "../../packages/runtime/src/audit/audit-log.js";
import { PostgresAuditLog } from "../../packages/runtime/src/audit/postgres-audit-log.js";

/** An agent's credentials as a bench child needs them (plain data, so it crosses IPC). */
export interface AgentCredentials {
  readonly id: string;
  readonly apiKey: string;
  /** base64url of the Ed25519 seed. */
  readonly seed: string;
  /** Tools it may serve. */
  readonly serves: readonly string[];
}

export interface BenchDataDir {
  readonly dir: string;
  readonly certs: DevCertificatePaths;
  /** Signs invocations of `tool`. */
  readonly caller: AgentCredentials;
  /** Serves `tool`. */
  readonly executor: AgentCredentials;
  /** The connection fleet: `fleet-N` serving `fleet/N`. */
  readonly fleet: readonly AgentCredentials[];
  readonly tool: string;
}

export const BENCH_TOOL = "bench/echo";

/**
 * Where a bench runtime keeps its state. Default: the embedded set-up (SQLite stores and audit log,
 * rate limits in memory). With `databaseUrl`, the stores and the audit log live in that PostgreSQL
 * database; with `redisUrl`, rate limits are counted in that Redis and the cluster link runs over it.
 */
export interface BenchBackends {
  readonly databaseUrl?: string;
  readonly redisUrl?: string;
  /** `redis.key_prefix`: set-ups sharing one redis-server keep apart by prefix. Default "signet". */
  readonly redisKeyPrefix?: string;
}

/** The signet.yaml of the bench: TLS as `signet init` sets it up, loopback, port 0, quiet logs. */
function configYaml(backends: BenchBackends = {}): string {
  return [
    "server:",
    "  host: 127.0.0.1",
    "  port: 0",
    "tls:",
    "  cert_path: certs/server.crt",
    "  key_path: certs/server.key",
    "  client_ca_path: certs/ca.crt",
    "  client_auth: optional",
    "auth:",
    "  api_keys: true",
    "logging:",
    "  level: warn",
    // The pipeline bench pushes thousands of calls a second from one sender (bench-caller), far above
    // MACP's 600 a minute: its limit sits well above anything it can reach, so the bench measures the
    // pipeline with the rate-limit step running (a counter per call), never the limit itself. With
    // Redis the counter is shared by every instance of the set-up (the calls of both add up), and
    // 100 million a minute (the schema's maximum) is still far above their sum.
    // The sessions bench opens a thousand sessions in a second or two, far above the default 60 starts a
    // minute per sender; the same reasoning: the step runs, the limit is never reached.
    "rate_limits:",
    "  messages_per_minute: 100000000",
    "  session_starts_per_minute: 100000000",
    ...(backends.databaseUrl === undefined ? [] : ["storage:", `  database_url: ${backends.databaseUrl}`]),
    ...(backends.redisUrl === undefined
      ? []
      : ["redis:", `  url: ${backends.redisUrl}`, `  key_prefix: ${backends.redisKeyPrefix ?? "signet"}`]),
    "",
  ].join("\n");
}

const BENCH_POLICY =
  'version: 1\nrules:\n  - id: bench-allow-all\n    effect: allow\n    principals: ["*"]\n    actions: ["*"]\n    resources: ["*"]\n';

/** A fresh empty directory for {@link prepareDataDir}; the caller removes it. */
export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), "signet-bench-pipeline-"));
}

/**
 * Fills `dir` as `signet init` would and registers the caller, the executor and `fleetSize` fleet agents
 * (in SQLite files in `dir`, or in the PostgreSQL database of `backends`).
 */
export async function prepareDataDir(
  dir: string,
  fleetSize: number,
  backends: BenchBackends = {},
): Promise<BenchDataDir> {
  const certs = await createDevCertificates({ dir: join(dir, "certs") });
  mkdirSync(join(dir, "keys"), { mode: 0o700 });
  const runtimeKey = Ed25519PrivateKey.generate();
  writeFileSync(join(dir, "keys", "runtime.key"), runtimeKey.toPem(), { mode: 0o600 });
  writeFileSync(join(dir, "signet.yaml"), configYaml(backends));
  // The policy step runs for real: one rule allows the bench's calls.
  mkdirSync(join(dir, "policies"), { mode: 0o700 });
  writeFileSync(join(dir, "policies", "bench.yaml"), BENCH_POLICY);

  const url = backends.databaseUrl;
  const stores = await openStores(
    url === undefined ? { kind: "sqlite", path: join(dir, "signet.db") } : { kind: "postgres", url },
  );
  // The same audit log the runtime opens later with the same key: the deploys are its first entries.
  let audit: AuditLog;
  try {
    audit =
      url === undefined
        ? new SqliteAuditLog({ path: join(dir, "audit.db"), key: runtimeKey, checkpointIntervalMs: 0 })
        : await PostgresAuditLog.open({ url, key: runtimeKey, checkpointIntervalMs: 0 });
  } catch (error) {
    await stores.close();
    throw error;
  }
  try {
    const events = createAuditRecorder(audit);
    const registry = await AgentRegistry.open(stores.agents, events, { keyRotationGraceMs: 86_400_000 });
    const ctx = { actor: "bench" };
    const register = async (id: string, serves: readonly string[]): Promise<AgentCredentials> => {
      const key = Ed25519PrivateKey.generate();
      await registry.deploy(
        `---\nname: ${id}\nserves: [${serves.join(", ")}]\n---\nBench agent ${id}.\n`,
        [key.publicKey.toBase64Url()],
        ctx,
      );
      const created = await createApiKey(
        stores.apiKeys,
        { name: id, principal: id, kind: "agent", permissions: [] },
        ctx,
      );
      return { id, apiKey: created.key, seed: toBase64Url(key.exportSeed()), serves };
    };
    const caller = await register("bench-caller", []);
    const executor = await register("bench-executor", [BENCH_TOOL]);
    const fleet: AgentCredentials[] = [];
    for (let i = 0; i < fleetSize; i++) fleet.push(await register(`fleet-${i}`, [`fleet/${i}`]));
    return { dir, certs, caller, executor, fleet, tool: BENCH_TOOL };
  } finally {
    await audit.close();
    await stores.close();
  }
}

/**
 * A second instance of the deployment `data` describes (PostgreSQL and Redis set-ups only): `dir` gets
 * the same runtime key, certificates, policies and signet.yaml, so both instances share the database,
 * the Redis, the agents and their credentials (as two-instances.test.ts sets them up). Nothing is
 * registered twice. `dir` must exist and be empty.
 */
export function cloneDataDir(data: BenchDataDir, dir: string): BenchDataDir {
  for (const entry of ["certs", "keys", "policies", "signet.yaml"]) {
    cpSync(join(data.dir, entry), join(dir, entry), { recursive: true });
  }
  // `certs` keeps naming the first directory's files: the clients read the CA there, and the copies the
  // second instance serves are the same bytes.
  return { ...data, dir };
}
