// The agent registry: deploy from Markdown, key rotation with a grace period, revocation at once.
import { Ed25519PrivateKey, SignetError } from "@signet/protocol";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAuditRecorder } from "../../src/audit/audit-recorder.js";
import { SqliteAuditLog } from "../../src/audit/sqlite-audit-log.js";
import { parseAgentDefinition } from "../../src/registry/agent-definition.js";
import { AgentRegistry } from "../../src/registry/agent-registry.js";
import { createMemoryStores } from "../../src/store/memory.js";
import type { Stores } from "../../src/store/types.js";

const ctx = { actor: "admin" };
const definition = (name = "billing-bot", serves = "[invoices/create, invoices/void]") =>
  `---\nname: ${name}\nversion: "1.0.0"\nserves: ${serves}\n---\n\n# Billing\nCreates invoices.\n`;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SignetError) return error.code;
    throw error;
  }
  return "OK";
}

describe("parseAgentDefinition", () => {
  it("reads name, version, serves and the Markdown body", () => {
    const parsed = parseAgentDefinition(definition());
    expect(parsed.name).toBe("billing-bot");
    expect(parsed.version).toBe("1.0.0");
    expect(parsed.serves).toEqual(["invoices/create", "invoices/void"]);
    expect(parsed.description).toBe("# Billing\nCreates invoices.");
  });

  it("refuses missing frontmatter, bad names, bad tool names and YAML bombs", () => {
    const refused = [
      "no frontmatter",
      "---\nname: Billing Bot\n---\n",
      "---\nname: ok\nserves: [Bad Tool]\n---\n",
      "---\nname: ok\nserves: [a, a]\n---\n",
      "---\nname: ok\nserves: x\n---\n",
      "---\n[1, 2]\n---\n",
      `---\na: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c]\nname: ok\n---\n`,
    ];
    for (const text of refused) {
      expect(() => parseAgentDefinition(text), text).toThrow(SignetError);
    }
  });
});

describe("AgentRegistry", () => {
  let stores: Stores;
  let audit: SqliteAuditLog;
  let now: number;
  let registry: AgentRegistry;
  const key1 = Ed25519PrivateKey.generate();
  const key2 = Ed25519PrivateKey.generate();

  beforeEach(async () => {
    stores = createMemoryStores();
    audit = new SqliteAuditLog({
      path: ":memory:",
      key: Ed25519PrivateKey.generate(),
      checkpointIntervalMs: 0,
    });
    now = 1_700_000_000_000;
    registry = await AgentRegistry.open(
      stores.agents,
      createAuditRecorder(audit, { nowMicros: () => now * 1000 }),
      {
        keyRotationGraceMs: 60_000,
        now: () => now,
      },
    );
  });

  afterEach(async () => {
    await audit.close();
    await stores.close();
  });

  it("deploys an agent with keys given as base64url, PEM or JWK and resolves them", async () => {
    const { agent, keys, created } = await registry.deploy(definition(), [key1.publicKey.toPem()], ctx);
    expect(created).toBe(true);
    expect(agent.serves).toEqual(["invoices/create", "invoices/void"]);
    expect(keys.map((k) => [k.kid, k.state])).toEqual([[key1.kid, "active"]]);
    expect(registry.resolveKey(key1.kid, "billing-bot")).toMatchObject({
      owner: "billing-bot",
      revoked: false,
    });
    await registry.deploy(definition(), [key2.publicKey.toJwk()], ctx);
    expect(registry.resolveKey(key2.kid, "billing-bot")?.owner).toBe("billing-bot");
    expect(registry.resolveKey(Ed25519PrivateKey.generate().kid, "x")).toBeUndefined();
    const events = await audit.query({ eventType: "agent_deployed", limit: 10_000 });
    expect(events).toHaveLength(2);
  });

  it("refuses a new agent without keys and a key registered to another agent", async () => {
    expect(await codeOf(registry.deploy(definition(), [], ctx))).toBe("INVALID_REQUEST");
    await registry.deploy(definition(), [key1.publicKey.toBase64Url()], ctx);
    expect(await codeOf(registry.deploy(definition("other-bot"), [key1.publicKey.toBase64Url()], ctx))).toBe(
      "INVALID_REQUEST",
    );
  });

  it("rotates: the new key is active, the old one verifies for the grace period only", async () => {
    await registry.deploy(definition(), [key1.publicKey.toBase64Url()], ctx);
    const keys = await registry.rotateKey("billing-bot", key2.publicKey.toBase64Url(), ctx);
    expect(Object.fromEntries(keys.map((k) => [k.kid, k.state]))).toEqual({
      [key1.kid]: "retiring",
      [key2.kid]: "active",
    });
    expect(registry.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(false);
    now += 60_001;
    expect(registry.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(true);
    expect(registry.resolveKey(key2.kid, "billing-bot")?.revoked).toBe(false);
    expect(await audit.query({ eventType: "key_rotated", limit: 10_000 })).toHaveLength(1);
  });

  it("revokes at once and survives a reload from the store", async () => {
    await registry.deploy(definition(), [key1.publicKey.toBase64Url()], ctx);
    const revoked = await registry.revokeKey("billing-bot", key1.kid, "laptop stolen", ctx);
    expect(revoked.state).toBe("revoked");
    expect(registry.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(true);
    const reopened = await AgentRegistry.open(stores.agents, createAuditRecorder(audit), {
      keyRotationGraceMs: 1,
    });
    expect(reopened.resolveKey(key1.kid, "billing-bot")?.revoked).toBe(true);
    expect(await codeOf(registry.revokeKey("billing-bot", "nope", "x", ctx))).toBe("NOT_FOUND");
    expect(await codeOf(registry.revokeKey("ghost", key1.kid, "x", ctx))).toBe("NOT_FOUND");
    const [event] = await audit.query({ eventType: "key_revoked", limit: 10_000 });
    expect(event?.metadata).toMatchObject({ kid: key1.kid, reason: "laptop stolen" });
  });
});
