// Structural validation of envelopes: every field's type and limits, before any hashing or crypto.
import { isContentHash } from "../crypto/content-hash.js";
import { SignetError } from "../errors/signet-error.js";
import { AGENT_ID_PATTERN, parseTarget } from "../identities.js";
import { MESSAGE_ID_PATTERN, NONCE_PATTERN } from "../ids.js";
import type { JsonValue } from "../json/canonical-json.js";
import { ENVELOPE_FIELDS, type Envelope, PROTOCOL_VERSION } from "./types.js";

export const TYPE_PATTERN = /^(?:invoke|result|signal|session\.[a-z][a-z_]{0,31})$/;
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;
export const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{86}$/;
/**
 * A session id the runtime accepts: a UUID, or base64url of 22 to 128 characters (≥ 128 bits). The
 * envelope's `session` member only has to match {@link SESSION_FIELD_PATTERN}, so that a session id
 * the runtime refuses is answered with `INVALID_SESSION_ID`, not as a malformed envelope.
 */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** What the `session` member may hold: 1 to 128 printable ASCII characters, no spaces. */
export const SESSION_FIELD_PATTERN = /^[\x21-\x7e]{1,128}$/;
export const BODY_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const VERSION_LIKE = /^signet\/[0-9]+$/;

/** Limits on the optional structured fields. */
export const FIELD_LIMITS = {
  purposeLength: 512,
  permissions: 64,
  permissionLength: 128,
  inputs: 64,
  refLength: 256,
  rules: 64,
  ruleLength: 256,
  auditIdLength: 128,
} as const;

const KNOWN_FIELDS = new Set<string>(ENVELOPE_FIELDS);

function invalid(field: string, reason = "invalid"): never {
  throw new SignetError("INVALID_ENVELOPE", `Envelope field "${field}" is ${reason}`, {
    reason: `${field}:${reason}`,
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(value: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) invalid(`${field}.${key}`, "unknown");
}

function checkString(value: unknown, field: string, maxLength: number): void {
  if (typeof value !== "string" || value.length === 0 || value.length > maxLength) invalid(field);
}

function checkStringList(value: unknown, field: string, maxItems: number, maxLength: number): void {
  if (!Array.isArray(value) || value.length > maxItems) invalid(field);
  for (const item of value) checkString(item, field, maxLength);
}

/**
 * Checks that a parsed value has the shape of a v1 envelope. The version is checked first so a
 * future version gets `UNSUPPORTED_PROTOCOL_VERSION`, not a field error; every other defect is
 * `INVALID_ENVELOPE` naming the field.
 */
export function assertEnvelopeShape(value: JsonValue): asserts value is Envelope & JsonValue {
  if (!isPlainObject(value)) invalid("envelope", "not an object");
  const v = value.v;
  if (v !== PROTOCOL_VERSION) {
    if (typeof v === "string" && VERSION_LIKE.test(v)) {
      throw new SignetError("UNSUPPORTED_PROTOCOL_VERSION", `Protocol version ${v} is not supported`);
    }
    invalid("v", v === undefined ? "missing" : "invalid");
  }
  for (const key of Object.keys(value)) if (!KNOWN_FIELDS.has(key)) invalid(key, "unknown");
  if (!MESSAGE_ID_PATTERN.test(value.id as string)) invalid("id");
  if (typeof value.type !== "string" || !TYPE_PATTERN.test(value.type)) invalid("type");
  if (typeof value.from !== "string" || !AGENT_ID_PATTERN.test(value.from)) invalid("from");
  if (parseTarget(value.to) === undefined) invalid("to");
  const ts = value.ts;
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) invalid("ts");
  if (typeof value.nonce !== "string" || !NONCE_PATTERN.test(value.nonce)) invalid("nonce");
  if (typeof value.kid !== "string" || !KEY_ID_PATTERN.test(value.kid)) invalid("kid");
  if (typeof value.sig !== "string" || !SIGNATURE_PATTERN.test(value.sig)) invalid("sig");
  if (!("body" in value)) invalid("body", "missing");
  if (!isContentHash(value.body_hash)) {
    if (typeof value.body_hash === "string" && !value.body_hash.startsWith("sha256:")) {
      invalid("body_hash", "an unknown hash algorithm");
    }
    invalid("body_hash");
  }
  if (value.session !== undefined) {
    if (typeof value.session !== "string" || !SESSION_FIELD_PATTERN.test(value.session)) invalid("session");
  }
  if (value.body_type !== undefined) {
    if (typeof value.body_type !== "string" || !BODY_TYPE_PATTERN.test(value.body_type)) invalid("body_type");
  }
  if (value.intent !== undefined) {
    const intent = value.intent;
    if (!isPlainObject(intent)) invalid("intent");
    checkKeys(intent, "intent", ["purpose", "permissions"]);
    if (intent.purpose !== undefined)
      checkString(intent.purpose, "intent.purpose", FIELD_LIMITS.purposeLength);
    if (intent.permissions !== undefined) {
      checkStringList(
        intent.permissions,
        "intent.permissions",
        FIELD_LIMITS.permissions,
        FIELD_LIMITS.permissionLength,
      );
    }
  }
  if (value.provenance !== undefined) {
    const provenance = value.provenance;
    if (!isPlainObject(provenance)) invalid("provenance");
    checkKeys(provenance, "provenance", ["parent", "inputs", "consent_ref", "policy_ref"]);
    if (provenance.parent !== undefined && !MESSAGE_ID_PATTERN.test(provenance.parent as string)) {
      invalid("provenance.parent");
    }
    if (provenance.inputs !== undefined) {
      const inputs = provenance.inputs;
      if (!Array.isArray(inputs) || inputs.length > FIELD_LIMITS.inputs || !inputs.every(isContentHash)) {
        invalid("provenance.inputs");
      }
    }
    for (const ref of ["consent_ref", "policy_ref"] as const) {
      if (provenance[ref] !== undefined)
        checkString(provenance[ref], `provenance.${ref}`, FIELD_LIMITS.refLength);
    }
  }
  const isResult = value.type === "result";
  if (isResult) {
    const re = value.re;
    if (!isPlainObject(re)) invalid("re", re === undefined ? "missing" : "invalid");
    checkKeys(re, "re", ["id", "hash"]);
    if (!MESSAGE_ID_PATTERN.test(re.id as string)) invalid("re.id");
    if (!isContentHash(re.hash)) invalid("re.hash");
    if (value.status !== "ok" && value.status !== "error") {
      invalid("status", value.status === undefined ? "missing" : "invalid");
    }
    if (value.decision !== undefined) {
      const decision = value.decision;
      if (!isPlainObject(decision)) invalid("decision");
      checkKeys(decision, "decision", ["audit_id", "rules"]);
      checkString(decision.audit_id, "decision.audit_id", FIELD_LIMITS.auditIdLength);
      checkStringList(decision.rules, "decision.rules", FIELD_LIMITS.rules, FIELD_LIMITS.ruleLength);
    }
  } else {
    for (const field of ["re", "status", "decision"] as const) {
      if (value[field] !== undefined) invalid(field, "only allowed on results");
    }
  }
}
