// The /v1/connect frames: what agents that serve tools and the runtime say to each other over WebSocket.
//
// Every frame is one JSON text message with a `type`. Envelopes travel inside frames as their exact
// wire text (a string), so an executor verifies the very bytes the caller signed.
import type { ErrorCode } from "../errors/registry.js";
import { isErrorCode } from "../errors/registry.js";
import { SignetError } from "../errors/signet-error.js";
import { AGENT_ID_PATTERN, CAPABILITY_NAME_PATTERN, TOOL_NAME_PATTERN } from "../identities.js";
import { type StrictJsonLimits, parseStrictJson } from "../json/strict-json.js";
import { signRuntimeDocument, verifyRuntimeDocument } from "../envelope/runtime-signed.js";
import { type ContentHash, isContentHash } from "../crypto/content-hash.js";
import type { Ed25519PrivateKey, Ed25519PublicKey } from "../crypto/ed25519.js";
import type { JsonValue } from "../json/canonical-json.js";

/** Agent → runtime, first frame: who is connecting and which tools it serves. */
export interface HelloFrame {
  readonly type: "hello";
  readonly agent: string;
  readonly serves: readonly string[];
  /** Capabilities this connection answers (`capability:NAME` targets); each must be in its definition. */
  readonly capabilities?: readonly string[];
  /** How many calls this connection takes at once (the runtime applies min(this, its own cap)). */
  readonly max_in_flight?: number;
}

/** Runtime → agent: the hello was accepted. */
export interface WelcomeFrame {
  readonly type: "welcome";
  readonly connection_id: string;
  /** The tools this connection will be sent. */
  readonly serves: readonly string[];
  /** The capabilities this connection will be sent. */
  readonly capabilities?: readonly string[];
  readonly max_in_flight: number;
  /** The runtime's key, which signs deliveries and receipts. */
  readonly runtime_kid: string;
  readonly runtime_public_key: string;
  readonly heartbeat_ms: number;
}

/**
 * The runtime's decision on an invocation, signed by the runtime. It names the caller's envelope by
 * its envelope hash; the envelope itself travels beside it in the invoke frame, so the signed
 * document stays small whatever the body's size.
 */
export interface Delivery {
  readonly call_id: string;
  /** The envelope hash of the caller's envelope carried in the same frame. */
  readonly envelope_hash: ContentHash;
  /** The caller's key as the registry knows it, so the executor can verify the envelope itself. */
  readonly sender_key: { readonly kid: string; readonly public_key: string };
  readonly decision: { readonly audit_id: string; readonly rules: readonly string[] };
  /** When the runtime stops waiting for the result (Unix ms). */
  readonly deadline: number;
  readonly kid: string;
  readonly sig: string;
}

/** Runtime → agent: execute this call. */
export interface InvokeFrame {
  readonly type: "invoke";
  /** The caller's envelope, exactly as it was signed (wire text). */
  readonly envelope: string;
  readonly delivery: Delivery;
}

/** Agent → runtime: the signed result of a call. */
export interface ResultFrame {
  readonly type: "result";
  readonly call_id: string;
  /** The executor's signed result envelope, as wire text. */
  readonly envelope: string;
}

/** Either direction: a failure. With `call_id`, it ends that call; without, the connection. */
export interface ErrorFrame {
  readonly type: "error";
  readonly call_id?: string;
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

/** Either direction: keep-alive. */
export interface PingFrame {
  readonly type: "ping";
  readonly ts: number;
}

export interface PongFrame {
  readonly type: "pong";
  readonly ts: number;
}

/** Runtime → agent: a key was revoked; drop it from any cache at once. */
export interface KeyRevokedFrame {
  readonly type: "key_revoked";
  readonly agent: string;
  readonly kid: string;
}

export type ClientFrame = HelloFrame | ResultFrame | ErrorFrame | PingFrame | PongFrame;
export type ServerFrame = WelcomeFrame | InvokeFrame | ErrorFrame | PingFrame | PongFrame | KeyRevokedFrame;
export type Frame = ClientFrame | ServerFrame;

export const DELIVERY_DOMAIN = "delivery";
/** Frames larger than this are refused (an envelope of 1 MiB plus framing). */
export const MAX_FRAME_BYTES = 1024 * 1024 + 64 * 1024;
const CALL_ID = /^[A-Za-z0-9_-]{1,64}$/;

function invalid(reason: string): never {
  throw new SignetError("INVALID_REQUEST", `Invalid frame: ${reason}`, { reason: `frame:${reason}` });
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid(field);
  return value as Record<string, unknown>;
}

function only(frame: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(frame))
    if (!allowed.includes(key)) invalid(`unknown field ${key.slice(0, 40)}`);
}

