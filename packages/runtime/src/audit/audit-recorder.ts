// Records security events in the tamper-evident audit log: every invocation decision and result,
// authentication failure, key and registry change, policy reload and admin action.
//
// The recorder turns what a caller says about an event into an entry draft: it assigns the id and the
// microsecond time, redacts parameters and metadata with the configured plan and the built-in secret
// detectors, and keeps every value within what an entry may hold, so that no input (a 5,000-character
// claimed sender, an unserializable detail) can make a refusal go unrecorded. The log group-commits;
// `record()` resolves once the entry is durable and rejects with AUDIT_UNAVAILABLE when it is not.
import {
  AUDIT_ERROR_CODE_PATTERN,
  AUDIT_EVENT_TYPE_PATTERN,
  type AuditEnvelopeRef,
  type AuditEntryDraft,
  type AuditOutcome,
  type JsonValue,
  type RedactionPlan,
  type RedactionSpec,
  type VerifiedEnvelope,
  compileRedactionPlan,
  formatAuditTime,
  newMessageId,
} from "@signet/protocol";
import type { AuditLog } from "./audit-log.js";

/** What a caller says about an event; the recorder fills in id and time. */
export interface AuditEventInput {
  readonly type: string;
  /** Who acted. Longer than 1,024 characters is cut (it may be what an attacker claimed). */
  readonly actor?: string;
  readonly target?: string;
  readonly outcome: AuditOutcome;
  readonly code?: string;
  readonly rules?: readonly string[];
  readonly request?: AuditEnvelopeRef;
  readonly result?: AuditEnvelopeRef;
  /** Redacted before it is written. */
  readonly params?: unknown;
  /** Redacted before it is written; values that are not JSON are written as strings. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface EventRecorder {
  /** Records an event durably before resolving; resolves to the entry id. */
  record(event: AuditEventInput): Promise<string>;
}

export interface AuditRecorderOptions {
  /** The configured redaction (paths, detectors, sensitive keys). Default: every built-in rule. */
  readonly redaction?: RedactionSpec;
  /** Microseconds since the Unix epoch. */
  readonly nowMicros?: () => number;
}

const MAX_NAME = 1024;
/** Parameters larger than this (as JSON) are not kept; the request's body_hash still binds them. */
const MAX_PARAMS_CHARS = 16 * 1024;
const MAX_DEPTH = 64;

function defaultNowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

function name(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0) return undefined;
  return value.length > MAX_NAME ? value.slice(0, MAX_NAME) : value;
}

/** A JSON copy of `value`: undefined members dropped, non-finite numbers and other types as strings. */
export function toAuditJson(value: unknown, depth = 0): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (Array.isArray(value))
    return value.map((item) => (item === undefined ? null : toAuditJson(item, depth + 1)));
  if (typeof value === "object" && !(value instanceof Error)) {
    const out: Record<string, JsonValue> = {};
    for (const [key, member] of Object.entries(value)) {
      if (member !== undefined) out[key] = toAuditJson(member, depth + 1);
    }
    return out;
  }
  if (value instanceof Error) return value.message;
  // What is left: bigint, symbol, function — none of them JSON.
  return typeof value === "bigint" ? value.toString() : `[${typeof value}]`;
}

/**
 * What the audit keeps of a verified envelope: its hash and signature, and its signed header (the
 * envelope without body and signature) unless `withHeader` is false — with the header, anyone holding
 * the sender's key can check the signature later without the body.
 */
export function envelopeRef(verified: VerifiedEnvelope, withHeader = true): AuditEnvelopeRef {
  const { body: _body, sig, ...header } = verified.envelope;
  return {
    hash: verified.hash,
    ...(withHeader ? { header: toAuditJson(header) as { [key: string]: JsonValue } } : {}),
    id: verified.envelope.id,
    kid: verified.envelope.kid,
    sig,
  };
}

function boundedParams(params: JsonValue): JsonValue {
  const size = JSON.stringify(params).length;
  return size <= MAX_PARAMS_CHARS ? params : { omitted: "larger than the audit keeps", json_chars: size };
}

/**
 * An EventRecorder over an AuditLog.
 *
 * Example:
 * ```ts
 * const recorder = createAuditRecorder(log, { redaction: config.audit.redaction });
 * const id = await recorder.record({ type: "key_revoked", outcome: "success", actor: "admin" });
 * ```
 */
export function createAuditRecorder(log: AuditLog, options: AuditRecorderOptions = {}): EventRecorder {
  const plan: RedactionPlan = compileRedactionPlan(options.redaction ?? {});
  const nowMicros = options.nowMicros ?? defaultNowMicros;
  const redacted = (value: unknown): JsonValue => plan.apply(toAuditJson(value)).value;

  return {
    // Async so that anything thrown (a closed log, a failing clock) arrives as a rejection.
    async record(input) {
      const actor = name(input.actor);
      const target = name(input.target);
      const codeValid = input.code !== undefined && AUDIT_ERROR_CODE_PATTERN.test(input.code);
      const metadata =
        input.metadata === undefined && (input.code === undefined || codeValid)
          ? undefined
          : (redacted({
              ...input.metadata,
              ...(input.code !== undefined && !codeValid ? { unrecognized_code: input.code } : {}),
            }) as { [key: string]: JsonValue });
      const draft: AuditEntryDraft = {
        id: newMessageId(),
        time: formatAuditTime(nowMicros()),
        type: AUDIT_EVENT_TYPE_PATTERN.test(input.type) ? input.type : "unknown_event",
        outcome: input.outcome,
        ...(actor === undefined ? {} : { actor }),
        ...(target === undefined ? {} : { target }),
        ...(codeValid ? { code: input.code } : {}),
        ...(input.rules === undefined || input.rules.length === 0
          ? {}
          : { rules: input.rules.slice(0, 1024).map((rule) => name(rule) ?? "(unnamed)") }),
        ...(input.request === undefined ? {} : { request: input.request }),
        ...(input.result === undefined ? {} : { result: input.result }),
        ...(input.params === undefined ? {} : { params: boundedParams(redacted(input.params)) }),
        ...(metadata === undefined || Object.keys(metadata).length === 0 ? {} : { metadata }),
      };
      await log.append([draft]);
      return draft.id;
    },
  };
}
