// Example tool server: `inventory-bot` serves `inventory/lookup` over /v1/connect. The SDK verifies every
// call before the handler runs (runtime's signature, caller's signature and key, freshness, replay,
// the input schema) and signs what the handler returns.
//
//   SIGNET_API_KEY=<inventory-bot's API key> npx tsx examples/inventory-agent.ts --data-dir .signet
import { Agent, ToolError } from "@signet/sdk";
import { readExampleConfig } from "./example-config.js";

const STOCK: Readonly<Record<string, number>> = { "SKU-42": 7, "SKU-7": 0, "SKU-1001": 125 };

const config = readExampleConfig(process.argv.slice(2), "inventory-bot");
const agent = new Agent({
  target: config.url,
  rootCertificates: config.ca,
  auth: config.auth,
  agentId: config.agentId,
  signingKey: config.keyPath,
  runtimePublicKey: config.runtimePublicKey,
  onError: (error, info) => console.error(`[${info.phase}] ${error.name}: ${error.message}`),
  onClose: ({ code, reconnecting }) => {
    if (reconnecting) console.error(`connection lost (${code}); reconnecting`);
  },
});

agent.tool(
  "inventory/lookup",
  ({ sku }: { sku: string }, call) => {
    const stock = STOCK[sku];
    // A ToolError's code and message reach the caller; any other exception becomes a bare INTERNAL_ERROR.
    if (stock === undefined) throw new ToolError("unknown_sku", `No product ${sku}`);
    console.log(`lookup ${sku} for ${call.caller} (audit ${call.auditId})`);
    return { sku, stock, checked_at: new Date().toISOString() };
  },
  {
    inputSchema: {
      type: "object",
      required: ["sku"],
      additionalProperties: false,
      properties: { sku: { type: "string", pattern: "^SKU-[0-9]{1,8}$" } },
    },
  },
);

const session = await agent.connect();
console.log(`${config.agentId} serving inventory/lookup (connection ${session.connectionId})`);

// On Ctrl-C or a stop signal: finish the calls in flight, then disconnect.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void agent.close().then(() => {
      console.log(`${config.agentId} closed`);
      process.exit(0);
    });
  });
}
