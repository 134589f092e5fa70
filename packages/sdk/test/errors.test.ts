// Typed errors: every registry code has its class, wire errors round-trip, local errors stay local.
import { ERROR_CODES, type ErrorCode, SignetError } from "@signet/protocol";
import { describe, expect, it } from "vitest";
import {
  ERROR_CLASSES,
  ForbiddenError,
  IdentityMismatchError,
  InternalError,
  PermissionDeniedError,
  RateLimitedError,
  SdkError,
  SignatureInvalidError,
  SignetProtocolError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
  errorFromWire,
  isProtocolError,
} from "@signet/sdk";

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

// The class name is the code in PascalCase plus "Error", except where a clearer name was chosen.
const RENAMED: Partial<Record<ErrorCode, string>> = {
  POLICY_DENIED: "PermissionDeniedError",
  INTERNAL_ERROR: "InternalError",
};

function expectedName(code: ErrorCode): string {
  return (
    RENAMED[code] ??
    `${code
      .toLowerCase()
      .split("_")
      .map((part) => part[0]!.toUpperCase() + part.slice(1))
      .join("")}Error`
  );
}

describe("registry codes → typed classes", () => {
  it("has a class for every registry code and nothing else", () => {
    expect(Object.keys(ERROR_CLASSES).sort()).toEqual([...CODES].sort());
  });

  it.each(CODES)("maps %s to its class with the registry's status and retry flag", (code) => {
    const info = ERROR_CODES[code];
    const error = errorFromWire({ error: { code, message: "m", retryable: info.retryable } }, info.status);
    expect(error).toBeInstanceOf(ERROR_CLASSES[code]);
    expect(error).toBeInstanceOf(SignetProtocolError);
    expect(isProtocolError(error)).toBe(true);
    expect(error.name).toBe(expectedName(code));
    expect(error.constructor.name).toBe(expectedName(code));
    expect(error.code).toBe(code);
    expect(error.status).toBe(info.status);
    expect(error.retryable).toBe(info.retryable);
    expect(error.message).toBe("m");
  });

  it.each(CODES)("round-trips %s through the wire shape", (code) => {
    const original = new ERROR_CLASSES[code]("why", { reason: "tag", audit_id: "a-1" });
    const wire = original.toWire();
    expect(wire.error).toEqual({
      code,
      message: "why",
      retryable: ERROR_CODES[code].retryable,
      reason: "tag",
      audit_id: "a-1",
    });
    // Through JSON text too, as it arrives over HTTP.
    const back = errorFromWire(JSON.stringify(wire), original.status);
    expect(back).toBeInstanceOf(ERROR_CLASSES[code]);
    expect(back.toWire()).toEqual(wire);
  });

  it("reads the protocol package's own SignetError wire form", () => {
    const wire = new SignetError("POLICY_DENIED", "no", { rule: "deny-prod", reason: "dba only" }).toWire();
    const error = errorFromWire(wire, 403);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).rule).toBe("deny-prod");
    expect(error.details.reason).toBe("dba only");
  });

  it("gives RateLimitedError its retry-after", () => {
    const error = errorFromWire(
      { error: { code: "RATE_LIMITED", message: "slow", retryable: true, retry_after_ms: 250 } },
      429,
    );
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterMs).toBe(250);
    expect(new RateLimitedError().retryAfterMs).toBeUndefined();
  });

  it("defaults the message to the registry's", () => {
    expect(new SignatureInvalidError().message).toBe(ERROR_CODES.SIGNATURE_INVALID.message);
  });

  it("keeps subclasses apart under instanceof", () => {
    const error = new RateLimitedError();
    expect(error).not.toBeInstanceOf(ForbiddenError);
    expect(error).not.toBeInstanceOf(IdentityMismatchError);
    expect(error).not.toBeInstanceOf(SdkError);
    expect(new ForbiddenError()).not.toBeInstanceOf(RateLimitedError);
  });
});

describe("errorFromWire fallbacks", () => {
  it("falls back to the HTTP status when the body is not a wire error", () => {
    const cases: [unknown, number, new (...args: never[]) => Error][] = [
      ["<html>Bad gateway</html>", 502, UnavailableError],
      ["", 503, UnavailableError],
      [{}, 401, UnauthenticatedError],
      [{ error: { code: "NO_SUCH_CODE", message: "x" } }, 403, ForbiddenError],
      [null, 504, TimeoutError],
      [undefined, 500, InternalError],
      [undefined, undefined as unknown as number, InternalError],
    ];
    for (const [body, status, expected] of cases) {
      const error = errorFromWire(body, status);
      expect(error).toBeInstanceOf(expected);
      expect(error.details.reason).toBe("malformed_error");
    }
  });

  it("drops oversized or mistyped details instead of carrying them", () => {
    const error = errorFromWire(
      {
        error: { code: "POLICY_DENIED", message: "x".repeat(5000), rule: 42, retry_after_ms: -1 },
      },
      403,
    );
    expect(error.message).toBe(ERROR_CODES.POLICY_DENIED.message);
    expect(error.details).toEqual({});
  });
});

describe("local errors", () => {
  it("SdkError carries no registry code and is not a protocol error", () => {
    const error = new SdkError("nope", { reason: "insecure_transport" });
    expect(error.reason).toBe("insecure_transport");
    expect(error.retryable).toBe(false);
    expect("code" in error).toBe(false);
    expect(error).not.toBeInstanceOf(SignetProtocolError);
    expect(isProtocolError(error)).toBe(false);
  });

  it("IdentityMismatchError is both an SdkError and a coded protocol error", () => {
    const error = new IdentityMismatchError(undefined, {}, { expected: "bob", actual: "alice" });
    expect(error).toBeInstanceOf(SdkError);
    expect(error).toBeInstanceOf(SignetProtocolError);
    expect(error).toBeInstanceOf(IdentityMismatchError);
    expect(error.code).toBe("IDENTITY_MISMATCH");
    expect(error.status).toBe(403);
    expect(error.retryable).toBe(false);
    expect(error.expected).toBe("bob");
    expect(error.actual).toBe("alice");
    expect(error.message).toContain("bob");
  });

  it("keeps the brand out of logs and JSON", () => {
    const error = new RateLimitedError(undefined, { retry_after_ms: 5 });
    expect(Object.getOwnPropertySymbols(error)).toEqual([]);
    expect(JSON.stringify(error)).not.toContain("protocol-error");
  });
});
