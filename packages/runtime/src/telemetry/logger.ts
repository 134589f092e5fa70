// The runtime's structured logger (pino), with credentials redacted wherever they might appear.
import { pino, type Logger } from "pino";

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

/** Creates the runtime logger. Example: `createLogger({ level: "info" })`. */
export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: "signet" },
      redact: { paths: LOG_REDACT_PATHS, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? process.stdout,
  );
}
