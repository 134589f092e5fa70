// Loads signet.yaml, applies SIGNET_* environment and command-line overrides, validates, resolves paths.
import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import type { RedactionSpec } from "@signet/protocol";
import { parse as parseYaml } from "yaml";
import { isPermissionGrant } from "../auth/principal.js";
import { DEFAULT_RATE_LIMITS } from "../ratelimit/defaults.js";
import type { PrincipalKind } from "../store/types.js";
import { interpolateDeep } from "./interpolate.js";
import { CONFIG_SCHEMA } from "./schema.js";

export type ClientAuthMode = "none" | "optional" | "required";

export interface JwtSettings {
  readonly issuer: string;
  readonly audience: string | readonly string[];
  readonly algorithms: readonly string[];
  readonly jwksUrl?: string;
  /** Absolute paths of PEM or JWK files. */
  readonly staticKeys: readonly string[];
  readonly clockToleranceSec: number;
  readonly permissionsClaim: string;
  readonly principalKind: PrincipalKind;
}

/** The validated, resolved configuration the runtime runs with. Paths are absolute. */
export interface RuntimeConfig {
  readonly dataDir: string;
  readonly env: "development" | "production";
  readonly server: {
    readonly host: string;
    readonly port: number;
    /** Plaintext HTTP: only by explicit opt-in, never in production. */
    readonly insecure: boolean;
    readonly bodyLimitBytes: number;
    readonly shutdownTimeoutMs: number;
    readonly trustProxy: boolean | readonly string[];
  };
  /** Absent only when `server.insecure`. */
  readonly tls?: {
    readonly certPath: string;
    readonly keyPath: string;
    readonly clientCaPath?: string;
    readonly clientAuth: ClientAuthMode;
  };
  readonly auth: {
    readonly apiKeys: boolean;
    readonly jwt?: JwtSettings;
    readonly mtls: {
      readonly spiffe: Readonly<Record<string, string>>;
      readonly principals: Readonly<Record<string, { kind: PrincipalKind; permissions: readonly string[] }>>;
    };
  };
  readonly storage: { readonly databaseUrl?: string; readonly sqlitePath: string };
  readonly runtimeKeyPath: string;
  /** The tamper-evident audit log (docs/audit.md) and what is redacted before anything is written. */
  readonly audit: {
    readonly path: string;
    readonly synchronous: "FULL" | "NORMAL";
    readonly checkpointEvery: number;
    readonly checkpointIntervalMs: number;
    /** Entries older than this are pruned down to a checkpoint; 0 keeps everything. */
    readonly retentionDays: number;
    readonly pruneIntervalMs: number;
    readonly busyTimeoutMs: number;
  };
  /** What is masked before anything is written to the audit log or the logs (docs/security.md). */
  readonly redaction: RedactionSpec;
  readonly registry: { readonly keyRotationGraceMs: number };
  readonly envelopes: {
    readonly maxBytes: number;
    readonly maxDepth: number;
    readonly freshnessWindowMs: number;
    /** How long an outcome is kept for identical retries (at least twice the window). */
    readonly idempotencyRetentionMs: number;
  };
  readonly routing: {
    readonly callTimeoutMs: number;
    readonly maxInFlight: number;
    readonly heartbeatMs: number;
  };
  /** Coordination sessions (docs/sessions.md "Lifecycle"). */
  readonly sessions: {
    readonly defaultTtlMs: number;
    readonly maxTtlMs: number;
    readonly maxParticipants: number;
    /** How often OPEN sessions past their TTL are expired (they also expire when next read). */
    readonly sweepIntervalMs: number;
    /** Closed sessions are deleted this many days after they closed; 0 keeps them forever. */
    readonly retentionDays: number;
    /** How often watch streams read events other instances stored. */
    readonly watchPollMs: number;
    readonly watchHeartbeatMs: number;
  };
  /**
   * Roles for the admin API. `rolesFile` defaults to DATA_DIR/roles.yaml, which may be absent (the
   * built-in roles apply); a file named explicitly must exist. Role assignments read from the store are
   * cached for `cacheTtlMs` (changes through this runtime apply at once, other instances' within it).
   */
  readonly rbac: {
    readonly rolesFile: string;
    readonly rolesFileRequired: boolean;
    readonly cacheTtlMs: number;
  };
  /** Policy files (`*.yaml`) in `dir`; reloaded on change when `watch`. */
  readonly policy: { readonly dir: string; readonly watch: boolean; readonly debounceMs: number };
  readonly logging: { readonly level: string; readonly debug: boolean };
  /**
   * Rate limits (pipeline step 8 and unauthenticated requests per client address), counted in this
   * process (`memory`) or in Redis shared by every instance (`redis`, the default when `redis.url` is set).
   */
  readonly rateLimits: {
    readonly backend: "memory" | "redis";
    readonly messagesPerMinute: number;
    readonly sessionStartsPerMinute: number;
    readonly unauthenticatedPerMinute: number;
  };
  /** Redis (`redis.url` / SIGNET_REDIS_URL); absent when not configured. */
  readonly redis?: {
    readonly url: string;
    readonly keyPrefix: string;
    readonly commandTimeoutMs: number;
    readonly connectTimeoutMs: number;
  };
}

