// Checks on the runtime's answer to POST /v1/envelopes: the receipt, the result, and what binds them.
import {
  type ContentHash,
  type Ed25519PublicKey,
  type Envelope,
  type JsonValue,
  type Receipt,
  assertEnvelopeShape,
  assertResultAnswers,
  canonicalize,
  envelopeHash,
  hashJson,
  isSignetError,
  parseStrictJson,
  verifyEnvelope,
  verifyReceipt,
} from "@signet/protocol";
import { SdkError, SignatureInvalidError } from "./errors.js";
import type { RegisteredKey } from "./registry-keys.js";

/** The request the SDK sent, as the answer must name it. */
export interface SubmittedRequest {
  readonly from: string;
  readonly id: string;
  readonly hash: ContentHash;
  readonly type: string;
}

/** The parsed 200 answer: a receipt and, for an invoke, the executor's result envelope. */
export interface RawSubmitResponse {
  readonly receipt: Receipt;
  readonly result: JsonValue | undefined;
}

// An envelope may be 1 MiB and nest 64 deep; inside the answer it sits one level down, beside a receipt.
export const MAX_SUBMIT_RESPONSE_BYTES = 1024 * 1024 + 64 * 1024;
const MAX_SUBMIT_RESPONSE_DEPTH = 66;

function badResponse(what: string): never {
  throw new SdkError(`The runtime's answer is malformed (${what})`, { reason: "bad_response" });
}

function unbound(reason: string, message = "The answer does not match the request"): never {
  throw new SignatureInvalidError(message, { reason });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 1024;
}

function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Parses `{ receipt, result? }` strictly and checks the receipt's shape. */
export function parseSubmitResponse(text: string): RawSubmitResponse {
  let value: JsonValue;
  try {
    value = parseStrictJson(text, {
      maxBytes: MAX_SUBMIT_RESPONSE_BYTES,
      maxDepth: MAX_SUBMIT_RESPONSE_DEPTH,
    });
  } catch (cause) {
    throw new SdkError("The runtime's answer is not strict JSON", { reason: "bad_response", cause });
  }
  if (!isObject(value)) badResponse("not an object");
  for (const key of Object.keys(value)) if (key !== "receipt" && key !== "result") badResponse("member");
  return { receipt: checkReceiptShape(value.receipt), result: value.result };
}

/** Checks the members the SDK reads. Unknown members are tolerated: the signature covers them. */
function checkReceiptShape(value: unknown): Receipt {
  if (!isObject(value)) badResponse("receipt");
  const { request, result, audit, rules } = value;
  if (value.v !== "signet/1" || value.type !== "receipt") badResponse("receipt.v");
  if (!isObject(request) || !isString(request.from) || !isString(request.id) || !isString(request.hash)) {
    badResponse("receipt.request");
  }
  if (
    result !== undefined &&
    (!isObject(result) ||
      !isString(result.from) ||
      !isString(result.id) ||
      !isString(result.hash) ||
      (result.status !== "ok" && result.status !== "error"))
  ) {
    badResponse("receipt.result");
  }
  if (!isObject(audit) || !isString(audit.request)) badResponse("receipt.audit");
  if (!Array.isArray(rules) || !rules.every((rule) => typeof rule === "string")) badResponse("receipt.rules");
  if (!isTime(value.received_at) || !isTime(value.completed_at)) badResponse("receipt.time");
  if (typeof value.duplicate !== "boolean") badResponse("receipt.duplicate");
  if (!isString(value.kid) || !isString(value.sig)) badResponse("receipt.sig");
  return value as unknown as Receipt;
}

/** The receipt must name the request the SDK sent (sender, id and envelope hash). */
export function checkReceiptNamesRequest(receipt: Receipt, request: SubmittedRequest): void {
  const named = receipt.request;
  if (named.from !== request.from || named.id !== request.id || named.hash !== request.hash) {
    unbound("receipt_unbound", "The receipt names another request");
  }
}

/** Verifies the receipt's signature against the pinned runtime key. */
export function checkReceiptSignature(receipt: Receipt, runtimeKey: Ed25519PublicKey): void {
  try {
    verifyReceipt(receipt, runtimeKey);
  } catch (cause) {
    throw new SignatureInvalidError(
      "The receipt's signature does not verify",
      { reason: "receipt_sig" },
      { cause },
    );
  }
}

/** Checks the result's shape and body hash, and computes its envelope hash (no signature yet). */
export function checkResultIntegrity(value: JsonValue | undefined): { result: Envelope; hash: ContentHash } {
  if (value === undefined) badResponse("no result");
  try {
    assertEnvelopeShape(value);
  } catch (cause) {
    throw new SignatureInvalidError(
      "The result is not a valid envelope",
      { reason: "result_shape" },
      { cause },
    );
  }
  const result = value as Envelope;
  if (hashJson(result.body) !== result.body_hash) {
    unbound("result_body", "The result's body does not match its hash");
  }
  return { result, hash: envelopeHash(result) };
}

/**
 * Verifies the executor's signature on the result against its registered key. A key revoked since is
 * refused; a key that merely expired after rotation still verifies results it signed while valid
 * (an idempotent retry can return a result signed long ago).
 */
export function checkResultSignature(result: Envelope, key: RegisteredKey): void {
  const usable =
    key.state === "active" ||
    key.state === "retiring" ||
    (key.state === "expired" && key.notAfter !== undefined && result.ts <= key.notAfter);
  if (!usable) unbound("result_key_revoked", "The result was signed with a revoked or expired key");
  try {
    verifyEnvelope(canonicalize(result), {
      resolveKey: (kid, sender) =>
        kid === key.key.kid && sender === result.from ? { key: key.key, owner: result.from } : undefined,
    });
  } catch (cause) {
    const reason = isSignetError(cause)
      ? `result_${cause.details.reason ?? cause.code.toLowerCase()}`
      : "result_sig";
    throw new SignatureInvalidError("The result's signature does not verify", { reason }, { cause });
  }
}

/**
 * Binds the result to the request and the receipt: it must answer this request (id and envelope
 * hash), be addressed to the sender, and be the very result the receipt names.
 */
export function checkResultBinding(
  result: Envelope,
  resultHash: ContentHash,
  request: SubmittedRequest,
  receipt: Receipt,
): void {
  try {
    assertResultAnswers(result, { id: request.id, hash: request.hash });
  } catch {
    unbound("unbound", "The result does not answer this request");
  }
  if (result.to !== `agent:${request.from}`) unbound("unbound", "The result is addressed to someone else");
  const named = receipt.result;
  if (
    named === undefined ||
    named.from !== result.from ||
    named.id !== result.id ||
    named.hash !== resultHash ||
    named.status !== result.status
  ) {
    unbound("receipt_unbound", "The receipt names another result");
  }
}
