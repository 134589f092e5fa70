// SignetClient: signs envelopes, submits them to POST /v1/envelopes, and verifies what comes back.
import {
  type ContentHash,
  type Ed25519PrivateKey,
  type Ed25519PublicKey,
  type Envelope,
  type Intent,
  type JsonValue,
  type Provenance,
  type Receipt,
  type SignedEnvelope,
  TOOL_NAME_PATTERN,
  assertEnvelopeShape,
  envelopeHash,
  isAgentId,
  isSignetError,
  parseStrictJson,
  parseTarget,
  signEnvelope,
} from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import {
  type ConnectionOptions,
  type ResolvedConnection,
  checkAuth,
  resolveConnection,
} from "./connection.js";
import { IdentityMismatchError, SdkError, errorFromWire, protocolError } from "./errors.js";
import { HttpTransport, abortedError } from "./http-transport.js";
import { RegistryKeyDirectory } from "./registry-keys.js";
import {
  MAX_SUBMIT_RESPONSE_BYTES,
  type SubmittedRequest,
  checkReceiptNamesRequest,
  checkReceiptSignature,
  checkResultBinding,
  checkResultIntegrity,
  checkResultSignature,
  parseSubmitResponse,
} from "./result-verification.js";
import { RetryPolicy } from "./retry-policy.js";
import { type AttemptBudget, type CallBudget, type RetryEvent, runWithRetries } from "./retry-send.js";
import { type RuntimeKeyInput, parseRuntimeKey } from "./runtime-key.js";
import { type SigningKeyInput, SigningKeySource, loadSigningKey } from "./signing-key.js";

/**
 * How the client decides a result really comes from its executor.
 *
 * - `"executor_key"`: verify the result's signature against the executor's key from the registry
 *   (`GET /v1/agents/:id`, which needs `agent:read`); fail closed when the registry cannot be read.
 * - `"receipt"`: trust the runtime's signed receipt, which names the result by its envelope hash (the
 *   runtime verified the executor's signature before signing it). Needs `runtimePublicKey`.
 * - `"auto"` (default): the executor's key when the registry is readable, else the receipt when
 *   `runtimePublicKey` is pinned, else refuse (`SdkError`, reason `result_unverifiable`).
 *
 * The receipt path is no weaker than the registry path: both trust the runtime (it serves the registry
 * too), and a receipt is signed by a key pinned out of band rather than just served over TLS.
 */
export type ResultTrust = "auto" | "executor_key" | "receipt";

/** Options for {@link SignetClient}. */
export interface SignetClientOptions extends ConnectionOptions {
  /** The sender of every envelope this client signs (a bare agent id), unless a call says otherwise. */
  readonly agentId: string;
  /** The agent's Ed25519 key. Loaded on first use; only signing needs it (`submit` does not). */
  readonly signingKey?: SigningKeyInput;
  /**
   * The runtime's public key (base64url of 32 bytes, SPKI PEM, or a key object), pinned out of band
   * (`keys/runtime.pub`). When set, every receipt's signature is verified.
   */
  readonly runtimePublicKey?: RuntimeKeyInput;
  /** See {@link ResultTrust}. Default `"auto"`. */
  readonly resultTrust?: ResultTrust;
  /** How long executors' keys from the registry are cached, in ms. Default 300 000. */
  readonly executorKeyTtlMs?: number;
  /** How `invoke`, `invokeTool` and `send` retry. Default {@link RetryPolicy.DEFAULT} (MACP: 3 retries). */
  readonly retryPolicy?: RetryPolicy;
}

/** Options for every envelope the client signs. */
export interface EnvelopeOptions {
  /** What the caller declares it is doing and the permissions it needs. */
  readonly intent?: Intent;
  /** A coordination session id. */
  readonly session?: string;
  /** The body's semantic type, e.g. `org.acme.Invoice.v1`. */
  readonly bodyType?: string;
  readonly provenance?: Provenance;
  /**
   * A credential for this call only, for a process that acts for several participants. Its
   * `expectedSender` must be the envelope's sender, like the client's.
   */
  readonly auth?: AuthConfig;
  /**
   * The envelope's sender for this call (default: the client's `agentId`). It must be the credential's
   * `expectedSender`; anything else throws `IdentityMismatchError` before anything is loaded or sent.
   */
  readonly sender?: string;
  /** The key for this call; required when `sender` is not the client's `agentId`. */
  readonly signingKey?: SigningKeyInput;
  /** The message id (a UUIDv7 is generated when absent). */
  readonly id?: string;
}

