// roles.yaml: read with positions, validated at start, with the built-in roles beside it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { grantsPermission } from "../../src/auth/principal.js";
import { formatRolesProblem, loadRoleCatalogue, parseRolesFile } from "../../src/auth/roles-file.js";
import { DEFAULT_ROLES, roleCatalogue, roleGrants, withinGrants } from "../../src/auth/roles.js";
import { ConfigError, loadConfig } from "../../src/config/load-config.js";

const dir = mkdtempSync(join(tmpdir(), "signet-roles-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const problemsOf = (text: string) => parseRolesFile(text, "roles.yaml").problems.map(formatRolesProblem);

describe("the built-in roles", () => {
  const catalogue = roleCatalogue(DEFAULT_ROLES);
  const may = (role: string, permission: string) =>
    grantsPermission(roleGrants(catalogue, [role]), permission);

  it("grow from viewer to developer to operator, and none holds *", () => {
    expect(withinGrants(catalogue.get("developer")!.permissions, catalogue.get("viewer")!)).toBe(true);
    expect(withinGrants(catalogue.get("operator")!.permissions, catalogue.get("developer")!)).toBe(true);
    for (const role of ["viewer", "developer", "operator"]) expect(may(role, "*"), role).toBe(false);
  });

  it("give each role what docs/security.md says", () => {
    expect(may("viewer", "agent:read")).toBe(true);
    expect(may("viewer", "metrics:read")).toBe(true);
    expect(may("viewer", "agent:deploy")).toBe(false);
    expect(may("viewer", "audit:read")).toBe(false);
    expect(may("developer", "agent:deploy")).toBe(true);
    expect(may("developer", "agent:keys")).toBe(true);
    expect(may("developer", "audit:read")).toBe(true);
    expect(may("developer", "keys:create")).toBe(false);
    expect(may("developer", "auth:roles")).toBe(false);
    expect(may("developer", "audit:export")).toBe(false);
    expect(may("operator", "keys:*")).toBe(true);
    expect(may("operator", "auth:roles")).toBe(true);
    expect(may("operator", "audit:export")).toBe(true);
    expect(may("operator", "config:read")).toBe(true);
    expect(may("operator", "envelope:send")).toBe(false);
  });
});

describe("parseRolesFile", () => {
  it("reads roles, descriptions and wildcards; an empty file has none", () => {
    const result = parseRolesFile(
      [
        "version: 1",
        "roles:",
        "  auditor:",
        "    description: Reads and exports the audit log",
        "    permissions: [audit:*, metrics:read, audit:read]",
      ].join("\n"),
      "roles.yaml",
    );
    expect(result.problems).toEqual([]);
    expect(result.includeDefaults).toBe(true);
    expect(result.roles).toEqual([
      {
        name: "auditor",
        description: "Reads and exports the audit log",
        permissions: ["audit:*", "metrics:read", "audit:read"],
        source: "roles.yaml",
      },
    ]);
    expect(parseRolesFile("", "roles.yaml")).toEqual({ roles: [], includeDefaults: true, problems: [] });
    expect(parseRolesFile("# nothing yet\n", "roles.yaml").problems).toEqual([]);
  });

  it("names the file, line, column and key of an unknown permission", () => {
    expect(
      problemsOf(
        ["roles:", "  auditor:", "    permissions:", "      - audit:read", "      - audit:raed"].join("\n"),
      ),
    ).toEqual([
      'roles.yaml:5:9: roles.auditor.permissions[1]: unknown permission "audit:raed" (see docs/security.md for the list; wildcards are * and FAMILY:*)',
    ]);
  });

  it("refuses wildcards that are not a whole family", () => {
    expect(problemsOf("roles:\n  r:\n    permissions: ['*:read', 'agent*', 'nope:*']\n")).toHaveLength(3);
  });

  it("names every problem with its line: keys, names, types and duplicates", () => {
    const problems = problemsOf(
      [
        "version: 2", // 1
        "include_defaults: maybe", // 2
        "extra: 1", // 3
        "roles:", // 4
        "  Bad-Name:", // 5
        "    permissions: [agent:read]", // 6
        "  no-perms:", // 7
        "    description: nothing", // 8
        "  typo:", // 9
        "    permission: [agent:read]", // 10
        "    permissions: [agent:read]", // 11
        "  long:", // 12
        `    description: ${"x".repeat(300)}`, // 13
        "    permissions: []", // 14
        "  scalar: 3", // 15
      ].join("\n"),
    );
    expect(problems).toEqual([
      "roles.yaml:1:10: version: must be 1",
      "roles.yaml:2:19: include_defaults: must be true or false",
      "roles.yaml:3:1: extra: unknown key (expected version, include_defaults, roles)",
      "roles.yaml:5:3: roles.Bad-Name: not a role name: a lower-case letter, then up to 63 of a-z, 0-9, _ and -",
      "roles.yaml:8:5: roles.no-perms.permissions: required: a list of permissions such as [agent:read, keys:*]",
      "roles.yaml:10:5: roles.typo.permission: unknown key (expected description, permissions)",
      "roles.yaml:13:18: roles.long.description: must be text of at most 256 characters",
      "roles.yaml:15:11: roles.scalar: must be a mapping with permissions (a list) and an optional description",
    ]);
  });

  it("refuses duplicate keys and YAML syntax errors with their line", () => {
    const duplicate = problemsOf("roles:\n  a:\n    permissions: []\n  a:\n    permissions: [agent:read]\n");
    expect(duplicate).toHaveLength(1);
    expect(duplicate[0]).toMatch(/^roles\.yaml:4:\d+: not valid YAML: /);
    expect(problemsOf("roles:\n  a: [unclosed\n")[0]).toMatch(/^roles\.yaml:\d+:\d+: not valid YAML/);
    expect(problemsOf("- a\n- b\n")).toEqual([
      "roles.yaml:1:1: the top level must be a mapping with a `roles` key",
    ]);
  });
});

describe("loadRoleCatalogue", () => {
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("gives the built-in roles when the default file is absent, and refuses a configured one that is", () => {
    const absent = join(dir, "absent.yaml");
    expect([...loadRoleCatalogue(absent, { required: false }).keys()]).toEqual([
      "viewer",
      "developer",
      "operator",
    ]);
    expect(() => loadRoleCatalogue(absent, { required: true })).toThrow(
      `${absent}: rbac.roles_file: no such file`,
    );
  });

  it("lays the file's roles over the built-in ones, or replaces them all with include_defaults: false", () => {
    const over = write(
      "over.yaml",
      "roles:\n  viewer:\n    permissions: [metrics:read]\n  auditor:\n    permissions: [audit:*]\n",
    );
    const catalogue = loadRoleCatalogue(over, { required: true });
    expect([...catalogue.keys()]).toEqual(["viewer", "developer", "operator", "auditor"]);
    expect(catalogue.get("viewer")).toMatchObject({ permissions: ["metrics:read"], source: over });
    expect(catalogue.get("developer")?.source).toBe("default");

    const only = write(
      "only.yaml",
      "include_defaults: false\nroles:\n  auditor:\n    permissions: [audit:*]\n",
    );
    expect([...loadRoleCatalogue(only, { required: true }).keys()]).toEqual(["auditor"]);
  });

  it("throws a ConfigError listing every problem", () => {
    const bad = write(
      "bad.yaml",
      "roles:\n  a:\n    permissions: [x:y]\n  b:\n    permissions: [agent:deplyo]\n",
    );
    let error: unknown;
    try {
      loadRoleCatalogue(bad, { required: true });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      `${bad}:3:19: roles.a.permissions[0]: unknown permission "x:y" (see docs/security.md for the list; wildcards are * and FAMILY:*)`,
      `${bad}:5:19: roles.b.permissions[0]: unknown permission "agent:deplyo" (see docs/security.md for the list; wildcards are * and FAMILY:*)`,
    ]);
  });
});

describe("the rbac section of signet.yaml", () => {
  const dataDir = (yaml: string) => {
    const path = mkdtempSync(join(dir, "data-"));
    writeFileSync(join(path, "signet.yaml"), yaml);
    return path;
  };

  it("defaults to DATA_DIR/roles.yaml (optional) and a 5 s cache", () => {
    const path = dataDir("server:\n  allow_insecure: true\n");
    expect(loadConfig({ dataDir: path, env: {} }).rbac).toEqual({
      rolesFile: join(path, "roles.yaml"),
      rolesFileRequired: false,
      cacheTtlMs: 5_000,
    });
  });

  it("takes a roles file (then required) and a cache TTL, and refuses unknown keys", () => {
    const path = dataDir(
      "server:\n  allow_insecure: true\nrbac:\n  roles_file: conf/roles.yaml\n  cache_ttl_ms: 0\n",
    );
    expect(loadConfig({ dataDir: path, env: {} }).rbac).toEqual({
      rolesFile: join(path, "conf/roles.yaml"),
      rolesFileRequired: true,
      cacheTtlMs: 0,
    });
    expect(() => loadConfig({ dataDir: dataDir("rbac:\n  rolse_file: x\n"), env: {} })).toThrow(
      /rbac\.rolse_file: unknown key/,
    );
  });

  it("refuses certificate principals with permissions the runtime does not know", () => {
    const path = dataDir(
      "server:\n  allow_insecure: true\nauth:\n  mtls:\n    principals:\n      ci: { permissions: [agent:read, agent:deplyo] }\n",
    );
    expect(() => loadConfig({ dataDir: path, env: {} })).toThrow(
      'auth.mtls.principals.ci.permissions[1]: unknown permission "agent:deplyo"',
    );
  });
});
