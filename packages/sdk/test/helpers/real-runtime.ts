// A disposable real Signet runtime for SDK tests: a temp data dir, dev certificates, TLS, SQLite.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ed25519PrivateKey } from "@signet/protocol";
import {
  type DevCertificatePaths,
  type Runtime,
  createApiKey,
  createDevCertificates,
  createLogger,
  createRuntime,
  loadConfig,
  openStores,
} from "@signet/runtime";
import { Agent as Dispatcher, request } from "undici";
import { AuthConfig } from "@signet/sdk";

export interface RealRuntimeOptions {
  /** Extra YAML appended to the generated signet.yaml (top-level sections, or lines under `auth:`). */
  readonly yaml?: string;
  /** Extra keys under `server:` (e.g. `body_limit_bytes`). */
  readonly server?: Readonly<Record<string, number | string | boolean>>;
  /** Plaintext development mode (dev identities accepted). */
  readonly insecure?: boolean;
  /** Client certificates to issue from the dev CA (mTLS). */
  readonly clientIds?: readonly string[];
  /** The policy (YAML) instead of the one rule that allows everything. */
  readonly policy?: string;
}

/** An agent registered in the runtime: its Ed25519 key and an API key of its own. */
export interface RegisteredAgent {
  readonly id: string;
  readonly key: Ed25519PrivateKey;
  readonly apiKey: string;
  /** The API key's id (to revoke it). */
  readonly apiKeyId: string;
  /** `AuthConfig.forApiKey(apiKey, { expectedSender: id })`. */
  readonly auth: AuthConfig;
}

export interface RealRuntime {
  readonly dir: string;
  readonly url: string;
  readonly runtime: Runtime;
  /** The dev CA certificate (PEM) that verifies the runtime. */
  readonly ca: string;
  readonly certs: DevCertificatePaths;
  /** The runtime's public key, base64url (what `keys/runtime.pub` holds). */
  readonly runtimePublicKey: string;
  readonly adminKey: string;
  /** Deploys an agent (serving `serves`) with a fresh key and gives it an API key with `permissions`. */
  registerAgent(
    id: string,
    options?: { serves?: readonly string[]; permissions?: readonly string[] },
  ): Promise<RegisteredAgent>;
  /** An admin API call; throws unless the status is 2xx. */
  admin<T = any>(method: "GET" | "POST", path: string, body?: unknown): Promise<T>;
  /** Revokes an API key at once. */
  revokeApiKey(id: string): Promise<void>;
  /** Revokes an agent's key at once (the runtime tells connected agents). */
  revokeKey(agentId: string, kid: string): Promise<void>;
  close(): Promise<void>;
}

const TEST_POLICY =
  'version: 1\nrules:\n  - id: test-allow-all\n    effect: allow\n    principals: ["*"]\n    actions: ["*"]\n    resources: ["*"]\n';

/** Creates a data directory the way `signet init` does and starts a runtime from it on port 0. */
export async function startRealRuntime(options: RealRuntimeOptions = {}): Promise<RealRuntime> {
  const dir = mkdtempSync(join(tmpdir(), "signet-sdk-runtime-"));
  let runtime: Runtime | undefined;
  let dispatcher: Dispatcher | undefined;
  try {
    const certs = await createDevCertificates({
      dir: join(dir, "certs"),
      clientIds: ["admin", ...(options.clientIds ?? [])],
    });
    mkdirSync(join(dir, "keys"));
    const runtimeKey = Ed25519PrivateKey.generate();
    writeFileSync(join(dir, "keys", "runtime.key"), runtimeKey.toPem(), { mode: 0o600 });
    writeFileSync(join(dir, "keys", "runtime.pub"), runtimeKey.publicKey.toPem(), { mode: 0o644 });
    // Policy is not what most of these tests are about: unless one is given, one rule allows everything.
    mkdirSync(join(dir, "policies"));
    if (options.policy === undefined)
      writeFileSync(join(dir, "policies", "test-allow-all.yaml"), TEST_POLICY);
    else writeFileSync(join(dir, "policies", "test-policy.yaml"), options.policy);
    writeFileSync(
      join(dir, "signet.yaml"),
      [
        "server:",
        "  host: 127.0.0.1",
        "  port: 0",
        ...(options.insecure === true ? ["  allow_insecure: true"] : []),
        ...Object.entries(options.server ?? {}).map(([key, value]) => `  ${key}: ${String(value)}`),
        "tls:",
        "  client_ca_path: certs/ca.crt",
        "  client_auth: optional",
        "logging:",
        "  level: silent",
        "auth:",
        "  mtls:",
        "    principals:",
        '      admin: { kind: user, permissions: ["*"] }',
        options.yaml ?? "",
      ].join("\n"),
    );
    const stores = await openStores({ kind: "sqlite", path: join(dir, "signet.db") });
    const admin = await createApiKey(
      stores.apiKeys,
      { name: "admin", principal: "admin", kind: "user", permissions: ["*"] },
      { actor: "sdk-test" },
    );
    await stores.close();
    const config = loadConfig({ dataDir: dir, env: {} });
    runtime = await createRuntime(config, { logger: createLogger({ level: "silent" }) });
    const url = await runtime.start();
    const ca = readFileSync(certs.caCert, "utf8");
    dispatcher = new Dispatcher({ connect: { ca } });
    const started = runtime;
    const http = dispatcher;

    async function adminCall<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
      const response = await request(`${url}${path}`, {
        method,
        headers: {
          "x-signet-api-key": admin.key,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        dispatcher: http,
      });
      const text = await response.body.text();
      if (response.statusCode >= 300) throw new Error(`${method} ${path}: ${response.statusCode} ${text}`);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    }

    return {
      dir,
      url,
      runtime: started,
      ca,
      certs,
      runtimePublicKey: runtimeKey.publicKey.toBase64Url(),
      adminKey: admin.key,
      admin: adminCall,
      async registerAgent(id, agentOptions = {}) {
        const key = Ed25519PrivateKey.generate();
        await adminCall("POST", "/v1/agents", {
          definition: `---\nname: ${id}\nserves: [${(agentOptions.serves ?? []).join(", ")}]\n---\nTest agent ${id}.\n`,
          public_keys: [key.publicKey.toBase64Url()],
        });
        const created = await adminCall<{ key: string; id: string }>("POST", "/v1/auth/keys", {
          name: id,
          principal: id,
          kind: "agent",
          permissions: agentOptions.permissions ?? [],
        });
        return {
          id,
          key,
          apiKey: created.key,
          apiKeyId: created.id,
          auth: AuthConfig.forApiKey(created.key, { expectedSender: id }),
        };
      },
      async revokeApiKey(id) {
        await adminCall("POST", `/v1/auth/keys/${id}/revoke`);
      },
      async revokeKey(agentId, kid) {
        await adminCall("POST", `/v1/agents/${agentId}/keys/${kid}/revoke`, { reason: "sdk test" });
      },
      async close() {
        await http.close().catch(() => undefined);
        await started.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await dispatcher?.close().catch(() => undefined);
    await runtime?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
