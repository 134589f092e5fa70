// `signet agent ...` and `signet auth ...`: talk to a running runtime over HTTPS with an admin key.
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { type AdminClient, type ClientOptions, createAdminClient } from "../client.js";
import { DEFAULT_DATA_DIR } from "./init.js";

export interface RemoteOptions {
  readonly url?: string;
  readonly dataDir: string;
  readonly ca?: string;
  readonly json: boolean;
}

/** The options every command that talks to a running runtime takes. */
export function withRemoteOptions(command: Command): Command {
  return command
    .option("--url <url>", "runtime URL (default SIGNET_URL or https://127.0.0.1:8443)")
    .option(
      "--data-dir <dir>",
      "data directory: certs/ca.crt verifies the runtime, keys/runtime.pub verifies its signatures",
      DEFAULT_DATA_DIR,
    )
    .option("--ca <file>", "CA certificate that verifies the runtime (default DATA_DIR/certs/ca.crt)")
    .option("--json", "machine-readable output", false);
}

/** The client settings the remote options name (the rest comes from the environment). */
export function adminClientOptions(options: RemoteOptions): ClientOptions {
  return {
    dataDir: options.dataDir,
    ...(options.url === undefined ? {} : { url: options.url }),
    ...(options.ca === undefined ? {} : { caPath: options.ca }),
  };
}

/**
 * Runs `run` with an admin client for the remote options, closing it afterwards.
 *
 * Example: `await withAdminClient(options, (client) => client.call("GET", "/v1/agents"))`.
 */
export async function withAdminClient<T>(
  options: RemoteOptions,
  run: (client: AdminClient) => Promise<T>,
): Promise<T> {
  const client = createAdminClient(adminClientOptions(options));
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

async function remote<T>(
  options: RemoteOptions,
  run: (call: <R>(method: "GET" | "POST", path: string, body?: unknown) => Promise<R>) => Promise<T>,
): Promise<T> {
  return withAdminClient(options, (client) => run((method, path, body) => client.call(method, path, body)));
}

/** JSON with `--json`, the human form otherwise. */
export function print(options: { readonly json: boolean }, value: unknown, human: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

/** Parses a non-negative integer option (up to 15 digits). */
export function nonNegativeInteger(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value)) throw new InvalidArgumentError("a non-negative integer");
  return Number(value);
}

/** Parses a positive integer option. */
export function positiveInteger(value: string): number {
  const number = nonNegativeInteger(value);
  if (number < 1) throw new InvalidArgumentError("a positive integer");
  return number;
}

