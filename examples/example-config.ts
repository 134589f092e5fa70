// Shared by the examples: where the runtime is and which files prove who we are, from flags and env.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AuthConfig } from "@signet/sdk";

/** Where `signet serve` is and how to trust it: the same for every agent an example runs. */
export interface ExampleConnection {
  readonly url: string;
  /** The CA certificate that verifies the runtime (`DATA_DIR/certs/ca.crt`). */
  readonly ca: string;
  /** The runtime's public key, pinned (`DATA_DIR/keys/runtime.pub`). */
  readonly runtimePublicKey: string;
}

/** One agent an example speaks as: its id, its signing key file and its credential. */
export interface ExampleAgent {
  readonly agentId: string;
  /** The agent's Ed25519 key file (`DATA_DIR/keys/AGENT.key`, as `signet keys generate` writes it). */
  readonly keyPath: string;
  readonly auth: AuthConfig;
}

/** What an example needs to reach `signet serve` as one agent. */
export interface ExampleConfig extends ExampleConnection, ExampleAgent {
  /** Arguments left after the flags. */
  readonly rest: readonly string[];
}

/** What an example needs to reach `signet serve` as several agents at once, each with its own credential. */
export interface MultiAgentExampleConfig<Id extends string> extends ExampleConnection {
  readonly agents: Readonly<Record<Id, ExampleAgent>>;
  /** Arguments left after the flags. */
  readonly rest: readonly string[];
}

const CONNECTION_FLAGS = {
  url: { type: "string" },
  "data-dir": { type: "string" },
  ca: { type: "string" },
} as const;

function readConnection(values: { url?: string; "data-dir"?: string; ca?: string }): {
  connection: ExampleConnection;
  dataDir: string;
} {
  const dataDir = resolve(values["data-dir"] ?? process.env.SIGNET_DATA_DIR ?? ".signet");
  return {
    dataDir,
    connection: {
      url: values.url ?? process.env.SIGNET_URL ?? "https://127.0.0.1:8443",
      ca: readFileSync(values.ca ?? join(dataDir, "certs", "ca.crt"), "utf8"),
      runtimePublicKey: readFileSync(join(dataDir, "keys", "runtime.pub"), "utf8"),
    },
  };
}

/**
 * Reads `--url` (or `SIGNET_URL`, default `https://127.0.0.1:8443`), `--data-dir` (or `SIGNET_DATA_DIR`,
 * default `.signet`), `--agent`, `--key` and `--ca`. The API key comes from `SIGNET_API_KEY` only: a
 * secret on the command line would show in every process listing.
 */
export function readExampleConfig(argv: readonly string[], defaultAgent: string): ExampleConfig {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { ...CONNECTION_FLAGS, agent: { type: "string" }, key: { type: "string" } },
  });
  const agentId = values.agent ?? defaultAgent;
  const apiKey = process.env.SIGNET_API_KEY;
  if (apiKey === undefined || apiKey === "") {
    throw new Error(
      `Set SIGNET_API_KEY to ${agentId}'s API key (signet auth create-key --principal ${agentId})`,
    );
  }
  const { connection, dataDir } = readConnection(values);
  return {
    ...connection,
    agentId,
    keyPath: values.key ?? join(dataDir, "keys", `${agentId}.key`),
    auth: AuthConfig.forApiKey(apiKey, { expectedSender: agentId }),
    rest: positionals,
  };
}

/** The variable that holds an agent's API key in a multi-agent example: `SIGNET_<AGENT>_KEY`. */
export function apiKeyVariable(agentId: string): string {
  return `SIGNET_${agentId.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_KEY`;
}

/**
 * Reads `--url`, `--data-dir` and `--ca` as {@link readExampleConfig} does, and one credential per agent:
 * each agent's API key from its own variable (`SIGNET_PLANNER_KEY` for `planner`; see
 * {@link apiKeyVariable}), its signing key from `DATA_DIR/keys/AGENT.key`. Each credential expects its
 * own agent as the sender, so no agent can speak as another by mistake.
 */
export function readMultiAgentConfig<const Id extends string>(
  argv: readonly string[],
  agentIds: readonly Id[],
): MultiAgentExampleConfig<Id> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: CONNECTION_FLAGS,
  });
  const apiKeys = agentIds.map((agentId) => [agentId, process.env[apiKeyVariable(agentId)] ?? ""] as const);
  const missing = apiKeys.filter(([, apiKey]) => apiKey === "").map(([agentId]) => agentId);
  if (missing.length > 0) {
    throw new Error(
      `Set ${missing.map((agentId) => `${apiKeyVariable(agentId)} to ${agentId}'s API key`).join(", ")} ` +
        "(signet auth create-key --principal AGENT)",
    );
  }
  const { connection, dataDir } = readConnection(values);
  const agents = {} as Record<Id, ExampleAgent>;
  for (const [agentId, apiKey] of apiKeys) {
    agents[agentId] = {
      agentId,
      keyPath: join(dataDir, "keys", `${agentId}.key`),
      auth: AuthConfig.forApiKey(apiKey, { expectedSender: agentId }),
    };
  }
  return { ...connection, agents, rest: positionals };
}
