// The part every coordination session shares: its id, start, cancel, reading it back, and sending one
// signed `session.<verb>` envelope to POST /v1/sessions/messages.
import { randomUUID } from "node:crypto";
import {
  type ContentHash,
  SESSION_ID_PATTERN,
  isAgentId,
  isSignetError,
  signEnvelope,
} from "@signet/protocol";
import type { AuthConfig } from "./auth-config.js";
import { type ClientChannel, type SignetClient, clientChannel } from "./client.js";
import { checkAuth } from "./connection.js";
import { InvalidSessionIdError, SdkError, errorFromWire, protocolError } from "./errors.js";
import { abortedError } from "./http-transport.js";
import { RetryPolicy } from "./retry-policy.js";
import { type CallBudget, runWithRetries } from "./retry-send.js";
import { verifySessionCommitment, verifySessionReceipt } from "./session-commitment.js";
import { SessionLifecycleWatcher, type SessionWatchOptions } from "./session-watcher.js";
import { badValue, textValue } from "./session-values.js";
import {
  type JsonObject,
  type SessionCommitment,
  type SessionReceipt,
  type SessionMessage,
  type SessionMode,
  type SessionView,
  isJsonObject,
  readMessageAnswer,
  readMessages,
  readSessionView,
} from "./session-wire.js";
import type { SigningKeyInput } from "./signing-key.js";

/** Options for a session object: which session, and who speaks in it. */
export interface SessionOptions {
  /**
   * The session id. Default: a fresh UUID v4 (for the initiator, before `start`). Participants pass the
   * id the initiator shared. A UUID, or 22 to 128 base64url characters.
   */
  readonly id?: string;
  /**
   * The credential for this session's calls (default: the client's). Its `expectedSender` is the default
   * sender of every message, and a message naming anyone else is refused before it is signed.
   */
  readonly auth?: AuthConfig;
  /** The key to sign with; required when the sender is not the client's `agentId`. */
  readonly signingKey?: SigningKeyInput;
  /** How messages are retried (always the identical envelope). Default: the client's policy. */
  readonly retryPolicy?: RetryPolicy;
}

/** Options every verb takes: who sends it, under which message id, and its budget. */
export interface SessionCallOptions extends CallBudget {
  /** The sender; must be the credential's `expectedSender` (`IdentityMismatchError` otherwise, before anything is sent). */
  readonly sender?: string;
  /** The message id (a UUIDv4/v7); default a fresh UUIDv7. It is the message's idempotency key. */
  readonly id?: string;
}

/** What `start` takes in every mode. */
export interface SessionStartOptions {
  /** The other participants' agent ids (the initiator is added by the runtime). */
  readonly participants: readonly string[];
  /** How long the session stays open, in ms. The runtime's default is an hour and its limit a day. */
  readonly ttlMs?: number;
  /** A policy reference recorded with the session. */
  readonly policyRef?: string;
}

/** The runtime's answer to a session message. */
export interface SessionResponse {
  /** The session after the message. */
  readonly session: SessionView;
  /** The message's place in the session's order (absent for start and cancel). */
  readonly seq?: number;
  /**
   * Present when this message resolved the session: the runtime-signed commitment. Verified against
   * the client's `runtimePublicKey` when one is pinned (see {@link verifySessionCommitment}).
   */
  readonly commitment?: SessionCommitment;
  /**
   * The runtime's signed receipt for the envelope: verified against the client's `runtimePublicKey`,
   * and required, when one is pinned (see {@link verifySessionReceipt}).
   */
  readonly receipt?: SessionReceipt;
  /** The message id sent (what `MESSAGE_ACCEPTED` events name). */
  readonly messageId: string;
  /** The envelope hash of the message sent. */
  readonly envelopeHash: ContentHash;
  /** How many times the envelope was sent (1 without retries). */
  readonly attempts: number;
}

// A session's state copies terms and contexts from its messages, and a commitment repeats the outcome.
const MAX_SESSION_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * The base of the five mode classes ({@link DecisionSession}, {@link ProposalSession},
 * {@link TaskSession}, {@link HandoffSession}, {@link QuorumSession}). Each message is a normal signed
 * envelope (`type: "session.<verb>"`, `to: "session:<id>"`, `session: <id>`) posted to
 * `/v1/sessions/messages` and retried, when it fails retryably, as the identical bytes — the runtime
 * accepts one message once and answers a retry with the first answer.
 *
 * Example:
 * ```ts
 * const session = new TaskSession(client);
 * await session.start({ participants: ["bob"] });
 * const view = await session.get(); // view.status === "OPEN"
 * ```
 */
