// Transport authentication: picks the one credential a request carries and turns it into a Principal.
//
// Order, fixed:
//   1. API key: `X-Signet-Api-Key: sgk_...`, or `Authorization: Bearer sgk_...`
//   2. JWT: any other `Authorization: Bearer ...`
//   3. mTLS: the verified client certificate's id
//   4. dev identity: `X-Signet-Dev-Identity: <id>`, only when the server runs insecure
// The first credential present decides. If it is invalid the request fails: it never falls through to
// a later (often weaker) method, so a stolen-but-revoked key cannot ride on a certificate, and nobody
// can find out which credentials a request "would also have" passed with.
import { SignetError, isAgentId } from "@signet/protocol";
import type { ApiKeyStore } from "../store/types.js";
import { verifyApiKey } from "./api-keys.js";
import {
  type AuthFailure,
  type AuthFailureHints,
  type AuthFailureMethod,
  type AuthFailureReason,
  authFailure,
  isAuthFailure,
  isUnavailableReason,
} from "./auth-failure.js";
import type { JwtVerifier } from "./jwt.js";
import {
  type CertificatePeer,
  type CertificatePrincipalEntry,
  certificatePrincipals,
  principalFromPeer,
  transportPrincipal,
} from "./mtls.js";
import type { Principal } from "./principal.js";

/** The header carrying an API key. */
export const API_KEY_HEADER = "x-signet-api-key";
/** The header naming a dev identity; honoured only in insecure mode. */
export const DEV_IDENTITY_HEADER = "x-signet-dev-identity";

/** Receives the specific reason of every failed attempt, for the event store. Never for the client. */
export type AuthFailureListener = (
  reason: AuthFailureReason,
  method: AuthFailureMethod,
  hints: AuthFailureHints,
) => void | Promise<void>;

/** Which methods are enabled, each by being present. */
export interface AuthenticatorConfig {
  /** API keys are accepted when a store is given. */
  readonly apiKeys?: ApiKeyStore;
  /** JWT bearer tokens are accepted when a verifier is given (see createJwtVerifier). */
  readonly jwt?: JwtVerifier;
  /**
   * Client certificates are accepted when this table is given (it may be empty): ids in it get its
   * kind and permissions, others are agents with DEFAULT_CERTIFICATE_PERMISSIONS. In insecure mode the
   * dev identity header resolves through the same table: it stands in for a certificate.
   */
  readonly mtlsPrincipals?: Readonly<Record<string, CertificatePrincipalEntry>>;
  /** Called, and awaited, on every failure; anything it throws is ignored so that it cannot change the answer. */
  readonly onFailure?: AuthFailureListener;
  /** The clock (ms), for key expiry and token times. Defaults to Date.now. */
  readonly now?: () => number;
}

/** A request as the HTTP or WebSocket layer sees it. */
export interface AuthRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Set only for a client certificate the TLS layer verified against the client CA. */
  readonly peer?: CertificatePeer;
  /** True only when the server runs in explicit insecure (plaintext, development) mode. */
  readonly insecure: boolean;
}

export interface Authenticator {
  /**
   * Returns the request's Principal, or throws SignetError `UNAUTHENTICATED` (a credential was missing
   * or refused) or `UNAVAILABLE` (it could not be checked: the key store or the JWKS is unreachable).
   */
  authenticate(request: AuthRequest): Promise<Principal>;
}

const API_KEY_BEARER_PREFIX = "sgk_";
// RFC 7235: `Bearer` and a token68, one or more spaces between. Anything else is refused, not trimmed.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const SCHEME = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?: |$)/;

type HeaderValue = { value: string } | { repeated: true } | undefined;

/** Reads one header case-insensitively; a repeated header (array, or two spellings) is flagged. */
function readHeader(headers: AuthRequest["headers"], name: string): HeaderValue {
  let found: HeaderValue;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    if (found !== undefined || Array.isArray(value)) return { repeated: true };
    found = { value };
  }
  return found;
}