/** Options for {@link SignetClient.buildEnvelope}. */
export interface BuildEnvelopeOptions extends EnvelopeOptions {
  /** `invoke` (default) or `signal`. */
  readonly type?: "invoke" | "signal";
}

/** Options for calls that retry: {@link SignetClient.invoke}, {@link SignetClient.invokeTool}, {@link SignetClient.send}. */
export interface InvokeOptions extends EnvelopeOptions, CallBudget {
  /** This call's retry policy instead of the client's. */
  readonly retryPolicy?: RetryPolicy;
  /** Told about every retry before its wait. */
  readonly onRetry?: (event: RetryEvent) => void;
}

/** Options for {@link SignetClient.invokeTool}. */
export type InvokeToolOptions = InvokeOptions;

/** Options for sending a signal with {@link SignetClient.send}. */
export type SignalOptions = InvokeOptions;

/** Options for {@link SignetClient.submit}: one attempt, no retries. */
export interface SubmitOptions extends AttemptBudget {
  /** A credential for this call only; its `expectedSender` must be the envelope's sender. */
  readonly auth?: AuthConfig;
}

/** Options for the raw form `send(wire)`; see {@link SignetClient.submit}. */
export type SendOptions = SubmitOptions;

/** What the runtime answered to a submitted envelope, verified. */
export interface SubmitResponse {
  /** The runtime's receipt (its signature checked when `runtimePublicKey` is pinned). */
  readonly receipt: Receipt;
  /** True when this answer replays an earlier identical submission; the call did not run again. */
  readonly duplicate: boolean;
  /** The request's envelope hash. */
  readonly requestHash: ContentHash;
  /** The audit entry of the runtime's decision on the request (`receipt.audit.request`). */
  readonly auditId: string;
  /** How many times the envelope was sent (1 without retries). */
  readonly attempts: number;
  /** For an `invoke`: the executor's verified result envelope. */
  readonly result?: Envelope;
}

/** The verified answer to an invocation. */
export interface InvokeResponse extends SubmitResponse {
  readonly result: Envelope;
  /** The result's body. When `status` is `"error"` it is the executor's error description. */
  readonly body: JsonValue;
  /** `"ok"`, or `"error"` when the tool ran and failed. */
  readonly status: "ok" | "error";
  /** The agent that executed the call and signed the result. */
  readonly executor: string;
}

/** The verified answer to a tool call: the result with its metadata. */
export type ToolCallResult = InvokeResponse;

const DEFAULT_EXECUTOR_KEY_TTL_MS = 5 * 60_000;

/**
 * What the SDK's own session and watcher classes use of a client: its connection, transport, pinned
 * runtime key and the sender guard. Kept off the class, and out of `index.ts`, so it is no public
 * surface: only modules inside the package reach it, through {@link clientChannel}.
 */
export interface ClientChannel {
  readonly agentId: string;
  /** The client's own credential. */
  readonly auth: AuthConfig;
  readonly retryPolicy: RetryPolicy;
  readonly connection: ResolvedConnection;
  readonly transport: HttpTransport;
  readonly runtimeKey: Ed25519PublicKey | undefined;
  /** The expectedSender guard every operation starts with (see `SignetClient`); throws before any I/O. */
  identity(options: { readonly auth?: AuthConfig; readonly sender?: string }): {
    auth: AuthConfig;
    sender: string;
  };
  /** The key for a sender: the call's own, else the client's for its own agent id. */
  keyFor(sender: string, override: SigningKeyInput | undefined): Promise<Ed25519PrivateKey>;
}

const CHANNELS = new WeakMap<object, ClientChannel>();

/** The channel of a client, for the package's own modules; `SdkError` (reason `client`) for anything else. */
export function clientChannel(client: SignetClient): ClientChannel {
  const channel = typeof client === "object" && client !== null ? CHANNELS.get(client) : undefined;
  if (channel === undefined) throw new SdkError("A SignetClient is required", { reason: "client" });
  return channel;
}

/**
 * The client agents use to call tools and other agents through the runtime. TLS by default; the
 * constructor validates settings and opens nothing.
 *
 * Example:
 * ```ts
 * const client = new SignetClient({
 *   target: "https://signet.internal:8443",
 *   rootCertificates: readFileSync(".signet/certs/ca.crt"),
 *   auth: AuthConfig.forApiKey(process.env.SIGNET_API_KEY!, { expectedSender: "alice" }),
 *   agentId: "alice",
 *   signingKey: ".signet/keys/alice.key",
 *   runtimePublicKey: readFileSync(".signet/keys/runtime.pub", "utf8"),
 * });
 * const { body, executor, auditId } = await client.invokeTool("database/query", { query: "select 1" });
 * ```
 */
