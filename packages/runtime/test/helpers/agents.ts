// Registers test agents (definition, key, API key) in a running fixture.
import { Ed25519PrivateKey } from "@signet/protocol";
import { type RuntimeFixture, call } from "./runtime-fixture.js";

export interface TestAgent {
  readonly id: string;
  readonly key: Ed25519PrivateKey;
  readonly apiKey: string;
  readonly headers: Record<string, string>;
}

/** Deploys an agent serving `serves` with a fresh key, and gives it an API key of its own. */
export async function registerAgent(
  fx: RuntimeFixture,
  id: string,
  serves: readonly string[] = [],
  extraFrontmatter = "",
): Promise<TestAgent> {
  const admin = { authorization: `Bearer ${fx.adminKey}` };
  const key = Ed25519PrivateKey.generate();
  const deployed = await call(fx, "POST", "/v1/agents", {
    headers: admin,
    body: {
      definition: `---\nname: ${id}\nserves: [${serves.join(", ")}]\n${extraFrontmatter}---\nTest agent ${id}.\n`,
      public_keys: [key.publicKey.toBase64Url()],
    },
  });
  if (deployed.status !== 201) throw new Error(`deploy ${id}: ${JSON.stringify(deployed.body)}`);
  const created = await call(fx, "POST", "/v1/auth/keys", {
    headers: admin,
    body: { name: id, principal: id, kind: "agent", permissions: [] },
  });
  if (created.status !== 201) throw new Error(`api key ${id}: ${JSON.stringify(created.body)}`);
  const apiKey = created.body.key as string;
  return { id, key, apiKey, headers: { authorization: `Bearer ${apiKey}` } };
}
