// Disposable runtimes for tests: a temp data dir with real dev certificates, keys and an admin API key.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ed25519PrivateKey } from "@signet/protocol";
import { pino } from "pino";
import { Agent, request } from "undici";
import { createApiKey } from "../../src/auth/api-keys.js";
import { loadConfig } from "../../src/config/load-config.js";
import { type Runtime, createRuntime } from "../../src/runtime.js";
import { openStores } from "../../src/store/open.js";
import { type DevCertificatePaths, createDevCertificates } from "../../src/tls/dev-certs.js";

/** Allows everything: for tests whose subject is not policy. */
export const TEST_POLICY =
  'version: 1\nrules:\n  - id: test-allow-all\n    effect: allow\n    principals: ["*"]\n    actions: ["*"]\n    resources: ["*"]\n';

export interface RuntimeFixture {
  readonly dir: string;
  readonly runtime: Runtime;
  readonly url: string;
  readonly certs: DevCertificatePaths;
  readonly adminKey: string;
  /** An HTTPS client trusting the dev CA, optionally presenting a client certificate. */
  client(options?: { cert?: string; key?: string }): Agent;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Extra YAML appended to the generated signet.yaml. */
  readonly yaml?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly insecure?: boolean;
  readonly clientIds?: readonly string[];
  /** Listen on a real port (default) or only build the app for `inject`. */
  readonly listen?: boolean;
  /**
   * Policy files to write into DATA_DIR/policies (name → YAML). Default: one rule allowing everything,
   * so tests of other steps are not decided by policy; `null` writes no policy directory at all.
   */
  readonly policies?: Readonly<Record<string, string>> | null;
  /** Run on PostgreSQL (stores and audit log) at this URL instead of the embedded SQLite. */
  readonly databaseUrl?: string;
  /** The runtime key (PKCS#8 PEM): instances of one deployment share it. Default: a new one. */
  readonly runtimeKeyPem?: string;
}

/** Creates a data directory the way `signet init` does, then starts a runtime from it on port 0. */
export async function startRuntime(options: FixtureOptions = {}): Promise<RuntimeFixture> {
  const dir = mkdtempSync(join(tmpdir(), "signet-runtime-"));
  const agents: Agent[] = [];
  let runtime: Runtime | undefined;
  try {
    const certs = await createDevCertificates({
      dir: join(dir, "certs"),
      clientIds: ["admin", ...(options.clientIds ?? [])],
    });
    mkdirSync(join(dir, "keys"));
    if (options.policies !== null) {
      mkdirSync(join(dir, "policies"));
      const policies = options.policies ?? { "test-allow-all.yaml": TEST_POLICY };
      for (const [name, yaml] of Object.entries(policies)) writeFileSync(join(dir, "policies", name), yaml);
    }
    writeFileSync(
      join(dir, "keys", "runtime.key"),
      options.runtimeKeyPem ?? Ed25519PrivateKey.generate().toPem(),
      {
        mode: 0o600,
      },
    );
    writeFileSync(
      join(dir, "signet.yaml"),
      [
        "server:",
        "  host: 127.0.0.1",
        "  port: 0",
        ...(options.insecure === true ? ["  allow_insecure: true"] : []),
        "tls:",
        "  client_ca_path: certs/ca.crt",
        "  client_auth: optional",
        "auth:",
        "  mtls:",
        "    principals:",
        '      admin: { kind: user, permissions: ["*"] }',
        ...(options.databaseUrl === undefined ? [] : ["storage:", `  database_url: ${options.databaseUrl}`]),
        options.yaml ?? "",
      ].join("\n"),
    );
    const stores = await openStores(
      options.databaseUrl === undefined
        ? { kind: "sqlite", path: join(dir, "signet.db") }
        : { kind: "postgres", url: options.databaseUrl },
    );
    const admin = await createApiKey(
      stores.apiKeys,
      { name: "admin", principal: "admin", kind: "user", permissions: ["*"] },
      { actor: "test" },
    );
    await stores.close();
    const config = loadConfig({ dataDir: dir, env: options.env ?? {} });
    runtime = await createRuntime(config, { logger: pino({ level: "silent" }) });
    const url = options.listen === false ? "" : await runtime.start();
    const started = runtime;
    return {
      dir,
      runtime: started,
      url,
      certs,
      adminKey: admin.key,
      client(clientOptions = {}) {
        const agent = new Agent({
          connect: {
            ca: readPem(certs.caCert),
            ...(clientOptions.cert === undefined ? {} : { cert: readPem(clientOptions.cert) }),
            ...(clientOptions.key === undefined ? {} : { key: readPem(clientOptions.key) }),
          },
        });
        agents.push(agent);
        return agent;
      },
      async close() {
        await Promise.allSettled(agents.map((agent) => agent.close()));
        await started.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await runtime?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

function readPem(path: string): string {
  return readFileSync(path, "utf8");
}
/** A JSON request over a real socket; returns status, headers and parsed body. */
export async function call(
  fixture: RuntimeFixture,
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; dispatcher?: Agent } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const response = await request(`${fixture.url}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
    dispatcher: options.dispatcher ?? fixture.client(),
  });
  const text = await response.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (metrics): keep the text.
  }
  return { status: response.statusCode, headers: response.headers, body };
}
