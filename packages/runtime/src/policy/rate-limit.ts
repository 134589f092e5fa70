// Parses `rate_limit: "100/minute"`. The policy only carries the limit; the rate-limit step enforces it.
import type { RateLimit } from "./types.js";

const WINDOWS: Readonly<Record<string, number>> = {
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
};

const SPEC = /^([1-9][0-9]{0,8})\s*\/\s*(?:([1-9][0-9]{0,5})\s*)?([a-z]+)$/;

/**
 * Parses `COUNT/WINDOW`, where WINDOW is `second`, `minute`, `hour` or `day` (or `s`, `m`, `h`, `d`),
 * optionally with a multiple (`10/5m`). Returns undefined for anything else.
 *
 * Example: `parseRateLimit("100/minute")` → `{ limit: 100, windowMs: 60000, spec: "100/minute" }`.
 */
export function parseRateLimit(spec: string): RateLimit | undefined {
  const match = SPEC.exec(spec.trim());
  if (match === null) return undefined;
  const word = match[3]!;
  // Plurals (`minutes`) read as their singular; `ms` is not a window here.
  const unit =
    WINDOWS[word] ?? (word.length > 3 && word.endsWith("s") ? WINDOWS[word.slice(0, -1)] : undefined);
  if (unit === undefined) return undefined;
  return { limit: Number(match[1]), windowMs: unit * Number(match[2] ?? 1), spec };
}