/**
 * Builds the authenticator the HTTP and WebSocket layers call for every request that needs a principal.
 *
 * Example:
 * `const auth = createAuthenticator({ apiKeys: stores.apiKeys, jwt, mtlsPrincipals: {},
 *    onFailure: (reason, method, hints) => recordAuthFailure(reason, method, hints) });
 *  const principal = await auth.authenticate({ headers: req.headers, peer, insecure: false });`
 */
export function createAuthenticator(config: AuthenticatorConfig): Authenticator {
  const now = config.now ?? Date.now;
  const lookup = certificatePrincipals(config.mtlsPrincipals ?? {});
  const mtlsEnabled = config.mtlsPrincipals !== undefined;

  async function viaApiKey(presented: string): Promise<Principal | AuthFailure> {
    if (config.apiKeys === undefined) return authFailure("method_not_enabled", "api_key");
    try {
      return await verifyApiKey(presented, config.apiKeys, now());
    } catch (error) {
      return authFailure("store_unavailable", "api_key", { error });
    }
  }

  async function viaJwt(token: string): Promise<Principal | AuthFailure> {
    if (config.jwt === undefined) return authFailure("method_not_enabled", "jwt");
    return config.jwt.verify(token, now());
  }

  async function resolve(request: AuthRequest): Promise<Principal | AuthFailure> {
    const apiKeyHeader = readHeader(request.headers, API_KEY_HEADER);
    const authorization = readHeader(request.headers, "authorization");
    const devHeader = readHeader(request.headers, DEV_IDENTITY_HEADER);

    // Refused loudly, whatever else the request carries: outside insecure mode this header is either
    // a misconfigured client or someone probing, and both should show up in the record.
    if (devHeader !== undefined && request.insecure !== true)
      return authFailure("dev_identity_not_allowed", "dev");

    if (apiKeyHeader !== undefined) {
      if ("repeated" in apiKeyHeader) return authFailure("ambiguous_credentials", "api_key");
      // Two credentials with possibly different principals: refuse rather than pick one.
      if (authorization !== undefined) return authFailure("ambiguous_credentials", "api_key");
      return viaApiKey(apiKeyHeader.value);
    }

    if (authorization !== undefined) {
      if ("repeated" in authorization) return authFailure("ambiguous_credentials", "none");
      const bearer = BEARER.exec(authorization.value);
      if (bearer === null) {
        const scheme = SCHEME.exec(authorization.value)?.[1]?.toLowerCase();
        return authFailure(scheme === "bearer" ? "malformed" : "unsupported_scheme", "none");
      }
      const token = bearer[1] ?? "";
      return token.startsWith(API_KEY_BEARER_PREFIX) ? viaApiKey(token) : viaJwt(token);
    }

    if (request.peer !== undefined && mtlsEnabled) return principalFromPeer(request.peer, lookup);

    if (devHeader !== undefined) {
      if ("repeated" in devHeader || !isAgentId(devHeader.value)) return authFailure("malformed", "dev");
      return transportPrincipal(devHeader.value, lookup, "dev");
    }

    return authFailure("no_credentials", "none");
  }

  async function report(failure: AuthFailure): Promise<void> {
    if (config.onFailure === undefined) return;
    try {
      await config.onFailure(failure.reason, failure.method, failure.hints ?? {});
    } catch {
      // Recording is the listener's job; a failing listener must not turn a 401 into a 500 that tells
      // the client something about the attempt.
    }
  }

  return {
    async authenticate(request: AuthRequest): Promise<Principal> {
      const outcome = await resolve(request);
      if (!isAuthFailure(outcome)) return outcome;
      await report(outcome);
      // No cause, no details: the specific reason went to onFailure, the client learns only the code.
      throw new SignetError(isUnavailableReason(outcome.reason) ? "UNAVAILABLE" : "UNAUTHENTICATED");
    },
  };
}
