// `signet agent ...` and `signet auth ...`: talk to a running runtime over HTTPS with an admin key.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { createAdminClient } from "../client.js";
import { DEFAULT_DATA_DIR } from "./init.js";

interface RemoteOptions {
  readonly url?: string;
  readonly dataDir: string;
  readonly ca?: string;
  readonly json: boolean;
}

function withRemoteOptions(command: Command): Command {
  return command
    .option("--url <url>", "runtime URL (default SIGNET_URL or https://127.0.0.1:8443)")
    .option("--data-dir <dir>", "data directory whose certs/ca.crt verifies the runtime", DEFAULT_DATA_DIR)
    .option("--ca <file>", "CA certificate that verifies the runtime (default DATA_DIR/certs/ca.crt)")
    .option("--json", "machine-readable output", false);
}

async function remote<T>(
  options: RemoteOptions,
  run: (call: <R>(method: "GET" | "POST", path: string, body?: unknown) => Promise<R>) => Promise<T>,
): Promise<T> {
  const client = createAdminClient({
    dataDir: options.dataDir,
    ...(options.url === undefined ? {} : { url: options.url }),
    ...(options.ca === undefined ? {} : { caPath: options.ca }),
  });
  try {
    return await run((method, path, body) => client.call(method, path, body));
  } finally {
    await client.close();
  }
}