export class SignetClient {
  readonly agentId: string;
  /** How `invoke`, `invokeTool`, `send` and `retrySend` retry unless told otherwise. */
  readonly retryPolicy: RetryPolicy;
  readonly #auth: AuthConfig;
  readonly #connection: ResolvedConnection;
  readonly #transport: HttpTransport;
  readonly #signingKey: SigningKeySource;
  readonly #runtimeKey: Ed25519PublicKey | undefined;
  readonly #resultTrust: ResultTrust;
  readonly #executorKeys: RegistryKeyDirectory;

  constructor(options: SignetClientOptions) {
    this.#connection = resolveConnection(options);
    if (!isAgentId(options.agentId))
      throw new SdkError("agentId must be a bare agent id", { reason: "agent_id" });
    this.agentId = options.agentId;
    this.#auth = options.auth;
    this.#signingKey = new SigningKeySource(options.signingKey);
    this.#runtimeKey = parseRuntimeKey(options.runtimePublicKey);
    this.#resultTrust = options.resultTrust ?? "auto";
    if (!["auto", "executor_key", "receipt"].includes(this.#resultTrust)) {
      throw new SdkError("resultTrust must be auto, executor_key or receipt", { reason: "result_trust" });
    }
    if (this.#resultTrust === "receipt" && this.#runtimeKey === undefined) {
      throw new SdkError('resultTrust "receipt" needs runtimePublicKey', { reason: "result_trust" });
    }
    if (options.retryPolicy !== undefined && !(options.retryPolicy instanceof RetryPolicy)) {
      throw new SdkError("retryPolicy must be a RetryPolicy", { reason: "retry_policy" });
    }
    this.retryPolicy = options.retryPolicy ?? RetryPolicy.DEFAULT;
    this.#transport = new HttpTransport(this.#connection);
    this.#executorKeys = new RegistryKeyDirectory(
      this.#transport,
      options.executorKeyTtlMs ?? DEFAULT_EXECUTOR_KEY_TTL_MS,
    );
    CHANNELS.set(this, {
      agentId: this.agentId,
      auth: this.#auth,
      retryPolicy: this.retryPolicy,
      connection: this.#connection,
      transport: this.#transport,
      runtimeKey: this.#runtimeKey,
      identity: (identityOptions) => this.#identity(identityOptions),
      keyFor: (sender, override) => this.#keyFor(sender, override),
    });
  }

  /**
   * Calls a tool: signs the invocation, submits it (retrying the identical envelope under the retry
   * policy), and returns the executor's result once it has been verified — the result's signature (see
   * {@link ResultTrust}), that it answers this very request, and the receipt — with its metadata: the
   * executor, the audit id, whether the answer is a `duplicate` of an earlier attempt's. A result that
   * fails any check throws `SignatureInvalidError` and is never returned. Refusals throw their typed
   * errors (`PermissionDeniedError`, `RateLimitedError`, ...); a tool that ran and failed returns
   * `status: "error"` with its error in `body`.
   *
   * Example:
   * ```ts
   * const { body, executor, auditId, duplicate } = await client.invokeTool(
   *   "database/query", { query: "select 1" }, { intent: { purpose: "nightly report" }, timeoutMs: 10_000 });
   * ```
   */
  async invokeTool(name: string, args: JsonValue, options: InvokeToolOptions = {}): Promise<ToolCallResult> {
    this.#identity(options);
    const tool = name.startsWith("tool:") ? name.slice("tool:".length) : name;
    if (!TOOL_NAME_PATTERN.test(tool) || tool.includes("//") || tool.endsWith("/")) {
      throw new SdkError("Not a valid tool name", { reason: "tool_name" });
    }
    return this.invoke(`tool:${tool}`, args, options);
  }

  /**
   * Like {@link invokeTool}, for any target (`tool:NAME`, `agent:ID`, `capability:NAME`).
   *
   * Example: `const { body, duplicate } = await client.invoke("tool:echo", { text: "hi" }, { intent: { purpose: "demo" } })`.
   */
  async invoke(target: string, body: JsonValue, options: InvokeOptions = {}): Promise<InvokeResponse> {
    // Before loading the key or touching the network: a credential for someone else fails here.
    const { auth } = this.#identity(options);
    if (options.signal?.aborted === true) throw abortedError(options.signal);
    const signed = await this.buildEnvelope(target, body, { ...options, type: "invoke" });
    const request = this.#requestOf(signed.envelope, signed.hash);
    const { value, attempts } = await runWithRetries(
      (budget) => this.#submit(signed.wire, request, auth, budget),
      this.#retryOptions(options),
    );
    const result = value.result!;
    return {
      ...value,
      attempts,
      result,
      body: result.body,
      status: result.status ?? "error",
      executor: result.from,
    };
  }

