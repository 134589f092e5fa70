// Receipts: the runtime's signed statement of what it received, decided, recorded and returned.
import type { Ed25519PrivateKey, Ed25519PublicKey } from "../crypto/ed25519.js";
import type { JsonValue } from "../json/canonical-json.js";
import { signRuntimeDocument, verifyRuntimeDocument } from "./runtime-signed.js";
import { PROTOCOL_VERSION, type RequestRef } from "./types.js";

export const RECEIPT_DOMAIN = "receipt";

/** A receipt, as the runtime returns it beside the executor's signed result. */
export interface Receipt {
  readonly v: typeof PROTOCOL_VERSION;
  readonly type: "receipt";
  /** The request: its sender, id and envelope hash. */
  readonly request: RequestRef & { readonly from: string };
  /** The result: its sender (the executor), id and envelope hash; absent when there is none. */
  readonly result?: RequestRef & { readonly from: string; readonly status: "ok" | "error" };
  /** Audit entry ids of the decision and of the result. */
  readonly audit: { readonly request: string; readonly result?: string };
  /** The rules that allowed the request. */
  readonly rules: readonly string[];
  readonly received_at: number;
  readonly completed_at: number;
  /** True when this answer replays the stored outcome of an identical earlier submission. */
  readonly duplicate: boolean;
  readonly kid: string;
  readonly sig: string;
}

export type ReceiptFields = Omit<Receipt, "v" | "type" | "kid" | "sig">;

/** Signs a receipt with the runtime's key. */
export function signReceipt(fields: ReceiptFields, key: Ed25519PrivateKey): Receipt {
  const document = { v: PROTOCOL_VERSION, type: "receipt", ...fields } as unknown as Record<
    string,
    JsonValue
  >;
  return signRuntimeDocument(RECEIPT_DOMAIN, document, key) as unknown as Receipt;
}

/** Verifies a receipt's signature against the runtime's public key (`SIGNATURE_INVALID` if not). */
export function verifyReceipt(receipt: Receipt, runtimeKey: Ed25519PublicKey): void {
  verifyRuntimeDocument(RECEIPT_DOMAIN, receipt as unknown as Record<string, unknown>, runtimeKey);
}

/** The hash-bearing reference a receipt makes to an envelope. */
export type ReceiptRef = RequestRef & { readonly from: string };