function callId(value: unknown): string {
  if (typeof value !== "string" || !CALL_ID.test(value)) invalid("call_id");
  return value;
}

function timestamp(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) invalid(field);
  return value;
}

function errorBody(value: unknown): ErrorFrame["error"] {
  const error = object(value, "error");
  if (!isErrorCode(error.code)) invalid("error.code");
  if (typeof error.message !== "string" || error.message.length > 1024) invalid("error.message");
  return { code: error.code, message: error.message };
}

/** The frames both sides may send: `error`, `ping` and `pong`. */
function sharedFrame(frame: Record<string, unknown>): ErrorFrame | PingFrame | PongFrame {
  if (frame.type === "error") {
    only(frame, ["type", "call_id", "error"]);
    return {
      type: "error",
      ...(frame.call_id === undefined ? {} : { call_id: callId(frame.call_id) }),
      error: errorBody(frame.error),
    };
  }
  only(frame, ["type", "ts"]);
  return { type: frame.type === "ping" ? "ping" : "pong", ts: timestamp(frame.ts, "ts") };
}

/**
 * Parses and checks a frame an agent sent to the runtime. Anything else — unknown types, unknown
 * fields, bad values, oversized or non-strict JSON — is `INVALID_REQUEST`.
 */
export function parseClientFrame(text: string | Uint8Array, limits: StrictJsonLimits = {}): ClientFrame {
  const frame = object(
    parseStrictJson(text, { maxBytes: MAX_FRAME_BYTES, maxDepth: 16, ...limits }),
    "frame",
  );
  switch (frame.type) {
    case "hello": {
      only(frame, ["type", "agent", "serves", "capabilities", "max_in_flight"]);
      if (typeof frame.agent !== "string" || !AGENT_ID_PATTERN.test(frame.agent)) invalid("agent");
      const serves = frame.serves;
      if (!Array.isArray(serves) || serves.length > 256) invalid("serves");
      for (const tool of serves)
        if (typeof tool !== "string" || !TOOL_NAME_PATTERN.test(tool)) invalid("serves");
      const capabilities = frame.capabilities;
      if (capabilities !== undefined) {
        if (!Array.isArray(capabilities) || capabilities.length > 256) invalid("capabilities");
        for (const name of capabilities) {
          if (typeof name !== "string" || !CAPABILITY_NAME_PATTERN.test(name)) invalid("capabilities");
        }
      }
      const max = frame.max_in_flight;
      if (
        max !== undefined &&
        (typeof max !== "number" || !Number.isSafeInteger(max) || max < 1 || max > 10_000)
      ) {
        invalid("max_in_flight");
      }
      return {
        type: "hello",
        agent: frame.agent,
        serves: serves as string[],
        ...(capabilities === undefined ? {} : { capabilities: capabilities as string[] }),
        ...(max === undefined ? {} : { max_in_flight: max }),
      };
    }
    case "result": {
      only(frame, ["type", "call_id", "envelope"]);
      if (typeof frame.envelope !== "string") invalid("envelope");
      return { type: "result", call_id: callId(frame.call_id), envelope: frame.envelope };
    }
    case "error":
    case "ping":
    case "pong":
      return sharedFrame(frame);
    default:
      return invalid("type");
  }
}

