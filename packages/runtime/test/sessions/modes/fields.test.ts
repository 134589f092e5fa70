// The strict body and config reader every mode uses: shapes, bounds, unknown members and copies.
import { isSignetError } from "@signet/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FieldReader, MAX_TEXT_LENGTH } from "../../../src/sessions/modes/fields.js";
import { expectInvalidBody, expectInvalidConfig, refusal } from "./mode-harness.js";

const read = (body: unknown, allowed: readonly string[] = ["a"]): FieldReader =>
  FieldReader.body("test", body, allowed);

describe("FieldReader", () => {
  it("refuses non-objects and unknown members, tagging body and config refusals apart", () => {
    for (const body of [null, [], "a", 1, true]) expectInvalidBody(() => read(body));
    expectInvalidBody(() => read({ a: 1, b: 2 }));
    expectInvalidConfig(() => FieldReader.config("quorum", { n: 3 }, ["k"]));
    expectInvalidBody(() => read(JSON.parse('{"__proto__": {"a": 1}}')));
    expect(refusal(() => read({ b: 2 })).message).toContain('"b"');
  });

  it("treats a left-out optional member as null but refuses an explicit null", () => {
    expect(read({}).optionalText("a")).toBeNull();
    expectInvalidBody(() => read({ a: null }).optionalText("a"));
    expectInvalidBody(() => read({}).text("a"));
  });

  it("bounds text to 1..MAX_TEXT_LENGTH characters", () => {
    expect(read({ a: "x".repeat(MAX_TEXT_LENGTH) }).text("a")).toHaveLength(MAX_TEXT_LENGTH);
    expectInvalidBody(() => read({ a: "x".repeat(MAX_TEXT_LENGTH + 1) }).text("a"));
    expectInvalidBody(() => read({ a: "" }).text("a"));
  });

  it("checks ids and agent ids by their grammars", () => {
    expect(read({ a: "proposal-1.v2:draft_3" }).id("a")).toBe("proposal-1.v2:draft_3");
    for (const bad of ["", " p1", "p 1", "-p1", "p1/2", "x".repeat(129), 7])
      expectInvalidBody(() => read({ a: bad }).id("a"));
    expect(read({ a: "billing-bot" }).agent("a")).toBe("billing-bot");
    for (const bad of ["Alice", "agent:alice", "", 1]) expectInvalidBody(() => read({ a: bad }).agent("a"));
  });

  it("checks numbers inclusively and writes -0 as 0", () => {
    expect(read({ a: 0 }).number("a", 0, 1)).toBe(0);
    expect(read({ a: 1 }).number("a", 0, 1)).toBe(1);
    expect(Object.is(read({ a: -0 }).number("a", 0, 1), 0)).toBe(true);
    expect(Object.is(read({ a: -0 }).integer("a", 0, 1), 0)).toBe(true);
    for (const bad of [1.5, -0.01, Number.NaN, Number.POSITIVE_INFINITY, "1", true]) {
      expectInvalidBody(() => read({ a: bad }).number("a", 0, 1));
    }
    expectInvalidBody(() => read({ a: 1.5 }).integer("a", 1, 3));
  });

  it("matches enumerations exactly", () => {
    expect(read({ a: "APPROVE" }).oneOf("a", ["APPROVE", "REJECT"])).toBe("APPROVE");
    for (const bad of ["approve", "Approve", " APPROVE", 1]) {
      expectInvalidBody(() => read({ a: bad }).oneOf("a", ["APPROVE", "REJECT"]));
    }
  });

  it("copies objects and JSON values out of the body", () => {
    const inner = { nested: [1, { deep: true }] };
    const copied = read({ a: inner }).object("a");
    expect(copied).toStrictEqual(inner);
    expect(copied).not.toBe(inner);
    expect(copied.nested).not.toBe(inner.nested);
    expectInvalidBody(() => read({ a: [1] }).object("a"));
    expect(read({ a: [1, "two"] }).json("a")).toStrictEqual([1, "two"]);
  });

  it("never throws anything but INVALID_REQUEST, whatever JSON it reads", () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.constantFrom("id", "agent", "text", "number", "object", "json"),
        (body, how) => {
          try {
            const reader = read(body, ["a", "b"]);
            if (how === "number") reader.number("a", 0, 100);
            else reader[how]("a");
          } catch (error) {
            expect(isSignetError(error) && error.code === "INVALID_REQUEST").toBe(true);
          }
        },
      ),
    );
  });
});
