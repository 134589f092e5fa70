// Agent: serves tools over /v1/connect, verifying every delivery itself before a handler runs.
import {
  type ContentHash,
  type Delivery,
  Ed25519PublicKey,
  type Ed25519PrivateKey,
  type Envelope,
  type ErrorCode,
  type Intent,
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
import { CallerKeys, type CallerKeyMode } from "./caller-keys.js";
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
import { HttpTransport } from "./http-transport.js";
import { type InputSchema, type InputValidator, compileInputSchema } from "./input-schema.js";
import { ReplayGuard } from "./replay-guard.js";
import { RetryPolicy } from "./retry-policy.js";
import { type RuntimeKeyInput, parseRuntimeKey } from "./runtime-key.js";
import { type SigningKeyInput, SigningKeySource } from "./signing-key.js";

/**
 * What a handler learns about the call beside its arguments. Everything here has been verified by the
 * agent itself: the caller's signature, the runtime's signed decision, freshness and the target.
 */
export interface CallContext {
  /** The caller's agent id: the verified sender of the invocation. */
  readonly caller: string;
  /** The tool called (without the `tool:` prefix). */
  readonly tool: string;
  /** The invocation's message id. */
  readonly id: string;
  /** What the caller declared it is doing, if it said. */
  readonly intent: Intent | undefined;
  /** The audit entry of the runtime's decision to allow this call. */
  readonly auditId: string;
  /** The rules that allowed it. */
  readonly rules: readonly string[];
  /** The caller's envelope, its signature verified against the caller's registered key. */
  readonly envelope: Envelope;
  /** The caller's agent id (`envelope.from`); the same as `caller`. */
  readonly from: string;
  /** The runtime's decision: the audit entry and the rules that allowed the call. */
  readonly decision: { readonly audit_id: string; readonly rules: readonly string[] };
  /** The runtime's id for this call. */
  readonly callId: string;
  /** When the runtime stops waiting for the result (Unix ms). */
  readonly deadline: number;
  /** Aborted at the deadline, when the runtime cancels the call, or when the connection is lost. */
  readonly signal: AbortSignal;
}

/** The verified invocation a tool handler receives (see {@link CallContext}). */
export type Invocation = CallContext;

/** A tool implementation. Throw {@link ToolError} to fail with a code the caller may see. */
export type ToolHandler<A extends JsonValue = JsonValue> = (
  args: A,
  invocation: Invocation,
) => Promise<JsonValue> | JsonValue;

/** Options for {@link Agent.tool}. */
export interface ToolOptions {
  /**
   * A JSON Schema for the arguments, compiled with Ajv in strict mode when the tool is registered.
   * Arguments that do not match never reach the handler: the caller gets a signed error result with
   * code `INVALID_PAYLOAD`.
   */
  readonly inputSchema?: InputSchema;
}

/** Where an error reported to `onError` came from. */
export interface AgentErrorInfo {
  readonly phase: "verify" | "input" | "handler" | "send" | "connection" | "reconnect";
  readonly callId?: string;
}

/** How an agent reconnects after losing an established connection. */
export interface ReconnectOptions {
  /** The first wait, in ms; it doubles per failed attempt. Default 250. */
  readonly backoffBaseMs?: number;
  /** The longest wait, in ms. Default 30 000. */
  readonly backoffMaxMs?: number;
  /** The fraction of each wait removed at random (0 to 1). Default 0.2. */
  readonly jitter?: number;
  /** Attempts before giving up. Default: unlimited. A permanent refusal stops at once. */
  readonly maxAttempts?: number;
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
  /** How callers' keys are confirmed; see {@link CallerKeyMode}. Default `"auto"`. */
  readonly callerKeys?: CallerKeyMode;
  /** How long a caller's key read from the registry is trusted without asking again, in ms. Default 60 000. */
  readonly callerKeyTtlMs?: number;
  /** Reconnect after losing the connection (default true, with {@link ReconnectOptions}' defaults). */
  readonly reconnect?: boolean | ReconnectOptions;
  /** How long `close()` waits for calls in flight to finish, in ms. Default 10 000. */
  readonly drainTimeoutMs?: number;
  /** Refusals, handler exceptions and connection problems (for logging; never thrown). */
  readonly onError?: (error: Error, info: AgentErrorInfo) => void;
  /** Called on every `welcome`: the first connection and each reconnection. */
  readonly onConnect?: (session: AgentSession) => void;
  /** Called once when an open connection ends; `reconnecting` says whether the agent will try again. */
  readonly onClose?: (info: {
    readonly code: number;
    readonly reason: string;
    readonly reconnecting: boolean;
  }) => void;
}

/** See {@link Agent.state}. */
export type AgentState = "connecting" | "connected" | "reconnecting" | "draining" | "disconnected";

/** What the runtime accepted in `welcome`. */
export interface AgentSession {
  readonly connectionId: string;
  readonly serves: readonly string[];
  readonly maxInFlight: number;
  readonly runtimeKid: string;
}

interface ToolEntry {
  readonly handler: ToolHandler;
  readonly validate: InputValidator | undefined;
}

interface VerifiedCall {
  readonly envelope: Envelope;
  readonly hash: ContentHash;
  readonly tool: string;
  readonly entry: ToolEntry;
}

const POLICY_VIOLATION = 1008;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
const DEFAULT_CALLER_KEY_TTL_MS = 60_000;

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

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether a failed (re)connection may succeed later: network trouble yes, a refusal or a bad certificate no. */
function isTransient(error: unknown): boolean {
  if (isProtocolError(error)) return error.retryable;
  return error instanceof SdkError && error.retryable;
}

function checkToolName(toolName: string): void {
  if (!TOOL_NAME_PATTERN.test(toolName) || toolName.includes("//") || toolName.endsWith("/")) {
    throw new SdkError("Not a valid tool name (use the name without the tool: prefix)", {
      reason: "tool_name",
    });
  }
}

/**
 * An agent that serves tools. It keeps a WebSocket open to the runtime's `/v1/connect`, and for every
 * call checks — itself, whatever the runtime already checked — the runtime's signature on the delivery,
 * the caller's signature on the envelope and that the caller's key is not revoked, that the target is a
 * tool it serves, freshness, that it has not run this envelope before, and the arguments against the
 * tool's input schema. Only then does the handler run; its result is signed and returned. A lost
 * connection is re-established with backoff; `close()` lets calls in flight finish first.
 *
 * Example:
 * ```ts
 * const agent = new Agent({ target: "https://signet.internal:8443", rootCertificates: ca,
 *   auth: AuthConfig.forApiKey(key, { expectedSender: "db-bot" }), agentId: "db-bot",
 *   signingKey: ".signet/keys/db-bot.key", runtimePublicKey: runtimePub });
 * agent.tool("database/query", async ({ query }, call) => ({ rows: await run(query, call.caller) }), {
 *   inputSchema: { type: "object", required: ["query"], properties: { query: { type: "string" } } },
 * });
 * await agent.connect();
 * process.on("SIGTERM", () => void agent.close()); // finishes calls in flight, then disconnects
 * ```
 */
export class Agent {
  readonly agentId: string;
  readonly #options: AgentOptions;
  readonly #connection: ResolvedConnection;
  readonly #signingKey: SigningKeySource;
  readonly #pinnedRuntimeKey: Ed25519PublicKey | undefined;
  readonly #tools = new Map<string, ToolEntry>();
  readonly #capabilities = new Map<string, ToolEntry>();
  readonly #replay: ReplayGuard;
  readonly #senderKeys = new PublicKeyCache(1_000);
  readonly #transport: HttpTransport;
  readonly #callerKeys: CallerKeys;
  readonly #calls = new Map<string, AbortController>();
  readonly #idleWaiters = new Set<() => void>();
  readonly #freshnessWindowMs: number;
  readonly #drainTimeoutMs: number;
  readonly #reconnect: { readonly backoff: RetryPolicy; readonly maxAttempts: number } | undefined;
  #socket: WebSocket | undefined;
  #key: Ed25519PrivateKey | undefined;
  #runtimeKey: Ed25519PublicKey | undefined;
  #session: AgentSession | undefined;
  #closing: Promise<void> | undefined;
  #connecting = false;
  #draining = false;
  /** Set by close(): no reconnecting from here on. */
  #stopped = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectAttempts = 0;
  #watchdog: NodeJS.Timeout | undefined;
  #lastSeen = 0;

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
    const callerKeys = options.callerKeys ?? "auto";
    if (!["auto", "registry", "delivery"].includes(callerKeys)) {
      throw new SdkError("callerKeys must be auto, registry or delivery", { reason: "caller_keys" });
    }
    const ttl = options.callerKeyTtlMs ?? DEFAULT_CALLER_KEY_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 0) {
      throw new SdkError("callerKeyTtlMs must be a non-negative integer", { reason: "caller_keys" });
    }
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    if (!Number.isSafeInteger(this.#drainTimeoutMs) || this.#drainTimeoutMs < 0) {
      throw new SdkError("drainTimeoutMs must be a non-negative integer", { reason: "drain_timeout" });
    }
    if (options.reconnect !== false) {
      const reconnect = options.reconnect === true ? {} : (options.reconnect ?? {});
      const maxAttempts = reconnect.maxAttempts ?? Infinity;
      if (!(maxAttempts === Infinity || (Number.isSafeInteger(maxAttempts) && maxAttempts >= 1))) {
        throw new SdkError("reconnect.maxAttempts must be a positive integer", { reason: "reconnect" });
      }
      this.#reconnect = {
        backoff: new RetryPolicy({
          backoffBaseMs: reconnect.backoffBaseMs ?? 250,
          backoffMaxMs: reconnect.backoffMaxMs ?? 30_000,
          jitter: reconnect.jitter ?? 0.2,
        }),
        maxAttempts,
      };
    }
    this.agentId = options.agentId;
    this.#options = options;
    this.#signingKey = new SigningKeySource(options.signingKey);
    this.#pinnedRuntimeKey = parseRuntimeKey(options.runtimePublicKey);
    this.#freshnessWindowMs = options.freshnessWindowMs ?? 60_000;
    this.#replay = new ReplayGuard(options.replayCacheSize ?? 10_000);
    this.#transport = new HttpTransport(this.#connection);
    this.#callerKeys = new CallerKeys(callerKeys, this.#transport, ttl);
  }

  /** The accepted session while connected, else undefined. */
  get session(): AgentSession | undefined {
    return this.#session;
  }

  /**
   * Where the agent stands, for health checks: `connected` (serving), `connecting` (first connection),
   * `reconnecting` (lost its connection, trying again), `draining` (closing, finishing calls in flight),
   * or `disconnected` (never connected, closed, or stopped after a permanent refusal).
   */
  get state(): AgentState {
    if (this.#draining) return "draining";
    if (this.#session !== undefined) return "connected";
    if (this.#reconnectTimer !== undefined || (this.#reconnectAttempts > 0 && this.#socket !== undefined)) {
      return "reconnecting";
    }
    if (this.#socket !== undefined || this.#connecting) return "connecting";
    return "disconnected";
  }

  /** How many calls are running right now. */
  get inFlight(): number {
    return this.#calls.size;
  }

  /**
   * Registers the handler for `tool:NAME`, optionally with a JSON Schema for its arguments. Tools are
   * declared in `hello`, so register them before {@link connect}.
   *
   * Example:
   * ```ts
   * agent.tool("inventory/lookup", ({ sku }, call) => ({ sku, stock: stockOf(String(sku)), for: call.caller }), {
   *   inputSchema: { type: "object", required: ["sku"], additionalProperties: false,
   *                  properties: { sku: { type: "string", pattern: "^[A-Z0-9-]{1,32}$" } } },
   * });
   * ```
   */
  // The handler may declare a narrower argument type; the schema (or the handler) is what checks it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  tool<A extends JsonValue = any>(
    toolName: string,
    handler: ToolHandler<A>,
    options: ToolOptions = {},
  ): this {
    checkToolName(toolName);
    if (typeof handler !== "function")
      throw new SdkError("A handler must be a function", { reason: "handler" });
    if (this.#socket !== undefined || this.#connecting)
      throw new SdkError("Register tools before connect()", { reason: "connected" });
    if (this.#tools.has(toolName))
      throw new SdkError(`Tool ${toolName} is already served`, { reason: "tool_name" });
    const validate = options.inputSchema === undefined ? undefined : compileInputSchema(options.inputSchema);
    this.#tools.set(toolName, { handler: handler as ToolHandler, validate });
    return this;
  }

  /**
   * Registers the handler for `capability:NAME` (a capability this agent's definition provides).
   * Calls reach it only from requesters the definition's `capability_access` admits.
   *
   * Example: `agent.capability("order-processing", (order, call) => placeOrder(order, call.caller))`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  capability<A extends JsonValue = any>(
    name: string,
    handler: ToolHandler<A>,
    options: ToolOptions = {},
  ): this {
    if (!/^[a-z0-9][a-z0-9._-]{0,127}$/.test(name)) {
      throw new SdkError(`"${name}" is not a capability name`, { reason: "capability_name" });
    }
    if (typeof handler !== "function")
      throw new SdkError("A handler must be a function", { reason: "handler" });
    if (this.#socket !== undefined || this.#connecting)
      throw new SdkError("Register capabilities before connect()", { reason: "connected" });
    if (this.#capabilities.has(name))
      throw new SdkError(`Capability ${name} is already provided`, { reason: "capability_name" });
    const validate = options.inputSchema === undefined ? undefined : compileInputSchema(options.inputSchema);
    this.#capabilities.set(name, { handler: handler as ToolHandler, validate });
    return this;
  }

  /**
   * Registers the handler for `tool:NAME` without an input schema (the older form of {@link tool}).
   *
   * Example: `agent.serve("echo", (body) => body)`.
   */
  serve(toolName: string, handler: ToolHandler): this {
    return this.tool(toolName, handler);
  }

  /**
   * Opens the connection, says `hello` with the served tools and resolves on `welcome`. Rejects with
   * the runtime's typed error (an `error` frame or a refused upgrade), or `SdkError` when the
   * connection ends or times out first. The credential's `expectedSender` is checked before any I/O.
   * Once connected, a lost connection is re-established on its own (see `reconnect`).
   *
   * Example: `const { connectionId } = await agent.connect()`.
   */
  async connect(): Promise<AgentSession> {
    const auth = this.#options.auth;
    if (auth.expectedSender !== this.agentId) {
      throw new IdentityMismatchError(undefined, {}, { expected: auth.expectedSender, actual: this.agentId });
    }
    if (this.#socket !== undefined || this.#connecting || this.#reconnectTimer !== undefined) {
      throw new SdkError("Already connected", { reason: "connected" });
    }
    if (this.#closing !== undefined) throw new SdkError("The agent is closing", { reason: "closing" });
    if (this.#tools.size === 0 && this.#capabilities.size === 0)
      throw new SdkError("Serve at least one tool or capability before connect()", { reason: "no_tools" });
    this.#stopped = false;
    return this.#open();
  }

  /**
   * Stops taking calls, lets the calls in flight finish and send their results (up to `drainTimeoutMs`;
   * then their `signal` aborts and their results are dropped), and closes the connection. Calls that
   * arrive meanwhile are refused with `TARGET_UNAVAILABLE`. Cancels any pending reconnection.
   *
   * Example: `process.on("SIGTERM", () => void agent.close())`.
   */
  async close(options: { readonly drainTimeoutMs?: number } = {}): Promise<void> {
    this.#stopped = true;
    if (this.#reconnectTimer !== undefined) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
    if (this.#closing !== undefined) return this.#closing;
    const socket = this.#socket;
    if (socket === undefined) {
      await this.#transport.closeConnections().catch(() => undefined);
      return;
    }
    const drainTimeoutMs = options.drainTimeoutMs ?? this.#drainTimeoutMs;
    this.#closing = (async () => {
      this.#draining = true;
      try {
        await this.#drain(drainTimeoutMs);
        await this.#closeSocket(socket, 1000, "agent closing");
      } finally {
        this.#draining = false;
        this.#closing = undefined;
        await this.#transport.closeConnections().catch(() => undefined);
      }
    })();
    return this.#closing;
  }

  /** Waits until no call is in flight, or aborts the remaining ones after `timeoutMs`. */
  async #drain(timeoutMs: number): Promise<void> {
    if (this.#calls.size === 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const controller of this.#calls.values()) {
          controller.abort(new SdkError("The agent is closing", { reason: "closing" }));
        }
        this.#calls.clear();
        done();
      }, timeoutMs);
      this.#idleWaiters.add(done);
    });
  }

  #callEnded(callId: string, controller: AbortController): boolean {
    if (this.#calls.get(callId) !== controller) return false;
    this.#calls.delete(callId);
    if (this.#calls.size === 0) for (const waiter of [...this.#idleWaiters]) waiter();
    return true;
  }

  #closeSocket(socket: WebSocket, code: number, reason: string): Promise<void> {
    return new Promise<void>((resolve) => {
      if (socket.readyState === WebSocket.CLOSED) return resolve();
      const force = setTimeout(() => socket.terminate(), 2_000);
      socket.once("close", () => {
        clearTimeout(force);
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(code, reason);
    });
  }

  /** One connection attempt: upgrade, hello, welcome. */
  async #open(): Promise<AgentSession> {
    const auth = this.#options.auth;
    this.#connecting = true;
    try {
      this.#key = await this.#signingKey.get();
    } catch (error) {
      this.#connecting = false;
      throw error;
    }
    if (this.#stopped) {
      // close() was called while the key was loading: do not connect behind its back.
      this.#connecting = false;
      throw new SdkError("The agent was closed", { reason: "closed" });
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
    this.#connecting = false;

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
          serves: [...this.#tools.keys()],
          ...(this.#capabilities.size === 0 ? {} : { capabilities: [...this.#capabilities.keys()] }),
          ...(this.#options.maxInFlight === undefined ? {} : { max_in_flight: this.#options.maxInFlight }),
        };
        socket.send(serializeFrame(hello));
      });
      socket.on("message", (data, isBinary) => {
        this.#lastSeen = Date.now();
        let frame: ServerFrame;
        try {
          if (isBinary) refuse("INVALID_REQUEST", "frame:binary");
          frame = parseServerFrame(rawText(data));
        } catch (error) {
          const refusal = asProtocolError(error);
          this.#report(refusal, { phase: "connection" });
          this.#sendOn(socket, { type: "error", error: { code: refusal.code, message: "Invalid frame" } });
          if (!settled) fail(refusal);
          else socket.close(POLICY_VIOLATION, "invalid frame");
          return;
        }
        if (!settled) {
          if (frame.type === "welcome") {
            try {
              const session = this.#welcome(frame, socket);
              settled = true;
              clearTimeout(timer);
              resolve(session);
              this.#notifyConnected(session);
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
        this.#onFrame(frame, socket);
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
          const reconnecting = !this.#stopped && !this.#draining && this.#reconnect !== undefined;
          try {
            this.#options.onClose?.({ code, reason, reconnecting });
          } catch {
            // A throwing callback must not stop the reconnection.
          }
          if (reconnecting) this.#scheduleReconnect();
        }
      });
    });
  }

  #notifyConnected(session: AgentSession): void {
    this.#reconnectAttempts = 0;
    try {
      this.#options.onConnect?.(session);
    } catch {
      // A throwing callback must not take the connection down.
    }
  }

  /** After losing an established connection: try again with backoff until it works or is refused. */
  #scheduleReconnect(): void {
    const reconnect = this.#reconnect;
    if (reconnect === undefined || this.#reconnectTimer !== undefined) return;
    if (this.#reconnectAttempts >= reconnect.maxAttempts) {
      this.#report(new SdkError("Gave up reconnecting", { reason: "reconnect_exhausted" }), {
        phase: "reconnect",
      });
      return;
    }
    const delay = reconnect.backoff.backoffMs(this.#reconnectAttempts);
    this.#reconnectAttempts += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#stopped || this.#socket !== undefined) return;
      this.#open().catch((error: unknown) => {
        this.#report(asError(error), { phase: "reconnect" });
        // A refusal (revoked API key, tool no longer allowed, an untrusted certificate) will not fix itself.
        if (isTransient(error) && !this.#stopped) this.#scheduleReconnect();
      });
    }, delay);
  }

  #teardown(socket: WebSocket): void {
    // A late close event of an earlier connection must not tear down a newer one.
    if (this.#socket !== socket) return;
    for (const controller of this.#calls.values()) {
      controller.abort(new SdkError("The connection closed", { reason: "closed" }));
    }
    this.#calls.clear();
    for (const waiter of [...this.#idleWaiters]) waiter();
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    this.#socket = undefined;
    this.#session = undefined;
    this.#runtimeKey = undefined;
  }

  #welcome(frame: WelcomeFrame, socket: WebSocket): AgentSession {
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
    // Revocation notices sent while this agent was not connected were missed: ask the registry afresh.
    this.#callerKeys.reset();
    this.#session = {
      connectionId: frame.connection_id,
      serves: frame.serves,
      maxInFlight: frame.max_in_flight,
      runtimeKid: frame.runtime_kid,
    };
    this.#startWatchdog(socket, frame.heartbeat_ms);
    return this.#session;
  }

  /** A runtime that stops talking (a half-open connection) is treated as gone, so the agent reconnects. */
  #startWatchdog(socket: WebSocket, heartbeatMs: number): void {
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#lastSeen = Date.now();
    const interval = Math.max(100, heartbeatMs);
    this.#watchdog = setInterval(() => {
      if (this.#socket !== socket) return;
      if (Date.now() - this.#lastSeen > 3 * interval) {
        this.#report(new SdkError("The runtime stopped answering", { reason: "heartbeat" }), {
          phase: "connection",
        });
        socket.terminate();
      }
    }, interval);
    this.#watchdog.unref();
  }

  #onFrame(frame: ServerFrame, socket: WebSocket): void {
    switch (frame.type) {
      case "invoke":
        this.#handleInvoke(frame.envelope, frame.delivery, socket).catch((error: unknown) => {
          this.#report(asError(error), { phase: "send", callId: frame.delivery.call_id });
        });
        return;
      case "ping":
        this.#sendOn(socket, { type: "pong", ts: frame.ts });
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
        socket.close(POLICY_VIOLATION, "second welcome");
        return;
    }
  }

  #onKeyRevoked(agent: string, kid: string): void {
    this.#callerKeys.revoke(agent, kid);
    if (agent === this.agentId && kid === this.#key?.kid) {
      // Every result signed from now on would be refused, yet the tool's side effects would happen:
      // stop taking calls at once rather than act without being able to answer for it.
      this.#report(new KeyRevokedError("This agent's signing key was revoked", { reason: "own_key" }), {
        phase: "connection",
      });
      void this.close({ drainTimeoutMs: 0 });
    }
  }

  async #handleInvoke(requestWire: string, delivery: Delivery, socket: WebSocket): Promise<void> {
    const callId = delivery.call_id;
    const refuseCall = (error: unknown, phase: AgentErrorInfo["phase"]): void => {
      const refusal = asProtocolError(error);
      this.#report(refusal, { phase, callId });
      this.#sendOn(socket, {
        type: "error",
        call_id: callId,
        error: { code: refusal.code, message: refusal.message.slice(0, 1024) },
      });
    };
    // Reserve the call id before anything asynchronous, so a second delivery of it is refused.
    try {
      if (this.#draining || this.#stopped) refuse("TARGET_UNAVAILABLE", "closing");
      if (this.#calls.has(callId)) refuse("INVALID_REQUEST", "call_id_in_use");
      const cap = this.#session?.maxInFlight;
      if (cap !== undefined && this.#calls.size >= cap) refuse("TARGET_UNAVAILABLE", "max_in_flight");
    } catch (error) {
      refuseCall(error, "verify");
      return;
    }
    const controller = new AbortController();
    this.#calls.set(callId, controller);

    let call: VerifiedCall;
    try {
      call = await this.#verify(requestWire, delivery);
    } catch (error) {
      if (this.#callEnded(callId, controller)) refuseCall(error, "verify");
      return;
    }
    const { envelope, hash, tool, entry } = call;

    let status: "ok" | "error";
    let body: JsonValue;
    const problem = entry.validate?.(envelope.body);
    if (problem !== undefined) {
      this.#report(new SdkError(problem, { reason: "input_schema" }), { phase: "input", callId });
      status = "error";
      body = { error: { code: "INVALID_PAYLOAD", message: problem } };
    } else {
      const timer = setTimeout(
        () => controller.abort(protocolError("TIMEOUT", "The call's deadline passed")),
        // setTimeout fires at once for delays past 2^31 - 1 ms, so clamp a far-off deadline.
        Math.min(Math.max(0, delivery.deadline - Date.now()), 2_147_483_647),
      );
      try {
        const output = await entry.handler(envelope.body, {
          caller: envelope.from,
          tool,
          id: envelope.id,
          intent: envelope.intent,
          auditId: delivery.decision.audit_id,
          rules: delivery.decision.rules,
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
        this.#report(asError(error), { phase: "handler", callId });
        body = errorBody(error);
        status = "error";
      } finally {
        clearTimeout(timer);
      }
    }
    // The connection this call came in on is gone (the runtime has already failed the call), or the
    // drain gave up on it: its result has nowhere to go.
    if (this.#calls.get(callId) !== controller || this.#socket !== socket) {
      this.#callEnded(callId, controller);
      return;
    }

    const wire = this.#signResult(envelope, hash, delivery, status, body, callId);
    if (wire === undefined) {
      this.#sendOn(socket, {
        type: "error",
        call_id: callId,
        error: { code: "INTERNAL_ERROR", message: "Internal error" },
      });
    } else {
      this.#sendOn(socket, { type: "result", call_id: callId, envelope: wire });
    }
    // Only now: a drain waits for this result to be on its way before it closes the connection.
    this.#callEnded(callId, controller);
  }

  /** The checks of docs/protocol.md §11, cheapest first, then the caller's key and the local replay guard. */
  async #verify(wire: string, delivery: Delivery): Promise<VerifiedCall> {
    const runtimeKey = this.#runtimeKey;
    if (runtimeKey === undefined) refuse("INTERNAL_ERROR", "not_connected");

    verifyDelivery(delivery, runtimeKey);
    if (this.#callerKeys.isRevoked(delivery.sender_key.kid)) refuse("KEY_REVOKED", "sender_key");
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
    const entry =
      target?.kind === "tool"
        ? this.#tools.get(target.name)
        : target?.kind === "capability"
          ? this.#capabilities.get(target.name)
          : undefined;
    if (entry === undefined || target === undefined) refuse("UNKNOWN_TOOL", "not_served");
    assertFresh(envelope.ts, Date.now(), this.#freshnessWindowMs);
    if (delivery.deadline <= Date.now()) refuse("TIMEOUT", "deadline");

    // The only check that may wait (a registry read); the replay guard comes after it, synchronously.
    await this.#callerKeys.check(envelope, senderKey, this.#options.auth);

    const verdict = this.#replay.check(envelope.from, envelope.id, envelope.nonce, verified.hash);
    if (verdict === "duplicate_id") refuse("DUPLICATE_MESSAGE", "id");
    if (verdict !== undefined) refuse("REPLAY_DETECTED", verdict);
    this.#replay.remember(envelope.from, envelope.id, envelope.nonce, verified.hash);
    return { envelope, hash: verified.hash, tool: target.name, entry };
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
      this.#report(asError(error), { phase: "handler", callId });
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
      this.#report(asError(error), { phase: "send", callId });
      return undefined;
    }
  }

  /** Sends on one connection only: an answer never goes out on a newer connection than its call's. */
  #sendOn(socket: WebSocket, frame: ClientFrame): void {
    if (this.#socket === socket && socket.readyState === WebSocket.OPEN) socket.send(serializeFrame(frame));
  }

  #report(error: Error, info: AgentErrorInfo): void {
    try {
      this.#options.onError?.(error, info);
    } catch {
      // A throwing logger must not take the connection down.
    }
  }
}
