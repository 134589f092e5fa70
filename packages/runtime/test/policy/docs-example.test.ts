// docs/policy.md's development policy is the one users copy: it must load and decide as the page says.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/compile.js";
import { explain, formatExplanation } from "../../src/policy/explain.js";
import { parsePolicyFile } from "../../src/policy/policy-file.js";

const page = readFileSync(fileURLToPath(new URL("../../../../docs/policy.md", import.meta.url)), "utf8");

/** The fenced YAML block that starts with `# policies/dev.yaml`. */
function developmentPolicy(): string {
  const match = /```yaml\n(# policies\/dev\.yaml[\s\S]*?)```/.exec(page);
  if (match === null) throw new Error("docs/policy.md has no policies/dev.yaml block");
  return match[1]!;
}

describe("docs/policy.md", () => {
  const { source, problems } = parsePolicyFile(developmentPolicy(), "policies/dev.yaml");
  const policy = compilePolicy([source]);
  const ask = (id: string, resource: string, params?: Record<string, unknown>) =>
    policy.decide({
      principal: { id, kind: "agent" },
      action: "invoke",
      resource,
      ...(params ? { params } : {}),
    });

  it("has a development policy that loads", () => {
    expect(problems).toEqual([]);
    expect(policy.rules.map((rule) => rule.id)).toEqual(["demo-database-query", "no-table-drops"]);
  });

  it("decides the table's four rows as the page says", () => {
    expect(ask("alice", "tool:database/query", { query: "select 1", limit: 10 })).toMatchObject({
      effect: "allow",
      rules: ["demo-database-query"],
    });
    expect(ask("bob", "tool:database/query", { limit: 500 })).toMatchObject({
      effect: "deny",
      rules: ["demo-database-query"],
      reason: "params.limit is above 100 (rule demo-database-query)",
    });
    expect(ask("alice", "tool:database/drop")).toMatchObject({
      effect: "deny",
      rules: ["no-table-drops"],
      reason: "Dropping tables is never allowed from an agent",
    });
    expect(ask("carol", "tool:database/query")).toMatchObject({
      effect: "deny",
      rules: [],
      reason: "no rule allows invoke on tool:database/query for carol",
    });
  });

  it("shows the explain output the engine prints", () => {
    const text = formatExplanation(
      explain(policy, {
        principal: { id: "bob" },
        action: "invoke",
        resource: "tool:database/query",
        params: { limit: 500 },
      }),
    );
    const shown = /```\n(DENY: bob invoke tool:database\/query[\s\S]*?)\n```/.exec(page)?.[1];
    expect(shown).toBe(text);
  });

  it("has a refund limit example that behaves as described", () => {
    const block = /```yaml\n(- id: refunds-need-a-human-above-10000[\s\S]*?)```/.exec(page)?.[1];
    expect(block).toBeDefined();
    const refunds = parsePolicyFile(
      `rules:\n  - { id: refunds, effect: allow, principals: ["*"], actions: [invoke], resources: ["tool:payments/refund"] }\n${block!.replace(/^/gm, "  ")}`,
      "refunds.yaml",
    );
    expect(refunds.problems).toEqual([]);
    const limit = compilePolicy([refunds.source]);
    const refund = (amount: number) =>
      limit.decide({
        principal: { id: "a" },
        action: "invoke",
        resource: "tool:payments/refund",
        params: { amount },
      });
    expect(refund(50)).toMatchObject({ effect: "allow" });
    expect(refund(20_000)).toMatchObject({
      effect: "deny",
      rules: ["refunds-need-a-human-above-10000"],
      reason: "Refunds above 10,000 need a human",
    });
  });
});
