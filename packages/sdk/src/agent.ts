// Agent: serves tools over /v1/connect, verifying every delivery itself before a handler runs.
import {
  type ContentHash,
  type Delivery,
  Ed25519PublicKey,
  type Ed25519PrivateKey,
  type Envelope,
  type ErrorCode,
  type JsonValue,
  MAX_FRAME_BYTES,
  PublicKeyCache,
  SignetError,
  type ClientFrame,
  type ServerFrame,
  type WelcomeFrame,
  TOOL_NAME_PATTERN,
  assertFresh,
  isAgentId,
  isSignetError,
  parseServerFrame,
  parseTarget,
  serializeFrame,
  signEnvelope,
  verifyDelivery,
  verifyEnvelope,
} from "@signet/protocol";
import WebSocket, { type RawData } from "ws";
import type { IncomingMessage } from "node:http";
import type { ConnectionOptions, ResolvedConnection } from "./connection.js";
import { endpointUrl, isTlsFailure, resolveConnection, tlsOptions } from "./connection.js";
import {
  type AnyProtocolError,
  IdentityMismatchError,
  KeyRevokedError,
  SdkError,
  SignatureInvalidError,
  ToolError,
  type ToolErrorBody,
  errorFromWire,
  isProtocolError,
  protocolError,
} from "./errors.js";
import { ReplayGuard } from "./replay-guard.js";
import { type RuntimeKeyInput, parseRuntimeKey } from "./runtime-key.js";
import { type SigningKeyInput, SigningKeySource } from "./signing-key.js";

/** What a handler learns about the call beside its body. Everything here has been verified. */
export interface CallContext {
  /** The caller's envelope, its signature verified against the caller's registered key. */
  readonly envelope: Envelope;
  /** The caller's agent id (`envelope.from`). */
  readonly from: string;
  /** The runtime's decision: the audit entry and the rules that allowed the call. */
  readonly decision: { readonly audit_id: string; readonly rules: readonly string[] };
  /** The runtime's id for this call. */
  readonly callId: string;
  /** When the runtime stops waiting for the result (Unix ms). */
  readonly deadline: number;
  /** Aborted at the deadline, when the runtime cancels the call, or when the agent closes. */
  readonly signal: AbortSignal;
}

/** A tool implementation. Throw {@link ToolError} to fail with a code the caller may see. */
export type ToolHandler = (body: JsonValue, ctx: CallContext) => Promise<JsonValue> | JsonValue;

/** Where an error reported to `onError` came from. */
export interface AgentErrorInfo {
  readonly phase: "verify" | "handler" | "send" | "connection";
  readonly callId?: string;
}

/** Options for {@link Agent}. */
export interface AgentOptions extends ConnectionOptions {
  /** This agent's id; the credential's `expectedSender` must be the same. */
  readonly agentId: string;
  /** The key results are signed with (the one registered for `agentId`). */
  readonly signingKey: SigningKeyInput;
  /**
   * The runtime's public key, pinned out of band (`keys/runtime.pub`). Without it the key announced
   * in `welcome` is trusted for the life of the connection (trust on first use): that is as strong as
   * the TLS connection that carried it, while a pinned key also holds if TLS is terminated by a proxy
   * or the runtime's certificate is mis-issued.
   */
  readonly runtimePublicKey?: RuntimeKeyInput;
  /** How many calls this agent takes at once (the runtime may lower it). Default: the runtime's cap. */
  readonly maxInFlight?: number;
  /** Accepted clock skew of a caller's timestamp, in ms. Default 60 000, as the runtime. */
  readonly freshnessWindowMs?: number;
  /** How many recent calls the local replay guard remembers. Default 10 000. */
  readonly replayCacheSize?: number;
  /** Refusals, handler exceptions and connection problems (for logging; never thrown). */
  readonly onError?: (error: Error, info: AgentErrorInfo) => void;
  /** Called once when an open connection ends. */
  readonly onClose?: (info: { readonly code: number; readonly reason: string }) => void;
}

/** What the runtime accepted in `welcome`. */
export interface AgentSession {
  readonly connectionId: string;
  readonly serves: readonly string[];
  readonly maxInFlight: number;
  readonly runtimeKid: string;
}

const POLICY_VIOLATION = 1008;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REVOKED_KIDS = 10_000;