  /**
   * Sends a signal (a one-way message, `type: "signal"`) to a target, retrying the identical envelope
   * under the retry policy, and returns the runtime's verified receipt.
   *
   * The older form `send(wire)`, which submits an already signed envelope once, still works; new code
   * calls {@link submit} for that.
   *
   * Example: `await client.send("agent:bob", { event: "invoice.paid", invoice: 42 })`.
   */
  send(target: string, body: JsonValue, options?: SignalOptions): Promise<SubmitResponse>;
  /** @deprecated Use {@link submit}: `send(wire)` submits an already signed envelope once. */
  send(wire: string, options?: SendOptions): Promise<SubmitResponse>;
  async send(first: string, second?: unknown, third?: SignalOptions): Promise<SubmitResponse> {
    // Envelope text is a JSON object; a target never starts with "{".
    if (typeof first === "string" && first.trimStart().startsWith("{")) {
      return this.submit(first, second as SubmitOptions | undefined);
    }
    const options = third ?? {};
    const { auth } = this.#identity(options);
    if (options.signal?.aborted === true) throw abortedError(options.signal);
    const signed = await this.buildEnvelope(first, second as JsonValue, { ...options, type: "signal" });
    const request = this.#requestOf(signed.envelope, signed.hash);
    const { value, attempts } = await runWithRetries(
      (budget) => this.#submit(signed.wire, request, auth, budget),
      this.#retryOptions(options),
    );
    return { ...value, attempts };
  }

  /**
   * Signs an envelope without sending it, for callers that manage delivery themselves: send it with
   * {@link submit} or `retrySend` as often as needed — the runtime runs one message at most once. Keep
   * the returned `wire` (not the object) to retry after a crash: a retry must be the identical bytes.
   *
   * Example: `const envelope = await client.buildEnvelope("tool:echo", { text: "hi" }); await retrySend(client, envelope);`
   */
  async buildEnvelope(
    target: string,
    body: JsonValue,
    options: BuildEnvelopeOptions = {},
  ): Promise<SignedEnvelope> {
    const { sender } = this.#identity(options);
    const type = options.type ?? "invoke";
    if (type !== "invoke" && type !== "signal") {
      throw new SdkError("type must be invoke or signal", { reason: "type" });
    }
    if (parseTarget(target) === undefined) {
      throw new SdkError("target must be agent:ID, tool:NAME or capability:NAME", { reason: "target" });
    }
    const key = await this.#keyFor(sender, options.signingKey);
    try {
      return signEnvelope(
        {
          type,
          from: sender,
          to: target,
          body,
          ...(options.id === undefined ? {} : { id: options.id }),
          ...(options.session === undefined ? {} : { session: options.session }),
          ...(options.intent === undefined ? {} : { intent: options.intent }),
          ...(options.bodyType === undefined ? {} : { body_type: options.bodyType }),
          ...(options.provenance === undefined ? {} : { provenance: options.provenance }),
        },
        key,
      );
    } catch (error) {
      // The same refusal the runtime would give, raised before anything is sent.
      if (isSignetError(error))
        throw protocolError(error.code, error.message, error.details, { cause: error });
      throw new SdkError("The body is not JSON that can be signed", { reason: "body", cause: error });
    }
  }

  /**
   * Signs an invocation without sending it (the older name of {@link buildEnvelope} for `invoke`).
   *
   * Example: `const { wire } = await client.sign("tool:echo", { text: "hi" }); await client.submit(wire);`
   */
  async sign(target: string, body: JsonValue, options: EnvelopeOptions = {}): Promise<SignedEnvelope> {
    return this.buildEnvelope(target, body, { ...options, type: "invoke" });
  }

