// Tool input schemas: JSON Schema compiled once with Ajv (strict), checked before a handler runs.
import { Ajv, type ErrorObject } from "ajv";
import type { JsonValue } from "@signet/protocol";
import { SdkError } from "./errors.js";

/** A JSON Schema (draft-07 or 2019-09 keywords Ajv knows) describing a tool's arguments. */
export type InputSchema = Readonly<Record<string, unknown>> | boolean;

/** Checks a body; returns undefined when it is valid, else a short description of the first problems. */
export type InputValidator = (body: JsonValue) => string | undefined;

const MAX_REPORTED_ERRORS = 5;

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  // Paths and rule names only, never the offending values: they are the caller's data.
  const parts = (errors ?? [])
    .slice(0, MAX_REPORTED_ERRORS)
    .map(
      (error) => `${error.instancePath === "" ? "/" : error.instancePath} ${error.message ?? "is invalid"}`,
    );
  return parts.length === 0 ? "The arguments do not match the tool's input schema" : parts.join("; ");
}

/**
 * Compiles a tool's input schema. Throws `SdkError` (reason `input_schema`) when Ajv refuses it, so a
 * broken schema fails at `agent.tool(...)` rather than on the first call.
 *
 * Example: `compileInputSchema({ type: "object", required: ["sku"], properties: { sku: { type: "string" } } })`.
 */
export function compileInputSchema(schema: InputSchema): InputValidator {
  // Strict mode refuses unknown keywords and formats when the schema is compiled: a misspelt constraint
  // would otherwise be ignored and the tool would run on input nobody checked. One Ajv per schema, so
  // two tools may reuse a schema `$id`.
  const ajv = new Ajv({ strict: true, allErrors: false, validateFormats: true });
  let validate: ReturnType<typeof ajv.compile>;
  try {
    validate = ajv.compile(schema as Record<string, unknown>);
  } catch (cause) {
    throw new SdkError(`The input schema is invalid: ${(cause as Error).message}`, {
      reason: "input_schema",
      cause,
    });
  }
  return (body) => (validate(body) ? undefined : describe(validate.errors).slice(0, 1024));
}
