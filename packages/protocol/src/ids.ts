// Message ids (UUIDv7) and nonces: unique and unpredictable, from the operating system's CSPRNG.
import { randomFillSync } from "node:crypto";

/** A canonical lower-case UUID of version 4 or 7, the accepted form of message ids. */
export const MESSAGE_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A nonce: 22 to 64 base64url characters (at least 128 bits). */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

// Each call into the CSPRNG costs microseconds of fixed overhead, so draw entropy in blocks and hand it
// out 16 bytes at a time (node's own crypto.randomUUID does the same). Bytes are never handed out twice.
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** Returns 16 fresh random bytes (a view into the pool: copy or encode before the next call). */
function random16(): Buffer {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return bytes;
}

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids sort by creation time,
 * which keeps store indexes compact. Example: `newMessageId()` → `0193f5b2-...`.
 */
export function newMessageId(now: number = Date.now()): string {
  const r = random16();
  // 48-bit millisecond time as 12 hex digits, then version 7 and the RFC 9562 variant over random bits.
  const time = now.toString(16).padStart(12, "0");
  return (
    `${time.slice(0, 8)}-${time.slice(8, 12)}-7${HEX[r[6]!]!.slice(1)}${HEX[r[7]!]!}-` +
    `${HEX[(r[8]! & 0x3f) | 0x80]!}${HEX[r[9]!]!}-${HEX[r[10]!]!}${HEX[r[11]!]!}${HEX[r[12]!]!}` +
    `${HEX[r[13]!]!}${HEX[r[14]!]!}${HEX[r[15]!]!}`
  );
}

/** A fresh 128-bit nonce, base64url (22 characters). */
export function newNonce(): string {
  return random16().toString("base64url");
}

/** True when `value` is an accepted message id. */
export function isMessageId(value: unknown): value is string {
  return typeof value === "string" && MESSAGE_ID_PATTERN.test(value);
}