function rawText(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The result body for a failed handler: only deliberate errors say more than "the tool failed". */
function errorBody(error: unknown): ToolErrorBody {
  if (error instanceof ToolError) return error.toBody();
  if (isProtocolError(error)) return { error: { code: error.code, message: error.message.slice(0, 1024) } };
  return { error: { code: "INTERNAL_ERROR", message: "The tool failed" } };
}

/** Any verification failure as a registry-coded error, for the error frame. */
function asProtocolError(error: unknown): AnyProtocolError {
  if (isProtocolError(error)) return error;
  if (isSignetError(error)) return protocolError(error.code, error.message, error.details, { cause: error });
  return protocolError("INTERNAL_ERROR", undefined, {}, { cause: error });
}

function refuse(code: ErrorCode, reason: string): never {
  throw new SignetError(code, undefined, { reason });
}

/**
 * An agent that serves tools. It keeps a WebSocket open to the runtime's `/v1/connect`, and for every
 * call checks — itself, whatever the runtime already checked — the runtime's signature on the delivery,
 * the caller's signature on the envelope, that the target is a tool it serves, freshness, and that it
 * has not run this envelope before. Only then does the handler run; its result is signed and returned.
 *
 * Example:
 * ```ts
 * const agent = new Agent({ target: "https://signet.internal:8443", rootCertificates: ca,
 *   auth: AuthConfig.forApiKey(key, { expectedSender: "db-bot" }), agentId: "db-bot",
 *   signingKey: ".signet/keys/db-bot.key", runtimePublicKey: runtimePub });
 * agent.serve("database/query", async (body, ctx) => ({ rows: await run(body, ctx.from) }));
 * await agent.connect();
 * ```
 */
export class Agent {
  readonly agentId: string;
  readonly #options: AgentOptions;
  readonly #connection: ResolvedConnection;
  readonly #signingKey: SigningKeySource;
  readonly #pinnedRuntimeKey: Ed25519PublicKey | undefined;
  readonly #handlers = new Map<string, ToolHandler>();
  readonly #replay: ReplayGuard;
  readonly #senderKeys = new PublicKeyCache(1_000);
  readonly #revokedKids = new Set<string>();
  readonly #calls = new Map<string, AbortController>();
  readonly #freshnessWindowMs: number;
  #socket: WebSocket | undefined;
  #key: Ed25519PrivateKey | undefined;
  #runtimeKey: Ed25519PublicKey | undefined;
  #session: AgentSession | undefined;
  #closing: Promise<void> | undefined;
  #connecting = false;

  constructor(options: AgentOptions) {
    this.#connection = resolveConnection(options);
    if (!isAgentId(options.agentId))
      throw new SdkError("agentId must be a bare agent id", { reason: "agent_id" });
    if (options.signingKey === undefined)
      throw new SdkError("An agent needs a signingKey", { reason: "signing_key" });
    const maxInFlight = options.maxInFlight;
    if (
      maxInFlight !== undefined &&
      (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 10_000)
    ) {
      throw new SdkError("maxInFlight must be an integer from 1 to 10000", { reason: "max_in_flight" });
    }
    this.agentId = options.agentId;
    this.#options = options;
    this.#signingKey = new SigningKeySource(options.signingKey);
    this.#pinnedRuntimeKey = parseRuntimeKey(options.runtimePublicKey);
    this.#freshnessWindowMs = options.freshnessWindowMs ?? 60_000;
    this.#replay = new ReplayGuard(options.replayCacheSize ?? 10_000);
  }

  /** The accepted session once connected, else undefined. */
  get session(): AgentSession | undefined {
    return this.#session;
  }

  /**
   * Registers the handler for `tool:NAME`. Tools are declared in `hello`, so serve them before
   * {@link connect}.
   *
   * Example: `agent.serve("echo", (body) => body)`.
   */
  serve(toolName: string, handler: ToolHandler): this {
    if (!TOOL_NAME_PATTERN.test(toolName) || toolName.includes("//") || toolName.endsWith("/")) {
      throw new SdkError("Not a valid tool name (use the name without the tool: prefix)", {
        reason: "tool_name",
      });
    }
    if (typeof handler !== "function")
      throw new SdkError("A handler must be a function", { reason: "handler" });
    if (this.#socket !== undefined)
      throw new SdkError("Serve tools before connect()", { reason: "connected" });
    if (this.#handlers.has(toolName))
      throw new SdkError(`Tool ${toolName} is already served`, { reason: "tool_name" });
    this.#handlers.set(toolName, handler);
    return this;
  }

  /**
   * Opens the connection, says `hello` with the served tools and resolves on `welcome`. Rejects with
   * the runtime's typed error (an `error` frame or a refused upgrade), or `SdkError` when the
   * connection ends or times out first. The credential's `expectedSender` is checked before any I/O.
   *
   * Example: `const { connectionId } = await agent.connect()`.
   */
  async connect(): Promise<AgentSession> {
    const auth = this.#options.auth;
    if (auth.expectedSender !== this.agentId) {
      throw new IdentityMismatchError(undefined, {}, { expected: auth.expectedSender, actual: this.agentId });
    }
    if (this.#socket !== undefined || this.#connecting) {
      throw new SdkError("Already connected", { reason: "connected" });
    }
    if (this.#handlers.size === 0)
      throw new SdkError("Serve at least one tool before connect()", { reason: "no_tools" });
    this.#connecting = true;
    try {
      this.#key = await this.#signingKey.get();
    } finally {
      this.#connecting = false;
    }

    const socket = new WebSocket(endpointUrl(this.#connection, "v1/connect", true), {
      ...tlsOptions(this.#connection, auth),
      headers: auth.headers(),
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: this.#connection.timeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.#socket = socket;
    this.#closing = undefined;

    return new Promise<AgentSession>((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
        if (socket.readyState === WebSocket.OPEN) socket.close(POLICY_VIOLATION, "refused");
        else socket.terminate();
      };
      const timer = setTimeout(
        () =>
          fail(
            new SdkError("The runtime did not welcome the agent in time", {
              reason: "timeout",
              retryable: true,
            }),
          ),
        this.#connection.timeoutMs,
      );

      socket.on("unexpected-response", (request, response: IncomingMessage) => {
        // A refused upgrade (401, 403, ...) carries the usual error body; read a bounded amount of it.
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_ERROR_BODY_BYTES) chunks.push(chunk);
        });
        response.on("end", () => {
          fail(errorFromWire(Buffer.concat(chunks).toString("utf8"), response.statusCode));
          request.destroy();
        });
        response.on("error", () => fail(errorFromWire(undefined, response.statusCode)));
      });
      socket.on("open", () => {
        const hello: ClientFrame = {
          type: "hello",
          agent: this.agentId,
          serves: [...this.#handlers.keys()],
          ...(this.#options.maxInFlight === undefined ? {} : { max_in_flight: this.#options.maxInFlight }),
        };
        socket.send(serializeFrame(hello));
      });
      socket.on("message", (data, isBinary) => {
        let frame: ServerFrame;
        try {
          if (isBinary) refuse("INVALID_REQUEST", "frame:binary");
          frame = parseServerFrame(rawText(data));
        } catch (error) {
          const refusal = asProtocolError(error);
          this.#report(refusal, { phase: "connection" });
          this.#send({ type: "error", error: { code: refusal.code, message: "Invalid frame" } });
          if (!settled) fail(refusal);
          else socket.close(POLICY_VIOLATION, "invalid frame");
          return;
        }
        if (!settled) {
          if (frame.type === "welcome") {
            try {
              const session = this.#welcome(frame);
              settled = true;
              clearTimeout(timer);
              resolve(session);
            } catch (error) {
              fail(error as Error);
            }
          } else if (frame.type === "error") {
            fail(errorFromWire({ error: frame.error }));
          } else {
            fail(new SdkError(`The runtime sent ${frame.type} before welcome`, { reason: "protocol" }));
          }
          return;
        }
        this.#onFrame(frame);
      });
      socket.on("error", (error) => {
        if (!settled) {
          const tls = isTlsFailure(error);
          fail(
            new SdkError(
              tls
                ? "The runtime's TLS certificate could not be verified"
                : "Could not connect to the runtime",
              { reason: tls ? "tls" : "network", retryable: !tls, cause: error },
            ),
          );
        } else {
          this.#report(error, { phase: "connection" });
        }
      });
      socket.on("close", (code, reasonBuffer) => {
        const reason = reasonBuffer.toString("utf8");
        const wasOpen = settled && this.#socket === socket && this.#session !== undefined;
        this.#teardown(socket);
        if (!settled) {
          fail(
            new SdkError(`The connection closed before welcome (${code})`, {
              reason: "closed",
              retryable: true,
            }),
          );
        } else if (wasOpen) {
          this.#options.onClose?.({ code, reason });
        }
      });
    });
  }

  /** Closes the connection; in-flight handlers see their `signal` abort and their results are dropped. */
  async close(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) return;
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      if (socket.readyState === WebSocket.CLOSED) return resolve();
      const force = setTimeout(() => socket.terminate(), 2_000);
      socket.once("close", () => {
        clearTimeout(force);
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(1000, "agent closing");
    });
    return this.#closing;
  }

  #teardown(socket: WebSocket): void {
    // A late close event of an earlier connection must not tear down a newer one.
    if (this.#socket !== socket) return;
    for (const controller of this.#calls.values()) {
      controller.abort(new SdkError("The connection closed", { reason: "closed" }));
    }
    this.#calls.clear();
    this.#socket = undefined;
    this.#session = undefined;
    this.#runtimeKey = undefined;
  }

  #welcome(frame: WelcomeFrame): AgentSession {
    const pinned = this.#pinnedRuntimeKey;
    if (pinned !== undefined) {
      // A runtime announcing another key than the pinned one is not the runtime we trust.
      if (frame.runtime_kid !== pinned.kid) {
        throw new SignatureInvalidError("The runtime's key is not the pinned key", { reason: "runtime_key" });
      }
      this.#runtimeKey = pinned;
    } else {
      let announced: Ed25519PublicKey;
      try {
        announced = Ed25519PublicKey.fromBase64Url(frame.runtime_public_key);
      } catch (cause) {
        throw new SignatureInvalidError(
          "The runtime announced an invalid key",
          { reason: "runtime_key" },
          { cause },
        );
      }
      if (announced.kid !== frame.runtime_kid) {
        throw new SignatureInvalidError("The runtime's key id does not match its key", {
          reason: "runtime_key",
        });
      }
      this.#runtimeKey = announced;
    }
    this.#session = {
      connectionId: frame.connection_id,
      serves: frame.serves,
      maxInFlight: frame.max_in_flight,
      runtimeKid: frame.runtime_kid,
    };
    return this.#session;
  }

  #onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "invoke":
        this.#handleInvoke(frame.envelope, frame.delivery).catch((error: unknown) => {
          this.#report(error instanceof Error ? error : new Error(String(error)), {
            phase: "send",
            callId: frame.delivery.call_id,
          });
        });
        return;
      case "ping":
        this.#send({ type: "pong", ts: frame.ts });
        return;
      case "pong":
        return;
      case "key_revoked":
        this.#onKeyRevoked(frame.agent, frame.kid);
        return;
      case "error":
        if (frame.call_id !== undefined) {
          // The runtime ended this call (deadline, caller gone): tell the handler to stop.
          this.#calls.get(frame.call_id)?.abort(errorFromWire({ error: frame.error }));
        } else {
          this.#report(errorFromWire({ error: frame.error }), { phase: "connection" });
        }
        return;
      case "welcome":
        this.#report(new SdkError("A second welcome", { reason: "protocol" }), { phase: "connection" });
        this.#socket?.close(POLICY_VIOLATION, "second welcome");
        return;
    }
  }

  #onKeyRevoked(agent: string, kid: string): void {
    if (this.#revokedKids.size >= MAX_REVOKED_KIDS) {
      this.#revokedKids.delete(this.#revokedKids.values().next().value!);
    }
    this.#revokedKids.add(kid);
    if (agent === this.agentId && kid === this.#key?.kid) {
      // Every result signed from now on would be refused, yet the tool's side effects would happen:
      // stop taking calls rather than act without being able to answer for it.
      this.#report(new KeyRevokedError("This agent's signing key was revoked", { reason: "own_key" }), {
        phase: "connection",
      });
      void this.close();
    }
  }

  async #handleInvoke(requestWire: string, delivery: Delivery): Promise<void> {
    const callId = delivery.call_id;
    let envelope: Envelope;
    let hash: ContentHash;
    let handler: ToolHandler;
    try {
      ({ envelope, hash, handler } = this.#verify(requestWire, delivery));
    } catch (error) {
      const refusal = asProtocolError(error);
      this.#report(refusal, { phase: "verify", callId });
      this.#send({
        type: "error",
        call_id: callId,
        error: { code: refusal.code, message: refusal.message.slice(0, 1024) },
      });
      return;
    }

    const controller = new AbortController();
    this.#calls.set(callId, controller);
    const timer = setTimeout(
      () => controller.abort(protocolError("TIMEOUT", "The call's deadline passed")),
      // setTimeout fires at once for delays past 2^31 - 1 ms, so clamp a far-off deadline.
      Math.min(Math.max(0, delivery.deadline - Date.now()), 2_147_483_647),
    );
    let status: "ok" | "error";
    let body: JsonValue;
    try {
      const output = await handler(envelope.body, {
        envelope,
        from: envelope.from,
        decision: delivery.decision,
        callId,
        deadline: delivery.deadline,
        signal: controller.signal,
      });
      body = output === undefined ? null : output;
      status = "ok";
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)), { phase: "handler", callId });
      body = errorBody(error);
      status = "error";
    } finally {
      clearTimeout(timer);
    }
    // The connection this call came in on is gone: the runtime has already failed the call.
    if (this.#calls.get(callId) !== controller) return;
    this.#calls.delete(callId);

    const wire = this.#signResult(envelope, hash, delivery, status, body, callId);
    if (wire === undefined) {
      this.#send({
        type: "error",
        call_id: callId,
        error: { code: "INTERNAL_ERROR", message: "Internal error" },
      });
      return;
    }
    this.#send({ type: "result", call_id: callId, envelope: wire });
  }

  /** The checks of docs/protocol.md §11, cheapest first, then the local replay guard. */
  #verify(wire: string, delivery: Delivery): { envelope: Envelope; hash: ContentHash; handler: ToolHandler } {
    const runtimeKey = this.#runtimeKey;
    if (runtimeKey === undefined) refuse("INTERNAL_ERROR", "not_connected");
    if (this.#calls.has(delivery.call_id)) refuse("INVALID_REQUEST", "call_id_in_use");
    const cap = this.#session?.maxInFlight;
    if (cap !== undefined && this.#calls.size >= cap) refuse("TARGET_UNAVAILABLE", "max_in_flight");

    verifyDelivery(delivery, runtimeKey);
    if (this.#revokedKids.has(delivery.sender_key.kid)) refuse("KEY_REVOKED", "sender_key");
    let senderKey: Ed25519PublicKey;
    try {
      senderKey = this.#senderKeys.get(delivery.sender_key.public_key);
    } catch {
      refuse("SIGNATURE_INVALID", "sender_key");
    }
    if (senderKey.kid !== delivery.sender_key.kid) refuse("SIGNATURE_INVALID", "sender_kid");
    const verified = verifyEnvelope(wire, {
      // The runtime vouches (in the signed delivery) that this is the sender's registered key; the
      // envelope must name that very key.
      resolveKey: (kid, sender) => {
        if (kid !== senderKey.kid) refuse("SIGNATURE_INVALID", "kid");
        return { key: senderKey, owner: sender };
      },
    });
    // The runtime's signed decision names the envelope by hash: it must be this very envelope.
    if (verified.hash !== delivery.envelope_hash) refuse("SIGNATURE_INVALID", "delivery_envelope");
    const envelope = verified.envelope;
    if (envelope.type !== "invoke") refuse("INVALID_ENVELOPE", "type");
    const target = parseTarget(envelope.to);
    const handler = target?.kind === "tool" ? this.#handlers.get(target.name) : undefined;
    if (handler === undefined) refuse("UNKNOWN_TOOL", "not_served");
    assertFresh(envelope.ts, Date.now(), this.#freshnessWindowMs);
    if (delivery.deadline <= Date.now()) refuse("TIMEOUT", "deadline");

    const verdict = this.#replay.check(envelope.from, envelope.id, envelope.nonce, verified.hash);
    if (verdict === "duplicate_id") refuse("DUPLICATE_MESSAGE", "id");
    if (verdict !== undefined) refuse("REPLAY_DETECTED", verdict);
    this.#replay.remember(envelope.from, envelope.id, envelope.nonce, verified.hash);
    return { envelope, hash: verified.hash, handler };
  }

  #signResult(
    request: Envelope,
    requestHash: ContentHash,
    delivery: Delivery,
    status: "ok" | "error",
    body: JsonValue,
    callId: string,
  ): string | undefined {
    const draft = {
      type: "result" as const,
      from: this.agentId,
      to: `agent:${request.from}`,
      re: { id: request.id, hash: requestHash },
      decision: { audit_id: delivery.decision.audit_id, rules: delivery.decision.rules },
    };
    try {
      return signEnvelope({ ...draft, status, body }, this.#key!).wire;
    } catch (error) {
      // Most likely the handler returned something that is not JSON (NaN, a Date, a cycle).
      this.#report(error instanceof Error ? error : new Error(String(error)), { phase: "handler", callId });
    }
    try {
      return signEnvelope(
        {
          ...draft,
          status: "error",
          body: { error: { code: "INTERNAL_ERROR", message: "The tool failed" } },
        },
        this.#key!,
      ).wire;
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)), { phase: "send", callId });
      return undefined;
    }
  }

  #send(frame: ClientFrame): void {
    const socket = this.#socket;
    if (socket?.readyState === WebSocket.OPEN) socket.send(serializeFrame(frame));
  }

  #report(error: Error, info: AgentErrorInfo): void {
    try {
      this.#options.onError?.(error, info);
    } catch {
      // A throwing logger must not take the connection down.
    }
  }
}
