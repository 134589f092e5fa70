// Message ids and nonces: UUIDv7 layout, time order, uniqueness, nonce size.
import { describe, expect, it } from "vitest";
import { MESSAGE_ID_PATTERN, NONCE_PATTERN, isMessageId, newMessageId, newNonce } from "@signet/protocol";

describe("newMessageId", () => {
  it("is a canonical UUIDv7 whose first 48 bits are the time in ms", () => {
    for (const now of [0, 1, 1_763_769_600_000, 2 ** 48 - 1]) {
      const id = newMessageId(now);
      expect(id).toMatch(MESSAGE_ID_PATTERN);
      expect(id[14]).toBe("7");
      expect("89ab").toContain(id[19]);
      expect(Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16)).toBe(now);
    }
  });

  it("never repeats and sorts by creation time", () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => newMessageId(1_000_000 + i));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every(isMessageId)).toBe(true);
  });
});

describe("newNonce", () => {
  it("is 128 random bits as 22 base64url characters, never repeated", () => {
    const nonces = Array.from({ length: 20_000 }, () => newNonce());
    expect(nonces.every((nonce) => NONCE_PATTERN.test(nonce) && nonce.length === 22)).toBe(true);
    expect(Buffer.from(nonces[0]!, "base64url")).toHaveLength(16);
    expect(new Set(nonces).size).toBe(nonces.length);
  });
});
