// `signet init` and `signet certs dev`: a data directory with config, dev certificates, keys and an admin key.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { Ed25519PrivateKey } from "@signet/protocol";
import { CONFIG_FILE, createApiKey, createDevCertificates, openStores } from "@signet/runtime";
import { DEVELOPMENT_POLICY_YAML } from "./dev-policy.js";

export const DEFAULT_DATA_DIR = ".signet";

/** The development configuration `init` writes: TLS with optional client certificates, SQLite. */
export function defaultConfigYaml(): string {
  return `# Signet runtime configuration, written by \`signet init\`.
# Values may reference the environment: \${VAR} or \${VAR:-default}. SIGNET_* variables override keys.
# Paths are relative to this directory.

env: \${SIGNET_ENV:-development}

server:
  host: 127.0.0.1          # use 0.0.0.0 to listen on every interface
  port: 8443
  body_limit_bytes: 1114112

tls:
  cert_path: certs/server.crt
  key_path: certs/server.key
  client_ca_path: certs/ca.crt
  client_auth: optional    # none | optional | required

auth:
  api_keys: true
  mtls:
    principals:
      admin: { kind: user, permissions: ["*"] }
  # jwt:
  #   issuer: https://idp.example.com/
  #   audience: signet
  #   algorithms: [RS256]
  #   jwks_url: https://idp.example.com/.well-known/jwks.json

storage:
  sqlite_path: signet.db   # SIGNET_DATABASE_URL=postgres://... switches to PostgreSQL

runtime:
  signing_key_path: keys/runtime.key

registry:
  key_rotation_grace_ms: 86400000

policy:
  dir: policies             # *.yaml, default deny; reloaded on change
  watch: true

envelopes:
  max_bytes: 1048576
  max_depth: 64
  freshness_window_ms: 60000

# Per-minute limits (MACP's defaults); policy rules' rate_limit and agent definitions' rate_limits
# add stricter ones for the calls they allow. Over a limit: 429 RATE_LIMITED with retry-after.
rate_limits:
  # backend: memory               # memory (this process), or redis (shared): the default once redis.url is set
  messages_per_minute: 600        # envelopes per sender
  session_starts_per_minute: 60   # session starts per sender
  unauthenticated_per_minute: 60  # failed authentications per client address, then refused
# redis:
#   url: redis://127.0.0.1:6379   # or SIGNET_REDIS_URL; with backend: redis, limits are shared

logging:
  level: info
`;
}

/** Writes certificates for a data directory. */
export async function writeDevCertificates(dataDir: string, force: boolean, clientIds: readonly string[]) {
  return createDevCertificates({ dir: join(dataDir, "certs"), clientIds: ["admin", ...clientIds], force });
}

/**
 * Initializes a data directory. Returns the admin API key, which is shown once and stored only as
 * a hash.
 */
export async function initDataDir(
  dataDirInput: string,
  options: { force: boolean },
): Promise<{ adminKey: string }> {
  const dataDir = resolve(dataDirInput);
  const configPath = join(dataDir, CONFIG_FILE);
  if (existsSync(configPath) && !options.force) {
    throw new Error(
      `${configPath} exists: this data directory is already initialized (use --force to replace it)`,
    );
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(join(dataDir, "keys"), { recursive: true, mode: 0o700 });
  await writeDevCertificates(dataDir, options.force, []);
  const runtimeKey = Ed25519PrivateKey.generate();
  const flag = options.force ? "w" : "wx";
  writeFileSync(join(dataDir, "keys", "runtime.key"), runtimeKey.toPem(), { mode: 0o600, flag });
  writeFileSync(join(dataDir, "keys", "runtime.pub"), runtimeKey.publicKey.toPem(), { mode: 0o644, flag });
  mkdirSync(join(dataDir, "policies"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, "policies", "development.yaml"), DEVELOPMENT_POLICY_YAML, {
    mode: 0o600,
    flag,
  });
  writeFileSync(configPath, defaultConfigYaml(), { mode: 0o600 });
  const stores = await openStores({ kind: "sqlite", path: join(dataDir, "signet.db") });
  try {
    const created = await createApiKey(
      stores.apiKeys,
      { name: "admin (signet init)", principal: "admin", kind: "user", permissions: ["*"] },
      { actor: "signet-init" },
    );
    return { adminKey: created.key };
  } finally {
    await stores.close();
  }
}

export function registerInitCommands(program: Command): void {
  program
    .command("init")
    .description(
      "Create a data directory: signet.yaml, a dev CA with server and client certificates, keys, an admin API key",
    )
    .option("--data-dir <dir>", "where state lives", DEFAULT_DATA_DIR)
    .option("--force", "replace an existing configuration, certificates and keys", false)
    .option("--json", "machine-readable output", false)
    .action(async (options: { dataDir: string; force: boolean; json: boolean }) => {
      const { adminKey } = await initDataDir(options.dataDir, { force: options.force });
      const dataDir = resolve(options.dataDir);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ data_dir: dataDir, admin_api_key: adminKey })}\n`);
        return;
      }
      process.stdout.write(
        [
          `Initialized ${dataDir}`,
          `  ${CONFIG_FILE}, policies/development.yaml (default deny), certs/ (dev CA, server and client-admin certificates), keys/runtime.key, signet.db`,
          "",
          "Admin API key (shown once; it is stored only as a hash):",
          "",
          `  ${adminKey}`,
          "",
          "Next:",
          `  signet serve --data-dir ${options.dataDir}`,
          `  export SIGNET_API_KEY=<the key above> SIGNET_URL=https://127.0.0.1:8443`,
          "",
        ].join("\n"),
      );
    });

  program
    .command("certs")
    .description("Certificates")
    .command("dev")
    .description("Write a development CA, a server certificate and client certificates into DATA_DIR/certs")
    .option("--data-dir <dir>", "where state lives", DEFAULT_DATA_DIR)
    .option("--client <id...>", "also issue client certificates for these principal ids", [])
    .option("--force", "replace existing certificates", false)
    .action(async (options: { dataDir: string; client: string[]; force: boolean }) => {
      const paths = await writeDevCertificates(resolve(options.dataDir), options.force, options.client);
      process.stdout.write(
        `wrote ${paths.caCert}, ${paths.serverCert} and client certificates for ${Object.keys(paths.clients).join(", ")}\n`,
      );
    });
}