/** Command-line overrides, which win over the environment, which wins over the file. */
export interface ConfigOverrides {
  readonly host?: string;
  readonly port?: number;
  readonly allowInsecure?: boolean;
}

/** A configuration problem, naming the key (and file) at fault. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

export const CONFIG_FILE = "signet.yaml";
export const DEFAULT_PORT = 8443;

type Raw = Record<string, Record<string, unknown> | undefined>;

function truthy(value: string | undefined): boolean | undefined {
  if (value === undefined || value === "") return undefined;
  return ["1", "true", "yes", "on"].includes(value.toLowerCase());
}

function describeError(error: ErrorObject): string {
  const key = error.instancePath.replace(/^\//, "").replace(/\//g, ".") || "(root)";
  switch (error.keyword) {
    case "additionalProperties":
      return `${key === "(root)" ? "" : `${key}.`}${String(error.params.additionalProperty)}: unknown key`;
    case "enum":
      return `${key}: must be one of ${(error.params.allowedValues as string[]).join(", ")}`;
    case "required":
      return `${key === "(root)" ? "" : `${key}.`}${String(error.params.missingProperty)}: is required`;
    default:
      return `${key}: ${error.message ?? "is invalid"}`;
  }
}

const ajv = new Ajv({ allErrors: true, coerceTypes: true, useDefaults: false, strict: true });
const validate = ajv.compile(CONFIG_SCHEMA);

/** Reads and parses the YAML file; a missing file is an empty configuration. */
function readFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError([`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? "error"})`]);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    throw new ConfigError([`${path}: not valid YAML (${(error as Error).message.split("\n")[0]})`]);
  }
}

/** Applies SIGNET_* variables over the file's values (env wins over the file). */
function applyEnvironment(raw: Raw, env: NodeJS.ProcessEnv): void {
  const section = (name: string): Record<string, unknown> => (raw[name] ??= {});
  if (env.SIGNET_ENV) raw.env = env.SIGNET_ENV as unknown as Record<string, unknown>;
  const insecure = truthy(env.SIGNET_ALLOW_INSECURE);
  if (insecure !== undefined) section("server").allow_insecure = insecure;
  if (env.SIGNET_HOST) section("server").host = env.SIGNET_HOST;
  if (env.SIGNET_PORT) section("server").port = env.SIGNET_PORT;
  if (env.SIGNET_TLS_CERT_PATH) section("tls").cert_path = env.SIGNET_TLS_CERT_PATH;
  if (env.SIGNET_TLS_KEY_PATH) section("tls").key_path = env.SIGNET_TLS_KEY_PATH;
  if (env.SIGNET_DATABASE_URL) section("storage").database_url = env.SIGNET_DATABASE_URL;
  if (env.SIGNET_REDIS_URL) section("redis").url = env.SIGNET_REDIS_URL;
  if (env.SIGNET_LOG_LEVEL) section("logging").level = env.SIGNET_LOG_LEVEL;
  if (env.SIGNET_AUDIT_PATH) section("audit").path = env.SIGNET_AUDIT_PATH;
  if (env.SIGNET_AUDIT_RETENTION_DAYS) section("audit").retention_days = env.SIGNET_AUDIT_RETENTION_DAYS;
  const debug = truthy(env.SIGNET_DEBUG);
  if (debug !== undefined) section("logging").debug = debug;
}

/**
 * Checks that a production configuration is safe, returning every problem (empty when fine).
 * Production refuses plaintext, running without an authentication method, and debug.
 */
