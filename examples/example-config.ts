// Shared by the examples: where the runtime is and which files prove who we are, from flags and env.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AuthConfig } from "@signet/sdk";

/** What an example needs to reach `signet serve` as one agent. */
export interface ExampleConfig {
  readonly url: string;
  readonly agentId: string;
  /** The CA certificate that verifies the runtime (`DATA_DIR/certs/ca.crt`). */
  readonly ca: string;
  /** The runtime's public key, pinned (`DATA_DIR/keys/runtime.pub`). */
  readonly runtimePublicKey: string;
  /** The agent's Ed25519 key file (`DATA_DIR/keys/AGENT.key`, as `signet keys generate` writes it). */
  readonly keyPath: string;
  readonly auth: AuthConfig;
  /** Arguments left after the flags. */
  readonly rest: readonly string[];
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
    options: {
      url: { type: "string" },
      "data-dir": { type: "string" },
      agent: { type: "string" },
      key: { type: "string" },
      ca: { type: "string" },
    },
  });
  const dataDir = resolve(values["data-dir"] ?? process.env.SIGNET_DATA_DIR ?? ".signet");
  const agentId = values.agent ?? defaultAgent;
  const apiKey = process.env.SIGNET_API_KEY;
  if (apiKey === undefined || apiKey === "") {
    throw new Error(
      `Set SIGNET_API_KEY to ${agentId}'s API key (signet auth create-key --principal ${agentId})`,
    );
  }
  return {
    url: values.url ?? process.env.SIGNET_URL ?? "https://127.0.0.1:8443",
    agentId,
    ca: readFileSync(values.ca ?? join(dataDir, "certs", "ca.crt"), "utf8"),
    runtimePublicKey: readFileSync(join(dataDir, "keys", "runtime.pub"), "utf8"),
    keyPath: values.key ?? join(dataDir, "keys", `${agentId}.key`),
    auth: AuthConfig.forApiKey(apiKey, { expectedSender: agentId }),
    rest: positionals,
  };
}