/** Parses `30d`, `12h`, `15m`, `45s` or plain milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) throw new Error(`Invalid duration "${text}" (use e.g. 30d, 12h, 15m, 45s)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"] ?? 1;
  return Number(match[1]) * unit;
}

type WireRoleChange = { principal: string; role: string; changed: boolean; roles: string[] };
type WireAssignment = { principal: string; role: string; assigned_at: string; assigned_by: string };
type WireRoleDefinition = {
  name: string;
  description: string;
  permissions: string[];
  effective_permissions: string[];
  source: string;
};
type WireWhoami = {
  id: string;
  kind: string;
  method: string;
  permissions: string[];
  roles?: string[];
  permission?: string;
  allowed?: boolean;
};
type WireCheck = {
  principal: string;
  permission: string;
  allowed: boolean;
  roles: string[];
  by_roles: boolean;
  granted_by_roles: string[];
  credentials: (
    | { type: "api_key"; id: string; name: string; allowed: boolean }
    | { type: "certificate"; allowed: boolean }
  )[];
};

const yesNo = (allowed: boolean): string => (allowed ? "yes" : "no");

/** The human form of a permission check, one fact a line. */
function checkText(check: WireCheck): string {
  const lines = [
    `${yesNo(check.allowed)}: ${check.principal} ${check.allowed ? "may" : "may not"} ${check.permission}`,
  ];
  lines.push(
    `  roles: ${check.roles.join(", ") || "none"}${check.by_roles ? ` (granted by ${check.granted_by_roles.join(", ") || "their combination"})` : ""}`,
  );
  for (const credential of check.credentials) {
    lines.push(
      credential.type === "api_key"
        ? `  api key ${credential.id} (${credential.name}): ${yesNo(credential.allowed)}`
        : `  client certificate: ${yesNo(credential.allowed)}`,
    );
  }
  return lines.join("\n");
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

  const auth = program
    .command("auth")
    .description("Manage API keys and role assignments in a running runtime");

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

  withRemoteOptions(
    auth
      .command("assign-role")
      .description("Give a principal a role (you may only give roles within your own permissions)")
      .requiredOption("--principal <id>", "the bare id of the principal (e.g. alice)")
      .requiredOption("--role <role>", "a role: viewer, developer, operator, or one from roles.yaml"),
  ).action(async (options: RemoteOptions & { principal: string; role: string }) => {
    const change = await remote(options, (call) =>
      call<WireRoleChange>("POST", "/v1/auth/roles", { principal: options.principal, role: options.role }),
    );
    print(
      options,
      change,
      () =>
        `${change.changed ? "assigned" : "already assigned"} ${change.role} to ${change.principal}; roles: ${change.roles.join(", ")}`,
    );
  });

  withRemoteOptions(
    auth
      .command("unassign-role")
      .description("Take a role away from a principal; its next request no longer has it")
      .requiredOption("--principal <id>", "the bare id of the principal")
      .requiredOption("--role <role>", "the role to take away"),
  ).action(async (options: RemoteOptions & { principal: string; role: string }) => {
    const change = await remote(options, (call) =>
      call<WireRoleChange>("POST", "/v1/auth/roles/revoke", {
        principal: options.principal,
        role: options.role,
      }),
    );
    print(
      options,
      change,
      () =>
        `${change.changed ? `unassigned ${change.role} from ${change.principal}` : `${change.principal} did not hold ${change.role}`}; roles: ${change.roles.join(", ") || "none"}`,
    );
  });

  withRemoteOptions(
    auth
      .command("list-roles")
      .description("List role assignments, or with --definitions the roles and what they grant")
      .option("--principal <id>", "only this principal's roles")
      .option("--role <role>", "only who holds this role")
      .option("--definitions", "show the roles in effect (built-in and roles.yaml) instead", false),
  ).action(async (options: RemoteOptions & { principal?: string; role?: string; definitions: boolean }) => {
    if (options.definitions) {
      const { roles } = await remote(options, (call) =>
        call<{ roles: WireRoleDefinition[] }>("GET", "/v1/auth/roles/definitions"),
      );
      print(options, roles, () =>
        roles
          .map((role) => `${role.name.padEnd(16)} ${role.permissions.join(", ")}  (${role.source})`)
          .join("\n"),
      );
      return;
    }
    const query = new URLSearchParams({
      ...(options.principal === undefined ? {} : { principal: options.principal }),
      ...(options.role === undefined ? {} : { role: options.role }),
    }).toString();
    const { assignments } = await remote(options, (call) =>
      call<{ assignments: WireAssignment[] }>("GET", `/v1/auth/roles${query === "" ? "" : `?${query}`}`),
    );
    print(options, assignments, () =>
      assignments.length === 0
        ? "no role assignments"
        : assignments
            .map((a) => `${a.principal.padEnd(24)} ${a.role.padEnd(16)} ${a.assigned_at} by ${a.assigned_by}`)
            .join("\n"),
    );
  });

  withRemoteOptions(
    auth
      .command("check")
      .description(
        "Show who the runtime thinks you are; with --permission, whether you hold it; with --principal, what that principal may do (exits 1 when not allowed)",
      )
      .option("--principal <id>", "check this principal instead of yourself (needs auth:read)")
      .option("--permission <permission>", "the permission to check, e.g. agent:deploy or keys:*"),
  ).action(async (options: RemoteOptions & { principal?: string; permission?: string }) => {
    if (options.principal === undefined) {
      const query =
        options.permission === undefined
          ? ""
          : `?${new URLSearchParams({ permission: options.permission }).toString()}`;
      const me = await remote(options, (call) => call<WireWhoami>("GET", `/v1/auth/whoami${query}`));
      const who = `${me.id} (${me.kind}, via ${me.method}); roles: ${(me.roles ?? []).join(", ") || "none"}; permissions: ${me.permissions.join(", ") || "none"}`;
      print(options, me, () =>
        me.allowed === undefined
          ? who
          : `${yesNo(me.allowed)}: you ${me.allowed ? "may" : "may not"} ${me.permission}\n${who}`,
      );
      if (me.allowed === false) process.exitCode = 1;
      return;
    }
    const principal = options.principal;
    if (options.permission === undefined) {
      const { assignments } = await remote(options, (call) =>
        call<{ assignments: WireAssignment[] }>(
          "GET",
          `/v1/auth/roles?${new URLSearchParams({ principal }).toString()}`,
        ),
      );
      const roles = assignments.map((a) => a.role);
      print(options, { principal, roles }, () => `${principal}; roles: ${roles.join(", ") || "none"}`);
      return;
    }
    const permission = options.permission;
    const check = await remote(options, (call) =>
      call<WireCheck>("GET", `/v1/auth/check?${new URLSearchParams({ principal, permission }).toString()}`),
    );
    print(options, check, () => checkText(check));
    if (!check.allowed) process.exitCode = 1;
  });
}
