// The permission catalogue and its matching: wildcards on both sides, older permissions, unknown tokens.
import { describe, expect, it } from "vitest";
import {
  CONCRETE_PERMISSIONS,
  PERMISSIONS,
  effectivePermissions,
  grantsPermission,
  hasPermission,
  isPermissionGrant,
} from "../../src/auth/principal.js";

describe("isPermissionGrant", () => {
  it("accepts catalogue permissions, * and FAMILY:* for a known family", () => {
    for (const permission of Object.keys(PERMISSIONS)) expect(isPermissionGrant(permission)).toBe(true);
    for (const grant of ["keys:*", "agent:*", "audit:*", "config:*", "auth:*"]) {
      expect(isPermissionGrant(grant), grant).toBe(true);
    }
  });

  it("refuses typos, unknown families and wildcards anywhere but a whole last segment", () => {
    for (const grant of [
      "agent:deplyo",
      "unknown:*",
      ":*",
      "agent*",
      "*:read",
      "agent:**",
      "agent:de*",
      "**",
      "",
      " agent:read",
      "AGENT:READ",
      "constructor",
      "__proto__",
      42,
      null,
    ]) {
      expect(isPermissionGrant(grant), String(grant)).toBe(false);
    }
  });
});

describe("grantsPermission", () => {
  const table: [readonly string[], string, boolean][] = [
    // Exact grants.
    [["agent:read"], "agent:read", true],
    [["agent:read"], "agent:deploy", false],
    [[], "agent:read", false],
    // `*` grants every permission and every family, and is the only grant of `*`.
    [["*"], "agent:deploy", true],
    [["*"], "keys:*", true],
    [["*"], "*", true],
    [
      ["agent:*", "keys:*", "auth:*", "audit:*", "config:*", "metrics:*", "policy:*", "envelope:*"],
      "*",
      false,
    ],
    // A family wildcard grants its family and nothing else.
    [["agent:*"], "agent:deploy", true],
    [["agent:*"], "agent:keys", true],
    [["agent:*"], "audit:read", false],
    [["agent:*"], "agent:*", true],
    // A required family needs every member.
    [["keys:create", "keys:list"], "keys:*", false],
    [["keys:create", "keys:list", "keys:revoke"], "keys:*", true],
    // Older permissions stand for the finer ones that replaced them, one way only.
    [["agent:read"], "agent:list", true],
    [["agent:list"], "agent:read", false],
    [["auth:keys"], "keys:create", true],
    [["auth:keys"], "keys:*", true],
    [["keys:*"], "auth:keys", false],
    [["auth:roles"], "auth:read", true],
    [["auth:read"], "auth:roles", false],
    // Through a wildcard over the older permission's family too.
    [["auth:*"], "keys:revoke", true],
    // Tokens the runtime does not know (a JWT's `openid`, a typo) grant nothing and are never granted.
    [["openid", "agent:deplyo", "agent*", "*:read", "unknown:*"], "agent:deploy", false],
    [["openid", "agent*", "*:read"], "agent:read", false],
    [["*"], "openid", false],
    [["*"], "unknown:*", false],
    [["openid"], "openid", false],
    [["agent:*"], "agent:deplyo", false],
  ];
  it.each(table)("%j grants %s: %s", (grants, required, expected) => {
    expect(grantsPermission(grants, required)).toBe(expected);
  });

  it("hasPermission reads a principal's permissions the same way", () => {
    expect(hasPermission({ permissions: ["keys:*"] }, "keys:revoke")).toBe(true);
    expect(hasPermission({ permissions: ["keys:*"] }, "agent:read")).toBe(false);
  });

  it("expands grants to concrete permissions against the catalogue", () => {
    expect([...effectivePermissions(["keys:*", "agent:read"])].sort()).toEqual([
      "agent:list",
      "agent:read",
      "keys:create",
      "keys:list",
      "keys:revoke",
    ]);
    expect(effectivePermissions(["*"]).size).toBe(CONCRETE_PERMISSIONS.length + 1);
  });
});
