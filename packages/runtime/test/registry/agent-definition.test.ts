// The full agent-definition schema: every field validated, errors naming the field and its line.
import { describe, expect, it } from "vitest";
import { AgentDefinitionError, parseAgentDefinition } from "../../src/registry/agent-definition.js";
import { agentPolicySource } from "../../src/registry/agent-policy.js";

const FULL = `---
name: order-processor
version: "1.0.0"
capabilities: [order-processing, inventory-check]
tools: [database/query, email/send]
serves: [orders/create]
capability_access:
  order-processing: { allowed_requesters: [customer-interface, "admin-*"] }
  inventory-check:  { allowed_requesters: ["*"] }
rate_limits: { order-processing: "50/minute", inventory-check: "200/minute" }
memory: { enabled: true, scope: workspace, max_entities: 10000, max_relations: 50000 }
security: { require_auth: true }
---
# Order processor

Creates orders.
`;

function problem(text: string, options = {}): AgentDefinitionError {
  try {
    parseAgentDefinition(text, options);
  } catch (error) {
    expect(error).toBeInstanceOf(AgentDefinitionError);
    expect((error as AgentDefinitionError).code).toBe("INVALID_REQUEST");
    return error as AgentDefinitionError;
  }
  throw new Error("expected a refusal");
}

describe("agent definitions", () => {
  it("reads every field of the schema", () => {
    const definition = parseAgentDefinition(FULL);
    expect(definition).toMatchObject({
      name: "order-processor",
      version: "1.0.0",
      capabilities: ["order-processing", "inventory-check"],
      tools: ["database/query", "email/send"],
      serves: ["orders/create"],
      capabilityAccess: { "order-processing": { allowed_requesters: ["customer-interface", "admin-*"] } },
      rateLimits: { "order-processing": "50/minute" },
      memory: { enabled: true, scope: "workspace" },
      security: { require_auth: true },
      description: "# Order processor\n\nCreates orders.",
    });
  });

  it("names the field and the line of each problem", () => {
    const cases: [string, string, number][] = [
      [FULL.replace("name: order-processor", "name: Order Processor"), "name", 2],
      [
        FULL.replace("tools: [database/query, email/send]", "tools: [database/query, Bad Tool]"),
        "tools[1]",
        5,
      ],
      [FULL.replace('"50/minute"', '"fifty"'), "rate_limits.order-processing", 10],
      [FULL.replace("inventory-check:  {", "shipping:  {"), "capability_access.shipping", 9],
      [FULL.replace("scope: workspace", "scope: galaxy"), "memory.scope", 11],
      [FULL.replace("require_auth: true", "require_auth: false"), "security.require_auth", 12],
      [FULL.replace("security:", "secruity:"), "secruity", 12],
    ];
    for (const [text, field, line] of cases) {
      const error = problem(text);
      expect(error.field, field).toBe(field);
      expect(error.line, field).toBe(line);
    }
  });

  it("checks that the tools it may call are served by some registered agent", () => {
    const error = problem(FULL, { toolExists: (tool: string) => tool === "database/query" });
    expect(error.field).toBe("tools[1]");
    expect(error.line).toBe(5);
    expect(() => parseAgentDefinition(FULL, { toolExists: () => true })).not.toThrow();
  });

  it("compiles into policy rules: tools the agent may call, and who may request each capability", () => {
    const definition = parseAgentDefinition(FULL);
    const source = agentPolicySource({
      id: definition.name,
      description: definition.description,
      definition: definition.frontmatter,
      serves: definition.serves,
      createdAt: 0,
      updatedAt: 0,
      deployedBy: "test",
    });
    expect(source?.rules).toEqual([
      expect.objectContaining({
        id: "agent:order-processor:tools",
        principals: ["agent:order-processor"],
        resources: ["tool:database/query", "tool:email/send"],
      }),
      expect.objectContaining({
        id: "agent:order-processor:capability:order-processing",
        principals: ["customer-interface", "admin-*"],
        resources: ["capability:order-processing"],
        rateLimit: "50/minute",
      }),
      expect.objectContaining({ id: "agent:order-processor:capability:inventory-check", principals: ["*"] }),
    ]);
  });
});
