// Configuration: file + env + flags, validation messages that name the key, production refusals.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(yaml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "signet-config-"));
  dirs.push(dir);
  if (yaml !== undefined) writeFileSync(join(dir, "signet.yaml"), yaml);
  return dir;
}

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("defaults to TLS (client certificates off without a CA), paths inside the data dir", () => {
    const dir = dataDir();
    const config = loadConfig({ dataDir: dir, env: {} });
    expect(config.server.insecure).toBe(false);
    expect(config.server.port).toBe(8443);
    expect(config.tls).toEqual({
      certPath: join(dir, "certs/server.crt"),
      keyPath: join(dir, "certs/server.key"),
      clientAuth: "none",
    });
    expect(config.storage.sqlitePath).toBe(join(dir, "signet.db"));
    expect(config.envelopes).toEqual({
      maxBytes: 1048576,
      maxDepth: 64,
      freshnessWindowMs: 60000,
      idempotencyRetentionMs: 86400000,
    });
    expect(config.routing).toEqual({ callTimeoutMs: 30000, maxInFlight: 64, heartbeatMs: 30000 });
  });

  it("interpolates ${VAR:-default} in values and coerces types", () => {
    const dir = dataDir(
      "server:\n  port: ${PORT:-9443}\n  host: ${HOST}\ntls:\n  client_auth: required\n  client_ca_path: ca.crt\n",
    );
    const config = loadConfig({ dataDir: dir, env: { HOST: "127.0.0.2" } });
    expect(config.server.port).toBe(9443);
    expect(config.server.host).toBe("127.0.0.2");
    expect(config.tls?.clientAuth).toBe("required");
    expect(config.tls?.clientCaPath).toBe(join(dir, "ca.crt"));
    expect(loadConfig({ dataDir: dir, env: { HOST: "h", PORT: "1234" } }).server.port).toBe(1234);
  });

  it("names the variable and key when a reference has no value", () => {
    const dir = dataDir("server:\n  host: ${NOPE}\n");
    expect(problems(() => loadConfig({ dataDir: dir, env: {} }))[0]).toMatch(/server\.host.*NOPE/);
  });

  it("names the key for unknown keys, bad enums and bad types", () => {
    const dir = dataDir("tls:\n  client_auth: sometimes\n  cert_pth: x\nserver:\n  port: high\n");
    const found = problems(() => loadConfig({ dataDir: dir, env: {} })).join("\n");
    expect(found).toMatch(/tls\.client_auth: must be one of none, optional, required/);
    expect(found).toMatch(/tls\.cert_pth: unknown key/);
    expect(found).toMatch(/server\.port/);
  });

  it("refuses YAML that does not parse, naming the file", () => {
    const dir = dataDir("server: [\n");
    expect(problems(() => loadConfig({ dataDir: dir, env: {} }))[0]).toContain("signet.yaml: not valid YAML");
  });

  it("lets SIGNET_* env override the file and flags override env", () => {
    const dir = dataDir("server:\n  port: 1000\n");
    const env = {
      SIGNET_PORT: "2000",
      SIGNET_TLS_CERT_PATH: "/etc/c.crt",
      SIGNET_TLS_KEY_PATH: "/etc/c.key",
    };
    const config = loadConfig({ dataDir: dir, env });
    expect(config.server.port).toBe(2000);
    expect(config.tls?.certPath).toBe("/etc/c.crt");
    expect(loadConfig({ dataDir: dir, env, overrides: { port: 3000 } }).server.port).toBe(3000);
  });

  it("binds plaintext to loopback unless a host is given", () => {
    const dir = dataDir();
    const config = loadConfig({ dataDir: dir, env: { SIGNET_ALLOW_INSECURE: "1" } });
    expect(config.server.insecure).toBe(true);
    expect(config.server.host).toBe("127.0.0.1");
    expect(config.tls).toBeUndefined();
    expect(
      loadConfig({ dataDir: dir, env: {}, overrides: { allowInsecure: true, host: "0.0.0.0" } }).server.host,
    ).toBe("0.0.0.0");
    expect(loadConfig({ dataDir: dir, env: {} }).server.host).toBe("0.0.0.0");
  });

  describe("production mode", () => {
    it("refuses plaintext", () => {
      const found = problems(() =>
        loadConfig({ dataDir: dataDir(), env: { SIGNET_ENV: "production", SIGNET_ALLOW_INSECURE: "1" } }),
      );
      expect(found.join()).toMatch(/server\.allow_insecure/);
    });

    it("refuses running without an authentication method", () => {
      const dir = dataDir("auth:\n  api_keys: false\ntls:\n  client_auth: none\n");
      expect(problems(() => loadConfig({ dataDir: dir, env: { SIGNET_ENV: "production" } })).join()).toMatch(
        /^auth:/,
      );
    });

    it("refuses debug", () => {
      expect(
        problems(() =>
          loadConfig({ dataDir: dataDir(), env: { SIGNET_ENV: "production", SIGNET_DEBUG: "1" } }),
        ).join(),
      ).toMatch(/logging\.debug/);
      expect(
        problems(() =>
          loadConfig({ dataDir: dataDir("logging:\n  level: debug\n"), env: { SIGNET_ENV: "production" } }),
        ).join(),
      ).toMatch(/logging\.debug/);
    });

    it("names every problem at once", () => {
      const dir = dataDir("auth:\n  api_keys: false\ntls:\n  client_auth: none\n");
      const found = problems(() =>
        loadConfig({
          dataDir: dir,
          env: { SIGNET_ENV: "production", SIGNET_ALLOW_INSECURE: "1", SIGNET_DEBUG: "1" },
        }),
      );
      expect(found).toHaveLength(3);
    });

    it("refuses shared state over plaintext to another machine, and a non-durable audit log", () => {
      const production = { SIGNET_ENV: "production" };
      const found = problems(() =>
        loadConfig({
          dataDir: dataDir("audit:\n  synchronous: NORMAL\n"),
          env: {
            ...production,
            SIGNET_DATABASE_URL: "postgres://signet:pw@db.internal:5432/signet",
            SIGNET_REDIS_URL: "redis://cache.internal:6379",
          },
        }),
      );
      expect(found.join("\n")).toMatch(/storage\.database_url: a remote PostgreSQL needs TLS/);
      expect(found.join("\n")).toMatch(/redis\.url: a remote Redis needs TLS/);
      expect(found.join("\n")).toMatch(/audit\.synchronous/);
      // The same over TLS, or on loopback, is fine.
      const secure = loadConfig({
        dataDir: dataDir(),
        env: {
          ...production,
          SIGNET_DATABASE_URL: "postgres://signet@db.internal:5432/signet?sslmode=verify-full",
          SIGNET_REDIS_URL: "rediss://cache.internal:6380",
        },
      });
      expect(secure.redis?.url).toBe("rediss://cache.internal:6380");
      const local = loadConfig({
        dataDir: dataDir(),
        env: {
          ...production,
          SIGNET_DATABASE_URL: "postgres://127.0.0.1/signet",
          SIGNET_REDIS_URL: "redis://localhost:6379",
        },
      });
      expect(local.env).toBe("production");
    });

    it("accepts a secure production configuration", () => {
      expect(loadConfig({ dataDir: dataDir(), env: { SIGNET_ENV: "production" } }).env).toBe("production");
    });
  });
});
