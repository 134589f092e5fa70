// Transport credentials for the runtime (API key, bearer token, client certificate, dev identity).
import { isAgentId } from "@signet/protocol";
import { SdkError } from "./errors.js";

/** Which transport credential an {@link AuthConfig} carries. */
export type AuthKind = "api_key" | "bearer" | "mtls" | "dev";

/** A PEM client certificate and its private key (strings or Buffers of PEM text). */
export interface ClientCertificate {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** Options every credential takes: the identity it is expected to prove. */
export interface ExpectedSenderOptions {
  /**
   * The agent id this credential authenticates as. Required: the SDK refuses to send an envelope
   * whose sender is anyone else (`IdentityMismatchError`, before anything leaves the process), so a
   * mixed-up key or agent id fails locally instead of at the runtime (or, worse, not at all).
   */
  readonly expectedSender: string;
}

// Header values travel verbatim; a line break would let a credential smuggle extra headers.
const HEADER_SAFE = /^[\x21-\x7e]+$/;

function checkSender(expectedSender: unknown): string {
  if (!isAgentId(expectedSender)) {
    throw new SdkError("expectedSender must be a bare agent id", { reason: "expected_sender" });
  }
  return expectedSender;
}

function checkSecret(value: unknown, what: string): string {
  if (typeof value !== "string" || !HEADER_SAFE.test(value)) {
    // Never echo the value: it is a secret.
    throw new SdkError(`The ${what} must be a non-empty string of visible ASCII characters`, {
      reason: "credential",
    });
  }
  return value;
}

/**
 * How a client proves who it is to the runtime. Build one with a factory; secrets stay in private
 * fields and never appear in `toString`, `toJSON` or `util.inspect`.
 *
 * Example:
 * ```ts
 * const auth = AuthConfig.forApiKey(process.env.SIGNET_API_KEY!, { expectedSender: "alice" });
 * ```
 */
export class AuthConfig {
  readonly #secret: string | undefined;
  readonly #certificate: ClientCertificate | undefined;

  private constructor(
    readonly kind: AuthKind,
    readonly expectedSender: string,
    secret?: string,
    certificate?: ClientCertificate,
  ) {
    this.#secret = secret;
    this.#certificate = certificate;
  }

  /**
   * An API key (`sgk_...`), sent as `X-Signet-Api-Key`.
   *
   * Example: `AuthConfig.forApiKey(key, { expectedSender: "alice" })`.
   */
  static forApiKey(apiKey: string, options: ExpectedSenderOptions): AuthConfig {
    return new AuthConfig("api_key", checkSender(options?.expectedSender), checkSecret(apiKey, "API key"));
  }

  /**
   * A bearer token (a JWT whose `sub` is the agent id), sent as `Authorization: Bearer ...`.
   *
   * Example: `AuthConfig.forBearer(jwt, { expectedSender: "alice" })`.
   */
  static forBearer(token: string, options: ExpectedSenderOptions): AuthConfig {
    return new AuthConfig("bearer", checkSender(options?.expectedSender), checkSecret(token, "token"));
  }

  /**
   * A TLS client certificate (mTLS) whose CN (or mapped SPIFFE id) is the agent id.
   *
   * Example: `AuthConfig.forMtls({ cert: readFileSync("alice.crt"), key: readFileSync("alice.key"), expectedSender: "alice" })`.
   */
  static forMtls(options: ClientCertificate & ExpectedSenderOptions): AuthConfig {
    const expectedSender = checkSender(options?.expectedSender);
    if (options.cert === undefined || options.key === undefined) {
      throw new SdkError("forMtls needs both cert and key", { reason: "credential" });
    }
    return new AuthConfig("mtls", expectedSender, undefined, { cert: options.cert, key: options.key });
  }

  /**
   * A development identity (`X-Signet-Dev-Identity`), honoured only by a runtime in explicit insecure
   * mode. A client refuses it unless it was created with `allowInsecure: true`.
   *
   * Example: `new SignetClient({ target: "http://127.0.0.1:8080", allowInsecure: true, auth: AuthConfig.forDevAgent("alice"), ... })`.
   */
  static forDevAgent(agentId: string): AuthConfig {
    return new AuthConfig("dev", checkSender(agentId), agentId);
  }

  /** The HTTP headers that carry this credential (empty for mTLS, which rides on the TLS handshake). */
  headers(): Record<string, string> {
    switch (this.kind) {
      case "api_key":
        return { "x-signet-api-key": this.#secret! };
      case "bearer":
        return { authorization: `Bearer ${this.#secret!}` };
      case "dev":
        return { "x-signet-dev-identity": this.#secret! };
      case "mtls":
        return {};
    }
  }

  /** The client certificate, for mTLS credentials. */
  get clientCertificate(): ClientCertificate | undefined {
    return this.#certificate;
  }

  toString(): string {
    return `AuthConfig(${this.kind}, ${this.expectedSender})`;
  }

  toJSON(): { kind: AuthKind; expectedSender: string } {
    return { kind: this.kind, expectedSender: this.expectedSender };
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