export function productionProblems(config: RuntimeConfig): string[] {
  if (config.env !== "production") return [];
  const problems: string[] = [];
  if (config.server.insecure) {
    problems.push(
      "server.allow_insecure: plaintext is refused in production (SIGNET_ALLOW_INSECURE / --allow-insecure)",
    );
  }
  const mtls =
    config.tls !== undefined && config.tls.clientAuth !== "none" && config.tls.clientCaPath !== undefined;
  if (!config.auth.apiKeys && config.auth.jwt === undefined && !mtls) {
    problems.push(
      "auth: production needs an authentication method (auth.api_keys, auth.jwt or tls.client_auth)",
    );
  }
  if (config.logging.debug || config.logging.level === "debug" || config.logging.level === "trace") {
    problems.push("logging.debug: debug logging is refused in production (SIGNET_DEBUG / logging.level)");
  }
  // Shared state travels encrypted unless it never leaves the machine.
  const database = parsedUrl(config.storage.databaseUrl);
  if (
    database !== undefined &&
    !isLoopback(database.hostname) &&
    !["require", "verify-ca", "verify-full"].includes(database.searchParams.get("sslmode") ?? "")
  ) {
    problems.push(
      "storage.database_url: a remote PostgreSQL needs TLS in production (sslmode=verify-full, or require)",
    );
  }
  const redis = parsedUrl(config.redis?.url);
  if (redis !== undefined && !isLoopback(redis.hostname) && redis.protocol !== "rediss:") {
    problems.push("redis.url: a remote Redis needs TLS in production (rediss://)");
  }
  if (config.audit.synchronous !== "FULL") {
    problems.push("audit.synchronous: production keeps the audit log durable through power loss (FULL)");
  }
  return problems;
}

function parsedUrl(url: string | undefined): URL | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || host === "::1" || /^127\./.test(host);
}

/**
 * Loads the configuration of a data directory.
 *
 * Example: `loadConfig({ dataDir: ".signet", env: process.env, overrides: { port: 9443 } })`.
 */
export function loadConfig(options: {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}): RuntimeConfig {
  const env = options.env ?? process.env;
  const dataDir = resolve(options.dataDir);
  const file = join(dataDir, CONFIG_FILE);
  const parsed = readFile(file);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError([`${file}: the top level must be a mapping`]);
  }
  let raw: Raw;
  try {
    raw = interpolateDeep(parsed, env) as Raw;
  } catch (error) {
    throw new ConfigError([`${file}: ${(error as Error).message}`]);
  }
  applyEnvironment(raw, env);
  const overrides = options.overrides ?? {};
  if (overrides.host !== undefined) (raw.server ??= {}).host = overrides.host;
  if (overrides.port !== undefined) (raw.server ??= {}).port = overrides.port;
  if (overrides.allowInsecure === true) (raw.server ??= {}).allow_insecure = true;

  if (!validate(raw)) {
    throw new ConfigError((validate.errors ?? []).map((error) => `${file}: ${describeError(error)}`));
  }
  const config = resolveConfig(raw, dataDir);
  if (config.rateLimits.backend === "redis" && config.redis === undefined) {
    throw new ConfigError([`${file}: rate_limits.backend: redis needs redis.url (or SIGNET_REDIS_URL)`]);
  }
  if (config.sessions.defaultTtlMs > config.sessions.maxTtlMs) {
    throw new ConfigError([`${file}: sessions.default_ttl_ms: at most sessions.max_ttl_ms`]);
  }
  const unknownGrants = unknownCertificateGrants(config).map((problem) => `${file}: ${problem}`);
  if (unknownGrants.length > 0) throw new ConfigError(unknownGrants);
  const problems = productionProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Certificate principals' permissions must be ones the runtime knows (or `*`, `FAMILY:*`): a typo would
 * otherwise grant nothing silently, and a wildcard over an unknown family would grant nothing either.
 */
function unknownCertificateGrants(config: RuntimeConfig): string[] {
  const problems: string[] = [];
  for (const [id, entry] of Object.entries(config.auth.mtls.principals)) {
    entry.permissions.forEach((grant, index) => {
      if (!isPermissionGrant(grant)) {
        problems.push(`auth.mtls.principals.${id}.permissions[${index}]: unknown permission "${grant}"`);
      }
    });
  }
  return problems;
}

