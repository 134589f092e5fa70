// fast-check generators for audit entries, shared by the audit tests.
import fc from "fast-check";
import type { ContentHash } from "../../src/crypto/content-hash.js";
import {
  AUDIT_EVENT_TYPES,
  AUDIT_OUTCOMES,
  type AuditEntryFields,
  type AuditEnvelopeRef,
  formatAuditTime,
} from "../../src/audit/entry.js";
import { type JsonValue, canonicalize } from "../../src/json/canonical-json.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Strings that need every kind of escape, plus ordinary and astral text; never a lone surrogate. */
export const freeText = (maxLength = 40): fc.Arbitrary<string> =>
  fc
    .oneof(
      fc.string({ unit: "binary", maxLength }),
      fc.string({
        unit: fc.constantFrom('"', "\\", "\u0000", "\u001f", "\u007f", "\u2028", "é", "😀", "a", "/"),
        maxLength,
      }),
    )
    .filter((text) => text.length > 0 && !LONE_SURROGATE.test(text));

/** JSON values with a canonical form. */
export const jsonValue: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 4 }).filter((value) => {
  try {
    canonicalize(value);
    return true;
  } catch {
    return false;
  }
}) as fc.Arbitrary<JsonValue>;

export const sha256Hash: fc.Arbitrary<ContentHash> = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((bytes): ContentHash => `sha256:${Buffer.from(bytes).toString("hex")}`);

const base64url = (length: number): fc.Arbitrary<string> =>
  fc
    .uint8Array({ minLength: length, maxLength: length })
    .map((bytes) => Buffer.from(bytes).toString("base64url"));

export const envelopeRef: fc.Arbitrary<AuditEnvelopeRef> = fc.record(
  {
    hash: sha256Hash,
    header: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 4 }),
    id: fc.uuid({ version: 7 }),
    kid: base64url(32),
    sig: base64url(64),
  },
  { requiredKeys: ["hash", "id", "kid", "sig"] },
);

export const entryFields: fc.Arbitrary<AuditEntryFields> = fc.record(
  {
    seq: fc.maxSafeNat(),
    id: fc.oneof(fc.uuid({ version: 7 }), fc.stringMatching(/^[0-9A-Za-z][0-9A-Za-z._:-]{0,40}$/)),
    time: fc.integer({ min: 0, max: 2 ** 52 }).map(formatAuditTime),
    type: fc.oneof(fc.constantFrom(...AUDIT_EVENT_TYPES), fc.stringMatching(/^[a-z][a-z0-9_.]{0,20}$/)),
    actor: freeText(),
    target: freeText(),
    outcome: fc.constantFrom(...AUDIT_OUTCOMES),
    code: fc.stringMatching(/^[A-Z][A-Z0-9_]{0,30}$/),
    rules: fc.array(freeText(20), { maxLength: 4 }),
    request: envelopeRef,
    result: envelopeRef,
    params: jsonValue,
    metadata: fc.dictionary(freeText(10), jsonValue, { maxKeys: 4 }),
    prev_hash: sha256Hash,
  },
  { requiredKeys: ["seq", "id", "time", "type", "outcome", "prev_hash"] },
);
