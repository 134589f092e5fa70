// The runtime's structured logger (pino), with credentials redacted wherever they might appear: pino's
// path redaction for known credential fields, then the configured redaction plan (paths, sensitive
// member names and the built-in secret detectors) over every other value a log line carries.
import { type RedactionSpec, compileRedactionPlan } from "@signet/protocol";
import { pino, type Logger } from "pino";
import { toAuditJson } from "../audit/audit-recorder.js";

/** Paths pino masks in every log line: headers that carry credentials, and key material. */
export const LOG_REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers['x-signet-api-key']",
  "headers.authorization",
  "headers['x-signet-api-key']",
  "*.authorization",
  "*.apiKey",
  "*.api_key",
  "*.token",
  "*.password",
  "*.secret",
  "*.privateKey",
  "*.private_key",
  "key",
];

/** Creates the runtime logger. Example: `createLogger({ level: "info", redaction: config.redaction })`. */
export function createLogger(options: {
  level: string;
  destination?: NodeJS.WritableStream;
  redaction?: RedactionSpec;
}): Logger {
  const plan = compileRedactionPlan(options.redaction ?? {});
  return pino(
    {
      level: options.level,
      base: { service: "signet" },
      redact: { paths: LOG_REDACT_PATHS, censor: "[REDACTED]" },
      formatters: {
        // Errors keep their shape for pino's serializer; everything else goes through the plan.
        log(object) {
          const plain: Record<string, unknown> = {};
          const kept: Record<string, unknown> = {};
          for (const [key, value] of Object.entries(object)) {
            if (value instanceof Error || key === "req" || key === "res") kept[key] = value;
            else plain[key] = value;
          }
          return { ...(plan.apply(toAuditJson(plain)).value as Record<string, unknown>), ...kept };
        },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? process.stdout,
  );
}
