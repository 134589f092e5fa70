// docs/security.md and docs/operations.md describe RBAC to the people who configure it: the permission
// table must match the catalogue, and the roles.yaml example must load and fail as the page says.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { PERMISSIONS } from "../../src/auth/principal.js";
import { formatRolesProblem, parseRolesFile } from "../../src/auth/roles-file.js";
import { DEFAULT_ROLES } from "../../src/auth/roles.js";

const read = (page: string) =>
  readFileSync(fileURLToPath(new URL(`../../../../docs/${page}`, import.meta.url)), "utf8");

describe("docs/security.md", () => {
  const page = read("security.md");

  it("lists every permission of the catalogue, and no other, in its permission table", () => {
    const listed = [...page.matchAll(/^\| `([a-z]+:[a-z]+)` +\|/gm)].map((match) => match[1]);
    expect(listed.sort()).toEqual(
      Object.keys(PERMISSIONS)
        .filter((p) => p !== "*")
        .sort(),
    );
  });

  it("names every built-in role with every grant it holds", () => {
    for (const role of DEFAULT_ROLES) {
      const row = new RegExp(`^\\| \`${role.name}\` +\\|([^|]+)\\|`, "m").exec(page);
      expect(row, role.name).not.toBeNull();
      const text = row![1]!;
      // A row may build on the row above it ("viewer + ..."), so check the grants it names directly.
      const above = text.includes("viewer +")
        ? DEFAULT_ROLES.find((r) => r.name === "viewer")!.permissions
        : [];
      for (const grant of role.permissions.filter((grant) => !above.includes(grant))) {
        expect(text, `${role.name}: ${grant}`).toContain(`\`${grant}\``);
      }
    }
  });
});

describe("docs/operations.md", () => {
  const page = read("operations.md");
  const example = /```yaml\n(# DATA_DIR\/roles\.yaml[\s\S]*?)```/.exec(page)?.[1];

  it("has a roles.yaml example that loads", () => {
    expect(example).toBeDefined();
    const result = parseRolesFile(example!, "roles.yaml");
    expect(result.problems).toEqual([]);
    expect(result.roles.map((role) => role.name)).toEqual(["viewer", "auditor"]);
  });

  it("shows the message a typo in it really produces", () => {
    const typo = example!.replace("[audit:*, metrics:read]", "[audit:raed, metrics:read]");
    const [problem] = parseRolesFile(typo, "roles.yaml").problems.map(formatRolesProblem);
    const documented = /`(roles\.yaml:\d+:\d+: [^`]*) \(\.\.\.\)`/.exec(page)?.[1];
    expect(documented).toBeDefined();
    expect(problem?.startsWith(documented!)).toBe(true);
  });
});
