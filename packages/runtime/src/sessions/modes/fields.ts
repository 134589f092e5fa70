// Strict readers for message bodies and start configs: a missing member, a wrong type, a value out of
// range or a member the mode does not define is INVALID_REQUEST, so no mode guesses what was meant.
import { type JsonValue, SignetError, isAgentId } from "@signet/protocol";
import type { JsonObject } from "../types.js";
import { BODY_REASON, CONFIG_REASON } from "./mode-errors.js";

/** Proposal and task ids: what a client picks, short and printable, so they are safe in logs. */
export const ITEM_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** The longest free text (a title, a reason, a note) a mode keeps, in UTF-16 code units. */
export const MAX_TEXT_LENGTH = 4096;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// JSON.parse("-0") is -0, which JSON.stringify writes as 0: keep 0 so the state reads back as it was.
function positiveZero(value: number): number {
  return Object.is(value, -0) ? 0 : value;
}

/**
 * Reads the members of one body or config. Optional members may be left out but not set to `null`:
 * a `null` would be a second way to say "absent", and the state keeps `null` for that itself.
 *
 * Example: `const body = FieldReader.body("vote", message.body, ["proposal_id", "vote"]);
 * const vote = body.oneOf("vote", ["APPROVE", "REJECT", "ABSTAIN"]);`
 */
export class FieldReader {
  private constructor(
    private readonly source: Record<string, unknown>,
    private readonly label: string,
    private readonly reason: string,
  ) {}

  /** Checks that `body` is an object with no member outside `allowed`. */
  static body(verb: string, body: unknown, allowed: readonly string[]): FieldReader {
    return FieldReader.open(body, `${verb} body`, BODY_REASON, allowed);
  }

  /** Checks that `config` is an object with no member outside `allowed`. */
  static config(mode: string, config: unknown, allowed: readonly string[]): FieldReader {
    return FieldReader.open(config, `${mode} config`, CONFIG_REASON, allowed);
  }

  private static open(
    value: unknown,
    label: string,
    reason: string,
    allowed: readonly string[],
  ): FieldReader {
    if (!isObject(value))
      throw new SignetError("INVALID_REQUEST", `The ${label} must be an object`, { reason });
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        throw new SignetError(
          "INVALID_REQUEST",
          `The ${label} has an unknown member ${JSON.stringify(key)}`,
          {
            reason,
          },
        );
      }
    }
    return new FieldReader(value, label, reason);
  }

  /** True when the member is present (even when its value is wrong). */
  has(key: string): boolean {
    return Object.hasOwn(this.source, key);
  }

  /** A proposal or task id (`ITEM_ID_PATTERN`). */
  id(key: string): string {
    const value = this.required(key);
    if (typeof value !== "string" || !ITEM_ID_PATTERN.test(value)) this.fail(key, "must be an id");
    return value;
  }

  /** An agent id; whether it names a participant is the mode's rule, not the body's shape. */
  agent(key: string): string {
    const value = this.required(key);
    if (!isAgentId(value)) this.fail(key, "must be an agent id");
    return value;
  }

  /** Non-empty free text of at most `MAX_TEXT_LENGTH`. */
  text(key: string): string {
    const value = this.required(key);
    if (typeof value !== "string" || value.length === 0 || value.length > MAX_TEXT_LENGTH) {
      this.fail(key, `must be a string of 1 to ${MAX_TEXT_LENGTH} characters`);
    }
    return value;
  }

  /** Like `text`, or `null` when the member is left out. */
  optionalText(key: string): string | null {
    return this.has(key) ? this.text(key) : null;
  }

  /** One of `values`, compared exactly (so `approve` is not `APPROVE`). */
  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const value = this.required(key);
    if (typeof value !== "string" || !(values as readonly string[]).includes(value)) {
      this.fail(key, `must be one of ${values.join(", ")}`);
    }
    return value as T;
  }

  /** A finite number within `[min, max]`. */
  number(key: string, min: number, max: number): number {
    const value = this.required(key);
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      this.fail(key, `must be a number from ${min} to ${max}`);
    }
    return positiveZero(value);
  }

  /** An integer within `[min, max]`. */
  integer(key: string, min: number, max: number): number {
    const value = this.required(key);
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(key, `must be an integer from ${min} to ${max}`);
    }
    return positiveZero(value);
  }

  /** A JSON object, copied so the state never shares memory with the message. */
  object(key: string): JsonObject {
    const value = this.required(key);
    if (!isObject(value)) this.fail(key, "must be an object");
    return structuredClone(value) as JsonObject;
  }

  /** Any JSON value, copied. */
  json(key: string): JsonValue {
    return structuredClone(this.required(key)) as JsonValue;
  }

  private required(key: string): unknown {
    if (!this.has(key)) this.fail(key, "is required");
    const value = this.source[key];
    if (value === null || value === undefined) this.fail(key, "must not be null");
    return value;
  }

  private fail(key: string, problem: string): never {
    throw new SignetError("INVALID_REQUEST", `The ${this.label}: ${key} ${problem}`, { reason: this.reason });
  }
}