export abstract class CoordinationSession {
  /** This session's mode. */
  abstract readonly mode: SessionMode;
  /** The session id, shared with the other participants so they can join. */
  readonly id: string;
  readonly #owner: SignetClient;
  readonly #client: ClientChannel;
  readonly #auth: AuthConfig | undefined;
  readonly #signingKey: SigningKeyInput | undefined;
  readonly #retryPolicy: RetryPolicy;

  constructor(client: SignetClient, options: SessionOptions = {}) {
    this.#client = clientChannel(client);
    this.#owner = client;
    const id = options.id ?? randomUUID();
    if (typeof id !== "string" || !SESSION_ID_PATTERN.test(id)) {
      throw new InvalidSessionIdError(undefined, { reason: "format" });
    }
    this.id = id;
    if (options.auth !== undefined) checkAuth(options.auth, this.#client.connection);
    this.#auth = options.auth;
    this.#signingKey = options.signingKey;
    if (options.retryPolicy !== undefined && !(options.retryPolicy instanceof RetryPolicy)) {
      throw new SdkError("retryPolicy must be a RetryPolicy", { reason: "retry_policy" });
    }
    this.#retryPolicy = options.retryPolicy ?? this.#client.retryPolicy;
  }

  /**
   * Cancels the session (the initiator only); `reason` is recorded with the CANCELLED event.
   *
   * Example: `await session.cancel("superseded by a new proposal")`.
   */
  async cancel(reason?: string, options: SessionCallOptions = {}): Promise<SessionResponse> {
    return this.send("cancel", reason === undefined ? {} : { reason: textValue(reason, "reason") }, options);
  }

  /**
   * Reads the session back (`GET /v1/sessions/:id`): its status, state and, once resolved, outcome.
   * Only participants (and principals with `session:read`) see it; anyone else gets `SessionNotFoundError`.
   *
   * Example: `const { status, outcome } = await session.get()`.
   */
  async get(options: CallBudget = {}): Promise<SessionView> {
    const body = await this.#read(`v1/sessions/${this.id}`, options);
    if (!isJsonObject(body)) return badResponse();
    const view = readSessionView(body.session);
    if (view.id !== this.id) return badResponse();
    return view;
  }

  /**
   * The runtime-signed commitment of a RESOLVED session, as `GET /v1/sessions/:id` serves it; undefined
   * while the session is open, or when it expired or was cancelled. With a pinned `runtimePublicKey`
   * it is checked before it is returned: the signature, and that it covers exactly the session's
   * accepted messages (fetched for the check).
   *
   * Example: `const commitment = await new DecisionSession(client, { id }).commitment();`
   */
  async commitment(options: CallBudget = {}): Promise<SessionCommitment | undefined> {
    const answer = readMessageAnswer(await this.#read(`v1/sessions/${this.id}`, options));
    if (answer.session.id !== this.id) return badResponse();
    const { commitment } = answer;
    if (commitment === undefined) return undefined;
    if (this.#client.runtimeKey !== undefined) {
      const startHash = answer.session.start_hash;
      const messages = startHash === undefined ? undefined : await this.messages(options);
      verifySessionCommitment(commitment, this.#client.runtimeKey, {
        session: this.id,
        historyHash: answer.session.history_hash,
        ...(startHash === undefined || messages === undefined
          ? {}
          : { history: { startHash, envelopeHashes: messages.map((message) => message.envelope_hash) } }),
      });
    }
    return commitment;
  }

  /**
   * The accepted messages in order (`GET /v1/sessions/:id/messages`), to trace the outcome back to who
   * said what.
   *
   * Example: `for (const m of await session.messages()) console.log(m.seq, m.sender, m.kind, m.body)`.
   */
  async messages(options: CallBudget = {}): Promise<SessionMessage[]> {
    return readMessages(await this.#read(`v1/sessions/${this.id}/messages`, options));
  }

  /**
   * A watcher of this session's lifecycle events (needs the `session:watch` permission), with this
   * session's credential unless the options name another.
   *
   * Example: `for await (const event of session.watch({ lastEventId: 0 })) if (event.type === "RESOLVED") break;`
   */
  watch(options: Omit<SessionWatchOptions, "sessionId"> = {}): SessionLifecycleWatcher {
    return new SessionLifecycleWatcher(this.#owner, {
      ...(this.#auth === undefined ? {} : { auth: this.#auth }),
      ...options,
      sessionId: this.id,
    });
  }

  /** Opens the session in this object's mode (the mode classes' `start` calls this). */
  protected async startSession(
    start: SessionStartOptions,
    config: JsonObject | undefined,
    options: SessionCallOptions,
  ): Promise<SessionResponse> {
    const participants: unknown = start?.participants;
    if (!Array.isArray(participants) || !participants.every((participant) => isAgentId(participant))) {
      return badValue("participants", "a list of bare agent ids");
    }
    const ttl = start.ttlMs;
    if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl > 0)) {
      return badValue("ttlMs", "a positive integer (ms)");
    }
    const body: JsonObject = {
      mode: this.mode,
      participants: [...participants],
      ...(ttl === undefined ? {} : { ttl_ms: ttl }),
      ...(config === undefined ? {} : { config }),
      ...(start.policyRef === undefined ? {} : { policy_ref: textValue(start.policyRef, "policyRef") }),
    };
    return this.send("start", body, options);
  }

