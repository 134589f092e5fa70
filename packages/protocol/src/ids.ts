// Message ids (UUIDv7) and nonces: unique and unpredictable, from the operating system's CSPRNG.
import { randomFillSync } from "node:crypto";

/** A canonical lower-case UUID of version 4 or 7, the accepted form of message ids. */
export const MESSAGE_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A nonce: 22 to 64 base64url characters (at least 128 bits). */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;

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
  const uuidBytes = Buffer.from(random16());
  uuidBytes.writeUIntBE(now, 0, 6);
  uuidBytes[6] = (uuidBytes[6]! & 0x0f) | 0x70;
  uuidBytes[8] = (uuidBytes[8]! & 0x3f) | 0x80;
  const hex = uuidBytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A fresh 128-bit nonce, base64url (22 characters). */
export function newNonce(): string {
  return random16().toString("base64url");
}

/** True when `value` is an accepted message id. */
export function isMessageId(value: unknown): value is string {
  return typeof value === "string" && MESSAGE_ID_PATTERN.test(value);
}
