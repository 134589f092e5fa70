// Client certificates: a verified peer id becomes a principal through the configured table.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_CERTIFICATE_PERMISSIONS,
  certificatePrincipals,
  principalFromPeer,
} from "../../src/auth/mtls.js";

const table = certificatePrincipals({
  admin: { kind: "user", permissions: ["*"] },
  "ci-deployer": { kind: "service", permissions: ["agent:deploy"] },
});

describe("principalFromPeer", () => {
  it("gives a table entry its kind and permissions", () => {
    expect(principalFromPeer({ id: "admin", source: "cn" }, table)).toEqual({
      id: "admin",
      kind: "user",
      permissions: ["*"],
      method: "mtls",
    });
    expect(principalFromPeer({ id: "ci-deployer", source: "spiffe" }, table)).toMatchObject({
      kind: "service",
      permissions: ["agent:deploy"],
    });
  });

  it("makes any other verified peer an agent with no admin permissions", () => {
    const principal = principalFromPeer({ id: "billing-bot", source: "cn" }, table);
    expect(principal).toEqual({
      id: "billing-bot",
      kind: "agent",
      permissions: [...DEFAULT_CERTIFICATE_PERMISSIONS],
      method: "mtls",
    });
    expect(DEFAULT_CERTIFICATE_PERMISSIONS).toEqual(["envelope:send"]);
  });

  it("never reads table entries from Object.prototype", () => {
    // `constructor` is a valid bare id and, on a plain object, an inherited property.
    expect(principalFromPeer({ id: "constructor", source: "cn" }, table)).toEqual({
      id: "constructor",
      kind: "agent",
      permissions: ["envelope:send"],
      method: "mtls",
    });
  });

  it("refuses a missing peer and an id that is not a bare id", () => {
    expect(principalFromPeer(undefined, table)).toEqual({
      ok: false,
      reason: "no_credentials",
      method: "mtls",
    });
    for (const id of ["Admin", "admin ", "", "spiffe://x/y"]) {
      expect(principalFromPeer({ id, source: "cn" }, table)).toMatchObject({
        ok: false,
        reason: "malformed",
      });
    }
  });

  it("hands out copies, so a caller cannot change the table through a principal", () => {
    const principal = principalFromPeer({ id: "admin", source: "cn" }, table);
    (principal as unknown as { permissions: string[] }).permissions.push("extra");
    expect(principalFromPeer({ id: "admin", source: "cn" }, table)).toMatchObject({ permissions: ["*"] });
  });
});
