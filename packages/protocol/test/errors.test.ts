// Holds the error registry and docs/errors.md to each other, and pins the wire shape.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, SignetError, fromWireError, isSignetError } from "@signet/protocol";

const docsPath = new URL("../../../docs/errors.md", import.meta.url);

function documentedCodes(): Map<string, { status: number; retryable: boolean }> {
  const rows = new Map<string, { status: number; retryable: boolean }>();
  const registry = readFileSync(docsPath, "utf8").split("## Registry")[1]!.split("\n## ")[0]!;
  for (const line of registry.split("\n")) {
    const match = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|\s*(yes|no)\s*\|/.exec(line);
    if (match) rows.set(match[1]!, { status: Number(match[2]), retryable: match[3] === "yes" });
  }
  return rows;
}

describe("error registry", () => {
  it("every registry code is documented with the same status and retry flag", () => {
    const docs = documentedCodes();
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(docs.get(code), code).toEqual({ status: info.status, retryable: info.retryable });
    }
  });

  it("every documented code is in the registry", () => {
    for (const code of documentedCodes().keys()) expect(Object.hasOwn(ERROR_CODES, code), code).toBe(true);
  });

  it("pins the code to status table for the codes clients depend on", () => {
    const pinned = {
      UNAUTHENTICATED: 401,
      FORBIDDEN: 403,
      IDENTITY_MISMATCH: 403,
      POLICY_DENIED: 403,
      INVALID_ENVELOPE: 400,
      PAYLOAD_TOO_LARGE: 413,
      RATE_LIMITED: 429,
      DUPLICATE_MESSAGE: 409,
      TARGET_UNAVAILABLE: 503,
      TIMEOUT: 504,
      INTERNAL_ERROR: 500,
    };
    for (const [code, status] of Object.entries(pinned)) {
      expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status, code).toBe(status);
    }
  });

  it("marks exactly the design's retryable codes as retryable", () => {
    const retryable = Object.entries(ERROR_CODES)
      .filter(([, info]) => info.retryable)
      .map(([code]) => code)
      .sort();
    expect(retryable).toEqual(
      [
        "AUDIT_UNAVAILABLE",
        "INTERNAL_ERROR",
        "RATE_LIMITED",
        "TARGET_UNAVAILABLE",
        "TIMEOUT",
        "UNAVAILABLE",
      ].sort(),
    );
  });
});

describe("SignetError", () => {
  it("carries the registry's status and retry flag and serializes to the wire shape", () => {
    const error = new SignetError("RATE_LIMITED", undefined, { retry_after_ms: 250 });
    expect(error.status).toBe(429);
    expect(error.retryable).toBe(true);
    expect(error.toWire()).toEqual({
      error: { code: "RATE_LIMITED", message: "Rate limit exceeded", retryable: true, retry_after_ms: 250 },
    });
    expect(isSignetError(error)).toBe(true);
  });

  it("round-trips through the wire shape", () => {
    const error = new SignetError("POLICY_DENIED", "no", { rule: "r1", reason: "because" });
    const back = fromWireError(JSON.parse(JSON.stringify(error.toWire())));
    expect(back.code).toBe("POLICY_DENIED");
    expect(back.details).toEqual({ rule: "r1", reason: "because" });
  });

  it("turns unknown codes and malformed shapes into INTERNAL_ERROR", () => {
    expect(fromWireError({ error: { code: "NOPE" } }).code).toBe("INTERNAL_ERROR");
    expect(fromWireError("x").code).toBe("INTERNAL_ERROR");
    expect(fromWireError({ error: { code: "RATE_LIMITED", retry_after_ms: -5 } }).details).toEqual({});
  });
});