/**
 * Parses and checks a frame the runtime sent to an agent (the SDK's side). A delivery's runtime
 * signature is checked separately with {@link verifyDelivery}.
 */
export function parseServerFrame(text: string | Uint8Array): ServerFrame {
  const frame = object(parseStrictJson(text, { maxBytes: MAX_FRAME_BYTES, maxDepth: 16 }), "frame");
  switch (frame.type) {
    case "welcome": {
      only(frame, [
        "type",
        "connection_id",
        "serves",
        "capabilities",
        "max_in_flight",
        "runtime_kid",
        "runtime_public_key",
        "heartbeat_ms",
      ]);
      if (typeof frame.connection_id !== "string" || !Array.isArray(frame.serves)) invalid("welcome");
      if (typeof frame.runtime_kid !== "string" || typeof frame.runtime_public_key !== "string")
        invalid("welcome");
      return {
        type: "welcome",
        connection_id: frame.connection_id,
        serves: frame.serves.filter((tool): tool is string => typeof tool === "string"),
        ...(Array.isArray(frame.capabilities)
          ? { capabilities: frame.capabilities.filter((name): name is string => typeof name === "string") }
          : {}),
        max_in_flight: timestamp(frame.max_in_flight, "max_in_flight"),
        runtime_kid: frame.runtime_kid,
        runtime_public_key: frame.runtime_public_key,
        heartbeat_ms: timestamp(frame.heartbeat_ms, "heartbeat_ms"),
      };
    }
    case "invoke": {
      only(frame, ["type", "envelope", "delivery"]);
      if (typeof frame.envelope !== "string") invalid("envelope");
      const delivery = object(frame.delivery, "delivery");
      only(delivery, ["call_id", "envelope_hash", "sender_key", "decision", "deadline", "kid", "sig"]);
      const senderKey = object(delivery.sender_key, "sender_key");
      const decision = object(delivery.decision, "decision");
      if (!isContentHash(delivery.envelope_hash)) invalid("envelope_hash");
      if (typeof senderKey.kid !== "string" || typeof senderKey.public_key !== "string")
        invalid("sender_key");
      if (typeof decision.audit_id !== "string" || !Array.isArray(decision.rules)) invalid("decision");
      if (typeof delivery.kid !== "string" || typeof delivery.sig !== "string") invalid("sig");
      return {
        type: "invoke",
        envelope: frame.envelope,
        delivery: {
          call_id: callId(delivery.call_id),
          envelope_hash: delivery.envelope_hash,
          sender_key: { kid: senderKey.kid, public_key: senderKey.public_key },
          decision: {
            audit_id: decision.audit_id,
            rules: decision.rules.filter((rule): rule is string => typeof rule === "string"),
          },
          deadline: timestamp(delivery.deadline, "deadline"),
          kid: delivery.kid,
          sig: delivery.sig,
        },
      };
    }
    case "error":
    case "ping":
    case "pong":
      return sharedFrame(frame);
    case "key_revoked":
      only(frame, ["type", "agent", "kid"]);
      if (typeof frame.agent !== "string" || typeof frame.kid !== "string") invalid("key_revoked");
      return { type: "key_revoked", agent: frame.agent, kid: frame.kid };
    default:
      return invalid("type");
  }
}

/** Signs a delivery with the runtime's key. */
export function signDelivery(fields: Omit<Delivery, "kid" | "sig">, key: Ed25519PrivateKey): Delivery {
  return signRuntimeDocument(
    DELIVERY_DOMAIN,
    fields as unknown as Record<string, JsonValue>,
    key,
  ) as unknown as Delivery;
}

/** Verifies a delivery's runtime signature (`SIGNATURE_INVALID` if it does not verify). */
export function verifyDelivery(delivery: Delivery, runtimeKey: Ed25519PublicKey): void {
  verifyRuntimeDocument(DELIVERY_DOMAIN, delivery as unknown as Record<string, unknown>, runtimeKey);
}

/** Serializes a frame for the wire. */
export function serializeFrame(frame: Frame): string {
  return JSON.stringify(frame);
}