function str(section: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = section?.[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function num(section: Record<string, unknown> | undefined, key: string, fallback: number): number {
  const value = section?.[key];
  return typeof value === "number" ? value : fallback;
}

function bool(section: Record<string, unknown> | undefined, key: string, fallback: boolean): boolean {
  const value = section?.[key];
  return typeof value === "boolean" ? value : fallback;
}

/** Turns the validated raw document into a RuntimeConfig with defaults and absolute paths. */
function resolveConfig(raw: Raw, dataDir: string): RuntimeConfig {
  const at = (path: string): string => (isAbsolute(path) ? path : join(dataDir, path));
  const server = raw.server;
  const insecure = bool(server, "allow_insecure", false);
  // Plaintext binds to loopback unless a host is given explicitly.
  const host = str(server, "host") ?? (insecure ? "127.0.0.1" : "0.0.0.0");
  const tls = raw.tls;
  const auth = raw.auth;
  const jwt = auth?.jwt as Record<string, unknown> | undefined;
  const mtls = auth?.mtls as Record<string, unknown> | undefined;
  const principals = (mtls?.principals ?? {}) as Record<
    string,
    { kind?: PrincipalKind; permissions?: string[] }
  >;
  const level = str(raw.logging, "level") ?? "info";
  return {
    dataDir,
    env: (raw.env as unknown as RuntimeConfig["env"] | undefined) ?? "development",
    server: {
      host,
      port: num(server, "port", DEFAULT_PORT),
      insecure,
      bodyLimitBytes: num(server, "body_limit_bytes", 1024 * 1024 + 64 * 1024),
      shutdownTimeoutMs: num(server, "shutdown_timeout_ms", 10_000),
      trustProxy: (server?.trust_proxy as boolean | string[] | undefined) ?? false,
    },
    ...(insecure
      ? {}
      : {
          tls: {
            certPath: at(str(tls, "cert_path") ?? "certs/server.crt"),
            keyPath: at(str(tls, "key_path") ?? "certs/server.key"),
            ...(str(tls, "client_ca_path") === undefined
              ? {}
              : { clientCaPath: at(str(tls, "client_ca_path")!) }),
            // Client certificates need a CA to check them against: without one, default to none.
            clientAuth:
              (str(tls, "client_auth") as ClientAuthMode | undefined) ??
              (str(tls, "client_ca_path") === undefined ? "none" : "optional"),
          },
        }),
    auth: {
      apiKeys: bool(auth, "api_keys", true),
      ...(jwt === undefined
        ? {}
        : {
            jwt: {
              issuer: jwt.issuer as string,
              audience: jwt.audience as string | string[],
              algorithms: jwt.algorithms as string[],
              ...(typeof jwt.jwks_url === "string" ? { jwksUrl: jwt.jwks_url } : {}),
              staticKeys: ((jwt.static_keys as string[] | undefined) ?? []).map(at),
              clockToleranceSec: num(jwt, "clock_tolerance_sec", 30),
              permissionsClaim: str(jwt, "permissions_claim") ?? "permissions",
              principalKind: (str(jwt, "principal_kind") as PrincipalKind | undefined) ?? "agent",
            },
          }),
      mtls: {
        spiffe: (mtls?.spiffe ?? {}) as Record<string, string>,
        principals: Object.fromEntries(
          Object.entries(principals).map(([id, entry]) => [
            id,
            { kind: entry.kind ?? "agent", permissions: entry.permissions ?? [] },
          ]),
        ),
      },
    },
    storage: {
      ...(str(raw.storage, "database_url") === undefined
        ? {}
        : { databaseUrl: str(raw.storage, "database_url")! }),
      sqlitePath: at(str(raw.storage, "sqlite_path") ?? "signet.db"),
    },
    runtimeKeyPath: at(str(raw.runtime, "signing_key_path") ?? "keys/runtime.key"),
    audit: resolveAudit(raw.audit, at),
    redaction: resolveRedaction(raw.redaction),
    registry: { keyRotationGraceMs: num(raw.registry, "key_rotation_grace_ms", 24 * 3600 * 1000) },
    envelopes: {
      maxBytes: num(raw.envelopes, "max_bytes", 1024 * 1024),
      maxDepth: num(raw.envelopes, "max_depth", 64),
      freshnessWindowMs: num(raw.envelopes, "freshness_window_ms", 60_000),
      idempotencyRetentionMs: num(raw.envelopes, "idempotency_retention_ms", 24 * 3600 * 1000),
    },
    rbac: {
      rolesFile: at(str(raw.rbac, "roles_file") ?? "roles.yaml"),
      rolesFileRequired: str(raw.rbac, "roles_file") !== undefined,
      cacheTtlMs: num(raw.rbac, "cache_ttl_ms", 5_000),
    },
    policy: {
      dir: at(str(raw.policy, "dir") ?? "policies"),
      watch: bool(raw.policy, "watch", true),
      debounceMs: num(raw.policy, "debounce_ms", 100),
    },
    routing: {
      callTimeoutMs: num(raw.routing, "call_timeout_ms", 30_000),
      maxInFlight: num(raw.routing, "max_in_flight", 64),
      heartbeatMs: num(raw.routing, "heartbeat_ms", 30_000),
    },
    sessions: {
      defaultTtlMs: num(raw.sessions, "default_ttl_ms", 3_600_000),
      maxTtlMs: num(raw.sessions, "max_ttl_ms", 86_400_000),
      maxParticipants: num(raw.sessions, "max_participants", 64),
      sweepIntervalMs: num(raw.sessions, "sweep_interval_ms", 5_000),
      retentionDays: num(raw.sessions, "retention_days", 90),
      watchPollMs: num(raw.sessions, "watch_poll_ms", 250),
      watchHeartbeatMs: num(raw.sessions, "watch_heartbeat_ms", 15_000),
    },
    logging: { level, debug: bool(raw.logging, "debug", false) },
    ...resolveRateLimits(raw.rate_limits, raw.redis),
  };
}

/** `rate_limits` (defaults: MACP's) and `redis`; the backend is Redis when a URL is set unless told otherwise. */
function resolveRateLimits(
  limits: Record<string, unknown> | undefined,
  redis: Record<string, unknown> | undefined,
): Pick<RuntimeConfig, "rateLimits" | "redis"> {
  const url = str(redis, "url");
  return {
    rateLimits: {
      backend:
        (str(limits, "backend") as "memory" | "redis" | undefined) ??
        (url === undefined ? "memory" : "redis"),
      messagesPerMinute: num(limits, "messages_per_minute", DEFAULT_RATE_LIMITS.messagesPerMinute),
      sessionStartsPerMinute: num(
        limits,
        "session_starts_per_minute",
        DEFAULT_RATE_LIMITS.sessionStartsPerMinute,
      ),
      unauthenticatedPerMinute: num(
        limits,
        "unauthenticated_per_minute",
        DEFAULT_RATE_LIMITS.unauthenticatedPerMinute,
      ),
    },
    ...(url === undefined
      ? {}
      : {
          redis: {
            url,
            keyPrefix: str(redis, "key_prefix") ?? "signet",
            commandTimeoutMs: num(redis, "command_timeout_ms", 500),
            connectTimeoutMs: num(redis, "connect_timeout_ms", 2000),
          },
        }),
  };
}

function resolveAudit(
  audit: Record<string, unknown> | undefined,
  at: (path: string) => string,
): RuntimeConfig["audit"] {
  return {
    path: at(str(audit, "path") ?? "audit.db"),
    synchronous: (str(audit, "synchronous") as "FULL" | "NORMAL" | undefined) ?? "FULL",
    checkpointEvery: num(audit, "checkpoint_every", 1000),
    checkpointIntervalMs: num(audit, "checkpoint_interval_ms", 1000),
    retentionDays: num(audit, "retention_days", 90),
    pruneIntervalMs: num(audit, "prune_interval_ms", 3600 * 1000),
    busyTimeoutMs: num(audit, "busy_timeout_ms", 5000),
  };
}

function resolveRedaction(raw: Record<string, unknown> | undefined): RedactionSpec {
  const redaction = raw ?? {};
  return {
    ...(redaction.paths === undefined ? {} : { paths: redaction.paths as string[] }),
    ...(redaction.detectors === undefined
      ? {}
      : { detectors: redaction.detectors as RedactionSpec["detectors"] }),
    ...(redaction.sensitive_keys === undefined
      ? {}
      : { sensitiveKeys: redaction.sensitive_keys as RedactionSpec["sensitiveKeys"] }),
    ...(redaction.mask === undefined ? {} : { mask: redaction.mask as string }),
  };
}