  /**
   * Submits an already signed envelope exactly as given, once (see `retrySend` for retries). Re-sending
   * the identical bytes never executes twice: the answer to a repeat is the original result marked
   * `duplicate`. The envelope's sender must be the credential's `expectedSender`. An `invoke`'s result
   * is verified as in {@link invokeTool}.
   *
   * Example: `const { result, duplicate } = await client.submit(envelope.wire)`.
   */
  async submit(envelope: SignedEnvelope | string, options: SubmitOptions = {}): Promise<SubmitResponse> {
    const auth = options.auth ?? this.#auth;
    if (options.auth !== undefined) checkAuth(options.auth, this.#connection);
    const wire = typeof envelope === "string" ? envelope : envelope?.wire;
    if (typeof wire !== "string") throw new SdkError("Not a signed envelope", { reason: "envelope" });
    let parsed: Envelope;
    try {
      const value = parseStrictJson(wire);
      assertEnvelopeShape(value);
      parsed = value;
    } catch (error) {
      if (isSignetError(error))
        throw protocolError(error.code, error.message, error.details, { cause: error });
      throw error;
    }
    if (parsed.from !== auth.expectedSender) {
      throw new IdentityMismatchError(undefined, {}, { expected: auth.expectedSender, actual: parsed.from });
    }
    return this.#submit(wire, this.#requestOf(parsed, envelopeHash(parsed)), auth, options);
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /**
   * The credential and sender of a call, after the expectedSender guard: the first check of every
   * operation, before any key is loaded or anything is sent.
   */
  #identity(options: { readonly auth?: AuthConfig; readonly sender?: string }): {
    auth: AuthConfig;
    sender: string;
  } {
    const auth = options.auth ?? this.#auth;
    const sender = options.sender ?? this.agentId;
    if (auth?.expectedSender !== sender) {
      throw new IdentityMismatchError(undefined, {}, { expected: auth?.expectedSender, actual: sender });
    }
    if (options.auth !== undefined) checkAuth(options.auth, this.#connection);
    return { auth, sender };
  }

  /** The key for a sender: the call's own, else the client's for its own agent id. */
  async #keyFor(sender: string, override: SigningKeyInput | undefined): Promise<Ed25519PrivateKey> {
    if (override !== undefined) return loadSigningKey(override);
    if (sender !== this.agentId) {
      // Never sign one participant's message with another's key.
      throw new SdkError("A call with its own sender needs its own signingKey", { reason: "signing_key" });
    }
    return this.#signingKey.get();
  }

  #retryOptions(options: InvokeOptions): Parameters<typeof runWithRetries>[1] {
    return {
      policy: options.retryPolicy ?? this.retryPolicy,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
    };
  }

  #requestOf(envelope: Envelope, hash: ContentHash): SubmittedRequest {
    return { from: envelope.from, id: envelope.id, hash, type: envelope.type };
  }

  async #submit(
    wire: string,
    request: SubmittedRequest,
    auth: AuthConfig,
    budget: AttemptBudget,
  ): Promise<SubmitResponse> {
    const response = await this.#transport.request({
      method: "POST",
      path: "v1/envelopes",
      auth,
      body: wire,
      maxResponseBytes: MAX_SUBMIT_RESPONSE_BYTES,
      ...(budget.signal === undefined ? {} : { signal: budget.signal }),
      ...(budget.timeoutMs === undefined ? {} : { timeoutMs: budget.timeoutMs }),
    });
    if (response.status !== 200) throw errorFromWire(response.text, response.status);
    const { receipt, result: rawResult } = parseSubmitResponse(response.text);
    checkReceiptNamesRequest(receipt, request);
    if (this.#runtimeKey !== undefined) checkReceiptSignature(receipt, this.#runtimeKey);
    const base = {
      receipt,
      duplicate: receipt.duplicate,
      requestHash: request.hash,
      auditId: receipt.audit.request,
      attempts: 1,
    };
    if (request.type !== "invoke") return base;

    const { result, hash } = checkResultIntegrity(rawResult);
    checkResultBinding(result, hash, request, receipt);
    await this.#checkExecutorSignature(result, auth);
    return { ...base, result };
  }

  async #checkExecutorSignature(result: Envelope, auth: AuthConfig): Promise<void> {
    if (this.#resultTrust === "receipt") return; // the receipt's signature was checked in #submit
    const lookup = await this.#executorKeys.lookup(result.from, result.kid, auth);
    if (lookup.status === "found") return checkResultSignature(result, lookup.key);
    if (lookup.status === "unknown") {
      throw protocolError("SIGNATURE_INVALID", "The result's key is not registered to its sender", {
        reason: "result_key",
      });
    }
    // The registry is closed to this principal. The pinned runtime's signed receipt, already checked
    // to name this result's envelope hash, then vouches for it (the runtime verified the executor).
    if (this.#resultTrust === "auto" && this.#runtimeKey !== undefined) return undefined;
    throw new SdkError(
      "Cannot verify the result: this principal may not read the registry (agent:read) and no runtimePublicKey is pinned",
      { reason: "result_unverifiable" },
    );
  }
}
