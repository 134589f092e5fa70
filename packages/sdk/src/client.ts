// SignetClient: signs envelopes, submits them to POST /v1/envelopes, and verifies what comes back.
import {
  type ContentHash,
  type Ed25519PublicKey,
  type Envelope,
  type Intent,
  type JsonValue,
  type Provenance,
  type Receipt,
  type SignedEnvelope,
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
import { ExecutorKeyDirectory } from "./executor-keys.js";
import { HttpTransport } from "./http-transport.js";
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
import { type RuntimeKeyInput, parseRuntimeKey } from "./runtime-key.js";
import { type SigningKeyInput, SigningKeySource } from "./signing-key.js";

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
  /** The sender of every envelope this client signs (a bare agent id). */
  readonly agentId: string;
  /** The agent's Ed25519 key. Loaded on first use; only `invoke`/`sign` need it (`send` does not). */
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
}

/** Per-call options for {@link SignetClient.invoke} and {@link SignetClient.sign}. */
export interface InvokeOptions {
  /** What the caller declares it is doing and the permissions it needs. */
  readonly intent?: Intent;
  /** A coordination session id. */
  readonly session?: string;
  /** The body's semantic type, e.g. `org.acme.Invoice.v1`. */
  readonly bodyType?: string;
  readonly provenance?: Provenance;
  /** A credential for this call only; its `expectedSender` is enforced like the client's. */
  readonly auth?: AuthConfig;
  /** The message id (a UUIDv7 is generated when absent). */
  readonly id?: string;
}

/** Per-call options for {@link SignetClient.send}. */
export interface SendOptions {
  readonly auth?: AuthConfig;
}

/** What the runtime answered to a submitted envelope, verified. */
export interface SubmitResponse {
  /** The runtime's receipt (its signature checked when `runtimePublicKey` is pinned). */
  readonly receipt: Receipt;
  /** True when this answer replays an earlier identical submission; the call did not run again. */
  readonly duplicate: boolean;
  /** The request's envelope hash. */
  readonly requestHash: ContentHash;
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
}

const DEFAULT_EXECUTOR_KEY_TTL_MS = 5 * 60_000;

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
 * const { body } = await client.invoke("tool:database/query", { query: "select 1" });
 * ```
 */
export class SignetClient {
  readonly agentId: string;
  readonly #auth: AuthConfig;
  readonly #connection: ResolvedConnection;
  readonly #transport: HttpTransport;
  readonly #signingKey: SigningKeySource;
  readonly #runtimeKey: Ed25519PublicKey | undefined;
  readonly #resultTrust: ResultTrust;
  readonly #executorKeys: ExecutorKeyDirectory;

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
    this.#transport = new HttpTransport(this.#connection);
    this.#executorKeys = new ExecutorKeyDirectory(
      this.#transport,
      options.executorKeyTtlMs ?? DEFAULT_EXECUTOR_KEY_TTL_MS,
    );
  }

  /**
   * Signs an invocation, submits it, and returns the executor's result once it has been verified: the
   * result's signature (see {@link ResultTrust}), that it answers this very request, and the receipt.
   * A result that fails any check throws `SignatureInvalidError` and is never returned. Refusals throw
   * their typed errors (`PermissionDeniedError`, `RateLimitedError`, ...).
   *
   * Example: `const { body, duplicate } = await client.invoke("tool:echo", { text: "hi" }, { intent: { purpose: "demo" } })`.
   */
  async invoke(target: string, body: JsonValue, options: InvokeOptions = {}): Promise<InvokeResponse> {
    // Before loading the key or touching the network: a credential for someone else fails here.
    const auth = this.#authFor(options.auth);
    const signed = await this.sign(target, body, options);
    const response = await this.#submit(signed.wire, this.#requestOf(signed.envelope, signed.hash), auth);
    const result = response.result!;
    return { ...response, result, body: result.body, status: result.status ?? "error" };
  }

  /**
   * Signs an invocation without sending it, for callers that manage retries: send the returned `wire`
   * with {@link send} as often as needed — the runtime runs it once.
   *
   * Example: `const { wire } = await client.sign("tool:echo", { text: "hi" }); await client.send(wire);`
   */
  async sign(target: string, body: JsonValue, options: InvokeOptions = {}): Promise<SignedEnvelope> {
    this.#authFor(options.auth);
    if (parseTarget(target) === undefined) {
      throw new SdkError("target must be agent:ID, tool:NAME or capability:NAME", { reason: "target" });
    }
    const key = await this.#signingKey.get();
    try {
      return signEnvelope(
        {
          type: "invoke",
          from: this.agentId,
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
   * Submits an already signed envelope exactly as given — the way to retry: re-sending the identical
   * bytes never executes twice, and the answer to a retry is the original result marked `duplicate`.
   * The envelope's sender must match the credential's `expectedSender`. An `invoke`'s result is verified
   * as in {@link invoke}.
   *
   * Example: `const { result, duplicate } = await client.send(wire)`.
   */
  async send(wire: string, options: SendOptions = {}): Promise<SubmitResponse> {
    const auth = this.#authFor(options.auth);
    let envelope: Envelope;
    try {
      const value = parseStrictJson(wire);
      assertEnvelopeShape(value);
      envelope = value;
    } catch (error) {
      if (isSignetError(error))
        throw protocolError(error.code, error.message, error.details, { cause: error });
      throw error;
    }
    if (envelope.from !== auth.expectedSender) {
      throw new IdentityMismatchError(
        undefined,
        {},
        { expected: auth.expectedSender, actual: envelope.from },
      );
    }
    return this.#submit(wire, this.#requestOf(envelope, envelopeHash(envelope)), auth);
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** The credential for a call, after the expectedSender guard. Throws before any I/O. */
  #authFor(override: AuthConfig | undefined): AuthConfig {
    const auth = override ?? this.#auth;
    if (auth.expectedSender !== this.agentId) {
      throw new IdentityMismatchError(undefined, {}, { expected: auth.expectedSender, actual: this.agentId });
    }
    if (override !== undefined) checkAuth(override, this.#connection);
    return auth;
  }

  #requestOf(envelope: Envelope, hash: ContentHash): SubmittedRequest {
    return { from: envelope.from, id: envelope.id, hash, type: envelope.type };
  }

  async #submit(wire: string, request: SubmittedRequest, auth: AuthConfig): Promise<SubmitResponse> {
    const response = await this.#transport.request({
      method: "POST",
      path: "v1/envelopes",
      auth,
      body: wire,
      maxResponseBytes: MAX_SUBMIT_RESPONSE_BYTES,
    });
    if (response.status !== 200) throw errorFromWire(response.text, response.status);
    const { receipt, result: rawResult } = parseSubmitResponse(response.text);
    checkReceiptNamesRequest(receipt, request);
    if (this.#runtimeKey !== undefined) checkReceiptSignature(receipt, this.#runtimeKey);
    const base = { receipt, duplicate: receipt.duplicate, requestHash: request.hash };
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