  /**
   * Signs and sends one `session.<verb>` message. The sender guard runs first, before any key is loaded
   * or anything is sent.
   */
  protected async send(
    verb: string,
    body: JsonObject,
    options: SessionCallOptions = {},
  ): Promise<SessionResponse> {
    const { auth, sender } = this.#client.identity({
      ...(this.#auth === undefined ? {} : { auth: this.#auth }),
      sender: options.sender ?? this.#auth?.expectedSender ?? this.#client.agentId,
    });
    if (!/^[a-z][a-z_]{0,31}$/.test(verb)) throw new SdkError("Not a session verb", { reason: "type" });
    if (options.signal?.aborted === true) throw abortedError(options.signal);
    const key = await this.#client.keyFor(sender, this.#signingKey);
    let signed: ReturnType<typeof signEnvelope>;
    try {
      signed = signEnvelope(
        {
          type: `session.${verb}`,
          from: sender,
          to: `session:${this.id}`,
          session: this.id,
          body,
          ...(options.id === undefined ? {} : { id: options.id }),
        },
        key,
      );
    } catch (error) {
      // The same refusal the runtime would give, raised before anything is sent.
      if (isSignetError(error))
        throw protocolError(error.code, error.message, error.details, { cause: error });
      throw new SdkError("The body is not JSON that can be signed", { reason: "body", cause: error });
    }
    const { value, attempts } = await runWithRetries(async (budget) => {
      const response = await this.#client.transport.request({
        method: "POST",
        path: "v1/sessions/messages",
        auth,
        body: signed.wire,
        maxResponseBytes: MAX_SESSION_RESPONSE_BYTES,
        ...budget,
      });
      if (response.status !== 200) throw errorFromWire(response.text, response.status);
      return readMessageAnswer(parseJson(response.text));
    }, this.#budget(options));
    if (value.session.id !== this.id) return badResponse();
    if (this.#client.runtimeKey !== undefined) {
      // The runtime signs what it accepted: this very envelope, in this session.
      if (value.receipt === undefined) return badResponse();
      verifySessionReceipt(value.receipt, this.#client.runtimeKey, {
        request: signed.hash,
        session: this.id,
      });
    }
    if (value.commitment !== undefined && this.#client.runtimeKey !== undefined) {
      verifySessionCommitment(value.commitment, this.#client.runtimeKey, {
        session: this.id,
        historyHash: value.session.history_hash,
      });
    }
    return { ...value, messageId: signed.envelope.id, envelopeHash: signed.hash, attempts };
  }

  async #read(path: string, options: CallBudget): Promise<unknown> {
    const auth = this.#auth ?? this.#client.auth;
    const { value } = await runWithRetries(async (budget) => {
      const response = await this.#client.transport.request({
        method: "GET",
        path,
        auth,
        maxResponseBytes: MAX_SESSION_RESPONSE_BYTES,
        ...budget,
      });
      if (response.status !== 200) throw errorFromWire(response.text, response.status);
      return parseJson(response.text);
    }, this.#budget(options));
    return value;
  }

  #budget(options: CallBudget): Parameters<typeof runWithRetries>[1] {
    return {
      policy: this.#retryPolicy,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return badResponse();
  }
}

function badResponse(): never {
  throw new SdkError("The runtime's answer is malformed", { reason: "bad_response" });
}