function print(options: RemoteOptions, value: unknown, human: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

/** Parses `30d`, `12h`, `15m`, `45s` or plain milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) throw new Error(`Invalid duration "${text}" (use e.g. 30d, 12h, 15m, 45s)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"] ?? 1;
  return Number(match[1]) * unit;
}

type WireKey = { kid: string; state: string; created_at: string; not_after: string | null };
type WireAgent = { id: string; version: string | null; serves: string[]; keys?: WireKey[] };

function keyTable(keys: readonly WireKey[]): string {
  return keys.map((k) => `  ${k.kid}  ${k.state.padEnd(8)}  ${k.not_after ?? ""}`).join("\n");
}

export function registerRemoteCommands(program: Command): void {
  const agent = program.command("agent").description("Manage agents in a running runtime");

  withRemoteOptions(
    agent
      .command("deploy <file>")
      .description("Deploy an agent from its Markdown definition")
      .option("--public-key <file...>", "public key file(s): PEM, JWK or base64url", [])
      .option("--validate-only", "check the definition and keys without deploying", false),
  ).action(async (file: string, options: RemoteOptions & { publicKey: string[]; validateOnly: boolean }) => {
    const definition = readFileSync(file, "utf8");
    const publicKeys = options.publicKey.map((path) => readFileSync(path, "utf8"));
    if (options.validateOnly) {
      const checked = await remote(options, (call) =>
        call<{ valid: boolean; name: string }>("POST", "/v1/agents?validate_only=true", {
          definition,
          public_keys: publicKeys,
        }),
      );
      print(options, checked, () => `${checked.name}: valid`);
      return;
    }
    const agentWire = await remote(options, (call) =>
      call<WireAgent>("POST", "/v1/agents", { definition, public_keys: publicKeys }),
    );
    print(options, agentWire, () => `deployed ${agentWire.id}\n${keyTable(agentWire.keys ?? [])}`);
  });

  withRemoteOptions(agent.command("list").description("List agents")).action(
    async (options: RemoteOptions) => {
      const { agents } = await remote(options, (call) => call<{ agents: WireAgent[] }>("GET", "/v1/agents"));
      print(options, agents, () =>
        agents.length === 0
          ? "no agents"
          : agents
              .map((a) => `${a.id.padEnd(32)} ${(a.version ?? "").padEnd(10)} serves: ${a.serves.join(", ")}`)
              .join("\n"),
      );
    },
  );

  withRemoteOptions(agent.command("get <id>").description("Show an agent and its keys")).action(
    async (id: string, options: RemoteOptions) => {
      const found = await remote(options, (call) =>
        call<WireAgent>("GET", `/v1/agents/${encodeURIComponent(id)}`),
      );
      print(
        options,
        found,
        () =>
          `${found.id} ${found.version ?? ""}\nserves: ${found.serves.join(", ")}\n${keyTable(found.keys ?? [])}`,
      );
    },
  );

  withRemoteOptions(
    agent
      .command("rotate-key <id>")
      .description("Add a new key; the old ones keep verifying for the grace period")
      .requiredOption("--public-key <file>", "the new public key file")
      .option("--grace <duration>", "grace period for the old keys (e.g. 1h)"),
  ).action(async (id: string, options: RemoteOptions & { publicKey: string; grace?: string }) => {
    const body = {
      public_key: readFileSync(options.publicKey, "utf8"),
      ...(options.grace === undefined ? {} : { grace_period_ms: parseDuration(options.grace) }),
    };
    const { keys } = await remote(options, (call) =>
      call<{ keys: WireKey[] }>("POST", `/v1/agents/${encodeURIComponent(id)}/keys`, body),
    );
    print(options, keys, () => keyTable(keys));
  });

  withRemoteOptions(
    agent
      .command("revoke-key <id> <kid>")
      .description("Revoke an agent's key at once")
      .option("--reason <text>", "why (recorded)", "revoked by operator"),
  ).action(async (id: string, kid: string, options: RemoteOptions & { reason: string }) => {
    const key = await remote(options, (call) =>
      call<WireKey>("POST", `/v1/agents/${encodeURIComponent(id)}/keys/${encodeURIComponent(kid)}/revoke`, {
        reason: options.reason,
      }),
    );
    print(options, key, () => `revoked ${key.kid}`);
  });

  const auth = program.command("auth").description("Manage API keys in a running runtime");

  withRemoteOptions(
    auth
      .command("create-key")
      .description("Create an API key (printed once)")
      .requiredOption("--name <name>", "a label for the key")
      .requiredOption("--principal <id>", "the bare id the key authenticates as")
      .option("--kind <kind>", "agent, user or service", "agent")
      .option("--permissions <list>", "comma-separated permissions (e.g. agent:read,metrics:read)", "")
      .option("--expires-in <duration>", "lifetime, e.g. 30d"),
  ).action(
    async (
      options: RemoteOptions & {
        name: string;
        principal: string;
        kind: string;
        permissions: string;
        expiresIn?: string;
      },
    ) => {
      const body = {
        name: options.name,
        principal: options.principal,
        kind: options.kind,
        permissions: options.permissions
          .split(",")
          .map((p) => p.trim())
          .filter((p) => p !== ""),
        ...(options.expiresIn === undefined ? {} : { expires_in_ms: parseDuration(options.expiresIn) }),
      };
      const created = await remote(options, (call) =>
        call<{ key: string; id: string; expires_at: string | null }>("POST", "/v1/auth/keys", body),
      );
      print(options, created, () => `key id ${created.id}; the key (shown once):\n\n  ${created.key}\n`);
    },
  );

  withRemoteOptions(
    auth.command("list-keys").description("List API keys (never the keys themselves)"),
  ).action(async (options: RemoteOptions) => {
    const { keys } = await remote(options, (call) =>
      call<{ keys: { id: string; name: string; principal: string; state: string }[] }>(
        "GET",
        "/v1/auth/keys",
      ),
    );
    print(options, keys, () =>
      keys.map((k) => `${k.id}  ${k.state.padEnd(8)} ${k.principal.padEnd(24)} ${k.name}`).join("\n"),
    );
  });

  withRemoteOptions(auth.command("revoke-key <id>").description("Revoke an API key at once")).action(
    async (id: string, options: RemoteOptions) => {
      const key = await remote(options, (call) =>
        call<{ id: string }>("POST", `/v1/auth/keys/${encodeURIComponent(id)}/revoke`),
      );
      print(options, key, () => `revoked ${key.id}`);
    },
  );

  withRemoteOptions(auth.command("check").description("Show who the runtime thinks you are")).action(
    async (options: RemoteOptions) => {
      const me = await remote(options, (call) =>
        call<{ id: string; kind: string; method: string; permissions: string[] }>("GET", "/v1/auth/whoami"),
      );
      print(
        options,
        me,
        () => `${me.id} (${me.kind}, via ${me.method}); permissions: ${me.permissions.join(", ") || "none"}`,
      );
    },
  );
}
