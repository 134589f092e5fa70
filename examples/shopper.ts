// Example caller: `shopper` asks inventory-bot for a product's stock. The client signs the call, retries
// it safely (the identical envelope: never executed twice), and verifies the signed result before
// printing it.
//
//   SIGNET_API_KEY=<shopper's API key> npx tsx examples/shopper.ts --data-dir .signet SKU-42
import { SdkError, SignetClient, SignetProtocolError } from "@signet/sdk";
import { readExampleConfig } from "./example-config.js";

const config = readExampleConfig(process.argv.slice(2), "shopper");
const sku = config.rest[0] ?? "SKU-42";
const client = new SignetClient({
  target: config.url,
  rootCertificates: config.ca,
  auth: config.auth,
  agentId: config.agentId,
  signingKey: config.keyPath,
  runtimePublicKey: config.runtimePublicKey,
});

try {
  const answer = await client.invokeTool(
    "inventory/lookup",
    { sku },
    { intent: { purpose: "show stock to a customer" }, timeoutMs: 15_000 },
  );
  console.log(
    JSON.stringify({
      status: answer.status,
      body: answer.body,
      executor: answer.executor,
      audit_id: answer.auditId,
      duplicate: answer.duplicate,
      attempts: answer.attempts,
    }),
  );
  process.exitCode = answer.status === "ok" ? 0 : 1;
} catch (error) {
  // Typed errors: match on the stable code (or, for local errors, the reason), never the message.
  if (error instanceof SignetProtocolError) console.error(`refused: ${error.code} (${error.reason ?? "-"})`);
  else if (error instanceof SdkError) console.error(`local error: ${error.reason ?? "-"}: ${error.message}`);
  else throw error;
  process.exitCode = 1;
} finally {
  await client.close();
}
